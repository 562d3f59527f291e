/*
 * tillstream/offsets.h - per-partition completion tracking for
 * at-least-once delivery.
 *
 * Records are registered in consumption order and completed in any order
 * (events of one record complete across accounts; dead letters complete
 * on the broker's ack). The offset to store is the highest contiguous
 * completed offset + 1 (what rd_kafka_offsets_store() expects). Offsets
 * may have gaps (compaction, transaction markers): entries carry their
 * real offsets.
 *
 * Tokens encode the partition and an assignment generation: after a
 * revoke (and a later re-assign), completions of records from the old
 * assignment are ignored and can never move the commit point.
 *
 * Each entry carries a caller pointer (`user`, e.g. the Kafka message),
 * handed back when the entry leaves the tracker. Not thread-safe.
 */
#ifndef TILLSTREAM_OFFSETS_H
#define TILLSTREAM_OFFSETS_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_offsets_s ts_offsets_t;

/* max_inflight: records tracked at once over all partitions. */
ts_offsets_t *ts_offsets_new(size_t max_inflight);
/* Releases nothing of the users: revoke partitions first to get them back. */
void ts_offsets_destroy(ts_offsets_t *t);

/* Starts tracking a partition (a new generation; previous state dropped). */
ts_err_t ts_offsets_assign(ts_offsets_t *t, int32_t partition);
/* Stops tracking: calls release(user) for every entry still tracked
 * (completed or not) and invalidates their tokens. */
void ts_offsets_revoke(ts_offsets_t *t, int32_t partition,
                       void (*release)(void *user, void *opaque), void *opaque);

/* Registers a consumed record. TS_ERR_FULL when max_inflight records are
 * tracked (pause and retry), TS_ERR_INVALID for an unassigned partition
 * or an offset not above the last registered one. */
ts_err_t ts_offsets_track(ts_offsets_t *t, int32_t partition, int64_t offset, void *user,
                          uint64_t *token);

/* Completes a record. Returns true when the token was current. When the
 * contiguous completed prefix grew, *store_offset is the next offset to
 * store (last completed + 1), else -1; completed prefix entries are
 * released through release(user) (may be NULL). */
bool ts_offsets_done(ts_offsets_t *t, uint64_t token, int64_t *store_offset,
                     void (*release)(void *user, void *opaque), void *opaque);

/* The user pointer of a current token, or NULL. */
void *ts_offsets_user(const ts_offsets_t *t, uint64_t token);
int32_t ts_offsets_token_partition(uint64_t token);

size_t ts_offsets_inflight(const ts_offsets_t *t);
size_t ts_offsets_partition_inflight(const ts_offsets_t *t, int32_t partition);
/* Next offset to consume that is known complete (last stored), or -1. */
int64_t ts_offsets_committed(const ts_offsets_t *t, int32_t partition);
bool ts_offsets_full(const ts_offsets_t *t);

#ifdef __cplusplus
}
#endif
#endif
