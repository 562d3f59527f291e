/* test_consent.c - the consent decision table (docs/consent.md), one row per
 * case, plus suppression bookkeeping, the input's consent time and the
 * state's JSON form. */
#include "testlib.h"
#include <stdio.h>
#include <string.h>

#include "tillstream/consent.h"

#define T  TS_TRI_TRUE
#define F  TS_TRI_FALSE
#define U  TS_TRI_UNKNOWN
#define UN TS_SUPPR_UNSUBSCRIBE
#define SP TS_SUPPR_SPAM_COMPLAINT
#define NO TS_SUPPR_NONE

#define NOW 100000 /* wall clock of the replays */

/* one call of ts_consent_decide: its arguments */
typedef struct {
    ts_consent_channel_state_t prev;
    ts_consent_input_t in;
    ts_consent_opts_t opts;
} given_t;

/* what it returns and the state it leaves */
typedef struct {
    ts_consent_decision_t d; /* consented_at compared for SUBSCRIBE / REOPTIN only */
    ts_consent_channel_state_t next;
} want_t;

typedef struct {
    const char *name;
    given_t given;
    want_t want;
} row_t;

static const ts_consent_opts_t LIVE = {.now = NOW};
static const ts_consent_opts_t REPLAY = {.replay = true, .now = NOW};
static const ts_consent_opts_t REPLAY_CONSENT = {
    .replay = true, .replay_consent = true, .now = NOW};

/* rows: name, {prev, input, opts}, {{action, blocked_by, historical, consented_at}, next};
 * states: {consent, consent_at, blocked, suppression, suppressed_at} */
static const row_t rows[] = {
    /* unknown changes nothing */
    {"unknown, never seen",
     {{U, 0, false, NO, 0}, {U, 5000, false}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {U, 0, false, NO, 0}}},
    {"unknown after true",
     {{T, 1000, false, NO, 0}, {U, 5000, false}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {T, 1000, false, NO, 0}}},
    /* true subscribes on a transition only */
    {"true, first seen",
     {{U, 0, false, NO, 0}, {T, 1000, false}, LIVE},
     {{TS_CONSENT_SUBSCRIBE, NO, false, 1000}, {T, 1000, false, NO, 0}}},
    {"true after false",
     {{F, 1000, false, NO, 0}, {T, 3000, true}, LIVE},
     {{TS_CONSENT_SUBSCRIBE, NO, false, 3000}, {T, 3000, false, NO, 0}}},
    {"true after true (any POS update)",
     {{T, 1000, false, NO, 0}, {T, 4000, false}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {T, 1000, false, NO, 0}}},
    {"true after true, a new opt-in at the till (newer explicit time)",
     {{T, 1000, false, NO, 0}, {T, 4000, true}, LIVE},
     {{TS_CONSENT_SUBSCRIBE, NO, false, 4000}, {T, 4000, false, NO, 0}}},
    {"true after true, same explicit time",
     {{T, 4000, false, NO, 0}, {T, 4000, true}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {T, 4000, false, NO, 0}}},
    {"true while blocked, explicit opt-in newer but before the suppression",
     {{T, 1000, true, UN, 2000}, {T, 1500, true}, LIVE},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 1500, true, UN, 2000}}},
    /* false unsubscribes on change */
    {"false, first seen",
     {{U, 0, false, NO, 0}, {F, 1000, false}, LIVE},
     {{TS_CONSENT_UNSUBSCRIBE, NO, false, 0}, {F, 1000, false, NO, 0}}},
    {"false after true",
     {{T, 1000, false, NO, 0}, {F, 2000, false}, LIVE},
     {{TS_CONSENT_UNSUBSCRIBE, NO, false, 0}, {F, 2000, false, NO, 0}}},
    {"false after false",
     {{F, 1000, false, NO, 0}, {F, 2000, false}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {F, 1000, false, NO, 0}}},
    {"false over a suppression (kept)",
     {{T, 1000, true, UN, 2000}, {F, 3000, false}, LIVE},
     {{TS_CONSENT_UNSUBSCRIBE, NO, false, 0}, {F, 3000, false, UN, 2000}}},
    /* suppressions */
    {"true first seen, suppressed, fallback time newer: no evidence",
     {{U, 0, false, UN, 2000}, {T, 3000, false}, LIVE},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 3000, true, UN, 2000}}},
    {"true first seen, suppressed, explicit time older",
     {{U, 0, false, SP, 2000}, {T, 1000, true}, LIVE},
     {{TS_CONSENT_BLOCKED, SP, false, 0}, {T, 1000, true, SP, 2000}}},
    {"true first seen, suppressed, explicit time newer: re-opt-in",
     {{U, 0, false, SP, 2000}, {T, 3000, true}, LIVE},
     {{TS_CONSENT_REOPTIN, SP, false, 3000}, {T, 3000, false, NO, 0}}},
    {"true after false, suppressed, change newer: re-opt-in",
     {{F, 1500, false, UN, 2000}, {T, 3000, false}, LIVE},
     {{TS_CONSENT_REOPTIN, UN, false, 3000}, {T, 3000, false, NO, 0}}},
    {"true after false, suppressed, change older",
     {{F, 1000, false, UN, 2000}, {T, 1800, false}, LIVE},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 1800, true, UN, 2000}}},
    {"true while blocked (POS update)",
     {{T, 1000, true, UN, 2000}, {T, 5000, false}, LIVE},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 1000, true, UN, 2000}}},
    {"true while blocked, same explicit time",
     {{T, 1000, true, UN, 2000}, {T, 1000, true}, LIVE},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 1000, true, UN, 2000}}},
    {"true while blocked, explicit opt-in newer: re-opt-in",
     {{T, 1000, true, UN, 2000}, {T, 3000, true}, LIVE},
     {{TS_CONSENT_REOPTIN, UN, false, 3000}, {T, 3000, false, NO, 0}}},
    {"true after the re-opt-in, same explicit time: once",
     {{T, 3000, false, NO, 0}, {T, 3000, true}, LIVE},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {T, 3000, false, NO, 0}}},
    /* replays */
    {"replay, true first seen: profiles only",
     {{U, 0, false, NO, 0}, {T, 1000, false}, REPLAY},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {U, 0, false, NO, 0}}},
    {"replay, false after true: profiles only",
     {{T, 1000, false, NO, 0}, {F, 2000, false}, REPLAY},
     {{TS_CONSENT_NOTHING, NO, false, 0}, {T, 1000, false, NO, 0}}},
    {"--replay-consent, true first seen: historical",
     {{U, 0, false, NO, 0}, {T, 1000, false}, REPLAY_CONSENT},
     {{TS_CONSENT_SUBSCRIBE, NO, true, 1000}, {T, 1000, false, NO, 0}}},
    {"--replay-consent, consent time not in the past",
     {{U, 0, false, NO, 0}, {T, NOW + 5, true}, REPLAY_CONSENT},
     {{TS_CONSENT_SUBSCRIBE, NO, true, NOW - 1000}, {T, NOW + 5, false, NO, 0}}},
    {"--replay-consent, no consent time at all",
     {{U, 0, false, NO, 0}, {T, 0, false}, REPLAY_CONSENT},
     {{TS_CONSENT_SUBSCRIBE, NO, true, NOW - 1000}, {T, 0, false, NO, 0}}},
    {"--replay-consent, suppressed: same rule",
     {{U, 0, false, UN, 2000}, {T, 3000, false}, REPLAY_CONSENT},
     {{TS_CONSENT_BLOCKED, UN, false, 0}, {T, 3000, true, UN, 2000}}},
    {"--replay-consent, false after true",
     {{T, 1000, false, NO, 0}, {F, 2000, false}, REPLAY_CONSENT},
     {{TS_CONSENT_UNSUBSCRIBE, NO, false, 0}, {F, 2000, false, NO, 0}}},
};

static void assert_state(const char *name, const ts_consent_channel_state_t *got,
                         const ts_consent_channel_state_t *want) {
    if (got->consent != want->consent || got->consent_at != want->consent_at ||
        got->blocked != want->blocked || got->suppression != want->suppression ||
        got->suppressed_at != want->suppressed_at)
        fail_msg("%s: next state {%d,%lld,%d,%d,%lld}, want {%d,%lld,%d,%d,%lld}", name,
                 got->consent, (long long)got->consent_at, got->blocked, got->suppression,
                 (long long)got->suppressed_at, want->consent, (long long)want->consent_at,
                 want->blocked, want->suppression, (long long)want->suppressed_at);
}

static void test_decision_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *r = &rows[i];
        const given_t *g = &r->given;
        const ts_consent_decision_t *w = &r->want.d;
        ts_consent_channel_state_t next;
        ts_consent_decision_t d = ts_consent_decide(&g->prev, &g->in, &g->opts, &next);
        if (d.action != w->action)
            fail_msg("%s: %s, want %s", r->name, ts_consent_action_name(d.action),
                     ts_consent_action_name(w->action));
        if (d.blocked_by != w->blocked_by) fail_msg("%s: blocked_by %d", r->name, d.blocked_by);
        if (d.historical_import != w->historical_import) fail_msg("%s: historical_import", r->name);
        if ((d.action == TS_CONSENT_SUBSCRIBE || d.action == TS_CONSENT_REOPTIN) &&
            d.consented_at != w->consented_at)
            fail_msg("%s: consented_at %lld", r->name, (long long)d.consented_at);
        assert_state(r->name, &next, &r->want.next);
        /* next may alias prev */
        ts_consent_channel_state_t same = g->prev;
        ts_consent_decision_t d2 = ts_consent_decide(&same, &g->in, &g->opts, &same);
        assert_int_equal(d2.action, d.action);
        assert_state(r->name, &same, &r->want.next);
    }
}

/* The scenario in sequence: subscribed, suppressed in Klaviyo, ten
 * POS updates with consent true, then a fresh opt-in at the till. */
static void test_suppressed_stays_suppressed_then_reopts_in_once(void **state) {
    (void)state;
    ts_consent_channel_state_t st = {0};
    ts_consent_input_t in = {T, 1000, false};
    assert_int_equal(ts_consent_decide(&st, &in, &LIVE, &st).action, TS_CONSENT_SUBSCRIBE);
    assert_true(ts_consent_suppress(&st, UN, 2000));
    int sent = 0;
    for (int i = 0; i < 10; i++) {
        in = (ts_consent_input_t){T, 3000 + i, false};
        ts_consent_decision_t d = ts_consent_decide(&st, &in, &LIVE, &st);
        assert_int_equal(d.action, TS_CONSENT_BLOCKED);
        sent += d.action == TS_CONSENT_SUBSCRIBE || d.action == TS_CONSENT_REOPTIN;
    }
    assert_int_equal(sent, 0);
    in = (ts_consent_input_t){T, 5000, true};
    for (int i = 0; i < 3; i++) {
        ts_consent_decision_t d = ts_consent_decide(&st, &in, &LIVE, &st);
        sent += d.action == TS_CONSENT_SUBSCRIBE || d.action == TS_CONSENT_REOPTIN;
    }
    assert_int_equal(sent, 1);
    /* the old suppression redelivered (suppressions topic read again) */
    assert_false(ts_consent_suppress(&st, UN, 2000));
    in = (ts_consent_input_t){T, 6000, false};
    assert_int_equal(ts_consent_decide(&st, &in, &LIVE, &st).action, TS_CONSENT_NOTHING);
}

static void test_suppress_bookkeeping(void **state) {
    (void)state;
    ts_consent_channel_state_t st = {0};
    assert_false(ts_consent_suppress(&st, NO, 100));
    assert_true(ts_consent_suppress(&st, UN, 2000));
    assert_false(ts_consent_suppress(&st, UN, 2000)); /* redelivered */
    assert_false(ts_consent_suppress(&st, SP, 1000)); /* older than the known one */
    assert_int_equal(st.suppression, UN);
    assert_true(ts_consent_suppress(&st, SP, 3000));
    assert_int_equal(st.suppression, SP);
    assert_int_equal(st.suppressed_at, 3000);
    assert_false(st.blocked); /* nothing was sent */
    /* over a subscribe we sent: blocked; older than it: superseded */
    st = (ts_consent_channel_state_t){T, 5000, false, NO, 0};
    assert_false(ts_consent_suppress(&st, UN, 4000));
    assert_true(ts_consent_suppress(&st, UN, 6000));
    assert_true(st.blocked);
}

static void test_input_consent_time(void **state) {
    (void)state;
    ts_customer_t c = {.email_consent = T, .sms_consent = F, .updated_at_ms = 2000};
    ts_consent_input_t in = ts_consent_input(&c, TS_CONSENT_EMAIL, 9000);
    assert_int_equal(in.value, T);
    assert_int_equal(in.at, 2000);
    assert_false(in.at_explicit);
    c.email_consent_at_ms = 1500;
    in = ts_consent_input(&c, TS_CONSENT_EMAIL, 9000);
    assert_int_equal(in.at, 1500);
    assert_true(in.at_explicit);
    in = ts_consent_input(&c, TS_CONSENT_SMS, 9000);
    assert_int_equal(in.value, F);
    assert_int_equal(in.at, 2000);
    c.updated_at_ms = 0;
    in = ts_consent_input(&c, TS_CONSENT_SMS, 9000);
    assert_int_equal(in.at, 9000);
}

static void test_names(void **state) {
    (void)state;
    assert_int_equal(ts_suppr_reason_parse("UNSUBSCRIBE"), TS_SUPPR_UNSUBSCRIBE);
    assert_int_equal(ts_suppr_reason_parse("SPAM_REPORT"), TS_SUPPR_SPAM_COMPLAINT);
    assert_int_equal(ts_suppr_reason_parse("BOUNCE"), TS_SUPPR_HARD_BOUNCE);
    assert_int_equal(ts_suppr_reason_parse("SOMETHING_NEW"), TS_SUPPR_USER_SUPPRESSED);
    assert_int_equal(ts_suppr_reason_parse(NULL), TS_SUPPR_NONE);
    assert_string_equal(ts_suppr_reason_name(TS_SUPPR_SPAM_COMPLAINT), "SPAM_COMPLAINT");
    assert_int_equal(ts_consent_channel_parse("sms"), TS_CONSENT_SMS);
    assert_int_equal(ts_consent_channel_parse("push"), -1);
}

static void test_state_json_round_trip(void **state) {
    (void)state;
    ts_consent_state_t st = {
        .ch = {{T, 1700000000123LL, true, SP, 1700000000999LL}, {F, 42, false, NO, 0}},
        .next_offset = 12345};
    ts_buf_t b = TS_BUF_INIT;
    ts_consent_state_write(&st, &b);
    ts_consent_state_t back;
    char err[128];
    assert_int_equal(ts_consent_state_parse(b.data, b.len, &back, err, sizeof err), TS_OK);
    for (int i = 0; i < TS_CONSENT__CHANNELS; i++)
        assert_state("round trip", &back.ch[i], &st.ch[i]);
    assert_int_equal(back.next_offset, 12345);
    ts_buf_reset(&b);
    ts_consent_state_t empty = {0};
    ts_consent_state_write(&empty, &b);
    assert_int_equal(b.len, strlen("{\"v\":1}"));
    assert_memory_equal(b.data, "{\"v\":1}", b.len);
    ts_buf_free(&b);
    static const char *const bad[] = {"[]",
                                      "{}",
                                      "{\"v\":2}",
                                      "{\"v\":1,\"email\":{\"consent\":1}}",
                                      "{\"v\":1,\"sms\":{\"suppression\":3}}",
                                      "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        back.ch[0].consent = T;
        assert_int_equal(ts_consent_state_parse(bad[i], strlen(bad[i]), &back, err, sizeof err),
                         TS_ERR_INVALID);
        assert_int_equal(back.ch[0].consent, U); /* zeroed on failure */
    }
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_decision_table),
             cmocka_unit_test(test_suppressed_stays_suppressed_then_reopts_in_once),
             cmocka_unit_test(test_suppress_bookkeeping), cmocka_unit_test(test_input_consent_time),
             cmocka_unit_test(test_names), cmocka_unit_test(test_state_json_round_trip))
