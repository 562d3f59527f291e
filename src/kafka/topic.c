/* topic.c - partitions and end offsets of a topic (kafka/topic.h). */
#include "kafka/topic.h"
#include "tillstream/ktopic.h"

#include <stdlib.h>
#include <string.h>

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

int ts_ktopic_ends(rd_kafka_t *rk, const char *topic, int64_t **ends_out, int *n_out) {
    int n = ts_ktopic_partitions(rk, topic);
    if (n < 0) return -1;
    int64_t *ends = n > 0 ? calloc((size_t)n, sizeof *ends) : NULL;
    if (!ends) return -1;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) {
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
