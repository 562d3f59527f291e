/*
 * test_registry.c - the schema registry client against a tiny
 * libmicrohttpd registry in the test: a 200 is cached (a second fetch
 * makes no request), 404 -> TS_ERR_NOT_FOUND, 500/503 -> TS_ERR_TRANSIENT,
 * a registry that never answers -> TS_ERR_TRANSIENT within the timeout,
 * basic auth is sent, registration returns the id; and the decoder end to
 * end: Confluent frames through the registry, an outage is transient and
 * decoding resumes afterwards, an unknown id is NOT_FOUND.
 */
#include "testlib.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "avro_testlib.h"
#include "net_testlib.h"
#include "tillstream/avro.h"
#include "tillstream/registry.h"

static char err[512];

typedef struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int requests;
    int down;              /* answer 503 to everything */
    char require_pass[64]; /* non-empty: other passwords are answered 401 */
    char last_user[64], last_pass[64];
    char last_path[256];
    char post[65536];
    size_t post_len;
} stub_t;

static stub_t S;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls) {
    (void)cls, (void)version;
    if (!*con_cls) { /* first call: headers only */
        *con_cls = (void *)1;
        pthread_mutex_lock(&S.mu);
        S.post_len = 0;
        pthread_mutex_unlock(&S.mu);
        return MHD_YES;
    }
    if (*data_size) {
        pthread_mutex_lock(&S.mu);
        size_t n = *data_size < sizeof S.post - 1 - S.post_len ? *data_size
                                                               : sizeof S.post - 1 - S.post_len;
        memcpy(S.post + S.post_len, data, n);
        S.post_len += n;
        S.post[S.post_len] = '\0';
        pthread_mutex_unlock(&S.mu);
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&S.mu);
    S.requests++;
    snprintf(S.last_path, sizeof S.last_path, "%s %s", method, url);
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    snprintf(S.last_user, sizeof S.last_user, "%s", user ? user : "");
    snprintf(S.last_pass, sizeof S.last_pass, "%s", pass ? pass : "");
    free(user);
    free(pass);
    int down = S.down;
    bool refused = S.require_pass[0] && strcmp(S.require_pass, S.last_pass) != 0;
    pthread_mutex_unlock(&S.mu);
    if (down) return reply(c, 503, "{\"error_code\":50301,\"message\":\"down\"}");
    if (refused) return reply(c, 401, "{\"error_code\":40101,\"message\":\"Unauthorized\"}");
    if (!strcmp(url, "/schemas/ids/7")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "schema", ts_schema_order_avsc);
        char *s = cJSON_PrintUnformatted(j);
        enum MHD_Result r = reply(c, 200, s);
        free(s);
        cJSON_Delete(j);
        return r;
    }
    if (!strcmp(url, "/schemas/ids/500")) return reply(c, 500, "{\"message\":\"boom\"}");
    if (!strcmp(url, "/schemas/ids/8"))
        return reply(c, 200,
                     "{\"schema\":\"syntax = \\\"proto3\\\"; message O { string id = 1; }\","
                     "\"schemaType\":\"PROTOBUF\"}");
    if (!strcmp(url, "/schemas/ids/401"))
        return reply(c, 401, "{\"error_code\":40101,\"message\":\"Unauthorized\"}");
    if (!strcmp(url, "/schemas/ids/403")) return reply(c, 403, "{\"message\":\"Forbidden\"}");
    if (!strcmp(url, "/schemas/ids/302")) return reply(c, 302, "");
    if (!strcmp(url, "/schemas/ids/200")) return reply(c, 200, "<html>a proxy's login page</html>");
    if (!strcmp(url, "/subjects/pos.orders-value/versions") && !strcmp(method, "POST"))
        return reply(c, 200, "{\"id\":7}");
    return reply(c, 404, "{\"error_code\":40403,\"message\":\"Schema not found\"}");
}

static int setup(void **state) {
    (void)state;
    memset(&S, 0, sizeof S);
    pthread_mutex_init(&S.mu, NULL);
    S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                           handler, NULL, MHD_OPTION_SOCK_ADDR,
                           (struct sockaddr *)&(struct sockaddr_in){
                               .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                           MHD_OPTION_END);
    if (!S.d) return -1;
    S.port = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}
static int teardown(void **state) {
    (void)state;
    MHD_stop_daemon(S.d);
    pthread_mutex_destroy(&S.mu);
    return 0;
}

static int requests(void) {
    pthread_mutex_lock(&S.mu);
    int n = S.requests;
    pthread_mutex_unlock(&S.mu);
    return n;
}

static ts_registry_t *client(const char *user, const char *pass, long timeout_ms) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", S.port);
    ts_registry_opts_t o = {
        .url = url, .username = user, .password = pass, .timeout_ms = timeout_ms};
    ts_registry_t *r = ts_registry_new(&o, err, sizeof err);
    assert_non_null(r);
    return r;
}

static void test_get_cached_and_auth(void **state) {
    (void)state;
    ts_registry_t *r = client("sr-user", "s3cret", 2000);
    const char *json = NULL;
    int before = requests();
    if (ts_registry_get(r, 7, &json, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(json, ts_schema_order_avsc);
    assert_int_equal(requests(), before + 1);
    assert_string_equal(S.last_path, "GET /schemas/ids/7");
    assert_string_equal(S.last_user, "sr-user");
    assert_string_equal(S.last_pass, "s3cret");
    const char *again = NULL;
    assert_int_equal(ts_registry_get(r, 7, &again, err, sizeof err), TS_OK);
    assert_ptr_equal(again, json);
    assert_int_equal(requests(), before + 1); /* cached: no request */
    assert_int_equal(ts_registry_requests(r), 1);
    ts_registry_destroy(r);
    ts_registry_destroy(NULL);
}

static void test_errors_classified(void **state) {
    (void)state;
    ts_registry_t *r = client(NULL, NULL, 2000);
    const char *json;
    assert_int_equal(ts_registry_get(r, 404, &json, err, sizeof err), TS_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "schema id 404 not found"));
    assert_string_equal(S.last_user, ""); /* no credentials configured: none sent */
    assert_int_equal(ts_registry_get(r, 500, &json, err, sizeof err), TS_ERR_TRANSIENT);
    assert_non_null(strstr(err, "HTTP 500"));
    /* the registry refusing us, or something else answering in its place,
     * says nothing about the record: wait and retry, never dead-letter */
    static const int not_the_record[] = {401, 403, 302, 200};
    for (size_t i = 0; i < sizeof not_the_record / sizeof *not_the_record; i++) {
        assert_int_equal(ts_registry_get(r, not_the_record[i], &json, err, sizeof err),
                         TS_ERR_TRANSIENT);
        assert_non_null(strstr(err, "schema registry"));
    }
    assert_int_equal(ts_registry_get(r, 401, &json, err, sizeof err), TS_ERR_TRANSIENT);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_non_null(strstr(err, "credentials"));
    /* a Protobuf (or JSON Schema) writer: a clear permanent error, asked once */
    int asked = requests();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ts_registry_get(r, 8, &json, err, sizeof err), TS_ERR_INVALID);
        if (!strstr(err, "schema id 8 is a PROTOBUF schema")) fail_msg("%s", err);
    }
    assert_int_equal(requests(), asked + 1);
    /* errors are not cached: a retry asks again */
    int before = requests();
    assert_int_equal(ts_registry_get(r, 500, &json, err, sizeof err), TS_ERR_TRANSIENT);
    assert_int_equal(requests(), before + 1);
    ts_registry_destroy(r);

    /* a registry that accepts connections and never answers: transient */
    int port;
    int ls = tn_listen_loopback(4, &port);
    assert_true(ls >= 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    ts_registry_opts_t o = {.url = url, .timeout_ms = 300};
    r = ts_registry_new(&o, err, sizeof err);
    assert_int_equal(ts_registry_get(r, 7, &json, err, sizeof err), TS_ERR_TRANSIENT);
    assert_non_null(strstr(err, "schema registry"));
    ts_registry_destroy(r);
    close(ls); /* now nothing listens: connection refused, transient too */
    r = ts_registry_new(&o, err, sizeof err);
    assert_int_equal(ts_registry_get(r, 7, &json, err, sizeof err), TS_ERR_TRANSIENT);
    ts_registry_destroy(r);
}

static void test_register(void **state) {
    (void)state;
    ts_registry_t *r = client(NULL, NULL, 2000);
    int32_t id = 0;
    if (ts_registry_register(r, "pos.orders-value", ts_schema_order_avsc, &id, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(id, 7);
    assert_string_equal(S.last_path, "POST /subjects/pos.orders-value/versions");
    cJSON *j = cJSON_Parse(S.post);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "schema")->valuestring, ts_schema_order_avsc);
    cJSON_Delete(j);
    ts_registry_destroy(r);
}

/* A config naming the stub (url, a buffer of 64) with the user from
 * TS_TEST_SR_USER and the password `pw` in a new file at `pwfile` (a
 * mkstemp template). */
static void file_config(ts_config_t *cfg, char *url, char *pwfile, const char *pw) {
    snprintf(url, 64, "http://127.0.0.1:%d", S.port);
    int fd = mkstemp(pwfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pw, strlen(pw)), (ssize_t)strlen(pw));
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    memset(cfg, 0, sizeof *cfg);
    cfg->registry_url = url;
    cfg->registry_username_env = "TS_TEST_SR_USER";
    cfg->registry_password_file = pwfile;
}

static void test_config_credentials(void **state) {
    (void)state;
    ts_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_null(ts_registry_from_config(&cfg, err, sizeof err)); /* no url: no registry */
    assert_string_equal(err, "");
    char url[64], pwfile[] = "/tmp/ts-registry-pw-XXXXXX";
    file_config(&cfg, url, pwfile, "from-file");
    unsetenv("TS_TEST_SR_USER");
    assert_null(ts_registry_from_config(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "TS_TEST_SR_USER"));
    setenv("TS_TEST_SR_USER", "fileuser", 1);
    ts_registry_t *r = ts_registry_from_config(&cfg, err, sizeof err);
    assert_non_null(r);
    const char *json;
    assert_int_equal(ts_registry_get(r, 7, &json, err, sizeof err), TS_OK);
    assert_string_equal(S.last_user, "fileuser");
    assert_string_equal(S.last_pass, "from-file");
    ts_registry_destroy(r);
    unlink(pwfile);
}

static void set_required_password(const char *pw) {
    pthread_mutex_lock(&S.mu);
    snprintf(S.require_pass, sizeof S.require_pass, "%s", pw);
    pthread_mutex_unlock(&S.mu);
}

/* registry.password_file rotated: after the registry's 401 the file is read
 * again and the request repeated once with the new password; while the file
 * still holds the refused one, the 401 stays a transient error (the record
 * waits, never a dead letter). */
static void test_password_file_rotation(void **state) {
    (void)state;
    char url[64], pwfile[] = "/tmp/ts-registry-pw-XXXXXX";
    ts_config_t cfg;
    file_config(&cfg, url, pwfile, "pw-one");
    setenv("TS_TEST_SR_USER", "rotuser", 1);
    ts_registry_t *r = ts_registry_from_config(&cfg, err, sizeof err);
    assert_non_null(r);
    set_required_password("pw-one");
    const char *json;
    assert_int_equal(ts_registry_get(r, 7, &json, err, sizeof err), TS_OK);
    /* the registry's password changes; the file not yet */
    set_required_password("pw-two");
    int before = S.requests;
    assert_int_equal(ts_registry_get(r, 8, &json, err, sizeof err), TS_ERR_TRANSIENT);
    assert_non_null(strstr(err, "refused our credentials"));
    assert_null(strstr(err, "pw-"));
    assert_int_equal(S.requests - before, 1); /* the same password is not tried twice */
    /* the file follows (the kubelet's new file renamed over the old one) */
    tl_write_secret(pwfile, "pw-two");
    before = S.requests;
    /* id 8 is a Protobuf schema: answered, so refused as not Avro (not as credentials) */
    assert_int_equal(ts_registry_get(r, 8, &json, err, sizeof err), TS_ERR_INVALID);
    assert_int_equal(S.requests - before, 2); /* 401, then the new password */
    assert_string_equal(S.last_pass, "pw-two");
    set_required_password("");
    ts_registry_destroy(r);
    unlink(pwfile);
}

static void test_decoder_through_registry(void **state) {
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", S.port);
    ts_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.registry_url = url;
    ts_decoder_t *d = ts_decoder_new(&cfg, TS_KIND_ORDER, err, sizeof err);
    assert_non_null(d);

    tw_t w;
    tw_init(&w, ts_schema_order_avsc);
    tw_str(&w.rec, "order_id", "O-77");
    tw_enum(&w.rec, "channel", 0);
    tw_enum(&w.rec, "status", 0);
    tw_bool(&w.rec, "is_test", 0);
    tw_long(&w.rec, "occurred_at", 1);
    tw_dec(&w.rec, "total", 3359900);
    char buf[4096];
    size_t n = tw_write(&w, 1, 7, buf, sizeof buf);
    tw_free(&w);
    ts_arena_t *ar = ts_arena_new(0);
    ts_order_t o;

    /* registry outage: transient, and nothing is cached for it */
    pthread_mutex_lock(&S.mu);
    S.down = 1;
    pthread_mutex_unlock(&S.mu);
    assert_int_equal(ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err), TS_ERR_TRANSIENT);
    assert_true(ts_err_retryable(TS_ERR_TRANSIENT));
    pthread_mutex_lock(&S.mu);
    S.down = 0;
    pthread_mutex_unlock(&S.mu);
    /* within the backoff (250 ms after the first failure): transient at
     * once, without a request */
    assert_int_equal(ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err), TS_ERR_TRANSIENT);
    assert_non_null(strstr(err, "next attempt in"));
    assert_int_equal(ts_decoder_registry_requests(d), 1);
    assert_int_equal(ts_decoder_registry_failures(d), 1);
    usleep(300 * 1000); /* past the 250 ms backoff */
    /* back: the same record decodes, and the schema is fetched once */
    for (int i = 0; i < 3; i++) {
        ts_arena_reset(ar);
        if (ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err)) fail_msg("%s", err);
        assert_string_equal(o.order_id, "O-77");
        assert_true(o.total.units == 3359900 && o.total.scale == 4);
    }
    assert_int_equal(ts_decoder_registry_requests(d), 2);
    /* unknown schema id -> NOT_FOUND (SCHEMA_NOT_FOUND) */
    buf[4] = 9;
    assert_int_equal(ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err), TS_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "schema id 9 not found"));
    /* a flood of records with that unknown id asks the registry once a minute,
     * not once per record */
    uint64_t asked = ts_decoder_registry_requests(d);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err), TS_ERR_NOT_FOUND);
        assert_non_null(strstr(err, "schema id 9 not found"));
    }
    assert_int_equal(ts_decoder_registry_requests(d), asked);
    /* garbage body under a known id -> INVALID with the body offset */
    buf[4] = 7;
    memset(buf + 5, 0xff, n - 5);
    assert_int_equal(ts_decoder_decode(d, buf, n, ar, &o, err, sizeof err), TS_ERR_INVALID);
    if (!strstr(err, "Avro at byte 5, field order_id: varint")) fail_msg("%s", err);
    ts_arena_destroy(ar);
    ts_decoder_destroy(d);
}

TS_TEST_MAIN(setup, teardown, cmocka_unit_test(test_get_cached_and_auth),
             cmocka_unit_test(test_errors_classified), cmocka_unit_test(test_register),
             cmocka_unit_test(test_config_credentials),
             cmocka_unit_test(test_password_file_rotation),
             cmocka_unit_test(test_decoder_through_registry))
