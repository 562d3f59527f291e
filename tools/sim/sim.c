/*
 * sim.c - the Klaviyo simulator behind tillstream-klaviyo-sim.
 *
 * Behaves like Klaviyo (revision 2026-07-15) where tillstream depends on
 * it: auth per account key, the revision header, JSON:API body validation
 * answered with Klaviyo's error document, 202 on success, unique_id
 * de-duplication, per-account/per-endpoint rate limits with 429 +
 * Retry-After and RateLimit-* headers, and injected faults. All state is
 * behind one mutex; libmicrohttpd runs a thread per connection so added
 * latency does not serialise clients. docs/simulator.md lists what is
 * modelled and what is not.
 *
 * Deliberately an independent oracle: the endpoint paths, limits, batch
 * sizes and validation rules below are written from Klaviyo's OpenAPI
 * files again instead of being read from the core's src/klaviyo/klaviyo.h.
 * A fact the core gets wrong must make a test fail here, not pass on both
 * sides (the 100-profile cap of bulk unsubscribe was such a fact).
 */
#include "tillstream/sim.h"
#include "tillstream/hash.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tillstream/jw.h"
#include "tillstream/log.h"
#include "tillstream/model.h"
#include "sim_profiles.h"

#define MAX_BODY           (5 * 1024 * 1024)
#define MAX_PROFILE_IMPORT (100 * 1024) /* create_or_update_profile: 100KB payload */
#define MAX_STRING         (100 * 1024)
#define MAX_JOBS           4096 /* import jobs kept for GET (older ones: 404) */

static const char *const ep_paths[TS_SIM_EP__COUNT] = {"/api/event-bulk-create-jobs",
                                                       "/api/profile-bulk-import-jobs",
                                                       "/api/profile-subscription-bulk-create-jobs",
                                                       "/api/profile-subscription-bulk-delete-jobs",
                                                       "/api/events",
                                                       "/api/profile-import",
                                                       "/api/data-privacy-deletion-jobs",
                                                       "/api/profile-suppression-bulk-create-jobs",
                                                       "/api/profiles",
                                                       "/api/metrics",
                                                       "/api/events"};
static const char *const ep_ops[TS_SIM_EP__COUNT] = {"bulk_create_events",
                                                     "bulk_import_profiles",
                                                     "bulk_subscribe_profiles",
                                                     "bulk_unsubscribe_profiles",
                                                     "create_event",
                                                     "create_or_update_profile",
                                                     "request_profile_deletion",
                                                     "bulk_suppress_profiles",
                                                     "get_profiles",
                                                     "get_metrics",
                                                     "get_events"};
static const char *const ep_names[TS_SIM_EP__COUNT] = {
    "events_bulk",  "profiles_bulk",  "subscribe_bulk",   "unsubscribe_bulk",
    "create_event", "profile_import", "profile_deletion", "suppress_bulk",
    "get_profiles", "get_metrics",    "get_events"};
/* Klaviyo's published limits (x-klaviyo-ratelimit in the official files). */
static const ts_sim_limit_t default_limits[TS_SIM_EP__COUNT] = {
    {10, 150}, {10, 150}, {75, 750}, {75, 750}, {350, 3500}, {75, 750},
    {3, 60},   {75, 750}, {75, 750}, {10, 150}, {350, 3500}};

const char *ts_sim_ep_path(ts_sim_ep_t ep) {
    return ep >= 0 && ep < TS_SIM_EP__COUNT ? ep_paths[ep] : NULL;
}
const char *ts_sim_ep_op(ts_sim_ep_t ep) {
    return ep >= 0 && ep < TS_SIM_EP__COUNT ? ep_ops[ep] : NULL;
}

ts_err_t ts_sim_parse_limit(ts_sim_opts_t *opts, const char *spec) {
    const char *eq = strchr(spec, '=');
    double b, st;
    char tail;
    if (!eq || sscanf(eq + 1, "%lf/s,%lf/m%c", &b, &st, &tail) != 2 || b <= 0 || st <= 0)
        return TS_ERR_CONFIG;
    for (int ep = 0; ep < TS_SIM_EP__COUNT; ep++) {
        if (strlen(ep_names[ep]) == (size_t)(eq - spec) &&
            !strncmp(ep_names[ep], spec, (size_t)(eq - spec))) {
            opts->limits[ep].burst_per_s = b;
            opts->limits[ep].steady_per_min = st;
            return TS_OK;
        }
    }
    return TS_ERR_CONFIG;
}

bool ts_sim_revision_valid(const char *rev) {
    /* YYYY-MM-DD[.suffix] */
    if (!rev || strlen(rev) < 10) return false;
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? rev[i] != '-' : (rev[i] < '0' || rev[i] > '9')) return false;
    }
    int month = (rev[5] - '0') * 10 + (rev[6] - '0'), day = (rev[8] - '0') * 10 + (rev[9] - '0');
    if (month < 1 || month > 12 || day < 1 || day > 31) return false;
    if (!rev[10]) return true;
    if (rev[10] != '.' || !rev[11]) return false;
    for (const char *p = rev + 11; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* ---- a string set (de-duplication keys) --------------------------------- */
typedef struct {
    char **keys;
    size_t cap, n;
} strset_t;

static uint64_t hbytes(const char *s) { return ts_hash_str(s); }

/* Returns 1 if inserted, 0 if present, -1 on allocation failure. */
static int strset_add(strset_t *s, const char *k) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        char **nk = calloc(nc, sizeof *nk);
        if (!nk) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i]) continue;
            size_t j = hbytes(s->keys[i]) & (nc - 1);
            while (nk[j]) j = (j + 1) & (nc - 1);
            nk[j] = s->keys[i];
        }
        free(s->keys);
        s->keys = nk;
        s->cap = nc;
    }
    size_t j = hbytes(k) & (s->cap - 1);
    while (s->keys[j]) {
        if (!strcmp(s->keys[j], k)) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    if (!(s->keys[j] = strdup(k))) return -1;
    s->n++;
    return 1;
}

static void strset_free(strset_t *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof *s);
}

/* ---- state --------------------------------------------------------------- */
/* Sliding windows: the times of the requests admitted in the last second
 * (burst) and the last minute (steady), oldest first, in rings sized to
 * the limits. A request is admitted when both windows have room. */
typedef struct {
    int64_t *t;
    int cap, head, n;
} ring_t;

typedef struct {
    ring_t burst, steady;
} window_t;

#define N_CODES 600

typedef struct {
    char *name, *key;
    window_t win[TS_SIM_EP__COUNT];
    strset_t events;   /* profile|metric|unique_id */
    strset_t profiles; /* profile keys */
    ts_buf_t events_jsonl, profiles_jsonl, deletions_jsonl, suppressions_jsonl;
    ts_sim_stats_t st;
    uint64_t by_code[N_CODES]; /* requests answered, by HTTP status */
    cJSON *by_metric;          /* metric name -> count */
    sim_profiles_t *prof;      /* profiles, consent, suppressions */
    int concurrent;            /* API requests in progress (in their latency) */
} acct_t;

/* Bulk Profile Import jobs (see job_create). */
typedef struct {
    char *id, *email, *phone, *ext;
} jprof_t;

typedef struct {
    char *detail, *pointer, *payload; /* payload: the profile as sent (JSON) */
} jerr_t;

typedef struct job_s {
    uint64_t num; /* 0: free slot */
    size_t acct;
    int64_t created_ms, done_ms; /* sim clock; done_ms < 0: never */
    int64_t created_wall;
    int total;
    jprof_t *profs;
    size_t n_profs;
    jerr_t *errs;
    size_t n_errs;
} job_t;

struct ts_sim_s {
    ts_sim_opts_t o;
    char *dump_dir;
    char *throttle_account;
    char retired_before[16]; /* "" or YYYY-MM-DD */
    char *listen_host;
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    acct_t *acc;
    size_t n_acc;
    uint64_t rng;
    uint64_t seq, jobs;
    uint64_t unauthorized; /* 401s: no account to count them on */
    int port;
    struct job_s *jobring; /* MAX_JOBS import jobs, slot = number % MAX_JOBS */
    int job_delay_ms;      /* < 0: jobs never complete */
};

static int64_t sim_now(ts_sim_t *s) {
    return s->o.clock ? s->o.clock(s->o.clock_opaque) : ts_now_mono_ms();
}

static double rnd(ts_sim_t *s) { /* under s->mu */
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return (double)(x >> 11) / (double)(1ULL << 53);
}

ts_sim_t *ts_sim_new(const ts_sim_opts_t *opts, char *errstr, size_t errstr_size) {
    ts_sim_t *s = ts_zalloc(sizeof *s, NULL, errstr, errstr_size);
    if (!s) return NULL;
    s->o = *opts;
    if (opts->dump_dir) s->dump_dir = strdup(opts->dump_dir);
    s->o.dump_dir = NULL;
    if (opts->throttle_account) s->throttle_account = strdup(opts->throttle_account);
    s->o.throttle_account = NULL;
    snprintf(s->retired_before, sizeof s->retired_before, "%s",
             opts->retired_before ? opts->retired_before : "");
    s->o.retired_before = NULL;
    s->listen_host = strdup(opts->listen_host ? opts->listen_host : "127.0.0.1");
    s->o.listen_host = NULL;
    if (s->o.throttle_scale <= 0) s->o.throttle_scale = 1;
    if (s->o.rate_scale <= 0) s->o.rate_scale = 1;
    for (int i = 0; i < TS_SIM_EP__COUNT; i++)
        if (s->o.limits[i].burst_per_s <= 0 || s->o.limits[i].steady_per_min <= 0)
            s->o.limits[i] = default_limits[i];
    s->rng = opts->seed ? opts->seed : 0x9E3779B97F4A7C15ULL;
    s->job_delay_ms = opts->job_delay_ms ? opts->job_delay_ms : TS_SIM_DEFAULT_JOB_DELAY_MS;
    s->jobring = calloc(MAX_JOBS, sizeof *s->jobring);
    pthread_mutex_init(&s->mu, NULL);
    if (!s->listen_host || !s->jobring || (opts->dump_dir && !s->dump_dir) ||
        (opts->throttle_account && !s->throttle_account)) {
        ts_sim_destroy(s);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return s;
}

ts_err_t ts_sim_add_account(ts_sim_t *s, const char *name, const char *api_key) {
    acct_t *na = realloc(s->acc, (s->n_acc + 1) * sizeof *na);
    if (!na) return TS_ERR_NOMEM;
    s->acc = na;
    acct_t *a = &s->acc[s->n_acc++];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    a->key = strdup(api_key);
    a->by_metric = cJSON_CreateObject();
    a->prof = sim_profiles_new();
    return a->name && a->key && a->by_metric && a->prof ? TS_OK : TS_ERR_NOMEM;
}

static acct_t *find_account(ts_sim_t *s, const char *name) {
    for (size_t i = 0; i < s->n_acc; i++)
        if (!strcmp(s->acc[i].name, name)) return &s->acc[i];
    return NULL;
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                                const char *body, size_t len, const char *hdrs[][2]) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    for (int i = 0; hdrs && hdrs[i][0]; i++) MHD_add_response_header(r, hdrs[i][0], hdrs[i][1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void new_uuid(ts_sim_t *s, char *id, size_t n) {
    pthread_mutex_lock(&s->mu);
    snprintf(id, n, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(rnd(s) * 4294967295.0),
             (unsigned)(rnd(s) * 65535), (unsigned)(rnd(s) * 4095), (unsigned)(rnd(s) * 4095),
             (unsigned long long)(rnd(s) * 281474976710655.0));
    pthread_mutex_unlock(&s->mu);
}

/* The same JSON with a space after every ':' and ',' outside strings. */
static void space_json(const ts_buf_t *in, ts_buf_t *out) {
    bool str = false;
    for (size_t i = 0; i < in->len; i++) {
        char ch = in->data[i];
        ts_buf_putc(out, ch);
        if (str) {
            if (ch == '\\' && i + 1 < in->len)
                ts_buf_putc(out, in->data[++i]);
            else if (ch == '"')
                str = false;
        } else if (ch == '"') {
            str = true;
        } else if (ch == ':' || ch == ',') {
            ts_buf_putc(out, ' ');
        }
    }
}

/* A JSON:API error document of one error into b: a new id, status, code,
 * title, detail and a source object holding src_key: src_val (src_key
 * NULL: an empty source). */
static void error_doc(ts_sim_t *s, ts_buf_t *b, unsigned status, const char *code,
                      const char *title, const char *detail, const char *src_key,
                      const char *src_val) {
    ts_jw_t w;
    char id[40];
    new_uuid(s, id, sizeof id);
    ts_jw_init_obj(&w, b);
    ts_jw_key(&w, "errors");
    ts_jw_arr_open(&w);
    ts_jw_obj_open(&w);
    ts_jw_kv_str(&w, "id", id);
    ts_jw_key(&w, "status");
    ts_jw_int(&w, status);
    ts_jw_kv_str(&w, "code", code);
    ts_jw_kv_str(&w, "title", title);
    ts_jw_kv_str(&w, "detail", detail);
    ts_jw_key(&w, "source");
    ts_jw_obj_open(&w);
    if (src_key) ts_jw_kv_str(&w, src_key, src_val);
    ts_jw_obj_close(&w);
    ts_jw_obj_close(&w);
    ts_jw_arr_close(&w);
    ts_jw_obj_close(&w);
}

static enum MHD_Result send_error(ts_sim_t *s, struct MHD_Connection *c, unsigned status,
                                  const char *code, const char *title, const char *detail,
                                  const char *pointer, const char *hdrs[][2]) {
    ts_buf_t b = TS_BUF_INIT;
    error_doc(s, &b, status, code, title, detail, pointer && *pointer ? "pointer" : NULL, pointer);
    ts_buf_t sp = TS_BUF_INIT;
    if (s->o.spaced_json) space_json(&b, &sp);
    const ts_buf_t *body = s->o.spaced_json ? &sp : &b;
    enum MHD_Result r =
        send_buf(c, status, "application/vnd.api+json", body->data, body->len, hdrs);
    ts_buf_free(&b);
    ts_buf_free(&sp);
    return r;
}

/* ---- validation ----------------------------------------------------------- */

typedef struct {
    char *detail;
    size_t dsz;
    char *ptr;
    size_t psz;
} verr_t;

static int bad(verr_t *e, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(verr_t *e, const char *ptr, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, e->dsz, fmt, ap);
    va_end(ap);
    snprintf(e->ptr, e->psz, "%s", ptr);
    return -1;
}

static const cJSON *obj(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsObject(v) ? v : NULL;
}
static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static bool is_type(const cJSON *res, const char *type) {
    const char *t = str(res, "type");
    return t && !strcmp(t, type);
}
/* The request's primary resource: root's `data`, an object of `type`;
 * NULL with e filled when it is missing or of another type. */
static const cJSON *data_of(const cJSON *root, const char *type, verr_t *e) {
    const cJSON *data = obj(root, "data");
    if (!data)
        bad(e, "/data", "'data' is a required property");
    else if (!is_type(data, type))
        bad(e, "/data/type", "'type' must be '%s'", type);
    else
        return data;
    return NULL;
}

/* Any string over 100 KB, anywhere. */
static int check_strings(const cJSON *n, char *path, size_t plen, size_t cap, verr_t *e) {
    int idx = 0;
    for (const cJSON *c = n->child; c; c = c->next, idx++) {
        size_t l = plen;
        if (c->string)
            l += (size_t)snprintf(path + plen, cap - plen, "/%s", c->string);
        else
            l += (size_t)snprintf(path + plen, cap - plen, "/%d", idx);
        if (l >= cap) l = cap - 1;
        if (cJSON_IsString(c) && strlen(c->valuestring) > MAX_STRING)
            return bad(e, path, "A string exceeds the maximum allowed size of 100KB.");
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && check_strings(c, path, l, cap, e)) return -1;
        path[plen] = '\0';
    }
    return 0;
}

static bool e164(const char *p) {
    if (*p++ != '+') return false;
    if (*p == '0') return false;
    size_t n = 0;
    for (; *p; p++, n++)
        if (*p < '0' || *p > '9') return false;
    return n >= 7 && n <= 15;
}

/* Checks a profile resource object ({"type":"profile","id"?,"attributes"})
 * and renders the identity Klaviyo matches it on, for de-duplication:
 * email, else phone_number, else external_id, else id, else anonymous_id,
 * else _kx. `ptr` points at the resource's attributes. */
static int profile_key_ex(const cJSON *res, const char *ptr, char *out, size_t outsz, verr_t *e,
                          bool formats) {
    const cJSON *attrs = obj(res, "attributes");
    const char *email = str(attrs, "email"), *phone = str(attrs, "phone_number"),
               *ext = str(attrs, "external_id"), *id = str(res, "id"),
               *anon = str(attrs, "anonymous_id"), *kx = str(attrs, "_kx");
    char p[600];
    if (formats && email && (!strchr(email, '@') || email[0] == '@' || !strchr(email, '@')[1])) {
        snprintf(p, sizeof p, "%s/email", ptr);
        return bad(e, p, "Invalid email address");
    }
    if (formats && phone && !e164(phone)) {
        snprintf(p, sizeof p, "%s/phone_number", ptr);
        return bad(e, p, "Invalid phone number format (Example of a valid format: +12345678901)");
    }
    if (email && *email)
        snprintf(out, outsz, "e:%s", email);
    else if (phone && *phone)
        snprintf(out, outsz, "p:%s", phone);
    else if (ext && *ext)
        snprintf(out, outsz, "x:%s", ext);
    else if (id && *id)
        snprintf(out, outsz, "i:%s", id);
    else if (anon && *anon)
        snprintf(out, outsz, "a:%s", anon);
    else if (kx && *kx)
        snprintf(out, outsz, "k:%s", kx);
    else
        return bad(e, ptr,
                   "At least one identifier (email, phone_number, external_id, id) is required");
    return 0;
}

static int profile_key(const cJSON *res, const char *ptr, char *out, size_t outsz, verr_t *e) {
    return profile_key_ex(res, ptr, out, outsz, e, true);
}

typedef struct {
    const cJSON *event;   /* attributes */
    const cJSON *profile; /* the profile resource object */
    char pkey[300];
    char key[700];
    bool backfill, has_uid;
} vevent_t;

/* bad() at the pointer base + suffix ("/attributes/time"). */
static int bad_at(verr_t *e, const char *base, const char *suffix, const char *msg) {
    char ptr[700];
    snprintf(ptr, sizeof ptr, "%s%s", base, suffix);
    return bad(e, ptr, "%s", msg);
}

/* An event's metric: {"data":{"type":"metric","attributes":{"name":...}}}. */
static int validate_metric(const cJSON *ea, const char *eb, const char **name, verr_t *e) {
    const cJSON *md = obj(obj(ea, "metric"), "data");
    *name = md ? str(obj(md, "attributes"), "name") : NULL;
    if (!md || !is_type(md, "metric") || !*name)
        return bad_at(e, eb, "/attributes/metric",
                      "'metric' with data.type 'metric' and attributes.name is required");
    if (strlen(*name) >= 128 || !**name)
        return bad_at(e, eb, "/attributes/metric/data/attributes/name",
                      "Metric name must be between 1 and 127 characters");
    return 0;
}

/* properties is an object; value, value_currency and unique_id, when
 * present and not null, have their types. */
static int validate_event_types(const cJSON *ea, const char *eb, verr_t *e) {
    static const struct {
        const char *key, *suffix, *msg;
        cJSON_bool (*ok)(const cJSON *const);
    } typed[] = {
        {"value", "/attributes/value", "'value' must be a number", cJSON_IsNumber},
        {"value_currency", "/attributes/value_currency", "'value_currency' must be a string",
         cJSON_IsString},
        {"unique_id", "/attributes/unique_id", "'unique_id' must be a string", cJSON_IsString},
    };
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(ea, "properties")))
        return bad_at(e, eb, "/attributes/properties", "'properties' is a required object");
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ea, typed[i].key);
        if (v && !typed[i].ok(v) && !cJSON_IsNull(v))
            return bad_at(e, eb, typed[i].suffix, typed[i].msg);
    }
    return 0;
}

/* The event's time into *tms (now_wall when absent): ISO 8601, after 1990
 * and at most one year ahead. */
static int validate_event_time(const cJSON *ea, const char *eb, int64_t now_wall, int64_t *tms,
                               verr_t *e) {
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(ea, "time");
    char why[128];
    *tms = now_wall;
    if (!tm || cJSON_IsNull(tm)) return 0;
    if (!cJSON_IsString(tm) ||
        ts_time_parse_iso8601(tm->valuestring, strlen(tm->valuestring), tms, why, sizeof why))
        return bad_at(e, eb, "/attributes/time", "'time' must be an ISO 8601 date-time");
    if (*tms < 631152000000LL || *tms > now_wall + 365LL * 86400000)
        return bad_at(e, eb, "/attributes/time",
                      "The time must be after 1990 and at most one year in the future");
    return 0;
}

/* One event resource ({"type":"event","attributes":{...}}) at pointer `eb`. */
static int validate_event(const cJSON *ev, const char *eb, int64_t now_wall, vevent_t *v,
                          verr_t *e) {
    const cJSON *ea = obj(ev, "attributes");
    if (!is_type(ev, "event") || !ea)
        return bad_at(e, eb, "", "each event must be {\"type\":\"event\",\"attributes\":{...}}");
    const char *mname;
    int64_t tms;
    if (validate_metric(ea, eb, &mname, e) || validate_event_types(ea, eb, e) ||
        validate_event_time(ea, eb, now_wall, &tms, e))
        return -1;
    const char *uid = str(ea, "unique_id");
    v->event = ea;
    v->has_uid = uid != NULL;
    /* Without a unique_id Klaviyo keys the event on its time to the second. */
    if (uid)
        snprintf(v->key, sizeof v->key, "%s|%s|u:%s", v->pkey, mname, uid);
    else
        snprintf(v->key, sizeof v->key, "%s|%s|t:%lld", v->pkey, mname,
                 (long long)(tms >= 0 ? tms / 1000 : (tms - 999) / 1000));
    return 0;
}

static int check_backfill(const cJSON *attrs, const char *base, bool *out, verr_t *e) {
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(attrs, "backfill");
    if (bf && !cJSON_IsBool(bf) && !cJSON_IsNull(bf)) {
        char ptr[300];
        snprintf(ptr, sizeof ptr, "%s/attributes/backfill", base);
        return bad(e, ptr, "'backfill' must be a boolean");
    }
    *out = cJSON_IsTrue(bf);
    return 0;
}

/* Bulk Create Events. On success fills evs (caller frees) with n events. */
static int validate_events(const cJSON *root, int64_t now_wall, vevent_t **evs, size_t *n_evs,
                           verr_t *e) {
    char ptr[700];
    *evs = NULL;
    *n_evs = 0;
    const cJSON *data = data_of(root, "event-bulk-create-job", e);
    if (!data) return -1;
    const cJSON *batch = obj(obj(data, "attributes"), "events-bulk-create");
    const cJSON *entries = batch ? cJSON_GetObjectItemCaseSensitive(batch, "data") : NULL;
    if (!cJSON_IsArray(entries))
        return bad(e, "/data/attributes/events-bulk-create/data", "'data' must be an array");
    size_t total = 0;
    for (const cJSON *en = entries->child; en; en = en->next) {
        const cJSON *ev =
            cJSON_GetObjectItemCaseSensitive(obj(obj(en, "attributes"), "events"), "data");
        total += cJSON_IsArray(ev) ? (size_t)cJSON_GetArraySize(ev) : 0;
    }
    if (total > 1000)
        return bad(e, "/data/attributes/events-bulk-create/data",
                   "A maximum of 1000 events may be created per request (got %zu)", total);
    if (total == 0)
        return bad(e, "/data/attributes/events-bulk-create/data", "No events in request");
    vevent_t *out = calloc(total, sizeof *out);
    if (!out) return bad(e, "", "out of memory");
    strset_t seen = {0};
    size_t n = 0;
    int i = 0;
    for (const cJSON *en = entries->child; en; en = en->next, i++) {
        char base[160];
        snprintf(base, sizeof base, "/data/attributes/events-bulk-create/data/%d", i);
        if (!is_type(en, "event-bulk-create")) {
            snprintf(ptr, sizeof ptr, "%s/type", base);
            bad(e, ptr, "'type' must be 'event-bulk-create'");
            goto fail;
        }
        const cJSON *attrs = obj(en, "attributes");
        const cJSON *pd = obj(obj(attrs, "profile"), "data");
        snprintf(ptr, sizeof ptr, "%s/attributes/profile/data", base);
        if (!pd || !is_type(pd, "profile")) {
            bad(e, ptr, "'profile.data' must be a profile resource object");
            goto fail;
        }
        char pkey[300];
        snprintf(ptr, sizeof ptr, "%s/attributes/profile/data/attributes", base);
        if (profile_key(pd, ptr, pkey, sizeof pkey, e)) goto fail;
        bool backfill;
        if (check_backfill(attrs, base, &backfill, e)) goto fail;
        const cJSON *evs_ = cJSON_GetObjectItemCaseSensitive(obj(attrs, "events"), "data");
        if (!cJSON_IsArray(evs_)) {
            snprintf(ptr, sizeof ptr, "%s/attributes/events/data", base);
            bad(e, ptr, "'events.data' must be an array");
            goto fail;
        }
        int j = 0;
        for (const cJSON *ev = evs_->child; ev; ev = ev->next, j++) {
            char eb[256];
            snprintf(eb, sizeof eb, "%s/attributes/events/data/%d", base, j);
            vevent_t *v = &out[n++];
            v->profile = pd;
            v->backfill = backfill;
            snprintf(v->pkey, sizeof v->pkey, "%s", pkey);
            if (validate_event(ev, eb, now_wall, v, e)) goto fail;
            /* A unique_id repeated for the same profile and metric fails the
             * whole request; events without one that share a second collapse
             * into one (Klaviyo's default key), as across requests. */
            if (strset_add(&seen, v->key) == 0 && v->has_uid) {
                snprintf(ptr, sizeof ptr, "%s/attributes/unique_id", eb);
                bad(e, ptr,
                    "Duplicate unique_id for the same profile and metric within one request");
                goto fail;
            }
        }
    }
    strset_free(&seen);
    *evs = out;
    *n_evs = n;
    return 0;
fail:
    strset_free(&seen);
    free(out);
    return -1;
}

/* Create Event: one event whose profile sits in its attributes. */
static int validate_create_event(const cJSON *root, int64_t now_wall, vevent_t **evs, size_t *n_evs,
                                 verr_t *e) {
    *evs = NULL;
    *n_evs = 0;
    const cJSON *data = data_of(root, "event", e);
    if (!data) return -1;
    const cJSON *attrs = obj(data, "attributes");
    if (!attrs) return bad(e, "/data/attributes", "'attributes' is a required property");
    const cJSON *pd = obj(obj(attrs, "profile"), "data");
    if (!pd || !is_type(pd, "profile"))
        return bad(e, "/data/attributes/profile/data",
                   "'profile.data' must be a profile resource object");
    vevent_t *v = calloc(1, sizeof *v);
    if (!v) return bad(e, "", "out of memory");
    v->profile = pd;
    if (profile_key(pd, "/data/attributes/profile/data/attributes", v->pkey, sizeof v->pkey, e) ||
        check_backfill(attrs, "/data", &v->backfill, e) ||
        validate_event(data, "/data", now_wall, v, e)) {
        free(v);
        return -1;
    }
    *evs = v;
    *n_evs = 1;
    return 0;
}

/* Create or Update Profile: returns the profile resource after validation. */
static const cJSON *validate_profile_import(const cJSON *root, char *pkey, size_t pkey_size,
                                            verr_t *e) {
    const cJSON *data = data_of(root, "profile", e);
    if (!data) return NULL;
    if (!obj(data, "attributes")) {
        bad(e, "/data/attributes", "'attributes' is a required property");
        return NULL;
    }
    return profile_key(data, "/data/attributes", pkey, pkey_size, e) ? NULL : data;
}

/* Request Profile Deletion: one profile by email, phone_number or id. */
static const cJSON *validate_deletion(const cJSON *root, verr_t *e) {
    const cJSON *data = data_of(root, "data-privacy-deletion-job", e);
    if (!data) return NULL;
    const cJSON *prof = obj(obj(obj(data, "attributes"), "profile"), "data");
    if (!prof || !is_type(prof, "profile")) {
        bad(e, "/data/attributes/profile/data", "a profile resource is required");
        return NULL;
    }
    const cJSON *a = obj(prof, "attributes");
    const char *email = str(a, "email"), *phone = str(a, "phone_number"), *id = str(prof, "id");
    if (!email && !phone && !id) {
        bad(e, "/data/attributes/profile/data/attributes",
            "One of email, phone_number or id is required");
        return NULL;
    }
    char key[300];
    return profile_key(prof, "/data/attributes/profile/data/attributes", key, sizeof key, e) ? NULL
                                                                                             : prof;
}

/* consented_at of a subscribe's consent object (bulk_subscribe_profiles.json,
 * SubscriptionParameters and historical_import): "if the historical_import
 * flag is not included, providing any value for this field will raise an
 * error"; "If historical_import is set to true, the consented_at field is
 * required and must be in the past". */
static int check_consented_at(const cJSON *kind, const char *ptr, bool historical, int64_t now_wall,
                              verr_t *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kind, "consented_at");
    if (!v || cJSON_IsNull(v)) {
        if (historical)
            return bad(e, ptr, "'consented_at' is required when 'historical_import' is true");
        return 0;
    }
    if (!historical)
        return bad(e, ptr, "'consented_at' is only allowed when 'historical_import' is true");
    int64_t at = 0;
    if (!cJSON_IsString(v) ||
        ts_time_parse_iso8601(v->valuestring, strlen(v->valuestring), &at, NULL, 0) != TS_OK)
        return bad(e, ptr, "'consented_at' must be a date-time");
    if (at > now_wall) return bad(e, ptr, "'consented_at' must be in the past");
    return 0;
}

/* Every consent object under a subscription channel must say `want`;
 * subscribes (want SUBSCRIBED) are checked for consented_at as well. */
static int check_consents(const cJSON *a, const char *ptr_base, const char *want, bool historical,
                          int64_t now_wall, verr_t *e) {
    char ptr[600];
    const cJSON *subs = obj(a, "subscriptions");
    if (!subs || !subs->child) {
        snprintf(ptr, sizeof ptr, "%s/subscriptions", ptr_base);
        return bad(e, ptr, "'subscriptions' is required");
    }
    for (const cJSON *ch = subs->child; ch; ch = ch->next) {
        int n = 0;
        for (const cJSON *kind = ch->child; kind; kind = kind->next) {
            if (cJSON_IsNull(kind)) continue;
            const char *consent = str(kind, "consent");
            snprintf(ptr, sizeof ptr, "%s/subscriptions/%s/%s/consent", ptr_base, ch->string,
                     kind->string ? kind->string : "");
            if (!consent || strcmp(consent, want))
                return bad(e, ptr, "'consent' must be '%s'", want);
            snprintf(ptr, sizeof ptr, "%s/subscriptions/%s/%s/consented_at", ptr_base, ch->string,
                     kind->string ? kind->string : "");
            if (!strcmp(want, "SUBSCRIBED") &&
                check_consented_at(kind, ptr, historical, now_wall, e))
                return -1;
            n++;
        }
        snprintf(ptr, sizeof ptr, "%s/subscriptions/%s", ptr_base, ch->string);
        if (n == 0) return bad(e, ptr, "a channel needs at least one consent");
        if (!strcmp(ch->string, "email") && !str(a, "email"))
            return bad(e, ptr, "email subscriptions need an email");
        if (!strcmp(ch->string, "sms") && !str(a, "phone_number"))
            return bad(e, ptr, "sms subscriptions need a phone_number");
    }
    return 0;
}

/* Profiles / subscriptions jobs: returns the profiles array after validation. */
static const cJSON *validate_profiles(const cJSON *root, ts_sim_ep_t ep, int64_t now_wall,
                                      verr_t *e) {
    static const char *const types[TS_SIM_EP__COUNT] = {
        [TS_SIM_EP_PROFILES_BULK] = "profile-bulk-import-job",
        [TS_SIM_EP_SUBSCRIBE_BULK] = "profile-subscription-bulk-create-job",
        [TS_SIM_EP_UNSUBSCRIBE_BULK] = "profile-subscription-bulk-delete-job",
        [TS_SIM_EP_SUPPRESS_BULK] = "profile-suppression-bulk-create-job"};
    char ptr[256];
    const cJSON *data = data_of(root, types[ep], e);
    if (!data) return NULL;
    const cJSON *arr =
        cJSON_GetObjectItemCaseSensitive(obj(obj(data, "attributes"), "profiles"), "data");
    if (!cJSON_IsArray(arr)) {
        bad(e, "/data/attributes/profiles/data", "'profiles.data' must be an array");
        return NULL;
    }
    /* bulk_import_profiles: 10,000; bulk_subscribe_profiles: 1,000;
     * bulk_unsubscribe_profiles and bulk_suppress_profiles: 100 ("Maximum
     * number of profiles per call") */
    int n = cJSON_GetArraySize(arr), max = ep == TS_SIM_EP_PROFILES_BULK      ? 10000
                                           : ep == TS_SIM_EP_UNSUBSCRIBE_BULK ? 100
                                           : ep == TS_SIM_EP_SUPPRESS_BULK    ? 100
                                                                              : 1000;
    if (n == 0 || n > max) {
        bad(e, "/data/attributes/profiles/data", "between 1 and %d profiles are allowed", max);
        return NULL;
    }
    const cJSON *hist =
        cJSON_GetObjectItemCaseSensitive(obj(data, "attributes"), "historical_import");
    if (hist && !cJSON_IsBool(hist) && !cJSON_IsNull(hist)) {
        bad(e, "/data/attributes/historical_import", "'historical_import' must be a boolean");
        return NULL;
    }
    bool historical = cJSON_IsTrue(hist);
    int i = 0;
    for (const cJSON *p = arr->child; p; p = p->next, i++) {
        snprintf(ptr, sizeof ptr, "/data/attributes/profiles/data/%d", i);
        const cJSON *a = obj(p, "attributes");
        if (!is_type(p, "profile") || !a) {
            bad(e, ptr, "each profile must be {\"type\":\"profile\",\"attributes\":{...}}");
            return NULL;
        }
        char key[300];
        snprintf(ptr, sizeof ptr, "/data/attributes/profiles/data/%d/attributes", i);
        /* Bulk Profile Import checks email and phone formats inside the
         * job (import-errors), not at the request */
        if (profile_key_ex(p, ptr, key, sizeof key, e, ep != TS_SIM_EP_PROFILES_BULK)) return NULL;
        if (ep == TS_SIM_EP_SUPPRESS_BULK && !str(a, "email")) {
            bad(e, ptr, "'email' is a required property");
            return NULL;
        }
        if (ep != TS_SIM_EP_PROFILES_BULK && ep != TS_SIM_EP_SUPPRESS_BULK &&
            check_consents(a, ptr, ep == TS_SIM_EP_SUBSCRIBE_BULK ? "SUBSCRIBED" : "UNSUBSCRIBED",
                           historical, now_wall, e))
            return NULL;
    }
    return arr;
}

typedef struct {
    vevent_t *evs; /* events endpoints (owned) */
    size_t n_evs;
    const cJSON *profiles; /* bulk profile/subscription jobs: the array */
    const cJSON *profile;  /* profile import: the resource */
    const cJSON *deletion; /* profile deletion: the profile resource */
    char pkey[300];        /* profile import: its identity */
} vres_t;

/* Validates a parsed body for `ep`; fills out (evs owned by the caller). */
static int validate_body(ts_sim_ep_t ep, const cJSON *root, int64_t now_wall, vres_t *out,
                         verr_t *e) {
    char path[1024] = "";
    memset(out, 0, sizeof *out);
    if (check_strings(root, path, 0, sizeof path, e)) return -1;
    switch (ep) {
    case TS_SIM_EP_EVENTS_BULK: return validate_events(root, now_wall, &out->evs, &out->n_evs, e);
    case TS_SIM_EP_CREATE_EVENT:
        return validate_create_event(root, now_wall, &out->evs, &out->n_evs, e);
    case TS_SIM_EP_PROFILE_IMPORT:
        return (out->profile = validate_profile_import(root, out->pkey, sizeof out->pkey, e)) ? 0
                                                                                              : -1;
    case TS_SIM_EP_PROFILE_DELETION: return (out->deletion = validate_deletion(root, e)) ? 0 : -1;
    default: return (out->profiles = validate_profiles(root, ep, now_wall, e)) ? 0 : -1;
    }
}

int ts_sim_validate(ts_sim_ep_t ep, const char *body, size_t len, int64_t now_wall_ms, char *detail,
                    size_t detail_size, char *pointer, size_t pointer_size) {
    verr_t e = {detail, detail_size, pointer, pointer_size};
    if (ep < 0 || ep >= TS_SIM_EP__COUNT) return bad(&e, "", "unknown endpoint");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) return bad(&e, "", "Request body is not valid JSON");
    vres_t v;
    int r = validate_body(ep, root, now_wall_ms, &v, &e);
    free(v.evs);
    cJSON_Delete(root);
    return r;
}

int ts_sim_validate_events(const char *body, size_t len, char *detail, size_t detail_size,
                           char *pointer, size_t pointer_size) {
    return ts_sim_validate(TS_SIM_EP_EVENTS_BULK, body, len, ts_now_wall_ms(), detail, detail_size,
                           pointer, pointer_size);
}

/* ---- rate limiting -------------------------------------------------------- */

static void ring_expire(ring_t *r, int64_t older_than) {
    while (r->n > 0 && r->t[r->head] <= older_than) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

static int ring_ready(ring_t *r, int cap) {
    if (r->cap == cap) return 0;
    free(r->t);
    r->t = calloc((size_t)cap, sizeof *r->t);
    r->cap = r->t ? cap : 0;
    r->head = r->n = 0;
    return r->t ? 0 : -1;
}

static void ring_push(ring_t *r, int64_t now) {
    r->t[(r->head + r->n) % r->cap] = now;
    r->n++;
}

/* Under s->mu. Returns 0 when admitted, else seconds to wait (>= 1). The
 * RateLimit-* values describe the steady window. */
static int admit(ts_sim_t *s, acct_t *a, ts_sim_ep_t ep, int64_t now, int *limit, int *remaining,
                 int *reset) {
    window_t *w = &a->win[ep];
    double scale = s->o.rate_scale;
    if (s->throttle_account && !strcmp(a->name, s->throttle_account)) scale *= s->o.throttle_scale;
    int burst = (int)ceil(s->o.limits[ep].burst_per_s * scale);
    int steady = (int)ceil(s->o.limits[ep].steady_per_min * scale);
    if (burst < 1) burst = 1;
    if (steady < 1) steady = 1;
    *limit = steady;
    *remaining = 0;
    *reset = 60;
    if (ring_ready(&w->burst, burst) || ring_ready(&w->steady, steady)) return 1;
    ring_expire(&w->burst, now - 1000);
    ring_expire(&w->steady, now - 60000);
    int64_t steady_free_at = w->steady.n ? w->steady.t[w->steady.head] + 60000 : now;
    *reset = (int)((steady_free_at - now + 999) / 1000);
    if (w->steady.n >= steady) return *reset > 0 ? *reset : 1;
    if (w->burst.n >= burst) {
        *remaining = steady - w->steady.n;
        int r = (int)((w->burst.t[w->burst.head] + 1000 - now + 999) / 1000);
        return r > 0 ? r : 1;
    }
    ring_push(&w->burst, now);
    ring_push(&w->steady, now);
    *remaining = steady - w->steady.n;
    *reset = (int)((w->steady.t[w->steady.head] + 60000 - now + 999) / 1000);
    return 0;
}

/* ---- recording ------------------------------------------------------------ */

typedef struct {
    ts_buf_t body;
    bool too_big;
} req_t;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    req_t *r = *con_cls;
    if (r) {
        ts_buf_free(&r->body);
        free(r);
    }
    *con_cls = NULL;
}

static void dump_body(ts_sim_t *s, ts_sim_ep_t ep, const req_t *r) {
    if (!s->dump_dir) return;
    pthread_mutex_lock(&s->mu);
    uint64_t seq = s->seq++;
    pthread_mutex_unlock(&s->mu);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%06llu.json", s->dump_dir, ep_ops[ep],
             (unsigned long long)seq);
    FILE *f = fopen(path, "w");
    if (!f) {
        ts_log(TS_LOG_WARN, "klaviyo-sim", NULL, "cannot write %s: %s", path, strerror(errno));
        return;
    }
    fwrite(r->body.data ? r->body.data : "", 1, r->body.len, f);
    fclose(f);
}

/* Under s->mu: one request answered with `status` (0 = dropped). */
static void count_status(acct_t *a, unsigned status) {
    a->st.requests++;
    if (status < N_CODES) a->by_code[status]++;
    if (status == 0)
        a->st.dropped++;
    else if (status == 429)
        a->st.throttled_429++;
    else if (status == 400)
        a->st.rejected_400++;
    else if (status >= 500)
        a->st.failed_5xx++;
    else if (status >= 400)
        a->st.rejected_other_4xx++;
    else if (status >= 200 && status < 300)
        a->st.accepted++;
}

static void append_line(ts_buf_t *b, cJSON *line) {
    char *txt = cJSON_PrintUnformatted(line);
    if (txt) {
        ts_buf_puts(b, txt);
        ts_buf_putc(b, '\n');
        free(txt);
    }
}

static void record_events(ts_sim_t *s, acct_t *a, const vevent_t *evs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int r = strset_add(&a->events, evs[i].key);
        if (r == 0) {
            a->st.duplicates_ignored++;
            continue;
        }
        a->st.events_recorded++;
        if (evs[i].backfill) a->st.backfill_events++;
        const char *m = str(obj(obj(obj(evs[i].event, "metric"), "data"), "attributes"), "name");
        cJSON *cnt = cJSON_GetObjectItemCaseSensitive(a->by_metric, m);
        if (cnt)
            cJSON_SetNumberValue(cnt, cnt->valuedouble + 1);
        else
            cJSON_AddNumberToObject(a->by_metric, m, 1);
        if (s->o.summary_only) continue;
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "metric", m);
        const char *uid = str(evs[i].event, "unique_id");
        if (uid) cJSON_AddStringToObject(line, "unique_id", uid);
        cJSON_AddStringToObject(line, "profile_key", evs[i].pkey);
        const cJSON *pattrs = obj(evs[i].profile, "attributes");
        cJSON_AddItemToObject(line, "profile",
                              pattrs ? cJSON_Duplicate(pattrs, 1) : cJSON_CreateObject());
        const cJSON *keep[] = {cJSON_GetObjectItemCaseSensitive(evs[i].event, "time"),
                               cJSON_GetObjectItemCaseSensitive(evs[i].event, "value"),
                               cJSON_GetObjectItemCaseSensitive(evs[i].event, "value_currency"),
                               cJSON_GetObjectItemCaseSensitive(evs[i].event, "properties")};
        for (size_t k = 0; k < 4; k++)
            if (keep[k]) cJSON_AddItemToObject(line, keep[k]->string, cJSON_Duplicate(keep[k], 1));
        cJSON_AddBoolToObject(line, "backfill", evs[i].backfill);
        append_line(&a->events_jsonl, line);
        cJSON_Delete(line);
    }
}

/* Returns 1 when the profile is new to the account. */
static int record_profile(ts_sim_t *s, acct_t *a, const cJSON *res, const char *key) {
    int isnew = strset_add(&a->profiles, key) == 1;
    a->st.profiles = a->profiles.n;
    const cJSON *at = obj(res, "attributes");
    if (!s->o.summary_only && at) append_line(&a->profiles_jsonl, (cJSON *)at);
    return isnew;
}

static void record_profiles(ts_sim_t *s, acct_t *a, ts_sim_ep_t ep, const cJSON *root,
                            const cJSON *arr) {
    const cJSON *job = obj(obj(root, "data"), "attributes");
    const char *source = str(job, "custom_source");
    bool historical = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job, "historical_import"));
    int64_t now = ts_now_wall_ms();
    for (const cJSON *p = arr->child; p; p = p->next) {
        if (ep == TS_SIM_EP_SUPPRESS_BULK) {
            a->st.suppressed++;
            if (s->o.summary_only) continue;
            cJSON *line = cJSON_CreateObject();
            cJSON_AddStringToObject(line, "email", str(obj(p, "attributes"), "email"));
            append_line(&a->suppressions_jsonl, line);
            cJSON_Delete(line);
            continue;
        }
        sim_profiles_subscription(a->prof, obj(p, "attributes"), ep == TS_SIM_EP_SUBSCRIBE_BULK,
                                  source, historical, now, &a->st.suppressions_removed);
        const cJSON *subs = obj(obj(p, "attributes"), "subscriptions");
        for (const cJSON *ch = subs ? subs->child : NULL; ch; ch = ch->next) {
            if (ep == TS_SIM_EP_SUBSCRIBE_BULK) {
                a->st.subscribed++;
                a->st.historical_subscribed += historical;
            } else
                a->st.unsubscribed++;
        }
    }
}

/* ---- import jobs ------------------------------------------------------------ */
/* A Bulk Profile Import job is run when it is created (its valid profiles
 * are recorded then) and reported when its delay has passed: until then
 * GET answers queued / processing with no counts, no errors, no profiles;
 * afterwards complete, with failed_count, import-errors and the job's
 * profiles under stable ids. */

static void job_clear(job_t *j) {
    for (size_t i = 0; i < j->n_profs; i++) {
        free(j->profs[i].id);
        free(j->profs[i].email);
        free(j->profs[i].phone);
        free(j->profs[i].ext);
    }
    for (size_t i = 0; i < j->n_errs; i++) {
        free(j->errs[i].detail);
        free(j->errs[i].pointer);
        free(j->errs[i].payload);
    }
    free(j->profs);
    free(j->errs);
    memset(j, 0, sizeof *j);
}

static char *dup_or_null(const char *v) { return v ? strdup(v) : NULL; }

/* Inside an import job Klaviyo also refuses E.164-shaped numbers that no
 * country has: an unassigned calling code (a few of them: +0, +28, +83,
 * +89, +990, +997, +999), or a national number of the wrong length for
 * Australia (+61: 9 digits, 10 for the 1300/1800 numbers) and the NANP (+1:
 * 10 digits). */
static int phone_unassigned(const cJSON *p, const char *base, verr_t *e) {
    const char *ph = str(obj(p, "attributes"), "phone_number");
    if (!ph) return 0;
    static const char *const unassigned[] = {"+0", "+28", "+83", "+89", "+990", "+997", "+999"};
    bool no = false;
    for (size_t i = 0; i < sizeof unassigned / sizeof *unassigned; i++)
        no |= !strncmp(ph, unassigned[i], strlen(unassigned[i]));
    size_t n = strlen(ph);
    if (!strncmp(ph, "+61", 3) && n != 3 + 9 && !(n == 3 + 10 && ph[3] == '1')) no = true;
    if (!strncmp(ph, "+1", 2) && n != 2 + 10) no = true;
    if (!no) return 0;
    char ptr[160];
    snprintf(ptr, sizeof ptr, "%s/phone_number", base);
    return bad(e, ptr, "Invalid phone number: not a number in any country's numbering plan");
}

/* Under s->mu. Returns the job's number. */
static uint64_t job_create(ts_sim_t *s, acct_t *a, const cJSON *arr) {
    uint64_t num = ++s->jobs;
    job_t *j = &s->jobring[num % MAX_JOBS];
    job_clear(j);
    j->num = num;
    j->acct = (size_t)(a - s->acc);
    j->created_ms = sim_now(s);
    j->created_wall = ts_now_wall_ms();
    j->done_ms = s->job_delay_ms < 0 ? -1 : j->created_ms + s->job_delay_ms;
    j->total = cJSON_GetArraySize(arr);
    size_t n = (size_t)(j->total > 0 ? j->total : 1);
    j->errs = calloc(n, sizeof *j->errs);
    j->profs = s->o.summary_only ? NULL : calloc(n, sizeof *j->profs);
    a->st.import_jobs++;
    int i = 0;
    for (const cJSON *p = arr->child; p; p = p->next, i++) {
        char key[300], d[256], ptr[300], base[96];
        snprintf(base, sizeof base, "/data/attributes/profiles/data/%d/attributes", i);
        verr_t e = {d, sizeof d, ptr, sizeof ptr};
        if (profile_key(p, base, key, sizeof key, &e) || phone_unassigned(p, base, &e)) {
            a->st.import_errors++;
            if (j->errs) {
                jerr_t *x = &j->errs[j->n_errs++];
                x->detail = strdup(d);
                x->pointer = strdup(ptr);
                x->payload = cJSON_PrintUnformatted(p);
            }
            continue;
        }
        record_profile(s, a, p, key);
        sim_profiles_import(a->prof, obj(p, "attributes"), j->created_wall);
        if (!j->profs) continue;
        const cJSON *at = obj(p, "attributes");
        char id[40];
        snprintf(id, sizeof id, "sim-%016llx", (unsigned long long)hbytes(key));
        jprof_t *q = &j->profs[j->n_profs++];
        q->id = strdup(id);
        q->email = dup_or_null(str(at, "email"));
        q->phone = dup_or_null(str(at, "phone_number"));
        q->ext = dup_or_null(str(at, "external_id"));
    }
    return num;
}

/* Under s->mu: the job named `id` of account `a`, or NULL. */
static job_t *job_find(ts_sim_t *s, const acct_t *a, const char *id, size_t idlen) {
    char buf[40];
    if (idlen >= sizeof buf) return NULL;
    memcpy(buf, id, idlen);
    buf[idlen] = '\0';
    unsigned long long num;
    char tail;
    if (sscanf(buf, "sim-job-%llu%c", &num, &tail) != 1 || num == 0) return NULL;
    job_t *j = &s->jobring[num % MAX_JOBS];
    return j->num == num && j->acct == (size_t)(a - s->acc) ? j : NULL;
}

static const char *job_status(ts_sim_t *s, const job_t *j, int64_t now) {
    if (j->done_ms >= 0 && now >= j->done_ms) return "complete";
    if (j->done_ms < 0) return "processing";
    return now - j->created_ms < (j->done_ms - j->created_ms) / 2 ? "queued" : "processing";
    (void)s;
}

static void iso(int64_t ms, char *out, size_t n) { ts_time_format_iso8601(ms, out, n); }

/* The job resource (GetProfileImportJobResponseCompoundDocument's data). */
static void job_resource(ts_sim_t *s, ts_jw_t *w, const job_t *j, int64_t now) {
    char id[40], t[40], self[256];
    snprintf(id, sizeof id, "sim-job-%llu", (unsigned long long)j->num);
    snprintf(self, sizeof self, "http://%s:%d/api/profile-bulk-import-jobs/%s/", s->listen_host,
             s->port, id);
    const char *st = job_status(s, j, now);
    bool done = !strcmp(st, "complete");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "type", "profile-bulk-import-job");
    ts_jw_kv_str(w, "id", id);
    ts_jw_key(w, "attributes");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "status", st);
    iso(j->created_wall, t, sizeof t);
    ts_jw_kv_str(w, "created_at", t);
    ts_jw_key(w, "total_count");
    ts_jw_int(w, j->total);
    ts_jw_key(w, "completed_count");
    ts_jw_int(w, done ? j->total - (int64_t)j->n_errs : 0);
    ts_jw_key(w, "failed_count");
    ts_jw_int(w, done ? (int64_t)j->n_errs : 0);
    ts_jw_key(w, "completed_at");
    if (done) {
        iso(j->created_wall + (j->done_ms - j->created_ms), t, sizeof t);
        ts_jw_str(w, t);
    } else {
        ts_jw_null(w);
    }
    ts_jw_key(w, "started_at");
    if (strcmp(st, "queued")) {
        iso(j->created_wall, t, sizeof t);
        ts_jw_str(w, t);
    } else {
        ts_jw_null(w);
    }
    iso(j->created_wall + 7LL * 24 * 3600 * 1000, t, sizeof t);
    ts_jw_kv_str(w, "expires_at", t);
    ts_jw_obj_close(w);
    ts_jw_key(w, "links");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "self", self);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

/* ---- HTTP ------------------------------------------------------------------ */

static bool json_ctype(const char *ct) {
    if (!ct) return false;
    size_t n = strcspn(ct, "; ");
    return (n == 24 && !strncasecmp(ct, "application/vnd.api+json", 24)) ||
           (n == 16 && !strncasecmp(ct, "application/json", 16));
}

static enum MHD_Result reject(ts_sim_t *s, struct MHD_Connection *c, acct_t *a, unsigned status,
                              const char *code, const char *title, const char *detail,
                              const char *pointer, const char *hdrs[][2]) {
    pthread_mutex_lock(&s->mu);
    count_status(a, status);
    pthread_mutex_unlock(&s->mu);
    if (ts_log_enabled(TS_LOG_DEBUG)) {
        ts_buf_t ctx = TS_BUF_INIT;
        ts_jw_t w;
        ts_jw_init(&w, &ctx);
        ts_jw_kv_str(&w, "account", a->name);
        ts_jw_key(&w, "status");
        ts_jw_int(&w, status);
        ts_jw_kv_str(&w, "pointer", pointer ? pointer : "");
        ts_log(TS_LOG_DEBUG, "klaviyo-sim", ctx.data, "%s", detail);
        ts_buf_free(&ctx);
    }
    return send_error(s, c, status, code, title, detail, pointer, hdrs);
}

/* The query parameters each GET operation defines (get_profiles.json,
 * get_metrics.json, get_events.json): any other is a 400. */
static const char *const get_params[3][10] = {
    {"additional-fields[profile]", "fields[conversation]", "fields[profile]", "fields[push-token]",
     "filter", "include", "page[cursor]", "page[size]", "sort", NULL},
    {"fields[flow]", "fields[metric]", "filter", "include", "page[cursor]", NULL},
    {"fields[attribution]", "fields[event]", "fields[metric]", "fields[profile]", "filter",
     "include", "page[cursor]", "page[size]", "sort", NULL}};
static const char *const profile_sorts[] = {
    "created",
    "-created",
    "email",
    "-email",
    "id",
    "-id",
    "subscriptions.email.marketing.list_suppressions.timestamp",
    "-subscriptions.email.marketing.list_suppressions.timestamp",
    "subscriptions.email.marketing.suppression.timestamp",
    "-subscriptions.email.marketing.suppression.timestamp",
    "updated",
    "-updated",
    NULL};

typedef struct {
    const char *const *allowed;
    char bad[64];
} qcheck_t;

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    (void)value;
    qcheck_t *q = cls;
    for (const char *const *k = q->allowed; *k; k++)
        if (!strcmp(*k, key)) return MHD_YES;
    if (!q->bad[0]) snprintf(q->bad, sizeof q->bad, "%s", key);
    return MHD_YES;
}

/* GET /api/profiles, /api/metrics, /api/events: query parameters as
 * get_profiles.json, get_metrics.json and get_events.json define them. */
static enum MHD_Result get_collection(ts_sim_t *s, struct MHD_Connection *c, acct_t *a,
                                      ts_sim_ep_t ep, const char *rl[][2]) {
#define Q(k) MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k)
    const char *filter = Q("filter"), *size = Q("page[size]"), *cursor = Q("page[cursor]");
    char base[300], err[512] = "", param[64] = "";
    snprintf(base, sizeof base, "http://%s:%d", s->listen_host, s->port);
    ts_buf_t b = TS_BUF_INIT;
    qcheck_t qc = {.allowed = get_params[ep == TS_SIM_EP_GET_PROFILES  ? 0
                                         : ep == TS_SIM_EP_GET_METRICS ? 1
                                                                       : 2]};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &qc);
    const char *sort = Q("sort");
    bool sort_ok = !sort || ep != TS_SIM_EP_GET_PROFILES;
    for (int k = 0; !sort_ok && profile_sorts[k]; k++) sort_ok = !strcmp(sort, profile_sorts[k]);
    if (qc.bad[0])
        snprintf(err, sizeof err, "'%s' is not a valid query parameter", qc.bad),
            snprintf(param, sizeof param, "%s", qc.bad);
    else if (!sort_ok)
        snprintf(err, sizeof err, "'%s' is not a valid sort", sort),
            snprintf(param, sizeof param, "sort");
    pthread_mutex_lock(&s->mu);
    unsigned status = param[0] ? 400u
                      : ep == TS_SIM_EP_GET_PROFILES
                          ? sim_profiles_get(a->prof, filter, Q("additional-fields[profile]"), size,
                                             cursor, base, &b, err, sizeof err, param, sizeof param)
                      : ep == TS_SIM_EP_GET_METRICS
                          ? sim_profiles_metrics_get(filter, Q("fields[metric]"), cursor, base, &b,
                                                     err, sizeof err, param, sizeof param)
                          : sim_profiles_events_get(a->prof, filter, Q("sort"), Q("include"),
                                                    Q("fields[profile]"), size, cursor, base, &b,
                                                    err, sizeof err, param, sizeof param);
#undef Q
    if (status == 200) count_status(a, 200);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result res;
    if (status != 200) {
        /* Klaviyo's error document; a query parameter is named in
         * source.parameter */
        pthread_mutex_lock(&s->mu);
        count_status(a, status);
        pthread_mutex_unlock(&s->mu);
        ts_buf_reset(&b);
        error_doc(s, &b, status, "invalid", "Invalid input.", err, "parameter", param);
        res = send_buf(c, status, "application/vnd.api+json", b.data, b.len, rl);
    } else {
        res = send_buf(c, 200, "application/vnd.api+json", b.data, b.len, rl);
    }
    ts_buf_free(&b);
    return res;
}

/* What every API request goes through before its own checks: auth,
 * latency and drops, the (account, endpoint) rate limit, injected 5xx and
 * the revision header. Returns true when it answered the request (*res). */
typedef struct {
    acct_t *a;
    char limit_s[16], rem_s[16], reset_s[16];
    const char *rl[4][2]; /* RateLimit-* headers for the answer */
} gate_t;

static bool gate(ts_sim_t *s, struct MHD_Connection *c, ts_sim_ep_t ep, gate_t *g,
                 enum MHD_Result *res) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *rev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "revision");
    acct_t *a = NULL;
    if (auth && !strncmp(auth, "Klaviyo-API-Key ", 16)) {
        pthread_mutex_lock(&s->mu); /* keys change at run time (POST /__sim/keys) */
        for (size_t i = 0; i < s->n_acc; i++)
            if (!strcmp(s->acc[i].key, auth + 16)) a = &s->acc[i];
        pthread_mutex_unlock(&s->mu);
    }
    g->a = a;
    if (!a) {
        pthread_mutex_lock(&s->mu);
        s->unauthorized++;
        pthread_mutex_unlock(&s->mu);
        *res = send_error(
            s, c, 401, "not_authenticated", "Authentication credentials were not provided.",
            auth ? "Incorrect authentication credentials." : "Missing or invalid private key.",
            NULL, NULL);
        return true;
    }

    /* faults and latency first: a fault never records anything */
    pthread_mutex_lock(&s->mu);
    double f_drop = rnd(s), f_fail = rnd(s), f_spike = rnd(s);
    double drop_rate = s->o.drop_rate, fail_rate = s->o.fail_rate; /* POST /__sim/faults */
    pthread_mutex_unlock(&s->mu);
    int delay = s->o.latency_ms + (f_spike < s->o.spike_rate ? s->o.spike_ms : 0);
    if (delay > 0) {
        pthread_mutex_lock(&s->mu);
        if ((uint64_t)++a->concurrent > a->st.max_concurrent)
            a->st.max_concurrent = (uint64_t)a->concurrent;
        pthread_mutex_unlock(&s->mu);
        usleep((useconds_t)delay * 1000);
        pthread_mutex_lock(&s->mu);
        a->concurrent--;
        pthread_mutex_unlock(&s->mu);
    }
    if (f_drop < drop_rate) {
        pthread_mutex_lock(&s->mu);
        count_status(a, 0);
        pthread_mutex_unlock(&s->mu);
        *res = MHD_NO; /* close the connection without an answer */
        return true;
    }

    char ra_s[16];
    int limit = 0, remaining = 0, reset = 0;
    pthread_mutex_lock(&s->mu);
    int wait = admit(s, a, ep, sim_now(s), &limit, &remaining, &reset);
    pthread_mutex_unlock(&s->mu);
    snprintf(g->limit_s, sizeof g->limit_s, "%d", limit);
    snprintf(g->rem_s, sizeof g->rem_s, "%d", remaining);
    snprintf(g->reset_s, sizeof g->reset_s, "%d", reset);
    if (wait) {
        snprintf(ra_s, sizeof ra_s, "%d", wait);
        const char *h[][2] = {{"Retry-After", ra_s}, {NULL, NULL}};
        *res = reject(
            s, c, a, 429, "throttled", "Request was throttled.",
            "Request was throttled. Expected available in the number of seconds in Retry-After.",
            NULL, h);
        return true;
    }
    g->rl[0][0] = "RateLimit-Limit";
    g->rl[0][1] = g->limit_s;
    g->rl[1][0] = "RateLimit-Remaining";
    g->rl[1][1] = g->rem_s;
    g->rl[2][0] = "RateLimit-Reset";
    g->rl[2][1] = g->reset_s;
    g->rl[3][0] = g->rl[3][1] = NULL;
    if (f_fail < fail_rate) {
        bool unavailable = f_fail < fail_rate / 2;
        *res = reject(s, c, a, unavailable ? 503 : 500, "error",
                      unavailable ? "Service unavailable." : "A server error occurred.",
                      "Injected fault: nothing was recorded; retry the request.", NULL, g->rl);
        return true;
    }
    if (!rev || !*rev) {
        *res = reject(s, c, a, 400, "invalid", "Invalid input.", "Missing revision header", NULL,
                      g->rl);
        return true;
    }
    if (!ts_sim_revision_valid(rev)) {
        *res = reject(s, c, a, 400, "invalid", "Invalid input.",
                      "Invalid revision header: the format is YYYY-MM-DD[.suffix]", NULL, g->rl);
        return true;
    }
    if (s->retired_before[0] && strncmp(rev, s->retired_before, 10) < 0) {
        *res = reject(s, c, a, 410, "gone", "Gone.",
                      "This revision is retired: use a supported revision", NULL, g->rl);
        return true;
    }
    return false;
}

/* Records a validated request under the lock: events, a profile, a
 * deletion, a bulk job (*job) or profiles. Returns the HTTP status. */
static unsigned record_valid(ts_sim_t *s, acct_t *a, ts_sim_ep_t ep, cJSON *root, const vres_t *v,
                             uint64_t *job) {
    unsigned status = 202;
    pthread_mutex_lock(&s->mu);
    if (v->evs)
        record_events(s, a, v->evs, v->n_evs);
    else if (v->profile) {
        status = record_profile(s, a, v->profile, v->pkey) ? 201 : 200;
        sim_profiles_import(a->prof, obj(v->profile, "attributes"), ts_now_wall_ms());
    } else if (v->deletion) {
        a->st.deletions++;
        if (!s->o.summary_only) {
            cJSON *line = cJSON_CreateObject();
            const cJSON *da = obj(v->deletion, "attributes");
            const char *em = str(da, "email"), *ph = str(da, "phone_number"),
                       *pid = str(v->deletion, "id");
            if (em) cJSON_AddStringToObject(line, "email", em);
            if (ph) cJSON_AddStringToObject(line, "phone_number", ph);
            if (pid) cJSON_AddStringToObject(line, "id", pid);
            append_line(&a->deletions_jsonl, line);
            cJSON_Delete(line);
        }
    } else if (ep == TS_SIM_EP_PROFILES_BULK)
        *job = job_create(s, a, v->profiles);
    else
        record_profiles(s, a, ep, root, v->profiles);
    count_status(a, status);
    pthread_mutex_unlock(&s->mu);
    return status;
}

/* The answer's document into *b: a queued job (PostProfileImportJobResponse)
 * or the profile as sent (PostProfileResponse); nothing for the rest. */
static void answer_doc(ts_sim_t *s, ts_sim_ep_t ep, const vres_t *v, uint64_t job, ts_buf_t *b) {
    char self[256];
    if (ep == TS_SIM_EP_PROFILES_BULK) {
        /* the job is queued (GET follows it) */
        char id[40], now[40];
        snprintf(id, sizeof id, "sim-job-%llu", (unsigned long long)job);
        ts_time_format_iso8601(ts_now_wall_ms(), now, sizeof now);
        snprintf(self, sizeof self, "http://%s:%d/api/profile-bulk-import-jobs/%s/", s->listen_host,
                 s->port, id);
        ts_buf_printf(b,
                      "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"%s\","
                      "\"attributes\":{\"status\":\"queued\",\"created_at\":\"%s\","
                      "\"total_count\":%d,\"completed_count\":0,\"failed_count\":0},"
                      "\"links\":{\"self\":\"%s\"}}}",
                      id, now, cJSON_GetArraySize(v->profiles), self);
    } else if (ep == TS_SIM_EP_PROFILE_IMPORT) {
        /* under a stable id */
        char id[40];
        snprintf(id, sizeof id, "sim-%016llx", (unsigned long long)hbytes(v->pkey));
        snprintf(self, sizeof self, "http://%s:%d/api/profiles/%s/", s->listen_host, s->port, id);
        char *attrs = cJSON_PrintUnformatted(obj(v->profile, "attributes"));
        ts_buf_printf(b,
                      "{\"data\":{\"type\":\"profile\",\"id\":\"%s\",\"attributes\":%s,"
                      "\"links\":{\"self\":\"%s\"}}}",
                      id, attrs ? attrs : "{}", self);
        free(attrs);
    }
}

static enum MHD_Result handle_api(ts_sim_t *s, struct MHD_Connection *c, ts_sim_ep_t ep, req_t *r) {
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    gate_t g;
    enum MHD_Result gres;
    if (gate(s, c, ep, &g, &gres)) return gres;
    acct_t *a = g.a;
    const char *(*rl)[2] = g.rl;
    if (ep == TS_SIM_EP_GET_PROFILES || ep == TS_SIM_EP_GET_METRICS || ep == TS_SIM_EP_GET_EVENTS)
        return get_collection(s, c, a, ep, rl);
    if (!json_ctype(ctype))
        return reject(s, c, a, 415, "unsupported_media_type", "Unsupported media type.",
                      "Content-Type must be application/vnd.api+json", NULL, rl);
    size_t max = ep == TS_SIM_EP_PROFILE_IMPORT ? MAX_PROFILE_IMPORT : MAX_BODY;
    if (r->too_big || r->body.len > max)
        return reject(s, c, a, 413, "payload_too_large", "Payload too large.",
                      ep == TS_SIM_EP_PROFILE_IMPORT ? "The maximum allowed payload size is 100KB."
                                                     : "The maximum allowed payload size is 5MB.",
                      NULL, rl);

    char detail[512] = "", pointer[700] = "";
    verr_t e = {detail, sizeof detail, pointer, sizeof pointer};
    cJSON *root = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    vres_t v;
    memset(&v, 0, sizeof v);
    int rc = -1;
    if (!root)
        bad(&e, "", "Request body is not valid JSON");
    else
        rc = validate_body(ep, root, ts_now_wall_ms(), &v, &e);
    if (rc != 0) {
        cJSON_Delete(root);
        free(v.evs);
        return reject(s, c, a, 400, "invalid", "Invalid input.", detail, pointer, rl);
    }
    uint64_t job = 0;
    unsigned status = record_valid(s, a, ep, root, &v, &job);
    dump_body(s, ep, r);
    ts_buf_t b = TS_BUF_INIT;
    answer_doc(s, ep, &v, job, &b);
    free(v.evs);
    cJSON_Delete(root);
    enum MHD_Result res = send_buf(c, status, b.len ? "application/vnd.api+json" : NULL,
                                   b.data ? b.data : "", b.len, rl);
    ts_buf_free(&b);
    return res;
}

/* Pagination of a job's import-errors / profiles: page[size] (1..100,
 * default 20) and page[cursor] (our cursor: the offset). Returns -1 with
 * a detail when a parameter is invalid. */
static int page_args(struct MHD_Connection *c, size_t *off, size_t *size, char *d, size_t dn) {
    const char *cur = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page[cursor]");
    const char *sz = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page[size]");
    char *end;
    *off = 0;
    *size = 20;
    if (sz) {
        long v = strtol(sz, &end, 10);
        if (*end || v < 1 || v > 100) {
            snprintf(d, dn, "page[size] must be an integer between 1 and 100");
            return -1;
        }
        *size = (size_t)v;
    }
    if (cur) {
        unsigned long long v = strtoull(cur, &end, 10);
        if (!*cur || *end) {
            snprintf(d, dn, "Invalid page cursor");
            return -1;
        }
        *off = (size_t)v;
    }
    return 0;
}

static void collection_links(ts_sim_t *s, ts_jw_t *w, const char *id, const char *what, size_t off,
                             size_t size, size_t n) {
    char base[256], u[384];
    snprintf(base, sizeof base, "http://%s:%d/api/profile-bulk-import-jobs/%s/%s/", s->listen_host,
             s->port, id, what);
    ts_jw_key(w, "links");
    ts_jw_obj_open(w);
    snprintf(u, sizeof u, "%s?page%%5Bcursor%%5D=%zu&page%%5Bsize%%5D=%zu", base, off, size);
    ts_jw_kv_str(w, "self", u);
    if (off + size < n) {
        snprintf(u, sizeof u, "%s?page%%5Bcursor%%5D=%zu&page%%5Bsize%%5D=%zu", base, off + size,
                 size);
        ts_jw_kv_str(w, "next", u);
    }
    if (off > 0) {
        size_t p = off > size ? off - size : 0;
        snprintf(u, sizeof u, "%s?page%%5Bcursor%%5D=%zu&page%%5Bsize%%5D=%zu", base, p, size);
        ts_jw_kv_str(w, "prev", u);
    }
    ts_jw_obj_close(w);
}

/* GET /api/profile-bulk-import-jobs/{id}[/import-errors|/profiles]: the
 * same account's job, on the profiles_bulk endpoint's rate limit (the
 * Get-job endpoints' own limits are the same 10/s, 150/m; one window keeps
 * the budget shared with the imports, as tillstream paces it). */
static enum MHD_Result handle_job_get(ts_sim_t *s, struct MHD_Connection *c, const char *rest) {
    gate_t g;
    enum MHD_Result gres;
    if (gate(s, c, TS_SIM_EP_PROFILES_BULK, &g, &gres)) return gres;
    acct_t *a = g.a;
    size_t idlen = strcspn(rest, "/");
    const char *sub = rest + idlen;
    int what = !strcmp(sub, "") || !strcmp(sub, "/")                               ? 0
               : !strcmp(sub, "/import-errors") || !strcmp(sub, "/import-errors/") ? 1
               : !strcmp(sub, "/profiles") || !strcmp(sub, "/profiles/")           ? 2
                                                                                   : -1;
    size_t off = 0, size = 20;
    char d[128];
    if (what > 0 && page_args(c, &off, &size, d, sizeof d))
        return reject(s, c, a, 400, "invalid", "Invalid input.", d, NULL, g.rl);
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    pthread_mutex_lock(&s->mu);
    job_t *j = what >= 0 ? job_find(s, a, rest, idlen) : NULL;
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        ts_buf_free(&b);
        return reject(s, c, a, 404, "not_found", "Not found.", "Not found", NULL, g.rl);
    }
    a->st.job_polls++;
    count_status(a, 200);
    int64_t now = sim_now(s);
    bool done = !strcmp(job_status(s, j, now), "complete");
    char id[40];
    snprintf(id, sizeof id, "sim-job-%llu", (unsigned long long)j->num);
    ts_jw_obj_open(&w);
    ts_jw_key(&w, "data");
    if (what == 0) {
        job_resource(s, &w, j, now);
        ts_jw_key(&w, "links");
        ts_jw_obj_open(&w);
        char self[256];
        snprintf(self, sizeof self, "http://%s:%d/api/profile-bulk-import-jobs/%s/", s->listen_host,
                 s->port, id);
        ts_jw_kv_str(&w, "self", self);
        ts_jw_obj_close(&w);
    } else {
        size_t n = !done ? 0 : what == 1 ? j->n_errs : j->n_profs;
        ts_jw_arr_open(&w);
        for (size_t i = off; i < n && i < off + size; i++) {
            ts_jw_obj_open(&w);
            if (what == 1) {
                const jerr_t *x = &j->errs[i];
                char eid[96];
                snprintf(eid, sizeof eid, "%s-error-%zu", id, i);
                ts_jw_kv_str(&w, "type", "import-error");
                ts_jw_kv_str(&w, "id", eid);
                ts_jw_key(&w, "attributes");
                ts_jw_obj_open(&w);
                ts_jw_kv_str(&w, "code", "invalid");
                ts_jw_kv_str(&w, "title", "Invalid input.");
                ts_jw_kv_str(&w, "detail", x->detail ? x->detail : "");
                ts_jw_key(&w, "source");
                ts_jw_obj_open(&w);
                ts_jw_kv_str(&w, "pointer", x->pointer ? x->pointer : "/data");
                ts_jw_obj_close(&w);
                ts_jw_key(&w, "original_payload");
                if (x->payload)
                    ts_jw_raw(&w, x->payload, strlen(x->payload));
                else
                    ts_jw_null(&w);
                ts_jw_obj_close(&w);
            } else {
                const jprof_t *q = &j->profs[i];
                char self[256];
                snprintf(self, sizeof self, "http://%s:%d/api/profiles/%s/", s->listen_host,
                         s->port, q->id);
                ts_jw_kv_str(&w, "type", "profile");
                ts_jw_kv_str(&w, "id", q->id);
                ts_jw_key(&w, "attributes");
                ts_jw_obj_open(&w);
                ts_jw_kv_str(&w, "email", q->email);
                ts_jw_kv_str(&w, "phone_number", q->phone);
                ts_jw_kv_str(&w, "external_id", q->ext);
                ts_jw_obj_close(&w);
                ts_jw_key(&w, "links");
                ts_jw_obj_open(&w);
                ts_jw_kv_str(&w, "self", self);
                ts_jw_obj_close(&w);
            }
            ts_jw_obj_close(&w);
        }
        ts_jw_arr_close(&w);
        collection_links(s, &w, id, what == 1 ? "import-errors" : "profiles", off, size, n);
    }
    ts_jw_obj_close(&w);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result res = send_buf(c, 200, "application/vnd.api+json", b.data, b.len, g.rl);
    ts_buf_free(&b);
    return res;
}

void ts_sim_set_job_delay(ts_sim_t *s, int ms) {
    pthread_mutex_lock(&s->mu);
    s->job_delay_ms = ms ? ms : TS_SIM_DEFAULT_JOB_DELAY_MS;
    pthread_mutex_unlock(&s->mu);
}

void ts_sim_set_faults(ts_sim_t *s, double fail_rate, double drop_rate) {
    pthread_mutex_lock(&s->mu);
    s->o.fail_rate = fail_rate;
    s->o.drop_rate = drop_rate;
    pthread_mutex_unlock(&s->mu);
}

ts_err_t ts_sim_set_key(ts_sim_t *s, const char *account, const char *api_key) {
    char *k = api_key && *api_key ? strdup(api_key) : NULL;
    if (!k) return api_key && *api_key ? TS_ERR_NOMEM : TS_ERR_INVALID;
    pthread_mutex_lock(&s->mu);
    acct_t *a = find_account(s, account);
    if (a) {
        memset(a->key, 0, strlen(a->key));
        free(a->key);
        a->key = k;
    }
    pthread_mutex_unlock(&s->mu);
    if (!a) free(k);
    return a ? TS_OK : TS_ERR_NOT_FOUND;
}

/* ---- inspection ------------------------------------------------------------ */

void ts_sim_stats_json(ts_sim_t *s, ts_buf_t *out) {
    ts_jw_t w;
    ts_jw_init(&w, out);
    pthread_mutex_lock(&s->mu);
    ts_jw_obj_open(&w);
    ts_jw_key(&w, "unauthorized");
    ts_jw_int(&w, (int64_t)s->unauthorized);
    ts_jw_key(&w, "accounts");
    ts_jw_obj_open(&w);
    for (size_t i = 0; i < s->n_acc; i++) {
        acct_t *a = &s->acc[i];
        ts_jw_key(&w, a->name);
        ts_jw_obj_open(&w);
#define N(k, v)                                                                                    \
    ts_jw_key(&w, k);                                                                              \
    ts_jw_int(&w, (int64_t)(v))
        N("events_recorded", a->st.events_recorded);
        N("duplicates_ignored", a->st.duplicates_ignored);
        N("backfill_events", a->st.backfill_events);
        N("profiles", a->st.profiles);
        N("subscribed", a->st.subscribed);
        N("historical_subscribed", a->st.historical_subscribed);
        N("unsubscribed", a->st.unsubscribed);
        N("suppressions_removed", a->st.suppressions_removed);
        N("throttled", a->st.throttled_429);
        N("dropped", a->st.dropped);
        N("import_jobs", a->st.import_jobs);
        N("import_errors", a->st.import_errors);
        N("job_polls", a->st.job_polls);
        N("deletions", a->st.deletions);
        N("suppressed", a->st.suppressed);
        N("max_concurrent", a->st.max_concurrent);
        ts_jw_key(&w, "requests");
        ts_jw_obj_open(&w);
        N("total", a->st.requests);
        N("5xx", a->st.failed_5xx);
        for (int code = 100; code < N_CODES; code++) {
            if (!a->by_code[code]) continue;
            char k[8];
            snprintf(k, sizeof k, "%d", code);
            N(k, a->by_code[code]);
        }
#undef N
        ts_jw_obj_close(&w);
        ts_jw_key(&w, "events_by_metric");
        char *m = cJSON_PrintUnformatted(a->by_metric);
        ts_jw_raw(&w, m ? m : "{}", m ? strlen(m) : 2);
        free(m);
        ts_jw_obj_close(&w);
    }
    ts_jw_obj_close(&w);
    ts_jw_obj_close(&w);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the inspection and control API (/__sim/...) ---------------------------- */

/* A rate in [0, 1] at key of a POST /__sim/faults body: *out unchanged
 * when the key is absent; false when present and not such a number. */
static bool fault_rate(const cJSON *root, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) return false;
    *out = v->valuedouble;
    return true;
}

/* GET /__sim/faults; POST {"fail_rate": F, "drop_rate": D} (either or both,
 * 0..1) first sets them: an outage (1) or its end (0) at run time, with the
 * records and windows kept. */
static enum MHD_Result sim_faults(ts_sim_t *s, struct MHD_Connection *c, const char *method,
                                  const req_t *req) {
    pthread_mutex_lock(&s->mu);
    double fail = s->o.fail_rate, drop = s->o.drop_rate;
    pthread_mutex_unlock(&s->mu);
    if (!strcmp(method, "POST")) {
        cJSON *root = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
        bool ok = cJSON_IsObject(root) && fault_rate(root, "fail_rate", &fail) &&
                  fault_rate(root, "drop_rate", &drop);
        cJSON_Delete(root);
        if (!ok) {
            static const char want[] = "want {\"fail_rate\": F, \"drop_rate\": D}, each 0..1\n";
            return send_buf(c, 400, "text/plain", want, sizeof want - 1, NULL);
        }
        ts_sim_set_faults(s, fail, drop);
    }
    char b[96];
    int n = snprintf(b, sizeof b, "{\"fail_rate\":%.17g,\"drop_rate\":%.17g}\n", fail, drop);
    return send_buf(c, 200, "application/json", b, (size_t)n, NULL);
}

/* POST {"account": NAME, "key": KEY}: the account's API key from now on
 * (a rotation: the old key is answered 401). 404 for an unknown account. */
static enum MHD_Result sim_keys(ts_sim_t *s, struct MHD_Connection *c, const char *method,
                                const req_t *req) {
    static const char want[] = "want POST {\"account\": NAME, \"key\": KEY}\n";
    if (strcmp(method, "POST")) return send_buf(c, 400, "text/plain", want, sizeof want - 1, NULL);
    cJSON *root = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(root, "account");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "key");
    ts_err_t rc = cJSON_IsString(an) && cJSON_IsString(k)
                      ? ts_sim_set_key(s, an->valuestring, k->valuestring)
                      : TS_ERR_INVALID;
    cJSON_Delete(root);
    if (rc == TS_ERR_NOT_FOUND) {
        static const char nf[] = "no such account\n";
        return send_buf(c, 404, "text/plain", nf, sizeof nf - 1, NULL);
    }
    if (rc != TS_OK) return send_buf(c, 400, "text/plain", want, sizeof want - 1, NULL);
    static const char ok[] = "{\"ok\":true}\n";
    return send_buf(c, 200, "application/json", ok, sizeof ok - 1, NULL);
}

/* GET /__sim/jobs; POST {"delay_ms": N} first sets the delay of later jobs. */
static enum MHD_Result sim_jobs(ts_sim_t *s, struct MHD_Connection *c, const char *method,
                                const req_t *req) {
    if (!strcmp(method, "POST")) {
        /* {"delay_ms": N}: later import jobs complete N ms after creation (< 0: never) */
        cJSON *root = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "delay_ms");
        bool ok = cJSON_IsNumber(d) && d->valuedouble == (double)(int)d->valuedouble;
        if (ok) ts_sim_set_job_delay(s, (int)d->valuedouble);
        cJSON_Delete(root);
        if (!ok) return send_buf(c, 400, "text/plain", "want {\"delay_ms\": N}\n", 21, NULL);
    }
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    pthread_mutex_lock(&s->mu);
    int64_t now = sim_now(s);
    ts_jw_obj_open(&w);
    ts_jw_key(&w, "delay_ms");
    ts_jw_int(&w, s->job_delay_ms);
    ts_jw_key(&w, "jobs");
    ts_jw_arr_open(&w);
    uint64_t first = s->jobs > MAX_JOBS ? s->jobs - MAX_JOBS + 1 : 1;
    for (uint64_t k = first; k <= s->jobs; k++) {
        const job_t *j = &s->jobring[k % MAX_JOBS];
        if (j->num != k) continue;
        char id[40];
        snprintf(id, sizeof id, "sim-job-%llu", (unsigned long long)k);
        ts_jw_obj_open(&w);
        ts_jw_kv_str(&w, "id", id);
        ts_jw_kv_str(&w, "account", s->acc[j->acct].name);
        ts_jw_kv_str(&w, "status", job_status(s, j, now));
        ts_jw_key(&w, "total_count");
        ts_jw_int(&w, j->total);
        ts_jw_key(&w, "failed_count");
        ts_jw_int(&w, (int64_t)j->n_errs);
        ts_jw_obj_close(&w);
    }
    ts_jw_arr_close(&w);
    ts_jw_obj_close(&w);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result r = send_buf(c, 200, "application/json", b.data, b.len, NULL);
    ts_buf_free(&b);
    return r;
}

/* Forgets an account's accepted ids and passes each of its JSON-lines
 * logs to done (ts_buf_reset for a reset, ts_buf_free to destroy). */
static void acct_forget(acct_t *a, void (*done)(ts_buf_t *)) {
    strset_free(&a->events);
    strset_free(&a->profiles);
    ts_buf_t *logs[] = {&a->events_jsonl, &a->profiles_jsonl, &a->deletions_jsonl,
                        &a->suppressions_jsonl};
    for (size_t i = 0; i < sizeof logs / sizeof *logs; i++) done(logs[i]);
}

/* POST /__sim/reset: forget every request, event, profile and job. */
static enum MHD_Result sim_reset(ts_sim_t *s, struct MHD_Connection *c) {
    pthread_mutex_lock(&s->mu);
    s->unauthorized = 0;
    for (size_t k = 0; k < MAX_JOBS; k++) job_clear(&s->jobring[k]);
    for (size_t i = 0; i < s->n_acc; i++) {
        acct_t *a = &s->acc[i];
        acct_forget(a, ts_buf_reset);
        memset(&a->st, 0, sizeof a->st);
        memset(a->by_code, 0, sizeof a->by_code);
        for (int ep = 0; ep < TS_SIM_EP__COUNT; ep++) a->win[ep].burst.n = a->win[ep].steady.n = 0;
        cJSON_Delete(a->by_metric);
        a->by_metric = cJSON_CreateObject();
        sim_profiles_reset(a->prof);
    }
    pthread_mutex_unlock(&s->mu);
    return send_buf(c, 200, "application/json", "{}", 2, NULL);
}

/* POST /__sim/accounts/NAME/suppress: suppress a profile as Klaviyo would
 * after an unsubscribe link, a spam report or a bounce. */
static enum MHD_Result sim_suppress(ts_sim_t *s, struct MHD_Connection *c, const char *url,
                                    const req_t *req, const char *pre, const char *sfx, size_t ul) {
    /* control: suppress a profile as Klaviyo would after an unsubscribe
     * link, a spam report or a bounce */
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(ul - strlen(pre) - strlen(sfx)), url + strlen(pre));
    cJSON *body = cJSON_ParseWithLength(req->body.data ? req->body.data : "", req->body.len);
    char err[256] = "invalid JSON";
    ts_buf_t b = TS_BUF_INIT;
    pthread_mutex_lock(&s->mu);
    acct_t *a = find_account(s, name);
    int rc = !a     ? -2
             : body ? sim_profiles_suppress(a->prof, body, ts_now_wall_ms(), &b, err, sizeof err)
                    : -1;
    if (rc == 0) a->st.suppressed++;
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(body);
    enum MHD_Result r;
    if (rc == 0) {
        r = send_buf(c, 200, "application/json", b.data, b.len, NULL);
    } else if (rc == -2) {
        r = send_buf(c, 404, "text/plain", "no such account\n", 16, NULL);
    } else {
        ts_buf_reset(&b);
        ts_buf_printf(&b, "%s\n", err);
        r = send_buf(c, 400, "text/plain", b.data, b.len, NULL);
    }
    ts_buf_free(&b);
    return r;
}

/* GET /__sim/accounts/NAME/subscriptions: consent and suppressions. */
static enum MHD_Result sim_subscriptions(ts_sim_t *s, struct MHD_Connection *c, const char *url,
                                         const char *pre, size_t ul) {
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(ul - strlen(pre) - 14), url + strlen(pre));
    ts_buf_t b = TS_BUF_INIT;
    pthread_mutex_lock(&s->mu);
    acct_t *a = find_account(s, name);
    if (a) sim_profiles_jsonl(a->prof, &b);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result r =
        a ? send_buf(c, 200, "application/x-ndjson", b.data ? b.data : "", b.len, NULL)
          : send_buf(c, 404, "text/plain", "not found\n", 10, NULL);
    ts_buf_free(&b);
    return r;
}

/* GET /__sim/accounts/NAME/{events,profiles,deletions,suppressions}. */
static enum MHD_Result sim_account_dump(ts_sim_t *s, struct MHD_Connection *c, const char *url,
                                        const char *pre) {
    char name[128];
    const char *rest = url + strlen(pre), *slash = strchr(rest, '/');
    if (slash && (size_t)(slash - rest) < sizeof name) {
        snprintf(name, sizeof name, "%.*s", (int)(slash - rest), rest);
        pthread_mutex_lock(&s->mu);
        acct_t *a = find_account(s, name);
        ts_buf_t *b = !a                                ? NULL
                      : !strcmp(slash, "/events")       ? &a->events_jsonl
                      : !strcmp(slash, "/profiles")     ? &a->profiles_jsonl
                      : !strcmp(slash, "/deletions")    ? &a->deletions_jsonl
                      : !strcmp(slash, "/suppressions") ? &a->suppressions_jsonl
                                                        : NULL;
        enum MHD_Result r =
            b ? send_buf(c, 200, "application/x-ndjson", b->data ? b->data : "", b->len, NULL)
              : send_buf(c, 404, "text/plain", "not found\n", 10, NULL);
        pthread_mutex_unlock(&s->mu);
        return r;
    }
    return send_buf(c, 404, "text/plain", "not found\n", 10, NULL);
}

static enum MHD_Result handle_sim(ts_sim_t *s, struct MHD_Connection *c, const char *method,
                                  const char *url, const req_t *req) {
    if (!strcmp(url, "/__sim/jobs")) return sim_jobs(s, c, method, req);
    if (!strcmp(url, "/__sim/keys")) return sim_keys(s, c, method, req);
    if (!strcmp(url, "/__sim/faults")) return sim_faults(s, c, method, req);
    if (!strcmp(url, "/__sim/stats") && !strcmp(method, "GET")) {
        ts_buf_t b = TS_BUF_INIT;
        ts_sim_stats_json(s, &b);
        enum MHD_Result r = send_buf(c, 200, "application/json", b.data, b.len, NULL);
        ts_buf_free(&b);
        return r;
    }
    if (!strcmp(url, "/__sim/reset") && !strcmp(method, "POST")) return sim_reset(s, c);
    const char *pre = "/__sim/accounts/";
    const char *sfx = "/suppress";
    size_t ul = strlen(url);
    if (strncmp(url, pre, strlen(pre)))
        return send_buf(c, 404, "text/plain", "not found\n", 10, NULL);
    if (!strcmp(method, "POST") && ul > strlen(sfx) && !strcmp(url + ul - strlen(sfx), sfx))
        return sim_suppress(s, c, url, req, pre, sfx, ul);
    if (!strcmp(method, "GET") && ul > 14 && !strcmp(url + ul - 14, "/subscriptions"))
        return sim_subscriptions(s, c, url, pre, ul);
    if (!strcmp(method, "GET")) return sim_account_dump(s, c, url, pre);
    return send_buf(c, 404, "text/plain", "not found\n", 10, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    ts_sim_t *s = cls;
    req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->too_big || r->body.len + *upload_data_size > MAX_BODY)
            r->too_big = true; /* keep reading, answer 413 at the end */
        else if (ts_buf_append(&r->body, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!strncmp(url, "/__sim/", 7)) return handle_sim(s, c, method, url, r);
    static const char jobs_pre[] = "/api/profile-bulk-import-jobs/";
    if (!strncmp(url, jobs_pre, sizeof jobs_pre - 1) && url[sizeof jobs_pre - 1]) {
        if (strcmp(method, "GET"))
            return send_error(s, c, 405, "method_not_allowed", "Method not allowed.",
                              "Method not allowed", NULL, NULL);
        return handle_job_get(s, c, url + sizeof jobs_pre - 1);
    }
    static const ts_sim_ep_t gets[] = {TS_SIM_EP_GET_PROFILES, TS_SIM_EP_GET_METRICS,
                                       TS_SIM_EP_GET_EVENTS};
    for (size_t g = 0; g < sizeof gets / sizeof gets[0]; g++) {
        size_t n = strlen(ep_paths[gets[g]]);
        if (strncmp(url, ep_paths[gets[g]], n) || (url[n] && strcmp(url + n, "/"))) continue;
        if (!strcmp(method, "GET")) return handle_api(s, c, gets[g], r);
        if (gets[g] != TS_SIM_EP_GET_EVENTS || url[n]) /* POST /api/events: Create Event */
            return send_error(s, c, 405, "method_not_allowed", "Method not allowed.",
                              "Method not allowed", NULL, NULL);
    }
    for (int ep = 0; ep < TS_SIM_EP__COUNT; ep++) {
        if (ep != TS_SIM_EP_GET_PROFILES && ep != TS_SIM_EP_GET_METRICS &&
            ep != TS_SIM_EP_GET_EVENTS && !strcmp(url, ep_paths[ep])) {
            if (strcmp(method, "POST"))
                return send_error(s, c, 405, "method_not_allowed", "Method not allowed.",
                                  "Method not allowed", NULL, NULL);
            return handle_api(s, c, (ts_sim_ep_t)ep, r);
        }
    }
    return send_error(s, c, 404, "not_found", "Not found.", "Not found", NULL, NULL);
}

/* ---- lifecycle ------------------------------------------------------------- */

ts_err_t ts_sim_start(ts_sim_t *s, char *errstr, size_t errstr_size) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->o.port);
    if (inet_pton(AF_INET, s->listen_host, &sa.sin_addr) != 1)
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "bad listen address %s",
                         s->listen_host);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!s->d)
        return ts_seterr(errstr, errstr_size, TS_ERR_IO, "cannot listen on %s:%d", s->listen_host,
                         s->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return TS_OK;
}

int ts_sim_port(const ts_sim_t *s) { return s->port; }

void ts_sim_stop(ts_sim_t *s) {
    if (s && s->d) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
    }
}

void ts_sim_destroy(ts_sim_t *s) {
    if (!s) return;
    ts_sim_stop(s);
    for (size_t i = 0; i < s->n_acc; i++) {
        acct_t *a = &s->acc[i];
        free(a->name);
        if (a->key) memset(a->key, 0, strlen(a->key));
        free(a->key);
        acct_forget(a, ts_buf_free);
        cJSON_Delete(a->by_metric);
        sim_profiles_destroy(a->prof);
        for (int ep = 0; ep < TS_SIM_EP__COUNT; ep++) {
            free(a->win[ep].burst.t);
            free(a->win[ep].steady.t);
        }
    }
    for (size_t k = 0; s->jobring && k < MAX_JOBS; k++) job_clear(&s->jobring[k]);
    free(s->jobring);
    free(s->acc);
    free(s->dump_dir);
    free(s->throttle_account);
    free(s->listen_host);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ts_sim_stats(ts_sim_t *s, const char *account, ts_sim_stats_t *out) {
    pthread_mutex_lock(&s->mu);
    acct_t *a = find_account(s, account);
    if (a) *out = a->st;
    pthread_mutex_unlock(&s->mu);
    return a ? 0 : -1;
}
