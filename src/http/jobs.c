/*
 * jobs.c - Bulk Profile Import jobs followed to the end (jobs.h).
 *
 * A job moves through three reads, each one GET at a time on the
 * engine's multi handle, each taking a token from the lane's profiles_bulk
 * limiter: POLL (the job, until status complete; backoff from
 * POLL_FIRST_MS doubling to POLL_CAP_MS), ERRORS (import-errors, 100 a
 * page, links.next followed) when failed_count > 0, PROFILES (the job's
 * profiles, when a profile callback is set). Then its parts are settled.
 * Import errors are matched to parts by the identifiers of their
 * original_payload (external_id, else email, else phone_number), else by
 * the index in source.pointer (/data/attributes/profiles/data/N, counted
 * as the engine's body is: one profile per identity, the latest wins). An
 * error that names no part fails every part of the job not failed
 * otherwise (dead-lettered, never lost; see docs/decisions.md).
 *
 * Memory: one allocation per job for its parts and their identifiers, one
 * hash index over them (built when the first import error arrives), the
 * response buffer; details are allocated for failed parts only.
 */
#include "jobs.h"
#include "http.h"
#include "tillstream/hash.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/log.h"
#include "tillstream/metrics.h"

#define POLL_FIRST_MS  250
#define POLL_CAP_MS    5000
#define RETRY_BASE_MS  500
#define RETRY_CAP_MS   60000
#define MAX_INFLIGHT   4 /* follower GETs at once, all lanes */
#define MAX_RESP_BYTES (4 * 1024 * 1024)
#define PAGE_SIZE      100

typedef enum { PH_POLL, PH_ERRORS, PH_PROFILES, PH_DONE } phase_t;

typedef struct {
    void *handle;
    uint64_t token;
    const char *key, *email, *phone, *ext; /* into the job's arena; "" when absent */
    int32_t index;                         /* its profile's position in the body */
    int32_t next_hash;                     /* chain in the job's index */
    char *detail;                          /* failure (malloc'd), NULL: OK */
} part_t;

typedef struct job_s {
    struct job_s *next;
    int account;
    const char *name;
    ts_ratelimit_t *rl;
    struct curl_slist *const *headers; /* the lane's: its current key at each request */
    char id[128];
    phase_t phase;
    int64_t created_ms, next_ms;
    int poll_ms, attempt;
    char *cursor; /* next page's cursor (NULL: first page) */
    CURL *easy;
    bool busy;
    ts_buf_t resp;
    ts_http_rl_t hdrs; /* the rate-limit headers of the last response */
    bool unmatched;    /* an import error named no part */
    char *unmatched_detail;
    int32_t *tab; /* hash index: (kind, value) -> first part */
    size_t tab_cap;
    part_t *parts;
    size_t n;
} job_t;

struct ts_jobs_s {
    ts_jobs_opts_t o;
    char *base; /* klaviyo.base_url without trailing '/' */
    job_t *jobs;
    size_t n_jobs, n_parts;
    int inflight;
};

static int64_t now_ms(ts_jobs_t *j) {
    return j->o.clock ? j->o.clock(j->o.clock_opaque) : ts_clock_mono(NULL);
}

/* ---- metrics (get-or-create: jobs are few) ------------------------------------ */

static void count(ts_jobs_t *j, const job_t *jb, const char *name, const char *help,
                  const char *extra, double v) {
    if (!j->o.metrics) return;
    ts_buf_t lb = TS_BUF_INIT;
    ts_buf_puts(&lb, "account=\"");
    ts_metrics_label_escape(&lb, jb->name);
    ts_buf_putc(&lb, '"');
    if (extra) ts_buf_printf(&lb, ",%s", extra);
    ts_metric_add(ts_metrics_counter(j->o.metrics, name, help, lb.data), v);
    ts_buf_free(&lb);
}

static void count_request(ts_jobs_t *j, const job_t *jb, const char *cls) {
    char extra[96];
    snprintf(extra, sizeof extra, "endpoint=\"profiles_bulk_job\",status_class=\"%s\"", cls);
    count(j, jb, "tillstream_klaviyo_requests_total",
          "Klaviyo API requests by account, endpoint and status class", extra, 1);
}

static void count_job(ts_jobs_t *j, const job_t *jb, const char *outcome) {
    char extra[64];
    snprintf(extra, sizeof extra, "outcome=\"%s\"", outcome);
    count(j, jb, "tillstream_klaviyo_import_jobs_total",
          "Bulk Profile Import jobs followed to the end, by outcome (complete, reimported)", extra,
          1);
}

/* ---- lifecycle ------------------------------------------------------------------ */

ts_jobs_t *ts_jobs_new(const ts_jobs_opts_t *opts, char *errstr, size_t errstr_size) {
    ts_jobs_t *j = ts_zalloc(sizeof *j, NULL, errstr, errstr_size);
    if (!j) return NULL;
    j->o = *opts;
    const char *b = opts->cfg->klaviyo_base_url;
    size_t bl = strlen(b);
    while (bl > 0 && b[bl - 1] == '/') bl--;
    j->base = malloc(bl + 1);
    if (!j->base) {
        free(j);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(j->base, b, bl);
    j->base[bl] = '\0';
    return j;
}

static void job_free(ts_jobs_t *j, job_t *jb) {
    if (jb->easy) {
        if (jb->busy) {
            curl_multi_remove_handle(j->o.multi, jb->easy);
            j->inflight--;
        }
        curl_easy_cleanup(jb->easy);
    }
    for (size_t i = 0; i < jb->n; i++) free(jb->parts[i].detail);
    j->n_parts -= jb->n;
    j->n_jobs--;
    free(jb->cursor);
    free(jb->unmatched_detail);
    free(jb->tab);
    ts_buf_free(&jb->resp);
    free(jb); /* parts and arena live in the same block */
}

static void unlink_job(ts_jobs_t *j, job_t *jb) {
    for (job_t **pp = &j->jobs; *pp; pp = &(*pp)->next)
        if (*pp == jb) {
            *pp = jb->next;
            return;
        }
}

void ts_jobs_destroy(ts_jobs_t *j, void (*abandon)(void *ctx, void *handle), void *ctx) {
    if (!j) return;
    for (job_t *jb = j->jobs, *nx; jb; jb = nx) {
        nx = jb->next;
        for (size_t i = 0; abandon && i < jb->n; i++) abandon(ctx, jb->parts[i].handle);
        job_free(j, jb);
    }
    free(j->base);
    free(j);
}

size_t ts_jobs_count(const ts_jobs_t *j) { return j ? j->n_jobs : 0; }
size_t ts_jobs_parts(const ts_jobs_t *j) { return j ? j->n_parts : 0; }

/* ---- handing a job over ------------------------------------------------------------ */

static bool id_ok(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

ts_err_t ts_jobs_parse_id(const char *body, size_t len, char *id, size_t id_size) {
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "type");
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(data, "id");
    ts_err_t rc = TS_ERR_INVALID;
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "profile-bulk-import-job") &&
        cJSON_IsString(jid) && strlen(jid->valuestring) < id_size && id_ok(jid->valuestring)) {
        snprintf(id, id_size, "%s", jid->valuestring);
        rc = TS_OK;
    }
    cJSON_Delete(root);
    return rc;
}

static uint64_t fnv(char kind, const char *s, size_t n) {
    return ts_hash_finish(ts_hash_update(ts_hash_update(TS_HASH_INIT, &kind, 1), s, n));
}

static char *arena_put(char **at, ts_jstr_t s) {
    char *out = *at;
    if (s.p && s.n) memcpy(out, s.p, s.n);
    out[s.p ? s.n : 0] = '\0';
    *at += (s.p ? s.n : 0) + 1;
    return out;
}

/* The body's index of each part: one profile per identity, the latest
 * occurrence wins and keeps the batch's order (engine.c build_profiles_body). */
static bool number_parts(job_t *jb) {
    size_t cap = 16;
    while (cap < jb->n * 2) cap *= 2;
    int32_t *tab = malloc(cap * sizeof *tab);
    bool *last = calloc(jb->n ? jb->n : 1, sizeof *last);
    int32_t *lead = malloc((jb->n ? jb->n : 1) * sizeof *lead);
    if (!tab || !last || !lead) {
        free(tab);
        free(last);
        free(lead);
        return false;
    }
    memset(tab, -1, cap * sizeof *tab);
    for (size_t i = jb->n; i-- > 0;) {
        const char *k = jb->parts[i].key;
        size_t h = fnv('k', k, strlen(k)) & (cap - 1);
        for (; tab[h] >= 0; h = (h + 1) & (cap - 1))
            if (!strcmp(jb->parts[tab[h]].key, k)) break;
        if (tab[h] < 0) {
            tab[h] = (int32_t)i;
            last[i] = true;
        }
        lead[i] = tab[h];
    }
    int32_t idx = 0;
    for (size_t i = 0; i < jb->n; i++)
        if (last[i]) jb->parts[i].index = idx++;
    for (size_t i = 0; i < jb->n; i++) jb->parts[i].index = jb->parts[lead[i]].index;
    free(tab);
    free(last);
    free(lead);
    return true;
}

ts_err_t ts_jobs_follow(ts_jobs_t *j, int account, const char *name, ts_ratelimit_t *rl,
                        struct curl_slist *const *headers, const char *id,
                        const ts_job_entry_t *entries, size_t n) {
    size_t text = 0;
    for (size_t i = 0; i < n; i++)
        text += entries[i].key.n + entries[i].email.n + entries[i].phone.n +
                entries[i].external_id.n + 4;
    job_t *jb = calloc(1, sizeof *jb + n * sizeof(part_t) + text);
    if (!jb) return TS_ERR_NOMEM;
    jb->parts = (part_t *)(jb + 1);
    char *at = (char *)(jb->parts + n);
    for (size_t i = 0; i < n; i++) {
        part_t *p = &jb->parts[i];
        p->handle = entries[i].handle;
        p->token = entries[i].token;
        p->key = arena_put(&at, entries[i].key);
        p->email = arena_put(&at, entries[i].email);
        p->phone = arena_put(&at, entries[i].phone);
        p->ext = arena_put(&at, entries[i].external_id);
        p->next_hash = -1;
    }
    jb->n = n;
    if (!number_parts(jb)) {
        free(jb);
        return TS_ERR_NOMEM;
    }
    jb->account = account;
    jb->name = name;
    jb->rl = rl;
    jb->headers = headers;
    snprintf(jb->id, sizeof jb->id, "%s", id);
    jb->phase = PH_POLL;
    jb->created_ms = now_ms(j);
    jb->poll_ms = POLL_FIRST_MS;
    jb->next_ms = jb->created_ms + POLL_FIRST_MS;
    jb->next = j->jobs;
    j->jobs = jb;
    j->n_jobs++;
    j->n_parts += n;
    return TS_OK;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    job_t *jb = ud;
    size_t n = sz * nm;
    if (jb->resp.len + n > MAX_RESP_BYTES) return 0; /* abort: retried */
    ts_buf_append(&jb->resp, p, n);
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    job_t *jb = ud;
    ts_http_rl_header(p, sz * nm, &jb->hdrs);
    return sz * nm;
}

static ts_err_t start(ts_jobs_t *j, job_t *jb) {
    static const char *const what[] = {"", "import-errors", "profiles", ""};
    char url[1024];
    int w = snprintf(url, sizeof url, "%s/api/profile-bulk-import-jobs/%s/%s", j->base, jb->id,
                     what[jb->phase]);
    if (jb->phase != PH_POLL)
        w += snprintf(url + w, sizeof url - (size_t)w, "/?page%%5Bsize%%5D=%d%s%s", PAGE_SIZE,
                      jb->cursor ? "&page%5Bcursor%5D=" : "", jb->cursor ? jb->cursor : "");
    if (w <= 0 || (size_t)w >= sizeof url) return TS_ERR_INTERNAL;
    CURL *c =
        ts_http_klaviyo_easy(&jb->easy, j->o.cfg, &jb->resp, &jb->hdrs, on_body, on_header, jb);
    if (!c) return TS_ERR_NOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *jb->headers);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (curl_multi_add_handle(j->o.multi, c) != CURLM_OK) return TS_ERR_INTERNAL;
    jb->busy = true;
    j->inflight++;
    return TS_OK;
}

static void ctx_of(const job_t *jb, char *ctx, size_t n) {
    snprintf(ctx, n, "\"account\":\"%s\",\"job\":\"%s\",\"profiles\":%zu", jb->name, jb->id, jb->n);
}

/* Settles every part and forgets the job. */
static void finish(ts_jobs_t *j, job_t *jb) {
    size_t failed = 0;
    for (size_t i = 0; i < jb->n; i++) {
        part_t *p = &jb->parts[i];
        if (!p->detail && jb->unmatched) p->detail = strdup(jb->unmatched_detail);
        failed += p->detail != NULL;
    }
    char ctx[256];
    ctx_of(jb, ctx, sizeof ctx);
    ts_log(failed ? TS_LOG_WARN : TS_LOG_DEBUG, "engine", ctx,
           "profile import job complete: %zu of %zu records rejected inside the job", failed,
           jb->n);
    count_job(j, jb, "complete");
    if (failed)
        count(j, jb, "tillstream_klaviyo_import_rejected_total",
              "records whose profile Klaviyo rejected inside an import job", NULL, (double)failed);
    unlink_job(j, jb);
    for (size_t i = 0; i < jb->n; i++) {
        part_t *p = &jb->parts[i];
        j->o.settle(j->o.opaque, jb->account, p->handle, p->detail ? TS_ERR_REJECTED : TS_OK,
                    p->detail);
    }
    job_free(j, jb);
}

/* Puts the job's parts back on their import queue and forgets the job. */
static void reimport(ts_jobs_t *j, job_t *jb, const char *why) {
    char ctx[256];
    ctx_of(jb, ctx, sizeof ctx);
    ts_log(TS_LOG_WARN, "engine", ctx, "profile import job %s: importing its profiles again", why);
    count_job(j, jb, "reimported");
    unlink_job(j, jb);
    for (size_t i = 0; i < jb->n; i++) j->o.requeue(j->o.opaque, jb->account, jb->parts[i].handle);
    job_free(j, jb);
}

int64_t ts_jobs_dispatch(ts_jobs_t *j, int64_t now) {
    int64_t next = 1000;
    if (!j) return next;
    for (job_t *jb = j->jobs, *nx; jb; jb = nx) {
        nx = jb->next;
        if (jb->busy) continue;
        if (jb->phase == PH_POLL && now - jb->created_ms >= j->o.cfg->klaviyo_job_timeout_ms) {
            reimport(j, jb, "not complete within klaviyo.job_timeout_ms");
            continue;
        }
        if (jb->next_ms > now) {
            if (jb->next_ms - now < next) next = jb->next_ms - now;
            continue;
        }
        if (j->inflight >= MAX_INFLIGHT) continue;
        int64_t w = ts_ratelimit_acquire(jb->rl, now);
        if (w > 0) {
            if (w < next) next = w;
            continue;
        }
        if (start(j, jb) != TS_OK) {
            ts_ratelimit_refund(jb->rl);
            jb->next_ms = now + RETRY_BASE_MS;
        }
    }
    return next < 1 ? 1 : next;
}

/* ---- answers -------------------------------------------------------------------------- */

static const char *sget(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* links.next's page[cursor] value (URL-encoded as given), or NULL. Only
 * the cursor is taken: the request goes to our base URL, never to a host
 * named in a response. */
static char *next_cursor(const cJSON *root) {
    const char *nx = sget(cJSON_GetObjectItemCaseSensitive(root, "links"), "next");
    if (!nx) return NULL;
    const char *c = strstr(nx, "page%5Bcursor%5D=");
    size_t skip = 17;
    if (!c) {
        c = strstr(nx, "page[cursor]=");
        skip = 13;
    }
    if (!c) return NULL;
    c += skip;
    size_t n = strcspn(c, "&#");
    for (size_t i = 0; i < n; i++) /* unreserved or %-escapes only */
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || strchr("-._~%", c[i])))
            return NULL;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, c, n);
    out[n] = '\0';
    return out;
}

/* The identifiers of a part by kind: 0 external_id, 1 email, 2 phone,
 * 3 body index (decimal, into buf). */
static const char *ident(const part_t *p, int kind, char *buf, size_t n) {
    if (kind == 0) return p->ext;
    if (kind == 1) return p->email;
    if (kind == 2) return p->phone;
    snprintf(buf, n, "%d", p->index);
    return buf;
}

/* A multimap (kind, value) -> parts, open addressing: slot = part * 4 +
 * kind; equal keys lie on one probe sequence before the first empty slot. */
static bool build_index(job_t *jb) {
    size_t cap = 16;
    while (cap < jb->n * 8) cap *= 2; /* at most 4 keys per part, load <= 1/2 */
    jb->tab = malloc(cap * sizeof *jb->tab);
    if (!jb->tab) return false;
    jb->tab_cap = cap;
    memset(jb->tab, -1, cap * sizeof *jb->tab);
    for (size_t i = 0; i < jb->n; i++) {
        for (int k = 0; k < 4; k++) {
            char buf[16];
            const char *v = ident(&jb->parts[i], k, buf, sizeof buf);
            if (!*v) continue;
            size_t h = fnv((char)k, v, strlen(v)) & (cap - 1);
            while (jb->tab[h] >= 0) h = (h + 1) & (cap - 1);
            jb->tab[h] = (int32_t)(i * 4 + (size_t)k);
        }
    }
    return true;
}

/* Fails the parts whose identifier `kind` is `v`. Returns how many. */
static size_t mark(job_t *jb, int kind, const char *v, const char *detail) {
    size_t hits = 0;
    size_t h = fnv((char)kind, v, strlen(v)) & (jb->tab_cap - 1);
    for (; jb->tab[h] >= 0; h = (h + 1) & (jb->tab_cap - 1)) {
        int32_t s = jb->tab[h];
        if (s % 4 != kind) continue;
        part_t *p = &jb->parts[s / 4];
        char buf[16];
        if (strcmp(ident(p, kind, buf, sizeof buf), v)) continue;
        hits++;
        if (!p->detail) p->detail = strdup(detail);
    }
    return hits;
}

/* One import error: match it to parts (see the top of the file). */
static void on_import_error(job_t *jb, const cJSON *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(err, "attributes");
    const char *detail = sget(a, "detail"), *title = sget(a, "title");
    const char *ptr = sget(cJSON_GetObjectItemCaseSensitive(a, "source"), "pointer");
    char full[768];
    snprintf(full, sizeof full, "Klaviyo import job %s: %s%s%s%s", jb->id,
             detail  ? detail
             : title ? title
                     : "profile rejected",
             ptr ? " (at " : "", ptr ? ptr : "", ptr ? ")" : "");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(a, "original_payload");
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(op, "attributes");
    if (!cJSON_IsObject(oa)) oa = op; /* the resource, or its attributes */
    static const char *const keys[3] = {"external_id", "email", "phone_number"};
    for (int k = 0; k < 3; k++) {
        const char *v = sget(oa, keys[k]);
        if (v && *v && mark(jb, k, v, full)) return;
    }
    static const char pre[] = "/data/attributes/profiles/data/";
    if (ptr && !strncmp(ptr, pre, sizeof pre - 1)) {
        char idx[16];
        size_t n = strspn(ptr + sizeof pre - 1, "0123456789");
        if (n > 0 && n < sizeof idx) {
            memcpy(idx, ptr + sizeof pre - 1, n);
            idx[n] = '\0';
            if (mark(jb, 3, idx, full)) return;
        }
    }
    if (!jb->unmatched) {
        jb->unmatched = true;
        jb->unmatched_detail = strdup(full);
    }
}

static void retry_later(ts_jobs_t *j, job_t *jb, int64_t now, const char *why) {
    jb->attempt++;
    int64_t back = RETRY_BASE_MS;
    for (int i = 1; i < jb->attempt && back < RETRY_CAP_MS; i++) back *= 2;
    if (back > RETRY_CAP_MS) back = RETRY_CAP_MS;
    jb->next_ms = now + back;
    char ctx[256];
    ctx_of(jb, ctx, sizeof ctx);
    ts_log(TS_LOG_WARN, "engine", ctx,
           "reading the profile import job failed (%s); again in %lld ms", why, (long long)back);
    (void)j;
}

/* The job's status (PH_POLL). False when unusable; *settled when this
 * answer needs no further step (cancelled: imported again; still
 * queued or processing: polled again later). */
static bool on_status(ts_jobs_t *j, job_t *jb, const cJSON *data, int64_t now, bool *settled) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(data, "attributes");
    const char *st = sget(a, "status");
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(a, "failed_count");
    int failed = cJSON_IsNumber(fc) ? fc->valueint : 0; /* nullable */
    if (!st || !*st) return false;
    *settled = true;
    if (!strcmp(st, "cancelled")) {
        reimport(j, jb, "was cancelled");
        return true;
    }
    if (strcmp(st, "complete")) { /* queued, processing */
        jb->next_ms = now + jb->poll_ms;
        jb->poll_ms = jb->poll_ms * 2 > POLL_CAP_MS ? POLL_CAP_MS : jb->poll_ms * 2;
        return true;
    }
    *settled = false;
    jb->phase = failed > 0 ? PH_ERRORS : PH_PROFILES;
    if (jb->phase == PH_ERRORS && !build_index(jb)) jb->phase = PH_POLL; /* again later */
    return true;
}

/* One profile of a PH_PROFILES page to the on_profile hook. */
static ts_err_t page_profile(ts_jobs_t *j, job_t *jb, const cJSON *it) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "attributes");
    ts_job_profile_t p = {.account = jb->name,
                          .profile_id = sget(it, "id"),
                          .external_id = sget(a, "external_id"),
                          .email = sget(a, "email"),
                          .phone_number = sget(a, "phone_number")};
    if (!p.profile_id || !j->o.on_profile) return TS_OK;
    return j->o.on_profile(j->o.profile_opaque, &p);
}

/* A page of import errors (PH_ERRORS) or profiles (PH_PROFILES). False
 * when unusable; *settled when the page is to be read again (the hook
 * refused it or could not make it durable). */
static bool on_page(ts_jobs_t *j, job_t *jb, const cJSON *root, const cJSON *data, int64_t now,
                    bool *settled) {
    if (!cJSON_IsArray(data)) return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, data) {
        if (jb->phase == PH_ERRORS)
            on_import_error(jb, it);
        else if (page_profile(j, jb, it) != TS_OK)
            *settled = true;
        if (*settled) break;
    }
    if (!*settled && jb->phase == PH_PROFILES && j->o.on_profile &&
        j->o.on_profile(j->o.profile_opaque, NULL) != TS_OK)
        *settled = true; /* not durable */
    if (*settled) {
        jb->next_ms = now + RETRY_BASE_MS; /* this page again */
        return true;
    }
    free(jb->cursor);
    jb->cursor = next_cursor(root);
    if (!jb->cursor) jb->phase = jb->phase == PH_ERRORS ? PH_PROFILES : PH_DONE;
    return true;
}

/* A 200 of the current read. Returns false when the body is unusable. */
static bool on_answer(ts_jobs_t *j, job_t *jb, int64_t now) {
    cJSON *root = cJSON_ParseWithLength(jb->resp.data ? jb->resp.data : "", jb->resp.len);
    if (!root) return false;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    bool settled = false;
    bool ok = jb->phase == PH_POLL ? on_status(j, jb, data, now, &settled)
                                   : on_page(j, jb, root, data, now, &settled);
    cJSON_Delete(root);
    if (!ok || settled) return ok;
    if (jb->phase == PH_PROFILES && !j->o.on_profile) jb->phase = PH_DONE;
    if (jb->phase == PH_DONE) {
        finish(j, jb);
        return true;
    }
    jb->next_ms = now; /* the next read right away (limiter permitting) */
    return true;
}

bool ts_jobs_on_done(ts_jobs_t *j, CURL *easy, CURLcode cc) {
    if (!j) return false;
    job_t *jb = j->jobs;
    while (jb && !(jb->busy && jb->easy == easy)) jb = jb->next;
    if (!jb) return false;
    int64_t now = now_ms(j);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(j->o.multi, easy);
    jb->busy = false;
    j->inflight--;
    ts_ratelimit_observe(jb->rl, now, -1, jb->hdrs.remaining, jb->hdrs.reset);
    count_request(j, jb,
                  cc != CURLE_OK                  ? "error"
                  : status == 429                 ? "429"
                  : status >= 500                 ? "5xx"
                  : status >= 400                 ? "4xx"
                  : status >= 200 && status < 300 ? "2xx"
                                                  : "error");
    char why[96];
    if (cc == CURLE_OK && status == 200) {
        jb->attempt = 0;
        if (!on_answer(j, jb, now)) retry_later(j, jb, now, "unreadable answer");
        return true;
    }
    if (cc == CURLE_OK && status == 429) {
        long ra = jb->hdrs.retry_after > 0 ? jb->hdrs.retry_after : 1;
        ts_ratelimit_block(jb->rl, now, ra);
        jb->next_ms = now + ra * 1000;
        return true;
    }
    if (cc == CURLE_OK && status == 404) {
        reimport(j, jb, "is unknown to Klaviyo (404)");
        return true;
    }
    snprintf(why, sizeof why, "%s", cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
    if (cc == CURLE_OK) snprintf(why, sizeof why, "HTTP %ld", status);
    retry_later(j, jb, now, why);
    return true;
}
