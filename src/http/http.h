/*
 * http.h - what the libcurl users of src/http (the delivery engine, the
 * bulk-import job follower, the blocking GETs of kget.c and the
 * schema-registry client) share. Private to src/http.
 */
#ifndef TS_HTTP_PRIVATE_H
#define TS_HTTP_PRIVATE_H

#include <curl/curl.h>

#include "tillstream/common.h"
#include "tillstream/config.h"

/* curl_global_init() once per process, before the first curl handle,
 * whichever module creates it first (the registry client is created before
 * the engine). Thread-safe (pthread_once). TS_ERR_INTERNAL with errstr
 * when libcurl cannot initialise. */
ts_err_t ts_http_global_init(char *errstr, size_t errstr_size);

/* The options every Klaviyo request of the engine and the job follower
 * carries on its easy handle c: no signals, klaviyo.timeout_ms for the
 * whole request and 10 s to connect, TLS verification always on (there is
 * deliberately no switch) with klaviyo.ca_bundle when set, the tillstream
 * User-Agent and any content encoding libcurl can decode. */
void ts_http_klaviyo_opts(CURL *c, const ts_config_t *cfg);

typedef struct ts_http_rl_s ts_http_rl_t;

/* Readies the easy handle of one Klaviyo request for the multi handle (the
 * engine's batches, the job follower's pages): *easy reset for reuse, or
 * created when NULL; resp emptied and *hdrs all absent; on_body and
 * on_header (libcurl's write and header callbacks) called with opaque; and
 * ts_http_klaviyo_opts(). Returns the handle, also stored in *easy (the
 * caller keeps owning it), or NULL when libcurl is out of memory. The
 * caller sets the URL, the request headers and the method. */
CURL *ts_http_klaviyo_easy(CURL **easy, const ts_config_t *cfg, ts_buf_t *resp, ts_http_rl_t *hdrs,
                           curl_write_callback on_body, curl_write_callback on_header,
                           void *opaque);

/* The rate-limit headers of one response: Retry-After and RateLimit-Limit,
 * -Remaining, -Reset (seconds or counts); -1 when absent. A header whose
 * value is negative counts as absent. */
struct ts_http_rl_s {
    long retry_after, limit, remaining, reset;
};

/* An all-absent ts_http_rl_t. */
#define TS_HTTP_RL_NONE                                                                            \
    ((ts_http_rl_t){.retry_after = -1, .limit = -1, .remaining = -1, .reset = -1})

/* One header line as libcurl's CURLOPT_HEADERFUNCTION hands it (n bytes, not
 * NUL-terminated): stores its number in rl when it is one of the four
 * rate-limit headers (names case-insensitive); leaves rl alone otherwise. */
void ts_http_rl_header(const char *line, size_t n, ts_http_rl_t *rl);

#endif
