/*
 * test_ratelimit.c - the pacing decisions on a virtual clock: requests are
 * spaced evenly, never more than Klaviyo's sliding windows admit (checked
 * by a model of Klaviyo's limiter counting arrivals with latency),
 * members sharing an account fill its window together, and Retry-After /
 * RateLimit-* only tighten.
 */
#include "testlib.h"
#include <stdlib.h>
#include <string.h>

#include "tillstream/ratelimit.h"

/* ---- a model of Klaviyo's limiter: sliding windows over arrival times ---- */

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Replays arrivals (sorted here) through Klaviyo's rule: admitted when
 * fewer than `burst` were admitted in the last 1 s and fewer than `steady`
 * in the last 60 s. Returns the number refused (would be 429s). */
static int klaviyo_refusals(int64_t *arr, int n, int burst, int steady) {
    qsort(arr, (size_t)n, sizeof *arr, cmp64);
    int64_t *ok = malloc((size_t)(n ? n : 1) * sizeof *ok);
    int n_ok = 0, refused = 0, b0 = 0, s0 = 0;
    for (int i = 0; i < n; i++) {
        int64_t t = arr[i];
        while (b0 < n_ok && ok[b0] <= t - 1000) b0++;
        while (s0 < n_ok && ok[s0] <= t - 60000) s0++;
        if (n_ok - b0 >= burst || n_ok - s0 >= steady) {
            refused++;
            continue;
        }
        ok[n_ok++] = t;
    }
    free(ok);
    return refused;
}

static uint64_t rng = 88172645463325252ULL;
static int latency(int max_ms) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (uint64_t)(max_ms + 1));
}

/* Drives `n` limiters that always have work (a backlog) for `ms` virtual
 * ms in 1 ms steps; every send arrives after 0..max_lat ms. */
typedef struct {
    int64_t *arrivals;
    int n;
    int64_t *sends[4];
    int n_sends[4];
} run_t;

static void run(ts_ratelimit_t *rl, int n, int64_t t0, int64_t ms, int max_lat, run_t *out) {
    size_t cap = (size_t)(ms / 100 + 16) * (size_t)n;
    out->arrivals = malloc(cap * sizeof *out->arrivals);
    out->n = 0;
    for (int k = 0; k < n; k++) {
        out->sends[k] = malloc((size_t)(ms / 100 + 16) * sizeof **out->sends);
        out->n_sends[k] = 0;
    }
    for (int64_t t = t0; t < t0 + ms; t++)
        for (int k = 0; k < n; k++)
            if (ts_ratelimit_acquire(&rl[k], t) == 0) {
                out->sends[k][out->n_sends[k]++] = t;
                out->arrivals[out->n++] = t + latency(max_lat);
            }
}

static void run_free(run_t *r, int n) {
    free(r->arrivals);
    for (int k = 0; k < n; k++) free(r->sends[k]);
}

/* A limiter at Klaviyo's events_bulk limits (10/s, 150/min) from t0. */
static ts_ratelimit_t klaviyo_limiter(int64_t t0) {
    ts_ratelimit_t rl;
    ts_ratelimit_init(&rl, 10, 150, t0);
    return rl;
}

/* ---- members answered by the model: RateLimit-Remaining and 429s ------- */

/* Klaviyo's limiter online: requests arrive 0..max_lat ms after they are
 * sent, are admitted or refused (a 429) by the sliding windows, and the
 * answer, with Remaining = steady - admitted in the last 60 s, reaches
 * the member another 0..max_lat ms later. The member subtracts its other
 * requests in flight from Remaining, as the engine does. */
#define FB_MAX_REQ 64
typedef struct {
    int64_t arrive, answer;
    int member, remaining, reset_s, status; /* status 0: not arrived yet */
} fb_req_t;

typedef struct {
    int64_t *ok; /* admitted arrivals, oldest first */
    int n_ok, b0, s0, refused, sent;
    fb_req_t req[FB_MAX_REQ];
    int n_req;
    int inflight[4];
    int64_t window_peak; /* most admitted in any 60 s (at an arrival) */
} fb_model_t;

static void fb_arrive(fb_model_t *m, fb_req_t *q) {
    int64_t t = q->arrive;
    while (m->b0 < m->n_ok && m->ok[m->b0] <= t - 1000) m->b0++;
    while (m->s0 < m->n_ok && m->ok[m->s0] <= t - 60000) m->s0++;
    if (m->n_ok - m->b0 >= 10 || m->n_ok - m->s0 >= 150) {
        m->refused++;
        q->status = 429;
    } else {
        m->ok[m->n_ok++] = t;
        q->status = 202;
    }
    int in = m->n_ok - m->s0;
    if (in > m->window_peak) m->window_peak = in;
    q->remaining = 150 - in;
    q->reset_s = (int)((m->ok[m->s0] + 60000 - t + 999) / 1000);
}

/* Runs `n` members for `ms` virtual ms; busy[k](t) says whether member k
 * has a backlog at t (a member without one sends nothing). */
typedef bool (*fb_busy_fn)(int k, int64_t t, int64_t t0);
static void fb_run(ts_ratelimit_t *rl, int n, int64_t t0, int64_t ms, int max_lat, fb_busy_fn busy,
                   fb_model_t *m, int (*sends)[12]) {
    for (int64_t t = t0; t < t0 + ms; t++) {
        for (int i = 0; i < m->n_req; i++)
            if (m->req[i].status == 0 && m->req[i].arrive <= t) fb_arrive(m, &m->req[i]);
        for (int i = 0; i < m->n_req;) {
            fb_req_t *q = &m->req[i];
            if (q->status == 0 || q->answer > t) {
                i++;
                continue;
            }
            ts_ratelimit_t *r = &rl[q->member];
            m->inflight[q->member]--;
            long rem = q->remaining - m->inflight[q->member];
            ts_ratelimit_observe(r, t, 150, rem > 0 ? rem : 0, q->reset_s);
            if (q->status == 429) ts_ratelimit_block(r, t, q->reset_s);
            *q = m->req[--m->n_req];
        }
        for (int k = 0; k < n; k++)
            if (busy(k, t, t0) && ts_ratelimit_wait(&rl[k], t) == 0) {
                ts_ratelimit_sent_backlog(&rl[k], t, true);
                assert_true(m->n_req < FB_MAX_REQ);
                int64_t arrive = t + latency(max_lat);
                m->req[m->n_req++] = (fb_req_t){arrive, arrive + latency(max_lat), k, 0, 0, 0};
                m->inflight[k]++;
                m->sent++;
                int minute = (int)((t - t0) / 60000);
                if (minute < 12) sends[k][minute]++;
            }
    }
}

static int fb_sum(const int *per_min, int from, int to) {
    int s = 0;
    for (int i = from; i < to; i++) s += per_min[i];
    return s;
}

/* Three members at share 1/3 of one account for 10 virtual minutes (the
 * caller frees m->ok). */
typedef struct {
    ts_ratelimit_t rl[3];
    fb_model_t m;
    int sends[3][12]; /* per member, per minute */
} fb_three_t;

static void fb_three_members(fb_three_t *f, fb_busy_fn busy) {
    int64_t t0 = 1000;
    for (int k = 0; k < 3; k++) {
        f->rl[k] = klaviyo_limiter(t0);
        ts_ratelimit_set_share(&f->rl[k], 1.0 / 3.0);
    }
    f->m = (fb_model_t){.ok = malloc(4000 * sizeof(int64_t))};
    memset(f->sends, 0, sizeof f->sends);
    fb_run(f->rl, 3, t0, 600000, 300, busy, &f->m, f->sends);
}

static bool only_first_busy(int k, int64_t t, int64_t t0) { return (void)t, (void)t0, k == 0; }
static bool two_busy(int k, int64_t t, int64_t t0) { return (void)t, (void)t0, k < 2; }
static bool all_busy(int k, int64_t t, int64_t t0) { return (void)k, (void)t, (void)t0, true; }
static bool others_return(int k, int64_t t, int64_t t0) { return k == 0 || t >= t0 + 300000; }

/* ---- tests --------------------------------------------------------------- */

static void test_sliding_windows_never_exceeded(void **state) {
    (void)state;
    int64_t t0 = 5000000;
    ts_ratelimit_t rl = klaviyo_limiter(t0);
    run_t r;
    run(&rl, 1, t0, 600000, 300, &r);
    /* Klaviyo's window would refuse none of them, latency skew included */
    assert_int_equal(klaviyo_refusals(r.arrivals, r.n, 10, 150), 0);
    /* the first minute carries at most 150 (a full bucket plus refill
     * admitted ~300 there), and the window is spent from the start */
    int first_min = 0;
    for (int i = 0; i < r.n_sends[0]; i++) first_min += r.sends[0][i] < t0 + 60000;
    assert_true(first_min <= 150);
    assert_true(first_min >= 148);
    /* 10 minutes at >= 99 % of 150/min */
    assert_true(r.n_sends[0] >= 1485);
    assert_true(r.n_sends[0] <= 1500);
    run_free(&r, 1);
}

static void test_paced_evenly(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    run_t r;
    run(&rl, 1, 0, 120000, 0, &r);
    /* one request every (60 s + margin) / 150 = 402.7 ms: no bunching, no freeze */
    for (int i = 1; i < r.n_sends[0]; i++) {
        int64_t gap = r.sends[0][i] - r.sends[0][i - 1];
        assert_true(gap >= 400);
        assert_true(gap <= 405);
    }
    /* the pacing clock says how long to wait, and the wait is exact */
    int64_t last = r.sends[0][r.n_sends[0] - 1];
    int64_t w = ts_ratelimit_wait(&rl, last + 1);
    assert_true(w > 390 && w < 405);
    assert_int_equal(ts_ratelimit_wait(&rl, last + 1 + w), 0);
    run_free(&r, 1);
}

static void test_light_traffic_is_not_held(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    /* an idle limiter lets a request out at once, and again after one interval */
    assert_int_equal(ts_ratelimit_acquire(&rl, 100000), 0);
    assert_true(ts_ratelimit_wait(&rl, 100200) > 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 100403), 0);
    /* after a long pause there is no catch-up burst beyond half an interval */
    assert_int_equal(ts_ratelimit_acquire(&rl, 200000), 0);
    assert_true(ts_ratelimit_wait(&rl, 200150) > 0);
}

/* A busy process sends late: with a backlog the missed slots are caught up
 * (the window never saw them), without one, or after idle time, not. */
static void test_late_sends_catch_up_only_with_a_backlog(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    int64_t t = 100000;
    assert_int_equal(ts_ratelimit_wait(&rl, t), 0);
    ts_ratelimit_sent_backlog(&rl, t, true);
    /* the process is not scheduled for 2 s */
    int64_t u = t + 2000;
    int caught = 0;
    while (ts_ratelimit_wait(&rl, u) == 0) {
        ts_ratelimit_sent_backlog(&rl, u, true);
        caught++;
    }
    /* the schedule started half an interval back: slots at +201, +604,
     * +1007, +1409, +1812 were missed and go out now; then paced again */
    assert_int_equal(caught, 5);
    int64_t w = ts_ratelimit_wait(&rl, u);
    assert_true(w > 200 && w <= 216);
    /* over any run with such stalls Klaviyo's window still admits all */
    ts_ratelimit_t r2 = klaviyo_limiter(0);
    int64_t arr[2000];
    int n = 0;
    for (int64_t v = 0; v < 300000; v++) {
        if (v % 20000 >= 18000) continue; /* 2 s stall every 20 s */
        if (ts_ratelimit_wait(&r2, v) == 0) {
            ts_ratelimit_sent_backlog(&r2, v, true);
            arr[n++] = v + latency(300);
        }
    }
    assert_int_equal(klaviyo_refusals(arr, n, 10, 150), 0);
    assert_true(n >= 740); /* 300 s x 150/min = 750 (745 paced) */
    /* without a backlog a late send earns half an interval at most */
    ts_ratelimit_t r3 = klaviyo_limiter(0);
    ts_ratelimit_sent(&r3, 100000);
    ts_ratelimit_sent(&r3, 102000);
    assert_true(ts_ratelimit_wait(&r3, 102000) > 190);
    /* after idle time a backlog earns no burst either */
    ts_ratelimit_sent_backlog(&r3, 200000, true);
    assert_true(ts_ratelimit_wait(&r3, 200000) > 190);
}

static void test_three_members_share_one_account(void **state) {
    (void)state;
    ts_ratelimit_t rl[3];
    int64_t t0 = 1000;
    for (int k = 0; k < 3; k++) {
        rl[k] = klaviyo_limiter(t0);
        ts_ratelimit_set_share(&rl[k], 1.0 / 3.0);
    }
    run_t r;
    run(rl, 3, t0, 600000, 300, &r);
    assert_int_equal(klaviyo_refusals(r.arrivals, r.n, 10, 150), 0);
    /* together >= 95 % of the account's 1,500 requests in 10 minutes */
    assert_true(r.n >= 1425);
    for (int k = 0; k < 3; k++) {
        assert_true(r.n_sends[k] >= 475);
        for (int i = 1; i < r.n_sends[k]; i++) /* each member evenly: ~1.2 s apart */
            assert_true(r.sends[k][i] - r.sends[k][i - 1] <= 1300);
    }
    run_free(&r, 3);
}

static void test_busy_member_borrows_what_idle_members_leave(void **state) {
    (void)state;
    /* skewed: three members at 1/3, only one has work for the account */
    fb_three_t f;
    fb_three_members(&f, only_first_busy);
    /* the first window at its share (nothing is known about the others) */
    assert_true(f.sends[0][0] >= 49 && f.sends[0][0] <= 51);
    /* then it climbs to >= 90 % of the account's window and stays there */
    assert_true(fb_sum(f.sends[0], 2, 10) >= 8 * 135);
    assert_true(ts_ratelimit_borrowed(&f.rl[0]) > 0.5);
    assert_true(f.m.window_peak <= 150);
    assert_true(f.m.refused * 200 < f.m.sent); /* < 0.5 % */
    free(f.m.ok);
}

static void test_even_members_do_not_borrow(void **state) {
    (void)state;
    fb_three_t f;
    fb_three_members(&f, all_busy);
    /* as without feedback (test_three_members_share_one_account): >= 95 %
     * together, no refusal, nobody holds more than its share */
    assert_int_equal(f.m.refused, 0);
    assert_true(f.m.sent >= 1425);
    for (int k = 0; k < 3; k++) {
        assert_true(fb_sum(f.sends[k], 0, 10) >= 475);
        assert_true(fb_sum(f.sends[k], 0, 10) <= 500);
        assert_true(ts_ratelimit_borrowed(&f.rl[k]) == 0);
    }
    free(f.m.ok);
}

static void test_borrow_is_given_back(void **state) {
    (void)state;
    /* skewed for 5 minutes, then the other two members get work too */
    fb_three_t f;
    fb_three_members(&f, others_return);
    assert_true(fb_sum(f.sends[0], 2, 5) >= 3 * 135);
    /* a minute after they return each sends at its share again, and the
     * borrower at its own */
    for (int k = 0; k < 3; k++) assert_true(fb_sum(f.sends[k], 7, 10) >= 3 * 47);
    assert_true(fb_sum(f.sends[0], 7, 10) <= 3 * 52);
    assert_true(f.m.window_peak <= 150);
    assert_true(f.m.refused * 100 < f.m.sent); /* < 1 % while it gives it back */
    free(f.m.ok);
}

static void test_two_busy_members_share_the_idle_part(void **state) {
    (void)state;
    fb_three_t f;
    fb_three_members(&f, two_busy);
    /* both borrow, each bounded by what the other spends: together >= 90 %
     * of the window from the second minute, neither below its share */
    assert_true(fb_sum(f.sends[0], 2, 10) + fb_sum(f.sends[1], 2, 10) >= 8 * 135);
    for (int k = 0; k < 2; k++) assert_true(fb_sum(f.sends[k], 2, 10) >= 8 * 50);
    assert_true(f.m.window_peak <= 150);
    assert_true(f.m.refused * 200 < f.m.sent);
    free(f.m.ok);
}

static void test_start_burst_is_not_lent(void **state) {
    (void)state;
    /* the members' first seconds before the group settles, at share 1 (a
     * burst on the empty window), then 1/3 each: when the burst leaves the
     * window a minute later Remaining rises for a few seconds, which is not
     * the others' unused share */
    ts_ratelimit_t rl[3];
    int64_t t0 = 1000;
    for (int k = 0; k < 3; k++) rl[k] = klaviyo_limiter(t0);
    fb_model_t m = {.ok = malloc(4000 * sizeof(int64_t))};
    int sends[3][12] = {{0}};
    fb_run(rl, 3, t0, 3000, 300, all_busy, &m, sends);
    int start_refused = m.refused;
    for (int k = 0; k < 3; k++) ts_ratelimit_set_share(&rl[k], 1.0 / 3.0);
    fb_run(rl, 3, t0 + 3000, 597000, 300, all_busy, &m, sends);
    assert_int_equal(m.refused, start_refused);
    for (int k = 0; k < 3; k++) assert_true(ts_ratelimit_borrowed(&rl[k]) == 0);
    free(m.ok);
}

static void test_single_member_never_borrows(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(1000);
    fb_model_t m = {.ok = malloc(4000 * sizeof(int64_t))};
    int sends[1][12] = {{0}};
    fb_run(&rl, 1, 1000, 600000, 300, all_busy, &m, sends);
    assert_int_equal(m.refused, 0);
    assert_true(m.sent >= 1485 && m.sent <= 1500);
    assert_true(ts_ratelimit_borrowed(&rl) == 0);
    free(m.ok);
}

static void test_lower_share_waits_for_the_window(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    int sent = 0;
    int64_t t = 0;
    for (; t < 30000; t++) sent += ts_ratelimit_acquire(&rl, t) == 0;
    assert_true(sent >= 74 && sent <= 76);
    /* a rebalance leaves this member a third: 50 per window, and it already
     * sent ~75 in this window, so it waits until enough of them leave it */
    ts_ratelimit_set_share(&rl, 1.0 / 3.0);
    assert_true(ts_ratelimit_steady_per_min(&rl) > 49.9 && ts_ratelimit_steady_per_min(&rl) < 50.1);
    int64_t w = ts_ratelimit_wait(&rl, t);
    assert_true(w > 20000); /* the 26th of ~75 sends leaves at ~70.8 s */
    int in_window = 0;
    for (int64_t u = t; u < t + 240000; u++)
        if (ts_ratelimit_acquire(&rl, u) == 0) {
            in_window = ts_ratelimit_sent_in_window(&rl, u);
            assert_true(in_window <= 50);
        }
    assert_true(in_window >= 49);
}

static void test_retry_after_blocks(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    ts_ratelimit_block(&rl, 5000, 7);
    assert_int_equal(ts_ratelimit_wait(&rl, 5000), 7000);
    assert_true(ts_ratelimit_acquire(&rl, 11999) > 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 12000), 0);
    /* and pacing resumes: no burst after the block */
    assert_true(ts_ratelimit_acquire(&rl, 12100) > 0);
}

static void test_remaining_tightens(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    /* other members spend from the same window: Klaviyo says 2 remain
     * for the next 30 s */
    ts_ratelimit_observe(&rl, 0, 150, 2, 30);
    assert_int_equal(ts_ratelimit_acquire(&rl, 0), 0);
    assert_int_equal(ts_ratelimit_acquire(&rl, 500), 0);
    assert_int_equal(ts_ratelimit_wait(&rl, 1000), 29000); /* until the reset */
    assert_int_equal(ts_ratelimit_acquire(&rl, 30000), 0);
    /* Remaining 0: blocked until the reset */
    ts_ratelimit_observe(&rl, 31000, 150, 0, 5);
    assert_int_equal(ts_ratelimit_wait(&rl, 31000), 5000);
    assert_int_equal(ts_ratelimit_acquire(&rl, 36000), 0);
    /* absent headers change nothing */
    ts_ratelimit_observe(&rl, 36500, -1, -1, -1);
    assert_int_equal(ts_ratelimit_wait(&rl, 36403), 0);
}

static void test_limit_header_lowers_the_pace(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    ts_ratelimit_observe(&rl, 0, 60, 59, 60); /* this account is allowed 60/min */
    assert_true(ts_ratelimit_steady_per_min(&rl) < 60.1);
    assert_int_equal(ts_ratelimit_acquire(&rl, 0), 0);
    assert_true(ts_ratelimit_wait(&rl, 1000) > 0); /* ~1,007 ms apart now */
    assert_int_equal(ts_ratelimit_wait(&rl, 1007), 0);
    /* a limit at or above the configured one never loosens it */
    ts_ratelimit_observe(&rl, 1007, 1000, 999, 60);
    assert_true(ts_ratelimit_steady_per_min(&rl) < 150.1);
}

/* Requests in flight follow Klaviyo's latency: at 150/min (one per 403 ms)
 * an answer that takes 2 s needs 5 requests under way, plus the slack; quick
 * answers keep the floor; a share paces slower and needs fewer; the cap
 * holds whatever the latency. */
static void test_inflight_follows_latency(void **state) {
    (void)state;
    ts_ratelimit_t rl = klaviyo_limiter(0);
    assert_int_equal(ts_ratelimit_inflight(&rl, 0, 4, 16), 4);   /* nothing timed yet */
    assert_int_equal(ts_ratelimit_inflight(&rl, 300, 4, 16), 4); /* 1 + slack < floor */
    assert_int_equal(ts_ratelimit_inflight(&rl, 2000, 4, 16), 5 + TS_RATELIMIT_INFLIGHT_SLACK);
    assert_int_equal(ts_ratelimit_inflight(&rl, 4000, 4, 16), 10 + TS_RATELIMIT_INFLIGHT_SLACK);
    assert_int_equal(ts_ratelimit_inflight(&rl, 60000, 4, 16), 16);
    ts_ratelimit_set_share(&rl, 1.0 / 3.0); /* one per 1.21 s */
    assert_int_equal(ts_ratelimit_inflight(&rl, 4000, 4, 16), 4 + TS_RATELIMIT_INFLIGHT_SLACK);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_sliding_windows_never_exceeded),
             cmocka_unit_test(test_paced_evenly), cmocka_unit_test(test_light_traffic_is_not_held),
             cmocka_unit_test(test_late_sends_catch_up_only_with_a_backlog),
             cmocka_unit_test(test_three_members_share_one_account),
             cmocka_unit_test(test_busy_member_borrows_what_idle_members_leave),
             cmocka_unit_test(test_even_members_do_not_borrow),
             cmocka_unit_test(test_borrow_is_given_back),
             cmocka_unit_test(test_two_busy_members_share_the_idle_part),
             cmocka_unit_test(test_start_burst_is_not_lent),
             cmocka_unit_test(test_single_member_never_borrows),
             cmocka_unit_test(test_lower_share_waits_for_the_window),
             cmocka_unit_test(test_retry_after_blocks), cmocka_unit_test(test_remaining_tightens),
             cmocka_unit_test(test_limit_header_lowers_the_pace),
             cmocka_unit_test(test_inflight_follows_latency))
