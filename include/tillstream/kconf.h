/*
 * tillstream/kconf.h - the one librdkafka configuration builder
 * (src/kafka/kconf.c), used by the consumers, the customer-table reader,
 * the dead-letter producer and the dev tools (tillstream-dlq, the
 * generator).
 *
 * The config's `kafka` section passes through verbatim (kcat's -X); a
 * property librdkafka refuses is an error naming its key path
 * (`kafka.<name>: ...`). Producers skip consumer-only properties instead
 * of warning about each. librdkafka's own logs become JSON lines through
 * the logger. Properties the caller sets afterwards win.
 *
 * The type is librdkafka's: this header only declares it, so callers that
 * never include <librdkafka/rdkafka.h> can pass it on.
 */
#ifndef TILLSTREAM_KCONF_H
#define TILLSTREAM_KCONF_H

#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_kafka_conf_s rd_kafka_conf_t;

typedef enum { TS_KCONF_CONSUMER, TS_KCONF_PRODUCER } ts_kconf_role_t;

/* A new librdkafka conf from cfg->kafka (cfg may be NULL: defaults only),
 * or NULL with errstr set (TS_ERR_CONFIG in *rc when rc is not NULL).
 * The caller owns the conf (rd_kafka_new() takes it over). */
rd_kafka_conf_t *ts_kconf_new(const ts_config_t *cfg, ts_kconf_role_t role, char *errstr,
                              size_t errstr_size);

/* Sets one property; TS_ERR_CONFIG naming `name` when librdkafka refuses. */
ts_err_t ts_kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size);

/* A producer whose every record must be written exactly once (dead
 * letters, profile ids, the consent state): enable.idempotence, acks=all
 * and a 5 ms linger, over whatever the config's kafka section set. */
void ts_kconf_durable_producer(rd_kafka_conf_t *conf);

/* A consumer conf for a second client that reads a topic by assignment
 * and never joins the group (the consent state, the first pass, the
 * suppressions poller's state): ts_kconf_new() plus group.id
 * `<group><group_suffix>`, a static member id (group.instance.id) made the
 * reader's own by appending `instance_suffix`, no auto commit, and
 * enable.partition.eof = to_end; to_end also reads committed records
 * only. NULL with errstr set as ts_kconf_new(); the caller owns the conf. */
rd_kafka_conf_t *ts_kconf_reader(const ts_config_t *cfg, const char *group,
                                 const char *group_suffix, const char *instance_suffix, bool to_end,
                                 char *errstr, size_t errstr_size);

/* True when the config's kafka section sets `name` (a user's value wins
 * over a tillstream default). */
bool ts_kconf_user_set(const ts_config_t *cfg, const char *name);

/* Kafka SASL credentials read from files ("sasl.username" / "sasl.password"
 * = "${file:/path}", e.g. a mounted Secret) follow a rotation without a
 * restart. Each long-lived client is registered after rd_kafka_new() and
 * unregistered before rd_kafka_destroy(); ts_kconf_creds_check(), called by
 * a main loop (about once a second), looks at the files every
 * TS_KCONF_CREDS_CHECK_MS (a stat) and, when one changed, gives every
 * registered client the credentials the files now hold
 * (rd_kafka_sasl_set_credentials: librdkafka uses them from its next
 * connection, e.g. after a broker restart). Returns the clients updated.
 * No-ops when no credential comes from a file. Process-wide, thread-safe;
 * the handles are borrowed. */
#define TS_KCONF_CREDS_CHECK_MS 10000
typedef struct rd_kafka_s rd_kafka_t;
void ts_kconf_creds_watch(const ts_config_t *cfg, rd_kafka_t *rk);
void ts_kconf_creds_unwatch(rd_kafka_t *rk);
int ts_kconf_creds_check(const ts_config_t *cfg, int64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
