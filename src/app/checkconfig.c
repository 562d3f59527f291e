/*
 * checkconfig.c - `--check-config`: the start-up checks of a binary, in the
 * order of a real start and with its messages, without starting anything
 * (tillstream/checkconfig.h). The librdkafka part is kafka_check.c.
 */
#include "tillstream/checkconfig.h"

#include <stdlib.h>
#include <string.h>

#include "tillstream/admin.h"
#include "tillstream/decode.h"
#include "tillstream/map.h"
#include "tillstream/route.h"

static ts_err_t check_decoders(const ts_config_t *cfg, ts_kind_t kind, char *errstr,
                               size_t errstr_size) {
    /* the orders consumer also decodes customers (its table) */
    ts_kind_t kinds[2] = {kind, TS_KIND_CUSTOMER};
    int n = kind == TS_KIND_ORDER ? 2 : 1;
    for (int i = 0; i < n; i++) {
        ts_decoder_t *d = ts_decoder_new(cfg, kinds[i], errstr, errstr_size);
        if (!d) return TS_ERR_CONFIG;
        ts_decoder_destroy(d);
    }
    return TS_OK;
}

static ts_err_t check_keys(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        if (!cfg->accounts[i].active) continue;
        char *key = NULL;
        ts_err_t rc = ts_config_account_key(cfg, i, &key, errstr, errstr_size);
        if (rc != TS_OK) return rc;
        memset(key, 0, strlen(key)); /* wiped: the key was only looked at */
        free(key);
    }
    return TS_OK;
}

ts_err_t ts_checkconfig_run(const ts_config_t *cfg, ts_kind_t kind, unsigned flags, char *errstr,
                            size_t errstr_size) {
    ts_router_t *router = ts_router_new(cfg, errstr, errstr_size);
    ts_mapper_t *mapper = router ? ts_mapper_new(cfg, router, errstr, errstr_size) : NULL;
    ts_mapper_destroy(mapper);
    ts_router_destroy(router);
    if (!mapper) return TS_ERR_CONFIG;
    ts_err_t rc = check_decoders(cfg, kind, errstr, errstr_size);
    if (rc == TS_OK) rc = ts_checkconfig_kafka(cfg, errstr, errstr_size);
    if (rc == TS_OK && (flags & TS_CHECK_KEYS)) rc = check_keys(cfg, errstr, errstr_size);
    if (rc == TS_OK && (flags & TS_CHECK_ADMIN) && cfg->admin_listen && *cfg->admin_listen)
        rc = ts_admin_check_listen(cfg->admin_listen, errstr, errstr_size);
    return rc == TS_OK ? TS_OK : TS_ERR_CONFIG;
}
