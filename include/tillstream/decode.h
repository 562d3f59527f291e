/*
 * tillstream/decode.h - turning record bytes into ts_customer_t/ts_order_t.
 *
 * JSON records with the field names of the Avro schemas in schemas/.
 * (Confluent-framed Avro with a schema registry is open work; such records
 * are dead-lettered DECODE_ERROR with a detail that says so.)
 *
 * Results: TS_OK, or TS_ERR_INVALID -> dead-letter DECODE_ERROR, errstr
 * holds the precise detail ("lines[2].quantity: expected a number or
 * decimal string", "invalid JSON at byte 17").
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

#ifdef __cplusplus
}
#endif
#endif
