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
#include "tillstream/consent_table.h"
#include "tillstream/custtable.h"
#include "tillstream/decode.h"
#include "tillstream/metrics.h"
#include "tillstream/engine.h"
#include "tillstream/jw.h"
#include "tillstream/log.h"
#include "tillstream/map.h"
#include "tillstream/offsets.h"
#include "tillstream/route.h"
#include "tillstream/state.h"

#define MAX_PARTITIONS 1024

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

typedef struct {
    const ts_config_t *cfg;
    const ts_consumer_opts_t *o;
    const char *topic;
    rd_kafka_t *rk;       /* group consumer */
    rd_kafka_t *table_rk; /* orders: customer table reader */
    rd_kafka_t *dlq;      /* dead-letter producer */
    ts_offsets_t *offsets;
    ts_engine_t *engine;
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_custtable_t *table;
    ts_consent_table_t *consent; /* customers: consent states (docs/consent.md) */
    ts_state_t *state;           /* customers, not replays: the state topic */
    ts_consent_opts_t consent_opts;
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
    held_t *held_tail;                  /* append in O(1) */
    uint32_t n_blocked[MAX_PARTITIONS]; /* held records blocking each partition */
    dlq_retry_t *dlq_retries;
    size_t dlq_pending;
    bool fatal;
    bool table_ready;
    int64_t *table_end; /* per customers partition: high watermark at start */
    int table_parts;
    int64_t end[MAX_PARTITIONS]; /* exit-at-end targets */
    bool reached[MAX_PARTITIONS];
    bool paused[MAX_PARTITIONS];
    int n_parts;
    bool assigned_once;
    bool full_paused; /* every partition paused: in-flight limit or shutdown */
    ts_metrics_t *metrics;
    ts_admin_t *admin;
    ts_metric_t *m_consumed, *m_dlq[TS_REASON__COUNT], *m_skipped, *m_paused, *m_table, *m_inflight;
    ts_metric_t *m_registry_wait;
    ts_metric_t *m_lag[MAX_PARTITIONS];
    int64_t next_lag_ms;
    /* replay */
    bool replay;
    int64_t start_offset[MAX_PARTITIONS]; /* where this run started, for progress */
    int64_t next_progress_ms, progress_t0;
    uint64_t progress_events0;
    ts_metric_t *m_replay;
    /* counters for the final summary */
    uint64_t consumed, completed, dead_lettered, skipped, rejected;
    uint64_t by_reason[TS_REASON__COUNT];
} loop_t;

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
    if (L->state && ts_state_defer(L->state, token)) return; /* after its state write's ack */
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

static void hold(loop_t *L, rd_kafka_message_t *msg, uint64_t token, int64_t deadline, bool blocked,
                 bool registry) {
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        L->fatal = true;
        return;
    }
    *h = (held_t){msg, token, deadline, blocked, registry, L->table_version, NULL};
    /* append: keeps partition order */
    if (L->held_tail)
        L->held_tail->next = h;
    else
        L->held = h;
    L->held_tail = h;
    L->n_held++;
    if (blocked && msg->partition < MAX_PARTITIONS) L->n_blocked[msg->partition]++;
}

static void set_pause(loop_t *L, int32_t p, bool pause) {
    if (p < 0 || p >= MAX_PARTITIONS || L->paused[p] == pause) return;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, L->topic, p);
    if (pause)
        rd_kafka_pause_partitions(L->rk, pl);
    else
        rd_kafka_resume_partitions(L->rk, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    L->paused[p] = pause;
    ts_metric_add(L->m_paused, pause ? 1 : -1);
}

/* Pauses (or resumes) every assigned partition for the in-flight limit or
 * shutdown; partitions paused for a full lane stay paused. */
static void pause_all(loop_t *L, bool pause) {
    rd_kafka_topic_partition_list_t *as = NULL;
    if (rd_kafka_assignment(L->rk, &as) || !as) return;
    if (!pause) { /* keep lane-blocked partitions paused */
        rd_kafka_topic_partition_list_t *keep = rd_kafka_topic_partition_list_new(as->cnt);
        for (int i = 0; i < as->cnt; i++) {
            int32_t p = as->elems[i].partition;
            if (p >= MAX_PARTITIONS || !L->paused[p])
                rd_kafka_topic_partition_list_add(keep, L->topic, p);
        }
        rd_kafka_resume_partitions(L->rk, keep);
        rd_kafka_topic_partition_list_destroy(keep);
    } else {
        rd_kafka_pause_partitions(L->rk, as);
    }
    rd_kafka_topic_partition_list_destroy(as);
    L->full_paused = pause;
}

static bool partition_blocked(const loop_t *L, int32_t p) {
    return p < MAX_PARTITIONS && L->n_blocked[p] > 0;
}

static void set_blocked(loop_t *L, held_t *h, bool blocked) {
    int32_t p = h->msg->partition;
    if (h->blocked == blocked) return;
    h->blocked = blocked;
    if (p < MAX_PARTITIONS) L->n_blocked[p] += blocked ? 1 : (uint32_t)-1;
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
    ts_customer_t c;
    if (L->o->kind == TS_KIND_CUSTOMER) {
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
    if (L->consent && !m->skipped) { /* decided once, when the record can be submitted */
        if (!ts_engine_has_room(L->engine, m->account)) return P_WAIT_LANE;
        if ((L->fatal = ts_state_decide(L->state, L->consent, &c, msg->partition, msg->offset,
                                        rd_kafka_message_timestamp(msg, NULL), token,
                                        &L->consent_opts, m, why, sizeof why) != TS_OK))
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
        set_pause(L, p, true);
        break;
    case P_WAIT_CUSTOMER:
        hold(L, msg, token, ts_now_mono_ms() + L->cfg->unknown_customer_retry_ms, false, false);
        break;
    }
}

static void retry_held(loop_t *L) {
    int64_t now = ts_now_mono_ms();
    bool blocked_parts[MAX_PARTITIONS] = {false};
    held_t *prev = NULL;
    for (held_t **pp = &L->held; *pp;) {
        held_t *h = *pp;
        int32_t p = h->msg->partition;
        /* behind a blocked record of its partition: keeps its place */
        bool skip = h->blocked && p < MAX_PARTITIONS && blocked_parts[p];
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
            if (h->blocked && p < MAX_PARTITIONS) blocked_parts[p] = true;
            prev = h;
            pp = &h->next;
        }
    }
    for (int p = 0; p < L->n_parts && p < MAX_PARTITIONS; p++)
        if (L->paused[p] && !blocked_parts[p] && !L->full_paused) set_pause(L, p, false);
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
        if (p < MAX_PARTITIONS)
            L->start_offset[p] = off >= 0 ? off : off == RD_KAFKA_OFFSET_END ? L->end[p] : lo;
        char ctx[128];
        snprintf(ctx, sizeof ctx, "\"partition\":%d,\"start\":%lld,\"end\":%lld", p, (long long)off,
                 (long long)(p < MAX_PARTITIONS ? L->end[p] : -1));
        ts_log(TS_LOG_INFO, "replay", ctx, "replaying partition %d", p);
    }
}

/* Progress of a replay: a JSON line every 5 s (and a bar on a terminal). */
static void replay_progress(loop_t *L, bool final) {
    int64_t now = ts_now_mono_ms();
    if (!final && now < L->next_progress_ms) return;
    L->next_progress_ms = now + 5000;
    int64_t total = 0, done = 0;
    for (int p = 0; p < L->n_parts; p++) {
        int64_t window = L->end[p] - L->start_offset[p];
        if (window <= 0) continue;
        total += window;
        int64_t c = ts_offsets_committed(L->offsets, p);
        int64_t upto = c >= 0 ? c : L->start_offset[p];
        if (L->reached[p] && ts_offsets_partition_inflight(L->offsets, p) == 0) upto = L->end[p];
        done += upto > L->start_offset[p]
                    ? (upto < L->end[p] ? upto : L->end[p]) - L->start_offset[p]
                    : 0;
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

/* The consent state of the assigned partitions, before any of their records. */
static void state_restore(loop_t *L, const rd_kafka_topic_partition_list_t *parts) {
    int32_t ps[MAX_PARTITIONS];
    char err[512];
    int n = 0;
    for (int i = 0; i < parts->cnt && n < MAX_PARTITIONS; i++) ps[n++] = parts->elems[i].partition;
    if (ts_state_restore(L->state, ps, n, 120000, err, sizeof err)) {
        ts_log(TS_LOG_ERROR, "state", NULL, "%s", err);
        L->fatal = true; /* deciding without the state could re-subscribe: stop */
    }
}

static void on_state_ready(void *opaque, uint64_t token) { complete(opaque, token); }

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    loop_t *L = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            ts_offsets_assign(L->offsets, p);
            if (p < MAX_PARTITIONS) L->paused[p] = false;
        }
        ts_log(TS_LOG_INFO, "consumer", NULL, "assigned %d partition(s) of %s", parts->cnt,
               L->topic);
        if (L->replay) replay_start_offsets(L, rk, parts);
        if (L->state) state_restore(L, parts);
        rd_kafka_assign(rk, parts);
        L->full_paused = false; /* a new assignment starts unpaused */
        L->assigned_once = true;
    } else {
        /* stop taking work for these partitions, commit what is complete;
         * late completions of their records are ignored (generations) */
        if (L->state) ts_state_flush(L->state, 10000); /* the next owner restores our decisions */
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            drop_held_partition(L, p);
            ts_offsets_revoke(L->offsets, p, release_msg, NULL);
            if (p < MAX_PARTITIONS) L->paused[p] = false;
        }
        rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            ts_log(TS_LOG_WARN, "consumer", NULL, "commit on revoke: %s", rd_kafka_err2str(cerr));
        ts_log(TS_LOG_INFO, "consumer", NULL, "revoked %d partition(s) of %s", parts->cnt,
               L->topic);
        rd_kafka_assign(rk, NULL);
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

static int64_t now_wall_clock(void *o) {
    (void)o;
    return ts_now_mono_ms();
}

/* Captures the high watermarks of every partition of `topic`. */
static int capture_ends(rd_kafka_t *rk, const char *topic, int64_t *ends, int max, int *n_out) {
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err) return -1;
    int n = 0;
    if (md->topic_cnt == 1 && !md->topics[0].err) n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (n == 0 || n > max) return -1;
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000)) return -1;
        ends[p] = hi;
    }
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
    L->table_end = calloc(MAX_PARTITIONS, sizeof *L->table_end);
    if (capture_ends(L->table_rk, L->cfg->topic_customers, L->table_end, MAX_PARTITIONS,
                     &L->table_parts)) {
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
        if (p >= MAX_PARTITIONS || rd_kafka_get_watermark_offsets(L->rk, L->topic, p, &lo, &hi))
            continue;
        if (!L->m_lag[p]) {
            char lb[256];
            snprintf(lb, sizeof lb, "topic=\"%s\",partition=\"%d\"", L->topic, p);
            L->m_lag[p] = ts_metrics_gauge(
                L->metrics, "tillstream_consumer_lag_records",
                "records between the consumer's position and the partition end", lb);
        }
        int64_t pos = as->elems[i].offset >= 0 ? as->elems[i].offset : lo;
        ts_metric_set(L->m_lag[p], (double)(hi > pos ? hi - pos : 0));
    }
    rd_kafka_topic_partition_list_destroy(as);
}

static bool at_end(loop_t *L) {
    if (!L->assigned_once || L->n_held || ts_engine_pending(L->engine) || L->dlq_pending ||
        L->dlq_retries)
        return false;
    if (ts_offsets_inflight(L->offsets)) return false;
    for (int p = 0; p < L->n_parts; p++)
        if (L->end[p] > 0 && !L->reached[p]) return false;
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
    ts_log(TS_LOG_INFO, L->o->prog, b.data + 1 /* members only */, "summary");
    ts_buf_free(&b);
}

int ts_consumer_run(const ts_config_t *cfg, const ts_consumer_opts_t *o) {
    loop_t *L = calloc(1, sizeof *L);
    char err[512];
    int exit_code = 1;
    if (!L) return 1;
    L->cfg = cfg;
    L->o = o;
    L->topic = o->kind == TS_KIND_ORDER ? cfg->topic_orders : cfg->topic_customers;
    ts_mapped_init(&L->m);
    L->arena = ts_arena_new(1 << 16);
    /* room for twice the limit: what was fetched before a pause still fits */
    L->offsets = ts_offsets_new(2 * (size_t)cfg->max_inflight_records);
    L->router = ts_router_new(cfg, err, sizeof err);
    L->mapper = L->router ? ts_mapper_new(cfg, L->router, err, sizeof err) : NULL;
    L->table = o->kind == TS_KIND_ORDER ? ts_custtable_new(0) : NULL;
    if (!L->arena || !L->offsets || !L->mapper || (o->kind == TS_KIND_ORDER && !L->table)) goto out;
    /* decoders: a bad registry or raw-writer-schema setting is a config error */
    if (!(L->dec = ts_decoder_new(cfg, o->kind, err, sizeof err)) ||
        (o->kind == TS_KIND_ORDER &&
         !(L->table_dec = ts_decoder_new(cfg, TS_KIND_CUSTOMER, err, sizeof err)))) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        exit_code = 2;
        goto out;
    }

    L->metrics = ts_metrics_new();
    metrics_setup(L);
    if (cfg->admin_listen) {
        L->admin = ts_admin_new(cfg->admin_listen, L->metrics, err, sizeof err);
        if (!L->admin) {
            fprintf(stderr, "%s: %s\n", o->prog, err);
            exit_code = 2;
            goto out;
        }
        char ctx[64];
        snprintf(ctx, sizeof ctx, "\"port\":%d", ts_admin_port(L->admin));
        ts_log(TS_LOG_INFO, o->prog, ctx, "admin listener on %s (/metrics /healthz /readyz)",
               cfg->admin_listen);
    }
    ts_engine_opts_t eo = {cfg, on_delivered, L, now_wall_clock, NULL, L->metrics, 0, 0};
    L->engine = ts_engine_new(&eo, err, sizeof err);
    if (!L->engine) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        exit_code = 2;
        goto out;
    }
    if (o->kind == TS_KIND_CUSTOMER) {
        L->consent = ts_consent_table_new(cfg, L->metrics, err, sizeof err);
        L->consent_opts = (ts_consent_opts_t){.replay = o->replay_from_ms != TS_REPLAY_NONE};
        ts_state_opts_t so = {
            cfg, L->consent, o->group_id ? o->group_id : cfg->group_id_customers, on_state_ready,
            L,   L->metrics};
        if (!L->consent ||
            (!L->consent_opts.replay && !(L->state = ts_state_new(&so, err, sizeof err)))) {
            fprintf(stderr, "%s: %s\n", o->prog, err);
            exit_code = 2;
            goto out;
        }
    }
    /* dead-letter producer: idempotent, acks=all */
    rd_kafka_conf_t *pconf = base_conf_for(cfg, true, err, sizeof err);
    if (!pconf) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        exit_code = 2;
        goto out;
    }
    rd_kafka_conf_set(pconf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(pconf, "acks", "all", NULL, 0);
    rd_kafka_conf_set(pconf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(pconf, on_dlq_delivery);
    rd_kafka_conf_set_opaque(pconf, L);
    if (!(L->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err))) {
        fprintf(stderr, "%s: dead-letter producer: %s\n", o->prog, err);
        goto out;
    }
    if (o->kind == TS_KIND_ORDER && table_open(L, err, sizeof err)) {
        fprintf(stderr, "%s: customer table: %s\n", o->prog, err);
        goto out;
    }
    rd_kafka_conf_t *cconf = base_conf(cfg, err, sizeof err);
    if (!cconf) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        exit_code = 2;
        goto out;
    }
    const char *gid = o->group_id                ? o->group_id
                      : o->kind == TS_KIND_ORDER ? cfg->group_id_orders
                                                 : cfg->group_id_customers;
    rd_kafka_conf_set(cconf, "group.id", gid, NULL, 0);
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
    if (!(L->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err))) {
        fprintf(stderr, "%s: consumer: %s\n", o->prog, err);
        goto out;
    }
    rd_kafka_poll_set_consumer(L->rk);
    L->replay = o->replay_from_ms != TS_REPLAY_NONE;
    if (L->replay) {
        L->m_replay = ts_metrics_gauge(L->metrics, "tillstream_replay_progress_ratio",
                                       "share of the replay window done (0..1)", NULL);
        L->progress_t0 = ts_now_mono_ms();
    }
    if ((o->exit_at_end || L->replay) &&
        capture_ends(L->rk, L->topic, L->end, MAX_PARTITIONS, &L->n_parts)) {
        fprintf(stderr, "%s: cannot read the end offsets of %s\n", o->prog, L->topic);
        goto out;
    }
    if (L->replay && o->replay_to_ms != TS_REPLAY_NOW) {
        /* the window ends at the first record at or after --replay-to */
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(L->n_parts);
        for (int p = 0; p < L->n_parts; p++)
            rd_kafka_topic_partition_list_add(q, L->topic, p)->offset = o->replay_to_ms;
        if (rd_kafka_offsets_for_times(L->rk, q, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < q->cnt; i++)
                if (q->elems[i].offset >= 0 && q->elems[i].partition < MAX_PARTITIONS)
                    L->end[q->elems[i].partition] = q->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(q);
    }
    if (!o->exit_at_end && !L->replay) {
        int64_t dummy[MAX_PARTITIONS];
        capture_ends(L->rk, L->topic, dummy, MAX_PARTITIONS, &L->n_parts);
    }
    if (o->kind == TS_KIND_ORDER) {
        ts_log(TS_LOG_INFO, "orders", NULL, "restoring the customer table from %s",
               cfg->topic_customers);
        while (!L->table_ready && !*o->stop) {
            table_poll(L, 100);
            ts_admin_heartbeat(L->admin);
        }
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, L->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(L->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        fprintf(stderr, "%s: subscribe: %s\n", o->prog, rd_kafka_err2str(serr));
        goto out;
    }
    ts_log(TS_LOG_INFO, o->prog, NULL, "consuming %s as group %s", L->topic, gid);

    while (!*o->stop && !L->fatal) {
        bool busy = ts_engine_pending(L->engine) > 0 || L->n_held > 0;
        /* too many records in flight: pause fetching (the tracker has room
         * for what was fetched before the pause) and keep polling, which
         * keeps the membership alive; resume at half */
        size_t inflight = ts_offsets_inflight(L->offsets);
        if (!L->full_paused && inflight >= (size_t)cfg->max_inflight_records)
            pause_all(L, true);
        else if (L->full_paused && inflight < (size_t)cfg->max_inflight_records / 2)
            pause_all(L, false);
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(L->rk, busy ? 5 : 100);
        if (msg) {
            if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (msg->partition < MAX_PARTITIONS && msg->offset >= L->end[msg->partition])
                    L->reached[msg->partition] = true;
                rd_kafka_message_destroy(msg);
            } else if (msg->err) {
                ts_log(msg->err == RD_KAFKA_RESP_ERR__TRANSPORT ? TS_LOG_WARN : TS_LOG_ERROR,
                       "consumer", NULL, "consumer: %s", rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
            } else if (L->replay && msg->partition < MAX_PARTITIONS &&
                       msg->offset >= L->end[msg->partition]) {
                /* past the replay window: not ours to process */
                L->reached[msg->partition] = true;
                set_pause(L, msg->partition, true);
                rd_kafka_message_destroy(msg);
            } else {
                if (msg->partition < MAX_PARTITIONS && msg->offset + 1 >= L->end[msg->partition])
                    L->reached[msg->partition] = true;
                consume(L, msg);
            }
        }
        if (L->table) table_poll(L, 0);
        retry_dead_letters(L);
        if (L->n_held) retry_held(L);
        ts_engine_poll(L->engine, 0);
        rd_kafka_poll(L->dlq, 0);
        if (L->state) ts_state_poll(L->state);
        ts_admin_heartbeat(L->admin);
        ts_admin_set_ready(L->admin,
                           L->assigned_once && (L->o->kind == TS_KIND_CUSTOMER || L->table_ready));
        metrics_tick(L);
        if (L->replay) replay_progress(L, false);
        if ((o->exit_at_end || L->replay) && at_end(L)) break;
    }

    /* drain: no new records, finish what is in flight within the grace period */
    int64_t grace_end = ts_now_mono_ms() + cfg->shutdown_grace_ms;
    ts_engine_flush(L->engine);
    pause_all(L, true);
    while ((ts_engine_pending(L->engine) || L->dlq_pending || L->dlq_retries ||
            (L->state && ts_state_pending(L->state))) &&
           ts_now_mono_ms() < grace_end && !L->fatal) {
        ts_engine_poll(L->engine, 20);
        rd_kafka_poll(L->dlq, 0);
        if (L->state) ts_state_poll(L->state);
        /* serve the consumer queue (never rd_kafka_poll() on a consumer):
         * records fetched before the pause are left for the next owner */
        rd_kafka_message_t *late = rd_kafka_consumer_poll(L->rk, 0);
        if (late) rd_kafka_message_destroy(late);
        retry_dead_letters(L);
    }
    rd_kafka_flush(L->dlq, 5000);
    if (ts_engine_pending(L->engine))
        ts_log(TS_LOG_WARN, o->prog, NULL,
               "%zu record(s) not delivered within the grace period: their "
               "offsets are not committed and they will be re-read",
               ts_engine_pending(L->engine));
    rd_kafka_resp_err_t cerr = rd_kafka_commit(L->rk, NULL, 0);
    if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        ts_log(TS_LOG_WARN, o->prog, NULL, "final commit: %s", rd_kafka_err2str(cerr));
    if (L->replay) replay_progress(L, true);
    print_summary(L);
    exit_code = L->fatal ? 1 : 0;
out:
    if (L->rk) {
        rd_kafka_consumer_close(L->rk);
        /* the revoke in close released tracked messages; release held ones too */
        rd_kafka_destroy(L->rk);
    }
    L->held_tail = NULL;
    while (L->held) {
        held_t *h = L->held;
        L->held = h->next;
        free(h);
    }
    for (int p = 0; p < MAX_PARTITIONS && L->offsets; p++)
        ts_offsets_revoke(L->offsets, p, release_msg, NULL);
    if (L->table_held) rd_kafka_message_destroy(L->table_held);
    if (L->table_rk) {
        rd_kafka_consumer_close(L->table_rk);
        rd_kafka_destroy(L->table_rk);
    }
    if (L->dlq) rd_kafka_destroy(L->dlq);
    ts_state_destroy(L->state);
    ts_consent_table_destroy(L->consent);
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
    free(L);
    return exit_code;
}
