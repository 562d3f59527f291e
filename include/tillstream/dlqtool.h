/*
 * tillstream/dlqtool.h - tillstream-dlq: working the dead-letter topic.
 *
 *   tillstream-dlq stats --config FILE [--json]
 *
 * `stats` reads the dead-letter topic from the beginning up to the end
 * offsets captured at start and counts records by reason, outlet, account,
 * source topic and day (UTC, of the dead-letter record's timestamp), with
 * the oldest and newest record. Output: a table, or one JSON object.
 */
#ifndef TILLSTREAM_DLQTOOL_H
#define TILLSTREAM_DLQTOOL_H

#include <stdio.h>
#include "tillstream/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the exit code (0 ok, 1 Kafka failure). */
int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
