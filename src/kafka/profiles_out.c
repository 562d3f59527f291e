/*
 * profiles_out.c - Klaviyo profile ids to topics.profiles (profiles_out.h).
 */
#include "profiles_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/jw.h"
#include "tillstream/kconf.h"
#include "tillstream/log.h"
#include "tillstream/metrics.h"

#define FLUSH_MS 10000

struct ts_profiles_out_s {
    rd_kafka_t *rk;
    char *topic;
    int failed; /* delivery failures since the last page end */
    size_t queued;
    ts_buf_t value;
    ts_metric_t *m_produced, *m_skipped, *m_failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    ts_profiles_out_t *po = opaque;
    if (!m->err) return;
    po->failed++;
    ts_metric_add(po->m_failed, 1);
    ts_log(TS_LOG_WARN, "profiles", NULL, "a profile id was not delivered to the topic: %s",
           rd_kafka_err2str(m->err));
}

ts_profiles_out_t *ts_profiles_out_new(rd_kafka_conf_t *conf, const ts_config_t *cfg,
                                       const char *topic, ts_metrics_t *metrics, char *errstr,
                                       size_t errstr_size) {
    ts_profiles_out_t *po = calloc(1, sizeof *po);
    if (!conf || !po || !(po->topic = strdup(topic))) {
        if (conf) rd_kafka_conf_destroy(conf);
        ts_profiles_out_destroy(po);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "profiles producer: out of memory");
        return NULL;
    }
    ts_kconf_durable_producer(conf);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, po);
    char err[256];
    if (!(po->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
        ts_profiles_out_destroy(po);
        ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "profiles producer: %s", err);
        return NULL;
    }
    ts_kconf_creds_watch(cfg, po->rk);
    ts_buf_t lb = TS_BUF_INIT;
    ts_buf_puts(&lb, "topic=\"");
    ts_metrics_label_escape(&lb, topic);
    ts_buf_putc(&lb, '"');
    po->m_produced = ts_metrics_counter(metrics, "tillstream_profile_ids_produced_total",
                                        "Klaviyo profile ids written to topics.profiles", lb.data);
    po->m_skipped =
        ts_metrics_counter(metrics, "tillstream_profile_ids_skipped_total",
                           "job profiles without an external_id (not written)", lb.data);
    po->m_failed =
        ts_metrics_counter(metrics, "tillstream_profile_ids_failed_total",
                           "profile id records the broker did not take (re-read)", lb.data);
    ts_buf_free(&lb);
    return po;
}

void ts_profiles_out_destroy(ts_profiles_out_t *po) {
    if (!po) return;
    if (po->rk) {
        rd_kafka_flush(po->rk, FLUSH_MS);
        ts_kconf_creds_unwatch(po->rk);
        rd_kafka_destroy(po->rk);
    }
    free(po->topic);
    ts_buf_free(&po->value);
    free(po);
}

ts_err_t ts_profiles_out_cb(void *opaque, const ts_engine_profile_t *p) {
    ts_profiles_out_t *po = opaque;
    if (!p) { /* end of a page: durable before the records complete */
        rd_kafka_flush(po->rk, FLUSH_MS);
        bool ok = rd_kafka_outq_len(po->rk) == 0 && po->failed == 0;
        po->failed = 0;
        po->queued = 0;
        return ok ? TS_OK : TS_ERR_TRANSIENT;
    }
    if (!p->external_id || !*p->external_id || !p->profile_id) {
        ts_metric_add(po->m_skipped, 1);
        return TS_OK;
    }
    ts_jw_t w;
    ts_buf_reset(&po->value);
    ts_jw_init_obj(&w, &po->value);
    ts_jw_kv_str(&w, "account", p->account);
    ts_jw_kv_str(&w, "external_id", p->external_id);
    ts_jw_kv_str(&w, "profile_id", p->profile_id);
    ts_jw_kv_str(&w, "email", p->email);
    ts_jw_kv_str(&w, "phone_number", p->phone_number);
    ts_jw_obj_close(&w);
    for (int attempt = 0; attempt < 2; attempt++) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(po->rk, RD_KAFKA_V_TOPIC(po->topic),
                              RD_KAFKA_V_KEY(p->external_id, strlen(p->external_id)),
                              RD_KAFKA_V_VALUE(po->value.data, po->value.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!e) {
            po->queued++;
            ts_metric_add(po->m_produced, 1);
            return TS_OK;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(po->rk, 100);
    }
    po->failed++;
    return TS_ERR_TRANSIENT;
}
