/*
 * kafka_dlqtool.c - tillstream-dlq stats: a full read of the dead-letter
 * topic (up to the end offsets captured at start), aggregated by the
 * tillstream.* headers the consumers write (docs/dead-letter.md).
 */
#include "tillstream/dlqtool.h"
#include "tillstream/dlhdr.h"

#include <cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tillstream/decode.h"
#include "tillstream/log.h"
#include "tillstream/route.h"

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

static void print_table(FILE *out, const char *title, const cJSON *obj) {
    fprintf(out, "\n%s\n", title);
    for (const cJSON *it = obj->child; it; it = it->next)
        fprintf(out, "  %-32s %10.0f\n", it->string, it->valuedouble);
}

typedef struct {
    cJSON *by_reason, *by_outlet, *by_account, *by_topic, *by_day;
    long total;
    int64_t oldest, newest;
} stats_t;

static int stats_one(void *opaque, rd_kafka_message_t *m) {
    stats_t *st = opaque;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    char buf[256];
    bump(st->by_reason, header(h, TS_DLH_REASON, buf, sizeof buf));
    bump(st->by_outlet, header(h, TS_DLH_OUTLET, buf, sizeof buf));
    bump(st->by_account, header(h, TS_DLH_ACCOUNT, buf, sizeof buf));
    bump(st->by_topic, header(h, TS_DLH_SOURCE_TOPIC, buf, sizeof buf));
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    time_t secs = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    bump(st->by_day, day);
    if (st->oldest < 0 || ts < st->oldest) st->oldest = ts;
    if (ts > st->newest) st->newest = ts;
    st->total++;
    return 0;
}

static int read_topic(const ts_config_t *cfg, const char *topic, const char *group, bool follow,
                      bool commit, int (*fn)(void *, rd_kafka_message_t *),
                      int (*before_commit)(void *), void *opaque);

int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out) {
    cJSON *root = cJSON_CreateObject();
    stats_t st = {cJSON_AddObjectToObject(root, "by_reason"),
                  cJSON_AddObjectToObject(root, "by_outlet"),
                  cJSON_AddObjectToObject(root, "by_account"),
                  cJSON_AddObjectToObject(root, "by_source_topic"),
                  cJSON_AddObjectToObject(root, "by_day"),
                  0,
                  -1,
                  -1};
    const char *topic = cfg->topic_dead_letter;
    int rc = read_topic(cfg, topic, NULL, false, false, stats_one, NULL, &st);
    cJSON_AddNumberToObject(root, "total", (double)st.total);
    char t1[40] = "", t2[40] = "";
    if (st.oldest >= 0) {
        time_t s1 = (time_t)(st.oldest / 1000), s2 = (time_t)(st.newest / 1000);
        struct tm a, b;
        gmtime_r(&s1, &a);
        gmtime_r(&s2, &b);
        strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", &a);
        strftime(t2, sizeof t2, "%Y-%m-%dT%H:%M:%SZ", &b);
        cJSON_AddStringToObject(root, "oldest", t1);
        cJSON_AddStringToObject(root, "newest", t2);
    }
    cJSON_AddStringToObject(root, "topic", topic);
    if (json) {
        char *s = cJSON_PrintUnformatted(root);
        fprintf(out, "%s\n", s);
        free(s);
    } else {
        fprintf(out, "dead-letter topic %s: %ld record(s)%s%s%s%s\n", topic, st.total,
                st.oldest >= 0 ? ", oldest " : "", t1, st.oldest >= 0 ? ", newest " : "", t2);
        print_table(out, "by reason", st.by_reason);
        print_table(out, "by outlet", st.by_outlet);
        print_table(out, "by account", st.by_account);
        print_table(out, "by source topic", st.by_topic);
        print_table(out, "by day (UTC)", st.by_day);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- shared reading ------------------------------------------------------------ */

/* Reads `topic` from `group`'s committed offsets (or the beginning when
 * group is NULL or has none) up to the end captured at start (or forever
 * with follow); calls fn per record. Commits when `commit`. */
static int read_topic(const ts_config_t *cfg, const char *topic, const char *group, bool follow,
                      bool commit, int (*fn)(void *, rd_kafka_message_t *),
                      int (*before_commit)(void *), void *opaque) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "tillstream-dlq: kafka.%s: %s\n", cfg->kafka[i].key, err);
            rd_kafka_conf_destroy(conf);
            return 2;
        }
    rd_kafka_conf_set(conf, "group.id", group ? group : "tillstream-dlq-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "65536", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) return 1;
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int parts = 0;
    if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000)) {
        if (md->topic_cnt == 1 && !md->topics[0].err) parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (!parts) {
        fprintf(stderr, "tillstream-dlq: cannot read topic %s\n", topic);
        rd_kafka_destroy(rk);
        return 1;
    }
    int64_t *end = calloc((size_t)parts, sizeof *end);
    int remaining = 0;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(pl, topic, p);
    if (group) rd_kafka_committed(rk, pl, 10000);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        int64_t start = group && pl->elems[p].offset >= 0 ? pl->elems[p].offset : lo;
        pl->elems[p].offset = start > lo ? start : RD_KAFKA_OFFSET_BEGINNING;
        end[p] = hi > (start > lo ? start : lo) ? hi : -1;
        if (end[p] >= 0) remaining++;
    }
    rd_kafka_assign(rk, pl);
    int rc = 0;
    while ((remaining > 0 || follow) && rc == 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (!m->err) {
            rc = fn(opaque, m);
            if (!follow && m->partition < parts && end[m->partition] >= 0 &&
                m->offset + 1 >= end[m->partition]) {
                end[m->partition] = -1;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (commit && rc == 0 && before_commit) rc = before_commit(opaque);
    if (commit && rc == 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            fprintf(stderr, "tillstream-dlq: commit: %s\n", rd_kafka_err2str(e));
            rc = 1;
        }
    }
    rd_kafka_topic_partition_list_destroy(pl);
    free(end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

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

/* ---- show / tail ---------------------------------------------------------------- */

typedef struct {
    const ts_dlqtool_opts_t *o;
    FILE *out;
    long shown;
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
static void add_value(cJSON *rec, const rd_kafka_message_t *m) {
    if (!m->payload) return;
    const unsigned char *p = m->payload;
    cJSON *value = cJSON_ParseWithLength(m->payload, m->len);
    if (value) {
        cJSON_AddItemToObject(rec, "value", value);
    } else {
        add_bytes(rec, "value_raw", "value_base64", p, m->len);
        if (m->len >= 5 && p[0] == 0) { /* a NUL: never text, so base64 */
            cJSON_AddStringToObject(rec, "value_format", "confluent-avro");
            cJSON_AddNumberToObject(rec, "schema_id",
                                    (double)(int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                                                      (uint32_t)p[3] << 8 | p[4]));
        }
    }
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
    add_value(rec, m);
    char *txt = s->o->json ? cJSON_PrintUnformatted(rec) : cJSON_Print(rec);
    fprintf(s->out, "%s\n", txt);
    fflush(s->out);
    free(txt);
    cJSON_Delete(rec);
    s->shown++;
    return 0;
}

int ts_dlqtool_show(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out) {
    show_t s = {o, out, 0};
    int rc = read_topic(cfg, cfg->topic_dead_letter, NULL, o->follow, false, show_one, NULL, &s);
    if (!o->json) fprintf(stderr, "%ld record(s)\n", s.shown);
    return rc;
}

/* ---- redrive ---------------------------------------------------------------------- */

typedef struct {
    const ts_dlqtool_opts_t *o;
    FILE *out;
    rd_kafka_t *producer;
    long redriven, skipped_max, failed;
} redrive_t;

static void redrive_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    redrive_t *r = opaque;
    if (m->err) r->failed++;
}

static int redrive_one(void *opaque, rd_kafka_message_t *m) {
    redrive_t *r = opaque;
    if (!matches(r->o, m)) return 0;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    char buf[256], topic[256], cnt[16];
    snprintf(topic, sizeof topic, "%s", header(h, TS_DLH_SOURCE_TOPIC, buf, sizeof buf));
    int count = atoi(header(h, TS_DLH_REDRIVE_COUNT, buf, sizeof buf));
    char *key = m->key ? strndup(m->key, m->key_len) : strdup("");
    if (count >= r->o->max_redrives) {
        fprintf(r->out, "skip     %s offset %lld key %s: redriven %d times already\n", topic,
                (long long)m->offset, key, count);
        r->skipped_max++;
        free(key);
        return 0;
    }
    fprintf(r->out, "%s %s key %s (%s, redrive %d)\n",
            r->o->dry_run ? "would redrive to" : "redrive  to", topic, key,
            header(h, TS_DLH_REASON, buf, sizeof buf), count + 1);
    free(key);
    if (r->o->dry_run) {
        r->redriven++;
        return 0;
    }
    /* original headers without our dead-letter context, plus the count */
    rd_kafka_headers_t *nh = rd_kafka_headers_new(8);
    const char *name;
    const void *val;
    size_t sz;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &val, &sz); i++)
        if (strncmp(name, TS_DLH_PREFIX, sizeof TS_DLH_PREFIX - 1) &&
            strncmp(name, TS_DLH_CONNECT_PREFIX, sizeof TS_DLH_CONNECT_PREFIX - 1))
            rd_kafka_header_add(nh, name, -1, val, (ssize_t)sz);
    snprintf(cnt, sizeof cnt, "%d", count + 1);
    rd_kafka_header_add(nh, TS_DLH_REDRIVE_COUNT, -1, cnt, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_HEADERS(nh), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(nh);
        fprintf(stderr, "tillstream-dlq: produce to %s: %s\n", topic, rd_kafka_err2str(err));
        return 1;
    }
    rd_kafka_poll(r->producer, 0);
    r->redriven++;
    return 0;
}

/* Commit only once every re-produced record is acknowledged by the broker. */
static int redrive_flush(void *opaque) {
    redrive_t *r = opaque;
    if (!r->producer) return 0;
    rd_kafka_flush(r->producer, 30000);
    return r->failed || rd_kafka_outq_len(r->producer) > 0 ? 1 : 0;
}

int ts_dlqtool_redrive(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out) {
    char err[512];
    redrive_t r = {o, out, NULL, 0, 0, 0};
    if (!o->dry_run) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        for (size_t i = 0; i < cfg->n_kafka; i++)
            rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, sizeof err);
        rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(conf, redrive_dr);
        rd_kafka_conf_set_opaque(conf, &r);
        if (!(r.producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
            fprintf(stderr, "tillstream-dlq: %s\n", err);
            return 1;
        }
    }
    char group[300];
    snprintf(group, sizeof group, "%s", o->group ? o->group : "tillstream-dlq-redrive");
    /* the group remembers what was redriven; a dry run reads without committing */
    int rc = read_topic(cfg, cfg->topic_dead_letter, group, false, !o->dry_run, redrive_one,
                        redrive_flush, &r);
    if (r.producer) rd_kafka_destroy(r.producer);
    fprintf(out, "%s%ld record(s) %s, %ld at the redrive limit (%d)\n",
            o->dry_run ? "dry run: " : "", r.redriven,
            o->dry_run ? "would be redriven" : "redriven", r.skipped_max, o->max_redrives);
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

typedef struct {
    char *key;     /* NULL = empty slot */
    int outlet;    /* index into outlets, -1 none */
    uint8_t flags; /* A_*; 0xff = deleted */
} aslot_t;

typedef struct {
    const ts_config_t *cfg;
    ts_router_t *router;
    ts_arena_t *arena;
    ts_decoder_t *dec; /* JSON, Confluent Avro (registry), raw Avro */
    aslot_t *slots;
    size_t cap, n;
    char **outlets;
    size_t n_outlets;
    uint64_t records, undecodable;
} audit_t;

static uint64_t akey_hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    return h;
}

static aslot_t *aslot(audit_t *a, const char *k, size_t n) {
    if ((a->n + 1) * 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 1 << 16;
        aslot_t *ns = calloc(nc, sizeof *ns);
        for (size_t i = 0; i < a->cap; i++) {
            if (!a->slots[i].key) continue;
            size_t j = akey_hash(a->slots[i].key, strlen(a->slots[i].key)) & (nc - 1);
            while (ns[j].key) j = (j + 1) & (nc - 1);
            ns[j] = a->slots[i];
        }
        free(a->slots);
        a->slots = ns;
        a->cap = nc;
    }
    size_t j = akey_hash(k, n) & (a->cap - 1);
    while (a->slots[j].key && (strlen(a->slots[j].key) != n || memcmp(a->slots[j].key, k, n)))
        j = (j + 1) & (a->cap - 1);
    if (!a->slots[j].key) {
        a->slots[j].key = strndup(k, n);
        a->slots[j].outlet = -1;
        a->n++;
    }
    return &a->slots[j];
}

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
    aslot_t *s = aslot(a, m->key, m->key_len);
    if (!m->payload) { /* tombstone: the latest record wins */
        s->flags = 0xff;
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
            fprintf(stderr, "tillstream-dlq: audit stopped: %s\n", err);
            return 1;
        }
        usleep(500 * 1000);
    }
    if (rc != TS_OK) {
        a->undecodable++;
        s->flags = 0xff;
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
    s->flags = f;
    s->outlet = outlet_index(a, c.home_outlet_id);
    return 0;
}

static void audit_free(audit_t *a) {
    for (size_t i = 0; i < a->cap; i++) free(a->slots[i].key);
    free(a->slots);
    for (size_t i = 0; i < a->n_outlets; i++) free(a->outlets[i]);
    free(a->outlets);
    ts_arena_destroy(a->arena);
    ts_router_destroy(a->router);
    ts_decoder_destroy(a->dec);
}

int ts_dlqtool_audit(const ts_config_t *cfg, bool json, FILE *out) {
    char err[256];
    audit_t a = {
        cfg, ts_router_new(cfg, err, sizeof err), ts_arena_new(0), NULL, NULL, 0, 0, NULL, 0, 0, 0};
    if (!(a.dec = ts_decoder_new(cfg, TS_KIND_CUSTOMER, err, sizeof err))) {
        fprintf(stderr, "tillstream-dlq: %s\n", err);
        ts_arena_destroy(a.arena);
        ts_router_destroy(a.router);
        return 2;
    }
    int64_t t0 = ts_now_mono_ms();
    int rc = read_topic(cfg, cfg->topic_customers, NULL, false, false, audit_one, NULL, &a);
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
    for (size_t i = 0; i < a.cap; i++) {
        aslot_t *s = &a.slots[i];
        if (!s->key || s->flags == 0xff) continue;
        size_t row = s->outlet < 0 ? a.n_outlets : (size_t)s->outlet;
        uint64_t v[6] = {1,
                         !!(s->flags & A_NO_HOME),
                         !!(s->flags & A_UNMAPPED),
                         !!(s->flags & A_NO_ID),
                         !!(s->flags & A_EMAIL_SUB),
                         !!(s->flags & A_SMS_SUB)};
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
        char *t = cJSON_PrintUnformatted(root);
        fprintf(out, "%s\n", t);
        free(t);
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
