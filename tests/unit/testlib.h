/*
 * testlib.h - how every unit test program (tests/unit/test_*.c) starts
 * and ends: the cmocka headers in the order cmocka needs them, and
 * TS_TEST_MAIN, the program's main. Test-only; header-only.
 */
#ifndef TS_TESTLIB_H
#define TS_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* main(): runs the cmocka_unit_test(...) entries given after `setup` and
 * `teardown` as one group named "tests"; the group setup runs before the
 * first test and the teardown after the last (NULL: none). Process-wide
 * state (curl_global_init, the log level) belongs in the group setup, so
 * that every program's main is this one line. Returns what
 * cmocka_run_group_tests returns (the number of failed tests). */
#define TS_TEST_MAIN(setup, teardown, ...)                                                         \
    int main(void) {                                                                               \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                           \
        return cmocka_run_group_tests(tests, setup, teardown);                                     \
    }

#endif
