/*
 * jobs.h - private to src/http: the engine's job follower. After a Bulk
 * Profile Import 202 the engine hands it the job (account lane, job id,
 * the records' parts and their profiles' identifiers); the follower polls
 * GET /api/profile-bulk-import-jobs/{id} until the job is complete, reads
 * .../import-errors (every page) when failed_count > 0, and only then
 * settles the parts: the profiles Klaviyo failed with TS_ERR_REJECTED and
 * Klaviyo's detail + the job id, the others TS_OK. A job not complete
 * within klaviyo.job_timeout_ms (or cancelled, or gone: 404) has its parts
 * put back on the lane's import queue: re-imported (idempotent), never
 * dead-lettered. Every GET takes a token from the lane's profiles_bulk rate
 * limiter (the same budget as the imports: 10/s, 150/min).
 *
 * Transfers run on the engine's curl multi handle; the engine's poll loop
 * calls ts_jobs_dispatch() and hands finished transfers to
 * ts_jobs_on_done(). Single-threaded, like the engine: every call and
 * every callback happens on the thread that calls ts_engine_poll().
 */
#ifndef TILLSTREAM_HTTP_JOBS_H
#define TILLSTREAM_HTTP_JOBS_H

#include <curl/curl.h>

#include "tillstream/config.h"
#include "tillstream/engine.h"
#include "tillstream/ratelimit.h"

typedef struct ts_metrics_s ts_metrics_t;

typedef struct {
    const char *p; /* not NUL-terminated; NULL or n == 0: absent */
    size_t n;
} ts_jstr_t;

/* One record's profile part in an import body, in the batch's order. */
typedef struct {
    void *handle;   /* the engine's part (opaque): passed back to the callbacks */
    uint64_t token; /* the record, for logs */
    ts_jstr_t key;  /* the profile identity the body de-duplicated on (latest wins) */
    ts_jstr_t email, phone, external_id;
} ts_job_entry_t;

/* A profile of a complete job (Get Profiles for Bulk Import Profiles Job). */
typedef ts_engine_profile_t ts_job_profile_t;

typedef struct {
    const ts_config_t *cfg; /* borrowed: klaviyo.base_url, timeouts, job_timeout_ms */
    CURLM *multi;           /* borrowed: the engine's */
    ts_clock_fn clock;
    void *clock_opaque;
    ts_metrics_t *metrics; /* NULL: none */
    /* the part is settled: TS_OK, or TS_ERR_REJECTED with `detail` */
    void (*settle)(void *opaque, int account, void *handle, ts_err_t result, const char *detail);
    /* the part goes back on `account`'s import queue (job timed out) */
    void (*requeue)(void *opaque, int account, void *handle);
    void *opaque;
    /* NULL: job profiles are not read. Otherwise called for every profile of
     * a page of a complete job, then with NULL (the page must be durable),
     * before its parts are settled (ts_engine_profile_cb). */
    ts_engine_profile_cb on_profile;
    void *profile_opaque;
} ts_jobs_opts_t;

typedef struct ts_jobs_s ts_jobs_t;

ts_jobs_t *ts_jobs_new(const ts_jobs_opts_t *opts, char *errstr, size_t errstr_size);
/* Removes its transfers from the multi handle and calls `abandon` (may be
 * NULL) for every part it still holds; no settle, no requeue. */
void ts_jobs_destroy(ts_jobs_t *j, void (*abandon)(void *ctx, void *handle), void *ctx);

/* The job id of a Bulk Profile Import 202 body (PostProfileImportJobResponse:
 * data.type profile-bulk-import-job, data.id of [A-Za-z0-9_-]). TS_OK, or
 * TS_ERR_INVALID when the body names no usable job. */
ts_err_t ts_jobs_parse_id(const char *body, size_t len, char *id, size_t id_size);

/* Follows job `id` of lane `account` (`name`, `rl` its profiles_bulk
 * limiter and `headers` points at its request headers, read at each
 * request (a rotated key replaces them): both borrowed, they outlive
 * the follower). `entries` are copied. TS_OK, or TS_ERR_NOMEM (then
 * nothing was taken: the caller settles as before). */
ts_err_t ts_jobs_follow(ts_jobs_t *j, int account, const char *name, ts_ratelimit_t *rl,
                        struct curl_slist *const *headers, const char *id,
                        const ts_job_entry_t *entries, size_t n);

/* Starts the GETs that are due and their limiters allow, re-imports timed
 * out jobs. Returns the ms until something else is due (<= 1000). */
int64_t ts_jobs_dispatch(ts_jobs_t *j, int64_t now);

/* true when `easy` is one of the follower's transfers (then it is handled:
 * removed from the multi handle, parsed, maybe settling parts). */
bool ts_jobs_on_done(ts_jobs_t *j, CURL *easy, CURLcode cc);

/* Jobs being followed / parts they hold. */
size_t ts_jobs_count(const ts_jobs_t *j);
size_t ts_jobs_parts(const ts_jobs_t *j);

#endif
