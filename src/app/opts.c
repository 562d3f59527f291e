/*
 * opts.c - ts_app_getopt (app/opts.h): builds getopt_long's table from
 * the binary's option table and applies what it reads.
 */
#include "app/opts.h"

#include <getopt.h>

enum { OPT_FIRST = 256 }; /* getopt code of opts[i]: OPT_FIRST + i */

int ts_app_getopt(int argc, char **argv, const ts_app_opt_t *opts, size_t n,
                  const char **config_path) {
    struct option lo[TS_APP_OPTS_MAX + 4] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'}};
    if (n > TS_APP_OPTS_MAX) return '?';
    for (size_t i = 0; i < n; i++)
        lo[3 + i] = (struct option){opts[i].name, opts[i].str ? required_argument : no_argument,
                                    NULL, OPT_FIRST + (int)i};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:hV", lo, NULL)) != -1) {
        if (c == 'c') {
            *config_path = optarg;
            continue;
        }
        if (c < OPT_FIRST) return c == 'h' || c == 'V' ? c : '?';
        const ts_app_opt_t *o = &opts[c - OPT_FIRST];
        if (o->str)
            *o->str = optarg;
        else if (o->flag)
            *o->flag = o->value;
        else
            return o->value;
    }
    return 0;
}
