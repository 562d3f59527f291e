/* test_ratelimit.c - burst and steady buckets, header feedback, Retry-After (fake clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tillstream/ratelimit.h"

static void test_burst_then_steady(void **state) {
    (void)state;
    ts_ratelimit_t rl;
    int64_t t = 1000000;
    ts_ratelimit_init(&rl, 10, 150, t);
    for (int i = 0; i < 10; i++) assert_int_equal(ts_ratelimit_acquire(&rl, t), 0);
    int64_t w = ts_ratelimit_acquire(&rl, t);
    assert_true(w > 0 && w <= 101); /* one burst token refills in 100 ms */
    /* over a long run the steady window (150/min) is the limit */
    int sent = 10;
    for (int64_t now = t; now < t + 120000; now += 10)
        if (ts_ratelimit_acquire(&rl, now) == 0) sent++;
    /* 150 at start (bucket full) + 2.5/s for 120 s = 450 at most */
    assert_true(sent <= 450);
    assert_true(sent >= 440);
}

static void test_retry_after_blocks(void **state) {
    (void)state;
    ts_ratelimit_t rl;
    ts_ratelimit_init(&rl, 10, 150, 0);
    ts_ratelimit_block(&rl, 5000, 7);
    assert_int_equal(ts_ratelimit_acquire(&rl, 5000), 7000);
    assert_true(ts_ratelimit_acquire(&rl, 11999) > 0);
    /* after the block, buckets refill from empty: not an instant burst */
    assert_true(ts_ratelimit_acquire(&rl, 12000) > 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 12500), 0);
}

static void test_headers_tighten(void **state) {
    (void)state;
    ts_ratelimit_t rl;
    ts_ratelimit_init(&rl, 10, 150, 0);
    ts_ratelimit_observe(&rl, 0, 2, 30);
    assert_int_equal(ts_ratelimit_acquire(&rl, 0), 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 0), 0);
    assert_true(ts_ratelimit_acquire(&rl, 0) > 0); /* Klaviyo said only 2 remain */
    ts_ratelimit_observe(&rl, 100, 0, 30);
    assert_true(ts_ratelimit_acquire(&rl, 29000) > 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 30100 + 400), 0);
    ts_ratelimit_observe(&rl, 40000, -1, -1); /* absent headers change nothing */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_steady),
        cmocka_unit_test(test_retry_after_blocks),
        cmocka_unit_test(test_headers_tighten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
