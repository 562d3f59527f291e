/*
 * engine_testlib.h - the Klaviyo simulator and a delivery engine for the
 * unit tests that drive the engine over loopback HTTP (engine, jobs,
 * deletes). Test-only; header-only; cmocka asserts (include cmocka.h
 * first).
 */
#ifndef TS_ENGINE_TESTLIB_H
#define TS_ENGINE_TESTLIB_H

#include <stdarg.h>
#include <stdio.h>

#include "tillstream/engine.h"
#include "tillstream/map.h"
#include "tillstream/sim.h"

/* A started simulator with account "a" (key_a) and, unless key_b is NULL,
 * account "b" (key_b); the caller destroys it. */
static inline ts_sim_t *te_sim_start(const ts_sim_opts_t *so, const char *key_a,
                                     const char *key_b) {
    char err[256];
    ts_sim_t *sim = ts_sim_new(so, err, sizeof err);
    assert_non_null(sim);
    ts_sim_add_account(sim, "a", key_a);
    if (key_b) ts_sim_add_account(sim, "b", key_b);
    assert_int_equal(ts_sim_start(sim, err, sizeof err), TS_OK);
    return sim;
}

/* What the simulator counted for `account` (which must exist). */
static inline ts_sim_stats_t te_sim_stats(ts_sim_t *sim, const char *account) {
    ts_sim_stats_t st;
    assert_int_equal(ts_sim_stats(sim, account, &st), 0);
    return st;
}

/* An engine that must start; the caller destroys it. */
static inline ts_engine_t *te_engine_new(const ts_engine_opts_t *eo) {
    char err[256];
    ts_engine_t *eng = ts_engine_new(eo, err, sizeof err);
    assert_non_null(eng);
    return eng;
}

/* Polls until nothing is pending, max_ms at most: then nothing must be. */
static inline void te_poll_idle(ts_engine_t *eng, int64_t max_ms) {
    int64_t end = ts_now_mono_ms() + max_ms;
    while (ts_engine_pending(eng) > 0 && ts_now_mono_ms() < end) ts_engine_poll(eng, 100);
    assert_int_equal(ts_engine_pending(eng), 0);
}

/* Sends what lingers, then te_poll_idle. */
static inline void te_drain(ts_engine_t *eng, int64_t max_ms) {
    ts_engine_flush(eng);
    te_poll_idle(eng, max_ms);
}

/* Appends printf(fmt, ...) to m's text and points *span at it: how a test
 * builds a mapped record by hand. */
static inline void te_span_printf(ts_mapped_t *m, ts_span_t *span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void te_span_printf(ts_mapped_t *m, ts_span_t *span, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    assert_int_equal(ts_buf_reserve(&m->text, (size_t)n), 0); /* n bytes and the NUL */
    va_start(ap, fmt);
    vsnprintf(m->text.data + m->text.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    span->off = m->text.len;
    span->len = (size_t)n;
    m->text.len += (size_t)n;
}

#endif
