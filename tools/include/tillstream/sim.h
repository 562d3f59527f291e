/*
 * tillstream/sim.h - a Klaviyo simulator (libmicrohttpd) that behaves like
 * Klaviyo where it matters to tillstream: per-account API keys (401), the
 * revision header (400), JSON:API validation with Klaviyo's error document
 * (400 + source pointer), 202 on success, unique_id de-duplication (across
 * requests: kept once; within one bulk request: the whole request fails),
 * per-account and per-endpoint rate limits (burst + steady, 429 with
 * Retry-After, RateLimit-* headers), Bulk Profile Import jobs that complete
 * after a delay and report the profiles they failed (invalid email or
 * phone) through import-errors and the others under stable ids (GET
 * .../{id}, .../import-errors, .../profiles, paginated), fault injection,
 * profiles with their marketing consent and suppressions (a subscribe
 * removes unsubscribe and spam suppressions; Get Profiles with filter,
 * additional-fields and cursor pages), and an inspection and control API
 * under /__sim/. docs/simulator.md says what it does not model.
 *
 * It does not share the core's Klaviyo facts (src/klaviyo/klaviyo.h) on
 * purpose: it is an independent oracle, written from the OpenAPI files.
 *
 * Threading: the server runs its own threads; every ts_sim_* call is
 * thread-safe.
 */
#ifndef TILLSTREAM_SIM_H
#define TILLSTREAM_SIM_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_SIM_EP_EVENTS_BULK = 0,  /* /api/event-bulk-create-jobs */
    TS_SIM_EP_PROFILES_BULK,    /* /api/profile-bulk-import-jobs */
    TS_SIM_EP_SUBSCRIBE_BULK,   /* /api/profile-subscription-bulk-create-jobs */
    TS_SIM_EP_UNSUBSCRIBE_BULK, /* /api/profile-subscription-bulk-delete-jobs */
    TS_SIM_EP_CREATE_EVENT,     /* /api/events (one event, 202) */
    TS_SIM_EP_PROFILE_IMPORT,   /* /api/profile-import (one profile, 201 new / 200 updated) */
    TS_SIM_EP_PROFILE_DELETION, /* /api/data-privacy-deletion-jobs (one profile, 202) */
    TS_SIM_EP_SUPPRESS_BULK,    /* /api/profile-suppression-bulk-create-jobs (<= 100 emails) */
    TS_SIM_EP_GET_PROFILES,     /* GET /api/profiles (filter, additional-fields, cursor pages) */
    TS_SIM_EP_GET_METRICS,      /* GET /api/metrics (the built-in consent metrics) */
    TS_SIM_EP_GET_EVENTS,       /* GET /api/events (SMS unsubscribe events, cursor pages) */
    TS_SIM_EP__COUNT
} ts_sim_ep_t;

typedef struct {
    double burst_per_s, steady_per_min;
} ts_sim_limit_t;

typedef struct {
    const char *listen_host;                 /* default 127.0.0.1 */
    int port;                                /* 0 = any free port */
    ts_sim_limit_t limits[TS_SIM_EP__COUNT]; /* zero = Klaviyo's defaults */
    double rate_scale;                       /* multiplies all limits (0 = 1) */
    double fail_rate;  /* fraction answered 500 or 503 with a body (nothing recorded) */
    double drop_rate;  /* fraction whose connection is closed without answer */
    double spike_rate; /* fraction delayed by spike_ms */
    int spike_ms;
    int latency_ms; /* added to every response */
    uint64_t seed;
    bool summary_only;            /* keep only de-duplication keys and counters */
    const char *throttle_account; /* this account's limits are multiplied by throttle_scale */
    double throttle_scale;
    const char *dump_dir;       /* write every accepted body there (NULL: off) */
    bool spaced_json;           /* error documents with a space after ':' and ',' (as
                                   pretty-printing servers write them) */
    int job_delay_ms;           /* Bulk Profile Import jobs complete this long after the
                                   202 (0: TS_SIM_DEFAULT_JOB_DELAY_MS; < 0: never) */
    const char *retired_before; /* "YYYY-MM-DD": earlier revisions are answered 410 Gone, as
                                   Klaviyo may answer a retired revision (NULL: none) */
    ts_clock_fn clock;          /* ms clock for rate limiting and jobs (NULL: monotonic) */
    void *clock_opaque;
} ts_sim_opts_t;

typedef struct ts_sim_s ts_sim_t;

#define TS_SIM_DEFAULT_JOB_DELAY_MS 200

/* Creates the simulator (not yet listening). `opts` is copied. */
ts_sim_t *ts_sim_new(const ts_sim_opts_t *opts, char *errstr, size_t errstr_size);
/* Adds an account and its API key (copied). Call before ts_sim_start. */
ts_err_t ts_sim_add_account(ts_sim_t *s, const char *name, const char *api_key);
ts_err_t ts_sim_start(ts_sim_t *s, char *errstr, size_t errstr_size);
int ts_sim_port(const ts_sim_t *s);
void ts_sim_stop(ts_sim_t *s);
void ts_sim_destroy(ts_sim_t *s);

/* Counters of one account (tests). Returns -1 for an unknown account. */
typedef struct {
    uint64_t events_recorded, duplicates_ignored, backfill_events;
    uint64_t profiles, subscribed, unsubscribed;
    uint64_t requests, accepted, rejected_400, throttled_429, failed_5xx, dropped, unauthorized;
    uint64_t rejected_other_4xx;    /* 413, 415, 405, 404 */
    uint64_t import_jobs;           /* Bulk Profile Import jobs created */
    uint64_t import_errors;         /* profiles failed inside those jobs */
    uint64_t job_polls;             /* GETs of a job, its import-errors or its profiles */
    uint64_t deletions;             /* Request Profile Deletion requests accepted */
    uint64_t suppressed;            /* emails in accepted bulk suppress jobs, and control
                                       calls that suppressed a profile (/__sim/.../suppress) */
    uint64_t suppressions_removed;  /* email suppressions a Bulk Subscribe removed */
    uint64_t historical_subscribed; /* of `subscribed`: in historical_import jobs */
    uint64_t max_concurrent;        /* most API requests of the account in progress at once
                                       (waiting out --latency-ms / spikes together) */
} ts_sim_stats_t;
int ts_sim_stats(ts_sim_t *s, const char *account, ts_sim_stats_t *out);
/* Import jobs created from now on complete `ms` after their 202 (0: the
 * default; < 0: never). Also POST /__sim/jobs {"delay_ms": N}. */
void ts_sim_set_job_delay(ts_sim_t *s, int ms);
/* Sets the fault rates of later requests (--fail-rate, --drop-rate; 0..1):
 * an outage at run time, records and windows kept. Also POST /__sim/faults
 * {"fail_rate": F, "drop_rate": D}. */
void ts_sim_set_faults(ts_sim_t *s, double fail_rate, double drop_rate);
/* Replaces an account's API key at run time (a rotation: the old key is
 * answered 401 from now on; `api_key` is copied). TS_ERR_NOT_FOUND for an
 * unknown account, TS_ERR_INVALID for an empty key. Also POST /__sim/keys
 * {"account": NAME, "key": KEY}. */
ts_err_t ts_sim_set_key(ts_sim_t *s, const char *account, const char *api_key);
/* Renders /__sim/stats JSON into out. */
void ts_sim_stats_json(ts_sim_t *s, ts_buf_t *out);

/* Validates a Bulk Create Events body as Klaviyo would (exposed for unit
 * tests). Returns 0 when valid, else fills detail/pointer. */
int ts_sim_validate_events(const char *body, size_t len, char *detail, size_t detail_size,
                           char *pointer, size_t pointer_size);
/* The same for any endpoint's body (no HTTP, no state). `now_wall_ms` is
 * the wall time the event time window is checked against. */
int ts_sim_validate(ts_sim_ep_t ep, const char *body, size_t len, int64_t now_wall_ms, char *detail,
                    size_t detail_size, char *pointer, size_t pointer_size);
/* Klaviyo's revision header format: YYYY-MM-DD[.suffix]. */
bool ts_sim_revision_valid(const char *rev);
/* The path and the official operation name (dump file prefix) of an endpoint. */
const char *ts_sim_ep_path(ts_sim_ep_t ep);
const char *ts_sim_ep_op(ts_sim_ep_t ep);
/* Parses "events_bulk=10/s,150/m" (names: events_bulk, profiles_bulk,
 * subscribe_bulk, unsubscribe_bulk, create_event, profile_import,
 * profile_deletion, suppress_bulk) into
 * opts->limits. Returns TS_ERR_CONFIG if malformed. */
ts_err_t ts_sim_parse_limit(ts_sim_opts_t *opts, const char *spec);

#ifdef __cplusplus
}
#endif
#endif
