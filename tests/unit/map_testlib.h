/*
 * map_testlib.h - a config with its router and mapper, an arena and a
 * mapped record: what a unit test needs to turn a decoded record into
 * Klaviyo bodies (map, kbody, consent_table, deletes). Test-only;
 * header-only; cmocka asserts (include testlib.h first).
 */
#ifndef TS_MAP_TESTLIB_H
#define TS_MAP_TESTLIB_H

#include "tillstream/common.h"
#include "tillstream/config.h"
#include "tillstream/map.h"
#include "tillstream/route.h"

typedef struct {
    ts_config_t *cfg; /* owned: tm_map_stop destroys it */
    ts_router_t *router;
    ts_mapper_t *mapper;
    ts_arena_t *arena; /* for decoding; the caller resets it */
    ts_mapped_t m;
} tm_map_t;

/* Starts x over `cfg`, which x owns from now on (also when an assert
 * fails: tm_map_stop destroys it); fails the test when the router or the
 * mapper cannot be built from it. */
static inline void tm_map_start(tm_map_t *x, ts_config_t *cfg) {
    char err[256];
    x->cfg = cfg;
    x->router = ts_router_new(cfg, err, sizeof err);
    x->mapper = x->router ? ts_mapper_new(cfg, x->router, err, sizeof err) : NULL;
    x->arena = ts_arena_new(0);
    ts_mapped_init(&x->m);
    if (!x->mapper) fail_msg("%s", err);
}

/* tm_map_start with the config parsed from `json` (the test fails when it
 * does not parse). */
static inline void tm_map_parse(tm_map_t *x, const char *json) {
    char err[256];
    ts_config_t *cfg = NULL;
    if (ts_config_parse(json, &cfg, err, sizeof err) != TS_OK) fail_msg("%s", err);
    tm_map_start(x, cfg);
}

static inline void tm_map_stop(tm_map_t *x) {
    ts_mapped_free(&x->m);
    ts_arena_destroy(x->arena);
    ts_mapper_destroy(x->mapper);
    ts_router_destroy(x->router);
    ts_config_destroy(x->cfg);
}

#endif
