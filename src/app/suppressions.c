/*
 * suppressions.c - tillstream-suppressions: the poll loop over the
 * accounts (tillstream/suppressions.h). The Klaviyo facts and the
 * watermark logic are in src/klaviyo/supp.c, the GETs in src/http/kget.c,
 * the transactional producer and the state topic in src/kafka/suppout.c;
 * this file wires them, paces the requests and decides the exit code.
 */
#include "tillstream/suppressions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tillstream/admin.h"
#include "app/daemon.h"
#include "app/opts.h"
#include "tillstream/checkconfig.h"
#include "tillstream/config.h"
#include "tillstream/kget.h"
#include "tillstream/kconf.h"
#include "tillstream/log.h"
#include "tillstream/metrics.h"
#include "tillstream/ratelimit.h"
#include "tillstream/supp.h"
#include "tillstream/suppout.h"

#define PROG          "tillstream-suppressions"
#define TXN_TIMEOUT   30000
#define MAX_ATTEMPTS  6   /* per request: 429s and transient failures */
#define EVENTS_PAGE   200 /* Get Events' default page size */
#define METRIC_ID_MAX 128

/* Klaviyo's published limits (x-klaviyo-ratelimit): Get Profiles 75/s
 * 750/min, Get Events 350/s 3,500/min, Get Metrics 10/s 150/min; each its
 * own bucket per account, shared with nothing else tillstream sends. */
enum { R_PROFILES, R_EVENTS, R_METRICS, R__COUNT };
static const double limits[R__COUNT][2] = {{75, 750}, {350, 3500}, {10, 150}};

typedef struct {
    const char *name;
    size_t idx; /* in cfg->accounts */
    char *key;
    ts_supp_state_t st; /* committed: what the state topic holds */
    ts_ratelimit_t rl[R__COUNT];
    char metric_id[METRIC_ID_MAX]; /* SMS unsubscribe metric; "" until found */
    bool metric_missing_logged;
    ts_metric_t *m_produced[TS_SUPP__CHANNELS], *m_last_ok, *m_errors;
} acct_t;

typedef struct {
    const ts_config_t *cfg;
    ts_kget_t *http;
    ts_suppout_t *out;
    ts_admin_t *admin;
    ts_metrics_t *metrics;
    acct_t *acc;
    size_t n_acc;
    volatile int *stop;
    ts_buf_t body, next, url, page; /* page: the records of one page, key\0value\0 */
    size_t page_n;
} poller_t;

static void sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (heartbeating) until `stop` or `ms` passed. */
static void wait_ms(poller_t *P, int64_t ms) {
    int64_t end = ts_now_mono_ms() + ms;
    for (int64_t now; !*P->stop && (now = ts_now_mono_ms()) < end;) {
        ts_admin_heartbeat(P->admin);
        ts_kconf_creds_check(P->cfg, now); /* SASL credentials rotated in their files */
        sleep_ms(end - now < 200 ? end - now : 200);
    }
}

/* After a 401/403: an account whose key is in a file (accounts[].api_key_file)
 * may have had it rotated there; true when the file now holds another key
 * (a->key is then that one). A key from an env var needs a restart. */
static bool key_reread(poller_t *P, acct_t *a) {
    char *k = NULL, e[512];
    if (!P->cfg->accounts[a->idx].api_key_file ||
        ts_config_account_key(P->cfg, a->idx, &k, e, sizeof e) != TS_OK)
        return false;
    bool changed = strcmp(k, a->key) != 0;
    char *drop = changed ? a->key : k;
    if (changed) a->key = k;
    memset(drop, 0, strlen(drop));
    free(drop);
    if (changed) {
        char ctx[300];
        snprintf(ctx, sizeof ctx, "\"account\":\"%s\"", a->name);
        ts_log(TS_LOG_INFO, PROG, ctx,
               "the account's API key changed in its file: the next requests use the new key");
    }
    return changed;
}

/* One GET within the endpoint's budget: waits for the limiter, retries
 * 429s (Retry-After) and transient failures with a growing pause. */
static ts_err_t get(poller_t *P, acct_t *a, int r, const char *url, char *err, size_t errsz) {
    ts_err_t rc = TS_OK;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && !*P->stop; attempt++) {
        int64_t w;
        while ((w = ts_ratelimit_acquire(&a->rl[r], ts_now_mono_ms())) > 0 && !*P->stop)
            wait_ms(P, w);
        if (*P->stop) break;
        ts_kget_answer_t ans;
        rc = ts_kget_get(P->http, a->key, url, &P->body, &ans, err, errsz);
        int64_t now = ts_now_mono_ms();
        if (ans.status && ans.status != 429)
            ts_ratelimit_observe(&a->rl[r], now, ans.rl_limit, ans.rl_remaining, ans.rl_reset);
        if ((ans.status == 401 || ans.status == 403) && key_reread(P, a)) continue;
        if (rc == TS_OK || !ts_err_retryable(rc)) return rc;
        if (rc == TS_ERR_THROTTLED) {
            ts_ratelimit_block(&a->rl[r], now, ans.retry_after > 0 ? ans.retry_after : 1);
        } else {
            char ctx[300];
            snprintf(ctx, sizeof ctx, "\"account\":\"%s\",\"attempt\":%d", a->name, attempt + 1);
            ts_log(TS_LOG_WARN, PROG, ctx, "Klaviyo GET failed, retrying: %s", err);
            wait_ms(P, 500LL << attempt);
        }
    }
    return *P->stop ? ts_seterr(err, errsz, TS_ERR_TRANSIENT, "stopped") : rc;
}

/* The records of one page are collected first (key\0value\0 pairs), then
 * produced with the new watermark in one transaction. */
typedef struct {
    poller_t *P;
    const char *account;
} emit_ctx_t;

static ts_err_t emit(void *opaque, const ts_supp_record_t *r) {
    emit_ctx_t *x = opaque;
    ts_buf_t *pg = &x->P->page;
    const char *key = ts_supp_record_key(r);
    if (!key) return TS_OK; /* no identifier tillstream could match: nothing to say */
    if (ts_buf_append(pg, key, strlen(key) + 1)) return TS_ERR_NOMEM;
    ts_supp_record_json(x->account, r, pg);
    if (ts_buf_putc(pg, '\0')) return TS_ERR_NOMEM;
    x->P->page_n++;
    return TS_OK;
}

/* Produces the page's records (P->page) and the account's next state in one
 * transaction: the committed state with channel `ch`'s mark replaced by
 * `mark` (mark NULL: unchanged) and pass_at set when `pass_at` > 0. On
 * success the account's committed state becomes it. */
static ts_err_t commit_page(poller_t *P, acct_t *a, ts_supp_channel_t ch,
                            const ts_supp_mark_t *mark, int64_t pass_at, char *err, size_t errsz) {
    ts_supp_state_t next_st;
    if (ts_supp_state_copy(&next_st, &a->st)) return TS_ERR_NOMEM;
    ts_err_t rc = TS_OK;
    if (pass_at > 0) next_st.pass_at = pass_at;
    if (mark) {
        ts_supp_mark_t *m = &next_st.ch[ch];
        for (size_t i = 0; i < m->n_ids; i++) free(m->ids[i]);
        m->n_ids = 0;
        m->at = mark->at;
        for (size_t i = 0; i < mark->n_ids && !rc; i++)
            rc = ts_supp_mark_advance(m, mark->at, mark->ids[i]);
    }
    ts_buf_t sv = TS_BUF_INIT;
    if (!rc) ts_supp_state_write(&next_st, &sv);
    if (!rc && !sv.data) rc = TS_ERR_NOMEM;
    bool begun = false;
    if (!rc) begun = !(rc = ts_suppout_begin(P->out, err, errsz));
    const char *p = P->page.data, *end = p ? p + P->page.len : NULL;
    while (!rc && p && p < end) {
        const char *key = p, *val = key + strlen(key) + 1;
        size_t vl = strlen(val);
        p = val + vl + 1;
        rc = ts_suppout_produce(P->out, key, val, vl, err, errsz);
    }
    if (rc && begun && rc != TS_ERR_INTERNAL) /* nothing of the page becomes visible */
        ts_suppout_abort(P->out, TXN_TIMEOUT);
    /* commit aborts by itself when it fails */
    if (!rc) rc = ts_suppout_commit(P->out, a->name, sv.data, sv.len, TXN_TIMEOUT, err, errsz);
    ts_buf_free(&sv);
    if (rc) {
        ts_supp_state_clear(&next_st);
        return rc;
    }
    ts_metric_add(a->m_produced[ch], (double)P->page_n);
    ts_supp_state_clear(&a->st);
    a->st = next_st;
    return TS_OK;
}

typedef ts_err_t (*page_fn)(const char *, size_t, const ts_supp_mark_t *, ts_supp_mark_t *,
                            ts_supp_emit_fn, void *, ts_buf_t *, char *, size_t);

/* Follows a channel's pages from P->url (the first page's URL): each page
 * committed with the watermark after it. */
static ts_err_t follow(poller_t *P, acct_t *a, ts_supp_channel_t ch, int r, page_fn parse,
                       char *err, size_t errsz) {
    ts_supp_state_t from; /* the pass's starting mark: what earlier passes produced */
    if (ts_supp_state_copy(&from, &a->st)) return TS_ERR_NOMEM;
    ts_supp_mark_t to = {0};
    ts_err_t rc = TS_OK;
    size_t pages = 0, total = 0;
    emit_ctx_t x = {.P = P, .account = a->name};
    while (P->url.len && !rc) {
        rc = get(P, a, r, P->url.data, err, errsz);
        if (rc) break;
        /* `to` starts as the committed mark: ids at the same time add up */
        ts_supp_mark_t *cm = &a->st.ch[ch];
        for (size_t i = 0; i < to.n_ids; i++) free(to.ids[i]);
        to.n_ids = 0;
        to.at = cm->at;
        for (size_t i = 0; i < cm->n_ids && !rc; i++)
            rc = ts_supp_mark_advance(&to, cm->at, cm->ids[i]);
        ts_buf_reset(&P->page);
        P->page_n = 0;
        if (!rc)
            rc = parse(P->body.data ? P->body.data : "", P->body.len, &from.ch[ch], &to, emit, &x,
                       &P->next, err, errsz);
        if (!rc && (P->page_n || to.at != cm->at || to.n_ids != cm->n_ids))
            rc = commit_page(P, a, ch, &to, 0, err, errsz);
        if (rc) break;
        pages++;
        total += P->page_n;
        ts_buf_reset(&P->url);
        if (P->next.len) {
            if (!ts_supp_url_on_base(P->next.data, P->cfg->klaviyo_base_url)) {
                rc = ts_seterr(err, errsz, TS_ERR_REJECTED,
                               "links.next is not on klaviyo.base_url: not followed");
                break;
            }
            ts_buf_puts(&P->url, P->next.data);
        }
    }
    for (size_t i = 0; i < to.n_ids; i++) free(to.ids[i]);
    free(to.ids);
    ts_supp_state_clear(&from);
    char ctx[300];
    snprintf(ctx, sizeof ctx,
             "\"account\":\"%s\",\"channel\":\"%s\",\"pages\":%zu,\"produced\":%zu", a->name,
             ch == TS_SUPP_EMAIL ? "email" : "sms", pages, total);
    if (!rc) ts_log(TS_LOG_INFO, PROG, ctx, "suppressions polled");
    return rc;
}

/* The SMS unsubscribe metric's id (Get Metrics, all pages); "" when the
 * account has none yet (no SMS unsubscribe ever happened). */
static ts_err_t find_metric(poller_t *P, acct_t *a, char *err, size_t errsz) {
    ts_buf_reset(&P->url);
    ts_supp_metrics_url(&P->url, P->cfg->klaviyo_base_url);
    ts_buf_t id = TS_BUF_INIT;
    ts_err_t rc = TS_OK;
    while (P->url.len && !rc) {
        if ((rc = get(P, a, R_METRICS, P->url.data, err, errsz))) break;
        rc = ts_supp_metrics_page(P->body.data ? P->body.data : "", P->body.len,
                                  TS_SUPP_SMS_UNSUB_METRIC, &id, &P->next, err, errsz);
        ts_buf_reset(&P->url);
        if (rc || id.len) break;
        if (P->next.len && ts_supp_url_on_base(P->next.data, P->cfg->klaviyo_base_url))
            ts_buf_puts(&P->url, P->next.data);
    }
    if (!rc && id.len && id.len < sizeof a->metric_id) memcpy(a->metric_id, id.data, id.len + 1);
    ts_buf_free(&id);
    return rc;
}

/* Both channels of an account, every page committed. */
static ts_err_t poll_channels(poller_t *P, acct_t *a, char *err, size_t errsz) {
    ts_buf_reset(&P->url);
    ts_supp_profiles_url(&P->url, P->cfg->klaviyo_base_url, &a->st.ch[TS_SUPP_EMAIL],
                         P->cfg->suppressions_page_size);
    ts_err_t rc = follow(P, a, TS_SUPP_EMAIL, R_PROFILES, ts_supp_profiles_page, err, errsz);
    if (rc) return rc;
    if (!a->metric_id[0] && (rc = find_metric(P, a, err, errsz))) return rc;
    if (!a->metric_id[0]) {
        if (!a->metric_missing_logged) {
            char ctx[300];
            snprintf(ctx, sizeof ctx, "\"account\":\"%s\"", a->name);
            ts_log(TS_LOG_INFO, PROG, ctx,
                   "no \"%s\" metric in the account yet: no SMS unsubscribes to read",
                   TS_SUPP_SMS_UNSUB_METRIC);
            a->metric_missing_logged = true;
        }
        return TS_OK;
    }
    ts_buf_reset(&P->url);
    ts_supp_events_url(&P->url, P->cfg->klaviyo_base_url, a->metric_id, &a->st.ch[TS_SUPP_SMS],
                       EVENTS_PAGE);
    return follow(P, a, TS_SUPP_SMS, R_EVENTS, ts_supp_events_page, err, errsz);
}

/* A full pass over an account, then its pass_at stored (a transaction of
 * the state alone): the signal that the suppressions topic holds everything
 * Klaviyo had at that time (a first deployment's readers wait for it). */
static ts_err_t poll_account(poller_t *P, acct_t *a, char *err, size_t errsz) {
    int64_t started = ts_now_wall_ms();
    ts_err_t rc = poll_channels(P, a, err, errsz);
    if (rc) return rc;
    ts_buf_reset(&P->page);
    P->page_n = 0;
    return commit_page(P, a, TS_SUPP_EMAIL, NULL, started, err, errsz);
}

/* One pass over every account; returns the number of accounts that failed,
 * or -1 when the producer is fenced (another poller took over). */
static int pass(poller_t *P) {
    int failed = 0;
    for (size_t i = 0; i < P->n_acc && !*P->stop; i++) {
        acct_t *a = &P->acc[i];
        char err[600];
        ts_err_t rc = poll_account(P, a, err, sizeof err);
        if (rc == TS_OK) {
            ts_metric_set(a->m_last_ok, (double)ts_now_wall_ms() / 1000.0);
            continue;
        }
        if (*P->stop) break;
        failed++;
        ts_metric_add(a->m_errors, 1);
        char ctx[300];
        snprintf(ctx, sizeof ctx, "\"account\":\"%s\"", a->name);
        ts_log(TS_LOG_ERROR, PROG, ctx,
               "poll failed (the next pass resumes from the watermark): %s", err);
        if (rc == TS_ERR_INTERNAL) return -1;
    }
    return failed;
}

static void on_state(void *opaque, const char *account, const char *value, size_t len) {
    poller_t *P = opaque;
    for (size_t i = 0; i < P->n_acc; i++) {
        acct_t *a = &P->acc[i];
        if (strcmp(a->name, account)) continue;
        ts_supp_state_t st;
        char why[200];
        ts_supp_state_clear(&a->st);
        if (value && ts_supp_state_parse(value, len, &st, why, sizeof why) == TS_OK) {
            a->st = st;
        } else if (value) {
            char ctx[300];
            snprintf(ctx, sizeof ctx, "\"account\":\"%s\"", account);
            ts_log(TS_LOG_WARN, PROG, ctx, "watermark ignored (starting over): %s", why);
        }
    }
}

static void poller_destroy(poller_t *P) {
    ts_admin_destroy(P->admin);
    ts_suppout_destroy(P->out);
    ts_kget_destroy(P->http);
    for (size_t i = 0; i < P->n_acc; i++) {
        if (P->acc[i].key) {
            memset(P->acc[i].key, 0, strlen(P->acc[i].key));
            free(P->acc[i].key);
        }
        ts_supp_state_clear(&P->acc[i].st);
    }
    free(P->acc);
    ts_metrics_destroy(P->metrics);
    ts_buf_free(&P->body);
    ts_buf_free(&P->next);
    ts_buf_free(&P->url);
    ts_buf_free(&P->page);
}

/* Everything before the first pass: keys, metrics, admin, HTTP, Kafka,
 * the watermarks. Returns an exit code (0: go on). */
static int poller_setup(poller_t *P, const ts_config_t *cfg) {
    char err[600];
    P->cfg = cfg;
    if (!(P->metrics = ts_metrics_new()) || !(P->acc = calloc(cfg->n_accounts + 1, sizeof *P->acc)))
        return fprintf(stderr, "%s: out of memory\n", PROG), 1;
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        if (!cfg->accounts[i].active) continue;
        acct_t *a = &P->acc[P->n_acc];
        a->name = cfg->accounts[i].name;
        a->idx = i;
        if (ts_config_account_key(cfg, i, &a->key, err, sizeof err))
            return fprintf(stderr, "%s: %s\n", PROG, err), 2;
        P->n_acc++;
        for (int r = 0; r < R__COUNT; r++)
            ts_ratelimit_init(&a->rl[r], limits[r][0], limits[r][1], ts_now_mono_ms());
        ts_buf_t lb = TS_BUF_INIT;
        for (int ch = 0; ch < TS_SUPP__CHANNELS; ch++) {
            ts_buf_reset(&lb);
            ts_buf_puts(&lb, "account=\"");
            ts_metrics_label_escape(&lb, a->name);
            ts_buf_printf(&lb, "\",channel=\"%s\"", ch == TS_SUPP_EMAIL ? "email" : "sms");
            a->m_produced[ch] =
                ts_metrics_counter(P->metrics, "tillstream_suppressions_produced_total",
                                   "suppressions produced to topics.suppressions", lb.data);
        }
        ts_buf_reset(&lb);
        ts_buf_puts(&lb, "account=\"");
        ts_metrics_label_escape(&lb, a->name);
        ts_buf_putc(&lb, '"');
        a->m_last_ok =
            ts_metrics_gauge(P->metrics, "tillstream_suppressions_last_success_timestamp_seconds",
                             "end of the account's last successful poll (Unix time)", lb.data);
        a->m_errors = ts_metrics_counter(P->metrics, "tillstream_suppressions_poll_errors_total",
                                         "polls of the account that failed", lb.data);
        ts_buf_free(&lb);
    }
    if (cfg->admin_listen && *cfg->admin_listen) {
        if (!(P->admin = ts_admin_new(cfg->admin_listen, P->metrics, err, sizeof err)))
            return fprintf(stderr, "%s: admin.listen: %s\n", PROG, err), 2;
        /* a pass may wait out Klaviyo's limits: stale only well past an interval */
        ts_admin_set_stale_ms(P->admin, cfg->suppressions_interval_ms + 300000);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "\"port\":%d", ts_admin_port(P->admin));
        ts_log(TS_LOG_INFO, PROG, ctx, "admin listener on %s (/metrics /healthz /readyz)",
               cfg->admin_listen);
    }
    if (!(P->http = ts_kget_new(cfg, err, sizeof err)))
        return fprintf(stderr, "%s: %s\n", PROG, err), 1;
    ts_err_t rc;
    if (!(P->out = ts_suppout_new(cfg, TXN_TIMEOUT, &rc, err, sizeof err)))
        return fprintf(stderr, "%s: %s\n", PROG, err), rc == TS_ERR_CONFIG ? 2 : 1;
    if (ts_suppout_restore(P->out, on_state, P, TXN_TIMEOUT, err, sizeof err))
        return fprintf(stderr, "%s: %s\n", PROG, err), 1;
    for (size_t i = 0; i < P->n_acc; i++) {
        char ctx[300];
        snprintf(ctx, sizeof ctx, "\"account\":\"%s\",\"email_at\":%lld,\"sms_at\":%lld",
                 P->acc[i].name, (long long)P->acc[i].st.ch[TS_SUPP_EMAIL].at,
                 (long long)P->acc[i].st.ch[TS_SUPP_SMS].at);
        ts_log(TS_LOG_INFO, PROG, ctx, "watermark");
    }
    ts_admin_set_ready(P->admin, true);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "Usage: %s --config FILE [--once] [--check-config]\n"
            "\n"
            "Reads Klaviyo's suppressions (email: unsubscribes, spam complaints, bounces,\n"
            "manual suppressions; SMS: unsubscribes) of every account and produces each once\n"
            "to topics.suppressions, where tillstream-customers (and the POS) read them.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   JSON config (docs/configuration.md; suppressions.*)\n"
            "      --once          one pass over every account, then exit (0: all polled)\n"
            "      --check-config  check what a start checks, connect nowhere; exit 0 or 2\n"
            "  -h, --help          this help\n"
            "  -V, --version       print the version\n",
            PROG);
}

int ts_suppressions_main(int argc, char **argv) {
    const char *config_path = NULL;
    int once = 0, check = 0;
    const ts_app_opt_t opts[] = {{"once", .flag = &once, .value = 1},
                                 {"check-config", .flag = &check, .value = 1}};
    switch (ts_app_getopt(argc, argv, opts, sizeof opts / sizeof *opts, &config_path)) {
    case 0: break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("%s %s\n", PROG, TS_VERSION); return 0;
    default: usage(stderr); return 2;
    }
    if (!config_path || optind < argc) {
        fprintf(stderr, "%s: --config FILE is required (see --help)\n", PROG);
        return 2;
    }
    char err[600];
    ts_config_t *cfg = NULL;
    if (ts_config_load(config_path, &cfg, err, sizeof err)) {
        fprintf(stderr, "%s: config %s: %s\n", PROG, config_path, err);
        return 2;
    }
    if (check) {
        int code = 0;
        if (ts_checkconfig_run(cfg, TS_KIND_CUSTOMER, TS_CHECK_KEYS | TS_CHECK_ADMIN, err,
                               sizeof err)) {
            fprintf(stderr, "%s: %s\n", PROG, err);
            code = 2;
        } else {
            printf("%s: config %s: ok\n", PROG, config_path);
        }
        ts_config_destroy(cfg);
        return code;
    }
    ts_app_daemon_start(cfg);
    poller_t P = {.stop = &ts_app_stop};
    int code = poller_setup(&P, cfg);
    while (!code && !ts_app_stop) {
        int failed = pass(&P);
        if (failed < 0) {
            code = 1; /* fenced: another poller with our transactional.id is active */
            break;
        }
        if (once) {
            code = failed || ts_app_stop ? 1 : 0;
            break;
        }
        wait_ms(&P, cfg->suppressions_interval_ms);
    }
    poller_destroy(&P);
    ts_config_destroy(cfg);
    return code;
}
