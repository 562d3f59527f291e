/*
 * firstpass.c - the customers consumer waits for tillstream-suppressions'
 * first full pass over each active account (kafka/firstpass.h; issue 15).
 *
 * One group-less reader (assign, read_committed, no commits) reads the
 * poller's compacted state topic from the beginning; each record's
 * pass_at is kept per account (tillstream/supp.h's parser: one format).
 */
#include "kafka/firstpass.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/topic.h"
#include "tillstream/kconf.h"
#include "tillstream/log.h"
#include "tillstream/supp.h"

struct ts_firstpass_s {
    ts_firstpass_opts_t o;
    int64_t *pass_at; /* per configured account: the last pass_at read, 0 = none */
    bool *logged;     /* per account: "waiting" logged */
    rd_kafka_t *reader;
    int n_parts; /* partitions of the state topic being read; 0 = not found yet */
    bool *eof;   /* per partition: at its end since the last record */
    int n_eof;
    bool caught_up; /* the topic was read to its end (or is missing) at least once */
    int64_t next_look_ms;
    bool waited;        /* log_waiting() ran: the end of the wait is logged */
    bool reader_failed; /* logged once */
};

ts_firstpass_t *ts_firstpass_new(const ts_firstpass_opts_t *opts, char *errstr,
                                 size_t errstr_size) {
    ts_firstpass_t *fp = calloc(1, sizeof *fp);
    size_t n = opts->cfg->n_accounts ? opts->cfg->n_accounts : 1;
    if (!fp || !(fp->pass_at = calloc(n, sizeof *fp->pass_at)) ||
        !(fp->logged = calloc(n, sizeof *fp->logged))) {
        ts_firstpass_destroy(fp);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    fp->o = *opts;
    return fp;
}

void ts_firstpass_destroy(ts_firstpass_t *fp) {
    if (!fp) return;
    if (fp->reader) {
        rd_kafka_consumer_close(fp->reader);
        rd_kafka_destroy(fp->reader);
    }
    free(fp->pass_at);
    free(fp->logged);
    free(fp->eof);
    free(fp);
}

ts_err_t ts_firstpass_record(ts_firstpass_t *fp, const char *account, const char *value, size_t len,
                             char *errstr, size_t errstr_size) {
    const ts_config_t *cfg = fp->o.cfg;
    size_t a = 0;
    while (a < cfg->n_accounts && strcmp(cfg->accounts[a].name, account)) a++;
    if (a == cfg->n_accounts || !cfg->accounts[a].active) return TS_OK; /* not ours */
    if (!value) {                                                       /* state deleted */
        fp->pass_at[a] = 0;
        return TS_OK;
    }
    ts_supp_state_t st;
    ts_err_t rc = ts_supp_state_parse(value, len, &st, errstr, errstr_size);
    if (rc == TS_OK) fp->pass_at[a] = st.pass_at > 0 ? st.pass_at : 0;
    ts_supp_state_clear(&st);
    return rc;
}

bool ts_firstpass_done(const ts_firstpass_t *fp) {
    const ts_config_t *cfg = fp->o.cfg;
    for (size_t a = 0; a < cfg->n_accounts; a++)
        if (cfg->accounts[a].active && fp->pass_at[a] <= 0) return false;
    return true;
}

static bool open_reader(ts_firstpass_t *fp) {
    const ts_config_t *cfg = fp->o.cfg;
    char err[512];
    rd_kafka_conf_t *rc =
        ts_kconf_reader(cfg, fp->o.group_id, "-firstpass", "-firstpass", true, err, sizeof err);
    if (rc) {
        if (!(fp->reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc, err, sizeof err)))
            rd_kafka_conf_destroy(rc); /* not taken on failure */
    }
    if (!fp->reader && !fp->reader_failed) {
        /* the group consumer was built from the same properties: unexpected */
        ts_log(TS_LOG_ERROR, "state", NULL, "reading %s: %s", cfg->topic_suppressions_state, err);
        fp->reader_failed = true;
    }
    return fp->reader != NULL;
}

/* Looks for the state topic and assigns all its partitions from the
 * beginning once it exists. */
static void look(ts_firstpass_t *fp) {
    const char *topic = fp->o.cfg->topic_suppressions_state;
    int n = ts_ktopic_partitions_all(fp->reader, topic, 5000);
    if (n == 0) fp->caught_up = true; /* nothing to read yet: the poller has not started */
    if (n <= 0) return;
    bool *eof = calloc((size_t)n, sizeof *eof);
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(n);
    if (!eof || !pl) {
        free(eof);
        if (pl) rd_kafka_topic_partition_list_destroy(pl);
        return; /* out of memory: looked for again */
    }
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(pl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(fp->reader, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    if (e) {
        ts_log(TS_LOG_WARN, "state", NULL, "reading %s: %s", topic, rd_kafka_err2str(e));
        free(eof);
        return;
    }
    fp->eof = eof;
    fp->n_parts = n;
    fp->n_eof = 0;
}

static void consume_one(ts_firstpass_t *fp, const rd_kafka_message_t *m) {
    const char *topic = fp->o.cfg->topic_suppressions_state;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < fp->n_parts && !fp->eof[m->partition]) {
            fp->eof[m->partition] = true;
            if (++fp->n_eof == fp->n_parts) fp->caught_up = true;
        }
        return;
    }
    if (m->err) {
        ts_log(TS_LOG_WARN, "state", NULL, "reading %s: %s", topic, rd_kafka_message_errstr(m));
        return;
    }
    if (m->partition >= 0 && m->partition < fp->n_parts && fp->eof[m->partition]) {
        fp->eof[m->partition] = false; /* more came: its end is further on */
        fp->n_eof--;
    }
    char acc[256], why[256];
    if (!m->key || !m->key_len || m->key_len >= sizeof acc) return;
    memcpy(acc, m->key, m->key_len);
    acc[m->key_len] = '\0';
    if (ts_firstpass_record(fp, acc, m->payload, m->payload ? m->len : 0, why, sizeof why))
        ts_log(TS_LOG_WARN, "state", NULL, "%s [%d] %lld (account %s) ignored: %s", topic,
               m->partition, (long long)m->offset, acc, why);
}

/* Once read to the end: one line per account still without its pass. */
static void log_waiting(ts_firstpass_t *fp) {
    const ts_config_t *cfg = fp->o.cfg;
    for (size_t a = 0; a < cfg->n_accounts; a++) {
        if (!cfg->accounts[a].active || fp->pass_at[a] > 0 || fp->logged[a]) continue;
        fp->logged[a] = true;
        char ctx[300];
        snprintf(ctx, sizeof ctx, "\"account\":\"%s\",\"topic\":\"%s\"", cfg->accounts[a].name,
                 cfg->topic_suppressions_state);
        ts_log(TS_LOG_WARN, "state", ctx,
               "waiting for tillstream-suppressions' first full pass over account %s (%s has "
               "no pass_at for it yet): no customer record is taken until it is there",
               cfg->accounts[a].name, cfg->topic_suppressions_state);
    }
    fp->waited = true;
    ts_metric_set(fp->o.waiting, 1);
}

bool ts_firstpass_poll(ts_firstpass_t *fp, int timeout_ms) {
    if (ts_firstpass_done(fp)) goto done;
    if (!fp->reader && !open_reader(fp)) return false;
    int64_t now = ts_now_mono_ms();
    if (!fp->n_parts && now >= fp->next_look_ms) {
        fp->next_look_ms = now + TS_FIRSTPASS_LOOK_MS;
        look(fp);
    }
    /* at most 1000 records a call: the caller's loop keeps heartbeating */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(fp->reader, timeout_ms);
    for (int i = 1; m; i++) {
        consume_one(fp, m);
        rd_kafka_message_destroy(m);
        m = i < 1000 ? rd_kafka_consumer_poll(fp->reader, 0) : NULL;
    }
    if (!ts_firstpass_done(fp)) {
        if (fp->caught_up) log_waiting(fp);
        return false;
    }
done:
    if (fp->waited) /* only after a wait: an ordinary start says nothing */
        ts_log(TS_LOG_INFO, "state", NULL,
               "tillstream-suppressions' first full pass is in %s for every account: starting",
               fp->o.cfg->topic_suppressions_state);
    fp->waited = false;
    ts_metric_set(fp->o.waiting, 0);
    return true;
}
