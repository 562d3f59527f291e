/*
 * state.c - the consent state topic and the suppressions topic for the
 * customers consumer (tillstream/state.h; docs/consent.md).
 *
 * One idempotent producer writes states; one group-less reader (assign,
 * no commits) restores the owned state partitions and follows the
 * suppressions topic. Writes in flight are kept in a small chained hash
 * keyed by the record's token, so a record's completion can wait for its
 * state write's ack (the offset is stored only after both).
 */
#include "tillstream/state.h"
#include "tillstream/hash.h"

#include <cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/jw.h"
#include "kafka/topic.h"
#include "tillstream/kconf.h"
#include "tillstream/ktopic.h"
#include "tillstream/log.h"

#define N_BUCKETS 4096

struct keyq_s;
typedef struct pending_s {
    uint64_t token;
    bool produced, acked, done, failed;
    struct keyq_s *q; /* while queued: snapshots of one customer, in decision order */
    struct pending_s *qnext;
    int32_t partition;
    char *key;
    ts_buf_t value;
    struct pending_s *next, *retry_next;
} pending_t;

/* A customer's snapshots not yet produced, oldest first: a later record's
 * snapshot is never written before an earlier one's (completions come in
 * any order across endpoints; compaction keeps the last write). */
typedef struct keyq_s {
    char *key;
    pending_t *head, *tail;
    struct keyq_s *next;
} keyq_t;

struct ts_state_s {
    ts_state_opts_t o;
    rd_kafka_t *producer, *reader;
    int n_parts;       /* partitions of the customers (and state) topic */
    int n_supp_parts;  /* partitions of the suppressions topic; 0 = none */
    int64_t *supp_pos; /* suppressions: next offset to read per partition */
    pending_t *buckets[N_BUCKETS];
    keyq_t *kbuckets[N_BUCKETS];
    pending_t *retry;
    size_t n_pending;
    ts_buf_t scratch;
    ts_metric_t *m_writes, *m_restored, *m_suppressions;
};

static pending_t **bucket(ts_state_t *st, uint64_t token) {
    uint64_t h = token * 0x9E3779B97F4A7C15ULL;
    return &st->buckets[h >> 52 & (N_BUCKETS - 1)];
}

static keyq_t **kbucket(ts_state_t *st, const char *key) {
    return &st->kbuckets[ts_hash_str(key) & (N_BUCKETS - 1)];
}

static void keyq_free(ts_state_t *st, keyq_t *q) {
    for (keyq_t **pp = kbucket(st, q->key); *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    free(q->key);
    free(q);
}

static pending_t *find(ts_state_t *st, uint64_t token) {
    for (pending_t *p = *bucket(st, token); p; p = p->next)
        if (p->token == token) return p;
    return NULL;
}

static void unlink_free(ts_state_t *st, pending_t *e) {
    for (pending_t **pp = bucket(st, e->token); *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e->key);
    ts_buf_free(&e->value);
    free(e);
    st->n_pending--;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    ts_state_t *st = opaque;
    pending_t *e = m->_private;
    if (!e) return;
    if (m->err) {
        /* not acked: the record's offset must wait; produce it again */
        ts_log(TS_LOG_WARN, "state", NULL, "state write for %s failed (retrying): %s", e->key,
               rd_kafka_err2str(m->err));
        e->failed = true;
        e->retry_next = st->retry;
        st->retry = e;
        return;
    }
    ts_metric_add(st->m_writes, 1);
    if (e->done) {
        uint64_t token = e->token;
        unlink_free(st, e);
        if (st->o.ready) st->o.ready(st->o.opaque, token);
    } else {
        e->acked = true;
    }
}

/* The suppressions topic has `n` partitions (0: none yet): new ones are
 * read from the beginning. -1 when out of memory. */
static int supp_resize(ts_state_t *st, int n) {
    if (st->supp_pos && n <= st->n_supp_parts) return 0;
    int64_t *pos = realloc(st->supp_pos, (size_t)(n ? n : 1) * sizeof *pos);
    if (!pos) return -1;
    for (int p = st->supp_pos ? st->n_supp_parts : 0; p < n; p++)
        pos[p] = RD_KAFKA_OFFSET_BEGINNING;
    st->supp_pos = pos;
    st->n_supp_parts = n;
    return 0;
}

/* Creates the state topic as Kafka Streams creates a changelog: compacted,
 * as many partitions as the customers topic, the broker's replication
 * factor. Returns 0 when created or already there. */
static int create_state_topic(ts_state_t *st, int partitions, char *err, size_t errsz) {
    const char *name = st->o.cfg->topic_customers_state;
    char why[256];
    if (ts_ktopic_create(st->producer, name, partitions, "cleanup.policy", "compact", 15000, why,
                         sizeof why)) {
        snprintf(err, errsz, "creating %s: %s", name, why);
        return -1;
    }
    ts_log(TS_LOG_INFO, "state", NULL, "created the state topic %s (%d partitions, compacted)",
           name, partitions);
    return 0;
}

/* The producer and the reader. A property error already names its key
 * path, as the consumer's does (and --check-config's): the same message
 * whichever client met it. */
static ts_err_t open_clients(ts_state_t *st, char *errstr, size_t errstr_size) {
    const ts_config_t *cfg = st->o.cfg;
    char err[512];
    rd_kafka_conf_t *pc = ts_kconf_new(cfg, TS_KCONF_PRODUCER, err, sizeof err);
    if (!pc) goto fail;
    ts_kconf_durable_producer(pc);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, st);
    if (!(st->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err))) goto fail;
    ts_kconf_creds_watch(cfg, st->producer);
    /* a second client: the reader only assigns and never joins, a distinct
     * static member id keeps it so */
    rd_kafka_conf_t *rc =
        ts_kconf_reader(cfg, st->o.group_id, "-state", "-state", false, err, sizeof err);
    if (rc && (st->reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof err))) {
        ts_kconf_creds_watch(cfg, st->reader);
        return TS_OK;
    }
fail:
    return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "%s%s",
                     strncmp(err, "kafka.", 6) ? "state store: " : "", err);
}

/* The state topic, created when missing, with as many partitions as the
 * customers topic; the suppressions topic's partition count in *nsupp. */
static ts_err_t check_topics(ts_state_t *st, int *nsupp, char *errstr, size_t errstr_size) {
    const ts_config_t *cfg = st->o.cfg;
    char err[512];
    st->n_parts = ts_ktopic_partitions(st->reader, cfg->topic_customers);
    int ns = ts_ktopic_partitions(st->reader, cfg->topic_customers_state);
    if (st->n_parts > 0 && ns == 0) {
        if (create_state_topic(st, st->n_parts, err, sizeof err))
            return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "topics.customers_state: %s",
                             err);
        for (int i = 0; i < 50 && ns != st->n_parts; i++) { /* metadata catches up */
            ns = ts_ktopic_partitions(st->reader, cfg->topic_customers_state);
            if (ns != st->n_parts) usleep(100 * 1000);
        }
    }
    if (st->n_parts <= 0 || ns != st->n_parts)
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG,
                         "topics.customers_state: %s must exist with as many partitions as %s "
                         "(%d), found %d",
                         cfg->topic_customers_state, cfg->topic_customers, st->n_parts, ns);
    int n = *nsupp = ts_ktopic_partitions(st->reader, cfg->topic_suppressions);
    if (n <= 0 && cfg->customers_wait_for_suppressions)
        /* a first deployment over an existing Klaviyo account would
         * re-subscribe everyone Klaviyo suppressed: refuse to start */
        return ts_seterr(errstr, errstr_size, n < 0 ? TS_ERR_TRANSIENT : TS_ERR_CONFIG,
                         "topics.suppressions: %s %s; it holds Klaviyo's suppressions "
                         "(tillstream-suppressions writes it): create it, or set "
                         "customers.wait_for_suppressions to false to start without them",
                         cfg->topic_suppressions,
                         n < 0 ? "could not be looked up" : "does not exist");
    if (n <= 0)
        ts_log(TS_LOG_WARN, "state", NULL,
               "no suppressions topic %s (customers.wait_for_suppressions is false): consent is "
               "decided without Klaviyo's suppressions until it exists (looked for again at "
               "each assignment)",
               cfg->topic_suppressions);
    return TS_OK;
}

ts_state_t *ts_state_new(const ts_state_opts_t *opts, char *errstr, size_t errstr_size) {
    ts_state_t *st = ts_zalloc(sizeof *st, NULL, errstr, errstr_size);
    if (!st) return NULL;
    st->o = *opts;
    int nsupp = 0;
    ts_err_t rc = open_clients(st, errstr, errstr_size);
    if (!rc) rc = check_topics(st, &nsupp, errstr, errstr_size);
    if (!rc && supp_resize(st, nsupp > 0 ? nsupp : 0))
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    if (rc) {
        ts_state_destroy(st);
        return NULL;
    }
    ts_metrics_t *mx = opts->metrics;
    st->m_writes = ts_metrics_counter(mx, "tillstream_consent_state_writes_total",
                                      "consent states written to the state topic (acked)", NULL);
    st->m_restored = ts_metrics_counter(mx, "tillstream_consent_state_restored_total",
                                        "consent states read back from the state topic", NULL);
    st->m_suppressions =
        ts_metrics_counter(mx, "tillstream_consent_suppressions_read_total",
                           "suppression records read into the consent state", NULL);
    return st;
}

void ts_state_destroy(ts_state_t *st) {
    if (!st) return;
    st->o.ready = NULL; /* the caller is tearing down: completions are not taken any more */
    if (st->producer) {
        rd_kafka_flush(st->producer, 10000);
        ts_kconf_creds_unwatch(st->producer);
        rd_kafka_destroy(st->producer);
    }
    if (st->reader) {
        rd_kafka_consumer_close(st->reader);
        ts_kconf_creds_unwatch(st->reader);
        rd_kafka_destroy(st->reader);
    }
    for (int b = 0; b < N_BUCKETS; b++)
        while (st->kbuckets[b]) keyq_free(st, st->kbuckets[b]);
    for (int b = 0; b < N_BUCKETS; b++)
        while (st->buckets[b]) unlink_free(st, st->buckets[b]);
    free(st->supp_pos);
    ts_buf_free(&st->scratch);
    free(st);
}

size_t ts_state_pending(const ts_state_t *st) {
    size_t n = 0;
    for (int b = 0; b < N_BUCKETS; b++)
        for (const pending_t *p = st->buckets[b]; p; p = p->next) n += !p->acked;
    return n;
}

/* ---- restore -------------------------------------------------------------------- */

static int account_index(const ts_config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_accounts; i++)
        if (!strcmp(cfg->accounts[i].name, name)) return (int)i;
    return -1;
}

static void apply_state(ts_state_t *st, const rd_kafka_message_t *m) {
    if (!m->key || !m->key_len || !m->payload) return;
    char id[512];
    if (m->key_len >= sizeof id) return;
    memcpy(id, m->key, m->key_len);
    id[m->key_len] = '\0';
    cJSON *root = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *accs = cJSON_GetObjectItemCaseSensitive(root, "accounts");
    for (const cJSON *a = cJSON_IsObject(accs) ? accs->child : NULL; a; a = a->next) {
        int ai = account_index(st->o.cfg, a->string);
        if (ai < 0) continue; /* an account no longer configured */
        char *txt = cJSON_PrintUnformatted(a);
        ts_consent_state_t cs;
        char why[128];
        if (txt && ts_consent_state_parse(txt, strlen(txt), &cs, why, sizeof why) == TS_OK) {
            ts_consent_table_put(st->o.table, ai, id, &cs);
            ts_metric_add(st->m_restored, 1);
        } else {
            ts_log(TS_LOG_WARN, "state", NULL, "state of %s ignored: %s", id,
                   txt ? why : "out of memory");
        }
        free(txt);
    }
    cJSON_Delete(root);
}

static void apply_suppression(ts_state_t *st, const rd_kafka_message_t *m) {
    if (!m->payload) return;
    char why[256];
    ts_err_t rc = ts_consent_table_suppression(st->o.table, m->payload, m->len, why, sizeof why);
    if (rc == TS_OK)
        ts_metric_add(st->m_suppressions, 1);
    else if (rc != TS_ERR_NOT_FOUND) /* another deployment's account is not an error */
        ts_log(TS_LOG_WARN, "state", NULL, "suppression record at %s [%d] %lld ignored: %s",
               st->o.cfg->topic_suppressions, m->partition, (long long)m->offset, why);
}

static void consume_one(ts_state_t *st, rd_kafka_message_t *m) {
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            ts_log(TS_LOG_WARN, "state", NULL, "state reader: %s", rd_kafka_message_errstr(m));
        return;
    }
    const char *t = rd_kafka_topic_name(m->rkt);
    if (!strcmp(t, st->o.cfg->topic_customers_state)) {
        apply_state(st, m);
    } else {
        apply_suppression(st, m);
        if (m->partition < st->n_supp_parts) st->supp_pos[m->partition] = m->offset + 1;
    }
}

static rd_kafka_topic_partition_list_t *supp_list(ts_state_t *st) {
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(st->n_supp_parts + 1);
    for (int p = 0; p < st->n_supp_parts; p++)
        rd_kafka_topic_partition_list_add(pl, st->o.cfg->topic_suppressions, p)->offset =
            st->supp_pos[p];
    return pl;
}

ts_err_t ts_state_restore(ts_state_t *st, const int32_t *parts, int n, int timeout_ms, char *errstr,
                          size_t errstr_size) {
    const ts_config_t *cfg = st->o.cfg;
    if (!st->n_supp_parts) { /* customers.wait_for_suppressions false: created since? */
        int nsupp = ts_ktopic_partitions(st->reader, cfg->topic_suppressions);
        if (nsupp > 0 && supp_resize(st, nsupp) == 0)
            ts_log(TS_LOG_INFO, "state", NULL, "suppressions topic %s found: reading it",
                   cfg->topic_suppressions);
    }
    /* our own writes first, so what we read back includes them */
    rd_kafka_flush(st->producer, timeout_ms);
    ts_state_poll(st);
    typedef struct {
        const char *topic;
        int32_t p;
        int64_t end;
    } goal_t;
    goal_t *goals = calloc((size_t)(n + st->n_supp_parts + 1), sizeof *goals);
    if (!goals) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    int ng = 0;
    rd_kafka_topic_partition_list_t *pl = supp_list(st);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(pl, cfg->topic_customers_state, parts[i])->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    ts_err_t rc = TS_OK;
    /* one deadline for the watermarks (retried while Kafka says so) and
     * the reading */
    int64_t deadline = ts_now_mono_ms() + timeout_ms;
    for (int i = 0; i < pl->cnt; i++) {
        int64_t lo, hi;
        int64_t left = deadline - ts_now_mono_ms();
        rd_kafka_resp_err_t e =
            ts_ktopic_watermarks(st->reader, pl->elems[i].topic, pl->elems[i].partition, &lo, &hi,
                                 left > 0 ? (int)left : 1);
        if (e) {
            rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "watermarks of %s [%d]: %s",
                           pl->elems[i].topic, pl->elems[i].partition, rd_kafka_err2str(e));
            goto done;
        }
        if (hi > lo) goals[ng++] = (goal_t){pl->elems[i].topic, pl->elems[i].partition, hi};
    }
    rd_kafka_assign(st->reader, pl);
    size_t before = (size_t)ts_metric_value(st->m_restored);
    size_t supp_before = (size_t)ts_metric_value(st->m_suppressions);
    for (;;) {
        rd_kafka_message_t *m;
        while ((m = rd_kafka_consumer_poll(st->reader, 50))) {
            consume_one(st, m);
            rd_kafka_message_destroy(m);
        }
        rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(ng ? ng : 1);
        for (int g = 0; g < ng; g++)
            rd_kafka_topic_partition_list_add(pos, goals[g].topic, goals[g].p);
        rd_kafka_position(st->reader, pos);
        bool all = true;
        for (int g = 0; g < ng; g++) {
            int64_t lo, hi;
            if (pos->elems[g].offset >= goals[g].end) continue;
            /* compacted or deleted below the end: nothing left to read */
            if (!rd_kafka_get_watermark_offsets(st->reader, goals[g].topic, goals[g].p, &lo, &hi) &&
                lo >= goals[g].end)
                continue;
            all = false;
        }
        rd_kafka_topic_partition_list_destroy(pos);
        if (all) break;
        if (ts_now_mono_ms() > deadline) {
            rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                           "restoring %s did not reach its end within %d ms",
                           cfg->topic_customers_state, timeout_ms);
            break;
        }
    }
    char ctx[160];
    snprintf(ctx, sizeof ctx, "\"partitions\":%d,\"states\":%zu,\"suppressions\":%zu", n,
             (size_t)ts_metric_value(st->m_restored) - before,
             (size_t)ts_metric_value(st->m_suppressions) - supp_before);
    ts_log(TS_LOG_INFO, "state", ctx, "consent state restored from %s and %s to their ends",
           cfg->topic_customers_state, st->n_supp_parts ? cfg->topic_suppressions : "(none)");
    /* keep following the suppressions only */
    rd_kafka_topic_partition_list_t *keep = supp_list(st);
    rd_kafka_assign(st->reader, keep->cnt ? keep : NULL);
    rd_kafka_topic_partition_list_destroy(keep);
done:
    rd_kafka_topic_partition_list_destroy(pl);
    free(goals);
    return rc;
}

/* ---- writes ------------------------------------------------------------------------ */

static rd_kafka_resp_err_t produce(ts_state_t *st, pending_t *e) {
    return rd_kafka_producev(
        st->producer, RD_KAFKA_V_TOPIC(st->o.cfg->topic_customers_state),
        RD_KAFKA_V_PARTITION(e->partition), RD_KAFKA_V_KEY(e->key, strlen(e->key)),
        RD_KAFKA_V_VALUE(e->value.data, e->value.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
}

ts_err_t ts_state_write(ts_state_t *st, int32_t partition, const char *customer_id, uint64_t token,
                        char *errstr, size_t errstr_size) {
    pending_t *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(customer_id))) {
        free(e);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    }
    e->token = token;
    e->partition = partition;
    /* {"accounts":{"brand-a":{...},...}}: every account's state of the customer */
    ts_buf_puts(&e->value, "{\"accounts\":{");
    bool first = true;
    for (size_t a = 0; a < st->o.cfg->n_accounts; a++) {
        const ts_consent_state_t *cs = ts_consent_table_get(st->o.table, (int)a, customer_id);
        if (!cs) continue;
        if (!first) ts_buf_putc(&e->value, ',');
        first = false;
        ts_buf_putc(&e->value, '"');
        ts_json_escape(&e->value, st->o.cfg->accounts[a].name, strlen(st->o.cfg->accounts[a].name));
        ts_buf_puts(&e->value, "\":");
        ts_consent_state_write(cs, &e->value);
    }
    ts_buf_puts(&e->value, "}}");
    keyq_t **kb = kbucket(st, customer_id), *q = *kb;
    while (q && strcmp(q->key, customer_id)) q = q->next;
    if (!q) {
        if (!(q = calloc(1, sizeof *q)) || !(q->key = strdup(customer_id))) {
            free(q);
            free(e->key);
            ts_buf_free(&e->value);
            free(e);
            return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        }
        q->next = *kb;
        *kb = q;
    }
    e->q = q;
    TS_LIST_APPEND(q->head, q->tail, e, qnext);
    pending_t **b = bucket(st, token);
    e->next = *b;
    *b = e;
    st->n_pending++;
    return TS_OK; /* produced when the record completes (or on revoke) */
}

static void send_entry(ts_state_t *st, pending_t *e);

/* Produces the customer's snapshots from the oldest while their records are
 * done (all of them when `all`: on revoke). */
static void pump(ts_state_t *st, keyq_t *q, bool all) {
    while (q->head && (all || q->head->done)) {
        pending_t *e = q->head;
        q->head = e->qnext;
        if (!q->head) q->tail = NULL;
        e->q = NULL;
        e->qnext = NULL;
        send_entry(st, e);
    }
    if (!q->head) keyq_free(st, q);
}

/* Produces an entry's snapshot; a failure is retried from ts_state_poll. */
static void send_entry(ts_state_t *st, pending_t *e) {
    e->produced = true;
    if (produce(st, e)) {
        e->failed = true;
        e->retry_next = st->retry;
        st->retry = e;
    }
}

ts_err_t ts_state_decide(ts_state_t *st, ts_consent_table_t *table, const ts_customer_t *c,
                         int32_t partition, int64_t offset, int64_t record_ts, uint64_t token,
                         const ts_consent_opts_t *opts, ts_mapped_t *m, char *errstr,
                         size_t errstr_size) {
    ts_consent_opts_t o = *opts;
    o.now = ts_now_wall_ms();
    bool changed = false;
    /* a --replay-consent replay decides as live does: fence and writes */
    bool stateful = !o.replay || o.replay_consent;
    ts_err_t rc =
        ts_consent_table_decide(table, c, record_ts, stateful ? offset : -1, &o, m, &changed);
    if (rc == TS_OK && changed && st && stateful)
        rc = ts_state_write(st, partition, c->customer_id, token, errstr, errstr_size);
    return rc;
}

bool ts_state_has_write(const ts_state_t *st, uint64_t token) {
    if (!st) return false;
    uint64_t h = token * 0x9E3779B97F4A7C15ULL;
    for (const pending_t *p = st->buckets[h >> 52 & (N_BUCKETS - 1)]; p; p = p->next)
        if (p->token == token) return true;
    return false;
}

bool ts_state_defer(ts_state_t *st, uint64_t token) {
    pending_t *e = find(st, token);
    if (!e) return false;
    if (e->acked) {
        unlink_free(st, e);
        return false;
    }
    e->done = true;
    if (e->q) pump(st, e->q, false); /* delivered: now the state may say so, in order */
    return true;
}

void ts_state_flush(ts_state_t *st, int timeout_ms) {
    int64_t end = ts_now_mono_ms() + timeout_ms;
    for (int b = 0; b < N_BUCKETS; b++) /* decisions still in flight in the engine too */
        while (st->kbuckets[b]) pump(st, st->kbuckets[b], true);
    while ((st->retry || rd_kafka_outq_len(st->producer) > 0) && ts_now_mono_ms() < end) {
        rd_kafka_flush(st->producer, 100);
        ts_state_poll(st); /* re-produces failed writes */
    }
    if (st->retry || rd_kafka_outq_len(st->producer) > 0)
        ts_log(TS_LOG_WARN, "state", NULL,
               "state writes not acked within %d ms: the next owner may decide those records "
               "again",
               timeout_ms);
}

void ts_state_poll(ts_state_t *st) {
    rd_kafka_poll(st->producer, 0);
    pending_t *r = st->retry;
    st->retry = NULL;
    while (r) {
        pending_t *next = r->retry_next;
        r->failed = false;
        if (produce(st, r)) {
            r->failed = true;
            r->retry_next = st->retry;
            st->retry = r;
        }
        r = next;
    }
    if (st->n_supp_parts) {
        rd_kafka_message_t *m;
        for (int i = 0; i < 1000 && (m = rd_kafka_consumer_poll(st->reader, 0)); i++) {
            consume_one(st, m);
            rd_kafka_message_destroy(m);
        }
    }
}
