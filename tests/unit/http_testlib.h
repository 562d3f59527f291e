/*
 * http_testlib.h - one HTTP request to a loopback port, for the unit tests
 * of the admin endpoints (admin, metrics, consumer), and libcurl's
 * process-wide init as a cmocka group setup for every test program that
 * uses libcurl (those and sim). Test-only; header-only. The simulator's
 * tests send Klaviyo requests of their own (test_sim.c: headers, bodies).
 */
#ifndef TS_HTTP_TESTLIB_H
#define TS_HTTP_TESTLIB_H

#include <curl/curl.h>
#include <stdio.h>

#include "tillstream/common.h"

/* Group setup and teardown (TS_TEST_MAIN) of a test program that uses
 * libcurl, itself or through the simulator: curl_global_init runs before
 * any test starts a thread, curl_global_cleanup after the last test. */
static inline int th_curl_setup(void **state) {
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}
static inline int th_curl_teardown(void **state) {
    (void)state;
    curl_global_cleanup();
    return 0;
}

static inline size_t th_collect(char *p, size_t sz, size_t n, void *ud) {
    ts_buf_append(ud, p, sz * n);
    return sz * n;
}

/* `method` ("GET", "POST", ...) http://127.0.0.1:port/path, 5 s at most:
 * the HTTP status, 0 when nothing answered; `body` is reset and holds the
 * answer's body. */
static inline long th_request(int port, const char *method, const char *path, ts_buf_t *body) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    ts_buf_reset(body);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static inline long th_get(int port, const char *path, ts_buf_t *body) {
    return th_request(port, "GET", path, body);
}

#endif
