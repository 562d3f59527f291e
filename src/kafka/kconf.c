/*
 * kconf.c - the one librdkafka conf builder (tillstream/kconf.h): the
 * config's kafka section verbatim, every refusal an error naming its key,
 * librdkafka's logs as our JSON lines.
 */
#include "tillstream/kconf.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- SASL credentials from files ---------------------------------------------- */

typedef struct watched_s {
    rd_kafka_t *rk;
    struct watched_s *next;
} watched_t;

static pthread_mutex_t creds_mu = PTHREAD_MUTEX_INITIALIZER;
static watched_t *creds_rks;
static ts_file_sig_t creds_sig[2]; /* sasl.username, sasl.password */
static int64_t creds_next_ms;

static const char *const creds_keys[2] = {"sasl.username", "sasl.password"};

static const ts_kv_t *creds_kv(const ts_config_t *cfg, int k) {
    for (size_t i = 0; cfg && i < cfg->n_kafka; i++)
        if (!strcmp(cfg->kafka[i].key, creds_keys[k])) return &cfg->kafka[i];
    return NULL;
}

static bool creds_from_files(const ts_config_t *cfg) {
    for (int k = 0; k < 2; k++) {
        const ts_kv_t *kv = creds_kv(cfg, k);
        if (kv && kv->file) return true;
    }
    return false;
}

static void creds_sigs(const ts_config_t *cfg, ts_file_sig_t out[2]) {
    for (int k = 0; k < 2; k++) {
        const ts_kv_t *kv = creds_kv(cfg, k);
        if (kv && kv->file)
            ts_file_sig(kv->file, &out[k]);
        else
            out[k] = (ts_file_sig_t){0};
    }
}

void ts_kconf_creds_watch(const ts_config_t *cfg, rd_kafka_t *rk) {
    if (!rk || !creds_from_files(cfg)) return;
    watched_t *w = malloc(sizeof *w);
    if (!w) return; /* that client keeps its credentials until a restart */
    pthread_mutex_lock(&creds_mu);
    if (!creds_rks) creds_sigs(cfg, creds_sig); /* as the config read them */
    w->rk = rk;
    w->next = creds_rks;
    creds_rks = w;
    pthread_mutex_unlock(&creds_mu);
}

void ts_kconf_creds_unwatch(rd_kafka_t *rk) {
    pthread_mutex_lock(&creds_mu);
    for (watched_t **pp = &creds_rks; *pp; pp = &(*pp)->next)
        if ((*pp)->rk == rk) {
            watched_t *w = *pp;
            *pp = w->next;
            free(w);
            break;
        }
    pthread_mutex_unlock(&creds_mu);
}

/* The value a credential file now holds (malloc'd), or the config's value. */
static char *creds_value(const ts_config_t *cfg, int k) {
    const ts_kv_t *kv = creds_kv(cfg, k);
    if (!kv) return NULL;
    return kv->file ? ts_secret_file_read(kv->file) : (kv->value ? strdup(kv->value) : NULL);
}

static void wipe_free(char *s) {
    if (s) memset(s, 0, strlen(s));
    free(s);
}

/* Under creds_mu: every registered client gets what the files now hold;
 * returns how many took it. */
static int creds_hand_out(const ts_config_t *cfg, const ts_file_sig_t sig[2]) {
    int n = 0;
    char *user = creds_value(cfg, 0), *pass = creds_value(cfg, 1);
    memcpy(creds_sig, sig, sizeof creds_sig); /* a failure is said once, until the files change */
    if (!user || !pass) {
        ts_log(TS_LOG_WARN, "kafka", NULL,
               "cannot read the Kafka SASL credential files (kafka.sasl.username / "
               "kafka.sasl.password); keeping the credentials in use until they change");
    } else {
        for (watched_t *w = creds_rks; w; w = w->next) {
            rd_kafka_error_t *e = rd_kafka_sasl_set_credentials(w->rk, user, pass);
            if (!e) {
                n++;
                continue;
            }
            ts_log(TS_LOG_WARN, "kafka", NULL, "a client refused new SASL credentials: %s",
                   rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        char ctx[32];
        snprintf(ctx, sizeof ctx, "\"clients\":%d", n);
        ts_log(TS_LOG_INFO, "kafka", ctx,
               "the Kafka SASL credentials changed in their files: the clients use them from "
               "their next connection");
    }
    wipe_free(user);
    wipe_free(pass);
    return n;
}

int ts_kconf_creds_check(const ts_config_t *cfg, int64_t now_ms) {
    if (!creds_from_files(cfg)) return 0;
    int n = 0;
    pthread_mutex_lock(&creds_mu);
    if (creds_rks && now_ms >= creds_next_ms) {
        creds_next_ms = now_ms + TS_KCONF_CREDS_CHECK_MS;
        ts_file_sig_t sig[2];
        creds_sigs(cfg, sig);
        if (!ts_file_sig_same(&sig[0], &creds_sig[0]) || !ts_file_sig_same(&sig[1], &creds_sig[1]))
            n = creds_hand_out(cfg, sig);
    }
    pthread_mutex_unlock(&creds_mu);
    return n;
}
