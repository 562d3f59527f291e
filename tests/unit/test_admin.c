/*
 * test_admin.c - the admin listener over real HTTP on loopback: /healthz
 * follows the heartbeat, /readyz the ready flag, /metrics renders the
 * registry, unknown paths 404, other methods 405, and a listen address
 * that is taken or malformed fails with the reason (errno text).
 */
#include "testlib.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http_testlib.h"
#include "net_testlib.h"
#include "tillstream/admin.h"

static void test_endpoints(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    ts_metric_t *g = ts_metrics_gauge(m, "tillstream_test_gauge", "a test gauge", NULL);
    ts_metric_set(g, 42);
    char err[256] = "";
    ts_admin_t *a = ts_admin_new("127.0.0.1:0", m, err, sizeof err);
    assert_non_null(a);
    int port = ts_admin_port(a);
    assert_true(port > 0);
    ts_buf_t r = TS_BUF_INIT;

    assert_int_equal(th_request(port, "GET", "/healthz", &r), 200);
    ts_admin_set_stale_ms(a, 0); /* heartbeat always too old */
    assert_int_equal(th_request(port, "GET", "/healthz", &r), 503);
    assert_non_null(strstr(r.data, "stalled"));
    ts_admin_set_stale_ms(a, 60000);
    ts_admin_heartbeat(a);
    assert_int_equal(th_request(port, "GET", "/healthz", &r), 200);

    assert_int_equal(th_request(port, "GET", "/readyz", &r), 503);
    ts_admin_set_ready(a, true);
    assert_int_equal(th_request(port, "GET", "/readyz", &r), 200);

    assert_int_equal(th_request(port, "GET", "/metrics", &r), 200);
    assert_non_null(strstr(r.data, "tillstream_test_gauge 42"));
    assert_non_null(strstr(r.data, "tillstream_ready 1"));
    ts_admin_set_ready(a, false);
    assert_int_equal(th_request(port, "GET", "/metrics", &r), 200);
    assert_non_null(strstr(r.data, "tillstream_ready 0"));

    assert_int_equal(th_request(port, "GET", "/nope", &r), 404);
    assert_int_equal(th_request(port, "POST", "/metrics", &r), 405);
    ts_buf_free(&r);
    ts_admin_destroy(a);
    ts_metrics_destroy(m);
}

static void test_listen_errors(void **state) {
    (void)state;
    ts_metrics_t *m = ts_metrics_new();
    char err[256] = "";
    assert_null(ts_admin_new("localhost", m, err, sizeof err));
    assert_non_null(strstr(err, "admin.listen"));
    assert_null(ts_admin_new("not-an-ip:80", m, err, sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));

    /* a port someone else holds: the error says why (the replay Job next
     * to a live pod used to get "cannot listen" with no reason) */
    int port;
    int s = tn_listen_loopback(1, &port);
    assert_true(s >= 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    err[0] = 0;
    assert_null(ts_admin_new(addr, m, err, sizeof err));
    assert_non_null(strstr(err, addr));
    assert_non_null(strstr(err, "in use"));
    /* --check-config's look at the address: the same message, then let go */
    char err2[256] = "";
    assert_int_equal(ts_admin_check_listen(addr, err2, sizeof err2), TS_ERR_CONFIG);
    assert_string_equal(err2, err);
    close(s);
    assert_int_equal(ts_admin_check_listen(addr, err2, sizeof err2), TS_OK); /* free again */
    ts_admin_t *a = ts_admin_new(addr, m, err, sizeof err); /* and not held by the check */
    assert_non_null(a);
    ts_admin_destroy(a);
    assert_int_equal(ts_admin_check_listen("not-an-ip:80", err2, sizeof err2), TS_ERR_CONFIG);
    assert_non_null(strstr(err2, "not-an-ip"));
    ts_metrics_destroy(m);
}

TS_TEST_MAIN(th_curl_setup, th_curl_teardown, cmocka_unit_test(test_endpoints),
             cmocka_unit_test(test_listen_errors))
