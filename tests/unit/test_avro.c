/*
 * test_avro.c - Avro bodies into the model through the reader schemas of
 * schemas/: records encoded with Avro-C under older (v1: fewer fields) and
 * newer (v2: extra fields with defaults, reordered fields, int where the
 * reader has long) writer schemas decode to the right values; money is
 * exact; truncated, trailing and garbage bytes are TS_ERR_INVALID with a
 * detail; unresolvable writer schemas are refused; the per-record format
 * detection of ts_decoder_t; the compiled-in schemas equal the files.
 */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "avro_testlib.h"
#include "tillstream/avro.h"
#include "tillstream/avro_enc.h"

static char err[512];

static char *slurp(const char *rel) {
    char path[1024];
    const char *d = getenv("TS_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", d ? d : TS_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_embedded_schemas_equal_files(void **state) {
    (void)state;
    char *c = slurp("schemas/customer.avsc"), *o = slurp("schemas/order.avsc");
    assert_string_equal(c, ts_schema_customer_avsc);
    assert_string_equal(o, ts_schema_order_avsc);
    free(c);
    free(o);
}

/* Order v1: an older producer (no outlet, channel, currency, discount,
 * tax, refund, customer; lines without product details). */
static const char ORDER_V1[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"order_id\",\"type\":\"string\"},"
    "{\"name\":\"customer_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"OrderStatus\",\"symbols\":["
    "\"completed\",\"fulfilled\",\"cancelled\",\"refunded\",\"voided\"]}},"
    "{\"name\":\"occurred_at\",\"type\":\"long\"},"
    "{\"name\":\"total\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\","
    "\"precision\":18,\"scale\":4}},"
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"OrderLine\",\"fields\":["
    "{\"name\":\"line_id\",\"type\":\"string\"},"
    "{\"name\":\"quantity\",\"type\":\"bytes\"},"
    "{\"name\":\"row_total\",\"type\":\"bytes\"}]}}}]}";

/* Order v2: a newer producer: fields reordered, occurred_at written as
 * int (reader: long), a new top-level field and a new line field (both
 * with defaults, unknown to the reader), the embedded customer snapshot
 * referenced by name, no `tax`. */
static const char ORDER_V2[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"total\",\"type\":\"bytes\"},"
    "{\"name\":\"loyalty_points\",\"type\":\"int\",\"default\":0},"
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"OrderLine\",\"fields\":["
    "{\"name\":\"gift_wrap\",\"type\":\"boolean\",\"default\":false},"
    "{\"name\":\"row_total\",\"type\":\"bytes\"},"
    "{\"name\":\"sku\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"quantity\",\"type\":\"bytes\"},"
    "{\"name\":\"categories\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[]},"
    "{\"name\":\"line_id\",\"type\":\"string\"}]}}},"
    "{\"name\":\"channel\",\"type\":{\"type\":\"enum\",\"name\":\"Channel\",\"symbols\":["
    "\"in_store\",\"online\"]}},"
    "{\"name\":\"occurred_at\",\"type\":\"int\"},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"OrderStatus\",\"symbols\":["
    "\"completed\",\"fulfilled\",\"cancelled\",\"refunded\",\"voided\"]}},"
    "{\"name\":\"currency\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"customer\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"CustomerSnapshot\","
    "\"fields\":[{\"name\":\"home_outlet_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"default\":null}]}],\"default\":null},"
    "{\"name\":\"order_id\",\"type\":\"string\"}]}";

/* Customer v1: only the essentials. */
static const char CUSTOMER_V1[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"customer_id\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"home_outlet_id\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

/* Customer v2: reordered, a new field, created_at as a nullable int
 * (reader: nullable long), billing address without line2. */
static const char CUSTOMER_V2[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"tier\",\"type\":\"string\",\"default\":\"bronze\"},"
    "{\"name\":\"created_at\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"sms_consent\",\"type\":[\"null\",\"boolean\"],\"default\":null},"
    "{\"name\":\"billing_address\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Address\","
    "\"fields\":[{\"name\":\"city\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"line1\",\"type\":[\"null\",\"string\"],\"default\":null}]}],\"default\":null},"
    "{\"name\":\"home_outlet_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"phone\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"customer_id\",\"type\":\"string\"}]}";

static char buf[8192];

/* A full order with the reader schema itself as the writer schema. */
static size_t full_order(void) {
    tw_t w;
    tw_init(&w, ts_schema_order_avsc);
    avro_value_t *r = &w.rec;
    tw_str(r, "order_id", "O-1001");
    tw_str(r, "customer_id", "C-7");
    tw_str(r, "outlet_id", "101");
    tw_str(r, "outlet_name", "Sydney CBD");
    tw_enum(r, "channel", 1);
    tw_enum(r, "status", 3);
    tw_bool(r, "is_test", 0);
    tw_long(r, "occurred_at", 1795130100000LL);
    tw_str(r, "currency", "AUD");
    tw_dec(r, "total", 3359900);    /* 335.99 */
    tw_dec(r, "discount", -125000); /* -12.5 */
    tw_null(r, "tax");
    for (int i = 0; i < 2; i++) {
        avro_value_t l = tw_append(r, "lines");
        tw_str(&l, "line_id", i ? "L2" : "L1");
        tw_str(&l, "sku", "TEE-BLK-M");
        tw_dec(&l, "quantity", 10000);
        tw_dec(&l, "row_total", 299500);
        avro_value_t cats, c;
        avro_value_get_by_name(&l, "categories", &cats, NULL);
        avro_value_append(&cats, &c, NULL);
        avro_value_set_string(&c, "Apparel");
        avro_value_append(&cats, &c, NULL);
        avro_value_set_string(&c, "Tops");
    }
    avro_value_t rf = tw_sub(r, "refund");
    tw_str(&rf, "refund_id", "R-1");
    tw_str(&rf, "reason", "damaged");
    tw_dec(&rf, "amount", 3359900);
    avro_value_t cs = tw_sub(r, "customer");
    tw_str(&cs, "email", "mia@example.com");
    tw_str(&cs, "home_outlet_id", "102");
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    return n;
}

static ts_avro_t *with_writer(ts_kind_t kind, int32_t id, const char *schema) {
    ts_avro_t *a = ts_avro_new(kind, err, sizeof err);
    assert_non_null(a);
    if (ts_avro_add_writer(a, id, schema, err, sizeof err) != TS_OK) fail_msg("%s", err);
    return a;
}

static void test_order_same_schema_all_values(void **state) {
    (void)state;
    size_t n = full_order();
    ts_avro_t *a = with_writer(TS_KIND_ORDER, 1, ts_schema_order_avsc);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    if (ts_avro_decode(a, 1, buf, n, 0, ar, &o, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(o.order_id, "O-1001");
    assert_string_equal(o.customer_id, "C-7");
    assert_string_equal(o.outlet_id, "101");
    assert_string_equal(o.outlet_name, "Sydney CBD");
    assert_int_equal(o.channel, TS_CHANNEL_ONLINE);
    assert_int_equal(o.status, TS_ORDER_REFUNDED);
    assert_false(o.is_test);
    assert_true(o.occurred_at_ms == 1795130100000LL);
    assert_string_equal(o.currency, "AUD");
    char t[32];
    ts_decimal_format(o.total, t, sizeof t);
    assert_string_equal(t, "335.99"); /* money exact */
    assert_int_equal(o.total.scale, 4);
    assert_true(o.total.units == 3359900);
    ts_decimal_format(o.discount, t, sizeof t);
    assert_string_equal(t, "-12.5");
    assert_false(o.tax.present);
    assert_int_equal(o.n_lines, 2);
    assert_string_equal(o.lines[1].line_id, "L2");
    assert_string_equal(o.lines[0].sku, "TEE-BLK-M");
    assert_true(o.lines[0].row_total.units == 299500);
    assert_true(o.lines[0].quantity.units == 10000);
    assert_false(o.lines[0].unit_price.present);
    assert_int_equal(o.lines[0].n_categories, 2);
    assert_string_equal(o.lines[0].categories[1], "Tops");
    assert_null(o.lines[0].brand);
    assert_true(o.refund.present);
    assert_string_equal(o.refund.refund_id, "R-1");
    assert_string_equal(o.refund.reason, "damaged");
    assert_true(o.refund.amount.units == 3359900);
    assert_true(o.customer.present);
    assert_string_equal(o.customer.email, "mia@example.com");
    assert_string_equal(o.customer.home_outlet_id, "102");
    assert_null(o.customer.phone);

    /* every strict prefix is truncated: never decodes */
    for (size_t k = 0; k < n; k++) {
        ts_arena_reset(ar);
        ts_err_t rc = ts_avro_decode(a, 1, buf, k, 5, ar, &o, err, sizeof err);
        if (rc != TS_ERR_INVALID) fail_msg("prefix of %zu bytes: rc %d", k, rc);
        if (!strstr(err, "Avro at byte ")) fail_msg("%s", err);
    }
    /* a trailing byte is refused */
    buf[n] = 0;
    assert_int_equal(ts_avro_decode(a, 1, buf, n + 1, 5, ar, &o, err, sizeof err), TS_ERR_INVALID);
    if (!strstr(err, "trailing bytes") || !strstr(err, "ends at byte")) fail_msg("%s", err);
    /* unknown id */
    assert_int_equal(ts_avro_decode(a, 2, buf, n, 5, ar, &o, err, sizeof err), TS_ERR_NOT_FOUND);
    ts_arena_destroy(ar);
    ts_avro_destroy(a);
}

static void test_order_v1_older_writer(void **state) {
    (void)state;
    tw_t w;
    tw_init(&w, ORDER_V1);
    tw_str(&w.rec, "order_id", "O-1");
    tw_null(&w.rec, "customer_id");
    tw_enum(&w.rec, "status", 0);
    tw_long(&w.rec, "occurred_at", 1700000000123LL);
    tw_dec(&w.rec, "total", 3359900);
    avro_value_t l = tw_append(&w.rec, "lines");
    tw_str(&l, "line_id", "L1");
    tw_dec(&l, "quantity", 20000);
    tw_dec(&l, "row_total", 3359900);
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);

    ts_avro_t *a = with_writer(TS_KIND_ORDER, 11, ORDER_V1);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    if (ts_avro_decode(a, 11, buf, n, 5, ar, &o, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(o.order_id, "O-1");
    assert_null(o.customer_id);
    assert_null(o.outlet_id);
    assert_int_equal(o.channel, TS_CHANNEL_IN_STORE); /* reader default */
    assert_int_equal(o.status, TS_ORDER_COMPLETED);
    assert_true(o.occurred_at_ms == 1700000000123LL);
    assert_string_equal(o.currency, "");
    assert_true(o.total.units == 3359900 && o.total.scale == 4);
    assert_false(o.discount.present);
    assert_int_equal(o.n_lines, 1);
    assert_true(o.lines[0].quantity.units == 20000);
    assert_null(o.lines[0].sku);
    assert_int_equal(o.lines[0].n_categories, 0);
    assert_false(o.refund.present);
    assert_false(o.customer.present);
    ts_arena_destroy(ar);
    ts_avro_destroy(a);
}

static void test_order_v2_newer_writer(void **state) {
    (void)state;
    tw_t w;
    tw_init(&w, ORDER_V2);
    avro_value_t *r = &w.rec;
    tw_dec(r, "total", 3359900);
    tw_long(r, "loyalty_points", 42); /* int in the writer, unknown to the reader */
    avro_value_t l = tw_append(r, "lines");
    tw_bool(&l, "gift_wrap", 1);
    tw_dec(&l, "row_total", 100000);
    tw_str(&l, "sku", "CAP-LOGO");
    tw_dec(&l, "quantity", 10000);
    tw_str(&l, "line_id", "L9");
    tw_enum(r, "channel", 1);
    tw_long(r, "occurred_at", 2000000000); /* int -> long */
    tw_enum(r, "status", 1);
    tw_str(r, "currency", "NZD");
    avro_value_t cs = tw_sub(r, "customer");
    tw_str(&cs, "home_outlet_id", "201");
    tw_null(&cs, "email");
    tw_str(r, "order_id", "O-2");
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);

    ts_avro_t *a = with_writer(TS_KIND_ORDER, 12, ORDER_V2);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    for (int round = 0; round < 3; round++) { /* the reused values do not leak state */
        ts_arena_reset(ar);
        if (ts_avro_decode(a, 12, buf, n, 5, ar, &o, err, sizeof err)) fail_msg("%s", err);
        assert_string_equal(o.order_id, "O-2");
        assert_int_equal(o.channel, TS_CHANNEL_ONLINE);
        assert_int_equal(o.status, TS_ORDER_FULFILLED);
        assert_true(o.occurred_at_ms == 2000000000LL);
        assert_string_equal(o.currency, "NZD");
        assert_true(o.total.units == 3359900);
        assert_false(o.tax.present);
        assert_int_equal(o.n_lines, 1);
        assert_string_equal(o.lines[0].line_id, "L9");
        assert_string_equal(o.lines[0].sku, "CAP-LOGO");
        assert_true(o.lines[0].row_total.units == 100000);
        assert_true(o.customer.present);
        assert_string_equal(o.customer.home_outlet_id, "201");
        assert_null(o.customer.email);
        assert_null(o.customer.first_name);
    }
    ts_arena_destroy(ar);
    ts_avro_destroy(a);
}

static void test_customer_v1_v2(void **state) {
    (void)state;
    tw_t w;
    tw_init(&w, CUSTOMER_V1);
    tw_str(&w.rec, "customer_id", "C-1");
    tw_str(&w.rec, "email", "a@example.com");
    tw_null(&w.rec, "home_outlet_id");
    size_t n1 = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    ts_avro_t *a = with_writer(TS_KIND_CUSTOMER, 21, CUSTOMER_V1);
    if (ts_avro_add_writer(a, 22, CUSTOMER_V2, err, sizeof err)) fail_msg("%s", err);
    ts_arena_t *ar = ts_arena_new(0);
    ts_customer_t c;
    if (ts_avro_decode(a, 21, buf, n1, 5, ar, &c, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(c.customer_id, "C-1");
    assert_string_equal(c.email, "a@example.com");
    assert_null(c.home_outlet_id);
    assert_null(c.phone);
    assert_int_equal(c.email_consent, TS_TRI_UNKNOWN);
    assert_false(c.has_billing_address);

    tw_init(&w, CUSTOMER_V2);
    tw_str(&w.rec, "tier", "gold");
    tw_long(&w.rec, "created_at", 1700000000);
    tw_bool(&w.rec, "sms_consent", 0);
    avro_value_t ad = tw_sub(&w.rec, "billing_address");
    tw_str(&ad, "city", "Melbourne");
    tw_str(&ad, "line1", "1 Collins St");
    tw_str(&w.rec, "home_outlet_id", "101");
    tw_str(&w.rec, "phone", "0412 345 678");
    tw_str(&w.rec, "customer_id", "C-2");
    size_t n2 = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    ts_arena_reset(ar);
    if (ts_avro_decode(a, 22, buf, n2, 5, ar, &c, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(c.customer_id, "C-2");
    assert_null(c.email);
    assert_string_equal(c.phone, "0412 345 678");
    assert_string_equal(c.home_outlet_id, "101");
    assert_int_equal(c.sms_consent, TS_TRI_FALSE);
    assert_int_equal(c.email_consent, TS_TRI_UNKNOWN);
    assert_true(c.created_at_ms == 1700000000LL); /* ["null","int"] -> ["null",long] */
    assert_true(c.has_billing_address);
    assert_string_equal(c.billing_address.city, "Melbourne");
    assert_string_equal(c.billing_address.line1, "1 Collins St");
    assert_null(c.billing_address.line2);
    ts_arena_destroy(ar);
    ts_avro_destroy(a);
}

static void test_unresolvable_writers(void **state) {
    (void)state;
    ts_avro_t *a = ts_avro_new(TS_KIND_ORDER, err, sizeof err);
    /* lacks order_id, which the reader requires (no default) */
    assert_int_equal(ts_avro_add_writer(a, 1, CUSTOMER_V1, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "order_id"));
    /* total as a string: no resolution from string to bytes decimal... */
    const char *bad_type =
        "{\"type\":\"record\",\"name\":\"Order\",\"fields\":[{\"name\":\"order_id\",\"type\":"
        "\"string\"},{\"name\":\"status\",\"type\":\"int\"},{\"name\":\"occurred_at\",\"type\":"
        "\"long\"},{\"name\":\"total\",\"type\":\"bytes\"}]}";
    assert_int_equal(ts_avro_add_writer(a, 2, bad_type, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "cannot be resolved"));
    assert_int_equal(ts_avro_add_writer(a, 3, "{not json", err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "not a valid Avro schema"));
    assert_false(ts_avro_has_writer(a, 1));
    ts_avro_destroy(a);
}

/* The fewest fields an order needs (order_id "O", status, occurred_at,
 * total), and with `line` one line "L1" of quantity 1 (returned, for more
 * of its fields). */
static avro_value_t min_order(tw_t *w, bool line) {
    tw_str(&w->rec, "order_id", "O");
    tw_null(&w->rec, "customer_id");
    tw_enum(&w->rec, "status", 0);
    tw_long(&w->rec, "occurred_at", 1);
    tw_dec(&w->rec, "total", 1);
    avro_value_t l = {NULL, NULL};
    if (!line) return l;
    l = tw_append(&w->rec, "lines");
    tw_str(&l, "line_id", "L1");
    tw_dec(&l, "quantity", 1);
    return l;
}

static void test_bad_decimal_and_garbage(void **state) {
    (void)state;
    ts_avro_t *a = with_writer(TS_KIND_ORDER, 1, ORDER_V1);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    /* a 9-byte decimal that does not fit 18 digits in lines[0].row_total */
    tw_t w;
    tw_init(&w, ORDER_V1);
    avro_value_t l = min_order(&w, true);
    avro_value_t rt = tw_field(&l, "row_total", 0);
    avro_value_set_bytes(&rt, "\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9);
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    assert_int_equal(ts_avro_decode(a, 1, buf, n, 5, ar, &o, err, sizeof err), TS_ERR_INVALID);
    if (!strstr(err, "lines[0].row_total")) fail_msg("%s", err);
    /* garbage: random bytes never crash and never pass silently with junk */
    uint64_t s = 88172645463325252ULL;
    for (int k = 0; k < 2000; k++) {
        size_t len = (size_t)(k % 64);
        for (size_t i = 0; i < len; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[i] = (char)s;
        }
        ts_arena_reset(ar);
        ts_err_t rc = ts_avro_decode(a, 1, buf, len, 5, ar, &o, err, sizeof err);
        assert_true(rc == TS_OK || rc == TS_ERR_INVALID);
        if (rc == TS_OK) assert_non_null(o.order_id);
    }
    ts_arena_destroy(ar);
    ts_avro_destroy(a);
}

/* Text that is not text (issue 13), the same rule as the JSON decoder: a
 * NUL anywhere and invalid UTF-8 in an identifier are DECODE_ERRORs with
 * the field path; invalid UTF-8 in free text is kept (sent as U+FFFD). */
static const char CUSTOMER_NAMES[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"customer_id\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"first_name\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"home_outlet_id\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

static ts_err_t customer_with(const char *field, const char *val, size_t len, ts_customer_t *c,
                              ts_arena_t *ar) {
    tw_t w;
    tw_init(&w, CUSTOMER_NAMES);
    tw_str(&w.rec, "customer_id", "C-1");
    tw_str(&w.rec, "email", "a@example.com");
    tw_null(&w.rec, "home_outlet_id");
    avro_value_t v = tw_field(&w.rec, field, 0);
    if (avro_value_set_string_len(&v, val, len + 1)) tw_die(field);
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    ts_avro_t *a = with_writer(TS_KIND_CUSTOMER, 21, CUSTOMER_NAMES);
    ts_arena_reset(ar);
    err[0] = '\0';
    ts_err_t rc = ts_avro_decode(a, 21, buf, n, 5, ar, c, err, sizeof err);
    ts_avro_destroy(a);
    return rc;
}

static void test_text_that_is_not_text(void **state) {
    (void)state;
    ts_arena_t *ar = ts_arena_new(0);
    ts_customer_t c;
    assert_int_equal(customer_with("email", "a\0b@example.com", 15, &c, ar), TS_ERR_INVALID);
    assert_string_equal(err, "email: contains a NUL character (\\u0000) at byte 1");
    assert_int_equal(customer_with("customer_id",
                                   "C\xff"
                                   "1",
                                   3, &c, ar),
                     TS_ERR_INVALID);
    assert_string_equal(err, "customer_id: is not valid UTF-8 at byte 1");
    assert_int_equal(customer_with("email", "a\xc3@example.com", 14, &c, ar), TS_ERR_INVALID);
    assert_string_equal(err, "email: is not valid UTF-8 at byte 1");
    assert_int_equal(customer_with("first_name", "Jo\0e", 4, &c, ar), TS_ERR_INVALID);
    assert_string_equal(err, "first_name: contains a NUL character (\\u0000) at byte 2");
    /* free text: kept as sent (the writer sends U+FFFD for the bad byte) */
    assert_int_equal(customer_with("first_name", "Ren\xe9", 4, &c, ar), TS_OK);
    assert_string_equal(c.first_name, "Ren\xe9");
    assert_int_equal(customer_with("first_name", "Ren\xc3\xa9", 5, &c, ar), TS_OK);
    assert_string_equal(c.first_name, "Ren\xc3\xa9");

    /* in an order: a line's category and the snapshot's email, with paths */
    ts_avro_t *a = with_writer(TS_KIND_ORDER, 1, ts_schema_order_avsc);
    ts_order_t o;
    tw_t w;
    tw_init(&w, ts_schema_order_avsc);
    avro_value_t l = min_order(&w, true);
    tw_dec(&l, "row_total", 1);
    avro_value_t cats, cat;
    if (avro_value_get_by_name(&l, "categories", &cats, NULL) ||
        avro_value_append(&cats, &cat, NULL) || avro_value_set_string(&cat, "Tops") ||
        avro_value_append(&cats, &cat, NULL) || avro_value_set_string_len(&cat, "T\0ps", 5))
        tw_die("categories");
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    ts_arena_reset(ar);
    assert_int_equal(ts_avro_decode(a, 1, buf, n, 5, ar, &o, err, sizeof err), TS_ERR_INVALID);
    assert_string_equal(err,
                        "lines[0].categories[1]: contains a NUL character (\\u0000) at byte 1");
    ts_avro_destroy(a);
    /* the nested records' paths: the order's customer snapshot and refund,
     * the customer's billing address */
    static const struct {
        const char *record, *field, *want;
    } nested[] = {
        {"customer", "email", "customer.email: contains a NUL character (\\u0000) at byte 1"},
        {"customer", "home_outlet_id",
         "customer.home_outlet_id: contains a NUL character (\\u0000) at byte 1"},
        {"refund", "reason", "refund.reason: contains a NUL character (\\u0000) at byte 1"},
        {"billing_address", "city",
         "billing_address.city: contains a NUL character (\\u0000) at byte 1"},
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        bool order = strcmp(nested[i].record, "billing_address") != 0;
        const char *schema = order ? ts_schema_order_avsc : ts_schema_customer_avsc;
        a = with_writer(order ? TS_KIND_ORDER : TS_KIND_CUSTOMER, 1, schema);
        tw_init(&w, schema);
        if (order)
            min_order(&w, false);
        else
            tw_str(&w.rec, "customer_id", "C");
        avro_value_t rec = tw_field(&w.rec, nested[i].record, 0);
        avro_value_t v = tw_field(&rec, nested[i].field, 0);
        if (avro_value_set_string_len(&v, "a\0b", 4)) tw_die(nested[i].field);
        n = tw_write(&w, 0, 0, buf, sizeof buf);
        tw_free(&w);
        ts_arena_reset(ar);
        ts_customer_t cu;
        assert_int_equal(
            ts_avro_decode(a, 1, buf, n, 5, ar, order ? (void *)&o : (void *)&cu, err, sizeof err),
            TS_ERR_INVALID);
        assert_string_equal(err, nested[i].want);
        ts_avro_destroy(a);
    }
    /* a numeric id: a writer schema with customer_id as long does not
     * resolve (no long -> string promotion), as JSON refuses 12345 */
    a = ts_avro_new(TS_KIND_CUSTOMER, err, sizeof err);
    assert_int_equal(
        ts_avro_add_writer(a, 5,
                           "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":"
                           "\"com.tillstream.pos\",\"fields\":[{\"name\":\"customer_id\","
                           "\"type\":\"long\"}]}",
                           err, sizeof err),
        TS_ERR_INVALID);
    assert_false(ts_avro_has_writer(a, 5));
    ts_avro_destroy(a);
    ts_arena_destroy(ar);
}

static void test_decoder_detection(void **state) {
    (void)state;
    ts_decoder_t *d = ts_decoder_new(NULL, TS_KIND_ORDER, err, sizeof err);
    assert_non_null(d);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    const char *js = "  {\"order_id\":\"J1\",\"status\":\"completed\",\"occurred_at\":1,"
                     "\"total\":\"335.99\"}";
    if (ts_decoder_decode(d, js, strlen(js), ar, &o, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(o.order_id, "J1");
    assert_true(o.total.units * 10000 / 10000 == o.total.units);
    char t[32];
    ts_decimal_format(o.total, t, sizeof t);
    assert_string_equal(t, "335.99");
    assert_int_equal(ts_decoder_decode(d, "hello", 5, ar, &o, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "neither Confluent Avro (magic byte 0) nor a JSON object"));
    assert_int_equal(ts_decoder_decode(d, "\0\0\0", 3, ar, &o, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(ts_decoder_decode(d, "\0\0\0\0\7xx", 7, ar, &o, err, sizeof err),
                     TS_ERR_INVALID);
    assert_non_null(strstr(err, "no schema registry is configured"));
    /* raw Avro with a configured writer schema */
    size_t n = full_order();
    if (ts_decoder_set_raw_writer(d, ts_schema_order_avsc, err, sizeof err)) fail_msg("%s", err);
    ts_arena_reset(ar);
    if (ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(o.order_id, "O-1001");
    assert_int_equal(ts_decoder_registry_requests(d), 0);
    ts_arena_destroy(ar);
    ts_decoder_destroy(d);
    ts_decoder_destroy(NULL);
    ts_avro_destroy(NULL);
}

/* registry.raw_writer_schema_orders: raw (unframed) Avro written with an
 * older schema file decodes through the config; a missing or bad file is
 * a config error naming the key path. */
static void test_raw_writer_from_config(void **state) {
    (void)state;
    char path[] = "/tmp/ts-raw-writer-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, ORDER_V1, strlen(ORDER_V1)), (ssize_t)strlen(ORDER_V1));
    close(fd);
    ts_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.registry_raw_writer_schema_orders = path;
    ts_decoder_t *d = ts_decoder_new(&cfg, TS_KIND_ORDER, err, sizeof err);
    if (!d) fail_msg("%s", err);
    tw_t w;
    tw_init(&w, ORDER_V1);
    tw_str(&w.rec, "order_id", "O-RAW");
    tw_null(&w.rec, "customer_id");
    tw_enum(&w.rec, "status", 0);
    tw_long(&w.rec, "occurred_at", 1700000000123LL);
    tw_dec(&w.rec, "total", 3359900);
    size_t n = tw_write(&w, 0, 0, buf, sizeof buf);
    tw_free(&w);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;
    if (ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(o.order_id, "O-RAW");
    assert_true(o.total.units == 3359900 && o.total.scale == 4);
    ts_decoder_destroy(d);
    /* customers do not use the orders file */
    d = ts_decoder_new(&cfg, TS_KIND_CUSTOMER, err, sizeof err);
    assert_non_null(d);
    ts_customer_t c;
    assert_int_equal(ts_decoder_decode(d, buf, n, ar, &c, err, sizeof err), TS_ERR_INVALID);
    ts_decoder_destroy(d);
    /* not JSON Avro: config error with the key path */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "{\"type\": \"nope\"", 16), 16);
    close(fd);
    assert_null(ts_decoder_new(&cfg, TS_KIND_ORDER, err, sizeof err));
    if (!strstr(err, "registry.raw_writer_schema_orders: ")) fail_msg("%s", err);
    unlink(path);
    assert_null(ts_decoder_new(&cfg, TS_KIND_ORDER, err, sizeof err));
    if (!strstr(err, "registry.raw_writer_schema_orders: cannot read")) fail_msg("%s", err);
    ts_arena_destroy(ar);
}

/* `in` encoded with `writer` (NULL: the reader schema) framed as schema id
 * `id` into b, then decoded into out (strings in ar, reset first) by a
 * decoder that knows that writer under that id. */
static void roundtrip(ts_kind_t kind, const char *writer, int32_t id, const void *in, ts_buf_t *b,
                      ts_arena_t *ar, void *out) {
    ts_avro_enc_t *e = ts_avro_enc_new(kind, writer, err, sizeof err);
    assert_non_null(e);
    if (ts_avro_encode(e, in, id, b, err, sizeof err)) fail_msg("%s", err);
    ts_decoder_t *d = ts_decoder_new(NULL, kind, err, sizeof err);
    const char *reader = kind == TS_KIND_ORDER ? ts_schema_order_avsc : ts_schema_customer_avsc;
    if (ts_decoder_add_writer(d, id, writer ? writer : reader, err, sizeof err))
        fail_msg("%s", err);
    ts_arena_reset(ar);
    if (ts_decoder_decode(d, b->data, b->len, ar, out, err, sizeof err)) fail_msg("%s", err);
    ts_decoder_destroy(d);
    ts_avro_enc_destroy(e);
}

/* The encoder (generator, bench) round-trips through the decoder, with
 * the reader schema and projected onto older/newer writer schemas. */
static void test_encode_roundtrip(void **state) {
    (void)state;
    const char *js =
        "{\"order_id\":\"O-9\",\"customer_id\":\"C-1\",\"channel\":\"online\",\"status\":"
        "\"refunded\",\"occurred_at\":1795130100000,\"currency\":\"AUD\",\"total\":\"335.99\","
        "\"lines\":[{\"line_id\":\"L1\",\"sku\":\"A\",\"quantity\":2,\"row_total\":\"335.99\","
        "\"categories\":[\"x\",\"y\"]},{\"line_id\":\"L2\",\"sku\":\"A\",\"quantity\":1,"
        "\"row_total\":\"0\"}],\"refund\":{\"refund_id\":\"R\",\"amount\":\"-0.0001\"},"
        "\"customer\":{\"email\":\"e@x.co\",\"home_outlet_id\":\"101\"}}";
    ts_arena_t *ar = ts_arena_new(0), *ar2 = ts_arena_new(0);
    ts_order_t in, o;
    if (ts_decode_order_json(js, strlen(js), ar, &in, err, sizeof err)) fail_msg("%s", err);
    const char *writers[] = {NULL, ORDER_V1, ORDER_V2};
    for (int k = 0; k < 3; k++) {
        ts_buf_t b = TS_BUF_INIT;
        roundtrip(TS_KIND_ORDER, writers[k], 40 + k, &in, &b, ar2, &o);
        assert_int_equal(b.data[0], 0); /* Confluent framing: magic byte, then the id */
        assert_int_equal((unsigned char)b.data[4], 40 + k);
        assert_string_equal(o.order_id, "O-9");
        assert_int_equal(o.status, TS_ORDER_REFUNDED);
        if (k != 2) /* v2 writes occurred_at as an int: too small for these ms */
            assert_true(o.occurred_at_ms == 1795130100000LL);
        assert_true(o.total.units == 3359900 && o.total.scale == 4);
        assert_int_equal(o.n_lines, 2);
        assert_true(o.lines[0].quantity.units == 20000);
        assert_string_equal(o.lines[1].line_id, "L2");
        if (k != 1) { /* v1 has no channel, sku, refund, customer */
            assert_int_equal(o.channel, TS_CHANNEL_ONLINE);
            assert_string_equal(o.lines[0].sku, "A");
            assert_string_equal(o.customer.home_outlet_id, "101");
        } else {
            assert_int_equal(o.channel, TS_CHANNEL_IN_STORE);
            assert_null(o.lines[0].sku);
            assert_false(o.customer.present);
        }
        if (k == 0) {
            assert_string_equal(o.customer_id, "C-1");
            assert_string_equal(o.currency, "AUD");
            assert_int_equal(o.lines[0].n_categories, 2);
            assert_true(o.refund.amount.units == -1);
            assert_string_equal(o.customer.email, "e@x.co");
        }
        ts_buf_free(&b);
    }
    ts_avro_enc_destroy(NULL);
    ts_arena_destroy(ar);
    ts_arena_destroy(ar2);
}

/* The consent times (email_consent_at / sms_consent_at) travel through
 * Avro, and a writer without them (an old producer) decodes to 0 (absent,
 * docs/consent.md falls back to updated_at). */
static void test_customer_consent_times(void **state) {
    (void)state;
    const char *js = "{\"customer_id\":\"C-1\",\"email\":\"e@x.co\",\"email_consent\":true,"
                     "\"email_consent_at\":1795130100000,\"sms_consent_at\":1795130200000,"
                     "\"updated_at\":1795130300000}";
    static const char old_writer[] =
        "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.tillstream.pos\","
        "\"fields\":[{\"name\":\"customer_id\",\"type\":\"string\"},"
        "{\"name\":\"email_consent\",\"type\":[\"null\",\"boolean\"],\"default\":null}]}";
    ts_arena_t *ar = ts_arena_new(0), *ar2 = ts_arena_new(0);
    ts_customer_t in, c;
    if (ts_decode_customer_json(js, strlen(js), ar, &in, err, sizeof err)) fail_msg("%s", err);
    assert_true(in.email_consent_at_ms == 1795130100000LL);
    assert_true(in.sms_consent_at_ms == 1795130200000LL);
    const char *writers[] = {NULL, old_writer};
    for (int k = 0; k < 2; k++) {
        ts_buf_t b = TS_BUF_INIT;
        roundtrip(TS_KIND_CUSTOMER, writers[k], 60 + k, &in, &b, ar2, &c);
        assert_string_equal(c.customer_id, "C-1");
        assert_int_equal(c.email_consent, TS_TRI_TRUE);
        if (k == 0) {
            assert_true(c.email_consent_at_ms == 1795130100000LL);
            assert_true(c.sms_consent_at_ms == 1795130200000LL);
            assert_true(c.updated_at_ms == 1795130300000LL);
        } else {
            assert_true(c.email_consent_at_ms == 0 && c.sms_consent_at_ms == 0);
        }
        ts_buf_free(&b);
    }
    ts_arena_destroy(ar);
    ts_arena_destroy(ar2);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_embedded_schemas_equal_files),
             cmocka_unit_test(test_order_same_schema_all_values),
             cmocka_unit_test(test_order_v1_older_writer),
             cmocka_unit_test(test_order_v2_newer_writer), cmocka_unit_test(test_customer_v1_v2),
             cmocka_unit_test(test_unresolvable_writers),
             cmocka_unit_test(test_bad_decimal_and_garbage),
             cmocka_unit_test(test_text_that_is_not_text), cmocka_unit_test(test_decoder_detection),
             cmocka_unit_test(test_raw_writer_from_config), cmocka_unit_test(test_encode_roundtrip),
             cmocka_unit_test(test_customer_consent_times))
