/*
 * kbody.c - Klaviyo JSON:API request envelopes around pre-rendered
 * profile/event fragments. The only place that knows the envelope shapes
 * of the bulk endpoints (revision 2026-07-15); the contract tests validate
 * these exact bytes against Klaviyo's official OpenAPI schemas.
 */
#include "tillstream/kbody.h"
#include "tillstream/model.h"

/* {"type":<type>,"attributes":{   (two objects left open) */
static void resource_open(ts_jw_t *w, const char *type) {
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "type");
    ts_jw_str(w, type);
    TS_JW_KEY(w, "attributes");
    ts_jw_obj_open(w);
}

/* {"data":{"type":<type>,"attributes":{   (three objects left open) */
static void job_open(ts_jw_t *w, ts_buf_t *out, const char *type) {
    ts_jw_init_obj(w, out);
    TS_JW_KEY(w, "data");
    resource_open(w, type);
}

/* "<key>":{"data":[   (one object and one array left open) */
static void data_list_open(ts_jw_t *w, const char *key) {
    ts_jw_key(w, key);
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "data");
    ts_jw_arr_open(w);
}

/* {"type":<type>,"attributes":<pre-rendered JSON>} */
static void resource_raw(ts_jw_t *w, const char *type, const char *json, size_t len) {
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "type");
    ts_jw_str(w, type);
    TS_JW_KEY(w, "attributes");
    ts_jw_raw(w, json, len);
    ts_jw_obj_close(w);
}

void ts_kbody_events_open(ts_jw_t *w, ts_buf_t *out) {
    job_open(w, out, "event-bulk-create-job");
    data_list_open(w, "events-bulk-create");
}

void ts_kbody_events_entry_open(ts_jw_t *w, const char *profile_json, size_t profile_len,
                                bool backfill) {
    resource_open(w, "event-bulk-create");
    if (backfill) {
        TS_JW_KEY(w, "backfill");
        ts_jw_bool(w, true);
    }
    TS_JW_KEY(w, "profile");
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "data");
    resource_raw(w, "profile", profile_json, profile_len);
    ts_jw_obj_close(w);
    data_list_open(w, "events");
}

void ts_kbody_events_event(ts_jw_t *w, const char *event_json, size_t event_len) {
    resource_raw(w, "event", event_json, event_len);
}

void ts_kbody_events_entry_close(ts_jw_t *w) {
    ts_jw_arr_close(w); /* events.data */
    ts_jw_obj_close(w); /* events */
    ts_jw_obj_close(w); /* attributes */
    ts_jw_obj_close(w); /* entry */
}

/* the end of job_open + data_list_open: ]}}}} */
static void job_close(ts_jw_t *w) {
    ts_jw_arr_close(w);
    for (int i = 0; i < 4; i++) ts_jw_obj_close(w);
}

void ts_kbody_events_close(ts_jw_t *w) { job_close(w); }

void ts_kbody_profiles_open(ts_jw_t *w, ts_buf_t *out) {
    job_open(w, out, "profile-bulk-import-job");
    data_list_open(w, "profiles");
}

void ts_kbody_profiles_add(ts_jw_t *w, const char *profile_json, size_t profile_len) {
    resource_raw(w, "profile", profile_json, profile_len);
}

void ts_kbody_profiles_close(ts_jw_t *w) { job_close(w); }

void ts_kbody_subs_open(ts_jw_t *w, ts_buf_t *out, bool subscribe, const char *custom_source,
                        bool historical_import) {
    job_open(w, out,
             subscribe ? "profile-subscription-bulk-create-job"
                       : "profile-subscription-bulk-delete-job");
    if (subscribe && custom_source) TS_JW_KV_STR(w, "custom_source", custom_source);
    if (subscribe && historical_import) {
        TS_JW_KEY(w, "historical_import");
        ts_jw_bool(w, true);
    }
    data_list_open(w, "profiles");
}

static void channel(ts_jw_t *w, const char *name, bool subscribe, int64_t consented_at) {
    ts_jw_key(w, name);
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "marketing");
    ts_jw_obj_open(w);
    TS_JW_KV_STR(w, "consent", subscribe ? "SUBSCRIBED" : "UNSUBSCRIBED");
    if (subscribe && consented_at > 0) {
        char at[32];
        ts_time_format_iso8601(consented_at, at, sizeof at);
        TS_JW_KV_STR(w, "consented_at", at);
    }
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

void ts_kbody_subs_add(ts_jw_t *w, bool subscribe, const char *email, const char *phone_e164,
                       bool email_ch, bool sms_ch) {
    ts_kbody_subs_add_at(w, subscribe, email, phone_e164, email_ch, sms_ch, 0, 0);
}

void ts_kbody_subs_add_at(ts_jw_t *w, bool subscribe, const char *email, const char *phone_e164,
                          bool email_ch, bool sms_ch, int64_t email_consented_at,
                          int64_t sms_consented_at) {
    resource_open(w, "profile");
    if (email) TS_JW_KV_STR(w, "email", email);
    if (phone_e164) TS_JW_KV_STR(w, "phone_number", phone_e164);
    TS_JW_KEY(w, "subscriptions");
    ts_jw_obj_open(w);
    if (email_ch && email) channel(w, "email", subscribe, email_consented_at);
    if (sms_ch && phone_e164) channel(w, "sms", subscribe, sms_consented_at);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

void ts_kbody_subs_close(ts_jw_t *w) { job_close(w); }

void ts_kbody_suppress_open(ts_jw_t *w, ts_buf_t *out) {
    job_open(w, out, "profile-suppression-bulk-create-job");
    data_list_open(w, "profiles");
}

void ts_kbody_suppress_add(ts_jw_t *w, const char *email) {
    resource_open(w, "profile");
    TS_JW_KV_STR(w, "email", email);
    ts_jw_obj_close(w);
    ts_jw_obj_close(w);
}

void ts_kbody_suppress_close(ts_jw_t *w) { job_close(w); }

void ts_kbody_deletion(ts_jw_t *w, ts_buf_t *out, const char *email, const char *phone_e164) {
    job_open(w, out, "data-privacy-deletion-job");
    TS_JW_KEY(w, "profile");
    ts_jw_obj_open(w);
    TS_JW_KEY(w, "data");
    resource_open(w, "profile");
    if (email && *email)
        TS_JW_KV_STR(w, "email", email);
    else
        TS_JW_KV_STR(w, "phone_number", phone_e164);
    for (int i = 0; i < 6; i++) ts_jw_obj_close(w);
}
