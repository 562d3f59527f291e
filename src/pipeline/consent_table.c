/*
 * consent_table.c - consent states per (account, customer), suppressions
 * waiting for their customer, and the decision hook of the customers path
 * (consent_table.h; rules in consent.c and docs/consent.md).
 *
 * One open-addressing table, keyed by (account, "x:<customer id>") for
 * customers and (account, "e:<email>") / (account, "p:<phone>") for
 * suppressions of profiles Klaviyo knows without a POS id. Suppressions
 * keyed by email/phone are merged into the customer's state each time
 * that customer is decided; the merge is idempotent (ts_consent_suppress).
 */
#include "tillstream/consent_table.h"
#include "tillstream/hash.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/log.h"

/* An entry lives in a chunk of ENTRY_CHUNK entries and never moves (the
 * table grows its slots, not its entries); the slots hold 8 bytes each:
 * the key hash's high 32 bits as a tag, so a probe rarely touches an entry,
 * and the entry's index + 1 (0 = empty). At 1 M customers that is about
 * 88 + 14 (key) + 11-21 (slots) bytes per customer, where a table of whole
 * entries at load <= 3/4 took 130-260 (docs/consumers.md, consent state). */
typedef struct {
    const char *key; /* arena, NUL-terminated */
    ts_consent_state_t st;
    int account;
} entry_t;

#define ENTRY_CHUNK_SHIFT 12
#define ENTRY_CHUNK       ((size_t)1 << ENTRY_CHUNK_SHIFT)

typedef struct {
    ts_metric_t *sent[TS_CONSENT__CHANNELS][2]; /* [ch][0 subscribe, 1 unsubscribe] */
    ts_metric_t *unchanged[TS_CONSENT__CHANNELS];
    ts_metric_t *blocked[TS_CONSENT__CHANNELS][TS_SUPPR__COUNT];
    ts_metric_t *reoptin[TS_CONSENT__CHANNELS];
} acc_metrics_t;

struct ts_consent_table_s {
    const ts_config_t *cfg;
    uint64_t *slots; /* cap of them: (tag << 32) | (entry index + 1); 0 = empty */
    size_t cap, n, n_customers;
    entry_t **chunks; /* entry i: chunks[i >> ENTRY_CHUNK_SHIFT][i % ENTRY_CHUNK] */
    size_t chunks_cap;
    ts_arena_t *keys;
    ts_buf_t scratch;
    acc_metrics_t *m; /* per account */
};

static uint64_t hkey(int account, const char *k, size_t n) {
    return ts_hash_finish(ts_hash_update(TS_HASH_INIT ^ (uint64_t)(account + 1), k, n));
}

static void metrics_setup(ts_consent_table_t *t, ts_metrics_t *mx) {
    for (size_t a = 0; a < t->cfg->n_accounts; a++) {
        acc_metrics_t *am = &t->m[a];
        for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
            char lb[512];
            ts_buf_t acc = TS_BUF_INIT;
            ts_metrics_label_escape(&acc, t->cfg->accounts[a].name);
            const char *an = acc.data ? acc.data : "";
            const char *cn = ts_consent_channel_name((ts_consent_channel_t)ch);
            for (int k = 0; k < 2; k++) {
                snprintf(lb, sizeof lb, "account=\"%s\",channel=\"%s\",consent=\"%s\"", an, cn,
                         k ? "UNSUBSCRIBED" : "SUBSCRIBED");
                am->sent[ch][k] =
                    ts_metrics_counter(mx, "tillstream_subscriptions_sent_total",
                                       "consent changes sent to Klaviyo (re-opt-ins included)", lb);
            }
            snprintf(lb, sizeof lb, "account=\"%s\",channel=\"%s\"", an, cn);
            am->unchanged[ch] =
                ts_metrics_counter(mx, "tillstream_subscriptions_unchanged_total",
                                   "known POS consent not sent: unchanged, or a replay", lb);
            am->reoptin[ch] = ts_metrics_counter(
                mx, "tillstream_subscriptions_reoptin_total",
                "subscribes over an older Klaviyo suppression (a fresh POS opt-in)", lb);
            for (int r = 1; r < TS_SUPPR__COUNT; r++) {
                snprintf(lb, sizeof lb, "account=\"%s\",channel=\"%s\",reason=\"%s\"", an, cn,
                         ts_suppr_reason_name((ts_suppr_reason_t)r));
                am->blocked[ch][r] =
                    ts_metrics_counter(mx, "tillstream_subscriptions_blocked_total",
                                       "POS subscribes not sent: a Klaviyo suppression", lb);
            }
            ts_buf_free(&acc);
        }
    }
}

ts_consent_table_t *ts_consent_table_new(const ts_config_t *cfg, ts_metrics_t *metrics,
                                         char *errstr, size_t errstr_size) {
    ts_consent_table_t *t = calloc(1, sizeof *t);
    if (!t) goto nomem;
    t->cfg = cfg;
    t->cap = 1024;
    t->slots = calloc(t->cap, sizeof *t->slots);
    t->keys = ts_arena_new(1 << 16);
    t->m = calloc(cfg->n_accounts ? cfg->n_accounts : 1, sizeof *t->m);
    if (!t->slots || !t->keys || !t->m) goto nomem;
    metrics_setup(t, metrics);
    return t;
nomem:
    ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    ts_consent_table_destroy(t);
    return NULL;
}

void ts_consent_table_destroy(ts_consent_table_t *t) {
    if (!t) return;
    free(t->slots);
    for (size_t c = 0; c < t->chunks_cap; c++) free(t->chunks[c]);
    free(t->chunks);
    ts_arena_destroy(t->keys);
    ts_buf_free(&t->scratch);
    free(t->m);
    free(t);
}

size_t ts_consent_table_size(const ts_consent_table_t *t) { return t->n_customers; }

static entry_t *entry_at(const ts_consent_table_t *t, uint64_t slot) {
    size_t i = (size_t)(uint32_t)slot - 1;
    return &t->chunks[i >> ENTRY_CHUNK_SHIFT][i & (ENTRY_CHUNK - 1)];
}

static uint64_t *find(const ts_consent_table_t *t, int account, const char *k, size_t n,
                      uint64_t h) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        uint64_t *s = &t->slots[i];
        if (!*s) return s;
        if ((uint32_t)(*s >> 32) != tag) continue;
        const entry_t *e = entry_at(t, *s);
        if (e->account == account && !strncmp(e->key, k, n) && !e->key[n]) return s;
    }
}

/* Doubles the slots; the entries stay where they are (their hashes are
 * recomputed from their keys: a few ms per million). */
static int grow(ts_consent_table_t *t) {
    size_t nc = t->cap * 2;
    uint64_t *ns = calloc(nc, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t s = t->slots[i];
        if (!s) continue;
        const entry_t *e = entry_at(t, s);
        size_t j = hkey(e->account, e->key, strlen(e->key)) & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
        ns[j] = s;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = nc;
    return 0;
}

/* The next entry's storage (index t->n), zeroed; NULL when out of memory. */
static entry_t *next_entry(ts_consent_table_t *t) {
    if (t->n >= UINT32_MAX - 1) return NULL;
    size_t c = t->n >> ENTRY_CHUNK_SHIFT;
    if (c >= t->chunks_cap) {
        size_t nc = t->chunks_cap ? t->chunks_cap * 2 : 16;
        entry_t **n = realloc(t->chunks, nc * sizeof *n);
        if (!n) return NULL;
        memset(n + t->chunks_cap, 0, (nc - t->chunks_cap) * sizeof *n);
        t->chunks = n;
        t->chunks_cap = nc;
    }
    if (!t->chunks[c] && !(t->chunks[c] = calloc(ENTRY_CHUNK, sizeof **t->chunks))) return NULL;
    return &t->chunks[c][t->n & (ENTRY_CHUNK - 1)];
}

/* Entry for (account, prefix + s); created when `create`. NULL: absent or
 * out of memory (create). An entry never moves once created. */
static entry_t *lookup(ts_consent_table_t *t, int account, char prefix, const char *s, size_t n,
                       bool create) {
    ts_buf_reset(&t->scratch);
    ts_buf_putc(&t->scratch, prefix);
    ts_buf_putc(&t->scratch, ':');
    if (ts_buf_append(&t->scratch, s, n) != 0) return NULL;
    const char *k = t->scratch.data;
    size_t kn = t->scratch.len;
    uint64_t h = hkey(account, k, kn);
    uint64_t *slot = find(t, account, k, kn, h);
    if (*slot) return entry_at(t, *slot);
    if (!create) return NULL;
    if ((t->n + 1) * 4 > t->cap * 3) { /* load <= 3/4 */
        if (grow(t) != 0) return NULL;
        slot = find(t, account, k, kn, h);
    }
    entry_t *e = next_entry(t);
    char *copy = e ? ts_arena_strndup(t->keys, k, kn) : NULL;
    if (!copy) return NULL;
    *e = (entry_t){.key = copy, .account = account};
    *slot = ((h >> 32) << 32) | (uint64_t)(t->n + 1);
    t->n++;
    if (prefix == 'x') t->n_customers++;
    return e;
}

const ts_consent_state_t *ts_consent_table_get(const ts_consent_table_t *t, int account,
                                               const char *customer_id) {
    ts_consent_table_t *mt = (ts_consent_table_t *)t; /* scratch only */
    entry_t *e = lookup(mt, account, 'x', customer_id, strlen(customer_id), false);
    return e ? &e->st : NULL;
}

ts_err_t ts_consent_table_put(ts_consent_table_t *t, int account, const char *customer_id,
                              const ts_consent_state_t *st) {
    entry_t *e = lookup(t, account, 'x', customer_id, strlen(customer_id), true);
    if (!e) return TS_ERR_NOMEM;
    e->st = *st;
    return TS_OK;
}

/* ---- suppressions ---------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int account_index(const ts_config_t *cfg, const char *name) {
    for (size_t i = 0; name && i < cfg->n_accounts; i++)
        if (!strcmp(cfg->accounts[i].name, name)) return (int)i;
    return -1;
}

ts_err_t ts_consent_table_suppression(ts_consent_table_t *t, const char *json, size_t len,
                                      char *errstr, size_t errstr_size) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    ts_err_t rc = TS_OK;
#define BAD(...) (rc = ts_seterr(errstr, errstr_size, TS_ERR_INVALID, __VA_ARGS__))
    if (!cJSON_IsObject(root)) {
        BAD("suppression: not a JSON object");
        goto done;
    }
    const char *acc = jstr(root, "account"), *chs = jstr(root, "channel");
    const char *reason = jstr(root, "reason"), *email = jstr(root, "email");
    const char *phone = jstr(root, "phone_number"), *xid = jstr(root, "external_id");
    int ch = ts_consent_channel_parse(chs);
    if (!acc) {
        BAD("suppression: account: required");
        goto done;
    }
    if (ch < 0) {
        BAD("suppression: channel: expected \"email\" or \"sms\"");
        goto done;
    }
    ts_suppr_reason_t r = ts_suppr_reason_parse(reason);
    if (r == TS_SUPPR_NONE) {
        BAD("suppression: reason: required");
        goto done;
    }
    int64_t at = 0;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "timestamp");
    char why[128];
    if (cJSON_IsNumber(ts)) {
        at = (int64_t)ts->valuedouble;
    } else if (!cJSON_IsString(ts) ||
               ts_time_parse_iso8601(ts->valuestring, strlen(ts->valuestring), &at, why,
                                     sizeof why) != TS_OK) {
        BAD("suppression: timestamp: expected an ISO-8601 time or epoch ms");
        goto done;
    }
    int a = account_index(t->cfg, acc);
    if (a < 0) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOT_FOUND,
                       "suppression: account \"%s\" is not in the config", acc);
        goto done;
    }
    entry_t *e = NULL;
    if (xid) {
        e = lookup(t, a, 'x', xid, strlen(xid), true);
    } else if (ch == TS_CONSENT_EMAIL && email) {
        /* the mapper's normal form: trimmed, lower-cased */
        while (isspace((unsigned char)*email)) email++;
        size_t n = strlen(email);
        while (n > 0 && isspace((unsigned char)email[n - 1])) n--;
        char low[256];
        if (n >= sizeof low) {
            BAD("suppression: email: too long");
            goto done;
        }
        for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)email[i]);
        e = lookup(t, a, 'e', low, n, true);
    } else if (ch == TS_CONSENT_SMS && phone) {
        e = lookup(t, a, 'p', phone, strlen(phone), true);
    } else {
        BAD("suppression: needs external_id, or the %s of its channel",
            ch == TS_CONSENT_EMAIL ? "email" : "phone_number");
        goto done;
    }
    if (!e) {
        rc = TS_ERR_NOMEM;
        goto done;
    }
    ts_consent_suppress(&e->st.ch[ch], r, at);
done:
#undef BAD
    cJSON_Delete(root);
    return rc;
}

/* ---- the decision hook ------------------------------------------------------ */

static bool same_state(const ts_consent_state_t *a, const ts_consent_state_t *b) {
    for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
        const ts_consent_channel_state_t *x = &a->ch[ch], *y = &b->ch[ch];
        if (x->consent != y->consent || x->consent_at != y->consent_at ||
            x->blocked != y->blocked || x->suppression != y->suppression ||
            x->suppressed_at != y->suppressed_at)
            return false;
    }
    return true;
}

static ts_sub_t *sub_of(ts_mapped_t *m, int ch) {
    return ch == TS_CONSENT_EMAIL ? &m->email_marketing : &m->sms_marketing;
}

/* A decision into the mapped record's subscription of channel ch, its
 * metrics and (re-opt-in) its log line. True when it sends a
 * subscription change. */
static bool apply_decision(acc_metrics_t *am, const ts_customer_t *c, int ch,
                           const ts_consent_decision_t *d, const ts_consent_input_t *in,
                           ts_sub_t *sub) {
    switch (d->action) {
    case TS_CONSENT_NOTHING:
        *sub = TS_SUB_KEEP;
        if (in->value != TS_TRI_UNKNOWN) ts_metric_add(am->unchanged[ch], 1);
        return false;
    case TS_CONSENT_BLOCKED:
        *sub = TS_SUB_KEEP;
        ts_metric_add(am->blocked[ch][d->blocked_by], 1);
        return false;
    case TS_CONSENT_REOPTIN:
        ts_metric_add(am->reoptin[ch], 1);
        ts_log(TS_LOG_INFO, "consent", NULL,
               "re-opt-in: customer %s (%s) subscribed over a %s suppression: the POS "
               "consent is newer",
               c->customer_id, ts_consent_channel_name((ts_consent_channel_t)ch),
               ts_suppr_reason_name(d->blocked_by));
        /* fall through */
    case TS_CONSENT_SUBSCRIBE:
        *sub = TS_SUB_SUBSCRIBE;
        ts_metric_add(am->sent[ch][0], 1);
        return true;
    case TS_CONSENT_UNSUBSCRIBE:
        *sub = TS_SUB_UNSUBSCRIBE;
        ts_metric_add(am->sent[ch][1], 1);
        return true;
    }
    return false;
}

/* The suppressions Klaviyo knows by the record's email / phone, copied out
 * before the customer's entry is looked up (or created). */
static void suppressions_by_ident(ts_consent_table_t *t, int a, const ts_mapped_t *m,
                                  const bool *has_id, ts_consent_channel_state_t *by_ident) {
    for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
        if (!has_id[ch]) continue;
        ts_span_t sp = ch == TS_CONSENT_EMAIL ? m->email : m->phone_e164;
        entry_t *s =
            lookup(t, a, ch == TS_CONSENT_EMAIL ? 'e' : 'p', ts_mapped_str(m, sp), sp.len, false);
        if (s) by_ident[ch] = s->st.ch[ch];
    }
}

ts_err_t ts_consent_table_decide(ts_consent_table_t *t, const ts_customer_t *c, int64_t record_ts,
                                 int64_t offset, const ts_consent_opts_t *opts, ts_mapped_t *m,
                                 bool *state_changed) {
    if (state_changed) *state_changed = false;
    if (m->account < 0 || m->dead_letter || m->skipped || !c->customer_id) return TS_OK;
    int a = m->account;
    bool has_id[TS_CONSENT__CHANNELS] = {m->email.len > 0, m->phone_e164.len > 0};
    /* a POS "true" for a phone that cannot receive SMS (the mapper's
     * SMS_NOT_MOBILE: landline, 1300/1800) is no SMS consent to act on: not
     * decided, not stored, so the number that replaces it decides afresh
     * (klaviyo-mapping.md, Phone numbers; a "false" is still decided) */
    bool sms_unusable = (m->warnings & TS_MAP_WARN_SMS_NOT_MOBILE) != 0;
    ts_consent_channel_state_t by_ident[TS_CONSENT__CHANNELS] = {{0}};
    suppressions_by_ident(t, a, m, has_id, by_ident);
    /* a plain replay (no --replay-consent) sends no consent and keeps no
     * state (docs/consumers.md, "Consent state"): it decides on a copy and
     * adds no entry, so replaying 1 M customers does not fill the table */
    bool live = !opts->replay || opts->replay_consent;
    entry_t *e = lookup(t, a, 'x', c->customer_id, strlen(c->customer_id), live), copy = {0};
    if (!e && live) return TS_ERR_NOMEM;
    if (!live) {
        if (e) copy = *e;
        e = &copy;
    }
    ts_consent_state_t before = e->st;
    /* decided already: the state is ahead of this re-read record */
    bool decided = offset >= 0 && offset < e->st.next_offset;
    bool any_consent = false, any_sub = false;
    for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
        ts_sub_t *sub = sub_of(m, ch);
        if (!has_id[ch] || (ch == TS_CONSENT_SMS && sms_unusable)) {
            /* no identifier for this channel (or none that can receive
             * SMS): nothing to decide */
            *sub = TS_SUB_KEEP;
            continue;
        }
        ts_consent_channel_state_t *st = &e->st.ch[ch];
        if (by_ident[ch].suppression != TS_SUPPR_NONE)
            ts_consent_suppress(st, by_ident[ch].suppression, by_ident[ch].suppressed_at);
        ts_consent_input_t in = ts_consent_input(c, (ts_consent_channel_t)ch, record_ts);
        any_consent |= in.value == TS_TRI_TRUE;
        ts_consent_decision_t d = {.action = TS_CONSENT_NOTHING};
        if (!decided) d = ts_consent_decide(st, &in, opts, st);
        m->consent[ch] = d;
        any_sub |= apply_decision(&t->m[a], c, ch, &d, &in, sub);
    }
    if (t->cfg->customers_sync_consented && !any_consent) {
        m->send_profile = false; /* not a profile; an opt-out is still sent */
        if (!any_sub) m->skipped = "NOT_CONSENTED";
    }
    bool changed = !same_state(&before, &e->st);
    if (changed && offset >= 0) e->st.next_offset = offset + 1;
    if (state_changed) *state_changed = changed;
    return TS_OK;
}
