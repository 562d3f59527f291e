/*
 * tillstream/consent_table.h - the consent state of every (account,
 * customer) a customers consumer or a dry run has seen, and the hook that
 * turns a mapped customer's POS consent into what is sent.
 *
 * The decision itself is ts_consent_decide (consent.h); this table holds
 * the states it reads and writes, the Klaviyo suppressions that arrive
 * for an email or phone before tillstream knows the customer, and the
 * metrics (docs/consent.md, docs/operations.md):
 *   tillstream_subscriptions_sent_total{account,channel,consent}
 *   tillstream_subscriptions_unchanged_total{account,channel}
 *   tillstream_subscriptions_blocked_total{account,channel,reason}
 *   tillstream_subscriptions_reoptin_total{account,channel}
 *
 * Not thread-safe: one table per consume loop. Memory: one entry per
 * customer (the state plus its key), grown by doubling; keys live in an
 * arena owned by the table.
 */
#ifndef TILLSTREAM_CONSENT_TABLE_H
#define TILLSTREAM_CONSENT_TABLE_H

#include "tillstream/config.h"
#include "tillstream/consent.h"
#include "tillstream/map.h"
#include "tillstream/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_consent_table_s ts_consent_table_t;

/* `cfg` and `metrics` (may be NULL) are borrowed and must outlive it. */
ts_consent_table_t *ts_consent_table_new(const ts_config_t *cfg, ts_metrics_t *metrics,
                                         char *errstr, size_t errstr_size);
void ts_consent_table_destroy(ts_consent_table_t *t);
size_t ts_consent_table_size(const ts_consent_table_t *t); /* customers with a state */

/* The state of `customer_id` in account `account`; NULL when never seen.
 * Valid until the next call that adds an entry. */
const ts_consent_state_t *ts_consent_table_get(const ts_consent_table_t *t, int account,
                                               const char *customer_id);
/* Sets it (restore from the state topic). TS_ERR_NOMEM or TS_OK. */
ts_err_t ts_consent_table_put(ts_consent_table_t *t, int account, const char *customer_id,
                              const ts_consent_state_t *st);

/* One suppression record, the JSON value of the suppressions topic:
 *   {"account","channel":"email"|"sms","reason","timestamp","email",
 *    "phone_number","external_id","profile_id"}
 * Keyed by external_id (the POS customer id) when present, else by the
 * email (email channel) or phone (sms channel), which are matched when a
 * customer with that identifier is decided. TS_ERR_INVALID with a message
 * for a malformed record, TS_ERR_NOT_FOUND for an account not in the
 * config (the caller skips it). */
ts_err_t ts_consent_table_suppression(ts_consent_table_t *t, const char *json, size_t len,
                                      char *errstr, size_t errstr_size);

/* The decision hook, right after ts_map_customer filled `m` for `c` (its
 * email_marketing / sms_marketing say what the POS value alone asks for).
 * For a record to send (m->account >= 0, no dead letter, no skip), decides
 * each channel against the state, rewrites m->email_marketing /
 * sms_marketing to what is actually sent, fills m->consent[], applies
 * customers.sync = consented (m->send_profile off; skipped
 * "NOT_CONSENTED" when nothing is left to send), updates the state and
 * counts the metrics. `record_ts`: the Kafka record's timestamp (0 when
 * none). `offset`: the record's offset in the customers topic (-1: none,
 * the dry run); a record below the state's next_offset was decided
 * already (re-read after a crash or a rebalance, when the state is ahead
 * of it): it sends no consent change. *state_changed (may be NULL): the
 * customer's state changed and should be persisted. Returns TS_OK or
 * TS_ERR_NOMEM. */
ts_err_t ts_consent_table_decide(ts_consent_table_t *t, const ts_customer_t *c, int64_t record_ts,
                                 int64_t offset, const ts_consent_opts_t *opts, ts_mapped_t *m,
                                 bool *state_changed);

#ifdef __cplusplus
}
#endif
#endif
