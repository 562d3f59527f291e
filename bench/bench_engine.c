/*
 * bench_engine - the delivery engine over time against the Klaviyo
 * simulator at Klaviyo's real limits (Bulk Create Events: 10/s burst,
 * 150/min steady, 1,000 events per request => 2,500 events/s per account).
 *
 *   bench_engine --mode backfill [--accounts 8] [--seconds 180]
 *       events submitted as fast as the engine takes them: share of the
 *       ceiling per account and aggregate, 429s, lost (must be 0).
 *   bench_engine --mode live [--accounts 3] [--orders-per-s 1000] [--seconds 150]
 *       orders at a fixed rate spread over the accounts: submit -> 202
 *       latency p50/p99/max, seconds with zero requests while events were
 *       queued (must be 0).
 *   bench_engine --mode share [--members 3] [--accounts 2] [--seconds 180]
 *       N engines (members of one group) with share 1/N each, backfilling
 *       the same simulator accounts: aggregate share of each account's
 *       ceiling, 429s per request, longest gap between requests.
 *   common: [--events-per-order 4] [--linger-ms 200] [--time-scale 1]
 *           [--starve-first] [--timeline]
 *
 * --time-scale K runs the engine's and the simulator's clocks K times
 * faster than real time (both take an injected clock), so a 150 s run at
 * the real limits takes 150/K s; --seconds is virtual time. Every figure
 * is in virtual time. K > 1 needs K times the CPU per second (the
 * simulator parses every request), so report real-time runs too.
 * --starve-first throttles account 0 to 1 bulk request a minute at the
 * simulator, to measure that its lane's memory stays bounded.
 * --timeline prints requests per virtual second per account.
 * Exit status 1 when events were lost.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/cli.h"
#include "tillstream/engine.h"
#include "tillstream/sim.h"

#define MAX_ACCOUNTS 32
#define MAX_MEMBERS  8
#define CEILING      2500.0 /* events/s per account at 150 requests/min */

/* ---- an accelerated clock shared by the engines and the simulator ---- */
static double time_scale = 1;
static int64_t clock_origin_us;
static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static int64_t vclock(void *opaque) {
    (void)opaque;
    return 1000000 + (int64_t)((double)(mono_us() - clock_origin_us) * time_scale / 1000.0);
}

/* ---- completions: submit -> 202 latency by token ---------------------- */
static int64_t *submit_at; /* by token */
static size_t n_tokens;
static int64_t *lat;
static size_t n_lat, cap_lat;
static uint64_t accepted_records, rejected_records;
static void on_done(void *o, uint64_t token, ts_err_t r, const char *d) {
    (void)o;
    (void)d;
    if (r != TS_OK) {
        rejected_records++;
        return;
    }
    accepted_records++;
    if (submit_at && token < n_tokens) {
        if (n_lat == cap_lat) {
            cap_lat = cap_lat ? cap_lat * 2 : 65536;
            lat = realloc(lat, cap_lat * sizeof *lat);
        }
        lat[n_lat++] = vclock(NULL) - submit_at[token];
    }
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make(ts_mapped_t *m, int account, uint64_t order, int n_events) {
    ts_mapped_reset(m);
    m->account = account;
    m->profile.off = m->text.len;
    ts_buf_printf(
        &m->text,
        "{\"email\":\"c%llu@example.com\",\"external_id\":\"C%llu\",\"first_name\":\"Olivia\","
        "\"last_name\":\"Nguyen\",\"properties\":{\"HomeOutletId\":\"101\",\"HomeOutletName\":"
        "\"Sydney CBD\","
        "\"MostRecentStoreId\":\"102\",\"MostRecentStoreLocation\":\"Bondi Junction\"}}",
        (unsigned long long)(order % 50000), (unsigned long long)(order % 50000));
    m->profile.len = m->text.len - m->profile.off;
    m->profile_key.off = m->text.len;
    ts_buf_printf(&m->text, "x:C%llu", (unsigned long long)(order % 50000));
    m->profile_key.len = m->text.len - m->profile_key.off;
    if (m->cap_events < (size_t)n_events) {
        m->events = realloc(m->events, (size_t)n_events * sizeof *m->events);
        m->cap_events = (size_t)n_events;
    }
    for (int i = 0; i < n_events; i++) {
        ts_map_event_t *e = &m->events[i];
        e->metric = i == 0 ? "Placed Order" : "Ordered Product";
        e->unique_id.off = m->text.len;
        ts_buf_printf(&m->text, "A%dO%llu:%d", account, (unsigned long long)order, i);
        e->unique_id.len = m->text.len - e->unique_id.off;
        e->json.off = m->text.len;
        ts_buf_printf(
            &m->text,
            "{\"properties\":{\"OrderId\":\"O%llu\",\"ProductID\":\"P%d\",\"SKU\":\"SKU-%d\","
            "\"ProductName\":\"Classic Tee\",\"Quantity\":1,\"ItemPrice\":29.95,\"RowTotal\":29.95,"
            "\"ProductCategories\":[\"Apparel\",\"Tops\"],\"ProductBrand\":\"Tillwear\","
            "\"StoreId\":\"102\","
            "\"StoreLocation\":\"Bondi "
            "Junction\"},\"time\":\"2026-11-01T10:00:00+00:00\",\"value\":29.95,"
            "\"value_currency\":\"AUD\",\"unique_id\":\"A%dO%llu:%d\",\"metric\":{\"data\":{"
            "\"type\":\"metric\","
            "\"attributes\":{\"name\":\"%s\"}}}}",
            (unsigned long long)order, i, i, account, (unsigned long long)order, i, e->metric);
        e->json.len = m->text.len - e->json.off;
    }
    m->n_events = (size_t)n_events;
}

typedef enum { MODE_BACKFILL, MODE_LIVE, MODE_SHARE } mode_t_;

static int parse_mode(void *dst, const char *v) {
    *(mode_t_ *)dst = !strcmp(v, "live")    ? MODE_LIVE
                      : !strcmp(v, "share") ? MODE_SHARE
                                            : MODE_BACKFILL;
    return 0;
}

int main(int argc, char **argv) {
    int accounts = -1, seconds = -1, epo = 4, linger = 200, members = 3, rate = 1000;
    bool starve = false, timeline = false;
    mode_t_ mode = MODE_BACKFILL;
    const ts_cli_opt_t opts[] = {
        TS_CLI_FN("mode", &mode, parse_mode),  TS_CLI("accounts", INT, &accounts),
        TS_CLI("seconds", INT, &seconds),      TS_CLI("events-per-order", INT, &epo),
        TS_CLI("linger-ms", INT, &linger),     TS_CLI("members", INT, &members),
        TS_CLI("orders-per-s", INT, &rate),    TS_CLI("time-scale", DOUBLE, &time_scale),
        TS_CLI("starve-first", FLAG, &starve), TS_CLI("timeline", FLAG, &timeline),
    };
    if (ts_cli_parse(argc, argv, opts, sizeof opts / sizeof *opts)) return 2;
    if (accounts < 0) accounts = mode == MODE_LIVE ? 3 : mode == MODE_SHARE ? 2 : 8;
    if (seconds < 0) seconds = mode == MODE_LIVE ? 150 : 180;
    if (mode != MODE_SHARE) members = 1;
    if (accounts < 1 || accounts > MAX_ACCOUNTS || members < 1 || members > MAX_MEMBERS ||
        time_scale <= 0)
        return fprintf(stderr, "bad arguments\n"), 2;
    clock_origin_us = mono_us();

    char err[256];
    ts_sim_opts_t so = {.summary_only = true, .clock = vclock};
    if (starve) {
        so.throttle_account = "acct0";
        so.throttle_scale = 1.0 / 150.0;
    }
    ts_sim_t *sim = ts_sim_new(&so, err, sizeof err);
    for (int i = 0; i < accounts; i++) {
        char name[16], key[32], env[32];
        snprintf(name, sizeof name, "acct%d", i);
        snprintf(key, sizeof key, "pk_bench_%d", i);
        snprintf(env, sizeof env, "BENCH_KEY_%d", i);
        setenv(env, key, 1);
        ts_sim_add_account(sim, name, key);
    }
    if (ts_sim_start(sim, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    ts_buf_t cfgjson = TS_BUF_INIT;
    ts_buf_printf(&cfgjson,
                  "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":%d,"
                  "\"max_queued_events\":20000},\"accounts\":[",
                  ts_sim_port(sim), linger);
    for (int i = 0; i < accounts; i++)
        ts_buf_printf(
            &cfgjson,
            "%s{\"name\":\"acct%d\",\"api_key_env\":\"BENCH_KEY_%d\",\"outlets\":[\"%d\"]}",
            i ? "," : "", i, i, i);
    ts_buf_puts(&cfgjson, "]}");
    ts_config_t *cfg;
    if (ts_config_parse(cfgjson.data, &cfg, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
    ts_engine_t *eng[MAX_MEMBERS];
    for (int k = 0; k < members; k++) {
        ts_engine_opts_t eo = {
            .cfg = cfg, .on_done = on_done, .clock = vclock, .seed = (uint64_t)k + 1};
        eng[k] = ts_engine_new(&eo, err, sizeof err);
        if (!eng[k]) return fprintf(stderr, "%s\n", err), 1;
        ts_engine_set_share(eng[k], 1.0 / members);
    }
    if (mode == MODE_LIVE) {
        n_tokens = (size_t)rate * (size_t)seconds + 1024;
        submit_at = calloc(n_tokens, sizeof *submit_at);
    }

    ts_mapped_t m;
    ts_mapped_init(&m);
    uint64_t submitted[MAX_ACCOUNTS] = {0}, order = 0;
    /* per virtual second: requests per account, and whether events were queued */
    int n_sec = seconds + 2;
    uint32_t *req_sec = calloc((size_t)n_sec * (size_t)accounts, sizeof *req_sec);
    bool *queued_sec = calloc((size_t)n_sec * (size_t)accounts, sizeof *queued_sec);
    uint64_t last_req[MAX_ACCOUNTS] = {0};
    long rss_start = rss_kb(), rss_max = rss_start;
    double cpu0 = cpu_s();
    int64_t t0 = vclock(NULL), end = t0 + (int64_t)seconds * 1000;
    int cur_sec = 0;
    for (int64_t now = t0; now < end; now = vclock(NULL)) {
        if (mode == MODE_LIVE) {
            uint64_t due = (uint64_t)((double)(now - t0) * rate / 1000.0);
            while (order < due) {
                int a = (int)(order % (uint64_t)accounts);
                if (!ts_engine_has_room(eng[0], a)) break;
                make(&m, a, order, epo);
                submit_at[order] = now;
                if (ts_engine_submit(eng[0], &m, order, false, err, sizeof err) != TS_OK) break;
                submitted[a] += (uint64_t)epo;
                order++;
            }
        } else {
            /* members take the accounts' records in turn (a partition each) */
            for (int a = 0; a < accounts; a++)
                for (int k = 0; k < members; k++)
                    for (int n = 0; n < 200 && ts_engine_has_room(eng[k], a); n++) {
                        make(&m, a, order, epo);
                        if (ts_engine_submit(eng[k], &m, order++, false, err, sizeof err) != TS_OK)
                            break;
                        submitted[a] += (uint64_t)epo;
                    }
        }
        for (int k = 0; k < members; k++) ts_engine_poll(eng[k], members > 1 ? 0 : 1);
        if (members > 1) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
        int sec = (int)((vclock(NULL) - t0) / 1000);
        for (int a = 0; a < accounts; a++) {
            ts_lane_stats_t ls;
            for (int k = 0; k < members; k++) {
                ts_engine_lane_stats(eng[k], a, &ls);
                if (ls.queued_events > 0 && cur_sec < n_sec)
                    queued_sec[cur_sec * accounts + a] = true;
            }
        }
        if (sec != cur_sec) {
            for (int a = 0; a < accounts; a++) {
                char name[16];
                snprintf(name, sizeof name, "acct%d", a);
                ts_sim_stats_t st;
                ts_sim_stats(sim, name, &st);
                if (cur_sec < n_sec)
                    req_sec[cur_sec * accounts + a] = (uint32_t)(st.requests - last_req[a]);
                last_req[a] = st.requests;
            }
            cur_sec = sec;
            long r = rss_kb();
            if (r > rss_max) rss_max = r;
        }
    }
    double elapsed = (double)(vclock(NULL) - t0) / 1000.0;
    double cpu = cpu_s() - cpu0;
    int full_secs = cur_sec < n_sec ? cur_sec : n_sec;

    static const char *const names[] = {"backfill", "live", "share"};
    printf("mode=%s accounts=%d members=%d seconds=%.0f events_per_order=%d linger_ms=%d "
           "time_scale=%g%s\n",
           names[mode], accounts, members, elapsed, epo, linger, time_scale,
           starve ? " starve-first" : "");
    printf("%-7s %10s %9s %9s %8s %8s %9s %8s %9s %12s\n", "account", "accepted", "events/s",
           "ceiling%", "requests", "429s", "429%", "idle_s", "max_gap_s", "lane_max_KiB");
    uint64_t total_acc = 0, total_req = 0, total_429 = 0;
    int total_idle = 0;
    double min_pct = 1e9;
    for (int a = 0; a < accounts; a++) {
        uint64_t acc = 0;
        size_t lane_max = 0;
        for (int k = 0; k < members; k++) {
            ts_lane_stats_t ls;
            ts_engine_lane_stats(eng[k], a, &ls);
            acc += ls.events_accepted;
            if (ls.max_queued_bytes > lane_max) lane_max = ls.max_queued_bytes;
        }
        char name[16];
        snprintf(name, sizeof name, "acct%d", a);
        ts_sim_stats_t st;
        ts_sim_stats(sim, name, &st);
        /* seconds with zero requests while events were queued (skip the
         * first second: nothing is due before the linger) and the longest
         * run of seconds without a request */
        int idle = 0, gap = 0, max_gap = 0;
        for (int s = 1; s < full_secs; s++) {
            bool q = queued_sec[s * accounts + a], r0 = req_sec[s * accounts + a] == 0;
            if (q && r0) idle++;
            gap = r0 ? gap + 1 : 0;
            if (gap > max_gap) max_gap = gap;
        }
        double eps = (double)acc / elapsed, pct = 100.0 * eps / CEILING;
        if (pct < min_pct && !(starve && a == 0)) min_pct = pct;
        printf("acct%-3d %10llu %9.0f %8.1f%% %8llu %8llu %8.2f%% %8d %9d %12zu\n", a,
               (unsigned long long)acc, eps, pct, (unsigned long long)st.requests,
               (unsigned long long)st.throttled_429,
               st.requests ? 100.0 * (double)st.throttled_429 / (double)st.requests : 0.0, idle,
               max_gap, lane_max / 1024);
        total_acc += acc;
        total_req += st.requests;
        total_429 += st.throttled_429;
        total_idle += idle;
    }
    int n_ok = starve ? accounts - 1 : accounts;
    printf("aggregate: %.0f events/s = %.1f%% of %d x 2,500 (lowest account %.1f%%); "
           "429s %.2f%% of %llu requests; seconds idle while queued: %d\n",
           (double)total_acc / elapsed, 100.0 * (double)total_acc / elapsed / (CEILING * n_ok),
           n_ok, min_pct, total_req ? 100.0 * (double)total_429 / (double)total_req : 0.0,
           (unsigned long long)total_req, total_idle);
    if (mode == MODE_LIVE && n_lat) {
        qsort(lat, n_lat, sizeof *lat, cmp64);
        printf("submit -> 202 (%zu records): p50 %lld ms, p99 %lld ms, max %lld ms\n", n_lat,
               (long long)lat[n_lat / 2], (long long)lat[(size_t)((double)n_lat * 0.99)],
               (long long)lat[n_lat - 1]);
    }
    printf("CPU (process: engine + simulator) %.2f s for %llu events = %.2f us/event; RSS start "
           "%ld KiB, max %ld KiB\n",
           cpu, (unsigned long long)total_acc, total_acc ? cpu * 1e6 / (double)total_acc : 0.0,
           rss_start, rss_max);
    if (timeline) {
        printf("timeline (requests per second per account):\n");
        for (int s = 0; s < full_secs; s++) {
            printf("%4d", s);
            for (int a = 0; a < accounts; a++) printf(" %3u", req_sec[s * accounts + a]);
            printf("\n");
        }
    }
    /* drain what is queued (except a starved account) and check nothing was lost */
    for (int k = 0; k < members; k++) ts_engine_flush(eng[k]);
    int64_t drain_end = vclock(NULL) + 180000;
    for (;;) {
        bool busy = false;
        for (int k = 0; k < members; k++)
            for (int a = starve ? 1 : 0; a < accounts; a++) {
                ts_lane_stats_t ls;
                ts_engine_lane_stats(eng[k], a, &ls);
                busy |= ls.queued_events > 0;
            }
        if (!busy || vclock(NULL) > drain_end) break;
        for (int k = 0; k < members; k++) ts_engine_poll(eng[k], 5);
    }
    uint64_t lost = 0, dups = 0;
    for (int a = starve ? 1 : 0; a < accounts; a++) {
        char name[16];
        snprintf(name, sizeof name, "acct%d", a);
        ts_sim_stats_t st;
        ts_sim_stats(sim, name, &st);
        lost += submitted[a] - st.events_recorded;
        dups += st.duplicates_ignored;
    }
    printf("after draining: lost events %llu, duplicates %llu, rejected records %llu\n",
           (unsigned long long)lost, (unsigned long long)dups,
           (unsigned long long)rejected_records);
    for (int k = 0; k < members; k++) ts_engine_destroy(eng[k]);
    ts_mapped_free(&m);
    ts_config_destroy(cfg);
    ts_sim_destroy(sim);
    ts_buf_free(&cfgjson);
    free(req_sec);
    free(queued_sec);
    free(submit_at);
    free(lat);
    return lost ? 1 : 0;
}
