/*
 * bench_decode - decode throughput per core of the consumers' decoder:
 * generated POS orders (tillstream-gen's generator) as JSON and as
 * Confluent-framed Avro (current schema, and an older writer schema that
 * needs resolution), decoded with ts_decoder_decode() in one thread.
 *   bench_decode [N=20000] [ROUNDS=5]
 * Prints records/s and MB/s per format (CPU time of this thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/avro.h"
#include "tillstream/avro_enc.h"
#include "tillstream/gen.h"

static const char ORDER_OLD[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"order_id\",\"type\":\"string\"},"
    "{\"name\":\"customer_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"OrderStatus\",\"symbols\":["
    "\"completed\",\"fulfilled\",\"cancelled\",\"refunded\",\"voided\"]}},"
    "{\"name\":\"occurred_at\",\"type\":\"long\"},"
    "{\"name\":\"total\",\"type\":\"bytes\"},"
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"OrderLine\",\"fields\":[{\"name\":\"line_id\",\"type\":\"string\"},"
    "{\"name\":\"sku\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"quantity\",\"type\":\"bytes\"},{\"name\":\"row_total\",\"type\":\"bytes\"}]}}}]}";

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct {
    ts_buf_t data;
    size_t *off, *len, n;
} set_t;

static void add(set_t *s, const char *p, size_t n) {
    s->off[s->n] = s->data.len;
    s->len[s->n++] = n;
    ts_buf_append(&s->data, p, n);
}

static void run(const char *name, ts_decoder_t *d, const set_t *s, int rounds) {
    ts_arena_t *a = ts_arena_new(0);
    char err[512];
    ts_order_t o;
    size_t bad = 0;
    double best = 1e9;
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_s();
        for (size_t i = 0; i < s->n; i++) {
            ts_arena_reset(a);
            if (ts_decoder_decode(d, s->data.data + s->off[i], s->len[i], a, &o, err, sizeof err))
                bad++;
        }
        double t = cpu_s() - t0;
        if (t < best) best = t;
    }
    printf("%-22s %8zu records %7.1f B/record  %9.0f records/s  %6.1f MB/s  (%zu errors)\n", name,
           s->n, (double)s->data.len / (double)s->n, (double)s->n / best,
           (double)s->data.len / best / 1e6, bad);
    ts_arena_destroy(a);
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    static const char *const outlets[] = {"101", "102", "201", "202", "301"};
    ts_gen_opts_t go = {42, n / 4 + 1, outlets, 5, 0.15, 0.03, 0.02};
    ts_gen_t *g = ts_gen_new(&go);
    char err[512];
    ts_avro_enc_t *enc = ts_avro_enc_new(TS_KIND_ORDER, NULL, err, sizeof err);
    ts_avro_enc_t *enc_old = ts_avro_enc_new(TS_KIND_ORDER, ORDER_OLD, err, sizeof err);
    ts_arena_t *a = ts_arena_new(0);
    set_t js = {TS_BUF_INIT, calloc(n, sizeof(size_t)), calloc(n, sizeof(size_t)), 0};
    set_t av = {TS_BUF_INIT, calloc(n, sizeof(size_t)), calloc(n, sizeof(size_t)), 0};
    set_t old = {TS_BUF_INIT, calloc(n, sizeof(size_t)), calloc(n, sizeof(size_t)), 0};
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT, b = TS_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        add(&js, v.data, v.len);
        ts_order_t o;
        ts_arena_reset(a);
        if (ts_decode_order_json(v.data, v.len, a, &o, err, sizeof err)) {
            fprintf(stderr, "bench_decode: %s\n", err);
            return 1;
        }
        ts_buf_reset(&b);
        ts_avro_encode(enc, &o, 1, &b, err, sizeof err);
        add(&av, b.data, b.len);
        ts_buf_reset(&b);
        ts_avro_encode(enc_old, &o, 2, &b, err, sizeof err);
        add(&old, b.data, b.len);
    }
    ts_decoder_t *d = ts_decoder_new(NULL, TS_KIND_ORDER, err, sizeof err);
    ts_decoder_add_writer(d, 1, ts_schema_order_avsc, err, sizeof err);
    ts_decoder_add_writer(d, 2, ORDER_OLD, err, sizeof err);
    run("JSON order", d, &js, rounds);
    run("Avro order (same)", d, &av, rounds);
    run("Avro order (resolved)", d, &old, rounds);
    ts_decoder_destroy(d);
    ts_avro_enc_destroy(enc);
    ts_avro_enc_destroy(enc_old);
    ts_arena_destroy(a);
    ts_gen_destroy(g);
    return 0;
}
