/*
 * test_engine.c - the delivery engine against the Klaviyo simulator over
 * real HTTP on loopback: batching and grouping, de-duplication within a
 * batch, 429 + Retry-After, 5xx and dropped connections (delivered exactly
 * once), bisection of a bad batch, backpressure, and no key in any log.
 */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_testlib.h"
#include "tillstream/decode.h"
#include "tillstream/engine.h"
#include "tillstream/log.h"
#include "tillstream/metrics.h"
#include "tillstream/model.h"
#include "tillstream/offsets.h"
#include "tillstream/sim.h"

#define KEY_A "pk_test_SECRETKEY_aaaa"
#define KEY_B "pk_test_SECRETKEY_bbbb"

typedef struct {
    ts_sim_t *sim;
    ts_config_t *cfg;
    ts_engine_t *eng;
    int done_ok, done_rejected, done_total;
    uint64_t *seen; /* callback count per token */
    size_t n_tokens;
    char last_detail[512];
    ts_mapped_t m; /* a test's record, built by make() and sent by submit() */
} fx_t;

/* The withdraw test uses the offset tracker's real tokens. */
static ts_offsets_t *g_offsets;
static int g_withdrawn, g_stored;

static void on_done(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    fx_t *f = opaque;
    if (g_offsets) {
        int64_t store = -1;
        bool current = ts_offsets_done(g_offsets, token, &store, NULL, NULL);
        f->done_total++;
        if (result == TS_ERR_WITHDRAWN) {
            g_withdrawn++;
            assert_true(ts_err_retryable(result)); /* never dead-lettered */
            assert_false(current);                 /* revoked: cannot move the commit point */
        } else {
            assert_int_equal(result, TS_OK);
            assert_true(current);
            if (store >= 0) g_stored++;
        }
        return;
    }
    assert_true(token < f->n_tokens);
    f->seen[token]++;
    f->done_total++;
    if (result == TS_OK)
        f->done_ok++;
    else {
        f->done_rejected++;
        snprintf(f->last_detail, sizeof f->last_detail, "%s", detail ? detail : "");
    }
}

/* A virtual engine clock for the pacing tests (NULL: the real one). */
static int64_t *g_fake_now;
static ts_metrics_t *g_metrics; /* NULL: none */
static int64_t fake_clock(void *opaque) {
    (void)opaque;
    return *g_fake_now;
}

/* When set, account a's key comes from this file (api_key_file). */
static const char *g_key_file;
/* Appended to the simulator's base URL (a misconfigured klaviyo.base_url). */
static const char *g_base_path = "";

/* so: the simulator's options (NULL: defaults). */
static void start(fx_t *f, const ts_sim_opts_t *so, const char *extra_klaviyo, int max_queued) {
    char err[256];
    memset(f, 0, sizeof *f);
    f->n_tokens = 10000;
    f->seen = calloc(f->n_tokens, sizeof *f->seen);
    ts_mapped_init(&f->m);
    ts_sim_opts_t o = so ? *so : (ts_sim_opts_t){0};
    if (!o.dump_dir) o.dump_dir = getenv("TS_BODY_DUMP_DIR"); /* contract test */
    f->sim = te_sim_start(&o, KEY_A, KEY_B);
    setenv("TS_ENGINE_KEY_A", KEY_A, 1);
    setenv("TS_ENGINE_KEY_B", KEY_B, 1);
    char json[1280], key_a[300];
    if (g_key_file)
        snprintf(key_a, sizeof key_a, "\"api_key_file\":\"%s\"", g_key_file);
    else
        snprintf(key_a, sizeof key_a, "\"api_key_env\":\"TS_ENGINE_KEY_A\"");
    snprintf(json, sizeof json,
             "{\"klaviyo\":{\"base_url\":\"http://"
             "127.0.0.1:%d%s\",\"linger_ms\":20,\"max_queued_events\":%d%s},"
             "\"accounts\":[{\"name\":\"a\",%s,\"outlets\":[\"1\"],"
             "\"rate_limits\":{\"events_bulk\":{\"burst_per_s\":100,\"steady_per_min\":100000}}},"
             "{\"name\":\"b\",\"api_key_env\":\"TS_ENGINE_KEY_B\",\"outlets\":[\"2\"]}]}",
             ts_sim_port(f->sim), g_base_path, max_queued, extra_klaviyo ? extra_klaviyo : "",
             key_a);
    assert_int_equal(ts_config_parse(json, &f->cfg, err, sizeof err), TS_OK);
    ts_engine_opts_t eo = {.cfg = f->cfg,
                           .on_done = on_done,
                           .opaque = f,
                           .clock = g_fake_now ? fake_clock : NULL,
                           .metrics = g_metrics,
                           .seed = 42,
                           .backoff_base_ms = 20};
    f->eng = te_engine_new(&eo);
}

static void stop(fx_t *f) {
    ts_engine_destroy(f->eng);
    ts_config_destroy(f->cfg);
    ts_sim_destroy(f->sim);
    ts_mapped_free(&f->m);
    free(f->seen);
}

/* Customer JSON through the real router and mapper into f's engine. */
typedef struct {
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_arena_t *arena;
    ts_mapped_t m;
} mapfx_t;

static void mapfx_start(mapfx_t *x, const fx_t *f) {
    char err[256];
    x->router = ts_router_new(f->cfg, err, sizeof err);
    assert_non_null(x->router);
    x->mapper = ts_mapper_new(f->cfg, x->router, err, sizeof err);
    assert_non_null(x->mapper);
    x->arena = ts_arena_new(0);
    ts_mapped_init(&x->m);
}

/* Decodes, maps and submits one customer record as token `token`. */
static void mapfx_submit(mapfx_t *x, fx_t *f, const char *rec, uint64_t token) {
    char err[256];
    ts_customer_t c;
    ts_arena_reset(x->arena);
    assert_int_equal(ts_decode_customer_json(rec, strlen(rec), x->arena, &c, err, sizeof err),
                     TS_OK);
    assert_int_equal(ts_map_customer(x->mapper, &c, &x->m), TS_OK);
    assert_int_equal(ts_engine_submit(f->eng, &x->m, token, false, err, sizeof err), TS_OK);
}

static void mapfx_stop(mapfx_t *x) {
    ts_mapped_free(&x->m);
    ts_arena_destroy(x->arena);
    ts_mapper_destroy(x->mapper);
    ts_router_destroy(x->router);
}

/* A hand-built mapped record: one profile, n events of `metric`. */
static void make(ts_mapped_t *m, int account, const char *email, const char *order, int n_events,
                 bool bad_event) {
    ts_mapped_reset(m);
    m->account = account;
    te_span_printf(m, &m->profile, "{\"email\":\"%s\",\"external_id\":\"%s\"}", email, email);
    te_span_printf(m, &m->profile_key, "x:%s", email);
    te_span_printf(m, &m->email, "%s", email);
    m->events = realloc(m->events, (size_t)(n_events ? n_events : 1) * sizeof *m->events);
    m->cap_events = (size_t)(n_events ? n_events : 1);
    for (int i = 0; i < n_events; i++) {
        ts_map_event_t *e = &m->events[i];
        e->metric = "Ordered Product";
        te_span_printf(m, &e->unique_id, "%s:%d", order, i);
        if (bad_event && i == 0) /* no properties: Klaviyo answers 400 */
            te_span_printf(m, &e->json,
                           "{\"unique_id\":\"%s:%d\",\"metric\":{\"data\":{\"type\":\"metric\","
                           "\"attributes\":{\"name\":\"Ordered Product\"}}}}",
                           order, i);
        else
            te_span_printf(
                m, &e->json,
                "{\"properties\":{\"OrderId\":\"%s\"},\"time\":\"2026-11-01T10:00:00+00:00\","
                "\"value\":12.5,\"value_currency\":\"AUD\",\"unique_id\":\"%s:%d\",\"metric\":{"
                "\"data\":"
                "{\"type\":\"metric\",\"attributes\":{\"name\":\"Ordered Product\"}}}}",
                order, order, i);
    }
    m->n_events = (size_t)n_events;
}

/* Submits f->m as `token`; the engine must take it. */
static void submit(fx_t *f, uint64_t token, bool backfill) {
    char err[256];
    assert_int_equal(ts_engine_submit(f->eng, &f->m, token, backfill, err, sizeof err), TS_OK);
}

static void drain(fx_t *f, int64_t max_ms) { te_drain(f->eng, max_ms); }

static void test_batches_group_and_deduplicate(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    /* 300 records for a, 3 events each, 30 customers; record 0 is sent twice */
    for (int i = 0; i < 300; i++) {
        char email[64], order[32];
        snprintf(email, sizeof email, "c%d@example.com", i % 30);
        snprintf(order, sizeof order, "O%d", i);
        make(&f.m, 0, email, order, 3, false);
        submit(&f, (uint64_t)i, false);
    }
    make(&f.m, 0, "c0@example.com", "O0", 3, false); /* a re-consumed duplicate of record 0 */
    submit(&f, 300, false);
    make(&f.m, 1, "b@example.com", "B1", 2, false);
    submit(&f, 301, true);
    drain(&f, 10000);
    assert_int_equal(f.done_ok, 302);
    for (int t = 0; t < 302; t++) assert_int_equal(f.seen[t], 1); /* exactly one callback each */
    ts_sim_stats_t st = te_sim_stats(f.sim, "a");
    assert_int_equal(st.events_recorded, 900);
    assert_int_equal(st.rejected_400, 0); /* the in-batch duplicate never reached Klaviyo twice */
    assert_true(st.accepted <= 2);        /* 903 events fit one or two bulk requests */
    st = te_sim_stats(f.sim, "b");
    assert_int_equal(st.events_recorded, 2);
    assert_int_equal(st.backfill_events, 2);
    ts_lane_stats_t ls;
    ts_engine_lane_stats(f.eng, 0, &ls);
    assert_int_equal(ls.events_accepted, 903);
    stop(&f);
}

static void test_throttled_batches_are_delivered_later(void **state) {
    (void)state;
    fx_t f;
    ts_sim_opts_t so = {0};
    so.limits[TS_SIM_EP_EVENTS_BULK] = (ts_sim_limit_t){1, 1000}; /* 1 request/s at Klaviyo */
    start(&f, &so, NULL, 100000);
    /* 3 requests' worth: the engine (configured for 100/s) will be throttled */
    for (int i = 0; i < 2500; i++) {
        char order[32];
        snprintf(order, sizeof order, "T%d", i);
        make(&f.m, 0, "t@example.com", order, 1, false);
        submit(&f, (uint64_t)i, false);
    }
    drain(&f, 20000);
    assert_int_equal(f.done_ok, 2500);
    ts_sim_stats_t st = te_sim_stats(f.sim, "a");
    assert_int_equal(st.events_recorded, 2500); /* zero lost */
    assert_true(st.throttled_429 >= 1);
    ts_lane_stats_t ls;
    ts_engine_lane_stats(f.eng, 0, &ls);
    assert_int_equal(ls.throttled_429, st.throttled_429);
    stop(&f);
}

static void test_faults_deliver_exactly_once(void **state) {
    (void)state;
    fx_t f;
    ts_sim_opts_t so = {0};
    so.fail_rate = 0.2;
    so.drop_rate = 0.1;
    so.spike_rate = 0.1;
    so.spike_ms = 50;
    so.seed = 7;
    /* Klaviyo's answers carry its limits and the engine paces to them:
     * raise them so that faults hit many requests */
    so.limits[TS_SIM_EP_EVENTS_BULK] = (ts_sim_limit_t){1000, 100000};
    start(&f, &so, NULL, 100000);
    /* many small batches (linger 20 ms) so faults hit many requests */
    int n = 0;
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 25; i++, n++) {
            char order[32], email[32];
            snprintf(order, sizeof order, "F%d", n);
            snprintf(email, sizeof email, "f%d@example.com", n % 7);
            make(&f.m, n % 2, email, order, 2, false);
            submit(&f, (uint64_t)n, false);
        }
        ts_engine_poll(f.eng, 30);
    }
    drain(&f, 60000);
    assert_int_equal(f.done_ok, n);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a"), sb = te_sim_stats(f.sim, "b");
    assert_int_equal(sa.events_recorded + sb.events_recorded, (uint64_t)n * 2);
    assert_int_equal(sa.duplicates_ignored + sb.duplicates_ignored, 0);
    assert_true(sa.failed_5xx + sb.failed_5xx > 0);
    assert_true(sa.dropped + sb.dropped > 0);
    stop(&f);
}

static void test_one_bad_event_rejects_only_its_record(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    for (int i = 0; i < 40; i++) {
        char order[32], email[32];
        snprintf(order, sizeof order, "G%d", i);
        snprintf(email, sizeof email, "g%d@example.com", i);
        make(&f.m, 0, email, order, 2, i == 17);
        submit(&f, (uint64_t)i, false);
    }
    drain(&f, 10000);
    assert_int_equal(f.done_ok, 39);
    assert_int_equal(f.done_rejected, 1);
    assert_true(strstr(f.last_detail, "properties") != NULL);
    ts_sim_stats_t st = te_sim_stats(f.sim, "a");
    /* 39 records x 2, plus G17's valid event: bisection isolates events, so
     * the record is dead-lettered whole while its good event is kept (a
     * redrive re-sends it harmlessly: same unique_id) */
    assert_int_equal(st.events_recorded, 79);
    assert_true(st.rejected_400 >= 1);
    stop(&f);
}

/* Klaviyo's error document is parsed, not searched as text: its detail
 * and source pointer reach KLAVIYO_REJECTED also when the JSON has spaces
 * after colons (issue 13, item 6). */
static void test_error_document_with_spaces(void **state) {
    (void)state;
    fx_t f;
    ts_sim_opts_t so = {.spaced_json = true};
    start(&f, &so, NULL, 100000);
    make(&f.m, 0, "s@example.com", "S1", 1, true);
    submit(&f, 1, false);
    drain(&f, 10000);
    assert_int_equal(f.done_rejected, 1);
    assert_non_null(strstr(f.last_detail, "Klaviyo HTTP 400: "));
    assert_non_null(strstr(f.last_detail, "properties"));
    assert_non_null(strstr(f.last_detail, "(at /data/attributes/events-bulk-create/data/0"));
    stop(&f);
}

static void test_customers_profiles_and_consent(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    mapfx_t x;
    mapfx_start(&x, &f);
    const char *recs[] = {
        "{\"customer_id\":\"C1\",\"email\":\"one@example.com\",\"phone\":\"+61412000001\",\"home_"
        "outlet_id\":\"1\","
        "\"email_consent\":true,\"sms_consent\":false}",
        "{\"customer_id\":\"C2\",\"email\":\"two@example.com\",\"home_outlet_id\":\"1\",\"email_"
        "consent\":false}",
        "{\"customer_id\":\"C3\",\"phone\":\"+61412000003\",\"home_outlet_id\":\"2\",\"sms_"
        "consent\":true}",
        "{\"customer_id\":\"C4\",\"email\":\"four@example.com\",\"home_outlet_id\":\"2\"}",
    };
    for (int i = 0; i < 4; i++) mapfx_submit(&x, &f, recs[i], (uint64_t)i);
    drain(&f, 10000);
    assert_int_equal(f.done_ok, 4);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a"), sb = te_sim_stats(f.sim, "b");
    assert_int_equal(sa.profiles, 2);
    assert_int_equal(sb.profiles, 2);
    assert_int_equal(sa.subscribed, 1);   /* C1 email */
    assert_int_equal(sa.unsubscribed, 2); /* C1 sms, C2 email */
    assert_int_equal(sb.subscribed, 1);   /* C3 sms */
    assert_int_equal(sb.unsubscribed, 0); /* C4: consent unknown, untouched */
    mapfx_stop(&x);
    stop(&f);
}

/* --replay-consent: subscribes decided as historical imports go in jobs
 * of their own with historical_import: true and each channel's
 * consented_at; live subscribes queued beside them go in jobs without
 * either (Klaviyo refuses consented_at without the flag, and requires it
 * with it: the simulator checks both and would answer 400). */
static void test_historical_subscribes_own_jobs(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    int64_t now = ts_now_wall_ms();
    for (int i = 0; i < 40; i++) {
        char email[32];
        snprintf(email, sizeof email, "h%d@example.com", i);
        make(&f.m, 0, email, "none", 0, false);
        f.m.send_profile = false;
        f.m.email_marketing = TS_SUB_SUBSCRIBE;
        bool hist = i % 3 != 0; /* interleaved: 26 historical, 14 live */
        f.m.consent[TS_CONSENT_EMAIL] =
            (ts_consent_decision_t){.action = TS_CONSENT_SUBSCRIBE,
                                    .historical_import = hist,
                                    .consented_at = hist ? now - 86400000 - i * 1000 : now};
        submit(&f, (uint64_t)i, false);
    }
    drain(&f, 10000);
    assert_int_equal(f.done_ok, 40);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a");
    assert_int_equal(sa.rejected_400, 0);
    assert_int_equal(sa.subscribed, 40);
    assert_int_equal(sa.historical_subscribed, 26);
    stop(&f);
}

/* Bulk unsubscribe takes at most 100 profiles per call (the engine used to
 * send up to 1,000, which Klaviyo answers 400). */
static void test_unsubscribe_batches_of_100(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    mapfx_t x;
    mapfx_start(&x, &f);
    for (int i = 0; i < 250; i++) {
        char rec[256];
        snprintf(rec, sizeof rec,
                 "{\"customer_id\":\"U%d\",\"email\":\"u%d@example.com\",\"home_outlet_id\":"
                 "\"1\",\"email_consent\":false}",
                 i, i);
        mapfx_submit(&x, &f, rec, (uint64_t)i);
    }
    drain(&f, 20000);
    assert_int_equal(f.done_ok, 250);
    assert_int_equal(f.done_rejected, 0);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a");
    assert_int_equal(sa.unsubscribed, 250);
    assert_int_equal(sa.rejected_400, 0);
    mapfx_stop(&x);
    stop(&f);
}

static uint64_t lane_requests(fx_t *f, int account) {
    ts_lane_stats_t ls;
    ts_engine_lane_stats(f->eng, account, &ls);
    return ls.requests;
}

/* With the engine clock frozen, lets transfers finish (real time) until
 * `n` records completed in all. */
static void settle_until(fx_t *f, int n) {
    int64_t end = ts_now_mono_ms() + 10000;
    while (f->done_total < n && ts_now_mono_ms() < end) ts_engine_poll(f->eng, 0);
    assert_int_equal(f->done_total, n);
}

static void submit_n(fx_t *f, int account, int first, int n, int events) {
    char order[32], email[32];
    for (int i = first; i < first + n; i++) {
        snprintf(order, sizeof order, "P%d", i);
        snprintf(email, sizeof email, "p%d@example.com", i % 50);
        make(&f->m, account, email, order, events, false);
        submit(f, (uint64_t)i, false);
    }
}

/* The pacing decisions on a virtual clock, account b at Klaviyo's real
 * limits (10/s, 150/min: one request per 402.7 ms), linger 20 ms. */
static void test_pacing_decisions(void **state) {
    (void)state;
    int64_t now = 1000000;
    g_fake_now = &now;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    /* light traffic: out once the linger has passed */
    submit_n(&f, 1, 0, 10, 1);
    ts_engine_poll(f.eng, 0);
    now += 19;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 0);
    now += 1;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 1);
    settle_until(&f, 10);
    /* linger passed but the pacing clock has not: wait for it */
    now += 80;
    submit_n(&f, 1, 10, 10, 1);
    now += 20;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 1);
    now = 1000000 + 20 + 300; /* the clock catches up half an interval at most */
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 1);
    now = 1000000 + 20 + 403;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 2);
    settle_until(&f, 20);
    /* heavy traffic: 2,500 events queued; a full batch still waits for the
     * pacing clock (no bunching), and every request is full */
    submit_n(&f, 1, 20, 500, 5);
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 2);
    int64_t t2 = now;
    now = t2 + 403;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 3);
    now += 1;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 3); /* 1,500 still queued, but paced */
    settle_until(&f, 220);
    ts_sim_stats_t st = te_sim_stats(f.sim, "b");
    assert_int_equal(st.events_recorded, 20 + 1000);
    now = t2 + 806;
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 4);
    settle_until(&f, 420);
    st = te_sim_stats(f.sim, "b");
    assert_int_equal(st.events_recorded, 20 + 2000);
    ts_lane_stats_t ls;
    ts_engine_lane_stats(f.eng, 1, &ls);
    assert_int_equal(ls.queued_events, 500);
    stop(&f);
    g_fake_now = NULL;
}

static bool token_untracked(void *opaque, uint64_t token) {
    return ts_offsets_user(opaque, token) == NULL;
}

/* A rebalance revokes partition 1: its records' parts that were not sent
 * yet are withdrawn (reported WITHDRAWN, never stored), parts on the wire
 * complete as usual, partition 2's records are delivered. */
static bool token_partition_1(void *opaque, uint64_t token) {
    (void)opaque;
    return ts_offsets_token_partition(token) == 1;
}

static void test_withdraw_revoked_partition(void **state) {
    (void)state;
    int64_t now = 5000000;
    g_fake_now = &now;
    fx_t f;
    start(&f, NULL, NULL, 100000);
    ts_offsets_t *off = ts_offsets_new(1000);
    g_offsets = off;
    g_withdrawn = g_stored = 0;
    static int tag = 1;
    assert_int_equal(ts_offsets_assign(off, 1), TS_OK);
    assert_int_equal(ts_offsets_assign(off, 2), TS_OK);
    char order[32];
    uint64_t tok;
    /* partition 1, offset 0: 1,500 events for account b (paced at
     * 150/min): 1,000 go out at once, 500 wait for the pacing clock */
    make(&f.m, 1, "big@example.com", "W0", 1500, false);
    assert_int_equal(ts_offsets_track(off, 1, 0, &tag, &tok), TS_OK);
    submit(&f, tok, false);
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 1);
    /* then 20 small records on each partition, still within the linger */
    for (int i = 0; i < 40; i++) {
        int p = 1 + i % 2;
        snprintf(order, sizeof order, "W%d", i + 1);
        make(&f.m, 0, "w@example.com", order, 2, false);
        assert_int_equal(ts_offsets_track(off, p, 1 + i / 2, &tag, &tok), TS_OK);
        submit(&f, tok, false);
    }
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 0), 0);
    /* on the wire: the big record's first 1,000 events only */
    assert_int_equal(ts_engine_on_wire(f.eng, token_partition_1, NULL), 1000);
    /* not settled: those, the 500 waiting for the pacing clock and 20 x 2 small events */
    assert_int_equal(ts_engine_unsettled(f.eng, token_partition_1, NULL), 1540);
    assert_int_equal(ts_engine_on_wire(f.eng, token_untracked, off), 0);
    /* revoke partition 1, then withdraw what the tracker no longer knows */
    ts_offsets_revoke(off, 1, NULL, NULL);
    assert_int_equal(ts_engine_on_wire(f.eng, token_untracked, off), 1000);
    size_t n = ts_engine_withdraw(f.eng, token_untracked, off);
    assert_int_equal(n, 21);
    assert_int_equal(g_withdrawn, 20); /* the big record still has a batch on the wire */
    assert_int_equal(ts_engine_pending(f.eng), 21);
    /* withdrawing takes nothing off the wire: what a revoke waits for */
    assert_int_equal(ts_engine_on_wire(f.eng, token_untracked, off), 1000);
    assert_int_equal(ts_engine_unsettled(f.eng, token_untracked, off), 1000);
    ts_lane_stats_t ls;
    ts_engine_lane_stats(f.eng, 1, &ls);
    assert_int_equal(ls.withdrawn, 500);
    /* let everything finish: the big record completes WITHDRAWN after its
     * first batch's 202; partition 2 is delivered and stored */
    now += 1000;
    settle_until(&f, 41);
    assert_int_equal(g_withdrawn, 21);
    assert_int_equal(ts_engine_on_wire(f.eng, token_partition_1, NULL), 0);
    assert_int_equal(ts_engine_unsettled(f.eng, token_partition_1, NULL), 0);
    assert_true(g_stored > 0);
    assert_int_equal(ts_offsets_committed(off, 2), 21);
    ts_sim_stats_t st = te_sim_stats(f.sim, "a");
    assert_int_equal(st.events_recorded, 40); /* partition 2 only */
    st = te_sim_stats(f.sim, "b");
    assert_int_equal(st.events_recorded, 1000); /* what was on the wire */
    assert_int_equal(lane_requests(&f, 1), 1);
    g_offsets = NULL;
    ts_offsets_destroy(off);
    stop(&f);
    g_fake_now = NULL;
}

/* A clock 4 times faster than real time, shared by the simulator and the
 * engines (both take an injected clock): 60 s of Klaviyo's windows in 15 s.
 * (Faster clocks magnify a loaded machine's scheduling stalls.) */
static int64_t fast_origin;
static int64_t fast_clock(void *opaque) {
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    return 1000000 + (us - fast_origin) * 4 / 1000;
}

static int share_done;
static void share_on_done(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    (void)opaque;
    (void)token;
    (void)detail;
    assert_int_equal(result, TS_OK);
    share_done++;
}

/* Three members of one group share one account at Klaviyo's real limits,
 * each with share 1/3: together they fill its window (>= 95 % of 150
 * requests a minute) and Klaviyo refuses almost none (< 0.5 %). */
static void test_three_members_share_an_account(void **state) {
    (void)state;
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    fast_origin = (int64_t)ts0.tv_sec * 1000000 + ts0.tv_nsec / 1000;
    char err[256];
    ts_sim_opts_t so = {.summary_only = true, .clock = fast_clock};
    ts_sim_t *sim = te_sim_start(&so, KEY_A, NULL);
    setenv("TS_ENGINE_KEY_A", KEY_A, 1);
    char json[512];
    snprintf(json, sizeof json,
             "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":200,"
             "\"max_queued_events\":40},\"accounts\":[{\"name\":\"a\",\"api_key_env\":"
             "\"TS_ENGINE_KEY_A\",\"outlets\":[\"1\"]}]}",
             ts_sim_port(sim));
    ts_config_t *cfg;
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_OK);
    ts_engine_t *eng[3];
    for (int k = 0; k < 3; k++) {
        ts_engine_opts_t eo = {
            .cfg = cfg, .on_done = share_on_done, .clock = fast_clock, .seed = (uint64_t)k + 1};
        eng[k] = te_engine_new(&eo);
        ts_engine_set_share(eng[k], 1.0 / 3.0);
    }
    ts_mapped_t m;
    ts_mapped_init(&m);
    int n = 0;
    int64_t t0 = fast_clock(NULL), end = t0 + 60000;
    while (fast_clock(NULL) < end) {
        for (int k = 0; k < 3; k++) {
            while (ts_engine_has_room(eng[k], 0)) { /* a backlog on every member */
                char order[32];
                snprintf(order, sizeof order, "S%d", n);
                make(&m, 0, "s@example.com", order, 1, false);
                assert_int_equal(
                    ts_engine_submit(eng[k], &m, (uint64_t)n++, false, err, sizeof err), TS_OK);
            }
            ts_engine_poll(eng[k], 0);
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    ts_sim_stats_t st = te_sim_stats(sim, "a");
    /* 60 s at 150/min: 150 requests is the ceiling (the window starts empty) */
    print_message("3 members: %llu requests accepted, %llu answered 429\n",
                  (unsigned long long)st.accepted, (unsigned long long)st.throttled_429);
    assert_true(st.accepted >= 143);
    assert_true(st.accepted <= 152);
    assert_true((double)st.throttled_429 < 0.005 * (double)st.requests + 1e-9);
    for (int k = 0; k < 3; k++) {
        ts_lane_stats_t ls;
        ts_engine_lane_stats(eng[k], 0, &ls);
        assert_true(ls.requests >= 47); /* each spends its third */
        ts_engine_destroy(eng[k]);
    }
    ts_mapped_free(&m);
    ts_config_destroy(cfg);
    ts_sim_destroy(sim);
}

static double metric(const char *name, const char *labels) {
    return ts_metric_value(ts_metrics_gauge(g_metrics, name, "", labels));
}

/* Progress that tells the truth: an account whose window is spent (the
 * simulator allows it one request a minute) shows its waiting in the
 * gauges and the lane stats, and says so once in the log after
 * klaviyo.stall_warn_ms. */
static void test_progress_and_stall_warning(void **state) {
    (void)state;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    ts_log_set_sink(mem);
    int64_t now = 9000000;
    g_fake_now = &now;
    g_metrics = ts_metrics_new();
    fx_t f;
    ts_sim_opts_t so = {0};
    so.limits[TS_SIM_EP_EVENTS_BULK] = (ts_sim_limit_t){1, 1};
    start(&f, &so, ",\"stall_warn_ms\":1500", 100000);
    submit_n(&f, 1, 0, 300, 5); /* 1,500 events */
    ts_engine_poll(f.eng, 0);
    assert_int_equal(lane_requests(&f, 1), 1);
    settle_until(&f, 200); /* 1,000 accepted; Remaining 0 for a minute */
    ts_lane_stats_t ls;
    for (int i = 1; i <= 3; i++) {
        now += 1000;
        ts_engine_poll(f.eng, 0);
    }
    assert_int_equal(lane_requests(&f, 1), 1); /* held: the window is spent */
    ts_engine_lane_stats(f.eng, 1, &ls);
    assert_true(ls.oldest_undelivered_s >= 2.9 && ls.oldest_undelivered_s <= 3.1);
    assert_true(ls.paced_s >= 1.9); /* the first second was the linger, not pacing */
    assert_true(ls.last_success_wall_ms > 0);
    /* 1,000 events in the first 3 s (the window is shorter than 60 s) */
    assert_true(ls.events_per_s > 300 && ls.events_per_s < 400);
    assert_true(ls.ceiling_per_s > 16.6 && ls.ceiling_per_s < 16.7); /* 1/min x 1,000 / 60 s */
    assert_true(ls.ceiling_ratio <= 1.0);
    assert_true(metric("tillstream_oldest_undelivered_age_seconds", "account=\"b\"") >= 1.9);
    assert_true(
        ts_metric_value(ts_metrics_counter(g_metrics, "tillstream_klaviyo_paced_seconds_total", "",
                                           "account=\"b\"")) >= 1.9);
    assert_true(metric("tillstream_klaviyo_last_success_timestamp_seconds",
                       "account=\"b\",endpoint=\"events_bulk\"") > 1.7e9);
    assert_true(metric("tillstream_klaviyo_ceiling_ratio", "account=\"b\"") <= 1.0);
    fflush(mem);
    const char *w = strstr(logbuf, "account has waited");
    assert_non_null(w);
    assert_null(strstr(w + 1, "account has waited")); /* once */
    assert_non_null(strstr(logbuf, "\"account\":\"b\""));
    ts_log_set_sink(NULL);
    fclose(mem);
    free(logbuf);
    stop(&f);
    ts_metrics_destroy(g_metrics);
    g_metrics = NULL;
    g_fake_now = NULL;
}

/* A slow Klaviyo (every answer 400 ms) for two accounts each allowed 100
 * requests a second, each with a request's worth of traffic every 20 ms:
 * once the first answers are timed, each account has more than the floor
 * of 4 requests out at once (rate x latency, up to 16), and neither takes
 * connections from the other (no shared cap below the lanes' own), so the
 * latency holds neither below its pace; every event arrives once. */
static void test_slow_klaviyo_gets_more_in_flight(void **state) {
    (void)state;
    char err[256];
    ts_sim_opts_t so = {.latency_ms = 400, .rate_scale = 100}; /* RateLimit-Limit 15,000/min */
    ts_sim_t *sim = te_sim_start(&so, KEY_A, KEY_B);
    setenv("TS_ENGINE_KEY_A", KEY_A, 1);
    setenv("TS_ENGINE_KEY_B", KEY_B, 1);
    char json[768];
    const char *fast = "\"rate_limits\":{\"events_bulk\":{\"burst_per_s\":100,"
                       "\"steady_per_min\":100000}}";
    snprintf(json, sizeof json,
             "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":20},"
             "\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"TS_ENGINE_KEY_A\","
             "\"outlets\":[\"1\"],%s},{\"name\":\"b\",\"api_key_env\":\"TS_ENGINE_KEY_B\","
             "\"outlets\":[\"2\"],%s}]}",
             ts_sim_port(sim), fast, fast);
    ts_config_t *cfg;
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_OK);
    g_metrics = ts_metrics_new();
    share_done = 0;
    ts_engine_opts_t eo = {.cfg = cfg, .on_done = share_on_done, .metrics = g_metrics, .seed = 7};
    ts_engine_t *eng = te_engine_new(&eo);
    ts_mapped_t m;
    ts_mapped_init(&m);
    int n = 0;
    for (int round = 0; round < 125; round++) { /* 2.5 s */
        for (int acct = 0; acct < 2; acct++) {
            char order[32];
            snprintf(order, sizeof order, "SL%d", n);
            make(&m, acct, "slow@example.com", order, 1, false);
            ts_engine_flush(eng); /* one request per record: the linger is not what is tested */
            assert_int_equal(ts_engine_submit(eng, &m, (uint64_t)n++, false, err, sizeof err),
                             TS_OK);
        }
        ts_engine_poll(eng, 0);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    te_drain(eng, 10000);
    assert_int_equal(share_done, n);
    ts_sim_stats_t sa = te_sim_stats(sim, "a"), sb = te_sim_stats(sim, "b");
    double lim = metric("tillstream_klaviyo_requests_in_flight_limit",
                        "account=\"a\",endpoint=\"events_bulk\"");
    print_message("slow Klaviyo: %llu + %llu requests, at most %llu + %llu at once, limit %.0f\n",
                  (unsigned long long)sa.requests, (unsigned long long)sb.requests,
                  (unsigned long long)sa.max_concurrent, (unsigned long long)sb.max_concurrent,
                  lim);
    assert_int_equal(sa.events_recorded + sb.events_recorded, (uint64_t)n);
    assert_int_equal(sa.duplicates_ignored + sb.duplicates_ignored, 0);
    assert_true(sa.max_concurrent > 10 && sb.max_concurrent > 10); /* 16 shared: one <= 8 */
    assert_true(sa.max_concurrent <= 16 && sb.max_concurrent <= 16);
    assert_true(lim > 4);
    assert_true(metric("tillstream_klaviyo_requests_in_flight",
                       "account=\"a\",endpoint=\"events_bulk\"") == 0); /* all answered */
    ts_engine_destroy(eng);
    ts_mapped_free(&m);
    ts_config_destroy(cfg);
    ts_sim_destroy(sim);
    ts_metrics_destroy(g_metrics);
    g_metrics = NULL;
}

static void test_backpressure(void **state) {
    (void)state;
    fx_t f;
    start(&f, NULL, NULL, 5);
    char err[128];
    make(&f.m, 0, "p@example.com", "P1", 3, false);
    submit(&f, 1, false);
    assert_true(ts_engine_has_room(f.eng, 0));
    make(&f.m, 0, "p@example.com", "P2", 3, false);
    submit(&f, 2, false);
    assert_false(ts_engine_has_room(f.eng, 0));
    make(&f.m, 0, "p@example.com", "P3", 1, false);
    assert_int_equal(ts_engine_submit(f.eng, &f.m, 3, false, err, sizeof err), TS_ERR_FULL);
    assert_true(ts_engine_has_room(f.eng, 1)); /* other lanes are unaffected */
    drain(&f, 5000);
    assert_true(ts_engine_has_room(f.eng, 0));
    assert_int_equal(f.done_ok, 2);
    assert_int_equal(f.seen[3], 0); /* refused records never get a callback */
    stop(&f);
}

/* Submits n one-event records of account a from token `first`. */
static void submit_rot(fx_t *f, int first, int n, const char *prefix) {
    for (int i = first; i < first + n; i++) {
        char order[48];
        snprintf(order, sizeof order, "%s%d", prefix, i);
        make(&f->m, 0, "rot@example.com", order, 1, false);
        submit(f, (uint64_t)i, false);
    }
}

/* An account's key rotated in its api_key_file is used without a restart:
 * after the 401s that a revoked key gets (re-read at once, key_check_ms 0),
 * or before any (the periodic look, key_check_ms 100). Nothing is
 * dead-lettered, every event arrives once, and no key is ever logged. */
static void test_rotated_key_file_without_restart(void **state) {
    (void)state;
    static const char *const NEW_KEY[2] = {"pk_test_SECRETKEY_rot1", "pk_test_SECRETKEY_rot2"};
    for (int periodic = 0; periodic <= 1; periodic++) {
        char dir[] = "/tmp/ts-keyfile.XXXXXX", path[300];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/brand-a", dir);
        tl_write_secret(path, KEY_A);
        logcap_t lc;
        logcap_begin(&lc);
        g_key_file = path;
        fx_t f;
        start(&f, NULL, periodic ? ",\"key_check_ms\":100" : ",\"key_check_ms\":0", 100000);
        g_key_file = NULL;
        submit_rot(&f, 0, 10, "R");
        drain(&f, 5000);
        assert_int_equal(f.done_ok, 10);
        if (!periodic) {
            /* Klaviyo revokes the old key: refused, kept, retried (not dead-lettered) */
            assert_int_equal(ts_sim_set_key(f.sim, "a", NEW_KEY[0]), TS_OK);
            submit_rot(&f, 10, 10, "R");
            ts_engine_flush(f.eng);
            for (int i = 0; i < 6; i++) ts_engine_poll(f.eng, 50);
            assert_int_equal(f.done_total, 10);
            ts_lane_stats_t ls;
            ts_engine_lane_stats(f.eng, 0, &ls);
            assert_true(ls.retries >= 1);
            assert_int_equal(ls.key_reloads, 0); /* the file still holds the old key */
            tl_write_secret(path, NEW_KEY[0]);   /* the operator rotates the Secret */
        } else {
            /* the Secret is rotated first, then Klaviyo revokes the old key */
            tl_write_secret(path, NEW_KEY[1]);
            ts_lane_stats_t ls;
            int64_t until = ts_now_mono_ms() + 3000; /* looked at within a second of key_check_ms */
            do {
                ts_engine_poll(f.eng, 50);
                ts_engine_lane_stats(f.eng, 0, &ls);
            } while (ls.key_reloads == 0 && ts_now_mono_ms() < until);
            assert_int_equal(ls.key_reloads, 1);
            assert_int_equal(ts_sim_set_key(f.sim, "a", NEW_KEY[1]), TS_OK);
            submit_rot(&f, 10, 10, "R");
        }
        drain(&f, 5000);
        assert_int_equal(f.done_ok, 20);
        assert_int_equal(f.done_rejected, 0);
        for (int t = 0; t < 20; t++) assert_int_equal(f.seen[t], 1);
        ts_lane_stats_t ls;
        ts_engine_lane_stats(f.eng, 0, &ls);
        assert_int_equal(ls.key_reloads, 1);
        ts_sim_stats_t st = te_sim_stats(f.sim, "a");
        assert_int_equal(st.events_recorded, 20);
        if (periodic) assert_int_equal(ls.retries, 0); /* switched before the old key died */
        /* the same key written again (a Secret re-synced) is no rotation */
        tl_write_secret(path, periodic ? NEW_KEY[1] : NEW_KEY[0]);
        for (int i = 0; i < 30; i++) ts_engine_poll(f.eng, 50); /* > 1 s: looked at, read */
        ts_engine_lane_stats(f.eng, 0, &ls);
        assert_int_equal(ls.key_reloads, 1);
        const char *logbuf = logcap_text(&lc);
        assert_non_null(strstr(logbuf, "API key changed in its file"));
        assert_null(strstr(logbuf, "SECRETKEY"));
        logcap_end(&lc);
        stop(&f);
        unlink(path);
        rmdir(dir);
    }
}

/* Klaviyo refusing the request itself (a retired revision: 410; a
 * klaviyo.base_url with a path: 404) is the deployment's fault, not the
 * records': nothing is dead-lettered, the batch is retried with backoff and
 * an error names the keys to check. */
static void test_request_refused_is_not_dead_lettered(void **state) {
    (void)state;
    for (int retired = 1; retired >= 0; retired--) {
        logcap_t lc;
        logcap_begin(&lc);
        ts_sim_opts_t so = {0};
        so.retired_before = "2026-01-01";
        g_base_path = retired ? "" : "/v2";
        fx_t f;
        start(&f, &so, retired ? ",\"revision\":\"2025-07-15\"" : NULL, 100000);
        g_base_path = "";
        submit_rot(&f, 0, 5, "G");
        ts_engine_flush(f.eng);
        for (int i = 0; i < 10; i++) ts_engine_poll(f.eng, 50);
        assert_int_equal(f.done_total, 0); /* not one record dead-lettered */
        assert_int_equal(ts_engine_pending(f.eng), 5);
        ts_lane_stats_t ls;
        ts_engine_lane_stats(f.eng, 0, &ls);
        assert_true(ls.retries >= 2);
        assert_int_equal(te_sim_stats(f.sim, "a").events_recorded, 0);
        const char *logbuf = logcap_text(&lc);
        assert_non_null(strstr(logbuf, retired ? "refused the request itself (HTTP 410)"
                                               : "refused the request itself (HTTP 404)"));
        assert_non_null(strstr(logbuf, "klaviyo.revision"));
        logcap_end(&lc);
        stop(&f);
    }
}

/* The revision clock: the release date of klaviyo.revision is a gauge, and
 * a revision 18 months old or more is one warning at start (Klaviyo retires
 * revisions about two years after release). Today's default is not. */
static void test_revision_clock(void **state) {
    (void)state;
    for (int old = 1; old >= 0; old--) {
        logcap_t lc;
        logcap_begin(&lc);
        g_metrics = ts_metrics_new();
        fx_t f;
        start(&f, NULL, old ? ",\"revision\":\"2024-01-15\"" : NULL, 100000);
        ts_metric_t *g =
            ts_metrics_gauge(g_metrics, "tillstream_klaviyo_revision_timestamp_seconds", "", NULL);
        int64_t want_ms;
        assert_int_equal(ts_time_parse_iso8601(f.cfg->klaviyo_revision, 10, &want_ms, NULL, 0),
                         TS_OK);
        assert_true(ts_metric_value(g) == (double)(want_ms / 1000));
        if (old) assert_true(ts_metric_value(g) == 1705276800.0); /* 2024-01-15T00:00:00Z */
        const char *logbuf = logcap_text(&lc);
        bool warned = strstr(logbuf, "klaviyo.revision 2024-01-15 is ") != NULL;
        assert_int_equal(warned, old);
        if (!old) assert_null(strstr(logbuf, "days old"));
        stop(&f);
        ts_metrics_destroy(g_metrics);
        g_metrics = NULL;
        logcap_end(&lc);
    }
}

static void test_api_key_never_logged(void **state) {
    (void)state;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    ts_log_set_sink(mem);
    ts_log_set_level(TS_LOG_DEBUG);
    fx_t f;
    ts_sim_opts_t so = {0};
    start(&f, &so, NULL, 100000);
    /* the simulator does not know this account's key: 401s */
    ts_sim_destroy(f.sim);
    char err[256];
    f.sim = ts_sim_new(&so, err, sizeof err);
    ts_sim_add_account(f.sim, "a", "pk_some_other_key");
    so.port = 0;
    assert_int_equal(ts_sim_start(f.sim, err, sizeof err), TS_OK);
    ts_engine_destroy(f.eng);
    char json[512];
    ts_config_destroy(f.cfg);
    snprintf(
        json, sizeof json,
        "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":0},"
        "\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"TS_ENGINE_KEY_A\",\"outlets\":[\"1\"]}]}",
        ts_sim_port(f.sim));
    assert_int_equal(ts_config_parse(json, &f.cfg, err, sizeof err), TS_OK);
    ts_engine_opts_t eo = {f.cfg, on_done, &f, NULL, NULL, NULL, 1, 10, NULL, NULL};
    f.eng = ts_engine_new(&eo, err, sizeof err);
    make(&f.m, 0, "k@example.com", "K1", 1, false);
    assert_int_equal(ts_engine_submit(f.eng, &f.m, 1, false, err, sizeof err), TS_OK);
    for (int i = 0; i < 10; i++) ts_engine_poll(f.eng, 50);
    assert_int_equal(f.done_total, 0); /* a refused key is not the data's fault: kept, retried */
    assert_int_equal(ts_engine_pending(f.eng), 1);
    ts_sim_stats_t st = te_sim_stats(f.sim, "a");
    assert_int_equal(st.events_recorded, 0);
    fflush(mem);
    assert_non_null(strstr(logbuf, "refused the account's API key"));
    assert_null(strstr(logbuf, "SECRETKEY"));
    assert_null(strstr(err, "SECRETKEY"));
    /* a missing key fails at start, naming the key path, not a value */
    unsetenv("TS_ENGINE_KEY_A");
    ts_engine_t *e2 = ts_engine_new(&eo, err, sizeof err);
    assert_null(e2);
    assert_non_null(strstr(err, "accounts[0].api_key_env"));
    ts_log_set_sink(NULL);
    ts_log_set_level(TS_LOG_INFO);
    fclose(mem);
    free(logbuf);
    stop(&f);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_batches_group_and_deduplicate),
             cmocka_unit_test(test_throttled_batches_are_delivered_later),
             cmocka_unit_test(test_rotated_key_file_without_restart),
             cmocka_unit_test(test_request_refused_is_not_dead_lettered),
             cmocka_unit_test(test_revision_clock),
             cmocka_unit_test(test_faults_deliver_exactly_once),
             cmocka_unit_test(test_one_bad_event_rejects_only_its_record),
             cmocka_unit_test(test_error_document_with_spaces),
             cmocka_unit_test(test_customers_profiles_and_consent),
             cmocka_unit_test(test_historical_subscribes_own_jobs),
             cmocka_unit_test(test_unsubscribe_batches_of_100),
             cmocka_unit_test(test_pacing_decisions),
             cmocka_unit_test(test_withdraw_revoked_partition),
             cmocka_unit_test(test_progress_and_stall_warning),
             cmocka_unit_test(test_three_members_share_an_account),
             cmocka_unit_test(test_backpressure), cmocka_unit_test(test_api_key_never_logged),
             cmocka_unit_test(test_slow_klaviyo_gets_more_in_flight))
