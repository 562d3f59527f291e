/*
 * decoder.c - the per-record format detection of the live path: Confluent
 * Avro (magic byte 0 + 4-byte big-endian schema id), JSON objects, and
 * optionally raw Avro with a configured writer schema. Writer schemas are
 * fetched from the registry once per id and kept in the ts_avro_t.
 */
#include "tillstream/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/avro.h"
#include "tillstream/registry.h"

#define RAW_ID INT32_MIN /* the raw writer's slot in the ts_avro_t */

struct ts_decoder_s {
    ts_kind_t kind;
    ts_registry_t *registry; /* NULL: no registry configured */
    ts_avro_t *avro;
    bool raw;
    /* registry outage: no request before retry_at_ms (capped exponential
     * backoff), so a down registry costs one request per backoff step, not
     * one per record */
    int64_t retry_at_ms, backoff_ms;
    uint64_t registry_failures;
    char last_err[256];
    /* ids the registry answered 404 for, remembered for a minute: a flood of
     * records with an unknown id must not become a flood of requests (an id
     * registered later is found after the minute) */
    struct {
        int32_t id;
        int64_t until_ms;
    } missing[256];
};

#define MISSING_TTL_MS 60000

#define REGISTRY_BACKOFF_MIN_MS 250
#define REGISTRY_BACKOFF_MAX_MS 30000

void ts_decoder_destroy(ts_decoder_t *d) {
    if (!d) return;
    ts_registry_destroy(d->registry);
    ts_avro_destroy(d->avro);
    free(d);
}

ts_decoder_t *ts_decoder_new(const ts_config_t *cfg, ts_kind_t kind, char *errstr,
                             size_t errstr_size) {
    ts_decoder_t *d = ts_zalloc(sizeof *d, "decoder", errstr, errstr_size);
    if (!d) return NULL;
    d->kind = kind;
    if (!(d->avro = ts_avro_new(kind, errstr, errstr_size))) goto fail;
    d->registry = ts_registry_from_config(cfg, errstr, errstr_size);
    if (!d->registry && errstr_size && errstr[0]) goto fail;
    const char *raw = !cfg                       ? NULL
                      : kind == TS_KIND_CUSTOMER ? cfg->registry_raw_writer_schema_customers
                                                 : cfg->registry_raw_writer_schema_orders;
    if (raw && *raw) {
        const char *key = kind == TS_KIND_CUSTOMER ? "registry.raw_writer_schema_customers"
                                                   : "registry.raw_writer_schema_orders";
        ts_buf_t text = TS_BUF_INIT;
        char why[400];
        if (ts_file_read(raw, 4u << 20, &text) != TS_OK) { /* a schema is never 4 MB */
            ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "%s: cannot read %s", key, raw);
            ts_buf_free(&text);
            goto fail;
        }
        ts_err_t rc = ts_decoder_set_raw_writer(d, text.data, why, sizeof why);
        ts_buf_free(&text);
        if (rc) {
            ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "%s: %s: %s", key, raw, why);
            goto fail;
        }
    }
    return d;
fail:
    ts_decoder_destroy(d);
    return NULL;
}

ts_err_t ts_decoder_set_raw_writer(ts_decoder_t *d, const char *schema_json, char *errstr,
                                   size_t errstr_size) {
    ts_err_t rc = ts_avro_add_writer(d->avro, RAW_ID, schema_json, errstr, errstr_size);
    if (rc == TS_OK) d->raw = true;
    return rc;
}

ts_err_t ts_decoder_add_writer(ts_decoder_t *d, int32_t id, const char *schema_json, char *errstr,
                               size_t errstr_size) {
    if (id == RAW_ID)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "schema id %ld is reserved",
                         (long)id);
    return ts_avro_add_writer(d->avro, id, schema_json, errstr, errstr_size);
}

uint64_t ts_decoder_registry_requests(const ts_decoder_t *d) {
    return d ? ts_registry_requests(d->registry) : 0;
}

uint64_t ts_decoder_registry_failures(const ts_decoder_t *d) {
    return d ? d->registry_failures : 0;
}

/* Writer schema `id` from the registry, unless it was missing a moment
 * ago (TS_ERR_NOT_FOUND) or the registry is backing off
 * (TS_ERR_TRANSIENT): a failed fetch doubles the wait, an answer resets it. */
static ts_err_t fetch_writer(ts_decoder_t *d, int32_t id, char *errstr, size_t errstr_size) {
    int64_t now = ts_now_mono_ms();
    size_t slot = (uint32_t)id * 2654435761u % (sizeof d->missing / sizeof *d->missing);
    if (d->missing[slot].until_ms > now && d->missing[slot].id == id)
        return ts_seterr(errstr, errstr_size, TS_ERR_NOT_FOUND,
                         "schema id %ld not found in the schema registry", (long)id);
    if (d->retry_at_ms && now < d->retry_at_ms)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                         "schema registry unavailable (%s); next attempt in %lld ms", d->last_err,
                         (long long)(d->retry_at_ms - now));
    const char *json;
    ts_err_t rc = ts_registry_get(d->registry, id, &json, errstr, errstr_size);
    if (rc == TS_ERR_TRANSIENT) {
        d->registry_failures++;
        d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : REGISTRY_BACKOFF_MIN_MS;
        if (d->backoff_ms > REGISTRY_BACKOFF_MAX_MS) d->backoff_ms = REGISTRY_BACKOFF_MAX_MS;
        d->retry_at_ms = now + d->backoff_ms;
        snprintf(d->last_err, sizeof d->last_err, "%s", errstr_size ? errstr : "");
        return rc;
    }
    d->retry_at_ms = d->backoff_ms = 0; /* the registry answered */
    if (rc == TS_ERR_NOT_FOUND) {
        d->missing[slot].id = id;
        d->missing[slot].until_ms = now + MISSING_TTL_MS;
    }
    if (rc) return rc;
    return ts_avro_add_writer(d->avro, id, json, errstr, errstr_size);
}

/* A Confluent-framed record: magic byte 0, 4-byte schema id, Avro body. */
static ts_err_t decode_confluent(ts_decoder_t *d, const unsigned char *b, size_t len,
                                 ts_arena_t *arena, void *out, char *errstr, size_t errstr_size) {
    if (len < 5)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "Confluent Avro framing truncated: %zu bytes, need 5 for magic byte "
                         "and schema id",
                         len);
    int32_t id = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) |
                           (uint32_t)b[4]);
    if (!ts_avro_has_writer(d->avro, id)) {
        if (!d->registry)
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "Confluent Avro record (schema id %ld) but no schema registry is "
                             "configured (registry.url)",
                             (long)id);
        ts_err_t rc = fetch_writer(d, id, errstr, errstr_size);
        if (rc) return rc;
    }
    return ts_avro_decode(d->avro, id, b + 5, len - 5, 5, arena, out, errstr, errstr_size);
}

ts_err_t ts_decoder_decode(ts_decoder_t *d, const void *buf, size_t len, ts_arena_t *arena,
                           void *out, char *errstr, size_t errstr_size) {
    const unsigned char *b = buf;
    if (len > 0 && b[0] == 0) return decode_confluent(d, b, len, arena, out, errstr, errstr_size);
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    if (i < len && b[i] == '{')
        return d->kind == TS_KIND_CUSTOMER
                   ? ts_decode_customer_json(buf, len, arena, out, errstr, errstr_size)
                   : ts_decode_order_json(buf, len, arena, out, errstr, errstr_size);
    if (d->raw)
        return ts_avro_decode(d->avro, RAW_ID, buf, len, 0, arena, out, errstr, errstr_size);
    return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                     "neither Confluent Avro (magic byte 0) nor a JSON object (first byte 0x%02x)",
                     len ? b[0] : 0);
}
