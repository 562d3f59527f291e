/*
 * test_dlq.c - the dead-letter producer (src/kafka/dlq.c) against
 * librdkafka's mock cluster, in-process, no process restart:
 * - a failed delivery report (the broker refuses the produce) is retried
 *   with the same headers (account, outlet, reason, run, the original
 *   record's own) and counted once;
 * - a failed produce (local queue full) is retried the same way;
 * - a 2 MB dead letter (over the producer's default 1 MB limit) is written
 *   without its value, with tillstream.value.omitted: size=N and the
 *   source coordinates.
 */
#include "testlib.h"
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/dlq.h"
#include "tillstream/dlhdr.h"
#include "tillstream/log.h"

#define SRC "t.src"
#define DL  "t.dl"

typedef struct {
    rd_kafka_t *mock_rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bs;
    ts_config_t *cfg;
    ts_metrics_t *metrics;
    ts_dlq_t *dlq;
    int done[16];
    int n_done;
    rd_kafka_t *readers[4]; /* outlive the messages they returned */
    int n_readers;
    rd_kafka_message_t *msgs[16]; /* every message read_topic returned */
    int n_msgs;
} fx_t;

static void on_done(void *opaque, uint64_t token) {
    fx_t *f = opaque;
    assert_true(token < 16);
    f->done[token]++;
    f->n_done++;
}

static void fx_start(fx_t *f, const char *extra_kafka) {
    char err[512];
    memset(f, 0, sizeof *f);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
    assert_non_null(f->mc);
    rd_kafka_mock_topic_create(f->mc, SRC, 1, 1);
    rd_kafka_mock_topic_create(f->mc, DL, 1, 1);
    f->bs = rd_kafka_mock_cluster_bootstraps(f->mc);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"kafka\":{\"bootstrap.servers\":\"%s\",\"log_level\":\"3\"%s},"
             "\"topics\":{\"customers\":\"c\",\"orders\":\"" SRC "\",\"dead_letter\":\"" DL "\"},"
             "\"klaviyo\":{\"base_url\":\"http://127.0.0.1:9\"},"
             "\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"X\",\"outlets\":[\"101\"]}]}",
             f->bs, extra_kafka ? extra_kafka : "");
    assert_int_equal(ts_config_parse(json, &f->cfg, err, sizeof err), TS_OK);
    f->metrics = ts_metrics_new();
    ts_dlq_opts_t o = {.cfg = f->cfg,
                       .prog = "test-orders",
                       .run = "g-live",
                       .topic = SRC,
                       .on_done = on_done,
                       .opaque = f,
                       .metrics = f->metrics};
    assert_int_equal(ts_dlq_new(&o, &f->dlq, err, sizeof err), TS_OK);
}

static void fx_stop(fx_t *f) {
    for (int i = 0; i < f->n_msgs; i++) rd_kafka_message_destroy(f->msgs[i]);
    for (int i = 0; i < f->n_readers; i++) rd_kafka_destroy(f->readers[i]);
    ts_dlq_destroy(f->dlq);
    ts_metrics_destroy(f->metrics);
    ts_config_destroy(f->cfg);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->mock_rk);
}

/* n source records with a header of their own; value_len bytes each */
static void produce_src(fx_t *f, int n, size_t value_len) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->bs, NULL, 0);
    rd_kafka_conf_set(conf, "message.max.bytes", "3000000", NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    char *v = malloc(value_len);
    memset(v, 'x', value_len);
    for (int i = 0; i < n; i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "h1", -1, "v1", -1);
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(SRC), RD_KAFKA_V_KEY("k", 1),
                                           RD_KAFKA_V_VALUE(v, value_len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                         0);
    }
    free(v);
    assert_int_equal(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* reads n messages of `topic` from the beginning (fx_stop destroys them) */
static void read_topic(fx_t *f, const char *topic, int n, rd_kafka_message_t **out) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", f->bs, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "reader", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    int got = 0;
    int64_t until = ts_now_mono_ms() + 10000;
    while (got < n && ts_now_mono_ms() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        assert_true(f->n_msgs < 16);
        out[got++] = f->msgs[f->n_msgs++] = m;
    }
    assert_int_equal(got, n);
    /* nothing more than n */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
    if (m) {
        assert_true(m->err != 0);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    /* destroyed in fx_stop, after the messages */
    f->readers[f->n_readers++] = c;
}

/* n source records of value_len bytes, produced and read back into src */
static void sources(fx_t *f, int n, size_t value_len, rd_kafka_message_t **src) {
    produce_src(f, n, value_len);
    read_topic(f, SRC, n, src);
}

static void assert_header(const rd_kafka_message_t *m, const char *name, const char *want) {
    rd_kafka_headers_t *h = NULL;
    assert_int_equal(rd_kafka_message_headers(m, &h), 0);
    const void *v;
    size_t n;
    if (rd_kafka_header_get_last(h, name, &v, &n)) fail_msg("no header %s", name);
    if (n != strlen(want) || memcmp(v, want, n))
        fail_msg("header %s = %.*s, want %s", name, (int)n, (const char *)v, want);
}

static double metric(fx_t *f, const char *name, const char *labels) {
    return ts_metric_value(ts_metrics_counter(f->metrics, name, "", labels));
}

/* Waits for n completions and nothing pending: the producer's stats then. */
static ts_dlq_stats_t wait_done(fx_t *f, int n) {
    int64_t until = ts_now_mono_ms() + 20000;
    while (f->n_done < n && ts_now_mono_ms() < until) {
        ts_dlq_poll(f->dlq);
        ts_dlq_flush(f->dlq, 10);
    }
    assert_int_equal(f->n_done, n);
    assert_int_equal(ts_dlq_pending(f->dlq), 0);
    ts_dlq_stats_t st;
    ts_dlq_stats(f->dlq, &st);
    return st;
}

static void test_failed_delivery_keeps_context(void **state) {
    (void)state;
    fx_t f;
    /* librdkafka remembers a topic's authorization error until the next
     * metadata refresh (every message to it fails locally until then):
     * refresh often so the three refusals are three failed deliveries */
    fx_start(&f, ",\"topic.metadata.refresh.interval.ms\":\"200\"");
    rd_kafka_message_t *src[1];
    sources(&f, 1, 10, src);
    /* the broker refuses the first three produce requests */
    rd_kafka_mock_push_request_errors(
        f.mc, 0 /* Produce */, 3, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(
        ts_dlq_write(f.dlq, src[0], 7, TS_REASON_UNMAPPED_OUTLET, "outlet 101?", 0, "101"), TS_OK);
    ts_dlq_stats_t st = wait_done(&f, 1);
    assert_int_equal(f.done[7], 1);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.by_reason[TS_REASON_UNMAPPED_OUTLET], 1);
    assert_true(st.retries >= 1);
    assert_true(metric(&f, "tillstream_dead_letter_total",
                       "topic=\"" SRC "\",reason=\"UNMAPPED_OUTLET\"") == 1.0);
    assert_true(metric(&f, "tillstream_dead_letters_by_account_total",
                       "account=\"a\",reason=\"UNMAPPED_OUTLET\"") == 1.0);
    rd_kafka_message_t *dl[1];
    read_topic(&f, DL, 1, dl);
    assert_header(dl[0], TS_DLH_ACCOUNT, "a");
    assert_header(dl[0], TS_DLH_OUTLET, "101");
    assert_header(dl[0], TS_DLH_REASON, "UNMAPPED_OUTLET");
    assert_header(dl[0], TS_DLH_DETAIL, "outlet 101?");
    assert_header(dl[0], TS_DLH_RUN, "g-live");
    assert_header(dl[0], TS_DLH_SOURCE_OFFSET, "0");
    assert_header(dl[0], "h1", "v1");
    assert_int_equal(dl[0]->len, 10);
    fx_stop(&f);
}

static void test_failed_produce_retried_once_counted(void **state) {
    (void)state;
    fx_t f;
    /* a local queue of one message: the 2nd and 3rd produce fail at once */
    fx_start(&f, ",\"queue.buffering.max.messages\":\"1\"");
    rd_kafka_message_t *src[3];
    sources(&f, 3, 10, src);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            ts_dlq_write(f.dlq, src[i], (uint64_t)i, TS_REASON_NO_HOME_OUTLET, "none", 0, "101"),
            TS_OK);
    ts_dlq_stats_t st = wait_done(&f, 3);
    assert_int_equal(st.written, 3);
    assert_true(st.retries >= 1);
    for (int i = 0; i < 3; i++) assert_int_equal(f.done[i], 1);
    assert_true(metric(&f, "tillstream_dead_letter_total",
                       "topic=\"" SRC "\",reason=\"NO_HOME_OUTLET\"") == 3.0);
    rd_kafka_message_t *dl[3];
    read_topic(&f, DL, 3, dl);
    for (int i = 0; i < 3; i++) {
        assert_header(dl[i], TS_DLH_ACCOUNT, "a");
        assert_header(dl[i], TS_DLH_OUTLET, "101");
        assert_header(dl[i], "h1", "v1");
    }
    fx_stop(&f);
}

static void test_too_large_written_without_value(void **state) {
    (void)state;
    fx_t f;
    fx_start(&f, NULL);
    size_t big = 2 * 1024 * 1024;
    rd_kafka_message_t *src[1];
    sources(&f, 1, big, src);
    assert_int_equal(src[0]->len, big);
    assert_int_equal(ts_dlq_write(f.dlq, src[0], 1, TS_REASON_DECODE_ERROR, "bad json", -1, NULL),
                     TS_OK);
    ts_dlq_stats_t st = wait_done(&f, 1);
    assert_int_equal(st.values_omitted, 1);
    rd_kafka_message_t *dl[1];
    read_topic(&f, DL, 1, dl);
    assert_header(dl[0], TS_DLH_VALUE_OMITTED, "size=2097152");
    assert_header(dl[0], TS_DLH_SOURCE_TOPIC, SRC);
    assert_header(dl[0], TS_DLH_SOURCE_PARTITION, "0");
    assert_header(dl[0], TS_DLH_SOURCE_OFFSET, "0");
    assert_int_equal(dl[0]->len, 0);
    fx_stop(&f);
}

TS_TEST_MAIN(tl_log_errors, NULL, cmocka_unit_test(test_failed_delivery_keeps_context),
             cmocka_unit_test(test_failed_produce_retried_once_counted),
             cmocka_unit_test(test_too_large_written_without_value))
