/*
 * tillstream/suppout.h - tillstream-suppressions' Kafka side
 * (src/kafka/suppout.c): the suppressions topic it produces to and the
 * compacted state topic (topics.suppressions_state, key = account) that
 * holds each account's watermark (tillstream/supp.h).
 *
 * Exactly once: one transactional producer (transactional.id =
 * suppressions.transactional_id, idempotent by construction). A page's
 * suppression records and the account's new watermark are produced in
 * one transaction: either both are in the topics (committed) or neither
 * (aborted), so a crash anywhere resumes from the last committed
 * watermark with no gap and no record twice for read_committed readers
 * (librdkafka's default isolation.level, the customers consumer's and
 * kcat's). ts_suppout_new's init_transactions fences any older poller
 * with the same transactional.id and aborts its open transaction: only
 * one poller is ever active per id.
 *
 * Threading: one thread. The library never exits or prints.
 */
#ifndef TILLSTREAM_SUPPOUT_H
#define TILLSTREAM_SUPPOUT_H

#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_suppout_s ts_suppout_t;

/* Connects, creates the state topic (compacted, 1 partition) and the
 * suppressions topic (retention forever: the customers consumer re-reads
 * it from the beginning) when missing, and initialises the transactional
 * producer (at most timeout_ms). NULL with errstr: TS_ERR_CONFIG for a
 * property librdkafka refuses (the message names its key path), else
 * TS_ERR_TRANSIENT (*rc, may be NULL). */
ts_suppout_t *ts_suppout_new(const ts_config_t *cfg, int timeout_ms, ts_err_t *rc, char *errstr,
                             size_t errstr_size);
void ts_suppout_destroy(ts_suppout_t *so); /* aborts an open transaction; NULL is fine */

/* Reads the state topic to its end (committed records only) and calls
 * fn(opaque, account, value, len) for each record in order (the last call
 * for an account is its state; a tombstone has value NULL).
 * TS_ERR_TRANSIENT on timeout. */
ts_err_t ts_suppout_restore(ts_suppout_t *so,
                            void (*fn)(void *opaque, const char *account, const char *value,
                                       size_t len),
                            void *opaque, int timeout_ms, char *errstr, size_t errstr_size);

/* A transaction: begin, produce the page's records, commit with the
 * account's new state (value JSON). Commit waits for every ack (at most
 * timeout_ms). A failure aborts the transaction (nothing of it is
 * visible) and returns TS_ERR_TRANSIENT, or TS_ERR_INTERNAL when the
 * producer is fenced or fatal (another poller took over: stop). */
ts_err_t ts_suppout_begin(ts_suppout_t *so, char *errstr, size_t errstr_size);
ts_err_t ts_suppout_produce(ts_suppout_t *so, const char *key, const char *value, size_t len,
                            char *errstr, size_t errstr_size);
ts_err_t ts_suppout_commit(ts_suppout_t *so, const char *account, const char *state, size_t len,
                           int timeout_ms, char *errstr, size_t errstr_size);
void ts_suppout_abort(ts_suppout_t *so, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
