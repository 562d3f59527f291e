/*
 * tillstream/config.h - the one JSON config file, parsed and validated.
 *
 * Shape (docs/configuration.md explains it; the parser is table driven
 * so validation, --help-config and docs/config-reference.md come from
 * one place: ts_config_reference below):
 *
 * { "kafka":    { "bootstrap.servers": "...", "<any librdkafka property>": "..." },
 *   "topics":   { "customers": "pos.customers", "orders": "pos.orders",
 *                 "dead_letter": "pos.deadletter", "profiles": null,
 *                 "customers_state": "tillstream.customers.state",
 *                 "suppressions": "pos.klaviyo.suppressions",
 *                 "suppressions_state": "tillstream.suppressions.state" },
 *   "klaviyo":  { "base_url": "https://a.klaviyo.com", "revision": "2026-07-15",
 *                 "ca_bundle": null, "linger_ms": 200, "timeout_ms": 30000,
 *                 "max_queued_events": 20000, "stall_warn_ms": 60000,
 *                 "job_timeout_ms": 600000 },
 *   "accounts": [ { "name": "brand-a", "api_key_env": "KLAVIYO_KEY_BRAND_A",
 *                   "outlets": ["101", "102"],
 *                   "rate_limits": { "events_bulk": {"burst_per_s": 10, "steady_per_min": 150}, ...
 * } }, { "name": "brand-b", "api_key_file": "/run/secrets/brand-b", "outlets": ["201"] } ],
 *   "routing":  { "default_online_outlet": null, "only_accounts": null,
 *                 "default_phone_country": null,
 *                 "outlet_names": { "101": "Sydney CBD" } },
 *   "consumer": { "group_id_customers": "tillstream-customers",
 *                 "group_id_orders": "tillstream-orders",
 *                 "shutdown_grace_ms": 30000, "unknown_customer_retry_ms": 60000,
 *                 "max_inflight_records": 50000, "stall_timeout_ms": 300000,
 *                 "revoke_drain_ms": 5000 },
 *   "registry": { "url": null, "username_env": null, "password_env": null,
 *                 "password_file": null, "ca_bundle": null, "timeout_ms": 5000,
 *                 "raw_writer_schema_customers": null, "raw_writer_schema_orders": null },
 *   "admin":    { "listen": "0.0.0.0:9464" },
 *   "log":      { "level": "info" },
 *   "customers": { "on_delete": "ignore", "sync": "all",
 *                  "wait_for_suppressions": true },
 *   "suppressions": { "interval_ms": 60000, "transactional_id": "tillstream-suppressions",
 *                     "page_size": 100 } }
 *
 * Environment overrides: TILLSTREAM_BOOTSTRAP_SERVERS replaces
 * kafka."bootstrap.servers".
 *
 * Errors name the key path: "accounts[1].outlets: expected an array of
 * strings". Unknown keys are errors (except under "kafka", which passes
 * through to librdkafka verbatim).
 */
#ifndef TILLSTREAM_CONFIG_H
#define TILLSTREAM_CONFIG_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Klaviyo endpoints the engine uses; index into per-account limits. */
typedef enum {
    TS_EP_EVENTS_BULK = 0,  /* POST /api/event-bulk-create-jobs      10/s 150/min */
    TS_EP_PROFILES_BULK,    /* POST /api/profile-bulk-import-jobs    10/s 150/min */
    TS_EP_SUBSCRIBE_BULK,   /* POST /api/profile-subscription-bulk-create-jobs 75/s 750/min */
    TS_EP_UNSUBSCRIBE_BULK, /* POST /api/profile-subscription-bulk-delete-jobs 75/s 750/min */
    TS_EP_SUPPRESS_BULK,    /* POST /api/profile-suppression-bulk-create-jobs 75/s 750/min */
    TS_EP_PROFILE_DELETION, /* POST /api/data-privacy-deletion-jobs 3/s 60/min */
    TS_EP__COUNT
} ts_endpoint_t;
const char *ts_endpoint_name(ts_endpoint_t ep); /* "events_bulk", ... */
const char *ts_endpoint_path(ts_endpoint_t ep); /* "/api/event-bulk-create-jobs", ... */

typedef struct {
    double burst_per_s;    /* tokens per second, burst window */
    double steady_per_min; /* tokens per minute, steady window */
} ts_rate_limit_t;

typedef struct {
    char *name;
    char *api_key_env; /* exactly one of env/file is set */
    char *api_key_file;
    char **outlets;
    size_t n_outlets;
    ts_rate_limit_t limits[TS_EP__COUNT]; /* defaults = Klaviyo's published limits */
    bool active;                          /* false when routing.only_accounts excludes it */
} ts_account_conf_t;

typedef struct {
    char *key, *value;
    char *file; /* kafka: the path of a "${file:/path}" value (read again by
                   ts_kconf_creds_check), else NULL */
} ts_kv_t;

typedef struct ts_config_s {
    ts_kv_t *kafka; /* librdkafka properties, verbatim */
    size_t n_kafka;

    char *topic_customers;
    char *topic_orders;
    char *topic_dead_letter;
    char *topic_profiles;           /* Klaviyo profile ids back to the POS (NULL: off) */
    char *topic_customers_state;    /* consent state, compacted, key = customer id */
    char *topic_suppressions;       /* Klaviyo suppressions (tillstream-suppressions) */
    char *topic_suppressions_state; /* the poller's watermark per account, compacted */

    char *klaviyo_base_url;
    char *klaviyo_revision;
    char *klaviyo_ca_bundle; /* NULL: system default; verification is always on */
    int klaviyo_linger_ms;
    int klaviyo_timeout_ms;
    int klaviyo_job_timeout_ms;    /* a profile-import job not complete by then is imported again */
    int klaviyo_max_queued_events; /* per account lane, backpressure threshold */
    int klaviyo_stall_warn_ms;     /* log once when an account's oldest undelivered event is
                                      older than this (0: never) */
    int klaviyo_key_check_ms;      /* an api_key_file is looked at this often for a rotated
                                      key (0: only after a 401/403) */

    ts_account_conf_t *accounts;
    size_t n_accounts;

    char *default_online_outlet;  /* NULL: none */
    char *default_phone_country;  /* as configured: "AU" or "61"; NULL: national numbers dropped */
    char default_phone_region[4]; /* its ISO region ("AU"; "61" -> "AU"), "" when none */
    ts_kv_t *outlet_names;        /* outlet id -> store name (HomeOutletName) */
    size_t n_outlet_names;

    char *group_id_customers;
    char *group_id_orders;
    int shutdown_grace_ms;
    int unknown_customer_retry_ms;
    int max_inflight_records;
    int stall_timeout_ms; /* no progress this long while owning work: stalled */
    int revoke_drain_ms;  /* revoke: wait this long for revoked records on the wire */

    char *registry_url;
    char *registry_username_env;
    char *registry_password_env;
    char *registry_password_file;
    char *registry_ca_bundle;
    int registry_timeout_ms; /* one request; the consume loop waits that long at most */
    char *registry_raw_writer_schema_customers; /* file: raw Avro without framing */
    char *registry_raw_writer_schema_orders;

    char *admin_listen;        /* "host:port"; NULL or "" disables */
    char *log_level;           /* "debug" | "info" | "warn" | "error" */
    char *customers_on_delete; /* "ignore" | "suppress" | "delete" (a tombstone's action) */

    char *customers_sync;          /* "all" | "consented" (docs/consent.md) */
    bool customers_sync_consented; /* customers_sync is "consented" */
    /* customers.wait_for_suppressions (default true): topics.suppressions
     * must exist at start (else a configuration error), and is read to
     * its end before any record (docs/consent.md); false: a missing topic
     * is a warning, and the consumer starts without Klaviyo's suppressions */
    bool customers_wait_for_suppressions;
    int suppressions_interval_ms;        /* tillstream-suppressions: between two polls */
    char *suppressions_transactional_id; /* its transactional.id */
    int suppressions_page_size;          /* Get Profiles page[size] */
} ts_config_t;

/* Parses and validates the file at `path`. On success *out is a new
 * config the caller frees with ts_config_destroy(). On failure returns
 * TS_ERR_CONFIG (or TS_ERR_IO for an unreadable file) and errstr names the
 * key path. Does not read API keys (see ts_config_account_key). */
ts_err_t ts_config_load(const char *path, ts_config_t **out, char *errstr, size_t errstr_size);
/* Same, from a JSON text (tests, embedded sandbox default). */
ts_err_t ts_config_parse(const char *json, ts_config_t **out, char *errstr, size_t errstr_size);
void ts_config_destroy(ts_config_t *cfg);

/* Reads account `idx`'s API key from its env var or file (trailing
 * whitespace trimmed) into a new malloc'd string the caller frees (and
 * should wipe). TS_ERR_CONFIG with a message naming the key path, never
 * the key, when missing/empty. */
ts_err_t ts_config_account_key(const ts_config_t *cfg, size_t idx, char **key_out, char *errstr,
                               size_t errstr_size);
/* Store name for an outlet id from routing.outlet_names, or NULL. */
const char *ts_config_outlet_name(const ts_config_t *cfg, const char *outlet_id);
/* Returns the account index by name, or -1. */
int ts_config_account_index(const ts_config_t *cfg, const char *name);

/* Appends the reference of every config key (path, type, default or
 * range, description) as a Markdown page to `out`, from the same tables
 * the parser validates with. docs/config-reference.md is this text and
 * `--help-config` prints it. TS_OK, or TS_ERR_NOMEM (out then holds a
 * part). */
ts_err_t ts_config_reference(ts_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif
