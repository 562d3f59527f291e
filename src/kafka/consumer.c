/*
 * kafka_consumer.c - the consume loop shared by tillstream-customers and
 * tillstream-orders: Kafka in, decode -> route -> map, the delivery engine
 * out, dead letters to the dead-letter topic, offsets stored only for
 * records that are completely done.
 *
 * Design (docs/consumers.md):
 * - high-level consumer, eager `range`/`roundrobin` assignment (librdkafka
 *   2.0.2 has close-path bugs with cooperative-sticky), auto offset store
 *   off; stored offsets are auto-committed and committed synchronously on
 *   revoke and shutdown.
 * - every consumed message is kept (it is the dead-letter copy's source)
 *   until its record completes, bounded by consumer.max_inflight_records.
 * - an account whose lane is full pauses the partition whose record it
 *   blocks; polling continues so the member is never evicted.
 * - tillstream-orders first restores the customer table from the
 *   beginning of the customers topic, then keeps it current.
 */
#include "tillstream/consumer.h"
#include "tillstream/dlhdr.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/admin.h"
#include "tillstream/custtable.h"
#include "tillstream/decode.h"
#include "tillstream/metrics.h"
#include "tillstream/engine.h"
#include "tillstream/jw.h"
#include "tillstream/log.h"
#include "tillstream/map.h"
#include "tillstream/offsets.h"
#include "tillstream/route.h"

/* Everything the loop knows about one partition of its topic, sized from
 * the topic's metadata and grown by assignments (no fixed limit). `paused`
 * mirrors librdkafka's pause state and is written only by part_pause(). */
typedef struct {
    bool assigned;
    bool paused;           /* librdkafka's state, as last set by part_pause() */
    bool past_window;      /* replay: a record at or past the window end was seen */
    bool reached;          /* exit-at-end: consumed up to `end` */
    uint32_t n_blocked;    /* held records blocking the partition (full lane, registry) */
    uint64_t walk_blocked; /* retry_held(): the walk that saw a blocked record */
    int64_t end;           /* exit-at-end / replay window end; 0 = nothing to wait for */
    int64_t start_offset;  /* replay: where this run started, for progress */
    ts_metric_t *m_lag;
} part_t;

typedef struct held_s {
    rd_kafka_message_t *msg;
    uint64_t token;
    int64_t deadline;       /* unknown customer: when to give up */
    bool blocked;           /* lane full or registry down: waiting, partition paused */
    bool registry;          /* waiting for the schema registry */
    uint64_t table_version; /* unknown customer: the table as last tried */
    struct held_s *next;
} held_t;

typedef struct dlq_retry_s {
    uint64_t token;
    ts_reason_t reason;
    char *detail;
    int account;
    struct dlq_retry_s *next;
} dlq_retry_t;

struct ts_consumer_s {
    const ts_config_t *cfg;
    ts_consumer_opts_t opts; /* a copy; its strings are borrowed */
    const ts_consumer_opts_t *o;
    const char *group_id;
    bool restore_logged;
    const char *topic;
    rd_kafka_t *rk;       /* group consumer */
    rd_kafka_t *table_rk; /* orders: customer table reader */
    rd_kafka_t *dlq;      /* dead-letter producer */
    ts_offsets_t *offsets;
    ts_engine_t *engine;
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_custtable_t *table;
    ts_decoder_t *dec;              /* the topic's records: JSON, Confluent Avro, raw Avro */
    ts_decoder_t *table_dec;        /* orders: the customer table's records */
    rd_kafka_message_t *table_held; /* customer waiting for the schema registry */
    uint64_t table_version;         /* bumped by every change to the table */
    bool registry_down;             /* logged once per outage */
    uint64_t registry_failures;     /* reported to the metric so far */
    ts_arena_t *arena;
    ts_mapped_t m;
    held_t *held;
    size_t n_held;
    held_t *held_tail; /* append in O(1) */
    dlq_retry_t *dlq_retries;
    size_t dlq_pending;
    bool fatal;
    bool table_ready;
    int64_t *table_end; /* per customers partition: high watermark at start */
    int table_parts;
    part_t *parts; /* indexed by partition id, n_cap entries */
    int n_cap;     /* entries in parts: max(topic partitions, highest assigned + 1) */
    int n_parts;   /* the topic's partitions at start (metadata) */
    int n_owned;   /* partitions assigned now */
    int n_paused;  /* owned partitions paused in librdkafka now */
    bool subscribed;
    bool assigned_once;
    bool full_paused; /* every partition paused: in-flight limit or shutdown */
    bool at_end;      /* exit-at-end / replay: everything done */
    uint64_t walk;    /* retry_held() walks so far */
    bool draining;    /* ts_consumer_drain() runs: nothing new is fetched */
    ts_metrics_t *metrics;
    ts_admin_t *admin;
    ts_metric_t *m_consumed, *m_dlq[TS_REASON__COUNT], *m_skipped, *m_paused, *m_table, *m_inflight;
    ts_metric_t *m_registry_wait;
    int64_t next_lag_ms;
    /* replay */
    bool replay;
    int64_t next_progress_ms, progress_t0;
    uint64_t progress_events0;
    ts_metric_t *m_replay;
    /* counters for the final summary */
    uint64_t consumed, completed, dead_lettered, skipped, rejected;
    uint64_t by_reason[TS_REASON__COUNT];
};
typedef struct ts_consumer_s loop_t;

static void log_kv(ts_log_level_t lvl, const rd_kafka_message_t *msg, const char *fmt,
                   const char *a) {
    char ctx[256];
    snprintf(ctx, sizeof ctx, "\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld",
             msg ? rd_kafka_topic_name(msg->rkt) : "", msg ? msg->partition : -1,
             msg ? (long long)msg->offset : -1LL);
    ts_log(lvl, "consumer", ctx, fmt, a);
}

/* ---- completion ----------------------------------------------------------- */

static void release_msg(void *user, void *opaque) {
    (void)opaque;
    rd_kafka_message_destroy(user);
}

static void complete(loop_t *L, uint64_t token) {
    int64_t store;
    int32_t p = ts_offsets_token_partition(token);
    rd_kafka_message_t *msg = ts_offsets_user(L->offsets, token);
    char topic[256] = "";
    if (msg) snprintf(topic, sizeof topic, "%s", rd_kafka_topic_name(msg->rkt));
    if (!ts_offsets_done(L->offsets, token, &store, release_msg, NULL)) return; /* revoked since */
    L->completed++;
    if (store >= 0) {
        rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(pl, L->topic, p)->offset = store;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(L->rk, pl);
        if (err) ts_log(TS_LOG_WARN, "consumer", NULL, "offsets_store: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(pl);
    }
}

/* ---- dead letters ------------------------------------------------------------ */

static void hdr(rd_kafka_headers_t *h, const char *k, const char *v) {
    if (v) rd_kafka_header_add(h, k, -1, v, -1);
}

static void dead_letter(loop_t *L, uint64_t token, ts_reason_t reason, const char *detail,
                        int account, const char *outlet) {
    rd_kafka_message_t *msg = ts_offsets_user(L->offsets, token);
    if (!msg) return; /* partition revoked: the next owner re-reads it */
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(16);
    char part[16], off[24], ts[24];
    rd_kafka_timestamp_type_t tstype;
    int64_t tsv = rd_kafka_message_timestamp(msg, &tstype);
    snprintf(part, sizeof part, "%d", msg->partition);
    snprintf(off, sizeof off, "%lld", (long long)msg->offset);
    snprintf(ts, sizeof ts, "%lld", (long long)tsv);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    char cls[64];
    snprintf(cls, sizeof cls, TS_DLH_PREFIX "%s", ts_reason_name(reason));
    hdr(h, TS_DLH_REASON, ts_reason_name(reason));
    hdr(h, TS_DLH_DETAIL, detail);
    hdr(h, TS_DLH_SOURCE_TOPIC, topic);
    hdr(h, TS_DLH_SOURCE_PARTITION, part);
    hdr(h, TS_DLH_SOURCE_OFFSET, off);
    hdr(h, TS_DLH_SOURCE_TIMESTAMP, ts);
    hdr(h, TS_DLH_CONSUMER, L->o->prog);
    hdr(h, TS_DLH_OUTLET, outlet);
    if (account >= 0) hdr(h, TS_DLH_ACCOUNT, L->cfg->accounts[account].name);
    /* Kafka Connect's dead-letter context, so existing DLQ tooling reads ours */
    hdr(h, TS_DLH_CONNECT_TOPIC, topic);
    hdr(h, TS_DLH_CONNECT_PARTITION, part);
    hdr(h, TS_DLH_CONNECT_OFFSET, off);
    hdr(h, TS_DLH_CONNECT_CONNECTOR, L->o->prog);
    hdr(h, TS_DLH_CONNECT_TASK, "0");
    hdr(h, TS_DLH_CONNECT_STAGE,
        reason == TS_REASON_DECODE_ERROR || reason == TS_REASON_SCHEMA_NOT_FOUND ? "VALUE_CONVERTER"
                                                                                 : "TASK_PUT");
    hdr(h, TS_DLH_CONNECT_CLASS, "tillstream");
    hdr(h, TS_DLH_CONNECT_EXC_CLASS, cls);
    hdr(h, TS_DLH_CONNECT_EXC_MESSAGE, detail);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        L->dlq, RD_KAFKA_V_TOPIC(L->cfg->topic_dead_letter),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(msg->key, msg->key_len),
        RD_KAFKA_V_VALUE(msg->payload, msg->len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h);
        /* queue full or similar: retry from the loop, never drop */
        dlq_retry_t *r = calloc(1, sizeof *r);
        if (r) {
            *r =
                (dlq_retry_t){token, reason, strdup(detail ? detail : ""), account, L->dlq_retries};
            L->dlq_retries = r;
        }
        log_kv(TS_LOG_WARN, msg, "dead-letter produce failed (%s); will retry",
               rd_kafka_err2str(err));
        return;
    }
    L->dlq_pending++;
    L->dead_lettered++;
    L->by_reason[reason]++;
    ts_metric_add(L->m_dlq[reason], 1);
    if (ts_log_enabled(TS_LOG_INFO)) {
        char ctx[512];
        snprintf(ctx, sizeof ctx,
                 "\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"reason\":\"%s\"", topic,
                 msg->partition, (long long)msg->offset, ts_reason_name(reason));
        ts_log(TS_LOG_INFO, "consumer", ctx, "dead-lettered: %s", detail ? detail : "");
    }
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *dm, void *opaque) {
    (void)rk;
    loop_t *L = opaque;
    uint64_t token = (uint64_t)(uintptr_t)dm->_private;
    L->dlq_pending--;
    if (dm->err) {
        /* the dead-letter topic cannot be written: do not advance, retry */
        ts_log(TS_LOG_ERROR, "dlq", NULL,
               "cannot write the dead-letter topic (%s): not advancing past this record; retrying",
               rd_kafka_err2str(dm->err));
        rd_kafka_headers_t *h = NULL;
        const char *reason = "DECODE_ERROR", *detail = "";
        const void *v;
        size_t n;
        char rbuf[64] = "", dbuf[512] = "";
        if (rd_kafka_message_headers(dm, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (!rd_kafka_header_get_last(h, TS_DLH_REASON, &v, &n) && n < sizeof rbuf) {
                memcpy(rbuf, v, n);
                reason = rbuf;
            }
            if (!rd_kafka_header_get_last(h, TS_DLH_DETAIL, &v, &n) && n < sizeof dbuf) {
                memcpy(dbuf, v, n);
                detail = dbuf;
            }
        }
        dlq_retry_t *r = calloc(1, sizeof *r);
        if (r) {
            *r = (dlq_retry_t){token, ts_reason_parse(reason), strdup(detail), -1, L->dlq_retries};
            L->dlq_retries = r;
        }
        L->dead_lettered--;
        return;
    }
    complete(L, token);
}

/* Dead letters whose produce failed: try again (never dropped). */
static void retry_dead_letters(loop_t *L) {
    for (dlq_retry_t *r = L->dlq_retries, *n; r; r = n) {
        n = r->next;
        L->dlq_retries = n;
        dead_letter(L, r->token, r->reason, r->detail, r->account, NULL);
        free(r->detail);
        free(r);
    }
}

/* ---- the engine's completions ------------------------------------------------ */

static void on_delivered(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    loop_t *L = opaque;
    if (result == TS_OK) {
        complete(L, token);
        return;
    }
    L->rejected++;
    dead_letter(L, token,
                result == TS_ERR_TOO_LARGE ? TS_REASON_PAYLOAD_TOO_LARGE
                                           : TS_REASON_KLAVIYO_REJECTED,
                detail, -1, NULL);
}

/* ---- processing ------------------------------------------------------------- */

/* The state of partition p, growing the table when p is beyond it (an
 * assignment after the topic grew). NULL only when out of memory. */
static part_t *part_at(loop_t *L, int32_t p) {
    if (p < 0) return NULL;
    if (p >= L->n_cap) {
        int n = p + 1 > 2 * L->n_cap ? p + 1 : 2 * L->n_cap;
        part_t *np = realloc(L->parts, (size_t)n * sizeof *np);
        if (!np) {
            L->fatal = true;
            return NULL;
        }
        memset(np + L->n_cap, 0, (size_t)(n - L->n_cap) * sizeof *np);
        L->parts = np;
        L->n_cap = n;
    }
    return &L->parts[p];
}

/* The one place that pauses or resumes a partition in librdkafka and the
 * only writer of part_t.paused. `force` calls librdkafka even when the flag
 * already agrees: after an assignment librdkafka may still hold a pause
 * from the previous one (librdkafka #1849), whatever the flag says. */
static void part_pause(loop_t *L, int32_t p, bool pause, bool force) {
    part_t *ps = part_at(L, p);
    if (!ps || !ps->assigned || (!force && ps->paused == pause)) return;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, L->topic, p);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(L->rk, pl) : rd_kafka_resume_partitions(L->rk, pl);
    if (!err) err = pl->elems[0].err;
    rd_kafka_topic_partition_list_destroy(pl);
    if (err) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "\"partition\":%d", p);
        ts_log(TS_LOG_WARN, "consumer", ctx, "%s: %s", pause ? "pause" : "resume",
               rd_kafka_err2str(err));
        return;
    }
    TS_LOG_DEBUG_("consumer", "%s partition %d", pause ? "paused" : "resumed", p);
    if (ps->paused != pause) L->n_paused += pause ? 1 : -1;
    ps->paused = pause;
    ts_metric_set(L->m_paused, (double)L->n_paused);
}

/* What partition p's pause state must be now: paused while a record blocks
 * it, while the in-flight limit (or shutdown) pauses everything, or once a
 * replay passed its window. */
static bool part_wants_pause(const loop_t *L, const part_t *ps) {
    return L->full_paused || ps->n_blocked > 0 || ps->past_window;
}

static void part_sync_pause(loop_t *L, int32_t p, bool force) {
    part_t *ps = part_at(L, p);
    if (ps && ps->assigned) part_pause(L, p, part_wants_pause(L, ps), force);
}

/* Pauses (or resumes) every owned partition for the in-flight limit or
 * shutdown; partitions that are blocked or past a replay window stay
 * paused. */
static void pause_all(loop_t *L, bool pause) {
    L->full_paused = pause;
    for (int p = 0; p < L->n_cap; p++) part_sync_pause(L, p, false);
}

static void hold(loop_t *L, rd_kafka_message_t *msg, uint64_t token, int64_t deadline, bool blocked,
                 bool registry) {
    held_t *h = calloc(1, sizeof *h);
    part_t *ps = part_at(L, msg->partition);
    if (!h || !ps) {
        free(h);
        L->fatal = true;
        return;
    }
    *h = (held_t){.msg = msg,
                  .token = token,
                  .deadline = deadline,
                  .blocked = blocked,
                  .registry = registry,
                  .table_version = L->table_version};
    /* append: keeps partition order */
    if (L->held_tail)
        L->held_tail->next = h;
    else
        L->held = h;
    L->held_tail = h;
    L->n_held++;
    if (blocked) ps->n_blocked++;
}

static bool partition_blocked(loop_t *L, int32_t p) {
    part_t *ps = part_at(L, p);
    return ps && ps->n_blocked > 0;
}

static void set_blocked(loop_t *L, held_t *h, bool blocked) {
    part_t *ps = part_at(L, h->msg->partition);
    if (h->blocked == blocked || !ps) return;
    h->blocked = blocked;
    ps->n_blocked += blocked ? 1 : (uint32_t)-1;
}

/* Unlinks *pp (prev = the node before it, NULL at the head) and frees it. */
static void unhold(loop_t *L, held_t **pp, held_t *prev) {
    held_t *h = *pp;
    set_blocked(L, h, false);
    *pp = h->next;
    if (L->held_tail == h) L->held_tail = prev;
    free(h); /* the message belongs to the offsets tracker */
    L->n_held--;
}

typedef enum { P_DONE, P_WAIT_CUSTOMER, P_WAIT_LANE, P_WAIT_REGISTRY } presult_t;

static bool outlet_in_list(const char *list, const char *outlet) {
    if (!outlet) return false;
    size_t n = strlen(outlet);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, outlet, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* The schema registry could not be asked (down, slow, 5xx): log once per
 * outage; the record is held and its partition paused, never dead-lettered. */
static void registry_unavailable(loop_t *L, const rd_kafka_message_t *msg, const char *why) {
    uint64_t f = ts_decoder_registry_failures(L->dec) + ts_decoder_registry_failures(L->table_dec);
    if (f > L->registry_failures)
        ts_metric_add(L->m_registry_wait, (double)(f - L->registry_failures));
    L->registry_failures = f;
    if (L->registry_down) return;
    L->registry_down = true;
    log_kv(TS_LOG_WARN, msg, "%s: pausing until the schema registry answers", why);
}

static void registry_answered(loop_t *L) {
    if (!L->registry_down) return;
    L->registry_down = false;
    ts_log(TS_LOG_INFO, "consumer", NULL, "schema registry reachable again: resuming");
}

/* P_DONE when the record went somewhere (engine, dead letter, skipped);
 * otherwise it must be held: its customer is unknown yet, its account's
 * lane is full, or the schema registry is unavailable. */
static presult_t process(loop_t *L, rd_kafka_message_t *msg, uint64_t token, bool give_up_waiting) {
    char why[512];
    ts_mapped_t *m = &L->m;
    ts_arena_reset(L->arena);
    if (!msg->payload) { /* tombstone */
        L->skipped++;
        ts_metric_add(L->m_skipped, 1);
        complete(L, token);
        return P_DONE;
    }
    ts_err_t rc;
    if (L->o->kind == TS_KIND_CUSTOMER) {
        ts_customer_t c;
        rc = ts_decoder_decode(L->dec, msg->payload, msg->len, L->arena, &c, why, sizeof why);
        if (rc == TS_OK) rc = ts_map_customer(L->mapper, &c, m);
    } else {
        ts_order_t o;
        rc = ts_decoder_decode(L->dec, msg->payload, msg->len, L->arena, &o, why, sizeof why);
        if (rc == TS_OK) {
            ts_customer_ref_t from_table = {0};
            bool in_table = o.customer_id && ts_custtable_get(L->table, o.customer_id, &from_table);
            const ts_customer_ref_t *cust =
                ts_map_resolve_customer(&o, in_table ? &from_table : NULL);
            /* while the table reader waits for the registry, a missing
             * customer may just not be read yet: keep waiting */
            if (!cust && o.customer_id && (!give_up_waiting || L->table_held) &&
                o.status != TS_ORDER_VOIDED && !o.is_test)
                return P_WAIT_CUSTOMER; /* the customer may arrive just after the order */
            rc = ts_map_order(L->mapper, &o, cust, m);
        }
    }
    if (rc == TS_ERR_NOMEM) {
        L->fatal = true;
        return P_DONE;
    }
    if (rc == TS_ERR_TRANSIENT) {
        registry_unavailable(L, msg, why);
        return P_WAIT_REGISTRY;
    }
    if (rc != TS_OK) {
        dead_letter(L, token,
                    rc == TS_ERR_NOT_FOUND ? TS_REASON_SCHEMA_NOT_FOUND : TS_REASON_DECODE_ERROR,
                    why, -1, NULL);
        return P_DONE;
    }
    if (m->dead_letter) {
        dead_letter(L, token, m->dead_letter, m->detail, m->route.account, m->route.outlet);
        return P_DONE;
    }
    if (m->skipped) {
        L->skipped++;
        ts_metric_add(L->m_skipped, 1);
        complete(L, token);
        return P_DONE;
    }
    if (L->o->replay_outlets && !outlet_in_list(L->o->replay_outlets, m->route.outlet)) {
        L->skipped++; /* a replay restricted to some outlets */
        ts_metric_add(L->m_skipped, 1);
        complete(L, token);
        return P_DONE;
    }
    rc = ts_engine_submit(L->engine, m, token, L->o->backfill, why, sizeof why);
    if (rc == TS_ERR_FULL) return P_WAIT_LANE;
    if (rc != TS_OK) {
        dead_letter(L, token, TS_REASON_KLAVIYO_REJECTED, why, m->account, m->route.outlet);
    }
    return P_DONE;
}

static void consume(loop_t *L, rd_kafka_message_t *msg) {
    int32_t p = msg->partition;
    uint64_t token;
    ts_err_t rc = ts_offsets_track(L->offsets, p, msg->offset, msg, &token);
    if (rc != TS_OK) { /* not assigned any more, or a re-delivery after seek */
        rd_kafka_message_destroy(msg);
        return;
    }
    L->consumed++;
    ts_metric_add(L->m_consumed, 1);
    if (partition_blocked(L, p)) { /* keep order behind a blocked record */
        hold(L, msg, token, 0, true, false);
        return;
    }
    presult_t r = process(L, msg, token, false);
    switch (r) {
    case P_DONE: break;
    case P_WAIT_LANE:
    case P_WAIT_REGISTRY: /* like a full lane: keep order, pause, retry */
        hold(L, msg, token, 0, true, r == P_WAIT_REGISTRY);
        part_sync_pause(L, p, false);
        break;
    case P_WAIT_CUSTOMER:
        hold(L, msg, token, ts_now_mono_ms() + L->cfg->unknown_customer_retry_ms, false, false);
        break;
    }
}

static void retry_held(loop_t *L) {
    int64_t now = ts_now_mono_ms();
    held_t *prev = NULL;
    uint64_t walk = ++L->walk; /* part_t.walk_blocked == walk: a blocked record seen */
    for (held_t **pp = &L->held; *pp;) {
        held_t *h = *pp;
        int32_t p = h->msg->partition;
        part_t *ps = part_at(L, p);
        if (!ps) return;
        /* behind a blocked record of its partition: keeps its place */
        bool skip = h->blocked && ps->walk_blocked == walk;
        /* an order waiting for its customer is tried again only when the
         * table changed or its wait is over: no re-decoding every loop */
        skip |= !h->blocked && h->table_version == L->table_version && now < h->deadline;
        if (skip) {
            prev = h;
            pp = &h->next;
            continue;
        }
        h->table_version = L->table_version;
        presult_t r = process(L, h->msg, h->token, !h->blocked && now >= h->deadline);
        if (r == P_WAIT_CUSTOMER && (h->blocked || now >= h->deadline)) {
            /* was behind a full lane, or the table waits for the registry */
            set_blocked(L, h, false);
            h->deadline = now + L->cfg->unknown_customer_retry_ms;
        } else if (r == P_WAIT_LANE || r == P_WAIT_REGISTRY) {
            set_blocked(L, h, true);
        }
        if (h->registry && r != P_WAIT_REGISTRY) registry_answered(L);
        h->registry = r == P_WAIT_REGISTRY;
        if (r == P_DONE) {
            unhold(L, pp, prev);
        } else {
            if (h->blocked) ps->walk_blocked = walk;
            prev = h;
            pp = &h->next;
        }
    }
    for (int p = 0; p < L->n_cap; p++)
        if (L->parts[p].paused) part_sync_pause(L, p, false);
}

static void drop_held_partition(loop_t *L, int32_t p) {
    held_t *prev = NULL;
    for (held_t **pp = &L->held; *pp;) {
        if ((*pp)->msg->partition == p) {
            unhold(L, pp, prev); /* the message is released by the tracker's revoke */
        } else {
            prev = *pp;
            pp = &(*pp)->next;
        }
    }
}

/* ---- rebalancing -------------------------------------------------------------- */

/* A replay starts each partition where its group stopped (resume) or, for
 * a new replay group, at the first record at or after --replay-from. */
static void replay_start_offsets(loop_t *L, rd_kafka_t *rk,
                                 rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, 10000);
    if (err) ts_log(TS_LOG_WARN, "replay", NULL, "committed offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->offset >= 0) continue; /* resume */
        if (L->o->replay_from_ms == TS_REPLAY_EARLIEST)
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        else
            rd_kafka_topic_partition_list_add(q, tp->topic, tp->partition)->offset =
                L->o->replay_from_ms;
    }
    if (q->cnt > 0) {
        err = rd_kafka_offsets_for_times(rk, q, 10000);
        if (err)
            ts_log(TS_LOG_ERROR, "replay", NULL, "offsets for times: %s", rd_kafka_err2str(err));
        for (int i = 0; i < q->cnt; i++) {
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_find(parts, q->elems[i].topic, q->elems[i].partition);
            /* -1: no record at or after the time: start at the end */
            if (tp) tp->offset = q->elems[i].offset >= 0 ? q->elems[i].offset : RD_KAFKA_OFFSET_END;
        }
    }
    rd_kafka_topic_partition_list_destroy(q);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        int64_t lo = 0, hi = 0;
        rd_kafka_get_watermark_offsets(rk, L->topic, p, &lo, &hi);
        int64_t off = parts->elems[i].offset;
        part_t *ps = part_at(L, p);
        if (!ps) return;
        ps->start_offset = off >= 0 ? off : off == RD_KAFKA_OFFSET_END ? ps->end : lo;
        char ctx[128];
        snprintf(ctx, sizeof ctx, "\"partition\":%d,\"start\":%lld,\"end\":%lld", p, (long long)off,
                 (long long)ps->end);
        ts_log(TS_LOG_INFO, "replay", ctx, "replaying partition %d", p);
    }
}

/* Progress of a replay: a JSON line every 5 s (and a bar on a terminal). */
static void replay_progress(loop_t *L, bool final) {
    int64_t now = ts_now_mono_ms();
    if (!final && now < L->next_progress_ms) return;
    L->next_progress_ms = now + 5000;
    int64_t total = 0, done = 0;
    for (int p = 0; p < L->n_parts && p < L->n_cap; p++) {
        const part_t *ps = &L->parts[p];
        int64_t window = ps->end - ps->start_offset;
        if (window <= 0) continue;
        total += window;
        int64_t c = ts_offsets_committed(L->offsets, p);
        int64_t upto = c >= 0 ? c : ps->start_offset;
        if (ps->reached && ts_offsets_partition_inflight(L->offsets, p) == 0) upto = ps->end;
        done += upto > ps->start_offset ? (upto < ps->end ? upto : ps->end) - ps->start_offset : 0;
    }
    uint64_t events = 0;
    ts_buf_t acc = TS_BUF_INIT;
    double secs = (double)(now - L->progress_t0) / 1000.0;
    for (size_t i = 0; i < L->cfg->n_accounts; i++) {
        if (!L->cfg->accounts[i].active) continue;
        ts_lane_stats_t st;
        ts_engine_lane_stats(L->engine, (int)i, &st);
        events += st.events_accepted + st.profiles_accepted;
        ts_buf_printf(
            &acc, "%s\"%s\":{\"events_per_s\":%.0f,\"ceiling_pct\":%.1f,\"throttled\":%llu}",
            acc.len ? "," : "", L->cfg->accounts[i].name,
            secs > 0 ? (double)st.events_accepted / secs : 0,
            secs > 0
                ? 100.0 * (double)st.events_accepted / secs /
                      (L->cfg->accounts[i].limits[TS_EP_EVENTS_BULK].steady_per_min * 1000.0 / 60.0)
                : 0,
            (unsigned long long)st.throttled_429);
    }
    double eps = secs > 0 ? (double)(events - L->progress_events0) / secs : 0;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    double eta = done > 0 && frac < 1 ? secs * (1 - frac) / frac : 0;
    ts_metric_set(L->m_replay, frac);
    char ctx[1024];
    snprintf(ctx, sizeof ctx,
             "\"topic\":\"%s\",\"records_done\":%lld,\"records_total\":%lld,\"progress\":%.4f,"
             "\"events_per_s\":%.0f,\"eta_s\":%.0f,\"accounts\":{%s}",
             L->topic, (long long)done, (long long)total, frac, eps, eta, acc.data ? acc.data : "");
    ts_log(TS_LOG_INFO, "replay", ctx, final ? "replay complete" : "replay progress");
    if (isatty(STDERR_FILENO)) {
        int w = (int)(frac * 40);
        fprintf(stderr, "\r%s [%.*s%*s] %5.1f%% %lld/%lld records %6.0f ev/s ETA %4.0fs%s",
                L->topic, w, "########################################", 40 - w, "", frac * 100,
                (long long)done, (long long)total, eps, eta, final ? "\n" : "");
        fflush(stderr);
    }
    ts_buf_free(&acc);
}

/* A new assignment: every partition starts with no held or in-flight
 * work and its pause state set explicitly, since librdkafka keeps a pause
 * across an eager revoke and re-assign (librdkafka #1849). */
static void on_assign(loop_t *L, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        part_t *ps = part_at(L, p);
        if (!ps) return;
        ts_offsets_assign(L->offsets, p);
        if (!ps->assigned) L->n_owned++;
        if (ps->paused) L->n_paused--;
        *ps = (part_t){.assigned = true,
                       .paused = false,
                       .end = ps->end,
                       .start_offset = ps->start_offset,
                       .m_lag = ps->m_lag};
    }
    ts_log(TS_LOG_INFO, "consumer", NULL, "assigned %d partition(s) of %s", parts->cnt, L->topic);
    if (L->replay) replay_start_offsets(L, rk, parts);
    rd_kafka_assign(rk, parts);
    L->assigned_once = true;
    L->full_paused =
        ts_offsets_inflight(L->offsets) >= (size_t)L->cfg->max_inflight_records || L->draining;
    for (int i = 0; i < parts->cnt; i++) part_sync_pause(L, parts->elems[i].partition, true);
}

/* Revoked or lost: stop taking work for these partitions and release
 * their held and in-flight records (late completions are ignored:
 * generations); commit what is complete unless the assignment was lost
 * (the group has moved on: the commit would fail). */
static void on_revoke(loop_t *L, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    bool lost = rd_kafka_assignment_lost(rk);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        part_t *ps = part_at(L, p);
        drop_held_partition(L, p);
        ts_offsets_revoke(L->offsets, p, release_msg, NULL);
        if (!ps || !ps->assigned) continue;
        if (ps->paused) L->n_paused--;
        ps->paused = false; /* unknown until the next assignment sets it */
        ps->assigned = false;
        ps->n_blocked = 0;
        L->n_owned--;
        if (ps->m_lag) ts_metric_set(ps->m_lag, 0);
    }
    ts_metric_set(L->m_paused, (double)L->n_paused);
    if (!lost) {
        rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            ts_log(TS_LOG_WARN, "consumer", NULL, "commit on revoke: %s", rd_kafka_err2str(cerr));
    }
    ts_log(TS_LOG_INFO, "consumer", NULL, "revoked %d partition(s) of %s%s", parts->cnt, L->topic,
           lost ? " (assignment lost)" : "");
    rd_kafka_assign(rk, NULL);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    loop_t *L = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(L, rk, parts);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            ts_log(TS_LOG_ERROR, "consumer", NULL, "rebalance: %s", rd_kafka_err2str(err));
        on_revoke(L, rk, parts);
    }
}

/* ---- setup ---------------------------------------------------------------------- */

/* librdkafka's own logs, as JSON lines like ours */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    ts_log_level_t lvl = level <= 3   ? TS_LOG_ERROR
                         : level <= 4 ? TS_LOG_WARN
                         : level <= 6 ? TS_LOG_INFO
                                      : TS_LOG_DEBUG;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "\"facility\":\"%.40s\"", fac);
    ts_log(lvl, "librdkafka", ctx, "%s", buf);
}

/* Properties that only make sense for consumers; the dead-letter producer
 * skips them instead of warning about each. */
static bool consumer_only(const char *k) {
    static const char *const keys[] = {"session.timeout.ms",
                                       "heartbeat.interval.ms",
                                       "max.poll.interval.ms",
                                       "auto.offset.reset",
                                       "auto.commit.interval.ms",
                                       "enable.auto.commit",
                                       "partition.assignment.strategy",
                                       "isolation.level",
                                       "group.instance.id",
                                       "fetch.min.bytes",
                                       "fetch.max.bytes",
                                       "fetch.wait.max.ms",
                                       "max.partition.fetch.bytes",
                                       "queued.min.messages",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], k)) return true;
    return false;
}

static rd_kafka_conf_t *base_conf_for(const ts_config_t *cfg, bool producer, char *err,
                                      size_t errsz) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (producer && consumer_only(cfg->kafka[i].key)) continue;
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, errsz) !=
            RD_KAFKA_CONF_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "kafka.%s: %s", cfg->kafka[i].key, err);
            snprintf(err, errsz, "%s", msg);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

static rd_kafka_conf_t *base_conf(const ts_config_t *cfg, char *err, size_t errsz) {
    return base_conf_for(cfg, false, err, errsz);
}

/* Captures the high watermarks of every partition of `topic` into a new
 * array (*ends, caller frees) of *n_out entries. */
static int capture_ends(rd_kafka_t *rk, const char *topic, int64_t **ends_out, int *n_out) {
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err) return -1;
    int n = 0;
    if (md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
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

/* false: the schema registry is unavailable and `msg` must be applied
 * later (the caller keeps it; the table stops reading until then).
 * Records that do not decode are not in the table: the customers consumer
 * dead-letters them. */
static bool table_consume(loop_t *L, rd_kafka_message_t *msg) {
    if (msg->err) return true;
    if (!msg->payload) { /* tombstone: the key is the customer id */
        if (msg->key && msg->key_len) ts_custtable_delete(L->table, msg->key, msg->key_len);
        L->table_version++;
        return true;
    }
    ts_customer_t c;
    char why[512];
    ts_arena_t *a = L->arena;
    ts_arena_reset(a);
    ts_err_t rc = ts_decoder_decode(L->table_dec, msg->payload, msg->len, a, &c, why, sizeof why);
    if (rc == TS_ERR_TRANSIENT) {
        registry_unavailable(L, msg, why);
        return false;
    }
    if (rc == TS_OK) {
        ts_custtable_put(L->table, &c);
        L->table_version++;
    }
    return true;
}

static int table_open(loop_t *L, char *err, size_t errsz) {
    rd_kafka_conf_t *conf = base_conf(L->cfg, err, errsz);
    if (!conf) return -1;
    char gid[256];
    snprintf(gid, sizeof gid, "%s-customer-table", L->cfg->group_id_orders);
    rd_kafka_conf_set(conf, "group.id", gid, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
    L->table_rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsz);
    if (!L->table_rk) return -1;
    if (capture_ends(L->table_rk, L->cfg->topic_customers, &L->table_end, &L->table_parts)) {
        snprintf(err, errsz, "cannot read the partitions of %s", L->cfg->topic_customers);
        return -1;
    }
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(L->table_parts);
    for (int p = 0; p < L->table_parts; p++)
        rd_kafka_topic_partition_list_add(pl, L->cfg->topic_customers, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(L->table_rk, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    return 0;
}

/* Reads what is available; marks the table ready once every partition
 * reached the end captured at start. */
static void table_poll(loop_t *L, int timeout_ms) {
    rd_kafka_message_t *msg;
    int n = 0;
    if (L->table_held) { /* waiting for the registry: nothing after it applies first */
        if (!table_consume(L, L->table_held)) {
            if (timeout_ms > 0) usleep((useconds_t)timeout_ms * 1000);
            return;
        }
        registry_answered(L);
        rd_kafka_message_destroy(L->table_held);
        L->table_held = NULL;
    }
    while (n < 10000 && (msg = rd_kafka_consumer_poll(L->table_rk, n == 0 ? timeout_ms : 0))) {
        n++;
        if (!table_consume(L, msg)) {
            L->table_held = msg;
            return;
        }
        rd_kafka_message_destroy(msg);
    }
    if (L->table_ready) return;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(L->table_parts);
    for (int p = 0; p < L->table_parts; p++)
        rd_kafka_topic_partition_list_add(pl, L->cfg->topic_customers, p);
    rd_kafka_position(L->table_rk, pl);
    bool ready = true;
    for (int p = 0; p < L->table_parts; p++) {
        int64_t pos = pl->elems[p].offset;
        if (L->table_end[p] > 0 && (pos < 0 || pos < L->table_end[p])) {
            int64_t lo, hi;
            /* an empty or fully compacted-away partition has nothing to read */
            if (!rd_kafka_get_watermark_offsets(L->table_rk, L->cfg->topic_customers, p, &lo,
                                                &hi) &&
                lo >= L->table_end[p])
                continue;
            ready = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(pl);
    if (ready) {
        L->table_ready = true;
        char ctx[64];
        snprintf(ctx, sizeof ctx, "\"customers\":%zu", ts_custtable_size(L->table));
        ts_log(TS_LOG_INFO, "orders", ctx, "customer table restored from %s",
               L->cfg->topic_customers);
    }
}

static void metrics_setup(loop_t *L) {
    ts_metrics_t *m = L->metrics;
    char lb[256];
    snprintf(lb, sizeof lb, "topic=\"%s\"", L->topic);
    L->m_consumed =
        ts_metrics_counter(m, "tillstream_records_consumed_total", "records consumed", lb);
    for (int r = 1; r < TS_REASON__COUNT; r++) {
        snprintf(lb, sizeof lb, "topic=\"%s\",reason=\"%s\"", L->topic,
                 ts_reason_name((ts_reason_t)r));
        L->m_dlq[r] = ts_metrics_counter(m, "tillstream_dead_letter_total",
                                         "records written to the dead-letter topic", lb);
    }
    snprintf(lb, sizeof lb, "topic=\"%s\"", L->topic);
    L->m_skipped = ts_metrics_counter(
        m, "tillstream_records_skipped_total",
        "records not sent on purpose (voided, test, other account, tombstone)", lb);
    L->m_paused = ts_metrics_gauge(m, "tillstream_paused_partitions",
                                   "partitions paused by backpressure", lb);
    L->m_inflight = ts_metrics_gauge(m, "tillstream_inflight_records",
                                     "records consumed and not yet completed", lb);
    L->m_registry_wait = ts_metrics_counter(m, "tillstream_registry_unavailable_total",
                                            "schema registry requests that failed (down, timeout, "
                                            "5xx): records wait, never dead-lettered",
                                            lb);
    if (L->o->kind == TS_KIND_ORDER)
        L->m_table = ts_metrics_gauge(m, "tillstream_customer_table_customers",
                                      "customers in the customer table", NULL);
}

/* Every 5 s: consumer lag per assigned partition (cached watermarks, no I/O). */
static void metrics_tick(loop_t *L) {
    int64_t now = ts_now_mono_ms();
    if (!L->metrics || now < L->next_lag_ms) return;
    L->next_lag_ms = now + 5000;
    ts_metric_set(L->m_inflight, (double)ts_offsets_inflight(L->offsets));
    if (L->table) ts_metric_set(L->m_table, (double)ts_custtable_size(L->table));
    rd_kafka_topic_partition_list_t *as = NULL;
    if (rd_kafka_assignment(L->rk, &as) || !as) return;
    rd_kafka_position(L->rk, as);
    for (int i = 0; i < as->cnt; i++) {
        int32_t p = as->elems[i].partition;
        int64_t lo, hi;
        part_t *ps = part_at(L, p);
        if (!ps || rd_kafka_get_watermark_offsets(L->rk, L->topic, p, &lo, &hi)) continue;
        if (!ps->m_lag) {
            char lb[256];
            snprintf(lb, sizeof lb, "topic=\"%s\",partition=\"%d\"", L->topic, p);
            ps->m_lag = ts_metrics_gauge(
                L->metrics, "tillstream_consumer_lag_records",
                "records between the consumer's position and the partition end", lb);
        }
        int64_t pos = as->elems[i].offset >= 0 ? as->elems[i].offset : lo;
        ts_metric_set(ps->m_lag, (double)(hi > pos ? hi - pos : 0));
    }
    rd_kafka_topic_partition_list_destroy(as);
}

static bool at_end(loop_t *L) {
    if (!L->assigned_once || L->n_held || ts_engine_pending(L->engine) || L->dlq_pending ||
        L->dlq_retries)
        return false;
    if (ts_offsets_inflight(L->offsets)) return false;
    for (int p = 0; p < L->n_parts && p < L->n_cap; p++)
        if (L->parts[p].end > 0 && !L->parts[p].reached) return false;
    return true;
}

static void print_summary(loop_t *L) {
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    ts_jw_obj_open(&w);
    ts_jw_key(&w, "consumed");
    ts_jw_int(&w, (int64_t)L->consumed);
    ts_jw_key(&w, "dead_lettered");
    ts_jw_int(&w, (int64_t)L->dead_lettered);
    ts_jw_key(&w, "skipped");
    ts_jw_int(&w, (int64_t)L->skipped);
    ts_jw_key(&w, "dead_letter_reasons");
    ts_jw_obj_open(&w);
    for (int r = 1; r < TS_REASON__COUNT; r++)
        if (L->by_reason[r]) {
            ts_jw_key(&w, ts_reason_name((ts_reason_t)r));
            ts_jw_int(&w, (int64_t)L->by_reason[r]);
        }
    ts_jw_obj_close(&w);
    ts_jw_key(&w, "accounts");
    ts_jw_obj_open(&w);
    for (size_t i = 0; i < L->cfg->n_accounts; i++) {
        if (!L->cfg->accounts[i].active) continue;
        ts_lane_stats_t st;
        ts_engine_lane_stats(L->engine, (int)i, &st);
        ts_jw_key(&w, L->cfg->accounts[i].name);
        ts_jw_obj_open(&w);
        ts_jw_key(&w, "events_accepted");
        ts_jw_int(&w, (int64_t)st.events_accepted);
        ts_jw_key(&w, "profiles_accepted");
        ts_jw_int(&w, (int64_t)st.profiles_accepted);
        ts_jw_key(&w, "requests");
        ts_jw_int(&w, (int64_t)st.requests);
        ts_jw_key(&w, "throttled_429");
        ts_jw_int(&w, (int64_t)st.throttled_429);
        ts_jw_obj_close(&w);
    }
    ts_jw_obj_close(&w);
    ts_jw_obj_close(&w);
    if (b.data && b.len >= 2) b.data[b.len - 1] = '\0'; /* members only: drop the outer '}' */
    ts_log(TS_LOG_INFO, L->o->prog, b.data ? b.data + 1 : NULL, "summary");
    ts_buf_free(&b);
}

/* ---- new / poll / run / drain / destroy ---------------------------------------- */

static ts_err_t fail(ts_err_t rc, char *errstr, size_t errstr_size, const char *what,
                     const char *err) {
    return ts_seterr(errstr, errstr_size, rc, "%s%s%s", what, *what ? ": " : "", err);
}

static ts_err_t open_dead_letter_producer(loop_t *L, char *err, size_t errsz) {
    /* dead-letter producer: idempotent, acks=all */
    rd_kafka_conf_t *pconf = base_conf_for(L->cfg, true, err, errsz);
    if (!pconf) return TS_ERR_CONFIG;
    rd_kafka_conf_set(pconf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(pconf, "acks", "all", NULL, 0);
    rd_kafka_conf_set(pconf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(pconf, on_dlq_delivery);
    rd_kafka_conf_set_opaque(pconf, L);
    char why[512];
    if (!(L->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, why, sizeof why)))
        return fail(TS_ERR_INTERNAL, err, errsz, "dead-letter producer", why);
    return TS_OK;
}

static ts_err_t open_group_consumer(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    rd_kafka_conf_t *cconf = base_conf(cfg, err, errsz);
    if (!cconf) return TS_ERR_CONFIG;
    rd_kafka_conf_set(cconf, "group.id", L->group_id, NULL, 0);
    rd_kafka_conf_set(cconf, "enable.auto.offset.store", "false", NULL, 0);
    rd_kafka_conf_set(cconf, "enable.auto.commit", "true", NULL, 0);
    /* stored offsets reach the broker within a second (fewer re-sends after a
     * crash); a user's own value wins */
    bool user_interval = false;
    for (size_t i = 0; i < cfg->n_kafka; i++)
        user_interval |= !strcmp(cfg->kafka[i].key, "auto.commit.interval.ms");
    if (!user_interval) rd_kafka_conf_set(cconf, "auto.commit.interval.ms", "1000", NULL, 0);
    rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(cconf, "enable.partition.eof", "true", NULL, 0);
    /* eager assignment: see docs/consumers.md (librdkafka 2.0.2 close-path bugs) */
    char probe[64];
    size_t probe_sz = sizeof probe;
    if (rd_kafka_conf_get(cconf, "partition.assignment.strategy", probe, &probe_sz) ==
            RD_KAFKA_CONF_OK &&
        strstr(probe, "cooperative") == NULL)
        rd_kafka_conf_set(cconf, "partition.assignment.strategy", "range,roundrobin", NULL, 0);
    rd_kafka_conf_set_rebalance_cb(cconf, on_rebalance);
    rd_kafka_conf_set_opaque(cconf, L);
    char why[512];
    if (!(L->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, why, sizeof why)))
        return fail(TS_ERR_INTERNAL, err, errsz, "consumer", why);
    rd_kafka_poll_set_consumer(L->rk);
    return TS_OK;
}

/* The topic's partitions and, for exit-at-end and replays, the end of
 * each (the high watermark now, or the first record at --replay-to). */
static ts_err_t capture_targets(loop_t *L, char *err, size_t errsz) {
    int64_t *ends = NULL;
    int n = 0;
    bool need = L->o->exit_at_end || L->replay;
    if (capture_ends(L->rk, L->topic, &ends, &n)) {
        if (need)
            return ts_seterr(err, errsz, TS_ERR_TRANSIENT, "cannot read the end offsets of %s",
                             L->topic);
        return TS_OK; /* sized by the assignments instead */
    }
    L->n_parts = n;
    if (!part_at(L, n - 1)) {
        free(ends);
        return ts_seterr(err, errsz, TS_ERR_NOMEM, "out of memory");
    }
    for (int p = 0; p < n && need; p++) L->parts[p].end = ends[p];
    free(ends);
    if (L->replay && L->o->replay_to_ms != TS_REPLAY_NOW) {
        /* the window ends at the first record at or after --replay-to */
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
            rd_kafka_topic_partition_list_add(q, L->topic, p)->offset = L->o->replay_to_ms;
        if (rd_kafka_offsets_for_times(L->rk, q, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < q->cnt; i++)
                if (q->elems[i].offset >= 0 && q->elems[i].partition < n)
                    L->parts[q->elems[i].partition].end = q->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(q);
    }
    return TS_OK;
}

static ts_err_t open_admin(loop_t *L, char *err, size_t errsz) {
    if (!L->cfg->admin_listen) return TS_OK;
    char why[512];
    L->admin = ts_admin_new(L->cfg->admin_listen, L->metrics, why, sizeof why);
    if (!L->admin) return fail(TS_ERR_CONFIG, err, errsz, "", why);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "\"port\":%d", ts_admin_port(L->admin));
    ts_log(TS_LOG_INFO, L->o->prog, ctx, "admin listener on %s (/metrics /healthz /readyz)",
           L->cfg->admin_listen);
    return TS_OK;
}

static ts_err_t consumer_setup(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    const ts_consumer_opts_t *o = L->o;
    ts_err_t rc;
    char why[512];
    ts_mapped_init(&L->m);
    L->arena = ts_arena_new(1 << 16);
    /* room for twice the limit: what was fetched before a pause still fits */
    L->offsets = ts_offsets_new(2 * (size_t)cfg->max_inflight_records);
    L->table = o->kind == TS_KIND_ORDER ? ts_custtable_new(0) : NULL;
    L->metrics = ts_metrics_new();
    if (!L->arena || !L->offsets || !L->metrics || (o->kind == TS_KIND_ORDER && !L->table))
        return ts_seterr(err, errsz, TS_ERR_NOMEM, "out of memory");
    if (!(L->router = ts_router_new(cfg, why, sizeof why)) ||
        !(L->mapper = ts_mapper_new(cfg, L->router, why, sizeof why)))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    /* decoders: a bad registry or raw-writer-schema setting is a config error */
    if (!(L->dec = ts_decoder_new(cfg, o->kind, why, sizeof why)) ||
        (o->kind == TS_KIND_ORDER &&
         !(L->table_dec = ts_decoder_new(cfg, TS_KIND_CUSTOMER, why, sizeof why))))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    metrics_setup(L);
    if ((rc = open_admin(L, err, errsz))) return rc;
    ts_engine_opts_t eo = {.cfg = cfg, .on_done = on_delivered, .opaque = L, .metrics = L->metrics};
    if (!(L->engine = ts_engine_new(&eo, why, sizeof why)))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    if ((rc = open_dead_letter_producer(L, err, errsz))) return rc;
    if (o->kind == TS_KIND_ORDER && table_open(L, why, sizeof why))
        return fail(TS_ERR_TRANSIENT, err, errsz, "customer table", why);
    if ((rc = open_group_consumer(L, err, errsz))) return rc;
    L->replay = o->replay_from_ms != TS_REPLAY_NONE;
    if (L->replay) {
        L->m_replay = ts_metrics_gauge(L->metrics, "tillstream_replay_progress_ratio",
                                       "share of the replay window done (0..1)", NULL);
        L->progress_t0 = ts_now_mono_ms();
    }
    return capture_targets(L, err, errsz);
}

ts_err_t ts_consumer_new(const ts_config_t *cfg, const ts_consumer_opts_t *opts,
                         ts_consumer_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    loop_t *L = calloc(1, sizeof *L);
    if (!L) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    L->cfg = cfg;
    L->opts = *opts;
    L->o = &L->opts;
    L->topic = opts->kind == TS_KIND_ORDER ? cfg->topic_orders : cfg->topic_customers;
    L->group_id = opts->group_id                ? opts->group_id
                  : opts->kind == TS_KIND_ORDER ? cfg->group_id_orders
                                                : cfg->group_id_customers;
    ts_err_t rc = consumer_setup(L, errstr, errstr_size);
    if (rc != TS_OK) {
        ts_consumer_destroy(L);
        return rc;
    }
    *out = L;
    return TS_OK;
}

/* Orders: the customer table is restored before the group is joined;
 * then subscribe. false while still restoring. */
static bool start_consuming(loop_t *L) {
    if (L->o->kind == TS_KIND_ORDER && !L->table_ready) {
        if (!L->restore_logged)
            ts_log(TS_LOG_INFO, "orders", NULL, "restoring the customer table from %s",
                   L->cfg->topic_customers);
        L->restore_logged = true;
        table_poll(L, 100);
        ts_admin_heartbeat(L->admin);
        return false;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, L->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(L->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        ts_log(TS_LOG_ERROR, L->o->prog, NULL, "subscribe: %s", rd_kafka_err2str(serr));
        L->fatal = true;
        return false;
    }
    L->subscribed = true;
    ts_log(TS_LOG_INFO, L->o->prog, NULL, "consuming %s as group %s", L->topic, L->group_id);
    return true;
}

/* One message from the group consumer (NULL: none). */
static void on_message(loop_t *L, rd_kafka_message_t *msg) {
    part_t *ps = msg->partition >= 0 ? part_at(L, msg->partition) : NULL;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (ps && msg->offset >= ps->end) ps->reached = true;
        rd_kafka_message_destroy(msg);
    } else if (msg->err) {
        ts_log(msg->err == RD_KAFKA_RESP_ERR__TRANSPORT ? TS_LOG_WARN : TS_LOG_ERROR, "consumer",
               NULL, "consumer: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
    } else if (!ps) {
        rd_kafka_message_destroy(msg);
    } else if (L->replay && msg->offset >= ps->end) {
        /* past the replay window: not ours to process */
        ps->reached = true;
        ps->past_window = true;
        part_sync_pause(L, msg->partition, false);
        rd_kafka_message_destroy(msg);
    } else {
        if (msg->offset + 1 >= ps->end) ps->reached = true;
        consume(L, msg);
    }
}

bool ts_consumer_poll(ts_consumer_t *L) {
    if (L->fatal || L->at_end) return false;
    if (!L->subscribed && !start_consuming(L)) return !L->fatal;
    bool busy = ts_engine_pending(L->engine) > 0 || L->n_held > 0;
    /* too many records in flight: pause fetching (the tracker has room
     * for what was fetched before the pause) and keep polling, which
     * keeps the membership alive; resume at half */
    size_t inflight = ts_offsets_inflight(L->offsets);
    size_t limit = (size_t)L->cfg->max_inflight_records;
    if (!L->full_paused && inflight >= limit)
        pause_all(L, true);
    else if (L->full_paused && inflight < limit / 2)
        pause_all(L, false);
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(L->rk, busy ? 5 : 100);
    if (msg) on_message(L, msg);
    if (L->table) table_poll(L, 0);
    retry_dead_letters(L);
    if (L->n_held) retry_held(L);
    ts_engine_poll(L->engine, 0);
    rd_kafka_poll(L->dlq, 0);
    ts_admin_heartbeat(L->admin);
    ts_admin_set_ready(L->admin,
                       L->assigned_once && (L->o->kind == TS_KIND_CUSTOMER || L->table_ready));
    metrics_tick(L);
    if (L->replay) replay_progress(L, false);
    if ((L->o->exit_at_end || L->replay) && at_end(L)) L->at_end = true;
    return !L->fatal && !L->at_end;
}

ts_err_t ts_consumer_run(ts_consumer_t *L) {
    while (!(L->o->stop && *L->o->stop) && ts_consumer_poll(L)) {
    }
    return L->fatal ? TS_ERR_NOMEM : TS_OK;
}

ts_err_t ts_consumer_drain(ts_consumer_t *L, char *errstr, size_t errstr_size) {
    /* drain: no new records, finish what is in flight within the grace period */
    int64_t grace_end = ts_now_mono_ms() + L->cfg->shutdown_grace_ms;
    L->draining = true;
    ts_engine_flush(L->engine);
    pause_all(L, true);
    while ((ts_engine_pending(L->engine) || L->dlq_pending || L->dlq_retries) &&
           ts_now_mono_ms() < grace_end && !L->fatal) {
        ts_engine_poll(L->engine, 20);
        rd_kafka_poll(L->dlq, 0);
        /* serve the consumer queue (never rd_kafka_poll() on a consumer):
         * records fetched before the pause are left for the next owner */
        rd_kafka_message_t *late = rd_kafka_consumer_poll(L->rk, 0);
        if (late) rd_kafka_message_destroy(late);
        retry_dead_letters(L);
    }
    int64_t left = grace_end - ts_now_mono_ms();
    rd_kafka_flush(L->dlq, left > 0 ? (int)left : 0);
    if (ts_engine_pending(L->engine))
        ts_log(TS_LOG_WARN, L->o->prog, NULL,
               "%zu record(s) not delivered within the grace period: their "
               "offsets are not committed and they will be re-read",
               ts_engine_pending(L->engine));
    ts_err_t rc = TS_OK;
    rd_kafka_resp_err_t cerr = L->subscribed ? rd_kafka_commit(L->rk, NULL, 0) : 0;
    if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ts_log(TS_LOG_WARN, L->o->prog, NULL, "final commit: %s", rd_kafka_err2str(cerr));
        rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "final commit: %s",
                       rd_kafka_err2str(cerr));
    }
    if (L->replay) replay_progress(L, true);
    print_summary(L);
    if (L->fatal) rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    return rc;
}

void ts_consumer_stats(const ts_consumer_t *L, ts_consumer_stats_t *out) {
    *out = (ts_consumer_stats_t){.owned = (size_t)L->n_owned,
                                 .paused = (size_t)L->n_paused,
                                 .inflight = ts_offsets_inflight(L->offsets),
                                 .held = L->n_held,
                                 .consumed = L->consumed,
                                 .completed = L->completed,
                                 .dead_lettered = L->dead_lettered,
                                 .at_end = L->at_end};
}

int ts_consumer_admin_port(const ts_consumer_t *L) {
    return L->admin ? ts_admin_port(L->admin) : -1;
}

void ts_consumer_destroy(ts_consumer_t *L) {
    if (!L) return;
    if (L->rk) {
        /* the revoke in close releases tracked messages and commits */
        rd_kafka_consumer_close(L->rk);
        rd_kafka_destroy(L->rk);
    }
    L->held_tail = NULL;
    while (L->held) {
        held_t *h = L->held;
        L->held = h->next;
        free(h);
    }
    for (int p = 0; p < L->n_cap && L->offsets; p++)
        ts_offsets_revoke(L->offsets, p, release_msg, NULL);
    while (L->dlq_retries) {
        dlq_retry_t *r = L->dlq_retries;
        L->dlq_retries = r->next;
        free(r->detail);
        free(r);
    }
    if (L->table_held) rd_kafka_message_destroy(L->table_held);
    if (L->table_rk) {
        rd_kafka_consumer_close(L->table_rk);
        rd_kafka_destroy(L->table_rk);
    }
    if (L->dlq) rd_kafka_destroy(L->dlq);
    ts_engine_destroy(L->engine);
    ts_admin_destroy(L->admin);
    ts_metrics_destroy(L->metrics);
    ts_offsets_destroy(L->offsets);
    ts_custtable_destroy(L->table);
    ts_decoder_destroy(L->dec);
    ts_decoder_destroy(L->table_dec);
    ts_mapper_destroy(L->mapper);
    ts_router_destroy(L->router);
    ts_arena_destroy(L->arena);
    ts_mapped_free(&L->m);
    free(L->table_end);
    free(L->parts);
    free(L);
}
