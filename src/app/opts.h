/*
 * app/opts.h - the command line of a daemon binary (private to src/app):
 * one table of its options instead of a getopt table, an enum and a
 * switch that name each option three times.
 */
#ifndef TILLSTREAM_APP_OPTS_H
#define TILLSTREAM_APP_OPTS_H

#include <stddef.h>

/* One long option. With str it takes an argument, stored (not copied:
 * it points into argv) in *str; else with flag it sets *flag = value;
 * else ts_app_getopt returns value at once (--help-config). */
typedef struct {
    const char *name;
    const char **str;
    int *flag;
    int value;
} ts_app_opt_t;

#define TS_APP_OPTS_MAX 32

/* getopt_long over argv from its start, with the options every daemon
 * has (-c/--config FILE into *config_path, -h/--help, -V/--version) and
 * opts[0..n) (n <= TS_APP_OPTS_MAX). Returns 0 once every option is
 * read (optind: the first operand), 'h' or 'V' at -h or -V, an option's
 * value as above, or '?' for a usage error (getopt printed it). */
int ts_app_getopt(int argc, char **argv, const ts_app_opt_t *opts, size_t n,
                  const char **config_path);

#endif
