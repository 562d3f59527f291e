/*
 * tillstream/dryrun.h - the offline pipeline: JSON lines in, one JSON
 * object per input line out, through the same decode -> route -> map code
 * as the live consumers.
 *
 * Output line (a contract; see docs/dry-run.md):
 *   {"input": N, "account": "brand-a"|null, "events": [...], "profiles": [...],
 *    "dead_letter": null|{"reason": "...", "detail": "..."},
 *    "skipped": null|"VOIDED"|"TEST_ORDER"|"OTHER_ACCOUNT"|"NOT_CONSENTED"|...,
 *    "consent_blocked": {"channel", "reason"} (only where a suppression
 *    stopped a subscribe), "consent_reoptin": {...} (a subscribe over an
 *    older suppression)}
 */
#ifndef TILLSTREAM_DRYRUN_H
#define TILLSTREAM_DRYRUN_H

#include <stdio.h>
#include "tillstream/config.h"
#include "tillstream/decode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t lines, sent, dead_letter, skipped;
    uint64_t events_per_account_total; /* all events */
    uint64_t by_reason[TS_REASON__COUNT];
} ts_dryrun_stats_t;

/* Processes every line of `in` and writes one object per line to `out`.
 * `customers_path` (orders only, may be NULL): customer JSON lines that
 * stand in for the customer table. Customers carry the consent state
 * across lines in input order (it starts empty); `suppressions_path`
 * (customers only, may be NULL): suppression records (the suppressions
 * topic's JSON values, one per line) loaded first. Malformed input lines
 * become DECODE_ERROR dead letters. Returns TS_OK, TS_ERR_IO (unreadable
 * customers/suppressions file, write failure), TS_ERR_CONFIG (a malformed
 * suppression line, named by file:line) or TS_ERR_NOMEM. `stats` may be
 * NULL. */
ts_err_t ts_dryrun_run(const ts_config_t *cfg, ts_kind_t kind, FILE *in, const char *customers_path,
                       const char *suppressions_path, FILE *out, ts_dryrun_stats_t *stats,
                       char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
