/*
 * test_firstpass.c - the customers consumer's wait for the poller's first
 * full pass (kafka/firstpass.h, issue 15): which state records end it.
 * No broker: ts_firstpass_record and ts_firstpass_done only.
 */
#include "testlib.h"
#include <stdio.h>
#include <string.h>

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

/* A first-pass tracker (group "g") over config(routing). */
typedef struct {
    ts_config_t *cfg;
    ts_firstpass_t *fp;
} fx_t;

static void fx_start(fx_t *f, const char *routing) {
    char err[256];
    f->cfg = config(routing);
    f->fp =
        ts_firstpass_new(&(ts_firstpass_opts_t){.cfg = f->cfg, .group_id = "g"}, err, sizeof err);
    assert_non_null(f->fp);
}

static void fx_stop(fx_t *f) {
    ts_firstpass_destroy(f->fp);
    ts_config_destroy(f->cfg);
}

static ts_err_t rec(ts_firstpass_t *fp, const char *account, const char *value) {
    char err[256];
    return ts_firstpass_record(fp, account, value, value ? strlen(value) : 0, err, sizeof err);
}

/* One state record and what the tracker says after it. */
typedef struct {
    const char *account, *value; /* value NULL: a tombstone */
    ts_err_t rc;                 /* what ts_firstpass_record returns */
    bool done;                   /* ts_firstpass_done after it */
} step_t;

/* A fresh tracker over config(routing) is not done; then each step in turn. */
static void run_steps(const char *routing, const step_t *steps, size_t n) {
    fx_t f;
    fx_start(&f, routing);
    assert_false(ts_firstpass_done(f.fp));
    for (size_t i = 0; i < n; i++) {
        const step_t *st = &steps[i];
        ts_err_t rc = rec(f.fp, st->account, st->value);
        if (rc != st->rc) fail_msg("step %zu (%s): rc %d, want %d", i, st->account, rc, st->rc);
        if (ts_firstpass_done(f.fp) != st->done)
            fail_msg("step %zu (%s): done %d, want %d", i, st->account, !st->done, st->done);
    }
    fx_stop(&f);
}

/* Every active account needs pass_at > 0; a watermark without a pass
 * (the poller stopped mid-pass) is not one. */
static void test_every_account_needs_a_pass(void **state) {
    (void)state;
    static const step_t steps[] = {
        /* pages committed, the pass not finished: watermark only */
        {"brand-a", "{\"v\":1,\"pass_at\":0,\"email\":{\"at\":5,\"ids\":[\"p\"]}}", TS_OK, false},
        {"brand-b", "{\"v\":1,\"email\":{\"at\":5,\"ids\":[]}}", TS_OK, false},
        {"brand-a", "{\"v\":1,\"pass_at\":1700000000000}", TS_OK, false},
        /* brand-c still has none */
        {"brand-b", "{\"v\":1,\"pass_at\":1700000000001,\"sms\":{\"at\":0,\"ids\":[]}}", TS_OK,
         false},
        /* another deployment's account counts for nothing */
        {"brand-z", "{\"v\":1,\"pass_at\":1700000000000}", TS_OK, false},
        /* a value that is not the poller's state keeps what was there */
        {"brand-c", "not json", TS_ERR_INVALID, false},
        {"brand-c", "{\"v\":1,\"pass_at\":1700000000002}", TS_OK, true},
        /* compaction keeps the last value: a later pass keeps it done */
        {"brand-c", "{\"v\":1,\"pass_at\":1800000000000}", TS_OK, true},
        /* a tombstone (the poller's state deleted) is no pass */
        {"brand-a", NULL, TS_OK, false},
    };
    run_steps("", steps, sizeof steps / sizeof steps[0]);
    ts_firstpass_destroy(NULL);
}

/* An account routing.only_accounts excludes is not waited for. */
static void test_only_active_accounts(void **state) {
    (void)state;
    static const step_t steps[] = {
        {"brand-a", "{\"v\":1,\"pass_at\":1700000000000}", TS_OK, false},
        {"brand-b", "{\"v\":1,\"pass_at\":1700000000000}", TS_OK, true},
    };
    run_steps("\"routing\":{\"only_accounts\":[\"brand-b\"]},", steps,
              sizeof steps / sizeof steps[0]);
}

/* The record the poller writes after a full pass ends the wait: one format. */
static void test_poller_state_ends_wait(void **state) {
    (void)state;
    fx_t f;
    fx_start(&f, "\"routing\":{\"only_accounts\":[\"brand-a\"]},");
    ts_firstpass_t *fp = f.fp;
    ts_supp_state_t st = {.pass_at = 1700000000123};
    ts_buf_t b = {0};
    ts_supp_state_write(&st, &b);
    assert_int_equal(rec(fp, "brand-a", b.data), TS_OK);
    assert_true(ts_firstpass_done(fp));
    st.pass_at = 0;
    b.len = 0;
    ts_supp_state_write(&st, &b);
    assert_int_equal(rec(fp, "brand-a", b.data), TS_OK);
    assert_false(ts_firstpass_done(fp));
    ts_buf_free(&b);
    fx_stop(&f);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_every_account_needs_a_pass),
             cmocka_unit_test(test_only_active_accounts),
             cmocka_unit_test(test_poller_state_ends_wait))
