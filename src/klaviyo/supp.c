/*
 * supp.c - Klaviyo's suppressions as tillstream-suppressions reads them:
 * Get Profiles / Get Events / Get Metrics pages parsed, watermarks, the
 * suppressions topic's records (tillstream/supp.h). No I/O.
 */
#include "tillstream/supp.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/jw.h"
#include "tillstream/model.h"

/* ---- watermarks -------------------------------------------------------------- */

static void mark_clear(ts_supp_mark_t *m) {
    ts_strv_free(m->ids, m->n_ids);
    memset(m, 0, sizeof *m);
}

void ts_supp_state_clear(ts_supp_state_t *st) {
    if (!st) return;
    for (int c = 0; c < TS_SUPP__CHANNELS; c++) mark_clear(&st->ch[c]);
    st->pass_at = 0;
}

static ts_err_t mark_add(ts_supp_mark_t *m, const char *id) {
    if (m->n_ids == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        char **ids = realloc(m->ids, cap * sizeof *ids);
        if (!ids) return TS_ERR_NOMEM;
        m->ids = ids;
        m->cap = cap;
    }
    if (!(m->ids[m->n_ids] = strdup(id))) return TS_ERR_NOMEM;
    m->n_ids++;
    return TS_OK;
}

ts_err_t ts_supp_state_copy(ts_supp_state_t *dst, const ts_supp_state_t *src) {
    memset(dst, 0, sizeof *dst);
    dst->pass_at = src->pass_at;
    for (int c = 0; c < TS_SUPP__CHANNELS; c++) {
        dst->ch[c].at = src->ch[c].at;
        for (size_t i = 0; i < src->ch[c].n_ids; i++)
            if (mark_add(&dst->ch[c], src->ch[c].ids[i])) {
                ts_supp_state_clear(dst);
                return TS_ERR_NOMEM;
            }
    }
    return TS_OK;
}

bool ts_supp_mark_has(const ts_supp_mark_t *m, const char *id) {
    /* linear: the ids of one millisecond (one second for events) */
    for (size_t i = 0; i < m->n_ids; i++)
        if (!strcmp(m->ids[i], id)) return true;
    return false;
}

ts_err_t ts_supp_mark_advance(ts_supp_mark_t *m, int64_t at, const char *id) {
    if (at < m->at) return TS_OK;
    if (at > m->at) {
        for (size_t i = 0; i < m->n_ids; i++) free(m->ids[i]);
        m->n_ids = 0;
        m->at = at;
    }
    return ts_supp_mark_has(m, id) ? TS_OK : mark_add(m, id);
}

static const char *const ch_names[TS_SUPP__CHANNELS] = {"email", "sms"};

/* The state object's members into *out (zeroed by the caller). */
static ts_err_t state_read(const cJSON *root, ts_supp_state_t *out, char *errstr,
                           size_t errstr_size) {
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(root, "pass_at");
    if (cJSON_IsNumber(pa)) out->pass_at = (int64_t)pa->valuedouble;
    for (int c = 0; c < TS_SUPP__CHANNELS; c++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, ch_names[c]);
        if (!o) continue;
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
        if (!cJSON_IsNumber(at) || (ids && !cJSON_IsArray(ids)))
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "state: %s: expected {\"at\": ms, \"ids\": [...]}", ch_names[c]);
        out->ch[c].at = (int64_t)at->valuedouble;
        for (const cJSON *i = ids ? ids->child : NULL; i; i = i->next)
            if (cJSON_IsString(i) && mark_add(&out->ch[c], i->valuestring)) return TS_ERR_NOMEM;
    }
    return TS_OK;
}

ts_err_t ts_supp_state_parse(const char *json, size_t len, ts_supp_state_t *out, char *errstr,
                             size_t errstr_size) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    ts_err_t rc = cJSON_IsObject(root)
                      ? state_read(root, out, errstr, errstr_size)
                      : ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "state: not a JSON object");
    if (rc) ts_supp_state_clear(out);
    cJSON_Delete(root);
    return rc;
}

void ts_supp_state_write(const ts_supp_state_t *st, ts_buf_t *out) {
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_kv_int(&w, "v", 1);
    ts_jw_kv_int(&w, "pass_at", st->pass_at);
    for (int c = 0; c < TS_SUPP__CHANNELS; c++) {
        ts_jw_key(&w, ch_names[c]);
        ts_jw_obj_open(&w);
        ts_jw_kv_int(&w, "at", st->ch[c].at);
        ts_jw_key(&w, "ids");
        ts_jw_arr_open(&w);
        for (size_t i = 0; i < st->ch[c].n_ids; i++) ts_jw_str(&w, st->ch[c].ids[i]);
        ts_jw_arr_close(&w);
        ts_jw_obj_close(&w);
    }
    ts_jw_obj_close(&w);
}

/* ---- records ------------------------------------------------------------------- */

/* ISO-8601 UTC with milliseconds: "2026-12-02T01:02:03.456Z" */
static void iso_ms(int64_t ms, char *out, size_t n) {
    int64_t frac = ((ms % 1000) + 1000) % 1000;
    char t[40];
    ts_time_format_iso8601(ms - frac, t, sizeof t);
    snprintf(out, n, "%.19s.%03dZ", t, (int)frac);
}

void ts_supp_record_json(const char *account, const ts_supp_record_t *r, ts_buf_t *out) {
    char t[48];
    iso_ms(r->at, t, sizeof t);
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_kv_str(&w, "account", account);
    ts_jw_kv_str(&w, "channel", ch_names[r->channel]);
    ts_jw_kv_str(&w, "reason", r->reason);
    ts_jw_kv_str(&w, "timestamp", t);
    ts_jw_kv_str(&w, "email", r->email);
    ts_jw_kv_str(&w, "phone_number", r->phone_number);
    ts_jw_kv_str(&w, "external_id", r->external_id);
    ts_jw_kv_str(&w, "profile_id", r->profile_id);
    ts_jw_obj_close(&w);
}

const char *ts_supp_record_key(const ts_supp_record_t *r) {
    if (r->external_id) return r->external_id;
    return r->channel == TS_SUPP_EMAIL ? r->email : r->phone_number;
}

/* ---- pages ---------------------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *gstr(const cJSON *o, const char *k) {
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static bool parse_time(const char *s, int64_t *ms) {
    return s && ts_time_parse_iso8601(s, strlen(s), ms, NULL, 0) == TS_OK;
}

/* the collection document's data array and links.next */
static ts_err_t open_page(const char *body, size_t len, cJSON **root, const cJSON **data,
                          ts_buf_t *next, const char *what, char *errstr, size_t errstr_size) {
    ts_buf_reset(next);
    *root = cJSON_ParseWithLength(body, len);
    *data = get(*root, "data");
    if (!cJSON_IsArray(*data)) {
        cJSON_Delete(*root);
        *root = NULL;
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "%s: no data array in the answer",
                         what);
    }
    const char *n = gstr(get(*root, "links"), "next");
    if (n) ts_buf_puts(next, n);
    return TS_OK;
}

/* Where a page's records go: emit, unless an earlier pass (mark `from`)
 * produced them; `to` advanced past each one emitted. */
typedef struct {
    const ts_supp_mark_t *from;
    ts_supp_mark_t *to;
    ts_supp_emit_fn emit;
    void *opaque;
} sink_t;

/* One suppression of the profile whose attributes are pa. */
static ts_err_t take(const sink_t *k, ts_supp_channel_t channel, const char *reason, int64_t at,
                     const cJSON *pa, const char *profile_id, const char *id) {
    if (at < k->from->at || (at == k->from->at && ts_supp_mark_has(k->from, id)))
        return TS_OK; /* produced by an earlier pass */
    ts_supp_record_t r = {.channel = channel,
                          .reason = reason,
                          .at = at,
                          .email = gstr(pa, "email"),
                          .phone_number = gstr(pa, "phone_number"),
                          .external_id = gstr(pa, "external_id"),
                          .profile_id = profile_id,
                          .id = id};
    ts_err_t rc = k->emit(k->opaque, &r);
    return rc ? rc : ts_supp_mark_advance(k->to, at, id);
}

ts_err_t ts_supp_profiles_page(const char *body, size_t len, const ts_supp_mark_t *from,
                               ts_supp_mark_t *to, ts_supp_emit_fn emit, void *opaque,
                               ts_buf_t *next, char *errstr, size_t errstr_size) {
    cJSON *root;
    const cJSON *data;
    ts_err_t rc = open_page(body, len, &root, &data, next, "Get Profiles", errstr, errstr_size);
    if (rc) return rc;
    const sink_t k = {.from = from, .to = to, .emit = emit, .opaque = opaque};
    for (const cJSON *p = data->child; p && !rc; p = p->next) {
        const cJSON *a = get(p, "attributes");
        const char *id = gstr(p, "id");
        const cJSON *sup =
            get(get(get(get(a, "subscriptions"), "email"), "marketing"), "suppression");
        if (!id || !cJSON_IsArray(sup)) continue; /* no subscriptions: not asked for, or none */
        /* the newest suppression of the profile (Klaviyo lists one per reason) */
        const char *reason = NULL;
        int64_t at = 0;
        for (const cJSON *s = sup->child; s; s = s->next) {
            int64_t t;
            const char *r = gstr(s, "reason");
            if (r && parse_time(gstr(s, "timestamp"), &t) && (!reason || t > at)) {
                reason = r;
                at = t;
            }
        }
        if (reason) rc = take(&k, TS_SUPP_EMAIL, reason, at, a, id, id);
    }
    cJSON_Delete(root);
    return rc;
}

ts_err_t ts_supp_events_page(const char *body, size_t len, const ts_supp_mark_t *from,
                             ts_supp_mark_t *to, ts_supp_emit_fn emit, void *opaque, ts_buf_t *next,
                             char *errstr, size_t errstr_size) {
    cJSON *root;
    const cJSON *data;
    ts_err_t rc = open_page(body, len, &root, &data, next, "Get Events", errstr, errstr_size);
    if (rc) return rc;
    const sink_t k = {.from = from, .to = to, .emit = emit, .opaque = opaque};
    const cJSON *included = get(root, "included");
    for (const cJSON *e = data->child; e && !rc; e = e->next) {
        const char *id = gstr(e, "id");
        const cJSON *a = get(e, "attributes");
        int64_t at;
        if (!id || !parse_time(gstr(a, "datetime"), &at)) {
            const cJSON *ts = get(a, "timestamp"); /* seconds */
            if (!id || !cJSON_IsNumber(ts)) continue;
            at = (int64_t)ts->valuedouble * 1000;
        }
        const char *pid = gstr(get(get(get(e, "relationships"), "profile"), "data"), "id");
        const cJSON *pa = NULL;
        for (const cJSON *inc = included ? included->child : NULL; pid && inc; inc = inc->next) {
            const char *t = gstr(inc, "type"), *iid = gstr(inc, "id");
            if (t && iid && !strcmp(t, "profile") && !strcmp(iid, pid)) {
                pa = get(inc, "attributes");
                break;
            }
        }
        rc = take(&k, TS_SUPP_SMS, "UNSUBSCRIBE", at, pa, pid, id);
    }
    cJSON_Delete(root);
    return rc;
}

ts_err_t ts_supp_metrics_page(const char *body, size_t len, const char *name, ts_buf_t *id,
                              ts_buf_t *next, char *errstr, size_t errstr_size) {
    cJSON *root;
    const cJSON *data;
    ts_buf_reset(id);
    ts_err_t rc = open_page(body, len, &root, &data, next, "Get Metrics", errstr, errstr_size);
    if (rc) return rc;
    for (const cJSON *m = data->child; m; m = m->next) {
        const char *n = gstr(get(m, "attributes"), "name"), *mid = gstr(m, "id");
        if (n && mid && !strcmp(n, name)) {
            ts_buf_puts(id, mid);
            break;
        }
    }
    cJSON_Delete(root);
    return TS_OK;
}

/* ---- URLs ------------------------------------------------------------------------ */

void ts_supp_profiles_url(ts_buf_t *out, const char *base, const ts_supp_mark_t *from,
                          int page_size) {
    char t[48], f[160];
    iso_ms(from->at, t, sizeof t);
    snprintf(f, sizeof f,
             "greater-or-equal(subscriptions.email.marketing.suppression.timestamp,%s)", t);
    ts_buf_printf(out, "%s/api/profiles/?filter=", base);
    ts_buf_urlenc(out, f);
    ts_buf_puts(out, "&sort=subscriptions.email.marketing.suppression.timestamp"
                     "&additional-fields%5Bprofile%5D=subscriptions");
    ts_buf_printf(out, "&page%%5Bsize%%5D=%d", page_size);
}

void ts_supp_events_url(ts_buf_t *out, const char *base, const char *metric_id,
                        const ts_supp_mark_t *from, int page_size) {
    /* Get Events' datetime has second precision: ask from the mark's second */
    char t[48];
    ts_time_format_iso8601(from->at - (((from->at % 1000) + 1000) % 1000), t, sizeof t);
    ts_buf_t f = TS_BUF_INIT;
    ts_buf_puts(&f, "and(equals(metric_id,\"");
    ts_buf_puts(&f, metric_id);
    ts_buf_printf(&f, "\"),greater-or-equal(datetime,%s))", t);
    ts_buf_printf(out, "%s/api/events/?filter=", base);
    ts_buf_urlenc(out, f.data);
    ts_buf_free(&f);
    ts_buf_puts(out, "&sort=datetime&include=profile"
                     "&fields%5Bprofile%5D=email,phone_number,external_id");
    ts_buf_printf(out, "&page%%5Bsize%%5D=%d", page_size);
}

void ts_supp_metrics_url(ts_buf_t *out, const char *base) {
    ts_buf_printf(out, "%s/api/metrics/?fields%%5Bmetric%%5D=name", base);
}

bool ts_supp_url_on_base(const char *url, const char *base) {
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    return !strncmp(url, base, n) && (url[n] == '/' || url[n] == '?' || url[n] == '\0');
}
