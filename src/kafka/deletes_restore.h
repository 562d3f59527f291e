/*
 * deletes_restore.h - private to src/kafka: customers.on_delete after a
 * restart. Before tillstream-customers consumes, the customers topic is
 * read once from the beginning to the high watermarks captured at start
 * (a group-less reader), and every customer's identifiers are remembered
 * (ts_deletes_remember), so a tombstone consumed later finds what the
 * topic last knew for that key even when the customer's record was
 * consumed before the restart. Tombstones met here forget nothing: the
 * consume loop acts on them (those it already handled were committed and
 * are not consumed again). Synchronous: startup waits for it.
 */
#ifndef TILLSTREAM_KAFKA_DELETES_RESTORE_H
#define TILLSTREAM_KAFKA_DELETES_RESTORE_H

#include <librdkafka/rdkafka.h>

#include "tillstream/decode.h"
#include "tillstream/deletes.h"

/* Takes `conf` (a consumer configuration without group). TS_OK, or
 * TS_ERR_TRANSIENT / TS_ERR_IO with errstr when the topic cannot be read
 * (the schema registry is down: TS_ERR_TRANSIENT too). */
ts_err_t ts_deletes_restore(ts_deletes_t *d, rd_kafka_conf_t *conf, const char *topic,
                            ts_decoder_t *dec, char *errstr, size_t errstr_size);

#endif
