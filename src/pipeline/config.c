/*
 * config.c - the JSON config file: parsing, defaults and validation.
 *
 * Table driven (like Fluent Bit's config_map): each simple section is a
 * table of {key, type, default, offset, description}; the same tables
 * drive validation and the reference (ts_config_reference: --help-config
 * and docs/config-reference.md). Every
 * error names its key path ("accounts[1].outlets: expected an array of
 * strings"). Unknown keys are errors, except under "kafka", whose
 * properties go to librdkafka verbatim.
 */
#include "tillstream/config.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/phone.h"
#include "klaviyo/klaviyo.h"

typedef enum { CT_STR, CT_STR_NULL, CT_INT, CT_BOOL } ctype_t; /* CT_BOOL: a bool field */

typedef struct {
    const char *key;
    ctype_t type;
    const char *def; /* default (string form); NULL = null */
    size_t offset;
    int min, max; /* CT_INT bounds */
    const char *desc;
} copt_t;

#define O(f) offsetof(ts_config_t, f)
/* One row per key, by type: key, default, field[, min, max], description. */
#define C_STR(k, def, f, desc)                                                                     \
    { k, CT_STR, def, O(f), 0, 0, desc }
#define C_STRN(k, def, f, desc)                                                                    \
    { k, CT_STR_NULL, def, O(f), 0, 0, desc }
#define C_INT(k, def, f, min, max, desc)                                                           \
    { k, CT_INT, #def, O(f), min, max, desc }
#define C_BOOL(k, def, f, desc)                                                                    \
    { k, CT_BOOL, #def, O(f), 0, 0, desc }
#define C_END                                                                                      \
    { NULL, 0, NULL, 0, 0, 0, NULL }

static const copt_t topics_opts[] = {
    C_STR("customers", "pos.customers", topic_customers, "customers topic"),
    C_STR("orders", "pos.orders", topic_orders, "orders topic"),
    C_STR("dead_letter", "pos.deadletter", topic_dead_letter, "dead-letter topic"),
    C_STRN("profiles", NULL, topic_profiles,
           "Klaviyo profile ids back to the POS, e.g. pos.klaviyo.profiles (null: off)"),
    C_STR("customers_state", "tillstream.customers.state", topic_customers_state,
          "consent state (compacted, co-partitioned with customers)"),
    C_STR("suppressions", "pos.klaviyo.suppressions", topic_suppressions,
          "Klaviyo suppressions (key = POS customer id)"),
    C_STR("suppressions_state", "tillstream.suppressions.state", topic_suppressions_state,
          "tillstream-suppressions' watermark per account (compacted, key = account)"),
    C_END};

static const copt_t klaviyo_opts[] = {
    C_STR("base_url", TS_KLAVIYO_BASE_URL, klaviyo_base_url, "API base URL"),
    C_STR("revision", TS_KLAVIYO_REVISION, klaviyo_revision,
          "revision header, YYYY-MM-DD[.suffix]"),
    C_STRN("ca_bundle", NULL, klaviyo_ca_bundle,
           "CA bundle path (verification is always on; unreadable: exit 2 at start)"),
    C_INT("linger_ms", 200, klaviyo_linger_ms, 0, 600000, "max wait to fill a batch"),
    C_INT("timeout_ms", 30000, klaviyo_timeout_ms, 100, 600000,
          "one Klaviyo request, connect included"),
    C_INT("job_timeout_ms", 600000, klaviyo_job_timeout_ms, 100, 86400000,
          "a profile-import job not complete by then is imported again"),
    C_INT("max_queued_events", 20000, klaviyo_max_queued_events, 1, 10000000,
          "per-account queue limit (backpressure)"),
    C_INT("stall_warn_ms", 60000, klaviyo_stall_warn_ms, 0, 86400000,
          "log once when an account's oldest undelivered event is older (0: never)"),
    C_INT("key_check_ms", 10000, klaviyo_key_check_ms, 0, 3600000,
          "how often an api_key_file is checked for a rotated key (0: only after a 401/403)"),
    C_END};

static const copt_t routing_opts[] = {
    C_STRN("default_online_outlet", NULL, default_online_outlet,
           "outlet for records without a Home Outlet (must be served by an account)"),
    C_STRN("default_phone_country", NULL, default_phone_country,
           "country of national phone numbers: ISO region (\"AU\") or calling code (\"61\")"),
    C_END};

static const copt_t consumer_opts[] = {
    C_STR("group_id_customers", "tillstream-customers", group_id_customers,
          "consumer group of tillstream-customers"),
    C_STR("group_id_orders", "tillstream-orders", group_id_orders,
          "consumer group of tillstream-orders"),
    C_INT("shutdown_grace_ms", 30000, shutdown_grace_ms, 0, 3600000,
          "how long a stopping consumer waits for in-flight deliveries"),
    C_INT("unknown_customer_retry_ms", 60000, unknown_customer_retry_ms, 0, 86400000,
          "how long an order waits for its customer"),
    C_INT("max_inflight_records", 50000, max_inflight_records, 1, 10000000,
          "records in flight before partitions pause"),
    C_INT("stall_timeout_ms", 300000, stall_timeout_ms, 1000, 86400000,
          "no progress for this long while owning work: log line + tillstream_consumer_stalled"),
    C_INT("revoke_drain_ms", 5000, revoke_drain_ms, 0, 60000,
          "on revoke, how long to wait for the revoked partitions' requests on the wire"),
    C_END};

static const copt_t registry_opts[] = {
    C_STRN("url", NULL, registry_url, "schema registry URL"),
    C_STRN("username_env", NULL, registry_username_env,
           "environment variable holding the basic-auth user"),
    C_STRN("password_env", NULL, registry_password_env,
           "environment variable holding the basic-auth password"),
    C_STRN("password_file", NULL, registry_password_file, "file holding the basic-auth password"),
    C_STRN("ca_bundle", NULL, registry_ca_bundle,
           "CA bundle path for the registry (unreadable: exit 2 at start)"),
    C_INT("timeout_ms", 5000, registry_timeout_ms, 100, 60000,
          "one registry request, connect included"),
    C_STRN("raw_writer_schema_customers", NULL, registry_raw_writer_schema_customers,
           "writer schema file for raw (unframed) Avro customers"),
    C_STRN("raw_writer_schema_orders", NULL, registry_raw_writer_schema_orders,
           "writer schema file for raw (unframed) Avro orders"),
    C_END};

static const copt_t admin_opts[] = {
    C_STRN("listen", "0.0.0.0:9464", admin_listen,
           "host:port of /metrics, /healthz, /readyz (null or \"\": off)"),
    C_END};

static const copt_t customers_opts[] = {
    C_STR("on_delete", "ignore", customers_on_delete,
          "a customer's tombstone: ignore | suppress (bulk suppress) | delete (data-privacy "
          "deletion)"),
    C_STR("sync", "all", customers_sync,
          "all | consented (only customers with consent on some channel become profiles)"),
    C_BOOL("wait_for_suppressions", true, customers_wait_for_suppressions,
           "the suppressions topic must exist: no subscription before it was read to its end"),
    C_END};

static const copt_t suppressions_opts[] = {
    C_INT("interval_ms", 60000, suppressions_interval_ms, 1000, 86400000,
          "tillstream-suppressions: time between two polls of an account"),
    C_STR("transactional_id", "tillstream-suppressions", suppressions_transactional_id,
          "tillstream-suppressions: the Kafka transactional.id (one active poller per id)"),
    C_INT("page_size", 100, suppressions_page_size, 1, 100,
          "tillstream-suppressions: Get Profiles page[size]"),
    C_END};

static const copt_t log_opts[] = {C_STR("level", "info", log_level, "debug | info | warn | error"),
                                  C_END};

/* The simple sections, in the order they are applied (the ones marked
 * after_accounts once the accounts are known); parse, destroy and the
 * reference walk this one list. */
typedef struct {
    const char *section;
    const copt_t *opts;
    bool after_accounts;
} csection_t;

static const csection_t simple_sections[] = {
    {.section = "topics", .opts = topics_opts},
    {.section = "klaviyo", .opts = klaviyo_opts},
    {.section = "routing", .opts = routing_opts, .after_accounts = true},
    {.section = "consumer", .opts = consumer_opts, .after_accounts = true},
    {.section = "registry", .opts = registry_opts, .after_accounts = true},
    {.section = "admin", .opts = admin_opts, .after_accounts = true},
    {.section = "log", .opts = log_opts, .after_accounts = true},
    {.section = "customers", .opts = customers_opts, .after_accounts = true},
    {.section = "suppressions", .opts = suppressions_opts, .after_accounts = true},
    {.section = NULL}};

/* The structured keys, parsed by hand below (parse_kafka, parse_accounts,
 * parse_limits, parse_routing_extra): their rows of the reference. */
typedef struct {
    const char *path, *type, *def, *desc;
} cdoc_t;

static const cdoc_t structured_docs[] = {
    {"kafka.<property>", "string, number or boolean", "",
     "any librdkafka property, verbatim; \"${env:NAME}\" / \"${file:/path}\" read a secret; "
     "TILLSTREAM_BOOTSTRAP_SERVERS overrides bootstrap.servers"},
    {"accounts", "array of objects", "required",
     "the Klaviyo accounts, at least one; an outlet belongs to one account only"},
    {"accounts[].name", "string", "required",
     "unique account name (labels, logs, dead-letter header tillstream.account)"},
    {"accounts[].api_key_env", "string", "",
     "environment variable holding the private API key (exactly one of api_key_env, "
     "api_key_file; inline api_key is rejected)"},
    {"accounts[].api_key_file", "string", "", "file holding the private API key"},
    {"accounts[].outlets", "array of strings", "required", "the outlet ids this account serves"},
    {"routing.only_accounts", "array of account names or null", "null",
     "run only these accounts; records of the others are skipped (OTHER_ACCOUNT)"},
    {"routing.outlet_names", "object: outlet id -> store name", "null",
     "outlet id -> store name, sent as HomeOutletName"},
    {NULL, NULL, NULL, NULL}};

#define ERR(...) ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, __VA_ARGS__)

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

/* Sets one key's field from the config's value; the error names the key path. */
static ts_err_t apply_value(ts_config_t *cfg, const copt_t *o, const char *section, const cJSON *it,
                            char *errstr, size_t errstr_size) {
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case CT_INT:
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble)
            return ERR("%s.%s: expected an integer", section, o->key);
        if (it->valueint < o->min || it->valueint > o->max)
            return ERR("%s.%s: must be between %d and %d", section, o->key, o->min, o->max);
        *(int *)field = it->valueint;
        break;
    case CT_BOOL:
        if (!cJSON_IsBool(it)) return ERR("%s.%s: expected true or false", section, o->key);
        *(bool *)field = cJSON_IsTrue(it);
        break;
    case CT_STR:
    case CT_STR_NULL:
        if (cJSON_IsNull(it) && o->type == CT_STR_NULL) {
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        }
        if (!cJSON_IsString(it))
            return ERR("%s.%s: expected a string%s", section, o->key,
                       o->type == CT_STR_NULL ? " or null" : "");
        if (o->type == CT_STR && !*it->valuestring)
            return ERR("%s.%s: must not be empty", section, o->key);
        free(*(char **)field);
        *(char **)field = strdup(it->valuestring);
        if (!*(char **)field) return TS_ERR_NOMEM;
        break;
    }
    return TS_OK;
}

static ts_err_t apply_table(ts_config_t *cfg, const copt_t *tab, const char *section,
                            const cJSON *obj, char *errstr, size_t errstr_size) {
    /* defaults */
    for (const copt_t *o = tab; o->key; o++) {
        void *field = (char *)cfg + o->offset;
        if (o->type == CT_INT)
            *(int *)field = atoi(o->def);
        else if (o->type == CT_BOOL)
            *(bool *)field = !strcmp(o->def, "true");
        else
            *(char **)field = xstrdup(o->def);
    }
    if (!obj) return TS_OK;
    if (!cJSON_IsObject(obj)) return ERR("%s: expected an object", section);
    for (const cJSON *it = obj->child; it; it = it->next) {
        const copt_t *o = tab;
        while (o->key && strcmp(o->key, it->string) != 0) o++;
        if (!o->key) return ERR("%s.%s: unknown key", section, it->string);
        ts_err_t rc = apply_value(cfg, o, section, it, errstr, errstr_size);
        if (rc != TS_OK) return rc;
    }
    return TS_OK;
}

/* Kafka credentials never sit in the config file: a value "${env:NAME}" or
 * "${file:/path}" is replaced by the variable's value or the file's
 * content (trailing newline trimmed). Errors name the key, never a value. */
static ts_err_t resolve_secret_ref(const char *key, const char *v, char **out, char **file,
                                   char *errstr, size_t errstr_size) {
    size_t n = strlen(v);
    *out = *file = NULL;
    if (n > 7 && !strncmp(v, "${env:", 6) && v[n - 1] == '}') {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 7), v + 6);
        const char *ev = getenv(name);
        if (!ev) return ERR("kafka.%s: environment variable %s is not set", key, name);
        *out = strdup(ev);
    } else if (n > 8 && !strncmp(v, "${file:", 7) && v[n - 1] == '}') {
        char path[1024];
        snprintf(path, sizeof path, "%.*s", (int)(n - 8), v + 7);
        if (!(*out = ts_secret_file_read(path)))
            return ERR("kafka.%s: cannot read %s: %s", key, path, strerror(errno));
        if (!(*file = strdup(path))) return TS_ERR_NOMEM;
    } else {
        *out = strdup(v);
    }
    return *out ? TS_OK : TS_ERR_NOMEM;
}

static ts_err_t parse_kafka(ts_config_t *cfg, const cJSON *obj, char *errstr, size_t errstr_size) {
    if (!obj) return TS_OK;
    if (!cJSON_IsObject(obj)) return ERR("kafka: expected an object of librdkafka properties");
    size_t n = (size_t)cJSON_GetArraySize(obj);
    cfg->kafka = calloc(n + 1, sizeof *cfg->kafka);
    if (!cfg->kafka) return TS_ERR_NOMEM;
    for (const cJSON *it = obj->child; it; it = it->next) {
        char num[64];
        const char *v;
        if (cJSON_IsString(it))
            v = it->valuestring;
        else if (cJSON_IsBool(it))
            v = cJSON_IsTrue(it) ? "true" : "false";
        else if (cJSON_IsNumber(it)) {
            snprintf(num, sizeof num, "%.17g", it->valuedouble);
            v = num;
        } else
            return ERR("kafka.%s: expected a string, number or boolean", it->string);
        char *resolved = NULL, *file = NULL;
        ts_err_t rc = resolve_secret_ref(it->string, v, &resolved, &file, errstr, errstr_size);
        if (rc) {
            free(resolved);
            return rc;
        }
        cfg->kafka[cfg->n_kafka].key = strdup(it->string);
        cfg->kafka[cfg->n_kafka].value = resolved;
        cfg->kafka[cfg->n_kafka].file = file;
        cfg->n_kafka++;
    }
    return TS_OK;
}

static ts_err_t parse_limits(ts_account_conf_t *a, size_t idx, const cJSON *obj, char *errstr,
                             size_t errstr_size) {
    for (int ep = 0; ep < TS_EP__COUNT; ep++)
        a->limits[ep] = (ts_rate_limit_t){
            .burst_per_s = ts_klaviyo_endpoint((ts_endpoint_t)ep)->burst_per_s,
            .steady_per_min = ts_klaviyo_endpoint((ts_endpoint_t)ep)->steady_per_min};
    if (!obj) return TS_OK;
    if (!cJSON_IsObject(obj)) return ERR("accounts[%zu].rate_limits: expected an object", idx);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ep = 0;
        while (ep < TS_EP__COUNT && strcmp(ts_endpoint_name((ts_endpoint_t)ep), it->string) != 0)
            ep++;
        if (ep == TS_EP__COUNT)
            return ERR("accounts[%zu].rate_limits.%s: unknown endpoint (expected one of "
                       "events_bulk, profiles_bulk, subscribe_bulk, unsubscribe_bulk)",
                       idx, it->string);
        if (!cJSON_IsObject(it))
            return ERR("accounts[%zu].rate_limits.%s: expected an object", idx, it->string);
        for (const cJSON *l = it->child; l; l = l->next) {
            double *dst;
            if (!strcmp(l->string, "burst_per_s"))
                dst = &a->limits[ep].burst_per_s;
            else if (!strcmp(l->string, "steady_per_min"))
                dst = &a->limits[ep].steady_per_min;
            else
                return ERR("accounts[%zu].rate_limits.%s.%s: unknown key", idx, it->string,
                           l->string);
            if (!cJSON_IsNumber(l) || l->valuedouble <= 0)
                return ERR("accounts[%zu].rate_limits.%s.%s: expected a positive number", idx,
                           it->string, l->string);
            *dst = l->valuedouble;
        }
    }
    return TS_OK;
}

/* One account object's keys into a; *limits is its rate_limits object. */
static ts_err_t parse_account_keys(ts_account_conf_t *a, size_t i, const cJSON *acc,
                                   const cJSON **limits, char *errstr, size_t errstr_size) {
    if (!cJSON_IsObject(acc)) return ERR("accounts[%zu]: expected an object", i);
    for (const cJSON *it = acc->child; it; it = it->next) {
        const char *k = it->string;
        if (!strcmp(k, "name") || !strcmp(k, "api_key_env") || !strcmp(k, "api_key_file")) {
            if (!cJSON_IsString(it) || !*it->valuestring)
                return ERR("accounts[%zu].%s: expected a non-empty string", i, k);
            char **dst = !strcmp(k, "name")          ? &a->name
                         : !strcmp(k, "api_key_env") ? &a->api_key_env
                                                     : &a->api_key_file;
            *dst = strdup(it->valuestring);
        } else if (!strcmp(k, "outlets")) {
            if (!cJSON_IsArray(it))
                return ERR("accounts[%zu].outlets: expected an array of strings", i);
            size_t no = (size_t)cJSON_GetArraySize(it);
            a->outlets = calloc(no ? no : 1, sizeof *a->outlets);
            if (!a->outlets) return TS_ERR_NOMEM;
            for (const cJSON *o = it->child; o; o = o->next) {
                if (!cJSON_IsString(o) || !*o->valuestring)
                    return ERR("accounts[%zu].outlets: expected an array of strings", i);
                a->outlets[a->n_outlets++] = strdup(o->valuestring);
            }
        } else if (!strcmp(k, "api_key")) {
            return ERR("accounts[%zu].api_key: inline API keys are not allowed; use "
                       "api_key_env or api_key_file",
                       i);
        } else if (!strcmp(k, "rate_limits")) {
            *limits = it;
        } else {
            return ERR("accounts[%zu].%s: unknown key", i, k);
        }
    }
    return TS_OK;
}

/* accounts[i] against itself and the accounts before it: required keys,
 * one key source, unique names, an outlet in one account once. */
static ts_err_t check_account(const ts_config_t *cfg, size_t i, char *errstr, size_t errstr_size) {
    const ts_account_conf_t *a = &cfg->accounts[i];
    if (!a->name) return ERR("accounts[%zu].name: required", i);
    if (!a->api_key_env && !a->api_key_file)
        return ERR("accounts[%zu]: needs a key source (api_key_env or api_key_file)", i);
    if (a->api_key_env && a->api_key_file)
        return ERR("accounts[%zu]: api_key_env and api_key_file are exclusive", i);
    if (!a->outlets) return ERR("accounts[%zu].outlets: required (an array of strings)", i);
    return TS_OK;
}

static ts_err_t check_account_unique(const ts_config_t *cfg, size_t i, char *errstr,
                                     size_t errstr_size) {
    const ts_account_conf_t *a = &cfg->accounts[i];
    for (size_t j = 0; j < i; j++) {
        if (!strcmp(cfg->accounts[j].name, a->name))
            return ERR("accounts[%zu].name: duplicate account name \"%s\"", i, a->name);
        for (size_t x = 0; x < a->n_outlets; x++)
            for (size_t y = 0; y < cfg->accounts[j].n_outlets; y++)
                if (!strcmp(a->outlets[x], cfg->accounts[j].outlets[y]))
                    return ERR("accounts[%zu].outlets: outlet \"%s\" is already served by "
                               "account \"%s\" (accounts[%zu])",
                               i, a->outlets[x], cfg->accounts[j].name, j);
    }
    for (size_t x = 0; x < a->n_outlets; x++)
        for (size_t y = 0; y < x; y++)
            if (!strcmp(a->outlets[x], a->outlets[y]))
                return ERR("accounts[%zu].outlets: outlet \"%s\" listed twice", i, a->outlets[x]);
    return TS_OK;
}

static ts_err_t parse_accounts(ts_config_t *cfg, const cJSON *arr, char *errstr,
                               size_t errstr_size) {
    if (!arr) return ERR("accounts: required (an array of Klaviyo accounts)");
    if (!cJSON_IsArray(arr)) return ERR("accounts: expected an array of objects");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0) return ERR("accounts: must list at least one account");
    cfg->accounts = calloc(n, sizeof *cfg->accounts);
    if (!cfg->accounts) return TS_ERR_NOMEM;
    size_t i = 0;
    for (const cJSON *acc = arr->child; acc; acc = acc->next, i++) {
        ts_account_conf_t *a = &cfg->accounts[i];
        cfg->n_accounts = i + 1;
        a->active = true;
        const cJSON *limits = NULL;
        ts_err_t rc = parse_account_keys(a, i, acc, &limits, errstr, errstr_size);
        if (!rc) rc = check_account(cfg, i, errstr, errstr_size);
        if (!rc) rc = parse_limits(a, i, limits, errstr, errstr_size);
        if (!rc) rc = check_account_unique(cfg, i, errstr, errstr_size);
        if (rc) return rc;
    }
    return TS_OK;
}

static ts_err_t parse_routing_extra(ts_config_t *cfg, const cJSON *routing, char *errstr,
                                    size_t errstr_size, cJSON **stripped) {
    /* only_accounts and outlet_names are structured: handled here, removed
     * from the copy that goes through the simple table. */
    *stripped = routing ? cJSON_Duplicate(routing, 1) : NULL;
    if (!routing) return TS_OK;
    if (!cJSON_IsObject(routing)) return ERR("routing: expected an object");
    cJSON *only = cJSON_DetachItemFromObjectCaseSensitive(*stripped, "only_accounts");
    cJSON *names = cJSON_DetachItemFromObjectCaseSensitive(*stripped, "outlet_names");
    ts_err_t rc = TS_OK;
    if (only && !cJSON_IsNull(only)) {
        if (!cJSON_IsArray(only)) {
            rc = ERR("routing.only_accounts: expected an array of account names or null");
            goto out;
        }
        for (size_t i = 0; i < cfg->n_accounts; i++) cfg->accounts[i].active = false;
        int k = 0;
        for (const cJSON *it = only->child; it; it = it->next, k++) {
            int idx = cJSON_IsString(it) ? ts_config_account_index(cfg, it->valuestring) : -1;
            if (idx < 0) {
                rc = ERR("routing.only_accounts[%d]: unknown account%s%s", k,
                         cJSON_IsString(it) ? " " : "", cJSON_IsString(it) ? it->valuestring : "");
                goto out;
            }
            cfg->accounts[idx].active = true;
        }
    }
    if (names && !cJSON_IsNull(names)) {
        if (!cJSON_IsObject(names)) {
            rc = ERR("routing.outlet_names: expected an object of outlet id -> store name");
            goto out;
        }
        size_t n = (size_t)cJSON_GetArraySize(names);
        cfg->outlet_names = calloc(n + 1, sizeof *cfg->outlet_names);
        for (const cJSON *it = names->child; it; it = it->next) {
            if (!cJSON_IsString(it)) {
                rc = ERR("routing.outlet_names.%s: expected a string", it->string);
                goto out;
            }
            cfg->outlet_names[cfg->n_outlet_names].key = strdup(it->string);
            cfg->outlet_names[cfg->n_outlet_names].value = strdup(it->valuestring);
            cfg->n_outlet_names++;
        }
    }
out:
    cJSON_Delete(only);
    cJSON_Delete(names);
    return rc;
}

static bool is_http_url(const char *s) {
    return !strncmp(s, "https://", 8) || !strncmp(s, "http://", 7);
}

static const char *const root_sections[] = {"kafka",   "topics",    "klaviyo",      "accounts",
                                            "routing", "consumer",  "registry",     "admin",
                                            "log",     "customers", "suppressions", NULL};

/* The root keys and every section, in the order of simple_sections with
 * the accounts and routing's structured keys between the two phases. */
static ts_err_t parse_sections(ts_config_t *cfg, const cJSON *root, cJSON **routing_rest,
                               char *errstr, size_t errstr_size) {
    if (!cJSON_IsObject(root)) return ERR("(root): expected a JSON object");
    for (const cJSON *it = root->child; it; it = it->next) {
        int k = 0;
        while (root_sections[k] && strcmp(root_sections[k], it->string) != 0) k++;
        if (!root_sections[k]) return ERR("%s: unknown key", it->string);
    }
#define GET(name) cJSON_GetObjectItemCaseSensitive(root, name)
    ts_err_t rc = parse_kafka(cfg, GET("kafka"), errstr, errstr_size);
    for (int phase = 0; phase < 2 && !rc; phase++) {
        if (phase == 1 && !(rc = parse_accounts(cfg, GET("accounts"), errstr, errstr_size)))
            rc = parse_routing_extra(cfg, GET("routing"), errstr, errstr_size, routing_rest);
        for (const csection_t *t = simple_sections; t->section && !rc; t++) {
            if (t->after_accounts != (phase == 1)) continue;
            const cJSON *obj = t->opts == routing_opts ? *routing_rest : GET(t->section);
            rc = apply_table(cfg, t->opts, t->section, obj, errstr, errstr_size);
        }
    }
#undef GET
    return rc;
}

static bool one_of(const char *v, const char *const *allowed) {
    for (; *allowed; allowed++)
        if (!strcmp(v, *allowed)) return true;
    return false;
}

/* The string keys with a closed set of values. */
static ts_err_t check_enums(ts_config_t *cfg, char *errstr, size_t errstr_size) {
    static const char *const on_delete[] = {"ignore", "suppress", "delete", NULL};
    static const char *const sync[] = {"all", "consented", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    if (!one_of(cfg->customers_on_delete, on_delete))
        return ERR("customers.on_delete: expected ignore, suppress or delete, got \"%s\"",
                   cfg->customers_on_delete);
    if (!ts_klaviyo_revision_valid(cfg->klaviyo_revision))
        return ERR("klaviyo.revision: expected YYYY-MM-DD[.suffix], got \"%s\"",
                   cfg->klaviyo_revision);
    if (!one_of(cfg->customers_sync, sync))
        return ERR("customers.sync: expected \"all\" or \"consented\", got \"%s\"",
                   cfg->customers_sync);
    cfg->customers_sync_consented = !strcmp(cfg->customers_sync, "consented");
    if (!one_of(cfg->log_level, levels))
        return ERR("log.level: expected one of debug, info, warn, error");
    return TS_OK;
}

/* The URLs, and the CA bundles: one that cannot be read would only show at
 * the first TLS handshake, as a wait that never ends: fail at start. */
static ts_err_t check_endpoints(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    if (!is_http_url(cfg->klaviyo_base_url))
        return ERR("klaviyo.base_url: expected an http(s):// URL");
    if (cfg->registry_url && !is_http_url(cfg->registry_url))
        return ERR("registry.url: expected an http(s):// URL, got \"%s\"", cfg->registry_url);
    const struct {
        const char *key, *path;
    } cas[] = {{"klaviyo.ca_bundle", cfg->klaviyo_ca_bundle},
               {"registry.ca_bundle", cfg->registry_ca_bundle}};
    for (size_t i = 0; i < sizeof cas / sizeof cas[0]; i++) {
        if (!cas[i].path) continue;
        FILE *f = fopen(cas[i].path, "r");
        int e = f ? 0 : errno;
        char probe;
        if (f && fread(&probe, 1, 1, f) != 1) e = ferror(f) ? errno : EINVAL;
        if (f) fclose(f);
        if (e)
            return ERR("%s: cannot read %s: %s", cas[i].key, cas[i].path,
                       e == EINVAL ? "empty file" : strerror(e));
    }
    return TS_OK;
}

static bool outlet_served(const ts_config_t *cfg, const char *outlet) {
    for (size_t i = 0; i < cfg->n_accounts; i++)
        for (size_t j = 0; j < cfg->accounts[i].n_outlets; j++)
            if (!strcmp(cfg->accounts[i].outlets[j], outlet)) return true;
    return false;
}

static ts_err_t check_routing(ts_config_t *cfg, char *errstr, size_t errstr_size) {
    if (cfg->default_phone_country) {
        char why[256];
        if (ts_phone_region(cfg->default_phone_country, cfg->default_phone_region,
                            sizeof cfg->default_phone_region, why, sizeof why) != TS_OK)
            return ERR("routing.default_phone_country: %s", why);
    }
    if (cfg->default_online_outlet && !outlet_served(cfg, cfg->default_online_outlet))
        return ERR("routing.default_online_outlet: outlet \"%s\" is not served by any account",
                   cfg->default_online_outlet);
    return TS_OK;
}

/* An empty admin.listen is off; TILLSTREAM_BOOTSTRAP_SERVERS overrides
 * kafka.bootstrap.servers. */
static ts_err_t apply_overrides(ts_config_t *cfg) {
    if (cfg->admin_listen && !*cfg->admin_listen) {
        free(cfg->admin_listen);
        cfg->admin_listen = NULL;
    }
    const char *bs = getenv("TILLSTREAM_BOOTSTRAP_SERVERS");
    if (!bs || !*bs) return TS_OK;
    size_t i = 0;
    while (i < cfg->n_kafka && strcmp(cfg->kafka[i].key, "bootstrap.servers")) i++;
    if (i == cfg->n_kafka) {
        ts_kv_t *nk = realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof *nk);
        if (!nk) return TS_ERR_NOMEM;
        cfg->kafka = nk;
        cfg->kafka[i].key = strdup("bootstrap.servers");
        cfg->kafka[i].value = NULL;
        cfg->kafka[i].file = NULL;
        cfg->n_kafka++;
    }
    free(cfg->kafka[i].value);
    cfg->kafka[i].value = strdup(bs);
    return TS_OK;
}

ts_err_t ts_config_parse(const char *json, ts_config_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0;
        int line = 1;
        for (size_t i = 0; i < off && json[i]; i++) line += json[i] == '\n';
        return ERR("invalid JSON near line %d (byte %zu)", line, off);
    }
    ts_config_t *cfg = calloc(1, sizeof *cfg);
    cJSON *routing_rest = NULL;
    ts_err_t rc = cfg ? TS_OK : TS_ERR_NOMEM;
    if (!rc) rc = parse_sections(cfg, root, &routing_rest, errstr, errstr_size);
    if (!rc) rc = check_enums(cfg, errstr, errstr_size);
    if (!rc) rc = check_endpoints(cfg, errstr, errstr_size);
    if (!rc) rc = check_routing(cfg, errstr, errstr_size);
    if (!rc) rc = apply_overrides(cfg);
    cJSON_Delete(routing_rest);
    cJSON_Delete(root);
    if (rc) {
        ts_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return TS_OK;
}

ts_err_t ts_config_load(const char *path, ts_config_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ts_seterr(errstr, errstr_size, TS_ERR_IO, "cannot open: %s", strerror(errno));
    ts_buf_t b = TS_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (ts_buf_append(&b, chunk, n) != 0) {
            fclose(f);
            ts_buf_free(&b);
            return TS_ERR_NOMEM;
        }
    }
    fclose(f);
    ts_err_t rc = ts_config_parse(b.data ? b.data : "", out, errstr, errstr_size);
    ts_buf_free(&b);
    return rc;
}

static void free_table(ts_config_t *cfg, const copt_t *tab) {
    for (const copt_t *o = tab; o->key; o++)
        if (o->type != CT_INT && o->type != CT_BOOL) free(*(char **)((char *)cfg + o->offset));
}

static void free_kvs(ts_kv_t *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
        free(kv[i].file);
    }
    free(kv);
}

static void free_account(ts_account_conf_t *a) {
    free(a->name);
    free(a->api_key_env);
    free(a->api_key_file);
    ts_strv_free(a->outlets, a->n_outlets);
}

void ts_config_destroy(ts_config_t *cfg) {
    if (!cfg) return;
    free_kvs(cfg->kafka, cfg->n_kafka);
    for (size_t i = 0; i < cfg->n_accounts; i++) free_account(&cfg->accounts[i]);
    free(cfg->accounts);
    free_kvs(cfg->outlet_names, cfg->n_outlet_names);
    for (const csection_t *t = simple_sections; t->section; t++) free_table(cfg, t->opts);
    free(cfg);
}

ts_err_t ts_config_account_key(const ts_config_t *cfg, size_t idx, char **key_out, char *errstr,
                               size_t errstr_size) {
    *key_out = NULL;
    if (idx >= cfg->n_accounts) return ERR("accounts[%zu]: no such account", idx);
    const ts_account_conf_t *a = &cfg->accounts[idx];
    char *key = NULL;
    if (a->api_key_env) {
        const char *v = getenv(a->api_key_env);
        if (!v || !*v)
            return ERR("accounts[%zu].api_key_env: environment variable %s is not set", idx,
                       a->api_key_env);
        key = strdup(v);
    } else {
        if (!(key = ts_secret_file_read(a->api_key_file)))
            return ERR("accounts[%zu].api_key_file: cannot read %s: %s", idx, a->api_key_file,
                       strerror(errno));
    }
    if (!key) return TS_ERR_NOMEM;
    size_t n = strlen(key);
    while (n > 0 && isspace((unsigned char)key[n - 1])) key[--n] = '\0';
    size_t lead = 0;
    while (key[lead] && isspace((unsigned char)key[lead])) lead++;
    if (lead) memmove(key, key + lead, n - lead + 1);
    if (!*key) {
        free(key);
        return ERR("accounts[%zu].%s: the API key is empty", idx,
                   a->api_key_env ? "api_key_env" : "api_key_file");
    }
    *key_out = key;
    return TS_OK;
}

int ts_config_account_index(const ts_config_t *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_accounts; i++)
        if (cfg->accounts[i].name && !strcmp(cfg->accounts[i].name, name)) return (int)i;
    return -1;
}

const char *ts_config_outlet_name(const ts_config_t *cfg, const char *outlet_id) {
    if (!outlet_id) return NULL;
    for (size_t i = 0; i < cfg->n_outlet_names; i++)
        if (!strcmp(cfg->outlet_names[i].key, outlet_id)) return cfg->outlet_names[i].value;
    return NULL;
}

/* ---- the reference: one row per key path, from the tables above ------- */

/* Appends s with Markdown table cells' '|' escaped. */
static int put_cell(ts_buf_t *out, const char *s) {
    int rc = ts_buf_putc(out, ' ');
    for (; *s && !rc; s++) rc = *s == '|' ? ts_buf_puts(out, "\\|") : ts_buf_putc(out, *s);
    return rc ? rc : ts_buf_puts(out, " |");
}

static int put_row(ts_buf_t *out, const char *path, const char *type, const char *def,
                   const char *desc) {
    char key[160];
    snprintf(key, sizeof key, "`%s`", path);
    if (ts_buf_putc(out, '|') || put_cell(out, key) || put_cell(out, type) || put_cell(out, def) ||
        put_cell(out, desc) || ts_buf_putc(out, '\n'))
        return -1;
    return 0;
}

static int put_table_rows(ts_buf_t *out, const char *section, const copt_t *tab) {
    for (const copt_t *o = tab; o->key; o++) {
        char path[128], type[64], def[128];
        snprintf(path, sizeof path, "%s.%s", section, o->key);
        if (o->type == CT_INT)
            snprintf(type, sizeof type, "integer %d..%d", o->min, o->max);
        else
            snprintf(type, sizeof type, "%s", o->type == CT_STR ? "string" : "string or null");
        snprintf(def, sizeof def, o->def ? "`%s`" : "null", o->def);
        if (put_row(out, path, type, def, o->desc)) return -1;
    }
    return 0;
}

static int put_structured_rows(ts_buf_t *out, const char *section) {
    size_t n = strlen(section);
    for (const cdoc_t *d = structured_docs; d->path; d++)
        if (!strncmp(d->path, section, n) && strchr(".[", d->path[n]) &&
            put_row(out, d->path, d->type, d->def, d->desc))
            return -1;
    return 0;
}

/* accounts[].rate_limits: one pair of rows per endpoint, the defaults from
 * klaviyo.h (Klaviyo's published limits). */
static int put_rate_limit_rows(ts_buf_t *out) {
    for (int ep = 0; ep < TS_EP__COUNT; ep++) {
        const ts_klaviyo_endpoint_t *e = ts_klaviyo_endpoint((ts_endpoint_t)ep);
        char path[128], def[32];
        snprintf(path, sizeof path, "accounts[].rate_limits.%s.burst_per_s", e->name);
        snprintf(def, sizeof def, "`%g`", e->burst_per_s);
        if (put_row(out, path, "positive number", def, "requests in any 1 s, for this account"))
            return -1;
        snprintf(path, sizeof path, "accounts[].rate_limits.%s.steady_per_min", e->name);
        snprintf(def, sizeof def, "`%g`", e->steady_per_min);
        if (put_row(out, path, "positive number", def, "requests in any 60 s, for this account"))
            return -1;
    }
    return 0;
}

ts_err_t ts_config_reference(ts_buf_t *out) {
    int rc = ts_buf_puts(out, "# Configuration keys\n"
                              "\n"
                              "Every key of the config file: its path, type, default and "
                              "description, printed by\n"
                              "`tillstream-orders --help-config` from the parser's own tables "
                              "(src/pipeline/config.c).\n"
                              "tests/contract/0180 fails when this page and that output differ. "
                              "[configuration.md](configuration.md)\n"
                              "explains the keys at length.\n"
                              "\n"
                              "| key | type | default | description |\n"
                              "|---|---|---|---|\n");
    for (const char *const *sec = root_sections; *sec && !rc; sec++) {
        rc = put_structured_rows(out, *sec);
        if (!rc && !strcmp(*sec, "accounts")) rc = put_rate_limit_rows(out);
        for (const csection_t *t = simple_sections; t->section && !rc; t++)
            if (!strcmp(t->section, *sec)) rc = put_table_rows(out, t->section, t->opts);
    }
    return rc ? TS_ERR_NOMEM : TS_OK;
}
