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
#include "kafka/dlq.h"
#include "kafka/firstpass.h"
#include "kafka/replay.h"
#include "kafka/table.h"
#include "kafka/topic.h"
#include "tillstream/kconf.h"

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

#include "deletes_restore.h" /* DELETES: customers.on_delete */
#include "profiles_out.h"    /* PROFILES: Klaviyo profile ids back to the POS */

/* Records taken from librdkafka per ts_consumer_poll() round, before the
 * engine and the other producers are served once (~1,000 events). */
enum { POLL_BATCH = 256 };

/* Everything the loop knows about one partition of its topic, sized from
 * the topic's metadata and grown by assignments (no fixed limit). `paused`
 * mirrors librdkafka's pause state and is written only by part_pause(). */
typedef struct {
    bool assigned;
    bool paused;           /* librdkafka's state, as last set by part_pause() */
    bool past_window;      /* replay: a record at or past the window end was seen */
    bool reached;          /* exit-at-end: consumed up to `end` */
    bool revoking;         /* on_revoke runs for it: its work is drained, then dropped */
    uint32_t n_blocked;    /* held records blocking the partition (full lane, registry) */
    uint64_t walk_blocked; /* retry_held(): the walk that saw a blocked record */
    int64_t end;           /* exit-at-end / replay window end; 0 = nothing to wait for */
    int64_t committed;     /* the group's committed offset at assignment (-1: none) */
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

struct ts_consumer_s {
    const ts_config_t *cfg;
    ts_consumer_opts_t opts; /* a copy; its strings are borrowed */
    const ts_consumer_opts_t *o;
    const char *group_id;
    bool restore_logged;
    bool kafka_down; /* all brokers down: not ready until a metadata request answers */
    const char *topic;
    rd_kafka_t *rk;                  /* group consumer */
    ts_ktable_t *reader;             /* orders: the customer-table reader */
    ts_dlq_t *dlq;                   /* dead-letter producer */
    ts_profiles_out_t *profiles_out; /* PROFILES: ids back to the POS (NULL: off) */
    ts_deletes_t *deletes;           /* DELETES: customers.on_delete (NULL: ignore) */
    ts_offsets_t *offsets;
    ts_engine_t *engine;
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_custtable_t *table;
    ts_consent_table_t *consent; /* customers: consent states (docs/consent.md) */
    ts_state_t *state;           /* customers (replays: --replay-consent only): the state topic */
    bool state_restored;         /* a restore (state + suppressions to their ends) is done */
    ts_firstpass_t *firstpass;   /* customers.wait_for_suppressions: the poller's first pass
                                    not seen yet for every account (NULL: seen, or no wait) */
    ts_consent_opts_t consent_opts;
    ts_decoder_t *dec;          /* the topic's records: JSON, Confluent Avro, raw Avro */
    ts_decoder_t *table_dec;    /* orders: the customer table's records */
    bool registry_down;         /* logged once per outage */
    uint64_t registry_failures; /* reported to the metric so far */
    ts_arena_t *arena;
    ts_mapped_t m;
    held_t *held;
    size_t n_held;
    held_t *held_tail; /* append in O(1) */
    bool fatal;
    part_t *parts; /* indexed by partition id, n_cap entries */
    int n_cap;     /* entries in parts: max(topic partitions, highest assigned + 1) */
    int n_parts;   /* the topic's partitions at start (metadata) */
    int n_owned;   /* partitions assigned now */
    int n_paused;  /* owned partitions paused in librdkafka now */
    bool subscribed;
    bool assigned_once;
    bool full_paused;    /* every partition paused: in-flight limit or shutdown */
    bool at_end;         /* exit-at-end / replay: everything done */
    uint64_t walk;       /* retry_held() walks so far */
    bool draining;       /* ts_consumer_drain() runs: nothing new is fetched */
    int revoke_drain_ms; /* consumer.revoke_drain_ms, at most max.poll.interval.ms / 2 */
    ts_metrics_t *metrics;
    ts_admin_t *admin;
    ts_metric_t *m_consumed, *m_skipped, *m_paused, *m_table, *m_inflight;
    ts_metric_t *m_registry_wait, *m_stalled;
    uint64_t progress_seen;   /* completions at the last progress check */
    int64_t last_progress_ms; /* when completions last grew (or work began) */
    bool stalled;
    ts_metric_t *m_sms_not_mobile;    /* SMS consent not sent: the phone cannot receive SMS */
    int64_t sms_not_mobile_log_ms;    /* next time such a warning may be logged */
    uint64_t sms_not_mobile_unlogged; /* skipped since the last warning line */
    int64_t next_lag_ms;
    /* replay */
    bool replay;
    ts_replay_t *replayer; /* replay: windows and progress */
    /* counters for the final summary */
    uint64_t consumed, completed, skipped, rejected;
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

static void on_dead_lettered(void *opaque, uint64_t token) { complete(opaque, token); }

/* The dead-letter producer copies what it needs: the record's offset is
 * stored once the broker acknowledged its dead letter. */
static void dead_letter(loop_t *L, uint64_t token, ts_reason_t reason, const char *detail,
                        int account, const char *outlet) {
    rd_kafka_message_t *msg = ts_offsets_user(L->offsets, token);
    if (!msg) return; /* partition revoked: the next owner re-reads it */
    if (ts_dlq_write(L->dlq, msg, token, reason, detail, account, outlet) != TS_OK) L->fatal = true;
}

/* ---- the engine's completions ------------------------------------------------ */

static void on_delivered(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    loop_t *L = opaque;
    if (result == TS_OK) {
        complete(L, token);
        return;
    }
    if (ts_err_retryable(result)) return; /* withdrawn (revoked): the new owner sends it */
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
                  .table_version = ts_ktable_version(L->reader)};
    /* append: keeps partition order */
    TS_LIST_APPEND(L->held, L->held_tail, h, next);
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

static void registry_answered(loop_t *L);

/* The customer-table reader waits for the registry (msg) or not (NULL). */
static void on_table_registry(void *opaque, const rd_kafka_message_t *msg, const char *why) {
    if (msg)
        registry_unavailable(opaque, msg, why);
    else
        registry_answered(opaque);
}

static void registry_answered(loop_t *L) {
    if (!L->registry_down) return;
    L->registry_down = false;
    ts_log(TS_LOG_INFO, "consumer", NULL, "schema registry reachable again: resuming");
}

/* A customer's SMS consent was not sent because libphonenumber types the
 * phone as a landline, 1300, 1800... (docs/decisions.md): counted every
 * time, logged at most once a minute with the number skipped since (the
 * customer id only: never the phone number). */
static void sms_not_mobile(loop_t *L, const rd_kafka_message_t *msg, const ts_mapped_t *m) {
    ts_metric_add(L->m_sms_not_mobile, 1);
    L->sms_not_mobile_unlogged++;
    int64_t now = ts_now_mono_ms();
    if (now < L->sms_not_mobile_log_ms) return;
    L->sms_not_mobile_log_ms = now + 60000;
    char what[600];
    const char *key = ts_mapped_str(m, m->profile_key);
    size_t klen = m->profile_key.len > 2 && key[0] == 'x' ? m->profile_key.len - 2 : 0;
    snprintf(what, sizeof what,
             "customer %.*s: SMS consent not sent, the phone number is %s and cannot receive "
             "SMS (%llu such customers since the last warning)",
             (int)(klen < 200 ? klen : 200), klen ? key + 2 : "", ts_phone_type_name(m->phone_type),
             (unsigned long long)L->sms_not_mobile_unlogged);
    L->sms_not_mobile_unlogged = 0;
    log_kv(TS_LOG_WARN, msg, "%s", what);
}

/* A record that did not decode or map: retryable (the schema registry is
 * unavailable) waits and is never dead-lettered; out of memory stops the
 * consumer (nothing is stored: re-read after the restart); anything else
 * is about this record (including an Avro-C failure on its writer schema,
 * TS_ERR_INTERNAL) and is dead-lettered with the reason for its code:
 * stopping would crash-loop on it (docs/decisions.md). */
static presult_t decode_failed(loop_t *L, const rd_kafka_message_t *msg, uint64_t token,
                               ts_err_t rc, const char *why) {
    if (ts_err_retryable(rc)) {
        registry_unavailable(L, msg, why);
        return P_WAIT_REGISTRY;
    }
    if (rc == TS_ERR_NOMEM) {
        log_kv(TS_LOG_ERROR, msg, "cannot process the record: %s", why);
        L->fatal = true;
        return P_DONE;
    }
    dead_letter(L, token,
                rc == TS_ERR_NOT_FOUND ? TS_REASON_SCHEMA_NOT_FOUND : TS_REASON_DECODE_ERROR, why,
                -1, NULL);
    return P_DONE;
}

/* A record that goes nowhere (tombstone, skipped, outside a replay's
 * outlets): counted and completed. */
static presult_t skip(loop_t *L, uint64_t token) {
    L->skipped++;
    ts_metric_add(L->m_skipped, 1);
    complete(L, token);
    return P_DONE;
}

/* A tombstone: with customers.on_delete, a suppression or deletion for the
 * identifiers the customer last had; otherwise skipped. */
static presult_t tombstone(loop_t *L, rd_kafka_message_t *msg, uint64_t token, char *why,
                           size_t whysz) {
    ts_mapped_t *m = &L->m;
    if (L->deletes && ts_deletes_prepare(L->deletes, msg->key, msg->key_len, m) == TS_OK) {
        ts_err_t drc = ts_engine_submit(L->engine, m, token, false, why, whysz);
        if (drc == TS_ERR_FULL) return P_WAIT_LANE;
        if (drc == TS_OK) {
            ts_deletes_submitted(L->deletes, msg->key, msg->key_len, m);
            return P_DONE;
        }
    }
    return skip(L, token);
}

/* Decodes and maps an order into L->m; *wait when its customer is not
 * known yet and it should wait for it. */
static ts_err_t decode_order(loop_t *L, rd_kafka_message_t *msg, bool give_up_waiting, bool *wait,
                             char *why, size_t whysz) {
    ts_order_t o;
    ts_err_t rc = ts_decoder_decode(L->dec, msg->payload, msg->len, L->arena, &o, why, whysz);
    if (rc != TS_OK) return rc;
    ts_customer_ref_t from_table = {0};
    bool in_table = o.customer_id && ts_custtable_get(L->table, o.customer_id, &from_table);
    const ts_customer_ref_t *cust = ts_map_resolve_customer(&o, in_table ? &from_table : NULL);
    /* while the table reader waits for the registry, a missing customer
     * may just not be read yet: keep waiting */
    if (!cust && o.customer_id && (!give_up_waiting || ts_ktable_waiting(L->reader)) &&
        o.status != TS_ORDER_VOIDED && !o.is_test) {
        *wait = true; /* the customer may arrive just after the order */
        return TS_OK;
    }
    return ts_map_order(L->mapper, &o, cust, &L->m);
}

/* Hands the mapped record to the engine (a full lane holds it). */
static presult_t submit(loop_t *L, rd_kafka_message_t *msg, uint64_t token, char *why,
                        size_t whysz) {
    ts_mapped_t *m = &L->m;
    ts_err_t rc = ts_engine_submit(L->engine, m, token, L->o->backfill, why, whysz);
    if (ts_err_retryable(rc)) return P_WAIT_LANE; /* full lane: hold, pause, retry */
    if (rc == TS_ERR_NOMEM) {
        log_kv(TS_LOG_ERROR, msg, "engine: %s", why);
        L->fatal = true;
    } else if (rc != TS_OK) {
        dead_letter(L, token, TS_REASON_KLAVIYO_REJECTED, why, m->account, m->route.outlet);
    } else if (m->warnings & TS_MAP_WARN_SMS_NOT_MOBILE) {
        sms_not_mobile(L, msg, m);
    }
    return P_DONE;
}

/* P_DONE when the record went somewhere (engine, dead letter, skipped);
 * otherwise it must be held: its customer is unknown yet, its account's
 * lane is full, or the schema registry is unavailable. */
static presult_t process(loop_t *L, rd_kafka_message_t *msg, uint64_t token, bool give_up_waiting) {
    char why[512];
    ts_mapped_t *m = &L->m;
    ts_arena_reset(L->arena);
    if (!msg->payload) return tombstone(L, msg, token, why, sizeof why);
    ts_err_t rc;
    ts_customer_t c;
    if (L->o->kind == TS_KIND_CUSTOMER) {
        rc = ts_decoder_decode(L->dec, msg->payload, msg->len, L->arena, &c, why, sizeof why);
        if (rc == TS_OK) rc = ts_map_customer(L->mapper, &c, m);
        if (rc == TS_OK) ts_deletes_remember(L->deletes, &c); /* DELETES */
    } else {
        bool wait = false;
        rc = decode_order(L, msg, give_up_waiting, &wait, why, sizeof why);
        if (wait) return P_WAIT_CUSTOMER;
    }
    if (rc != TS_OK) return decode_failed(L, msg, token, rc, why);
    if (m->dead_letter) {
        dead_letter(L, token, m->dead_letter, m->detail, m->route.account, m->route.outlet);
        return P_DONE;
    }
    /* a replay restricted to some outlets: skipped before any consent
     * decision (a --replay-consent state must not claim what was not sent) */
    if (!m->skipped && L->o->replay_outlets &&
        !outlet_in_list(L->o->replay_outlets, m->route.outlet))
        return skip(L, token);
    if (L->consent && !m->skipped) { /* decided once, when the record can be submitted */
        if (!ts_engine_has_room(L->engine, m->account)) return P_WAIT_LANE;
        if ((L->fatal = ts_state_decide(L->state, L->consent, &c, msg->partition, msg->offset,
                                        rd_kafka_message_timestamp(msg, NULL), token,
                                        &L->consent_opts, m, why, sizeof why) != TS_OK))
            return P_DONE;
    }
    if (m->skipped) return skip(L, token);
    return submit(L, msg, token, why, sizeof why);
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
        uint64_t version = ts_ktable_version(L->reader);
        skip |= !h->blocked && h->table_version == version && now < h->deadline;
        if (skip) {
            prev = h;
            pp = &h->next;
            continue;
        }
        h->table_version = version;
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

static bool token_revoked(void *opaque, uint64_t token) {
    const loop_t *L = opaque;
    /* a consent change whose state was flushed for the next owner (it will
     * not decide the record again): this member still delivers it */
    if (ts_state_has_write(L->state, token)) return false;
    return ts_offsets_user(L->offsets, token) == NULL;
}

/* Each member spends the share of every account's budget its partitions
 * carry (owned / all), so a group fills and does not overfill it. */
static void update_share(loop_t *L) {
    int all = L->n_parts > 0 ? L->n_parts : L->n_cap;
    if (L->n_owned > 0 && all > 0)
        ts_engine_set_share(L->engine, L->n_owned >= all ? 1.0 : (double)L->n_owned / all);
}

/* The group's committed offsets of a new assignment: the base of the lag
 * until the member stores offsets of its own. */
static void committed_at_assign(loop_t *L, rd_kafka_t *rk,
                                const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, q, 5000);
    for (int i = 0; i < q->cnt; i++) {
        part_t *ps = part_at(L, q->elems[i].partition);
        if (ps) ps->committed = !err && !q->elems[i].err ? q->elems[i].offset : -1;
    }
    rd_kafka_topic_partition_list_destroy(q);
}

/* The consent state of the assigned partitions, before any of their records. */
static void state_restore(loop_t *L, const rd_kafka_topic_partition_list_t *parts) {
    int32_t *ps = malloc(sizeof *ps * (size_t)(parts->cnt > 0 ? parts->cnt : 1));
    char err[512];
    if (!ps) {
        L->fatal = true;
        return;
    }
    for (int i = 0; i < parts->cnt; i++) ps[i] = parts->elems[i].partition;
    /* not ready while restoring: no record (no subscription) before the
     * state and Klaviyo's suppressions are read to their ends */
    L->state_restored = false;
    ts_admin_set_ready(L->admin, false);
    if (!ts_state_restore(L->state, ps, parts->cnt, 120000, err, sizeof err)) {
        L->state_restored = true;
    } else {
        ts_log(TS_LOG_ERROR, "state", NULL, "%s", err);
        L->fatal = true; /* deciding without the state could re-subscribe: stop */
    }
    free(ps);
}

static void on_state_ready(void *opaque, uint64_t token) { complete(opaque, token); }

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
        *ps = (part_t){.assigned = true, .paused = false, .end = ps->end, .m_lag = ps->m_lag};
    }
    ts_log(TS_LOG_INFO, "consumer", NULL, "assigned %d partition(s) of %s", parts->cnt, L->topic);
    if (L->replay) ts_replay_assign(L->replayer, rk, parts);
    if (L->state) state_restore(L, parts);
    committed_at_assign(L, rk, parts);
    rd_kafka_assign(rk, parts);
    L->assigned_once = true;
    L->full_paused =
        ts_offsets_inflight(L->offsets) >= (size_t)L->cfg->max_inflight_records || L->draining;
    for (int i = 0; i < parts->cnt; i++) part_sync_pause(L, parts->elems[i].partition, true);
    update_share(L);
}

/* A record of a partition being revoked (and of its current assignment:
 * the tracker still knows the token). */
static bool token_revoking(void *opaque, uint64_t token) {
    const loop_t *L = opaque;
    int32_t p = ts_offsets_token_partition(token);
    return p >= 0 && p < L->n_cap && L->parts[p].revoking &&
           ts_offsets_user(L->offsets, token) != NULL;
}

/* What the revoke takes back: the revoking partitions' records, except a
 * consent change whose state was flushed for the next owner (it will not
 * decide the record again): this member still delivers it. */
static bool token_withdrawable(void *opaque, uint64_t token) {
    const loop_t *L = opaque;
    return !ts_state_has_write(L->state, token) && token_revoking(opaque, token);
}

/* One turn of a revoke's drain: completions run here (ts_engine_poll /
 * ts_dlq_poll on this thread, as engine.h requires); the consumer queue is
 * not served (this runs inside the rebalance callback). */
static void drain_turn(loop_t *L) {
    ts_engine_poll(L->engine, 10);
    ts_dlq_poll(L->dlq);
    if (L->state) ts_state_poll(L->state);
}

/* Before a revoke gives partitions away, at most revoke_drain_ms: so that
 * the revoked partitions' records complete here and their offsets are
 * committed by this member, instead of being read and sent again by the
 * next owner. A partition's commit point is its first incomplete record,
 * and its records are spread over the accounts' lanes: a record merely
 * withdrawn from a slow lane would hold back the commit of later records
 * delivered by faster lanes, which the next owner would then re-send.
 * So, for the first half of the time, the revoked partitions' queued
 * parts are sent now (flush, as fast as the pacing allows) and awaited;
 * then what is still unsent is withdrawn (the next owner sends it, once)
 * and only the parts on the wire, and the dead letters, are awaited. A
 * part that fails retryably in the second half goes back to a retry list
 * and is withdrawn at the next turn. */
static void revoke_drain(loop_t *L) {
    int64_t start = ts_now_mono_ms(), end = start + L->revoke_drain_ms;
    int64_t send_end = start + L->revoke_drain_ms / 2;
    size_t withdrawn = 0, wire;
    ts_engine_flush(L->engine);
    while (ts_engine_unsettled(L->engine, token_revoking, L) && ts_now_mono_ms() < send_end &&
           !L->fatal)
        drain_turn(L);
    for (;;) {
        withdrawn += ts_engine_withdraw(L->engine, token_withdrawable, L);
        wire = ts_engine_on_wire(L->engine, token_revoking, L);
        if ((!wire && !ts_dlq_pending(L->dlq)) || ts_now_mono_ms() >= end || L->fatal) break;
        drain_turn(L);
    }
    char ctx[128];
    snprintf(ctx, sizeof ctx, "\"records_withdrawn\":%zu,\"parts_on_wire\":%zu,\"waited_ms\":%lld",
             withdrawn, wire, (long long)(ts_now_mono_ms() - start));
    ts_log(wire ? TS_LOG_WARN : TS_LOG_INFO, "consumer", ctx,
           wire ? "revoke: parts still on the wire after consumer.revoke_drain_ms (their records "
                  "will be sent again by the next owner)"
                : "revoke: revoked partitions drained");
}

/* Revoked or lost: stop taking work for these partitions; unless the
 * assignment was lost (the group has moved on: another member owns them
 * already and a commit would fail), withdraw their unsent parts and wait
 * a bounded time for the ones on the wire (revoke_drain). Then release
 * their held and in-flight records (late completions are ignored:
 * generations) and commit what is complete, synchronously. */
static void on_revoke(loop_t *L, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    bool lost = rd_kafka_assignment_lost(rk);
    if (L->state) ts_state_flush(L->state, 10000); /* the next owner restores our decisions */
    bool any = false;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        part_t *ps = part_at(L, p);
        drop_held_partition(L, p); /* never submitted: stays incomplete in the tracker */
        if (ps && ps->assigned) ps->revoking = any = true;
    }
    /* SIGTERM: ts_consumer_drain() already waited shutdown_grace_ms */
    if (any && !lost && !L->draining && L->revoke_drain_ms > 0) revoke_drain(L);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        part_t *ps = part_at(L, p);
        ts_offsets_revoke(L->offsets, p, release_msg, NULL);
        if (!ps || !ps->assigned) continue;
        if (ps->paused) L->n_paused--;
        ps->paused = false; /* unknown until the next assignment sets it */
        ps->assigned = false;
        ps->revoking = false;
        ps->n_blocked = 0;
        L->n_owned--;
        ts_metric_hide(ps->m_lag, true); /* not ours: another member reports it */
    }
    ts_metric_set(L->m_paused, (double)L->n_paused);
    /* their records' not-yet-sent parts belong to the next owner */
    size_t withdrawn = ts_engine_withdraw(L->engine, token_revoked, L);
    if (withdrawn) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "\"records\":%zu", withdrawn);
        ts_log(TS_LOG_INFO, "consumer", ctx, "withdrew unsent parts of revoked records");
    }
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

static void metrics_setup(loop_t *L) {
    ts_metrics_t *m = L->metrics;
    char lb[256];
    snprintf(lb, sizeof lb, "topic=\"%s\"", L->topic);
    L->m_consumed =
        ts_metrics_counter(m, "tillstream_records_consumed_total", "records consumed", lb);
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
    L->m_stalled = ts_metrics_gauge(m, "tillstream_consumer_stalled",
                                    "1 while the member owns work and completed nothing for "
                                    "consumer.stall_timeout_ms",
                                    lb);
    if (L->o->kind == TS_KIND_ORDER)
        L->m_table = ts_metrics_gauge(m, "tillstream_customer_table_customers",
                                      "customers in the customer table", NULL);
    if (L->o->kind == TS_KIND_CUSTOMER)
        L->m_sms_not_mobile = ts_metrics_counter(
            m, "tillstream_sms_consent_skipped_total",
            "SMS consent not sent: the phone is valid but cannot receive SMS (landline, "
            "toll-free, shared-cost...)",
            "reason=\"not_mobile\"");
}

static void kafka_check(loop_t *L);

/* Lag of an owned partition: records between what the member will commit
 * (its stored offset, else the group's committed offset at assignment,
 * else the log start) and the high watermark (cached: no I/O). Records in
 * flight or waiting count: lag is what is not done. */
static void lag_update(loop_t *L, int32_t p) {
    part_t *ps = &L->parts[p];
    int64_t lo, hi;
    if (!ps->assigned || rd_kafka_get_watermark_offsets(L->rk, L->topic, p, &lo, &hi) || hi < 0)
        return;
    if (!ps->m_lag) {
        char lb[256];
        snprintf(lb, sizeof lb, "topic=\"%s\",partition=\"%d\"", L->topic, p);
        ps->m_lag = ts_metrics_gauge(L->metrics, "tillstream_consumer_lag_records",
                                     "records between the committed (or stored) offset and the "
                                     "partition end, per owned partition",
                                     lb);
    }
    int64_t base = ts_offsets_committed(L->offsets, p);
    if (base < 0) base = ps->committed;
    if (base < 0) base = lo;
    if (base < 0) return;
    ts_metric_hide(ps->m_lag, false);
    ts_metric_set(ps->m_lag, (double)(hi > base ? hi - base : 0));
}

/* Every 5 s: consumer lag per assigned partition (cached watermarks, no I/O). */
static void metrics_tick(loop_t *L) {
    int64_t now = ts_now_mono_ms();
    if (!L->metrics || now < L->next_lag_ms) return;
    L->next_lag_ms = now + 5000;
    kafka_check(L);
    ts_metric_set(L->m_inflight, (double)ts_offsets_inflight(L->offsets));
    if (L->table) ts_metric_set(L->m_table, (double)ts_custtable_size(L->table));
    for (int p = 0; p < L->n_cap; p++) lag_update(L, p);
}

/* A member that owns work and completed nothing for stall_timeout_ms says
 * so once (a liveness probe or an alert acts on the gauge). */
static void stall_check(loop_t *L, int64_t now) {
    if (!L->last_progress_ms) L->last_progress_ms = now; /* the clock starts with the loop */
    bool owns_work = L->n_owned > 0 && (ts_offsets_inflight(L->offsets) > 0 || L->n_held > 0);
    if (L->completed != L->progress_seen || !owns_work) {
        L->progress_seen = L->completed;
        L->last_progress_ms = now;
        if (L->stalled) {
            ts_log(TS_LOG_INFO, L->o->prog, NULL, "progressing again");
            ts_metric_set(L->m_stalled, 0);
        }
        L->stalled = false;
        return;
    }
    if (L->stalled || now - L->last_progress_ms < L->cfg->stall_timeout_ms) return;
    L->stalled = true;
    ts_metric_set(L->m_stalled, 1);
    char ctx[160];
    snprintf(ctx, sizeof ctx, "\"partitions\":%d,\"inflight\":%zu,\"held\":%zu,\"stalled_s\":%lld",
             L->n_owned, ts_offsets_inflight(L->offsets), L->n_held,
             (long long)((now - L->last_progress_ms) / 1000));
    ts_log(TS_LOG_ERROR, L->o->prog, ctx,
           "stalled: owns work and completed nothing for %d ms (consumer.stall_timeout_ms)",
           L->cfg->stall_timeout_ms);
}

static bool at_end(loop_t *L) {
    if (!L->assigned_once || L->n_held || ts_engine_pending(L->engine) || ts_dlq_pending(L->dlq))
        return false;
    if (ts_offsets_inflight(L->offsets)) return false;
    for (int p = 0; p < L->n_parts && p < L->n_cap; p++)
        if (L->parts[p].end > 0 && !L->parts[p].reached) return false;
    return true;
}

static void print_summary(loop_t *L) {
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init_obj(&w, &b);
    ts_jw_kv_int(&w, "consumed", (int64_t)L->consumed);
    ts_dlq_stats_t dst;
    ts_dlq_stats(L->dlq, &dst);
    ts_jw_kv_int(&w, "dead_lettered", (int64_t)dst.written);
    ts_jw_kv_int(&w, "skipped", (int64_t)L->skipped);
    ts_jw_key(&w, "dead_letter_reasons");
    ts_jw_obj_open(&w);
    for (int r = 1; r < TS_REASON__COUNT; r++)
        if (dst.by_reason[r]) {
            ts_jw_key(&w, ts_reason_name((ts_reason_t)r));
            ts_jw_int(&w, (int64_t)dst.by_reason[r]);
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
        ts_jw_kv_int(&w, "events_accepted", (int64_t)st.events_accepted);
        ts_jw_kv_int(&w, "profiles_accepted", (int64_t)st.profiles_accepted);
        ts_jw_kv_int(&w, "requests", (int64_t)st.requests);
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
    ts_dlq_opts_t o = {.cfg = L->cfg,
                       .prog = L->o->prog,
                       .run = L->group_id,
                       .topic = L->topic,
                       .on_done = on_dead_lettered,
                       .opaque = L,
                       .metrics = L->metrics};
    return ts_dlq_new(&o, &L->dlq, err, errsz);
}

/* librdkafka's global errors: all brokers down makes the member not ready
 * until a metadata request answers again (kafka_check). */
static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    loop_t *L = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (!L->kafka_down) ts_log(TS_LOG_WARN, "consumer", NULL, "kafka unreachable: %s", reason);
        L->kafka_down = true;
        return;
    }
    ts_log(err == RD_KAFKA_RESP_ERR__TRANSPORT ? TS_LOG_DEBUG : TS_LOG_WARN, "consumer", NULL,
           "kafka: %s", reason);
}

/* While Kafka is unreachable: one short metadata request per check. */
static void kafka_check(loop_t *L) {
    const rd_kafka_metadata_t *md;
    if (!L->kafka_down || rd_kafka_metadata(L->rk, 0, NULL, &md, 200)) return;
    rd_kafka_metadata_destroy(md);
    L->kafka_down = false;
    ts_log(TS_LOG_INFO, "consumer", NULL, "kafka reachable again");
}

static ts_err_t open_group_consumer(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    rd_kafka_conf_t *cconf = ts_kconf_new(cfg, TS_KCONF_CONSUMER, err, errsz);
    if (!cconf) return TS_ERR_CONFIG;
    rd_kafka_conf_set(cconf, "group.id", L->group_id, NULL, 0);
    rd_kafka_conf_set(cconf, "enable.auto.offset.store", "false", NULL, 0);
    rd_kafka_conf_set(cconf, "enable.auto.commit", "true", NULL, 0);
    /* stored offsets reach the broker within a second (fewer re-sends after a
     * crash); a user's own value wins */
    if (!ts_kconf_user_set(cfg, "auto.commit.interval.ms"))
        rd_kafka_conf_set(cconf, "auto.commit.interval.ms", "1000", NULL, 0);
    rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(cconf, "enable.partition.eof", "true", NULL, 0);
    /* eager assignment: see docs/consumers.md (librdkafka 2.0.2 close-path bugs) */
    char probe[64];
    size_t probe_sz = sizeof probe;
    if (rd_kafka_conf_get(cconf, "partition.assignment.strategy", probe, &probe_sz) ==
            RD_KAFKA_CONF_OK &&
        strstr(probe, "cooperative") == NULL)
        rd_kafka_conf_set(cconf, "partition.assignment.strategy", "range,roundrobin", NULL, 0);
    /* the revoke's drain keeps the group waiting for this member's rejoin,
     * which the coordinator allows for max.poll.interval.ms (the rebalance
     * timeout): stay well inside it */
    L->revoke_drain_ms = cfg->revoke_drain_ms;
    probe_sz = sizeof probe;
    if (rd_kafka_conf_get(cconf, "max.poll.interval.ms", probe, &probe_sz) == RD_KAFKA_CONF_OK &&
        atoi(probe) / 2 < L->revoke_drain_ms)
        L->revoke_drain_ms = atoi(probe) / 2;
    rd_kafka_conf_set_rebalance_cb(cconf, on_rebalance);
    rd_kafka_conf_set_error_cb(cconf, on_kafka_error);
    rd_kafka_conf_set_opaque(cconf, L);
    char why[512];
    if (!(L->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, why, sizeof why)))
        return fail(TS_ERR_INTERNAL, err, errsz, "consumer", why);
    ts_kconf_creds_watch(L->cfg, L->rk);
    rd_kafka_poll_set_consumer(L->rk);
    return TS_OK;
}

/* The topic's partitions and, for exit-at-end and replays, the end of
 * each (the high watermark now, or the first record at --replay-to). */
/* Replay progress: what of partition p is known complete. */
static int64_t replay_done_upto(void *opaque, int32_t p) {
    loop_t *L = opaque;
    part_t *ps = p < L->n_cap ? &L->parts[p] : NULL;
    if (ps && ps->reached && ts_offsets_partition_inflight(L->offsets, p) == 0) return ps->end;
    return ts_offsets_committed(L->offsets, p);
}

static ts_err_t capture_targets(loop_t *L, char *err, size_t errsz) {
    int64_t *ends = NULL;
    int n = 0;
    bool need = L->o->exit_at_end || L->replay;
    if (ts_ktopic_ends(L->rk, L->topic, &ends, &n)) {
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
    if (L->replay) ts_replay_window_ends(L->replayer, L->rk, ends, n);
    for (int p = 0; p < n && need; p++) L->parts[p].end = ends[p];
    free(ends);
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

/* The offline pipeline: arena, offsets, tables, router, mapper, decoders. */
static ts_err_t setup_pipeline(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    const ts_consumer_opts_t *o = L->o;
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
    return TS_OK;
}

/* The engine, with the profile ids' producer when topics.profiles is set. */
static ts_err_t setup_engine(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    char why[512];
    ts_engine_opts_t eo = {.cfg = cfg, .on_done = on_delivered, .opaque = L, .metrics = L->metrics};
    if (cfg->topic_profiles && L->o->kind == TS_KIND_CUSTOMER) { /* PROFILES: topics.profiles */
        rd_kafka_conf_t *pc = ts_kconf_new(cfg, TS_KCONF_PRODUCER, why, sizeof why);
        if (!pc || !(L->profiles_out = ts_profiles_out_new(pc, cfg, cfg->topic_profiles, L->metrics,
                                                           why, sizeof why)))
            return fail(TS_ERR_CONFIG, err, errsz, "topics.profiles", why);
        eo.on_profile = ts_profiles_out_cb;
        eo.profile_opaque = L->profiles_out;
    }
    if (!(L->engine = ts_engine_new(&eo, why, sizeof why)))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    return TS_OK;
}

/* Customers only: consent state (docs/consent.md) and customers.on_delete
 * (neither acts in replays: history's consent and tombstones were followed;
 * except the consent state of a --replay-consent replay, which decides
 * consent as live does). */
static ts_err_t setup_customer_state(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    char why[512];
    bool replay = L->o->replay_from_ms != TS_REPLAY_NONE;
    bool keep_state = !replay || L->o->replay_consent;
    L->consent_opts = (ts_consent_opts_t){.replay = replay, .replay_consent = L->o->replay_consent};
    if (!(L->consent = ts_consent_table_new(cfg, L->metrics, why, sizeof why)))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    ts_state_opts_t so = {.cfg = cfg,
                          .table = L->consent,
                          .group_id = L->group_id,
                          .ready = on_state_ready,
                          .opaque = L,
                          .metrics = L->metrics};
    if (keep_state && !(L->state = ts_state_new(&so, why, sizeof why)))
        return fail(TS_ERR_CONFIG, err, errsz, "", why);
    /* the group is joined once tillstream-suppressions' first pass over
     * every account is in Kafka (issue 15: start_consuming) */
    ts_metric_t *waiting = ts_metrics_gauge(
        L->metrics, "tillstream_consent_waiting_for_suppressions",
        "1 while the consumer waits for tillstream-suppressions' first full pass over an account",
        NULL);
    ts_firstpass_opts_t fo = {.cfg = cfg, .group_id = L->group_id, .waiting = waiting};
    if (keep_state && cfg->customers_wait_for_suppressions &&
        !(L->firstpass = ts_firstpass_new(&fo, why, sizeof why)))
        return fail(TS_ERR_NOMEM, err, errsz, "", why);
    if (replay) return TS_OK;
    why[0] = 0;
    if (!(L->deletes = ts_deletes_new(cfg, L->mapper, L->metrics, why, sizeof why)))
        return why[0] ? fail(TS_ERR_NOMEM, err, errsz, "customers.on_delete", why) : TS_OK;
    rd_kafka_conf_t *dc = ts_kconf_new(cfg, TS_KCONF_CONSUMER, why, sizeof why);
    if (!dc || ts_deletes_restore(L->deletes, dc, L->topic, L->dec, why, sizeof why))
        return fail(TS_ERR_IO, err, errsz, "customers.on_delete", why);
    return TS_OK;
}

static ts_err_t consumer_setup(loop_t *L, char *err, size_t errsz) {
    const ts_config_t *cfg = L->cfg;
    const ts_consumer_opts_t *o = L->o;
    ts_err_t rc;
    if ((rc = setup_pipeline(L, err, errsz))) return rc;
    metrics_setup(L);
    if ((rc = open_admin(L, err, errsz))) return rc;
    if ((rc = setup_engine(L, err, errsz))) return rc;
    if (o->kind == TS_KIND_CUSTOMER && (rc = setup_customer_state(L, err, errsz))) return rc;
    if ((rc = open_dead_letter_producer(L, err, errsz))) return rc;
    if (o->kind == TS_KIND_ORDER) {
        ts_ktable_opts_t to = {.cfg = cfg,
                               .table = L->table,
                               .dec = L->table_dec,
                               .on_registry = on_table_registry,
                               .opaque = L};
        if ((rc = ts_ktable_new(&to, &L->reader, err, errsz))) return rc;
    }
    if ((rc = open_group_consumer(L, err, errsz))) return rc;
    L->replay = o->replay_from_ms != TS_REPLAY_NONE;
    ts_replay_opts_t ro = {.cfg = cfg,
                           .topic = L->topic,
                           .from_ms = o->replay_from_ms,
                           .to_ms = o->replay_to_ms,
                           .engine = L->engine,
                           .metrics = L->metrics,
                           .done_upto = replay_done_upto,
                           .opaque = L,
                           .bar = o->progress_bar};
    if (L->replay && !(L->replayer = ts_replay_new(&ro)))
        return ts_seterr(err, errsz, TS_ERR_NOMEM, "out of memory");
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
 * customers (customers.wait_for_suppressions): the poller's first full
 * pass over every account is in Kafka; then subscribe. false while still
 * restoring or waiting. */
static bool start_consuming(loop_t *L) {
    /* customers: not before the poller's first pass (docs/consent.md,
     * "First deployment"); not ready meanwhile (not subscribed) */
    if (L->firstpass) {
        if (!ts_firstpass_poll(L->firstpass, 100)) {
            ts_admin_heartbeat(L->admin);
            return false;
        }
        ts_firstpass_destroy(L->firstpass);
        L->firstpass = NULL;
    }
    if (L->o->kind == TS_KIND_ORDER && !ts_ktable_ready(L->reader)) {
        if (!L->restore_logged)
            ts_log(TS_LOG_INFO, "orders", NULL, "restoring the customer table from %s",
                   L->cfg->topic_customers);
        L->restore_logged = true;
        ts_ktable_poll(L->reader, 100);
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

/* Too many records in flight: pause fetching (the tracker has room for
 * what was fetched before the pause) and keep polling, which keeps the
 * membership alive; resume at half. Returns the limit. */
static size_t inflight_gate(ts_consumer_t *L) {
    size_t inflight = ts_offsets_inflight(L->offsets);
    size_t limit = (size_t)L->cfg->max_inflight_records;
    if (!L->full_paused && inflight >= limit)
        pause_all(L, true);
    else if (L->full_paused && inflight < limit / 2)
        pause_all(L, false);
    return limit;
}

/* Up to POLL_BATCH records per round, then the engine, the dead-letter
 * producer and the rest once: serving curl (one poll(2) per transfer) and
 * the clocks per record cost more than the record itself (issue 14,
 * docs/benchmarks.md). Stops early when a record had to be held or the
 * in-flight limit is reached, so the gate sees it next round. */
static void fetch_round(ts_consumer_t *L, bool busy, size_t limit) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(L->rk, busy ? 5 : 100);
    for (int n = 0; msg; msg = rd_kafka_consumer_poll(L->rk, 0)) {
        on_message(L, msg);
        if (++n >= POLL_BATCH || L->n_held || L->fatal || L->at_end ||
            ts_offsets_inflight(L->offsets) >= limit)
            break;
    }
}

/* Once per round: the table reader, held records, the engine, the
 * dead-letter producer, the consent state, health, metrics and clocks. */
static void service_round(ts_consumer_t *L) {
    if (L->reader) ts_ktable_poll(L->reader, 0);
    if (L->n_held) retry_held(L);
    ts_engine_poll(L->engine, 0);
    ts_dlq_poll(L->dlq);
    if (L->state) ts_state_poll(L->state);
    ts_admin_heartbeat(L->admin);
    /* ready = can serve: the table is restored and the group joined (with
     * or without partitions), the consent state and the suppressions are
     * read (customers), and Kafka answers */
    ts_admin_set_ready(L->admin,
                       L->subscribed && !L->kafka_down && (!L->state || L->state_restored));
    metrics_tick(L);
    stall_check(L, ts_now_mono_ms());
    ts_kconf_creds_check(L->cfg, ts_now_mono_ms()); /* SASL credentials rotated in files */
    if (L->replay) ts_replay_progress(L->replayer, false);
}

bool ts_consumer_poll(ts_consumer_t *L) {
    if (L->fatal || L->at_end) return false;
    if (!L->subscribed && !start_consuming(L)) return !L->fatal;
    bool busy = ts_engine_pending(L->engine) > 0 || L->n_held > 0;
    fetch_round(L, busy, inflight_gate(L));
    service_round(L);
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
    while ((ts_engine_pending(L->engine) || ts_dlq_pending(L->dlq) ||
            (L->state && ts_state_pending(L->state))) &&
           ts_now_mono_ms() < grace_end && !L->fatal) {
        ts_engine_poll(L->engine, 20);
        ts_dlq_poll(L->dlq);
        if (L->state) ts_state_poll(L->state);
        /* serve the consumer queue (never rd_kafka_poll() on a consumer):
         * records fetched before the pause are left for the next owner */
        rd_kafka_message_t *late = rd_kafka_consumer_poll(L->rk, 0);
        if (late) rd_kafka_message_destroy(late);
    }
    int64_t left = grace_end - ts_now_mono_ms();
    ts_dlq_flush(L->dlq, left > 0 ? (int)left : 0);
    if (ts_engine_pending(L->engine))
        ts_log(TS_LOG_WARN, L->o->prog, NULL,
               "%zu record(s) not delivered within the grace period: their "
               "offsets are not committed and they will be re-read",
               ts_engine_pending(L->engine));
    ts_err_t rc = TS_OK;
    /* with Kafka unreachable a synchronous commit would outlast the grace:
     * what is stored is committed by the next owner's re-read instead */
    rd_kafka_resp_err_t cerr = L->kafka_down   ? RD_KAFKA_RESP_ERR__TRANSPORT
                               : L->subscribed ? rd_kafka_commit(L->rk, NULL, 0)
                                               : 0;
    if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ts_log(TS_LOG_WARN, L->o->prog, NULL, "final commit: %s", rd_kafka_err2str(cerr));
        rc = ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "final commit: %s",
                       rd_kafka_err2str(cerr));
    }
    if (L->replay) ts_replay_progress(L->replayer, true);
    print_summary(L);
    if (L->fatal) rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "stopped on an error (logged)");
    return rc;
}

void ts_consumer_stats(const ts_consumer_t *L, ts_consumer_stats_t *out) {
    ts_dlq_stats_t dst;
    ts_dlq_stats(L->dlq, &dst);
    *out = (ts_consumer_stats_t){.stalled = L->stalled,
                                 .owned = (size_t)L->n_owned,
                                 .paused = (size_t)L->n_paused,
                                 .inflight = ts_offsets_inflight(L->offsets),
                                 .held = L->n_held,
                                 .consumed = L->consumed,
                                 .completed = L->completed,
                                 .dead_lettered = dst.written,
                                 .at_end = L->at_end};
}

int ts_consumer_admin_port(const ts_consumer_t *L) {
    return L->admin ? ts_admin_port(L->admin) : -1;
}

void ts_consumer_destroy(ts_consumer_t *L) {
    if (!L) return;
    if (L->rk && !L->kafka_down) {
        /* the revoke in close releases tracked messages and commits */
        rd_kafka_consumer_close(L->rk);
        ts_kconf_creds_unwatch(L->rk);
        rd_kafka_destroy(L->rk);
        L->rk = NULL;
    }
    L->held_tail = NULL;
    while (L->held) {
        held_t *h = L->held;
        L->held = h->next;
        free(h);
    }
    for (int p = 0; p < L->n_cap && L->offsets; p++)
        ts_offsets_revoke(L->offsets, p, release_msg, NULL);
    /* Kafka unreachable: closing would wait for the coordinator well past
     * the grace; the broker expires the session by itself. The messages
     * are released above: rd_kafka_destroy() waits for them. */
    if (L->rk) rd_kafka_destroy_flags(L->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    ts_ktable_destroy(L->reader);
    ts_dlq_destroy(L->dlq);
    ts_state_destroy(L->state);
    ts_firstpass_destroy(L->firstpass);
    ts_consent_table_destroy(L->consent);
    ts_replay_destroy(L->replayer);
    ts_engine_destroy(L->engine);
    ts_profiles_out_destroy(L->profiles_out); /* PROFILES */
    ts_deletes_destroy(L->deletes);           /* DELETES */
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
    free(L->parts);
    free(L);
}
