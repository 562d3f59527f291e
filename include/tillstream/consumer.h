/*
 * tillstream/consumer.h - the shared consume loop of tillstream-customers
 * and tillstream-orders (src/kafka_consumer.c; the only code that talks to
 * librdkafka's consumer).
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
} ts_consumer_opts_t;

/* Runs until *stop (or the end with exit_at_end). Returns the process exit
 * code: 0 clean, 1 runtime failure, 2 configuration (e.g. missing key). */
int ts_consumer_run(const ts_config_t *cfg, const ts_consumer_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
