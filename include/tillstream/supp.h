/*
 * tillstream/supp.h - what tillstream-suppressions reads from Klaviyo and
 * remembers, without a socket (src/klaviyo/supp.c; docs/consent.md,
 * "The suppressions poller").
 *
 * The poller asks Klaviyo, per account, for the suppressions newer than a
 * watermark and turns each into one record of the suppressions topic:
 *
 * - email: Get Profiles with
 *   filter=greater-or-equal(subscriptions.email.marketing.suppression.timestamp,W),
 *   sort on that timestamp, additional-fields[profile]=subscriptions,
 *   cursor pagination (links.next);
 * - sms: Get Events filtered by Klaviyo's SMS unsubscribe metric
 *   ("Unsubscribed from SMS Marketing", its id found with Get Metrics) and
 *   datetime >= W, sorted by datetime, the profile included.
 *
 * The watermark (ts_supp_mark_t) of a channel is the newest suppression
 * time produced and the ids (profile ids for email, event ids for sms)
 * produced at exactly that time. A pass asks ">= W" and skips the ids it
 * already produced at W, so a suppression at the watermark's own time
 * (which "> W" would miss when it arrives after the pass) is produced,
 * and none is produced twice. Answers are sorted by that time, so the
 * mark after a page is the page's newest time: the poller stores it with
 * the page's records in one Kafka transaction.
 *
 * Record value (the format ts_consent_table_suppression reads, one
 * format for the topic and the dry run's --suppressions file):
 * {"account","channel":"email"|"sms","reason","timestamp" (ISO-8601 UTC,
 * ms),"email","phone_number","external_id","profile_id"}; key: the
 * external_id when Klaviyo has one, else the email (email) or phone (sms).
 *
 * Pure functions over caller-owned buffers; thread-compatible.
 */
#ifndef TILLSTREAM_SUPP_H
#define TILLSTREAM_SUPP_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Klaviyo's metric for SMS unsubscribes (STOP replies, the preference
 * page, a carrier opt-out). */
#define TS_SUPP_SMS_UNSUB_METRIC "Unsubscribed from SMS Marketing"

typedef enum { TS_SUPP_EMAIL = 0, TS_SUPP_SMS = 1, TS_SUPP__CHANNELS } ts_supp_channel_t;

/* A channel's watermark. `ids` are owned (malloc'd strings). */
typedef struct {
    int64_t at; /* epoch ms of the newest suppression produced; 0 = none yet */
    char **ids; /* produced at exactly `at` */
    size_t n_ids, cap;
} ts_supp_mark_t;

/* An account's state (the value of the state topic, key = account):
 * {"v":1,"pass_at":ms,"email":{"at":ms,"ids":[...]},"sms":{"at":ms,"ids":[...]}}.
 * pass_at: wall time at which the poller last finished a full pass over the
 * account (both channels, every page committed); 0 before the first. A
 * reader that sees pass_at > 0 for an account knows the suppressions topic
 * holds every suppression Klaviyo had at that time. */
typedef struct {
    ts_supp_mark_t ch[TS_SUPP__CHANNELS];
    int64_t pass_at;
} ts_supp_state_t;

/* Frees the ids; the state is empty (all zero) afterwards. NULL is fine. */
void ts_supp_state_clear(ts_supp_state_t *st);
/* Deep copy into an empty `dst`. TS_OK or TS_ERR_NOMEM (dst is empty). */
ts_err_t ts_supp_state_copy(ts_supp_state_t *dst, const ts_supp_state_t *src);
/* Parses a state value into an empty `out`. TS_ERR_INVALID with a message. */
ts_err_t ts_supp_state_parse(const char *json, size_t len, ts_supp_state_t *out, char *errstr,
                             size_t errstr_size);
/* Appends the state's JSON to out. */
void ts_supp_state_write(const ts_supp_state_t *st, ts_buf_t *out);
/* true when `id` was produced at the mark's time. */
bool ts_supp_mark_has(const ts_supp_mark_t *m, const char *id);
/* Moves the mark forward to a suppression `id` at `at` (a later time
 * replaces the ids, the same time adds one, an earlier time changes
 * nothing). TS_OK or TS_ERR_NOMEM. */
ts_err_t ts_supp_mark_advance(ts_supp_mark_t *m, int64_t at, const char *id);

/* One suppression as read from Klaviyo (borrowed strings, NULL when absent). */
typedef struct {
    ts_supp_channel_t channel;
    const char *reason; /* UNSUBSCRIBE, SPAM_COMPLAINT, HARD_BOUNCE, ... */
    int64_t at;         /* epoch ms */
    const char *email, *phone_number, *external_id, *profile_id;
    const char *id; /* the de-dup id: profile id (email), event id (sms) */
} ts_supp_record_t;

/* Appends the suppressions topic's value for `r` to out. */
void ts_supp_record_json(const char *account, const ts_supp_record_t *r, ts_buf_t *out);
/* The record's key: external_id, else email (email) / phone_number (sms);
 * NULL when it has none (not produced: nothing could match it). */
const char *ts_supp_record_key(const ts_supp_record_t *r);

/* Called for each suppression of a page that `from` does not cover. A
 * non-TS_OK return stops the page and is returned. */
typedef ts_err_t (*ts_supp_emit_fn)(void *opaque, const ts_supp_record_t *r);

/* Parses one Get Profiles page (body of a 200). For each profile whose
 * newest email suppression is not covered by `from` (the pass's starting
 * mark: older than its time, or at its time with a known id), calls emit
 * and advances `to`. `next` gets links.next ("" when the last page).
 * TS_ERR_INVALID with a message for a document that is not Klaviyo's. */
ts_err_t ts_supp_profiles_page(const char *body, size_t len, const ts_supp_mark_t *from,
                               ts_supp_mark_t *to, ts_supp_emit_fn emit, void *opaque,
                               ts_buf_t *next, char *errstr, size_t errstr_size);
/* The same for a Get Events page of SMS unsubscribe events (include=profile:
 * identifiers from the included profiles; reason UNSUBSCRIBE). */
ts_err_t ts_supp_events_page(const char *body, size_t len, const ts_supp_mark_t *from,
                             ts_supp_mark_t *to, ts_supp_emit_fn emit, void *opaque, ts_buf_t *next,
                             char *errstr, size_t errstr_size);
/* Looks for the metric named `name` in a Get Metrics page: its id into
 * `id` (left empty when not on this page), links.next into `next`. */
ts_err_t ts_supp_metrics_page(const char *body, size_t len, const char *name, ts_buf_t *id,
                              ts_buf_t *next, char *errstr, size_t errstr_size);

/* First-page URLs (base = klaviyo.base_url, without a trailing slash). */
void ts_supp_profiles_url(ts_buf_t *out, const char *base, const ts_supp_mark_t *from,
                          int page_size);
void ts_supp_events_url(ts_buf_t *out, const char *base, const char *metric_id,
                        const ts_supp_mark_t *from, int page_size);
void ts_supp_metrics_url(ts_buf_t *out, const char *base);

/* true when `url` (a links.next) is on `base` (same scheme, host and
 * port): the API key is only ever sent there. */
bool ts_supp_url_on_base(const char *url, const char *base);

#ifdef __cplusplus
}
#endif
#endif
