/*
 * engine.c - the Klaviyo delivery engine: libcurl multi, one lane per
 * account, bulk batching, rate limits, retries and bisection.
 *
 * Memory: one allocation per submitted record (rec_t) holding a copy of
 * the mapper's text and one work item per part (event, profile, consent
 * change); queues and batches link those items, so the number of
 * allocations does not grow with the number of events. A lane refuses new
 * records (TS_ERR_FULL) above klaviyo.max_queued_events: memory is
 * bounded whatever the backlog.
 *
 * Failure handling: 429 -> wait Retry-After and re-send the same batch;
 * 5xx, timeouts, connection errors, 401/403 -> capped exponential backoff
 * with jitter, re-send; other 4xx -> bisect until the offending event is
 * alone, then reject only the records it belongs to.
 */
#include "tillstream/engine.h"
#include "tillstream/hash.h"

#include "http.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "klaviyo/klaviyo.h"
#include "tillstream/kbody.h"
#include "tillstream/log.h"
#include "tillstream/metrics.h"
#include "tillstream/model.h"
#include "tillstream/ratelimit.h"

#include "jobs.h" /* JOBS: profile-import jobs followed to the end (src/http/jobs.c) */

#define MAX_BODY_BYTES            (TS_KLAVIYO_MAX_PAYLOAD_BYTES / 10 * 9) /* a margin under 5 MB */
#define MIN_INFLIGHT_PER_ENDPOINT 4   /* before an answer was timed, and while answers are quick */
#define MAX_INFLIGHT_PER_ENDPOINT 16  /* a slow Klaviyo: rate x latency in flight, up to this */
#define LATENCY_WEIGHT            0.3 /* of each answer's time in the lane's latency estimate */
#define BACKOFF_BASE_MS           500
#define KEY_REREAD_MIN_MS         1000 /* an api_key_file read after a 401/403, at most */
#define BACKOFF_CAP_MS            60000
#define MAX_RESP_BYTES            65536

enum {
    EP_EVENTS = TS_EP_EVENTS_BULK,
    EP_PROFILES = TS_EP_PROFILES_BULK,
    EP_SUB = TS_EP_SUBSCRIBE_BULK,
    EP_UNSUB = TS_EP_UNSUBSCRIBE_BULK,
    EP_SUPPRESS = TS_EP_SUPPRESS_BULK, /* customers.on_delete: suppress */
    EP_DELETE = TS_EP_PROFILE_DELETION /* customers.on_delete: delete (one per request) */
};
#define MAX_SUPPRESS_PER_REQUEST 100

typedef struct rec_s rec_t;

typedef struct item_s {
    rec_t *rec;
    int32_t ev; /* event index for events, -1 otherwise */
    uint8_t ep; /* endpoint */
    struct item_s *next;
} item_t;

struct rec_s {
    uint64_t token;
    int64_t submitted_ms; /* engine clock */
    int parts;            /* unsettled parts */
    int n_parts;
    bool backfill;
    ts_err_t fail; /* first permanent failure */
    char *detail;  /* malloc'd on failure only */
    size_t size;   /* bytes of this allocation (the lane's accounting) */
    char *text;
    ts_span_t profile, profile_key, email, phone;
    ts_sub_t email_sub, sms_sub;
    bool historical; /* its subscribe is a historical import (--replay-consent) */
    int64_t consented_at[TS_CONSENT__CHANNELS]; /* historical: consent times (epoch ms) */
    ts_map_event_t *events;
    size_t n_events;
    item_t items[]; /* n_parts */
};

typedef struct {
    item_t *head, *tail;
    size_t n;
} queue_t;

typedef struct lane_s lane_t;

typedef struct retired_s {
    struct curl_slist *headers;
    struct retired_s *next;
} retired_t;

typedef struct batch_s {
    lane_t *lane;
    int ep;
    item_t **items;
    size_t n, n_unique;
    int attempt;
    bool throttled; /* waiting for a 429's Retry-After */
    int64_t not_before;
    CURL *easy;
    ts_buf_t body, resp;
    ts_http_rl_t hdrs; /* the rate-limit headers of the last response */
    int64_t started_ms;
    struct batch_s *next;
    struct batch_s *active_next; /* engine's list of in-flight batches */
} batch_t;

struct lane_s {
    ts_engine_t *e;
    int account;
    const char *name;
    struct curl_slist *headers; /* holds the API key: wiped on destroy */
    retired_t *retired;         /* headers of keys rotated away (requests may use them) */
    ts_file_sig_t key_sig;      /* the api_key_file's stat when last read */
    int64_t key_next_ms;        /* next look at the api_key_file */
    int64_t key_refused_ms;     /* last read after a 401/403 */
    char *url[TS_EP__COUNT];
    ts_ratelimit_t rl[TS_EP__COUNT];
    queue_t q[TS_EP__COUNT];
    batch_t *retry; /* batches waiting to be (re)sent */
    int inflight[TS_EP__COUNT];
    double latency_ms[TS_EP__COUNT]; /* answers' time, moving average (0: none timed yet) */
    size_t queued_parts;
    ts_lane_stats_t st;
    size_t bytes;
    /* progress: events accepted per engine-clock second, last 60 s */
    uint32_t sec_events[60];
    int64_t sec_stamp[60];
    int64_t started_ms;
    int64_t oldest_ms; /* submit time of the oldest undelivered part (0: none) */
    bool stalled;      /* the stall warning was logged */
    int64_t last_ok_wall_ms;
    double paced_reported; /* seconds already added to m_paced */
    bool held;             /* at the last dispatch: work waited for the limiter */
    int64_t held_mark_ms;  /* time of the last dispatch */
    int64_t paced_ms;      /* total time work waited for the limiter */
    /* metrics (NULL when the engine runs without a registry) */
    ts_metric_t *m_req[TS_EP__COUNT][5]; /* 2xx, 4xx, 429, 5xx, transport error */
    ts_metric_t *m_throttled[TS_EP__COUNT], *m_retries[TS_EP__COUNT], *m_latency[TS_EP__COUNT];
    ts_metric_t *m_inflight[TS_EP__COUNT], *m_inflight_max[TS_EP__COUNT];
    ts_metric_t *m_batch, *m_queue, *m_key_reloads;
    ts_metric_t *m_last_ok[TS_EP__COUNT], *m_oldest, *m_paced, *m_eps, *m_ratio;
    struct {
        const char *metric;
        ts_metric_t *h;
    } m_events[8];
};

struct ts_engine_s {
    ts_engine_opts_t o;
    const ts_config_t *cfg;
    CURLM *multi;
    lane_t *lanes; /* indexed by account (inactive accounts unused) */
    size_t n_lanes;
    size_t pending; /* records not completed */
    uint64_t rng;
    batch_t *active; /* in flight */
    int64_t next_progress_ms;
    int completed; /* during one poll */
    bool flush;
    ts_jobs_t *jobs; /* JOBS: the job follower */
};

/* JOBS: the follower's hooks into the engine (defined below settle()) */
static void jobs_settle(void *opaque, int account, void *handle, ts_err_t result,
                        const char *detail);
static void jobs_requeue(void *opaque, int account, void *handle);
static void jobs_abandon(void *ctx, void *handle);

static int64_t now_ms(ts_engine_t *e) { return e->o.clock(e->o.clock_opaque); }

static double jitter(ts_engine_t *e) {
    uint64_t x = e->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->rng = x;
    return 0.5 + (double)(x >> 11) / (double)(1ULL << 53); /* 0.5 .. 1.5 */
}

/* ---- metrics --------------------------------------------------------------- */

/* ---- API keys ----------------------------------------------------------------------
 * A lane's request headers hold its account's key. A key read from a file
 * (accounts[].api_key_file, e.g. a mounted Kubernetes Secret, which the
 * kubelet replaces in place) can be rotated without a restart: the file is
 * looked at every klaviyo.key_check_ms (a stat, read only when it changed)
 * and read again after a 401/403 (at most once a second). A different key
 * replaces the lane's headers for the next request; the old headers stay
 * valid for requests on the wire (kept, wiped and freed at destroy), and
 * the batches that were waiting out a refused key's backoff go at once.
 * A key from an env var cannot change inside the process: a restart. */

static void headers_wipe_free(struct curl_slist *h) {
    for (struct curl_slist *s = h; s; s = s->next) memset(s->data, 0, strlen(s->data));
    curl_slist_free_all(h);
}

/* The headers of account `idx`'s requests, its key read now. */
static ts_err_t lane_headers(ts_engine_t *e, size_t idx, struct curl_slist **out, char *errstr,
                             size_t errstr_size) {
    char *key = NULL;
    ts_err_t rc = ts_config_account_key(e->cfg, idx, &key, errstr, errstr_size);
    if (rc != TS_OK) return rc;
    size_t hl = strlen(key) + 64;
    char *h = malloc(hl);
    if (!h) {
        memset(key, 0, strlen(key));
        free(key);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    }
    snprintf(h, hl, "Authorization: Klaviyo-API-Key %s", key);
    memset(key, 0, strlen(key));
    free(key);
    struct curl_slist *l = curl_slist_append(NULL, h);
    memset(h, 0, strlen(h));
    free(h);
    char rev[96];
    snprintf(rev, sizeof rev, "revision: %s", e->cfg->klaviyo_revision);
    static const char *const fixed[] = {"Content-Type: application/vnd.api+json",
                                        "Accept: application/vnd.api+json", "Expect:"};
    struct curl_slist *t = l ? curl_slist_append(l, rev) : NULL;
    for (size_t k = 0; t && k < sizeof fixed / sizeof *fixed; k++)
        t = curl_slist_append(t, fixed[k]);
    if (!t) {
        headers_wipe_free(l);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    }
    *out = l;
    return TS_OK;
}

/* Requests of one endpoint that may be in flight: enough that Klaviyo's
 * latency never slows the pacing clock (docs/delivery.md). */
static int inflight_cap(const lane_t *l, int ep) {
    return ts_ratelimit_inflight(&l->rl[ep], l->latency_ms[ep], MIN_INFLIGHT_PER_ENDPOINT,
                                 MAX_INFLIGHT_PER_ENDPOINT);
}

/* `refused`: after a 401/403 (the file is read whatever its stat says). */
static void key_check(ts_engine_t *e, lane_t *l, int64_t now, bool refused) {
    const ts_account_conf_t *a = &e->cfg->accounts[l->account];
    if (!a->api_key_file) return;
    if (refused) {
        if (l->key_refused_ms && now < l->key_refused_ms + KEY_REREAD_MIN_MS) return;
        l->key_refused_ms = now;
    } else {
        if (e->cfg->klaviyo_key_check_ms <= 0 || now < l->key_next_ms) return;
        l->key_next_ms = now + e->cfg->klaviyo_key_check_ms;
    }
    ts_file_sig_t sig;
    ts_file_sig(a->api_key_file, &sig);
    if (!refused && ts_file_sig_same(&sig, &l->key_sig)) return;
    l->key_sig = sig;
    char ctx[320], err[512];
    snprintf(ctx, sizeof ctx, "\"account\":\"%s\",\"api_key_file\":\"%.200s\"", l->name,
             a->api_key_file);
    struct curl_slist *h = NULL;
    if (lane_headers(e, (size_t)l->account, &h, err, sizeof err) != TS_OK) {
        ts_log(TS_LOG_WARN, "engine", ctx,
               "cannot use the account's key file (%s); keeping the key in use", err);
        return;
    }
    if (!strcmp(h->data, l->headers->data)) { /* the same key */
        headers_wipe_free(h);
        return;
    }
    retired_t *old = malloc(sizeof *old);
    if (!old) {
        headers_wipe_free(h);
        return; /* looked at again at the next check */
    }
    old->headers = l->headers;
    old->next = l->retired;
    l->retired = old;
    l->headers = h;
    l->st.key_reloads++;
    ts_metric_add(l->m_key_reloads, 1);
    size_t woken = 0;
    for (batch_t *b = l->retry; b; b = b->next)
        if (!b->throttled && b->not_before > now) {
            b->not_before = now;
            woken++;
        }
    ts_log(TS_LOG_INFO, "engine", ctx,
           "the account's API key changed in its file: the next requests use the new key "
           "(%zu waiting batches retried now)",
           woken);
}

static void lane_metrics(ts_engine_t *e, lane_t *l) {
    ts_metrics_t *m = e->o.metrics;
    if (!m) return;
    static const char *const cls[5] = {"2xx", "4xx", "429", "5xx", "error"};
    static const double lat_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const double batch_b[] = {1, 10, 50, 100, 250, 500, 750, 1000};
    ts_buf_t lb = TS_BUF_INIT;
    for (int ep = 0; ep < TS_EP__COUNT; ep++) {
        for (int c = 0; c < 5; c++) {
            ts_buf_reset(&lb);
            ts_buf_puts(&lb, "account=\"");
            ts_metrics_label_escape(&lb, l->name);
            ts_buf_printf(&lb, "\",endpoint=\"%s\",status_class=\"%s\"",
                          ts_endpoint_name((ts_endpoint_t)ep), cls[c]);
            l->m_req[ep][c] = ts_metrics_counter(
                m, "tillstream_klaviyo_requests_total",
                "Klaviyo API requests by account, endpoint and status class", lb.data);
        }
        ts_buf_reset(&lb);
        ts_buf_puts(&lb, "account=\"");
        ts_metrics_label_escape(&lb, l->name);
        ts_buf_printf(&lb, "\",endpoint=\"%s\"", ts_endpoint_name((ts_endpoint_t)ep));
        l->m_throttled[ep] = ts_metrics_counter(
            m, "tillstream_klaviyo_throttled_total",
            "429 answers from Klaviyo (batch re-sent after Retry-After)", lb.data);
        l->m_retries[ep] = ts_metrics_counter(
            m, "tillstream_klaviyo_retries_total",
            "requests retried after 5xx, timeouts or connection errors", lb.data);
        l->m_last_ok[ep] = ts_metrics_gauge(
            m, "tillstream_klaviyo_last_success_timestamp_seconds",
            "wall time of the last request Klaviyo accepted (2xx), by account and endpoint",
            lb.data);
        l->m_latency[ep] = ts_metrics_histogram(m, "tillstream_klaviyo_request_duration_seconds",
                                                "Klaviyo request latency", lb.data, lat_b,
                                                sizeof lat_b / sizeof *lat_b);
        l->m_inflight[ep] = ts_metrics_gauge(m, "tillstream_klaviyo_requests_in_flight",
                                             "requests sent and not yet answered", lb.data);
        l->m_inflight_max[ep] = ts_metrics_gauge(
            m, "tillstream_klaviyo_requests_in_flight_limit",
            "requests that may be in flight at once: the pacing rate x Klaviyo's latency, 4-16",
            lb.data);
        ts_metric_set(l->m_inflight_max[ep], MIN_INFLIGHT_PER_ENDPOINT);
    }
    ts_buf_reset(&lb);
    ts_buf_puts(&lb, "account=\"");
    ts_metrics_label_escape(&lb, l->name);
    ts_buf_putc(&lb, '"');
    l->m_key_reloads = ts_metrics_counter(
        m, "tillstream_klaviyo_api_key_reloads_total",
        "rotated API keys taken from accounts[].api_key_file without a restart", lb.data);
    l->m_batch = ts_metrics_histogram(m, "tillstream_klaviyo_batch_events",
                                      "events per Bulk Create Events request", lb.data, batch_b,
                                      sizeof batch_b / sizeof *batch_b);
    l->m_queue = ts_metrics_gauge(
        m, "tillstream_lane_queue_parts",
        "records' parts (events, profiles, consent changes) waiting in the account's lane",
        lb.data);
    l->m_oldest = ts_metrics_gauge(
        m, "tillstream_oldest_undelivered_age_seconds",
        "age of the account's oldest record part not yet accepted by Klaviyo (0: none)", lb.data);
    l->m_paced = ts_metrics_counter(
        m, "tillstream_klaviyo_paced_seconds_total",
        "time the account's lane had work but waited for the pacing clock or a rate limit",
        lb.data);
    l->m_eps = ts_metrics_gauge(m, "tillstream_klaviyo_events_per_second",
                                "events accepted per second over the last 60 s", lb.data);
    l->m_ratio = ts_metrics_gauge(
        m, "tillstream_klaviyo_ceiling_ratio",
        "events per second over the last 60 s / this member's Bulk Create Events ceiling "
        "(steady limit x share x 1,000 / 60 s), at most 1",
        lb.data);
    ts_buf_free(&lb);
}

static void count_event(ts_engine_t *e, lane_t *l, const char *metric) {
    if (!e->o.metrics) return;
    size_t i = 0;
    for (; i < 8 && l->m_events[i].metric; i++)
        if (l->m_events[i].metric == metric || !strcmp(l->m_events[i].metric, metric)) break;
    if (i == 8) return;
    if (!l->m_events[i].metric) {
        ts_buf_t lb = TS_BUF_INIT;
        ts_buf_puts(&lb, "account=\"");
        ts_metrics_label_escape(&lb, l->name);
        ts_buf_puts(&lb, "\",metric=\"");
        ts_metrics_label_escape(&lb, metric);
        ts_buf_putc(&lb, '"');
        l->m_events[i].metric = metric;
        l->m_events[i].h =
            ts_metrics_counter(e->o.metrics, "tillstream_events_accepted_total",
                               "events accepted by Klaviyo (202) by account and metric", lb.data);
        ts_buf_free(&lb);
    }
    ts_metric_add(l->m_events[i].h, 1);
}

/* ---- progress ------------------------------------------------------------- */

static int64_t lane_oldest(const ts_engine_t *e, const lane_t *l);

static void count_second(lane_t *l, int64_t now, size_t events) {
    int64_t sec = now / 1000;
    int k = (int)(sec % 60);
    if (l->sec_stamp[k] != sec) {
        l->sec_stamp[k] = sec;
        l->sec_events[k] = 0;
    }
    l->sec_events[k] += (uint32_t)events;
}

static double events_per_s(const lane_t *l, int64_t now) {
    int64_t sec = now / 1000;
    uint64_t sum = 0;
    for (int k = 0; k < 60; k++)
        if (l->sec_stamp[k] > sec - 60 && l->sec_stamp[k] <= sec) sum += l->sec_events[k];
    double span = (double)(now - l->started_ms) / 1000.0;
    if (span > 60) span = 60;
    if (span < 1) span = 1;
    return (double)sum / span;
}

static double ceiling_per_s(const lane_t *l) {
    return ts_ratelimit_steady_per_min(&l->rl[EP_EVENTS]) *
           ts_klaviyo_endpoint(TS_EP_EVENTS_BULK)->max_items / 60.0;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Klaviyo retires a revision about two years after its release, and then
 * refuses every request that names it (retried, never dead-lettered, but
 * nothing is delivered). The release date is a gauge (the chart's
 * TillstreamKlaviyoRevisionAging alert counts from it), and a start-up
 * warning says so once the revision is REVISION_WARN_DAYS old. */
#define REVISION_WARN_DAYS 548 /* 18 months */

static void revision_clock(ts_engine_t *e) {
    const char *rev = e->cfg->klaviyo_revision;
    int64_t rel_ms;
    if (!rev || strlen(rev) < 10 || ts_time_parse_iso8601(rev, 10, &rel_ms, NULL, 0) != TS_OK)
        return;
    ts_metric_set(ts_metrics_gauge(e->o.metrics, "tillstream_klaviyo_revision_timestamp_seconds",
                                   "release date of klaviyo.revision (Klaviyo retires a revision "
                                   "about two years after it)",
                                   NULL),
                  (double)(rel_ms / 1000));
    long long days = (long long)((ts_now_wall_ms() - rel_ms) / 86400000);
    if (days < REVISION_WARN_DAYS) return;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "\"revision\":\"%.20s\",\"age_days\":%lld", rev, days);
    ts_log(TS_LOG_WARN, "engine", ctx,
           "klaviyo.revision %.20s is %lld days old: Klaviyo retires a revision about two years "
           "after its release, and then refuses every request (HTTP 410); move to a newer revision",
           rev, days);
}

ts_engine_t *ts_engine_new(const ts_engine_opts_t *opts, char *errstr, size_t errstr_size) {
    if (ts_http_global_init(errstr, errstr_size) != TS_OK) return NULL;
    ts_engine_t *e = ts_zalloc(sizeof *e, NULL, errstr, errstr_size);
    if (!e) return NULL;
    e->o = *opts;
    if (!e->o.clock) e->o.clock = ts_clock_mono;
    e->cfg = opts->cfg;
    e->rng = opts->seed ? opts->seed : (uint64_t)ts_now_wall_ms() * 2654435761u + 1;
    e->multi = curl_multi_init();
    e->n_lanes = e->cfg->n_accounts;
    e->lanes = calloc(e->n_lanes ? e->n_lanes : 1, sizeof *e->lanes);
    if (!e->multi || !e->lanes) {
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        ts_engine_destroy(e);
        return NULL;
    }
    /* every account talks to the same host: a cap shared by the lanes would let
     * one account's requests queue behind another's (and time out in libcurl's
     * queue). The lanes bound their own requests in flight; this only says so. */
    curl_multi_setopt(
        e->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
        (long)((e->n_lanes ? e->n_lanes : 1) * TS_EP__COUNT * MAX_INFLIGHT_PER_ENDPOINT + 16));
    /* JOBS: the follower shares the multi handle and the lanes' limiters */
    ts_jobs_opts_t jo = {.cfg = e->cfg,
                         .multi = e->multi,
                         .clock = e->o.clock,
                         .clock_opaque = e->o.clock_opaque,
                         .metrics = e->o.metrics,
                         .settle = jobs_settle,
                         .requeue = jobs_requeue,
                         .opaque = e,
                         .on_profile = e->o.on_profile,
                         .profile_opaque = e->o.profile_opaque};
    if (!(e->jobs = ts_jobs_new(&jo, errstr, errstr_size))) {
        ts_engine_destroy(e);
        return NULL;
    }
    int64_t now = now_ms(e);
    for (size_t i = 0; i < e->n_lanes; i++) {
        const ts_account_conf_t *a = &e->cfg->accounts[i];
        lane_t *l = &e->lanes[i];
        l->e = e;
        l->account = (int)i;
        l->name = a->name;
        l->started_ms = now;
        if (!a->active) continue;
        if (a->api_key_file) ts_file_sig(a->api_key_file, &l->key_sig); /* before the read */
        if (lane_headers(e, i, &l->headers, errstr, errstr_size) != TS_OK) {
            ts_engine_destroy(e);
            return NULL;
        }
        l->key_next_ms = now + e->cfg->klaviyo_key_check_ms;
        for (int ep = 0; ep < TS_EP__COUNT; ep++) {
            size_t ul = strlen(e->cfg->klaviyo_base_url) + 64;
            l->url[ep] = malloc(ul);
            if (!l->url[ep]) {
                ts_engine_destroy(e);
                return NULL;
            }
            size_t bl = strlen(e->cfg->klaviyo_base_url);
            while (bl > 0 && e->cfg->klaviyo_base_url[bl - 1] == '/') bl--;
            snprintf(l->url[ep], ul, "%.*s%s", (int)bl, e->cfg->klaviyo_base_url,
                     ts_endpoint_path((ts_endpoint_t)ep));
            ts_ratelimit_init(&l->rl[ep], a->limits[ep].burst_per_s, a->limits[ep].steady_per_min,
                              now);
        }
        lane_metrics(e, l);
    }
    revision_clock(e);
    return e;
}

static void rec_free(rec_t *r) {
    if (!r) return;
    free(r->detail);
    free(r);
}

static void batch_free(batch_t *b) {
    if (!b) return;
    if (b->easy) curl_easy_cleanup(b->easy);
    free(b->items);
    ts_buf_free(&b->body);
    ts_buf_free(&b->resp);
    free(b);
}

static int ptr_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (rec_t *const *)a, y = (uintptr_t) * (rec_t *const *)b;
    return x < y ? -1 : x > y;
}

static void collect(rec_t ***recs, size_t *n, size_t *cap, rec_t *r) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        rec_t **nr = realloc(*recs, nc * sizeof *nr);
        if (!nr) return;
        *recs = nr;
        *cap = nc;
    }
    (*recs)[(*n)++] = r;
}

void ts_engine_destroy(ts_engine_t *e) {
    if (!e) return;
    /* abandon everything without callbacks; a record's items may sit in
     * several queues and batches, so collect, de-duplicate, free once */
    rec_t **recs = NULL;
    size_t n = 0, cap = 0;
    for (batch_t *b = e->active, *nb; b; b = nb) {
        nb = b->active_next;
        curl_multi_remove_handle(e->multi, b->easy);
        for (size_t i = 0; i < b->n; i++) collect(&recs, &n, &cap, b->items[i]->rec);
        batch_free(b);
    }
    for (size_t i = 0; e->lanes && i < e->n_lanes; i++) {
        lane_t *l = &e->lanes[i];
        for (int ep = 0; ep < TS_EP__COUNT; ep++) free(l->url[ep]);
        for (batch_t *b = l->retry, *nb; b; b = nb) {
            nb = b->next;
            for (size_t k = 0; k < b->n; k++) collect(&recs, &n, &cap, b->items[k]->rec);
            batch_free(b);
        }
        if (l->headers) headers_wipe_free(l->headers);
        for (retired_t *r = l->retired, *nr; r; r = nr) {
            nr = r->next;
            headers_wipe_free(r->headers);
            free(r);
        }
        for (int ep = 0; ep < TS_EP__COUNT; ep++)
            for (item_t *it = l->q[ep].head; it; it = it->next) collect(&recs, &n, &cap, it->rec);
    }
    struct {
        rec_t ***recs;
        size_t *n, *cap;
    } col = {&recs, &n, &cap};
    ts_jobs_destroy(e->jobs, jobs_abandon, &col); /* JOBS: their records too */
    if (e->multi) curl_multi_cleanup(e->multi);
    if (n) qsort(recs, n, sizeof *recs, ptr_cmp);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || recs[i] != recs[i - 1]) rec_free(recs[i]);
    free(recs);
    free(e->lanes);
    free(e);
}

/* ---- submit --------------------------------------------------------------- */

bool ts_engine_has_room(const ts_engine_t *e, int account) {
    if (account < 0 || (size_t)account >= e->n_lanes) return false;
    return e->lanes[account].queued_parts < (size_t)e->cfg->klaviyo_max_queued_events;
}

static void enqueue(lane_t *l, item_t *it) {
    queue_t *q = &l->q[it->ep];
    it->next = NULL;
    TS_LIST_APPEND(q->head, q->tail, it, next);
    q->n++;
}

ts_err_t ts_engine_submit(ts_engine_t *e, const ts_mapped_t *m, uint64_t token, bool backfill,
                          char *errstr, size_t errstr_size) {
    if (m->account < 0 || (size_t)m->account >= e->n_lanes || !e->cfg->accounts[m->account].active)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "record has no active account");
    lane_t *l = &e->lanes[m->account];
    if (!ts_engine_has_room(e, m->account)) return TS_ERR_FULL;
    int subs = (m->email_marketing == TS_SUB_SUBSCRIBE || m->sms_marketing == TS_SUB_SUBSCRIBE) +
               (m->email_marketing == TS_SUB_UNSUBSCRIBE || m->sms_marketing == TS_SUB_UNSUBSCRIBE);
    bool suppress = m->suppress_profile && m->email.len, del = m->delete_profile;
    int n_parts = (int)m->n_events + (m->send_profile ? 1 : 0) + subs + suppress + del;
    if (n_parts == 0)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "record has nothing to send");
    size_t sz = sizeof(rec_t) + (size_t)n_parts * sizeof(item_t) +
                m->n_events * sizeof(ts_map_event_t) + m->text.len + 1;
    /* malloc: only the header needs zeroing, the rest is copied over */
    rec_t *r = malloc(sz);
    if (!r) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    *r = (rec_t){.token = token, .size = sz};
    r->submitted_ms = now_ms(e);
    r->parts = r->n_parts = n_parts;
    r->backfill = backfill;
    r->events = (ts_map_event_t *)(r->items + n_parts);
    r->n_events = m->n_events;
    r->text = (char *)(r->events + m->n_events);
    if (m->n_events) memcpy(r->events, m->events, m->n_events * sizeof *m->events);
    memcpy(r->text, m->text.data, m->text.len);
    r->text[m->text.len] = '\0';
    r->profile = m->profile;
    r->profile_key = m->profile_key;
    r->email = m->email;
    r->phone = m->phone_e164;
    r->email_sub = m->email_marketing;
    r->sms_sub = m->sms_marketing;
    for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
        const ts_consent_decision_t *d = &m->consent[ch];
        if (!d->historical_import) continue;
        r->historical = true;
        r->consented_at[ch] = d->consented_at;
    }
    int k = 0;
    for (size_t i = 0; i < m->n_events; i++) {
        r->items[k] = (item_t){r, (int32_t)i, EP_EVENTS, NULL};
        enqueue(l, &r->items[k++]);
    }
    if (m->send_profile) {
        r->items[k] = (item_t){r, -1, EP_PROFILES, NULL};
        enqueue(l, &r->items[k++]);
    }
    if (m->email_marketing == TS_SUB_SUBSCRIBE || m->sms_marketing == TS_SUB_SUBSCRIBE) {
        r->items[k] = (item_t){r, -1, EP_SUB, NULL};
        enqueue(l, &r->items[k++]);
    }
    if (m->email_marketing == TS_SUB_UNSUBSCRIBE || m->sms_marketing == TS_SUB_UNSUBSCRIBE) {
        r->items[k] = (item_t){r, -1, EP_UNSUB, NULL};
        enqueue(l, &r->items[k++]);
    }
    if (suppress) {
        r->items[k] = (item_t){r, -1, EP_SUPPRESS, NULL};
        enqueue(l, &r->items[k++]);
    }
    if (del) {
        r->items[k] = (item_t){r, -1, EP_DELETE, NULL};
        enqueue(l, &r->items[k++]);
    }
    l->queued_parts += (size_t)n_parts;
    ts_metric_set(l->m_queue, (double)l->queued_parts);
    l->bytes += sz;
    if (l->bytes > l->st.max_queued_bytes) l->st.max_queued_bytes = l->bytes;
    e->pending++;
    return TS_OK;
}

size_t ts_engine_pending(const ts_engine_t *e) { return e->pending; }

void ts_engine_set_account_share(ts_engine_t *e, int account, double share) {
    if (account < 0 || (size_t)account >= e->n_lanes || !e->cfg->accounts[account].active) return;
    for (int ep = 0; ep < TS_EP__COUNT; ep++)
        ts_ratelimit_set_share(&e->lanes[account].rl[ep], share);
}

void ts_engine_set_share(ts_engine_t *e, double share) {
    for (size_t i = 0; i < e->n_lanes; i++) ts_engine_set_account_share(e, (int)i, share);
}
void ts_engine_flush(ts_engine_t *e) { e->flush = true; }

void ts_engine_lane_stats(const ts_engine_t *e, int account, ts_lane_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (account < 0 || (size_t)account >= e->n_lanes) return;
    const lane_t *l = &e->lanes[account];
    *out = l->st;
    out->queued_events = l->queued_parts;
    if (!e->cfg->accounts[account].active) return;
    int64_t now = e->o.clock(e->o.clock_opaque), oldest = lane_oldest(e, l);
    out->events_per_s = events_per_s(l, now);
    out->ceiling_per_s = ceiling_per_s(l);
    out->ceiling_ratio = out->ceiling_per_s > 0 && out->events_per_s < out->ceiling_per_s
                             ? out->events_per_s / out->ceiling_per_s
                             : 1.0;
    if (out->events_per_s == 0) out->ceiling_ratio = 0;
    out->oldest_undelivered_s = oldest ? (double)(now - oldest) / 1000.0 : 0;
    out->paced_s = (double)l->paced_ms / 1000.0;
    out->last_success_wall_ms = l->last_ok_wall_ms;
}

/* ---- completion ------------------------------------------------------------ */

static void settle(ts_engine_t *e, lane_t *l, item_t *it, ts_err_t fail, const char *detail) {
    rec_t *r = it->rec;
    if (fail == TS_ERR_WITHDRAWN && r->fail != TS_ERR_WITHDRAWN) {
        /* withdrawn wins over a rejection: the new owner decides again */
        free(r->detail);
        r->fail = fail;
        r->detail = strdup("withdrawn before it was sent (partition revoked)");
    } else if (fail != TS_OK && r->fail == TS_OK) {
        r->fail = fail;
        r->detail = strdup(detail ? detail : "rejected by Klaviyo");
    }
    if (--r->parts > 0) return;
    l->queued_parts -= (size_t)r->n_parts;
    ts_metric_set(l->m_queue, (double)l->queued_parts);
    l->bytes -= r->size;
    e->pending--;
    e->completed++;
    if (e->o.on_done) e->o.on_done(e->o.opaque, r->token, r->fail, r->fail ? r->detail : NULL);
    rec_free(r);
}

/* ---- withdraw --------------------------------------------------------------- */

/* Removes the items of matching records from one list (order kept); returns
 * the removed ones chained through ->next. Marks each record once. */
static size_t withdraw_items(lane_t *l, item_t **items, size_t *n, ts_engine_match_fn match,
                             void *opaque, item_t **out) {
    size_t k = 0, taken = 0;
    for (size_t i = 0; i < *n; i++) {
        item_t *it = items[i];
        if (!match(opaque, it->rec->token)) {
            items[k++] = it;
            continue;
        }
        it->next = *out;
        *out = it;
        taken++;
    }
    *n = k;
    l->st.withdrawn += taken;
    return taken;
}

size_t ts_engine_withdraw(ts_engine_t *e, ts_engine_match_fn match, void *opaque) {
    size_t affected = 0;
    for (size_t i = 0; i < e->n_lanes; i++) {
        lane_t *l = &e->lanes[i];
        if (!e->cfg->accounts[i].active) continue;
        item_t *out = NULL;
        for (int ep = 0; ep < TS_EP__COUNT; ep++) {
            queue_t *q = &l->q[ep];
            item_t **pp = &q->head, *last = NULL;
            while (*pp) {
                item_t *it = *pp;
                if (match(opaque, it->rec->token)) {
                    *pp = it->next;
                    q->n--;
                    it->next = out;
                    out = it;
                    l->st.withdrawn++;
                } else {
                    last = it;
                    pp = &it->next;
                }
            }
            q->tail = last;
        }
        for (batch_t **bp = &l->retry; *bp;) {
            batch_t *b = *bp;
            withdraw_items(l, b->items, &b->n, match, opaque, &out);
            if (b->n == 0) {
                *bp = b->next;
                batch_free(b);
            } else {
                bp = &b->next;
            }
        }
        /* settle after unlinking: a settled record may be freed */
        for (item_t *it = out, *nx; it; it = nx) {
            nx = it->next;
            if (it->rec->fail != TS_ERR_WITHDRAWN) affected++;
            settle(e, l, it, TS_ERR_WITHDRAWN, NULL);
        }
    }
    return affected;
}

size_t ts_engine_unsettled(const ts_engine_t *e, ts_engine_match_fn match, void *opaque) {
    size_t n = ts_engine_on_wire(e, match, opaque);
    for (size_t i = 0; i < e->n_lanes; i++) {
        const lane_t *l = &e->lanes[i];
        if (!e->cfg->accounts[i].active) continue;
        for (int ep = 0; ep < TS_EP__COUNT; ep++)
            for (const item_t *it = l->q[ep].head; it; it = it->next)
                if (match(opaque, it->rec->token)) n++;
        for (const batch_t *b = l->retry; b; b = b->next)
            for (size_t k = 0; k < b->n; k++)
                if (match(opaque, b->items[k]->rec->token)) n++;
    }
    return n;
}

size_t ts_engine_on_wire(const ts_engine_t *e, ts_engine_match_fn match, void *opaque) {
    size_t n = 0;
    for (const batch_t *b = e->active; b; b = b->active_next)
        for (size_t i = 0; i < b->n; i++)
            if (match(opaque, b->items[i]->rec->token)) n++;
    return n;
}

/* ---- request bodies --------------------------------------------------------- */

static const char *rtext(const rec_t *r, ts_span_t s) { return r->text + s.off; }

static bool same_span(const rec_t *a, ts_span_t sa, const rec_t *b, ts_span_t sb) {
    return sa.len == sb.len && !memcmp(a->text + sa.off, b->text + sb.off, sa.len);
}

static uint64_t hspan(const rec_t *r, ts_span_t s, uint64_t h) {
    return ts_hash_update(h, r->text + s.off, s.len);
}

/* Builds the body of an events batch: entries grouped by (profile, backfill);
 * an event repeating (profile, metric, unique_id) is written once.
 * Returns the number of unique events. */
static size_t build_events_body(batch_t *b) {
    size_t n = b->n, cap = 16;
    while (cap < n * 2) cap *= 2;
    int32_t *ent_of = malloc(n * sizeof *ent_of); /* item -> entry leader item */
    int32_t *nexti = malloc(n * sizeof *nexti);   /* next item in same entry */
    int32_t *lasti = malloc(n * sizeof *lasti);   /* per leader: last item */
    int32_t *ptab = malloc(cap * sizeof *ptab), *utab = malloc(cap * sizeof *utab);
    bool *dup = calloc(n, sizeof *dup);
    size_t uniq = 0, bytes = 256; /* the body's size, reserved once (no regrowth copies) */
    if (!ent_of || !nexti || !lasti || !ptab || !utab || !dup) goto out;
    memset(ptab, -1, cap * sizeof *ptab);
    memset(utab, -1, cap * sizeof *utab);
    for (size_t i = 0; i < n; i++) {
        const rec_t *r = b->items[i]->rec;
        const ts_map_event_t *ev = &r->events[b->items[i]->ev];
        nexti[i] = -1;
        /* unique (profile, metric, unique_id) */
        uint64_t h = hspan(r, r->profile_key, TS_HASH_INIT);
        h = ts_hash_finish(hspan(r, ev->unique_id, ts_hash_update_str(h, ev->metric)));
        size_t k = h & (cap - 1);
        for (; utab[k] >= 0; k = (k + 1) & (cap - 1)) {
            const rec_t *r2 = b->items[utab[k]]->rec;
            const ts_map_event_t *e2 = &r2->events[b->items[utab[k]]->ev];
            if (same_span(r, r->profile_key, r2, r2->profile_key) &&
                !strcmp(ev->metric, e2->metric) && same_span(r, ev->unique_id, r2, e2->unique_id)) {
                dup[i] = true;
                break;
            }
        }
        if (dup[i]) continue;
        utab[k] = (int32_t)i;
        uniq++;
        bytes += ev->json.len + 48; /* {"type":"event","attributes":...}, */
        /* entry per (profile, backfill) */
        uint64_t hp = hspan(r, r->profile_key, r->backfill ? 7 : 3);
        size_t p = hp & (cap - 1);
        for (; ptab[p] >= 0; p = (p + 1) & (cap - 1)) {
            const rec_t *r2 = b->items[ptab[p]]->rec;
            if (r2->backfill == r->backfill && same_span(r, r->profile_key, r2, r2->profile_key))
                break;
        }
        if (ptab[p] < 0) {
            bytes += r->profile.len + 192; /* the entry around the events */
            ptab[p] = (int32_t)i;
            ent_of[i] = (int32_t)i;
            lasti[i] = (int32_t)i;
        } else {
            int32_t lead = ptab[p];
            ent_of[i] = lead;
            nexti[lasti[lead]] = (int32_t)i;
            lasti[lead] = (int32_t)i;
        }
    }
    ts_jw_t w;
    ts_buf_reset(&b->body);
    ts_buf_reserve(&b->body, bytes); /* on failure the writer's own growth reports it */
    ts_kbody_events_open(&w, &b->body);
    for (size_t i = 0; i < n; i++) {
        if (dup[i] || ent_of[i] != (int32_t)i) continue;
        const rec_t *r = b->items[i]->rec;
        ts_kbody_events_entry_open(&w, rtext(r, r->profile), r->profile.len, r->backfill);
        for (int32_t j = (int32_t)i; j >= 0; j = nexti[j]) {
            const rec_t *rj = b->items[j]->rec;
            const ts_map_event_t *ev = &rj->events[b->items[j]->ev];
            ts_kbody_events_event(&w, rtext(rj, ev->json), ev->json.len);
        }
        ts_kbody_events_entry_close(&w);
    }
    ts_kbody_events_close(&w);
out:
    free(ent_of);
    free(nexti);
    free(lasti);
    free(ptab);
    free(utab);
    free(dup);
    return uniq;
}

/* keep[i] = item i is the latest of its profile in the batch: one pass
 * backwards with an open-addressing set of profile keys, O(n). False
 * when out of memory. */
static bool mark_latest(const batch_t *b, bool *keep) {
    size_t n = b->n, cap = 16;
    while (cap < n * 2) cap *= 2;
    int32_t *tab = malloc(cap * sizeof *tab);
    if (!tab) return false;
    memset(tab, -1, cap * sizeof *tab);
    for (size_t i = n; i-- > 0;) {
        const rec_t *r = b->items[i]->rec;
        size_t k = ts_hash_finish(hspan(r, r->profile_key, TS_HASH_INIT)) & (cap - 1);
        for (; tab[k] >= 0; k = (k + 1) & (cap - 1))
            if (same_span(r, r->profile_key, b->items[tab[k]]->rec,
                          b->items[tab[k]]->rec->profile_key))
                break;
        if (tab[k] < 0) {
            tab[k] = (int32_t)i;
            keep[i] = true;
        }
    }
    free(tab);
    return true;
}

/* One subscribe / unsubscribe item: the channels this record changes that way. */
static void add_sub_item(ts_jw_t *w, const batch_t *b, const rec_t *r) {
    ts_sub_t want = b->ep == EP_SUB ? TS_SUB_SUBSCRIBE : TS_SUB_UNSUBSCRIBE;
    char email[512] = "", phone[32] = "";
    if (r->email.len < sizeof email) memcpy(email, rtext(r, r->email), r->email.len);
    if (r->phone.len < sizeof phone) memcpy(phone, rtext(r, r->phone), r->phone.len);
    bool ech = r->email_sub == want && *email, sch = r->sms_sub == want && *phone;
    bool hist = b->ep == EP_SUB && r->historical;
    ts_kbody_subs_add_at(w, b->ep == EP_SUB, ech ? email : NULL, sch ? phone : NULL, ech, sch,
                         hist ? r->consented_at[TS_CONSENT_EMAIL] : 0,
                         hist ? r->consented_at[TS_CONSENT_SMS] : 0);
}

/* Profiles and consent: the latest item per profile wins within a batch. */
static size_t build_profiles_body(batch_t *b) {
    size_t uniq = 0, n = b->n;
    bool *keep = calloc(n ? n : 1, sizeof *keep);
    ts_jw_t w;
    ts_buf_reset(&b->body);
    if (b->ep == EP_PROFILES)
        ts_kbody_profiles_open(&w, &b->body);
    else
        ts_kbody_subs_open(&w, &b->body, b->ep == EP_SUB, b->ep == EP_SUB ? "Point of sale" : NULL,
                           b->ep == EP_SUB && n > 0 && b->items[0]->rec->historical);
    if (keep && mark_latest(b, keep))
        for (size_t i = 0; i < n; i++) {
            if (!keep[i]) continue;
            const rec_t *r = b->items[i]->rec;
            uniq++;
            if (b->ep == EP_PROFILES)
                ts_kbody_profiles_add(&w, rtext(r, r->profile), r->profile.len);
            else
                add_sub_item(&w, b, r);
        }
    if (b->ep == EP_PROFILES)
        ts_kbody_profiles_close(&w);
    else
        ts_kbody_subs_close(&w);
    free(keep);
    return uniq;
}

/* ---- JOBS: the job follower's hooks (src/http/jobs.c does the rest) ---------- */

static void jobs_settle(void *opaque, int account, void *handle, ts_err_t result,
                        const char *detail) {
    ts_engine_t *e = opaque;
    settle(e, &e->lanes[account], handle, result, detail);
}

static void jobs_requeue(void *opaque, int account, void *handle) {
    ts_engine_t *e = opaque;
    enqueue(&e->lanes[account], handle);
}

static void jobs_abandon(void *ctx, void *handle) {
    struct {
        rec_t ***recs;
        size_t *n, *cap;
    } *col = ctx;
    collect(col->recs, col->n, col->cap, ((item_t *)handle)->rec);
}

/* A profile import's 202: its parts go to the follower, settled when the
 * job is complete. false: no job to follow (settle now, as before). */
static bool jobs_follow(ts_engine_t *e, lane_t *l, batch_t *b) {
    char id[128];
    if (ts_jobs_parse_id(b->resp.data, b->resp.len, id, sizeof id) != TS_OK) {
        ts_log(TS_LOG_WARN, "engine", NULL,
               "a profile import 202 named no job: its records complete without follow-up");
        return false;
    }
    ts_job_entry_t *en = malloc((b->n ? b->n : 1) * sizeof *en);
    if (!en) return false;
    for (size_t i = 0; i < b->n; i++) {
        const rec_t *r = b->items[i]->rec;
        ts_jstr_t key = {rtext(r, r->profile_key), r->profile_key.len};
        bool ext = key.n > 2 && !memcmp(key.p, "x:", 2);
        en[i] = (ts_job_entry_t){.handle = b->items[i],
                                 .token = r->token,
                                 .key = key,
                                 .email = {rtext(r, r->email), r->email.len},
                                 .phone = {rtext(r, r->phone), r->phone.len},
                                 .external_id = {ext ? key.p + 2 : NULL, ext ? key.n - 2 : 0}};
    }
    ts_err_t rc = ts_jobs_follow(e->jobs, l->account, l->name, &l->rl[EP_PROFILES], &l->headers, id,
                                 en, b->n);
    free(en);
    return rc == TS_OK;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    batch_t *b = ud;
    size_t n = sz * nm;
    if (b->resp.len + n <= MAX_RESP_BYTES) ts_buf_append(&b->resp, p, n);
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    batch_t *b = ud;
    ts_http_rl_header(p, sz * nm, &b->hdrs);
    return sz * nm;
}

/* Suppressions (one email per record) and deletions (one record a request). */
static size_t build_deletes_body(batch_t *b) {
    ts_jw_t w;
    char email[512], phone[32];
    ts_buf_reset(&b->body);
    if (b->ep == EP_SUPPRESS) ts_kbody_suppress_open(&w, &b->body);
    for (size_t i = 0; i < b->n; i++) {
        const rec_t *r = b->items[i]->rec;
        email[0] = phone[0] = '\0';
        if (r->email.len < sizeof email) {
            memcpy(email, rtext(r, r->email), r->email.len);
            email[r->email.len] = '\0';
        }
        if (r->phone.len < sizeof phone) {
            memcpy(phone, rtext(r, r->phone), r->phone.len);
            phone[r->phone.len] = '\0';
        }
        if (b->ep == EP_SUPPRESS)
            ts_kbody_suppress_add(&w, email);
        else
            ts_kbody_deletion(&w, &b->body, email, phone);
    }
    if (b->ep == EP_SUPPRESS) ts_kbody_suppress_close(&w);
    return b->n;
}

static ts_err_t start_transfer(ts_engine_t *e, batch_t *b, int64_t now) {
    lane_t *l = b->lane;
    if (b->ep == EP_EVENTS) {
        b->n_unique = build_events_body(b);
        ts_metric_observe(l->m_batch, (double)b->n_unique);
    } else if (b->ep == EP_SUPPRESS || b->ep == EP_DELETE) {
        b->n_unique = build_deletes_body(b);
    } else {
        b->n_unique = build_profiles_body(b);
    }
    CURL *c = ts_http_klaviyo_easy(&b->easy, e->cfg, &b->resp, &b->hdrs, on_body, on_header, b);
    if (!c) return TS_ERR_NOMEM;
    b->throttled = false;
    b->started_ms = now;
    curl_easy_setopt(c, CURLOPT_URL, l->url[b->ep]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, b->body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->body.len);
    curl_easy_setopt(c, CURLOPT_PRIVATE, b);
    if (curl_multi_add_handle(e->multi, c) != CURLM_OK) return TS_ERR_INTERNAL;
    b->active_next = e->active;
    e->active = b;
    l->inflight[b->ep]++;
    ts_metric_set(l->m_inflight[b->ep], l->inflight[b->ep]);
    l->st.requests++;
    return TS_OK;
}

/* Takes up to one request's worth of items from the queue head. */
static batch_t *take_batch(lane_t *l, int ep) {
    queue_t *q = &l->q[ep];
    size_t max = (size_t)ts_klaviyo_endpoint((ts_endpoint_t)ep)->max_items;
    size_t n = q->n < max ? q->n : max;
    batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->items = malloc((n ? n : 1) * sizeof *b->items);
    if (!b->items) {
        free(b);
        return NULL;
    }
    b->lane = l;
    b->ep = ep;
    size_t bytes = TS_KBODY_EVENTS_OVERHEAD;
    while (q->head && b->n < n) {
        item_t *it = q->head;
        const rec_t *r = it->rec;
        /* historical_import is the job's: a subscribe job is all historical or none */
        if (b->n > 0 && ep == EP_SUB && r->historical != b->items[0]->rec->historical) break;
        size_t add = ep == EP_EVENTS
                         ? r->events[it->ev].json.len + r->profile.len + TS_KBODY_ENTRY_OVERHEAD
                         : r->profile.len + TS_KBODY_PROFILE_OVERHEAD;
        if (b->n > 0 && bytes + add > MAX_BODY_BYTES) break;
        bytes += add;
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        b->items[b->n++] = it;
    }
    return b;
}

static void schedule_retry(lane_t *l, batch_t *b, int64_t at, bool front) {
    b->not_before = at;
    if (front || !l->retry) {
        b->next = l->retry;
        l->retry = b;
        return;
    }
    batch_t *t = l->retry;
    while (t->next) t = t->next;
    t->next = b;
    b->next = NULL;
}

/* Klaviyo's error document (JSON:API): {"errors":[{"status":400,"code":..,
 * "title":..,"detail":..,"source":{"pointer":..}},...]}. Parsed, never
 * searched as text: servers may write spaces, reorder keys, escape. The
 * first error's detail (else title) and source pointer, and how many
 * more errors there were. */
static const char *klaviyo_detail(const batch_t *b, long status, char *out, size_t outsz) {
    snprintf(out, outsz, "HTTP %ld without an error document", status);
    cJSON *doc = b->resp.len ? cJSON_ParseWithLength(b->resp.data, b->resp.len) : NULL;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(doc, "errors");
    const cJSON *first = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(first, "detail");
    if (!cJSON_IsString(detail)) detail = cJSON_GetObjectItemCaseSensitive(first, "title");
    if (cJSON_IsString(detail)) {
        snprintf(out, outsz, "%s", detail->valuestring);
        const cJSON *ptr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(first, "source"), "pointer");
        size_t used = strlen(out);
        if (cJSON_IsString(ptr) && *ptr->valuestring && used + 1 < outsz)
            snprintf(out + used, outsz - used, " (at %s)", ptr->valuestring);
        int more = cJSON_GetArraySize(errs) - 1;
        used = strlen(out);
        if (more > 0 && used + 1 < outsz)
            snprintf(out + used, outsz - used, " (+%d more error%s)", more, more > 1 ? "s" : "");
    }
    cJSON_Delete(doc);
    return out;
}

/* What an answer means for its batch. */
typedef enum { R_ACCEPTED, R_THROTTLED, R_RETRY, R_REJECT } result_t;

/* A refusal of the request itself, whatever its records: the endpoint
 * (404: a klaviyo.base_url with a path; not for a deletion, whose 404 may
 * be about its profile), the method (405), a retired revision or endpoint
 * (410: Klaviyo answered its retired APIs so), the media type (415). */
static bool request_refused(int ep, long status) {
    return (status == 404 && ep != EP_DELETE) || status == 405 || status == 410 || status == 415;
}

static result_t classify(CURLcode cc, long status, int ep) {
    if (cc != CURLE_OK || status == 0) return R_RETRY;
    if (status >= 200 && status < 300) return R_ACCEPTED;
    if (status == 429) return R_THROTTLED;
    /* 401/403: a revoked key is the account's problem, not the data's; a
     * refused request is the deployment's: neither dead-letters a record */
    if (status >= 500 || status == 401 || status == 403 || status == 408) return R_RETRY;
    if (request_refused(ep, status)) return R_RETRY;
    return R_REJECT;
}

static void on_accepted(ts_engine_t *e, lane_t *l, batch_t *b, int64_t now) {
    l->last_ok_wall_ms = ts_now_wall_ms();
    ts_metric_set(l->m_last_ok[b->ep], (double)l->last_ok_wall_ms / 1000.0);
    if (b->ep == EP_EVENTS) count_second(l, now, b->n);
    if (b->ep == EP_PROFILES && jobs_follow(e, l, b)) { /* JOBS: settled by the follower */
        l->st.profiles_accepted += b->n;
        batch_free(b);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->ep == EP_EVENTS) {
            l->st.events_accepted++;
            count_event(e, l, b->items[i]->rec->events[b->items[i]->ev].metric);
        } else if (b->ep == EP_PROFILES) {
            l->st.profiles_accepted++;
        } else if (b->ep == EP_SUPPRESS || b->ep == EP_DELETE) {
            const rec_t *r = b->items[i]->rec;
            /* the customer id only (profile key "x:<id>"), never the email */
            bool xid = r->profile_key.len > 2 && !memcmp(rtext(r, r->profile_key), "x:", 2);
            char cctx[320];
            snprintf(cctx, sizeof cctx, "\"account\":\"%s\",\"customer\":\"%.*s\"", l->name,
                     xid ? (int)r->profile_key.len - 2 : 0,
                     xid ? rtext(r, r->profile_key) + 2 : "");
            ts_log(TS_LOG_INFO, "engine", cctx, "Klaviyo accepted the %s request",
                   b->ep == EP_DELETE ? "profile deletion" : "suppression");
        }
        settle(e, l, b->items[i], TS_OK, NULL);
    }
    batch_free(b);
}

static void on_throttled(lane_t *l, batch_t *b, int64_t now, const char *ctx) {
    l->st.throttled_429++;
    ts_metric_add(l->m_throttled[b->ep], 1);
    long ra = b->hdrs.retry_after > 0 ? b->hdrs.retry_after : 1;
    ts_ratelimit_block(&l->rl[b->ep], now, ra);
    ts_log(TS_LOG_INFO, "engine", ctx, "throttled by Klaviyo; retrying after %ld s", ra);
    b->throttled = true;
    schedule_retry(l, b, now + ra * 1000, true);
}

static void on_retry(ts_engine_t *e, lane_t *l, batch_t *b, int64_t now, CURLcode cc, long status,
                     const char *ctx) {
    l->st.retries++;
    ts_metric_add(l->m_retries[b->ep], 1);
    b->attempt++;
    int64_t back = e->o.backoff_base_ms > 0 ? e->o.backoff_base_ms : BACKOFF_BASE_MS;
    for (int i = 1; i < b->attempt && back < BACKOFF_CAP_MS; i++) back *= 2;
    if (back > BACKOFF_CAP_MS) back = BACKOFF_CAP_MS;
    back = (int64_t)((double)back * jitter(e));
    if (status == 401 || status == 403)
        ts_log(TS_LOG_ERROR, "engine", ctx,
               "Klaviyo refused the account's API key (HTTP %ld): check the key and its scopes; "
               "retrying in %lld ms",
               status, (long long)back);
    else if (request_refused(b->ep, status))
        ts_log(TS_LOG_ERROR, "engine", ctx,
               "Klaviyo refused the request itself (HTTP %ld), not its records: check "
               "klaviyo.base_url and klaviyo.revision (a retired revision is answered 410); "
               "nothing is dead-lettered, retrying in %lld ms",
               status, (long long)back);
    else
        ts_log(TS_LOG_WARN, "engine", ctx, "request failed (%s); retrying in %lld ms",
               cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", (long long)back);
    schedule_retry(l, b, now + back, true);
    if (status == 401 || status == 403) key_check(e, l, now, true);
}

/* Bad data: bisect until the offending event is alone, then reject only
 * the records it belongs to. */
static void on_rejected(ts_engine_t *e, lane_t *l, batch_t *b, int64_t now, long status,
                        const char *ctx) {
    char detail[512];
    klaviyo_detail(b, status, detail, sizeof detail);
    if (b->n_unique <= 1 || b->n == 1) {
        ts_err_t code = status == 413 ? TS_ERR_TOO_LARGE : TS_ERR_REJECTED;
        char full[640];
        snprintf(full, sizeof full, "Klaviyo HTTP %ld: %s", status, detail);
        ts_log(TS_LOG_WARN, "engine", ctx, "rejected by Klaviyo: %s", detail);
        for (size_t i = 0; i < b->n; i++) {
            if (b->ep == EP_EVENTS) l->st.events_rejected++;
            settle(e, l, b->items[i], code, full);
        }
        batch_free(b);
        return;
    }
    size_t half = b->n / 2;
    batch_t *b2 = calloc(1, sizeof *b2);
    if (!b2 || !(b2->items = malloc((b->n - half) * sizeof *b2->items))) {
        free(b2);
        schedule_retry(l, b, now + BACKOFF_BASE_MS, true); /* try again later */
        return;
    }
    b2->lane = l;
    b2->ep = b->ep;
    memcpy(b2->items, b->items + half, (b->n - half) * sizeof *b2->items);
    b2->n = b->n - half;
    b->n = half;
    b->attempt = 0;
    ts_log(TS_LOG_INFO, "engine", ctx, "Klaviyo rejected a batch (%s); bisecting", detail);
    schedule_retry(l, b2, now, true);
    schedule_retry(l, b, now, true);
}

static void on_finished(ts_engine_t *e, batch_t *b, CURLcode cc) {
    lane_t *l = b->lane;
    int64_t now = now_ms(e);
    long status = 0;
    curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(e->multi, b->easy);
    for (batch_t **pp = &e->active; *pp; pp = &(*pp)->active_next)
        if (*pp == b) {
            *pp = b->active_next;
            break;
        }
    b->active_next = NULL;
    l->inflight[b->ep]--;
    ts_metric_set(l->m_inflight[b->ep], l->inflight[b->ep]);
    if (cc == CURLE_OK) { /* an answer: its time moves the lane's latency estimate */
        double t = (double)(now - b->started_ms), *lat = &l->latency_ms[b->ep];
        *lat = *lat > 0 ? *lat + LATENCY_WEIGHT * (t - *lat) : (t > 0 ? t : 1);
        ts_metric_set(l->m_inflight_max[b->ep], inflight_cap(l, b->ep));
    }
    /* the lane's other requests in flight may not have been counted yet */
    long rem = b->hdrs.remaining;
    if (rem > 0) rem = rem > l->inflight[b->ep] ? rem - l->inflight[b->ep] : 0;
    ts_ratelimit_observe(&l->rl[b->ep], now, b->hdrs.limit, rem, b->hdrs.reset);
    int cls = cc != CURLE_OK ? 4 : status == 429 ? 2 : status >= 500 ? 3 : status >= 400 ? 1 : 0;
    ts_metric_add(l->m_req[b->ep][cls], 1);
    ts_metric_observe(l->m_latency[b->ep], (double)(now - b->started_ms) / 1000.0);
    char ctx[160];
    snprintf(ctx, sizeof ctx,
             "\"account\":\"%s\",\"endpoint\":\"%s\",\"status\":%ld,\"events\":%zu", l->name,
             ts_endpoint_name((ts_endpoint_t)b->ep), status, b->n);
    switch (classify(cc, status, b->ep)) {
    case R_ACCEPTED: on_accepted(e, l, b, now); break;
    case R_THROTTLED: on_throttled(l, b, now, ctx); break;
    case R_RETRY: on_retry(e, l, b, now, cc, status, ctx); break;
    case R_REJECT: on_rejected(e, l, b, now, status, ctx); break;
    }
}

/* ---- the loop ---------------------------------------------------------------- */

static bool retry_pending(const lane_t *l, int ep) {
    for (const batch_t *b = l->retry; b; b = b->next)
        if (b->ep == ep) return true;
    return false;
}

/* What of one lane may go out now; returns ms until something else could.
 * Every request waits for the limiter (pacing clock and windows); a batch
 * that is not full also waits for the linger, measured from its oldest
 * record: light traffic goes out after the linger, heavy traffic fills
 * batches while the pacing clock runs. Retries go first, in order. */
/* The lane's retries and bisected halves, in order; lowers *next to the
 * ms until one could go, sets *held when one waits for a limit. */
static void dispatch_retries(ts_engine_t *e, lane_t *l, int64_t now, int64_t *next, bool *held) {
    for (batch_t **pp = &l->retry; *pp;) {
        batch_t *b = *pp;
        int64_t w = b->not_before > now ? b->not_before - now : 0;
        if (w > 0 && b->throttled) *held = true;
        if (w == 0 && l->inflight[b->ep] >= inflight_cap(l, b->ep)) {
            pp = &b->next;
            continue;
        }
        if (w == 0 && (w = ts_ratelimit_wait(&l->rl[b->ep], now)) > 0) *held = true;
        if (w > 0) {
            if (w < *next) *next = w;
            pp = &b->next;
            continue;
        }
        *pp = b->next;
        b->next = NULL;
        if (start_transfer(e, b, now) != TS_OK) {
            schedule_retry(l, b, now + BACKOFF_BASE_MS, false);
            break;
        }
        ts_ratelimit_sent_backlog(&l->rl[b->ep], now, l->q[b->ep].n > 0);
    }
}

/* New batches of one endpoint's queue: full, or past the linger, and only
 * when the pacing clock allows. */
static void dispatch_queue(ts_engine_t *e, lane_t *l, int ep, int64_t now, int64_t *next,
                           bool *held) {
    queue_t *q = &l->q[ep];
    size_t full = (size_t)ts_klaviyo_endpoint((ts_endpoint_t)ep)->max_items;
    while (q->n > 0 && l->inflight[ep] < inflight_cap(l, ep) && !retry_pending(l, ep)) {
        int64_t due = q->head->rec->submitted_ms + e->cfg->klaviyo_linger_ms;
        if (q->n < full && now < due && !e->flush) {
            if (due - now < *next) *next = due - now;
            break;
        }
        int64_t w = ts_ratelimit_wait(&l->rl[ep], now);
        if (w > 0) {
            *held = true;
            if (w < *next) *next = w;
            break;
        }
        batch_t *b = take_batch(l, ep);
        if (!b) break;
        if (start_transfer(e, b, now) != TS_OK) {
            schedule_retry(l, b, now + BACKOFF_BASE_MS, false);
            break;
        }
        ts_ratelimit_sent_backlog(&l->rl[ep], now, b->n >= full || q->n > 0);
    }
}

static int64_t dispatch_lane(ts_engine_t *e, lane_t *l, int64_t now) {
    int64_t next = 1000;
    bool held = false; /* work waits for the limiter or a Retry-After */
    dispatch_retries(e, l, now, &next, &held);
    for (int ep = 0; ep < TS_EP__COUNT; ep++) dispatch_queue(e, l, ep, now, &next, &held);
    /* time the lane had work but waited for the pacing clock or a limit */
    if (l->held && now > l->held_mark_ms) l->paced_ms += now - l->held_mark_ms;
    l->held = held;
    l->held_mark_ms = now;
    return next;
}

/* Sends what may be sent now; returns ms until something else could be. */
static int64_t dispatch(ts_engine_t *e, int64_t now) {
    int64_t next = 1000;
    for (size_t i = 0; i < e->n_lanes; i++) {
        if (!e->cfg->accounts[i].active) continue;
        int64_t w = dispatch_lane(e, &e->lanes[i], now);
        if (w < next) next = w;
    }
    return next < 1 ? 1 : next;
}

/* Submit time of the lane's oldest part not yet accepted (0: none): queues
 * and batches are in submit order, so their first items are the oldest. */
static int64_t lane_oldest(const ts_engine_t *e, const lane_t *l) {
    int64_t o = 0;
#define CONSIDER(t)                                                                                \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (o == 0 || t_ < o) o = t_;                                                              \
    } while (0)
    for (int ep = 0; ep < TS_EP__COUNT; ep++)
        if (l->q[ep].head) CONSIDER(l->q[ep].head->rec->submitted_ms);
    for (const batch_t *b = l->retry; b; b = b->next)
        if (b->n) CONSIDER(b->items[0]->rec->submitted_ms);
    for (const batch_t *b = e->active; b; b = b->active_next)
        if (b->lane == l && b->n) CONSIDER(b->items[0]->rec->submitted_ms);
#undef CONSIDER
    return o;
}

/* Once a second: the progress gauges, and one log line when an account's
 * oldest undelivered part has waited longer than klaviyo.stall_warn_ms
 * (one more when it recovers). */
static void progress(ts_engine_t *e, int64_t now) {
    if (now < e->next_progress_ms) return;
    e->next_progress_ms = now + 1000;
    for (size_t i = 0; i < e->n_lanes; i++) {
        lane_t *l = &e->lanes[i];
        if (!e->cfg->accounts[i].active) continue;
        key_check(e, l, now, false);
        int64_t oldest = lane_oldest(e, l);
        int64_t age = oldest ? now - oldest : 0;
        ts_metric_set(l->m_oldest, (double)age / 1000.0);
        double paced = (double)l->paced_ms / 1000.0;
        ts_metric_add(l->m_paced, paced - l->paced_reported);
        l->paced_reported = paced;
        double eps = events_per_s(l, now), ceil_ = ceiling_per_s(l);
        ts_metric_set(l->m_eps, eps);
        ts_metric_set(l->m_ratio, ceil_ > 0 && eps < ceil_ ? eps / ceil_ : 1.0);
        int warn = e->cfg->klaviyo_stall_warn_ms;
        if (warn <= 0) continue;
        char ctx[256];
        snprintf(ctx, sizeof ctx,
                 "\"account\":\"%s\",\"waited_s\":%.1f,\"queued_parts\":%zu,\"paced_s\":%.1f,"
                 "\"throttled\":%llu,\"events_per_s\":%.0f",
                 l->name, (double)age / 1000.0, l->queued_parts, paced,
                 (unsigned long long)l->st.throttled_429, eps);
        if (!l->stalled && age > warn) {
            l->stalled = true;
            ts_log(TS_LOG_WARN, "engine", ctx,
                   "account has waited %.0f s to deliver its oldest event (klaviyo.stall_warn_ms "
                   "%d): paced, throttled or Klaviyo unreachable",
                   (double)age / 1000.0, warn);
        } else if (l->stalled && age <= warn) {
            l->stalled = false;
            ts_log(TS_LOG_INFO, "engine", ctx, "account is delivering again");
        }
    }
}

int ts_engine_poll(ts_engine_t *e, int timeout_ms) {
    int64_t start = now_ms(e), now = start;
    e->completed = 0;
    for (;;) {
        int64_t jn = ts_jobs_dispatch(e->jobs, now); /* JOBS: job reads go first */
        int64_t next = dispatch(e, now);
        if (jn < next) next = jn;
        int running = 0;
        curl_multi_perform(e->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(e->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            if (ts_jobs_on_done(e->jobs, msg->easy_handle, msg->data.result)) continue; /* JOBS */
            batch_t *b = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&b);
            on_finished(e, b, msg->data.result);
        }
        if (e->pending == 0) e->flush = false;
        now = now_ms(e);
        progress(e, now);
        int64_t left_ms = start + timeout_ms - now;
        if (e->completed > 0 || left_ms <= 0) break;
        int wait = (int)(next < left_ms ? next : left_ms);
        if (wait > 0) curl_multi_poll(e->multi, NULL, 0, wait, NULL);
        now = now_ms(e);
    }
    return e->completed;
}
