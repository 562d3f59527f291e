/* test_route.c - the Home Outlet rule, default outlet and account subsets. */
#include "testlib.h"
#include <stdio.h>
#include <string.h>

#include "tillstream/route.h"

static ts_config_t *load(const char *routing) {
    char json[1024], err[256];
    snprintf(json, sizeof json,
             "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]},"
             "{\"name\":\"b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]}],\"routing\":%s}",
             routing);
    ts_config_t *cfg = NULL;
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_OK);
    return cfg;
}

static void test_routes_by_home_outlet(void **state) {
    (void)state;
    ts_config_t *cfg = load("{}");
    ts_router_t *r = ts_router_new(cfg, NULL, 0);
    ts_route_t rt = ts_route_lookup(r, "102");
    assert_int_equal(rt.status, TS_ROUTE_OK);
    assert_int_equal(rt.account, 0);
    assert_string_equal(rt.outlet, "102");
    assert_false(rt.defaulted);
    rt = ts_route_lookup(r, "201");
    assert_int_equal(rt.account, 1);
    rt = ts_route_lookup(r, "999");
    assert_int_equal(rt.status, TS_ROUTE_DEAD_LETTER);
    assert_int_equal(rt.reason, TS_REASON_UNMAPPED_OUTLET);
    assert_int_equal(rt.account, -1);
    rt = ts_route_lookup(r, NULL);
    assert_int_equal(rt.reason, TS_REASON_NO_HOME_OUTLET);
    rt = ts_route_lookup(r, "");
    assert_int_equal(rt.reason, TS_REASON_NO_HOME_OUTLET);
    ts_router_destroy(r);
    ts_config_destroy(cfg);
}

static void test_default_online_outlet(void **state) {
    (void)state;
    ts_config_t *cfg = load("{\"default_online_outlet\":\"201\"}");
    ts_router_t *r = ts_router_new(cfg, NULL, 0);
    ts_route_t rt = ts_route_lookup(r, NULL);
    assert_int_equal(rt.status, TS_ROUTE_OK);
    assert_int_equal(rt.account, 1);
    assert_string_equal(rt.outlet, "201");
    assert_true(rt.defaulted);
    /* the default is for a missing Home Outlet only, never for a wrong one */
    rt = ts_route_lookup(r, "999");
    assert_int_equal(rt.reason, TS_REASON_UNMAPPED_OUTLET);
    ts_router_destroy(r);
    ts_config_destroy(cfg);
}

static void test_account_subset_ignores_others(void **state) {
    (void)state;
    ts_config_t *cfg = load("{\"only_accounts\":[\"b\"]}");
    ts_router_t *r = ts_router_new(cfg, NULL, 0);
    ts_route_t rt = ts_route_lookup(r, "101");
    assert_int_equal(rt.status, TS_ROUTE_OTHER_ACCOUNT);
    assert_int_equal(rt.account, 0);
    rt = ts_route_lookup(r, "201");
    assert_int_equal(rt.status, TS_ROUTE_OK);
    rt = ts_route_lookup(r, "999"); /* unmapped is still a dead letter */
    assert_int_equal(rt.status, TS_ROUTE_DEAD_LETTER);
    ts_router_destroy(r);
    ts_config_destroy(cfg);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_routes_by_home_outlet),
             cmocka_unit_test(test_default_online_outlet),
             cmocka_unit_test(test_account_subset_ignores_others))
