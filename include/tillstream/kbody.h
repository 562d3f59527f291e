/*
 * tillstream/kbody.h - Klaviyo JSON:API request envelopes, written
 * straight into a reusable buffer around pre-rendered fragments (the
 * mapper's profile/event `attributes` objects). One place builds every
 * body the engine sends, and the contract tests validate exactly these
 * bytes against the official OpenAPI schemas.
 *
 *   events:      {"data":{"type":"event-bulk-create-job","attributes":{
 *                  "events-bulk-create":{"data":[ENTRY,...]}}}}
 *     ENTRY:     {"type":"event-bulk-create","attributes":{"backfill":B,
 *                  "profile":{"data":{"type":"profile","attributes":P}},
 *                  "events":{"data":[{"type":"event","attributes":E},...]}}}
 *   profiles:    {"data":{"type":"profile-bulk-import-job","attributes":{
 *                  "profiles":{"data":[{"type":"profile","attributes":P},...]}}}}
 *   subscribe:   profile-subscription-bulk-create-job, email/SMS marketing SUBSCRIBED;
 *                a historical import (--replay-consent) adds
 *                "historical_import": true to the job and each channel's
 *                "consented_at" (Klaviyo requires it, in the past, with the
 *                flag, and refuses it without)
 *   unsubscribe: profile-subscription-bulk-delete-job
 *
 * Call order per body: _open, then _entry/_add calls, then _close. The
 * writer `w` is caller storage; `out` is appended to.
 */
#ifndef TILLSTREAM_KBODY_H
#define TILLSTREAM_KBODY_H

#include "tillstream/jw.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes the envelope adds around the fragments, for the 5 MB budget. */
#define TS_KBODY_EVENTS_OVERHEAD  128
#define TS_KBODY_ENTRY_OVERHEAD   160
#define TS_KBODY_EVENT_OVERHEAD   48
#define TS_KBODY_PROFILE_OVERHEAD 48

void ts_kbody_events_open(ts_jw_t *w, ts_buf_t *out);
void ts_kbody_events_entry_open(ts_jw_t *w, const char *profile_json, size_t profile_len,
                                bool backfill);
void ts_kbody_events_event(ts_jw_t *w, const char *event_json, size_t event_len);
void ts_kbody_events_entry_close(ts_jw_t *w);
void ts_kbody_events_close(ts_jw_t *w);

void ts_kbody_profiles_open(ts_jw_t *w, ts_buf_t *out);
void ts_kbody_profiles_add(ts_jw_t *w, const char *profile_json, size_t profile_len);
void ts_kbody_profiles_close(ts_jw_t *w);

/* subscribe = true: bulk subscribe job, false: bulk unsubscribe job.
 * `custom_source` (subscribe only) may be NULL. `historical_import`
 * (subscribe only): the job is a historical import; every profile added
 * must then carry its consent times (ts_kbody_subs_add_at). */
void ts_kbody_subs_open(ts_jw_t *w, ts_buf_t *out, bool subscribe, const char *custom_source,
                        bool historical_import);
/* email / phone_e164 may be NULL (the matching channel is then left out);
 * `email_ch` / `sms_ch` select the channels to (un)subscribe. */
void ts_kbody_subs_add(ts_jw_t *w, bool subscribe, const char *email, const char *phone_e164,
                       bool email_ch, bool sms_ch);
/* The same, with each channel's `consented_at` (epoch ms, written as
 * ISO-8601 to the second; 0 = left out): for historical-import subscribe
 * jobs only (Klaviyo refuses consented_at otherwise); the caller keeps the
 * times in the past (ts_consent_decide does). Unsubscribes never carry it. */
void ts_kbody_subs_add_at(ts_jw_t *w, bool subscribe, const char *email, const char *phone_e164,
                          bool email_ch, bool sms_ch, int64_t email_consented_at,
                          int64_t sms_consented_at);
void ts_kbody_subs_close(ts_jw_t *w);

/* Bulk suppress (<= 100 emails a request). */
void ts_kbody_suppress_open(ts_jw_t *w, ts_buf_t *out);
void ts_kbody_suppress_add(ts_jw_t *w, const char *email);
void ts_kbody_suppress_close(ts_jw_t *w);
/* Request Profile Deletion of one profile: by email when given, else by
 * phone_e164. */
void ts_kbody_deletion(ts_jw_t *w, ts_buf_t *out, const char *email, const char *phone_e164);

#ifdef __cplusplus
}
#endif
#endif
