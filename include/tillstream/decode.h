/*
 * tillstream/decode.h - turning record bytes into ts_customer_t/ts_order_t.
 *
 * One entry point per record kind, whatever the wire format: a ts_decoder_t
 * detects the format per record:
 *   - first byte 0x00 and >= 5 bytes: Confluent framing (magic 0, 4-byte
 *     big-endian schema id, Avro binary); writer schema from the registry
 *     (see avro.h), resolved against the reader schema in schemas/.
 *   - otherwise JSON (same field names as the Avro schemas).
 *   - optionally raw Avro with a configured writer schema file.
 *
 * Results: TS_OK; TS_ERR_INVALID -> dead-letter DECODE_ERROR, errstr holds
 * the precise detail ("lines[2].quantity: expected a number or decimal
 * string", "avro: truncated at byte 17"); TS_ERR_NOT_FOUND ->
 * SCHEMA_NOT_FOUND; TS_ERR_TRANSIENT -> registry unreachable: retry later,
 * never dead-letter.
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
ts_err_t ts_decode_customer_json(const char *buf, size_t len, ts_arena_t *arena,
                                 ts_customer_t *out, char *errstr, size_t errstr_size);
ts_err_t ts_decode_order_json(const char *buf, size_t len, ts_arena_t *arena, ts_order_t *out,
                              char *errstr, size_t errstr_size);

/* Format-detecting decoder for the live path. `cfg` borrowed. */
typedef struct ts_decoder_s ts_decoder_t;
ts_decoder_t *ts_decoder_new(const ts_config_t *cfg, ts_kind_t kind, char *errstr,
                             size_t errstr_size);
void ts_decoder_destroy(ts_decoder_t *d);
/* `out` is a ts_customer_t* or ts_order_t* according to the kind. */
ts_err_t ts_decoder_decode(ts_decoder_t *d, const void *buf, size_t len, ts_arena_t *arena,
                           void *out, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
