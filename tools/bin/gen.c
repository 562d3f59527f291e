/*
 * tillstream-gen: realistic POS customers and orders for tests, demos and
 * benchmarks, reproducible by seed. Writes JSON lines (`key<TAB>value` with
 * --keys, the format `kcat -K'\t'` produces from), or the ground-truth
 * counts with --counts. With --format avro each record is Confluent-framed
 * Avro (schema registered with --registry, or --schema-id-* given), one
 * file per record in the --out-* directory (for kcat -P: one message per
 * file); --writer-schema-* encode with another (older or newer) version.
 *
 *   tillstream-gen --customers 1000 --orders 5000 --seed 42 \
 *       --out-customers c.jsonl --out-orders o.jsonl [--keys] [--counts]
 *       [--rate N]   (records per second; default as fast as possible)
 *
 * With --kafka BOOTSTRAP the records are produced to --topic-customers /
 * --topic-orders (keyed by customer_id / order_id, acks=all, idempotent),
 * as JSON or, with --format avro, Confluent-framed Avro; the --out-* are
 * then optional.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

#include "tillstream/avro.h"
#include "tillstream/avro_enc.h"
#include "tillstream/cli.h"
#include "tillstream/gen.h"
#include "tillstream/kconf.h"
#include "tillstream/registry.h"

typedef struct {
    ts_kind_t kind;
    ts_avro_enc_t *enc;
    int32_t id;
    const char *dir; /* NULL: no files (Kafka only) */
    bool on;
    uint64_t n;
    ts_arena_t *arena;
    ts_buf_t bin;
} avro_out_t;

static char *slurp(const char *path) {
    ts_buf_t b = TS_BUF_INIT;
    if (ts_file_read(path, 4u << 20, &b) == TS_OK) return b.data;
    ts_buf_free(&b);
    return NULL;
}

/* Sets up Avro output for one kind; returns 0 or prints why and returns -1. */
static int avro_setup(avro_out_t *a, ts_kind_t kind, const char *dir, const char *schema_file,
                      int32_t id, ts_registry_t *reg, const char *topic) {
    char err[512];
    char *json = NULL;
    a->kind = kind;
    a->dir = dir;
    a->id = id;
    if (!dir && !a->on) return 0;
    if (schema_file && !(json = slurp(schema_file))) {
        fprintf(stderr, "tillstream-gen: cannot read %s\n", schema_file);
        return -1;
    }
    const char *wj = json                       ? json
                     : kind == TS_KIND_CUSTOMER ? ts_schema_customer_avsc
                                                : ts_schema_order_avsc;
    if (!(a->enc = ts_avro_enc_new(kind, wj, err, sizeof err))) {
        fprintf(stderr, "tillstream-gen: %s\n", err);
        free(json);
        return -1;
    }
    if (reg) {
        char subject[256];
        snprintf(subject, sizeof subject, "%s-value", topic);
        if (ts_registry_register(reg, subject, wj, &a->id, err, sizeof err)) {
            fprintf(stderr, "tillstream-gen: %s\n", err);
            free(json);
            return -1;
        }
        fprintf(stderr, "tillstream-gen: subject %s: schema id %ld\n", subject, (long)a->id);
    }
    free(json);
    if (a->id < 0) {
        fprintf(stderr, "tillstream-gen: --format avro needs --registry or --schema-id-*\n");
        return -1;
    }
    if (dir && mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "tillstream-gen: cannot create %s\n", dir);
        return -1;
    }
    a->arena = ts_arena_new(0);
    return 0;
}

/* Re-encodes one generated JSON record as a framed Avro file. */
static int avro_emit(avro_out_t *a, const ts_buf_t *v) {
    char err[512], path[4096];
    union {
        ts_customer_t c;
        ts_order_t o;
    } r;
    ts_arena_reset(a->arena);
    ts_buf_reset(&a->bin);
    ts_err_t rc = a->kind == TS_KIND_CUSTOMER
                      ? ts_decode_customer_json(v->data, v->len, a->arena, &r.c, err, sizeof err)
                      : ts_decode_order_json(v->data, v->len, a->arena, &r.o, err, sizeof err);
    if (!rc) rc = ts_avro_encode(a->enc, &r, a->id, &a->bin, err, sizeof err);
    if (rc) {
        fprintf(stderr, "tillstream-gen: %s\n", err);
        return -1;
    }
    if (!a->dir) return 0;
    snprintf(path, sizeof path, "%s/%08llu.avro", a->dir, (unsigned long long)a->n++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a->bin.data, 1, a->bin.len, f) != a->bin.len || fclose(f)) {
        fprintf(stderr, "tillstream-gen: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static void avro_free(avro_out_t *a) {
    ts_avro_enc_destroy(a->enc);
    ts_arena_destroy(a->arena);
    ts_buf_free(&a->bin);
}

/* ---- --kafka: produce directly ---------------------------------------- */
static uint64_t delivery_failures;
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *o) {
    (void)rk;
    (void)o;
    if (m->err) {
        if (!delivery_failures++)
            fprintf(stderr, "tillstream-gen: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static rd_kafka_t *producer_new(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *conf = ts_kconf_new(NULL, TS_KCONF_PRODUCER, err, sizeof err);
    if (!conf || ts_kconf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        ts_kconf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
        ts_kconf_set(conf, "linger.ms", "20", err, sizeof err)) {
        fprintf(stderr, "tillstream-gen: %s\n", err);
        if (conf) rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) fprintf(stderr, "tillstream-gen: kafka: %s\n", err);
    return rk;
}

static int produce(rd_kafka_t *rk, const char *topic, const ts_buf_t *k, const void *v,
                   size_t vlen) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(k->data, k->len), RD_KAFKA_V_VALUE((void *)v, vlen), RD_KAFKA_V_END);
        if (!e) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "tillstream-gen: produce to %s: %s\n", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 100); /* wait for room */
    }
    rd_kafka_poll(rk, 0);
    return 0;
}

static void pace(double rate, uint64_t n, int64_t t0) {
    if (rate <= 0) return;
    int64_t due = t0 + (int64_t)((double)n * 1000.0 / rate);
    int64_t now = ts_now_mono_ms();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The command line, as parsed. */
typedef struct {
    size_t customers, orders;
    uint64_t seed;
    double rate, online, unmapped, nocontact;
    const char *oc, *oo; /* --out-customers, --out-orders */
    bool keys, counts, avro;
    const char *registry, *wsc, *wso, *kafka;
    const char *topic_c, *topic_o;
    long id_c, id_o;
} args_t;

static void usage(void) {
    printf("Usage: tillstream-gen [--customers N] [--orders M] [--seed S] [--rate R]\n"
           "  [--online-share F] [--unmapped-share F] [--no-contact-share F]\n"
           "  [--out-customers FILE] [--out-orders FILE] [--keys] [--counts]\n"
           "  [--format json|avro] [--registry URL] [--topic-customers T]\n"
           "  [--topic-orders T] [--writer-schema-customers FILE]\n"
           "  [--writer-schema-orders FILE] [--schema-id-customers N]\n"
           "  [--schema-id-orders N] [--kafka BOOTSTRAP]\n"
           "Outlets 101 102 201 202 301 (and 999: unmapped). '-' = stdout.\n"
           "Avro: the --out-* are directories, one Confluent-framed file per record\n"
           "(kcat -P -t TOPIC DIR/*); the schema is registered under TOPIC-value.\n"
           "--kafka: produce keyed records to the topics (JSON or Avro).\n");
}

static int parse_format(void *dst, const char *v) {
    if (strcmp(v, "json") && strcmp(v, "avro")) {
        fprintf(stderr, "tillstream-gen: --format json|avro\n");
        return 2;
    }
    *(bool *)dst = !strcmp(v, "avro");
    return 0;
}

/* Fills *a: -1 to go on, else the exit code (--help, --version, usage). */
static int parse_args(args_t *a, int argc, char **argv) {
    const ts_cli_opt_t opts[] = {
        TS_CLI("customers", SIZE, &a->customers),
        TS_CLI("orders", SIZE, &a->orders),
        TS_CLI("seed", U64, &a->seed),
        TS_CLI("rate", DOUBLE, &a->rate),
        TS_CLI("online-share", DOUBLE, &a->online),
        TS_CLI("unmapped-share", DOUBLE, &a->unmapped),
        TS_CLI("no-contact-share", DOUBLE, &a->nocontact),
        TS_CLI("out-customers", STR, &a->oc),
        TS_CLI("out-orders", STR, &a->oo),
        TS_CLI("keys", FLAG, &a->keys),
        TS_CLI_FN("format", &a->avro, parse_format),
        TS_CLI("registry", STR, &a->registry),
        TS_CLI("topic-customers", STR, &a->topic_c),
        TS_CLI("topic-orders", STR, &a->topic_o),
        TS_CLI("writer-schema-customers", STR, &a->wsc),
        TS_CLI("writer-schema-orders", STR, &a->wso),
        TS_CLI("schema-id-customers", LONG, &a->id_c),
        TS_CLI("schema-id-orders", LONG, &a->id_o),
        TS_CLI("counts", FLAG, &a->counts),
        TS_CLI("kafka", STR, &a->kafka),
        TS_CLI_RET("help", 'h'),
        TS_CLI_RET("version", 'V'),
    };
    switch (ts_cli_parse(argc, argv, opts, sizeof opts / sizeof *opts)) {
    case 0: return -1;
    case 'h': usage(); return 0;
    case 'V': printf("tillstream-gen %s\n", TS_VERSION); return 0;
    default: return 2;
    }
}

/* Where the records go: JSON lines, Avro files, a Kafka producer. */
typedef struct {
    FILE *fc, *fo;
    avro_out_t ac, ao;
    rd_kafka_t *rk;
} sinks_t;

/* Registers or loads the writer schemas (--format avro). */
static int avro_sinks(sinks_t *s, const args_t *a) {
    char err[512];
    ts_registry_t *reg = NULL;
    if (a->registry) {
        ts_registry_opts_t ro = {.url = a->registry};
        if (!(reg = ts_registry_new(&ro, err, sizeof err))) {
            fprintf(stderr, "tillstream-gen: %s\n", err);
            return 2;
        }
    }
    int bad =
        avro_setup(&s->ac, TS_KIND_CUSTOMER, a->oc, a->wsc, (int32_t)a->id_c, reg, a->topic_c) ||
        avro_setup(&s->ao, TS_KIND_ORDER, a->oo, a->wso, (int32_t)a->id_o, reg, a->topic_o);
    ts_registry_destroy(reg);
    return bad ? 1 : 0;
}

/* -1 when every sink is open, else the exit code. */
static int open_sinks(sinks_t *s, const args_t *a) {
    s->ac.on = s->ao.on = a->kafka != NULL;
    s->rk = a->kafka ? producer_new(a->kafka) : NULL;
    if (a->kafka && !s->rk) return 2;
    int rc = a->avro ? avro_sinks(s, a) : 0;
    if (rc) return rc;
    s->fc = !a->oc || a->avro ? NULL : strcmp(a->oc, "-") ? fopen(a->oc, "w") : stdout;
    s->fo = !a->oo || a->avro ? NULL : strcmp(a->oo, "-") ? fopen(a->oo, "w") : stdout;
    if (!a->avro && ((a->oc && !s->fc) || (a->oo && !s->fo))) {
        fprintf(stderr, "tillstream-gen: cannot open an output file\n");
        return 1;
    }
    return -1;
}

/* One record (key k, JSON value v) to its line file, Avro file and topic. */
static int emit(const args_t *a, FILE *f, avro_out_t *ao, rd_kafka_t *rk, const char *topic,
                const ts_buf_t *k, const ts_buf_t *v) {
    if (f) fprintf(f, "%s%s%s\n", a->keys ? k->data : "", a->keys ? "\t" : "", v->data);
    if (ao->enc && avro_emit(ao, v)) return -1;
    if (rk &&
        produce(rk, topic, k, ao->enc ? ao->bin.data : v->data, ao->enc ? ao->bin.len : v->len))
        return -1;
    return 0;
}

/* The producer's records delivered (flushed within 60 s): 0, else 1. */
static int flush_kafka(rd_kafka_t *rk) {
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, 60000);
    rd_kafka_destroy(rk);
    if (!fe && !delivery_failures) return 0;
    fprintf(stderr, "tillstream-gen: %llu record(s) not delivered%s\n",
            (unsigned long long)delivery_failures, fe ? " (flush timed out)" : "");
    return 1;
}

static void print_counts(const ts_gen_t *g) {
    const ts_gen_counts_t *ct = ts_gen_counts(g);
    printf("{\"customers\":%llu,\"no_home_outlet\":%llu,\"unmapped_outlet\":%llu,\"no_"
           "identifier\":%llu,"
           "\"email_subscribed\":%llu,\"sms_subscribed\":%llu,\"orders\":%llu,\"voided\":%llu,"
           "\"test\":%llu,"
           "\"refunded\":%llu,\"cancelled\":%llu,\"lines\":%llu}\n",
           (unsigned long long)ct->customers, (unsigned long long)ct->no_home_outlet,
           (unsigned long long)ct->unmapped_outlet, (unsigned long long)ct->no_identifier,
           (unsigned long long)ct->email_subscribed, (unsigned long long)ct->sms_subscribed,
           (unsigned long long)ct->orders, (unsigned long long)ct->voided,
           (unsigned long long)ct->test, (unsigned long long)ct->refunded,
           (unsigned long long)ct->cancelled, (unsigned long long)ct->lines);
}

int main(int argc, char **argv) {
    static const char *const outlets[] = {"101", "102", "201", "202", "301"};
    args_t a = {.customers = 100,
                .orders = 500,
                .seed = 1,
                .online = 0.15,
                .unmapped = 0.03,
                .nocontact = 0.02,
                .topic_c = "pos.customers",
                .topic_o = "pos.orders",
                .id_c = -1,
                .id_o = -1};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    ts_gen_opts_t go = {.seed = a.seed,
                        .customers = a.customers,
                        .outlets = outlets,
                        .n_outlets = 5,
                        .online_share = a.online,
                        .unmapped_share = a.unmapped,
                        .no_contact_share = a.nocontact};
    ts_gen_t *g = ts_gen_new(&go);
    sinks_t s = {0};
    if ((rc = open_sinks(&s, &a)) >= 0) return rc;
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT;
    int64_t t0 = ts_now_mono_ms();
    uint64_t n = 0;
    for (size_t i = 0; i < a.customers; i++, n++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_customer(g, i, &k, &v);
        if (emit(&a, s.fc, &s.ac, s.rk, a.topic_c, &k, &v)) return 1;
        pace(a.rate, n, t0);
    }
    for (size_t i = 0; i < a.orders; i++, n++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        if (emit(&a, s.fo, &s.ao, s.rk, a.topic_o, &k, &v)) return 1;
        pace(a.rate, n, t0);
    }
    if (s.rk && flush_kafka(s.rk)) return 1;
    if (a.counts) print_counts(g);
    if (s.fc && s.fc != stdout) fclose(s.fc);
    if (s.fo && s.fo != stdout) fclose(s.fo);
    ts_buf_free(&k);
    ts_buf_free(&v);
    avro_free(&s.ac);
    avro_free(&s.ao);
    ts_gen_destroy(g);
    return 0;
}
