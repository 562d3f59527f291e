/*
 * tillstream/registry.h - a Confluent Schema Registry client: writer
 * schemas by id (GET {url}/schemas/ids/{id}), cached for the life of the
 * process because ids are immutable, and schema registration for the
 * generator (POST {url}/subjects/{subject}/versions).
 *
 * TLS peer and host verification are always on (optional CA bundle);
 * basic auth credentials come from the environment or a file, never from
 * the config text, and never appear in errors or logs.
 *
 * Results: TS_OK; TS_ERR_NOT_FOUND for a 404 (permanent: dead-letter
 * SCHEMA_NOT_FOUND); TS_ERR_TRANSIENT for connection errors, timeouts,
 * 5xx, 429, 408, refused credentials (401/403) and anything that is not a
 * registry's answer (other statuses, a body without "schema"): retry
 * later, never dead-letter, since none of it is the record's fault.
 *
 * Thread: a ts_registry_t is used by one thread at a time.
 */
#ifndef TILLSTREAM_REGISTRY_H
#define TILLSTREAM_REGISTRY_H

#include "tillstream/common.h"
#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *url;           /* "http://127.0.0.1:8081" (no trailing slash needed) */
    const char *username;      /* NULL: no basic auth */
    const char *password;      /* copied */
    const char *password_file; /* where the password came from (NULL: elsewhere): read
                                  again after a 401/403, so a rotated one is used */
    const char *ca_bundle;     /* NULL: system CAs */
    long timeout_ms;           /* whole request; 0 = 5000 */
} ts_registry_opts_t;

typedef struct ts_registry_s ts_registry_t;

/* Strings in `o` are copied. Returns NULL with errstr on failure. */
ts_registry_t *ts_registry_new(const ts_registry_opts_t *o, char *errstr, size_t errstr_size);
/* From cfg->registry_*: username from the env var registry_username_env,
 * password from registry_password_env or registry_password_file. Returns
 * NULL with errstr empty when no registry url is configured, NULL with
 * errstr set on error (e.g. a named env var is unset). */
ts_registry_t *ts_registry_from_config(const ts_config_t *cfg, char *errstr, size_t errstr_size);
void ts_registry_destroy(ts_registry_t *r);

/* The writer schema (JSON text) of `id`. *schema_json is owned by the
 * registry and valid until ts_registry_destroy(). A cached id makes no
 * request. */
ts_err_t ts_registry_get(ts_registry_t *r, int32_t id, const char **schema_json, char *errstr,
                         size_t errstr_size);
/* Registers `schema_json` under `subject`; *id_out = the registry's id. */
ts_err_t ts_registry_register(ts_registry_t *r, const char *subject, const char *schema_json,
                              int32_t *id_out, char *errstr, size_t errstr_size);
/* HTTP requests made so far (tests check the cache with it). */
uint64_t ts_registry_requests(const ts_registry_t *r);

#ifdef __cplusplus
}
#endif
#endif
