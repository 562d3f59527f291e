/*
 * registry.c - Confluent Schema Registry client (libcurl): writer schemas
 * by id, cached for the life of the process (ids are immutable), and
 * registration for the generator. One reused curl handle; TLS verification
 * is never turned off. A 404 is permanent (TS_ERR_NOT_FOUND), outages and
 * 5xx are transient. Credentials are never put into messages.
 */
#include "tillstream/registry.h"

#include "http.h"
#include "tillstream/log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t id;
    char *json;    /* NULL: not an Avro schema (type below) */
    char type[16]; /* "PROTOBUF", "JSON", ... when json is NULL */
} cached_t;

struct ts_registry_s {
    char *url;
    char *userpwd;
    char *username, *password_file; /* for a password rotated in its file */
    char *ca_bundle;
    long timeout_ms;
    CURL *curl;
    ts_buf_t body;
    cached_t *cache;
    size_t n_cache, cap_cache;
    uint64_t requests;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void ts_registry_destroy(ts_registry_t *r) {
    if (!r) return;
    if (r->curl) curl_easy_cleanup(r->curl);
    for (size_t i = 0; i < r->n_cache; i++) free(r->cache[i].json);
    free(r->cache);
    if (r->userpwd) {
        memset(r->userpwd, 0, strlen(r->userpwd));
        free(r->userpwd);
    }
    free(r->username);
    free(r->password_file);
    free(r->url);
    free(r->ca_bundle);
    ts_buf_free(&r->body);
    free(r);
}

/* "user:password" for basic auth; false when out of memory. */
static bool set_userpwd(ts_registry_t *r, const char *user, const char *pw) {
    size_t n = strlen(user) + strlen(pw) + 2;
    char *up = malloc(n);
    if (!up) return false;
    snprintf(up, n, "%s:%s", user, pw);
    if (r->userpwd) {
        memset(r->userpwd, 0, strlen(r->userpwd));
        free(r->userpwd);
    }
    r->userpwd = up;
    return true;
}

/* After a 401/403: true when registry.password_file now holds another
 * password (then r->userpwd carries it). */
static bool password_reread(ts_registry_t *r) {
    if (!r->password_file || !r->username) return false;
    char *pw = ts_secret_file_read(r->password_file);
    if (!pw) return false;
    size_t ul = strlen(r->username);
    bool changed = !r->userpwd || strncmp(r->userpwd + ul + 1, pw, strlen(pw) + 1) != 0;
    if (changed && !set_userpwd(r, r->username, pw)) changed = false;
    memset(pw, 0, strlen(pw));
    free(pw);
    return changed;
}

ts_registry_t *ts_registry_new(const ts_registry_opts_t *o, char *errstr, size_t errstr_size) {
    if (!o || !o->url || !*o->url) {
        ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "registry: no url");
        return NULL;
    }
    if (ts_http_global_init(errstr, errstr_size) != TS_OK) return NULL;
    ts_registry_t *r = calloc(1, sizeof *r);
    if (!r) goto nomem;
    ts_buf_init(&r->body);
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/') ul--;
    r->url = strndup(o->url, ul);
    r->ca_bundle = dup_or_null(o->ca_bundle);
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    if (!r->url || (o->ca_bundle && !r->ca_bundle)) goto nomem;
    if (o->username) {
        if (!set_userpwd(r, o->username, o->password ? o->password : "")) goto nomem;
        if (!(r->username = strdup(o->username))) goto nomem;
        if (o->password_file && !(r->password_file = strdup(o->password_file))) goto nomem;
    }
    if (!(r->curl = curl_easy_init())) goto nomem;
    return r;
nomem:
    ts_registry_destroy(r);
    ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "registry: out of memory");
    return NULL;
}

/* The value of the environment variable `var` that registry.<key> names, or
 * NULL with errstr set when it is not set. */
static const char *env_of(const char *key, const char *var, char *errstr, size_t errstr_size) {
    const char *v = getenv(var);
    if (!v)
        ts_seterr(errstr, errstr_size, TS_ERR_CONFIG,
                  "registry.%s: environment variable %s is not set", key, var);
    return v;
}

ts_registry_t *ts_registry_from_config(const ts_config_t *cfg, char *errstr, size_t errstr_size) {
    if (errstr_size) errstr[0] = '\0';
    if (!cfg || !cfg->registry_url || !*cfg->registry_url) return NULL;
    ts_registry_opts_t o = {.url = cfg->registry_url,
                            .ca_bundle = cfg->registry_ca_bundle,
                            .timeout_ms = cfg->registry_timeout_ms};
    char *pw_file = NULL;
    if (cfg->registry_username_env &&
        !(o.username = env_of("username_env", cfg->registry_username_env, errstr, errstr_size)))
        return NULL;
    if (cfg->registry_password_env) {
        if (!(o.password = env_of("password_env", cfg->registry_password_env, errstr, errstr_size)))
            return NULL;
    } else if (cfg->registry_password_file) {
        if (!(pw_file = ts_secret_file_read(cfg->registry_password_file))) {
            ts_seterr(errstr, errstr_size, TS_ERR_CONFIG,
                      "registry.password_file: cannot read %s: %s", cfg->registry_password_file,
                      strerror(errno));
            return NULL;
        }
        o.password = pw_file;
        o.password_file = cfg->registry_password_file;
    }
    ts_registry_t *r = ts_registry_new(&o, errstr, errstr_size);
    if (pw_file) {
        memset(pw_file, 0, strlen(pw_file));
        free(pw_file);
    }
    return r;
}

uint64_t ts_registry_requests(const ts_registry_t *r) { return r ? r->requests : 0; }

static size_t on_body(char *p, size_t size, size_t n, void *opaque) {
    ts_buf_t *b = opaque;
    if (b->len + size * n > 4u << 20) return 0; /* a schema is never 4 MB */
    return ts_buf_append(b, p, size * n) ? 0 : size * n;
}

/* One request; fills r->body; *status = HTTP status. */
static ts_err_t request_once(ts_registry_t *r, const char *path, const char *post, long *status,
                             char *errstr, size_t errstr_size) {
    char url[2048];
    snprintf(url, sizeof url, "%s%s", r->url, path);
    CURL *c = r->curl;
    curl_easy_reset(c);
    ts_buf_reset(&r->body);
    struct curl_slist *h =
        curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, "
                                "application/json");
    if (post) h = curl_slist_append(h, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (r->ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_bundle);
    if (r->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, r->userpwd);
    }
    if (post) curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    char detail[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
    r->requests++;
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    if (cc != CURLE_OK) {
        /* libcurl's detail names the certificate problem; the hint names
         * the key that fixes it (verification itself is never turned off) */
        bool tls = cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
                   cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CERTPROBLEM;
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "schema registry %s: %s%s", path,
                         detail[0] ? detail : curl_easy_strerror(cc),
                         tls ? " (a private CA goes in registry.ca_bundle; the URL's host must "
                               "be a name the certificate carries)"
                             : "");
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 500 || *status == 429 || *status == 408)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT, "schema registry %s: HTTP %ld",
                         path, *status);
    /* refused credentials are an operations problem, not the record's:
     * wait (and say so) like for an outage */
    if (*status == 401 || *status == 403)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                         "schema registry %s: HTTP %ld: the registry refused our credentials "
                         "(registry.username_env, registry.password_env/password_file)",
                         path, *status);
    return TS_OK;
}

/* One request, and once more when the registry refused the password and
 * its file now holds another (a rotation). */
static ts_err_t request(ts_registry_t *r, const char *path, const char *post, long *status,
                        char *errstr, size_t errstr_size) {
    ts_err_t rc = request_once(r, path, post, status, errstr, errstr_size);
    if (rc == TS_ERR_TRANSIENT && (*status == 401 || *status == 403) && password_reread(r)) {
        ts_log(TS_LOG_INFO, "registry", NULL,
               "the registry password changed in registry.password_file: using the new one");
        rc = request_once(r, path, post, status, errstr, errstr_size);
    }
    return rc;
}

ts_err_t ts_registry_get(ts_registry_t *r, int32_t id, const char **schema_json, char *errstr,
                         size_t errstr_size) {
    for (size_t i = 0; i < r->n_cache; i++)
        if (r->cache[i].id == id) {
            if (!r->cache[i].json)
                return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                                 "schema id %ld is a %s schema: tillstream reads Avro (and JSON "
                                 "records without a schema id)",
                                 (long)id, r->cache[i].type);
            *schema_json = r->cache[i].json;
            return TS_OK;
        }
    char path[64];
    long status = 0;
    snprintf(path, sizeof path, "/schemas/ids/%ld", (long)id);
    ts_err_t rc = request(r, path, NULL, &status, errstr, errstr_size);
    if (rc) return rc;
    if (status == 404)
        return ts_seterr(errstr, errstr_size, TS_ERR_NOT_FOUND,
                         "schema id %ld not found in the schema registry", (long)id);
    /* anything but a registry's answer (a redirect, a proxy's page) says
     * nothing about the record either: transient, never a dead letter */
    if (status != 200)
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                         "schema registry %s: unexpected HTTP %ld", path, status);
    cJSON *j = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "schema") : NULL;
    if (!cJSON_IsString(s)) {
        cJSON_Delete(j);
        return ts_seterr(errstr, errstr_size, TS_ERR_TRANSIENT,
                         "schema registry %s: the answer has no \"schema\" string (not a schema "
                         "registry?)",
                         path);
    }
    if (r->n_cache == r->cap_cache) {
        size_t cap = r->cap_cache ? r->cap_cache * 2 : 8;
        cached_t *nc = realloc(r->cache, cap * sizeof *nc);
        if (!nc) {
            cJSON_Delete(j);
            return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "registry: out of memory");
        }
        r->cache = nc;
        r->cap_cache = cap;
    }
    /* schemaType is absent for Avro (Confluent's default) */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "schemaType");
    bool avro = !cJSON_IsString(t) || !strcmp(t->valuestring, "AVRO");
    cached_t *e = &r->cache[r->n_cache];
    memset(e, 0, sizeof *e);
    e->id = id;
    if (!avro) { /* remembered too: ids are immutable */
        snprintf(e->type, sizeof e->type, "%s", t->valuestring);
        cJSON_Delete(j);
        r->n_cache++;
        return ts_registry_get(r, id, schema_json, errstr, errstr_size);
    }
    char *copy = strdup(s->valuestring);
    cJSON_Delete(j);
    if (!copy) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "registry: out of memory");
    e->json = copy;
    r->n_cache++;
    *schema_json = copy;
    return TS_OK;
}

ts_err_t ts_registry_register(ts_registry_t *r, const char *subject, const char *schema_json,
                              int32_t *id_out, char *errstr, size_t errstr_size) {
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "schema", schema_json)) {
        cJSON_Delete(req);
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "registry: out of memory");
    }
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "registry: out of memory");
    char path[512];
    snprintf(path, sizeof path, "/subjects/%s/versions", subject);
    long status = 0;
    ts_err_t rc = request(r, path, body, &status, errstr, errstr_size);
    free(body);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
    if (status != 200 || !cJSON_IsNumber(id)) {
        const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
        rc = ts_seterr(errstr, errstr_size, status == 404 ? TS_ERR_NOT_FOUND : TS_ERR_INVALID,
                       "schema registry %s: HTTP %ld%s%s", path, status,
                       cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "");
        cJSON_Delete(j);
        return rc;
    }
    *id_out = (int32_t)id->valuedouble;
    cJSON_Delete(j);
    return TS_OK;
}
