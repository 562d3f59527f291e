/* fuzz_decode_avro_order - the Avro order decoder (validation, Avro-C
 * resolution from the current and an older writer schema, conversion) and
 * the mapper must never read past a buffer, leak or crash, whatever the
 * bytes. The first input byte picks the writer schema. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/avro.h"
#include "tillstream/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* an older producer: fewer fields, reordered, int where the reader has long */
static const char ORDER_OLD[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"total\",\"type\":\"bytes\"},{\"name\":\"order_id\",\"type\":\"string\"},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"OrderStatus\",\"symbols\":["
    "\"completed\",\"fulfilled\",\"cancelled\",\"refunded\",\"voided\"]}},"
    "{\"name\":\"occurred_at\",\"type\":\"int\"},"
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"OrderLine\",\"fields\":[{\"name\":\"line_id\",\"type\":\"string\"},"
    "{\"name\":\"quantity\",\"type\":\"bytes\"},{\"name\":\"row_total\",\"type\":\"bytes\"},"
    "{\"name\":\"categories\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}]}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_config_t *cfg;
    static ts_router_t *router;
    static ts_mapper_t *mapper;
    static ts_arena_t *arena;
    static ts_mapped_t m;
    char err[512];
    if (!cfg) {
        ts_config_parse(
            "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]}],"
            "\"routing\":{\"default_online_outlet\":\"101\",\"default_phone_country\":\"61\"}}",
            &cfg, err, sizeof err);
        router = ts_router_new(cfg, err, sizeof err);
        mapper = ts_mapper_new(cfg, router, err, sizeof err);
        arena = ts_arena_new(0);
        ts_mapped_init(&m);
    }
    /* One decoder for all inputs, as in a consumer; TS_FUZZ_FRESH=1 makes
     * one per input (every allocation freed by the end of the input). Run
     * with LSAN_OPTIONS=use_unaligned=1 (scripts/fuzz.sh): Avro-C stores
     * pointers at unaligned offsets. */
    static ts_avro_t *shared;
    static int fresh = -1;
    if (fresh < 0) fresh = getenv("TS_FUZZ_FRESH") != NULL;
    ts_avro_t *avro = fresh ? NULL : shared;
    if (!avro) {
        avro = ts_avro_new(TS_KIND_ORDER, err, sizeof err);
        if (!avro || ts_avro_add_writer(avro, 1, ts_schema_order_avsc, err, sizeof err) ||
            ts_avro_add_writer(avro, 2, ORDER_OLD, err, sizeof err))
            abort();
        if (!fresh) shared = avro;
    }
    if (size < 1) {
        if (fresh) ts_avro_destroy(avro);
        return 0;
    }
    int32_t id = (data[0] & 1) + 1;
    size--;
    /* exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data + 1, size);
    ts_order_t o;
    ts_arena_reset(arena);
    if (ts_avro_decode(avro, id, buf, size, 5, arena, &o, err, sizeof err) == TS_OK)
        ts_map_order(mapper, &o, ts_map_resolve_customer(&o, NULL), &m);
    free(buf);
    if (fresh) ts_avro_destroy(avro);
    return 0;
}
