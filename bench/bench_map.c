/*
 * bench_map - CPU per event of the hot path the orders consumer runs for
 * every JSON record: decode (ts_decode_order_json) + customer lookup +
 * map (ts_map_order), over generated POS orders (tillstream-gen's
 * generator, realistic multi-line orders, a customer table of generated
 * customers). One thread, thread CPU time, best of ROUNDS.
 *   bench_map [ORDERS=20000] [ROUNDS=5]
 * Prints ns per order and per event for decode alone, map alone and both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/decode.h"
#include "tillstream/gen.h"
#include "tillstream/map.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char CONFIG[] =
    "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]},"
    "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\",\"202\",\"301\"]}],"
    "\"routing\":{\"default_phone_country\":\"61\",\"default_online_outlet\":\"101\","
    "\"outlet_names\":{\"101\":\"Sydney CBD\",\"201\":\"Melbourne\"}}}";

typedef struct {
    ts_customer_ref_t *refs; /* by customer number ("C000042" -> 42) */
    size_t n;
} table_t;

static const ts_customer_ref_t *lookup(const table_t *t, const char *id) {
    if (!id || id[0] != 'C') return NULL;
    size_t i = strtoul(id + 1, NULL, 10);
    return i < t->n && t->refs[i].present ? &t->refs[i] : NULL;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    static const char *const outlets[] = {"101", "102", "201", "202", "301"};
    size_t nc = n / 4 + 1;
    ts_gen_opts_t go = {42, nc, outlets, 5, 0.15, 0.03, 0.02};
    ts_gen_t *g = ts_gen_new(&go);
    char err[512];
    ts_config_t *cfg;
    if (ts_config_parse(CONFIG, &cfg, err, sizeof err)) {
        fprintf(stderr, "bench_map: %s\n", err);
        return 1;
    }
    ts_router_t *router = ts_router_new(cfg, err, sizeof err);
    ts_mapper_t *mp = ts_mapper_new(cfg, router, err, sizeof err);
    ts_arena_t *keep = ts_arena_new(1 << 20), *a = ts_arena_new(0);
    table_t t = {calloc(nc, sizeof *t.refs), nc};
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT, all = TS_BUF_INIT;
    for (size_t i = 0; i < nc; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_customer(g, i, &k, &v);
        ts_customer_t c;
        if (ts_decode_customer_json(v.data, v.len, keep, &c, err, sizeof err)) continue;
        t.refs[i] = (ts_customer_ref_t){.present = true,
                                        .customer_id = c.customer_id,
                                        .email = c.email,
                                        .phone = c.phone,
                                        .first_name = c.first_name,
                                        .last_name = c.last_name,
                                        .home_outlet_id = c.home_outlet_id};
    }
    size_t *off = calloc(n, sizeof *off), *len = calloc(n, sizeof *len);
    for (size_t i = 0; i < n; i++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        off[i] = all.len;
        len[i] = v.len;
        ts_buf_append(&all, v.data, v.len);
    }
    /* decoded orders kept for the map-only figure */
    ts_order_t *orders = calloc(n, sizeof *orders);
    ts_arena_t *held = ts_arena_new(1 << 20);
    for (size_t i = 0; i < n; i++)
        if (ts_decode_order_json(all.data + off[i], len[i], held, &orders[i], err, sizeof err)) {
            fprintf(stderr, "bench_map: order %zu: %s\n", i, err);
            return 1;
        }
    ts_mapped_t m;
    ts_mapped_init(&m);
    double best_dec = 1e9, best_map = 1e9, best_both = 1e9;
    size_t events = 0, bytes = 0, sent = 0, dead = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_s();
        for (size_t i = 0; i < n; i++) {
            ts_order_t o;
            ts_arena_reset(a);
            ts_decode_order_json(all.data + off[i], len[i], a, &o, err, sizeof err);
        }
        double t1 = cpu_s();
        events = bytes = sent = dead = 0;
        for (size_t i = 0; i < n; i++) {
            const ts_order_t *o = &orders[i];
            ts_map_order(mp, o, ts_map_resolve_customer(o, lookup(&t, o->customer_id)), &m);
            events += m.n_events;
            bytes += m.text.len;
            sent += m.account >= 0;
            dead += m.dead_letter != TS_REASON_NONE;
        }
        double t2 = cpu_s();
        for (size_t i = 0; i < n; i++) {
            ts_order_t o;
            ts_arena_reset(a);
            if (ts_decode_order_json(all.data + off[i], len[i], a, &o, err, sizeof err)) continue;
            ts_map_order(mp, &o, ts_map_resolve_customer(&o, lookup(&t, o.customer_id)), &m);
        }
        double t3 = cpu_s();
        if (t1 - t0 < best_dec) best_dec = t1 - t0;
        if (t2 - t1 < best_map) best_map = t2 - t1;
        if (t3 - t2 < best_both) best_both = t3 - t2;
    }
    printf("%zu orders (%.0f B/order JSON), %zu events (%.2f per order), %zu sent, %zu dead "
           "letters, %.0f B of mapped text per order\n",
           n, (double)all.len / (double)n, events, (double)events / (double)n, sent, dead,
           (double)bytes / (double)n);
    printf("%-14s %8.0f ns/order %7.0f ns/event\n", "decode", best_dec * 1e9 / (double)n,
           best_dec * 1e9 / (double)events);
    printf("%-14s %8.0f ns/order %7.0f ns/event\n", "map", best_map * 1e9 / (double)n,
           best_map * 1e9 / (double)events);
    printf("%-14s %8.0f ns/order %7.0f ns/event\n", "decode+map", best_both * 1e9 / (double)n,
           best_both * 1e9 / (double)events);
    ts_mapped_free(&m);
    free(orders);
    free(off);
    free(len);
    free(t.refs);
    ts_buf_free(&k);
    ts_buf_free(&v);
    ts_buf_free(&all);
    ts_arena_destroy(held);
    ts_arena_destroy(keep);
    ts_arena_destroy(a);
    ts_mapper_destroy(mp);
    ts_router_destroy(router);
    ts_config_destroy(cfg);
    ts_gen_destroy(g);
    return 0;
}
