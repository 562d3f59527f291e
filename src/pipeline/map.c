/*
 * map.c - POS customers and orders -> Klaviyo profiles, consent changes
 * and events (API revision 2026-07-15). The single mapping implementation
 * behind both the live consumers and the dry run; docs/klaviyo-mapping.md
 * describes the rules and docs/data-model.md every field's destination.
 *
 * Output goes into a reused ts_mapped_t: JSON fragments are written with
 * the streaming writer into m->text and referenced by spans, so a warm
 * mapper does not allocate per record.
 */
#include "tillstream/map.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "klaviyo/klaviyo.h"
#include "tillstream/hash.h"
#include "tillstream/jw.h"

#define TS_MAX_STRING_BYTES TS_KLAVIYO_MAX_STRING_BYTES
#define TS_MAX_RECORD_BYTES (4 * 1024 * 1024) /* one record's events must fit a 5 MB request */
#define TS_MIN_TIME_MS      TS_KLAVIYO_MIN_EVENT_TIME_MS
#define TS_MAX_FUTURE_MS    TS_KLAVIYO_MAX_EVENT_FUTURE_MS

/* Phone memo: libphonenumber costs ~15-30 us per number (ICU regexes),
 * more than the rest of an order's decode and map together, and an
 * orders stream sees the same customers' phones again and again. A
 * two-way set-associative cache (least recently used way replaced) keyed
 * by the exact input (the mapper's default region is fixed): a hit
 * returns what ts_phone_parse returned for the same bytes, so the output
 * is unchanged. Valid numbers without an extension keep their E.164 and
 * type; invalid ones (TS_ERR_INVALID) the index of their reason among
 * the distinct reasons seen (a few dozen texts, at most 255 kept).
 * 32,768 sets x 2 x 51 bytes (3.3 MB), allocated on first use. */
#define PHONE_MEMO_SETS    32768u
#define PHONE_MEMO_INPUT   32  /* inputs up to 31 bytes are cached */
#define PHONE_MEMO_REASONS 255 /* distinct reasons of invalid numbers kept */
#define PHONE_REASON_SIZE  160 /* = sizeof ts_mapped_t.phone_dropped */
typedef struct {
    char in[PHONE_MEMO_INPUT]; /* "" = empty way */
    char e164[TS_PHONE_E164_SIZE];
    uint8_t type;
    uint8_t reason; /* 0: valid; k: invalid, reasons[k - 1] */
} phone_memo_t;

struct ts_mapper_s {
    const ts_config_t *cfg;
    const ts_router_t *router;
    ts_clock_fn wall; /* for the "not more than a year in the future" rule */
    const char **set; /* scratch hash set for unique lists, reused */
    size_t set_cap;
    phone_memo_t (*memo)[2]; /* PHONE_MEMO_SETS sets, way 0 most recent; NULL until a phone */
    char (*reasons)[PHONE_REASON_SIZE]; /* PHONE_MEMO_REASONS, NULL until an invalid one */
    int n_reasons;
};

void ts_mapped_init(ts_mapped_t *m) {
    memset(m, 0, sizeof *m);
    m->account = -1;
    m->route.account = -1;
}

void ts_mapped_reset(ts_mapped_t *m) {
    ts_buf_t text = m->text;
    ts_map_event_t *ev = m->events;
    size_t cap = m->cap_events;
    memset(m, 0, sizeof *m);
    m->text = text;
    ts_buf_reset(&m->text);
    m->events = ev;
    m->cap_events = cap;
    m->account = -1;
    m->route.account = -1; /* not routed yet (skips are decided before routing) */
}

void ts_mapped_free(ts_mapped_t *m) {
    ts_buf_free(&m->text);
    free(m->events);
    ts_mapped_init(m);
}

static int64_t wall_clock(void *opaque) {
    (void)opaque;
    return ts_now_wall_ms();
}

ts_mapper_t *ts_mapper_new(const ts_config_t *cfg, const ts_router_t *router, char *errstr,
                           size_t errstr_size) {
    ts_mapper_t *mp = ts_zalloc(sizeof *mp, NULL, errstr, errstr_size);
    if (!mp) return NULL;
    mp->cfg = cfg;
    mp->router = router;
    mp->wall = wall_clock;
    return mp;
}

void ts_mapper_destroy(ts_mapper_t *mp) {
    if (!mp) return;
    free(mp->set);
    free(mp->memo);
    free(mp->reasons);
    free(mp);
}

/* ---- helpers ------------------------------------------------------------- */

static void dead(ts_mapped_t *m, ts_reason_t r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dead(ts_mapped_t *m, ts_reason_t r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->detail, sizeof m->detail, fmt, ap);
    va_end(ap);
    m->dead_letter = r;
    m->account = -1;
}

/* Writes a string value. Klaviyo's 100 KB string limit is not applied
 * here but by the writer itself (begin_event and write_profile set
 * w->max_str), so every string of an event is limited the same way: a
 * product name is cut identically in Items[], ItemNames and Ordered
 * Product, and no new field can forget the limit. */
static void put_text(ts_mapped_t *m, ts_jw_t *w, const char *s) {
    (void)m;
    ts_jw_str(w, s);
}

static void kv_text_(ts_mapped_t *m, ts_jw_t *w, const char *quoted, size_t n, const char *s) {
    if (!s) return;
    ts_jw_key_raw(w, quoted, n);
    put_text(m, w, s);
}
/* kv_text(m, w, "Key", s): constant keys are escaped by the compiler */
#define kv_text(m, w, key, s)                                                                      \
    kv_text_((m), (w), TS_JW_QUOTED(key), sizeof TS_JW_QUOTED(key) - 1, (s))

static ts_map_event_t *new_event(ts_mapped_t *m) {
    if (m->n_events == m->cap_events) {
        size_t nc = m->cap_events ? m->cap_events * 2 : 16;
        ts_map_event_t *ne = realloc(m->events, nc * sizeof *ne);
        if (!ne) return NULL;
        m->events = ne;
        m->cap_events = nc;
    }
    ts_map_event_t *e = &m->events[m->n_events++];
    memset(e, 0, sizeof *e);
    return e;
}

/* The memo's index (1..) of an invalid number's reason, 0 when it cannot
 * be kept (the table is full or the text is longer than a slot). */
static uint8_t reason_index(ts_mapper_t *mp, const char *why) {
    if (strlen(why) >= PHONE_REASON_SIZE) return 0;
    for (int i = 0; i < mp->n_reasons; i++)
        if (!strcmp(mp->reasons[i], why)) return (uint8_t)(i + 1);
    if (mp->n_reasons == PHONE_MEMO_REASONS) return 0;
    if (!mp->reasons && !(mp->reasons = malloc(PHONE_MEMO_REASONS * sizeof *mp->reasons))) return 0;
    strcpy(mp->reasons[mp->n_reasons], why);
    return (uint8_t)++mp->n_reasons;
}

/* ts_phone_parse through the memo (see phone_memo_t): same result, same
 * *ph, same errstr, for the same input. */
static ts_err_t parse_phone(ts_mapper_t *mp, const char *phone, ts_phone_t *ph, char *errstr,
                            size_t errstr_size) {
    size_t n = strnlen(phone, PHONE_MEMO_INPUT);
    phone_memo_t *set = NULL;
    if (n < PHONE_MEMO_INPUT && errstr_size == PHONE_REASON_SIZE) {
        if (!mp->memo) mp->memo = calloc(PHONE_MEMO_SETS, sizeof *mp->memo);
        if (mp->memo) set = mp->memo[ts_hash_bytes(phone, n) & (PHONE_MEMO_SETS - 1)];
        for (int w = 0; set && w < 2; w++) {
            if (memcmp(set[w].in, phone, n + 1) != 0) continue;
            if (w == 1) { /* most recent first */
                phone_memo_t t = set[0];
                set[0] = set[1];
                set[1] = t;
            }
            *ph = (ts_phone_t){.type = (ts_phone_type_t)set[0].type};
            if (set[0].reason) {
                const char *why = mp->reasons[set[0].reason - 1];
                memcpy(errstr, why, strlen(why) + 1);
                return TS_ERR_INVALID;
            }
            memcpy(ph->e164, set[0].e164, sizeof ph->e164);
            return TS_OK;
        }
    }
    ts_err_t rc = ts_phone_parse(phone, mp->cfg->default_phone_region, ph, errstr, errstr_size);
    uint8_t reason = rc == TS_ERR_INVALID ? reason_index(mp, errstr) : 0;
    if (set && ((rc == TS_OK && !ph->extension[0]) || reason)) {
        set[1] = set[0];
        memcpy(set[0].in, phone, n + 1);
        memcpy(set[0].e164, ph->e164, sizeof set[0].e164);
        set[0].type = (uint8_t)ph->type;
        set[0].reason = reason;
    }
    return rc;
}

/* Identifiers: the normalised email (trimmed, lower-cased) and phone. */
static void put_identifiers(ts_mapper_t *mp, ts_mapped_t *m, const char *email, const char *phone) {
    m->email.off = m->text.len;
    if (email) {
        const char *s = email;
        while (*s && isspace((unsigned char)*s)) s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
        /* over 254 bytes is no valid address (RFC 5321): not an identifier */
        if (n > 0 && n <= 254 && memchr(s, '@', n)) {
            for (size_t i = 0; i < n; i++)
                ts_buf_putc(&m->text, (char)tolower((unsigned char)s[i]));
        }
    }
    m->email.len = m->text.len - m->email.off;
    m->phone_e164.off = m->text.len;
    m->phone_type = TS_PHONE_INVALID;
    ts_phone_t ph = {.type = TS_PHONE_INVALID};
    if (phone && *phone) {
        /* libphonenumber: valid numbers only, E.164, extension apart (src/phone/) */
        if (parse_phone(mp, phone, &ph, m->phone_dropped, sizeof m->phone_dropped) == TS_OK) {
            ts_buf_puts(&m->text, ph.e164);
            m->phone_type = ph.type;
            m->phone_dropped[0] = '\0';
        } else {
            m->warnings |= TS_MAP_WARN_PHONE_DROPPED;
        }
    }
    m->phone_e164.len = m->text.len - m->phone_e164.off;
    m->phone_extension.off = m->text.len;
    ts_buf_puts(&m->text, ph.extension);
    m->phone_extension.len = m->text.len - m->phone_extension.off;
}

/* The end of a NO_PROFILE_IDENTIFIER detail: why the phone did not count. */
static const char *phone_note(const ts_mapped_t *m, char *buf, size_t bufsize) {
    if (!m->phone_dropped[0]) return "";
    snprintf(buf, bufsize, " (phone number invalid: %s)", m->phone_dropped);
    return buf;
}

/* NUL-terminated copy of a span in a small stack buffer, or NULL if empty. */
static const char *span_cstr(const ts_mapped_t *m, ts_span_t s, char *buf, size_t bufsize) {
    if (s.len == 0 || s.len >= bufsize) return NULL;
    memcpy(buf, m->text.data + s.off, s.len);
    buf[s.len] = '\0';
    return buf;
}

typedef struct {
    const char *customer_id, *first_name, *last_name;
    const ts_customer_t *full; /* customers path: location and extra properties */
    const ts_order_t *order;   /* orders path: most recent store */
} profile_src_t;

static void write_profile(ts_mapper_t *mp, ts_mapped_t *m, const profile_src_t *p) {
    char ebuf[512], pbuf[32], xbuf[TS_PHONE_EXT_SIZE];
    const char *email = span_cstr(m, m->email, ebuf, sizeof ebuf);
    const char *phone = span_cstr(m, m->phone_e164, pbuf, sizeof pbuf);
    const char *extension = span_cstr(m, m->phone_extension, xbuf, sizeof xbuf);
    ts_jw_t w;
    m->profile.off = m->text.len;
    ts_jw_init(&w, &m->text);
    w.max_str = TS_MAX_STRING_BYTES;
    ts_jw_obj_open(&w);
    if (email) TS_JW_KV_STR(&w, "email", email);
    if (phone) TS_JW_KV_STR(&w, "phone_number", phone);
    kv_text(m, &w, "external_id", p->customer_id);
    kv_text(m, &w, "first_name", p->first_name);
    kv_text(m, &w, "last_name", p->last_name);
    if (p->full && p->full->has_billing_address) {
        const ts_address_t *a = &p->full->billing_address;
        TS_JW_KEY(&w, "location");
        ts_jw_obj_open(&w);
        kv_text(m, &w, "address1", a->line1);
        kv_text(m, &w, "address2", a->line2);
        kv_text(m, &w, "city", a->city);
        kv_text(m, &w, "region", a->region);
        kv_text(m, &w, "zip", a->postcode);
        kv_text(m, &w, "country", a->country);
        ts_jw_obj_close(&w);
    }
    TS_JW_KEY(&w, "properties");
    ts_jw_obj_open(&w);
    kv_text(m, &w, "HomeOutletId", m->route.outlet);
    kv_text(m, &w, "HomeOutletName", ts_config_outlet_name(mp->cfg, m->route.outlet));
    if (m->route.defaulted) {
        TS_JW_KEY(&w, "HomeOutletDefaulted");
        ts_jw_bool(&w, true);
    }
    if (phone) kv_text(m, &w, "PhoneExtension", extension);
    if (p->order) {
        kv_text(m, &w, "MostRecentStoreId", p->order->outlet_id);
        kv_text(m, &w, "MostRecentStoreLocation", p->order->outlet_name);
    }
    if (p->full) {
        const ts_customer_t *c = p->full;
        if (c->email_consent != TS_TRI_UNKNOWN) {
            ts_jw_key(&w, "EmailConsent");
            ts_jw_bool(&w, c->email_consent == TS_TRI_TRUE);
        }
        if (c->sms_consent != TS_TRI_UNKNOWN) {
            ts_jw_key(&w, "SmsConsent");
            ts_jw_bool(&w, c->sms_consent == TS_TRI_TRUE);
        }
        if (c->loyalty_member != TS_TRI_UNKNOWN) {
            ts_jw_key(&w, "LoyaltyMember");
            ts_jw_bool(&w, c->loyalty_member == TS_TRI_TRUE);
        }
        kv_text(m, &w, "DateOfBirth", c->date_of_birth);
        if (c->created_at_ms) {
            ts_jw_key(&w, "PosCreatedAt");
            ts_jw_time(&w, c->created_at_ms);
        }
    }
    ts_jw_obj_close(&w);
    ts_jw_obj_close(&w);
    if (w.truncated) m->warnings |= TS_MAP_WARN_TRUNCATED;
    m->profile.len = m->text.len - m->profile.off;

    /* grouping identity: external id first (stable across email changes) */
    m->profile_key.off = m->text.len;
    if (p->customer_id) {
        ts_buf_puts(&m->text, "x:");
        ts_buf_puts(&m->text, p->customer_id);
    } else if (email) {
        ts_buf_puts(&m->text, "e:");
        ts_buf_puts(&m->text, email);
    } else if (phone) {
        ts_buf_puts(&m->text, "p:");
        ts_buf_puts(&m->text, phone);
    }
    m->profile_key.len = m->text.len - m->profile_key.off;
}

/* Routes by Home Outlet; fills m->route/account or the dead letter / skip. */
static bool route(ts_mapper_t *mp, ts_mapped_t *m, const char *home_outlet, const char *what) {
    m->route = ts_route_lookup(mp->router, home_outlet);
    if (m->route.defaulted) m->warnings |= TS_MAP_WARN_DEFAULT_OUTLET;
    switch (m->route.status) {
    case TS_ROUTE_OK: m->account = m->route.account; return true;
    case TS_ROUTE_OTHER_ACCOUNT: m->skipped = "OTHER_ACCOUNT"; return false;
    case TS_ROUTE_DEAD_LETTER: break;
    }
    if (m->route.reason == TS_REASON_NO_HOME_OUTLET)
        dead(m, TS_REASON_NO_HOME_OUTLET,
             "%s has no Home Outlet and no "
             "routing.default_online_outlet is configured",
             what);
    else
        dead(m, TS_REASON_UNMAPPED_OUTLET,
             "%s's Home Outlet \"%s\" is not served by any "
             "account",
             what, m->route.outlet ? m->route.outlet : "");
    return false;
}

/* ---- customers ------------------------------------------------------------ */

ts_err_t ts_map_customer(ts_mapper_t *mp, const ts_customer_t *c, ts_mapped_t *out) {
    ts_mapped_reset(out);
    if (!route(mp, out, c->home_outlet_id, "customer")) return TS_OK;
    put_identifiers(mp, out, c->email, c->phone);
    if (out->email.len == 0 && out->phone_e164.len == 0) {
        char note[200];
        dead(out, TS_REASON_NO_PROFILE_IDENTIFIER,
             "customer %s has neither a valid email nor a valid phone number%s", c->customer_id,
             phone_note(out, note, sizeof note));
        return TS_OK;
    }
    profile_src_t p = {c->customer_id, c->first_name, c->last_name, c, NULL};
    write_profile(mp, out, &p);
    out->send_profile = true;
    /* consent: true subscribes, false unsubscribes ("do not contact"),
     * unknown leaves Klaviyo's consent untouched */
    if (out->email.len) {
        if (c->email_consent == TS_TRI_TRUE)
            out->email_marketing = TS_SUB_SUBSCRIBE;
        else if (c->email_consent == TS_TRI_FALSE)
            out->email_marketing = TS_SUB_UNSUBSCRIBE;
    }
    /* SMS consent only for numbers that can receive SMS (docs/decisions.md):
     * a landline, 1300 or 1800 number keeps its place on the profile but is
     * never subscribed; an unsubscribe is always sent (it only withdraws) */
    if (out->phone_e164.len) {
        if (c->sms_consent == TS_TRI_TRUE && ts_phone_sms_capable(out->phone_type))
            out->sms_marketing = TS_SUB_SUBSCRIBE;
        else if (c->sms_consent == TS_TRI_TRUE)
            out->warnings |= TS_MAP_WARN_SMS_NOT_MOBILE;
        else if (c->sms_consent == TS_TRI_FALSE)
            out->sms_marketing = TS_SUB_UNSUBSCRIBE;
    }
    if (out->text.len > TS_MAX_RECORD_BYTES) {
        dead(out, TS_REASON_PAYLOAD_TOO_LARGE, "customer profile is %zu bytes", out->text.len);
        return TS_OK;
    }
    return TS_OK;
}

/* ---- orders --------------------------------------------------------------- */

/* Unique item names (which 0), categories (1) or brands (2) of an order, in
 * order of appearance: one pass with a hash set kept in the mapper. */
static void write_unique_list(ts_mapper_t *mp, ts_jw_t *w, const ts_order_t *o, int which) {
    size_t total = 0;
    for (size_t i = 0; i < o->n_lines; i++) total += which == 1 ? o->lines[i].n_categories : 1;
    size_t cap = 16;
    while (cap < total * 2) cap *= 2;
    if (cap > mp->set_cap) {
        const char **ns = realloc(mp->set, cap * sizeof *ns);
        if (!ns) {
            w->failed = true;
            return;
        }
        mp->set = ns;
        mp->set_cap = cap;
    }
    memset(mp->set, 0, cap * sizeof *mp->set);
    ts_jw_arr_open(w);
    for (size_t i = 0; i < o->n_lines; i++) {
        const ts_order_line_t *l = &o->lines[i];
        size_t nv = which == 1 ? l->n_categories : 1;
        for (size_t k = 0; k < nv; k++) {
            const char *v = which == 0 ? l->name : which == 1 ? l->categories[k] : l->brand;
            if (!v) continue;
            size_t j = ts_hash_str(v) & (cap - 1);
            while (mp->set[j] && strcmp(mp->set[j], v)) j = (j + 1) & (cap - 1);
            if (mp->set[j]) continue; /* seen */
            mp->set[j] = v;
            ts_jw_str(w, v);
        }
    }
    ts_jw_arr_close(w);
}

static void write_str_array(ts_mapped_t *m, ts_jw_t *w, const char *const *v, size_t n) {
    ts_jw_arr_open(w);
    for (size_t i = 0; i < n; i++) put_text(m, w, v[i]);
    ts_jw_arr_close(w);
}

static void write_order_properties(ts_mapper_t *mp, ts_mapped_t *m, ts_jw_t *w,
                                   const ts_order_t *o) {
    kv_text(m, w, "OrderId", o->order_id);
    TS_JW_KEY(w, "Items");
    ts_jw_arr_open(w);
    for (size_t i = 0; i < o->n_lines; i++) {
        const ts_order_line_t *l = &o->lines[i];
        ts_jw_obj_open(w);
        kv_text(m, w, "LineId", l->line_id);
        kv_text(m, w, "ProductID", l->product_id);
        kv_text(m, w, "SKU", l->sku);
        kv_text(m, w, "ProductName", l->name);
        TS_JW_KV_DECIMAL_OPT(w, "Quantity", l->quantity);
        TS_JW_KV_DECIMAL_OPT(w, "ItemPrice", l->unit_price);
        TS_JW_KV_DECIMAL_OPT(w, "RowTotal", l->row_total);
        TS_JW_KV_DECIMAL_OPT(w, "Discount", l->discount);
        kv_text(m, w, "ImageURL", l->image_url);
        kv_text(m, w, "ProductURL", l->product_url);
        TS_JW_KEY(w, "Categories");
        write_str_array(m, w, l->categories, l->n_categories);
        kv_text(m, w, "Brand", l->brand);
        ts_jw_obj_close(w);
    }
    ts_jw_arr_close(w);
    TS_JW_KEY(w, "ItemNames");
    write_unique_list(mp, w, o, 0);
    TS_JW_KEY(w, "Categories");
    write_unique_list(mp, w, o, 1);
    TS_JW_KEY(w, "Brands");
    write_unique_list(mp, w, o, 2);
    kv_text(m, w, "StoreId", o->outlet_id);
    kv_text(m, w, "StoreLocation", o->outlet_name);
    TS_JW_KV_STR(w, "Channel", ts_channel_name(o->channel));
    TS_JW_KV_DECIMAL_OPT(w, "Discount", o->discount);
    TS_JW_KV_DECIMAL_OPT(w, "Tax", o->tax);
}

/* Opens an event attributes object; the caller writes properties members
 * and then calls end_event. */
static void begin_event(ts_mapped_t *m, ts_jw_t *w, ts_map_event_t *e, const char *metric) {
    e->metric = metric;
    e->json.off = m->text.len;
    ts_jw_init(w, &m->text);
    w->max_str = TS_MAX_STRING_BYTES;
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "properties");
    ts_jw_obj_open(w);
}

static void end_event(ts_mapped_t *m, ts_jw_t *w, ts_map_event_t *e, const ts_order_t *o,
                      ts_decimal_t value, const char *uid_a, const char *uid_sep,
                      const char *uid_b) {
    ts_jw_obj_close(w); /* properties */
    TS_JW_KEY(w, "time");
    ts_jw_time(w, o->occurred_at_ms);
    if (value.present) {
        TS_JW_KEY(w, "value");
        ts_jw_decimal(w, value);
        if (o->currency[0]) TS_JW_KV_STR(w, "value_currency", o->currency);
    }
    /* unique_id: written into the JSON and kept raw for de-duplication;
     * never cut (a cut id would merge events), so a too long one is a
     * dead letter rather than a 400 */
    size_t uid_len = strlen(uid_a) + (uid_sep ? strlen(uid_sep) : 0) + (uid_b ? strlen(uid_b) : 0);
    if (uid_len > TS_MAX_STRING_BYTES)
        dead(m, TS_REASON_PAYLOAD_TOO_LARGE,
             "%s: unique_id is %zu bytes, over Klaviyo's %d-byte string limit", e->metric, uid_len,
             TS_MAX_STRING_BYTES);
    TS_JW_KEY(w, "unique_id");
    ts_jw_str3(w, uid_a, uid_sep, uid_b);
    TS_JW_KEY(w, "metric");
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "data");
    ts_jw_obj_open(w);
    TS_JW_KV_STR(w, "type", "metric");
    TS_JW_KEY(w, "attributes");
    ts_jw_obj_open(w);
    TS_JW_KV_STR(w, "name", e->metric);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
    e->json.len = m->text.len - e->json.off;
    if (w->truncated) m->warnings |= TS_MAP_WARN_TRUNCATED;
    e->unique_id.off = m->text.len;
    ts_buf_puts(&m->text, uid_a);
    if (uid_sep) ts_buf_puts(&m->text, uid_sep);
    if (uid_b) ts_buf_puts(&m->text, uid_b);
    e->unique_id.len = m->text.len - e->unique_id.off;
}

const ts_customer_ref_t *ts_map_resolve_customer(const ts_order_t *o,
                                                 const ts_customer_ref_t *from_table) {
    if (o->customer.present) return &o->customer;
    return from_table && from_table->present ? from_table : NULL;
}

/* The orders that send nothing: skipped (voided, test) or dead-lettered
 * before routing (time outside Klaviyo's window, guest sale, unknown
 * customer). True when out says so. */
static bool order_refused(ts_mapper_t *mp, const ts_order_t *o, const ts_customer_ref_t *cust,
                          ts_mapped_t *out) {
    if (o->status == TS_ORDER_VOIDED) {
        out->skipped = "VOIDED";
        return true;
    }
    if (o->is_test) {
        out->skipped = "TEST_ORDER";
        return true;
    }
    int64_t now = mp->wall(NULL);
    if (o->occurred_at_ms < TS_MIN_TIME_MS || o->occurred_at_ms > now + TS_MAX_FUTURE_MS) {
        char t[40];
        ts_time_format_iso8601(o->occurred_at_ms, t, sizeof t);
        dead(out, TS_REASON_DECODE_ERROR,
             "occurred_at: %s is outside Klaviyo's accepted window "
             "(after 1990, at most one year ahead)",
             t);
        return true;
    }
    if (!cust && !o->customer_id) {
        dead(out, TS_REASON_NO_PROFILE_IDENTIFIER,
             "order %s is a guest sale: no customer id and no embedded customer", o->order_id);
        return true;
    }
    if (!cust) {
        dead(out, TS_REASON_UNKNOWN_CUSTOMER,
             "order %s: customer %s is unknown (no embedded "
             "customer and not in the customer table)",
             o->order_id, o->customer_id ? o->customer_id : "(none)");
        return true;
    }
    return false;
}

/* The order's own event: Placed, Fulfilled, Cancelled or Refunded Order. */
static ts_err_t order_event(ts_mapper_t *mp, const ts_order_t *o, ts_mapped_t *out) {
    static const char *const metric_for[] = {"Placed Order", "Fulfilled Order", "Cancelled Order",
                                             "Refunded Order", NULL};
    ts_jw_t w;
    ts_map_event_t *e = new_event(out);
    if (!e) return TS_ERR_NOMEM;
    begin_event(out, &w, e, metric_for[o->status]);
    write_order_properties(mp, out, &w, o);
    if (o->status == TS_ORDER_REFUNDED || o->status == TS_ORDER_CANCELLED) {
        if (o->refund.present) kv_text(out, &w, "Reason", o->refund.reason);
        if (o->refund.present && o->refund.refund_id)
            kv_text(out, &w, "RefundId", o->refund.refund_id);
    }
    switch (o->status) {
    case TS_ORDER_COMPLETED: end_event(out, &w, e, o, o->total, o->order_id, NULL, NULL); break;
    case TS_ORDER_FULFILLED:
        end_event(out, &w, e, o, o->total, o->order_id, ":", "fulfilled");
        break;
    case TS_ORDER_CANCELLED:
        end_event(out, &w, e, o, o->total, o->order_id, ":", "cancelled");
        break;
    case TS_ORDER_REFUNDED: {
        ts_decimal_t v =
            o->refund.present && o->refund.amount.present ? o->refund.amount : o->total;
        if (o->refund.present && o->refund.refund_id)
            end_event(out, &w, e, o, v, o->refund.refund_id, NULL, NULL);
        else
            end_event(out, &w, e, o, v, o->order_id, ":", "refunded");
        break;
    }
    case TS_ORDER_VOIDED: break;
    }
    return w.failed ? TS_ERR_NOMEM : TS_OK;
}

/* One Ordered Product event per line of a completed order. */
static ts_err_t line_event(const ts_order_t *o, const ts_order_line_t *l, ts_mapped_t *out) {
    ts_jw_t w;
    ts_map_event_t *e = new_event(out);
    if (!e) return TS_ERR_NOMEM;
    begin_event(out, &w, e, "Ordered Product");
    kv_text(out, &w, "OrderId", o->order_id);
    kv_text(out, &w, "LineId", l->line_id);
    kv_text(out, &w, "ProductID", l->product_id);
    kv_text(out, &w, "SKU", l->sku);
    kv_text(out, &w, "ProductName", l->name);
    TS_JW_KV_DECIMAL_OPT(&w, "Quantity", l->quantity);
    TS_JW_KV_DECIMAL_OPT(&w, "ItemPrice", l->unit_price);
    TS_JW_KV_DECIMAL_OPT(&w, "RowTotal", l->row_total);
    TS_JW_KV_DECIMAL_OPT(&w, "Discount", l->discount);
    kv_text(out, &w, "ImageURL", l->image_url);
    kv_text(out, &w, "ProductURL", l->product_url);
    TS_JW_KEY(&w, "ProductCategories");
    write_str_array(out, &w, l->categories, l->n_categories);
    kv_text(out, &w, "ProductBrand", l->brand);
    kv_text(out, &w, "StoreId", o->outlet_id);
    kv_text(out, &w, "StoreLocation", o->outlet_name);
    end_event(out, &w, e, o, l->row_total, o->order_id, ":", l->line_id);
    return w.failed ? TS_ERR_NOMEM : TS_OK;
}

ts_err_t ts_map_order(ts_mapper_t *mp, const ts_order_t *o, const ts_customer_ref_t *cust,
                      ts_mapped_t *out) {
    ts_mapped_reset(out);
    if (order_refused(mp, o, cust, out)) return TS_OK;
    if (!route(mp, out, cust->home_outlet_id, "order's customer")) return TS_OK;
    put_identifiers(mp, out, cust->email, cust->phone);
    if (out->email.len == 0 && out->phone_e164.len == 0) {
        char note[200];
        dead(out, TS_REASON_NO_PROFILE_IDENTIFIER,
             "order %s: customer %s has neither a valid email nor a valid phone number%s",
             o->order_id, cust->customer_id ? cust->customer_id : "(guest)",
             phone_note(out, note, sizeof note));
        return TS_OK;
    }
    profile_src_t p = {cust->customer_id ? cust->customer_id : o->customer_id, cust->first_name,
                       cust->last_name, NULL, o};
    write_profile(mp, out, &p);
    ts_err_t rc = order_event(mp, o, out);
    for (size_t i = 0; !rc && o->status == TS_ORDER_COMPLETED && i < o->n_lines; i++)
        rc = line_event(o, &o->lines[i], out);
    if (rc) return rc;
    if (out->dead_letter != TS_REASON_NONE) { /* a unique_id over the limit */
        out->n_events = 0;
        return TS_OK;
    }
    if (out->text.len > TS_MAX_RECORD_BYTES) {
        dead(out, TS_REASON_PAYLOAD_TOO_LARGE,
             "order %s maps to %zu bytes of events, over the %d-byte budget of one Bulk Create "
             "Events request",
             o->order_id, out->text.len, TS_MAX_RECORD_BYTES);
        out->n_events = 0;
    }
    return TS_OK;
}
