/*
 * kafka/firstpass.h - the customers consumer's wait for the first full
 * pass of tillstream-suppressions (private to src/kafka; issue 15,
 * docs/consent.md, "First deployment over an existing Klaviyo account").
 *
 * tillstream-suppressions writes, per account, its watermark to the
 * compacted topic topics.suppressions_state (key = account, value
 * tillstream/supp.h's state JSON). Its `pass_at` is > 0 once a full pass
 * over the account is committed, after that pass's records: from then on
 * topics.suppressions holds every suppression Klaviyo had at pass_at.
 *
 * With customers.wait_for_suppressions, the customers consumer joins its
 * group only once every active account (routing.only_accounts) shows
 * pass_at > 0 in that topic (read_committed, from the beginning): until
 * then it takes no record and is not ready. The state topic is compacted
 * and kept, so a pass once seen is seen at every later start: only a true
 * first deployment, or a newly configured account, ever waits; an ordinary
 * restart with the poller down does not.
 *
 * Threading: the consume loop's thread. The library never exits or prints.
 */
#ifndef TILLSTREAM_KAFKA_FIRSTPASS_H
#define TILLSTREAM_KAFKA_FIRSTPASS_H

#include "tillstream/config.h"
#include "tillstream/metrics.h"

typedef struct ts_firstpass_s ts_firstpass_t;

/* How often a missing state topic is looked for again while waiting. */
#define TS_FIRSTPASS_LOOK_MS 2000

typedef struct {
    const ts_config_t *cfg; /* borrowed, outlives the waiter */
    const char *group_id;   /* the customers group: the reader's group.id is
                               "<group_id>-firstpass" (assign only, commits nothing) */
    ts_metric_t *waiting;   /* gauge set 1 while waiting, 0 once done; may be NULL */
} ts_firstpass_opts_t;

/* No Kafka client yet (the first ts_firstpass_poll creates it). NULL only
 * when out of memory (TS_ERR_NOMEM in errstr). */
ts_firstpass_t *ts_firstpass_new(const ts_firstpass_opts_t *opts, char *errstr, size_t errstr_size);
/* Closes the reader; NULL is fine. */
void ts_firstpass_destroy(ts_firstpass_t *fp);

/* Applies one record of the state topic: `value` NULL (a tombstone) or
 * JSON of `len` bytes. Records of accounts not configured or not active
 * are ignored. TS_ERR_INVALID (with errstr) for a value that is not the
 * poller's state; the account's last pass is kept. */
ts_err_t ts_firstpass_record(ts_firstpass_t *fp, const char *account, const char *value, size_t len,
                             char *errstr, size_t errstr_size);

/* true when every active account has pass_at > 0. */
bool ts_firstpass_done(const ts_firstpass_t *fp);

/* Reads what the state topic has (waits at most timeout_ms) and returns
 * ts_firstpass_done(). Once the topic was read to its end (or found
 * missing) without every pass, logs once per account "waiting for
 * tillstream-suppressions' first full pass over account X" and sets the
 * gauge to 1; a missing topic is looked for every TS_FIRSTPASS_LOOK_MS.
 * Never fails: a broker error is logged and retried. */
bool ts_firstpass_poll(ts_firstpass_t *fp, int timeout_ms);

#endif
