/* fuzz_decode_customer_json - the JSON customer decoder and the mapper must
 * never read past a buffer or crash, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/decode.h"
#include "tillstream/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_config_t *cfg;
    static ts_router_t *router;
    static ts_mapper_t *mapper;
    static ts_arena_t *arena;
    static ts_mapped_t m;
    if (!cfg) {
        char err[256];
        ts_config_parse(
            "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"101\"]}],"
            "\"routing\":{\"default_phone_country\":\"61\"}}",
            &cfg, err, sizeof err);
        router = ts_router_new(cfg, err, sizeof err);
        mapper = ts_mapper_new(cfg, router, err, sizeof err);
        arena = ts_arena_new(0);
        ts_mapped_init(&m);
    }
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    ts_customer_t c;
    char err[512];
    ts_arena_reset(arena);
    if (ts_decode_customer_json(buf, size, arena, &c, err, sizeof err) == TS_OK) {
        /* the text rule: identifiers that decode are valid UTF-8 */
        const char *ids[] = {c.customer_id, c.email, c.phone, c.home_outlet_id};
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
            if (ids[i] && ts_utf8_invalid_at(ids[i], strlen(ids[i])) != strlen(ids[i])) abort();
        ts_map_customer(mapper, &c, &m);
    }
    free(buf);
    return 0;
}
