/*
 * klaviyo.c - the table behind klaviyo/klaviyo.h: Klaviyo's endpoints,
 * their published rate limits and batch sizes (OpenAPI, 2026-07-15).
 */
#include "klaviyo/klaviyo.h"

#include <ctype.h>

static const ts_klaviyo_endpoint_t endpoints[TS_EP__COUNT] = {
    [TS_EP_EVENTS_BULK] = {.name = "events_bulk",
                           .path = "/api/event-bulk-create-jobs",
                           .op = "bulk_create_events",
                           .burst_per_s = 10,
                           .steady_per_min = 150,
                           .max_items = 1000},
    [TS_EP_PROFILES_BULK] = {.name = "profiles_bulk",
                             .path = "/api/profile-bulk-import-jobs",
                             .op = "bulk_import_profiles",
                             .burst_per_s = 10,
                             .steady_per_min = 150,
                             .max_items = 10000},
    [TS_EP_SUBSCRIBE_BULK] = {.name = "subscribe_bulk",
                              .path = "/api/profile-subscription-bulk-create-jobs",
                              .op = "bulk_subscribe_profiles",
                              .burst_per_s = 75,
                              .steady_per_min = 750,
                              .max_items = 1000},
    [TS_EP_UNSUBSCRIBE_BULK] = {.name = "unsubscribe_bulk",
                                .path = "/api/profile-subscription-bulk-delete-jobs",
                                .op = "bulk_unsubscribe_profiles",
                                .burst_per_s = 75,
                                .steady_per_min = 750,
                                .max_items = 100},
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
