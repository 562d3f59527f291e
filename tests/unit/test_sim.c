/*
 * test_sim.c - the Klaviyo simulator behaves like Klaviyo where it matters:
 * auth, revision header, validation with error pointers, duplicate rules,
 * rate limits with Retry-After (fake clock: no sleeping), fault injection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static resp_t post(ts_sim_t *sim, const char *path, const char *key, const char *rev,
                   const char *body) {
    resp_t r = {0, TS_BUF_INIT, TS_BUF_INIT, CURLE_OK};
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
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
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

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_revision_and_validation),
        cmocka_unit_test(test_duplicate_rules),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_validator_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
