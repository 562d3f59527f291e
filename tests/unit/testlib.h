/*
 * testlib.h - how every unit test program (tests/unit/test_*.c) starts
 * and ends: the cmocka headers in the order cmocka needs them,
 * TS_TEST_MAIN, the program's main, and the log level a program sets in
 * its group setup. Test-only; header-only.
 */
#ifndef TS_TESTLIB_H
#define TS_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/log.h"

/* main(): runs the cmocka_unit_test(...) entries given after `setup` and
 * `teardown` as one group named "tests"; the group setup runs before the
 * first test and the teardown after the last (NULL: none). Process-wide
 * state (curl_global_init, the log level) belongs in the group setup, so
 * that every program's main is this one line; TS_TEST_FILTER (a cmocka
 * pattern, e.g. test_restore*) runs the matching tests only. Returns what
 * cmocka_run_group_tests returns (the number of failed tests). */
#define TS_TEST_MAIN(setup, teardown, ...)                                                         \
    int main(void) {                                                                               \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                           \
        if (getenv("TS_TEST_FILTER")) cmocka_set_test_filter(getenv("TS_TEST_FILTER"));            \
        return cmocka_run_group_tests(tests, setup, teardown);                                     \
    }

/* The log level of a test program: `quiet`, or debug when TS_TEST_LOG is
 * set in the environment (to see what a failing test did). */
static inline void tl_log_level(ts_log_level_t quiet) {
    ts_log_set_level(getenv("TS_TEST_LOG") ? TS_LOG_DEBUG : quiet);
}

/* Group setup (TS_TEST_MAIN) of a program whose tests would log expected
 * failures: errors only. */
static inline int tl_log_errors(void **state) {
    (void)state;
    tl_log_level(TS_LOG_ERROR);
    return 0;
}

/* Writes `line` and a newline to `path` the way the kubelet updates a
 * mounted Secret: a new file renamed over the old one (a new inode). */
static inline void tl_write_secret(const char *path, const char *line) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", line);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* The log lines of a test, captured in memory: logcap_begin, then
 * logcap_text (flushed, NUL-terminated), then logcap_end. Lines below
 * the program's log level (tl_log_level) are not written. */
typedef struct {
    char *buf;
    size_t len;
    FILE *mem;
} logcap_t;

static inline void logcap_begin(logcap_t *c) {
    memset(c, 0, sizeof *c);
    c->mem = open_memstream(&c->buf, &c->len);
    assert_non_null(c->mem);
    ts_log_set_sink(c->mem);
}

static inline const char *logcap_text(logcap_t *c) {
    fflush(c->mem);
    return c->buf;
}

static inline void logcap_end(logcap_t *c) {
    ts_log_set_sink(NULL);
    fclose(c->mem);
    free(c->buf);
}

#endif
