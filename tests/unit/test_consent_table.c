/* test_consent_table.c - the decision hook over mapped customers: state
 * carried per (account, customer), suppressions keyed by POS id, email or
 * phone, malformed and unknown-account suppression records, the
 * customers.sync = consented mode, the state-changed flag and the
 * per-account metrics. */
#include "testlib.h"
#include <stdio.h>
#include <string.h>

#include "config_testlib.h"
#include "map_testlib.h"
#include "tillstream/consent_table.h"
#include "tillstream/decode.h"

static const char *CONFIG =
    "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\"]},"
    "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]}]%s}";

typedef struct {
    tm_map_t map;
    ts_metrics_t *metrics;
    ts_consent_table_t *t;
    bool changed;
    int64_t offset; /* of the next record decided (-1: none) */
    char err[256];  /* of the last suppression() */
} fx_t;

static void fx_init(fx_t *f, const char *extra) {
    char json[1024], err[256];
    snprintf(json, sizeof json, CONFIG, extra);
    memset(f, 0, sizeof *f);
    tm_map_parse(&f->map, json);
    f->metrics = ts_metrics_new();
    f->t = ts_consent_table_new(f->map.cfg, f->metrics, err, sizeof err);
    assert_non_null(f->t);
    f->offset = -1;
}

static void fx_free(fx_t *f) {
    ts_consent_table_destroy(f->t);
    ts_metrics_destroy(f->metrics);
    tm_map_stop(&f->map);
}

/* decodes, maps and decides one customer line with these options */
static ts_mapped_t *decide_opts(fx_t *f, const char *json, ts_consent_opts_t o) {
    char err[256];
    ts_customer_t c;
    ts_arena_reset(f->map.arena);
    if (ts_decode_customer_json(json, strlen(json), f->map.arena, &c, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(ts_map_customer(f->map.mapper, &c, &f->map.m), TS_OK);
    o.now = ts_now_wall_ms();
    assert_int_equal(
        ts_consent_table_decide(f->t, &c, 1700000000000LL, f->offset, &o, &f->map.m, &f->changed),
        TS_OK);
    return &f->map.m;
}

/* the same, as a live member decides */
static ts_mapped_t *decide(fx_t *f, const char *json) {
    return decide_opts(f, json, (ts_consent_opts_t){0});
}

/* One suppression record into the table: its result, the error in f->err. */
static ts_err_t suppression(fx_t *f, const char *json) {
    f->err[0] = '\0';
    return ts_consent_table_suppression(f->t, json, strlen(json), f->err, sizeof f->err);
}

static double metric(fx_t *f, const char *name, const char *labels) {
    return ts_metric_value(ts_metrics_counter(f->metrics, name, "", labels));
}

static void test_state_across_records_and_accounts(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    const char *a1 = "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"101\","
                     "\"email_consent\":true}";
    ts_mapped_t *m = decide(&f, a1);
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_int_equal(m->consent[TS_CONSENT_EMAIL].action, TS_CONSENT_SUBSCRIBE);
    assert_true(f.changed);
    m = decide(&f, a1);
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    assert_true(m->send_profile); /* the profile is still imported */
    assert_false(f.changed);
    /* same customer id, other account: a state of its own */
    m = decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"201\","
                   "\"email_consent\":true}");
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_int_equal(ts_consent_table_size(f.t), 2);
    const ts_consent_state_t *st = ts_consent_table_get(f.t, 0, "C1");
    assert_non_null(st);
    assert_int_equal(st->ch[TS_CONSENT_EMAIL].consent, TS_TRI_TRUE);
    assert_int_equal(st->ch[TS_CONSENT_EMAIL].consent_at, 1700000000000LL); /* record time */
    assert_null(ts_consent_table_get(f.t, 0, "C2"));
    assert_true(metric(&f, "tillstream_subscriptions_sent_total",
                       "account=\"brand-a\",channel=\"email\",consent=\"SUBSCRIBED\"") == 1);
    assert_true(metric(&f, "tillstream_subscriptions_sent_total",
                       "account=\"brand-b\",channel=\"email\",consent=\"SUBSCRIBED\"") == 1);
    assert_true(metric(&f, "tillstream_subscriptions_unchanged_total",
                       "account=\"brand-a\",channel=\"email\"") == 1);
    /* restore: put replaces the state */
    ts_consent_state_t fresh = {0};
    assert_int_equal(ts_consent_table_put(f.t, 0, "C1", &fresh), TS_OK);
    m = decide(&f, a1);
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    fx_free(&f);
}

static void test_suppressions_by_id_email_phone(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    static const char *const sup[] = {
        "{\"account\":\"brand-a\",\"channel\":\"email\",\"reason\":\"UNSUBSCRIBE\","
        "\"timestamp\":\"2026-06-01T00:00:00+00:00\",\"external_id\":\"C1\"}",
        "{\"account\":\"brand-a\",\"channel\":\"email\",\"reason\":\"SPAM_COMPLAINT\","
        "\"timestamp\":1780272000000,\"email\":\" B@X.co \",\"external_id\":null}",
        "{\"account\":\"brand-a\",\"channel\":\"sms\",\"reason\":\"UNSUBSCRIBE\","
        "\"timestamp\":\"2026-06-01T00:00:00Z\",\"phone_number\":\"+61412555000\"}"};
    for (size_t i = 0; i < 3; i++) assert_int_equal(suppression(&f, sup[i]), TS_OK);
    ts_mapped_t *m =
        decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":"
                   "\"101\",\"email_consent\":true,\"updated_at\":\"2026-07-01T00:00:00Z\"}");
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    assert_int_equal(m->consent[TS_CONSENT_EMAIL].action, TS_CONSENT_BLOCKED);
    assert_int_equal(m->consent[TS_CONSENT_EMAIL].blocked_by, TS_SUPPR_UNSUBSCRIBE);
    m = decide(&f, "{\"customer_id\":\"C2\",\"email\":\"b@x.co\",\"phone\":\"+61 412 555 000\","
                   "\"home_outlet_id\":\"101\",\"email_consent\":true,\"sms_consent\":true}");
    assert_int_equal(m->consent[TS_CONSENT_EMAIL].blocked_by, TS_SUPPR_SPAM_COMPLAINT);
    assert_int_equal(m->consent[TS_CONSENT_SMS].action, TS_CONSENT_BLOCKED);
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    assert_int_equal(m->sms_marketing, TS_SUB_KEEP);
    /* the suppression of another account does not apply */
    m = decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"201\","
                   "\"email_consent\":true}");
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_true(metric(&f, "tillstream_subscriptions_blocked_total",
                       "account=\"brand-a\",channel=\"sms\",reason=\"UNSUBSCRIBE\"") == 1);
    assert_true(metric(&f, "tillstream_subscriptions_blocked_total",
                       "account=\"brand-a\",channel=\"email\",reason=\"SPAM_COMPLAINT\"") == 1);
    /* an opt-in at the till after the suppression re-subscribes, counted */
    m = decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"101\","
                   "\"email_consent\":true,\"email_consent_at\":\"2026-08-01T00:00:00Z\"}");
    assert_int_equal(m->consent[TS_CONSENT_EMAIL].action, TS_CONSENT_REOPTIN);
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_true(metric(&f, "tillstream_subscriptions_reoptin_total",
                       "account=\"brand-a\",channel=\"email\"") == 1);
    fx_free(&f);
}

/* A record re-read below the state's offset (after a crash or a rebalance,
 * the state restored is ahead of it) was decided already: no change is sent
 * again, and later records decide as usual. */
static void test_offset_fence(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    const char *on = "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"101\","
                     "\"email_consent\":true}";
    const char *off = "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":\"101\","
                      "\"email_consent\":false}";
    f.offset = 10;
    assert_int_equal(decide(&f, on)->email_marketing, TS_SUB_SUBSCRIBE);
    f.offset = 15;
    assert_int_equal(decide(&f, off)->email_marketing, TS_SUB_UNSUBSCRIBE);
    assert_int_equal(ts_consent_table_get(f.t, 0, "C1")->next_offset, 16);
    /* re-read: offsets 10..15 again, against the state of offset 15 */
    f.offset = 10;
    ts_mapped_t *m = decide(&f, on);
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    assert_true(m->send_profile);
    assert_false(f.changed);
    f.offset = 15;
    assert_int_equal(decide(&f, off)->email_marketing, TS_SUB_KEEP);
    f.offset = 16; /* new records decide again */
    assert_int_equal(decide(&f, on)->email_marketing, TS_SUB_SUBSCRIBE);
    assert_int_equal(ts_consent_table_get(f.t, 0, "C1")->next_offset, 17);
    fx_free(&f);
}

static void test_bad_suppression_records(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    static const struct {
        const char *json, *want;
        ts_err_t rc;
    } bad[] = {
        {"[1]", "not a JSON object", TS_ERR_INVALID},
        {"{\"channel\":\"email\",\"reason\":\"UNSUBSCRIBE\",\"timestamp\":1,\"external_id\":\"C\"}",
         "account: required", TS_ERR_INVALID},
        {"{\"account\":\"brand-a\",\"channel\":\"push\",\"reason\":\"X\",\"timestamp\":1}",
         "channel", TS_ERR_INVALID},
        {"{\"account\":\"brand-a\",\"channel\":\"email\",\"timestamp\":1,\"external_id\":\"C\"}",
         "reason: required", TS_ERR_INVALID},
        {"{\"account\":\"brand-a\",\"channel\":\"email\",\"reason\":\"UNSUBSCRIBE\","
         "\"timestamp\":\"yesterday\",\"external_id\":\"C\"}",
         "timestamp", TS_ERR_INVALID},
        {"{\"account\":\"brand-a\",\"channel\":\"sms\",\"reason\":\"UNSUBSCRIBE\",\"timestamp\":1,"
         "\"email\":\"a@x.co\"}",
         "phone_number", TS_ERR_INVALID},
        {"{\"account\":\"brand-z\",\"channel\":\"email\",\"reason\":\"UNSUBSCRIBE\",\"timestamp\":"
         "1,"
         "\"external_id\":\"C\"}",
         "brand-z", TS_ERR_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(suppression(&f, bad[i].json), bad[i].rc);
        if (!strstr(f.err, bad[i].want)) fail_msg("\"%s\" lacks \"%s\"", f.err, bad[i].want);
    }
    fx_free(&f);
}

static void test_sync_consented(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, ",\"customers\":{\"sync\":\"consented\"}");
    ts_mapped_t *m = decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"home_outlet_id\":"
                                "\"101\",\"email_consent\":null}");
    assert_string_equal(m->skipped, "NOT_CONSENTED");
    assert_false(m->send_profile);
    m = decide(&f, "{\"customer_id\":\"C2\",\"email\":\"b@x.co\",\"home_outlet_id\":\"101\","
                   "\"email_consent\":false}");
    assert_null(m->skipped); /* the opt-out is still sent, without a profile */
    assert_false(m->send_profile);
    assert_int_equal(m->email_marketing, TS_SUB_UNSUBSCRIBE);
    m = decide(&f, "{\"customer_id\":\"C2\",\"email\":\"b@x.co\",\"home_outlet_id\":\"101\","
                   "\"email_consent\":false}");
    assert_string_equal(m->skipped, "NOT_CONSENTED");
    m = decide(&f, "{\"customer_id\":\"C3\",\"phone\":\"+61412555000\",\"home_outlet_id\":\"101\","
                   "\"sms_consent\":true}");
    assert_null(m->skipped);
    assert_true(m->send_profile);
    assert_int_equal(m->sms_marketing, TS_SUB_SUBSCRIBE);
    fx_free(&f);
    /* the config key is validated */
    char json[512];
    snprintf(json, sizeof json, CONFIG, ",\"customers\":{\"sync\":\"some\"}");
    tc_config_error(json, "customers.sync");
}

static void test_not_decided_when_not_sent(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    /* dead letter (no identifier): no state is created */
    ts_mapped_t *m =
        decide(&f, "{\"customer_id\":\"C1\",\"home_outlet_id\":\"101\",\"email_consent\":true}");
    assert_int_equal(m->dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    assert_int_equal(ts_consent_table_size(f.t), 0);
    /* many customers: the table grows and keeps every state */
    char line[256];
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof line,
                 "{\"customer_id\":\"K%d\",\"email\":\"k%d@x.co\",\"home_outlet_id\":\"101\","
                 "\"email_consent\":true}",
                 i, i);
        decide(&f, line);
    }
    assert_int_equal(ts_consent_table_size(f.t), 5000);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(line, sizeof line, "K%d", i);
        const ts_consent_state_t *st = ts_consent_table_get(f.t, 0, line);
        assert_non_null(st);
        assert_int_equal(st->ch[TS_CONSENT_EMAIL].consent, TS_TRI_TRUE);
    }
    fx_free(&f);
    ts_consent_table_destroy(NULL);
}

/* 50,000 states in two accounts (the same customer id in both is two
 * entries): every one is read back as written across 7 growths of the slots
 * and 13 entry chunks, an entry read early stays where it was, and an id
 * never put is absent. */
static void test_table_many_entries_stable(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    char id[32];
    const ts_consent_state_t *first = NULL;
    for (int i = 0; i < 25000; i++) {
        snprintf(id, sizeof id, "C%d", i);
        for (int a = 0; a < 2; a++) {
            ts_consent_state_t st = {.next_offset = 1 + i * 2 + a};
            st.ch[TS_CONSENT_EMAIL].consent = a ? TS_TRI_FALSE : TS_TRI_TRUE;
            assert_int_equal(ts_consent_table_put(f.t, a, id, &st), TS_OK);
        }
        if (i == 0) first = ts_consent_table_get(f.t, 1, "C0");
    }
    assert_int_equal(ts_consent_table_size(f.t), 50000);
    assert_ptr_equal(ts_consent_table_get(f.t, 1, "C0"), first);
    assert_int_equal(first->next_offset, 2);
    for (int i = 0; i < 25000; i++) {
        snprintf(id, sizeof id, "C%d", i);
        for (int a = 0; a < 2; a++) {
            const ts_consent_state_t *st = ts_consent_table_get(f.t, a, id);
            assert_non_null(st);
            assert_int_equal(st->next_offset, 1 + i * 2 + a);
            assert_int_equal(st->ch[TS_CONSENT_EMAIL].consent, a ? TS_TRI_FALSE : TS_TRI_TRUE);
        }
    }
    /* put over an existing entry replaces its state, not adds one */
    ts_consent_state_t st = {.next_offset = 7};
    assert_int_equal(ts_consent_table_put(f.t, 0, "C42", &st), TS_OK);
    assert_int_equal(ts_consent_table_size(f.t), 50000);
    assert_int_equal(ts_consent_table_get(f.t, 0, "C42")->next_offset, 7);
    assert_null(ts_consent_table_get(f.t, 0, "C25000"));
    assert_null(ts_consent_table_get(f.t, 0, "C42x"));
    fx_free(&f);
}

/* A plain replay (no --replay-consent) decides nothing, and adds no entry
 * to the table nor changes one; a --replay-consent replay keeps state as a
 * live member does. */
static void test_plain_replay_keeps_no_state(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    decide(&f, "{\"customer_id\":\"L1\",\"email\":\"l1@x.co\",\"home_outlet_id\":\"101\","
               "\"email_consent\":true}");
    assert_int_equal(ts_consent_table_size(f.t), 1);
    const ts_consent_state_t *live = ts_consent_table_get(f.t, 0, "L1");
    ts_consent_state_t was = *live;
    const char *lines[] = {"{\"customer_id\":\"R1\",\"email\":\"r1@x.co\",\"home_outlet_id\":"
                           "\"101\",\"email_consent\":true}",
                           "{\"customer_id\":\"L1\",\"email\":\"l1@x.co\",\"home_outlet_id\":"
                           "\"101\",\"email_consent\":false}"};
    for (int replay_consent = 0; replay_consent < 2; replay_consent++) {
        for (size_t i = 0; i < 2; i++) {
            f.changed = true;
            ts_mapped_t *m =
                decide_opts(&f, lines[i],
                            (ts_consent_opts_t){.replay = true, .replay_consent = replay_consent});
            if (!replay_consent) {
                assert_false(f.changed);
                assert_int_equal(m->consent[TS_CONSENT_EMAIL].action, TS_CONSENT_NOTHING);
                assert_int_equal(m->email_marketing, TS_SUB_KEEP);
            } else {
                assert_true(f.changed);
            }
        }
        if (!replay_consent) {
            assert_int_equal(ts_consent_table_size(f.t), 1); /* no entry for R1 */
            assert_null(ts_consent_table_get(f.t, 0, "R1"));
            assert_memory_equal(ts_consent_table_get(f.t, 0, "L1"), &was, sizeof was);
        }
    }
    /* --replay-consent: R1 subscribed, L1 unsubscribed, both kept */
    assert_int_equal(ts_consent_table_size(f.t), 2);
    assert_int_equal(ts_consent_table_get(f.t, 0, "R1")->ch[TS_CONSENT_EMAIL].consent, TS_TRI_TRUE);
    assert_int_equal(ts_consent_table_get(f.t, 0, "L1")->ch[TS_CONSENT_EMAIL].consent,
                     TS_TRI_FALSE);
    fx_free(&f);
}

/* A POS "true" for a phone that cannot receive SMS (SMS_NOT_MOBILE) is no
 * SMS consent: nothing is sent or stored for SMS, so the mobile number
 * that replaces the landline subscribes; a "false" is still decided. */
static void test_sms_landline_not_decided(void **state) {
    (void)state;
    fx_t f;
    fx_init(&f, "");
    const char *land = "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"phone\":\"+61298765432\","
                       "\"home_outlet_id\":\"101\",\"email_consent\":true,\"sms_consent\":true}";
    ts_mapped_t *m = decide(&f, land);
    assert_true(m->warnings & TS_MAP_WARN_SMS_NOT_MOBILE);
    assert_int_equal(m->sms_marketing, TS_SUB_KEEP);
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_int_equal(m->consent[TS_CONSENT_SMS].action, TS_CONSENT_NOTHING);
    const ts_consent_state_t *st = ts_consent_table_get(f.t, 0, "C1");
    assert_non_null(st);
    assert_int_equal(st->ch[TS_CONSENT_SMS].consent, TS_TRI_UNKNOWN);
    m = decide(&f, land); /* again: still nothing for SMS */
    assert_int_equal(m->sms_marketing, TS_SUB_KEEP);
    m = decide(&f, "{\"customer_id\":\"C1\",\"email\":\"a@x.co\",\"phone\":\"+61412345678\","
                   "\"home_outlet_id\":\"101\",\"email_consent\":true,\"sms_consent\":true}");
    assert_false(m->warnings & TS_MAP_WARN_SMS_NOT_MOBILE);
    assert_int_equal(m->sms_marketing, TS_SUB_SUBSCRIBE); /* the mobile: a transition */
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    m = decide(&f, "{\"customer_id\":\"C2\",\"phone\":\"+61298765432\","
                   "\"home_outlet_id\":\"101\",\"sms_consent\":false}");
    assert_int_equal(m->sms_marketing, TS_SUB_UNSUBSCRIBE); /* an opt-out is always sent */
    fx_free(&f);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_state_across_records_and_accounts),
             cmocka_unit_test(test_suppressions_by_id_email_phone),
             cmocka_unit_test(test_offset_fence), cmocka_unit_test(test_bad_suppression_records),
             cmocka_unit_test(test_sync_consented),
             cmocka_unit_test(test_not_decided_when_not_sent),
             cmocka_unit_test(test_sms_landline_not_decided),
             cmocka_unit_test(test_table_many_entries_stable),
             cmocka_unit_test(test_plain_replay_keeps_no_state))
