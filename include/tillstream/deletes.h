/*
 * tillstream/deletes.h - customers.on_delete: what a customer's tombstone
 * asks of Klaviyo. The customers consumer remembers the identifiers (and
 * Home Outlet) of every customer it maps; a tombstone for that customer
 * id becomes one request for the account the customer routes to: bulk
 * suppress of its email (`suppress`) or Request Profile Deletion by email,
 * else phone (`delete`). Each request is logged with the customer id (never
 * the email or phone) and counted
 * (tillstream_customer_deletions_total{account,action}); a tombstone whose
 * customer is unknown is counted with action="unknown" and sends nothing.
 *
 * Memory: a ts_custtable_t (packed, ~100 bytes per customer; see
 * docs/customer-table.md). Threading: the consumer loop's thread only.
 */
#ifndef TILLSTREAM_DELETES_H
#define TILLSTREAM_DELETES_H

#include "tillstream/config.h"
#include "tillstream/map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_metrics_s ts_metrics_t;
typedef struct ts_deletes_s ts_deletes_t;

/* NULL when customers.on_delete is "ignore" (errstr empty) or on failure
 * (TS_ERR_NOMEM in errstr). `cfg`, `mapper` and `metrics` are borrowed. */
ts_deletes_t *ts_deletes_new(const ts_config_t *cfg, ts_mapper_t *mapper, ts_metrics_t *metrics,
                             char *errstr, size_t errstr_size);
void ts_deletes_destroy(ts_deletes_t *d);

/* A customer record was consumed: remember its identifiers. */
ts_err_t ts_deletes_remember(ts_deletes_t *d, const ts_customer_t *c);

/* A tombstone for customer id `key`: fills `m` with the request to submit
 * (m->delete_profile or m->suppress_profile, the account, the identifiers).
 * TS_OK, or TS_ERR_NOT_FOUND when there is nothing to send (unknown
 * customer, another account, no email to suppress): counted, logged. */
ts_err_t ts_deletes_prepare(ts_deletes_t *d, const char *key, size_t key_len, ts_mapped_t *m);

/* The engine took the request prepared for `key`: logs it, counts it and
 * forgets the customer. */
void ts_deletes_submitted(ts_deletes_t *d, const char *key, size_t key_len, const ts_mapped_t *m);

#ifdef __cplusplus
}
#endif
#endif
