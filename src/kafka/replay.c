/*
 * replay.c - replay windows and exact progress (kafka/replay.h).
 */
#include "kafka/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/consumer.h"
#include "kafka/topic.h"
#include "tillstream/log.h"

struct ts_replay_s {
    ts_replay_opts_t o;
    int64_t *start, *end; /* per partition: the window [start, end) */
    int n;
    int64_t next_progress_ms, t0;
    ts_metric_t *m_progress;
};

static int grow(ts_replay_t *r, int n) {
    if (n <= r->n) return 0;
    int64_t *s = realloc(r->start, (size_t)n * sizeof *s);
    if (!s) return -1;
    r->start = s;
    int64_t *e = realloc(r->end, (size_t)n * sizeof *e);
    if (!e) return -1;
    r->end = e;
    for (int p = r->n; p < n; p++) r->start[p] = r->end[p] = 0;
    r->n = n;
    return 0;
}

ts_replay_t *ts_replay_new(const ts_replay_opts_t *opts) {
    ts_replay_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->o = *opts;
    r->t0 = ts_now_mono_ms();
    r->m_progress = ts_metrics_gauge(opts->metrics, "tillstream_replay_progress_ratio",
                                     "share of the replay window done (0..1)", NULL);
    return r;
}

void ts_replay_destroy(ts_replay_t *r) {
    if (!r) return;
    free(r->start);
    free(r->end);
    free(r);
}

void ts_replay_window_ends(ts_replay_t *r, rd_kafka_t *rk, int64_t *ends, int n) {
    if (grow(r, n)) return;
    if (r->o.to_ms != TS_REPLAY_NOW) {
        /* the window ends at the first record at or after --replay-to */
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
            rd_kafka_topic_partition_list_add(q, r->o.topic, p)->offset = r->o.to_ms;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, q, 10000);
        if (err)
            ts_log(TS_LOG_ERROR, "replay", NULL, "offsets for times (--replay-to): %s",
                   rd_kafka_err2str(err));
        for (int i = 0; !err && i < q->cnt; i++)
            if (q->elems[i].offset >= 0 && q->elems[i].partition < n)
                ends[q->elems[i].partition] = q->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(q);
    }
    memcpy(r->end, ends, (size_t)n * sizeof *ends);
}

/* Partitions without a committed offset start at the first record at or
 * after --replay-from (-1 from offsets-for-times: none, start at the end). */
static void start_from_time(ts_replay_t *r, rd_kafka_t *rk,
                            rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(q, parts->elems[i].topic, parts->elems[i].partition)
                ->offset = r->o.from_ms;
    rd_kafka_resp_err_t err = q->cnt ? rd_kafka_offsets_for_times(rk, q, 10000) : 0;
    if (err) ts_log(TS_LOG_ERROR, "replay", NULL, "offsets for times: %s", rd_kafka_err2str(err));
    for (int i = 0; i < q->cnt; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(parts, q->elems[i].topic, q->elems[i].partition);
        if (tp) tp->offset = q->elems[i].offset >= 0 ? q->elems[i].offset : RD_KAFKA_OFFSET_END;
    }
    rd_kafka_topic_partition_list_destroy(q);
}

void ts_replay_assign(ts_replay_t *r, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, 10000);
    if (err) ts_log(TS_LOG_WARN, "replay", NULL, "committed offsets: %s", rd_kafka_err2str(err));
    if (r->o.from_ms != TS_REPLAY_EARLIEST) start_from_time(r, rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int32_t p = tp->partition;
        if (grow(r, p + 1)) return;
        /* the real log start (queried: the cached watermark is -1001
         * before the first fetch) */
        int64_t lo = 0, hi = 0;
        if (tp->offset < 0 && tp->offset != RD_KAFKA_OFFSET_END)
            ts_ktopic_watermarks(rk, r->o.topic, p, &lo, &hi, 10000);
        if (tp->offset < 0 && tp->offset != RD_KAFKA_OFFSET_END) tp->offset = lo;
        r->start[p] = tp->offset == RD_KAFKA_OFFSET_END ? r->end[p] : tp->offset;
        if (r->start[p] > r->end[p]) r->start[p] = r->end[p];
        char ctx[128];
        snprintf(ctx, sizeof ctx, "\"partition\":%d,\"start\":%lld,\"end\":%lld", p,
                 (long long)r->start[p], (long long)r->end[p]);
        ts_log(TS_LOG_INFO, "replay", ctx, "replaying partition %d", p);
    }
}

static void totals(ts_replay_t *r, int64_t *done, int64_t *total) {
    *done = *total = 0;
    for (int p = 0; p < r->n; p++) {
        int64_t window = r->end[p] - r->start[p];
        if (window <= 0) continue;
        *total += window;
        int64_t c = r->o.done_upto(r->o.opaque, p);
        int64_t upto = c >= 0 ? c : r->start[p];
        if (upto > r->end[p]) upto = r->end[p];
        if (upto > r->start[p]) *done += upto - r->start[p];
    }
}

void ts_replay_progress(ts_replay_t *r, bool final) {
    int64_t now = ts_now_mono_ms();
    if (!final && now < r->next_progress_ms) return;
    r->next_progress_ms = now + 5000;
    int64_t done, total;
    totals(r, &done, &total);
    ts_buf_t acc = TS_BUF_INIT;
    double eps = 0;
    for (size_t i = 0; i < r->o.cfg->n_accounts; i++) {
        if (!r->o.cfg->accounts[i].active) continue;
        ts_lane_stats_t st;
        ts_engine_lane_stats(r->o.engine, (int)i, &st);
        double ratio = st.ceiling_ratio < 0 ? 0 : st.ceiling_ratio > 1 ? 1 : st.ceiling_ratio;
        eps += st.events_per_s;
        ts_buf_puts(&acc, acc.len ? ",\"" : "\"");
        ts_buf_puts(&acc, r->o.cfg->accounts[i].name);
        ts_buf_printf(&acc, "\":{\"events_per_s\":%.0f,\"ceiling_pct\":%.1f,\"throttled\":%llu}",
                      st.events_per_s, 100.0 * ratio, (unsigned long long)st.throttled_429);
    }
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    double secs = (double)(now - r->t0) / 1000.0;
    double eta = done > 0 && frac < 1 ? secs * (1 - frac) / frac : 0;
    ts_metric_set(r->m_progress, frac);
    char ctx[1536];
    snprintf(ctx, sizeof ctx,
             "\"topic\":\"%s\",\"records_done\":%lld,\"records_total\":%lld,\"progress\":%.4f,"
             "\"events_per_s\":%.0f,\"eta_s\":%.0f,\"accounts\":{%s}",
             r->o.topic, (long long)done, (long long)total, frac, eps, eta,
             acc.data ? acc.data : "");
    ts_log(TS_LOG_INFO, "replay", ctx, final ? "replay complete" : "replay progress");
    ts_buf_free(&acc);
    if (r->o.bar) { /* the bar, on a line of its own */
        int w = (int)(frac * 40);
        fprintf(r->o.bar, "%s [%.*s%*s] %5.1f%% %lld/%lld records %6.0f ev/s ETA %4.0fs\n",
                r->o.topic, w, "########################################", 40 - w, "", frac * 100,
                (long long)done, (long long)total, eps, eta);
        fflush(r->o.bar);
    }
}
