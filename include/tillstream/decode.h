/*
 * tillstream/decode.h - turning record bytes into ts_customer_t/ts_order_t.
 *
 * JSON records with the field names of the Avro schemas in schemas/, and
 * (ts_decoder_t, detecting the format per record) Confluent-framed Avro:
 * magic byte 0, 4-byte big-endian schema id, Avro binary; the writer
 * schema comes from the schema registry (registry.h) and is resolved
 * against the reader schema in schemas/ (avro.h).
 *
 * Results: TS_OK; TS_ERR_INVALID -> dead-letter DECODE_ERROR, errstr
 * holds the precise detail ("lines[2].quantity: expected a number or
 * decimal string", "invalid JSON at byte 17"); TS_ERR_NOT_FOUND ->
 * dead-letter SCHEMA_NOT_FOUND (the registry answered 404);
 * TS_ERR_TRANSIENT -> the registry is unreachable: retry later, never
 * dead-letter.
 *
 * All strings of the decoded record live in the arena the caller passes.
 */
#ifndef TILLSTREAM_DECODE_H
#define TILLSTREAM_DECODE_H

#include "tillstream/config.h"
#include "tillstream/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TS_KIND_CUSTOMER = 0, TS_KIND_ORDER = 1 } ts_kind_t;

/* JSON decoders (usable alone: the dry run uses these directly). */
ts_err_t ts_decode_customer_json(const char *buf, size_t len, ts_arena_t *arena, ts_customer_t *out,
                                 char *errstr, size_t errstr_size);
ts_err_t ts_decode_order_json(const char *buf, size_t len, ts_arena_t *arena, ts_order_t *out,
                              char *errstr, size_t errstr_size);

/* Format-detecting decoder for the live path: per record, first byte 0 ->
 * Confluent Avro (needs a registry: cfg->registry_url), first non-space
 * byte '{' -> JSON, otherwise raw Avro if a writer schema was set with
 * ts_decoder_set_raw_writer(), else TS_ERR_INVALID. `cfg` is borrowed for
 * the call only (NULL: no registry). Returns NULL with errstr on error. */
typedef struct ts_decoder_s ts_decoder_t;
ts_decoder_t *ts_decoder_new(const ts_config_t *cfg, ts_kind_t kind, char *errstr,
                             size_t errstr_size);
void ts_decoder_destroy(ts_decoder_t *d);
/* `out` is a ts_customer_t* or ts_order_t* according to the kind. */
ts_err_t ts_decoder_decode(ts_decoder_t *d, const void *buf, size_t len, ts_arena_t *arena,
                           void *out, char *errstr, size_t errstr_size);
/* Records that are neither Confluent-framed nor JSON are read as raw Avro
 * written with `schema_json` (copied; e.g. the content of a writer schema
 * file). TS_ERR_INVALID if it does not parse or resolve. */
ts_err_t ts_decoder_set_raw_writer(ts_decoder_t *d, const char *schema_json, char *errstr,
                                   size_t errstr_size);
/* Pre-loads the writer schema of Confluent schema id `id` (copied), so
 * records with that id need no registry request (tests, fuzzing, pinned
 * schemas). TS_ERR_INVALID if it does not parse or resolve. */
ts_err_t ts_decoder_add_writer(ts_decoder_t *d, int32_t id, const char *schema_json, char *errstr,
                               size_t errstr_size);
/* Registry requests made so far (0 without a registry). */
uint64_t ts_decoder_registry_requests(const ts_decoder_t *d);
/* Registry requests that failed transiently (down, timeout, 5xx). After a
 * failure the decoder asks again only after a backoff (250 ms doubling to
 * 30 s, reset by an answer); until then records with an unknown schema id
 * get TS_ERR_TRANSIENT at once, without a request. */
uint64_t ts_decoder_registry_failures(const ts_decoder_t *d);
/* A 404 for an id is remembered for 60 s: records with that id get
 * TS_ERR_NOT_FOUND without a request until then. */

#ifdef __cplusplus
}
#endif
#endif
