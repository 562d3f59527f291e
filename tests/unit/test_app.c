/*
 * test_app.c - the shared command line of tillstream-customers and
 * tillstream-orders: usage errors and bad configs are exit 2 with the
 * reason, --help and --version 0, and a dry run over a file exits 0 with
 * one JSON line per input line. (Live runs are tested against a broker.)
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/app.h"

static char dir[] = "/tmp/ts-test-app.XXXXXX";

static const char *write_file(const char *name, const char *text) {
    static char path[4][256];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static int run(ts_kind_t kind, int argc, const char **argv) {
    char *v[16];
    for (int i = 0; i < argc; i++) v[i] = (char *)argv[i];
    v[argc] = NULL;
    return ts_app_main(kind, argc, v);
}

#define RUN(kind, ...)                                                                             \
    run(kind, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                 \
        (const char *[]){__VA_ARGS__})

static const char *good_config(void) {
    return write_file("good.json", "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K_A\","
                                   "\"outlets\":[\"101\"]}],\"admin\":{\"listen\":null}}");
}

static void test_usage_errors_exit_2(void **state) {
    (void)state;
    assert_int_equal(RUN(TS_KIND_ORDER, "tillstream-orders"), 2);            /* no --config */
    assert_int_equal(RUN(TS_KIND_ORDER, "tillstream-orders", "--bogus"), 2); /* unknown */
    assert_int_equal(RUN(TS_KIND_CUSTOMER, "x", "--config", "/nonexistent/cfg.json"), 2);
    const char *bad = write_file("bad.json", "{\"accounts\":[{\"name\":\"a\",\"outlets\":7}]}");
    assert_int_equal(RUN(TS_KIND_CUSTOMER, "x", "--config", bad), 2);
    const char *cfg = good_config();
    assert_int_equal(RUN(TS_KIND_ORDER, "x", "--config", cfg, "--replay-to", "now"), 2);
    assert_int_equal(RUN(TS_KIND_ORDER, "x", "--config", cfg, "--replay-from", "yesterday"), 2);
    /* --replay-consent: a customers replay only */
    assert_int_equal(RUN(TS_KIND_CUSTOMER, "x", "--config", cfg, "--replay-consent"), 2);
    assert_int_equal(
        RUN(TS_KIND_ORDER, "x", "--config", cfg, "--replay-from", "earliest", "--replay-consent"),
        2);
    assert_int_equal(RUN(TS_KIND_CUSTOMER, "x", "--config", cfg, "--dry-run", "--replay-from",
                         "earliest", "--replay-consent"),
                     2);
    assert_int_equal(
        RUN(TS_KIND_ORDER, "x", "--config", cfg, "--dry-run", "--input", "/nonexistent/in"), 2);
}

static void test_help_and_version_exit_0(void **state) {
    (void)state;
    assert_int_equal(RUN(TS_KIND_ORDER, "x", "--help"), 0);
    assert_int_equal(RUN(TS_KIND_CUSTOMER, "x", "-V"), 0);
}

static void test_dry_run_file(void **state) {
    (void)state;
    const char *cfg = good_config();
    const char *in = write_file(
        "c.jsonl",
        "{\"customer_id\":\"C1\",\"email\":\"a@example.com\",\"home_outlet_id\":\"101\"}\n"
        "{\"customer_id\":\"C2\",\"email\":\"b@example.com\"}\n");
    char out[256];
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = freopen(out, "w", stdout);
    assert_non_null(f);
    int rc = RUN(TS_KIND_CUSTOMER, "x", "--config", cfg, "--dry-run", "--input", in);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, 0);
    FILE *r = fopen(out, "r");
    char line[4096];
    int n = 0, dead = 0;
    while (fgets(line, sizeof line, r)) {
        n++;
        if (strstr(line, "\"NO_HOME_OUTLET\"")) dead++;
    }
    fclose(r);
    assert_int_equal(n, 2);
    assert_int_equal(dead, 1);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

TS_TEST_MAIN(setup, teardown, cmocka_unit_test(test_usage_errors_exit_2),
             cmocka_unit_test(test_help_and_version_exit_0), cmocka_unit_test(test_dry_run_file))
