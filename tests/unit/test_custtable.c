/* test_custtable.c - put/get/replace/delete, growth, deletion keeps probe runs intact. */
#include "testlib.h"
#include <stdio.h>
#include <string.h>

#include "tillstream/custtable.h"

static void test_put_get_replace_delete(void **state) {
    (void)state;
    ts_custtable_t *t = ts_custtable_new(0);
    ts_customer_t c = {0};
    c.customer_id = "C1";
    c.email = "a@b.co";
    c.home_outlet_id = "101";
    assert_int_equal(ts_custtable_put(t, &c), TS_OK);
    ts_customer_ref_t r;
    assert_true(ts_custtable_get(t, "C1", &r));
    assert_string_equal(r.email, "a@b.co");
    assert_string_equal(r.home_outlet_id, "101");
    assert_null(r.phone);
    c.home_outlet_id = "201";
    c.phone = "+61412345678";
    assert_int_equal(ts_custtable_put(t, &c), TS_OK);
    assert_int_equal(ts_custtable_size(t), 1);
    assert_true(ts_custtable_get(t, "C1", &r));
    assert_string_equal(r.home_outlet_id, "201");
    assert_string_equal(r.phone, "+61412345678");
    assert_false(ts_custtable_get(t, "C2", &r));
    assert_true(ts_custtable_delete(t, "C1", 2));
    assert_false(ts_custtable_delete(t, "C1", 2));
    assert_false(ts_custtable_get(t, "C1", &r));
    c.customer_id = NULL;
    assert_int_equal(ts_custtable_put(t, &c), TS_ERR_INVALID);
    ts_custtable_destroy(t);
}

static void test_growth_and_deletes(void **state) {
    (void)state;
    ts_custtable_t *t = ts_custtable_new(0);
    char id[32], email[48];
    ts_customer_t c = {0};
    size_t mem0 = ts_custtable_memory_bytes(t);
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "C%d", i);
        snprintf(email, sizeof email, "c%d@example.com", i);
        c.customer_id = id;
        c.email = email;
        c.home_outlet_id = i % 3 ? "101" : NULL;
        assert_int_equal(ts_custtable_put(t, &c), TS_OK);
    }
    assert_true(ts_custtable_memory_bytes(t) > mem0);
    for (int i = 0; i < 100000; i += 2) {
        snprintf(id, sizeof id, "C%d", i);
        assert_true(ts_custtable_delete(t, id, strlen(id)));
    }
    assert_int_equal(ts_custtable_size(t), 50000);
    ts_customer_ref_t r;
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "C%d", i);
        bool found = ts_custtable_get(t, id, &r);
        assert_int_equal(found, i % 2 == 1);
        if (found) {
            snprintf(email, sizeof email, "c%d@example.com", i);
            assert_string_equal(r.email, email);
            if (i % 3)
                assert_string_equal(r.home_outlet_id, "101");
            else
                assert_null(r.home_outlet_id);
        }
    }
    ts_custtable_destroy(t);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_put_get_replace_delete),
             cmocka_unit_test(test_growth_and_deletes))
