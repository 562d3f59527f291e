/* test_decode_json.c - JSON customers/orders: values, and errors with field paths. */
#include "testlib.h"
#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/decode.h"

static char err[512];

static ts_err_t order(const char *json, ts_order_t *o, ts_arena_t *a) {
    err[0] = '\0';
    return ts_decode_order_json(json, strlen(json), a, o, err, sizeof err);
}

static ts_err_t customer(const char *json, ts_customer_t *c, ts_arena_t *a) {
    err[0] = '\0';
    ts_arena_reset(a);
    return ts_decode_customer_json(json, strlen(json), a, c, err, sizeof err);
}

/* The order (is_order) or customer record is refused with an error that
 * contains `want`. */
static void expect_refused(bool is_order, const char *json, const char *want) {
    ts_arena_t *a = ts_arena_new(0);
    ts_order_t o;
    ts_customer_t c;
    ts_err_t rc = is_order ? order(json, &o, a) : customer(json, &c, a);
    if (rc != TS_ERR_INVALID) fail_msg("accepted: %s", json);
    if (!strstr(err, want)) fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    ts_arena_destroy(a);
}

static void expect_order_error(const char *json, const char *want) {
    expect_refused(true, json, want);
}

static void expect_customer_error(const char *json, const char *want) {
    expect_refused(false, json, want);
}

#define OK_HEAD                                                                                    \
    "{\"order_id\":\"O1\",\"status\":\"completed\",\"occurred_at\":\"2026-11-20T10:15:00Z\","      \
    "\"total\":\"1\""

static void test_order_values(void **state) {
    (void)state;
    ts_arena_t *a = ts_arena_new(0);
    ts_order_t o;
    assert_int_equal(
        order("{\"order_id\":\"123\",\"customer_id\":\"C1\",\"status\":\"refunded\",\"channel\":"
              "\"online\","
              "\"is_test\":false,\"occurred_at\":1795130100000,\"currency\":\"NZD\",\"total\":"
              "\"335.99\","
              "\"tax\":30.5,\"lines\":[{\"line_id\":\"L1\",\"quantity\":\"1.5\",\"row_total\":10,"
              "\"categories\":[\"A\",\"B\"]}],\"refund\":{\"refund_id\":\"R1\",\"amount\":\"5\"},"
              "\"customer\":{\"email\":\"x@y.z\",\"home_outlet_id\":\"101\"},\"future_field\":{"
              "\"x\":1}}",
              &o, a),
        TS_OK);
    assert_string_equal(o.order_id, "123");
    assert_int_equal(o.status, TS_ORDER_REFUNDED);
    assert_int_equal(o.channel, TS_CHANNEL_ONLINE);
    assert_int_equal(o.occurred_at_ms, 1795130100000LL);
    assert_string_equal(o.currency, "NZD");
    assert_int_equal(o.total.units, 33599);
    assert_int_equal(o.tax.units, 305);
    assert_int_equal(o.n_lines, 1);
    assert_int_equal(o.lines[0].quantity.units, 15);
    assert_int_equal(o.lines[0].n_categories, 2);
    assert_string_equal(o.lines[0].categories[1], "B");
    assert_true(o.refund.present);
    assert_string_equal(o.refund.refund_id, "R1");
    assert_true(o.customer.present);
    assert_string_equal(o.customer.customer_id, "C1");
    assert_string_equal(o.customer.home_outlet_id, "101");
    ts_arena_destroy(a);
}

static void test_order_errors_have_paths(void **state) {
    (void)state;
    expect_order_error("[1,2]", "not a JSON object");
    expect_order_error("{\"order_id\":", "invalid JSON at byte");
    expect_order_error("{\"order_id\": x}", "invalid JSON at byte 13");
    expect_order_error(OK_HEAD "} {\"order_id\":\"O2\"}", "invalid JSON at byte 88: trailing data");
    expect_order_error("", "invalid JSON at byte 0");
    expect_order_error("{\"status\":\"completed\"}", "order_id: required");
    expect_order_error(
        "{\"order_id\":\"O1\",\"status\":\"lost\",\"occurred_at\":1795130100000,\"total\":1}",
        "status: expected one of completed|fulfilled|cancelled|refunded|voided");
    expect_order_error("{\"order_id\":\"O1\",\"status\":\"completed\",\"total\":\"1\"}",
                       "occurred_at: required");
    expect_order_error(
        "{\"order_id\":\"O1\",\"status\":\"completed\",\"occurred_at\":\"yesterday\",\"total\":1}",
        "occurred_at: expected an ISO-8601");
    expect_order_error(OK_HEAD ",\"currency\":\"dollars\"}", "currency: expected an ISO 4217 code");
    expect_order_error(OK_HEAD ",\"lines\":[{\"line_id\":\"1\",\"quantity\":1,\"row_total\":1},"
                               "{\"line_id\":\"2\",\"quantity\":1,\"row_total\":1},{\"line_id\":"
                               "\"3\",\"quantity\":true,\"row_total\":1}]}",
                       "lines[2].quantity: expected a number or decimal string");
    expect_order_error(OK_HEAD ",\"lines\":[{\"quantity\":1,\"row_total\":1}]}",
                       "lines[0].line_id: required");
    expect_order_error(OK_HEAD
                       ",\"lines\":[{\"line_id\":\"1\",\"quantity\":1,\"row_total\":\"1,00\"}]}",
                       "lines[0].row_total: expected a decimal number");
    expect_order_error(
        OK_HEAD
        ",\"lines\":[{\"line_id\":\"1\",\"quantity\":1,\"row_total\":1,\"categories\":[1]}]}",
        "lines[0].categories[0]: expected a string");
    expect_order_error(OK_HEAD ",\"refund\":{\"amount\":[]}}",
                       "refund.amount: expected a number or decimal string");
    expect_order_error(OK_HEAD ",\"customer\":{\"email\":5.5}}",
                       "customer.email: expected a string");
    expect_order_error(OK_HEAD ",\"is_test\":\"no\"}", "is_test: expected true or false");
}

/* Members are matched to fields in one pass over an object: the first of
 * repeated keys wins (as cJSON's lookup), keys match exactly (case,
 * prefixes), unknown members in any number are skipped, and a record
 * larger than the scratch chunks (many nodes, a long string) decodes. */
static void test_members_by_key(void **state) {
    (void)state;
    expect_order_error("{\"Order_ID\":\"O1\",\"order\":\"O1\",\"order_id_\":\"O1\"}",
                       "order_id: required");
    /* same length, first, middle and last bytes as "order_id" / "status" */
    expect_order_error("{\"oxxxrxxd\":\"O1\"}", "order_id: required");
    expect_order_error("{\"order_id\":\"O1\",\"sxxtxs\":\"completed\"}", "status: required");
    expect_order_error(OK_HEAD ",\"lines\":[{\"Line_id\":\"1\",\"quantity\":1,\"row_total\":1}]}",
                       "lines[0].line_id: required");
    ts_order_t o;
    ts_arena_t *a = ts_arena_new(0);
    assert_int_equal(
        order("{\"order_id\":\"first\",\"status\":\"completed\",\"order_id\":\"second\","
              "\"occurred_at\":1795130100000,\"total\":\"1\",\"total\":\"2\","
              "\"lines\":[{\"line_id\":\"L1\",\"line_id\":\"L2\",\"quantity\":1,"
              "\"row_total\":1,\"sku\":null,\"sku\":\"S\"}],"
              "\"customer\":{\"email\":\"a@b.c\",\"email\":\"d@e.f\"}}",
              &o, a),
        TS_OK);
    assert_string_equal(o.order_id, "first");
    assert_int_equal(o.total.units, 1);
    assert_string_equal(o.lines[0].line_id, "L1");
    assert_null(o.lines[0].sku); /* the first "sku" is null: absent */
    assert_string_equal(o.customer.email, "a@b.c");

    /* 3,000 unknown members before the fields, a 20,000-byte name */
    ts_buf_t j = TS_BUF_INIT;
    ts_buf_puts(&j, "{");
    for (int i = 0; i < 3000; i++) ts_buf_printf(&j, "\"x%d\":[%d,\"v\"],", i, i);
    ts_buf_puts(&j, "\"outlet_name\":\"");
    for (int i = 0; i < 20000; i++) ts_buf_putc(&j, (char)('a' + i % 26));
    ts_buf_puts(&j, "\",");
    ts_buf_puts(&j, OK_HEAD + 1); /* without its '{' */
    ts_buf_puts(&j, ",\"channel\":\"online\"}");
    assert_int_equal(order(j.data, &o, a), TS_OK);
    assert_string_equal(o.order_id, "O1");
    assert_int_equal(o.channel, TS_CHANNEL_ONLINE);
    assert_int_equal(strlen(o.outlet_name), 20000);
    assert_int_equal(o.outlet_name[19999], 'a' + 19999 % 26);
    ts_buf_free(&j);
    ts_arena_destroy(a);
}

static void test_customer_values_and_errors(void **state) {
    (void)state;
    ts_arena_t *a = ts_arena_new(0);
    ts_customer_t c;
    const char *j =
        "{\"customer_id\":\"C1\",\"email\":\"a@b.c\",\"home_outlet_id\":null,\"email_consent\":"
        "false,"
        "\"sms_consent\":null,\"billing_address\":{\"line1\":\"1 St\",\"postcode\":\"2000\"},"
        "\"created_at\":\"2025-01-01T00:00:00+10:00\"}";
    assert_int_equal(ts_decode_customer_json(j, strlen(j), a, &c, err, sizeof err), TS_OK);
    assert_null(c.home_outlet_id);
    assert_int_equal(c.email_consent, TS_TRI_FALSE);
    assert_int_equal(c.sms_consent, TS_TRI_UNKNOWN);
    assert_true(c.has_billing_address);
    assert_string_equal(c.billing_address.postcode, "2000");
    assert_int_equal(c.created_at_ms, 1735653600000LL);
    assert_int_equal(c.email_consent_at_ms, 0); /* optional: absent is 0 */
    j = "{\"customer_id\":\"C1\",\"email_consent\":true,\"email_consent_at\":"
        "\"2026-11-20T10:15:00Z\",\"sms_consent_at\":1795130100000}";
    assert_int_equal(ts_decode_customer_json(j, strlen(j), a, &c, err, sizeof err), TS_OK);
    assert_int_equal(c.email_consent_at_ms, 1795169700000LL);
    assert_int_equal(c.sms_consent_at_ms, 1795130100000LL);
    ts_arena_destroy(a);
    expect_customer_error("{\"customer_id\":\"C1\",\"email_consent_at\":true}", "email_consent_at");
    expect_customer_error("{\"customer_id\":\"C1\",\"email_consent\":\"yes\"}",
                          "email_consent: expected true, false or null");
    expect_customer_error("{\"customer_id\":\"C1\",\"billing_address\":{\"city\":7}}",
                          "billing_address.city: expected a string");
    expect_customer_error("{\"email\":\"a@b.c\"}", "customer_id: required");
}

/* Text that is not text (issue 13): an escaped NUL used to cut the string
 * ("a\u0000b@example.com" became "a", then a misleading
 * NO_PROFILE_IDENTIFIER); a NUL anywhere is now a DECODE_ERROR with the
 * field path, and so is invalid UTF-8 in an identifier and a number where
 * the contract says string. Invalid UTF-8 in free text is kept. */
static void test_text_that_is_not_text(void **state) {
    (void)state;
    ts_arena_t *a = ts_arena_new(0);
    ts_customer_t c;
    /* refused (DECODE_ERROR) with exactly this error */
    static const struct {
        const char *json, *err;
    } refused[] = {
        {"{\"customer_id\":\"C1\",\"email\":\"a\\u0000b@example.com\"}",
         "email: contains a NUL character (\\u0000) at byte 1"},
        {"{\"customer_id\":\"C1\",\"billing_address\":{\"city\":\"Syd\\u0000ney\"}}",
         "billing_address.city: contains a NUL character (\\u0000) at byte 3"},
        /* invalid UTF-8: an identifier is rejected (free text is kept, below) */
        {"{\"customer_id\":\"C1\",\"email\":\"a\xff@example.com\"}",
         "email: is not valid UTF-8 at byte 1"},
        {"{\"customer_id\":\"C\xed\xa0\x80\"}", "customer_id: is not valid UTF-8 at byte 1"},
        /* numbers where the contract says string */
        {"{\"customer_id\":12345}",
         "customer_id: expected a string, got a number (send it quoted)"},
        {"{\"customer_id\":\"C1\",\"phone\":61412345678}",
         "phone: expected a string, got a number (send it quoted)"},
        /* the offset of a syntax error is the original text's, NUL escapes or not */
        {"{\"customer_id\":\"\\u0000\\u0000\",x}", "invalid JSON at byte 31"},
        {"{\"customer_id\":\"\\u0000\"} x",
         "invalid JSON at byte 25: trailing data after the object"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (customer(refused[i].json, &c, a) != TS_ERR_INVALID)
            fail_msg("accepted: %s", refused[i].json);
        if (strcmp(err, refused[i].err)) fail_msg("error \"%s\", want \"%s\"", err, refused[i].err);
    }
    /* an escaped backslash before u0000 is text, not a NUL */
    assert_int_equal(customer("{\"customer_id\":\"C1\",\"first_name\":\"a\\\\u0000\"}", &c, a),
                     TS_OK);
    assert_string_equal(c.first_name, "a\\u0000");
    /* a NUL in a field the decoder ignores does not matter; one in a key
     * makes that key a different (unknown) key */
    assert_int_equal(
        customer("{\"customer_id\":\"C1\",\"x\":\"\\u0000\",\"email\\u0000\":\"y\"}", &c, a),
        TS_OK);
    assert_null(c.email);
    /* invalid UTF-8 in free text is kept as sent */
    assert_int_equal(customer("{\"customer_id\":\"C1\",\"first_name\":\"Ren\xe9\"}", &c, a), TS_OK);
    assert_string_equal(c.first_name, "Ren\xe9");
    ts_arena_destroy(a);

    expect_order_error("{\"order_id\":123,\"status\":\"completed\"}",
                       "order_id: expected a string, got a number");
    expect_order_error(OK_HEAD ",\"lines\":[{\"line_id\":1,\"quantity\":1,\"row_total\":1}]}",
                       "lines[0].line_id: expected a string, got a number");
    expect_order_error(OK_HEAD ",\"lines\":[{\"line_id\":\"1\",\"quantity\":1,\"row_total\":1,"
                               "\"categories\":[\"A\",\"B\\u0000\"]}]}",
                       "lines[0].categories[1]: contains a NUL character (\\u0000) at byte 1");
    expect_order_error(OK_HEAD ",\"customer\":{\"email\":\"a\\u0000b@example.com\"}}",
                       "customer.email: contains a NUL character (\\u0000) at byte 1");
    expect_order_error("{\"order_id\":\"O1\",\"status\":\"completed\\u0000\",\"occurred_at\":"
                       "\"2026-11-20T10:15:00Z\",\"total\":\"1\"}",
                       "status: expected one of");
    expect_order_error(OK_HEAD ",\"tax\":\"1\\u00002\"}", "tax: ");
}

/* cJSON's allocator hooks are process-wide; the decoders' scratch arena is
 * per thread and used only inside a decode. Two threads decode while a
 * third builds, prints and deletes cJSON trees with malloc: every result
 * is right and ASan sees no free of arena memory (nor a leak). */
static void *decode_many(void *arg) {
    long id = (long)(intptr_t)arg;
    ts_arena_t *a = ts_arena_new(0);
    char json[512], e[256];
    long bad = 0;
    for (int i = 0; i < 3000; i++) {
        snprintf(json, sizeof json,
                 "{\"order_id\":\"T%ld-%d\",\"status\":\"completed\",\"occurred_at\":"
                 "\"2026-11-20T10:15:00Z\",\"total\":\"%d.25\",\"lines\":[{\"line_id\":\"1\","
                 "\"quantity\":2,\"row_total\":\"1.5\",\"categories\":[\"A\",\"B\"]}]}",
                 id, i, i);
        ts_order_t o;
        ts_arena_reset(a);
        char want[32];
        snprintf(want, sizeof want, "T%ld-%d", id, i);
        if (ts_decode_order_json(json, strlen(json), a, &o, e, sizeof e) != TS_OK ||
            strcmp(o.order_id, want) || o.total.units != (int64_t)i * 100 + 25 || o.n_lines != 1 ||
            strcmp(o.lines[0].categories[1], "B"))
            bad++;
        if (i % 100 == 0) { /* cJSON outside a decode, on a decoding thread */
            cJSON *t = cJSON_Parse("{\"x\":[1,2,\"three\"]}");
            char *txt = cJSON_PrintUnformatted(t);
            if (!txt || strcmp(txt, "{\"x\":[1,2,\"three\"]}")) bad++;
            free(txt);
            cJSON_Delete(t);
        }
    }
    ts_arena_destroy(a);
    return (void *)(intptr_t)bad;
}

static void test_threads_and_other_cjson_users(void **state) {
    (void)state;
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, decode_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 3000; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "k", "v");
        char *txt = cJSON_Print(o);
        assert_non_null(txt);
        cJSON_free(txt);
        cJSON_Delete(o);
    }
    for (int i = 0; i < 2; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_order_values),
             cmocka_unit_test(test_order_errors_have_paths), cmocka_unit_test(test_members_by_key),
             cmocka_unit_test(test_customer_values_and_errors),
             cmocka_unit_test(test_text_that_is_not_text),
             cmocka_unit_test(test_threads_and_other_cjson_users))
