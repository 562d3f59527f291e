/*
 * tillstream/kget.h - a blocking Klaviyo GET client for
 * tillstream-suppressions (src/http/kget.c): one curl easy handle, one
 * request at a time, TLS verification always on (klaviyo.ca_bundle or the
 * system's), the account's API key in the Authorization header only.
 *
 * The poller is one thread that reads a few pages a minute; the delivery
 * engine's curl-multi lanes are for the write path and share nothing
 * with it (Get Profiles has its own rate-limit bucket at Klaviyo).
 *
 * Threading: one thread per client. Never logs the key or the headers.
 */
#ifndef TILLSTREAM_KGET_H
#define TILLSTREAM_KGET_H

#include "tillstream/common.h"
#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_kget_s ts_kget_t;

/* The answer of one GET. */
typedef struct {
    long status;                           /* HTTP status; 0 when no answer (transport error) */
    long retry_after;                      /* Retry-After seconds of a 429; -1 when absent */
    long rl_limit, rl_remaining, rl_reset; /* RateLimit-* headers; -1 when absent */
} ts_kget_answer_t;

/* `cfg` is borrowed and outlives the client (base_url, revision,
 * ca_bundle, timeout_ms). NULL with errstr on failure. */
ts_kget_t *ts_kget_new(const ts_config_t *cfg, char *errstr, size_t errstr_size);
void ts_kget_destroy(ts_kget_t *k); /* NULL is fine */

/* GET `url` with `api_key` (borrowed). The body goes into `body`
 * (reset first), the status and headers into *ans. Returns TS_OK for a
 * 2xx, TS_ERR_THROTTLED for a 429, TS_ERR_TRANSIENT for a 5xx or a
 * transport error, TS_ERR_REJECTED for another 4xx; errstr says which
 * (never the key). */
ts_err_t ts_kget_get(ts_kget_t *k, const char *api_key, const char *url, ts_buf_t *body,
                     ts_kget_answer_t *ans, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
