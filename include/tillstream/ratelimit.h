/*
 * tillstream/ratelimit.h - Klaviyo rate limits on our side: two token
 * buckets per account and endpoint (burst window per second, steady
 * window per minute), tightened by Klaviyo's RateLimit-* response headers
 * and blocked by a 429's Retry-After. Time is passed in (ms), never read,
 * so tests drive it without sleeping.
 */
#ifndef TILLSTREAM_RATELIMIT_H
#define TILLSTREAM_RATELIMIT_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double tokens, capacity, per_ms;
} ts_bucket_t;

typedef struct {
    ts_bucket_t burst, steady;
    int64_t last_ms;
    int64_t blocked_until_ms; /* Retry-After / Remaining = 0 */
} ts_ratelimit_t;

/* Buckets start full. */
void ts_ratelimit_init(ts_ratelimit_t *rl, double burst_per_s, double steady_per_min,
                       int64_t now_ms);
/* 0 when a request may be sent now (one token taken from both buckets);
 * otherwise the ms to wait, and nothing is taken. */
int64_t ts_ratelimit_acquire(ts_ratelimit_t *rl, int64_t now_ms);
/* Returns a token taken by a request that was never sent. */
void ts_ratelimit_refund(ts_ratelimit_t *rl);
/* A 429: nothing before now + retry_after_s. */
void ts_ratelimit_block(ts_ratelimit_t *rl, int64_t now_ms, int64_t retry_after_s);
/* RateLimit-Remaining / RateLimit-Reset of a response (negative = absent):
 * the steady bucket never holds more than Klaviyo says remains, and
 * Remaining = 0 blocks until the reset. */
void ts_ratelimit_observe(ts_ratelimit_t *rl, int64_t now_ms, long remaining, long reset_s);

#ifdef __cplusplus
}
#endif
#endif
