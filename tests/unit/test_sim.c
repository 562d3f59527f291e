/*
 * test_sim.c - the Klaviyo simulator behaves like Klaviyo where it matters:
 * auth, revision header, validation with error pointers, duplicate rules,
 * rate limits with Retry-After (fake clock: no sleeping), fault injection,
 * the single-record endpoints, inspection, body dumps.
 */
#include "testlib.h"
#include <cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_testlib.h"
#include "json_testlib.h"
#include "tillstream/kbody.h"
#include "tillstream/sim.h"

static int64_t fake_now;
static int64_t fake_clock(void *o) {
    (void)o;
    return fake_now;
}

typedef struct {
    long status;
    ts_buf_t body, headers;
    CURLcode cc;
} resp_t;

static size_t wr(char *p, size_t s, size_t n, void *ud) {
    ts_buf_append(ud, p, s * n);
    return s * n;
}

/* Runs the request set up on `c` with headers `h` (both freed here). */
static resp_t perform(CURL *c, const char *url, struct curl_slist *h) {
    resp_t r = {0, TS_BUF_INIT, TS_BUF_INIT, CURLE_OK};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, wr);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    r.cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static resp_t post(ts_sim_t *sim, const char *path, const char *key, const char *rev,
                   const char *body) {
    CURL *c = curl_easy_init();
    char url[256], auth[128], revh[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ts_sim_port(sim), path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/vnd.api+json");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Klaviyo-API-Key %s", key);
        h = curl_slist_append(h, auth);
    }
    if (rev) {
        snprintf(revh, sizeof revh, "revision: %s", rev);
        h = curl_slist_append(h, revh);
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    return perform(c, url, h);
}

static void resp_free(resp_t *r) {
    ts_buf_free(&r->body);
    ts_buf_free(&r->headers);
}

static ts_sim_t *sim_start(ts_sim_opts_t *o) {
    char err[128];
    o->clock = fake_clock;
    ts_sim_t *s = ts_sim_new(o, err, sizeof err);
    ts_sim_add_account(s, "a", "pk_a");
    assert_int_equal(ts_sim_start(s, err, sizeof err), TS_OK);
    return s;
}

#define EV(uid, extra)                                                                             \
    "{\"type\":\"event\",\"attributes\":{\"properties\":{}," extra "\"unique_id\":\"" uid "\","    \
    "\"metric\":{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"Placed Order\"}}}}}"
#define BODY(events)                                                                               \
    "{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-create\":{"       \
    "\"data\":["                                                                                   \
    "{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":{\"data\":{\"type\":\"profile\"," \
    "\"attributes\":"                                                                              \
    "{\"email\":\"x@example.com\"}}},\"events\":{\"data\":[" events "]}}}]}}}}"
#define EVENTS "/api/event-bulk-create-jobs"

static void test_auth_revision_and_validation(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    ts_sim_t *s = sim_start(&o);
    resp_t r = post(s, EVENTS, NULL, "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = post(s, EVENTS, "pk_wrong", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = post(s, EVENTS, "pk_a", NULL, BODY(EV("1", "")));
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "revision"));
    resp_free(&r);
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "\"value\":\"12\",")));
    assert_int_equal(r.status, 400);
    cJSON *j = cJSON_Parse(r.body.data);
    cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0);
    assert_string_equal(cJSON_GetObjectItem(e0, "code")->valuestring, "invalid");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(e0, "source"), "pointer")->valuestring,
        "/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes/value");
    cJSON_Delete(j);
    resp_free(&r);
    r = post(s, EVENTS, "pk_a", "2026-07-15",
             BODY(EV("1", "\"time\":\"1985-01-01T00:00:00+00:00\",")));
    assert_int_equal(r.status, 400);
    resp_free(&r);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 0);
    ts_sim_destroy(s);
}

static void test_duplicate_rules(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    ts_sim_t *s = sim_start(&o);
    resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "") "," EV("1", "")));
    assert_int_equal(r.status, 400); /* within one request: the whole request fails */
    assert_non_null(strstr(r.body.data, "Duplicate unique_id"));
    resp_free(&r);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 0);
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "") "," EV("2", "")));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "") "," EV("3", "")));
    assert_int_equal(r.status, 202); /* across requests: accepted, kept once */
    resp_free(&r);
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 3);
    assert_int_equal(st.duplicates_ignored, 1);
    ts_sim_destroy(s);
}

static void test_rate_limits(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.limits[TS_SIM_EP_EVENTS_BULK] = (ts_sim_limit_t){2, 3};
    fake_now = 60000 * 100 + 500;
    ts_sim_t *s = sim_start(&o);
    resp_t r;
    for (int i = 0; i < 2; i++) {
        r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
        assert_int_equal(r.status, 202);
        assert_non_null(strstr(r.headers.data, "RateLimit-Remaining"));
        resp_free(&r);
    }
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 429); /* burst of 2 per second used */
    assert_non_null(strstr(r.headers.data, "Retry-After: 1"));
    resp_free(&r);
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 429); /* a retry inside the window earns another 429 */
    resp_free(&r);
    fake_now += 1000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    fake_now += 1000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 429); /* steady: 3 per minute */
    assert_non_null(strstr(r.headers.data, "Retry-After: 58"));
    resp_free(&r);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.throttled_429, 3);
    ts_sim_destroy(s);
}

static void test_fault_injection(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.fail_rate = 1.0;
    ts_sim_t *s = sim_start(&o);
    resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 503);
    resp_free(&r);
    ts_sim_destroy(s);
    memset(&o, 0, sizeof o);
    o.drop_rate = 1.0;
    s = sim_start(&o);
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_not_equal(r.cc, CURLE_OK); /* connection closed without an answer */
    resp_free(&r);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 0);
    assert_int_equal(st.dropped, 1);
    ts_sim_destroy(s);
}

static void test_validator_limits(void **state) {
    (void)state;
    char d[256], p[256];
    /* 1,001 events in one request */
    ts_buf_t b = TS_BUF_INIT;
    ts_buf_puts(&b, "{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-"
                    "create\":{\"data\":["
                    "{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":{\"data\":{"
                    "\"type\":\"profile\","
                    "\"attributes\":{\"email\":\"x@example.com\"}}},\"events\":{\"data\":[");
    for (int i = 0; i < 1001; i++)
        ts_buf_printf(&b,
                      "%s{\"type\":\"event\",\"attributes\":{\"properties\":{},\"unique_id\":\"%"
                      "d\",\"metric\":"
                      "{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"M\"}}}}}",
                      i ? "," : "", i);
    ts_buf_puts(&b, "]}}}]}}}}");
    assert_int_equal(ts_sim_validate_events(b.data, b.len, d, sizeof d, p, sizeof p), -1);
    assert_non_null(strstr(d, "1000"));
    ts_buf_free(&b);
    /* a 100 KB+ string */
    size_t n = 101 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'y', n);
    big[n] = '\0';
    ts_buf_printf(
        &b,
        "{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-create\":{"
        "\"data\":["
        "{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":{\"data\":{\"type\":"
        "\"profile\","
        "\"attributes\":{\"email\":\"x@example.com\"}}},\"events\":{\"data\":[{\"type\":\"event\","
        "\"attributes\":{\"properties\":{\"Big\":\"%s\"},\"metric\":{\"data\":{\"type\":\"metric\","
        "\"attributes\":{\"name\":\"M\"}}}}}]}}}]}}}}",
        big);
    assert_int_equal(ts_sim_validate_events(b.data, b.len, d, sizeof d, p, sizeof p), -1);
    assert_non_null(strstr(d, "100KB"));
    assert_non_null(strstr(p, "/properties/Big"));
    free(big);
    ts_buf_free(&b);
}

static resp_t get(ts_sim_t *sim, const char *path) {
    resp_t r = {0, TS_BUF_INIT, TS_BUF_INIT, CURLE_OK};
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ts_sim_port(sim), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    r.cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    ts_buf_putc(&r.body, '\0');
    return r;
}

/* A two-entry bulk body: entry 0 is a valid event for a@example.com,
 * entry 1 holds a valid event then the event `bad` (so a rule broken by
 * `bad` must point at entry 1, event 1). */
#define OK_EV                                                                                      \
    "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"unique_id\":\"ok\",\"metric\":"       \
    "{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"M\"}}}}}"
static void body2(ts_buf_t *b, const char *profile_attrs, const char *bad) {
    ts_buf_reset(b);
    ts_buf_printf(
        b,
        "{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-create\":{"
        "\"data\":[{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":{\"data\":{\"type\":"
        "\"profile\",\"attributes\":{\"email\":\"a@example.com\"}}},\"events\":{\"data\":[" OK_EV
        "]}}},{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":{\"data\":{\"type\":"
        "\"profile\",\"attributes\":%s}},\"events\":{\"data\":[" OK_EV ",%s]}}}]}}}}",
        profile_attrs, bad);
}

#define NOW_WALL 1795392000000LL /* 2026-11-23T00:00:00Z */
#define M8       "MMMMMMMM"
#define M128     M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 M8 /* one over the limit */
#define E1       "/data/attributes/events-bulk-create/data/1"
#define EV1      E1 "/attributes/events/data/1"
#define METRIC   "\"metric\":{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"M\"}}}"

/* Case i of a validation table: body b is accepted (pointer NULL) or
 * refused with exactly that JSON pointer. */
static void expect_pointer(ts_sim_ep_t ep, const ts_buf_t *b, size_t i, const char *pointer) {
    char d[256], p[512] = "";
    int rc = ts_sim_validate(ep, b->data, b->len, NOW_WALL, d, sizeof d, p, sizeof p);
    if (!pointer) {
        if (rc != 0) fail_msg("case %zu: unexpected error %s at %s", i, d, p);
        return;
    }
    if (rc == 0) fail_msg("case %zu: accepted, want an error at %s", i, pointer);
    assert_string_equal(p, pointer);
}

static void test_each_validation_rule(void **state) {
    (void)state;
    static const struct {
        const char *profile, *event, *pointer; /* pointer NULL: valid */
    } cases[] = {
        {"{\"email\":\"b@example.com\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},"
         "\"value\":1.5,\"time\":\"2026-01-02T03:04:05+00:00\"," METRIC "}}",
         NULL},
        {"{}", "{\"type\":\"event\",\"attributes\":{\"properties\":{}," METRIC "}}",
         E1 "/attributes/profile/data/attributes"},
        {"{\"email\":\"nobody\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{}," METRIC "}}",
         E1 "/attributes/profile/data/attributes/email"},
        {"{\"phone_number\":\"021 555 1234\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{}," METRIC "}}",
         E1 "/attributes/profile/data/attributes/phone_number"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"evnt\",\"attributes\":{\"properties\":{}," METRIC "}}", EV1},
        {"{\"external_id\":\"C1\"}", "{\"type\":\"event\",\"attributes\":{\"properties\":{}}}",
         EV1 "/attributes/metric"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"metric\":{\"data\":{\"type\":"
         "\"metric\",\"attributes\":{\"name\":\"" M128 "\"}}}}}",
         EV1 "/attributes/metric/data/attributes/name"},
        {"{\"external_id\":\"C1\"}", "{\"type\":\"event\",\"attributes\":{" METRIC "}}",
         EV1 "/attributes/properties"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"value\":\"9.99\"," METRIC "}}",
         EV1 "/attributes/value"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"time\":\"yesterday\"," METRIC
         "}}",
         EV1 "/attributes/time"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"time\":\"1989-12-31T23:59:"
         "59Z\"," METRIC "}}",
         EV1 "/attributes/time"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"time\":\"2027-12-01T00:00:"
         "00Z\"," METRIC "}}",
         EV1 "/attributes/time"},
        {"{\"external_id\":\"C1\"}",
         "{\"type\":\"event\",\"attributes\":{\"properties\":{},\"time\":\"2027-06-01T00:00:"
         "00Z\"," METRIC "}}",
         NULL},
        /* entry 1's second event repeats its first unique_id for the same profile */
        {"{\"email\":\"b@example.com\"}", OK_EV, EV1 "/attributes/unique_id"},
        /* ... and for entry 0's profile, its first event already repeats entry 0's */
        {"{\"email\":\"a@example.com\"}", OK_EV,
         E1 "/attributes/events/data/0/attributes/unique_id"},
    };
    ts_buf_t b = TS_BUF_INIT;
    char d[256], p[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body2(&b, cases[i].profile, cases[i].event);
        expect_pointer(TS_SIM_EP_EVENTS_BULK, &b, i, cases[i].pointer);
    }
    /* not JSON, wrong job type */
    assert_int_equal(
        ts_sim_validate(TS_SIM_EP_EVENTS_BULK, "{", 1, NOW_WALL, d, sizeof d, p, sizeof p), -1);
    const char *wrong = "{\"data\":{\"type\":\"event\",\"attributes\":{}}}";
    assert_int_equal(ts_sim_validate(TS_SIM_EP_EVENTS_BULK, wrong, strlen(wrong), NOW_WALL, d,
                                     sizeof d, p, sizeof p),
                     -1);
    assert_string_equal(p, "/data/type");
    /* Create Event: the profile sits in the event's attributes */
    const char *ce = "{\"data\":{\"type\":\"event\",\"attributes\":{\"properties\":{}," METRIC
                     ",\"profile\":{\"data\":{\"type\":\"profile\",\"attributes\":{}}}}}}";
    assert_int_equal(
        ts_sim_validate(TS_SIM_EP_CREATE_EVENT, ce, strlen(ce), NOW_WALL, d, sizeof d, p, sizeof p),
        -1);
    assert_string_equal(p, "/data/attributes/profile/data/attributes");
    /* profile import: an identifier is required; E.164 when a phone is given */
    const char *pi = "{\"data\":{\"type\":\"profile\",\"attributes\":{\"phone_number\":\"+0\"}}}";
    assert_int_equal(ts_sim_validate(TS_SIM_EP_PROFILE_IMPORT, pi, strlen(pi), NOW_WALL, d,
                                     sizeof d, p, sizeof p),
                     -1);
    assert_string_equal(p, "/data/attributes/phone_number");
    /* subscribe: consent must say SUBSCRIBED */
    const char *sub =
        "{\"data\":{\"type\":\"profile-subscription-bulk-create-job\",\"attributes\":{\"profiles\":"
        "{\"data\":[{\"type\":\"profile\",\"attributes\":{\"email\":\"s@example.com\","
        "\"subscriptions\":{\"email\":{\"marketing\":{\"consent\":\"UNSUBSCRIBED\"}}}}}]}}}}";
    assert_int_equal(ts_sim_validate(TS_SIM_EP_SUBSCRIBE_BULK, sub, strlen(sub), NOW_WALL, d,
                                     sizeof d, p, sizeof p),
                     -1);
    assert_string_equal(p, "/data/attributes/profiles/data/0/attributes/subscriptions/email/"
                           "marketing/consent");
    assert_int_equal(ts_sim_validate(TS_SIM_EP_UNSUBSCRIBE_BULK, sub, strlen(sub), NOW_WALL, d,
                                     sizeof d, p, sizeof p),
                     -1); /* wrong job type for the unsubscribe endpoint */
    assert_string_equal(p, "/data/type");
    ts_buf_free(&b);
}

/* Bulk Subscribe's historical_import and consented_at
 * (bulk_subscribe_profiles.json): consented_at is required with
 * historical_import: true and must be in the past; without the flag it is
 * refused. */
static void test_historical_import_rules(void **state) {
    (void)state;
    char now_s[32], past_s[32], future_s[32];
    ts_time_format_iso8601(NOW_WALL, now_s, sizeof now_s);
    ts_time_format_iso8601(NOW_WALL - 86400000, past_s, sizeof past_s);
    ts_time_format_iso8601(NOW_WALL + 60000, future_s, sizeof future_s);
    static const char *const ptr_email =
        "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at";
    static const char *const ptr_sms =
        "/data/attributes/profiles/data/0/attributes/subscriptions/sms/marketing/consented_at";
    const struct {
        const char *hist;              /* the job's historical_import member ("" = none) */
        const char *email_at, *sms_at; /* NULL = no consented_at */
        const char *pointer;           /* NULL: valid */
    } cases[] = {
        {",\"historical_import\":true", past_s, past_s, NULL},
        {",\"historical_import\":true", now_s, past_s, NULL}, /* to the second: not future */
        {",\"historical_import\":true", NULL, past_s, ptr_email},
        {",\"historical_import\":true", past_s, NULL, ptr_sms},
        {",\"historical_import\":true", future_s, past_s, ptr_email},
        {",\"historical_import\":true", past_s, future_s, ptr_sms},
        {",\"historical_import\":true", "last tuesday", past_s, ptr_email},
        {"", past_s, NULL, ptr_email},
        {",\"historical_import\":false", NULL, past_s, ptr_sms},
        {",\"historical_import\":false", NULL, NULL, NULL},
        {"", NULL, NULL, NULL},
    };
    char d[256], p[512];
    ts_buf_t b = TS_BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char e_at[64] = "", s_at[64] = "";
        if (cases[i].email_at)
            snprintf(e_at, sizeof e_at, ",\"consented_at\":\"%s\"", cases[i].email_at);
        if (cases[i].sms_at)
            snprintf(s_at, sizeof s_at, ",\"consented_at\":\"%s\"", cases[i].sms_at);
        ts_buf_reset(&b);
        ts_buf_printf(&b,
                      "{\"data\":{\"type\":\"profile-subscription-bulk-create-job\","
                      "\"attributes\":{\"custom_source\":\"Point of sale\"%s,\"profiles\":{"
                      "\"data\":[{\"type\":\"profile\",\"attributes\":{\"email\":"
                      "\"h@example.com\",\"phone_number\":\"+61412345678\",\"subscriptions\":{"
                      "\"email\":{\"marketing\":{\"consent\":\"SUBSCRIBED\"%s}},"
                      "\"sms\":{\"marketing\":{\"consent\":\"SUBSCRIBED\"%s}}}}}]}}}}",
                      cases[i].hist, e_at, s_at);
        expect_pointer(TS_SIM_EP_SUBSCRIBE_BULK, &b, i, cases[i].pointer);
    }
    /* the engine's own body (kbody) of a historical import is accepted */
    ts_buf_reset(&b);
    ts_jw_t w;
    ts_kbody_subs_open(&w, &b, true, "Point of sale", true);
    ts_kbody_subs_add_at(&w, true, "h@example.com", "+61412345678", true, true, NOW_WALL - 1000,
                         NOW_WALL - 86400000);
    ts_kbody_subs_close(&w);
    assert_int_equal(ts_sim_validate(TS_SIM_EP_SUBSCRIBE_BULK, b.data, b.len, NOW_WALL, d, sizeof d,
                                     p, sizeof p),
                     0);
    ts_buf_free(&b);
}

static void test_revision_and_limit_parsing(void **state) {
    (void)state;
    assert_true(ts_sim_revision_valid("2026-07-15"));
    assert_true(ts_sim_revision_valid("2024-10-15.pre"));
    assert_false(ts_sim_revision_valid("2026-13-15"));
    assert_false(ts_sim_revision_valid("2026-07-15."));
    assert_false(ts_sim_revision_valid("20260715"));
    assert_false(ts_sim_revision_valid("latest"));
    ts_sim_opts_t o = {0};
    assert_int_equal(ts_sim_parse_limit(&o, "create_event=3/s,20/m"), TS_OK);
    assert_true(o.limits[TS_SIM_EP_CREATE_EVENT].burst_per_s == 3);
    assert_true(o.limits[TS_SIM_EP_CREATE_EVENT].steady_per_min == 20);
    assert_int_equal(ts_sim_parse_limit(&o, "events=3/s,20/m"), TS_ERR_CONFIG);
    assert_int_equal(ts_sim_parse_limit(&o, "events_bulk=3/s"), TS_ERR_CONFIG);
    assert_string_equal(ts_sim_ep_op(TS_SIM_EP_PROFILE_IMPORT), "create_or_update_profile");
    assert_string_equal(ts_sim_ep_path(TS_SIM_EP_CREATE_EVENT), "/api/events");
}

static const char *header(const resp_t *r, const char *name, char *out, size_t n) {
    const char *h = r->headers.data;
    size_t nl = strlen(name);
    for (const char *line = h; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)l, v);
            return out;
        }
    }
    return NULL;
}

static void test_ratelimit_headers_and_revision(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.limits[TS_SIM_EP_EVENTS_BULK] = (ts_sim_limit_t){10, 3};
    fake_now = 1000000;
    ts_sim_t *s = sim_start(&o);
    char v[32];
    for (int i = 0; i < 3; i++) {
        resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
        assert_int_equal(r.status, 202);
        assert_string_equal(header(&r, "RateLimit-Limit", v, sizeof v), "3");
        char want[8];
        snprintf(want, sizeof want, "%d", 2 - i);
        assert_string_equal(header(&r, "RateLimit-Remaining", v, sizeof v), want);
        snprintf(want, sizeof want, "%d", 60 - 10 * i); /* until the oldest slot frees */
        assert_string_equal(header(&r, "RateLimit-Reset", v, sizeof v), want);
        assert_null(header(&r, "Retry-After", v, sizeof v));
        resp_free(&r);
        fake_now += 10000;
    }
    resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 429); /* steady window full: the first slot frees at +60 s */
    assert_string_equal(header(&r, "Retry-After", v, sizeof v), "30");
    resp_free(&r);
    fake_now += 30000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 202); /* sliding: one slot freed */
    resp_free(&r);
    /* a malformed revision is a 400 too (rate limiting comes first) */
    fake_now += 61000;
    r = post(s, EVENTS, "pk_a", "2026-7-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "revision"));
    resp_free(&r);
    ts_sim_destroy(s);
}

static void test_fail_rate_records_nothing(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.fail_rate = 1.0;
    o.seed = 42;
    ts_sim_t *s = sim_start(&o);
    int n500 = 0, n503 = 0;
    for (int i = 0; i < 12; i++) {
        resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
        assert_true(r.status == 500 || r.status == 503);
        n500 += r.status == 500;
        n503 += r.status == 503;
        fake_now += 1000; /* stay under the burst limit */
        cJSON *j = cJSON_Parse(r.body.data);
        assert_non_null(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0));
        cJSON_Delete(j);
        resp_free(&r);
    }
    assert_true(n500 > 0 && n503 > 0);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 0);
    assert_int_equal(st.failed_5xx, 12);
    assert_int_equal(st.accepted, 0);
    ts_sim_destroy(s);
}

#define CE_BODY(uid)                                                                               \
    "{\"data\":{\"type\":\"event\",\"attributes\":{\"properties\":{\"x\":1},\"unique_id\":\"" uid  \
    "\",\"value\":5,\"backfill\":true," METRIC ",\"profile\":{\"data\":{\"type\":\"profile\","     \
    "\"attributes\":{\"external_id\":\"C9\"}}}}}}"

static void test_single_endpoints_inspection_and_dumps(void **state) {
    (void)state;
    char dir[] = "/tmp/ts-sim-dump.XXXXXX";
    assert_non_null(mkdtemp(dir));
    ts_sim_opts_t o = {0};
    o.dump_dir = dir;
    ts_sim_t *s = sim_start(&o);
    resp_t r = post(s, "/api/events", "pk_a", "2026-07-15", CE_BODY("u1"));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    r = post(s, "/api/events", "pk_a", "2026-07-15", CE_BODY("u1"));
    assert_int_equal(r.status, 202); /* kept once */
    resp_free(&r);
    const char *prof =
        "{\"data\":{\"type\":\"profile\",\"attributes\":{\"email\":\"q@example.com\"}}}";
    r = post(s, "/api/profile-import", "pk_a", "2026-07-15", prof);
    assert_int_equal(r.status, 201);
    cJSON *j = cJSON_Parse(r.body.data);
    cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_string_equal(cJSON_GetObjectItem(data, "type")->valuestring, "profile");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "links"), "self"));
    cJSON_Delete(j);
    resp_free(&r);
    r = post(s, "/api/profile-import", "pk_a", "2026-07-15", prof);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* two events without unique_id at the same second collapse into one */
    r = post(s, EVENTS, "pk_a", "2026-07-15",
             BODY("{\"type\":\"event\",\"attributes\":{\"properties\":{},\"time\":\"2026-01-01T00:"
                  "00:00Z\"," METRIC "}},{\"type\":\"event\",\"attributes\":{\"properties\":{},"
                  "\"time\":\"2026-01-01T00:00:00.400Z\"," METRIC "}}"));
    assert_int_equal(r.status, 202);
    resp_free(&r);

    r = get(s, "/__sim/stats");
    assert_int_equal(r.status, 200);
    j = cJSON_Parse(r.body.data);
    cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "accounts"), "a");
    assert_int_equal(cJSON_GetObjectItem(a, "events_recorded")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(a, "duplicates_ignored")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(a, "backfill_events")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(a, "profiles")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "events_by_metric"), "M")->valueint,
                     2);
    cJSON *req = cJSON_GetObjectItem(a, "requests");
    assert_int_equal(cJSON_GetObjectItem(req, "202")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(req, "201")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(req, "200")->valueint, 1);
    cJSON_Delete(j);
    resp_free(&r);

    r = get(s, "/__sim/accounts/a/events");
    assert_int_equal(r.status, 200);
    char *nl = strchr(r.body.data, '\n');
    assert_non_null(nl);
    *nl = '\0';
    j = cJSON_Parse(r.body.data);
    assert_string_equal(cJSON_GetObjectItem(j, "unique_id")->valuestring, "u1");
    assert_string_equal(cJSON_GetObjectItem(j, "profile_key")->valuestring, "x:C9");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "backfill")));
    assert_int_equal(cJSON_GetObjectItem(j, "value")->valueint, 5);
    cJSON_Delete(j);
    resp_free(&r);
    r = get(s, "/__sim/accounts/nobody/events");
    assert_int_equal(r.status, 404);
    resp_free(&r);

    /* every accepted body was dumped under its operation's name */
    char path[256];
    const char *want[] = {"create_event-000000.json", "create_event-000001.json",
                          "create_or_update_profile-000002.json",
                          "create_or_update_profile-000003.json", "bulk_create_events-000004.json"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, want[i]);
        assert_int_equal(access(path, R_OK), 0);
        unlink(path);
    }
    rmdir(dir);

    /* reset clears everything */
    CURL *c = curl_easy_init();
    snprintf(path, sizeof path, "http://127.0.0.1:%d/__sim/reset", ts_sim_port(s));
    curl_easy_setopt(c, CURLOPT_URL, path);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(devnull);
    curl_easy_cleanup(c);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 0);
    ts_sim_destroy(s);
}

static void test_payload_limits_over_http(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    ts_sim_t *s = sim_start(&o);
    /* profile import: 100KB payload limit -> 413 */
    size_t n = 110 * 1024;
    ts_buf_t b = TS_BUF_INIT;
    ts_buf_puts(&b, "{\"data\":{\"type\":\"profile\",\"attributes\":{\"email\":\"z@example.com\","
                    "\"properties\":{\"a\":\"");
    for (size_t i = 0; i < n; i++) ts_buf_putc(&b, 'a');
    ts_buf_puts(&b, "\"}}}}");
    resp_t r = post(s, "/api/profile-import", "pk_a", "2026-07-15", b.data);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    /* the same 100KB+ string in a bulk event: 400 pointing at it */
    ts_buf_reset(&b);
    ts_buf_puts(&b,
                "{\"data\":{\"type\":\"event-bulk-create-job\",\"attributes\":{\"events-bulk-"
                "create\":{\"data\":[{\"type\":\"event-bulk-create\",\"attributes\":{\"profile\":"
                "{\"data\":{\"type\":\"profile\",\"attributes\":{\"email\":\"x@example.com\"}}},"
                "\"events\":{\"data\":[{\"type\":\"event\",\"attributes\":{" METRIC
                ",\"properties\":{\"big\":\"");
    for (size_t i = 0; i < n; i++) ts_buf_putc(&b, 'a');
    ts_buf_puts(&b, "\"}}}]}}}]}}}}");
    r = post(s, EVENTS, "pk_a", "2026-07-15", b.data);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "/data/attributes/events-bulk-create/data/0/attributes/"
                                        "events/data/0/attributes/properties/big"));
    resp_free(&r);
    /* a wrong content type: 415 */
    ts_buf_free(&b);
    ts_sim_destroy(s);
}

/* ---- Bulk Profile Import jobs ------------------------------------------------ */

static resp_t api_get(ts_sim_t *sim, const char *path, const char *key) {
    CURL *c = curl_easy_init();
    char url[512], auth[128];
    if (!strncmp(path, "http", 4))
        snprintf(url, sizeof url, "%s", path);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ts_sim_port(sim), path);
    snprintf(auth, sizeof auth, "Authorization: Klaviyo-API-Key %s", key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "revision: 2026-07-15");
    return perform(c, url, h);
}

/* n profiles C0..C(n-1) with valid emails, except those listed in bad[]:
 * bad email, bad phone, bad email (in turn). */
static void import_body(ts_buf_t *b, int n, const int *bad, int n_bad) {
    ts_buf_reset(b);
    ts_buf_puts(b, "{\"data\":{\"type\":\"profile-bulk-import-job\",\"attributes\":{\"profiles\":"
                   "{\"data\":[");
    for (int i = 0; i < n; i++) {
        int k = -1;
        for (int j = 0; j < n_bad; j++)
            if (bad[j] == i) k = j;
        if (i) ts_buf_putc(b, ',');
        if (k < 0 || k % 3 == 2)
            ts_buf_printf(b,
                          "{\"type\":\"profile\",\"attributes\":{\"external_id\":\"C%d\","
                          "\"email\":\"%sc%d@example.com\"}}",
                          i, k < 0 ? "" : "@", i);
        else if (k % 3 == 0)
            ts_buf_printf(b,
                          "{\"type\":\"profile\",\"attributes\":{\"external_id\":\"C%d\","
                          "\"email\":\"nobody-%d\"}}",
                          i, i);
        else
            ts_buf_printf(b,
                          "{\"type\":\"profile\",\"attributes\":{\"external_id\":\"C%d\","
                          "\"phone_number\":\"0412 345 %03d\"}}",
                          i, i);
    }
    ts_buf_puts(b, "]}}}}");
}

static cJSON *json_of(const resp_t *r) {
    cJSON *j = cJSON_Parse(r->body.data ? r->body.data : "");
    assert_non_null(j);
    return j;
}

static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(o, "attributes"), k);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

#define JOBS "/api/profile-bulk-import-jobs"

/* GET `path` as `key`: the answer's status, the answer freed. */
static long get_status(ts_sim_t *s, const char *path, const char *key) {
    resp_t r = api_get(s, path, key);
    long status = r.status;
    resp_free(&r);
    return status;
}

/* POST `body` to `path` as `key` (revision 2026-07-15): the answer's status. */
static long post_status(ts_sim_t *s, const char *path, const char *key, const char *body) {
    resp_t r = post(s, path, key, "2026-07-15", body);
    long status = r.status;
    resp_free(&r);
    return status;
}

/* The JSON document of an answer, which must have status `status` (0:
 * any); the caller deletes it. */
static cJSON *answer_json(resp_t r, long status) {
    if (status) assert_int_equal(r.status, status);
    cJSON *j = json_of(&r);
    resp_free(&r);
    return j;
}

static cJSON *get_json(ts_sim_t *s, const char *path, const char *key, long status) {
    return answer_json(api_get(s, path, key), status);
}

/* Posts an import job of `body` as pk_a: its id into id[64]. */
static void post_job(ts_sim_t *s, const char *body, long status, char *id) {
    cJSON *j = answer_json(post(s, JOBS, "pk_a", "2026-07-15", body), status);
    snprintf(id, 64, "%s", tj_str(j, "data.id"));
    cJSON_Delete(j);
}

/* GETs `first` as pk_a and then each page's links.next, every page 200,
 * and hands each item of every page's data to `each`: the number of pages. */
static int walk_pages(ts_sim_t *s, const char *first, void (*each)(const cJSON *item, void *ctx),
                      void *ctx) {
    char next[512];
    snprintf(next, sizeof next, "%s", first);
    int pages = 0;
    while (*next) {
        cJSON *j = get_json(s, next, "pk_a", 200);
        pages++;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "data")) each(e, ctx);
        const char *nx = tj_str(j, "links.next");
        snprintf(next, sizeof next, "%s", nx ? nx : "");
        cJSON_Delete(j);
    }
    return pages;
}

/* The job test's three failed profiles (of 25, bad[] = {4, 11, 23}). */
static const char *const job_err_ptr[] = {"/data/attributes/profiles/data/4/attributes/email",
                                          "/data/attributes/profiles/data/11/attributes/"
                                          "phone_number",
                                          "/data/attributes/profiles/data/23/attributes/email"};
static const char *const job_err_ext[] = {"C4", "C11", "C23"};

typedef struct {
    int n;     /* items seen */
    int round; /* profiles: 0 records the ids, 1 compares them */
    char ids[22][40];
} job_walk_t;

static void check_import_error(const cJSON *e, void *ctx) {
    job_walk_t *w = ctx;
    assert_true(w->n < 3);
    assert_string_equal(tj_str(e, "type"), "import-error");
    assert_string_equal(tj_str(e, "attributes.source.pointer"), job_err_ptr[w->n]);
    assert_string_equal(tj_str(e, "attributes.original_payload.attributes.external_id"),
                        job_err_ext[w->n]);
    assert_non_null(strstr(tj_str(e, "attributes.detail"), w->n == 1 ? "phone" : "email"));
    w->n++;
}

static void check_profile(const cJSON *p, void *ctx) {
    job_walk_t *w = ctx;
    assert_true(w->n < 22);
    assert_string_equal(tj_str(p, "type"), "profile");
    const char *ext = tj_str(p, "attributes.external_id");
    assert_non_null(ext);
    for (int k = 0; k < 3; k++) assert_string_not_equal(ext, job_err_ext[k]);
    if (w->round == 0)
        snprintf(w->ids[w->n], sizeof w->ids[w->n], "%s", tj_str(p, "id"));
    else
        assert_string_equal(w->ids[w->n], tj_str(p, "id"));
    w->n++;
}

static void test_import_jobs_complete_late_and_report_errors(void **state) {
    (void)state;
    char err[128];
    ts_sim_opts_t o = {.job_delay_ms = 1000, .clock = fake_clock};
    ts_sim_t *s = ts_sim_new(&o, err, sizeof err);
    ts_sim_add_account(s, "a", "pk_a");
    ts_sim_add_account(s, "b", "pk_b");
    assert_int_equal(ts_sim_start(s, err, sizeof err), TS_OK);
    fake_now = 1000000;
    ts_buf_t b = TS_BUF_INIT;
    const int bad[] = {4, 11, 23};
    import_body(&b, 25, bad, 3);
    /* bad formats fail inside the job, not the request */
    cJSON *j = answer_json(post(s, JOBS, "pk_a", "2026-07-15", b.data), 202);
    char id[64], path[256];
    snprintf(id, sizeof id, "%s", tj_str(j, "data.id"));
    assert_string_equal(tj_str(j, "data.attributes.status"), "queued");
    cJSON_Delete(j);

    /* pending: no counts, no errors yet */
    snprintf(path, sizeof path, JOBS "/%s", id);
    j = get_json(s, path, "pk_a", 200);
    assert_string_equal(tj_str(j, "data.id"), id);
    assert_string_equal(tj_str(j, "data.attributes.status"), "queued");
    assert_int_equal(jint(cJSON_GetObjectItem(j, "data"), "failed_count"), 0);
    assert_non_null(tj_str(j, "links.self"));
    cJSON_Delete(j);
    snprintf(path, sizeof path, JOBS "/%s/import-errors", id);
    j = get_json(s, path, "pk_a", 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "data")), 0);
    cJSON_Delete(j);
    fake_now += 600;
    snprintf(path, sizeof path, JOBS "/%s/", id);
    j = get_json(s, path, "pk_a", 0);
    assert_string_equal(tj_str(j, "data.attributes.status"), "processing");
    cJSON_Delete(j);

    /* another account cannot see it; unknown ids are 404 */
    assert_int_equal(get_status(s, path, "pk_b"), 404);
    assert_int_equal(get_status(s, JOBS "/sim-job-999/", "pk_a"), 404);

    /* complete: 22 imported, 3 failed */
    fake_now += 400;
    j = get_json(s, path, "pk_a", 0);
    assert_string_equal(tj_str(j, "data.attributes.status"), "complete");
    assert_int_equal(jint(cJSON_GetObjectItem(j, "data"), "failed_count"), 3);
    assert_int_equal(jint(cJSON_GetObjectItem(j, "data"), "completed_count"), 22);
    assert_int_equal(jint(cJSON_GetObjectItem(j, "data"), "total_count"), 25);
    assert_non_null(tj_str(j, "data.attributes.completed_at"));
    cJSON_Delete(j);

    /* import-errors, two per page: the three failed profiles, in order */
    job_walk_t w = {0};
    snprintf(path, sizeof path, JOBS "/%s/import-errors?page%%5Bsize%%5D=2", id);
    assert_int_equal(walk_pages(s, path, check_import_error, &w), 2);
    assert_int_equal(w.n, 3);

    /* profiles: 22, stable ids (the same again from a second job) */
    for (w.round = 0; w.round < 2; w.round++) {
        snprintf(path, sizeof path, JOBS "/%s/profiles?page%%5Bsize%%5D=10", id);
        w.n = 0;
        assert_int_equal(walk_pages(s, path, check_profile, &w), 3);
        assert_int_equal(w.n, 22);
        if (w.round == 0) { /* the same profiles again: a new job, the same ids */
            post_job(s, b.data, 202, id);
            fake_now += 1000;
        }
    }
    ts_sim_stats_t st;
    assert_int_equal(ts_sim_stats(s, "a", &st), 0);
    assert_int_equal(st.import_jobs, 2);
    assert_int_equal(st.import_errors, 6);
    assert_int_equal(st.profiles, 22);

    /* bad page size */
    snprintf(path, sizeof path, JOBS "/%s/profiles?page%%5Bsize%%5D=101", id);
    assert_int_equal(get_status(s, path, "pk_a"), 400);

    /* control API: jobs that never complete, then a listing */
    resp_t r = post(s, "/__sim/jobs", "pk_a", NULL, "{\"delay_ms\":-1}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    post_job(s, b.data, 0, id);
    fake_now += 86400000;
    snprintf(path, sizeof path, JOBS "/%s", id);
    j = get_json(s, path, "pk_a", 0);
    assert_string_equal(tj_str(j, "data.attributes.status"), "processing");
    cJSON_Delete(j);
    j = get_json(s, "/__sim/jobs", "pk_a", 0);
    assert_int_equal(cJSON_GetObjectItem(j, "delay_ms")->valueint, -1);
    const cJSON *jobs = cJSON_GetObjectItem(j, "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 3);
    assert_string_equal(tj_str(cJSON_GetArrayItem(jobs, 2), "status"), "processing");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "failed_count")->valueint, 3);
    cJSON_Delete(j);
    r = post(s, "/__sim/jobs", "pk_a", NULL, "{\"delay\":1}");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    ts_buf_free(&b);
    ts_sim_destroy(s);
}

/* Job GETs spend the profiles_bulk endpoint's budget (shared with imports). */
static void test_job_polls_share_the_import_budget(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    assert_int_equal(ts_sim_parse_limit(&o, "profiles_bulk=3/s,100/m"), TS_OK);
    ts_sim_t *s = sim_start(&o);
    fake_now = 5000000;
    ts_buf_t b = TS_BUF_INIT;
    import_body(&b, 2, NULL, 0);
    assert_int_equal(post_status(s, JOBS, "pk_a", b.data), 202);
    assert_int_equal(get_status(s, JOBS "/sim-job-1", "pk_a"), 200);
    assert_int_equal(get_status(s, JOBS "/sim-job-1/profiles", "pk_a"), 200);
    /* the 4th in the same second */
    assert_int_equal(post_status(s, JOBS, "pk_a", b.data), 429);
    assert_int_equal(get_status(s, JOBS "/sim-job-1", "pk_a"), 429);
    fake_now += 1000;
    assert_int_equal(get_status(s, JOBS "/sim-job-1", "pk_a"), 200);
    ts_buf_free(&b);
    ts_sim_destroy(s);
}

/* Inside a job, E.164-shaped numbers no country has fail too. */
static void test_import_jobs_fail_unassigned_numbers(void **state) {
    (void)state;
    ts_sim_opts_t o = {.job_delay_ms = 10};
    ts_sim_t *s = sim_start(&o);
    fake_now = 7000000;
    const char *body =
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"attributes\":{\"profiles\":{\"data\":["
        "{\"type\":\"profile\",\"attributes\":{\"phone_number\":\"+999123456789\"}},"
        "{\"type\":\"profile\",\"attributes\":{\"phone_number\":\"+6198765432\"}},"
        "{\"type\":\"profile\",\"attributes\":{\"phone_number\":\"+61412345678\"}},"
        "{\"type\":\"profile\",\"attributes\":{\"phone_number\":\"+14155550100\"}}]}}}}";
    assert_int_equal(post_status(s, JOBS, "pk_a", body), 202);
    fake_now += 10;
    cJSON *j = get_json(s, JOBS "/sim-job-1/import-errors", "pk_a", 0);
    const cJSON *d = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(d), 2);
    assert_string_equal(tj_str(cJSON_GetArrayItem(d, 0), "attributes.source.pointer"),
                        "/data/attributes/profiles/data/0/attributes/phone_number");
    assert_string_equal(tj_str(cJSON_GetArrayItem(d, 1), "attributes.source.pointer"),
                        "/data/attributes/profiles/data/1/attributes/phone_number");
    cJSON_Delete(j);
    ts_sim_destroy(s);
}

/* Request Profile Deletion: one profile by identifier, 202, 3/s. */
static void test_profile_deletion(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    ts_sim_t *s = sim_start(&o);
    fake_now = 9000000;
#define DEL(attrs)                                                                                 \
    "{\"data\":{\"type\":\"data-privacy-deletion-job\",\"attributes\":{\"profile\":{\"data\":{"    \
    "\"type\":\"profile\",\"attributes\":" attrs "}}}}}"
    const char *path = "/api/data-privacy-deletion-jobs";
    assert_int_equal(post_status(s, path, "pk_a", DEL("{\"email\":\"gone@example.com\"}")), 202);
    resp_t r = post(s, path, "pk_a", "2026-07-15", DEL("{}"));
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "/data/attributes/profile/data/attributes"));
    resp_free(&r);
    assert_int_equal(post_status(s, path, "pk_a", DEL("{\"phone_number\":\"+61412345678\"}")), 202);
    /* the 4th in a second: 3/s */
    assert_int_equal(post_status(s, path, "pk_a", DEL("{\"email\":\"x@example.com\"}")), 429);
#undef DEL
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.deletions, 2);
    r = api_get(s, "/__sim/accounts/a/deletions", "pk_a");
    assert_non_null(strstr(r.body.data, "{\"email\":\"gone@example.com\"}\n"));
    assert_non_null(strstr(r.body.data, "{\"phone_number\":\"+61412345678\"}\n"));
    resp_free(&r);
    ts_sim_destroy(s);
}

/* POST /__sim/faults: an outage switched on and off at run time; what was
 * recorded before it is kept (a retried event is still de-duplicated). */
static void test_faults_at_run_time(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.seed = 7;
    ts_sim_t *s = sim_start(&o);
    resp_t r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    r = post(s, "/__sim/faults", "pk_a", NULL, "{\"fail_rate\":1}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"fail_rate\":1,\"drop_rate\":0"));
    resp_free(&r);
    for (int i = 0; i < 4; i++) {
        fake_now += 1000;
        r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "")));
        assert_true(r.status == 500 || r.status == 503);
        resp_free(&r);
    }
    /* drop: the connection closes without an answer (no status) */
    r = post(s, "/__sim/faults", "pk_a", NULL, "{\"fail_rate\":0,\"drop_rate\":1}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fake_now += 1000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "")));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.cc, CURLE_GOT_NOTHING);
    resp_free(&r);
    /* bad bodies change nothing */
    r = post(s, "/__sim/faults", "pk_a", NULL, "{\"fail_rate\":1.5}");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    r = post(s, "/__sim/faults", "pk_a", NULL, "[1]");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    cJSON *j = get_json(s, "/__sim/faults", "pk_a", 0);
    assert_int_equal(cJSON_GetObjectItem(j, "drop_rate")->valuedouble, 1);
    assert_int_equal(cJSON_GetObjectItem(j, "fail_rate")->valuedouble, 0);
    cJSON_Delete(j);
    /* the outage ends: the same event goes in, the first is still known */
    r = post(s, "/__sim/faults", "pk_a", NULL, "{\"drop_rate\":0}");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fake_now += 1000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "")));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    fake_now += 1000;
    r = post(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")));
    assert_int_equal(r.status, 202);
    resp_free(&r);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 2);
    assert_int_equal(st.duplicates_ignored, 1);
    assert_int_equal(st.failed_5xx, 4);
    assert_int_equal(st.dropped, 1);
    ts_sim_destroy(s);
}

/* POSTs body and expects status (the body is dropped). */
static void post_expect(ts_sim_t *s, const char *path, const char *key, const char *rev,
                        const char *body, long status) {
    resp_t r = post(s, path, key, rev, body);
    assert_int_equal(r.status, status);
    resp_free(&r);
}

/* POST /__sim/keys: the account's key changes at run time (a rotation in
 * Klaviyo): the old key is refused, the new one accepted, the account's
 * records kept; bad bodies and unknown accounts change nothing. */
static void test_key_rotation(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    ts_sim_t *s = sim_start(&o);
    post_expect(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("1", "")), 202);
    post_expect(s, "/__sim/keys", "pk_a", NULL, "{\"account\":\"a\",\"key\":\"pk_a2\"}", 200);
    fake_now += 1000;
    post_expect(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "")), 401);
    /* the same account: its de-duplication keys stay */
    post_expect(s, EVENTS, "pk_a2", "2026-07-15", BODY(EV("1", "")), 202);
    post_expect(s, "/__sim/keys", "pk_a2", NULL, "{\"account\":\"zz\",\"key\":\"pk_x\"}", 404);
    post_expect(s, "/__sim/keys", "pk_a2", NULL, "{\"account\":\"a\",\"key\":\"\"}", 400);
    post_expect(s, "/__sim/keys", "pk_a2", NULL, "{\"account\":\"a\"}", 400);
    assert_int_equal(ts_sim_set_key(s, "nope", "pk_y"), TS_ERR_NOT_FOUND);
    fake_now += 1000;
    post_expect(s, EVENTS, "pk_a2", "2026-07-15", BODY(EV("2", "")), 202);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 2);
    assert_int_equal(st.duplicates_ignored, 1);
    ts_sim_destroy(s);
}

/* --retired-before: a revision before the date is answered 410 Gone (as
 * Klaviyo may answer a retired revision), nothing recorded; a supported
 * one is served. */
static void test_retired_revision_gone(void **state) {
    (void)state;
    ts_sim_opts_t o = {0};
    o.retired_before = "2026-01-01";
    ts_sim_t *s = sim_start(&o);
    post_expect(s, EVENTS, "pk_a", "2025-10-15", BODY(EV("1", "")), 410);
    post_expect(s, EVENTS, "pk_a", "2025-12-31.pre", BODY(EV("1", "")), 410);
    fake_now += 1000;
    post_expect(s, EVENTS, "pk_a", "2026-01-01", BODY(EV("1", "")), 202);
    fake_now += 1000;
    post_expect(s, EVENTS, "pk_a", "2026-07-15", BODY(EV("2", "")), 202);
    ts_sim_stats_t st;
    ts_sim_stats(s, "a", &st);
    assert_int_equal(st.events_recorded, 2);
    ts_sim_destroy(s);
}

TS_TEST_MAIN(th_curl_setup, th_curl_teardown, cmocka_unit_test(test_auth_revision_and_validation),
             cmocka_unit_test(test_duplicate_rules), cmocka_unit_test(test_rate_limits),
             cmocka_unit_test(test_key_rotation), cmocka_unit_test(test_retired_revision_gone),
             cmocka_unit_test(test_fault_injection), cmocka_unit_test(test_validator_limits),
             cmocka_unit_test(test_each_validation_rule),
             cmocka_unit_test(test_historical_import_rules),
             cmocka_unit_test(test_revision_and_limit_parsing),
             cmocka_unit_test(test_ratelimit_headers_and_revision),
             cmocka_unit_test(test_fail_rate_records_nothing),
             cmocka_unit_test(test_faults_at_run_time),
             cmocka_unit_test(test_single_endpoints_inspection_and_dumps),
             cmocka_unit_test(test_payload_limits_over_http),
             cmocka_unit_test(test_import_jobs_complete_late_and_report_errors),
             cmocka_unit_test(test_job_polls_share_the_import_budget),
             cmocka_unit_test(test_import_jobs_fail_unassigned_numbers),
             cmocka_unit_test(test_profile_deletion))
