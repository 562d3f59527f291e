/* topic.c - partitions and end offsets of a topic (kafka/topic.h). */
#include "kafka/topic.h"

#include <stdlib.h>

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
