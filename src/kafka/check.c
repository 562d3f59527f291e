/*
 * kafka_check.c - the librdkafka half of `--check-config`: every `kafka`
 * property of the config set on a consumer and a producer configuration,
 * then a client created from each (which validates combinations) and
 * destroyed at once, before it has had a reason to connect.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "tillstream/checkconfig.h"

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk, (void)level, (void)fac, (void)buf;
}

static ts_err_t check_client(const ts_config_t *cfg, rd_kafka_type_t type, char *errstr,
                             size_t errstr_size) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) return TS_ERR_NOMEM;
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "kafka.%s: %s", cfg->kafka[i].key,
                             err);
        }
    }
    if (type == RD_KAFKA_CONSUMER) rd_kafka_conf_set(conf, "group.id", "tillstream-check", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "kafka: %s", err);
    }
    conf = NULL; /* now owned by rk */
    rd_kafka_destroy(rk);
    return TS_OK;
}

ts_err_t ts_checkconfig_kafka(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    ts_err_t rc = check_client(cfg, RD_KAFKA_CONSUMER, errstr, errstr_size);
    return rc == TS_OK ? check_client(cfg, RD_KAFKA_PRODUCER, errstr, errstr_size) : rc;
}
