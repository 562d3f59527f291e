/* test_offsets.c - highest contiguous completed offset, gaps, revoke, late completions. */
#include "testlib.h"

#include "tillstream/offsets.h"

static int released;
static void rel(void *u, void *o) {
    (void)u;
    (void)o;
    released++;
}

static void test_out_of_order_completion(void **state) {
    (void)state;
    ts_offsets_t *t = ts_offsets_new(100);
    uint64_t tok[5];
    int64_t store;
    int dummy;
    assert_int_equal(ts_offsets_assign(t, 2), TS_OK);
    int64_t offs[5] = {10, 11, 15, 16, 20}; /* gaps: compaction */
    for (int i = 0; i < 5; i++)
        assert_int_equal(ts_offsets_track(t, 2, offs[i], &dummy, &tok[i]), TS_OK);
    assert_int_equal(ts_offsets_track(t, 2, 20, &dummy, &tok[0]),
                     TS_ERR_INVALID); /* not increasing */
    released = 0;
    assert_true(ts_offsets_done(t, tok[2], &store, rel, NULL));
    assert_int_equal(store, -1); /* 10 and 11 still open */
    assert_true(ts_offsets_done(t, tok[0], &store, rel, NULL));
    assert_int_equal(store, 11);
    assert_false(ts_offsets_done(t, tok[0], &store, rel, NULL)); /* twice: ignored */
    assert_true(ts_offsets_done(t, tok[1], &store, rel, NULL));
    assert_int_equal(store, 16); /* 11 done, and 15 was already: next to read is 16 */
    assert_int_equal(released, 3);
    assert_int_equal(ts_offsets_inflight(t), 2);
    assert_true(ts_offsets_done(t, tok[4], &store, rel, NULL));
    assert_int_equal(store, -1);
    assert_true(ts_offsets_done(t, tok[3], &store, rel, NULL));
    assert_int_equal(store, 21);
    assert_int_equal(ts_offsets_committed(t, 2), 21);
    assert_int_equal(ts_offsets_inflight(t), 0);
    ts_offsets_destroy(t);
}

static void test_revoke_ignores_late_completions(void **state) {
    (void)state;
    ts_offsets_t *t = ts_offsets_new(100);
    uint64_t a, b, c;
    int64_t store;
    int u1, u2;
    ts_offsets_assign(t, 0);
    ts_offsets_track(t, 0, 5, &u1, &a);
    ts_offsets_track(t, 0, 6, &u2, &b);
    released = 0;
    ts_offsets_revoke(t, 0, rel, NULL);
    assert_int_equal(released, 2); /* both handed back for cleanup */
    assert_false(ts_offsets_done(t, a, &store, rel, NULL));
    assert_int_equal(store, -1);
    ts_offsets_assign(t, 0); /* re-assigned: a new generation */
    assert_int_equal(ts_offsets_track(t, 0, 5, &u1, &c), TS_OK);
    assert_false(ts_offsets_done(t, b, &store, rel, NULL)); /* the old token cannot commit */
    assert_null(ts_offsets_user(t, a));
    assert_ptr_equal(ts_offsets_user(t, c), &u1);
    assert_true(ts_offsets_done(t, c, &store, NULL, NULL));
    assert_int_equal(store, 6);
    ts_offsets_destroy(t);
}

static void test_bounded_and_growing(void **state) {
    (void)state;
    ts_offsets_t *t = ts_offsets_new(1000);
    uint64_t tok;
    int64_t store;
    int u;
    ts_offsets_assign(t, 1);
    ts_offsets_assign(t, 3);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ts_offsets_track(t, i % 2 ? 1 : 3, i, &u, &tok), TS_OK);
    assert_true(ts_offsets_full(t));
    assert_int_equal(ts_offsets_track(t, 1, 5000, &u, &tok), TS_ERR_FULL);
    assert_int_equal(ts_offsets_track(t, 7, 1, &u, &tok), TS_ERR_INVALID); /* not assigned */
    /* 100k records through one partition in order, with wrap-around */
    ts_offsets_revoke(t, 1, NULL, NULL);
    ts_offsets_revoke(t, 3, NULL, NULL);
    ts_offsets_assign(t, 1);
    uint64_t pending[10];
    for (int64_t o = 0; o < 100000; o++) {
        assert_int_equal(ts_offsets_track(t, 1, o, &u, &pending[o % 10]), TS_OK);
        if (o % 10 == 9)
            for (int k = 9; k >= 0; k--) ts_offsets_done(t, pending[k], &store, NULL, NULL);
    }
    assert_int_equal(ts_offsets_committed(t, 1), 100000);
    assert_int_equal(ts_offsets_inflight(t), 0);
    ts_offsets_destroy(t);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_out_of_order_completion),
             cmocka_unit_test(test_revoke_ignores_late_completions),
             cmocka_unit_test(test_bounded_and_growing))
