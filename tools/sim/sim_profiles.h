/*
 * sim_profiles.h - the simulator's model of Klaviyo profiles and their
 * marketing consent (internal to tools/sim; docs/simulator.md).
 *
 * What it models: profiles matched by email, then phone_number, then
 * external_id (identifiers learnt later are added to the profile); per
 * channel (email, sms) the consent (NEVER_SUBSCRIBED, SUBSCRIBED,
 * UNSUBSCRIBED) with its timestamp and method, and the global email
 * suppression (reason, timestamp). Bulk Subscribe removes UNSUBSCRIBE,
 * SPAM_COMPLAINT and USER_SUPPRESSED suppressions, as Klaviyo's
 * bulk_subscribe_profiles.json says (HARD_BOUNCE and INVALID_EMAIL stay);
 * Bulk Unsubscribe sets the consent to UNSUBSCRIBED and adds no
 * suppression. A control call suppresses a profile as an unsubscribe
 * link, a spam report or a bounce would (an SMS suppression also records an
 * "Unsubscribed from SMS Marketing" event for Get Events). Get Profiles answers with the
 * filter, additional-fields, page[size] and cursor pagination of
 * get_profiles.json.
 *
 * Not thread-safe: the simulator calls it under its mutex.
 */
#ifndef TILLSTREAM_SIM_PROFILES_H
#define TILLSTREAM_SIM_PROFILES_H

#include <cJSON.h>

#include "tillstream/common.h"

typedef struct sim_profiles_s sim_profiles_t;

sim_profiles_t *sim_profiles_new(void);
void sim_profiles_destroy(sim_profiles_t *p);
void sim_profiles_reset(sim_profiles_t *p);
size_t sim_profiles_count(const sim_profiles_t *p);

/* A profile resource's attributes from a profile import (identity only).
 * Returns 0, or -1 (no identifier / out of memory). */
int sim_profiles_import(sim_profiles_t *p, const cJSON *attrs, int64_t now_ms);
/* A profile resource's attributes from a subscribe (subscribe = true) or
 * unsubscribe job: applies each channel under attrs.subscriptions.
 * *suppressions_removed is incremented for each suppression a subscribe
 * removed. Returns 0 or -1. */
int sim_profiles_subscription(sim_profiles_t *p, const cJSON *attrs, bool subscribe,
                              const char *custom_source, bool historical, int64_t now_ms,
                              uint64_t *suppressions_removed);
/* The control call: {"email"|"phone_number"|"external_id", "channel":
 * "email"|"sms", "reason": UNSUBSCRIBE | SPAM_COMPLAINT (or SPAM_REPORT) |
 * HARD_BOUNCE (or BOUNCE) | INVALID_EMAIL | USER_SUPPRESSED, "timestamp":
 * optional ISO-8601 or epoch ms (default now)}. Creates the profile when
 * unknown. Writes {"id": ...} into out. Returns 0, or -1 with a message. */
int sim_profiles_suppress(sim_profiles_t *p, const cJSON *body, int64_t now_ms, ts_buf_t *out,
                          char *err, size_t errsz);

/* Get Profiles. `filter`, `additional`, `page_size`, `cursor` are the
 * decoded query values (NULL when absent); `base` is
 * "http://host:port". Returns the HTTP status: 200 with the collection
 * document in out, or 400 with a message and the offending parameter. */
unsigned sim_profiles_get(sim_profiles_t *p, const char *filter, const char *additional,
                          const char *page_size, const char *cursor, const char *base,
                          ts_buf_t *out, char *err, size_t errsz, char *param, size_t paramsz);

/* Get Metrics: Klaviyo's built-in consent metrics, "Unsubscribed from SMS
 * Marketing" among them (one page). Same conventions as sim_profiles_get. */
unsigned sim_profiles_metrics_get(const char *filter, const char *fields, const char *cursor,
                                  const char *base, ts_buf_t *out, char *err, size_t errsz,
                                  char *param, size_t paramsz);
/* Get Events: the "Unsubscribed from SMS Marketing" events the control call
 * recorded (an SMS suppression), with filter (equals(metric_id,...),
 * datetime/timestamp comparisons, and(...)), sort (datetime, -datetime),
 * include=profile|metric, page[size] (default 200, at most 1000) and
 * cursor pagination of get_events.json. */
unsigned sim_profiles_events_get(sim_profiles_t *p, const char *filter, const char *sort,
                                 const char *include, const char *fields_profile,
                                 const char *page_size, const char *cursor, const char *base,
                                 ts_buf_t *out, char *err, size_t errsz, char *param,
                                 size_t paramsz);

/* JSON lines, one per profile: {"id","email","phone_number","external_id",
 * "email_consent","email_suppression","email_suppressed_at",
 * "sms_consent"} (tests). */
void sim_profiles_jsonl(const sim_profiles_t *p, ts_buf_t *out);

#endif
