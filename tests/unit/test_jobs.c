/*
 * test_jobs.c - Bulk Profile Import jobs followed to the end (src/http/jobs.c)
 * by the delivery engine, against the Klaviyo simulator over real HTTP on
 * loopback: a record completes only when its job is complete; exactly the
 * records whose profiles Klaviyo failed inside the job are rejected, with
 * Klaviyo's detail and the job id; import-errors are read across pages; a
 * job that does not complete in klaviyo.job_timeout_ms is imported again
 * (nothing lost, nothing duplicated); the job reads spend the imports'
 * rate budget.
 */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_testlib.h"
#include "tillstream/engine.h"
#include "tillstream/log.h"
#include "tillstream/sim.h"

#define KEY_A "pk_test_JOBS_aaaa"

static int64_t sim_clock_ms; /* the simulator's job clock when frozen */
static int64_t frozen_clock(void *o) {
    (void)o;
    return sim_clock_ms;
}

typedef struct {
    ts_sim_t *sim;
    ts_config_t *cfg;
    ts_engine_t *eng;
    int ok, rejected, total;
    int *seen;
    ts_err_t *result;
    char **detail;
    size_t n_tokens;
} fx_t;

static void on_done(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    fx_t *f = opaque;
    assert_true(token < f->n_tokens);
    f->seen[token]++;
    f->total++;
    f->result[token] = result;
    if (result == TS_OK) {
        f->ok++;
        return;
    }
    f->rejected++;
    free(f->detail[token]);
    f->detail[token] = strdup(detail ? detail : "");
}

/* sim_limits: e.g. "profiles_bulk=1000/s,100000/m" or NULL; frozen: the
 * simulator's clock stands still until the test moves it. */
static ts_engine_profile_cb profile_cb; /* set by a test before start() */
static void *profile_opaque;

static void start(fx_t *f, int job_delay_ms, const char *sim_limits, bool frozen,
                  const char *klaviyo_extra, const char *account_extra) {
    char err[256];
    memset(f, 0, sizeof *f);
    f->n_tokens = 1000;
    f->seen = calloc(f->n_tokens, sizeof *f->seen);
    f->result = calloc(f->n_tokens, sizeof *f->result);
    f->detail = calloc(f->n_tokens, sizeof *f->detail);
    ts_sim_opts_t so = {.job_delay_ms = job_delay_ms};
    if (sim_limits) assert_int_equal(ts_sim_parse_limit(&so, sim_limits), TS_OK);
    if (frozen) {
        sim_clock_ms = 1000000;
        so.clock = frozen_clock;
    }
    f->sim = te_sim_start(&so, KEY_A, NULL);
    setenv("TS_JOBS_KEY_A", KEY_A, 1);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":20%s},"
             "\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"TS_JOBS_KEY_A\",\"outlets\":[\"1\"]"
             "%s}]}",
             ts_sim_port(f->sim), klaviyo_extra ? klaviyo_extra : "",
             account_extra ? account_extra : "");
    assert_int_equal(ts_config_parse(json, &f->cfg, err, sizeof err), TS_OK);
    ts_engine_opts_t eo = {.cfg = f->cfg,
                           .on_done = on_done,
                           .opaque = f,
                           .seed = 7,
                           .backoff_base_ms = 20,
                           .on_profile = profile_cb,
                           .profile_opaque = profile_opaque};
    f->eng = te_engine_new(&eo);
}

static void stop(fx_t *f) {
    ts_engine_destroy(f->eng);
    ts_config_destroy(f->cfg);
    ts_sim_destroy(f->sim);
    for (size_t i = 0; i < f->n_tokens; i++) free(f->detail[i]);
    free(f->detail);
    free(f->result);
    free(f->seen);
}

/* A customer record: its profile only (external_id Cn and an email or a
 * phone). bad: 1 = an email Klaviyo refuses, 2 = a phone that is not E.164. */
static void customer(ts_mapped_t *m, int n, int bad) {
    char email[64], phone[32];
    ts_mapped_reset(m);
    m->account = 0;
    m->send_profile = true;
    snprintf(email, sizeof email, bad == 1 ? "nobody-%d" : "c%d@example.com", n);
    snprintf(phone, sizeof phone, bad == 2 ? "0412 %06d" : "+61412%06d", n);
    te_span_printf(m, &m->profile,
                   "{\"external_id\":\"C%d\",\"email\":\"%s\",\"phone_number\":\"%s\"}", n, email,
                   phone);
    te_span_printf(m, &m->profile_key, "x:C%d", n);
    te_span_printf(m, &m->email, "%s", email);
    te_span_printf(m, &m->phone_e164, "%s", phone);
}

static void submit(fx_t *f, int n, const int *bad, const int *kind, int n_bad) {
    ts_mapped_t m;
    ts_mapped_init(&m);
    char err[256];
    for (int i = 0; i < n; i++) {
        int b = 0;
        for (int k = 0; k < n_bad; k++)
            if (bad[k] == i) b = kind[k];
        customer(&m, i, b);
        assert_int_equal(ts_engine_submit(f->eng, &m, (uint64_t)i, false, err, sizeof err), TS_OK);
    }
    ts_mapped_free(&m);
    ts_engine_flush(f->eng);
}

/* Polls the engine for `ms` (wall time). */
static void run_for(fx_t *f, int64_t ms) {
    int64_t end = ts_now_mono_ms() + ms;
    while (ts_now_mono_ms() < end) ts_engine_poll(f->eng, 50);
}

static void drain(fx_t *f, int64_t max_ms) { te_poll_idle(f->eng, max_ms); }

static ts_sim_stats_t stats(fx_t *f) { return te_sim_stats(f->sim, "a"); }

/* 20 customers, 3 of them refused inside the job (2 emails, 1 phone). */
static void test_rejected_inside_the_job(void **state) {
    (void)state;
    fx_t f;
    start(&f, 1000, "profiles_bulk=1000/s,100000/m", true, NULL, NULL);
    const int bad[] = {3, 9, 17}, kind[] = {1, 2, 1};
    submit(&f, 20, bad, kind, 3);
    /* the job is pending (the simulator's clock stands still): polled, and
     * nothing completes */
    int64_t end = ts_now_mono_ms() + 5000;
    while (stats(&f).job_polls < 2 && ts_now_mono_ms() < end) ts_engine_poll(f.eng, 50);
    assert_true(stats(&f).job_polls >= 2);
    assert_int_equal(stats(&f).import_jobs, 1);
    assert_int_equal(f.total, 0);
    assert_int_equal(ts_engine_pending(f.eng), 20);
    /* the job completes */
    sim_clock_ms += 1000;
    drain(&f, 10000);
    assert_int_equal(f.total, 20);
    assert_int_equal(f.rejected, 3);
    assert_int_equal(f.ok, 17);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f.seen[i], 1);
        bool want_bad = i == 3 || i == 9 || i == 17;
        assert_int_equal(f.result[i], want_bad ? TS_ERR_REJECTED : TS_OK);
        if (!want_bad) continue;
        const char *d = f.detail[i];
        assert_non_null(strstr(d, "Klaviyo import job sim-job-1"));
        assert_non_null(strstr(d, i == 9 ? "Invalid phone number" : "Invalid email address"));
        char ptr[96];
        snprintf(ptr, sizeof ptr, "/data/attributes/profiles/data/%d/attributes/%s", i,
                 i == 9 ? "phone_number" : "email");
        assert_non_null(strstr(d, ptr));
    }
    ts_sim_stats_t st = stats(&f);
    assert_int_equal(st.import_jobs, 1);
    assert_int_equal(st.import_errors, 3);
    assert_int_equal(st.profiles, 17);
    stop(&f);
}

/* 230 customers, 120 refused: import-errors come in two pages of 100. */
static void test_import_errors_across_pages(void **state) {
    (void)state;
    fx_t f;
    start(&f, 1, "profiles_bulk=1000/s,100000/m", false, NULL, NULL);
    int bad[120], kind[120];
    for (int k = 0; k < 120; k++) {
        bad[k] = 2 * k + 1; /* odd customers below 240 */
        kind[k] = 1 + k % 2;
    }
    submit(&f, 230, bad, kind, 115); /* odd ones below 230: 115 */
    drain(&f, 15000);
    assert_int_equal(f.rejected, 115);
    assert_int_equal(f.ok, 115);
    for (int i = 0; i < 230; i++) {
        assert_int_equal(f.seen[i], 1);
        assert_int_equal(f.result[i], i % 2 ? TS_ERR_REJECTED : TS_OK);
    }
    ts_sim_stats_t st = stats(&f);
    assert_int_equal(st.import_errors, 115);
    assert_true(st.job_polls >= 3); /* the job, then 2 pages of import-errors */
    stop(&f);
}

/* A job that never completes is imported again after job_timeout_ms; once
 * jobs complete, every record completes once and the simulator holds
 * each profile once. */
static void test_job_timeout_reimports(void **state) {
    (void)state;
    fx_t f;
    /* client limits raised: the pacing clock (one request per 403 ms at
     * Klaviyo's 150/min) would otherwise hold the first poll past the 400 ms
     * timeout, and every job would be re-imported before it is read */
    start(&f, -1, "profiles_bulk=1000/s,100000/m", false, ",\"job_timeout_ms\":400",
          ",\"rate_limits\":{\"profiles_bulk\":{\"burst_per_s\":100,\"steady_per_min\":6000}}");
    submit(&f, 5, NULL, NULL, 0);
    int64_t end = ts_now_mono_ms() + 5000;
    while (stats(&f).import_jobs < 2 && ts_now_mono_ms() < end) ts_engine_poll(f.eng, 50);
    assert_true(stats(&f).import_jobs >= 2); /* imported again */
    assert_int_equal(f.total, 0);            /* never dead-lettered, never completed */
    ts_sim_set_job_delay(f.sim, 1);
    drain(&f, 10000);
    assert_int_equal(f.ok, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(f.seen[i], 1);
    assert_int_equal(stats(&f).profiles, 5);
    stop(&f);
}

/* The job reads take their tokens from the lane's profiles_bulk limiter:
 * with 1 request/s allowed (the simulator allows 3/s: no 429 either way),
 * the import and the polls of a pending job make at most 3 requests in
 * 2.5 s (polls at >= 1 s and >= 2 s), where an own budget would poll at
 * 0.25 s, 0.75 s and 1.75 s. */
static void test_job_reads_share_the_import_budget(void **state) {
    (void)state;
    fx_t f;
    start(&f, -1, "profiles_bulk=3/s,1000/m", false, NULL,
          ",\"rate_limits\":{\"profiles_bulk\":{\"burst_per_s\":1,\"steady_per_min\":1000}}");
    submit(&f, 3, NULL, NULL, 0);
    int64_t end = ts_now_mono_ms() + 5000;
    while (stats(&f).import_jobs < 1 && ts_now_mono_ms() < end) ts_engine_poll(f.eng, 20);
    run_for(&f, 2500);
    ts_sim_stats_t st = stats(&f);
    assert_int_equal(st.import_jobs, 1);
    assert_true(st.job_polls >= 1);
    assert_true(st.job_polls <= 2);
    assert_int_equal(st.throttled_429, 0);
    ts_sim_set_job_delay(f.sim, 1);
    stop(&f); /* pending records abandoned without callbacks */
    assert_int_equal(f.total, 0);
}

typedef struct {
    fx_t *f;
    int calls, page_ends, refuse_ends; /* refuse_ends: answer the first N page ends TRANSIENT */
    int done_at_first_end;             /* records completed when the first page end came */
    char ids[64][48];
    int got[64]; /* per customer number */
} prof_t;

static ts_err_t on_profile(void *opaque, const ts_engine_profile_t *p) {
    prof_t *pr = opaque;
    if (!p) {
        if (pr->page_ends++ == 0) pr->done_at_first_end = pr->f->total;
        return pr->page_ends <= pr->refuse_ends ? TS_ERR_TRANSIENT : TS_OK;
    }
    pr->calls++;
    assert_string_equal(p->account, "a");
    assert_non_null(p->profile_id);
    assert_non_null(p->external_id);
    int n = atoi(p->external_id + 1);
    assert_true(n >= 0 && n < 64);
    if (pr->got[n]++ == 0)
        snprintf(pr->ids[n], sizeof pr->ids[n], "%s", p->profile_id);
    else
        assert_string_equal(pr->ids[n], p->profile_id); /* the same id when read again */
    char email[32];
    snprintf(email, sizeof email, "c%d@example.com", n);
    assert_string_equal(p->email, email);
    return TS_OK;
}

/* Profile ids back: the job's profiles are read (every page, within the
 * same budget) and handed over before any record completes; a page that
 * could not be made durable is read again. */
static void test_profile_ids_back(void **state) {
    (void)state;
    fx_t f;
    prof_t pr = {.refuse_ends = 1};
    profile_cb = on_profile;
    profile_opaque = &pr;
    start(&f, 1, "profiles_bulk=1000/s,100000/m", false, NULL, NULL);
    pr.f = &f;
    const int bad[] = {2, 30, 55}, kind[] = {1, 2, 1};
    submit(&f, 60, bad, kind, 3);
    drain(&f, 15000);
    profile_cb = NULL;
    profile_opaque = NULL;
    assert_int_equal(f.ok, 57);
    assert_int_equal(f.rejected, 3);
    assert_int_equal(pr.done_at_first_end, 0); /* nothing completed before */
    /* 57 profiles in one page of 100: read twice (the first end refused) */
    assert_int_equal(pr.page_ends, 2);
    assert_int_equal(pr.calls, 2 * 57);
    for (int i = 0; i < 60; i++) assert_int_equal(pr.got[i], i == 2 || i == 30 || i == 55 ? 0 : 2);
    stop(&f);
}

TS_TEST_MAIN(tl_log_errors, NULL, cmocka_unit_test(test_rejected_inside_the_job),
             cmocka_unit_test(test_import_errors_across_pages),
             cmocka_unit_test(test_job_timeout_reimports),
             cmocka_unit_test(test_job_reads_share_the_import_budget),
             cmocka_unit_test(test_profile_ids_back))
