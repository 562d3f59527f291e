/* test_config.c - config parsing, defaults and errors that name the key path. */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_testlib.h"
#include "tillstream/config.h"

#define ACC                                                                                        \
    "\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"TS_TEST_KEY_A\",\"outlets\":[\"101\","  \
    "\"102\"]},"                                                                                   \
    "{\"name\":\"brand-b\",\"api_key_file\":\"/nonexistent/key\",\"outlets\":[\"201\"]}]"

static char err[512];

static ts_err_t parse(const char *json, ts_config_t **cfg) {
    err[0] = '\0';
    return ts_config_parse(json, cfg, err, sizeof err);
}

static void test_defaults_and_passthrough(void **state) {
    (void)state;
    ts_config_t *cfg;
    unsetenv("TILLSTREAM_BOOTSTRAP_SERVERS");
    assert_int_equal(
        parse("{\"kafka\":{\"bootstrap.servers\":\"k:9092\",\"fetch.max.bytes\":1048576,"
              "\"enable.idempotence\":true}," ACC "}",
              &cfg),
        TS_OK);
    assert_string_equal(cfg->topic_customers, "pos.customers");
    assert_string_equal(cfg->topic_orders, "pos.orders");
    assert_string_equal(cfg->topic_dead_letter, "pos.deadletter");
    assert_string_equal(cfg->klaviyo_base_url, "https://a.klaviyo.com");
    assert_string_equal(cfg->klaviyo_revision, "2026-07-15");
    assert_null(cfg->default_online_outlet);
    assert_int_equal(cfg->n_kafka, 3);
    assert_string_equal(cfg->kafka[1].key, "fetch.max.bytes");
    assert_string_equal(cfg->kafka[1].value, "1048576");
    assert_string_equal(cfg->kafka[2].value, "true");
    assert_int_equal(cfg->n_accounts, 2);
    assert_true(cfg->accounts[0].active);
    assert_true(cfg->accounts[0].limits[TS_EP_EVENTS_BULK].burst_per_s == 10);
    assert_true(cfg->accounts[0].limits[TS_EP_EVENTS_BULK].steady_per_min == 150);
    assert_true(cfg->accounts[1].limits[TS_EP_SUBSCRIBE_BULK].steady_per_min == 750);
    assert_int_equal(ts_config_account_index(cfg, "brand-b"), 1);
    assert_true(cfg->customers_wait_for_suppressions); /* safe by default (consent.md) */
    ts_config_destroy(cfg);
    assert_int_equal(parse("{\"customers\":{\"wait_for_suppressions\":false}," ACC "}", &cfg),
                     TS_OK);
    assert_false(cfg->customers_wait_for_suppressions);
    ts_config_destroy(cfg);
    tc_config_error("{\"customers\":{\"wait_for_suppressions\":\"no\"}," ACC "}",
                    "customers.wait_for_suppressions: expected true or false");
}

static void test_env_overrides_bootstrap(void **state) {
    (void)state;
    ts_config_t *cfg;
    setenv("TILLSTREAM_BOOTSTRAP_SERVERS", "override:1", 1);
    assert_int_equal(parse("{\"kafka\":{\"bootstrap.servers\":\"k:9092\"}," ACC "}", &cfg), TS_OK);
    assert_string_equal(cfg->kafka[0].value, "override:1");
    ts_config_destroy(cfg);
    assert_int_equal(parse("{" ACC "}", &cfg), TS_OK);
    assert_int_equal(cfg->n_kafka, 1);
    assert_string_equal(cfg->kafka[0].key, "bootstrap.servers");
    ts_config_destroy(cfg);
    unsetenv("TILLSTREAM_BOOTSTRAP_SERVERS");
}

static void test_errors_name_the_key_path(void **state) {
    (void)state;
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]},"
                    "{\"name\":\"b\",\"api_key_env\":\"K\",\"outlets\":\"201\"}]}",
                    "accounts[1].outlets: expected an array of strings");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]},"
                    "{\"name\":\"b\",\"api_key_env\":\"K\",\"outlets\":[2]}]}",
                    "accounts[1].outlets: expected an array of strings");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]},"
                    "{\"name\":\"b\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]}]}",
                    "accounts[1].outlets: outlet \"1\" is already served by account \"a\"");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"outlets\":[\"1\"]}]}",
                    "accounts[0]: needs a key source");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"api_key_file\":\"/"
                    "f\",\"outlets\":[\"1\"]}]}",
                    "accounts[0]: api_key_env and api_key_file are exclusive");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key\":\"pk_live\",\"outlets\":[\"1\"]}]}",
                    "accounts[0].api_key: inline API keys are not allowed");
    tc_config_error(
        "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"],\"colour\":1}]}",
        "accounts[0].colour: unknown key");
    tc_config_error("{\"klaviyo\":{\"bse_url\":\"x\"}," ACC "}", "klaviyo.bse_url: unknown key");
    tc_config_error("{\"topicz\":{}," ACC "}", "topicz: unknown key");
    tc_config_error("{\"registry\":{\"timeout_ms\":5}," ACC "}", "registry.timeout_ms");
    tc_config_error("{\"registry\":{\"url\":\"schema-registry:8081\"}," ACC "}",
                    "registry.url: expected an http(s):// URL");
    /* a CA bundle that cannot be read fails at start, not at the first TLS handshake */
    tc_config_error(
        "{\"registry\":{\"url\":\"https://r\",\"ca_bundle\":\"/nonexistent/ca.crt\"}," ACC "}",
        "registry.ca_bundle: cannot read /nonexistent/ca.crt");
    tc_config_error("{\"klaviyo\":{\"ca_bundle\":\"/nonexistent/ca.pem\"}," ACC "}",
                    "klaviyo.ca_bundle: cannot read /nonexistent/ca.pem");
    tc_config_error("{\"klaviyo\":{\"ca_bundle\":\"/\"}," ACC "}",
                    "klaviyo.ca_bundle: cannot read /");
    tc_config_error("{\"registry\":{\"raw_writer_schema\":\"x\"}," ACC "}",
                    "registry.raw_writer_schema: unknown key");
    tc_config_error("{\"accounts\":[]}", "accounts: must list at least one account");
    tc_config_error("{}", "accounts: required");
    tc_config_error("{\"routing\":{\"default_online_outlet\":\"999\"}," ACC "}",
                    "routing.default_online_outlet: outlet \"999\" is not served by any account");
    tc_config_error("{\"routing\":{\"only_accounts\":[\"brand-z\"]}," ACC "}",
                    "routing.only_accounts[0]: unknown account brand-z");
    tc_config_error("{\"routing\":{\"default_phone_country\":\"+61\"}," ACC "}",
                    "routing.default_phone_country: expected an ISO 3166 region");
    tc_config_error("{\"routing\":{\"default_phone_country\":\"999\"}," ACC "}",
                    "routing.default_phone_country: calling code 999 is not assigned");
    tc_config_error("{\"routing\":{\"default_phone_country\":\"800\"}," ACC "}",
                    "routing.default_phone_country: calling code 800 is not a country's");
    tc_config_error("{\"routing\":{\"default_phone_country\":\"XX\"}," ACC "}",
                    "routing.default_phone_country: \"XX\" is not a region");
    tc_config_error("{\"routing\":{\"default_phone_country\":\"AUS\"}," ACC "}",
                    "routing.default_phone_country: expected an ISO 3166 region");
    tc_config_error("{\"klaviyo\":{\"revision\":\"latest\"}," ACC "}", "klaviyo.revision");
    tc_config_error("{\"klaviyo\":{\"linger_ms\":\"fast\"}," ACC "}",
                    "klaviyo.linger_ms: expected an integer");
    tc_config_error("{\"klaviyo\":{\"base_url\":\"ftp://x\"}," ACC "}", "klaviyo.base_url");
    tc_config_error("{\"log\":{\"level\":\"loud\"}," ACC "}", "log.level");
    tc_config_error("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"],"
                    "\"rate_limits\":{\"events_bulk\":{\"burst_per_s\":0}}}]}",
                    "accounts[0].rate_limits.events_bulk.burst_per_s: expected a positive number");
    tc_config_error("{\"accounts\": [", "invalid JSON near line 1");
}

/* routing.default_phone_country: an ISO region or a calling code, both
 * resolved to the region libphonenumber parses national numbers with. */
static void test_default_phone_country(void **state) {
    (void)state;
    static const struct {
        const char *value, *region;
    } ok[] = {{"\"AU\"", "AU"}, {"\"au\"", "AU"}, {"\"61\"", "AU"},
              {"\"1\"", "US"},  {"\"44\"", "GB"}, {"null", ""}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"routing\":{\"default_phone_country\":%s}," ACC "}",
                 ok[i].value);
        ts_config_t *cfg;
        if (parse(json, &cfg) != TS_OK) fail_msg("%s: %s", ok[i].value, err);
        assert_string_equal(cfg->default_phone_region, ok[i].region);
        ts_config_destroy(cfg);
    }
    ts_config_t *cfg;
    assert_int_equal(parse("{" ACC "}", &cfg), TS_OK);
    assert_null(cfg->default_phone_country);
    assert_string_equal(cfg->default_phone_region, "");
    ts_config_destroy(cfg);
}

static void test_only_accounts_and_rate_limit_override(void **state) {
    (void)state;
    ts_config_t *cfg;
    assert_int_equal(
        parse("{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"],"
              "\"rate_limits\":{\"events_bulk\":{\"steady_per_min\":6000}}},"
              "{\"name\":\"b\",\"api_key_env\":\"K\",\"outlets\":[\"2\"]}],"
              "\"routing\":{\"only_accounts\":[\"b\"],\"outlet_names\":{\"1\":\"One\"}}}",
              &cfg),
        TS_OK);
    assert_false(cfg->accounts[0].active);
    assert_true(cfg->accounts[1].active);
    assert_true(cfg->accounts[0].limits[TS_EP_EVENTS_BULK].steady_per_min == 6000);
    assert_true(cfg->accounts[0].limits[TS_EP_EVENTS_BULK].burst_per_s == 10);
    assert_string_equal(ts_config_outlet_name(cfg, "1"), "One");
    assert_null(ts_config_outlet_name(cfg, "2"));
    ts_config_destroy(cfg);
}

static void test_api_key_sources_never_leak(void **state) {
    (void)state;
    ts_config_t *cfg;
    char path[] = "/tmp/ts_test_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("pk_from_file_SECRET\n", f);
    fclose(f);
    char json[512];
    snprintf(
        json, sizeof json,
        "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"TS_TEST_KEY_A\",\"outlets\":[\"1\"]},"
        "{\"name\":\"b\",\"api_key_file\":\"%s\",\"outlets\":[\"2\"]}]}",
        path);
    assert_int_equal(parse(json, &cfg), TS_OK);
    char *key = NULL;
    unsetenv("TS_TEST_KEY_A");
    assert_int_equal(ts_config_account_key(cfg, 0, &key, err, sizeof err), TS_ERR_CONFIG);
    assert_non_null(
        strstr(err, "accounts[0].api_key_env: environment variable TS_TEST_KEY_A is not set"));
    setenv("TS_TEST_KEY_A", "pk_env_SECRET", 1);
    assert_int_equal(ts_config_account_key(cfg, 0, &key, err, sizeof err), TS_OK);
    assert_string_equal(key, "pk_env_SECRET");
    free(key);
    assert_int_equal(ts_config_account_key(cfg, 1, &key, err, sizeof err), TS_OK);
    assert_string_equal(key, "pk_from_file_SECRET"); /* newline trimmed */
    free(key);
    setenv("TS_TEST_KEY_A", "   ", 1);
    assert_int_equal(ts_config_account_key(cfg, 0, &key, err, sizeof err), TS_ERR_CONFIG);
    assert_null(strstr(err, "SECRET"));
    unlink(path);
    assert_int_equal(ts_config_account_key(cfg, 1, &key, err, sizeof err), TS_ERR_CONFIG);
    assert_non_null(strstr(err, "accounts[1].api_key_file"));
    ts_config_destroy(cfg);
}

static void test_kafka_secrets_from_env_and_file(void **state) {
    (void)state;
    ts_config_t *cfg;
    char path[] = "/tmp/ts_test_saslXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("file-SECRET\n", f);
    fclose(f);
    setenv("TS_TEST_SASL_USER", "svc-tillstream", 1);
    char json[512];
    snprintf(json, sizeof json,
             "{\"kafka\":{\"sasl.username\":\"${env:TS_TEST_SASL_USER}\","
             "\"sasl.password\":\"${file:%s}\"}," ACC "}",
             path);
    unsetenv("TILLSTREAM_BOOTSTRAP_SERVERS");
    assert_int_equal(parse(json, &cfg), TS_OK);
    assert_string_equal(cfg->kafka[0].value, "svc-tillstream");
    assert_string_equal(cfg->kafka[1].value, "file-SECRET");
    ts_config_destroy(cfg);
    unlink(path);
    assert_int_equal(parse(json, &cfg), TS_ERR_CONFIG);
    assert_non_null(strstr(err, "kafka.sasl.password: cannot read"));
    unsetenv("TS_TEST_SASL_USER");
    tc_config_error("{\"kafka\":{\"sasl.username\":\"${env:TS_TEST_SASL_USER}\"}," ACC "}",
                    "kafka.sasl.username: environment variable TS_TEST_SASL_USER is not set");
}

static void test_load_file_errors(void **state) {
    (void)state;
    ts_config_t *cfg;
    assert_int_equal(ts_config_load("/nonexistent/tillstream.json", &cfg, err, sizeof err),
                     TS_ERR_IO);
    char path[512];
    snprintf(path, sizeof path, "%s/samples/config.sandbox.json",
             getenv("TS_SOURCE_DIR") ? getenv("TS_SOURCE_DIR") : TS_SOURCE_DIR);
    assert_int_equal(ts_config_load(path, &cfg, err, sizeof err), TS_OK);
    assert_int_equal(cfg->n_accounts, 3);
    assert_string_equal(cfg->default_online_outlet, "101");
    ts_config_destroy(cfg);
}

/* The reference (--help-config, docs/config-reference.md) comes from the
 * parser's tables: its rows carry the tables' defaults and ranges, and
 * every key path it lists is one the parser knows (a wrong value is an
 * error naming that path, never "unknown key"). */
static void test_reference_matches_parser(void **state) {
    (void)state;
    ts_buf_t ref = TS_BUF_INIT;
    assert_int_equal(ts_config_reference(&ref), TS_OK);
    assert_non_null(strstr(ref.data, "| `klaviyo.linger_ms` | integer 0..600000 | `200` |"));
    assert_non_null(strstr(ref.data, "| `topics.profiles` | string or null | null |"));
    assert_non_null(strstr(ref.data, "| `log.level` | string | `info` | debug \\| info \\| warn"));
    assert_non_null(strstr(ref.data,
                           "| `accounts[].rate_limits.events_bulk.steady_per_min` | positive "
                           "number | `150` |"));
    int checked = 0;
    for (const char *row = strstr(ref.data, "\n| `"); row; row = strstr(row + 1, "\n| `")) {
        char path[128];
        if (sscanf(row, "\n| `%127[a-z_.]` |", path) != 1 || !strchr(path, '.')) continue;
        char section[64], key[64], json[1024];
        if (sscanf(path, "%63[a-z_].%63[a-z_]", section, key) != 2) continue;
        snprintf(json, sizeof json, "{\"%s\":{\"%s\":[[]]}," ACC "}", section, key);
        ts_config_t *cfg = NULL;
        assert_int_equal(parse(json, &cfg), TS_ERR_CONFIG);
        if (!strstr(err, path) || strstr(err, "unknown key"))
            fail_msg("%s: the parser says \"%s\"", path, err);
        checked++;
    }
    assert_true(checked >= 30);
    ts_buf_free(&ref);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_defaults_and_passthrough),
             cmocka_unit_test(test_env_overrides_bootstrap),
             cmocka_unit_test(test_errors_name_the_key_path),
             cmocka_unit_test(test_only_accounts_and_rate_limit_override),
             cmocka_unit_test(test_default_phone_country),
             cmocka_unit_test(test_api_key_sources_never_leak),
             cmocka_unit_test(test_kafka_secrets_from_env_and_file),
             cmocka_unit_test(test_load_file_errors),
             cmocka_unit_test(test_reference_matches_parser))
