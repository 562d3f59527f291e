/*
 * tillstream/dlhdr.h - the names of the dead-letter record headers, shared
 * by the writer (the consumers' dead-letter producer, src/kafka) and every
 * reader (tillstream-dlq, tests). docs/dead-letter.md documents them; they
 * are a contract with users' tooling: add names, never rename one.
 */
#ifndef TILLSTREAM_DLHDR_H
#define TILLSTREAM_DLHDR_H

#define TS_DLH_PREFIX           "tillstream."
#define TS_DLH_REASON           "tillstream.reason"
#define TS_DLH_DETAIL           "tillstream.detail"
#define TS_DLH_SOURCE_TOPIC     "tillstream.source.topic"
#define TS_DLH_SOURCE_PARTITION "tillstream.source.partition"
#define TS_DLH_SOURCE_OFFSET    "tillstream.source.offset"
#define TS_DLH_SOURCE_TIMESTAMP "tillstream.source.timestamp"
#define TS_DLH_CONSUMER         "tillstream.consumer"
#define TS_DLH_OUTLET           "tillstream.outlet"
#define TS_DLH_ACCOUNT          "tillstream.account"
#define TS_DLH_REDRIVE_COUNT    "tillstream.redrive.count"
/* the group that wrote the dead letter (live group or a replay's group) */
#define TS_DLH_RUN "tillstream.run"
/* present when the value was left out (too large): the source coordinates
 * locate the original record */
#define TS_DLH_VALUE_OMITTED "tillstream.value.omitted"

/* Kafka Connect's dead-letter headers (errors.deadletterqueue.context.headers.enable),
 * so tools written for Connect's DLQs read ours. */
#define TS_DLH_CONNECT_PREFIX      "__connect.errors."
#define TS_DLH_CONNECT_TOPIC       "__connect.errors.topic"
#define TS_DLH_CONNECT_PARTITION   "__connect.errors.partition"
#define TS_DLH_CONNECT_OFFSET      "__connect.errors.offset"
#define TS_DLH_CONNECT_CONNECTOR   "__connect.errors.connector.name"
#define TS_DLH_CONNECT_TASK        "__connect.errors.task.id"
#define TS_DLH_CONNECT_STAGE       "__connect.errors.stage"
#define TS_DLH_CONNECT_CLASS       "__connect.errors.class.name"
#define TS_DLH_CONNECT_EXC_CLASS   "__connect.errors.exception.class.name"
#define TS_DLH_CONNECT_EXC_MESSAGE "__connect.errors.exception.message"

#endif
