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

typedef struct {
    const char *reason;         /* filter: tillstream.reason, NULL = any */
    const char *outlet;         /* filter: tillstream.outlet */
    int64_t since_ms, until_ms; /* filter on the dead-letter timestamp (0 = open) */
    bool json, dry_run, follow;
    int max_redrives;  /* redrive: records redriven this often are not re-sent */
    const char *group; /* redrive: consumer group that remembers what was redriven */
} ts_dlqtool_opts_t;

/* Each returns the exit code (0 ok, 1 Kafka failure, 2 usage). */
int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out);
/* show: records with headers, value pretty-printed when JSON; follow = tail. */
int ts_dlqtool_show(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out);
/* redrive: re-produce selected dead letters to their source topic with the
 * original key, value and headers plus tillstream.redrive.count; records
 * at --max-redrives are reported, not re-sent. A consumer group remembers
 * what was redriven, so a second redrive only sees new dead letters. */
int ts_dlqtool_redrive(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out);
/* audit: the customers topic (latest record per key, tombstones delete):
 * customers without Home Outlet, on outlets no account serves, without
 * email and phone, and would-be subscribed, per outlet and overall. */
int ts_dlqtool_audit(const ts_config_t *cfg, bool json, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
