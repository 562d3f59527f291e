/* test_gen.c - the generator is deterministic by seed and its records are valid input. */
#include "testlib.h"
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

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_same_seed_same_bytes))
