/*
 * tillstream/checkconfig.h - `--check-config`: everything a binary checks
 * at start, without starting (for CI and the chart's init container).
 *
 * A loaded config (ts_config_load: keys, types, ranges, cross references)
 * is checked further, in the order and with the messages of a real start:
 * the routing table and mapper, the decoders (registry URL, credentials,
 * CA bundle, raw writer schemas), every librdkafka property (librdkafka's
 * own message, prefixed `kafka.<property>:`), each active account's API key
 * resolvable (env var set and non-empty, or file readable), and the admin
 * address free. Nothing connects to Kafka, Klaviyo or the registry.
 */
#ifndef TILLSTREAM_CHECKCONFIG_H
#define TILLSTREAM_CHECKCONFIG_H

#include "tillstream/config.h"
#include "tillstream/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_CHECK_KEYS =
        1 << 0, /* API keys resolvable (the consumers; the dead-letter tool needs none) */
    TS_CHECK_ADMIN = 1 << 1, /* admin.listen free (binaries that serve it) */
} ts_check_flags_t;

/* Runs the checks for a binary of `kind` (decoders of that kind; orders
 * also the customer decoder of its table). Returns TS_OK, or the first
 * failure's code with its message in errstr (a config error: exit 2). Never
 * prints and never puts a key into errstr. */
ts_err_t ts_checkconfig_run(const ts_config_t *cfg, ts_kind_t kind, unsigned flags, char *errstr,
                            size_t errstr_size);

/* Every `kafka` property set on a librdkafka consumer and a producer
 * configuration, as the consumers build them (src/kafka_check.c, the only
 * part of this module that includes librdkafka). */
ts_err_t ts_checkconfig_kafka(const ts_config_t *cfg, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
