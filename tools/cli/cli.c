/*
 * cli.c - ts_cli_parse (tillstream/cli.h): getopt_long's table and short
 * option string built from the tool's table, each value stored by type.
 */
#include "tillstream/cli.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

enum { OPT_FIRST = 256 }; /* getopt code of opts[i] without a short name */

static int store(const ts_cli_opt_t *o, const char *arg) {
    switch (o->type) {
    case TS_CLI_STR: *(const char **)o->dst = arg; break;
    case TS_CLI_INT: *(int *)o->dst = atoi(arg); break;
    case TS_CLI_LONG: *(long *)o->dst = strtol(arg, NULL, 10); break;
    case TS_CLI_SIZE: *(size_t *)o->dst = strtoul(arg, NULL, 10); break;
    case TS_CLI_U64: *(uint64_t *)o->dst = strtoull(arg, NULL, 10); break;
    case TS_CLI_DOUBLE: *(double *)o->dst = atof(arg); break;
    case TS_CLI_FLAG: *(bool *)o->dst = true; break;
    case TS_CLI_CALL: return o->call(o->dst, arg);
    case TS_CLI_RETURN: return o->short_name;
    }
    return 0;
}

static bool has_arg(const ts_cli_opt_t *o) {
    return o->type != TS_CLI_FLAG && o->type != TS_CLI_RETURN;
}

int ts_cli_parse(int argc, char **argv, const ts_cli_opt_t *opts, size_t n) {
    struct option lo[TS_CLI_MAX + 1] = {{0}};
    char shorts[2 * TS_CLI_MAX + 1] = "";
    size_t ns = 0;
    if (n > TS_CLI_MAX) return '?';
    for (size_t i = 0; i < n; i++) {
        const ts_cli_opt_t *o = &opts[i];
        int code = o->short_name ? o->short_name : OPT_FIRST + (int)i;
        lo[i] = (struct option){o->name, has_arg(o) ? required_argument : no_argument, NULL, code};
        if (!o->short_name) continue;
        shorts[ns++] = o->short_name;
        if (has_arg(o)) shorts[ns++] = ':';
    }
    int c;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        size_t i = 0;
        while (i < n && (opts[i].short_name ? opts[i].short_name : OPT_FIRST + (int)i) != c) i++;
        if (i == n) return '?';
        int rc = store(&opts[i], optarg);
        if (rc) return rc;
    }
    return 0;
}
