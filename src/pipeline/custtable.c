/*
 * custtable.c - the orders consumer's customer table: customer id ->
 * {home outlet, email, phone, names}. Open addressing (linear probing,
 * backward-shift deletion: no tombstones to accumulate) over packed
 * entries: one allocation per customer holding its id and fields as
 * length-prefixed strings, indexed by one-word slots (address + hash tag). See
 * docs/customer-table.md for the measured bytes per customer.
 */
#include "tillstream/custtable.h"
#include "tillstream/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { F_ID, F_EMAIL, F_PHONE, F_FIRST, F_LAST, F_OUTLET, F__N };

/* A slot is one word: the blob's address, with the top 16 bits of the id's
 * hash in the address's unused top 16 bits (user-space addresses on x86-64
 * and 48-bit arm64 Linux are below 2^47), so a probe rejects a different id
 * without touching its blob, and the index costs 8 bytes a slot instead of
 * 16 (16 MiB less for a million customers). The home slot is recomputed from
 * the id when the table grows or shifts. Where a blob's address uses those
 * bits (or pointers are not 64-bit), the table stops tagging: every slot
 * holds the bare address and probes compare ids. 0 = empty slot. */
typedef uintptr_t slot_t;

#define TAG_SHIFT 48

struct ts_custtable_s {
    slot_t *slots;
    size_t cap, n;
    size_t blob_bytes;
    bool untagged; /* addresses need every bit: no tags in slots */
};

static uint64_t hash(const char *s, size_t n) { return ts_hash_bytes(s, n); }

static unsigned char *slot_blob(slot_t v) {
#if UINTPTR_MAX > 0xFFFFFFFFu
    return (unsigned char *)(v & (((uintptr_t)1 << TAG_SHIFT) - 1));
#else
    return (unsigned char *)v;
#endif
}

static slot_t slot_make(const ts_custtable_t *t, unsigned char *b, uint64_t h) {
#if UINTPTR_MAX > 0xFFFFFFFFu
    if (!t->untagged) return (uintptr_t)b | ((uintptr_t)(h >> TAG_SHIFT) << TAG_SHIFT);
#endif
    (void)t;
    (void)h;
    return (uintptr_t)b;
}

/* Could slot v hold an id with hash h? (without reading the blob) */
static bool slot_may_match(const ts_custtable_t *t, slot_t v, uint64_t h) {
#if UINTPTR_MAX > 0xFFFFFFFFu
    return t->untagged || (v >> TAG_SHIFT) == (h >> TAG_SHIFT);
#else
    (void)t, (void)v, (void)h;
    return true;
#endif
}

/* A blob's address needs the tag bits: strip every tag, tag no more. */
static void stop_tagging(ts_custtable_t *t) {
    for (size_t i = 0; i < t->cap; i++) t->slots[i] = (uintptr_t)slot_blob(t->slots[i]);
    t->untagged = true;
}

static bool address_fits(const unsigned char *b) {
#if UINTPTR_MAX > 0xFFFFFFFFu
    return ((uintptr_t)b >> TAG_SHIFT) == 0;
#else
    (void)b;
    return true;
#endif
}

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

static uint64_t blob_hash(const unsigned char *b) {
    size_t l;
    const char *id = field(b, F_ID, &l);
    return hash(id ? id : "", l);
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
    for (size_t i = 0; t->slots && i < t->cap; i++) free(slot_blob(t->slots[i]));
    free(t->slots);
    free(t);
}

static size_t find(const ts_custtable_t *t, const char *id, size_t n, uint64_t h, bool *found) {
    size_t i = h & (t->cap - 1);
    while (t->slots[i]) {
        if (slot_may_match(t, t->slots[i], h)) {
            size_t l;
            const char *s = field(slot_blob(t->slots[i]), F_ID, &l);
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
        if (!t->slots[i]) continue;
        size_t j = blob_hash(slot_blob(t->slots[i])) & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
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
    if (!t->untagged && !address_fits(b)) stop_tagging(t);
    uint64_t h = hash(c->customer_id, lens[F_ID]);
    bool found;
    size_t i = find(t, c->customer_id, lens[F_ID], h, &found);
    if (found) {
        t->blob_bytes -= blob_size(slot_blob(t->slots[i]));
        free(slot_blob(t->slots[i]));
    } else {
        t->n++;
    }
    t->slots[i] = slot_make(t, b, h);
    t->blob_bytes += total;
    return TS_OK;
}

bool ts_custtable_delete(ts_custtable_t *t, const char *id, size_t n) {
    bool found;
    size_t i = find(t, id, n, hash(id, n), &found);
    if (!found) return false;
    t->blob_bytes -= blob_size(slot_blob(t->slots[i]));
    free(slot_blob(t->slots[i]));
    t->slots[i] = 0;
    t->n--;
    /* backward-shift: move later entries of the probe run into the hole */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (t->cap - 1);
        if (!t->slots[j]) break;
        size_t home = blob_hash(slot_blob(t->slots[j])) & (t->cap - 1);
        bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (between) continue;
        t->slots[hole] = t->slots[j];
        t->slots[j] = 0;
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
    const unsigned char *b = slot_blob(t->slots[i]);
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
