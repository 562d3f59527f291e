/* topic.c - partitions and end offsets of a topic (kafka/topic.h). */
#include "kafka/topic.h"
#include "tillstream/ktopic.h"
#include "tillstream/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int ts_ktopic_partitions(rd_kafka_t *rk, const char *topic) {
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err) return -1;
    int n = 0;
    if (md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

int ts_ktopic_partitions_all(rd_kafka_t *rk, const char *topic, int timeout_ms) {
    const rd_kafka_metadata_t *md;
    if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms)) return -1;
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
            n = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Errors asking again will not change. */
static bool watermark_permanent(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
           e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR__INVALID_ARG ||
           e == RD_KAFKA_RESP_ERR__FATAL;
}

rd_kafka_resp_err_t ts_ktopic_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition,
                                         int64_t *lo, int64_t *hi, int timeout_ms) {
    int64_t deadline = ts_now_mono_ms() + timeout_ms;
    int backoff_ms = 100;
    for (;;) {
        int64_t left = deadline - ts_now_mono_ms();
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi,
                                                                 left > 0 ? (int)left : 1);
        if (!e || watermark_permanent(e)) return e;
        left = deadline - ts_now_mono_ms();
        if (left <= 0) return e;
        if (backoff_ms == 100) /* once per call: the caller logs the last error */
            ts_log(TS_LOG_WARN, "kafka", NULL, "watermarks of %s [%d]: %s: asking again", topic,
                   (int)partition, rd_kafka_err2str(e));
        int wait_ms = backoff_ms < left ? backoff_ms : (int)left;
        nanosleep(&(struct timespec){wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L}, NULL);
        if (backoff_ms < 1000) backoff_ms *= 2;
    }
}

int ts_ktopic_ends(rd_kafka_t *rk, const char *topic, int64_t **ends_out, int *n_out) {
    int n = ts_ktopic_partitions(rk, topic);
    if (n < 0) return -1;
    int64_t *ends = n > 0 ? calloc((size_t)n, sizeof *ends) : NULL;
    if (!ends) return -1;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        if (ts_ktopic_watermarks(rk, topic, p, &lo, &hi, 10000)) {
            free(ends);
            return -1;
        }
        ends[p] = hi;
    }
    *ends_out = ends;
    *n_out = n;
    return 0;
}

ts_err_t ts_ktopic_create(rd_kafka_t *rk, const char *name, int partitions, const char *key,
                          const char *value, int timeout_ms, char *errstr, size_t errstr_size) {
    char why[256] = "";
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, -1, why, sizeof why);
    if (!nt) return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "%s", why);
    if (key) rd_kafka_NewTopic_set_config(nt, key, value);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
    ts_err_t rc = TS_OK;
    if (!ev) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "timed out");
    } else {
        size_t n = 0;
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
        if (!e && n == 1) e = rd_kafka_topic_result_error(tr[0]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "%s", rd_kafka_err2str(e));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}
