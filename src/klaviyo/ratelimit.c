/*
 * ratelimit.c - Klaviyo's sliding windows (burst per second, steady per
 * minute) modelled from our own send log, a pacing clock that spaces
 * requests one steady interval apart, and Klaviyo's feedback (RateLimit-*
 * headers, Retry-After) that tightens it, or lets a client with a backlog
 * borrow what the account's other clients leave unused. ratelimit.h has
 * the model; docs/delivery.md the reasoning.
 */
#include "tillstream/ratelimit.h"

#include <math.h>

#include "klaviyo/klaviyo.h"

#define STEADY_SPAN (TS_KLAVIYO_STEADY_WINDOW_MS + TS_RATELIMIT_STEADY_MARGIN_MS)
#define BURST_SPAN  (TS_KLAVIYO_BURST_WINDOW_MS + TS_RATELIMIT_BURST_MARGIN_MS)

static double account_limit(const ts_ratelimit_t *rl) {
    double s = rl->steady_per_min;
    if (rl->limit_seen > 0 && rl->limit_seen < s) s = rl->limit_seen;
    return s;
}

static double share_eff(const ts_ratelimit_t *rl) {
    double e = rl->share + rl->borrow;
    return e < 1 ? e : 1;
}

static double steady_eff(const ts_ratelimit_t *rl) { return account_limit(rl) * share_eff(rl); }

static int cap_of(double per_window) {
    double c = floor(per_window + 1e-9);
    return c < 1 ? 1 : c > 1e9 ? 1000000000 : (int)c;
}

static void recompute(ts_ratelimit_t *rl) {
    /* spacing of the steady window, or of the burst window if tighter */
    double st = (double)STEADY_SPAN / (double)cap_of(steady_eff(rl));
    double bu = (double)BURST_SPAN / (double)cap_of(rl->burst_per_s * share_eff(rl));
    rl->interval_ms = st > bu ? st : bu;
}

static int64_t at(const ts_ratelimit_t *rl, int i) { /* i-th oldest entry */
    return rl->log[(rl->head + i) % TS_RATELIMIT_LOG];
}

static void expire(ts_ratelimit_t *rl, int64_t now) {
    while (rl->n > 0 && at(rl, 0) <= now - STEADY_SPAN) {
        /* a send the last RateLimit-Remaining counted leaves the window:
         * the account has one more request of room */
        if (now < rl->fb_until_ms && at(rl, 0) <= rl->fb_at_ms) rl->fb_room++;
        rl->head = (rl->head + 1) % TS_RATELIMIT_LOG;
        rl->n--;
    }
}

void ts_ratelimit_init(ts_ratelimit_t *rl, double burst_per_s, double steady_per_min, int64_t now) {
    *rl = (ts_ratelimit_t){.burst_per_s = burst_per_s > 0 ? burst_per_s : 1,
                           .steady_per_min = steady_per_min > 0 ? steady_per_min : 1,
                           .share = 1,
                           .next_ms = (double)now,
                           .last_sent_ms = INT64_MIN / 2,
                           .backlog_since_ms = -1};
    recompute(rl);
}

/* share and/or borrow changed: the next send moves with the new spacing,
 * from the last one */
static void respace(ts_ratelimit_t *rl, double old_interval) {
    recompute(rl);
    if (rl->n > 0) rl->next_ms += rl->interval_ms - old_interval;
}

static void set_borrow(ts_ratelimit_t *rl, double borrow) {
    if (borrow < 0.01) borrow = 0;
    if (borrow > 1 - rl->share) borrow = 1 - rl->share;
    if (borrow == rl->borrow) return;
    double old = rl->interval_ms;
    rl->borrow = borrow;
    respace(rl, old);
}

void ts_ratelimit_set_share(ts_ratelimit_t *rl, double share) {
    if (!(share > 0.001)) share = 0.001; /* also NaN */
    if (share > 1) share = 1;
    if (share == rl->share) return;
    double old = rl->interval_ms;
    rl->share = share;
    /* the other members' traffic changes too: borrow again only once the
     * window has shown it */
    rl->borrow = 0;
    if (rl->backlog_since_ms >= 0) rl->backlog_since_ms = rl->last_sent_ms;
    respace(rl, old);
}

double ts_ratelimit_borrowed(const ts_ratelimit_t *rl) { return share_eff(rl) - rl->share; }

double ts_ratelimit_steady_per_min(const ts_ratelimit_t *rl) { return steady_eff(rl); }

int ts_ratelimit_inflight(const ts_ratelimit_t *rl, double latency_ms, int lo, int hi) {
    double need = rl->interval_ms > 0 ? ceil(latency_ms / rl->interval_ms) : hi;
    need += TS_RATELIMIT_INFLIGHT_SLACK;
    return need < lo ? lo : need > hi ? hi : (int)need;
}

int ts_ratelimit_sent_in_window(ts_ratelimit_t *rl, int64_t now) {
    expire(rl, now);
    int k = 0;
    for (int i = rl->n - 1; i >= 0 && at(rl, i) > now - TS_KLAVIYO_STEADY_WINDOW_MS; i--) k++;
    return k;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int64_t ts_ratelimit_wait(ts_ratelimit_t *rl, int64_t now) {
    int64_t w = 0;
    if (now < rl->blocked_until_ms) w = rl->blocked_until_ms - now;
    if ((double)now < rl->next_ms) w = max64(w, (int64_t)ceil(rl->next_ms - (double)now));
    expire(rl, now);
    /* steady window: fewer than cap own sends in the last 60 s + margin */
    int cap = cap_of(steady_eff(rl));
    if (cap <= TS_RATELIMIT_LOG && rl->n >= cap)
        w = max64(w, at(rl, rl->n - cap) + STEADY_SPAN - now);
    /* burst window */
    int bcap = cap_of(rl->burst_per_s * share_eff(rl));
    if (bcap <= rl->n && at(rl, rl->n - bcap) > now - BURST_SPAN)
        w = max64(w, at(rl, rl->n - bcap) + BURST_SPAN - now);
    /* Klaviyo said how much room the account has left until the reset */
    if (now < rl->fb_until_ms && rl->fb_room <= 0) {
        int64_t until = rl->fb_until_ms;
        if (rl->n > 0 && at(rl, 0) + STEADY_SPAN < until) until = at(rl, 0) + STEADY_SPAN;
        w = max64(w, until - now);
    }
    return w > 0 ? w : 0;
}

void ts_ratelimit_sent_backlog(ts_ratelimit_t *rl, int64_t now, bool backlog) {
    expire(rl, now);
    if (rl->n == TS_RATELIMIT_LOG) { /* larger windows are held by pacing alone */
        rl->head = (rl->head + 1) % TS_RATELIMIT_LOG;
        rl->n--;
    }
    rl->log[(rl->head + rl->n) % TS_RATELIMIT_LOG] = now;
    rl->n++;
    rl->prev_next_ms = (int64_t)rl->next_ms;
    /* The schedule advances one interval from its own slot, not from the
     * send: a late send (a busy process) may be followed by the slots it
     * missed. With a backlog the schedule is kept if it is at most
     * TS_RATELIMIT_CATCHUP intervals behind (the missed slots were never
     * used, so the window has room for them); otherwise, and after idle
     * time, it restarts half an interval back: idle time earns no burst. */
    double late = (double)now - rl->next_ms;
    double keep = backlog ? rl->interval_ms * TS_RATELIMIT_CATCHUP : rl->interval_ms / 2;
    double base = late > keep ? (double)now - rl->interval_ms / 2 : rl->next_ms;
    rl->next_ms = base + rl->interval_ms;
    if (now < rl->fb_until_ms) rl->fb_room--;
    rl->last_sent_ms = now;
    if (!backlog) {
        rl->backlog_since_ms = -1;
        set_borrow(rl, rl->borrow / 2);
    } else if (rl->backlog_since_ms < 0) {
        rl->backlog_since_ms = now;
    }
}

void ts_ratelimit_sent(ts_ratelimit_t *rl, int64_t now) {
    ts_ratelimit_sent_backlog(rl, now, false);
}

int64_t ts_ratelimit_acquire(ts_ratelimit_t *rl, int64_t now) {
    int64_t w = ts_ratelimit_wait(rl, now);
    if (w == 0) ts_ratelimit_sent(rl, now);
    return w;
}

void ts_ratelimit_refund(ts_ratelimit_t *rl) {
    if (rl->n == 0) return;
    rl->n--;
    rl->next_ms = (double)rl->prev_next_ms;
    if (rl->last_sent_ms < rl->fb_until_ms) rl->fb_room++;
}

void ts_ratelimit_block(ts_ratelimit_t *rl, int64_t now, int64_t retry_after_s) {
    if (retry_after_s < 1) retry_after_s = 1;
    rl->blocked_until_ms = max64(rl->blocked_until_ms, now + retry_after_s * 1000);
    set_borrow(rl, 0);
}

/* Borrowing (docs/delivery.md): once this client has had a backlog for a
 * whole window, the window shows the other members' steady spending:
 * others = limit - remaining - own sends in it (remaining is net of own
 * requests in flight). What they leave unused, less a margin, may be
 * borrowed; the borrow climbs TS_RATELIMIT_BORROW_STEP per answer and
 * falls at once. */
static void adjust_borrow(ts_ratelimit_t *rl, int64_t now, long remaining) {
    if (rl->backlog_since_ms < 0 || now - rl->backlog_since_ms < STEADY_SPAN) {
        set_borrow(rl, rl->borrow / 2);
        return;
    }
    double lim = account_limit(rl);
    double own = (double)ts_ratelimit_sent_in_window(rl, now);
    double others = lim - (double)remaining - own;
    if (others < 0) others = 0;
    double target = 1 - others / lim - rl->share - TS_RATELIMIT_BORROW_MARGIN;
    if (target > rl->borrow + TS_RATELIMIT_BORROW_STEP)
        target = rl->borrow + TS_RATELIMIT_BORROW_STEP;
    set_borrow(rl, target);
}

void ts_ratelimit_observe(ts_ratelimit_t *rl, int64_t now, long limit, long remaining,
                          long reset_s) {
    if (limit > 0) {
        double seen = (double)limit < rl->steady_per_min ? (double)limit : 0;
        if (seen != rl->limit_seen) {
            rl->limit_seen = seen;
            recompute(rl);
        }
    }
    if (remaining < 0) return;
    expire(rl, now);
    int64_t until = now + (reset_s > 0 ? reset_s : 1) * 1000;
    if (remaining == 0) {
        /* the window is full: a slot opens when its oldest request leaves,
         * at the reset at the latest, earlier when that oldest one is ours */
        int64_t open = until;
        if (rl->n > 0 && at(rl, 0) + STEADY_SPAN < open) open = at(rl, 0) + STEADY_SPAN;
        rl->blocked_until_ms = max64(rl->blocked_until_ms, open);
        rl->fb_until_ms = 0;
        set_borrow(rl, 0);
        return;
    }
    adjust_borrow(rl, now, remaining);
    rl->fb_room = remaining;
    rl->fb_until_ms = until;
    rl->fb_at_ms = now;
}
