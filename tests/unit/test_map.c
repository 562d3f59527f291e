/*
 * test_map.c - every mapping rule, checked on the exact Klaviyo JSON the
 * mapper writes (parsed back with cJSON and compared member by member).
 */
#include "testlib.h"
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_testlib.h"
#include "map_testlib.h"
#include "tillstream/decode.h"
#include "tillstream/hash.h"
#include "tillstream/map.h"

typedef tm_map_t fx_t;

static const char *CONFIG =
    "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]},"
    "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]}],"
    "\"routing\":{\"default_phone_country\":\"61\",\"outlet_names\":{\"101\":\"Sydney CBD\"}}}";

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    tm_map_parse(f, CONFIG);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    tm_map_stop(*state);
    free(*state);
    return 0;
}

/* path: "a.b.c" (json_testlib.h) */
static const char *str_at(const cJSON *o, const char *path) { return tj_str(o, path); }

static cJSON *span_json(const ts_mapped_t *m, ts_span_t s) {
    cJSON *j = cJSON_ParseWithLength(ts_mapped_str(m, s), s.len);
    assert_non_null(j);
    return j;
}

/* The exact number text in the JSON (money must not drift through doubles). */
static void assert_number_text(const ts_mapped_t *m, ts_span_t s, const char *member,
                               const char *text) {
    char needle[128];
    snprintf(needle, sizeof needle, "\"%s\":%s", member, text);
    const char *hay = ts_mapped_str(m, s);
    char *copy = strndup(hay, s.len);
    if (!strstr(copy, needle)) fail_msg("%s not in %s", needle, copy);
    free(copy);
}

static void map_order(fx_t *f, const char *json, const ts_customer_ref_t *table) {
    ts_order_t o;
    char err[256];
    ts_arena_reset(f->arena);
    assert_int_equal(ts_decode_order_json(json, strlen(json), f->arena, &o, err, sizeof err),
                     TS_OK);
    assert_int_equal(ts_map_order(f->mapper, &o, ts_map_resolve_customer(&o, table), &f->m), TS_OK);
}

static void map_customer(fx_t *f, const char *json) {
    ts_customer_t c;
    char err[256];
    ts_arena_reset(f->arena);
    assert_int_equal(ts_decode_customer_json(json, strlen(json), f->arena, &c, err, sizeof err),
                     TS_OK);
    assert_int_equal(ts_map_customer(f->mapper, &c, &f->m), TS_OK);
}

/* vsnprintf into a buffer of the right size (the caller frees it). */
static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* map_order / map_customer of the JSON printf(fmt, ...) makes. */
static void map_order_fmt(fx_t *f, const ts_customer_ref_t *table, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *json = vformat(fmt, ap);
    va_end(ap);
    map_order(f, json, table);
    free(json);
}

static void map_customer_fmt(fx_t *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *json = vformat(fmt, ap);
    va_end(ap);
    map_customer(f, json);
    free(json);
}

#define ORDER_HEAD                                                                                 \
    "{\"order_id\":\"O1\",\"customer_id\":\"C1\",\"outlet_id\":\"201\",\"outlet_name\":"           \
    "\"Melbourne\","                                                                               \
    "\"channel\":\"in_store\",\"occurred_at\":\"2026-11-20T10:15:00+11:00\",\"currency\":\"AUD\","
#define LINES                                                                                      \
    "\"lines\":[{\"line_id\":\"1\",\"product_id\":\"P1\",\"sku\":\"TEE\",\"name\":\"Tee\","        \
    "\"quantity\":1,"                                                                              \
    "\"unit_price\":\"29.95\",\"row_total\":\"29.95\",\"categories\":[\"Apparel\",\"Tops\"],"      \
    "\"brand\":\"Till\","                                                                          \
    "\"image_url\":\"https://i/1.jpg\",\"product_url\":\"https://p/1\"},"                          \
    "{\"line_id\":\"2\",\"product_id\":\"P1\",\"sku\":\"TEE\",\"name\":\"Tee\",\"quantity\":2,"    \
    "\"unit_price\":153.02,\"row_total\":306.04,\"categories\":[\"Apparel\"],\"brand\":\"Till\"}]"

/* The rest of a completed order of total 1 with one line (line_id 1,
 * quantity 1, row_total 1) that also has the members `attrs`. */
#define ONE_LINE(attrs)                                                                            \
    "\"status\":\"completed\",\"total\":\"1\",\"lines\":[{\"line_id\":\"1\",\"quantity\":1,"       \
    "\"row_total\":1," attrs "}]}"

/* A customer with an email, `%s` for a phone, SMS consent true: C`%zu`. */
#define SMS_CUSTOMER                                                                               \
    "{\"customer_id\":\"C%zu\",\"email\":\"a@b.co\",\"phone\":\"%s\",\"home_outlet_id\":\"102\","  \
    "\"sms_consent\":true}"

static const ts_customer_ref_t TABLE_C1 = {true,  "C1", "Jo@Example.com ", "0412 345 678", "Jo",
                                           "Lee", "101"};

/* Order O1, completed, total 10, no lines, of the customer `table` has. */
static void map_order_10(fx_t *f, const ts_customer_ref_t *table) {
    map_order(f, ORDER_HEAD "\"status\":\"completed\",\"total\":\"10\"}", table);
}

/* map_order_10 for C1 as the table has it but without an email and with `phone`. */
static void map_order_10_phone_only(fx_t *f, const char *phone) {
    ts_customer_ref_t ref = TABLE_C1;
    ref.email = NULL;
    ref.phone = phone;
    map_order_10(f, &ref);
}

static void test_placed_order_field_by_field(void **state) {
    fx_t *f = *state;
    map_order(
        f,
        ORDER_HEAD
        "\"status\":\"completed\",\"total\":335.99,\"discount\":\"0\",\"tax\":\"30.54\"," LINES "}",
        &TABLE_C1);
    ts_mapped_t *m = &f->m;
    assert_int_equal(m->dead_letter, TS_REASON_NONE);
    assert_null(m->skipped);
    assert_int_equal(m->account, 0); /* Home Outlet 101 -> brand-a, not the selling outlet 201 */
    assert_int_equal(m->n_events, 3);

    cJSON *po = span_json(m, m->events[0].json);
    assert_string_equal(m->events[0].metric, "Placed Order");
    assert_string_equal(str_at(po, "metric.data.type"), "metric");
    assert_string_equal(str_at(po, "metric.data.attributes.name"), "Placed Order");
    assert_string_equal(str_at(po, "unique_id"), "O1");
    assert_string_equal(str_at(po, "time"), "2026-11-19T23:15:00+00:00");
    assert_string_equal(str_at(po, "value_currency"), "AUD");
    assert_number_text(m, m->events[0].json, "value", "335.99");
    const cJSON *p = cJSON_GetObjectItem(po, "properties");
    assert_string_equal(str_at(p, "OrderId"), "O1");
    assert_string_equal(str_at(p, "StoreId"), "201");
    assert_string_equal(str_at(p, "StoreLocation"), "Melbourne");
    assert_string_equal(str_at(p, "Channel"), "in_store");
    assert_number_text(m, m->events[0].json, "Tax", "30.54");
    const cJSON *items = cJSON_GetObjectItem(p, "Items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    const cJSON *it0 = cJSON_GetArrayItem(items, 0);
    assert_string_equal(str_at(it0, "ProductID"), "P1");
    assert_string_equal(str_at(it0, "SKU"), "TEE");
    assert_string_equal(str_at(it0, "ProductName"), "Tee");
    assert_string_equal(str_at(it0, "ImageURL"), "https://i/1.jpg");
    assert_string_equal(str_at(it0, "ProductURL"), "https://p/1");
    assert_string_equal(str_at(it0, "Brand"), "Till");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(it0, "Categories")), 2);
    assert_number_text(m, m->events[0].json, "ItemPrice", "29.95");
    assert_number_text(m, m->events[0].json, "RowTotal", "306.04");
    /* unique lists */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "ItemNames")), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "Categories")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "Brands")), 1);
    cJSON_Delete(po);

    /* Ordered Product per line; repeated SKU stays distinct by line id */
    cJSON *op1 = span_json(m, m->events[1].json), *op2 = span_json(m, m->events[2].json);
    assert_string_equal(m->events[1].metric, "Ordered Product");
    assert_string_equal(str_at(op1, "unique_id"), "O1:1");
    assert_string_equal(str_at(op2, "unique_id"), "O1:2");
    assert_string_equal(str_at(op2, "properties.SKU"), "TEE");
    assert_string_equal(str_at(op2, "properties.ProductBrand"), "Till");
    assert_string_equal(str_at(op2, "properties.StoreId"), "201");
    assert_number_text(m, m->events[2].json, "value", "306.04");
    assert_number_text(m, m->events[2].json, "Quantity", "2");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(op1, "properties"),
                                                            "ProductCategories")),
                     2);
    assert_memory_equal(ts_mapped_str(m, m->events[2].unique_id), "O1:2", 4);
    cJSON_Delete(op1);
    cJSON_Delete(op2);

    /* profile attributes */
    cJSON *prof = span_json(m, m->profile);
    assert_string_equal(str_at(prof, "email"), "jo@example.com");
    assert_string_equal(str_at(prof, "phone_number"), "+61412345678");
    assert_string_equal(str_at(prof, "external_id"), "C1");
    assert_string_equal(str_at(prof, "first_name"), "Jo");
    assert_string_equal(str_at(prof, "last_name"), "Lee");
    assert_string_equal(str_at(prof, "properties.HomeOutletId"), "101");
    assert_string_equal(str_at(prof, "properties.HomeOutletName"), "Sydney CBD");
    assert_string_equal(str_at(prof, "properties.MostRecentStoreId"), "201");
    assert_string_equal(str_at(prof, "properties.MostRecentStoreLocation"), "Melbourne");
    cJSON_Delete(prof);
    assert_memory_equal(ts_mapped_str(m, m->profile_key), "x:C1", 4);
}

static void test_status_events(void **state) {
    fx_t *f = *state;
    map_order(f, ORDER_HEAD "\"status\":\"fulfilled\",\"total\":\"10\"," LINES "}", &TABLE_C1);
    assert_int_equal(f->m.n_events, 1);
    assert_string_equal(f->m.events[0].metric, "Fulfilled Order");
    cJSON *e = span_json(&f->m, f->m.events[0].json);
    assert_string_equal(str_at(e, "unique_id"), "O1:fulfilled");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "properties"), "Items"));
    cJSON_Delete(e);

    map_order(f,
              ORDER_HEAD
              "\"status\":\"cancelled\",\"total\":\"10\",\"refund\":{\"reason\":\"Changed mind\"}}",
              &TABLE_C1);
    assert_string_equal(f->m.events[0].metric, "Cancelled Order");
    e = span_json(&f->m, f->m.events[0].json);
    assert_string_equal(str_at(e, "unique_id"), "O1:cancelled");
    assert_string_equal(str_at(e, "properties.Reason"), "Changed mind");
    cJSON_Delete(e);

    map_order(f,
              ORDER_HEAD "\"status\":\"refunded\",\"total\":\"100\",\"refund\":{\"refund_id\":"
                         "\"R9\",\"reason\":\"Faulty\",\"amount\":\"29.95\"}}",
              &TABLE_C1);
    assert_string_equal(f->m.events[0].metric, "Refunded Order");
    e = span_json(&f->m, f->m.events[0].json);
    assert_string_equal(str_at(e, "unique_id"), "R9");
    assert_string_equal(str_at(e, "properties.Reason"), "Faulty");
    assert_number_text(&f->m, f->m.events[0].json, "value", "29.95");
    cJSON_Delete(e);

    map_order(f, ORDER_HEAD "\"status\":\"refunded\",\"total\":\"100\"}", &TABLE_C1);
    e = span_json(&f->m, f->m.events[0].json);
    assert_string_equal(str_at(e, "unique_id"), "O1:refunded");
    assert_number_text(&f->m, f->m.events[0].json, "value", "100");
    cJSON_Delete(e);
}

static void test_voided_and_test_orders_skipped(void **state) {
    fx_t *f = *state;
    map_order(f, ORDER_HEAD "\"status\":\"voided\",\"total\":\"10\"}", &TABLE_C1);
    assert_string_equal(f->m.skipped, "VOIDED");
    assert_int_equal(f->m.n_events, 0);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    map_order(f, ORDER_HEAD "\"status\":\"completed\",\"is_test\":true,\"total\":\"10\"}",
              &TABLE_C1);
    assert_string_equal(f->m.skipped, "TEST_ORDER");
    assert_int_equal(f->m.n_events, 0);
    /* a voided test order counts as VOIDED (status is checked first) */
    map_order(f, ORDER_HEAD "\"status\":\"voided\",\"is_test\":true,\"total\":\"10\"}", &TABLE_C1);
    assert_string_equal(f->m.skipped, "VOIDED");
    /* skipped records are never dead-lettered, even with an unknown customer */
    map_order(f, ORDER_HEAD "\"status\":\"completed\",\"is_test\":true,\"total\":\"10\"}", NULL);
    assert_string_equal(f->m.skipped, "TEST_ORDER");
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
}

static void test_order_dead_letters(void **state) {
    fx_t *f = *state;
    map_order_10(f, NULL);
    assert_int_equal(f->m.dead_letter, TS_REASON_UNKNOWN_CUSTOMER);
    assert_non_null(strstr(f->m.detail, "C1"));
    ts_customer_ref_t nohome = TABLE_C1;
    nohome.home_outlet_id = NULL;
    map_order_10(f, &nohome);
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_HOME_OUTLET);
    ts_customer_ref_t unmapped = TABLE_C1;
    unmapped.home_outlet_id = "999";
    map_order_10(f, &unmapped);
    assert_int_equal(f->m.dead_letter, TS_REASON_UNMAPPED_OUTLET);
    assert_non_null(strstr(f->m.detail, "\"999\""));
    map_order_10_phone_only(f, "garbage");
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    assert_int_equal(f->m.account, -1);
    map_order(f, "{\"order_id\":\"O2\",\"status\":\"completed\",\"occurred_at\":1,\"total\":\"1\"}",
              NULL);
    assert_int_equal(f->m.dead_letter, TS_REASON_DECODE_ERROR); /* 1970: outside Klaviyo's window */
    assert_non_null(strstr(f->m.detail, "occurred_at: 1970-01-01T00:00:00"));
    map_order(
        f,
        "{\"order_id\":\"O3\",\"status\":\"completed\",\"occurred_at\":\"2100-01-01T00:00:00Z\","
        "\"total\":\"1\",\"customer\":{\"email\":\"a@b.co\",\"home_outlet_id\":\"101\"}}",
        NULL);
    assert_int_equal(f->m.dead_letter, TS_REASON_DECODE_ERROR); /* more than a year ahead */
    assert_int_equal(f->m.n_events, 0);
    map_order(
        f,
        "{\"order_id\":\"O4\",\"status\":\"completed\",\"occurred_at\":\"1990-01-02T00:00:00Z\","
        "\"total\":\"1\",\"customer\":{\"email\":\"a@b.co\",\"home_outlet_id\":\"101\"}}",
        NULL);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE); /* historical backfill is fine */
    assert_int_equal(f->m.n_events, 1);
}

static void test_snapshot_wins_over_table(void **state) {
    fx_t *f = *state;
    map_order(
        f,
        ORDER_HEAD
        "\"status\":\"completed\",\"total\":\"10\",\"customer\":{\"email\":\"snap@example.com\","
        "\"home_outlet_id\":\"201\"}}",
        &TABLE_C1);
    assert_int_equal(f->m.account, 1);
    cJSON *prof = span_json(&f->m, f->m.profile);
    assert_string_equal(str_at(prof, "email"), "snap@example.com");
    assert_string_equal(str_at(prof, "external_id"), "C1");
    assert_null(str_at(prof, "phone_number"));
    cJSON_Delete(prof);
}

static void test_customer_consent_rules(void **state) {
    fx_t *f = *state;
    map_customer(
        f,
        "{\"customer_id\":\"C7\",\"email\":\"a@b.co\",\"phone\":\"+61412345678\",\"home_outlet_"
        "id\":\"102\","
        "\"email_consent\":true,\"sms_consent\":false,\"billing_address\":{\"line1\":\"1 George "
        "St\","
        "\"city\":\"Sydney\",\"postcode\":\"2000\",\"country\":\"AU\"},\"loyalty_member\":true}");
    ts_mapped_t *m = &f->m;
    assert_int_equal(m->account, 0);
    assert_true(m->send_profile);
    assert_int_equal(m->email_marketing, TS_SUB_SUBSCRIBE);
    assert_int_equal(m->sms_marketing, TS_SUB_UNSUBSCRIBE); /* false never subscribes */
    cJSON *prof = span_json(m, m->profile);
    assert_string_equal(str_at(prof, "location.address1"), "1 George St");
    assert_string_equal(str_at(prof, "location.zip"), "2000");
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "properties"), "EmailConsent")));
    assert_true(
        cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "properties"), "SmsConsent")));
    cJSON_Delete(prof);

    map_customer(f, "{\"customer_id\":\"C8\",\"email\":\"a@b.co\",\"home_outlet_id\":\"102\","
                    "\"email_consent\":null}");
    assert_int_equal(m->email_marketing, TS_SUB_KEEP);
    assert_int_equal(m->sms_marketing, TS_SUB_KEEP);
    prof = span_json(m, m->profile);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "properties"), "EmailConsent"));
    cJSON_Delete(prof);

    /* SMS consent without a usable phone changes nothing; the phone is dropped with a warning */
    map_customer(f, "{\"customer_id\":\"C9\",\"email\":\"a@b.co\",\"phone\":\"12\",\"home_outlet_"
                    "id\":\"102\",\"sms_consent\":true}");
    assert_int_equal(m->sms_marketing, TS_SUB_KEEP);
    assert_true(m->warnings & TS_MAP_WARN_PHONE_DROPPED);
    assert_int_equal(m->dead_letter, TS_REASON_NONE);

    map_customer(f, "{\"customer_id\":\"C10\",\"home_outlet_id\":\"102\",\"email_consent\":true}");
    assert_int_equal(m->dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    map_customer(f, "{\"customer_id\":\"C11\",\"email\":\"a@b.co\"}");
    assert_int_equal(m->dead_letter, TS_REASON_NO_HOME_OUTLET);
}

static void test_overlong_email_is_not_an_identifier(void **state) {
    fx_t *f = *state;
    char local[300];
    memset(local, 'a', 260);
    local[260] = '\0';
    map_customer_fmt(
        f, "{\"customer_id\":\"C12\",\"email\":\"%s@b.co\",\"home_outlet_id\":\"101\"}", local);
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    map_customer_fmt(f,
                     "{\"customer_id\":\"C12\",\"email\":\"%s@b.co\",\"phone\":\"0412345678\","
                     "\"home_outlet_id\":\"101\"}",
                     local);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    cJSON *prof = span_json(&f->m, f->m.profile);
    assert_null(str_at(prof, "email"));
    assert_string_equal(str_at(prof, "phone_number"), "+61412345678");
    cJSON_Delete(prof);
}

/* Once warm, mapping the same kind of record reuses the buffers. */
static void test_warm_mapper_reuses_buffers(void **state) {
    fx_t *f = *state;
    const char *json = ORDER_HEAD "\"status\":\"completed\",\"total\":\"335.99\"," LINES "}";
    map_order(f, json, &TABLE_C1);
    char *text = f->m.text.data;
    size_t cap = f->m.text.cap;
    ts_map_event_t *ev = f->m.events;
    for (int i = 0; i < 50; i++) {
        map_order(f, json, &TABLE_C1);
        assert_int_equal(f->m.n_events, 3);
        assert_ptr_equal(f->m.text.data, text);
        assert_int_equal(f->m.text.cap, cap);
        assert_ptr_equal(f->m.events, ev);
    }
}

/* A new string (caller frees) of n times c. */
static char *filled(size_t n, char c) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_long_strings_are_truncated(void **state) {
    fx_t *f = *state;
    size_t n = 150 * 1024;
    char *big = filled(n, 'x');
    map_order_fmt(f, &TABLE_C1, ORDER_HEAD ONE_LINE("\"name\":\"%s\""), big);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_true(f->m.warnings & TS_MAP_WARN_TRUNCATED);
    cJSON *op = span_json(&f->m, f->m.events[1].json);
    const char *name = str_at(op, "properties.ProductName");
    assert_non_null(name);
    assert_true(strlen(name) <= 100 * 1024);
    assert_non_null(strstr(name, "\xE2\x80\xA6[truncated]"));
    /* the kept prefix plus the marker ends exactly at the marker */
    size_t nl = strlen(name), ml = strlen("\xE2\x80\xA6[truncated]");
    assert_string_equal(name + nl - ml, "\xE2\x80\xA6[truncated]");
    assert_int_equal(name[nl - ml - 1], 'x');
    cJSON_Delete(op);

    /* two-byte characters: the cut never splits one */
    for (size_t i = 0; i + 1 < n; i += 2) {
        big[i] = (char)0xC3;
        big[i + 1] = (char)0xA9; /* U+00E9 */
    }
    map_order_fmt(f, &TABLE_C1, ORDER_HEAD ONE_LINE("\"brand\":\"%s\""), big);
    assert_true(f->m.warnings & TS_MAP_WARN_TRUNCATED);
    op = span_json(&f->m, f->m.events[1].json);
    name = str_at(op, "properties.ProductBrand");
    assert_non_null(name);
    size_t bl = strlen(name), ml2 = strlen("\xE2\x80\xA6[truncated]");
    assert_true(bl <= 100 * 1024);
    assert_int_equal((bl - ml2) % 2, 0);
    assert_int_equal((unsigned char)name[bl - ml2 - 1], 0xA9);
    assert_int_equal((unsigned char)name[bl - ml2 - 2], 0xC3);
    cJSON_Delete(op);
    free(big);
}

/* Every string anywhere in a JSON value is at most `max` bytes; returns how
 * many strings end in the truncation marker. */
static int assert_strings_within(const cJSON *n, size_t max) {
    int cut = 0;
    for (const cJSON *c = n->child; c; c = c->next) {
        if (cJSON_IsString(c)) {
            size_t l = strlen(c->valuestring);
            if (l > max) fail_msg("%s: %zu bytes", c->string ? c->string : "[]", l);
            if (l >= 14 && !strcmp(c->valuestring + l - 14, "\xE2\x80\xA6[truncated]")) cut++;
        }
        cut += assert_strings_within(c, max);
    }
    return cut;
}

/* A 2 MB product name, category and brand are cut the same way in every
 * place they appear (issue 13: Placed Order's ItemNames[0] was sent whole
 * while Items[].ProductName and Ordered Product were cut: a 400 for half
 * of the order). */
static void test_long_strings_are_cut_the_same_everywhere(void **state) {
    fx_t *f = *state;
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    map_order_fmt(f, &TABLE_C1,
                  ORDER_HEAD ONE_LINE("\"name\":\"%s\",\"categories\":[\"%s\"],\"brand\":\"%s\""),
                  big, big, big);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_int_equal(f->m.n_events, 2);
    assert_true(f->m.warnings & TS_MAP_WARN_TRUNCATED);
    cJSON *po = span_json(&f->m, f->m.events[0].json);
    cJSON *op = span_json(&f->m, f->m.events[1].json);
    /* Placed Order: Items[0].{ProductName,Categories[0],Brand}, ItemNames[0],
     * Categories[0], Brands[0]; Ordered Product: ProductName,
     * ProductCategories[0], ProductBrand */
    assert_int_equal(assert_strings_within(po, 100 * 1024), 6);
    assert_int_equal(assert_strings_within(op, 100 * 1024), 3);
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(po, "properties");
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(props, "Items"), 0);
    const char *want = str_at(op, "properties.ProductName");
    assert_non_null(want);
    assert_int_equal(strlen(want), 100 * 1024);
    assert_memory_equal(want, big, 100 * 1024 - 14);
    assert_string_equal(str_at(item, "ProductName"), want);
    assert_string_equal(str_at(item, "Brand"), want);
    assert_string_equal(str_at(op, "properties.ProductBrand"), want);
    const char *lists[] = {"ItemNames", "Categories", "Brands"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(props, lists[i]);
        assert_int_equal(cJSON_GetArraySize(l), 1);
        assert_string_equal(cJSON_GetArrayItem(l, 0)->valuestring, want);
    }
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "Categories"), 0)->valuestring,
        want);
    cJSON_Delete(po);
    cJSON_Delete(op);

    /* the profile: a 2 MB first name is cut too */
    map_customer_fmt(f,
                     "{\"customer_id\":\"C9\",\"email\":\"a@b.co\",\"home_outlet_id\":\"101\","
                     "\"first_name\":\"%s\",\"billing_address\":{\"city\":\"%s\"}}",
                     big, big);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_true(f->m.warnings & TS_MAP_WARN_TRUNCATED);
    cJSON *prof = span_json(&f->m, f->m.profile);
    assert_int_equal(assert_strings_within(prof, 100 * 1024), 2);
    cJSON_Delete(prof);

    /* invalid bytes become the 3-byte U+FFFD: the cut counts the output */
    memset(big, 0xFF, 60 * 1024);
    big[60 * 1024] = '\0';
    map_order_fmt(f, &TABLE_C1, ORDER_HEAD ONE_LINE("\"name\":\"%s\""), big);
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_true(f->m.warnings & TS_MAP_WARN_TRUNCATED);
    po = span_json(&f->m, f->m.events[0].json);
    assert_int_equal(assert_strings_within(po, 100 * 1024), 2);
    cJSON_Delete(po);
    free(big);
}

/* A unique_id is never cut (cut ids would merge events): one over Klaviyo's
 * string limit dead-letters the order instead of earning a 400. */
static void test_overlong_unique_id_is_dead_lettered(void **state) {
    fx_t *f = *state;
    size_t n = 100 * 1024;
    char *id = filled(n, '7');
    /* order `%s` of C1, completed, total 1, with `%s` for its lines */
    const char *order =
        "{\"order_id\":\"%s\",\"customer_id\":\"C1\",\"occurred_at\":\"2026-11-20T10:"
        "15:00Z\",\"status\":\"completed\",\"total\":\"1\",\"lines\":[%s]}";
    const char *line = "{\"line_id\":\"%s\",\"quantity\":1,\"row_total\":1}";
    char *big_line = malloc(n + 64);
    snprintf(big_line, n + 64, line, id);
    map_order_fmt(f, &TABLE_C1, order, "O1", big_line);
    assert_int_equal(f->m.dead_letter, TS_REASON_PAYLOAD_TOO_LARGE);
    assert_int_equal(f->m.n_events, 0);
    assert_int_equal(f->m.account, -1);
    assert_non_null(strstr(f->m.detail, "Ordered Product: unique_id is 102403 bytes"));
    /* a long id under the limit is kept whole (no 512-byte cut) */
    id[1000] = '\0';
    map_order_fmt(f, &TABLE_C1, order, id,
                  "{\"line_id\":\"1\",\"quantity\":1,\"row_total\":1},"
                  "{\"line_id\":\"2\",\"quantity\":1,\"row_total\":1}");
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_int_equal(f->m.n_events, 3);
    assert_int_equal(f->m.events[1].unique_id.len, 1002);
    assert_int_equal(f->m.events[2].unique_id.len, 1002);
    assert_memory_not_equal(ts_mapped_str(&f->m, f->m.events[1].unique_id),
                            ts_mapped_str(&f->m, f->m.events[2].unique_id), 1002);
    free(big_line);
    free(id);
}

static void test_oversized_order_is_dead_lettered(void **state) {
    fx_t *f = *state;
    /* 600 lines with ~9 KB of names each: > 5 MB of events */
    size_t nl = 600, cap = nl * 20000 + 1024;
    char *json = malloc(cap), *p = json;
    char *name = malloc(9001);
    memset(name, 'n', 9000);
    name[9000] = '\0';
    p += sprintf(p, ORDER_HEAD "\"status\":\"completed\",\"total\":\"1\",\"lines\":[");
    for (size_t i = 0; i < nl; i++)
        p += sprintf(p, "%s{\"line_id\":\"%zu\",\"quantity\":1,\"row_total\":1,\"name\":\"%s\"}",
                     i ? "," : "", i, name);
    strcpy(p, "]}");
    map_order(f, json, &TABLE_C1);
    assert_int_equal(f->m.dead_letter, TS_REASON_PAYLOAD_TOO_LARGE);
    assert_int_equal(f->m.account, -1);
    free(json);
    free(name);
}

/* Issue 16's phone table as the mapper applies it (default country 61):
 * what the profile gets as phone_number and PhoneExtension, and whether
 * SMS consent true becomes a subscription. */
static void test_phone_table_mapping(void **state) {
    fx_t *f = *state;
    static const struct {
        const char *input, *e164, *extension;
        ts_sub_t sms;      /* for sms_consent true */
        unsigned warnings; /* expected warning bits */
    } rows[] = {
        {"+61 0412 345 678", "+61412345678", NULL, TS_SUB_SUBSCRIBE, 0},
        {"61412345678", "+61412345678", NULL, TS_SUB_SUBSCRIBE, 0},
        {"+44 (0)20 7946 0958", "+442079460958", NULL, TS_SUB_KEEP, TS_MAP_WARN_SMS_NOT_MOBILE},
        {"+1 (415) 555-0100 ext 2", "+14155550100", "2", TS_SUB_SUBSCRIBE, 0}, /* US */
        {"+61 2 9876 5432 x12", "+61298765432", "12", TS_SUB_KEEP, TS_MAP_WARN_SMS_NOT_MOBILE},
        {"1300 123 456", "+611300123456", NULL, TS_SUB_KEEP, TS_MAP_WARN_SMS_NOT_MOBILE},
        {"1800 123 456", "+611800123456", NULL, TS_SUB_KEEP, TS_MAP_WARN_SMS_NOT_MOBILE},
        {"9876 5432", NULL, NULL, TS_SUB_KEEP, TS_MAP_WARN_PHONE_DROPPED},
        {"+999 123 456 789", NULL, NULL, TS_SUB_KEEP, TS_MAP_WARN_PHONE_DROPPED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        map_customer_fmt(f, SMS_CUSTOMER, i, rows[i].input);
        ts_mapped_t *m = &f->m;
        assert_int_equal(m->dead_letter, TS_REASON_NONE);
        if (m->sms_marketing != rows[i].sms || m->warnings != rows[i].warnings)
            fail_msg("%s: sms %d warnings %#x", rows[i].input, m->sms_marketing, m->warnings);
        cJSON *prof = span_json(m, m->profile);
        const char *got = str_at(prof, "phone_number");
        if (rows[i].e164 ? !got || strcmp(got, rows[i].e164) : got != NULL)
            fail_msg("%s: phone_number %s", rows[i].input, got ? got : "(none)");
        const char *ext = str_at(prof, "properties.PhoneExtension");
        if (rows[i].extension ? !ext || strcmp(ext, rows[i].extension) : ext != NULL)
            fail_msg("%s: PhoneExtension %s", rows[i].input, ext ? ext : "(none)");
        /* the POS consent is still recorded as a property */
        assert_true(cJSON_IsTrue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "properties"), "SmsConsent")));
        cJSON_Delete(prof);
    }
}

/* The mapper remembers valid phones (libphonenumber is its most expensive
 * step): a second, third... mapping of the same input, between others,
 * gives byte-for-byte what the first gave, for valid, extended and
 * invalid numbers alike. */
static void test_phone_memo_same_output(void **state) {
    fx_t *f = *state;
    static const char *const inputs[] = {
        "0412 345 678",     "+61412345678",       "+61 412 345 678",         "(02) 9876 5432",
        "1300 123 456",     "+44 20 7946 0958",   "+1 (415) 555-0100 ext 2", "9876 5432",
        "+999 123 456 789", "+61 2 9876 5432 x12"};
    enum { N = sizeof inputs / sizeof inputs[0] };
    char *first[N] = {0};
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < N; i++) {
            map_customer_fmt(f, SMS_CUSTOMER, i, inputs[i]);
            ts_mapped_t *m = &f->m;
            char got[4096];
            snprintf(got, sizeof got, "%.*s|%d|%#x|%d|%s|%.*s", (int)m->profile.len,
                     ts_mapped_str(m, m->profile), (int)m->phone_type, m->warnings,
                     (int)m->sms_marketing, m->phone_dropped, (int)m->phone_e164.len,
                     ts_mapped_str(m, m->phone_e164));
            if (pass == 0) {
                first[i] = strdup(got);
            } else if (strcmp(first[i], got) != 0) {
                fail_msg("%s, pass %d:\n%s\nfirst:\n%s", inputs[i], pass, got, first[i]);
            }
        }
    }
    for (size_t i = 0; i < N; i++) free(first[i]);
}

/* Three valid mobiles whose memo set is the same (32,768 sets of two
 * ways, see map.c): mapped in turn, each still gets its own number. */
static void test_phone_memo_collisions(void **state) {
    fx_t *f = *state;
    enum { K = 4000 };
    static uint32_t set_of[K];
    char in[3][32];
    int found = 0;
    for (int i = 0; i < K && found < 3; i++) {
        char b[32];
        snprintf(b, sizeof b, "+6141%07d", i * 2499);
        set_of[i] = (uint32_t)(ts_hash_bytes(b, strlen(b)) & 32767u);
        found = 0;
        for (int j = 0; j <= i && found < 3; j++)
            if (set_of[j] == set_of[i]) snprintf(in[found++], sizeof in[0], "+6141%07d", j * 2499);
    }
    assert_int_equal(found, 3);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 3; k++) {
            map_customer_fmt(
                f, "{\"customer_id\":\"C1\",\"phone\":\"%s\",\"home_outlet_id\":\"102\"}", in[k]);
            assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
            assert_int_equal(f->m.phone_type, TS_PHONE_MOBILE);
            assert_int_equal(f->m.phone_e164.len, strlen(in[k]));
            assert_memory_equal(ts_mapped_str(&f->m, f->m.phone_e164), in[k], strlen(in[k]));
        }
    }
}

/* A landline's "do not contact" is still sent: an unsubscribe only
 * withdraws consent (and undoes what the old heuristic subscribed). */
static void test_landline_unsubscribe_is_sent(void **state) {
    fx_t *f = *state;
    map_customer(f, "{\"customer_id\":\"C1\",\"phone\":\"(02) 9876 5432\",\"home_outlet_id\":"
                    "\"102\",\"sms_consent\":false}");
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_int_equal(f->m.phone_type, TS_PHONE_FIXED_LINE);
    assert_int_equal(f->m.sms_marketing, TS_SUB_UNSUBSCRIBE);
    assert_int_equal(f->m.warnings, 0);
}

/* An invalid phone is no identifier: alone, the customer is dead-lettered
 * NO_PROFILE_IDENTIFIER and the detail says the phone was invalid (without
 * the number); the order path says the same. */
static void test_invalid_phone_alone_is_no_identifier(void **state) {
    fx_t *f = *state;
    map_customer(f, "{\"customer_id\":\"C1\",\"phone\":\"9876 5432\",\"home_outlet_id\":\"102\","
                    "\"sms_consent\":true}");
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    assert_non_null(strstr(f->m.detail, "customer C1 has neither"));
    assert_non_null(strstr(f->m.detail, "phone number invalid: not a valid phone number for +61"));
    assert_null(strstr(f->m.detail, "9876"));
    map_order_10_phone_only(f, "+999 123 456 789");
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    assert_non_null(
        strstr(f->m.detail, "phone number invalid: an unassigned country calling code"));
    /* no phone at all: the detail has no phone note */
    map_customer(f, "{\"customer_id\":\"C2\",\"home_outlet_id\":\"102\"}");
    assert_int_equal(f->m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
    assert_null(strstr(f->m.detail, "phone number invalid"));
    /* the US number with an extension was dead-lettered by the old heuristic */
    map_customer(f, "{\"customer_id\":\"C3\",\"phone\":\"+1 (415) 555-0100 ext 2\","
                    "\"home_outlet_id\":\"102\"}");
    assert_int_equal(f->m.dead_letter, TS_REASON_NONE);
    assert_int_equal(f->m.account, 0);
}

/* routing.default_phone_country "AU" reads national numbers as "61" does. */
static void test_default_country_as_region(void **state) {
    (void)state;
    static const char *const cfgs[] = {
        "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]}],"
        "\"routing\":{\"default_phone_country\":\"AU\"}}",
        "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]}]}"};
    for (int k = 0; k < 2; k++) {
        ts_config_t *cfg;
        char err[256];
        assert_int_equal(ts_config_parse(cfgs[k], &cfg, err, sizeof err), TS_OK);
        ts_router_t *router = ts_router_new(cfg, err, sizeof err);
        ts_mapper_t *mp = ts_mapper_new(cfg, router, err, sizeof err);
        ts_arena_t *arena = ts_arena_new(0);
        ts_mapped_t m;
        ts_mapped_init(&m);
        const char *json = "{\"customer_id\":\"C1\",\"phone\":\"0412 345 678\","
                           "\"home_outlet_id\":\"1\",\"sms_consent\":true}";
        ts_customer_t c;
        assert_int_equal(ts_decode_customer_json(json, strlen(json), arena, &c, err, sizeof err),
                         TS_OK);
        assert_int_equal(ts_map_customer(mp, &c, &m), TS_OK);
        if (k == 0) {
            assert_int_equal(m.dead_letter, TS_REASON_NONE);
            assert_int_equal(m.sms_marketing, TS_SUB_SUBSCRIBE);
            assert_int_equal(m.phone_e164.len, strlen("+61412345678"));
            assert_memory_equal(ts_mapped_str(&m, m.phone_e164), "+61412345678", m.phone_e164.len);
        } else { /* no default country: a national number is no identifier */
            assert_int_equal(m.dead_letter, TS_REASON_NO_PROFILE_IDENTIFIER);
            assert_non_null(strstr(m.detail, "routing.default_phone_country"));
        }
        ts_mapped_free(&m);
        ts_arena_destroy(arena);
        ts_mapper_destroy(mp);
        ts_router_destroy(router);
        ts_config_destroy(cfg);
    }
}

TS_TEST_MAIN(
    NULL, NULL, cmocka_unit_test_setup_teardown(test_placed_order_field_by_field, setup, teardown),
    cmocka_unit_test_setup_teardown(test_phone_memo_same_output, setup, teardown),
    cmocka_unit_test_setup_teardown(test_phone_memo_collisions, setup, teardown),
    cmocka_unit_test_setup_teardown(test_status_events, setup, teardown),
    cmocka_unit_test_setup_teardown(test_voided_and_test_orders_skipped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_order_dead_letters, setup, teardown),
    cmocka_unit_test_setup_teardown(test_snapshot_wins_over_table, setup, teardown),
    cmocka_unit_test_setup_teardown(test_customer_consent_rules, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlong_email_is_not_an_identifier, setup, teardown),
    cmocka_unit_test_setup_teardown(test_warm_mapper_reuses_buffers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_long_strings_are_truncated, setup, teardown),
    cmocka_unit_test_setup_teardown(test_long_strings_are_cut_the_same_everywhere, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlong_unique_id_is_dead_lettered, setup, teardown),
    cmocka_unit_test_setup_teardown(test_oversized_order_is_dead_lettered, setup, teardown),
    cmocka_unit_test_setup_teardown(test_phone_table_mapping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_landline_unsubscribe_is_sent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_phone_alone_is_no_identifier, setup, teardown),
    cmocka_unit_test(test_default_country_as_region))
