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

/* Parses host:port and opens a listening socket on it (SO_REUSEADDR, as
 * libmicrohttpd would): a taken or forbidden address fails with its errno
 * ("Address already in use") instead of MHD's bare NULL. */
static int open_listener(const char *listen_addr, char *errstr, size_t errstr_size) {
    char host[128];
    const char *colon = listen_addr ? strrchr(listen_addr, ':') : NULL;
    if (!colon || (size_t)(colon - listen_addr) >= sizeof host) {
        ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "admin.listen: expected host:port");
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        ts_seterr(errstr, errstr_size, TS_ERR_CONFIG, "admin.listen: %s is not an IPv4 address",
                  host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 64)) {
        ts_seterr(errstr, errstr_size, TS_ERR_IO, "admin.listen: cannot listen on %s: %s",
                  listen_addr, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

ts_err_t ts_admin_check_listen(const char *listen_addr, char *errstr, size_t errstr_size) {
    int fd = open_listener(listen_addr, errstr, errstr_size);
    if (fd < 0) return TS_ERR_CONFIG;
    close(fd); /* only looked: the consumer binds it for real at start */
    return TS_OK;
}

ts_admin_t *ts_admin_new(const char *listen_addr, ts_metrics_t *metrics, char *errstr,
                         size_t errstr_size) {
    int fd = open_listener(listen_addr, errstr, errstr_size);
    if (fd < 0) return NULL;
    ts_admin_t *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->metrics = metrics;
    a->ready_g =
        ts_metrics_gauge(metrics, "tillstream_ready", "1 when the process is ready (readyz)", NULL);
    atomic_store(&a->heartbeat_ms, ts_now_mono_ms());
    atomic_store(&a->stale_ms, 30000);
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, a,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_END);
    if (!a->d) {
        ts_seterr(errstr, errstr_size, TS_ERR_IO, "admin.listen: cannot serve on %s", listen_addr);
        close(fd);
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
