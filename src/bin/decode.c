/*
 * tillstream-decode: runs Kafka record payloads through the consumers'
 * decoder (per-record detection of Confluent Avro via the schema registry,
 * JSON, raw Avro) and prints one JSON line per record: the decoded fields
 * that routing and mapping use, or the dead-letter reason and detail the
 * consumer would give. For producers checking their records, and for the
 * Avro integration tests.
 *
 *   kcat -C -b BROKER -t pos.orders -e -f '%o %S\n%s\n' |
 *       tillstream-decode --kind orders --registry http://127.0.0.1:8081
 *
 * Input: records framed as "<offset> <size>\n<size bytes>\n" (the kcat
 * format above); --file F decodes one whole file as one record.
 * Exit code 0 when the input was read (bad records included), 2 on usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/decode.h"

static void put_str(ts_buf_t *b, const char *k, const char *v) {
    ts_buf_printf(b, ",\"%s\":", k);
    if (!v) {
        ts_buf_puts(b, "null");
        return;
    }
    ts_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            ts_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            ts_buf_printf(b, "\\u%04x", *p);
        else
            ts_buf_putc(b, (char)*p);
    }
    ts_buf_putc(b, '"');
}
static void put_dec(ts_buf_t *b, const char *k, ts_decimal_t d) {
    char t[40];
    if (!d.present) {
        ts_buf_printf(b, ",\"%s\":null", k);
        return;
    }
    ts_decimal_format(d, t, sizeof t);
    ts_buf_printf(b, ",\"%s\":\"%s\"", k, t);
}
static const char *tri(ts_tri_t t) {
    return t == TS_TRI_TRUE ? "true" : t == TS_TRI_FALSE ? "false" : "null";
}

static void one(ts_decoder_t *d, ts_kind_t kind, long long offset, const char *p, size_t n,
                ts_arena_t *arena, ts_buf_t *b) {
    char err[512];
    union {
        ts_customer_t c;
        ts_order_t o;
    } r;
    ts_arena_reset(arena);
    ts_buf_reset(b);
    ts_buf_printf(b, "{\"offset\":%lld", offset);
    ts_err_t rc = ts_decoder_decode(d, p, n, arena, &r, err, sizeof err);
    if (rc) {
        const char *what = rc == TS_ERR_NOT_FOUND ? "SCHEMA_NOT_FOUND"
                           : ts_err_retryable(rc) ? "TRANSIENT"
                                                  : "DECODE_ERROR";
        put_str(b, "result", what);
        put_str(b, "detail", err);
    } else if (kind == TS_KIND_CUSTOMER) {
        const ts_customer_t *c = &r.c;
        put_str(b, "result", "ok");
        put_str(b, "customer_id", c->customer_id);
        put_str(b, "email", c->email);
        put_str(b, "phone", c->phone);
        put_str(b, "first_name", c->first_name);
        put_str(b, "home_outlet_id", c->home_outlet_id);
        ts_buf_printf(b, ",\"email_consent\":%s,\"sms_consent\":%s,\"created_at\":%lld",
                      tri(c->email_consent), tri(c->sms_consent), (long long)c->created_at_ms);
        put_str(b, "city", c->has_billing_address ? c->billing_address.city : NULL);
    } else {
        const ts_order_t *o = &r.o;
        put_str(b, "result", "ok");
        put_str(b, "order_id", o->order_id);
        put_str(b, "customer_id", o->customer_id);
        put_str(b, "outlet_id", o->outlet_id);
        put_str(b, "channel", ts_channel_name(o->channel));
        put_str(b, "status", ts_order_status_name(o->status));
        ts_buf_printf(b, ",\"is_test\":%s,\"occurred_at\":%lld", o->is_test ? "true" : "false",
                      (long long)o->occurred_at_ms);
        put_str(b, "currency", o->currency[0] ? o->currency : NULL);
        put_dec(b, "total", o->total);
        put_dec(b, "tax", o->tax);
        ts_buf_puts(b, ",\"lines\":[");
        for (size_t i = 0; i < o->n_lines; i++) {
            ts_buf_printf(b, "%s{\"line_id\":", i ? "," : "");
            ts_buf_t tmp = TS_BUF_INIT;
            put_str(&tmp, "x", o->lines[i].line_id);
            ts_buf_puts(b, tmp.data + 5);
            ts_buf_free(&tmp);
            put_str(b, "sku", o->lines[i].sku);
            put_dec(b, "quantity", o->lines[i].quantity);
            put_dec(b, "row_total", o->lines[i].row_total);
            ts_buf_printf(b, ",\"n_categories\":%zu}", o->lines[i].n_categories);
        }
        ts_buf_putc(b, ']');
        put_str(b, "refund_id", o->refund.present ? o->refund.refund_id : NULL);
        put_str(b, "customer_home_outlet_id",
                o->customer.present ? o->customer.home_outlet_id : NULL);
    }
    ts_buf_puts(b, "}\n");
    fwrite(b->data, 1, b->len, stdout);
}

typedef struct {
    const char *kind, *registry, *file, *raw;
} args_t;

/* Fills *a: -1 to go on, else the exit code (--help, --version, usage). */
static int parse_args(args_t *a, int argc, char **argv) {
    static const struct option opts[] = {
        {"kind", 1, NULL, 'k'}, {"registry", 1, NULL, 'r'},
        {"file", 1, NULL, 'f'}, {"raw-writer-schema", 1, NULL, 'w'},
        {"help", 0, NULL, 'h'}, {"version", 0, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 'k': a->kind = optarg; break;
        case 'r': a->registry = optarg; break;
        case 'f': a->file = optarg; break;
        case 'w': a->raw = optarg; break;
        case 'h':
            printf("Usage: tillstream-decode --kind customers|orders [--registry URL]\n"
                   "  [--raw-writer-schema FILE] [--file RECORD]\n"
                   "Reads kcat -f '%%o %%S\\n%%s\\n' output from stdin (or one --file) and\n"
                   "prints one JSON line per record.\n");
            return 0;
        case 'V': printf("tillstream-decode %s\n", TS_VERSION); return 0;
        default: return 2;
        }
    }
    if (!a->kind || (strcmp(a->kind, "customers") && strcmp(a->kind, "orders"))) {
        fprintf(stderr, "tillstream-decode: --kind customers|orders is required\n");
        return 2;
    }
    return -1;
}

/* The consumers' decoder for --registry and --raw-writer-schema; NULL
 * after printing why. */
static ts_decoder_t *decoder_new(const args_t *a, ts_kind_t kind) {
    ts_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.registry_url = (char *)a->registry;
    char err[512];
    ts_decoder_t *d = ts_decoder_new(&cfg, kind, err, sizeof err);
    if (!d) {
        fprintf(stderr, "tillstream-decode: %s\n", err);
        return NULL;
    }
    if (!a->raw) return d;
    ts_buf_t schema = TS_BUF_INIT;
    bool read = ts_file_read(a->raw, 4u << 20, &schema) == TS_OK;
    if (!read || ts_decoder_set_raw_writer(d, schema.data, err, sizeof err)) {
        fprintf(stderr, "tillstream-decode: %s: %s\n", a->raw, read ? err : "cannot read");
        ts_decoder_destroy(d);
        d = NULL;
    }
    ts_buf_free(&schema);
    return d;
}

/* kcat's "<offset> <size>\n<size bytes>\n" records, one line each; a
 * negative size is a tombstone. Stops at the first incomplete record. */
static void decode_framed(ts_decoder_t *d, ts_kind_t kind, const ts_buf_t *in, ts_arena_t *arena,
                          ts_buf_t *out) {
    size_t pos = 0;
    while (pos < in->len) {
        long long off, size;
        char *nl = memchr(in->data + pos, '\n', in->len - pos);
        if (!nl || sscanf(in->data + pos, "%lld %lld", &off, &size) != 2) break;
        pos = (size_t)(nl - in->data) + 1;
        if (size < 0) { /* tombstone */
            printf("{\"offset\":%lld,\"result\":\"tombstone\"}\n", off);
            pos += 1;
            continue;
        }
        if ((size_t)size > in->len - pos) break;
        one(d, kind, off, in->data + pos, (size_t)size, arena, out);
        pos += (size_t)size + 1;
    }
}

int main(int argc, char **argv) {
    args_t a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    ts_kind_t kind = strcmp(a.kind, "customers") ? TS_KIND_ORDER : TS_KIND_CUSTOMER;
    ts_decoder_t *d = decoder_new(&a, kind);
    if (!d) return 2;
    FILE *f = a.file ? fopen(a.file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "tillstream-decode: cannot open %s\n", a.file);
        ts_decoder_destroy(d);
        return 2;
    }
    ts_buf_t in = TS_BUF_INIT, out = TS_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ts_buf_append(&in, chunk, n);
    if (a.file) fclose(f);
    ts_arena_t *arena = ts_arena_new(0);
    if (a.file)
        one(d, kind, 0, in.data ? in.data : "", in.len, arena, &out);
    else
        decode_framed(d, kind, &in, arena, &out);
    ts_arena_destroy(arena);
    ts_buf_free(&in);
    ts_buf_free(&out);
    ts_decoder_destroy(d);
    return 0;
}
