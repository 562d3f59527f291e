/*
 * tillstream/route.h - the Home Outlet rule: which Klaviyo account gets a
 * customer (and that customer's orders).
 *
 * A record routes by the customer's Home Outlet, never by the selling
 * outlet. No Home Outlet -> routing.default_online_outlet if configured
 * (counted as "defaulted"), else NO_HOME_OUTLET. An outlet no account
 * serves -> UNMAPPED_OUTLET. An outlet served by an account this process
 * does not run (routing.only_accounts) -> TS_ROUTE_OTHER_ACCOUNT: ignored,
 * not dead-lettered, because another deployment owns it.
 */
#ifndef TILLSTREAM_ROUTE_H
#define TILLSTREAM_ROUTE_H

#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_ROUTE_OK = 0,
    TS_ROUTE_DEAD_LETTER,  /* see .reason */
    TS_ROUTE_OTHER_ACCOUNT /* served by an inactive account: skip silently */
} ts_route_status_t;

typedef struct {
    ts_route_status_t status;
    int account;        /* index into cfg->accounts, -1 unless OK/OTHER_ACCOUNT */
    const char *outlet; /* the outlet used (borrowed: from the record or the config) */
    bool defaulted;     /* default_online_outlet was applied */
    ts_reason_t reason; /* NO_HOME_OUTLET / UNMAPPED_OUTLET when DEAD_LETTER */
} ts_route_t;

typedef struct ts_router_s ts_router_t;

/* Builds the outlet -> account index. `cfg` is borrowed and must outlive
 * the router. Returns NULL with errstr on failure (e.g. out of memory). */
ts_router_t *ts_router_new(const ts_config_t *cfg, char *errstr, size_t errstr_size);
void ts_router_destroy(ts_router_t *r);

/* Routes by Home Outlet (NULL or "" = none). O(1). Never fails. */
ts_route_t ts_route_lookup(const ts_router_t *r, const char *home_outlet_id);

#ifdef __cplusplus
}
#endif
#endif
