/*
 * kafka/table.h - the customer-table reader of tillstream-orders (private
 * to src/kafka).
 *
 * A consumer handle of its own (no group membership: every partition of
 * the customers topic assigned from the beginning) fills the customer
 * table (custtable.h): restored up to the end offsets captured at start,
 * then kept current; tombstones delete. While the schema registry cannot
 * be asked, the reader stops at the first customer it cannot decode and
 * holds it (nothing after it applies first); on_registry reports the
 * outage and its end. Records that do not decode are not in the table (the
 * customers consumer dead-letters them).
 *
 * Threading: the consumer's thread.
 */
#ifndef TILLSTREAM_KAFKA_TABLE_H
#define TILLSTREAM_KAFKA_TABLE_H

#include <librdkafka/rdkafka.h>

#include "tillstream/config.h"
#include "tillstream/custtable.h"
#include "tillstream/decode.h"

typedef struct ts_ktable_s ts_ktable_t;

/* The reader's queued.max.messages.kbytes unless the config's kafka section
 * sets it. Once restored, the reader asks the C library to return the heap
 * the restore freed (ts_mem_release) and logs the table's size. */
#define TS_KTABLE_QUEUE_KBYTES "16384"

typedef struct {
    const ts_config_t *cfg; /* borrowed: topics.customers, group_id_orders, kafka */
    ts_custtable_t *table;  /* borrowed: filled by the reader */
    ts_decoder_t *dec;      /* borrowed: the customers topic's decoder */
    /* the registry is unavailable (msg: the customer waiting, why) or, with
     * msg NULL, answers again */
    void (*on_registry)(void *opaque, const rd_kafka_message_t *msg, const char *why);
    void *opaque;
} ts_ktable_opts_t;

/* Assigns every partition of the customers topic from the beginning.
 * TS_ERR_CONFIG for a refused kafka property, TS_ERR_TRANSIENT when the
 * topic's partitions cannot be read. */
ts_err_t ts_ktable_new(const ts_ktable_opts_t *opts, ts_ktable_t **out, char *errstr,
                       size_t errstr_size);
void ts_ktable_destroy(ts_ktable_t *t); /* accepts NULL */

/* Applies what is available (waits up to timeout_ms for the first record). */
void ts_ktable_poll(ts_ktable_t *t, int timeout_ms);
/* Every partition reached the end captured at start. */
bool ts_ktable_ready(const ts_ktable_t *t);
/* A customer waits for the schema registry: an order's customer may just
 * not be read yet. */
bool ts_ktable_waiting(const ts_ktable_t *t);
/* Bumped by every change to the table (held orders retry on a change). */
uint64_t ts_ktable_version(const ts_ktable_t *t);

#endif
