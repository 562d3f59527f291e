/*
 * klaviyo.c - the table behind klaviyo/klaviyo.h: Klaviyo's endpoints,
 * their published rate limits and batch sizes (OpenAPI, 2026-07-15).
 */
#include "klaviyo/klaviyo.h"

#include <ctype.h>

/* One row per endpoint: id, name, path, OpenAPI operation, burst/s,
 * steady/min, items per request. */
#define EP(id, name, path, op, burst, steady, max)                                                 \
    [TS_EP_##id] = {name, path, op, burst, steady, max}

static const ts_klaviyo_endpoint_t endpoints[TS_EP__COUNT] = {
    EP(EVENTS_BULK, "events_bulk", "/api/event-bulk-create-jobs", "bulk_create_events", 10, 150,
       1000),
    EP(PROFILES_BULK, "profiles_bulk", "/api/profile-bulk-import-jobs", "bulk_import_profiles", 10,
       150, 10000),
    EP(SUBSCRIBE_BULK, "subscribe_bulk", "/api/profile-subscription-bulk-create-jobs",
       "bulk_subscribe_profiles", 75, 750, 1000),
    EP(UNSUBSCRIBE_BULK, "unsubscribe_bulk", "/api/profile-subscription-bulk-delete-jobs",
       "bulk_unsubscribe_profiles", 75, 750, 100),
    EP(SUPPRESS_BULK, "suppress_bulk", "/api/profile-suppression-bulk-create-jobs",
       "bulk_suppress_profiles", 75, 750, 100),
    EP(PROFILE_DELETION, "profile_deletion", "/api/data-privacy-deletion-jobs",
       "request_profile_deletion", 3, 60, 1),
};

const ts_klaviyo_endpoint_t *ts_klaviyo_endpoint(ts_endpoint_t ep) {
    return (unsigned)ep < TS_EP__COUNT ? &endpoints[ep] : NULL;
}

const char *ts_endpoint_name(ts_endpoint_t ep) {
    return (unsigned)ep < TS_EP__COUNT ? endpoints[ep].name : "unknown";
}

const char *ts_endpoint_path(ts_endpoint_t ep) {
    return (unsigned)ep < TS_EP__COUNT ? endpoints[ep].path : "/";
}

bool ts_klaviyo_revision_valid(const char *r) {
    for (int i = 0; i < 10; i++) {
        char c = r[i];
        if (i == 4 || i == 7) {
            if (c != '-') return false;
        } else if (!isdigit((unsigned char)c)) {
            return false;
        }
    }
    return r[10] == '\0' || (r[10] == '.' && r[11] != '\0');
}
