/*
 * tillstream/consumer.h - the shared consume loop of tillstream-customers
 * and tillstream-orders (src/kafka/; the only code that talks to librdkafka).
 *
 * At-least-once: a source offset is stored only when every event derived
 * from its record was accepted by Klaviyo or the record's dead-letter copy
 * was acknowledged by the broker; the highest contiguous completed offset
 * per partition is committed. Delivery is through the engine (engine.h),
 * dead letters through an idempotent producer (acks=all) with the original
 * key, value and headers plus tillstream.* and __connect.errors.* headers
 * (docs/dead-letter.md).
 */
#ifndef TILLSTREAM_CONSUMER_H
#define TILLSTREAM_CONSUMER_H

#include "tillstream/config.h"
#include "tillstream/decode.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_REPLAY_NONE     INT64_MIN
#define TS_REPLAY_EARLIEST (-2)
#define TS_REPLAY_NOW      (-1)

typedef struct {
    ts_kind_t kind;
    const char *prog;     /* binary name, for the tillstream.consumer header */
    bool exit_at_end;     /* exit 0 once the end offsets captured at start are done */
    const char *group_id; /* overrides the config's group (replays) */
    bool backfill;        /* send events with backfill: true */
    volatile int *stop;   /* set by a signal handler: drain and exit */
    /* replay (backfill) mode: a window of the topic under its own group;
     * implies exit_at_end. replay_from_ms: TS_REPLAY_NONE, TS_REPLAY_EARLIEST
     * or epoch ms; replay_to_ms: TS_REPLAY_NOW or epoch ms. A resumed replay
     * (the group has committed offsets) continues where it stopped. */
    int64_t replay_from_ms;
    int64_t replay_to_ms;
    const char *replay_outlets; /* comma-separated Home Outlets, NULL = all */
    FILE *progress_bar;         /* replay: a terminal for the progress bar, NULL = none */
    /* customers replay only (--replay-consent): consent is decided and sent
     * as live (the state topic restored and written, the suppressions
     * read), subscribes as historical imports (historical_import: true,
     * consented_at; docs/consent.md) */
    bool replay_consent;
} ts_consumer_opts_t;

/*
 * The loop as four calls, on one thread (every callback of the engine,
 * the dead-letter producer and librdkafka's rebalances runs inside them):
 *
 *   ts_consumer_new()     builds everything (decoders, engine, dead-letter
 *                         producer, customer-table reader, group consumer)
 *                         and reads the topic's partitions and end offsets;
 *   ts_consumer_run()     restores the customer table (orders), joins the
 *                         group and consumes until *opts->stop, a fatal
 *                         error, or the end (exit_at_end / replay);
 *   ts_consumer_drain()   stops fetching, finishes what is in flight within
 *                         consumer.shutdown_grace_ms, commits, logs the
 *                         summary;
 *   ts_consumer_destroy() leaves the group and frees everything.
 *
 * ts_consumer_poll() is one iteration of run (tests drive two members in
 * one thread with it). The library never prints except through the
 * logger and never picks an exit code: main does.
 */
typedef struct ts_consumer_s ts_consumer_t;

/* `cfg` and the strings in `opts` are borrowed and must outlive the
 * consumer; `opts` itself is copied. On failure *out is NULL and the code
 * says why: TS_ERR_CONFIG for a configuration error (exit 2), anything
 * else a runtime failure (exit 1). */
ts_err_t ts_consumer_new(const ts_config_t *cfg, const ts_consumer_opts_t *opts,
                         ts_consumer_t **out, char *errstr, size_t errstr_size);

/* One iteration: poll Kafka once (<= 100 ms), retry held records and dead
 * letters, drive the engine. false once run should stop (fatal error, or
 * the end was reached with exit_at_end / replay). */
bool ts_consumer_poll(ts_consumer_t *c);

/* Polls until *opts->stop (NULL: never), a fatal error or the end.
 * TS_OK, or TS_ERR_NOMEM after a fatal error (logged where it happened). */
ts_err_t ts_consumer_run(ts_consumer_t *c);

/* Finishes in-flight work within the grace period and commits. TS_OK when
 * the final commit succeeded (or there was nothing to commit); an error
 * (with errstr) when it failed or a fatal error happened: --exit-at-end
 * must then exit non-zero. */
ts_err_t ts_consumer_drain(ts_consumer_t *c, char *errstr, size_t errstr_size);

/* Leaves the group (committing what is complete) and frees everything.
 * Accepts NULL. */
void ts_consumer_destroy(ts_consumer_t *c);

/* What the member owns and holds now; paused and inflight never exceed
 * what it owns (tests, /metrics). */
typedef struct {
    size_t owned;    /* partitions assigned */
    size_t paused;   /* of those, paused in librdkafka */
    size_t inflight; /* records consumed and not completed (owned partitions only) */
    size_t held;     /* records waiting (lane full, registry, unknown customer) */
    uint64_t consumed, completed, dead_lettered;
    bool at_end;  /* exit_at_end / replay: everything up to the end is done */
    bool stalled; /* owns work, nothing completed for consumer.stall_timeout_ms */
} ts_consumer_stats_t;
void ts_consumer_stats(const ts_consumer_t *c, ts_consumer_stats_t *out);

/* The admin listener's port (-1 without one). */
int ts_consumer_admin_port(const ts_consumer_t *c);

#ifdef __cplusplus
}
#endif
#endif
