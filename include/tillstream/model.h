/*
 * tillstream/model.h - the POS record model: customers and orders as the
 * decoders produce them and the mapper consumes them.
 *
 * Ownership: every `const char *` and array in these structs points into
 * the ts_arena_t the decoder was given; they stay valid until that arena
 * is reset. NULL means "absent / null". Records are plain values.
 *
 * Money never travels as a double: ts_decimal_t is an exact scaled
 * integer (value = units / 10^scale). The Avro schemas carry money as
 * `bytes` with logicalType decimal, scale 4 (docs/data-model.md); JSON
 * numbers and decimal strings are parsed into the same form.
 */
#ifndef TILLSTREAM_MODEL_H
#define TILLSTREAM_MODEL_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t units;
    int32_t scale; /* 0..18 */
    bool present;
} ts_decimal_t;

/* Parses "335.99", "-1", "1e2" is rejected; up to 18 significant digits.
 * Returns TS_OK or TS_ERR_INVALID with a message. */
ts_err_t ts_decimal_parse(const char *s, size_t len, ts_decimal_t *out, char *errstr,
                          size_t errstr_size);
/* Exact conversion of a JSON number as cJSON holds it (a double): the
 * shortest decimal text that round-trips (%.15g, then %.17g) is parsed.
 * Exact for every value with <= 15 significant digits. */
ts_err_t ts_decimal_from_double(double d, ts_decimal_t *out, char *errstr, size_t errstr_size);
/* Writes the canonical decimal text (no exponent, trailing fraction zeros
 * trimmed: 335.9900 -> "335.99", 5.0000 -> "5") into buf; returns length
 * or -1 if bufsize is too small. 32 bytes always suffice. */
int ts_decimal_format(ts_decimal_t d, char *buf, size_t bufsize);
/* Rescales to `scale` exactly; TS_ERR_INVALID if digits would be lost or
 * the value overflows. */
ts_err_t ts_decimal_rescale(ts_decimal_t d, int32_t scale, ts_decimal_t *out);

/* Times are epoch milliseconds, UTC. */
/* Accepts ISO-8601 with offset ("2026-11-20T10:15:00+11:00",
 * "...Z", fractional seconds) or a plain date "YYYY-MM-DD" (midnight UTC). */
ts_err_t ts_time_parse_iso8601(const char *s, size_t len, int64_t *out_ms, char *errstr,
                               size_t errstr_size);
/* Writes "YYYY-MM-DDTHH:MM:SS+00:00" (Klaviyo truncates to the second). 32
 * bytes suffice. Returns length. */
int ts_time_format_iso8601(int64_t ms, char *buf, size_t bufsize);

/* Phone numbers: tillstream/phone.h (libphonenumber). */

/* ---- text ---------------------------------------------------------------- */
/* Every string of a decoded record is NUL-free; identifiers (ids, email,
 * phone, currency) are also valid UTF-8 (docs/data-model.md, "Text"). */

/* Length of the valid UTF-8 sequence at s (at most n bytes, n > 0): 1..4,
 * or 0 for an invalid one (overlong, surrogate, > U+10FFFF, truncated). */
size_t ts_utf8_seq(const unsigned char *s, size_t n);
/* Offset of the first invalid UTF-8 sequence in s[0..n), or n when the
 * whole text is valid. ASCII runs are checked eight bytes at a time. */
size_t ts_utf8_invalid_at(const char *s, size_t n);
/* True for the fields whose value identifies something (ids, sku, email,
 * phone, currency): text that is not text there is a DECODE_ERROR, since a
 * mangled identifier imports the wrong profile or breaks de-duplication. */
bool ts_field_is_identifier(const char *name);
/* The decoders' text rule for one string value s[0..n): TS_ERR_INVALID with
 * "contains a NUL character (\\u0000) at byte K" for a NUL anywhere, and
 * "is not valid UTF-8 at byte K" for an identifier; else TS_OK (invalid
 * UTF-8 in free text is sent with U+FFFD in place of each bad byte). */
ts_err_t ts_text_check(const char *s, size_t n, bool identifier, char *errstr, size_t errstr_size);

typedef enum { TS_TRI_UNKNOWN = 0, TS_TRI_TRUE = 1, TS_TRI_FALSE = 2 } ts_tri_t;

typedef struct {
    const char *line1, *line2, *city, *region, *postcode, *country;
} ts_address_t;

typedef struct {
    const char *customer_id; /* required */
    const char *email;
    const char *phone;
    const char *first_name;
    const char *last_name;
    const char *home_outlet_id; /* NULL: no Home Outlet */
    ts_tri_t email_consent;
    ts_tri_t sms_consent;
    bool has_billing_address;
    ts_address_t billing_address;
    const char *date_of_birth; /* "YYYY-MM-DD" as sent */
    ts_tri_t loyalty_member;
    int64_t created_at_ms;       /* 0 when absent */
    int64_t updated_at_ms;       /* 0 when absent */
    int64_t email_consent_at_ms; /* when the POS recorded email_consent; 0 when absent */
    int64_t sms_consent_at_ms;   /* same for sms_consent */
} ts_customer_t;

typedef enum { TS_CHANNEL_IN_STORE = 0, TS_CHANNEL_ONLINE = 1 } ts_channel_t;
const char *ts_channel_name(ts_channel_t c); /* "in_store" / "online" */

typedef enum {
    TS_ORDER_COMPLETED = 0,
    TS_ORDER_FULFILLED,
    TS_ORDER_CANCELLED,
    TS_ORDER_REFUNDED,
    TS_ORDER_VOIDED
} ts_order_status_t;
const char *ts_order_status_name(ts_order_status_t s);

typedef struct {
    const char *line_id; /* required */
    const char *product_id;
    const char *sku;
    const char *name;
    ts_decimal_t quantity;
    ts_decimal_t unit_price;
    ts_decimal_t row_total;
    ts_decimal_t discount;
    const char **categories;
    size_t n_categories;
    const char *brand;
    const char *image_url;
    const char *product_url;
} ts_order_line_t;

typedef struct {
    bool present;
    const char *refund_id;
    const char *reason;
    ts_decimal_t amount;
} ts_refund_t;

/* The customer as embedded in an order (optional), or as found in the
 * customer table: everything the order path needs to route and identify. */
typedef struct {
    bool present;
    const char *customer_id;
    const char *email;
    const char *phone;
    const char *first_name;
    const char *last_name;
    const char *home_outlet_id;
} ts_customer_ref_t;

/* Where a decoder writes a person's five optional strings: a customer
 * record and an order's customer snapshot carry the same five under the
 * same names, so TS_PERSON_DST takes either (a ts_customer_t * or a
 * ts_customer_ref_t *). */
typedef struct {
    const char **email, **phone, **first_name, **last_name, **home_outlet_id;
} ts_person_dst_t;
#define TS_PERSON_DST(x)                                                                           \
    ((ts_person_dst_t){.email = &(x)->email,                                                       \
                       .phone = &(x)->phone,                                                       \
                       .first_name = &(x)->first_name,                                             \
                       .last_name = &(x)->last_name,                                               \
                       .home_outlet_id = &(x)->home_outlet_id})

typedef struct {
    const char *order_id;    /* required */
    const char *customer_id; /* NULL: guest sale */
    const char *outlet_id;   /* the selling store */
    const char *outlet_name;
    ts_channel_t channel;
    ts_order_status_t status;
    bool is_test;
    int64_t occurred_at_ms;
    char currency[4]; /* ISO 4217, "" when absent */
    ts_decimal_t total;
    ts_decimal_t discount;
    ts_decimal_t tax;
    ts_order_line_t *lines;
    size_t n_lines;
    ts_refund_t refund;
    ts_customer_ref_t customer; /* embedded snapshot; .present = false if none */
} ts_order_t;

#ifdef __cplusplus
}
#endif
#endif
