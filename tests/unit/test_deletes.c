/*
 * test_deletes.c - customers.on_delete: the identifiers remembered per
 * customer id become one Request Profile Deletion (by email, else phone)
 * or one bulk suppress entry per tombstone, for the account the customer
 * routes to; unknown customers send nothing; "ignore" builds nothing; the
 * engine paces deletions at Klaviyo's 3/s and batches suppressions.
 */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config_testlib.h"
#include "engine_testlib.h"
#include "kafka/deletes_restore.h"
#include "map_testlib.h"
#include "tillstream/decode.h"
#include "tillstream/deletes.h"
#include "tillstream/engine.h"
#include "tillstream/log.h"
#include "tillstream/route.h"
#include "tillstream/sim.h"

#define KEY_A "pk_test_DEL_aaaa"
#define KEY_B "pk_test_DEL_bbbb"

typedef struct {
    ts_sim_t *sim;
    tm_map_t map; /* map.m: the record a tombstone prepares */
    ts_engine_t *eng;
    ts_deletes_t *del;
    int ok, failed;
} fx_t;

static void on_done(void *opaque, uint64_t token, ts_err_t result, const char *detail) {
    (void)token;
    (void)detail;
    fx_t *f = opaque;
    if (result == TS_OK)
        f->ok++;
    else
        f->failed++;
}

static void start(fx_t *f, const char *on_delete) {
    char err[256];
    memset(f, 0, sizeof *f);
    ts_sim_opts_t so = {.dump_dir = getenv("TS_BODY_DUMP_DIR")}; /* contract test */
    f->sim = te_sim_start(&so, KEY_A, KEY_B);
    setenv("TS_DEL_KEY_A", KEY_A, 1);
    setenv("TS_DEL_KEY_B", KEY_B, 1);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"klaviyo\":{\"base_url\":\"http://127.0.0.1:%d\",\"linger_ms\":20},"
             "\"customers\":{\"on_delete\":\"%s\"},"
             "\"routing\":{\"default_phone_country\":\"61\"},"
             "\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"TS_DEL_KEY_A\",\"outlets\":[\"1\"]},"
             "{\"name\":\"b\",\"api_key_env\":\"TS_DEL_KEY_B\",\"outlets\":[\"2\"]}]}",
             ts_sim_port(f->sim), on_delete);
    tm_map_parse(&f->map, json);
    ts_engine_opts_t eo = {.cfg = f->map.cfg, .on_done = on_done, .opaque = f, .seed = 3};
    f->eng = te_engine_new(&eo);
    f->del = ts_deletes_new(f->map.cfg, f->map.mapper, NULL, err, sizeof err);
    assert_string_equal(err, "");
}

static void stop(fx_t *f) {
    ts_deletes_destroy(f->del);
    ts_engine_destroy(f->eng);
    tm_map_stop(&f->map);
    ts_sim_destroy(f->sim);
}

static void remember(fx_t *f, const char *id, const char *email, const char *phone,
                     const char *outlet) {
    ts_customer_t c = {.customer_id = id, .email = email, .phone = phone, .home_outlet_id = outlet};
    assert_int_equal(ts_deletes_remember(f->del, &c), TS_OK);
}

/* A tombstone for `id`: prepared (into f->map.m), submitted, acknowledged. */
static ts_err_t tombstone(fx_t *f, const char *id, uint64_t token) {
    char err[256];
    ts_err_t rc = ts_deletes_prepare(f->del, id, strlen(id), &f->map.m);
    if (rc != TS_OK) return rc;
    assert_int_equal(ts_engine_submit(f->eng, &f->map.m, token, false, err, sizeof err), TS_OK);
    ts_deletes_submitted(f->del, id, strlen(id), &f->map.m);
    return TS_OK;
}

static void drain(fx_t *f, int64_t max_ms) { te_drain(f->eng, max_ms); }

static void test_delete_one_request_per_tombstone_paced(void **state) {
    (void)state;
    fx_t f;
    start(&f, "delete");
    char id[16], email[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "D%d", i);
        snprintf(email, sizeof email, " D%d@Example.com", i);
        remember(&f, id, email, NULL, "1");
    }
    remember(&f, "P1", NULL, "0412 345 678", "2");   /* phone only, account b */
    remember(&f, "D0", "d0@example.com", NULL, "1"); /* the latest record wins */
    /* unknown customers: nothing to send */
    assert_int_equal(ts_deletes_prepare(f.del, "NOPE", 4, &f.map.m), TS_ERR_NOT_FOUND);
    int64_t t0 = ts_now_mono_ms();
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "D%d", i);
        assert_int_equal(tombstone(&f, id, (uint64_t)i), TS_OK);
        assert_true(f.map.m.delete_profile);
        assert_false(f.map.m.suppress_profile);
        assert_int_equal(f.map.m.account, 0);
    }
    assert_int_equal(tombstone(&f, "P1", 9), TS_OK);
    assert_int_equal(f.map.m.account, 1);
    /* forgotten once submitted: a second tombstone sends nothing */
    assert_int_equal(ts_deletes_prepare(f.del, "D3", 2, &f.map.m), TS_ERR_NOT_FOUND);
    drain(&f, 10000);
    int64_t took = ts_now_mono_ms() - t0;
    assert_int_equal(f.ok, 6);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a"), sb = te_sim_stats(f.sim, "b");
    assert_int_equal(sa.deletions, 5);
    assert_int_equal(sb.deletions, 1);
    /* no 429 assertion: the engine's token buckets admit a 4th request 333 ms
     * after a burst of 3, a sliding window does not (see docs/delivery.md);
     * the 429 is retried after Retry-After and nothing is sent twice */
    assert_true(took >= 550); /* 3 at once, then one every 333 ms */
    assert_int_equal(sa.profiles + sa.events_recorded + sa.subscribed + sa.unsubscribed, 0);
    stop(&f);
}

static void test_suppress_batches_emails(void **state) {
    (void)state;
    fx_t f;
    start(&f, "suppress");
    remember(&f, "S1", "s1@example.com", NULL, "1");
    remember(&f, "S2", "s2@example.com", "+61412000002", "1");
    remember(&f, "S3", "s3@example.com", NULL, "1");
    remember(&f, "S4", NULL, "+61412000004", "1"); /* no email: nothing to suppress */
    for (int i = 1; i <= 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "S%d", i);
        assert_int_equal(tombstone(&f, id, (uint64_t)i), TS_OK);
        assert_true(f.map.m.suppress_profile);
        assert_false(f.map.m.delete_profile);
    }
    assert_int_equal(ts_deletes_prepare(f.del, "S4", 2, &f.map.m), TS_ERR_NOT_FOUND);
    drain(&f, 10000);
    assert_int_equal(f.ok, 3);
    ts_sim_stats_t sa = te_sim_stats(f.sim, "a");
    assert_int_equal(sa.suppressed, 3);
    assert_int_equal(sa.deletions, 0);
    assert_true(sa.requests <= 2); /* batched, not one request each */
    stop(&f);
}

static void test_ignore_builds_nothing_and_bad_values_fail(void **state) {
    (void)state;
    char err[256] = "x";
    ts_config_t *cfg = NULL;
    assert_int_equal(ts_config_parse("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"X\","
                                     "\"outlets\":[\"1\"]}]}",
                                     &cfg, err, sizeof err),
                     TS_OK);
    assert_string_equal(cfg->customers_on_delete, "ignore");
    assert_null(ts_deletes_new(cfg, NULL, NULL, err, sizeof err));
    assert_string_equal(err, "");
    assert_int_equal(ts_deletes_remember(NULL, &(ts_customer_t){.customer_id = "C"}), TS_OK);
    ts_config_destroy(cfg);
    tc_config_error("{\"customers\":{\"on_delete\":\"erase\"},\"accounts\":[{"
                    "\"name\":\"a\",\"api_key_env\":\"X\",\"outlets\":[\"1\"]}]}",
                    "customers.on_delete");
}

/* Produces `value` (NULL: a tombstone) keyed `key` to topic [part]. */
static void produce_to(rd_kafka_t *p, const char *topic, int part, const char *key,
                       const char *value) {
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
}

static char *customer_json(const char *id, const char *email, const char *outlet) {
    static char buf[256];
    snprintf(buf, sizeof buf, "{\"customer_id\":\"%s\",\"email\":\"%s\",\"home_outlet_id\":\"%s\"}",
             id, email, outlet);
    return buf;
}

/* After a restart the customers topic is read once to its end at start:
 * every partition (an empty one too), the latest record of a customer
 * wins, an undecodable record and a tombstone are passed over. */
static void test_restore_reads_every_partition_to_its_end(void **state) {
    (void)state;
    char err[256];
    fx_t f;
    start(&f, "delete");
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    assert_non_null(mock_rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mock_rk, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "cust", 3, 1), 0); /* [2] stays empty */
    const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "bootstrap.servers", bs, err, sizeof err), 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    assert_non_null(p);
    produce_to(p, "cust", 0, "R1", customer_json("R1", "old@example.com", "1"));
    produce_to(p, "cust", 0, "R1", customer_json("R1", "new@example.com", "1"));
    produce_to(p, "cust", 1, "R2", customer_json("R2", "r2@example.com", "2"));
    produce_to(p, "cust", 1, "BAD", "not json");
    produce_to(p, "cust", 1, "R3", NULL);
    assert_int_equal(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);

    ts_decoder_t *dec = ts_decoder_new(NULL, TS_KIND_CUSTOMER, err, sizeof err);
    assert_non_null(dec);
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers", bs, err, sizeof err), 0);
    assert_int_equal(ts_deletes_restore(f.del, cc, "cust", dec, err, sizeof err), TS_OK);

    assert_int_equal(ts_deletes_prepare(f.del, "R1", 2, &f.map.m), TS_OK);
    assert_true(f.map.m.delete_profile);
    assert_int_equal(f.map.m.account, 0);
    assert_int_equal(f.map.m.email.len, strlen("new@example.com"));
    assert_memory_equal(ts_mapped_str(&f.map.m, f.map.m.email), "new@example.com",
                        f.map.m.email.len);
    assert_int_equal(ts_deletes_prepare(f.del, "R2", 2, &f.map.m), TS_OK);
    assert_int_equal(f.map.m.account, 1);
    assert_int_equal(ts_deletes_prepare(f.del, "R3", 2, &f.map.m), TS_ERR_NOT_FOUND);
    assert_int_equal(ts_deletes_prepare(f.del, "BAD", 3, &f.map.m), TS_ERR_NOT_FOUND);

    /* a conf the builder refused: its message is kept */
    snprintf(err, sizeof err, "kafka.x: bad property");
    assert_int_equal(ts_deletes_restore(f.del, NULL, "cust", dec, err, sizeof err), TS_ERR_CONFIG);
    assert_string_equal(err, "customer ids reader: kafka.x: bad property");

    ts_decoder_destroy(dec);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    stop(&f);
}

TS_TEST_MAIN(tl_log_errors, NULL, cmocka_unit_test(test_delete_one_request_per_tombstone_paced),
             cmocka_unit_test(test_suppress_batches_emails),
             cmocka_unit_test(test_ignore_builds_nothing_and_bad_values_fail),
             cmocka_unit_test(test_restore_reads_every_partition_to_its_end))
