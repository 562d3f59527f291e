/*
 * deletes_restore.c - the identifiers the customers topic last knew, for
 * customers.on_delete after a restart (deletes_restore.h).
 */
#include "deletes_restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/topic.h"
#include "tillstream/log.h"

/* The reader's state: one end offset and one done flag per partition,
 * sized from the topic's metadata. */
typedef struct {
    rd_kafka_t *rk;
    const char *topic;
    ts_deletes_t *d;
    ts_decoder_t *dec;
    ts_arena_t *arena;
    int64_t *ends; /* high watermark at start, per partition */
    bool *done;    /* partition read up to its end */
    int n, left;   /* partitions; those not done */
    size_t remembered;
} reader_t;

#define FAIL(code, ...) ts_seterr(errstr, errstr_size, code, "customer ids reader: " __VA_ARGS__)

/* Every non-empty partition from its beginning. */
static ts_err_t assign_all(reader_t *r, char *errstr, size_t errstr_size) {
    if (ts_ktopic_ends(r->rk, r->topic, &r->ends, &r->n))
        return FAIL(TS_ERR_TRANSIENT, "no metadata or watermarks for %s", r->topic);
    if (!(r->done = calloc((size_t)r->n, sizeof *r->done))) return TS_ERR_NOMEM;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(r->n);
    for (int p = 0; p < r->n; p++) {
        r->done[p] = r->ends[p] <= 0;
        if (r->done[p]) continue;
        rd_kafka_topic_partition_list_add(tp, r->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        r->left++;
    }
    rd_kafka_resp_err_t e = r->left ? rd_kafka_assign(r->rk, tp) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(tp);
    return e ? FAIL(TS_ERR_IO, "cannot assign %s", r->topic) : TS_OK;
}

/* One record's identifiers remembered; TS_ERR_TRANSIENT when its schema
 * cannot be fetched (registry down), anything else undecodable is
 * passed over. */
static ts_err_t remember(reader_t *r, const rd_kafka_message_t *msg, char *errstr,
                         size_t errstr_size) {
    ts_customer_t c;
    char why[256];
    ts_arena_reset(r->arena);
    ts_err_t drc = ts_decoder_decode(r->dec, msg->payload, msg->len, r->arena, &c, why, sizeof why);
    if (drc == TS_ERR_TRANSIENT) return FAIL(TS_ERR_TRANSIENT, "%s", why);
    if (drc == TS_OK && ts_deletes_remember(r->d, &c) == TS_OK) r->remembered++;
    return TS_OK;
}

/* Polls until every assigned partition reached its end at start. */
static ts_err_t read_to_ends(reader_t *r, char *errstr, size_t errstr_size) {
    while (r->left > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(r->rk, 1000);
        if (!msg) continue;
        int32_t p = msg->partition;
        bool known = p >= 0 && p < r->n;
        bool eof = msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        ts_err_t rc = TS_OK;
        if (msg->err && !eof)
            ts_log(TS_LOG_WARN, "deletes", NULL, "customer ids reader: %s",
                   rd_kafka_message_errstr(msg));
        else if (!msg->err && msg->payload)
            rc = remember(r, msg, errstr, errstr_size);
        bool at_end = eof || (!msg->err && known && msg->offset + 1 >= r->ends[p]);
        if (at_end && known && !r->done[p]) {
            r->done[p] = true;
            r->left--;
        }
        rd_kafka_message_destroy(msg);
        if (rc) return rc;
    }
    return TS_OK;
}

ts_err_t ts_deletes_restore(ts_deletes_t *d, rd_kafka_conf_t *conf, const char *topic,
                            ts_decoder_t *dec, char *errstr, size_t errstr_size) {
    char err[256];
    if (!conf) { /* the conf builder's message is in errstr already */
        snprintf(err, sizeof err, "%s", errstr);
        return FAIL(TS_ERR_CONFIG, "%s", err);
    }
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "tillstream-deletes-restore", NULL, 0); /* never joins */
    reader_t r = {.topic = topic, .d = d, .dec = dec};
    if (!(r.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        return FAIL(TS_ERR_IO, "%s", err);
    }
    ts_err_t rc = (r.arena = ts_arena_new(0)) ? TS_OK : TS_ERR_NOMEM;
    if (!rc) rc = assign_all(&r, errstr, errstr_size);
    if (!rc) rc = read_to_ends(&r, errstr, errstr_size);
    if (!rc) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "\"customers\":%zu", r.remembered);
        ts_log(TS_LOG_INFO, "deletes", ctx,
               "customers.on_delete: identifiers restored from %s (up to its end at start)", topic);
    }
    free(r.ends);
    free(r.done);
    ts_arena_destroy(r.arena);
    rd_kafka_destroy(r.rk);
    return rc;
}
