/*
 * sim_profiles.c - profiles and marketing consent in the simulator
 * (sim_profiles.h). Profiles live in one growing array in creation order;
 * an open-addressing index maps "e:<email>", "p:<phone>", "x:<external
 * id>" to them, so every operation is O(1) per profile; Get Profiles
 * filters and sorts the matching ones (O(n log n) per page request, which
 * is fine for a test server).
 */
#include "sim_profiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tillstream/jw.h"
#include "tillstream/hash.h"
#include "tillstream/model.h"

enum { CH_EMAIL = 0, CH_SMS = 1, N_CH };
enum { C_NEVER = 0, C_SUBSCRIBED, C_UNSUBSCRIBED };
static const char *const consent_names[] = {"NEVER_SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED"};
/* suppression reasons (get_profiles.json EmailMarketingSuppression); 0 = none */
static const char *const reasons[] = {NULL,          "UNSUBSCRIBE",   "SPAM_COMPLAINT",
                                      "HARD_BOUNCE", "INVALID_EMAIL", "USER_SUPPRESSED"};
#define N_REASONS 6

typedef struct {
    int consent;
    int64_t consent_ts, last_updated;
    const char *method; /* static */
    char *custom_method_detail;
    int suppression; /* email only: index in reasons, 0 = none */
    int64_t suppressed_ts;
} chan_t;

typedef struct {
    char id[32];
    char *email, *phone, *external_id;
    int64_t created, updated;
    chan_t ch[N_CH];
} prof_t;

typedef struct {
    char *key; /* NULL = empty slot */
    size_t idx;
} slot_t;

/* an "Unsubscribed from SMS Marketing" event (Get Events) */
typedef struct {
    int64_t ts; /* whole seconds, as Klaviyo's datetime */
    size_t prof;
} sms_ev_t;

struct sim_profiles_s {
    prof_t *v;
    size_t n, cap;
    sms_ev_t *ev;
    size_t n_ev, cap_ev;
    slot_t *ix; /* identifier -> profile index */
    size_t ix_cap, ix_n;
};

static uint64_t hkey(const char *s) { return ts_hash_str(s); }

sim_profiles_t *sim_profiles_new(void) { return calloc(1, sizeof(sim_profiles_t)); }

void sim_profiles_reset(sim_profiles_t *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].email);
        free(p->v[i].phone);
        free(p->v[i].external_id);
        for (int c = 0; c < N_CH; c++) free(p->v[i].ch[c].custom_method_detail);
    }
    for (size_t i = 0; i < p->ix_cap; i++) free(p->ix[i].key);
    free(p->v);
    free(p->ix);
    free(p->ev);
    memset(p, 0, sizeof *p);
}

void sim_profiles_destroy(sim_profiles_t *p) {
    if (!p) return;
    sim_profiles_reset(p);
    free(p);
}

size_t sim_profiles_count(const sim_profiles_t *p) { return p->n; }

static long ix_find(const sim_profiles_t *p, const char *key) {
    if (!p->ix_cap) return -1;
    for (size_t j = hkey(key) & (p->ix_cap - 1); p->ix[j].key; j = (j + 1) & (p->ix_cap - 1))
        if (!strcmp(p->ix[j].key, key)) return (long)p->ix[j].idx;
    return -1;
}

static int ix_put(sim_profiles_t *p, const char *key, size_t idx) {
    if ((p->ix_n + 1) * 2 > p->ix_cap) {
        size_t nc = p->ix_cap ? p->ix_cap * 2 : 1024;
        slot_t *ni = calloc(nc, sizeof *ni);
        if (!ni) return -1;
        for (size_t i = 0; i < p->ix_cap; i++) {
            if (!p->ix[i].key) continue;
            size_t j = hkey(p->ix[i].key) & (nc - 1);
            while (ni[j].key) j = (j + 1) & (nc - 1);
            ni[j] = p->ix[i];
        }
        free(p->ix);
        p->ix = ni;
        p->ix_cap = nc;
    }
    size_t j = hkey(key) & (p->ix_cap - 1);
    while (p->ix[j].key && strcmp(p->ix[j].key, key)) j = (j + 1) & (p->ix_cap - 1);
    if (p->ix[j].key) {
        p->ix[j].idx = idx;
        return 0;
    }
    if (!(p->ix[j].key = strdup(key))) return -1;
    p->ix[j].idx = idx;
    p->ix_n++;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int learn(sim_profiles_t *p, size_t i, char **slot, char prefix, const char *val) {
    char key[600];
    if (!val || *slot) return 0;
    if (!(*slot = strdup(val))) return -1;
    snprintf(key, sizeof key, "%c:%s", prefix, val);
    return ix_put(p, key, i);
}

/* The profile with one of these identifiers (email, then phone, then
 * external id), created when none is known; learns missing identifiers.
 * Returns its index or -1. */
static long find_or_create(sim_profiles_t *p, const char *email, const char *phone, const char *xid,
                           int64_t now) {
    char key[600];
    long i = -1;
    if (email && i < 0) snprintf(key, sizeof key, "e:%s", email), i = ix_find(p, key);
    if (phone && i < 0) snprintf(key, sizeof key, "p:%s", phone), i = ix_find(p, key);
    if (xid && i < 0) snprintf(key, sizeof key, "x:%s", xid), i = ix_find(p, key);
    if (i < 0) {
        if (!email && !phone && !xid) return -1;
        if (p->n == p->cap) {
            size_t nc = p->cap ? p->cap * 2 : 256;
            prof_t *nv = realloc(p->v, nc * sizeof *nv);
            if (!nv) return -1;
            p->v = nv;
            p->cap = nc;
        }
        i = (long)p->n++;
        prof_t *np = &p->v[i];
        memset(np, 0, sizeof *np);
        /* Klaviyo ids are 26-character ULIDs: time-ordered here too */
        snprintf(np->id, sizeof np->id, "01SIM%021zu", (size_t)i + 1);
        np->created = now;
    }
    prof_t *pr = &p->v[i];
    pr->updated = now;
    if (learn(p, (size_t)i, &pr->email, 'e', email) ||
        learn(p, (size_t)i, &pr->phone, 'p', phone) ||
        learn(p, (size_t)i, &pr->external_id, 'x', xid))
        return -1;
    return i;
}

int sim_profiles_import(sim_profiles_t *p, const cJSON *attrs, int64_t now_ms) {
    return find_or_create(p, jstr(attrs, "email"), jstr(attrs, "phone_number"),
                          jstr(attrs, "external_id"), now_ms) < 0
               ? -1
               : 0;
}

static bool removed_by_subscribe(int reason) {
    return reason == 1 /* UNSUBSCRIBE */ || reason == 2 /* SPAM_COMPLAINT */ ||
           reason == 5 /* USER_SUPPRESSED */;
}

int sim_profiles_subscription(sim_profiles_t *p, const cJSON *attrs, bool subscribe,
                              const char *custom_source, bool historical, int64_t now_ms,
                              uint64_t *suppressions_removed) {
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(attrs, "subscriptions");
    const char *email = jstr(attrs, "email"), *phone = jstr(attrs, "phone_number");
    long i = find_or_create(p, email, phone, jstr(attrs, "external_id"), now_ms);
    if (i < 0) return -1;
    prof_t *pr = &p->v[i];
    for (int c = 0; c < N_CH; c++) {
        const cJSON *chj = cJSON_GetObjectItemCaseSensitive(subs, c == CH_EMAIL ? "email" : "sms");
        if (!chj) continue;
        chan_t *ch = &pr->ch[c];
        const cJSON *mk = cJSON_GetObjectItemCaseSensitive(chj, "marketing");
        int64_t at = now_ms;
        const char *cat = jstr(mk, "consented_at");
        if (historical && cat) ts_time_parse_iso8601(cat, strlen(cat), &at, NULL, 0);
        ch->consent = subscribe ? C_SUBSCRIBED : C_UNSUBSCRIBED;
        ch->consent_ts = at;
        ch->last_updated = now_ms;
        ch->method = "API";
        free(ch->custom_method_detail);
        ch->custom_method_detail = subscribe && custom_source ? strdup(custom_source) : NULL;
        if (subscribe && c == CH_EMAIL && removed_by_subscribe(ch->suppression)) {
            ch->suppression = 0;
            ch->suppressed_ts = 0;
            if (suppressions_removed) (*suppressions_removed)++;
        }
    }
    return 0;
}

static int reason_index(const char *r) {
    if (!r) return -1;
    if (!strcmp(r, "SPAM_REPORT")) return 2;
    if (!strcmp(r, "BOUNCE")) return 3;
    for (int k = 1; k < N_REASONS; k++)
        if (!strcmp(r, reasons[k])) return k;
    return -1;
}

int sim_profiles_suppress(sim_profiles_t *p, const cJSON *body, int64_t now_ms, ts_buf_t *out,
                          char *err, size_t errsz) {
    const char *chs = jstr(body, "channel");
    int c = !chs || !strcmp(chs, "email") ? CH_EMAIL : !strcmp(chs, "sms") ? CH_SMS : -1;
    int r = reason_index(jstr(body, "reason"));
    if (c < 0) return snprintf(err, errsz, "channel: expected \"email\" or \"sms\""), -1;
    if (r < 0)
        return snprintf(err, errsz,
                        "reason: expected UNSUBSCRIBE, SPAM_COMPLAINT, HARD_BOUNCE, "
                        "INVALID_EMAIL or USER_SUPPRESSED"),
               -1;
    int64_t at = now_ms;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(body, "timestamp");
    char why[128];
    if (cJSON_IsNumber(ts))
        at = (int64_t)ts->valuedouble;
    else if (cJSON_IsString(ts) &&
             ts_time_parse_iso8601(ts->valuestring, strlen(ts->valuestring), &at, why, sizeof why))
        return snprintf(err, errsz, "timestamp: %s", why), -1;
    long i = find_or_create(p, jstr(body, "email"), jstr(body, "phone_number"),
                            jstr(body, "external_id"), now_ms);
    if (i < 0) return snprintf(err, errsz, "needs email, phone_number or external_id"), -1;
    prof_t *pr = &p->v[i];
    if (c == CH_EMAIL && !pr->email) return snprintf(err, errsz, "the profile has no email"), -1;
    if (c == CH_SMS && !pr->phone)
        return snprintf(err, errsz, "the profile has no phone_number"), -1;
    chan_t *ch = &pr->ch[c];
    /* an unsubscribe link or a spam report unsubscribes; a bounce or a
     * manual suppression only suppresses */
    if (r == 1 || r == 2 || c == CH_SMS) {
        ch->consent = C_UNSUBSCRIBED;
        ch->consent_ts = at;
        ch->method = c == CH_SMS ? "TEXT" : r == 2 ? "SPAM_COMPLAINT" : "EMAIL_UNSUBSCRIBE";
    }
    ch->last_updated = at;
    if (c == CH_EMAIL) {
        ch->suppression = r;
        ch->suppressed_ts = at;
    } else { /* Klaviyo records an "Unsubscribed from SMS Marketing" event */
        if (p->n_ev == p->cap_ev) {
            size_t nc = p->cap_ev ? p->cap_ev * 2 : 64;
            sms_ev_t *ne = realloc(p->ev, nc * sizeof *ne);
            if (!ne) return snprintf(err, errsz, "out of memory"), -1;
            p->ev = ne;
            p->cap_ev = nc;
        }
        p->ev[p->n_ev++] = (sms_ev_t){.ts = at - (((at % 1000) + 1000) % 1000), .prof = (size_t)i};
    }
    pr->updated = at > pr->updated ? at : pr->updated;
    ts_buf_printf(out, "{\"id\":\"%s\"}", pr->id);
    return 0;
}

/* ---- Get Profiles ---------------------------------------------------------- */

/* Klaviyo's timestamp form: YYYY-MM-DDTHH:MM:SS.mmmmmm+00:00 */
static void put_time(ts_jw_t *w, int64_t ms) {
    if (!ms) {
        ts_jw_null(w);
        return;
    }
    char t[40], out[48];
    ts_time_format_iso8601(ms - ((ms % 1000) + 1000) % 1000, t, sizeof t);
    int frac = (int)(((ms % 1000) + 1000) % 1000);
    snprintf(out, sizeof out, "%.19s.%03d000+00:00", t, frac);
    ts_jw_str(w, out);
}

typedef enum { F_NONE, F_SUPPR_TS, F_EQUALS } ftype_t;
typedef struct {
    ftype_t type;
    int op; /* F_SUPPR_TS: 0 gt, 1 ge, 2 lt, 3 le */
    int64_t ts;
    char field[32];
    char value[512];
} filter_t;

/* greater-than(subscriptions.email.marketing.suppression.timestamp,2026-..)
 * | equals(email|phone_number|external_id|id,"value") */
static int parse_filter(const char *f, filter_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    if (!f) return 0;
    static const char *const ops[] = {"greater-than(", "greater-or-equal(", "less-than(",
                                      "less-or-equal("};
    const char *field = "subscriptions.email.marketing.suppression.timestamp,";
    for (int k = 0; k < 4; k++) {
        size_t n = strlen(ops[k]);
        if (strncmp(f, ops[k], n)) continue;
        const char *a = f + n;
        if (strncmp(a, field, strlen(field)))
            return snprintf(err, errsz, "'%.*s' is not a filterable field for %.*s",
                            (int)strcspn(a, ","), a, (int)(n - 1), ops[k]),
                   -1;
        a += strlen(field);
        size_t vl = strlen(a);
        if (vl < 2 || a[vl - 1] != ')') return snprintf(err, errsz, "Invalid filter syntax"), -1;
        vl--;
        if (a[0] == '"' && vl >= 2 && a[vl - 1] == '"') a++, vl -= 2; /* quoted date-time */
        char why[128];
        if (ts_time_parse_iso8601(a, vl, &out->ts, why, sizeof why))
            return snprintf(err, errsz, "Invalid date-time in filter: %s", why), -1;
        out->type = F_SUPPR_TS;
        out->op = k;
        return 0;
    }
    if (!strncmp(f, "equals(", 7)) {
        const char *a = f + 7, *comma = strchr(a, ',');
        size_t fl = comma ? (size_t)(comma - a) : 0;
        if (!comma || fl >= sizeof out->field)
            return snprintf(err, errsz, "Invalid filter syntax"), -1;
        memcpy(out->field, a, fl);
        if (strcmp(out->field, "email") && strcmp(out->field, "phone_number") &&
            strcmp(out->field, "external_id") && strcmp(out->field, "id"))
            return snprintf(err, errsz, "'%s' is not a filterable field for equals", out->field),
                   -1;
        const char *v = comma + 1;
        size_t vl = strlen(v);
        if (vl < 3 || v[0] != '"' || v[vl - 1] != ')' || v[vl - 2] != '"' ||
            vl - 3 >= sizeof out->value)
            return snprintf(err, errsz, "Invalid filter syntax: equals needs a quoted string"), -1;
        memcpy(out->value, v + 1, vl - 3);
        out->type = F_EQUALS;
        return 0;
    }
    return snprintf(err, errsz,
                    "Invalid filter: supported are the suppression timestamp "
                    "comparisons and equals(email|phone_number|external_id|id)"),
           -1;
}

static bool matches(const prof_t *pr, const filter_t *f) {
    switch (f->type) {
    case F_NONE: return true;
    case F_SUPPR_TS: {
        const chan_t *c = &pr->ch[CH_EMAIL];
        if (!c->suppression) return false;
        int64_t t = c->suppressed_ts;
        return f->op == 0   ? t > f->ts
               : f->op == 1 ? t >= f->ts
               : f->op == 2 ? t < f->ts
                            : t <= f->ts;
    }
    case F_EQUALS: {
        const char *v = !strcmp(f->field, "email")          ? pr->email
                        : !strcmp(f->field, "phone_number") ? pr->phone
                        : !strcmp(f->field, "external_id")  ? pr->external_id
                                                            : pr->id;
        return v && !strcmp(v, f->value);
    }
    }
    return false;
}

typedef struct {
    int64_t ts;
    size_t idx;
} hit_t;

/* page[size]: def when absent, else an integer from 1 to max; -1 when it is
 * not (err and param filled for the 400). */
static int size_arg(const char *page_size, int def, int max, char *err, size_t errsz, char *param,
                    size_t paramsz) {
    if (!page_size) return def;
    char *end;
    long v = strtol(page_size, &end, 10);
    if (*end || v < 1 || v > max)
        return snprintf(err, errsz, "page[size] must be an integer between 1 and %d", max),
               snprintf(param, paramsz, "page[size]"), -1;
    return (int)v;
}

/* page[cursor], opaque to clients: "<tag><sort ts>.<index>" in our
 * encoding. 1 with *after set, 0 when absent, -1 when malformed (err and
 * param filled for the 400). */
static int cursor_arg(const char *cursor, char tag, hit_t *after, char *err, size_t errsz,
                      char *param, size_t paramsz) {
    if (!cursor) return 0;
    long long t;
    size_t idx;
    char tail;
    if (cursor[0] != tag || sscanf(cursor + 1, "%lld.%zu%c", &t, &idx, &tail) != 2)
        return snprintf(err, errsz, "Invalid page cursor"),
               snprintf(param, paramsz, "page[cursor]"), -1;
    *after = (hit_t){t, idx};
    return 1;
}

/* The page[cursor] of the page after hit h, as cursor_arg reads it. */
static void cursor_put(char tag, const hit_t *h, char *buf, size_t n) {
    snprintf(buf, n, "%c%lld.%zu", tag, (long long)h->ts, h->idx);
}

static int cmp_hit(const void *a, const void *b) {
    const hit_t *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Item i of a listing, when it matches the request's filter: its sort key
 * in *h. */
typedef bool (*hit_fn)(const sim_profiles_t *p, size_t i, const void *filter, hit_t *h);

/* The hits among a listing's n items past `after` (NULL: from the start),
 * in the listing's order (desc: newest first), *nh of them; the caller
 * frees. NULL when out of memory. */
static hit_t *select_hits(const sim_profiles_t *p, size_t n, hit_fn hit, const void *filter,
                          const hit_t *after, bool desc, size_t *nh) {
    hit_t *hits = malloc((n ? n : 1) * sizeof *hits);
    if (!hits) return NULL;
    *nh = 0;
    for (size_t i = 0; i < n; i++) {
        hit_t h;
        if (!hit(p, i, filter, &h)) continue;
        if (after && (desc ? cmp_hit(&h, after) >= 0 : cmp_hit(&h, after) <= 0)) continue;
        hits[(*nh)++] = h;
    }
    qsort(hits, *nh, sizeof *hits, cmp_hit);
    for (size_t i = 0; desc && i < *nh / 2; i++) {
        hit_t t = hits[i];
        hits[i] = hits[*nh - 1 - i];
        hits[*nh - 1 - i] = t;
    }
    return hits;
}

static bool profile_hit(const sim_profiles_t *p, size_t i, const void *filter, hit_t *h) {
    const filter_t *f = filter;
    if (!matches(&p->v[i], f)) return false;
    *h = (hit_t){f->type == F_SUPPR_TS ? p->v[i].ch[CH_EMAIL].suppressed_ts : 0, i};
    return true;
}

/* base + path, then "?name=value&..." for each q[i] with a value (both
 * percent-encoded; q ends at {NULL, NULL}), then the page cursor. */
static void put_link(ts_buf_t *b, const char *base, const char *path, const char *q[][2],
                     const char *cursor) {
    ts_buf_printf(b, "%s%s", base, path);
    char sep = '?';
    for (int i = 0; q[i][0]; i++) {
        if (!q[i][1]) continue;
        ts_buf_putc(b, sep);
        ts_buf_urlenc(b, q[i][0]);
        ts_buf_putc(b, '=');
        ts_buf_urlenc(b, q[i][1]);
        sep = '&';
    }
    if (cursor) ts_buf_printf(b, "%cpage%%5Bcursor%%5D=", sep), ts_buf_urlenc(b, cursor);
}

/* A page's "links": self (at cursor) and, when more hits follow the last
 * one shown (last), next: a cursor tagged tag just after it. */
static void put_page_links(ts_jw_t *w, const char *base, const char *path, const char *q[][2],
                           const char *cursor, char tag, const hit_t *last) {
    ts_buf_t lb = TS_BUF_INIT;
    ts_jw_key(w, "links");
    ts_jw_obj_open(w);
    put_link(&lb, base, path, q, cursor);
    ts_jw_kv_str(w, "self", lb.data);
    if (last) {
        char next[64];
        cursor_put(tag, last, next, sizeof next);
        ts_buf_reset(&lb);
        put_link(&lb, base, path, q, next);
        ts_jw_kv_str(w, "next", lb.data);
    }
    ts_jw_obj_close(w);
    ts_buf_free(&lb);
}

/* A profile resource up to its open attributes object: type, id, email,
 * phone_number, external_id; the caller adds the rest and closes both. */
static void profile_open(ts_jw_t *w, const prof_t *pr) {
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "type", "profile");
    ts_jw_kv_str(w, "id", pr->id);
    ts_jw_key(w, "attributes");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "email", pr->email);
    ts_jw_kv_str(w, "phone_number", pr->phone);
    ts_jw_kv_str(w, "external_id", pr->external_id);
}

static void write_subscriptions(ts_jw_t *w, const prof_t *pr) {
    ts_jw_key(w, "subscriptions");
    ts_jw_obj_open(w);
    const chan_t *e = &pr->ch[CH_EMAIL], *s = &pr->ch[CH_SMS];
    if (pr->email) {
        ts_jw_key(w, "email");
        ts_jw_obj_open(w);
        ts_jw_key(w, "marketing");
        ts_jw_obj_open(w);
        ts_jw_key(w, "can_receive_email_marketing");
        ts_jw_bool(w, e->consent != C_UNSUBSCRIBED && !e->suppression);
        ts_jw_kv_str(w, "consent", consent_names[e->consent]);
        ts_jw_key(w, "consent_timestamp");
        put_time(w, e->consent_ts);
        ts_jw_key(w, "last_updated");
        put_time(w, e->last_updated);
        ts_jw_kv_str(w, "method", e->method);
        ts_jw_kv_str(w, "method_detail", "");
        ts_jw_kv_str(w, "custom_method_detail", e->custom_method_detail);
        ts_jw_key(w, "double_optin");
        ts_jw_bool(w, false);
        ts_jw_key(w, "suppression");
        ts_jw_arr_open(w);
        if (e->suppression) {
            ts_jw_obj_open(w);
            ts_jw_kv_str(w, "reason", reasons[e->suppression]);
            ts_jw_key(w, "timestamp");
            put_time(w, e->suppressed_ts);
            ts_jw_obj_close(w);
        }
        ts_jw_arr_close(w);
        ts_jw_key(w, "list_suppressions");
        ts_jw_arr_open(w);
        ts_jw_arr_close(w);
        ts_jw_obj_close(w);
        ts_jw_obj_close(w);
    }
    if (pr->phone) {
        ts_jw_key(w, "sms");
        ts_jw_obj_open(w);
        ts_jw_key(w, "marketing");
        ts_jw_obj_open(w);
        ts_jw_key(w, "can_receive_sms_marketing");
        ts_jw_bool(w, s->consent == C_SUBSCRIBED);
        ts_jw_kv_str(w, "consent", consent_names[s->consent]);
        ts_jw_key(w, "consent_timestamp");
        put_time(w, s->consent_ts);
        ts_jw_kv_str(w, "method", s->method);
        ts_jw_kv_str(w, "method_detail", "");
        ts_jw_key(w, "last_updated");
        put_time(w, s->last_updated);
        ts_jw_obj_close(w);
        ts_jw_obj_close(w);
    }
    ts_jw_obj_close(w);
}

unsigned sim_profiles_get(sim_profiles_t *p, const char *filter, const char *additional,
                          const char *page_size, const char *cursor, const char *base,
                          ts_buf_t *out, char *err, size_t errsz, char *param, size_t paramsz) {
    filter_t f;
    if (parse_filter(filter, &f, err, errsz)) return snprintf(param, paramsz, "filter"), 400;
    bool subs = false;
    if (additional) { /* a comma-separated list of the enum values */
        const char *a = additional;
        while (*a) {
            size_t n = strcspn(a, ",");
            if (n == 13 && !strncmp(a, "subscriptions", 13))
                subs = true;
            else if (!(n == 20 && !strncmp(a, "predictive_analytics", 20)))
                return snprintf(err, errsz, "'%.*s' is not a valid additional field", (int)n, a),
                       snprintf(param, paramsz, "additional-fields[profile]"), 400;
            a += n + (a[n] == ',');
        }
    }
    /* Klaviyo's default page size; at most 100 */
    int size = size_arg(page_size, 20, 100, err, errsz, param, paramsz);
    hit_t after = {-1, 0}; /* "c<sort ts>.<profile index>" */
    int has_after = size < 0 ? 0 : cursor_arg(cursor, 'c', &after, err, errsz, param, paramsz);
    if (size < 0 || has_after < 0) return 400;
    size_t nh;
    hit_t *hits = select_hits(p, p->n, profile_hit, &f, has_after ? &after : NULL, false, &nh);
    if (!hits) return snprintf(err, errsz, "out of memory"), 500;
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_key(&w, "data");
    ts_jw_arr_open(&w);
    size_t shown = nh < (size_t)size ? nh : (size_t)size;
    ts_buf_t link = TS_BUF_INIT;
    for (size_t k = 0; k < shown; k++) {
        const prof_t *pr = &p->v[hits[k].idx];
        profile_open(&w, pr);
        ts_jw_key(&w, "created");
        put_time(&w, pr->created);
        ts_jw_key(&w, "updated");
        put_time(&w, pr->updated);
        if (subs) write_subscriptions(&w, pr);
        ts_jw_obj_close(&w);
        ts_jw_key(&w, "links");
        ts_jw_obj_open(&w);
        ts_buf_reset(&link);
        ts_buf_printf(&link, "%s/api/profiles/%s/", base, pr->id);
        ts_jw_kv_str(&w, "self", link.data);
        ts_jw_obj_close(&w);
        ts_jw_obj_close(&w);
    }
    ts_jw_arr_close(&w);
    ts_buf_free(&link);
    char psz[16];
    snprintf(psz, sizeof psz, "%d", size);
    const char *qs[][2] = {{"filter", filter},
                           {"additional-fields[profile]", additional},
                           {"page[size]", page_size ? psz : NULL},
                           {NULL, NULL}};
    put_page_links(&w, base, "/api/profiles/", qs, cursor, 'c',
                   nh > shown ? &hits[shown - 1] : NULL);
    ts_jw_obj_close(&w);
    free(hits);
    return 200;
}

void sim_profiles_jsonl(const sim_profiles_t *p, ts_buf_t *out) {
    for (size_t i = 0; i < p->n; i++) {
        const prof_t *pr = &p->v[i];
        ts_jw_t w;
        ts_jw_init_obj(&w, out);
        ts_jw_kv_str(&w, "id", pr->id);
        ts_jw_kv_str(&w, "email", pr->email);
        ts_jw_kv_str(&w, "phone_number", pr->phone);
        ts_jw_kv_str(&w, "external_id", pr->external_id);
        ts_jw_kv_str(&w, "email_consent", consent_names[pr->ch[CH_EMAIL].consent]);
        ts_jw_kv_str(&w, "email_suppression", reasons[pr->ch[CH_EMAIL].suppression]);
        ts_jw_key(&w, "email_suppressed_at");
        put_time(&w, pr->ch[CH_EMAIL].suppressed_ts);
        ts_jw_kv_str(&w, "sms_consent", consent_names[pr->ch[CH_SMS].consent]);
        ts_jw_obj_close(&w);
        ts_buf_putc(out, '\n');
    }
}

/* ---- Get Metrics / Get Events ------------------------------------------------ */

/* The account's metrics: Klaviyo's built-in consent metrics (ids are
 * Klaviyo's 6-character form). */
static const struct {
    const char *id, *name;
} metrics[] = {{"RcvEml", "Received Email"},
               {"UnsEml", "Unsubscribed from Email Marketing"},
               {"SubSms", "Subscribed to SMS Marketing"},
               {"UnsSms", "Unsubscribed from SMS Marketing"}};
#define N_METRICS        (sizeof metrics / sizeof metrics[0])
#define SMS_UNSUB_METRIC "UnsSms"

static void metric_resource(ts_jw_t *w, size_t k, const char *base) {
    char link[300];
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "type", "metric");
    ts_jw_kv_str(w, "id", metrics[k].id);
    ts_jw_key(w, "attributes");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "name", metrics[k].name);
    ts_jw_kv_str(w, "created", "2025-01-01T00:00:00.000000+00:00");
    ts_jw_kv_str(w, "updated", "2025-01-01T00:00:00.000000+00:00");
    ts_jw_key(w, "integration");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "name", "Klaviyo");
    ts_jw_kv_str(w, "category", "Internal");
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
    ts_jw_key(w, "links");
    ts_jw_obj_open(w);
    snprintf(link, sizeof link, "%s/api/metrics/%s/", base, metrics[k].id);
    ts_jw_kv_str(w, "self", link);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

/* "a,b,c" each in `allowed` (NULL-terminated) */
static int check_list(const char *v, const char *const *allowed, char *err, size_t errsz) {
    while (v && *v) {
        size_t n = strcspn(v, ",");
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strlen(*a) == n && !strncmp(*a, v, n);
        if (!ok) return snprintf(err, errsz, "'%.*s' is not a valid value", (int)n, v), -1;
        v += n + (v[n] == ',');
    }
    return 0;
}

unsigned sim_profiles_metrics_get(const char *filter, const char *fields, const char *cursor,
                                  const char *base, ts_buf_t *out, char *err, size_t errsz,
                                  char *param, size_t paramsz) {
    static const char *const mfields[] = {"created", "id", "integration", "name", "updated", NULL};
    if (check_list(fields, mfields, err, errsz))
        return snprintf(param, paramsz, "fields[metric]"), 400;
    if (filter && strncmp(filter, "equals(integration.name,", 24) &&
        strncmp(filter, "equals(integration.category,", 28))
        return snprintf(err, errsz,
                        "Invalid filter: only equals(integration.name|integration.category,...)"),
               snprintf(param, paramsz, "filter"), 400;
    if (cursor)
        return snprintf(err, errsz, "Invalid page cursor"),
               snprintf(param, paramsz, "page[cursor]"), 400;
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_key(&w, "data");
    ts_jw_arr_open(&w);
    for (size_t k = 0; k < N_METRICS; k++) {
        if (filter) { /* the value of equals(field,"v") or ('v') must be Klaviyo / Internal */
            const char *v = strchr(filter, ',') + 1;
            bool name = !strncmp(filter, "equals(integration.name,", 24);
            const char *want = name ? "Klaviyo" : "Internal";
            if (strlen(v) < strlen(want) + 3 || strncmp(v + 1, want, strlen(want))) continue;
        }
        metric_resource(&w, k, base);
    }
    ts_jw_arr_close(&w);
    ts_jw_key(&w, "links");
    ts_jw_obj_open(&w);
    char self[300];
    snprintf(self, sizeof self, "%s/api/metrics/", base);
    ts_jw_kv_str(&w, "self", self);
    ts_jw_obj_close(&w);
    ts_jw_obj_close(&w);
    return 200;
}

typedef struct {
    char metric[64]; /* "" = any */
    bool has_lo, has_hi, lo_incl, hi_incl;
    int64_t lo, hi;
} evfilter_t;

/* one condition of a Get Events filter */
static int ev_condition(const char *c, size_t n, evfilter_t *f, char *err, size_t errsz) {
    static const char *const ops[] = {"greater-than(", "greater-or-equal(", "less-than(",
                                      "less-or-equal("};
    if (n < 2 || c[n - 1] != ')') return snprintf(err, errsz, "Invalid filter syntax"), -1;
    if (!strncmp(c, "equals(metric_id,", 17)) {
        const char *v = c + 17;
        size_t vl = n - 17 - 1;
        if (vl < 3 || (v[0] != '"' && v[0] != '\'') || v[vl - 1] != v[0] ||
            vl - 2 >= sizeof f->metric)
            return snprintf(err, errsz, "Invalid filter syntax: equals needs a quoted string"), -1;
        memcpy(f->metric, v + 1, vl - 2);
        f->metric[vl - 2] = '\0';
        return 0;
    }
    for (int k = 0; k < 4; k++) {
        size_t on = strlen(ops[k]);
        if (n <= on || strncmp(c, ops[k], on)) continue;
        const char *a = c + on;
        size_t fl = strcspn(a, ",");
        if (!((fl == 8 && !strncmp(a, "datetime", 8)) || (fl == 9 && !strncmp(a, "timestamp", 9))))
            return snprintf(err, errsz, "'%.*s' is not a filterable field for %.*s", (int)fl, a,
                            (int)(on - 1), ops[k]),
                   -1;
        const char *v = a + fl + 1;
        size_t vl = (size_t)(c + n - 1 - v);
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) v++, vl -= 2;
        int64_t t;
        char why[128];
        if (ts_time_parse_iso8601(v, vl, &t, why, sizeof why))
            return snprintf(err, errsz, "Invalid date-time in filter: %s", why), -1;
        if (k < 2)
            f->has_lo = true, f->lo = t, f->lo_incl = k == 1;
        else
            f->has_hi = true, f->hi = t, f->hi_incl = k == 3;
        return 0;
    }
    return snprintf(err, errsz,
                    "Invalid filter: supported are equals(metric_id,...) and datetime/timestamp "
                    "comparisons, alone or in and(...)"),
           -1;
}

static int ev_filter(const char *f, evfilter_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    if (!f) return 0;
    size_t n = strlen(f);
    if (strncmp(f, "and(", 4)) return ev_condition(f, n, out, err, errsz);
    if (f[n - 1] != ')') return snprintf(err, errsz, "Invalid filter syntax"), -1;
    const char *p = f + 4, *end = f + n - 1;
    while (p < end) { /* split at commas outside parentheses and quotes */
        const char *q = p;
        int depth = 0;
        char quote = 0;
        for (; q < end; q++) {
            if (quote) {
                if (*q == quote) quote = 0;
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            } else if (*q == '(') {
                depth++;
            } else if (*q == ')') {
                depth--;
            } else if (*q == ',' && depth == 0) {
                break;
            }
        }
        if (ev_condition(p, (size_t)(q - p), out, err, errsz)) return -1;
        p = q + 1;
    }
    return 0;
}

static bool ev_matches(const sms_ev_t *e, const evfilter_t *f) {
    if (f->metric[0] && strcmp(f->metric, SMS_UNSUB_METRIC)) return false;
    if (f->has_lo && (f->lo_incl ? e->ts < f->lo : e->ts <= f->lo)) return false;
    if (f->has_hi && (f->hi_incl ? e->ts > f->hi : e->ts >= f->hi)) return false;
    return true;
}

static bool event_hit(const sim_profiles_t *p, size_t i, const void *filter, hit_t *h) {
    if (!ev_matches(&p->ev[i], filter)) return false;
    *h = (hit_t){p->ev[i].ts, i};
    return true;
}

/* Get Events' query, checked: the filter, the order, what to include,
 * the page size and the cursor's position. */
typedef struct {
    evfilter_t f;
    bool desc, inc_profile, inc_metric, has_after;
    int size;
    hit_t after;
} evq_t;

/* Checks Get Events' parameters into *q; 0, or the status with err and
 * the parameter's name. */
static unsigned ev_query(evq_t *q, const char *filter, const char *sort, const char *include,
                         const char *page_size, const char *cursor, char *err, size_t errsz,
                         char *param, size_t paramsz) {
    memset(q, 0, sizeof *q);
    if (ev_filter(filter, &q->f, err, errsz)) return snprintf(param, paramsz, "filter"), 400;
    static const char *const sorts[] = {"datetime", "-datetime", "timestamp", "-timestamp", NULL};
    static const char *const incs[] = {"attributions", "metric", "profile", NULL};
    if (sort && (strchr(sort, ',') || check_list(sort, sorts, err, errsz)))
        return snprintf(err, errsz, "'%s' is not a valid sort", sort),
               snprintf(param, paramsz, "sort"), 400;
    if (check_list(include, incs, err, errsz)) return snprintf(param, paramsz, "include"), 400;
    for (const char *a = include; a && *a;) {
        size_t n = strcspn(a, ",");
        q->inc_profile |= n == 7 && !strncmp(a, "profile", 7);
        q->inc_metric |= n == 6 && !strncmp(a, "metric", 6);
        a += n + (a[n] == ',');
    }
    /* get_events.json: default 200, at most 1000 */
    if ((q->size = size_arg(page_size, 200, 1000, err, errsz, param, paramsz)) < 0) return 400;
    q->desc = sort && sort[0] == '-';
    int has_after = cursor_arg(cursor, 'e', &q->after, err, errsz, param, paramsz);
    if (has_after < 0) return 400;
    q->has_after = has_after;
    return 0;
}

/* One event resource: its attributes, its profile and metric relationships. */
static void ev_resource(ts_jw_t *w, const sim_profiles_t *p, size_t idx, const char *base) {
    const sms_ev_t *e = &p->ev[idx];
    const prof_t *pr = &p->v[e->prof];
    char link[400], id[48], dt[48];
    snprintf(id, sizeof id, "simev%08zu", idx + 1);
    ts_time_format_iso8601(e->ts, dt, sizeof dt);
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "type", "event");
    ts_jw_kv_str(w, "id", id);
    ts_jw_key(w, "attributes");
    ts_jw_obj_open(w);
    ts_jw_key(w, "timestamp");
    ts_jw_int(w, e->ts / 1000);
    ts_jw_key(w, "event_properties");
    ts_jw_obj_open(w);
    ts_jw_kv_str(w, "method", "TEXT");
    ts_jw_obj_close(w);
    ts_jw_kv_str(w, "datetime", dt);
    ts_jw_kv_str(w, "uuid", id);
    ts_jw_obj_close(w);
    ts_jw_key(w, "relationships");
    ts_jw_obj_open(w);
    static const char *const rel[2][3] = {{"profile", "profile", "profiles"},
                                          {"metric", "metric", "metrics"}};
    for (int r = 0; r < 2; r++) {
        ts_jw_key(w, rel[r][0]);
        ts_jw_obj_open(w);
        ts_jw_key(w, "data");
        ts_jw_obj_open(w);
        ts_jw_kv_str(w, "type", rel[r][1]);
        ts_jw_kv_str(w, "id", r == 0 ? pr->id : SMS_UNSUB_METRIC);
        ts_jw_obj_close(w);
        ts_jw_key(w, "links");
        ts_jw_obj_open(w);
        snprintf(link, sizeof link, "%s/api/events/%s/relationships/%s/", base, id, rel[r][0]);
        ts_jw_kv_str(w, "self", link);
        snprintf(link, sizeof link, "%s/api/events/%s/%s/", base, id, rel[r][0]);
        ts_jw_kv_str(w, "related", link);
        ts_jw_obj_close(w);
        ts_jw_obj_close(w);
    }
    ts_jw_obj_close(w);
    ts_jw_key(w, "links");
    ts_jw_obj_open(w);
    snprintf(link, sizeof link, "%s/api/events/%s/", base, id);
    ts_jw_kv_str(w, "self", link);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

/* "included": the metric once and each shown event's profile once. */
static void ev_included(ts_jw_t *w, const sim_profiles_t *p, const evq_t *q, const hit_t *hits,
                        size_t shown, const char *base) {
    char link[400];
    ts_jw_key(w, "included");
    ts_jw_arr_open(w);
    if (q->inc_metric && shown) metric_resource(w, 3, base);
    for (size_t k = 0; q->inc_profile && k < shown; k++) {
        size_t pi = p->ev[hits[k].idx].prof;
        bool dup = false; /* each profile once */
        for (size_t j = 0; j < k && !dup; j++) dup = p->ev[hits[j].idx].prof == pi;
        if (dup) continue;
        const prof_t *pr = &p->v[pi];
        profile_open(w, pr);
        ts_jw_obj_close(w);
        ts_jw_key(w, "links");
        ts_jw_obj_open(w);
        snprintf(link, sizeof link, "%s/api/profiles/%s/", base, pr->id);
        ts_jw_kv_str(w, "self", link);
        ts_jw_obj_close(w);
        ts_jw_obj_close(w);
    }
    ts_jw_arr_close(w);
}

unsigned sim_profiles_events_get(sim_profiles_t *p, const char *filter, const char *sort,
                                 const char *include, const char *fields_profile,
                                 const char *page_size, const char *cursor, const char *base,
                                 ts_buf_t *out, char *err, size_t errsz, char *param,
                                 size_t paramsz) {
    evq_t q;
    unsigned st =
        ev_query(&q, filter, sort, include, page_size, cursor, err, errsz, param, paramsz);
    if (st) return st;
    (void)fields_profile; /* sparse fieldsets: every identifier is always shown */
    size_t nh = 0;
    hit_t *hits =
        select_hits(p, p->n_ev, event_hit, &q.f, q.has_after ? &q.after : NULL, q.desc, &nh);
    if (!hits) return snprintf(err, errsz, "out of memory"), 500;
    size_t shown = nh < (size_t)q.size ? nh : (size_t)q.size;
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_key(&w, "data");
    ts_jw_arr_open(&w);
    for (size_t k = 0; k < shown; k++) ev_resource(&w, p, hits[k].idx, base);
    ts_jw_arr_close(&w);
    if (q.inc_profile || q.inc_metric) ev_included(&w, p, &q, hits, shown, base);
    char psz[16];
    snprintf(psz, sizeof psz, "%d", q.size);
    const char *qs[][2] = {{"filter", filter},
                           {"sort", sort},
                           {"include", include},
                           {"fields[profile]", fields_profile},
                           {"page[size]", page_size ? psz : NULL},
                           {NULL, NULL}};
    put_page_links(&w, base, "/api/events/", qs, cursor, 'e', nh > shown ? &hits[shown - 1] : NULL);
    ts_jw_obj_close(&w);
    free(hits);
    return 200;
}
