/* test_gen.c - the generator is deterministic by seed and its records are valid input. */
#include "testlib.h"
#include <stdint.h>
#include <string.h>

#include "tillstream/decode.h"
#include "tillstream/gen.h"

static const char *const OUT[] = {"101", "102", "201"};

static void run(uint64_t seed, ts_buf_t *all) {
    ts_gen_opts_t o = {seed, 50, OUT, 3, 0.2, 0.05, 0.05};
    ts_gen_t *g = ts_gen_new(&o);
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT;
    ts_arena_t *a = ts_arena_new(0);
    char err[256];
    for (size_t i = 0; i < 50; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_customer(g, i, &k, &v);
        ts_customer_t c;
        ts_arena_reset(a);
        if (ts_decode_customer_json(v.data, v.len, a, &c, err, sizeof err))
            fail_msg("%s: %s", err, v.data);
        assert_string_equal(c.customer_id, k.data);
        ts_buf_append(all, v.data, v.len);
    }
    for (int i = 0; i < 300; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        ts_order_t o2;
        ts_arena_reset(a);
        if (ts_decode_order_json(v.data, v.len, a, &o2, err, sizeof err))
            fail_msg("%s: %s", err, v.data);
        assert_string_equal(o2.order_id, k.data);
        assert_true(o2.n_lines >= 1);
        ts_buf_append(all, v.data, v.len);
    }
    const ts_gen_counts_t *c = ts_gen_counts(g);
    assert_int_equal(c->customers, 50);
    assert_int_equal(c->orders, 300);
    assert_true(c->no_home_outlet > 0 && c->voided > 0 && c->refunded > 0);
    ts_arena_destroy(a);
    ts_buf_free(&k);
    ts_buf_free(&v);
    ts_gen_destroy(g);
}

static void test_same_seed_same_bytes(void **state) {
    (void)state;
    ts_buf_t a = TS_BUF_INIT, b = TS_BUF_INIT, c = TS_BUF_INIT;
    run(42, &a);
    run(42, &b);
    run(43, &c);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    ts_buf_free(&a);
    ts_buf_free(&b);
    ts_buf_free(&c);
}

/* A long run (a million orders: a soak of 1,000 orders/s for 17 minutes) stays
 * inside Klaviyo's accepted window (at most one year ahead): order times
 * cycle instead of running ~37 s further ahead per order, which put every
 * order past ~930,000 a year into the future (a DECODE_ERROR each). */
static void test_order_times_stay_in_klaviyos_window(void **state) {
    (void)state;
    ts_gen_opts_t o = {7, 50, OUT, 3, 0.2, 0.05, 0.05};
    ts_gen_t *g = ts_gen_new(&o);
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT;
    ts_arena_t *a = ts_arena_new(0);
    char err[256];
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < 1000000; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        if (i % 1000 != 999) continue; /* decode a sample: 1,000 orders */
        ts_order_t ord;
        ts_arena_reset(a);
        if (ts_decode_order_json(v.data, v.len, a, &ord, err, sizeof err))
            fail_msg("%s: %s", err, v.data);
        if (ord.occurred_at_ms < lo) lo = ord.occurred_at_ms;
        if (ord.occurred_at_ms > hi) hi = ord.occurred_at_ms;
    }
    /* the window's far edge moves with the wall clock, from today's date */
    assert_true(lo >= 1793491200000LL);                          /* 2026-11-01 */
    assert_true(hi < 1793491200000LL + (365LL - 90) * 86400000); /* Klaviyo: a year ahead */
    ts_arena_destroy(a);
    ts_buf_free(&k);
    ts_buf_free(&v);
    ts_gen_destroy(g);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_same_seed_same_bytes),
             cmocka_unit_test(test_order_times_stay_in_klaviyos_window))
