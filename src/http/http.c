/*
 * http.c - what the libcurl users of src/http share: process-wide libcurl
 * initialisation (once, before any handle, whichever comes first) and the
 * rate-limit response headers.
 */
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_rc = CURLE_OK;

static void init_once(void) { g_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ts_err_t ts_http_global_init(char *errstr, size_t errstr_size) {
    pthread_once(&g_once, init_once);
    if (g_rc != CURLE_OK)
        return ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "libcurl initialisation: %s",
                         curl_easy_strerror(g_rc));
    return TS_OK;
}

void ts_http_klaviyo_opts(CURL *c, const ts_config_t *cfg) {
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->klaviyo_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* TLS verification is always on; there is deliberately no switch */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cfg->klaviyo_ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, cfg->klaviyo_ca_bundle);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tillstream/" TS_VERSION);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
}

CURL *ts_http_klaviyo_easy(CURL **easy, const ts_config_t *cfg, ts_buf_t *resp, ts_http_rl_t *hdrs,
                           curl_write_callback on_body, curl_write_callback on_header,
                           void *opaque) {
    CURL *c = *easy ? *easy : curl_easy_init();
    if (!c) return NULL;
    *easy = c;
    curl_easy_reset(c);
    ts_buf_reset(resp);
    *hdrs = TS_HTTP_RL_NONE;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, opaque);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, opaque);
    ts_http_klaviyo_opts(c, cfg);
    return c;
}

/* The number after "name:" in line, or -1 when line is another header. */
static long header_num(const char *line, size_t n, const char *name) {
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':') return -1;
    return strtol(line + nl + 1, NULL, 10);
}

void ts_http_rl_header(const char *line, size_t n, ts_http_rl_t *rl) {
    long v;
    if ((v = header_num(line, n, "Retry-After")) >= 0) rl->retry_after = v;
    if ((v = header_num(line, n, "RateLimit-Limit")) >= 0) rl->limit = v;
    if ((v = header_num(line, n, "RateLimit-Remaining")) >= 0) rl->remaining = v;
    if ((v = header_num(line, n, "RateLimit-Reset")) >= 0) rl->reset = v;
}
