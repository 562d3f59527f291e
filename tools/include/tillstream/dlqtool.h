/*
 * tillstream/dlqtool.h - tillstream-dlq: working the dead-letter topic
 * (docs/dead-letter.md is the runbook).
 *
 *   tillstream-dlq stats|show|tail|redrive|audit --config FILE [options]
 *
 * Every function reads with its own librdkafka client, logs through the
 * JSON logger (librdkafka's logs too), prints its report to `out` only
 * when the whole read succeeded (no partial report: it would read as the
 * truth) and returns the exit code: 0 ok, 1 Kafka failure (cluster
 * unreachable, topic missing, produce failed), 2 usage.
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
    long limit;                 /* show/tail/redrive: at most this many records (0 = all) */
    bool json, dry_run, follow;
    bool from_beginning;     /* tail: read the whole topic first (default: from the end) */
    int max_redrives;        /* redrive: records redriven this often are not re-sent */
    const char *group;       /* redrive: bookkeeping namespace (default tillstream-dlq-redrive) */
    const char *state_topic; /* redrive: bookkeeping topic (default tillstream.redrive) */
    FILE *notes; /* show/tail: one-line notes (record count, "following ..."), NULL = none */
} ts_dlqtool_opts_t;

/* stats: the whole dead-letter topic (to the end offsets at start),
 * counted by distinct source record + reason (source topic, partition,
 * offset from the tillstream.source.* headers) per reason, outlet,
 * account, source topic and day, with the record count, the copies
 * (records beyond the first of a source record + reason, per reason) and
 * records per writing run (tillstream.run). Output: a table, or one JSON
 * object ("total" records, "distinct", "copies", "by_reason", ...). */
int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out);
/* show: records with headers, value pretty-printed when JSON; follow =
 * tail (from the end unless from_beginning). */
int ts_dlqtool_show(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out);
/* redrive: re-produce selected dead letters to their source topic with the
 * original key, value and headers plus tillstream.redrive.count, unless
 * - the source partition holds a newer record of the same key after the
 *   dead letter's source offset (in the orders topic: of the same order
 *   and status, each status being its own event): SUPERSEDED, marked
 *   done, never re-sent;
 * - another dead letter of the same source record (topic, partition,
 *   offset) was redriven before or is redriven in this run: a copy, done;
 * - the record was redriven max_redrives times already: reported, left.
 * A compacted bookkeeping topic (state_topic, created when missing) keyed
 * by group|dead-letter topic|partition|offset records each dead letter
 * done, after the broker acknowledged its re-produced record: a later
 * redrive with another filter still finds its records, a repeat finds
 * none. Dead letters below the committed offsets of the consumer group
 * named `group` (how older versions remembered progress) count as done.
 * The selected dead letters are held in memory (limit bounds them).
 * dry_run reads and reports, writes nothing. */
int ts_dlqtool_redrive(const ts_config_t *cfg, const ts_dlqtool_opts_t *o, FILE *out);
/* audit: the customers topic (latest record per key, tombstones delete):
 * customers without Home Outlet, on outlets no account serves, without
 * email and phone, and would-be subscribed, per outlet and overall. */
int ts_dlqtool_audit(const ts_config_t *cfg, bool json, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
