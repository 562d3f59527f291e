/* fuzz_decode_confluent - the per-record format detection of the live
 * path (Confluent framing: magic byte, schema id, body; JSON; raw Avro)
 * must never read past a buffer or crash. Schema ids 1 (order.avsc) and
 * 2 are pre-loaded; other ids meet "no registry configured". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/avro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_arena_t *arena;
    char err[512];
    if (!arena) arena = ts_arena_new(0);
    /* shared decoder, or one per input with TS_FUZZ_FRESH=1; run with
     * LSAN_OPTIONS=use_unaligned=1 (Avro-C stores unaligned pointers) */
    static ts_decoder_t *shared;
    static int fresh = -1;
    if (fresh < 0) fresh = getenv("TS_FUZZ_FRESH") != NULL;
    ts_decoder_t *d = fresh ? NULL : shared;
    if (!d) {
        d = ts_decoder_new(NULL, TS_KIND_ORDER, err, sizeof err);
        if (!fresh) shared = d;
        if (!d || ts_decoder_add_writer(d, 1, ts_schema_order_avsc, err, sizeof err) ||
            ts_decoder_add_writer(d, 2, ts_schema_order_avsc, err, sizeof err) ||
            ts_decoder_set_raw_writer(d, ts_schema_order_avsc, err, sizeof err))
            abort();
    }
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    ts_order_t o;
    ts_arena_reset(arena);
    ts_decoder_decode(d, buf, size, arena, &o, err, sizeof err);
    free(buf);
    if (fresh) ts_decoder_destroy(d);
    return 0;
}
