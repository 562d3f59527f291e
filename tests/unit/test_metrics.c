/* test_metrics.c - Prometheus registry: exact exposition text, get-or-create, concurrency, admin
 * endpoints. */
#include "testlib.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_testlib.h"
#include "tillstream/admin.h"
#include "tillstream/metrics.h"

static void test_render_exact(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    ts_metrics_set_runtime(m, false); /* exact text: no build_info / process_* */
    ts_metric_t *a = ts_metrics_counter(m, "t_requests_total", "requests", "account=\"a\"");
    ts_metric_t *g = ts_metrics_gauge(m, "t_queue", "queue", NULL);
    ts_metric_t *b = ts_metrics_counter(m, "t_requests_total", "requests", "account=\"b\"");
    assert_ptr_equal(a, ts_metrics_counter(m, "t_requests_total", "requests", "account=\"a\""));
    double bounds[] = {0.1, 1};
    ts_metric_t *h = ts_metrics_histogram(m, "t_latency_seconds", "latency", NULL, bounds, 2);
    ts_metric_add(a, 2);
    ts_metric_add(b, 1);
    ts_metric_set(g, 7);
    ts_metric_observe(h, 0.05);
    ts_metric_observe(h, 0.5);
    ts_metric_observe(h, 5);
    ts_buf_t out = TS_BUF_INIT;
    ts_metrics_render(m, &out);
    assert_string_equal(
        out.data, "# HELP t_requests_total requests\n# TYPE t_requests_total counter\n"
                  "t_requests_total{account=\"a\"} 2\nt_requests_total{account=\"b\"} 1\n"
                  "# HELP t_queue queue\n# TYPE t_queue gauge\nt_queue 7\n"
                  "# HELP t_latency_seconds latency\n# TYPE t_latency_seconds histogram\n"
                  "t_latency_seconds_bucket{le=\"0.1\"} 1\n"
                  "t_latency_seconds_bucket{le=\"1\"} 2\nt_latency_seconds_bucket{le=\"+Inf\"} 3\n"
                  "t_latency_seconds_sum 5.5499999999999998\nt_latency_seconds_count 3\n");
    ts_buf_free(&out);
    ts_metric_add(NULL, 1); /* NULL-safe */
    assert_null(ts_metrics_counter(NULL, "x", "y", NULL));
    ts_metrics_destroy(m);
}

/* Bucket labels as the client libraries write them (Go's shortest 'g'):
 * le="0.005", never le="0.0050000000000000001". */
static void test_bound_labels_canonical(void **state) {
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {{0.005, "0.005"},
                 {0.01, "0.01"},
                 {0.025, "0.025"},
                 {0.1, "0.1"},
                 {0.25, "0.25"},
                 {2.5, "2.5"},
                 {1, "1"},
                 {30, "30"},
                 {250, "250"},
                 {1000, "1000"},
                 {100000, "100000"},
                 {1e6, "1e+06"},
                 {1234567, "1.234567e+06"},
                 {1e-5, "1e-05"},
                 {0.0001, "0.0001"},
                 {-0.5, "-0.5"},
                 {1.0 / 3, "0.3333333333333333"},
                 {0, "0"}};
    char b[40];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ts_metrics_format_bound(b, sizeof b, cases[i].v);
        assert_string_equal(b, cases[i].want);
    }
    ts_metrics_t *m = ts_metrics_new();
    ts_metrics_set_runtime(m, false);
    static const double lat_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    ts_metric_observe(ts_metrics_histogram(m, "t_s", "t", NULL, lat_b, 12), 0.004);
    ts_buf_t out = TS_BUF_INIT;
    ts_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "t_s_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(out.data, "t_s_bucket{le=\"0.05\"} 1\n"));
    assert_non_null(strstr(out.data, "t_s_bucket{le=\"30\"} 1\n"));
    assert_null(strstr(out.data, "le=\"0.00500000"));
    ts_buf_free(&out);
    ts_metrics_destroy(m);
}

static double sample(const char *text, const char *name) {
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(text, pat);
    assert_non_null(p);
    return strtod(p + strlen(pat), NULL);
}

/* build_info and process_* in every registry, read from /proc/self. */
static void test_runtime_metrics(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    ts_buf_t out = TS_BUF_INIT;
    ts_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "# TYPE tillstream_build_info gauge\n"
                                     "tillstream_build_info{version=\"" TS_VERSION "\"} 1\n"));
    assert_non_null(strstr(out.data, "# TYPE process_cpu_seconds_total counter\n"));
    double start = sample(out.data, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start > now - 3600 && start <= now + 1); /* this test process started just now */
    double rss = sample(out.data, "process_resident_memory_bytes");
    assert_true(rss > 1e5 && rss < 1e10);
    assert_true(sample(out.data, "process_virtual_memory_bytes") >= rss);
    double fds = sample(out.data, "process_open_fds");
    assert_true(fds >= 3);
    assert_true(sample(out.data, "process_max_fds") >= fds);
    double cpu = sample(out.data, "process_cpu_seconds_total");
    /* open two descriptors and burn CPU: both show at the next render */
    FILE *f1 = fopen("/proc/self/stat", "r"), *f2 = fopen("/proc/self/stat", "r");
    assert_non_null(f1);
    assert_non_null(f2);
    volatile double x = 0;
    for (clock_t t0 = clock(); clock() - t0 < CLOCKS_PER_SEC / 20;) x += 1;
    ts_buf_reset(&out);
    ts_metrics_render(m, &out);
    assert_true(sample(out.data, "process_open_fds") == fds + 2);
    assert_true(sample(out.data, "process_cpu_seconds_total") > cpu);
    fclose(f1);
    fclose(f2);
    ts_metrics_set_runtime(m, false);
    ts_buf_reset(&out);
    ts_metrics_render(m, &out);
    assert_null(strstr(out.data, "process_"));
    ts_buf_free(&out);
    ts_metrics_destroy(m);
}

static ts_metric_t *shared;
static void *adder(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) ts_metric_add(shared, 1);
    return NULL;
}

static void test_concurrent_adds(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    shared = ts_metrics_counter(m, "t_total", "t", NULL);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, adder, NULL);
    pthread_create(&t2, NULL, adder, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_true(ts_metric_value(shared) == 200000);
    ts_metrics_destroy(m);
}

static void test_admin_endpoints(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    ts_metric_add(ts_metrics_counter(m, "t_seen_total", "seen", NULL), 3);
    /* a labelled histogram and an escaped label value, so the live output
     * checked by promtool (tests/ops/0800) covers every shape we render */
    ts_buf_t lab = TS_BUF_INIT;
    ts_buf_append(&lab, "account=\"", 9);
    ts_metrics_label_escape(&lab, "brand \"a\"\\x\n");
    ts_buf_append(&lab, "\"", 1);
    double bounds[] = {0.005, 0.25, 2.5};
    ts_metric_t *h = ts_metrics_histogram(m, "t_request_seconds", "latency", lab.data, bounds, 3);
    ts_metric_observe(h, 0.1);
    ts_metric_observe(h, 3);
    ts_metric_set(ts_metrics_gauge(m, "t_lag", "lag", "topic=\"pos.orders\",partition=\"0\""), 42);
    ts_buf_free(&lab);
    char err[128];
    ts_admin_t *a = ts_admin_new("127.0.0.1:0", m, err, sizeof err);
    assert_non_null(a);
    int port = ts_admin_port(a);
    ts_buf_t b = TS_BUF_INIT;
    assert_int_equal(th_get(port, "/healthz", &b), 200);
    assert_int_equal(th_get(port, "/readyz", &b), 503);
    ts_admin_set_ready(a, true);
    assert_int_equal(th_get(port, "/readyz", &b), 200);
    ts_buf_reset(&b);
    assert_int_equal(th_get(port, "/metrics", &b), 200);
    assert_non_null(strstr(b.data, "t_seen_total 3\n"));
    assert_non_null(strstr(b.data, "tillstream_ready 1\n"));
    assert_non_null(strstr(
        b.data, "t_request_seconds_bucket{account=\"brand \\\"a\\\"\\\\x\\n\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.data, "t_lag{topic=\"pos.orders\",partition=\"0\"} 42\n"));
    const char *dump = getenv("TS_METRICS_DUMP"); /* tests/ops/0800 pipes it to promtool */
    if (dump) {
        FILE *f = fopen(dump, "w");
        assert_non_null(f);
        fwrite(b.data, 1, b.len, f);
        fclose(f);
    }
    assert_int_equal(th_get(port, "/nope", &b), 404);
    ts_admin_set_stale_ms(a, 0); /* every heartbeat is now too old: the loop counts as stalled */
    ts_admin_heartbeat(a);
    assert_int_equal(th_get(port, "/healthz", &b), 503);
    ts_admin_set_stale_ms(a, 60000);
    assert_int_equal(th_get(port, "/healthz", &b), 200);
    ts_buf_free(&b);
    ts_admin_destroy(a);
    assert_null(ts_admin_new("nonsense", m, err, sizeof err));
    assert_non_null(strstr(err, "admin.listen"));
    ts_metrics_destroy(m);
}

TS_TEST_MAIN(th_curl_setup, th_curl_teardown, cmocka_unit_test(test_render_exact),
             cmocka_unit_test(test_bound_labels_canonical), cmocka_unit_test(test_runtime_metrics),
             cmocka_unit_test(test_concurrent_adds), cmocka_unit_test(test_admin_endpoints))
