/*
 * log.c - structured logging: one JSON object per line, written with a
 * single fwrite under a mutex so lines from threads never interleave.
 */
#include "tillstream/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tillstream/jw.h"

static ts_log_level_t g_level = TS_LOG_INFO;
static FILE *g_sink = NULL;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void ts_log_set_level(ts_log_level_t lvl) { g_level = lvl; }
void ts_log_set_sink(FILE *f) { g_sink = f; }
bool ts_log_enabled(ts_log_level_t lvl) { return lvl >= g_level && lvl < TS_LOG_OFF; }

int ts_log_level_parse(const char *s, ts_log_level_t *out) {
    for (int i = 0; i <= TS_LOG_OFF; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (ts_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void ts_log(ts_log_level_t lvl, const char *logger, const char *ctx, const char *fmt, ...) {
    if (!ts_log_enabled(lvl)) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[80];
    snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000000) % 1000);

    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init_obj(&w, &b);
    ts_jw_kv_str(&w, "time", tbuf);
    ts_jw_kv_str(&w, "level", level_names[lvl]);
    ts_jw_kv_str(&w, "logger", logger ? logger : "tillstream");
    ts_jw_kv_str(&w, "message", msg);
    if (ctx && *ctx) {
        ts_buf_putc(&b, ',');
        ts_buf_puts(&b, ctx);
    }
    ts_buf_puts(&b, "}\n");
    if (b.data) {
        pthread_mutex_lock(&g_lock);
        FILE *f = g_sink ? g_sink : stderr;
        fwrite(b.data, 1, b.len, f);
        fflush(f);
        pthread_mutex_unlock(&g_lock);
    }
    ts_buf_free(&b);
}
