/*
 * metrics.c - a small Prometheus registry. Series are created once
 * (get-or-create under a mutex) and then updated lock-free: counters and
 * gauges are doubles stored in atomic 64-bit words, histograms atomic
 * bucket counters. Rendering (admin thread) takes the mutex only to walk
 * the series list. Every registry also renders the process's runtime
 * families (tillstream_build_info, process_* from /proc/self) unless
 * turned off, so each binary gets them without wiring.
 */
#include "tillstream/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

struct ts_metric_s {
    mtype_t type;
    char *name, *help, *labels;
    _Atomic uint64_t bits; /* double */
    double *bounds;
    size_t n_bounds;
    _Atomic uint64_t *buckets; /* n_bounds + 1 (+Inf) */
    _Atomic uint64_t sum_bits, count;
    _Atomic bool hidden; /* not rendered (ts_metric_hide) */
    struct ts_metric_s *next;
};

struct ts_metrics_s {
    pthread_mutex_t mu;
    ts_metric_t *head, *tail;
    _Atomic bool runtime; /* render build_info and process_* */
};

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}
static void atomic_add_double(_Atomic uint64_t *a, double v) {
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed), nw;
    do {
        nw = to_bits(from_bits(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(a, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
}

ts_metrics_t *ts_metrics_new(void) {
    ts_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    atomic_store(&m->runtime, true);
    return m;
}

void ts_metrics_set_runtime(ts_metrics_t *m, bool on) {
    if (m) atomic_store(&m->runtime, on);
}

void ts_metrics_destroy(ts_metrics_t *m) {
    if (!m) return;
    for (ts_metric_t *s = m->head, *n; s; s = n) {
        n = s->next;
        free(s->name);
        free(s->help);
        free(s->labels);
        free(s->bounds);
        free((void *)s->buckets);
        free(s);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static ts_metric_t *get(ts_metrics_t *m, mtype_t t, const char *name, const char *help,
                        const char *labels, const double *bounds, size_t nb) {
    if (!m || !name) return NULL;
    if (!labels) labels = "";
    pthread_mutex_lock(&m->mu);
    ts_metric_t *s;
    for (s = m->head; s; s = s->next)
        if (!strcmp(s->name, name) && !strcmp(s->labels, labels)) break;
    if (!s && (s = calloc(1, sizeof *s))) {
        s->type = t;
        s->name = strdup(name);
        s->help = strdup(help ? help : "");
        s->labels = strdup(labels);
        if (t == M_HISTOGRAM) {
            s->bounds = malloc((nb ? nb : 1) * sizeof *s->bounds);
            s->buckets = calloc(nb + 1, sizeof *s->buckets);
            if (s->bounds) memcpy(s->bounds, bounds, nb * sizeof *bounds);
            s->n_bounds = nb;
        }
        TS_LIST_APPEND(m->head, m->tail, s, next);
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

ts_metric_t *ts_metrics_counter(ts_metrics_t *m, const char *name, const char *help,
                                const char *labels) {
    return get(m, M_COUNTER, name, help, labels, NULL, 0);
}
ts_metric_t *ts_metrics_gauge(ts_metrics_t *m, const char *name, const char *help,
                              const char *labels) {
    return get(m, M_GAUGE, name, help, labels, NULL, 0);
}
ts_metric_t *ts_metrics_histogram(ts_metrics_t *m, const char *name, const char *help,
                                  const char *labels, const double *bounds, size_t n_bounds) {
    return get(m, M_HISTOGRAM, name, help, labels, bounds, n_bounds);
}

void ts_metric_add(ts_metric_t *c, double v) {
    if (c) atomic_add_double(&c->bits, v);
}
void ts_metric_set(ts_metric_t *g, double v) {
    if (g) atomic_store_explicit(&g->bits, to_bits(v), memory_order_relaxed);
}
void ts_metric_observe(ts_metric_t *h, double v) {
    if (!h || h->type != M_HISTOGRAM) return;
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}
double ts_metric_value(const ts_metric_t *c) {
    return c ? from_bits(atomic_load_explicit(&((ts_metric_t *)c)->bits, memory_order_relaxed)) : 0;
}

int ts_metrics_label_escape(ts_buf_t *out, const char *v) {
    for (; *v; v++) {
        int r = *v == '\\'   ? ts_buf_puts(out, "\\\\")
                : *v == '"'  ? ts_buf_puts(out, "\\\"")
                : *v == '\n' ? ts_buf_puts(out, "\\n")
                             : ts_buf_putc(out, *v);
        if (r) return -1;
    }
    return 0;
}

static void series(ts_buf_t *out, const char *name, const char *suffix, const char *labels,
                   const char *extra, double v) {
    ts_buf_printf(out, "%s%s", name, suffix);
    bool l = labels && *labels, e = extra && *extra;
    if (l || e) ts_buf_printf(out, "{%s%s%s}", l ? labels : "", l && e ? "," : "", e ? extra : "");
    ts_buf_printf(out, " %.17g\n", v);
}

int ts_metrics_format_bound(char *out, size_t size, double v) {
    if (isinf(v)) return snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    if (isnan(v)) return snprintf(out, size, "NaN");
    if (v == 0) return snprintf(out, size, "0");
    /* the fewest significant digits that read back as the same double
     * (Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses) */
    char e[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    int x = atoi(strchr(e, 'e') + 1);
    if (x < -4 || x >= 6) /* exponent form, as Go's shortest %g */
        return snprintf(out, size, "%s", e);
    return snprintf(out, size, "%.*f", p - 1 - x > 0 ? p - 1 - x : 0, v);
}

/* /proc/self/stat after the command name: field 3 (state) is tok[0]. */
typedef struct {
    double cpu_seconds, rss_bytes, vsize_bytes, start_time;
    bool ok;
} proc_stat_t;

static proc_stat_t read_proc_stat(void) {
    proc_stat_t ps = {.ok = false};
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return ps;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p) return ps;
    unsigned long long fld[64] = {0};
    int k = 0;
    for (char *save = NULL, *t = strtok_r(p + 1, " ", &save); t && k < 64;
         t = strtok_r(NULL, " ", &save))
        fld[k++] = strtoull(t, NULL, 10);
    if (k < 22) return ps;
    double tck = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    ps.cpu_seconds = (double)(fld[14 - 3] + fld[15 - 3]) / tck; /* utime + stime */
    ps.vsize_bytes = (double)fld[23 - 3];
    ps.rss_bytes = (double)fld[24 - 3] * page;
    double btime = 0;
    if ((f = fopen("/proc/stat", "r"))) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "btime ", 6)) btime = strtod(line + 6, NULL);
        fclose(f);
    }
    ps.start_time = btime + (double)fld[22 - 3] / tck;
    ps.ok = btime > 0;
    return ps;
}

static double count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    double n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static double max_open_fds(void) {
    FILE *f = fopen("/proc/self/limits", "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Max open files", 14)) v = strtod(line + 14, NULL);
    fclose(f);
    return v;
}

static void family(ts_buf_t *out, const char *name, const char *type, const char *help, double v) {
    ts_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void render_runtime(ts_buf_t *out) {
    ts_buf_printf(out, "# HELP tillstream_build_info the running version (value always 1)\n"
                       "# TYPE tillstream_build_info gauge\ntillstream_build_info{version=\"");
    ts_metrics_label_escape(out, TS_VERSION);
    ts_buf_puts(out, "\"} 1\n");
    proc_stat_t ps = read_proc_stat();
    if (ps.ok) {
        family(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
        family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               ps.rss_bytes);
        family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               ps.vsize_bytes);
        family(out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", ps.start_time);
    }
    double fds = count_open_fds(), max = max_open_fds();
    if (fds >= 0) family(out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
    if (max >= 0)
        family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", max);
}

int ts_metrics_render(ts_metrics_t *m, ts_buf_t *out) {
    if (!m) return 0;
    static const char *const tn[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    for (ts_metric_t *s = m->head; s; s = s->next) {
        bool first = true;
        for (ts_metric_t *p = m->head; p != s; p = p->next)
            if (!strcmp(p->name, s->name)) first = false;
        if (!first) continue; /* the family was written with its first series */
        ts_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, tn[s->type]);
        for (ts_metric_t *f = s; f; f = f->next) {
            if (strcmp(f->name, s->name)) continue;
            if (atomic_load_explicit(&f->hidden, memory_order_relaxed)) continue;
            if (f->type != M_HISTOGRAM) {
                series(out, f->name, "", f->labels, NULL, ts_metric_value(f));
                continue;
            }
            uint64_t cum = 0;
            char le[64];
            for (size_t i = 0; i <= f->n_bounds; i++) {
                cum += atomic_load_explicit(&f->buckets[i], memory_order_relaxed);
                char bound[32];
                ts_metrics_format_bound(bound, sizeof bound,
                                        i < f->n_bounds ? f->bounds[i] : INFINITY);
                snprintf(le, sizeof le, "le=\"%s\"", bound);
                series(out, f->name, "_bucket", f->labels, le, (double)cum);
            }
            series(out, f->name, "_sum", f->labels, NULL,
                   from_bits(atomic_load_explicit(&f->sum_bits, memory_order_relaxed)));
            series(out, f->name, "_count", f->labels, NULL,
                   (double)atomic_load_explicit(&f->count, memory_order_relaxed));
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (atomic_load(&m->runtime)) render_runtime(out);
    return 0;
}

void ts_metric_hide(ts_metric_t *g, bool hidden) {
    if (g) atomic_store_explicit(&g->hidden, hidden, memory_order_relaxed);
}
