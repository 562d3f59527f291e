/*
 * kafka/replay.h - replay (backfill) windows and their progress (private
 * to src/kafka).
 *
 * A replay reads a window of the topic under its own group: each partition
 * starts where the group stopped (resume) or at the first record at or
 * after --replay-from (offsets-for-times; the partition's real log start
 * for "earliest"), and ends before the first record at or after
 * --replay-to (else the high watermark at start). Progress is a JSON line
 * every 5 s through the logger (and, when main hands it a terminal, a bar
 * on a line of its own): records
 * done of the window's exact total; events per second and the share of
 * the Klaviyo ceiling over the engine's last window (never above 100 %).
 *
 * Threading: the consumer's thread.
 */
#ifndef TILLSTREAM_KAFKA_REPLAY_H
#define TILLSTREAM_KAFKA_REPLAY_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "tillstream/config.h"
#include "tillstream/engine.h"
#include "tillstream/metrics.h"

typedef struct ts_replay_s ts_replay_t;

/* Next offset of partition p known complete (committed or stored), or -1. */
typedef int64_t (*ts_replay_done_fn)(void *opaque, int32_t p);

typedef struct {
    const ts_config_t *cfg; /* borrowed */
    const char *topic;
    int64_t from_ms;     /* TS_REPLAY_EARLIEST or epoch ms */
    int64_t to_ms;       /* TS_REPLAY_NOW or epoch ms */
    ts_engine_t *engine; /* borrowed: lane stats for the rates */
    ts_metrics_t *metrics;
    ts_replay_done_fn done_upto;
    void *opaque;
    FILE *bar; /* a terminal for the progress bar (main's choice), or NULL */
} ts_replay_opts_t;

ts_replay_t *ts_replay_new(const ts_replay_opts_t *opts);
void ts_replay_destroy(ts_replay_t *r); /* accepts NULL */

/* The window's end per partition (ends[p], p < n): the first record at or
 * after to_ms when there is one, else left as given (the high watermark). */
void ts_replay_window_ends(ts_replay_t *r, rd_kafka_t *rk, int64_t *ends, int n);

/* On an assignment, before rd_kafka_assign(): sets each partition's start
 * offset in `parts` and remembers it for progress. */
void ts_replay_assign(ts_replay_t *r, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts);

/* Logs progress every 5 s (always with final). */
void ts_replay_progress(ts_replay_t *r, bool final);

#endif
