/*
 * klaviyo/klaviyo.h - every fact about Klaviyo's protocol that tillstream
 * relies on, in one place (private to the core library; unit tests and
 * benchmarks may include it too).
 *
 * Source: Klaviyo's OpenAPI files for revision 2026-07-15 (one file per
 * operation; the endpoint descriptions carry the limits and the
 * `x-klaviyo-ratelimit` extension the rate limits). config.c (defaults,
 * endpoint names), map.c (string and time limits) and the delivery engine
 * (paths, batch sizes, body size, rate-limit windows) read them from
 * here. The simulator deliberately does not (tools/sim/sim.c: it is an
 * independent oracle; docs/decisions.md says why).
 */
#ifndef TILLSTREAM_KLAVIYO_H
#define TILLSTREAM_KLAVIYO_H

#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_KLAVIYO_BASE_URL "https://a.klaviyo.com"
#define TS_KLAVIYO_REVISION "2026-07-15" /* the revision the mapping and bodies follow */

/* Every request: 5 MB payload at most (bulk endpoints); one string value
 * at most 100 KB; one profile in a bulk import at most 100 KB. */
#define TS_KLAVIYO_MAX_PAYLOAD_BYTES (5 * 1024 * 1024)
#define TS_KLAVIYO_MAX_STRING_BYTES  (100 * 1024)
#define TS_KLAVIYO_MAX_PROFILE_BYTES (100 * 1024)

/* Event `time`: after the year 1990 and at most one year in the future
 * (bulk_create_events.json, `time`). */
#define TS_KLAVIYO_MIN_EVENT_TIME_MS   631152000000LL /* 1990-01-01T00:00:00Z */
#define TS_KLAVIYO_MAX_EVENT_FUTURE_MS (365LL * 24 * 3600 * 1000)

/* Rate limits are sliding windows per account and endpoint: at most
 * `burst` requests in any 1 s and `steady` in any 60 s, whatever the key.
 * Non-429 answers carry RateLimit-Limit/-Remaining/-Reset (the steady
 * window); a 429 carries Retry-After in seconds. */
#define TS_KLAVIYO_BURST_WINDOW_MS  1000
#define TS_KLAVIYO_STEADY_WINDOW_MS 60000

typedef struct {
    const char *name; /* config key under rate_limits, metric label */
    const char *path; /* POST path under the base URL */
    const char *op;   /* OpenAPI operation id */
    double burst_per_s, steady_per_min;
    int max_items; /* per request: events, profiles or subscriptions */
} ts_klaviyo_endpoint_t;

/* The endpoints the engine uses (index = ts_endpoint_t):
 *   events_bulk       /api/event-bulk-create-jobs                 10/s  150/m  1,000 events
 *   profiles_bulk     /api/profile-bulk-import-jobs               10/s  150/m 10,000 profiles
 *   subscribe_bulk    /api/profile-subscription-bulk-create-jobs  75/s  750/m  1,000 profiles
 *   unsubscribe_bulk  /api/profile-subscription-bulk-delete-jobs  75/s  750/m    100 profiles */
const ts_klaviyo_endpoint_t *ts_klaviyo_endpoint(ts_endpoint_t ep);

/* Klaviyo's revision header format: YYYY-MM-DD[.suffix]. */
bool ts_klaviyo_revision_valid(const char *rev);

/* Steady ceiling of Bulk Create Events at the default limits:
 * 150 requests/min x 1,000 events = 2,500 events/s per account. */
#define TS_KLAVIYO_EVENTS_CEILING_PER_S (150.0 * 1000.0 / 60.0)

#ifdef __cplusplus
}
#endif
#endif
