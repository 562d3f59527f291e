/*
 * tillstream/log.h - structured logs: one JSON object per line.
 *
 *   {"time":"2026-11-23T01:02:03.123Z","level":"warn","logger":"orders",
 *    "message":"...","topic":"pos.orders","partition":3,"offset":42}
 *
 * The sink is stdout for the consumers (container convention) and stderr
 * for tools whose stdout is data (dry run, dlq). Messages must never
 * contain secrets: API keys are not passed to the logger anywhere.
 */
#ifndef TILLSTREAM_LOG_H
#define TILLSTREAM_LOG_H

#include <stdio.h>
#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_LOG_DEBUG = 0,
    TS_LOG_INFO,
    TS_LOG_WARN,
    TS_LOG_ERROR,
    TS_LOG_OFF
} ts_log_level_t;

/* Process-wide settings (set once by main before threads start). */
void ts_log_set_level(ts_log_level_t lvl);
void ts_log_set_sink(FILE *f); /* default stderr */
/* "debug" | "info" | "warn" | "error" | "off"; returns -1 if unknown. */
int ts_log_level_parse(const char *s, ts_log_level_t *out);
bool ts_log_enabled(ts_log_level_t lvl);

/* `ctx` is a list of extra JSON members, already rendered without braces
 * (e.g. `"topic":"pos.orders","partition":3`), or NULL. Thread-safe: one
 * write(2)-sized line per call. */
void ts_log(ts_log_level_t lvl, const char *logger, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define TS_LOG_DEBUG_(logger, ...)                                                                 \
    do {                                                                                           \
        if (ts_log_enabled(TS_LOG_DEBUG)) ts_log(TS_LOG_DEBUG, logger, NULL, __VA_ARGS__);         \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
