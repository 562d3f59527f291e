/*
 * deletes_restore.c - the identifiers the customers topic last knew, for
 * customers.on_delete after a restart (deletes_restore.h).
 */
#include "deletes_restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/log.h"

#define MAX_PARTS  1024
#define TIMEOUT_MS 10000

ts_err_t ts_deletes_restore(ts_deletes_t *d, rd_kafka_conf_t *conf, const char *topic,
                            ts_decoder_t *dec, char *errstr, size_t errstr_size) {
    char err[256];
    if (!conf)
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "customer ids reader: %s", errstr);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "tillstream-deletes-restore", NULL, 0); /* never joins */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) return ts_seterr(errstr, errstr_size, TS_ERR_IO, "customer ids reader: %s", err);
    ts_arena_t *arena = ts_arena_new(0);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(16);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    ts_err_t rc = TS_OK;
    int n = 0, left = 0;
    int64_t ends[MAX_PARTS];
    size_t remembered = 0;
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                       "customer ids reader: no metadata for %s", topic);
        goto out;
    }
    n = md->topics[0].partition_cnt;
    if (n > MAX_PARTS) n = MAX_PARTS;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, TIMEOUT_MS)) {
            rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                           "customer ids reader: no watermarks for %s [%d]", topic, p);
            goto out;
        }
        ends[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(tp, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            left++;
        }
    }
    if (left && rd_kafka_assign(rk, tp)) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_IO, "customer ids reader: cannot assign %s",
                       topic);
        goto out;
    }
    bool done[MAX_PARTS] = {false};
    while (left > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 1000);
        if (!msg) continue;
        int32_t p = msg->partition;
        bool at_end = msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                      (!msg->err && p >= 0 && p < n && msg->offset + 1 >= ends[p]);
        if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ts_log(TS_LOG_WARN, "deletes", NULL, "customer ids reader: %s",
                   rd_kafka_message_errstr(msg));
        } else if (!msg->err && msg->payload) {
            ts_customer_t c;
            char why[256];
            ts_arena_reset(arena);
            ts_err_t drc =
                ts_decoder_decode(dec, msg->payload, msg->len, arena, &c, why, sizeof why);
            if (drc == TS_ERR_TRANSIENT) {
                rd_kafka_message_destroy(msg);
                rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "customer ids reader: %s",
                               why);
                goto out;
            }
            if (drc == TS_OK && ts_deletes_remember(d, &c) == TS_OK) remembered++;
        }
        if (at_end && p >= 0 && p < n && !done[p]) {
            done[p] = true;
            left--;
        }
        rd_kafka_message_destroy(msg);
    }
    char ctx[64];
    snprintf(ctx, sizeof ctx, "\"customers\":%zu", remembered);
    ts_log(TS_LOG_INFO, "deletes", ctx,
           "customers.on_delete: identifiers restored from %s (up to its end at start)", topic);
out:
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(tp);
    ts_arena_destroy(arena);
    rd_kafka_destroy(rk);
    return rc;
}
