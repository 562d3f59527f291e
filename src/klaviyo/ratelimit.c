/*
 * ratelimit.c - token buckets for Klaviyo's burst and steady windows,
 * with server feedback (RateLimit-* headers, Retry-After).
 */
#include "tillstream/ratelimit.h"

static void refill(ts_ratelimit_t *rl, int64_t now) {
    if (now <= rl->last_ms) return;
    double dt = (double)(now - rl->last_ms);
    ts_bucket_t *b[2] = {&rl->burst, &rl->steady};
    for (int i = 0; i < 2; i++) {
        b[i]->tokens += dt * b[i]->per_ms;
        if (b[i]->tokens > b[i]->capacity) b[i]->tokens = b[i]->capacity;
    }
    rl->last_ms = now;
}

void ts_ratelimit_init(ts_ratelimit_t *rl, double burst_per_s, double steady_per_min, int64_t now) {
    rl->burst = (ts_bucket_t){burst_per_s, burst_per_s, burst_per_s / 1000.0};
    rl->steady = (ts_bucket_t){steady_per_min, steady_per_min, steady_per_min / 60000.0};
    rl->last_ms = now;
    rl->blocked_until_ms = 0;
}

int64_t ts_ratelimit_acquire(ts_ratelimit_t *rl, int64_t now) {
    if (now < rl->blocked_until_ms) return rl->blocked_until_ms - now;
    refill(rl, now);
    double need = 0;
    ts_bucket_t *b[2] = {&rl->burst, &rl->steady};
    for (int i = 0; i < 2; i++) {
        if (b[i]->tokens < 1.0) {
            double w = (1.0 - b[i]->tokens) / b[i]->per_ms;
            if (w > need) need = w;
        }
    }
    if (need > 0) return (int64_t)need + 1;
    rl->burst.tokens -= 1.0;
    rl->steady.tokens -= 1.0;
    return 0;
}

void ts_ratelimit_refund(ts_ratelimit_t *rl) {
    rl->burst.tokens += 1.0;
    rl->steady.tokens += 1.0;
    if (rl->burst.tokens > rl->burst.capacity) rl->burst.tokens = rl->burst.capacity;
    if (rl->steady.tokens > rl->steady.capacity) rl->steady.tokens = rl->steady.capacity;
}

void ts_ratelimit_block(ts_ratelimit_t *rl, int64_t now, int64_t retry_after_s) {
    if (retry_after_s < 1) retry_after_s = 1;
    int64_t until = now + retry_after_s * 1000;
    if (until > rl->blocked_until_ms) rl->blocked_until_ms = until;
    /* after a 429 nothing is left in either window */
    rl->burst.tokens = 0;
    rl->steady.tokens = 0;
    rl->last_ms = until > now ? until : now;
}

void ts_ratelimit_observe(ts_ratelimit_t *rl, int64_t now, long remaining, long reset_s) {
    if (remaining < 0) return;
    refill(rl, now);
    if ((double)remaining < rl->steady.tokens) rl->steady.tokens = (double)remaining;
    if (remaining == 0 && reset_s >= 0) {
        int64_t until = now + (reset_s > 0 ? reset_s : 1) * 1000;
        if (until > rl->blocked_until_ms) rl->blocked_until_ms = until;
        rl->last_ms = until;
    }
}
