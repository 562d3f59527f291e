/*
 * bench_engine - how close the delivery engine runs each Klaviyo account
 * to its steady bulk ceiling, against the simulator with Klaviyo's real
 * limits (Bulk Create Events: 10/s burst, 150/min steady, 1,000 events per
 * request => 2,500 events/s per account).
 *
 *   bench_engine [--accounts 4] [--seconds 240] [--events-per-order 5]
 *                [--starve-first] [--linger-ms 200]
 *
 * --starve-first throttles account 0 to 1 bulk request a minute at the
 * simulator (429 + Retry-After all run long), to measure that its lane's
 * memory stays bounded while the others run at their ceiling.
 * Reports per account: events accepted, % of the steady ceiling, 429s,
 * lost events (submitted - accepted after draining; must be 0), the lane's
 * high-water memory, process RSS, and engine CPU per event.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/engine.h"
#include "tillstream/sim.h"

static uint64_t accepted_records;
static void on_done(void *o, uint64_t token, ts_err_t r, const char *d) {
    (void)o;
    (void)token;
    (void)d;
    if (r == TS_OK) accepted_records++;
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

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

int main(int argc, char **argv) {
    int accounts = 4, seconds = 240, epo = 5, linger = 200;
    bool starve = false;
    static const struct option opts[] = {
        {"accounts", 1, NULL, 'a'},         {"seconds", 1, NULL, 's'},
        {"events-per-order", 1, NULL, 'e'}, {"linger-ms", 1, NULL, 'l'},
        {"starve-first", 0, NULL, 'S'},     {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'a')
            accounts = atoi(optarg);
        else if (c == 's')
            seconds = atoi(optarg);
        else if (c == 'e')
            epo = atoi(optarg);
        else if (c == 'l')
            linger = atoi(optarg);
        else if (c == 'S')
            starve = true;
        else
            return 2;
    }
    char err[256];
    ts_sim_opts_t so = {0};
    so.summary_only = true;
    ts_sim_t *sim = ts_sim_new(&so, err, sizeof err);
    ts_buf_t cfgjson = TS_BUF_INIT;
    for (int i = 0; i < accounts; i++) {
        char name[16], key[32], env[32];
        snprintf(name, sizeof name, "acct%d", i);
        snprintf(key, sizeof key, "pk_bench_%d", i);
        snprintf(env, sizeof env, "BENCH_KEY_%d", i);
        setenv(env, key, 1);
        ts_sim_add_account(sim, name, key);
    }
    if (ts_sim_start(sim, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
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
    if (starve) {
        /* account 0 is throttled hard at the simulator: 1 bulk request a
         * minute instead of 150, i.e. 429 + Retry-After for the whole run */
        ts_sim_destroy(sim);
        so.throttle_account = "acct0";
        so.throttle_scale = 1.0 / 150.0;
        sim = ts_sim_new(&so, err, sizeof err);
        for (int i = 0; i < accounts; i++) {
            char name[16], key[32];
            snprintf(name, sizeof name, "acct%d", i);
            snprintf(key, sizeof key, "pk_bench_%d", i);
            ts_sim_add_account(sim, name, key);
        }
        if (ts_sim_start(sim, err, sizeof err)) return 1;
        free(cfg->klaviyo_base_url);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", ts_sim_port(sim));
        cfg->klaviyo_base_url = strdup(url);
    }
    ts_engine_opts_t eo = {cfg, on_done, NULL, NULL, NULL, NULL, 1, 0, NULL, NULL};
    ts_engine_t *e = ts_engine_new(&eo, err, sizeof err);
    if (!e) return fprintf(stderr, "%s\n", err), 1;
    ts_mapped_t m;
    ts_mapped_init(&m);
    uint64_t *submitted = calloc((size_t)accounts, sizeof *submitted);
    uint64_t order = 0;
    long rss_start = rss_kb(), rss_max = rss_start;
    double cpu0 = thread_cpu_s();
    int64_t t0 = ts_now_mono_ms(), end = t0 + (int64_t)seconds * 1000, next_report = t0 + 30000;
    while (ts_now_mono_ms() < end) {
        for (int a = 0; a < accounts; a++) {
            while (ts_engine_has_room(e, a)) {
                make(&m, a, order++, epo);
                if (ts_engine_submit(e, &m, order, false, err, sizeof err) != TS_OK) break;
                submitted[a] += (uint64_t)epo;
            }
        }
        ts_engine_poll(e, 50);
        long r = rss_kb();
        if (r > rss_max) rss_max = r;
        if (ts_now_mono_ms() >= next_report) {
            fprintf(stderr, "t=%llds rss=%ld KiB\n", (long long)(ts_now_mono_ms() - t0) / 1000, r);
            next_report += 30000;
        }
    }
    double elapsed = (double)(ts_now_mono_ms() - t0) / 1000.0;
    double cpu = thread_cpu_s() - cpu0;
    uint64_t total_acc = 0;
    printf("accounts=%d seconds=%.0f events_per_order=%d linger_ms=%d%s\n", accounts, elapsed, epo,
           linger, starve ? " starve-first" : "");
    printf("%-7s %12s %10s %9s %8s %10s\n", "account", "accepted", "events/s", "ceiling%", "429s",
           "lane_max_KiB");
    for (int a = 0; a < accounts; a++) {
        ts_lane_stats_t ls;
        ts_engine_lane_stats(e, a, &ls);
        double eps = (double)ls.events_accepted / elapsed;
        printf("acct%-3d %12llu %10.0f %8.1f%% %8llu %10zu\n", a,
               (unsigned long long)ls.events_accepted, eps, 100.0 * eps / 2500.0,
               (unsigned long long)ls.throttled_429, ls.max_queued_bytes / 1024);
        total_acc += ls.events_accepted;
    }
    printf("engine CPU %.2f s for %llu events = %.2f us/event; RSS start %ld KiB, max %ld KiB\n",
           cpu, (unsigned long long)total_acc, total_acc ? cpu * 1e6 / (double)total_acc : 0.0,
           rss_start, rss_max);
    /* drain what is queued (except a starved account) and check nothing was lost */
    ts_engine_flush(e);
    int64_t drain_end = ts_now_mono_ms() + 120000;
    uint64_t lost = 0;
    for (;;) {
        bool busy = false;
        for (int a = starve ? 1 : 0; a < accounts; a++) {
            ts_lane_stats_t ls;
            ts_engine_lane_stats(e, a, &ls);
            busy |= ls.queued_events > 0;
        }
        if (!busy || ts_now_mono_ms() > drain_end) break;
        ts_engine_poll(e, 100);
    }
    for (int a = starve ? 1 : 0; a < accounts; a++) {
        ts_lane_stats_t ls;
        ts_engine_lane_stats(e, a, &ls);
        char name[16];
        snprintf(name, sizeof name, "acct%d", a);
        ts_sim_stats_t st;
        ts_sim_stats(sim, name, &st);
        lost += submitted[a] - st.events_recorded;
        printf("acct%d: submitted %llu, recorded by the simulator %llu, duplicates %llu\n", a,
               (unsigned long long)submitted[a], (unsigned long long)st.events_recorded,
               (unsigned long long)st.duplicates_ignored);
    }
    printf("lost events: %llu\n", (unsigned long long)lost);
    ts_engine_destroy(e);
    ts_mapped_free(&m);
    ts_config_destroy(cfg);
    ts_sim_destroy(sim);
    ts_buf_free(&cfgjson);
    free(submitted);
    return lost ? 1 : 0;
}
