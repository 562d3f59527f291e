/*
 * consent.c - the consent decision (docs/consent.md): POS value x previous
 * state x Klaviyo suppression -> subscribe | unsubscribe | nothing |
 * blocked | re-opt-in, and the state's JSON form (the state topic value).
 *
 * The rules, in the order the code applies them:
 *   1. unknown changes nothing;
 *   2. a replay without --replay-consent sends no consent and keeps the
 *      state (the replay's group is not the live one);
 *   3. false unsubscribes when the last decided consent was not false;
 *   4. true subscribes only on a transition (never seen, unknown or false
 *      before) or on a new opt-in at the till: an explicit POS consent time
 *      newer than the last decided one (Klaviyo may hold a suppression
 *      tillstream has not learnt of; a consent given after it is valid);
 *   5. a transition over a suppression is a re-opt-in only with evidence
 *      of an opt-in after the suppression: an explicit consent time newer
 *      than it, or an observed false -> true change whose time is newer.
 *      Otherwise it is blocked, and the state remembers "true, blocked" so
 *      later updates of the same customer do not look like transitions
 *      (each later "true" is reported blocked again; nothing is sent).
 *   6. a subscribe (or re-opt-in) clears the stored suppression, as
 *      Klaviyo's Bulk Subscribe does; a suppression older than that
 *      subscribe's consent time is ignored when it arrives late.
 */
#include "tillstream/consent.h"

#include <cJSON.h>
#include <string.h>

#include "tillstream/jw.h"

static const char *const channel_names[TS_CONSENT__CHANNELS] = {"email", "sms"};
#define NAME_OF(name) #name,
static const char *const reason_names[TS_SUPPR__COUNT] = {TS_SUPPR_REASONS(NAME_OF)};

const char *ts_consent_channel_name(ts_consent_channel_t ch) {
    return (unsigned)ch < TS_CONSENT__CHANNELS ? channel_names[ch] : "?";
}

int ts_consent_channel_parse(const char *s) {
    for (int i = 0; s && i < TS_CONSENT__CHANNELS; i++)
        if (!strcmp(s, channel_names[i])) return i;
    return -1;
}

const char *ts_suppr_reason_name(ts_suppr_reason_t r) {
    return (unsigned)r < TS_SUPPR__COUNT ? reason_names[r] : "?";
}

ts_suppr_reason_t ts_suppr_reason_parse(const char *s) {
    if (!s || !*s || !strcmp(s, "NONE")) return TS_SUPPR_NONE;
    for (int i = 1; i < TS_SUPPR__COUNT; i++)
        if (!strcmp(s, reason_names[i])) return (ts_suppr_reason_t)i;
    if (!strcmp(s, "SPAM_REPORT")) return TS_SUPPR_SPAM_COMPLAINT;
    if (!strcmp(s, "BOUNCE")) return TS_SUPPR_HARD_BOUNCE;
    return TS_SUPPR_USER_SUPPRESSED;
}

const char *ts_consent_action_name(ts_consent_action_t a) {
    switch (a) {
    case TS_CONSENT_NOTHING: return "nothing";
    case TS_CONSENT_SUBSCRIBE: return "subscribe";
    case TS_CONSENT_UNSUBSCRIBE: return "unsubscribe";
    case TS_CONSENT_BLOCKED: return "blocked";
    case TS_CONSENT_REOPTIN: return "re-opt-in";
    }
    return "?";
}

/* Klaviyo requires consented_at in the past for historical imports. */
static int64_t past(int64_t at, int64_t now) {
    if (now > 0 && (at <= 0 || at >= now)) return now - 1000;
    return at;
}

ts_consent_decision_t ts_consent_decide(const ts_consent_channel_state_t *prev,
                                        const ts_consent_input_t *in, const ts_consent_opts_t *opts,
                                        ts_consent_channel_state_t *next) {
    ts_consent_channel_state_t st = *prev;
    ts_consent_decision_t d = {.action = TS_CONSENT_NOTHING};
    bool live = !opts->replay || opts->replay_consent;
    if (in->value == TS_TRI_UNKNOWN || !live) {
        *next = st;
        return d;
    }
    if (in->value == TS_TRI_FALSE) {
        if (st.consent != TS_TRI_FALSE) {
            d.action = TS_CONSENT_UNSUBSCRIBE;
            st.consent = TS_TRI_FALSE;
            st.consent_at = in->at;
            st.blocked = false;
        }
        *next = st;
        return d;
    }
    /* true. A stored suppression is active: ts_consent_suppress keeps none
     * that a subscribe we sent has superseded, and a subscribe clears it. */
    bool suppressed = st.suppression != TS_SUPPR_NONE;
    bool after_suppression = in->at > st.suppressed_at;
    bool fresh_explicit = in->at_explicit && in->at > st.consent_at;
    if (st.consent == TS_TRI_TRUE && !fresh_explicit) {
        /* no transition and no newer opt-in at the till */
        if (st.blocked) {
            d.action = TS_CONSENT_BLOCKED; /* still held back, still nothing sent */
            d.blocked_by = st.suppression;
        }
        *next = st;
        return d;
    }
    if (!suppressed) {
        d.action = TS_CONSENT_SUBSCRIBE;
    } else {
        /* a re-opt-in needs evidence of an opt-in after the suppression: an
         * explicit POS consent time newer than it, or a false -> true change
         * seen by tillstream at a time newer than it */
        bool evidence = after_suppression && (in->at_explicit || st.consent == TS_TRI_FALSE);
        d.action = evidence ? TS_CONSENT_REOPTIN : TS_CONSENT_BLOCKED;
        d.blocked_by = st.suppression;
    }
    st.consent = TS_TRI_TRUE;
    st.consent_at = in->at;
    st.blocked = d.action == TS_CONSENT_BLOCKED;
    if (!st.blocked) {
        /* Klaviyo's Bulk Subscribe removes the suppression */
        st.suppression = TS_SUPPR_NONE;
        st.suppressed_at = 0;
        d.historical_import = opts->replay;
        d.consented_at = opts->replay ? past(in->at, opts->now) : in->at;
    }
    *next = st;
    return d;
}

bool ts_consent_suppress(ts_consent_channel_state_t *st, ts_suppr_reason_t reason, int64_t at) {
    if (reason == TS_SUPPR_NONE) return false;
    if (st->suppression != TS_SUPPR_NONE && at < st->suppressed_at) return false;
    /* superseded: a subscribe we sent for a consent newer than it removed it */
    if (st->consent == TS_TRI_TRUE && !st->blocked && at < st->consent_at) return false;
    if (st->suppression == reason && st->suppressed_at == at) return false;
    st->suppression = reason;
    st->suppressed_at = at;
    if (st->consent == TS_TRI_TRUE) st->blocked = true; /* what we sent is undone */
    return true;
}

ts_consent_input_t ts_consent_input(const ts_customer_t *c, ts_consent_channel_t ch,
                                    int64_t record_ts) {
    ts_consent_input_t in = {
        .value = ch == TS_CONSENT_EMAIL ? c->email_consent : c->sms_consent,
    };
    int64_t explicit_at = ch == TS_CONSENT_EMAIL ? c->email_consent_at_ms : c->sms_consent_at_ms;
    if (explicit_at) {
        in.at = explicit_at;
        in.at_explicit = true;
    } else {
        in.at = c->updated_at_ms ? c->updated_at_ms : record_ts;
    }
    return in;
}

/* ---- JSON form ------------------------------------------------------------ */

void ts_consent_state_write(const ts_consent_state_t *st, ts_buf_t *out) {
    ts_jw_t w;
    ts_jw_init_obj(&w, out);
    ts_jw_kv_int(&w, "v", 1);
    if (st->next_offset > 0) ts_jw_kv_int(&w, "offset", st->next_offset);
    for (int i = 0; i < TS_CONSENT__CHANNELS; i++) {
        const ts_consent_channel_state_t *c = &st->ch[i];
        if (c->consent == TS_TRI_UNKNOWN && c->suppression == TS_SUPPR_NONE) continue;
        ts_jw_key(&w, channel_names[i]);
        ts_jw_obj_open(&w);
        ts_jw_key(&w, "consent");
        if (c->consent == TS_TRI_UNKNOWN)
            ts_jw_null(&w);
        else
            ts_jw_bool(&w, c->consent == TS_TRI_TRUE);
        ts_jw_kv_int(&w, "consent_at", c->consent_at);
        if (c->blocked) ts_jw_kv_bool(&w, "blocked", true);
        if (c->suppression != TS_SUPPR_NONE) {
            ts_jw_kv_str(&w, "suppression", reason_names[c->suppression]);
            ts_jw_kv_int(&w, "suppressed_at", c->suppressed_at);
        }
        ts_jw_obj_close(&w);
    }
    ts_jw_obj_close(&w);
}

static bool get_int(const cJSON *o, const char *k, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) return true;
    if (!cJSON_IsNumber(v)) return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

#define BAD(what) ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "consent state: " what)

/* One channel's member c into *s. */
static bool channel_read(const cJSON *c, ts_consent_channel_state_t *s) {
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(c, "consent");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(c, "suppression");
    if (!cJSON_IsObject(c) || (cv && !cJSON_IsBool(cv) && !cJSON_IsNull(cv)) ||
        (sv && !cJSON_IsString(sv)) || !get_int(c, "consent_at", &s->consent_at) ||
        !get_int(c, "suppressed_at", &s->suppressed_at))
        return false;
    s->consent =
        cJSON_IsBool(cv) ? (cJSON_IsTrue(cv) ? TS_TRI_TRUE : TS_TRI_FALSE) : TS_TRI_UNKNOWN;
    s->suppression = sv ? ts_suppr_reason_parse(sv->valuestring) : TS_SUPPR_NONE;
    s->blocked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "blocked"));
    return true;
}

/* The state object's members into *st (zeroed by the caller). */
static ts_err_t state_read(const cJSON *root, ts_consent_state_t *st, char *errstr,
                           size_t errstr_size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    if (!cJSON_IsNumber(v) || v->valueint != 1) return BAD("unknown version");
    if (!get_int(root, "offset", &st->next_offset) || st->next_offset < 0) return BAD("bad offset");
    for (int i = 0; i < TS_CONSENT__CHANNELS; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, channel_names[i]);
        if (c && !channel_read(c, &st->ch[i]))
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "consent state: bad %s member",
                             channel_names[i]);
    }
    return TS_OK;
}

ts_err_t ts_consent_state_parse(const char *json, size_t len, ts_consent_state_t *st, char *errstr,
                                size_t errstr_size) {
    memset(st, 0, sizeof *st);
    cJSON *root = cJSON_ParseWithLength(json, len);
    ts_err_t rc =
        cJSON_IsObject(root) ? state_read(root, st, errstr, errstr_size) : BAD("not a JSON object");
    cJSON_Delete(root);
    if (rc) memset(st, 0, sizeof *st);
    return rc;
}
