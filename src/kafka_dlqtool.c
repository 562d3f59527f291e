/*
 * kafka_dlqtool.c - tillstream-dlq stats: a full read of the dead-letter
 * topic (up to the end offsets captured at start), aggregated by the
 * tillstream.* headers the consumers write (docs/dead-letter.md).
 */
#include "tillstream/dlqtool.h"

#include <cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/log.h"

static void bump(cJSON *obj, const char *key) {
    cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (n) cJSON_SetNumberValue(n, n->valuedouble + 1);
    else cJSON_AddNumberToObject(obj, key, 1);
}

static const char *header(rd_kafka_headers_t *h, const char *name, char *buf, size_t bufsz) {
    const void *v;
    size_t n;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v) return "(none)";
    snprintf(buf, bufsz, "%.*s", (int)(n < bufsz - 1 ? n : bufsz - 1), (const char *)v);
    return buf;
}

static void print_table(FILE *out, const char *title, const cJSON *obj) {
    fprintf(out, "\n%s\n", title);
    for (const cJSON *it = obj->child; it; it = it->next) fprintf(out, "  %-32s %10.0f\n", it->string, it->valuedouble);
}

int ts_dlqtool_stats(const ts_config_t *cfg, bool json, FILE *out) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "tillstream-dlq: kafka.%s: %s\n", cfg->kafka[i].key, err);
            rd_kafka_conf_destroy(conf);
            return 2;
        }
    rd_kafka_conf_set(conf, "group.id", "tillstream-dlq-stats", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "tillstream-dlq: %s\n", err);
        return 1;
    }
    const char *topic = cfg->topic_dead_letter;
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int parts = 0;
    if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000)) {
        if (md->topic_cnt == 1 && !md->topics[0].err) parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (parts == 0) {
        fprintf(stderr, "tillstream-dlq: cannot read topic %s\n", topic);
        rd_kafka_destroy(rk);
        return 1;
    }
    int64_t *end = calloc((size_t)parts, sizeof *end), remaining = 0;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        end[p] = hi;
        remaining += hi > lo ? 1 : 0;
        rd_kafka_topic_partition_list_add(pl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (hi <= lo) end[p] = -1; /* empty: nothing to wait for */
    }
    rd_kafka_assign(rk, pl);
    rd_kafka_topic_partition_list_destroy(pl);
    cJSON *root = cJSON_CreateObject(), *by_reason = cJSON_AddObjectToObject(root, "by_reason"),
          *by_outlet = cJSON_AddObjectToObject(root, "by_outlet"), *by_account = cJSON_AddObjectToObject(root, "by_account"),
          *by_topic = cJSON_AddObjectToObject(root, "by_source_topic"), *by_day = cJSON_AddObjectToObject(root, "by_day");
    long total = 0;
    int64_t oldest = -1, newest = -1;
    int64_t deadline = ts_now_mono_ms() + 60000;
    while (remaining > 0 && ts_now_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (!m->err && m->partition < parts && end[m->partition] >= 0) {
            rd_kafka_headers_t *h = NULL;
            rd_kafka_message_headers(m, &h);
            char buf[256];
            bump(by_reason, header(h, "tillstream.reason", buf, sizeof buf));
            bump(by_outlet, header(h, "tillstream.outlet", buf, sizeof buf));
            bump(by_account, header(h, "tillstream.account", buf, sizeof buf));
            bump(by_topic, header(h, "tillstream.source.topic", buf, sizeof buf));
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            time_t secs = (time_t)(ts / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            char day[16];
            strftime(day, sizeof day, "%Y-%m-%d", &tm);
            bump(by_day, day);
            if (oldest < 0 || ts < oldest) oldest = ts;
            if (ts > newest) newest = ts;
            total++;
            if (m->offset + 1 >= end[m->partition]) {
                end[m->partition] = -1;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    cJSON_AddNumberToObject(root, "total", (double)total);
    char t1[40] = "", t2[40] = "";
    if (oldest >= 0) {
        time_t s1 = (time_t)(oldest / 1000), s2 = (time_t)(newest / 1000);
        struct tm a, b;
        gmtime_r(&s1, &a);
        gmtime_r(&s2, &b);
        strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", &a);
        strftime(t2, sizeof t2, "%Y-%m-%dT%H:%M:%SZ", &b);
        cJSON_AddStringToObject(root, "oldest", t1);
        cJSON_AddStringToObject(root, "newest", t2);
    }
    cJSON_AddStringToObject(root, "topic", topic);
    if (json) {
        char *s = cJSON_PrintUnformatted(root);
        fprintf(out, "%s\n", s);
        free(s);
    } else {
        fprintf(out, "dead-letter topic %s: %ld record(s)%s%s%s%s\n", topic, total, oldest >= 0 ? ", oldest " : "", t1,
                oldest >= 0 ? ", newest " : "", t2);
        print_table(out, "by reason", by_reason);
        print_table(out, "by outlet", by_outlet);
        print_table(out, "by account", by_account);
        print_table(out, "by source topic", by_topic);
        print_table(out, "by day (UTC)", by_day);
    }
    int rc = remaining > 0 ? 1 : 0;
    if (rc) fprintf(stderr, "tillstream-dlq: timed out before the end of %s\n", topic);
    cJSON_Delete(root);
    free(end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
