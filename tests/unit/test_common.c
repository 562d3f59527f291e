/* test_common.c - ts_buf_t, the arena, reason names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tillstream/common.h"

static void test_buf_grows_and_stays_terminated(void **state) {
    (void)state;
    ts_buf_t b = TS_BUF_INIT;
    for (int i = 0; i < 1000; i++) assert_int_equal(ts_buf_printf(&b, "%d,", i), 0);
    assert_true(b.len > 3000);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "0,1,2,", 6);
    ts_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    ts_buf_free(&b);
}

static void test_arena_reuses_blocks_after_reset(void **state) {
    (void)state;
    ts_arena_t *a = ts_arena_new(64);
    char *s1 = ts_arena_strdup(a, "hello");
    assert_string_equal(s1, "hello");
    void *big = ts_arena_alloc(a, 1000); /* larger than a block */
    assert_non_null(big);
    assert_true(ts_arena_used(a) >= 1008);
    ts_arena_reset(a);
    assert_int_equal(ts_arena_used(a), 0);
    char *s2 = ts_arena_strdup(a, "world");
    assert_ptr_equal(s1, s2); /* same memory handed out again */
    ts_arena_destroy(a);
}

static void test_reason_names_round_trip(void **state) {
    (void)state;
    for (int r = 1; r < TS_REASON__COUNT; r++)
        assert_int_equal(ts_reason_parse(ts_reason_name((ts_reason_t)r)), r);
    assert_string_equal(ts_reason_name(TS_REASON_NO_HOME_OUTLET), "NO_HOME_OUTLET");
    assert_int_equal(ts_reason_parse("NOPE"), TS_REASON_NONE);
    assert_true(ts_err_retryable(TS_ERR_THROTTLED));
    assert_false(ts_err_retryable(TS_ERR_REJECTED));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_and_stays_terminated),
        cmocka_unit_test(test_arena_reuses_blocks_after_reset),
        cmocka_unit_test(test_reason_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
