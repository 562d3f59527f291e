/*
 * kafka/topic.h - a topic's partitions and end offsets (private to
 * src/kafka): what the loop sizes its per-partition state from and what
 * --exit-at-end, replays and the customer-table restore wait for.
 */
#ifndef TILLSTREAM_KAFKA_TOPIC_H
#define TILLSTREAM_KAFKA_TOPIC_H

#include <librdkafka/rdkafka.h>

#include "tillstream/common.h"

/* The partition count of `topic`: 0 when the broker does not know the
 * topic, -1 when the metadata cannot be read within 10 s. */
int ts_ktopic_partitions(rd_kafka_t *rk, const char *topic);

/* The same from a request for all topics (timeout_ms): a request naming a
 * missing topic would let a broker with auto.create.topics.enable create
 * it, uncompacted; for topics tillstream creates itself. */
int ts_ktopic_partitions_all(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* The low and high watermarks of one partition, asked again (100 ms,
 * doubling to 1 s) while Kafka's answer is retriable and timeout_ms has
 * not passed: a partition just created or moving answers "Not leader for
 * partition" until its leader is elected (a warning the first time). 0,
 * or the last error (an authorization failure at once). */
rd_kafka_resp_err_t ts_ktopic_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition,
                                         int64_t *lo, int64_t *hi, int timeout_ms);

/* The high watermark of every partition of `topic` now, into a new array
 * (*ends, caller frees) of *n entries. -1 when the metadata or a
 * watermark cannot be read within 10 s each (broker unreachable, no
 * topic). */
int ts_ktopic_ends(rd_kafka_t *rk, const char *topic, int64_t **ends, int *n);

#endif
