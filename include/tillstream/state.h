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
 *   partitions) to its end (the high watermarks when it starts); the
 *   caller takes no record of those partitions before it returns (nor
 *   reports ready).
 * - ts_state_write: after a record's decision changed a customer's state,
 *   keeps a snapshot of it (with the offset fence, consent.h) for that
 *   record.
 * - ts_state_defer: when the record completes (Klaviyo accepted it, or
 *   its dead letter was acked) the snapshot is produced (idempotent
 *   producer, acks=all, retried until acked) and the completion is handed
 *   back through opts.ready once acked: the offset is stored only after
 *   the state, and the state never claims a change Klaviyo did not take
 *   (a crash re-reads the record and sends the change again).
 * - ts_state_flush: on revoke, produces every snapshot still waiting
 *   (their records are still in flight in the engine) and waits for the
 *   acks, so the next owner restores every decision this member took.
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
 * message). The suppressions topic must exist when
 * cfg->customers_wait_for_suppressions (else TS_ERR_CONFIG naming
 * topics.suppressions; docs/consent.md, "First deployment"); without it a
 * missing one is logged (warning) and looked for again by each restore.
 * NULL on failure. */
ts_state_t *ts_state_new(const ts_state_opts_t *opts, char *errstr, size_t errstr_size);
/* Flushes pending writes (up to 10 s) and frees everything; NULL is fine. */
void ts_state_destroy(ts_state_t *st);

/* Restores the state of customers partitions `parts[0..n)` (blocking, at
 * most timeout_ms). TS_ERR_TRANSIENT on timeout or a broker error. */
ts_err_t ts_state_restore(ts_state_t *st, const int32_t *parts, int n, int timeout_ms, char *errstr,
                          size_t errstr_size);

/* Snapshots the state of `customer_id` (all accounts), to be written to
 * state partition `partition` when the record of offset-tracker `token`
 * completes. TS_ERR_NOMEM or TS_OK. */
ts_err_t ts_state_write(ts_state_t *st, int32_t partition, const char *customer_id, uint64_t token,
                        char *errstr, size_t errstr_size);

/* The customers path's hook, right before the record is submitted: the
 * consent decision (ts_consent_table_decide) and, when it changed the
 * customer's state and `st` is not NULL (NULL: a replay, which keeps no
 * state), its write for `token` to state partition `partition`. A replay
 * (opts->replay) decides without the offset fence and writes nothing,
 * unless opts->replay_consent: then it decides and writes as live.
 * `offset`, `record_ts`: the record's offset and timestamp. TS_OK or
 * TS_ERR_NOMEM. */
ts_err_t ts_state_decide(ts_state_t *st, ts_consent_table_t *table, const ts_customer_t *c,
                         int32_t partition, int64_t offset, int64_t record_ts, uint64_t token,
                         const ts_consent_opts_t *opts, ts_mapped_t *m, char *errstr,
                         size_t errstr_size);

/* true: the record of `token` has a state write not yet acked; its
 * completion is kept and handed back through opts.ready later. */
bool ts_state_defer(ts_state_t *st, uint64_t token);

/* true: the record of `token` carries a consent decision whose state write
 * is kept until the record completes (queued, in flight or acked). On
 * revoke such a record is not withdrawn from the engine: its state is
 * flushed for the next owner, which will not decide it again, so this
 * member must still deliver it. NULL `st`: false. */
bool ts_state_has_write(const ts_state_t *st, uint64_t token);

/* Produces every snapshot not yet written and waits (at most timeout_ms)
 * until every write is acked: on revoke, so the next owner's restore sees
 * every decision this member took. */
void ts_state_flush(ts_state_t *st, int timeout_ms);

/* Delivery reports and new suppressions; never blocks. */
void ts_state_poll(ts_state_t *st);

/* State writes not yet acked (shutdown drains them; O(buckets)). */
size_t ts_state_pending(const ts_state_t *st);

#ifdef __cplusplus
}
#endif
#endif
