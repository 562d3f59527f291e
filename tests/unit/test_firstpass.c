/*
 * test_firstpass.c - the customers consumer's wait for the poller's first
 * full pass (kafka/firstpass.h, issue 15): which state records end it.
 * No broker: ts_firstpass_record and ts_firstpass_done only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/firstpass.h"
#include "tillstream/config.h"
#include "tillstream/supp.h"

static ts_config_t *config(const char *routing) {
    char json[1024];
    snprintf(json, sizeof json,
             "{%s\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\"]},"
             "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]},"
             "{\"name\":\"brand-c\",\"api_key_env\":\"K\",\"outlets\":[\"301\"]}]}",
             routing);
    ts_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_OK);
    return cfg;
}

static ts_err_t rec(ts_firstpass_t *fp, const char *account, const char *value) {
    char err[256];
    return ts_firstpass_record(fp, account, value, value ? strlen(value) : 0, err, sizeof err);
}

/* Every active account needs pass_at > 0; a watermark without a pass
 * (the poller stopped mid-pass) is not one. */
static void test_every_account_needs_a_pass(void **state) {
    (void)state;
    ts_config_t *cfg = config("");
    char err[256];
    ts_firstpass_t *fp =
        ts_firstpass_new(&(ts_firstpass_opts_t){.cfg = cfg, .group_id = "g"}, err, sizeof err);
    assert_non_null(fp);
    assert_false(ts_firstpass_done(fp));
    /* pages committed, the pass not finished: watermark only */
    assert_int_equal(
        rec(fp, "brand-a", "{\"v\":1,\"pass_at\":0,\"email\":{\"at\":5,\"ids\":[\"p\"]}}"), TS_OK);
    assert_int_equal(rec(fp, "brand-b", "{\"v\":1,\"email\":{\"at\":5,\"ids\":[]}}"), TS_OK);
    assert_false(ts_firstpass_done(fp));
    assert_int_equal(rec(fp, "brand-a", "{\"v\":1,\"pass_at\":1700000000000}"), TS_OK);
    assert_int_equal(rec(fp, "brand-b",
                         "{\"v\":1,\"pass_at\":1700000000001,"
                         "\"sms\":{\"at\":0,\"ids\":[]}}"),
                     TS_OK);
    assert_false(ts_firstpass_done(fp)); /* brand-c still has none */
    /* another deployment's account counts for nothing */
    assert_int_equal(rec(fp, "brand-z", "{\"v\":1,\"pass_at\":1700000000000}"), TS_OK);
    assert_false(ts_firstpass_done(fp));
    /* a value that is not the poller's state keeps what was there */
    assert_int_equal(rec(fp, "brand-c", "not json"), TS_ERR_INVALID);
    assert_false(ts_firstpass_done(fp));
    assert_int_equal(rec(fp, "brand-c", "{\"v\":1,\"pass_at\":1700000000002}"), TS_OK);
    assert_true(ts_firstpass_done(fp));
    /* compaction keeps the last value: a later pass keeps it done */
    assert_int_equal(rec(fp, "brand-c", "{\"v\":1,\"pass_at\":1800000000000}"), TS_OK);
    assert_true(ts_firstpass_done(fp));
    /* a tombstone (the poller's state deleted) is no pass */
    assert_int_equal(rec(fp, "brand-a", NULL), TS_OK);
    assert_false(ts_firstpass_done(fp));
    ts_firstpass_destroy(fp);
    ts_firstpass_destroy(NULL);
    ts_config_destroy(cfg);
}

/* An account routing.only_accounts excludes is not waited for. */
static void test_only_active_accounts(void **state) {
    (void)state;
    ts_config_t *cfg = config("\"routing\":{\"only_accounts\":[\"brand-b\"]},");
    char err[256];
    ts_firstpass_t *fp =
        ts_firstpass_new(&(ts_firstpass_opts_t){.cfg = cfg, .group_id = "g"}, err, sizeof err);
    assert_non_null(fp);
    assert_false(ts_firstpass_done(fp));
    assert_int_equal(rec(fp, "brand-a", "{\"v\":1,\"pass_at\":1700000000000}"), TS_OK);
    assert_false(ts_firstpass_done(fp));
    assert_int_equal(rec(fp, "brand-b", "{\"v\":1,\"pass_at\":1700000000000}"), TS_OK);
    assert_true(ts_firstpass_done(fp));
    ts_firstpass_destroy(fp);
    ts_config_destroy(cfg);
}

/* The record the poller writes after a full pass ends the wait: one format. */
static void test_poller_state_ends_wait(void **state) {
    (void)state;
    ts_config_t *cfg = config("\"routing\":{\"only_accounts\":[\"brand-a\"]},");
    char err[256];
    ts_firstpass_t *fp =
        ts_firstpass_new(&(ts_firstpass_opts_t){.cfg = cfg, .group_id = "g"}, err, sizeof err);
    assert_non_null(fp);
    ts_supp_state_t st = {.pass_at = 1700000000123};
    ts_buf_t b = {0};
    ts_supp_state_write(&st, &b);
    assert_int_equal(ts_firstpass_record(fp, "brand-a", b.data, b.len, err, sizeof err), TS_OK);
    assert_true(ts_firstpass_done(fp));
    st.pass_at = 0;
    b.len = 0;
    ts_supp_state_write(&st, &b);
    assert_int_equal(ts_firstpass_record(fp, "brand-a", b.data, b.len, err, sizeof err), TS_OK);
    assert_false(ts_firstpass_done(fp));
    ts_buf_free(&b);
    ts_firstpass_destroy(fp);
    ts_config_destroy(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_account_needs_a_pass),
        cmocka_unit_test(test_only_active_accounts),
        cmocka_unit_test(test_poller_state_ends_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
