/* fuzz_decode_order_json - the JSON order decoder and the mapper must never
 * read past a buffer or crash, whatever the bytes. */
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
            "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]}],"
            "\"routing\":{\"default_online_outlet\":\"101\",\"default_phone_country\":\"61\"}}",
            &cfg, err, sizeof err);
        router = ts_router_new(cfg, err, sizeof err);
        mapper = ts_mapper_new(cfg, router, err, sizeof err);
        arena = ts_arena_new(0);
        ts_mapped_init(&m);
    }
    /* exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    ts_order_t o;
    char err[512];
    ts_arena_reset(arena);
    if (ts_decode_order_json(buf, size, arena, &o, err, sizeof err) == TS_OK) {
        /* the text rule: identifiers that decode are valid UTF-8 */
        const char *ids[] = {o.order_id,        o.customer_id,    o.outlet_id,
                             o.customer.email,  o.customer.phone, o.customer.home_outlet_id,
                             o.refund.refund_id};
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
            if (ids[i] && ts_utf8_invalid_at(ids[i], strlen(ids[i])) != strlen(ids[i])) abort();
        for (size_t i = 0; i < o.n_lines; i++)
            if (ts_utf8_invalid_at(o.lines[i].line_id, strlen(o.lines[i].line_id)) !=
                strlen(o.lines[i].line_id))
                abort();
        ts_customer_ref_t t = {true, "C1", "a@b.co", "0412345678", "A", "B", "102"};
        ts_map_order(mapper, &o, ts_map_resolve_customer(&o, &t), &m);
    }
    free(buf);
    return 0;
}
