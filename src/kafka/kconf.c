/*
 * kconf.c - the one librdkafka conf builder (tillstream/kconf.h): the
 * config's kafka section verbatim, every refusal an error naming its key,
 * librdkafka's logs as our JSON lines.
 */
#include "tillstream/kconf.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "tillstream/log.h"

/* librdkafka's own logs, as JSON lines like ours */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    ts_log_level_t lvl = level <= 3   ? TS_LOG_ERROR
                         : level <= 4 ? TS_LOG_WARN
                         : level <= 6 ? TS_LOG_INFO
                                      : TS_LOG_DEBUG;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "\"facility\":\"%.40s\"", fac);
    ts_log(lvl, "librdkafka", ctx, "%s", buf);
}

/* Properties that only make sense for consumers; producers skip them
 * instead of warning about each. */
static bool consumer_only(const char *k) {
    static const char *const keys[] = {"session.timeout.ms",
                                       "heartbeat.interval.ms",
                                       "max.poll.interval.ms",
                                       "auto.offset.reset",
                                       "auto.commit.interval.ms",
                                       "enable.auto.commit",
                                       "partition.assignment.strategy",
                                       "isolation.level",
                                       "group.instance.id",
                                       "fetch.min.bytes",
                                       "fetch.max.bytes",
                                       "fetch.wait.max.ms",
                                       "max.partition.fetch.bytes",
                                       "queued.min.messages",
                                       NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(keys[i], k)) return true;
    return false;
}

ts_err_t ts_kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                      size_t errstr_size) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK) return TS_OK;
    return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "kafka.%s: %s", name, why);
}

rd_kafka_conf_t *ts_kconf_new(const ts_config_t *cfg, ts_kconf_role_t role, char *errstr,
                              size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    for (size_t i = 0; cfg && i < cfg->n_kafka; i++) {
        if (role == TS_KCONF_PRODUCER && consumer_only(cfg->kafka[i].key)) continue;
        if (ts_kconf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr, errstr_size)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

void ts_kconf_durable_producer(rd_kafka_conf_t *conf) {
    /* librdkafka knows these three: they cannot be refused */
    ts_kconf_set(conf, "enable.idempotence", "true", NULL, 0);
    ts_kconf_set(conf, "acks", "all", NULL, 0);
    ts_kconf_set(conf, "linger.ms", "5", NULL, 0);
}

rd_kafka_conf_t *ts_kconf_reader(const ts_config_t *cfg, const char *group,
                                 const char *group_suffix, const char *instance_suffix, bool to_end,
                                 char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *rc = ts_kconf_new(cfg, TS_KCONF_CONSUMER, errstr, errstr_size);
    if (!rc) return NULL;
    char id[300];
    snprintf(id, sizeof id, "%s%s", group, group_suffix);
    rd_kafka_conf_set(rc, "group.id", id, NULL, 0);
    for (size_t i = 0; cfg && i < cfg->n_kafka; i++) /* a static member id is not the reader's */
        if (!strcmp(cfg->kafka[i].key, "group.instance.id")) {
            snprintf(id, sizeof id, "%s%s", cfg->kafka[i].value, instance_suffix);
            rd_kafka_conf_set(rc, "group.instance.id", id, NULL, 0);
        }
    rd_kafka_conf_set(rc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(rc, "enable.partition.eof", to_end ? "true" : "false", NULL, 0);
    if (to_end) rd_kafka_conf_set(rc, "isolation.level", "read_committed", NULL, 0);
    return rc;
}

bool ts_kconf_user_set(const ts_config_t *cfg, const char *name) {
    for (size_t i = 0; cfg && i < cfg->n_kafka; i++)
        if (!strcmp(cfg->kafka[i].key, name)) return true;
    return false;
}
