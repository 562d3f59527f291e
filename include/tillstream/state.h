/*
 * tillstream/state.h - the customers consumer's consent state in Kafka
 * (src/kafka/state.c; docs/consent.md, docs/consumers.md).
 *
 * The state topic (topics.customers_state, default
 * tillstream.customers.state) is compacted, keyed by customer id and
 * co-partitioned with the customers topic, as Kafka Streams does with its
 * changelogs: the state of a customer read from customers partition P is
 * written to state partition P, so each member restores only the
 * partitions it owns. Value: {"accounts":{"<account>":<consent state
 * JSON, consent.h>}} with every account that holds a state for the
 * customer (compaction keeps the last value per customer).
 *
 * - ts_state_restore: at start and on every assignment, reads the owned
 *   state partitions from the beginning to their end into the consent
 *   table, and the suppressions topic (topics.suppressions, all
 *   partitions) to its end; the caller takes no record of those
 *   partitions before it returns.
 * - ts_state_write: after a record's decision changed a customer's state,
 *   produces it (idempotent producer, acks=all, retried until acked).
 * - ts_state_defer: the record's offset must not be stored before its
 *   state write is acked. A completion that arrives first is deferred
 *   and handed back through opts.ready once the write is acked.
 * - ts_state_poll: serves delivery reports (calls opts.ready) and applies
 *   new suppression records.
 *
 * Threading: one thread, the consume loop's. The library never exits or
 * prints; errors are returned or logged.
 */
#ifndef TILLSTREAM_STATE_H
#define TILLSTREAM_STATE_H

#include "tillstream/config.h"
#include "tillstream/consent_table.h"
#include "tillstream/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_state_s ts_state_t;

typedef struct {
    const ts_config_t *cfg;                      /* borrowed, outlives the store */
    ts_consent_table_t *table;                   /* borrowed: restored into, read for writes */
    const char *group_id;                        /* the customers group (the reader's group is
                                                    "<group_id>-state"; it commits nothing) */
    void (*ready)(void *opaque, uint64_t token); /* a deferred completion */
    void *opaque;
    ts_metrics_t *metrics; /* may be NULL */
} ts_state_opts_t;

/* Creates the producer and the reader, creates the state topic when it is
 * missing (compacted, as many partitions as the customers topic, as Kafka
 * Streams creates its changelogs) and checks that an existing one has as
 * many partitions as the customers topic (else TS_ERR_CONFIG with a
 * message). NULL on failure. */
ts_state_t *ts_state_new(const ts_state_opts_t *opts, char *errstr, size_t errstr_size);
/* Flushes pending writes (up to 10 s) and frees everything; NULL is fine. */
void ts_state_destroy(ts_state_t *st);

/* Restores the state of customers partitions `parts[0..n)` (blocking, at
 * most timeout_ms). TS_ERR_TRANSIENT on timeout or a broker error. */
ts_err_t ts_state_restore(ts_state_t *st, const int32_t *parts, int n, int timeout_ms, char *errstr,
                          size_t errstr_size);

/* Writes the state of `customer_id` (all accounts) to state partition
 * `partition`, for the record with offset-tracker `token`. TS_ERR_NOMEM
 * or a librdkafka failure as TS_ERR_TRANSIENT. */
ts_err_t ts_state_write(ts_state_t *st, int32_t partition, const char *customer_id, uint64_t token,
                        char *errstr, size_t errstr_size);

/* The customers path's hook, right before the record is submitted: the
 * consent decision (ts_consent_table_decide) and, when it changed the
 * customer's state and `st` is not NULL (NULL: a replay, which keeps no
 * state), its write for `token` to state partition `partition`.
 * `record_ts`: the Kafka record's timestamp. TS_OK or TS_ERR_NOMEM. */
ts_err_t ts_state_decide(ts_state_t *st, ts_consent_table_t *table, const ts_customer_t *c,
                         int32_t partition, int64_t record_ts, uint64_t token,
                         const ts_consent_opts_t *opts, ts_mapped_t *m, char *errstr,
                         size_t errstr_size);

/* true: the record of `token` has a state write not yet acked; its
 * completion is kept and handed back through opts.ready later. */
bool ts_state_defer(ts_state_t *st, uint64_t token);

/* Delivery reports and new suppressions; never blocks. */
void ts_state_poll(ts_state_t *st);

/* State writes not yet acked (shutdown drains them; O(buckets)). */
size_t ts_state_pending(const ts_state_t *st);

#ifdef __cplusplus
}
#endif
#endif
