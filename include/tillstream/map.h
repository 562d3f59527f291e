/*
 * tillstream/map.h - POS records -> what Klaviyo receives.
 *
 * One mapping implementation for the live consumers and the dry run.
 * Mapping rules (docs/klaviyo-mapping.md is the reference):
 *   order completed -> "Placed Order" + one "Ordered Product" per line
 *   fulfilled -> "Fulfilled Order", cancelled -> "Cancelled Order",
 *   refunded -> "Refunded Order"; voided and test orders -> skipped.
 *   unique_id: order id; order id + ":" + line id for Ordered Product;
 *   "<order id>:fulfilled" / ":cancelled"; refund id (or order id +
 *   ":refunded") for Refunded Order, so replays never duplicate.
 *   customers -> a profile (Bulk Profile Import) + what the POS consent
 *   asks for (true -> subscribe, false -> unsubscribe, unknown ->
 *   untouched); ts_consent_table_decide (consent_table.h) then turns that
 *   into what is sent, given the consent state and Klaviyo suppressions.
 *
 * Output lives in a ts_mapped_t the caller owns and reuses across records
 * (ts_mapped_reset keeps its buffers: no allocation per record once warm).
 */
#ifndef TILLSTREAM_MAP_H
#define TILLSTREAM_MAP_H

#include "tillstream/common.h"
#include "tillstream/config.h"
#include "tillstream/consent.h"
#include "tillstream/model.h"
#include "tillstream/phone.h"
#include "tillstream/route.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A slice of ts_mapped_t.text (offsets, because the buffer may move). */
typedef struct {
    size_t off, len;
} ts_span_t;

typedef enum { TS_SUB_KEEP = 0, TS_SUB_SUBSCRIBE, TS_SUB_UNSUBSCRIBE } ts_sub_t;

/* Warning bits: the record is sent, but something was dropped/changed. */
#define TS_MAP_WARN_PHONE_DROPPED  0x1u /* invalid phone left out (libphonenumber) */
#define TS_MAP_WARN_TRUNCATED      0x2u /* a string over 100 KB was truncated */
#define TS_MAP_WARN_DEFAULT_OUTLET 0x4u /* default_online_outlet applied */
#define TS_MAP_WARN_SMS_NOT_MOBILE                                                                 \
    0x8u /* SMS consent true, but the phone cannot receive SMS (landline, 1300, 1800...):          \
            the profile keeps the phone, no SMS subscription is sent */

typedef struct {
    const char *metric;  /* static: "Placed Order", "Ordered Product", ... */
    ts_span_t unique_id; /* raw text */
    ts_span_t json;      /* the event's `attributes` object as in Bulk Create
                            Events: {"properties":{..},"time":..,"value":..,
                            "value_currency":..,"unique_id":..,"metric":{..}} */
} ts_map_event_t;

typedef struct ts_mapped_s {
    /* outcome: exactly one of send (account >= 0), dead_letter, skipped */
    ts_route_t route;
    int account;             /* -1 unless there is something to send */
    ts_reason_t dead_letter; /* TS_REASON_NONE unless dead-lettered */
    char detail[512];        /* human-readable detail for the dead letter */
    const char *skipped;     /* NULL or static "VOIDED" | "TEST_ORDER" |
                                "TOMBSTONE" | "OTHER_ACCOUNT" */
    unsigned warnings;       /* TS_MAP_WARN_* */

    /* what to send */
    ts_buf_t text;         /* owns all text the spans point into */
    ts_span_t profile;     /* profile `attributes` object JSON (email,
                              phone_number, external_id, names, location,
                              properties) */
    ts_span_t profile_key; /* stable identity for per-profile grouping and
                              de-duplication ("x:<external_id>" etc.) */
    ts_span_t email;       /* normalised identifiers, raw text (may be empty) */
    ts_span_t phone_e164;
    ts_span_t phone_extension;  /* "2" for "+1 415 555 0100 ext 2" (may be empty) */
    ts_phone_type_t phone_type; /* TS_PHONE_INVALID when there is no phone */
    char phone_dropped[160];    /* why a phone was left out ("" if none was) */
    ts_map_event_t *events;
    size_t n_events, cap_events;
    bool send_profile; /* customers: import the profile */
    ts_sub_t email_marketing;
    ts_sub_t sms_marketing;
    /* customers' tombstones (customers.on_delete): suppress the email
     * (bulk suppress) or request the profile's deletion (email, else phone) */
    bool suppress_profile, delete_profile;
    /* customers: the consent decisions of ts_consent_table_decide (all
     * TS_CONSENT_NOTHING when it was not called) */
    ts_consent_decision_t consent[TS_CONSENT__CHANNELS];
} ts_mapped_t;

void ts_mapped_init(ts_mapped_t *m);
void ts_mapped_reset(ts_mapped_t *m); /* keeps buffers */
void ts_mapped_free(ts_mapped_t *m);  /* frees buffers; struct is the caller's */
/* Convenience accessor: pointer to a span's text (valid until the next
 * append to m->text). Not NUL-terminated; use span.len. */
static inline const char *ts_mapped_str(const ts_mapped_t *m, ts_span_t s) {
    return m->text.data + s.off;
}

typedef struct ts_mapper_s ts_mapper_t;
/* `cfg` and `router` are borrowed and must outlive the mapper. */
ts_mapper_t *ts_mapper_new(const ts_config_t *cfg, const ts_router_t *router, char *errstr,
                           size_t errstr_size);
void ts_mapper_destroy(ts_mapper_t *mp);

/* Maps a customer. Always fills `out` with an outcome; returns TS_OK or
 * TS_ERR_NOMEM. */
ts_err_t ts_map_customer(ts_mapper_t *mp, const ts_customer_t *c, ts_mapped_t *out);
/* Maps an order. `cust` is the resolved customer (embedded snapshot or the
 * customer table); NULL when the customer is unknown, which yields
 * dead_letter = UNKNOWN_CUSTOMER (the live path retries before calling
 * with NULL). Returns TS_OK or TS_ERR_NOMEM. */
ts_err_t ts_map_order(ts_mapper_t *mp, const ts_order_t *o, const ts_customer_ref_t *cust,
                      ts_mapped_t *out);

/* Which customer an order uses: the embedded snapshot when present (its
 * customer_id defaults to the order's), else `from_table` (may be NULL). */
const ts_customer_ref_t *ts_map_resolve_customer(const ts_order_t *o,
                                                 const ts_customer_ref_t *from_table);

#ifdef __cplusplus
}
#endif
#endif
