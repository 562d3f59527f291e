/*
 * suppout.c - the suppressions topic and the poller's state topic
 * (tillstream/suppout.h): one transactional producer, one group-less
 * reader for the restore.
 */
#include "tillstream/suppout.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/topic.h"
#include "tillstream/kconf.h"
#include "tillstream/ktopic.h"
#include "tillstream/log.h"

struct ts_suppout_s {
    const ts_config_t *cfg;
    rd_kafka_t *p;
    bool in_txn;
};

/* Creates `name` when it is missing; 0 when it is there afterwards. */
static int ensure_topic(rd_kafka_t *rk, const char *name, int partitions, const char *k1,
                        const char *v1, char *err, size_t errsz) {
    if (ts_ktopic_partitions_all(rk, name, 10000) > 0) return 0;
    char why[256];
    if (ts_ktopic_create(rk, name, partitions, k1, v1, 15000, why, sizeof why)) {
        snprintf(err, errsz, "creating %s: %s", name, why);
        return -1;
    }
    ts_log(TS_LOG_INFO, "suppressions", NULL, "created the topic %s (%s=%s)", name, k1, v1);
    for (int i = 0; i < 50 && ts_ktopic_partitions_all(rk, name, 10000) <= 0;
         i++) /* metadata catches up */
        rd_kafka_poll(rk, 100);
    return 0;
}

/* a transactional call's error as ours: fatal/fenced -> INTERNAL */
static ts_err_t txn_err(rd_kafka_error_t *e, const char *what, char *errstr, size_t errstr_size) {
    ts_err_t code = rd_kafka_error_is_fatal(e) ? TS_ERR_INTERNAL : TS_ERR_TRANSIENT;
    ts_seterr(errstr, errstr_size, code, "%s: %s%s", what, rd_kafka_error_string(e),
              code == TS_ERR_INTERNAL ? " (fatal: another poller with this transactional.id?)"
                                      : "");
    rd_kafka_error_destroy(e);
    return code;
}

ts_suppout_t *ts_suppout_new(const ts_config_t *cfg, int timeout_ms, ts_err_t *rcp, char *errstr,
                             size_t errstr_size) {
    ts_err_t dummy;
    ts_err_t *rc = rcp ? rcp : &dummy;
    char err[512];
    ts_suppout_t *so = calloc(1, sizeof *so);
    if (!so) {
        *rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    so->cfg = cfg;
    rd_kafka_conf_t *pc = ts_kconf_new(cfg, TS_KCONF_PRODUCER, err, sizeof err);
    if (!pc ||
        ts_kconf_set(pc, "transactional.id", cfg->suppressions_transactional_id, err, sizeof err) ||
        ts_kconf_set(pc, "enable.idempotence", "true", err, sizeof err) ||
        ts_kconf_set(pc, "acks", "all", err, sizeof err)) {
        if (pc) rd_kafka_conf_destroy(pc);
        *rc = ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "%s", err);
        ts_suppout_destroy(so);
        return NULL;
    }
    if (!(so->p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err))) {
        *rc = ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "kafka: %s", err);
        ts_suppout_destroy(so);
        return NULL;
    }
    ts_kconf_creds_watch(cfg, so->p);
    if (ensure_topic(so->p, cfg->topic_suppressions_state, 1, "cleanup.policy", "compact", err,
                     sizeof err) ||
        ensure_topic(so->p, cfg->topic_suppressions, -1, "retention.ms", "-1", err, sizeof err)) {
        *rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "%s", err);
        ts_suppout_destroy(so);
        return NULL;
    }
    rd_kafka_error_t *e = rd_kafka_init_transactions(so->p, timeout_ms);
    if (e) {
        *rc = txn_err(e, "init_transactions", errstr, errstr_size);
        if (*rc == TS_ERR_INTERNAL) *rc = TS_ERR_TRANSIENT; /* at start: nothing to fence yet */
        ts_suppout_destroy(so);
        return NULL;
    }
    *rc = TS_OK;
    return so;
}

void ts_suppout_destroy(ts_suppout_t *so) {
    if (!so) return;
    if (so->p) {
        if (so->in_txn) ts_suppout_abort(so, 5000);
        ts_kconf_creds_unwatch(so->p);
        rd_kafka_destroy(so->p);
    }
    free(so);
}

ts_err_t ts_suppout_restore(ts_suppout_t *so,
                            void (*fn)(void *opaque, const char *account, const char *value,
                                       size_t len),
                            void *opaque, int timeout_ms, char *errstr, size_t errstr_size) {
    const ts_config_t *cfg = so->cfg;
    char err[512];
    rd_kafka_conf_t *rc = ts_kconf_reader(cfg, cfg->suppressions_transactional_id, "-state",
                                          "-suppressions-state", true, err, sizeof err);
    if (!rc) return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "%s", err);
    rd_kafka_t *r = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof err);
    if (!r) return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "kafka: %s", err);
    int n = ts_ktopic_partitions_all(r, cfg->topic_suppressions_state, 10000);
    ts_err_t ret = TS_OK;
    if (n <= 0) {
        ret = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "%s: no metadata",
                        cfg->topic_suppressions_state);
        goto out;
    }
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(pl, cfg->topic_suppressions_state, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(r, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    int eofs = 0;
    size_t states = 0;
    int64_t deadline = ts_now_mono_ms() + timeout_ms;
    char acc[256];
    while (eofs < n) {
        if (ts_now_mono_ms() > deadline) {
            ret = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                            "reading %s did not reach its end within %d ms",
                            cfg->topic_suppressions_state, timeout_ms);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            ts_log(TS_LOG_WARN, "suppressions", NULL, "state reader: %s",
                   rd_kafka_message_errstr(m));
        } else if (m->key && m->key_len && m->key_len < sizeof acc) {
            memcpy(acc, m->key, m->key_len);
            acc[m->key_len] = '\0';
            fn(opaque, acc, m->payload, m->payload ? m->len : 0);
            states++;
        }
        rd_kafka_message_destroy(m);
    }
    char ctx[64];
    snprintf(ctx, sizeof ctx, "\"records\":%zu", states);
    if (!ret)
        ts_log(TS_LOG_INFO, "suppressions", ctx, "watermarks restored from %s",
               cfg->topic_suppressions_state);
out:
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return ret;
}

ts_err_t ts_suppout_begin(ts_suppout_t *so, char *errstr, size_t errstr_size) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(so->p);
    if (e) return txn_err(e, "begin_transaction", errstr, errstr_size);
    so->in_txn = true;
    return TS_OK;
}

static ts_err_t produce(ts_suppout_t *so, const char *topic, const char *key, const char *value,
                        size_t len, char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t e;
    for (int i = 0; i < 100; i++) {
        e = rd_kafka_producev(so->p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(so->p, 100); /* the local queue drains */
    }
    if (e)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "producing to %s: %s", topic,
                         rd_kafka_err2str(e));
    rd_kafka_poll(so->p, 0);
    return TS_OK;
}

ts_err_t ts_suppout_produce(ts_suppout_t *so, const char *key, const char *value, size_t len,
                            char *errstr, size_t errstr_size) {
    return produce(so, so->cfg->topic_suppressions, key, value, len, errstr, errstr_size);
}

ts_err_t ts_suppout_commit(ts_suppout_t *so, const char *account, const char *state, size_t len,
                           int timeout_ms, char *errstr, size_t errstr_size) {
    ts_err_t rc =
        produce(so, so->cfg->topic_suppressions_state, account, state, len, errstr, errstr_size);
    if (rc) {
        ts_suppout_abort(so, timeout_ms);
        return rc;
    }
    rd_kafka_error_t *e = rd_kafka_commit_transaction(so->p, timeout_ms);
    if (!e) {
        so->in_txn = false;
        return TS_OK;
    }
    bool abortable = rd_kafka_error_txn_requires_abort(e), fatal = rd_kafka_error_is_fatal(e);
    rc = txn_err(e, "commit_transaction", errstr, errstr_size);
    if (abortable || !fatal) ts_suppout_abort(so, timeout_ms);
    return rc;
}

void ts_suppout_abort(ts_suppout_t *so, int timeout_ms) {
    rd_kafka_error_t *e = rd_kafka_abort_transaction(so->p, timeout_ms);
    if (e) {
        ts_log(TS_LOG_WARN, "suppressions", NULL, "abort_transaction: %s",
               rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    so->in_txn = false;
}
