/*
 * tillstream/admin.h - the admin HTTP listener of each binary
 * (libmicrohttpd, its own thread):
 *   GET /metrics  Prometheus text format (metrics.h)
 *   GET /healthz  200 while the main loop is turning (heartbeat younger
 *                 than 30 s,
 *                 ts_admin_set_stale_ms), else 503
 *   GET /readyz   200 once the process is ready (assignment received and,
 *                 for orders, the customer table restored), else 503
 */
#ifndef TILLSTREAM_ADMIN_H
#define TILLSTREAM_ADMIN_H

#include "tillstream/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_admin_s ts_admin_t;

/* listen_addr: "host:port" (port 0 = any free port). `metrics` is borrowed.
 * NULL with errstr when the address is malformed (TS_ERR_CONFIG) or cannot
 * be bound (TS_ERR_IO, with the errno text: "Address already in use"). */
ts_admin_t *ts_admin_new(const char *listen_addr, ts_metrics_t *metrics, char *errstr,
                         size_t errstr_size);
void ts_admin_destroy(ts_admin_t *a);
/* Whether ts_admin_new(listen) could listen: parses host:port and binds a
 * socket for a moment. TS_ERR_CONFIG names `admin.listen` and, when the
 * address is taken, the errno text ("Address already in use"); the same
 * message ts_admin_new gives (--check-config). */
ts_err_t ts_admin_check_listen(const char *listen_addr, char *errstr, size_t errstr_size);
int ts_admin_port(const ts_admin_t *a);
/* Called by the main loop on every turn (cheap). */
void ts_admin_heartbeat(ts_admin_t *a);
void ts_admin_set_ready(ts_admin_t *a, bool ready);
/* /healthz answers 503 once the last heartbeat is `stale_ms` old or older
 * (default 30000; 0 = always stale, used by tests). */
void ts_admin_set_stale_ms(ts_admin_t *a, int64_t stale_ms);

#ifdef __cplusplus
}
#endif
#endif
