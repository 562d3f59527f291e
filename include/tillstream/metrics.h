/*
 * tillstream/metrics.h - Prometheus metrics, rendered by the admin endpoint.
 *
 * Handles are get-or-create: asking twice for the same name + labels gives
 * the same handle, so hot paths look a handle up once and then only call
 * ts_metric_add() (lock-free atomic). Every function accepts a NULL
 * registry or handle and then does nothing, so modules run without
 * metrics in tests. Names carry units (_total, _seconds, _bytes); label
 * values are bounded sets (account, endpoint, reason, topic, partition).
 */
#ifndef TILLSTREAM_METRICS_H
#define TILLSTREAM_METRICS_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_metrics_s ts_metrics_t;
typedef struct ts_metric_s ts_metric_t;

ts_metrics_t *ts_metrics_new(void);
void ts_metrics_destroy(ts_metrics_t *m);

/* `labels` is the rendered label body without braces, e.g.
 * `account="brand-a",metric="Placed Order"`, or NULL. Values must be
 * escaped by the caller (ts_metrics_label_escape). Returns NULL only on
 * allocation failure or a NULL registry. */
ts_metric_t *ts_metrics_counter(ts_metrics_t *m, const char *name, const char *help,
                                const char *labels);
ts_metric_t *ts_metrics_gauge(ts_metrics_t *m, const char *name, const char *help,
                              const char *labels);
/* `bounds` ascending upper bounds (copied). */
ts_metric_t *ts_metrics_histogram(ts_metrics_t *m, const char *name, const char *help,
                                  const char *labels, const double *bounds, size_t n_bounds);

void ts_metric_add(ts_metric_t *c, double v);     /* counters and gauges */
void ts_metric_set(ts_metric_t *g, double v);     /* gauges */
void ts_metric_observe(ts_metric_t *h, double v); /* histograms */
double ts_metric_value(const ts_metric_t *c);     /* tests */
/* A series of something this process no longer owns (a revoked
 * partition's lag) is left out of the exposition until shown again; the
 * handle stays valid. */
void ts_metric_hide(ts_metric_t *g, bool hidden);

/* Appends the Prometheus text exposition format (0.0.4). Thread-safe.
 * After the registry's series come the runtime families (unless turned off
 * with ts_metrics_set_runtime): `tillstream_build_info{version="..."} 1` and
 * the process metrics as Prometheus' client libraries name them
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds), read from /proc/self at each render;
 * a family whose /proc file cannot be read is left out. */
int ts_metrics_render(ts_metrics_t *m, ts_buf_t *out);
/* Runtime families on (the default of ts_metrics_new) or off (tests that
 * compare exact output). */
void ts_metrics_set_runtime(ts_metrics_t *m, bool on);
/* Writes a histogram bound as the `le` label value the client libraries
 * write: the shortest text that reads back as the same double (`0.005`,
 * `2.5`, `1000`, `1e+06`, `+Inf`). Returns snprintf's count. */
int ts_metrics_format_bound(char *out, size_t size, double v);
/* Escapes a label value (\\, \", \n) into out. */
int ts_metrics_label_escape(ts_buf_t *out, const char *v);

#ifdef __cplusplus
}
#endif
#endif
