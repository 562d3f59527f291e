/*
 * kget.c - blocking Klaviyo GETs for tillstream-suppressions
 * (tillstream/kget.h).
 */
#include "tillstream/kget.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct ts_kget_s {
    const ts_config_t *cfg;
    CURL *c;
};

ts_kget_t *ts_kget_new(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    if (ts_http_global_init(errstr, errstr_size)) return NULL;
    ts_kget_t *k = calloc(1, sizeof *k);
    if (!k || !(k->c = curl_easy_init())) {
        ts_kget_destroy(k);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    k->cfg = cfg;
    return k;
}

void ts_kget_destroy(ts_kget_t *k) {
    if (!k) return;
    if (k->c) curl_easy_cleanup(k->c);
    free(k);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    return ts_buf_append(ud, p, sz * n) ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    ts_http_rl_header(p, sz * n, ud);
    return sz * n;
}

ts_err_t ts_kget_get(ts_kget_t *k, const char *api_key, const char *url, ts_buf_t *body,
                     ts_kget_answer_t *ans, char *errstr, size_t errstr_size) {
    *ans =
        (ts_kget_answer_t){.retry_after = -1, .rl_limit = -1, .rl_remaining = -1, .rl_reset = -1};
    ts_http_rl_t hdrs = TS_HTTP_RL_NONE;
    ts_buf_reset(body);
    char auth[600], rev[80], detail[CURL_ERROR_SIZE] = "";
    snprintf(auth, sizeof auth, "Authorization: Klaviyo-API-Key %s", api_key);
    snprintf(rev, sizeof rev, "revision: %s", k->cfg->klaviyo_revision);
    struct curl_slist *h = NULL, *t;
    if (!(t = curl_slist_append(h, auth)) || !(h = t, t = curl_slist_append(h, rev)) ||
        !(h = t, t = curl_slist_append(h, "Accept: application/vnd.api+json"))) {
        curl_slist_free_all(h);
        memset(auth, 0, sizeof auth);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    }
    h = t;
    CURL *c = k->c;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)k->cfg->klaviyo_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)k->cfg->klaviyo_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (k->cfg->klaviyo_ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, k->cfg->klaviyo_ca_bundle);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the key never follows a redirect */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
    CURLcode cc = curl_easy_perform(c);
    *ans = (ts_kget_answer_t){.retry_after = hdrs.retry_after,
                              .rl_limit = hdrs.limit,
                              .rl_remaining = hdrs.remaining,
                              .rl_reset = hdrs.reset};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    memset(auth, 0, sizeof auth);
    if (cc != CURLE_OK)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "GET: %s",
                         detail[0] ? detail : curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ans->status);
    if (ans->status >= 200 && ans->status < 300) return TS_OK;
    if (ans->status == 429)
        return ts_seterr(errstr, errstr_size, TS_ERR_THROTTLED, "GET: 429 (Retry-After %ld s)",
                         ans->retry_after);
    if (ans->status >= 500)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "GET: HTTP %ld", ans->status);
    /* Klaviyo's error document names what was wrong; it never echoes the key */
    return ts_seterr(errstr, errstr_size, TS_ERR_REJECTED, "GET: HTTP %ld: %.300s", ans->status,
                     body->data ? body->data : "");
}
