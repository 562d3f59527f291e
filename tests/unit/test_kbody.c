/*
 * test_kbody.c - request bodies built from the bundled samples through the
 * real decode -> map -> envelope path. Checks their shape here; when
 * TS_BODY_DUMP_DIR is set, also writes every body there so the contract
 * test (tests/contract/0100-*.sh) validates these exact bytes against
 * Klaviyo's official OpenAPI schemas with an independent validator.
 */
#include "testlib.h"
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map_testlib.h"
#include "tillstream/decode.h"
#include "tillstream/kbody.h"
#include "tillstream/map.h"

static const char *src_dir(void) {
    const char *d = getenv("TS_SOURCE_DIR");
    return d ? d : TS_SOURCE_DIR;
}

static int dumped;

static void dump(const char *op, const ts_buf_t *b) {
    const char *dir = getenv("TS_BODY_DUMP_DIR");
    if (!dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%04d.json", dir, op, dumped++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(b->data, 1, b->len, f);
    fclose(f);
}

static cJSON *parse_ok(const ts_buf_t *b) {
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    if (!j) fail_msg("body is not valid JSON: %.200s", b->data);
    return j;
}

typedef tm_map_t env_t;

static void env_init(env_t *e) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/samples/config.sandbox.json", src_dir());
    ts_config_t *cfg = NULL;
    assert_int_equal(ts_config_load(path, &cfg, err, sizeof err), TS_OK);
    tm_map_start(e, cfg);
}

static FILE *open_sample(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/samples/%s", src_dir(), name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    return f;
}

static void test_event_bodies_from_samples(void **state) {
    (void)state;
    env_t e;
    env_init(&e);
    FILE *f = open_sample("orders.jsonl");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    ts_mapped_t m;
    ts_mapped_init(&m);
    ts_buf_t body = TS_BUF_INIT, all = TS_BUF_INIT;
    int bodies = 0, events = 0;
    /* one body with an entry per order too: separators between entries */
    ts_jw_t wa;
    ts_kbody_events_open(&wa, &all);
    while ((n = getline(&line, &cap, f)) > 0) {
        ts_order_t o;
        char err[256];
        ts_arena_reset(e.arena);
        assert_int_equal(ts_decode_order_json(line, (size_t)n, e.arena, &o, err, sizeof err),
                         TS_OK);
        /* embedded snapshot, else a stand-in customer with a Home Outlet */
        ts_customer_ref_t stand_in = {true,  o.customer_id, "someone@example.com", NULL, "Some",
                                      "One", "201"};
        assert_int_equal(ts_map_order(e.mapper, &o, ts_map_resolve_customer(&o, &stand_in), &m),
                         TS_OK);
        if (m.account < 0 || m.n_events == 0) continue;
        ts_kbody_events_entry_open(&wa, ts_mapped_str(&m, m.profile), m.profile.len, false);
        for (size_t i = 0; i < m.n_events; i++)
            ts_kbody_events_event(&wa, ts_mapped_str(&m, m.events[i].json), m.events[i].json.len);
        ts_kbody_events_entry_close(&wa);
        ts_jw_t w;
        ts_buf_reset(&body);
        ts_kbody_events_open(&w, &body);
        ts_kbody_events_entry_open(&w, ts_mapped_str(&m, m.profile), m.profile.len,
                                   bodies % 2 == 1);
        for (size_t i = 0; i < m.n_events; i++)
            ts_kbody_events_event(&w, ts_mapped_str(&m, m.events[i].json), m.events[i].json.len);
        ts_kbody_events_entry_close(&w);
        ts_kbody_events_close(&w);
        assert_false(w.failed);
        cJSON *j = parse_ok(&body);
        const cJSON *data = cJSON_GetObjectItem(j, "data");
        assert_string_equal(cJSON_GetObjectItem(data, "type")->valuestring,
                            "event-bulk-create-job");
        const cJSON *entries = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(data, "attributes"), "events-bulk-create"),
            "data");
        assert_int_equal(cJSON_GetArraySize(entries), 1);
        const cJSON *attrs = cJSON_GetObjectItem(cJSON_GetArrayItem(entries, 0), "attributes");
        assert_int_equal(
            cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(attrs, "events"), "data")),
            (int)m.n_events);
        assert_true(bodies % 2 == 1 ? cJSON_IsTrue(cJSON_GetObjectItem(attrs, "backfill"))
                                    : cJSON_GetObjectItem(attrs, "backfill") == NULL);
        cJSON_Delete(j);
        dump("bulk_create_events", &body);
        bodies++;
        events += (int)m.n_events;
    }
    assert_true(bodies >= 40);
    assert_true(events > bodies);
    ts_kbody_events_close(&wa);
    assert_false(wa.failed);
    cJSON *j = parse_ok(&all);
    const cJSON *entries = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "attributes"),
                            "events-bulk-create"),
        "data");
    assert_int_equal(cJSON_GetArraySize(entries), bodies);
    int total = 0;
    const cJSON *en;
    cJSON_ArrayForEach(en, entries) {
        assert_string_equal(cJSON_GetObjectItem(en, "type")->valuestring, "event-bulk-create");
        total += cJSON_GetArraySize(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(en, "attributes"), "events"), "data"));
    }
    assert_int_equal(total, events);
    cJSON_Delete(j);
    dump("bulk_create_events", &all);
    ts_buf_free(&all);
    free(line);
    fclose(f);
    ts_buf_free(&body);
    ts_mapped_free(&m);
    tm_map_stop(&e);
}

static void test_profile_and_consent_bodies_from_samples(void **state) {
    (void)state;
    env_t e;
    env_init(&e);
    FILE *f = open_sample("customers.jsonl");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    ts_mapped_t m;
    ts_mapped_init(&m);
    ts_buf_t prof = TS_BUF_INIT, sub = TS_BUF_INIT, unsub = TS_BUF_INIT;
    ts_jw_t wp, ws, wu;
    ts_kbody_profiles_open(&wp, &prof);
    ts_kbody_subs_open(&ws, &sub, true, "POS", false);
    ts_kbody_subs_open(&wu, &unsub, false, NULL, false);
    int np = 0, ns = 0, nu = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        ts_customer_t c;
        char err[256], email[256] = "", phone[32] = "";
        ts_arena_reset(e.arena);
        assert_int_equal(ts_decode_customer_json(line, (size_t)n, e.arena, &c, err, sizeof err),
                         TS_OK);
        assert_int_equal(ts_map_customer(e.mapper, &c, &m), TS_OK);
        if (m.account < 0) continue;
        ts_kbody_profiles_add(&wp, ts_mapped_str(&m, m.profile), m.profile.len);
        np++;
        memcpy(email, ts_mapped_str(&m, m.email), m.email.len);
        memcpy(phone, ts_mapped_str(&m, m.phone_e164), m.phone_e164.len);
        bool se = m.email_marketing == TS_SUB_SUBSCRIBE, ss = m.sms_marketing == TS_SUB_SUBSCRIBE;
        bool ue = m.email_marketing == TS_SUB_UNSUBSCRIBE,
             us = m.sms_marketing == TS_SUB_UNSUBSCRIBE;
        if (se || ss) {
            ts_kbody_subs_add(&ws, true, se ? email : NULL, ss ? phone : NULL, se, ss);
            ns++;
        }
        if (ue || us) {
            ts_kbody_subs_add(&wu, false, ue ? email : NULL, us ? phone : NULL, ue, us);
            nu++;
        }
    }
    ts_kbody_profiles_close(&wp);
    ts_kbody_subs_close(&ws);
    ts_kbody_subs_close(&wu);
    assert_true(np >= 20 && ns >= 5 && nu >= 5);
    cJSON *j = parse_ok(&prof);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "attributes"),
                                "profiles"),
            "data")),
        np);
    cJSON_Delete(j);
    j = parse_ok(&sub);
    assert_non_null(strstr(sub.data, "\"consent\":\"SUBSCRIBED\""));
    assert_null(strstr(sub.data, "UNSUBSCRIBED"));
    cJSON_Delete(j);
    j = parse_ok(&unsub);
    assert_non_null(strstr(unsub.data, "profile-subscription-bulk-delete-job"));
    assert_null(strstr(unsub.data, "\"SUBSCRIBED\""));
    cJSON_Delete(j);
    dump("bulk_import_profiles", &prof);
    dump("bulk_subscribe_profiles", &sub);
    dump("bulk_unsubscribe_profiles", &unsub);
    free(line);
    fclose(f);
    ts_buf_free(&prof);
    ts_buf_free(&sub);
    ts_buf_free(&unsub);
    ts_mapped_free(&m);
    tm_map_stop(&e);
}

static const cJSON *path(const cJSON *j, const char *const *keys) {
    for (; j && *keys; keys++)
        j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(*keys)) : cJSON_GetObjectItem(j, *keys);
    return j;
}

/* --replay-consent: a historical-import subscribe job carries
 * historical_import: true and each channel's consented_at (ISO-8601, to the
 * second); a live one carries neither (Klaviyo refuses consented_at without
 * the flag); an unsubscribe never carries consented_at. */
static void test_historical_subscribe_body(void **state) {
    (void)state;
    const int64_t t1 = 1795130100000, t2 = 1795130222999; /* 2026-11-19T... */
    char a1[32], a2[32];
    ts_time_format_iso8601(t1, a1, sizeof a1);
    ts_time_format_iso8601(t2, a2, sizeof a2);
    ts_buf_t hist = TS_BUF_INIT, live = TS_BUF_INIT, unsub = TS_BUF_INIT;
    ts_jw_t w;
    ts_kbody_subs_open(&w, &hist, true, "Point of sale", true);
    ts_kbody_subs_add_at(&w, true, "a@example.com", "+61412345678", true, true, t1, t2);
    ts_kbody_subs_add_at(&w, true, "b@example.com", NULL, true, false, t2, 0);
    ts_kbody_subs_close(&w);
    cJSON *j = parse_ok(&hist);
    const cJSON *attrs = path(j, (const char *const[]){"data", "attributes", NULL});
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(attrs, "historical_import")));
    const char *const e0[] = {"profiles",      "data",  "0",         "attributes",
                              "subscriptions", "email", "marketing", NULL};
    const char *const s0[] = {"profiles",      "data", "0",         "attributes",
                              "subscriptions", "sms",  "marketing", NULL};
    const char *const e1[] = {"profiles",      "data",  "1",         "attributes",
                              "subscriptions", "email", "marketing", NULL};
    assert_string_equal(cJSON_GetObjectItem(path(attrs, e0), "consent")->valuestring, "SUBSCRIBED");
    assert_string_equal(cJSON_GetObjectItem(path(attrs, e0), "consented_at")->valuestring, a1);
    assert_string_equal(cJSON_GetObjectItem(path(attrs, s0), "consented_at")->valuestring, a2);
    assert_string_equal(cJSON_GetObjectItem(path(attrs, e1), "consented_at")->valuestring, a2);
    assert_string_equal(a2, "2026-11-19T23:17:02+00:00"); /* to the second, UTC */
    cJSON_Delete(j);

    ts_kbody_subs_open(&w, &live, true, "Point of sale", false);
    ts_kbody_subs_add(&w, true, "a@example.com", "+61412345678", true, true);
    ts_kbody_subs_close(&w);
    assert_null(strstr(live.data, "historical_import"));
    assert_null(strstr(live.data, "consented_at"));
    j = parse_ok(&live);
    cJSON_Delete(j);

    /* an unsubscribe job: neither, whatever the caller passes */
    ts_kbody_subs_open(&w, &unsub, false, "Point of sale", true);
    ts_kbody_subs_add_at(&w, false, "a@example.com", NULL, true, false, t1, 0);
    ts_kbody_subs_close(&w);
    assert_null(strstr(unsub.data, "historical_import"));
    assert_null(strstr(unsub.data, "consented_at"));
    assert_null(strstr(unsub.data, "custom_source"));
    j = parse_ok(&unsub);
    cJSON_Delete(j);
    dump("bulk_subscribe_profiles", &hist);
    dump("bulk_subscribe_profiles", &live);
    dump("bulk_unsubscribe_profiles", &unsub);
    ts_buf_free(&hist);
    ts_buf_free(&live);
    ts_buf_free(&unsub);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_historical_subscribe_body),
             cmocka_unit_test(test_event_bodies_from_samples),
             cmocka_unit_test(test_profile_and_consent_bodies_from_samples))
