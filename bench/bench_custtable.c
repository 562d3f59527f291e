/*
 * bench_custtable - memory of the orders consumer's customer table.
 *   bench_custtable [N=1000000]
 * Inserts N customers with realistic field sizes and reports the table's
 * own accounting and the process RSS growth, per customer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/custtable.h"

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    long r0 = rss_kb();
    ts_custtable_t *t = ts_custtable_new(0);
    char id[32], email[64], phone[24];
    static const char *outlets[] = {"101", "102", "201", "202", "301"};
    ts_customer_t c;
    memset(&c, 0, sizeof c);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "C%07zu", i);
        snprintf(email, sizeof email, "customer%zu@example.com", i);
        snprintf(phone, sizeof phone, "+614%08zu", i % 100000000);
        c.customer_id = id;
        c.email = email;
        c.phone = phone;
        c.first_name = "Olivia";
        c.last_name = "Nguyen";
        c.home_outlet_id = i % 10 ? outlets[i % 5] : NULL;
        if (ts_custtable_put(t, &c) != TS_OK) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long r1 = rss_kb();
    size_t mem = ts_custtable_memory_bytes(t);
    double secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("customers=%zu table_bytes=%zu (%.1f B/customer) rss_growth=%ld KiB (%.1f B/customer) "
           "insert=%.0f/s\n",
           ts_custtable_size(t), mem, (double)mem / (double)n, r1 - r0,
           (double)(r1 - r0) * 1024.0 / (double)n, (double)n / secs);
    ts_custtable_destroy(t);
    return 0;
}
