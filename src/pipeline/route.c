/*
 * route.c - the Home Outlet rule: outlet id -> Klaviyo account, through an
 * open-addressing hash built once from the config (O(1) per record).
 */
#include "tillstream/route.h"
#include "tillstream/hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *outlet; /* borrowed from cfg */
    int account;
} slot_t;

struct ts_router_s {
    const ts_config_t *cfg;
    slot_t *slots;
    size_t mask;
};

static uint64_t hash_str(const char *s) { return ts_hash_str(s); }

ts_router_t *ts_router_new(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    ts_router_t *r = ts_zalloc(sizeof *r, NULL, errstr, errstr_size);
    if (!r) return NULL;
    r->cfg = cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_accounts; i++) n += cfg->accounts[i].n_outlets;
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    r->slots = calloc(cap, sizeof *r->slots);
    if (!r->slots) {
        ts_router_destroy(r);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->mask = cap - 1;
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        for (size_t j = 0; j < cfg->accounts[i].n_outlets; j++) {
            const char *o = cfg->accounts[i].outlets[j];
            size_t k = hash_str(o) & r->mask;
            while (r->slots[k].outlet && strcmp(r->slots[k].outlet, o)) k = (k + 1) & r->mask;
            r->slots[k].outlet = o;
            r->slots[k].account = (int)i;
        }
    }
    return r;
}

void ts_router_destroy(ts_router_t *r) {
    if (!r) return;
    free(r->slots);
    free(r);
}

static int find(const ts_router_t *r, const char *outlet) {
    size_t k = hash_str(outlet) & r->mask;
    while (r->slots[k].outlet) {
        if (!strcmp(r->slots[k].outlet, outlet)) return r->slots[k].account;
        k = (k + 1) & r->mask;
    }
    return -1;
}

ts_route_t ts_route_lookup(const ts_router_t *r, const char *home_outlet_id) {
    ts_route_t res = {TS_ROUTE_DEAD_LETTER, -1, home_outlet_id, false, TS_REASON_NONE};
    if (!home_outlet_id || !*home_outlet_id) {
        if (!r->cfg->default_online_outlet) {
            res.outlet = NULL;
            res.reason = TS_REASON_NO_HOME_OUTLET;
            return res;
        }
        res.outlet = r->cfg->default_online_outlet;
        res.defaulted = true;
    }
    int acc = find(r, res.outlet);
    if (acc < 0) {
        res.reason = TS_REASON_UNMAPPED_OUTLET;
        return res;
    }
    res.account = acc;
    res.status = r->cfg->accounts[acc].active ? TS_ROUTE_OK : TS_ROUTE_OTHER_ACCOUNT;
    return res;
}
