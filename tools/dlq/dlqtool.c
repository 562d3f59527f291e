/*
 * dlqtool.c - tillstream-dlq: working the dead-letter topic the consumers
 * write (docs/dead-letter.md) and the Home Outlet audit of the customers
 * topic.
 *
 * Every command reads with one librdkafka client whose logs go through the
 * JSON logger. Reads are bounded by the end offsets captured when a
 * partition is assigned (partition EOF), except `tail`, which follows.
 * Redrive works in three passes over what it read: it selects the dead
 * letters not yet done (the compacted bookkeeping topic), drops copies of
 * one source record, asks each source partition whether a newer record of
 * the same key exists (SUPERSEDED), and only then re-produces and records
 * what it did.
 */
#include "tillstream/dlqtool.h"
#include "tillstream/kconf.h"
#include "tillstream/ktopic.h"
#include "tillstream/hash.h"
#include "tillstream/dlhdr.h"

#include <cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tillstream/decode.h"
#include "tillstream/log.h"
#include "tillstream/route.h"

#define LOGGER "dlq"

/* ---- a string map (key -> int64), keys owned ------------------------------------- */

typedef struct {
    char *key; /* NULL = empty slot */
    size_t len;
    int64_t val;
} mslot_t;

typedef struct {
    mslot_t *slots;
    size_t cap, n;
} smap_t;

static uint64_t fnv(const void *k, size_t n) { return ts_hash_bytes(k, n); }

static mslot_t *smap_find(const smap_t *m, const void *k, size_t n) {
    if (!m->cap) return NULL;
    for (size_t j = fnv(k, n) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        mslot_t *s = &m->slots[j];
        if (!s->key) return NULL;
        if (s->len == n && !memcmp(s->key, k, n)) return s;
    }
}

/* Returns the slot for k (created with `init` when new), NULL when out of memory. */
static mslot_t *smap_put(smap_t *m, const void *k, size_t n, int64_t init, bool *created) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        mslot_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return NULL;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key) continue;
            size_t j = fnv(m->slots[i].key, m->slots[i].len) & (nc - 1);
            while (ns[j].key) j = (j + 1) & (nc - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    size_t j = fnv(k, n) & (m->cap - 1);
    while (m->slots[j].key && (m->slots[j].len != n || memcmp(m->slots[j].key, k, n)))
        j = (j + 1) & (m->cap - 1);
    if (created) *created = !m->slots[j].key;
    if (!m->slots[j].key) {
        if (!(m->slots[j].key = malloc(n + 1))) return NULL;
        memcpy(m->slots[j].key, k, n);
        m->slots[j].key[n] = '\0';
        m->slots[j].len = n;
        m->slots[j].val = init;
        m->n++;
    }
    return &m->slots[j];
}

static void smap_free(smap_t *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    *m = (smap_t){0};
}

/* ---- small helpers --------------------------------------------------------------- */

static void bump(cJSON *obj, const char *key) {
    cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(obj, key, 1);
}

static const char *header(rd_kafka_headers_t *h, const char *name, char *buf, size_t bufsz) {
    const void *v;
    size_t n;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v) return "(none)";
    snprintf(buf, bufsz, "%.*s", (int)(n < bufsz - 1 ? n : bufsz - 1), (const char *)v);
    return buf;
}

static bool has_header(rd_kafka_headers_t *h, const char *name) {
    const void *v;
    size_t n;
    return h && !rd_kafka_header_get_last(h, name, &v, &n);
}

static void print_table(FILE *out, const char *title, const cJSON *obj) {
    fprintf(out, "\n%s\n", title);
    for (const cJSON *it = obj->child; it; it = it->next)
        fprintf(out, "  %-32s %10.0f\n", it->string, it->valuedouble);
}

static void iso(int64_t ms, char *buf, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --json: the document on one line */
static void print_json(FILE *out, const cJSON *doc) {
    char *s = cJSON_PrintUnformatted(doc);
    fprintf(out, "%s\n", s ? s : "null");
    free(s);
}

/* ---- the Kafka client --------------------------------------------------------------- */

typedef void dr_fn(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* A consumer (manual assignment, never commits) or a producer for cfg's
 * cluster; NULL with an error logged. A producer's message.max.bytes is
 * raised to `max_message` when that is larger and the user did not set it. */
static rd_kafka_t *client_new_group(const ts_config_t *cfg, rd_kafka_type_t type, dr_fn *dr,
                                    void *opaque, const char *group, size_t max_message) {
    char err[512];
    /* the consumers' one conf builder: properties verbatim, JSON logs */
    rd_kafka_conf_t *conf = ts_kconf_new(
        cfg, type == RD_KAFKA_PRODUCER ? TS_KCONF_PRODUCER : TS_KCONF_CONSUMER, err, sizeof err);
    if (!conf) {
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "%s", err);
        return NULL;
    }
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(conf, "group.id", group ? group : "tillstream-dlq-reader", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        /* an offset below the log start (retention) reads from the start, never skips */
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "65536", NULL, 0);
    } else {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
        if (max_message > 1000000 && !ts_kconf_user_set(cfg, "message.max.bytes")) {
            char v[24];
            snprintf(v, sizeof v, "%zu", max_message < 1000000000 ? max_message : 1000000000);
            rd_kafka_conf_set(conf, "message.max.bytes", v, NULL, 0);
        }
        if (dr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
        rd_kafka_conf_set_opaque(conf, opaque);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) ts_log(TS_LOG_ERROR, LOGGER, NULL, "kafka client: %s", err);
    return rk;
}

static rd_kafka_t *client_new(const ts_config_t *cfg, rd_kafka_type_t type, dr_fn *dr,
                              void *opaque) {
    return client_new_group(cfg, type, dr, opaque, NULL, 0);
}

/* The partition count of `topic`: 0 ok (*parts = 0 when the topic does
 * not exist), 1 when the cluster cannot be reached (logged). */
static int partitions_of(const ts_config_t *cfg, rd_kafka_t *rk, const char *topic, int *parts) {
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    *parts = 0;
    if (e) {
        const char *bs = "(unset)";
        for (size_t i = 0; i < cfg->n_kafka; i++)
            if (!strcmp(cfg->kafka[i].key, "bootstrap.servers")) bs = cfg->kafka[i].value;
        char ctx[320];
        snprintf(ctx, sizeof ctx, "\"topic\":\"%.200s\",\"bootstrap_servers\":\"%.80s\"", topic,
                 bs);
        ts_log(TS_LOG_ERROR, LOGGER, ctx, "cannot reach the Kafka cluster: %s",
               rd_kafka_err2str(e));
        return 1;
    }
    if (md->topic_cnt == 1 && !md->topics[0].err) *parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* fn's answer: 0 go on, READ_STOP stop reading (not an error), else an exit code. */
#define READ_STOP (-1)
typedef int (*rec_fn)(void *opaque, rd_kafka_message_t *m);

/* Reads `topic` from `start` (one offset per partition, or NULL: from the
 * beginning; RD_KAFKA_OFFSET_END for tail) to the end offsets of the
 * moment of assignment (or forever with `follow`). A missing topic is an
 * error unless `missing_ok` (then nothing is read). Returns 0 or an exit code. */
static int read_topic(const ts_config_t *cfg, rd_kafka_t *rk, const char *topic,
                      const int64_t *start, int n_start, bool follow, bool missing_ok, rec_fn fn,
                      void *opaque) {
    int parts;
    if (partitions_of(cfg, rk, topic, &parts)) return 1;
    if (!parts) {
        if (missing_ok) return 0;
        char ctx[256];
        snprintf(ctx, sizeof ctx, "\"topic\":\"%.200s\"", topic);
        ts_log(TS_LOG_ERROR, LOGGER, ctx, "topic does not exist");
        return 1;
    }
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        int64_t o = start && p < n_start ? start[p] : RD_KAFKA_OFFSET_BEGINNING;
        if (o == RD_KAFKA_OFFSET_INVALID) continue; /* not to be read */
        rd_kafka_topic_partition_list_add(pl, topic, p)->offset = o;
    }
    int remaining = pl->cnt, rc = 0;
    if (remaining) rd_kafka_assign(rk, pl);
    while ((remaining > 0 || (follow && pl->cnt)) && rc == 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!follow) { /* each partition reports EOF once per reach of its end */
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(pl, topic, m->partition);
                if (tp && tp->err == 0) {
                    tp->err = RD_KAFKA_RESP_ERR__PARTITION_EOF;
                    remaining--;
                }
            }
        } else if (m->err) {
            char ctx[256];
            snprintf(ctx, sizeof ctx, "\"topic\":\"%.200s\",\"partition\":%d", topic,
                     (int)m->partition);
            ts_log(TS_LOG_ERROR, LOGGER, ctx, "read: %s", rd_kafka_message_errstr(m));
            if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
                m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                rc = 1;
        } else {
            rc = fn(opaque, m);
        }
        rd_kafka_message_destroy(m);
    }
    if (rc == READ_STOP) rc = 0;
    rd_kafka_assign(rk, NULL);
    rd_kafka_topic_partition_list_destroy(pl);
    return rc;
}

/* ---- filters -------------------------------------------------------------------------- */

static bool matches(const ts_dlqtool_opts_t *o, rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    char buf[256];
    if (o->reason && strcmp(header(h, TS_DLH_REASON, buf, sizeof buf), o->reason)) return false;
    if (o->outlet && strcmp(header(h, TS_DLH_OUTLET, buf, sizeof buf), o->outlet)) return false;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (o->since_ms && ts < o->since_ms) return false;
    if (o->until_ms && ts >= o->until_ms) return false;
    return true;
}

/* The source coordinates "topic|partition|offset" of a dead letter, or its
 * own coordinates when it has none (then it is only a copy of itself). */
static size_t source_id(rd_kafka_headers_t *h, const rd_kafka_message_t *m, char *buf, size_t n) {
    char t[256], p[32], o[32];
    if (!has_header(h, TS_DLH_SOURCE_TOPIC) || !has_header(h, TS_DLH_SOURCE_OFFSET))
        return (size_t)snprintf(buf, n, "(dead letter)|%d|%lld", (int)m->partition,
                                (long long)m->offset);
    return (size_t)snprintf(buf, n, "%s|%s|%s", header(h, TS_DLH_SOURCE_TOPIC, t, sizeof t),
                            header(h, TS_DLH_SOURCE_PARTITION, p, sizeof p),
                            header(h, TS_DLH_SOURCE_OFFSET, o, sizeof o));
}

/* ---- stats ------------------------------------------------------------------------------ */

typedef struct {
    cJSON *by_reason, *by_outlet, *by_account, *by_topic, *by_day, *by_run, *records_by_reason,
        *copies_by_reason;
    smap_t seen; /* source id + reason */
    long total, distinct;
    int64_t oldest, newest;
    int oom;
} stats_t;

static int stats_one(void *opaque, rd_kafka_message_t *m) {
    stats_t *st = opaque;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    char buf[256], id[640], reason[128];
    header(h, TS_DLH_REASON, reason, sizeof reason);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (st->oldest < 0 || ts < st->oldest) st->oldest = ts;
    if (ts > st->newest) st->newest = ts;
    st->total++;
    bump(st->records_by_reason, reason);
    if (has_header(h, TS_DLH_RUN)) bump(st->by_run, header(h, TS_DLH_RUN, buf, sizeof buf));
    size_t n = source_id(h, m, id, sizeof id);
    n += (size_t)snprintf(id + n, sizeof id - n, "|%s", reason);
    bool created;
    if (!smap_put(&st->seen, id, n, 0, &created)) return st->oom = 1;
    if (!created) {
        bump(st->copies_by_reason, reason);
        return 0;
    }
    /* the tables count distinct source records: what there is to fix */
    st->distinct++;
    bump(st->by_reason, reason);
    bump(st->by_outlet, header(h, TS_DLH_OUTLET, buf, sizeof buf));
    bump(st->by_account, header(h, TS_DLH_ACCOUNT, buf, sizeof buf));
    bump(st->by_topic, header(h, TS_DLH_SOURCE_TOPIC, buf, sizeof buf));
    char day[16];
    time_t secs = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    bump(st->by_day, day);
    return 0;
}

int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out) {
    rd_kafka_t *rk = client_new(cfg, RD_KAFKA_CONSUMER, NULL, NULL);
    if (!rk) return 1;
    cJSON *root = cJSON_CreateObject();
    stats_t st = {
        .by_reason = cJSON_AddObjectToObject(root, "by_reason"),
        .by_outlet = cJSON_AddObjectToObject(root, "by_outlet"),
        .by_account = cJSON_AddObjectToObject(root, "by_account"),
        .by_topic = cJSON_AddObjectToObject(root, "by_source_topic"),
        .by_day = cJSON_AddObjectToObject(root, "by_day"),
        .by_run = cJSON_AddObjectToObject(root, "records_by_run"),
        .records_by_reason = cJSON_AddObjectToObject(root, "records_by_reason"),
        .copies_by_reason = cJSON_AddObjectToObject(root, "copies_by_reason"),
        .oldest = -1,
        .newest = -1,
    };
    const char *topic = cfg->topic_dead_letter;
    int rc = read_topic(cfg, rk, topic, NULL, 0, false, false, stats_one, &st);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (st.oom) rc = 1;
    if (rc) { /* no partial counts: they would read as the truth */
        smap_free(&st.seen);
        cJSON_Delete(root);
        return rc;
    }
    cJSON_AddNumberToObject(root, "total", (double)st.total);
    cJSON_AddNumberToObject(root, "distinct", (double)st.distinct);
    cJSON_AddNumberToObject(root, "copies", (double)(st.total - st.distinct));
    char t1[40] = "", t2[40] = "";
    if (st.oldest >= 0) {
        iso(st.oldest, t1, sizeof t1);
        iso(st.newest, t2, sizeof t2);
        cJSON_AddStringToObject(root, "oldest", t1);
        cJSON_AddStringToObject(root, "newest", t2);
    }
    cJSON_AddStringToObject(root, "topic", topic);
    if (json) {
        print_json(out, root);
    } else {
        fprintf(out,
                "dead-letter topic %s: %ld record(s), %ld distinct (source record + reason), %ld "
                "cop%s%s%s%s%s\n",
                topic, st.total, st.distinct, st.total - st.distinct,
                st.total - st.distinct == 1 ? "y" : "ies", st.oldest >= 0 ? ", oldest " : "", t1,
                st.oldest >= 0 ? ", newest " : "", t2);
        print_table(out, "by reason (distinct)", st.by_reason);
        if (st.total > st.distinct) print_table(out, "copies by reason", st.copies_by_reason);
        print_table(out, "by outlet (distinct)", st.by_outlet);
        print_table(out, "by account (distinct)", st.by_account);
        print_table(out, "by source topic (distinct)", st.by_topic);
        print_table(out, "by day (UTC, distinct)", st.by_day);
        if (st.by_run->child) print_table(out, "records by run", st.by_run);
    }
    smap_free(&st.seen);
    cJSON_Delete(root);
    return 0;
}

/* ---- decoded records as JSON (the field names of schemas/ *.avsc) ------------------ */

static void add_str(cJSON *o, const char *name, const char *v) {
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static void add_tri(cJSON *o, const char *name, ts_tri_t t) {
    if (t == TS_TRI_UNKNOWN)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddBoolToObject(o, name, t == TS_TRI_TRUE);
}

static void add_time(cJSON *o, const char *name, int64_t ms, bool present) {
    char buf[40];
    if (!present || ts_time_format_iso8601(ms, buf, sizeof buf) <= 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddStringToObject(o, name, buf);
}

static void add_dec(cJSON *o, const char *name, ts_decimal_t d) {
    char buf[48];
    if (!d.present || ts_decimal_format(d, buf, sizeof buf) <= 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddStringToObject(o, name, buf);
}

/* One string or decimal field of a record, by its schema name and its
 * place in the struct: the record-to-JSON field lists below are tables. */
typedef struct {
    const char *name;
    bool dec; /* a ts_decimal_t; else a const char * (NULL: null) */
    size_t off;
} field_t;

#define F_STR(T, m)                                                                                \
    { #m, false, offsetof(T, m) }
#define F_DEC(T, m)                                                                                \
    { #m, true, offsetof(T, m) }

static void add_fields(cJSON *o, const void *rec, const field_t *f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *p = (const char *)rec + f[i].off;
        if (f[i].dec)
            add_dec(o, f[i].name, *(const ts_decimal_t *)(const void *)p);
        else
            add_str(o, f[i].name, *(const char *const *)(const void *)p);
    }
}

#define ADD_FIELDS(o, rec, tab) add_fields((o), (rec), (tab), sizeof(tab) / sizeof(tab)[0])

/* A person's id and five strings: a customer record and an order's
 * customer snapshot print the same six. */
typedef struct {
    const char *customer_id, *email, *phone, *first_name, *last_name, *home_outlet_id;
} person_t;

/* The person of a ts_customer_t or ts_customer_ref_t (the same names). */
#define PERSON_OF(x)                                                                               \
    (person_t) {                                                                                   \
        .customer_id = (x)->customer_id, .email = (x)->email, .phone = (x)->phone,                 \
        .first_name = (x)->first_name, .last_name = (x)->last_name,                                \
        .home_outlet_id = (x)->home_outlet_id                                                      \
    }

static const field_t person_fields[] = {
    F_STR(person_t, customer_id), F_STR(person_t, email),     F_STR(person_t, phone),
    F_STR(person_t, first_name),  F_STR(person_t, last_name), F_STR(person_t, home_outlet_id),
};

static const field_t address_fields[] = {
    F_STR(ts_address_t, line1),  F_STR(ts_address_t, line2),    F_STR(ts_address_t, city),
    F_STR(ts_address_t, region), F_STR(ts_address_t, postcode), F_STR(ts_address_t, country),
};

/* An order's head (before channel) and totals (after currency). */
static const field_t order_head[] = {F_STR(ts_order_t, order_id), F_STR(ts_order_t, customer_id),
                                     F_STR(ts_order_t, outlet_id), F_STR(ts_order_t, outlet_name)};
static const field_t order_totals[] = {F_DEC(ts_order_t, total), F_DEC(ts_order_t, discount),
                                       F_DEC(ts_order_t, tax)};

/* A line's fields before its categories, and after them. */
static const field_t line_head[] = {
    F_STR(ts_order_line_t, line_id),   F_STR(ts_order_line_t, product_id),
    F_STR(ts_order_line_t, sku),       F_STR(ts_order_line_t, name),
    F_DEC(ts_order_line_t, quantity),  F_DEC(ts_order_line_t, unit_price),
    F_DEC(ts_order_line_t, row_total), F_DEC(ts_order_line_t, discount)};
static const field_t line_tail[] = {F_STR(ts_order_line_t, brand),
                                    F_STR(ts_order_line_t, image_url),
                                    F_STR(ts_order_line_t, product_url)};

static const field_t refund_fields[] = {F_STR(ts_refund_t, refund_id), F_STR(ts_refund_t, reason),
                                        F_DEC(ts_refund_t, amount)};

static void add_person(cJSON *o, person_t p) { ADD_FIELDS(o, &p, person_fields); }

static cJSON *customer_json(const ts_customer_t *c) {
    cJSON *o = cJSON_CreateObject();
    add_person(o, PERSON_OF(c));
    add_tri(o, "email_consent", c->email_consent);
    add_tri(o, "sms_consent", c->sms_consent);
    if (c->has_billing_address)
        ADD_FIELDS(cJSON_AddObjectToObject(o, "billing_address"), &c->billing_address,
                   address_fields);
    else
        cJSON_AddNullToObject(o, "billing_address");
    add_str(o, "date_of_birth", c->date_of_birth);
    add_tri(o, "loyalty_member", c->loyalty_member);
    add_time(o, "created_at", c->created_at_ms, c->created_at_ms != 0);
    add_time(o, "updated_at", c->updated_at_ms, c->updated_at_ms != 0);
    return o;
}

static cJSON *order_json(const ts_order_t *r) {
    cJSON *o = cJSON_CreateObject();
    ADD_FIELDS(o, r, order_head);
    cJSON_AddStringToObject(o, "channel", ts_channel_name(r->channel));
    cJSON_AddStringToObject(o, "status", ts_order_status_name(r->status));
    cJSON_AddBoolToObject(o, "is_test", r->is_test);
    add_time(o, "occurred_at", r->occurred_at_ms, true);
    add_str(o, "currency", r->currency[0] ? r->currency : NULL);
    ADD_FIELDS(o, r, order_totals);
    cJSON *lines = cJSON_AddArrayToObject(o, "lines");
    for (size_t i = 0; i < r->n_lines; i++) {
        const ts_order_line_t *l = &r->lines[i];
        cJSON *j = cJSON_CreateObject();
        ADD_FIELDS(j, l, line_head);
        cJSON *cats = cJSON_AddArrayToObject(j, "categories");
        for (size_t k = 0; k < l->n_categories; k++)
            cJSON_AddItemToArray(cats, cJSON_CreateString(l->categories[k]));
        ADD_FIELDS(j, l, line_tail);
        cJSON_AddItemToArray(lines, j);
    }
    if (r->refund.present)
        ADD_FIELDS(cJSON_AddObjectToObject(o, "refund"), &r->refund, refund_fields);
    else
        cJSON_AddNullToObject(o, "refund");
    if (r->customer.present) {
        const ts_customer_ref_t *c = &r->customer;
        add_person(cJSON_AddObjectToObject(o, "customer"), PERSON_OF(c));
    } else {
        cJSON_AddNullToObject(o, "customer");
    }
    return o;
}

/* ---- show / tail ---------------------------------------------------------------- */

typedef struct {
    const ts_config_t *cfg;
    const ts_dlqtool_opts_t *o;
    FILE *out;
    long shown;
    ts_decoder_t *dec[2]; /* by ts_kind_t, when a registry is configured */
    ts_arena_t *arena;
} show_t;

/* Text that JSON can carry as a string: valid UTF-8, no NUL. */
static bool is_text(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!c || !len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

static char *base64(const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Bytes as a JSON string under TEXT_NAME when they are text (UTF-8, no
 * NUL), else as base64 under B64_NAME. */
static void add_bytes(cJSON *obj, const char *text_name, const char *b64_name, const void *p,
                      size_t n) {
    if (is_text(p, n)) {
        char *t = strndup(p ? p : "", n);
        cJSON_AddStringToObject(obj, text_name, t ? t : "");
        free(t);
    } else {
        char *b = base64(p, n);
        cJSON_AddStringToObject(obj, b64_name, b ? b : "");
        free(b);
    }
}

/* The dead letter's value as it was: a JSON value, text, or (Avro and
 * other binary) base64, with the Confluent schema id when framed. */
static void add_value(show_t *s, cJSON *rec, const rd_kafka_message_t *m, rd_kafka_headers_t *h) {
    if (!m->payload) return;
    const unsigned char *p = m->payload;
    cJSON *value = cJSON_ParseWithLength(m->payload, m->len);
    if (value) {
        cJSON_AddItemToObject(rec, "value", value);
        return;
    }
    add_bytes(rec, "value_raw", "value_base64", p, m->len);
    if (m->len < 5 || p[0] != 0) return;
    /* a NUL: never text, so base64 */
    cJSON_AddStringToObject(rec, "value_format", "confluent-avro");
    cJSON_AddNumberToObject(rec, "schema_id",
                            (double)(int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                                              (uint32_t)p[3] << 8 | p[4]));
    /* decoded through the registry when one is configured, by the kind of
     * its source topic; the bytes stay in value_base64 */
    if (!s->cfg->registry_url || !*s->cfg->registry_url) return;
    char buf[256];
    const char *topic = header(h, TS_DLH_SOURCE_TOPIC, buf, sizeof buf);
    int kind = !strcmp(topic, s->cfg->topic_customers) ? TS_KIND_CUSTOMER
               : !strcmp(topic, s->cfg->topic_orders)  ? TS_KIND_ORDER
                                                       : -1;
    if (kind < 0) return;
    char err[256];
    if (!s->dec[kind] &&
        !(s->dec[kind] = ts_decoder_new(s->cfg, (ts_kind_t)kind, err, sizeof err))) {
        cJSON_AddStringToObject(rec, "value_decode_error", err);
        return;
    }
    if (!s->arena && !(s->arena = ts_arena_new(0))) return;
    ts_arena_reset(s->arena);
    ts_customer_t c;
    ts_order_t o;
    void *out = kind == TS_KIND_CUSTOMER ? (void *)&c : (void *)&o;
    ts_err_t rc =
        ts_decoder_decode(s->dec[kind], m->payload, m->len, s->arena, out, err, sizeof err);
    if (rc != TS_OK)
        cJSON_AddStringToObject(rec, "value_decode_error", err);
    else
        cJSON_AddItemToObject(rec, "value",
                              kind == TS_KIND_CUSTOMER ? customer_json(&c) : order_json(&o));
}

static int show_one(void *opaque, rd_kafka_message_t *m) {
    show_t *s = opaque;
    if (!matches(s->o, m)) return 0;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "partition", m->partition);
    cJSON_AddNumberToObject(rec, "offset", (double)m->offset);
    if (m->key) add_bytes(rec, "key", "key_base64", m->key, m->key_len);
    cJSON *hj = cJSON_AddObjectToObject(rec, "headers"), *hb = NULL;
    const char *name;
    const void *val;
    size_t sz;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &val, &sz); i++) {
        if (!val) sz = 0;
        bool text = is_text(val, sz);
        if (!text && !hb) /* binary headers: under headers_base64, whole */
            hb = cJSON_AddObjectToObject(rec, "headers_base64");
        add_bytes(text ? hj : hb, name, name, val, sz);
    }
    add_value(s, rec, m, h);
    char *txt = s->o->json ? cJSON_PrintUnformatted(rec) : cJSON_Print(rec);
    fprintf(s->out, "%s\n", txt);
    fflush(s->out);
    free(txt);
    cJSON_Delete(rec);
    s->shown++;
    return s->o->limit > 0 && s->shown >= s->o->limit ? READ_STOP : 0;
}

int ts_dlqtool_show(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out) {
    rd_kafka_t *rk = client_new(cfg, RD_KAFKA_CONSUMER, NULL, NULL);
    if (!rk) return 1;
    show_t s = {.cfg = cfg, .o = o, .out = out};
    /* tail starts at the end unless --from-beginning: the end offsets of
     * now, so whatever is written after the "following" note is shown */
    int64_t *start = NULL;
    int n = 0, rc = 0;
    if (o->follow && !o->from_beginning) {
        rc = partitions_of(cfg, rk, cfg->topic_dead_letter, &n);
        if (!rc && n > 0 && !(start = malloc((size_t)n * sizeof *start))) rc = 1;
        for (int p = 0; !rc && p < n; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(rk, cfg->topic_dead_letter, p, &lo, &hi, 10000);
            if (e) {
                ts_log(TS_LOG_ERROR, LOGGER, NULL, "end offsets of %s: %s", cfg->topic_dead_letter,
                       rd_kafka_err2str(e));
                rc = 1;
            }
            start[p] = hi;
        }
        if (!rc && n > 0 && o->notes) {
            fprintf(o->notes, "following %s from the end\n", cfg->topic_dead_letter);
            fflush(o->notes);
        }
    }
    if (!rc)
        rc = read_topic(cfg, rk, cfg->topic_dead_letter, start, n, o->follow, false, show_one, &s);
    free(start);
    ts_decoder_destroy(s.dec[0]);
    ts_decoder_destroy(s.dec[1]);
    ts_arena_destroy(s.arena);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (!o->json && rc == 0 && o->notes) fprintf(o->notes, "%ld record(s)\n", s.shown);
    return rc;
}

/* ---- redrive ---------------------------------------------------------------------- */

typedef enum {
    C_REDRIVE = 0, /* to be re-produced */
    C_COPY,        /* another dead letter of the same source record: done with it */
    C_SUPERSEDED,  /* the source topic holds a newer record of the key */
    C_LIMIT,       /* at --max-redrives: reported, left alone */
    C_UNAVAILABLE, /* value left out and the source record is gone: reported, left alone */
} cstate_t;

typedef struct {
    int32_t dl_partition;
    int64_t dl_offset;
    char *src_topic; /* NULL: no source coordinates (not redrivable) */
    int32_t src_partition;
    int64_t src_offset;
    char reason[64];
    void *key, *value;
    size_t key_len, value_len;
    bool value_omitted, delivered;
    rd_kafka_headers_t *headers; /* the dead letter's, copied */
    int count;
    cstate_t state;
    int64_t newer_offset; /* SUPERSEDED: the newer record */
    char *match;          /* orders: "KEY\x1fSTATUS" (see scan_t) */
    size_t match_len;
    size_t copy_of; /* C_COPY within this run: index of the first */
} cand_t;

typedef struct {
    const ts_config_t *cfg;
    const ts_dlqtool_opts_t *o;
    FILE *out;
    const char *state_topic, *group;
    smap_t done;     /* state keys of dead letters done */
    smap_t done_src; /* source ids of records redriven (or superseded) before */
    smap_t seen_src; /* source id -> index of its first candidate in this run */
    int64_t *legacy; /* per dead-letter partition: the group's committed offset, or -1 */
    int n_legacy;
    cand_t *c;
    size_t n, cap;
    long failed;
    int oom;
} redrive_t;

static size_t state_key(const redrive_t *r, int32_t p, int64_t o, char *buf, size_t n) {
    return (size_t)snprintf(buf, n, "%s|%s|%d|%lld", r->group, r->cfg->topic_dead_letter, (int)p,
                            (long long)o);
}

/* The bookkeeping topic: key = group|dead-letter topic|partition|offset,
 * value = {"status","source_topic","source_partition","source_offset",...}. */
static int state_one(void *opaque, rd_kafka_message_t *m) {
    redrive_t *r = opaque;
    if (!m->key || !m->payload) return 0;
    size_t glen = strlen(r->group);
    if (m->key_len <= glen || memcmp(m->key, r->group, glen) || ((char *)m->key)[glen] != '|')
        return 0; /* another group's */
    if (!smap_put(&r->done, m->key, m->key_len, 1, NULL)) return r->oom = 1;
    cJSON *v = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "source_topic"),
                *p = cJSON_GetObjectItemCaseSensitive(v, "source_partition"),
                *o = cJSON_GetObjectItemCaseSensitive(v, "source_offset");
    if (cJSON_IsString(t) && cJSON_IsNumber(p) && cJSON_IsNumber(o)) {
        char id[400];
        int n = snprintf(id, sizeof id, "%s|%d|%lld", t->valuestring, p->valueint,
                         (long long)o->valuedouble);
        if (!smap_put(&r->done_src, id, (size_t)n, 1, NULL)) r->oom = 1;
    }
    cJSON_Delete(v);
    return r->oom;
}

static void *memdup(const void *p, size_t n) {
    void *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

static int collect_one(void *opaque, rd_kafka_message_t *m) {
    redrive_t *r = opaque;
    if (!matches(r->o, m)) return 0;
    char key[400];
    size_t kn = state_key(r, m->partition, m->offset, key, sizeof key);
    if (smap_find(&r->done, key, kn)) return 0;
    if (m->partition < r->n_legacy && m->offset < r->legacy[m->partition]) return 0;
    if (r->o->limit > 0 && (long)r->n >= r->o->limit) return READ_STOP;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 256;
        cand_t *nn = realloc(r->c, nc * sizeof *nn);
        if (!nn) return r->oom = 1;
        r->c = nn;
        r->cap = nc;
    }
    char buf[256], id[640];
    cand_t *c = &r->c[r->n];
    *c = (cand_t){
        .dl_partition = m->partition,
        .dl_offset = m->offset,
        .src_partition = -1,
        .src_offset = -1,
        .key = m->key ? memdup(m->key, m->key_len) : NULL,
        .key_len = m->key ? m->key_len : 0,
        .value = m->payload ? memdup(m->payload, m->len) : NULL,
        .value_len = m->payload ? m->len : 0,
        .value_omitted = has_header(h, TS_DLH_VALUE_OMITTED),
        .headers = h ? rd_kafka_headers_copy(h) : NULL,
        .count = atoi(header(h, TS_DLH_REDRIVE_COUNT, buf, sizeof buf)),
    };
    snprintf(c->reason, sizeof c->reason, "%s", header(h, TS_DLH_REASON, buf, sizeof buf));
    if (has_header(h, TS_DLH_SOURCE_TOPIC) && has_header(h, TS_DLH_SOURCE_OFFSET)) {
        c->src_topic = strdup(header(h, TS_DLH_SOURCE_TOPIC, buf, sizeof buf));
        c->src_partition = atoi(header(h, TS_DLH_SOURCE_PARTITION, buf, sizeof buf));
        c->src_offset = strtoll(header(h, TS_DLH_SOURCE_OFFSET, buf, sizeof buf), NULL, 10);
    }
    size_t n = source_id(h, m, id, sizeof id);
    bool created;
    mslot_t *s = smap_put(&r->seen_src, id, n, (int64_t)r->n, &created);
    if (!s) return r->oom = 1;
    if (smap_find(&r->done_src, id, n)) {
        c->state = C_COPY; /* redriven by an earlier run: this is a copy */
        c->copy_of = (size_t)-1;
    } else if (!created) {
        c->state = C_COPY;
        c->copy_of = (size_t)s->val;
    } else if (c->count >= r->o->max_redrives) {
        c->state = C_LIMIT;
    }
    r->n++;
    return 0;
}

/* Redrives before the bookkeeping topic remembered their progress in the
 * committed offsets of the consumer group named like the namespace: what
 * lies below them was redriven then and counts as done. */
static int legacy_offsets(redrive_t *r) {
    rd_kafka_t *rk = client_new_group(r->cfg, RD_KAFKA_CONSUMER, NULL, NULL, r->group, 0);
    int parts = 0, rc = rk ? partitions_of(r->cfg, rk, r->cfg->topic_dead_letter, &parts) : 1;
    if (!rc && parts > 0) {
        rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(pl, r->cfg->topic_dead_letter, p);
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, pl, 10000);
        if (e) {
            ts_log(TS_LOG_ERROR, LOGGER, NULL, "committed offsets of group %s: %s", r->group,
                   rd_kafka_err2str(e));
            rc = 1;
        } else if ((r->legacy = malloc((size_t)parts * sizeof *r->legacy))) {
            r->n_legacy = parts;
            for (int p = 0; p < parts; p++)
                r->legacy[p] = pl->elems[p].err ? -1 : pl->elems[p].offset;
        } else {
            rc = 1;
        }
        rd_kafka_topic_partition_list_destroy(pl);
    }
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}

/* ---- the source scan: is a newer record of the key there? --------------------------- */

/* The customers topic is a table: any newer record of the key supersedes.
 * In the orders topic each status is an event of its own (Placed Order,
 * Fulfilled Order, ...): a newer record supersedes a dead letter only when
 * it has the same status (it carries the same event); an undecodable dead
 * letter is superseded by any newer record of its order. The map key is
 * then "KEY\x1fSTATUS" or "KEY\x1f*". */
typedef struct {
    redrive_t *r;
    smap_t latest; /* match key -> highest offset seen */
    smap_t keys;   /* orders: the candidates' record keys (decode only those) */
    smap_t wanted; /* "offset" -> candidate index, for values left out */
    int32_t partition;
    bool orders;
    ts_decoder_t *dec; /* orders */
    ts_arena_t *arena;
    int failed; /* a registry outage: nothing can be decided */
} scan_t;

/* The status of an order record, or NULL (undecodable, tombstone);
 * *transient on a registry outage. */
static const char *order_status(scan_t *s, const void *p, size_t n, bool *transient) {
    *transient = false;
    if (!p || !s->dec) return NULL;
    ts_order_t o;
    char err[256];
    ts_arena_reset(s->arena);
    ts_err_t rc = ts_decoder_decode(s->dec, p, n, s->arena, &o, err, sizeof err);
    if (rc == TS_ERR_TRANSIENT) {
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "redrive stopped: %s", err);
        *transient = true;
    }
    return rc == TS_OK ? ts_order_status_name(o.status) : NULL;
}

static size_t match_key(char *buf, size_t bufsz, const void *k, size_t kn, const char *status) {
    size_t sl = strlen(status);
    if (kn + 1 + sl > bufsz) return 0;
    memcpy(buf, k, kn);
    buf[kn] = '\x1f';
    memcpy(buf + kn + 1, status, sl);
    return kn + 1 + sl;
}

static void seen_newer(scan_t *s, const void *k, size_t kn, int64_t off) {
    mslot_t *l = smap_find(&s->latest, k, kn);
    if (l && off > l->val) l->val = off;
}

static int scan_one(void *opaque, rd_kafka_message_t *m) {
    scan_t *s = opaque;
    if (m->partition != s->partition) return 0;
    if (m->key && !s->orders) {
        seen_newer(s, m->key, m->key_len, m->offset);
    } else if (m->key && smap_find(&s->keys, m->key, m->key_len)) {
        char mk[1024];
        bool transient;
        const char *st = order_status(s, m->payload, m->len, &transient);
        if (transient) return s->failed = 1;
        size_t n = match_key(mk, sizeof mk, m->key, m->key_len, "*");
        if (n) seen_newer(s, mk, n, m->offset);
        if (st && (n = match_key(mk, sizeof mk, m->key, m->key_len, st)))
            seen_newer(s, mk, n, m->offset);
    }
    if (s->wanted.n) {
        char off[32];
        int n = snprintf(off, sizeof off, "%lld", (long long)m->offset);
        mslot_t *w = smap_find(&s->wanted, off, (size_t)n);
        if (w) {
            cand_t *c = &s->r->c[w->val];
            free(c->value);
            c->value = m->payload ? memdup(m->payload, m->len) : NULL;
            c->value_len = m->payload ? m->len : 0;
            c->value_omitted = false;
        }
    }
    return 0;
}

typedef struct {
    const char *topic;
    int32_t partition;
    size_t i; /* candidate index */
} srcref_t;

static int by_source(const void *a, const void *b) {
    const srcref_t *x = a, *y = b;
    int t = strcmp(x->topic, y->topic);
    if (t) return t;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Indexes one candidate of a source partition in *s (its key, its
 * order-status match key, its offset when the value was left out) and
 * lowers *from to the first offset to read. 0, or 1 on failure. */
static int scan_add(scan_t *s, cand_t *c, size_t i, int64_t *from) {
    int rc = 0;
    int64_t need = c->value_omitted ? c->src_offset : c->src_offset + 1;
    if (need < *from) *from = need;
    if (c->key && !s->orders && !smap_put(&s->latest, c->key, c->key_len, -1, NULL)) rc = 1;
    if (c->key && s->orders && !rc) {
        bool transient;
        const char *st =
            c->value_omitted ? NULL : order_status(s, c->value, c->value_len, &transient);
        if (!c->value_omitted && transient) rc = 1;
        char mk[1024];
        size_t n = match_key(mk, sizeof mk, c->key, c->key_len, st ? st : "*");
        c->match_len = n;
        if (n && !(c->match = memdup(mk, n))) rc = 1;
        if (!rc && (!smap_put(&s->keys, c->key, c->key_len, 0, NULL) ||
                    (n && !smap_put(&s->latest, mk, n, -1, NULL))))
            rc = 1;
    }
    if (c->value_omitted) {
        char off[32];
        int n = snprintf(off, sizeof off, "%lld", (long long)c->src_offset);
        if (!smap_put(&s->wanted, off, (size_t)n, (int64_t)i, NULL)) rc = 1;
    }
    return rc;
}

/* Reads the source partition of *first from offset from to its end
 * through scan_one. 0, or 1 (logged) on failure. */
static int scan_read(redrive_t *r, rd_kafka_t *rk, const cand_t *first, int64_t from, scan_t *s) {
    int parts = 0;
    int rc = partitions_of(r->cfg, rk, first->src_topic, &parts);
    if (!rc && first->src_partition >= parts) {
        char ctx[300];
        snprintf(ctx, sizeof ctx, "\"topic\":\"%.200s\",\"partition\":%d", first->src_topic,
                 (int)first->src_partition);
        ts_log(TS_LOG_ERROR, LOGGER, ctx, "source partition does not exist");
        rc = 1;
    }
    if (rc) return rc;
    int64_t *start = malloc((size_t)parts * sizeof *start);
    if (!start) return 1;
    for (int p = 0; p < parts; p++)
        start[p] = p == first->src_partition ? from : RD_KAFKA_OFFSET_INVALID;
    rc = read_topic(r->cfg, rk, first->src_topic, start, parts, false, false, scan_one, s);
    free(start);
    return rc || s->failed;
}

/* After the read: a candidate with a newer record of its key is
 * superseded; one whose value was left out and not found is unavailable. */
static void scan_settle(redrive_t *r, const srcref_t *ix, size_t a, size_t b, scan_t *s) {
    for (size_t k = a; k < b; k++) {
        cand_t *c = &r->c[ix[k].i];
        mslot_t *l = !c->key     ? NULL
                     : s->orders ? (c->match ? smap_find(&s->latest, c->match, c->match_len) : NULL)
                                 : smap_find(&s->latest, c->key, c->key_len);
        if (l && l->val > c->src_offset) {
            c->state = C_SUPERSEDED;
            c->newer_offset = l->val;
        } else if (c->value_omitted) {
            c->state = C_UNAVAILABLE;
        }
    }
}

/* For each source partition of the records to redrive: one read from the
 * lowest such offset to the end, remembering the latest offset of each
 * candidate key (the same key is always in the same partition). */
static int scan_sources(redrive_t *r, rd_kafka_t *rk) {
    srcref_t *ix = malloc((r->n ? r->n : 1) * sizeof *ix);
    size_t m = 0;
    if (!ix) return 1;
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].state == C_REDRIVE && r->c[i].src_topic)
            ix[m++] = (srcref_t){r->c[i].src_topic, r->c[i].src_partition, i};
    qsort(ix, m, sizeof *ix, by_source);
    int rc = 0;
    for (size_t a = 0, b; a < m && rc == 0; a = b) {
        cand_t *first = &r->c[ix[a].i];
        scan_t s = {.r = r,
                    .partition = first->src_partition,
                    .orders = !strcmp(first->src_topic, r->cfg->topic_orders)};
        char err[256];
        if (s.orders && (!(s.arena = ts_arena_new(0)) ||
                         !(s.dec = ts_decoder_new(r->cfg, TS_KIND_ORDER, err, sizeof err)))) {
            ts_log(TS_LOG_ERROR, LOGGER, NULL, "order decoder: %s", s.arena ? err : "no memory");
            rc = 1;
        }
        int64_t from = INT64_MAX;
        for (b = a; b < m && !by_source(&ix[a], &ix[b]); b++)
            if (scan_add(&s, &r->c[ix[b].i], ix[b].i, &from)) rc = 1;
        if (!rc) rc = scan_read(r, rk, first, from, &s);
        if (!rc) scan_settle(r, ix, a, b, &s);
        smap_free(&s.latest);
        smap_free(&s.keys);
        smap_free(&s.wanted);
        ts_decoder_destroy(s.dec);
        ts_arena_destroy(s.arena);
    }
    free(ix);
    return rc;
}

/* ---- producing ------------------------------------------------------------------------ */

static void redrive_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    redrive_t *r = opaque;
    cand_t *c = m->_private;
    if (m->err) {
        r->failed++;
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "delivery to %s: %s", rd_kafka_topic_name(m->rkt),
               rd_kafka_err2str(m->err));
    } else if (c) {
        c->delivered = true;
    }
}

/* What a producev's answer err means for the redrive: 1 (logged, counted
 * as failed) when the record was not queued, else 0 after serving the
 * delivery reports due. */
static int produced(redrive_t *r, rd_kafka_t *p, const char *topic, rd_kafka_resp_err_t err) {
    if (err) {
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "produce to %s: %s", topic, rd_kafka_err2str(err));
        r->failed++;
        return 1;
    }
    rd_kafka_poll(p, 0);
    return 0;
}

static int produce_redrive(redrive_t *r, rd_kafka_t *p, cand_t *c) {
    /* original headers without our dead-letter context, plus the count */
    rd_kafka_headers_t *nh = rd_kafka_headers_new(8);
    const char *name;
    const void *val;
    size_t sz;
    for (size_t i = 0; c->headers && !rd_kafka_header_get_all(c->headers, i, &name, &val, &sz); i++)
        if (strncmp(name, TS_DLH_PREFIX, sizeof TS_DLH_PREFIX - 1) &&
            strncmp(name, TS_DLH_CONNECT_PREFIX, sizeof TS_DLH_CONNECT_PREFIX - 1))
            rd_kafka_header_add(nh, name, -1, val, (ssize_t)sz);
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%d", c->count + 1);
    rd_kafka_header_add(nh, TS_DLH_REDRIVE_COUNT, -1, cnt, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(c->src_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(c->key, c->key_len), RD_KAFKA_V_VALUE(c->value, c->value_len),
        RD_KAFKA_V_HEADERS(nh), RD_KAFKA_V_OPAQUE(c), RD_KAFKA_V_END);
    if (err) rd_kafka_headers_destroy(nh); /* producev took them only on success */
    return produced(r, p, c->src_topic, err);
}

static const char *const state_names[] = {"REDRIVEN", "COPY", "SUPERSEDED", "LIMIT", "UNAVAILABLE"};

static int produce_done(redrive_t *r, rd_kafka_t *p, const cand_t *c) {
    char key[400];
    size_t kn = state_key(r, c->dl_partition, c->dl_offset, key, sizeof key);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "status", state_names[c->state]);
    cJSON_AddStringToObject(v, "reason", c->reason);
    if (c->src_topic) {
        cJSON_AddStringToObject(v, "source_topic", c->src_topic);
        cJSON_AddNumberToObject(v, "source_partition", c->src_partition);
        cJSON_AddNumberToObject(v, "source_offset", (double)c->src_offset);
    }
    if (c->state == C_SUPERSEDED)
        cJSON_AddNumberToObject(v, "newer_offset", (double)c->newer_offset);
    char at[40];
    iso(ts_now_wall_ms(), at, sizeof at);
    cJSON_AddStringToObject(v, "at", at);
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    rd_kafka_resp_err_t err =
        s ? rd_kafka_producev(p, RD_KAFKA_V_TOPIC(r->state_topic),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, kn),
                              RD_KAFKA_V_VALUE(s, strlen(s)), RD_KAFKA_V_OPAQUE(NULL),
                              RD_KAFKA_V_END)
          : RD_KAFKA_RESP_ERR__NOENT;
    free(s);
    return produced(r, p, r->state_topic, err);
}

/* Creates the compacted bookkeeping topic when it is missing. */
static int ensure_state_topic(redrive_t *r, rd_kafka_t *p) {
    int parts;
    if (partitions_of(r->cfg, p, r->state_topic, &parts)) return 1;
    if (parts) return 0;
    char err[256];
    if (ts_ktopic_create(p, r->state_topic, 1, "cleanup.policy", "compact", 30000, err,
                         sizeof err)) {
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "create topic %s: %s", r->state_topic, err);
        return 1;
    }
    return 0;
}

/* The producer's message.max.bytes for this redrive: a record came from
 * its topic, so the topic takes it, but a value fetched for an omitted
 * dead letter may exceed librdkafka's 1 MB default, and the producer must
 * not refuse it locally. */
static size_t largest_redrive(const redrive_t *r) {
    size_t biggest = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].state == C_REDRIVE && r->c[i].value_len + r->c[i].key_len > biggest)
            biggest = r->c[i].value_len + r->c[i].key_len;
    return biggest + 65536; /* headers, framing */
}

static void report(redrive_t *r, const cand_t *c) {
    bool dry = r->o->dry_run;
    char key[200];
    snprintf(key, sizeof key, "%.*s", (int)(c->key_len < 199 ? c->key_len : 199),
             c->key ? (const char *)c->key : "");
    const char *topic = c->src_topic ? c->src_topic : "(unknown source)";
    switch (c->state) {
    case C_REDRIVE:
        fprintf(r->out, "%s %s key %s (%s, redrive %d)\n", dry ? "would redrive to" : "redrive  to",
                topic, key, c->reason, c->count + 1);
        break;
    case C_SUPERSEDED:
        fprintf(r->out,
                "SUPERSEDED %s partition %d offset %lld key %s (%s): newer record at offset %lld\n",
                topic, (int)c->src_partition, (long long)c->src_offset, key, c->reason,
                (long long)c->newer_offset);
        break;
    case C_COPY:
        if (c->copy_of == (size_t)-1)
            fprintf(r->out, "copy     %s partition %d offset %lld key %s (%s): redriven before\n",
                    topic, (int)c->src_partition, (long long)c->src_offset, key, c->reason);
        else
            fprintf(r->out,
                    "copy     %s partition %d offset %lld key %s (%s): same source record as "
                    "dead letter %d/%lld\n",
                    topic, (int)c->src_partition, (long long)c->src_offset, key, c->reason,
                    (int)r->c[c->copy_of].dl_partition, (long long)r->c[c->copy_of].dl_offset);
        break;
    case C_LIMIT:
        fprintf(r->out, "skip     %s offset %lld key %s: redriven %d times already\n", topic,
                (long long)c->src_offset, key, c->count);
        break;
    case C_UNAVAILABLE:
        fprintf(r->out,
                "skip     %s partition %d offset %lld key %s: value left out and the "
                "source record is gone\n",
                topic, (int)c->src_partition, (long long)c->src_offset, key);
        break;
    }
}

/* Step 4 of a redrive: re-produce, wait for every acknowledgement, then
 * record what was done (what was acknowledged is recorded even when
 * something failed). 0, or 1 on failure. */
static int redrive_produce(redrive_t *r) {
    rd_kafka_t *p =
        client_new_group(r->cfg, RD_KAFKA_PRODUCER, redrive_dr, r, NULL, largest_redrive(r));
    int rc = p ? ensure_state_topic(r, p) : 1;
    for (size_t i = 0; !rc && i < r->n; i++)
        if (r->c[i].state == C_REDRIVE) rc = produce_redrive(r, p, &r->c[i]);
    if (!p) return rc;
    rd_kafka_flush(p, 30000);
    for (size_t i = 0; i < r->n; i++) {
        cand_t *c = &r->c[i];
        if ((c->state == C_REDRIVE && c->delivered) || c->state == C_SUPERSEDED ||
            c->state == C_COPY)
            if (produce_done(r, p, c)) break;
    }
    rd_kafka_flush(p, 30000);
    if (r->failed || rd_kafka_outq_len(p) > 0) rc = 1;
    rd_kafka_destroy(p);
    return rc;
}

static void redrive_free(redrive_t *r) {
    for (cand_t *c = r->c; c && c < r->c + r->n; c++) {
        free(c->src_topic);
        free(c->key);
        free(c->match);
        free(c->value);
        if (c->headers) rd_kafka_headers_destroy(c->headers);
    }
    free(r->c);
    free(r->legacy);
    smap_free(&r->done);
    smap_free(&r->done_src);
    smap_free(&r->seen_src);
}

int ts_dlqtool_redrive(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out) {
    redrive_t r = {
        .cfg = cfg,
        .o = o,
        .out = out,
        .state_topic = o->state_topic ? o->state_topic : "tillstream.redrive",
        .group = o->group ? o->group : "tillstream-dlq-redrive",
    };
    rd_kafka_t *rk = client_new(cfg, RD_KAFKA_CONSUMER, NULL, NULL);
    int rc = rk ? 0 : 1;
    /* 1. what was done before; 2. the dead letters still to do */
    if (!rc) rc = read_topic(cfg, rk, r.state_topic, NULL, 0, false, true, state_one, &r);
    if (!rc) rc = legacy_offsets(&r);
    if (!rc)
        rc = read_topic(cfg, rk, cfg->topic_dead_letter, NULL, 0, false, false, collect_one, &r);
    /* 3. the present: a newer record of the key in the source partition */
    if (!rc && !r.oom) rc = scan_sources(&r, rk);
    if (r.oom) rc = 1;
    long k[5] = {0};
    for (size_t i = 0; !rc && i < r.n; i++) {
        if (r.c[i].state == C_REDRIVE && !r.c[i].src_topic) r.c[i].state = C_UNAVAILABLE;
        k[r.c[i].state]++;
    }
    if (!rc && !o->dry_run && r.n) rc = redrive_produce(&r);
    if (!rc)
        for (size_t i = 0; i < r.n; i++) report(&r, &r.c[i]);
    if (!rc)
        fprintf(out,
                "%s%ld record(s) %s, %ld at the redrive limit (%d), %ld superseded, %ld cop%s%s\n",
                o->dry_run ? "dry run: " : "", k[C_REDRIVE],
                o->dry_run ? "would be redriven" : "redriven", k[C_LIMIT], o->max_redrives,
                k[C_SUPERSEDED], k[C_COPY], k[C_COPY] == 1 ? "y" : "ies",
                k[C_UNAVAILABLE] ? ", some not redrivable (see above)" : "");
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    redrive_free(&r);
    return rc;
}

/* ---- audit -------------------------------------------------------------------------- */

enum {
    A_NO_HOME = 1,
    A_UNMAPPED = 2,
    A_NO_ID = 4,
    A_EMAIL_SUB = 8,
    A_SMS_SUB = 16,
    A_DEFAULTED = 32
};

/* Per customer id (the key), in one smap value: its A_* flags in the low
 * byte (0xff: deleted or undecodable) and its outlet index + 1 above (0:
 * none). */
#define AUDIT_VAL(outlet, flags) ((((int64_t)(outlet) + 1) << 8) | (int64_t)(flags))
#define AUDIT_FLAGS(v)           ((uint8_t)((v)&0xff))
#define AUDIT_OUTLET(v)          ((int)((v) >> 8) - 1)

typedef struct {
    const ts_config_t *cfg;
    ts_router_t *router;
    ts_arena_t *arena;
    ts_decoder_t *dec; /* JSON, Confluent Avro (registry), raw Avro */
    smap_t ids;        /* customer id -> AUDIT_VAL */
    char **outlets;
    size_t n_outlets;
    uint64_t records, undecodable;
} audit_t;

static int outlet_index(audit_t *a, const char *o) {
    if (!o) return -1;
    for (size_t i = 0; i < a->n_outlets; i++)
        if (!strcmp(a->outlets[i], o)) return (int)i;
    a->outlets = realloc(a->outlets, (a->n_outlets + 1) * sizeof *a->outlets);
    a->outlets[a->n_outlets] = strdup(o);
    return (int)a->n_outlets++;
}

static int audit_one(void *opaque, rd_kafka_message_t *m) {
    audit_t *a = opaque;
    a->records++;
    if (!m->key || !m->key_len) return 0;
    mslot_t *s = smap_put(&a->ids, m->key, m->key_len, AUDIT_VAL(-1, 0), NULL);
    if (!s) return 1;  /* out of memory */
    if (!m->payload) { /* tombstone: the latest record wins */
        s->val = AUDIT_VAL(-1, 0xff);
        return 0;
    }
    ts_customer_t c;
    char err[256];
    ts_arena_reset(a->arena);
    ts_err_t rc;
    /* a registry outage is waited out (bounded), never counted as undecodable */
    for (int waited_ms = 0;; waited_ms += 500) {
        rc = ts_decoder_decode(a->dec, m->payload, m->len, a->arena, &c, err, sizeof err);
        if (rc != TS_ERR_TRANSIENT) break;
        if (waited_ms >= 120000) {
            ts_log(TS_LOG_ERROR, LOGGER, NULL, "audit stopped: %s", err);
            return 1;
        }
        usleep(500 * 1000);
    }
    if (rc != TS_OK) {
        a->undecodable++;
        s->val = AUDIT_VAL(-1, 0xff);
        return 0;
    }
    ts_route_t r = ts_route_lookup(a->router, c.home_outlet_id);
    uint8_t f = 0;
    if (!c.home_outlet_id || !*c.home_outlet_id) f |= A_NO_HOME;
    if (r.defaulted) f |= A_DEFAULTED;
    if (r.status == TS_ROUTE_DEAD_LETTER && r.reason == TS_REASON_UNMAPPED_OUTLET) f |= A_UNMAPPED;
    bool email = c.email && *c.email, phone = c.phone && *c.phone;
    if (!email && !phone) f |= A_NO_ID;
    if (c.email_consent == TS_TRI_TRUE && email) f |= A_EMAIL_SUB;
    if (c.sms_consent == TS_TRI_TRUE && phone) f |= A_SMS_SUB;
    s->val = AUDIT_VAL(outlet_index(a, c.home_outlet_id), f);
    return 0;
}

static void audit_free(audit_t *a) {
    smap_free(&a->ids);
    ts_strv_free(a->outlets, a->n_outlets);
    ts_arena_destroy(a->arena);
    ts_router_destroy(a->router);
    ts_decoder_destroy(a->dec);
}

int ts_dlqtool_audit(const ts_config_t *cfg, bool json, FILE *out) {
    char err[256];
    audit_t a = {
        .cfg = cfg, .router = ts_router_new(cfg, err, sizeof err), .arena = ts_arena_new(0)};
    if (!(a.dec = ts_decoder_new(cfg, TS_KIND_CUSTOMER, err, sizeof err))) {
        ts_log(TS_LOG_ERROR, LOGGER, NULL, "%s", err);
        ts_arena_destroy(a.arena);
        ts_router_destroy(a.router);
        return 2;
    }
    int64_t t0 = ts_now_mono_ms();
    rd_kafka_t *rk = client_new(cfg, RD_KAFKA_CONSUMER, NULL, NULL);
    int rc =
        rk ? read_topic(cfg, rk, cfg->topic_customers, NULL, 0, false, false, audit_one, &a) : 1;
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    double secs = (double)(ts_now_mono_ms() - t0) / 1000.0;
    if (rc) { /* no partial counts: they would read as the truth */
        audit_free(&a);
        return rc;
    }
    /* per outlet (+1 row for "no Home Outlet") */
    size_t rows = a.n_outlets + 1;
    uint64_t(*agg)[6] =
        calloc(rows, sizeof *agg); /* customers, no_home, unmapped, no_id, email_sub, sms_sub */
    uint64_t tot[6] = {0};
    for (size_t i = 0; i < a.ids.cap; i++) {
        const mslot_t *s = &a.ids.slots[i];
        uint8_t flags = AUDIT_FLAGS(s->val);
        int outlet = AUDIT_OUTLET(s->val);
        if (!s->key || flags == 0xff) continue;
        size_t row = outlet < 0 ? a.n_outlets : (size_t)outlet;
        uint64_t v[6] = {1,
                         !!(flags & A_NO_HOME),
                         !!(flags & A_UNMAPPED),
                         !!(flags & A_NO_ID),
                         !!(flags & A_EMAIL_SUB),
                         !!(flags & A_SMS_SUB)};
        for (int k = 0; k < 6; k++) {
            agg[row][k] += v[k];
            tot[k] += v[k];
        }
    }
    static const char *const names[6] = {"customers",         "no_home_outlet",   "unmapped_outlet",
                                         "no_email_or_phone", "email_subscribed", "sms_subscribed"};
    cJSON *root = cJSON_CreateObject(), *overall = cJSON_AddObjectToObject(root, "overall"),
          *per = cJSON_AddObjectToObject(root, "by_outlet");
    for (int k = 0; k < 6; k++) cJSON_AddNumberToObject(overall, names[k], (double)tot[k]);
    for (size_t r = 0; r < rows; r++) {
        if (!agg[r][0]) continue;
        cJSON *o = cJSON_AddObjectToObject(per, r < a.n_outlets ? a.outlets[r] : "(none)");
        for (int k = 0; k < 6; k++) cJSON_AddNumberToObject(o, names[k], (double)agg[r][k]);
        if (r < a.n_outlets) {
            ts_route_t rt = ts_route_lookup(a.router, a.outlets[r]);
            cJSON_AddStringToObject(
                o, "account", rt.account >= 0 ? cfg->accounts[rt.account].name : "(unmapped)");
        }
    }
    cJSON_AddNumberToObject(root, "records_read", (double)a.records);
    cJSON_AddNumberToObject(root, "undecodable", (double)a.undecodable);
    cJSON_AddNumberToObject(root, "seconds", secs);
    if (json) {
        print_json(out, root);
    } else {
        fprintf(out, "Home Outlet audit of %s: %llu customers (%llu records read in %.1f s)\n\n",
                cfg->topic_customers, (unsigned long long)tot[0], (unsigned long long)a.records,
                secs);
        fprintf(out, "%-12s %-12s %10s %10s %10s %10s %10s %10s\n", "outlet", "account",
                "customers", "no_home", "unmapped", "no_id", "email_sub", "sms_sub");
        for (const cJSON *o = per->child; o; o = o->next) {
            const cJSON *acc = cJSON_GetObjectItem(o, "account");
            fprintf(out, "%-12s %-12s", o->string, acc ? acc->valuestring : "-");
            for (int k = 0; k < 6; k++)
                fprintf(out, " %10.0f", cJSON_GetObjectItem(o, names[k])->valuedouble);
            fputc('\n', out);
        }
        fprintf(out, "%-25s", "overall");
        for (int k = 0; k < 6; k++) fprintf(out, " %10llu", (unsigned long long)tot[k]);
        fputc('\n', out);
    }
    cJSON_Delete(root);
    free(agg);
    audit_free(&a);
    return rc;
}
