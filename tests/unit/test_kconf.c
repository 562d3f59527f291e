/*
 * test_kconf.c - Kafka SASL credentials from files (src/kafka/kconf.c,
 * ts_kconf_creds_*): the files are looked at every TS_KCONF_CREDS_CHECK_MS
 * on the caller's clock, a registered client gets the file's new password,
 * an unregistered one does not, a config without credential files does
 * nothing, and an unreadable file keeps the credentials in use (one warning
 * until the file changes again, not one per look). The
 * reconnect with the new password is integration.0544 (a SCRAM broker).
 */
#include "testlib.h"
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/config.h"
#include "tillstream/kconf.h"

static char dir[] = "/tmp/ts-kconf.XXXXXX";
static char pwfile[300];

static void write_pw(const char *pw) { tl_write_secret(pwfile, pw); }

static ts_config_t *config(bool from_file) {
    char json[800], err[256];
    snprintf(json, sizeof json,
             "{\"kafka\":{\"bootstrap.servers\":\"127.0.0.1:1\",\"security.protocol\":"
             "\"SASL_PLAINTEXT\",\"sasl.mechanisms\":\"SCRAM-SHA-256\",\"sasl.username\":\"u\","
             "\"sasl.password\":\"%s%s%s\"},\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\","
             "\"outlets\":[\"1\"]}]}",
             from_file ? "${file:" : "", from_file ? pwfile : "plain", from_file ? "}" : "");
    ts_config_t *cfg = NULL;
    assert_int_equal(ts_config_parse(json, &cfg, err, sizeof err), TS_OK);
    return cfg;
}

static rd_kafka_t *producer(const ts_config_t *cfg) {
    char err[256];
    rd_kafka_conf_t *conf = ts_kconf_new(cfg, TS_KCONF_PRODUCER, err, sizeof err);
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

static void test_credentials_follow_their_files(void **state) {
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(pwfile, sizeof pwfile, "%s/kafka-password", dir);
    write_pw("pw-one");
    ts_config_t *cfg = config(true);
    assert_string_equal(cfg->kafka[4].key, "sasl.password");
    assert_string_equal(cfg->kafka[4].value, "pw-one");
    assert_string_equal(cfg->kafka[4].file, pwfile);
    assert_null(cfg->kafka[0].file);
    rd_kafka_t *a = producer(cfg), *b = producer(cfg);
    ts_kconf_creds_watch(cfg, a);
    ts_kconf_creds_watch(cfg, b);
    int64_t t = 1000000;
    assert_int_equal(ts_kconf_creds_check(cfg, t), 0); /* unchanged */
    write_pw("pw-two");
    assert_int_equal(ts_kconf_creds_check(cfg, t + 1000), 0); /* not looked at yet */
    assert_int_equal(ts_kconf_creds_check(cfg, t + TS_KCONF_CREDS_CHECK_MS), 2);
    assert_int_equal(ts_kconf_creds_check(cfg, t + 2 * TS_KCONF_CREDS_CHECK_MS), 0); /* taken */
    /* an unreadable file keeps what is in use, and says so once, not at every look */
    unlink(pwfile);
    logcap_t lc;
    tl_log_level(TS_LOG_WARN);
    logcap_begin(&lc);
    assert_int_equal(ts_kconf_creds_check(cfg, t + 3 * TS_KCONF_CREDS_CHECK_MS), 0);
    assert_int_equal(ts_kconf_creds_check(cfg, t + 3 * TS_KCONF_CREDS_CHECK_MS + 1), 0); /* early */
    assert_int_equal(ts_kconf_creds_check(cfg, t + 4 * TS_KCONF_CREDS_CHECK_MS), 0);
    const char *logged = logcap_text(&lc), *first = strstr(logged, "cannot read the Kafka SASL");
    assert_non_null(first);
    assert_null(strstr(first + 1, "cannot read the Kafka SASL"));
    logcap_end(&lc);
    tl_log_level(TS_LOG_ERROR);
    write_pw("pw-three");
    ts_kconf_creds_unwatch(b);
    assert_int_equal(ts_kconf_creds_check(cfg, t + 5 * TS_KCONF_CREDS_CHECK_MS), 1); /* a only */
    ts_kconf_creds_unwatch(a);
    write_pw("pw-four");
    assert_int_equal(ts_kconf_creds_check(cfg, t + 6 * TS_KCONF_CREDS_CHECK_MS), 0); /* none */
    rd_kafka_destroy(a);
    rd_kafka_destroy(b);
    ts_config_destroy(cfg);
    /* credentials in the config itself: nothing to follow */
    cfg = config(false);
    rd_kafka_t *c = producer(cfg);
    ts_kconf_creds_watch(cfg, c);
    write_pw("pw-five");
    assert_int_equal(ts_kconf_creds_check(cfg, t + 9 * TS_KCONF_CREDS_CHECK_MS), 0);
    ts_kconf_creds_unwatch(c);
    rd_kafka_destroy(c);
    ts_config_destroy(cfg);
    unlink(pwfile);
    rmdir(dir);
}

TS_TEST_MAIN(tl_log_errors, NULL, cmocka_unit_test(test_credentials_follow_their_files))
