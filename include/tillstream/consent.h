/*
 * tillstream/consent.h - consent over time: what a POS consent value means
 * given what tillstream already did and what Klaviyo suppressed.
 *
 * Klaviyo's Bulk Subscribe removes UNSUBSCRIBE, SPAM_REPORT and
 * USER_SUPPRESSED suppressions, so a subscribe must never be sent just
 * because a POS record says "true": only when the POS consent *becomes*
 * true, and never over a suppression the POS has not superseded with a
 * newer opt-in. docs/consent.md has the decision table and the reasons.
 *
 * This module is pure: no I/O, no clock, no allocation. State is a plain
 * value (ts_consent_state_t) the caller keeps per (account, customer); the
 * decision function reads the previous state and returns the next one, so
 * the caller decides when the new state becomes durable (the live
 * consumer: written to the state topic before the record's offset is
 * stored; the dry run: carried across input lines).
 */
#ifndef TILLSTREAM_CONSENT_H
#define TILLSTREAM_CONSENT_H

#include "tillstream/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_CONSENT_EMAIL = 0,
    TS_CONSENT_SMS = 1,
    TS_CONSENT__CHANNELS
} ts_consent_channel_t;
const char *ts_consent_channel_name(ts_consent_channel_t ch); /* "email" / "sms" */
/* "email" / "sms" -> channel; -1 when unknown. */
int ts_consent_channel_parse(const char *s);

/* A Klaviyo suppression reason (Get Profiles' EmailMarketingSuppression
 * enum). TS_SUPPR_NONE: no suppression known. */
#define TS_SUPPR_REASONS(X)                                                                        \
    X(NONE) X(UNSUBSCRIBE) X(SPAM_COMPLAINT) X(HARD_BOUNCE) X(INVALID_EMAIL) X(USER_SUPPRESSED)
/* TS_SUPPR_NONE = 0, TS_SUPPR_UNSUBSCRIBE, ...: the list above, in order. */
#define TS_SUPPR_ITEM_(name) TS_SUPPR_##name,
typedef enum { TS_SUPPR_REASONS(TS_SUPPR_ITEM_) TS_SUPPR__COUNT } ts_suppr_reason_t;
/* "UNSUBSCRIBE", "SPAM_COMPLAINT", ... ("NONE" for TS_SUPPR_NONE). */
const char *ts_suppr_reason_name(ts_suppr_reason_t r);
/* Klaviyo's name -> reason; also accepts "SPAM_REPORT" and "BOUNCE"
 * (HARD_BOUNCE). Unknown names map to USER_SUPPRESSED (a suppression we
 * cannot name is still a suppression); NULL/"" -> TS_SUPPR_NONE. */
ts_suppr_reason_t ts_suppr_reason_parse(const char *s);

/* State of one channel. All times epoch ms. */
typedef struct {
    ts_tri_t consent;              /* last POS consent decided on; UNKNOWN = never seen */
    int64_t consent_at;            /* its consent time (0 when none) */
    bool blocked;                  /* consent is TRUE but was not sent: a suppression stops it */
    ts_suppr_reason_t suppression; /* active Klaviyo suppression (NONE after a
                                      subscribe we sent, which removes it) */
    int64_t suppressed_at;
} ts_consent_channel_state_t;

/* State of one (account, customer). A zeroed value is "never seen". */
typedef struct {
    ts_consent_channel_state_t ch[TS_CONSENT__CHANNELS];
    int64_t next_offset; /* customers-topic offset after the record whose decision
                            changed this state (0 = unknown): a record re-read
                            below it was decided already (docs/consent.md) */
} ts_consent_state_t;

typedef enum {
    TS_CONSENT_NOTHING = 0, /* nothing sent (unknown, unchanged, replay) */
    TS_CONSENT_SUBSCRIBE,   /* a subscribe is sent */
    TS_CONSENT_UNSUBSCRIBE, /* an unsubscribe is sent */
    TS_CONSENT_BLOCKED,     /* would subscribe, but a suppression stops it */
    TS_CONSENT_REOPTIN      /* subscribe over an older suppression: sent,
                               logged and counted */
} ts_consent_action_t;
const char *ts_consent_action_name(ts_consent_action_t a);

/* What the POS says about one channel in one record. */
typedef struct {
    ts_tri_t value;
    int64_t at;       /* the consent time: *_consent_at, else updated_at,
                         else the record's timestamp (0 = none) */
    bool at_explicit; /* `at` came from email_consent_at / sms_consent_at */
} ts_consent_input_t;

typedef struct {
    bool replay;         /* a replay/backfill of the customers topic */
    bool replay_consent; /* --replay-consent: replays send consent too */
    int64_t now;         /* wall clock, for historical consented_at */
} ts_consent_opts_t;

typedef struct {
    ts_consent_action_t action;
    ts_suppr_reason_t blocked_by; /* BLOCKED / REOPTIN: the suppression */
    bool historical_import;       /* subscribe with historical_import: true */
    int64_t consented_at;         /* subscribe: the consent time to send with
                                     historical_import (always in the past) */
} ts_consent_decision_t;

/* Decides one channel. `prev` is the previous state, `*next` receives the
 * state after the decision (next may alias prev). Never fails. */
ts_consent_decision_t ts_consent_decide(const ts_consent_channel_state_t *prev,
                                        const ts_consent_input_t *in, const ts_consent_opts_t *opts,
                                        ts_consent_channel_state_t *next);

/* Records a Klaviyo suppression in a channel's state. A suppression older
 * than the one known, or older than the consent of a subscribe we sent
 * (which removed it in Klaviyo), is ignored, so redelivered suppression
 * records are harmless. A suppression over a sent "true" marks it blocked.
 * Returns true if the state changed. */
bool ts_consent_suppress(ts_consent_channel_state_t *st, ts_suppr_reason_t reason, int64_t at);

/* The POS consent input of a customer record for a channel: value, and the
 * time from email_consent_at / sms_consent_at, else updated_at, else
 * `record_ts` (the Kafka record's timestamp; 0 when none). */
ts_consent_input_t ts_consent_input(const ts_customer_t *c, ts_consent_channel_t ch,
                                    int64_t record_ts);

/* Serialised state: a small JSON object (the state topic's value, also
 * readable by people):
 *   {"v":1,"offset":N,"email":{"consent":true,"consent_at":..,
 *    "suppression":"UNSUBSCRIBE","suppressed_at":..},"sms":{...}}
 * ("offset": next_offset, left out when 0).
 * Channels never seen are left out. Writes into `out` (appends). */
void ts_consent_state_write(const ts_consent_state_t *st, ts_buf_t *out);
/* Parses what ts_consent_state_write wrote. TS_ERR_INVALID with a message
 * on anything else; `st` is zeroed first. */
ts_err_t ts_consent_state_parse(const char *json, size_t len, ts_consent_state_t *st, char *errstr,
                                size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
