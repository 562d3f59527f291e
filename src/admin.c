/*
 * admin.c - /metrics, /healthz and /readyz over libmicrohttpd, served from
 * the daemon's own thread; the main loop only writes two atomics.
 */
#include "tillstream/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ts_admin_s {
    struct MHD_Daemon *d;
    ts_metrics_t *metrics;
    ts_metric_t *ready_g;
    _Atomic int64_t heartbeat_ms;
    _Atomic int ready;
    _Atomic int64_t stale_ms; /* /healthz fails when the heartbeat is older */
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *body, size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    ts_admin_t *a = cls;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(c, 405, "text/plain", "method\n", 7);
    if (!strcmp(url, "/metrics")) {
        ts_buf_t b = TS_BUF_INIT;
        ts_metrics_render(a->metrics, &b);
        enum MHD_Result r =
            reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
        ts_buf_free(&b);
        return r;
    }
    if (!strcmp(url, "/healthz")) {
        int64_t age = ts_now_mono_ms() - atomic_load(&a->heartbeat_ms);
        return age < atomic_load(&a->stale_ms)
                   ? reply(c, 200, "text/plain", "ok\n", 3)
                   : reply(c, 503, "text/plain", "main loop stalled\n", 18);
    }
    if (!strcmp(url, "/readyz"))
        return atomic_load(&a->ready) ? reply(c, 200, "text/plain", "ready\n", 6)
                                      : reply(c, 503, "text/plain", "not ready\n", 10);
    return reply(c, 404, "text/plain", "not found\n", 10);
}

static int listen_fd(int fd) { return listen(fd, 1); }

static ts_err_t parse_listen(const char *listen, struct sockaddr_in *sa, char *errstr,
                             size_t errstr_size) {
    char host[128];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "admin.listen: expected host:port");
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG,
                         "admin.listen: %s is not an IPv4 address", host);
    return TS_OK;
}

ts_err_t ts_admin_check_listen(const char *listen, char *errstr, size_t errstr_size) {
    struct sockaddr_in sa;
    ts_err_t rc = parse_listen(listen, &sa, errstr, errstr_size);
    if (rc != TS_OK) return rc;
    /* bind as libmicrohttpd will (SO_REUSEADDR), then let go: in use by
     * another process (a live pod's consumer beside a replay) fails here
     * with the errno, not as a bare "cannot listen" */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0)
        return ts_seterr(errstr, errstr_size, TS_ERR_IO, "admin.listen: socket: %s",
                         strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen_fd(fd) != 0) {
        int e = errno;
        close(fd);
        return ts_seterr(errstr, errstr_size, TS_ERR_CONFIG,
                         "admin.listen: cannot listen on %s: %s", listen, strerror(e));
    }
    close(fd);
    return TS_OK;
}

ts_admin_t *ts_admin_new(const char *listen, ts_metrics_t *metrics, char *errstr,
                         size_t errstr_size) {
    struct sockaddr_in sa;
    if (ts_admin_check_listen(listen, errstr, errstr_size) != TS_OK ||
        parse_listen(listen, &sa, errstr, errstr_size) != TS_OK)
        return NULL;
    ts_admin_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->metrics = metrics;
    a->ready_g =
        ts_metrics_gauge(metrics, "tillstream_ready", "1 when the process is ready (readyz)", NULL);
    atomic_store(&a->heartbeat_ms, ts_now_mono_ms());
    atomic_store(&a->stale_ms, 30000);
    errno = 0;
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, a,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!a->d) {
        ts_seterr(errstr, errstr_size, TS_ERR_IO, "admin.listen: cannot listen on %s: %s", listen,
                  errno ? strerror(errno) : "libmicrohttpd refused");
        free(a);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = di ? di->port : 0;
    return a;
}

void ts_admin_destroy(ts_admin_t *a) {
    if (!a) return;
    if (a->d) MHD_stop_daemon(a->d);
    free(a);
}

int ts_admin_port(const ts_admin_t *a) { return a ? a->port : 0; }

void ts_admin_heartbeat(ts_admin_t *a) {
    if (a) atomic_store_explicit(&a->heartbeat_ms, ts_now_mono_ms(), memory_order_relaxed);
}

void ts_admin_set_ready(ts_admin_t *a, bool ready) {
    if (!a) return;
    atomic_store(&a->ready, ready ? 1 : 0);
    ts_metric_set(a->ready_g, ready ? 1 : 0);
}

void ts_admin_set_stale_ms(ts_admin_t *a, int64_t stale_ms) {
    if (a) atomic_store(&a->stale_ms, stale_ms);
}
