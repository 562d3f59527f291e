/*
 * tillstream/ktopic.h - creating a topic through librdkafka's admin API
 * (src/kafka/topic.c), for the consent state topic, the suppressions
 * poller's topics and the tillstream-dlq redrive's bookkeeping topic.
 *
 * The type is librdkafka's: this header only declares it, so callers that
 * never include <librdkafka/rdkafka.h> can pass it on.
 */
#ifndef TILLSTREAM_KTOPIC_H
#define TILLSTREAM_KTOPIC_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_kafka_s rd_kafka_t;

/* Creates `name` on rk's cluster with `partitions` partitions, the broker's
 * default replication and one topic config `key`=`value` (key NULL: none),
 * waiting at most timeout_ms for the answer. TS_OK when it was created or
 * already exists; otherwise TS_ERR_TRANSIENT with errstr the reason alone
 * ("timed out", librdkafka's error), for the caller to name the topic. */
ts_err_t ts_ktopic_create(rd_kafka_t *rk, const char *name, int partitions, const char *key,
                          const char *value, int timeout_ms, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
