/* test_supp.c - tillstream-suppressions without a socket: Get Profiles /
 * Get Events / Get Metrics pages, the watermark across pages, passes and a
 * restart (">=" with the ids at the watermark), the state value, the
 * record format the customers consumer reads, the URLs. */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config_testlib.h"
#include "tillstream/config.h"
#include "tillstream/consent_table.h"
#include "tillstream/supp.h"

#define T1 1795000000000LL /* 2026-11-18T11:06:40Z */

typedef struct {
    char keys[64][64];
    char values[64][512];
    int n;
    int fail_at; /* emit returns TS_ERR_TRANSIENT for this record (-1: never) */
} sink_t;

static ts_err_t emit(void *opaque, const ts_supp_record_t *r) {
    sink_t *s = opaque;
    if (s->n == s->fail_at) return TS_ERR_TRANSIENT;
    const char *k = ts_supp_record_key(r);
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", k ? k : "(none)");
    ts_buf_t b = TS_BUF_INIT;
    ts_supp_record_json("brand-a", r, &b);
    snprintf(s->values[s->n], sizeof s->values[0], "%s", b.data);
    ts_buf_free(&b);
    s->n++;
    return TS_OK;
}

/* A Get Profiles page: profiles "id:external_id:reason:ms" ("-" = none). */
static char *profiles_page(const char *const *profiles, int n, const char *next) {
    ts_buf_t b = TS_BUF_INIT;
    ts_buf_puts(&b, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        char id[32], xid[32], reason[32];
        long long ms;
        sscanf(profiles[i], "%31[^:]:%31[^:]:%31[^:]:%lld", id, xid, reason, &ms);
        char t[64];
        long long s = ms / 1000;
        /* seconds -> a Klaviyo timestamp with microseconds */
        time_t tt = (time_t)s;
        struct tm tm;
        gmtime_r(&tt, &tm);
        snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03lld417+00:00", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
        ts_buf_printf(
            &b,
            "%s{\"type\":\"profile\",\"id\":\"%s\",\"attributes\":{\"email\":\"%s@x.com\","
            "\"phone_number\":null,\"external_id\":%s%s%s,\"subscriptions\":{\"email\":"
            "{\"marketing\":{\"consent\":\"UNSUBSCRIBED\",\"suppression\":[",
            i ? "," : "", id, id, strcmp(xid, "-") ? "\"" : "", strcmp(xid, "-") ? xid : "null",
            strcmp(xid, "-") ? "\"" : "");
        if (strcmp(reason, "-"))
            ts_buf_printf(&b, "{\"reason\":\"%s\",\"timestamp\":\"%s\"}", reason, t);
        ts_buf_puts(&b, "]}}}}}");
    }
    ts_buf_printf(&b, "],\"links\":{\"self\":\"http://k/api/profiles/\"%s%s%s}}",
                  next ? ",\"next\":\"" : "", next ? next : "", next ? "\"" : "");
    return b.data;
}

/* One page read: the mark it starts from, the mark it ends at, the records
 * it emitted and its next link. */
typedef struct {
    ts_supp_mark_t from, to;
    sink_t s;
    ts_buf_t next;
} pagefx_t;

#define PAGEFX_INIT                                                                                \
    { .s = {.fail_at = -1}, .next = TS_BUF_INIT }

static void pagefx_free(pagefx_t *x) {
    ts_supp_state_t tmp = {.ch = {x->from, x->to}};
    ts_supp_state_clear(&tmp);
    ts_buf_free(&x->next);
}

static ts_err_t parse(const char *page, const ts_supp_mark_t *from, ts_supp_mark_t *to, sink_t *s,
                      ts_buf_t *next) {
    char err[256];
    return ts_supp_profiles_page(page, strlen(page), from, to, emit, s, next, err, sizeof err);
}

static void test_profiles_page_and_marks(void **state) {
    (void)state;
    static const char *const p[] = {"A:C1:UNSUBSCRIBE:1795000000100",
                                    "B:C2:SPAM_COMPLAINT:1795000001200",
                                    "C:-:HARD_BOUNCE:1795000001200", "D:C4:-:0"};
    char *page = profiles_page(p, 4, "http://k/api/profiles/?page%5Bcursor%5D=x");
    ts_supp_mark_t from = {0}, to = {0};
    sink_t s = {.fail_at = -1};
    ts_buf_t next = TS_BUF_INIT;
    assert_int_equal(parse(page, &from, &to, &s, &next), TS_OK);
    assert_string_equal(next.data, "http://k/api/profiles/?page%5Bcursor%5D=x");
    assert_int_equal(s.n, 3); /* D has no suppression */
    assert_string_equal(s.keys[0], "C1");
    assert_string_equal(s.keys[2], "C@x.com"); /* no external_id: the email */
    assert_non_null(strstr(s.values[1], "\"channel\":\"email\",\"reason\":\"SPAM_COMPLAINT\","
                                        "\"timestamp\":\"2026-11-18T"));
    assert_non_null(strstr(s.values[1], ":41.200Z\""));
    assert_non_null(strstr(s.values[1], "\"profile_id\":\"B\""));
    /* the mark: the newest time and both ids at it */
    assert_int_equal(to.at, 1795000001200LL);
    assert_int_equal(to.n_ids, 2);
    assert_true(ts_supp_mark_has(&to, "B") && ts_supp_mark_has(&to, "C"));
    assert_false(ts_supp_mark_has(&to, "A"));

    /* the next pass asks >= the mark: B and C again, plus E at the same ms */
    static const char *const p2[] = {
        "B:C2:SPAM_COMPLAINT:1795000001200", "C:-:HARD_BOUNCE:1795000001200",
        "E:C5:UNSUBSCRIBE:1795000001200", "F:C6:UNSUBSCRIBE:1795000002000"};
    char *page2 = profiles_page(p2, 4, NULL);
    ts_supp_mark_t to2 = {0};
    ts_supp_state_t st = {0};
    st.ch[TS_SUPP_EMAIL] = to; /* what the state topic holds after pass 1 */
    assert_int_equal(ts_supp_mark_advance(&to2, to.at, "B"), TS_OK);
    assert_int_equal(ts_supp_mark_advance(&to2, to.at, "C"), TS_OK);
    s.n = 0;
    assert_int_equal(parse(page2, &to, &to2, &s, &next), TS_OK);
    assert_int_equal(next.len, 0); /* the last page */
    assert_int_equal(s.n, 2);      /* E (a tie "greater-than" would miss) and F; B, C not again */
    assert_string_equal(s.keys[0], "C5");
    assert_string_equal(s.keys[1], "C6");
    assert_int_equal(to2.at, 1795000002000LL);
    assert_int_equal(to2.n_ids, 1);
    /* a restart with the stored mark reads the same page: nothing new */
    s.n = 0;
    ts_supp_mark_t to3 = {0};
    assert_int_equal(parse(page2, &to2, &to3, &s, &next), TS_OK);
    assert_int_equal(s.n, 0);
    /* an emit failure stops the page and is returned; the mark stays short of it */
    s.n = 0;
    s.fail_at = 1;
    ts_supp_mark_t to4 = {0}, none = {0};
    assert_int_equal(parse(page2, &none, &to4, &s, &next), TS_ERR_TRANSIENT);
    assert_int_equal(to4.at, 1795000001200LL);
    assert_int_equal(to4.n_ids, 1);
    ts_supp_state_clear(&st);
    ts_supp_state_t tmp = {.ch = {to2, to3}};
    ts_supp_state_clear(&tmp);
    tmp = (ts_supp_state_t){.ch = {to4, none}};
    ts_supp_state_clear(&tmp);
    ts_buf_free(&next);
    free(page);
    free(page2);
}

static void test_newest_of_several_suppressions(void **state) {
    (void)state;
    const char *page =
        "{\"data\":[{\"type\":\"profile\",\"id\":\"P\",\"attributes\":{\"email\":\"p@x.com\","
        "\"external_id\":\"C9\",\"subscriptions\":{\"email\":{\"marketing\":{\"suppression\":["
        "{\"reason\":\"HARD_BOUNCE\",\"timestamp\":\"2026-01-01T00:00:00+00:00\"},"
        "{\"reason\":\"UNSUBSCRIBE\",\"timestamp\":\"2026-02-01T00:00:00.5+00:00\"}]}}}}}],"
        "\"links\":{\"self\":\"x\"}}";
    pagefx_t x = PAGEFX_INIT;
    assert_int_equal(parse(page, &x.from, &x.to, &x.s, &x.next), TS_OK);
    assert_int_equal(x.s.n, 1);
    assert_non_null(strstr(x.s.values[0], "\"reason\":\"UNSUBSCRIBE\",\"timestamp\":"
                                          "\"2026-02-01T00:00:00.500Z\""));
    assert_int_equal(parse("{\"errors\":[]}", &x.from, &x.to, &x.s, &x.next), TS_ERR_INVALID);
    pagefx_free(&x);
}

static void test_events_page(void **state) {
    (void)state;
    const char *page =
        "{\"data\":["
        "{\"type\":\"event\",\"id\":\"ev1\",\"attributes\":{\"timestamp\":1795000000,"
        "\"datetime\":\"2026-11-18T11:06:40+00:00\"},\"relationships\":{\"profile\":{\"data\":"
        "{\"type\":\"profile\",\"id\":\"P1\"}}},\"links\":{\"self\":\"x\"}},"
        "{\"type\":\"event\",\"id\":\"ev2\",\"attributes\":{\"timestamp\":1795000000},"
        "\"relationships\":{\"profile\":{\"data\":{\"type\":\"profile\",\"id\":\"P2\"}}},"
        "\"links\":{\"self\":\"x\"}}],"
        "\"included\":[{\"type\":\"profile\",\"id\":\"P1\",\"attributes\":{\"email\":null,"
        "\"phone_number\":\"+61412345678\",\"external_id\":null},\"links\":{\"self\":\"x\"}},"
        "{\"type\":\"profile\",\"id\":\"P2\",\"attributes\":{\"phone_number\":\"+61412345679\","
        "\"external_id\":\"C2\"},\"links\":{\"self\":\"x\"}}],"
        "\"links\":{\"self\":\"x\",\"next\":\"http://k/api/events/?page%5Bcursor%5D=2\"}}";
    pagefx_t x = PAGEFX_INIT;
    char err[128];
    assert_int_equal(ts_supp_events_page(page, strlen(page), &x.from, &x.to, emit, &x.s, &x.next,
                                         err, sizeof err),
                     TS_OK);
    assert_int_equal(x.s.n, 2);
    assert_string_equal(x.s.keys[0], "+61412345678"); /* no external_id: the phone */
    assert_string_equal(x.s.keys[1], "C2");
    assert_non_null(strstr(x.s.values[0], "\"channel\":\"sms\",\"reason\":\"UNSUBSCRIBE\","
                                          "\"timestamp\":\"2026-11-18T11:06:40.000Z\""));
    assert_non_null(strstr(x.s.values[1], "\"profile_id\":\"P2\""));
    assert_int_equal(x.to.at, 1795000000000LL);
    assert_int_equal(x.to.n_ids, 2); /* both events in that second */
    assert_string_equal(x.next.data, "http://k/api/events/?page%5Bcursor%5D=2");
    pagefx_free(&x);
}

static void test_metrics_page(void **state) {
    (void)state;
    const char *page =
        "{\"data\":[{\"type\":\"metric\",\"id\":\"AAA\",\"attributes\":{\"name\":"
        "\"Received Email\"}},{\"type\":\"metric\",\"id\":\"XyZ123\",\"attributes\":"
        "{\"name\":\"Unsubscribed from SMS Marketing\"}}],\"links\":{\"self\":\"x\"}}";
    ts_buf_t id = TS_BUF_INIT, next = TS_BUF_INIT;
    char err[128];
    assert_int_equal(ts_supp_metrics_page(page, strlen(page), TS_SUPP_SMS_UNSUB_METRIC, &id, &next,
                                          err, sizeof err),
                     TS_OK);
    assert_string_equal(id.data, "XyZ123");
    assert_int_equal(next.len, 0);
    assert_int_equal(ts_supp_metrics_page(page, strlen(page), "Nope", &id, &next, err, sizeof err),
                     TS_OK);
    assert_int_equal(id.len, 0);
    ts_buf_free(&id);
    ts_buf_free(&next);
}

static void test_state_round_trip(void **state) {
    (void)state;
    ts_supp_state_t st = {0}, back, copy;
    assert_int_equal(ts_supp_mark_advance(&st.ch[TS_SUPP_EMAIL], T1, "P1"), TS_OK);
    assert_int_equal(ts_supp_mark_advance(&st.ch[TS_SUPP_EMAIL], T1, "P2"), TS_OK);
    assert_int_equal(ts_supp_mark_advance(&st.ch[TS_SUPP_EMAIL], T1, "P2"), TS_OK);     /* once */
    assert_int_equal(ts_supp_mark_advance(&st.ch[TS_SUPP_EMAIL], T1 - 5, "P0"), TS_OK); /* older */
    assert_int_equal(ts_supp_mark_advance(&st.ch[TS_SUPP_SMS], 1000, "ev\"1"), TS_OK);
    st.pass_at = 1795000009000LL;
    ts_buf_t b = TS_BUF_INIT;
    ts_supp_state_write(&st, &b);
    assert_string_equal(b.data, "{\"v\":1,\"pass_at\":1795000009000,\"email\":{\"at\":"
                                "1795000000000,\"ids\":[\"P1\",\"P2\"]},"
                                "\"sms\":{\"at\":1000,\"ids\":[\"ev\\\"1\"]}}");
    char err[128];
    assert_int_equal(ts_supp_state_parse(b.data, b.len, &back, err, sizeof err), TS_OK);
    assert_int_equal(back.ch[TS_SUPP_EMAIL].at, T1);
    assert_int_equal(back.pass_at, 1795000009000LL);
    assert_int_equal(back.ch[TS_SUPP_EMAIL].n_ids, 2);
    assert_true(ts_supp_mark_has(&back.ch[TS_SUPP_SMS], "ev\"1"));
    assert_int_equal(ts_supp_state_copy(&copy, &back), TS_OK);
    assert_int_equal(copy.pass_at, 1795000009000LL);
    assert_true(ts_supp_mark_has(&copy.ch[TS_SUPP_EMAIL], "P2"));
    assert_int_equal(ts_supp_mark_advance(&copy.ch[TS_SUPP_EMAIL], T1 + 1, "P3"), TS_OK);
    assert_int_equal(copy.ch[TS_SUPP_EMAIL].n_ids, 1); /* newer: the ids start over */
    assert_int_equal(back.ch[TS_SUPP_EMAIL].n_ids, 2); /* a deep copy */
    ts_supp_state_t bad;
    assert_int_equal(ts_supp_state_parse("[1]", 3, &bad, err, sizeof err), TS_ERR_INVALID);
    const char *wrong = "{\"email\":{\"at\":\"x\"}}";
    assert_int_equal(ts_supp_state_parse(wrong, strlen(wrong), &bad, err, sizeof err),
                     TS_ERR_INVALID);
    ts_supp_state_clear(&st);
    ts_supp_state_clear(&back);
    ts_supp_state_clear(&copy);
    ts_supp_state_clear(NULL);
    ts_buf_free(&b);
}

/* The record the poller writes is the record the customers consumer (and
 * the dry run's --suppressions) reads: one format. */
static void test_record_read_by_consent_table(void **state) {
    (void)state;
    const char *cfgjson = "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\","
                          "\"outlets\":[\"101\"]}]}";
    ts_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(ts_config_parse(cfgjson, &cfg, err, sizeof err), TS_OK);
    assert_int_equal(cfg->suppressions_interval_ms, 60000);
    assert_int_equal(cfg->suppressions_page_size, 100);
    assert_string_equal(cfg->topic_suppressions_state, "tillstream.suppressions.state");
    assert_string_equal(cfg->suppressions_transactional_id, "tillstream-suppressions");
    ts_consent_table_t *t = ts_consent_table_new(cfg, NULL, err, sizeof err);
    assert_non_null(t);
    ts_supp_record_t r = {.channel = TS_SUPP_EMAIL,
                          .reason = "SPAM_COMPLAINT",
                          .at = T1 + 123,
                          .email = "Jo@Example.com",
                          .external_id = "C1",
                          .profile_id = "01P",
                          .id = "01P"};
    ts_buf_t b = TS_BUF_INIT;
    ts_supp_record_json("brand-a", &r, &b);
    assert_int_equal(ts_consent_table_suppression(t, b.data, b.len, err, sizeof err), TS_OK);
    const ts_consent_state_t *cs = ts_consent_table_get(t, 0, "C1");
    assert_non_null(cs);
    assert_int_equal(cs->ch[TS_CONSENT_EMAIL].suppression, TS_SUPPR_SPAM_COMPLAINT);
    assert_int_equal(cs->ch[TS_CONSENT_EMAIL].suppressed_at, T1 + 123);
    /* sms, without an external id: by phone */
    ts_buf_reset(&b);
    r = (ts_supp_record_t){.channel = TS_SUPP_SMS,
                           .reason = "UNSUBSCRIBE",
                           .at = T1,
                           .phone_number = "+61412345678",
                           .profile_id = "01Q",
                           .id = "ev"};
    ts_supp_record_json("brand-a", &r, &b);
    assert_int_equal(ts_consent_table_suppression(t, b.data, b.len, err, sizeof err), TS_OK);
    ts_buf_free(&b);
    ts_consent_table_destroy(t);
    ts_config_destroy(cfg);
    /* the config keys name their path */
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\","
                    "\"outlets\":[\"1\"]}],\"suppressions\":{\"interval_ms\":5}}",
                    "suppressions.interval_ms");
}

static void test_urls(void **state) {
    (void)state;
    ts_buf_t u = TS_BUF_INIT;
    ts_supp_mark_t m = {.at = T1 + 7};
    ts_supp_profiles_url(&u, "https://a.klaviyo.com", &m, 100);
    assert_string_equal(
        u.data, "https://a.klaviyo.com/api/profiles/?filter=greater-or-equal%28subscriptions.email."
                "marketing.suppression.timestamp%2C2026-11-18T11%3A06%3A40.007Z%29"
                "&sort=subscriptions.email.marketing.suppression.timestamp"
                "&additional-fields%5Bprofile%5D=subscriptions&page%5Bsize%5D=100");
    ts_buf_reset(&u);
    ts_supp_events_url(&u, "https://a.klaviyo.com", "XyZ", &m, 200);
    assert_non_null(strstr(u.data, "/api/events/?filter=and%28equals%28metric_id%2C%22XyZ%22%29%2C"
                                   "greater-or-equal%28datetime%2C2026-11-18T11%3A06%3A40%2B00%3A00"
                                   "%29%29&sort=datetime&include=profile"));
    ts_buf_free(&u);
    assert_true(ts_supp_url_on_base("http://127.0.0.1:80/api/profiles/?x", "http://127.0.0.1:80"));
    assert_true(ts_supp_url_on_base("https://a.klaviyo.com/api/x", "https://a.klaviyo.com/"));
    assert_false(ts_supp_url_on_base("http://127.0.0.1:8000/api/", "http://127.0.0.1:80"));
    assert_false(
        ts_supp_url_on_base("https://a.klaviyo.com.evil.example/api/", "https://a.klaviyo.com"));
    assert_false(ts_supp_url_on_base("http://a.klaviyo.com/api/", "https://a.klaviyo.com"));
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_profiles_page_and_marks),
             cmocka_unit_test(test_newest_of_several_suppressions),
             cmocka_unit_test(test_events_page), cmocka_unit_test(test_metrics_page),
             cmocka_unit_test(test_state_round_trip),
             cmocka_unit_test(test_record_read_by_consent_table), cmocka_unit_test(test_urls))
