/*
 * gen.c - deterministic POS data (xorshift PRNG seeded by the caller):
 * the generator behind tillstream-gen, benchmarks and demos.
 */
#include "tillstream/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/jw.h"

#define GEN_TIME_CYCLE 500000 /* orders before the order times start over */

struct ts_gen_s {
    ts_gen_opts_t o;
    uint64_t s;
    uint64_t order_no;
    ts_gen_counts_t c;
};

static uint64_t next(ts_gen_t *g) {
    uint64_t x = g->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g->s = x;
}
static double unit(ts_gen_t *g) { return (double)(next(g) >> 11) / (double)(1ULL << 53); }
static size_t pick(ts_gen_t *g, size_t n) { return (size_t)(next(g) % n); }

static const char *const FIRST[] = {"Olivia", "Jack",   "Mia",   "Noah", "Charlotte", "William",
                                    "Amelia", "Oliver", "Isla",  "Leo",  "Ava",       "Henry",
                                    "Grace",  "Thomas", "Chloe", "Lucas"};
static const char *const LAST[] = {"Smith", "Nguyen", "Williams", "Brown",
                                   "Jones", "Taylor", "Wilson",   "Martin",
                                   "Lee",   "Walker", "Anderson", "Thompson"};
static const struct {
    const char *id, *sku, *name, *price, *cat1, *cat2, *brand;
} PRODUCTS[] = {
    {"P100", "TEE-BLK-M", "Classic Tee Black M", "29.95", "Apparel", "Tops", "Tillwear"},
    {"P101", "TEE-WHT-M", "Classic Tee White M", "29.95", "Apparel", "Tops", "Tillwear"},
    {"P200", "JEAN-SLIM-32", "Slim Jean 32", "89.00", "Apparel", "Denim", "Tillwear"},
    {"P300", "CAP-LOGO", "Logo Cap", "24.50", "Accessories", "Hats", "Capco"},
    {"P400", "SOCK-3PK", "Socks 3-pack", "15.00", "Accessories", "Socks", "Footly"},
    {"P500", "JKT-RAIN", "Rain Jacket", "199.99", "Apparel", "Outerwear", "Stormline"},
    {"P600", "BAG-TOTE", "Canvas Tote", "35.00", "Accessories", "Bags", "Carryall"},
};
#define N_PRODUCTS (sizeof PRODUCTS / sizeof *PRODUCTS)

ts_gen_t *ts_gen_new(const ts_gen_opts_t *o) {
    ts_gen_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->o = *o;
    g->s = o->seed ? o->seed * 0x9E3779B97F4A7C15ULL : 0x2545F4914F6CDD1DULL;
    return g;
}
void ts_gen_destroy(ts_gen_t *g) { free(g); }
const ts_gen_counts_t *ts_gen_counts(const ts_gen_t *g) { return &g->c; }

/* A customer's attributes depend only on (seed, i): orders can re-derive them. */
typedef struct {
    char id[24], email[64], phone[24];
    const char *first, *last, *outlet;
    int email_consent, sms_consent; /* -1 null, 0 false, 1 true */
    bool has_email, has_phone;
} cust_t;

static void derive(const ts_gen_t *g, size_t i, cust_t *c) {
    ts_gen_t t = *g; /* a private PRNG stream for customer i */
    t.s = (g->o.seed + 1) * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)i * 0xBF58476D1CE4E5B9ULL);
    if (!t.s) t.s = 1;
    for (int k = 0; k < 3; k++) next(&t);
    snprintf(c->id, sizeof c->id, "C%06zu", i);
    c->first = FIRST[pick(&t, sizeof FIRST / sizeof *FIRST)];
    c->last = LAST[pick(&t, sizeof LAST / sizeof *LAST)];
    double r = unit(&t);
    c->outlet = r < g->o.online_share ? NULL
                : r < g->o.online_share + g->o.unmapped_share
                    ? "999"
                    : g->o.outlets[pick(&t, g->o.n_outlets)];
    bool no_contact = unit(&t) < g->o.no_contact_share;
    c->has_email = !no_contact && unit(&t) < 0.9;
    c->has_phone = !no_contact && (!c->has_email || unit(&t) < 0.6);
    snprintf(c->email, sizeof c->email, "%c.%s%zu@example.com", c->first[0] + 32, c->last, i);
    for (char *p = c->email; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p += 32;
    /* 0400-0439: mobile ranges libphonenumber knows as assigned (0441,
     * 0453... are not, and would be dropped as invalid) */
    snprintf(c->phone, sizeof c->phone, "04%02u %03u %03u", (unsigned)(i % 40),
             (unsigned)(i / 100 % 1000), (unsigned)(i % 997));
    c->email_consent = (int)pick(&t, 3) - 1;
    c->sms_consent = (int)pick(&t, 3) - 1;
}

static void money(ts_jw_t *w, const char *k, long cents) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld.%02ld", cents / 100, cents % 100);
    ts_jw_kv_str(w, k, buf);
}

static void tri(ts_jw_t *w, const char *k, int v) {
    ts_jw_key(w, k);
    if (v < 0)
        ts_jw_null(w);
    else
        ts_jw_bool(w, v == 1);
}

void ts_gen_customer(ts_gen_t *g, size_t i, ts_buf_t *key, ts_buf_t *value) {
    cust_t c;
    derive(g, i, &c);
    ts_buf_puts(key, c.id);
    ts_jw_t w;
    ts_jw_init_obj(&w, value);
    ts_jw_kv_str(&w, "customer_id", c.id);
    ts_jw_key(&w, "email");
    ts_jw_str(&w, c.has_email ? c.email : NULL);
    ts_jw_key(&w, "phone");
    ts_jw_str(&w, c.has_phone ? c.phone : NULL);
    ts_jw_kv_str(&w, "first_name", c.first);
    ts_jw_kv_str(&w, "last_name", c.last);
    ts_jw_key(&w, "home_outlet_id");
    ts_jw_str(&w, c.outlet);
    tri(&w, "email_consent", c.email_consent);
    tri(&w, "sms_consent", c.sms_consent);
    ts_jw_key(&w, "billing_address");
    ts_jw_obj_open(&w);
    char line1[32];
    snprintf(line1, sizeof line1, "%zu George St", i % 500 + 1);
    ts_jw_kv_str(&w, "line1", line1);
    ts_jw_kv_str(&w, "city", "Sydney");
    ts_jw_kv_str(&w, "region", "NSW");
    ts_jw_kv_str(&w, "postcode", "2000");
    ts_jw_kv_str(&w, "country", "AU");
    ts_jw_obj_close(&w);
    ts_jw_key(&w, "loyalty_member");
    ts_jw_bool(&w, i % 3 == 0);
    ts_jw_key(&w, "created_at");
    ts_jw_int(&w, 1735689600000LL + (int64_t)(i % 100000) * 60000);
    ts_jw_obj_close(&w);
    g->c.customers++;
    if (!c.outlet)
        g->c.no_home_outlet++;
    else if (!strcmp(c.outlet, "999"))
        g->c.unmapped_outlet++;
    if (!c.has_email && !c.has_phone) g->c.no_identifier++;
    if (c.email_consent == 1 && c.has_email) g->c.email_subscribed++;
    if (c.sms_consent == 1 && c.has_phone) g->c.sms_subscribed++;
}

void ts_gen_order(ts_gen_t *g, ts_buf_t *key, ts_buf_t *value) {
    uint64_t n = g->order_no++;
    /* repeat customers: a quarter of customers place most orders */
    size_t nc = g->o.customers ? g->o.customers : 1;
    size_t ci = unit(g) < 0.7 ? pick(g, nc / 4 + 1) : pick(g, nc);
    cust_t c;
    derive(g, ci, &c);
    double r = unit(g);
    const char *status = r < 0.80   ? "completed"
                         : r < 0.86 ? "fulfilled"
                         : r < 0.90 ? "cancelled"
                         : r < 0.96 ? "refunded"
                                    : "voided";
    bool test = unit(g) < 0.01;
    const char *outlet = g->o.outlets[pick(g, g->o.n_outlets)];
    char oid[32];
    snprintf(oid, sizeof oid, "O%08llu", (unsigned long long)n);
    ts_buf_puts(key, oid);
    size_t nl = 1 + pick(g, 4);
    size_t first = pick(g, N_PRODUCTS);
    long total_cents = 0;
    ts_jw_t w;
    ts_jw_init_obj(&w, value);
    ts_jw_kv_str(&w, "order_id", oid);
    ts_jw_kv_str(&w, "customer_id", c.id);
    ts_jw_kv_str(&w, "outlet_id", outlet);
    ts_jw_kv_str(&w, "channel", c.outlet ? "in_store" : "online");
    ts_jw_kv_str(&w, "status", status);
    ts_jw_key(&w, "is_test");
    ts_jw_bool(&w, test);
    ts_jw_key(&w, "occurred_at");
    /* from 2026-11-01, ~every 37 s, over again every GEN_TIME_CYCLE orders
     * (~214 days): a long run stays inside Klaviyo's window (at most a year
     * ahead); unique_ids come from the order ids, never the time */
    ts_jw_int(&w, 1793491200000LL + (int64_t)(n % GEN_TIME_CYCLE) * 37000);
    ts_jw_kv_str(&w, "currency", "AUD");
    ts_jw_key(&w, "lines");
    ts_jw_arr_open(&w);
    for (size_t k = 0; k < nl; k++) {
        /* the second line repeats the first SKU now and then */
        size_t p = k == 1 && unit(g) < 0.2 ? first : (first + k) % N_PRODUCTS;
        int qty = 1 + (int)pick(g, 3);
        long cents = 0;
        const char *pr = PRODUCTS[p].price;
        for (const char *q = pr; *q; q++)
            if (*q != '.') cents = cents * 10 + (*q - '0');
        total_cents += cents * qty;
        ts_jw_obj_open(&w);
        char line_id[24];
        snprintf(line_id, sizeof line_id, "%zu", k + 1);
        ts_jw_kv_str(&w, "line_id", line_id); /* ids are strings in the contract */
        ts_jw_kv_str(&w, "product_id", PRODUCTS[p].id);
        ts_jw_kv_str(&w, "sku", PRODUCTS[p].sku);
        ts_jw_kv_str(&w, "name", PRODUCTS[p].name);
        ts_jw_key(&w, "quantity");
        ts_jw_int(&w, qty);
        ts_jw_kv_str(&w, "unit_price", pr);
        money(&w, "row_total", cents * qty);
        ts_jw_key(&w, "categories");
        ts_jw_arr_open(&w);
        ts_jw_str(&w, PRODUCTS[p].cat1);
        ts_jw_str(&w, PRODUCTS[p].cat2);
        ts_jw_arr_close(&w);
        ts_jw_kv_str(&w, "brand", PRODUCTS[p].brand);
        ts_jw_obj_close(&w);
    }
    ts_jw_arr_close(&w);
    money(&w, "total", total_cents);
    money(&w, "tax", total_cents / 11); /* GST-inclusive prices */
    if (!strcmp(status, "refunded") || !strcmp(status, "cancelled")) {
        ts_jw_key(&w, "refund");
        ts_jw_obj_open(&w);
        if (!strcmp(status, "refunded")) {
            char rid[32];
            snprintf(rid, sizeof rid, "R%08llu", (unsigned long long)n);
            ts_jw_kv_str(&w, "refund_id", rid);
        }
        ts_jw_kv_str(&w, "reason", unit(g) < 0.5 ? "Faulty" : "Changed mind");
        ts_jw_obj_close(&w);
    }
    ts_jw_obj_close(&w);
    g->c.orders++;
    g->c.lines += nl;
    if (test) g->c.test++;
    if (!strcmp(status, "voided")) g->c.voided++;
    if (!strcmp(status, "refunded")) g->c.refunded++;
    if (!strcmp(status, "cancelled")) g->c.cancelled++;
}
