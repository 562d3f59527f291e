/*
 * metrics.c - a small Prometheus registry. Series are created once
 * (get-or-create under a mutex) and then updated lock-free: counters and
 * gauges are doubles stored in atomic 64-bit words, histograms atomic
 * bucket counters. Rendering (admin thread) takes the mutex only to walk
 * the series list.
 */
#include "tillstream/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
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
        if (m->tail)
            m->tail->next = s;
        else
            m->head = s;
        m->tail = s;
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
                if (i < f->n_bounds)
                    snprintf(le, sizeof le, "le=\"%.17g\"", f->bounds[i]);
                else
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                series(out, f->name, "_bucket", f->labels, le, (double)cum);
            }
            series(out, f->name, "_sum", f->labels, NULL,
                   from_bits(atomic_load_explicit(&f->sum_bits, memory_order_relaxed)));
            series(out, f->name, "_count", f->labels, NULL,
                   (double)atomic_load_explicit(&f->count, memory_order_relaxed));
        }
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

void ts_metric_hide(ts_metric_t *g, bool hidden) {
    if (g) atomic_store_explicit(&g->hidden, hidden, memory_order_relaxed);
}
