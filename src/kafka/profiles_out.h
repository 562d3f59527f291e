/*
 * profiles_out.h - private to src/kafka: Klaviyo profile ids back to the
 * POS. The engine's job follower calls ts_profiles_out_cb (a
 * ts_engine_profile_cb) for every profile of a complete import job; each
 * becomes one record on topics.profiles, key = external_id, value
 * {"account","external_id","profile_id","email","phone_number"}, through
 * an idempotent producer (acks=all). At the end of each page the records
 * are flushed: the job's customer records complete (and their offsets
 * move) only once the broker has them. Profiles without an external_id
 * are skipped (counted): nothing on the POS side to link them to.
 *
 * Threading: the engine's thread only.
 */
#ifndef TILLSTREAM_KAFKA_PROFILES_OUT_H
#define TILLSTREAM_KAFKA_PROFILES_OUT_H

#include <librdkafka/rdkafka.h>

#include "tillstream/engine.h"

typedef struct ts_metrics_s ts_metrics_t;
typedef struct ts_profiles_out_s ts_profiles_out_t;

/* Takes `conf` (a producer configuration; destroyed on failure too); `cfg`
 * (borrowed) says whether its SASL credentials follow their files. */
ts_profiles_out_t *ts_profiles_out_new(rd_kafka_conf_t *conf, const ts_config_t *cfg,
                                       const char *topic, ts_metrics_t *metrics, char *errstr,
                                       size_t errstr_size);
/* Flushes what is queued (up to 10 s), then destroys. NULL is fine. */
void ts_profiles_out_destroy(ts_profiles_out_t *po);
/* ts_engine_profile_cb; opaque = the ts_profiles_out_t. */
ts_err_t ts_profiles_out_cb(void *opaque, const ts_engine_profile_t *p);

#endif
