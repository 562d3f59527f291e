/*
 * kafka/dlq.h - the dead-letter producer (private to src/kafka).
 *
 * Writes the dead-letter copy of a consumed record: its key, value and
 * headers plus tillstream.* and __connect.errors.* headers
 * (docs/dead-letter.md), through an idempotent producer (acks=all).
 *
 * Each dead letter owns its context (reason, detail, account, outlet, the
 * copied key/value and the full header set) from ts_dlq_write() until the
 * broker acknowledged it; the context travels as librdkafka's message
 * opaque, so a failed produce or a failed delivery report retries the same
 * record with the same headers (never dropped, with backoff). A dead letter
 * too large for the topic is written without its value (header
 * tillstream.value.omitted: size=N; the source coordinates locate the
 * original) and logged once at error level. Metrics and counters count
 * each record once, when the broker acknowledged it.
 *
 * Threading: the consumer's thread; on_done runs inside ts_dlq_poll().
 */
#ifndef TILLSTREAM_KAFKA_DLQ_H
#define TILLSTREAM_KAFKA_DLQ_H

#include <librdkafka/rdkafka.h>

#include "tillstream/config.h"
#include "tillstream/metrics.h"

typedef struct ts_dlq_s ts_dlq_t;

/* The dead letter of `token` is in the topic. */
typedef void (*ts_dlq_done_fn)(void *opaque, uint64_t token);

typedef struct {
    const ts_config_t *cfg; /* borrowed: accounts, topics.dead_letter, kafka */
    const char *prog;       /* tillstream.consumer and Connect's connector name */
    const char *run;        /* tillstream.run: the group that writes (live or replay) */
    const char *topic;      /* the source topic, for the metrics' topic label */
    ts_dlq_done_fn on_done;
    void *opaque;
    ts_metrics_t *metrics; /* NULL: none */
} ts_dlq_opts_t;

/* Strings in opts are borrowed and must outlive the producer. TS_ERR_CONFIG
 * for a kafka property librdkafka refuses. */
ts_err_t ts_dlq_new(const ts_dlq_opts_t *opts, ts_dlq_t **out, char *errstr, size_t errstr_size);
/* Abandons what is not acknowledged (their offsets are not committed:
 * re-read by the next owner). Accepts NULL. */
void ts_dlq_destroy(ts_dlq_t *d);

/* Queues the dead letter of `msg` (borrowed: what is needed is copied).
 * account -1 and outlet NULL when unknown. on_done(token) follows once
 * the broker acknowledged it. TS_ERR_NOMEM only; a produce that fails is
 * retried from ts_dlq_poll(). */
ts_err_t ts_dlq_write(ts_dlq_t *d, const rd_kafka_message_t *msg, uint64_t token,
                      ts_reason_t reason, const char *detail, int account, const char *outlet);

/* Serves delivery reports and retries what is due. */
void ts_dlq_poll(ts_dlq_t *d);
/* Waits up to timeout_ms for every written dead letter to be acknowledged
 * (retrying as ts_dlq_poll does). */
void ts_dlq_flush(ts_dlq_t *d, int timeout_ms);
/* Dead letters written and not yet acknowledged (in flight or retrying). */
size_t ts_dlq_pending(const ts_dlq_t *d);

typedef struct {
    uint64_t written;                     /* acknowledged, each record once */
    uint64_t by_reason[TS_REASON__COUNT]; /* of those, per reason */
    uint64_t retries;                     /* produce attempts that failed */
    uint64_t values_omitted;              /* written without their value (too large) */
} ts_dlq_stats_t;
void ts_dlq_stats(const ts_dlq_t *d, ts_dlq_stats_t *out);

#endif
