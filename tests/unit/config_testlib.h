/*
 * config_testlib.h - a config that must not parse, for the unit tests of
 * a section's validation (config, consent_table, deletes, supp): the
 * error names the key's path. Test-only; header-only; cmocka asserts
 * (include testlib.h first).
 */
#ifndef TS_CONFIG_TESTLIB_H
#define TS_CONFIG_TESTLIB_H

#include <string.h>

#include "tillstream/config.h"

/* Fails the test unless `json` is refused with TS_ERR_CONFIG, no config,
 * and an error that contains `want` (the key's path, often its reason). */
static inline void tc_config_error(const char *json, const char *want) {
    char err[512] = "";
    ts_config_t *cfg = NULL;
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_ERR_CONFIG);
    assert_null(cfg);
    if (!strstr(err, want)) fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

#endif
