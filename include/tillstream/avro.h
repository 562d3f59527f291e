/*
 * tillstream/avro.h - Avro binary records into ts_customer_t/ts_order_t,
 * resolved against the project's reader schemas (schemas/{customer,order}.avsc, compiled
 * in) with Avro-C's schema resolution, so producers may evolve: fields
 * added with defaults, optional fields removed, fields reordered, int ->
 * long, float -> double.
 *
 * A ts_avro_t holds, per writer schema id, the parsed writer schema, the
 * resolver and the reusable values: the schema work is done once per id,
 * never per record. This header hides <avro.h>: src/avro.c is the only
 * file that includes it.
 *
 * Money: `bytes` decimal(18,4) (two's-complement big-endian unscaled
 * value) -> ts_decimal_t{units, scale 4}.
 *
 * Thread: one thread at a time per ts_avro_t.
 */
#ifndef TILLSTREAM_AVRO_H
#define TILLSTREAM_AVRO_H

#include "tillstream/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

/* schemas/customer.avsc and schemas/order.avsc, byte for byte. */
extern const char ts_schema_customer_avsc[];
extern const char ts_schema_order_avsc[];

typedef struct ts_avro_s ts_avro_t;
ts_avro_t *ts_avro_new(ts_kind_t kind, char *errstr, size_t errstr_size);
void ts_avro_destroy(ts_avro_t *a);

/* Registers writer schema `id` (JSON text, copied as needed). TS_OK also
 * when the id is already known (the text is then ignored); TS_ERR_INVALID
 * when the schema does not parse or cannot be resolved to the reader
 * schema ("writer schema 7 cannot be resolved to the reader schema: ..."). */
ts_err_t ts_avro_add_writer(ts_avro_t *a, int32_t id, const char *schema_json, char *errstr,
                            size_t errstr_size);
bool ts_avro_has_writer(const ts_avro_t *a, int32_t id);

/* Decodes one Avro binary body written with schema `id` into *out (a
 * ts_customer_t or ts_order_t by kind; strings in `arena`).
 * TS_ERR_NOT_FOUND when the id was not added; TS_ERR_INVALID with a
 * detail (the Avro error, trailing bytes, or the field path of a bad
 * value) when the bytes do not decode. `base_offset` is added to byte
 * offsets in messages (5 for a Confluent frame). */
ts_err_t ts_avro_decode(ts_avro_t *a, int32_t id, const void *buf, size_t len, size_t base_offset,
                        ts_arena_t *arena, void *out, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
