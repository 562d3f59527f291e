/*
 * tillstream/ratelimit.h - Klaviyo's rate limiter, modelled on our side
 * the way Klaviyo counts, plus the pacing clock that spends it evenly.
 *
 * Klaviyo admits a request when its account has sent fewer than `burst`
 * requests to the endpoint in the last second and fewer than `steady` in
 * the last minute (sliding windows, docs/delivery.md). This limiter keeps
 * the log of its own sends and answers "may one go out now?" with both
 * windows widened by a small margin (a request is counted when it arrives,
 * not when it leaves), so it never sends what the window will refuse.
 *
 * Pacing: requests are spaced at least one steady interval apart
 * ((60 s + margin) / (steady x share), 403 ms at 150/min): the window is
 * spent evenly instead of in a burst followed by a freeze. The pacing
 * clock may catch up half an interval when a send was late, and up to
 * TS_RATELIMIT_CATCHUP intervals of missed slots while a backlog waits
 * (a busy process): idle time never earns a burst. The window log, not
 * the clock, guarantees the limits.
 *
 * Share: the fraction of the account's budget this client may spend (the
 * consumer sets owned partitions / all partitions on every rebalance so N
 * members together fill, not overfill, the window). Both windows and the
 * pacing interval scale with it.
 *
 * Borrowing: a client that has had a backlog for a whole window reads the
 * other members' spending from RateLimit-Remaining (limit - remaining -
 * own sends in the window) and borrows what they leave unused, less
 * TS_RATELIMIT_BORROW_MARGIN of the account: the effective share climbs
 * TS_RATELIMIT_BORROW_STEP per answer, falls at once when the others
 * spend more, and drops to the given share on a 429, Remaining 0 or a new
 * share; without a backlog it halves per send / answer. Both windows and
 * the pacing interval scale with the effective share.
 *
 * Otherwise feedback from Klaviyo only tightens: RateLimit-Limit below the
 * configured steady limit replaces it; RateLimit-Remaining caps how many
 * more requests may go out before RateLimit-Reset (other members or
 * other clients of the account spend from the same window); Remaining 0
 * and a 429's Retry-After block until the window has room.
 *
 * Time is passed in (ms), never read, so tests drive it without sleeping.
 * Plain value type, no allocation: the send log is inline (a window
 * larger than TS_RATELIMIT_LOG entries is enforced by pacing alone).
 */
#ifndef TILLSTREAM_RATELIMIT_H
#define TILLSTREAM_RATELIMIT_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_RATELIMIT_LOG              1024
#define TS_RATELIMIT_STEADY_MARGIN_MS 400  /* added to the 60 s window */
#define TS_RATELIMIT_BURST_MARGIN_MS  100  /* added to the 1 s window */
#define TS_RATELIMIT_CATCHUP          8    /* missed slots a backlog may catch up */
#define TS_RATELIMIT_INFLIGHT_SLACK   2    /* requests in flight above rate x latency */
#define TS_RATELIMIT_BORROW_STEP      0.05 /* borrow growth per answer (of the account) */
#define TS_RATELIMIT_BORROW_MARGIN    0.05 /* of the account left unborrowed */

typedef struct {
    double burst_per_s, steady_per_min; /* the account's limits (configured) */
    double limit_seen;                  /* RateLimit-Limit, when below steady_per_min */
    double share;                       /* 0 < share <= 1 */
    double borrow;                      /* borrowed: effective share min(1, share + borrow) */
    int64_t backlog_since_ms;           /* first of the current backlog sends, -1: none */
    double interval_ms;                 /* pacing interval at the current share */
    double next_ms;                     /* pacing clock: earliest next send */
    int64_t blocked_until_ms;           /* Retry-After / Remaining = 0 */
    int64_t fb_until_ms;                /* RateLimit-Remaining holds until then */
    int64_t fb_at_ms;                   /* when it was read */
    long fb_room;                       /* sends still allowed before fb_until_ms */
    int64_t last_sent_ms, prev_next_ms; /* for ts_ratelimit_refund */
    int64_t log[TS_RATELIMIT_LOG];      /* own send times, oldest first (ring) */
    int head, n;
} ts_ratelimit_t;

/* An empty window (nothing sent yet), share 1. */
void ts_ratelimit_init(ts_ratelimit_t *rl, double burst_per_s, double steady_per_min,
                       int64_t now_ms);
/* 0 when a request may go out now, else the ms until one may (nothing is
 * taken either way). */
int64_t ts_ratelimit_wait(ts_ratelimit_t *rl, int64_t now_ms);
/* Records a request sent at now_ms (after ts_ratelimit_wait said 0).
 * `backlog`: more than this request was waiting (a full batch), so slots
 * missed by a late process may be caught up. */
void ts_ratelimit_sent_backlog(ts_ratelimit_t *rl, int64_t now_ms, bool backlog);
/* ts_ratelimit_sent_backlog without a backlog. */
void ts_ratelimit_sent(ts_ratelimit_t *rl, int64_t now_ms);
/* ts_ratelimit_wait + ts_ratelimit_sent: 0 when the request may go out
 * (and it is recorded), else the ms to wait. */
int64_t ts_ratelimit_acquire(ts_ratelimit_t *rl, int64_t now_ms);
/* Forgets the last ts_ratelimit_sent (a request that was never sent). */
void ts_ratelimit_refund(ts_ratelimit_t *rl);
/* A 429: nothing before now + retry_after_s. */
void ts_ratelimit_block(ts_ratelimit_t *rl, int64_t now_ms, int64_t retry_after_s);
/* RateLimit-Limit / -Remaining / -Reset of an answer (negative = absent).
 * `remaining` should already exclude this client's other requests in
 * flight (they may not have been counted yet). */
void ts_ratelimit_observe(ts_ratelimit_t *rl, int64_t now_ms, long limit, long remaining,
                          long reset_s);
/* The fraction of the account's budget this client may spend (clamped to
 * [0.001, 1]). A lower share takes effect at once (the log keeps counting
 * what was sent under the old one). */
void ts_ratelimit_set_share(ts_ratelimit_t *rl, double share);
/* The part of the account borrowed on top of the share (0 when none). */
double ts_ratelimit_borrowed(const ts_ratelimit_t *rl);
/* Requests this client may send per minute now (steady x effective share,
 * or the smaller RateLimit-Limit x effective share). */
double ts_ratelimit_steady_per_min(const ts_ratelimit_t *rl);
/* Own sends in the last 60 s (as counted by the log). */
int ts_ratelimit_sent_in_window(ts_ratelimit_t *rl, int64_t now_ms);
/* How many requests may be in flight at once so that answers taking
 * `latency_ms` do not slow the pacing clock: one per pacing interval an
 * answer takes, plus TS_RATELIMIT_INFLIGHT_SLACK (a late clock's catch-up,
 * jitter), clamped to [lo, hi]; `lo` is also what may go out before any
 * answer has been timed. */
int ts_ratelimit_inflight(const ts_ratelimit_t *rl, double latency_ms, int lo, int hi);

#ifdef __cplusplus
}
#endif
#endif
