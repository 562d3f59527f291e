/*
 * tillstream-gen: realistic POS customers and orders for tests, demos and
 * benchmarks, reproducible by seed. Writes JSON lines (`key<TAB>value` with
 * --keys, the format `kcat -K'\t'` produces from), or the ground-truth
 * counts with --counts.
 *
 *   tillstream-gen --customers 1000 --orders 5000 --seed 42 \
 *       --out-customers c.jsonl --out-orders o.jsonl [--keys] [--counts]
 *       [--rate N]   (records per second; default as fast as possible)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/gen.h"

static void pace(double rate, uint64_t n, int64_t t0) {
    if (rate <= 0) return;
    int64_t due = t0 + (int64_t)((double)n * 1000.0 / rate);
    int64_t now = ts_now_mono_ms();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    size_t customers = 100, orders = 500;
    uint64_t seed = 1;
    double rate = 0, online = 0.15, unmapped = 0.03, nocontact = 0.02;
    const char *oc = NULL, *oo = NULL;
    bool keys = false, counts = false;
    static const char *const outlets[] = {"101", "102", "201", "202", "301"};
    static const struct option opts[] = {{"customers", 1, NULL, 'c'},
                                         {"orders", 1, NULL, 'o'},
                                         {"seed", 1, NULL, 's'},
                                         {"rate", 1, NULL, 'r'},
                                         {"online-share", 1, NULL, 'n'},
                                         {"unmapped-share", 1, NULL, 'u'},
                                         {"no-contact-share", 1, NULL, 'x'},
                                         {"out-customers", 1, NULL, 'C'},
                                         {"out-orders", 1, NULL, 'O'},
                                         {"keys", 0, NULL, 'k'},
                                         {"counts", 0, NULL, 'K'},
                                         {"help", 0, NULL, 'h'},
                                         {"version", 0, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': customers = strtoul(optarg, NULL, 10); break;
        case 'o': orders = strtoul(optarg, NULL, 10); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'r': rate = atof(optarg); break;
        case 'n': online = atof(optarg); break;
        case 'u': unmapped = atof(optarg); break;
        case 'x': nocontact = atof(optarg); break;
        case 'C': oc = optarg; break;
        case 'O': oo = optarg; break;
        case 'k': keys = true; break;
        case 'K': counts = true; break;
        case 'h':
            printf("Usage: tillstream-gen [--customers N] [--orders M] [--seed S] [--rate R]\n"
                   "  [--online-share F] [--unmapped-share F] [--no-contact-share F]\n"
                   "  [--out-customers FILE] [--out-orders FILE] [--keys] [--counts]\n"
                   "Outlets 101 102 201 202 301 (and 999: unmapped). '-' = stdout.\n");
            return 0;
        case 'V': printf("tillstream-gen %s\n", TS_VERSION); return 0;
        default: return 2;
        }
    }
    ts_gen_opts_t go = {seed, customers, outlets, 5, online, unmapped, nocontact};
    ts_gen_t *g = ts_gen_new(&go);
    FILE *fc = !oc ? NULL : strcmp(oc, "-") ? fopen(oc, "w") : stdout;
    FILE *fo = !oo ? NULL : strcmp(oo, "-") ? fopen(oo, "w") : stdout;
    if ((oc && !fc) || (oo && !fo)) {
        fprintf(stderr, "tillstream-gen: cannot open an output file\n");
        return 1;
    }
    ts_buf_t k = TS_BUF_INIT, v = TS_BUF_INIT;
    int64_t t0 = ts_now_mono_ms();
    uint64_t n = 0;
    for (size_t i = 0; i < customers; i++, n++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_customer(g, i, &k, &v);
        if (fc) fprintf(fc, "%s%s%s\n", keys ? k.data : "", keys ? "\t" : "", v.data);
        pace(rate, n, t0);
    }
    for (size_t i = 0; i < orders; i++, n++) {
        ts_buf_reset(&k);
        ts_buf_reset(&v);
        ts_gen_order(g, &k, &v);
        if (fo) fprintf(fo, "%s%s%s\n", keys ? k.data : "", keys ? "\t" : "", v.data);
        pace(rate, n, t0);
    }
    if (counts) {
        const ts_gen_counts_t *ct = ts_gen_counts(g);
        printf("{\"customers\":%llu,\"no_home_outlet\":%llu,\"unmapped_outlet\":%llu,\"no_"
               "identifier\":%llu,"
               "\"email_subscribed\":%llu,\"sms_subscribed\":%llu,\"orders\":%llu,\"voided\":%llu,"
               "\"test\":%llu,"
               "\"refunded\":%llu,\"cancelled\":%llu,\"lines\":%llu}\n",
               (unsigned long long)ct->customers, (unsigned long long)ct->no_home_outlet,
               (unsigned long long)ct->unmapped_outlet, (unsigned long long)ct->no_identifier,
               (unsigned long long)ct->email_subscribed, (unsigned long long)ct->sms_subscribed,
               (unsigned long long)ct->orders, (unsigned long long)ct->voided,
               (unsigned long long)ct->test, (unsigned long long)ct->refunded,
               (unsigned long long)ct->cancelled, (unsigned long long)ct->lines);
    }
    if (fc && fc != stdout) fclose(fc);
    if (fo && fo != stdout) fclose(fo);
    ts_buf_free(&k);
    ts_buf_free(&v);
    ts_gen_destroy(g);
    return 0;
}
