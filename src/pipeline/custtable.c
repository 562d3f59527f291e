/*
 * custtable.c - the orders consumer's customer table: customer id ->
 * {home outlet, email, phone, names}. Open addressing (linear probing,
 * backward-shift deletion: no tombstones to accumulate) over packed
 * entries: one allocation per customer holding its id and fields as
 * length-prefixed strings. See docs/customer-table.md for the measured
 * bytes per customer.
 */
#include "tillstream/custtable.h"
#include "tillstream/hash.h"

#include <stdlib.h>
#include <string.h>

enum { F_ID, F_EMAIL, F_PHONE, F_FIRST, F_LAST, F_OUTLET, F__N };

typedef struct {
    uint64_t hash;
    unsigned char *blob; /* F__N x (uint16 len, bytes, NUL); NULL = empty slot */
} slot_t;

struct ts_custtable_s {
    slot_t *slots;
    size_t cap, n;
    size_t blob_bytes;
};

static uint64_t hash(const char *s, size_t n) { return ts_hash_bytes(s, n); }

static size_t blob_size(const unsigned char *b) {
    size_t off = 0;
    for (int f = 0; f < F__N; f++) {
        uint16_t l;
        memcpy(&l, b + off, 2);
        off += 2 + l + 1;
    }
    return off;
}

/* Field f of a blob: pointer to a NUL-terminated string, or NULL when empty. */
static const char *field(const unsigned char *b, int f, size_t *len) {
    size_t off = 0;
    for (int i = 0;; i++) {
        uint16_t l;
        memcpy(&l, b + off, 2);
        if (i == f) {
            if (len) *len = l;
            return l ? (const char *)b + off + 2 : NULL;
        }
        off += 2 + l + 1;
    }
}

ts_custtable_t *ts_custtable_new(size_t expected) {
    ts_custtable_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap = 1024;
    while (t->cap < expected * 2) t->cap *= 2;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

void ts_custtable_destroy(ts_custtable_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].blob);
    free(t->slots);
    free(t);
}

static size_t find(const ts_custtable_t *t, const char *id, size_t n, uint64_t h, bool *found) {
    size_t i = h & (t->cap - 1);
    while (t->slots[i].blob) {
        if (t->slots[i].hash == h) {
            size_t l;
            const char *s = field(t->slots[i].blob, F_ID, &l);
            if (l == n && !memcmp(s, id, n)) {
                *found = true;
                return i;
            }
        }
        i = (i + 1) & (t->cap - 1);
    }
    *found = false;
    return i;
}

static ts_err_t grow(ts_custtable_t *t) {
    size_t nc = t->cap * 2;
    slot_t *ns = calloc(nc, sizeof *ns);
    if (!ns) return TS_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].blob) continue;
        size_t j = t->slots[i].hash & (nc - 1);
        while (ns[j].blob) j = (j + 1) & (nc - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = nc;
    return TS_OK;
}

ts_err_t ts_custtable_put(ts_custtable_t *t, const ts_customer_t *c) {
    if (!c->customer_id || !*c->customer_id) return TS_ERR_INVALID;
    const char *v[F__N] = {c->customer_id, c->email,     c->phone,
                           c->first_name,  c->last_name, c->home_outlet_id};
    size_t lens[F__N], total = 0;
    for (int f = 0; f < F__N; f++) {
        lens[f] = v[f] ? strlen(v[f]) : 0;
        if (lens[f] > 65535) lens[f] = 65535;
        total += 2 + lens[f] + 1;
    }
    unsigned char *b = malloc(total);
    if (!b) return TS_ERR_NOMEM;
    size_t off = 0;
    for (int f = 0; f < F__N; f++) {
        uint16_t l = (uint16_t)lens[f];
        memcpy(b + off, &l, 2);
        if (l) memcpy(b + off + 2, v[f], l);
        b[off + 2 + l] = '\0';
        off += 2 + l + 1;
    }
    if ((t->n + 1) * 10 > t->cap * 7 && grow(t) != TS_OK) {
        free(b);
        return TS_ERR_NOMEM;
    }
    uint64_t h = hash(c->customer_id, lens[F_ID]);
    bool found;
    size_t i = find(t, c->customer_id, lens[F_ID], h, &found);
    if (found) {
        t->blob_bytes -= blob_size(t->slots[i].blob);
        free(t->slots[i].blob);
    } else {
        t->n++;
    }
    t->slots[i].hash = h;
    t->slots[i].blob = b;
    t->blob_bytes += total;
    return TS_OK;
}

bool ts_custtable_delete(ts_custtable_t *t, const char *id, size_t n) {
    bool found;
    size_t i = find(t, id, n, hash(id, n), &found);
    if (!found) return false;
    t->blob_bytes -= blob_size(t->slots[i].blob);
    free(t->slots[i].blob);
    t->slots[i].blob = NULL;
    t->n--;
    /* backward-shift: move later entries of the probe run into the hole */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (t->cap - 1);
        if (!t->slots[j].blob) break;
        size_t home = t->slots[j].hash & (t->cap - 1);
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (between) continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].blob = NULL;
        hole = j;
    }
    return true;
}

bool ts_custtable_get(const ts_custtable_t *t, const char *id, ts_customer_ref_t *out) {
    if (!id) return false;
    size_t n = strlen(id);
    bool found;
    size_t i = find(t, id, n, hash(id, n), &found);
    if (!found) return false;
    const unsigned char *b = t->slots[i].blob;
    out->present = true;
    out->customer_id = field(b, F_ID, NULL);
    out->email = field(b, F_EMAIL, NULL);
    out->phone = field(b, F_PHONE, NULL);
    out->first_name = field(b, F_FIRST, NULL);
    out->last_name = field(b, F_LAST, NULL);
    out->home_outlet_id = field(b, F_OUTLET, NULL);
    return true;
}

size_t ts_custtable_size(const ts_custtable_t *t) { return t->n; }

size_t ts_custtable_memory_bytes(const ts_custtable_t *t) {
    /* blobs plus an estimated 16 bytes of malloc overhead each, plus the index */
    return t->blob_bytes + t->n * 16 + t->cap * sizeof(slot_t) + sizeof *t;
}
