/*
 * tillstream/cli.h - a dev tool's or benchmark's command line as one
 * table: each long option once, with where its value goes, instead of a
 * getopt table and a switch that name it twice.
 */
#ifndef TILLSTREAM_CLI_H
#define TILLSTREAM_CLI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_CLI_STR,    /* const char *: optarg itself (points into argv) */
    TS_CLI_INT,    /* int: atoi */
    TS_CLI_LONG,   /* long: strtol, base 10 */
    TS_CLI_SIZE,   /* size_t: strtoul, base 10 */
    TS_CLI_U64,    /* uint64_t: strtoull, base 10 */
    TS_CLI_DOUBLE, /* double: atof */
    TS_CLI_FLAG,   /* bool, no argument: set to true */
    TS_CLI_CALL,   /* call(dst, optarg): 0 goes on, else ts_cli_parse returns it */
    TS_CLI_RETURN  /* no argument: ts_cli_parse returns short_name (--help) */
} ts_cli_type_t;

typedef struct {
    const char *name;
    char short_name; /* 0: long only */
    ts_cli_type_t type;
    void *dst;
    int (*call)(void *dst, const char *arg);
} ts_cli_opt_t;

/* Rows: TS_CLI("seed", U64, &a->seed), TS_CLI_FN("format", &a->avro,
 * parse_format), TS_CLI_RET("help", 'h'). */
#define TS_CLI(name, type, dst)                                                                    \
    { name, 0, TS_CLI_##type, dst, NULL }
#define TS_CLI_FN(name, dst, fn)                                                                   \
    { name, 0, TS_CLI_CALL, dst, fn }
#define TS_CLI_RET(name, c)                                                                        \
    { name, c, TS_CLI_RETURN, NULL, NULL }

#define TS_CLI_MAX 40

/* getopt_long over argv from optind with opts[0..n) (n <= TS_CLI_MAX).
 * Returns 0 once every option is read (optind: the first operand), the
 * short_name of a TS_CLI_RETURN option, a TS_CLI_CALL's nonzero answer,
 * or '?' for an unknown option or a missing argument (getopt printed
 * it). */
int ts_cli_parse(int argc, char **argv, const ts_cli_opt_t *opts, size_t n);

#ifdef __cplusplus
}
#endif

#endif
