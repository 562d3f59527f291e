/*
 * table.c - the customer-table reader (kafka/table.h): restore, then keep
 * current; stop and hold at a customer the registry cannot decode yet.
 */
#include "kafka/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kafka/topic.h"
#include "tillstream/kconf.h"
#include "tillstream/log.h"

struct ts_ktable_s {
    ts_ktable_opts_t o;
    rd_kafka_t *rk;
    ts_arena_t *arena;
    rd_kafka_message_t *held; /* customer waiting for the schema registry */
    int64_t *end;             /* per partition: high watermark at start */
    int n_parts;
    bool ready;
    uint64_t version;
};

/* false: the schema registry is unavailable and `msg` must be applied
 * later (the caller keeps it; the table stops reading until then). */
static bool apply(ts_ktable_t *t, const rd_kafka_message_t *msg) {
    if (msg->err) return true;
    if (!msg->payload) { /* tombstone: the key is the customer id */
        if (msg->key && msg->key_len) ts_custtable_delete(t->o.table, msg->key, msg->key_len);
        t->version++;
        return true;
    }
    ts_customer_t c;
    char why[512];
    ts_arena_reset(t->arena);
    ts_err_t rc =
        ts_decoder_decode(t->o.dec, msg->payload, msg->len, t->arena, &c, why, sizeof why);
    if (ts_err_retryable(rc)) {
        if (t->o.on_registry) t->o.on_registry(t->o.opaque, msg, why);
        return false;
    }
    if (rc == TS_OK) {
        ts_custtable_put(t->o.table, &c);
        t->version++;
    }
    return true;
}

ts_err_t ts_ktable_new(const ts_ktable_opts_t *opts, ts_ktable_t **out, char *errstr,
                       size_t errstr_size) {
    *out = NULL;
    ts_ktable_t *t = calloc(1, sizeof *t);
    if (!t || !(t->arena = ts_arena_new(1 << 16))) {
        free(t);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    }
    t->o = *opts;
    const ts_config_t *cfg = opts->cfg;
    rd_kafka_conf_t *conf = ts_kconf_new(cfg, TS_KCONF_CONSUMER, errstr, errstr_size);
    if (!conf) {
        ts_ktable_destroy(t);
        return TS_ERR_CONFIG;
    }
    char gid[256], why[512];
    snprintf(gid, sizeof gid, "%s-customer-table", cfg->group_id_orders);
    ts_kconf_set(conf, "group.id", gid, NULL, 0);
    ts_kconf_set(conf, "enable.auto.commit", "false", NULL, 0);
    ts_kconf_set(conf, "enable.partition.eof", "false", NULL, 0);
    /* Customers are small records: a 16 MiB fetch queue restores as fast
     * as the 64 MiB default and keeps the restore's peak 34 MiB lower
     * (docs/benchmarks.md, customer table RSS). A user's value wins. */
    if (!ts_kconf_user_set(cfg, "queued.max.messages.kbytes"))
        ts_kconf_set(conf, "queued.max.messages.kbytes", TS_KTABLE_QUEUE_KBYTES, NULL, 0);
    if (!(t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why))) {
        ts_ktable_destroy(t);
        return ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "customer table: %s", why);
    }
    ts_kconf_creds_watch(cfg, t->rk);
    if (ts_ktopic_ends(t->rk, cfg->topic_customers, &t->end, &t->n_parts)) {
        ts_ktable_destroy(t);
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                         "customer table: cannot read the partitions of %s", cfg->topic_customers);
    }
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(t->n_parts);
    for (int p = 0; p < t->n_parts; p++)
        rd_kafka_topic_partition_list_add(pl, cfg->topic_customers, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(t->rk, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    *out = t;
    return TS_OK;
}

void ts_ktable_destroy(ts_ktable_t *t) {
    if (!t) return;
    if (t->held) rd_kafka_message_destroy(t->held);
    if (t->rk) {
        rd_kafka_consumer_close(t->rk);
        ts_kconf_creds_unwatch(t->rk);
        rd_kafka_destroy(t->rk);
    }
    ts_arena_destroy(t->arena);
    free(t->end);
    free(t);
}

/* Every partition reached the end captured at start (an empty or fully
 * compacted-away partition has nothing to read). */
static void check_restored(ts_ktable_t *t) {
    const char *topic = t->o.cfg->topic_customers;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(t->n_parts);
    for (int p = 0; p < t->n_parts; p++) rd_kafka_topic_partition_list_add(pl, topic, p);
    rd_kafka_position(t->rk, pl);
    bool ready = true;
    for (int p = 0; p < t->n_parts && ready; p++) {
        int64_t pos = pl->elems[p].offset, lo, hi;
        if (t->end[p] <= 0 || (pos >= 0 && pos >= t->end[p])) continue;
        ready = !rd_kafka_get_watermark_offsets(t->rk, topic, p, &lo, &hi) && lo >= t->end[p];
    }
    rd_kafka_topic_partition_list_destroy(pl);
    if (!ready) return;
    t->ready = true;
    /* The restore's fetch buffers are freed by now; glibc keeps most of
     * that heap unless asked (49-64 MiB for a 1 M-customer table). */
    ts_mem_release();
    char ctx[96];
    snprintf(ctx, sizeof ctx, "\"customers\":%zu,\"table_bytes\":%zu",
             ts_custtable_size(t->o.table), ts_custtable_memory_bytes(t->o.table));
    ts_log(TS_LOG_INFO, "orders", ctx, "customer table restored from %s", topic);
}

void ts_ktable_poll(ts_ktable_t *t, int timeout_ms) {
    rd_kafka_message_t *msg;
    int n = 0;
    if (t->held) { /* waiting for the registry: nothing after it applies first */
        if (!apply(t, t->held)) {
            if (timeout_ms > 0) usleep((useconds_t)timeout_ms * 1000);
            return;
        }
        if (t->o.on_registry) t->o.on_registry(t->o.opaque, NULL, NULL);
        rd_kafka_message_destroy(t->held);
        t->held = NULL;
    }
    while (n < 10000 && (msg = rd_kafka_consumer_poll(t->rk, n == 0 ? timeout_ms : 0))) {
        n++;
        if (!apply(t, msg)) {
            t->held = msg;
            return;
        }
        rd_kafka_message_destroy(msg);
    }
    if (!t->ready) check_restored(t);
}

bool ts_ktable_ready(const ts_ktable_t *t) { return t && t->ready; }
bool ts_ktable_waiting(const ts_ktable_t *t) { return t && t->held; }
uint64_t ts_ktable_version(const ts_ktable_t *t) { return t ? t->version : 0; }
