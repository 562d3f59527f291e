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

/* The rate-limit headers of one response: Retry-After and RateLimit-Limit,
 * -Remaining, -Reset (seconds or counts); -1 when absent. A header whose
 * value is negative counts as absent. */
typedef struct {
    long retry_after, limit, remaining, reset;
} ts_http_rl_t;

/* An all-absent ts_http_rl_t. */
#define TS_HTTP_RL_NONE                                                                            \
    ((ts_http_rl_t){.retry_after = -1, .limit = -1, .remaining = -1, .reset = -1})

/* One header line as libcurl's CURLOPT_HEADERFUNCTION hands it (n bytes, not
 * NUL-terminated): stores its number in rl when it is one of the four
 * rate-limit headers (names case-insensitive); leaves rl alone otherwise. */
void ts_http_rl_header(const char *line, size_t n, ts_http_rl_t *rl);

#endif
