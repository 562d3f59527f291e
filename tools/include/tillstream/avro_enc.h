/*
 * tillstream/avro_enc.h - Avro encoder for the dev tools (generator,
 * tests, benchmarks). Part of the tools library (libtstools), not of the
 * core: production binaries never link it.
 *
 * Thread: one thread at a time per ts_avro_enc_t.
 */
#ifndef TILLSTREAM_AVRO_ENC_H
#define TILLSTREAM_AVRO_ENC_H

#include "tillstream/avro.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Encodes records with a writer schema: the record is put into a value of
 * the reader schema, then projected by field name onto the writer schema
 * (fields the writer lacks are dropped, fields only the writer has get
 * null / zero / the first enum symbol, int and long, float and double
 * convert), so any compatible schema version can be produced. */
typedef struct ts_avro_enc_s ts_avro_enc_t;
/* `writer_schema_json` NULL = the reader schema itself. */
ts_avro_enc_t *ts_avro_enc_new(ts_kind_t kind, const char *writer_schema_json, char *errstr,
                               size_t errstr_size);
void ts_avro_enc_destroy(ts_avro_enc_t *e);
/* Appends the encoding of `rec` (a ts_customer_t* or ts_order_t*) to
 * `out`; with framed_id >= 0 preceded by the Confluent header (magic 0,
 * big-endian id). */
ts_err_t ts_avro_encode(ts_avro_enc_t *e, const void *rec, int32_t framed_id, ts_buf_t *out,
                        char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
