/*
 * tillstream/suppressions.h - tillstream-suppressions, the Klaviyo ->
 * Kafka suppressions poller (src/app/suppressions.c; docs/consent.md,
 * "The suppressions poller").
 *
 *   tillstream-suppressions --config FILE [--once] [--check-config]
 *
 * For each active account: the email suppressions (Get Profiles) and the
 * SMS unsubscribes (Get Events of Klaviyo's SMS unsubscribe metric) newer
 * than the account's watermark, produced exactly once to
 * topics.suppressions, the watermark in topics.suppressions_state, every
 * suppressions.interval_ms (--once: one pass, then exit).
 *
 * Returns the process exit code: 0 ok, 1 runtime failure (with --once:
 * some account's pass failed), 2 bad config or usage. Only main() turns
 * it into an exit.
 */
#ifndef TILLSTREAM_SUPPRESSIONS_H
#define TILLSTREAM_SUPPRESSIONS_H

#ifdef __cplusplus
extern "C" {
#endif

int ts_suppressions_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
