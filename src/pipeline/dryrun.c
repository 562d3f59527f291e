/*
 * dryrun.c - the offline pipeline: JSON lines in, one JSON object per
 * input line out, through exactly the decode -> route -> map code of the
 * live consumers (no second implementation). Users audit their mapping
 * with it; tests check it record by record. Output shape: docs/dry-run.md.
 */
#include "tillstream/dryrun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/consent_table.h"
#include "tillstream/jw.h"
#include "tillstream/custtable.h"
#include "tillstream/map.h"
#include "tillstream/route.h"

/* One line of a --customers or --suppressions file: n bytes with its
 * newline, lineno from 1. Any code but TS_OK stops the file. */
typedef ts_err_t (*line_fn)(void *opaque, const char *line, size_t n, size_t lineno, char *errstr,
                            size_t errstr_size);

/* fn over the lines of the file `path` given as --<opt>, in order. */
static ts_err_t each_line(const char *opt, const char *path, line_fn fn, void *opaque, char *errstr,
                          size_t errstr_size) {
    FILE *f = fopen(path, "r");
    if (!f)
        return ts_seterr(errstr, errstr_size, TS_ERR_IO, "cannot open --%s %s: %s", opt, path,
                         strerror(errno));
    char *line = NULL;
    size_t lcap = 0, lineno = 0;
    ssize_t n;
    ts_err_t rc = TS_OK;
    while (rc == TS_OK && (n = getline(&line, &lcap, f)) >= 0)
        rc = fn(opaque, line, (size_t)n, ++lineno, errstr, errstr_size);
    free(line);
    fclose(f);
    return rc;
}

typedef struct {
    ts_custtable_t *t;
    ts_arena_t *arena;
} customers_load_t;

static ts_err_t customer_line(void *opaque, const char *line, size_t n, size_t lineno, char *errstr,
                              size_t errstr_size) {
    customers_load_t *cl = opaque;
    (void)lineno;
    ts_customer_t c;
    char why[256];
    ts_arena_reset(cl->arena);
    if (n <= 1 || ts_decode_customer_json(line, n, cl->arena, &c, why, sizeof why) != TS_OK)
        return TS_OK;
    if (ts_custtable_put(cl->t, &c) == TS_ERR_NOMEM)
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "--customers: out of memory");
    return TS_OK;
}

/* --customers FILE: the live path's customer table itself, filled from
 * the file's lines in order (later lines win, like the compacted topic; a
 * line that does not decode is simply not in the table, as in the live
 * table reader). */
static ts_err_t customers_load(ts_custtable_t *t, const char *path, char *errstr,
                               size_t errstr_size) {
    customers_load_t cl = {.t = t, .arena = ts_arena_new(1 << 16)};
    ts_err_t rc = cl.arena
                      ? each_line("customers", path, customer_line, &cl, errstr, errstr_size)
                      : ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "--customers: out of memory");
    ts_arena_destroy(cl.arena);
    return rc;
}

static void write_subscriptions(ts_jw_t *w, const ts_mapped_t *m) {
    if (m->email_marketing == TS_SUB_KEEP && m->sms_marketing == TS_SUB_KEEP) return;
    ts_jw_key(w, "subscriptions");
    ts_jw_obj_open(w);
    if (m->email_marketing != TS_SUB_KEEP)
        ts_jw_kv_str(w, "email",
                     m->email_marketing == TS_SUB_SUBSCRIBE ? "SUBSCRIBED" : "UNSUBSCRIBED");
    if (m->sms_marketing != TS_SUB_KEEP)
        ts_jw_kv_str(w, "sms",
                     m->sms_marketing == TS_SUB_SUBSCRIBE ? "SUBSCRIBED" : "UNSUBSCRIBED");
    ts_jw_obj_close(w);
}

/* "consent_blocked" / "consent_reoptin": {"channel", "reason"} for the
 * first channel (email, then sms) with that action; a second channel with
 * the same action gets "<member>_sms" (docs/dry-run.md). */
static void write_consent_member(ts_jw_t *w, const ts_mapped_t *m, ts_consent_action_t action,
                                 const char *member) {
    bool first = true;
    for (int ch = 0; ch < TS_CONSENT__CHANNELS; ch++) {
        if (m->consent[ch].action != action) continue;
        char key[64];
        snprintf(key, sizeof key, "%s%s", member, first ? "" : "_sms");
        ts_jw_key(w, key);
        ts_jw_obj_open(w);
        ts_jw_kv_str(w, "channel", ts_consent_channel_name((ts_consent_channel_t)ch));
        ts_jw_kv_str(w, "reason", ts_suppr_reason_name(m->consent[ch].blocked_by));
        ts_jw_obj_close(w);
        first = false;
    }
}

/* Writes `json` (an object) with extra members appended before its '}'. */
static void object_with(ts_buf_t *out, const char *json, size_t len) {
    ts_buf_append(out, json, len - 1);
}

static void write_line(ts_buf_t *out, const ts_config_t *cfg, uint64_t lineno,
                       const ts_mapped_t *m) {
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_key(&w, "input");
    ts_jw_int(&w, (int64_t)lineno);
    ts_jw_key(&w, "account");
    /* the account that gets the record; for OTHER_ACCOUNT skips the account
     * it belongs to (served by another deployment); null when not routed */
    bool sending = m->account >= 0 && !m->dead_letter && !m->skipped;
    int acc =
        sending ? m->account
                : (m->skipped && m->route.status == TS_ROUTE_OTHER_ACCOUNT ? m->route.account : -1);
    if (acc >= 0 && (size_t)acc < cfg->n_accounts)
        ts_jw_str(&w, cfg->accounts[acc].name);
    else
        ts_jw_null(&w);
    const char *profile = ts_mapped_str(m, m->profile);
    ts_jw_key(&w, "events");
    ts_jw_arr_open(&w);
    for (size_t i = 0; sending && i < m->n_events; i++) {
        const ts_map_event_t *e = &m->events[i];
        ts_jw_raw(&w, "", 0); /* comma handling */
        object_with(out, ts_mapped_str(m, e->json), e->json.len);
        ts_buf_puts(out, ",\"profile\":");
        ts_buf_append(out, profile, m->profile.len);
        ts_buf_putc(out, '}');
    }
    ts_jw_arr_close(&w);
    ts_jw_key(&w, "profiles");
    ts_jw_arr_open(&w);
    bool subs = m->email_marketing != TS_SUB_KEEP || m->sms_marketing != TS_SUB_KEEP;
    if (sending && !m->send_profile && subs) {
        /* customers.sync = consented: an opt-out without the profile import;
         * the identifiers the subscription job carries */
        ts_jw_obj_open(&w);
        if (m->email.len) {
            ts_jw_key(&w, "email");
            ts_jw_strn(&w, ts_mapped_str(m, m->email), m->email.len);
        }
        if (m->phone_e164.len) {
            ts_jw_key(&w, "phone_number");
            ts_jw_strn(&w, ts_mapped_str(m, m->phone_e164), m->phone_e164.len);
        }
        write_subscriptions(&w, m);
        ts_jw_obj_close(&w);
    } else if (sending && m->profile.len) {
        ts_jw_raw(&w, "", 0);
        object_with(out, profile, m->profile.len);
        ts_jw_t sw;
        ts_jw_init(&sw, out);
        sw.depth = 1;
        sw.first[1] = false;
        write_subscriptions(&sw, m);
        ts_buf_putc(out, '}');
    }
    ts_jw_arr_close(&w);
    ts_jw_key(&w, "dead_letter");
    if (m->dead_letter) {
        ts_jw_obj_open(&w);
        ts_jw_kv_str(&w, "reason", ts_reason_name(m->dead_letter));
        ts_jw_kv_str(&w, "detail", m->detail);
        ts_jw_obj_close(&w);
    } else {
        ts_jw_null(&w);
    }
    ts_jw_key(&w, "skipped");
    ts_jw_str(&w, m->skipped);
    if (sending) {
        write_consent_member(&w, m, TS_CONSENT_BLOCKED, "consent_blocked");
        write_consent_member(&w, m, TS_CONSENT_REOPTIN, "consent_reoptin");
    }
    if (m->warnings) {
        ts_jw_key(&w, "warnings");
        ts_jw_arr_open(&w);
        if (m->warnings & TS_MAP_WARN_PHONE_DROPPED) ts_jw_str(&w, "PHONE_DROPPED");
        if (m->warnings & TS_MAP_WARN_TRUNCATED) ts_jw_str(&w, "STRING_TRUNCATED");
        if (m->warnings & TS_MAP_WARN_DEFAULT_OUTLET) ts_jw_str(&w, "DEFAULT_OUTLET");
        if (m->warnings & TS_MAP_WARN_SMS_NOT_MOBILE) ts_jw_str(&w, "SMS_NOT_MOBILE");
        ts_jw_arr_close(&w);
    }
    ts_jw_obj_close(&w);
    ts_buf_putc(out, '\n');
}

typedef struct {
    ts_consent_table_t *t;
    const char *path;
} suppressions_load_t;

static ts_err_t suppression_line(void *opaque, const char *line, size_t n, size_t lineno,
                                 char *errstr, size_t errstr_size) {
    const suppressions_load_t *sl = opaque;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    if (n == 0) return TS_OK;
    char why[256];
    ts_err_t rc = ts_consent_table_suppression(sl->t, line, n, why, sizeof why);
    if (rc == TS_OK || rc == TS_ERR_NOMEM) return rc;
    /* a reviewer's file: a bad line is an error, not a skip */
    return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "--suppressions %s:%zu: %s", sl->path,
                     lineno, why);
}

/* --suppressions FILE: the suppressions topic's JSON values, one per line,
 * loaded into the consent state before the first input line. */
static ts_err_t suppressions_load(ts_consent_table_t *t, const char *path, char *errstr,
                                  size_t errstr_size) {
    suppressions_load_t sl = {.t = t, .path = path};
    return each_line("suppressions", path, suppression_line, &sl, errstr, errstr_size);
}

/* The offline pipeline of one run: what the live path would build. */
typedef struct {
    ts_kind_t kind;
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_consent_table_t *consent; /* customers: starts empty, carried across lines */
    ts_custtable_t *table;       /* orders with --customers */
    ts_consent_opts_t copts;
    ts_arena_t *arena;
    ts_mapped_t m;
} dry_t;

static void dry_destroy(dry_t *d) {
    ts_mapped_free(&d->m);
    ts_arena_destroy(d->arena);
    ts_custtable_destroy(d->table);
    ts_consent_table_destroy(d->consent);
    ts_mapper_destroy(d->mapper);
    ts_router_destroy(d->router);
}

static ts_err_t dry_setup(dry_t *d, const ts_config_t *cfg, ts_kind_t kind,
                          const char *customers_path, const char *suppressions_path, char *errstr,
                          size_t errstr_size) {
    *d = (dry_t){.kind = kind, .copts = {.now = ts_now_wall_ms()}};
    ts_mapped_init(&d->m);
    d->router = ts_router_new(cfg, errstr, errstr_size);
    d->mapper = d->router ? ts_mapper_new(cfg, d->router, errstr, errstr_size) : NULL;
    if (kind == TS_KIND_CUSTOMER) d->consent = ts_consent_table_new(cfg, NULL, errstr, errstr_size);
    d->arena = ts_arena_new(1 << 16);
    if (!d->router || !d->mapper || !d->arena || (kind == TS_KIND_CUSTOMER && !d->consent))
        return TS_ERR_NOMEM;
    if (d->consent && suppressions_path)
        return suppressions_load(d->consent, suppressions_path, errstr, errstr_size);
    if (kind == TS_KIND_ORDER && customers_path) {
        if (!(d->table = ts_custtable_new(0))) return TS_ERR_NOMEM;
        return customers_load(d->table, customers_path, errstr, errstr_size);
    }
    return TS_OK;
}

/* One input line (without its line end) decoded and mapped into d->m;
 * the decoder's or mapper's code, `why` naming a decode error. */
static ts_err_t dry_line(dry_t *d, const char *line, size_t len, char *why, size_t why_size) {
    if (len == 0) return ts_seterr(why, why_size, TS_ERR_INVALID, "empty line");
    ts_err_t rc;
    if (d->kind == TS_KIND_CUSTOMER) {
        ts_customer_t c;
        rc = ts_decode_customer_json(line, len, d->arena, &c, why, why_size);
        if (rc == TS_OK) rc = ts_map_customer(d->mapper, &c, &d->m);
        if (rc == TS_OK)
            rc = ts_consent_table_decide(d->consent, &c, 0, -1, &d->copts, &d->m, NULL);
        return rc;
    }
    ts_order_t o;
    rc = ts_decode_order_json(line, len, d->arena, &o, why, why_size);
    if (rc != TS_OK) return rc;
    ts_customer_ref_t from_table = {0};
    bool in_table =
        d->table && o.customer_id && ts_custtable_get(d->table, o.customer_id, &from_table);
    const ts_customer_ref_t *cust = ts_map_resolve_customer(&o, in_table ? &from_table : NULL);
    return ts_map_order(d->mapper, &o, cust, &d->m);
}

static void count(ts_dryrun_stats_t *st, const ts_mapped_t *m) {
    if (m->dead_letter) {
        st->dead_letter++;
        st->by_reason[m->dead_letter]++;
    } else if (m->skipped) {
        st->skipped++;
    } else {
        st->sent++;
        st->events_per_account_total += m->n_events;
    }
}

ts_err_t ts_dryrun_run(const ts_config_t *cfg, ts_kind_t kind, FILE *in, const char *customers_path,
                       const char *suppressions_path, FILE *out, ts_dryrun_stats_t *stats,
                       char *errstr, size_t errstr_size) {
    ts_dryrun_stats_t st;
    memset(&st, 0, sizeof st);
    dry_t d;
    ts_buf_t line_out = TS_BUF_INIT;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    ts_err_t rc = dry_setup(&d, cfg, kind, customers_path, suppressions_path, errstr, errstr_size);
    while (rc == TS_OK && (n = getline(&line, &lcap, in)) >= 0) {
        st.lines++;
        ts_arena_reset(d.arena);
        ts_mapped_reset(&d.m);
        char why[512];
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        ts_err_t drc = dry_line(&d, line, len, why, sizeof why);
        if (drc == TS_ERR_NOMEM) {
            rc = TS_ERR_NOMEM;
            break;
        }
        if (drc != TS_OK) {
            d.m.dead_letter = TS_REASON_DECODE_ERROR;
            snprintf(d.m.detail, sizeof d.m.detail, "%s", why);
            d.m.account = -1;
            d.m.route.account = -1;
        }
        count(&st, &d.m);
        ts_buf_reset(&line_out);
        write_line(&line_out, cfg, st.lines, &d.m);
        if (fwrite(line_out.data, 1, line_out.len, out) != line_out.len)
            rc = ts_seterr(errstr, errstr_size, TS_ERR_IO, "write failed: %s", strerror(errno));
    }
    if (rc == TS_OK && fflush(out) != 0)
        rc = ts_seterr(errstr, errstr_size, TS_ERR_IO, "write failed: %s", strerror(errno));
    if (stats) *stats = st;
    free(line);
    ts_buf_free(&line_out);
    dry_destroy(&d);
    return rc;
}
