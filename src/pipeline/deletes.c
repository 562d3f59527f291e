/*
 * deletes.c - customers.on_delete (tillstream/deletes.h).
 */
#include "tillstream/deletes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/custtable.h"
#include "tillstream/jw.h"
#include "tillstream/log.h"
#include "tillstream/metrics.h"

struct ts_deletes_s {
    const ts_config_t *cfg;
    ts_mapper_t *mapper;
    ts_metrics_t *metrics;
    ts_custtable_t *known;
    bool del; /* delete, else suppress */
    char id[256];
};

ts_deletes_t *ts_deletes_new(const ts_config_t *cfg, ts_mapper_t *mapper, ts_metrics_t *metrics,
                             char *errstr, size_t errstr_size) {
    if (errstr_size) errstr[0] = '\0';
    if (!strcmp(cfg->customers_on_delete, "ignore")) return NULL;
    ts_deletes_t *d = calloc(1, sizeof *d);
    if (!d || !(d->known = ts_custtable_new(0))) {
        free(d);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->mapper = mapper;
    d->metrics = metrics;
    d->del = !strcmp(cfg->customers_on_delete, "delete");
    return d;
}

void ts_deletes_destroy(ts_deletes_t *d) {
    if (!d) return;
    ts_custtable_destroy(d->known);
    free(d);
}

ts_err_t ts_deletes_remember(ts_deletes_t *d, const ts_customer_t *c) {
    return d && c->customer_id ? ts_custtable_put(d->known, c) : TS_OK;
}

static void count(ts_deletes_t *d, const char *account, const char *action) {
    ts_buf_t lb = TS_BUF_INIT;
    ts_buf_puts(&lb, "account=\"");
    ts_metrics_label_escape(&lb, account ? account : "");
    ts_buf_printf(&lb, "\",action=\"%s\"", action);
    ts_metric_add(ts_metrics_counter(d->metrics, "tillstream_customer_deletions_total",
                                     "customer tombstones followed in Klaviyo "
                                     "(customers.on_delete), by account and action",
                                     lb.data),
                  1);
    ts_buf_free(&lb);
}

/* The customer id as a NUL-terminated string (ids longer than 255 bytes
 * are not customer ids the table holds). */
static const char *id_of(ts_deletes_t *d, const char *key, size_t len) {
    if (!key || len == 0 || len >= sizeof d->id) return NULL;
    memcpy(d->id, key, len);
    d->id[len] = '\0';
    return d->id;
}

static void log_id(ts_log_level_t lvl, const char *id, const char *account, const char *msg) {
    ts_buf_t ctx = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &ctx);
    ts_jw_kv_str(&w, "customer", id);
    if (account) ts_jw_kv_str(&w, "account", account);
    ts_log(lvl, "deletes", ctx.data, "%s", msg);
    ts_buf_free(&ctx);
}

ts_err_t ts_deletes_prepare(ts_deletes_t *d, const char *key, size_t key_len, ts_mapped_t *m) {
    const char *id = id_of(d, key, key_len);
    ts_customer_ref_t ref;
    if (!id || !ts_custtable_get(d->known, id, &ref)) {
        count(d, NULL, "unknown");
        if (id)
            log_id(TS_LOG_WARN, id, NULL,
                   "tombstone for a customer this consumer has not seen: nothing sent to Klaviyo");
        return TS_ERR_NOT_FOUND;
    }
    ts_customer_t c = {.customer_id = ref.customer_id,
                       .email = ref.email,
                       .phone = ref.phone,
                       .first_name = ref.first_name,
                       .last_name = ref.last_name,
                       .home_outlet_id = ref.home_outlet_id};
    ts_err_t rc = ts_map_customer(d->mapper, &c, m);
    bool sendable = rc == TS_OK && !m->dead_letter && !m->skipped && m->account >= 0 &&
                    (d->del ? m->email.len || m->phone_e164.len : m->email.len > 0);
    const char *account = m->account >= 0 && (size_t)m->account < d->cfg->n_accounts
                              ? d->cfg->accounts[m->account].name
                              : NULL;
    if (!sendable) {
        count(d, account, "unknown");
        log_id(TS_LOG_WARN, id, account,
               d->del ? "tombstone: no identifier or account to delete the profile by"
                      : "tombstone: no email or account to suppress");
        ts_custtable_delete(d->known, id, strlen(id));
        return TS_ERR_NOT_FOUND;
    }
    m->n_events = 0;
    m->send_profile = false;
    m->email_marketing = m->sms_marketing = TS_SUB_KEEP;
    m->delete_profile = d->del;
    m->suppress_profile = !d->del;
    return TS_OK;
}

void ts_deletes_submitted(ts_deletes_t *d, const char *key, size_t key_len, const ts_mapped_t *m) {
    const char *id = id_of(d, key, key_len);
    if (!id) return;
    const char *account = d->cfg->accounts[m->account].name;
    count(d, account, d->del ? "delete" : "suppress");
    log_id(TS_LOG_INFO, id, account,
           d->del ? "customer deleted in the POS: requesting the profile's deletion in Klaviyo"
                  : "customer deleted in the POS: suppressing the profile's email in Klaviyo");
    ts_custtable_delete(d->known, id, strlen(id));
}
