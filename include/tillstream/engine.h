/*
 * tillstream/engine.h - the Klaviyo delivery engine (libcurl multi).
 *
 * One lane per active Klaviyo account: its own API key, queues per
 * endpoint, a rate limiter per endpoint that models Klaviyo's sliding
 * windows and paces requests evenly through them (ratelimit.h; a share of
 * the account's budget when several members send for it). Events go out
 * in Bulk Create Events requests grouped per profile, when the batch is
 * full (1,000 events, < 5 MB) or its oldest record has waited linger_ms,
 * and only when the pacing clock allows; profiles in Bulk Profile Import
 * jobs; consent in bulk subscribe / unsubscribe jobs. 429 honours
 * Retry-After; 5xx, timeouts and connection errors retry with capped
 * exponential backoff and jitter and are never dropped; other 4xx bisect
 * the batch and reject only the offending records.
 *
 * Threading: single-threaded. All calls, and all callbacks, happen on the
 * thread that calls ts_engine_poll().
 *
 * Completion contract: every record accepted by ts_engine_submit() gets
 * exactly one on_done callback (from inside ts_engine_poll, or
 * ts_engine_withdraw for withdrawn records), once all of
 * its parts (events, profile, consent) are settled: result TS_OK when all
 * were accepted (202), TS_ERR_REJECTED / TS_ERR_TOO_LARGE (with Klaviyo's
 * error detail) when any part was rejected permanently, TS_ERR_WITHDRAWN
 * when ts_engine_withdraw() took any part back. Retryable failures never
 * reach the callback. If ts_engine_submit() returns an error, the
 * callback is never called for that token. ts_engine_destroy() abandons
 * pending records without callbacks (their offsets are not committed, so
 * they are re-consumed: at-least-once).
 *
 * The API keys never appear in logs, metrics or error strings.
 */
#ifndef TILLSTREAM_ENGINE_H
#define TILLSTREAM_ENGINE_H

#include "tillstream/config.h"
#include "tillstream/map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_metrics_s ts_metrics_t;

typedef void (*ts_engine_done_cb)(void *opaque, uint64_t token, ts_err_t result,
                                  const char *detail);

/* A profile of a complete Bulk Profile Import job, with the id Klaviyo
 * gave it (Get Profiles for Bulk Import Profiles Job). Strings are
 * borrowed for the call; NULL when absent. */
typedef struct {
    const char *account, *profile_id, *external_id, *email, *phone_number;
} ts_engine_profile_t;
/* Called for every profile of a page of a complete job, then once with
 * p == NULL: the page's profiles must now be durable. A retryable error
 * (at any call) reads the page again later; the job's records complete
 * only after every page was taken. */
typedef ts_err_t (*ts_engine_profile_cb)(void *opaque, const ts_engine_profile_t *p);

typedef struct {
    const ts_config_t *cfg; /* borrowed; must outlive the engine */
    ts_engine_done_cb on_done;
    void *opaque;
    ts_clock_fn clock; /* NULL: ts_clock_mono */
    void *clock_opaque;
    ts_metrics_t *metrics;           /* NULL: no metrics */
    uint64_t seed;                   /* jitter PRNG seed (0: from time) */
    int backoff_base_ms;             /* first retry delay (0: 500 ms); doubles up to 60 s */
    ts_engine_profile_cb on_profile; /* NULL: the jobs' profiles are not read */
    void *profile_opaque;
} ts_engine_opts_t;

typedef struct ts_engine_s ts_engine_t;

/* Reads every active account's API key (ts_config_account_key). Fails with
 * TS_ERR_CONFIG naming the key path when one is missing. */
ts_engine_t *ts_engine_new(const ts_engine_opts_t *opts, char *errstr, size_t errstr_size);
void ts_engine_destroy(ts_engine_t *e);

/* Queues everything `m` asks to send for its account (m->account >= 0),
 * copying what it needs: `m` may be reset right after. `backfill` sets
 * Bulk Create Events' backfill flag. Returns TS_OK, or TS_ERR_FULL when the
 * account's lane is over its queue limit (backpressure: pause and retry
 * later; nothing was queued), or TS_ERR_INVALID for an unusable record. */
ts_err_t ts_engine_submit(ts_engine_t *e, const ts_mapped_t *m, uint64_t token, bool backfill,
                          char *errstr, size_t errstr_size);

/* True when `account`'s lane can take more (below its queue limit). */
bool ts_engine_has_room(const ts_engine_t *e, int account);

/* Drives transfers, timers and retries for up to timeout_ms (returns early
 * when something completed). Invokes on_done callbacks. Returns the number
 * of records completed. */
int ts_engine_poll(ts_engine_t *e, int timeout_ms);

/* Sends partial batches now instead of waiting for linger (shutdown,
 * --exit-at-end). */
void ts_engine_flush(ts_engine_t *e);

/* The fraction (0 < share <= 1) of each account's Klaviyo budget this
 * engine may spend: N members of one consumer group each set owned
 * partitions / all partitions (recomputed on every rebalance), so
 * together they fill, and do not overfill, every account's window
 * (docs/delivery.md). Default 1. Klaviyo's RateLimit-* answers correct
 * the rest. Takes effect at once; a lower share first waits for what was
 * sent under the old one to leave the window. */
void ts_engine_set_share(ts_engine_t *e, double share);
/* The same for one account (e.g. when partitions carry accounts unevenly). */
void ts_engine_set_account_share(ts_engine_t *e, int account, double share);

/* Selects records by token for ts_engine_withdraw (e.g. "the token's
 * partition is one of the revoked ones", or "the offset tracker no longer
 * knows the token": ts_offsets_user() == NULL after ts_offsets_revoke). */
typedef bool (*ts_engine_match_fn)(void *opaque, uint64_t token);

/* Takes back every not-yet-sent part (queued, or waiting for a retry or
 * a Retry-After) of the records `match` selects: a rebalance's revoked
 * partitions belong to another member now, which sends them itself.
 * Parts already on the wire complete as usual. A record with a withdrawn
 * part completes with TS_ERR_WITHDRAWN (retryable: the consumer neither
 * stores its offset nor dead-letters it): from inside this call when
 * nothing of it is on the wire any more, else from ts_engine_poll() once
 * its parts on the wire are settled. Call it after ts_offsets_revoke() so
 * a stray completion cannot move the revoked partition's commit point.
 * Returns the number of records affected. */
size_t ts_engine_withdraw(ts_engine_t *e, ts_engine_match_fn match, void *opaque);

/* Parts of the records `match` selects that are on the wire now (in a
 * request Klaviyo has not answered yet): what a revoke waits for before
 * committing (ts_engine_withdraw cannot take them back). Parts followed
 * in a profile-import job are not counted. */
size_t ts_engine_on_wire(const ts_engine_t *e, ts_engine_match_fn match, void *opaque);
/* Parts of the records `match` selects not settled yet: queued, waiting
 * for a retry, or on the wire (profile-import jobs not counted). */
size_t ts_engine_unsettled(const ts_engine_t *e, ts_engine_match_fn match, void *opaque);

/* Records submitted and not yet completed (all lanes). */
size_t ts_engine_pending(const ts_engine_t *e);

typedef struct {
    uint64_t events_accepted;
    uint64_t events_rejected;
    uint64_t profiles_accepted;
    uint64_t requests;
    uint64_t throttled_429;
    uint64_t retries;
    uint64_t withdrawn;      /* parts taken back by ts_engine_withdraw */
    uint64_t key_reloads;    /* a rotated key taken from accounts[].api_key_file */
    size_t queued_events;    /* waiting in the lane now */
    size_t max_queued_bytes; /* high-water mark of the lane's memory */
    /* progress over the last window (60 s, or since start when shorter):
     * what the consumer's progress lines print */
    double events_per_s;          /* events accepted per second, current */
    double ceiling_per_s;         /* Bulk Create Events ceiling of this engine: account's
                                     steady limit x share x 1,000 events / 60 s */
    double ceiling_ratio;         /* events_per_s / ceiling_per_s, at most 1 */
    double oldest_undelivered_s;  /* age of the oldest record part not yet accepted (0: none) */
    double paced_s;               /* total time work waited for the pacing clock or a limit */
    int64_t last_success_wall_ms; /* last 2xx from Klaviyo on any endpoint (0: none) */
} ts_lane_stats_t;
void ts_engine_lane_stats(const ts_engine_t *e, int account, ts_lane_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
