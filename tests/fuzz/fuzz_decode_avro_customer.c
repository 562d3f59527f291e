/* fuzz_decode_avro_customer - the Avro customer decoder (validation,
 * Avro-C resolution from the current and an older writer schema,
 * conversion) and the mapper must never read past a buffer, leak or
 * crash, whatever the bytes. The first input byte picks the writer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/avro.h"
#include "tillstream/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CUSTOMER_OLD[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.tillstream.pos\",\"fields\":["
    "{\"name\":\"created_at\",\"type\":[\"null\",\"int\"],\"default\":null},"
    "{\"name\":\"customer_id\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"email_consent\",\"type\":[\"null\",\"boolean\"],\"default\":null},"
    "{\"name\":\"billing_address\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Address\","
    "\"fields\":[{\"name\":\"city\",\"type\":[\"null\",\"string\"],\"default\":null}]}],"
    "\"default\":null},"
    "{\"name\":\"home_outlet_id\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

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
        avro = ts_avro_new(TS_KIND_CUSTOMER, err, sizeof err);
        if (!avro || ts_avro_add_writer(avro, 1, ts_schema_customer_avsc, err, sizeof err) ||
            ts_avro_add_writer(avro, 2, CUSTOMER_OLD, err, sizeof err))
            abort();
        if (!fresh) shared = avro;
    }
    if (size < 1) {
        if (fresh) ts_avro_destroy(avro);
        return 0;
    }
    int32_t id = (data[0] & 1) + 1;
    size--;
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data + 1, size);
    ts_customer_t c;
    ts_arena_reset(arena);
    if (ts_avro_decode(avro, id, buf, size, 5, arena, &c, err, sizeof err) == TS_OK)
        ts_map_customer(mapper, &c, &m);
    free(buf);
    if (fresh) ts_avro_destroy(avro);
    return 0;
}
