/*
 * tillstream/gen.h - a deterministic generator of realistic POS data:
 * customers (several outlets, a share of online customers without a Home
 * Outlet, some on an unmapped outlet, some without email/phone, mixed
 * consent) and orders (repeat customers, multi-line orders with repeated
 * SKUs, refunds, cancellations, voids, test orders), as JSON records with
 * the field names of schemas/. Same seed, same bytes.
 */
#ifndef TILLSTREAM_GEN_H
#define TILLSTREAM_GEN_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;
    size_t customers;
    const char *const *outlets; /* mapped outlets */
    size_t n_outlets;
    double online_share;     /* customers without a Home Outlet */
    double unmapped_share;   /* customers on outlet "999" */
    double no_contact_share; /* customers without email and phone */
} ts_gen_opts_t;

typedef struct {
    uint64_t customers, no_home_outlet, unmapped_outlet, no_identifier, email_subscribed,
        sms_subscribed;
    uint64_t orders, voided, test, refunded, cancelled, lines;
} ts_gen_counts_t;

typedef struct ts_gen_s ts_gen_t;
ts_gen_t *ts_gen_new(const ts_gen_opts_t *o);
void ts_gen_destroy(ts_gen_t *g);
/* Appends customer number i (0-based) as one JSON object; key = its id. */
void ts_gen_customer(ts_gen_t *g, size_t i, ts_buf_t *key, ts_buf_t *value);
/* Appends the next order (orders reference customers 0..customers-1, some
 * repeatedly). */
void ts_gen_order(ts_gen_t *g, ts_buf_t *key, ts_buf_t *value);
const ts_gen_counts_t *ts_gen_counts(const ts_gen_t *g);

#ifdef __cplusplus
}
#endif
#endif
