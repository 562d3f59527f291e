/*
 * dlq.c - the dead-letter producer (kafka/dlq.h): every dead letter owns
 * its context until the broker acknowledged it; retries keep the headers;
 * each record is counted once; a value too large for the topic is left
 * out rather than blocking its partition.
 */
#include "kafka/dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/dlhdr.h"
#include "tillstream/kconf.h"
#include "tillstream/log.h"

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000

typedef struct dl_s {
    uint64_t token;
    ts_reason_t reason;
    int account;
    void *key, *value;
    char *detail;
    size_t key_len, value_len;
    rd_kafka_headers_t *headers; /* the complete set; a copy goes with each attempt */
    char coords[160];            /* "topic":..,"partition":..,"offset":.. for logs */
    bool value_omitted;
    bool warned; /* a failed attempt was logged */
    int64_t retry_at;
    int delay_ms;
    struct dl_s *prev, *next; /* every live context */
    struct dl_s *rnext;       /* the retry list */
} dl_t;

struct ts_dlq_s {
    ts_dlq_opts_t o;
    rd_kafka_t *rk;
    dl_t *all;
    dl_t *retry;
    size_t n_live;
    bool outage; /* the topic cannot be written: logged once until it can */
    bool destroying;
    ts_dlq_stats_t st;
    ts_metric_t *m_reason[TS_REASON__COUNT];
    ts_metric_t **m_account; /* [(n_accounts + 1) * TS_REASON__COUNT], lazily */
};

static void hdr(rd_kafka_headers_t *h, const char *k, const char *v) {
    if (v) rd_kafka_header_add(h, k, -1, v, -1);
}

static void dl_free(ts_dlq_t *d, dl_t *x) {
    if (x->prev)
        x->prev->next = x->next;
    else
        d->all = x->next;
    if (x->next) x->next->prev = x->prev;
    d->n_live--;
    if (x->headers) rd_kafka_headers_destroy(x->headers);
    free(x->key);
    free(x->value);
    free(x->detail);
    free(x);
}

static rd_kafka_headers_t *build_headers(const ts_dlq_t *d, const rd_kafka_message_t *msg,
                                         ts_reason_t reason, const char *detail, int account,
                                         const char *outlet) {
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(20);
    if (!h) return NULL;
    char part[16], off[24], ts[24], cls[64];
    rd_kafka_timestamp_type_t tstype;
    int64_t tsv = rd_kafka_message_timestamp(msg, &tstype);
    snprintf(part, sizeof part, "%d", msg->partition);
    snprintf(off, sizeof off, "%lld", (long long)msg->offset);
    snprintf(ts, sizeof ts, "%lld", (long long)tsv);
    snprintf(cls, sizeof cls, TS_DLH_PREFIX "%s", ts_reason_name(reason));
    const char *topic = rd_kafka_topic_name(msg->rkt);
    const ts_config_t *cfg = d->o.cfg;
    hdr(h, TS_DLH_REASON, ts_reason_name(reason));
    hdr(h, TS_DLH_DETAIL, detail);
    hdr(h, TS_DLH_SOURCE_TOPIC, topic);
    hdr(h, TS_DLH_SOURCE_PARTITION, part);
    hdr(h, TS_DLH_SOURCE_OFFSET, off);
    hdr(h, TS_DLH_SOURCE_TIMESTAMP, ts);
    hdr(h, TS_DLH_CONSUMER, d->o.prog);
    hdr(h, TS_DLH_RUN, d->o.run);
    hdr(h, TS_DLH_OUTLET, outlet);
    if (account >= 0 && (size_t)account < cfg->n_accounts)
        hdr(h, TS_DLH_ACCOUNT, cfg->accounts[account].name);
    /* Kafka Connect's dead-letter context, so existing DLQ tooling reads ours */
    hdr(h, TS_DLH_CONNECT_TOPIC, topic);
    hdr(h, TS_DLH_CONNECT_PARTITION, part);
    hdr(h, TS_DLH_CONNECT_OFFSET, off);
    hdr(h, TS_DLH_CONNECT_CONNECTOR, d->o.prog);
    hdr(h, TS_DLH_CONNECT_TASK, "0");
    hdr(h, TS_DLH_CONNECT_STAGE,
        reason == TS_REASON_DECODE_ERROR || reason == TS_REASON_SCHEMA_NOT_FOUND ? "VALUE_CONVERTER"
                                                                                 : "TASK_PUT");
    hdr(h, TS_DLH_CONNECT_CLASS, "tillstream");
    hdr(h, TS_DLH_CONNECT_EXC_CLASS, cls);
    hdr(h, TS_DLH_CONNECT_EXC_MESSAGE, detail);
    return h;
}

/* Too large for the topic: the value goes, the coordinates stay. */
static void omit_value(ts_dlq_t *d, dl_t *x, rd_kafka_resp_err_t why) {
    char v[48];
    snprintf(v, sizeof v, "size=%zu", x->value_len);
    hdr(x->headers, TS_DLH_VALUE_OMITTED, v);
    free(x->value);
    x->value = NULL;
    x->value_omitted = true;
    d->st.values_omitted++;
    ts_log(TS_LOG_ERROR, "dlq", x->coords,
           "dead letter too large for %s (%s, %zu bytes): written without its value; the "
           "source coordinates locate the original",
           d->o.cfg->topic_dead_letter, rd_kafka_err2str(why), x->value_len);
}

static void schedule_retry(ts_dlq_t *d, dl_t *x) {
    d->st.retries++;
    x->delay_ms = x->delay_ms ? x->delay_ms * 2 : RETRY_FIRST_MS;
    if (x->delay_ms > RETRY_MAX_MS) x->delay_ms = RETRY_MAX_MS;
    x->retry_at = ts_now_mono_ms() + x->delay_ms;
    x->rnext = d->retry;
    d->retry = x;
}

/* A failed attempt: logged once per record (local queue full) or once
 * per outage of the topic, and retried. */
static void failed(ts_dlq_t *d, dl_t *x, rd_kafka_resp_err_t err) {
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (!x->warned)
            ts_log(TS_LOG_WARN, "dlq", x->coords, "dead-letter produce failed (%s); will retry",
                   rd_kafka_err2str(err));
        x->warned = true;
    } else if (!d->outage) {
        /* the dead-letter topic cannot be written: do not advance, retry */
        ts_log(TS_LOG_ERROR, "dlq", x->coords,
               "cannot write the dead-letter topic %s (%s): not advancing past these records; "
               "retrying",
               d->o.cfg->topic_dead_letter, rd_kafka_err2str(err));
        d->outage = true;
    }
    schedule_retry(d, x);
}

/* One attempt; a failure schedules the next. */
static void attempt(ts_dlq_t *d, dl_t *x) {
    for (;;) {
        rd_kafka_headers_t *h = rd_kafka_headers_copy(x->headers);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            d->rk, RD_KAFKA_V_TOPIC(d->o.cfg->topic_dead_letter),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(x->key, x->key_len),
            RD_KAFKA_V_VALUE(x->value, x->value ? x->value_len : 0), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE(x), RD_KAFKA_V_END);
        if (!err) return; /* the headers copy belongs to librdkafka now */
        rd_kafka_headers_destroy(h);
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !x->value_omitted) {
            omit_value(d, x, err);
            continue;
        }
        failed(d, x, err);
        return;
    }
}

static ts_metric_t *account_metric(ts_dlq_t *d, int account, ts_reason_t reason) {
    const ts_config_t *cfg = d->o.cfg;
    size_t slot =
        (account >= 0 && (size_t)account < cfg->n_accounts ? (size_t)account : cfg->n_accounts) *
            TS_REASON__COUNT +
        (size_t)reason;
    if (!d->m_account) return NULL;
    if (!d->m_account[slot]) {
        ts_buf_t lb = TS_BUF_INIT;
        ts_buf_puts(&lb, "account=\"");
        ts_metrics_label_escape(
            &lb, slot / TS_REASON__COUNT < cfg->n_accounts ? cfg->accounts[account].name : "");
        ts_buf_printf(&lb, "\",reason=\"%s\"", ts_reason_name(reason));
        d->m_account[slot] =
            ts_metrics_counter(d->o.metrics, "tillstream_dead_letters_by_account_total",
                               "records written to the dead-letter topic, per account "
                               "(empty: not routed to one)",
                               lb.data);
        ts_buf_free(&lb);
    }
    return d->m_account[slot];
}

static void acknowledged(ts_dlq_t *d, dl_t *x) {
    if (d->outage)
        ts_log(TS_LOG_INFO, "dlq", NULL, "the dead-letter topic %s can be written again",
               d->o.cfg->topic_dead_letter);
    d->outage = false;
    d->st.written++;
    d->st.by_reason[x->reason]++;
    ts_metric_add(d->m_reason[x->reason], 1);
    ts_metric_add(account_metric(d, x->account, x->reason), 1);
    if (ts_log_enabled(TS_LOG_INFO)) {
        char ctx[256];
        snprintf(ctx, sizeof ctx, "%s,\"reason\":\"%s\"", x->coords, ts_reason_name(x->reason));
        ts_log(TS_LOG_INFO, "consumer", ctx, "dead-lettered: %s", x->detail ? x->detail : "");
    }
    uint64_t token = x->token;
    dl_free(d, x);
    d->o.on_done(d->o.opaque, token);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *dm, void *opaque) {
    (void)rk;
    ts_dlq_t *d = opaque;
    dl_t *x = dm->_private;
    if (!x) return;
    if (!dm->err) {
        acknowledged(d, x);
        return;
    }
    if (d->destroying) {
        dl_free(d, x);
        return;
    }
    if (dm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !x->value_omitted) {
        omit_value(d, x, dm->err);
        attempt(d, x);
        return;
    }
    failed(d, x, dm->err);
}

ts_err_t ts_dlq_new(const ts_dlq_opts_t *opts, ts_dlq_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    ts_dlq_t *d = calloc(1, sizeof *d);
    if (!d) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    d->o = *opts;
    d->m_account = calloc((opts->cfg->n_accounts + 1) * TS_REASON__COUNT, sizeof *d->m_account);
    for (int r = 1; r < TS_REASON__COUNT && opts->metrics; r++) {
        char lb[256];
        snprintf(lb, sizeof lb, "topic=\"%s\",reason=\"%s\"", opts->topic ? opts->topic : "",
                 ts_reason_name((ts_reason_t)r));
        d->m_reason[r] = ts_metrics_counter(opts->metrics, "tillstream_dead_letter_total",
                                            "records written to the dead-letter topic", lb);
    }
    rd_kafka_conf_t *conf = ts_kconf_new(opts->cfg, TS_KCONF_PRODUCER, errstr, errstr_size);
    if (!conf) {
        ts_dlq_destroy(d);
        return TS_ERR_CONFIG;
    }
    ts_kconf_durable_producer(conf); /* a retried dead letter is written once */
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    char why[512];
    if (!(d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
        ts_dlq_destroy(d);
        return ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "dead-letter producer: %s", why);
    }
    ts_kconf_creds_watch(d->o.cfg, d->rk);
    *out = d;
    return TS_OK;
}

void ts_dlq_destroy(ts_dlq_t *d) {
    if (!d) return;
    if (d->rk) {
        d->destroying = true;
        rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(d->rk, 0);
        ts_kconf_creds_unwatch(d->rk);
        rd_kafka_destroy(d->rk);
    }
    while (d->all) dl_free(d, d->all);
    free(d->m_account);
    free(d);
}

ts_err_t ts_dlq_write(ts_dlq_t *d, const rd_kafka_message_t *msg, uint64_t token,
                      ts_reason_t reason, const char *detail, int account, const char *outlet) {
    dl_t *x = calloc(1, sizeof *x);
    if (!x) return TS_ERR_NOMEM;
    *x = (dl_t){.token = token, .reason = reason, .account = account, .next = d->all};
    if (d->all) d->all->prev = x;
    d->all = x;
    d->n_live++;
    x->headers = build_headers(d, msg, reason, detail, account, outlet);
    x->detail = strdup(detail ? detail : "");
    if (msg->key_len) x->key = malloc(msg->key_len);
    if (msg->len) x->value = malloc(msg->len);
    if (!x->headers || !x->detail || (msg->key_len && !x->key) || (msg->len && !x->value)) {
        dl_free(d, x);
        return TS_ERR_NOMEM;
    }
    if (x->key) memcpy(x->key, msg->key, x->key_len = msg->key_len);
    if (x->value) memcpy(x->value, msg->payload, x->value_len = msg->len);
    snprintf(x->coords, sizeof x->coords, "\"topic\":\"%.80s\",\"partition\":%d,\"offset\":%lld",
             rd_kafka_topic_name(msg->rkt), msg->partition, (long long)msg->offset);
    attempt(d, x);
    return TS_OK;
}

void ts_dlq_poll(ts_dlq_t *d) {
    rd_kafka_poll(d->rk, 0);
    if (!d->retry) return;
    int64_t now = ts_now_mono_ms();
    dl_t *due = NULL;
    for (dl_t **pp = &d->retry; *pp;) {
        dl_t *x = *pp;
        if (x->retry_at <= now) {
            *pp = x->rnext;
            x->rnext = due;
            due = x;
        } else {
            pp = &x->rnext;
        }
    }
    while (due) {
        dl_t *x = due;
        due = x->rnext;
        x->rnext = NULL;
        attempt(d, x);
    }
}

void ts_dlq_flush(ts_dlq_t *d, int timeout_ms) {
    int64_t end = ts_now_mono_ms() + timeout_ms;
    while (d->n_live && ts_now_mono_ms() < end) {
        ts_dlq_poll(d);
        rd_kafka_flush(d->rk, 20);
    }
}

size_t ts_dlq_pending(const ts_dlq_t *d) { return d ? d->n_live : 0; }

void ts_dlq_stats(const ts_dlq_t *d, ts_dlq_stats_t *out) { *out = d->st; }
