/*
 * offsets.c - completion tracking per partition: a growable ring of
 * {offset, done, user} in consumption order; the commit point advances
 * over the contiguous completed prefix. O(1) per track/complete, bounded
 * by max_inflight.
 */
#include "tillstream/offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t offset;
    void *user;
    bool done;
} entry_t;

typedef struct {
    bool assigned;
    uint16_t gen;
    entry_t *ring;
    uint32_t cap;
    uint64_t head_seq; /* sequence number of ring head */
    uint32_t n;
    int64_t last_offset;
    int64_t stored; /* last stored next-offset, -1 none */
} part_t;

struct ts_offsets_s {
    part_t *parts;
    size_t n_parts;
    size_t inflight, max_inflight;
};

ts_offsets_t *ts_offsets_new(size_t max_inflight) {
    ts_offsets_t *t = calloc(1, sizeof *t);
    if (t) t->max_inflight = max_inflight ? max_inflight : 1;
    return t;
}

void ts_offsets_destroy(ts_offsets_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_parts; i++) free(t->parts[i].ring);
    free(t->parts);
    free(t);
}

static part_t *part(const ts_offsets_t *t, int32_t p) {
    return p >= 0 && (size_t)p < t->n_parts ? &t->parts[p] : NULL;
}

ts_err_t ts_offsets_assign(ts_offsets_t *t, int32_t partition) {
    if (partition < 0 || partition > 65535) return TS_ERR_INVALID;
    if ((size_t)partition >= t->n_parts) {
        size_t nn = (size_t)partition + 1;
        part_t *np = realloc(t->parts, nn * sizeof *np);
        if (!np) return TS_ERR_NOMEM;
        memset(np + t->n_parts, 0, (nn - t->n_parts) * sizeof *np);
        t->parts = np;
        t->n_parts = nn;
    }
    part_t *p = &t->parts[partition];
    t->inflight -= p->n;
    p->assigned = true;
    p->gen++;
    p->n = 0;
    p->head_seq = 0;
    p->last_offset = -1;
    p->stored = -1;
    return TS_OK;
}

void ts_offsets_revoke(ts_offsets_t *t, int32_t partition, void (*release)(void *, void *),
                       void *opaque) {
    part_t *p = part(t, partition);
    if (!p || !p->assigned) return;
    for (uint32_t i = 0; i < p->n; i++) {
        entry_t *e = &p->ring[(p->head_seq + i) % p->cap];
        if (release && e->user) release(e->user, opaque);
    }
    t->inflight -= p->n;
    p->n = 0;
    p->assigned = false;
    p->gen++;
}

bool ts_offsets_full(const ts_offsets_t *t) { return t->inflight >= t->max_inflight; }

ts_err_t ts_offsets_track(ts_offsets_t *t, int32_t partition, int64_t offset, void *user,
                          uint64_t *token) {
    part_t *p = part(t, partition);
    if (!p || !p->assigned || offset <= p->last_offset) return TS_ERR_INVALID;
    if (t->inflight >= t->max_inflight) return TS_ERR_FULL;
    if (p->n == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 64;
        entry_t *nr = malloc(nc * sizeof *nr);
        if (!nr) return TS_ERR_NOMEM;
        for (uint32_t i = 0; i < p->n; i++)
            nr[(p->head_seq + i) % nc] = p->ring[(p->head_seq + i) % p->cap];
        free(p->ring);
        p->ring = nr;
        p->cap = nc;
    }
    uint64_t seq = p->head_seq + p->n;
    p->ring[seq % p->cap] = (entry_t){offset, user, false};
    p->n++;
    p->last_offset = offset;
    t->inflight++;
    *token = ((uint64_t)(uint32_t)partition << 48) | ((uint64_t)p->gen << 32) | (seq & 0xffffffffu);
    return TS_OK;
}

int32_t ts_offsets_token_partition(uint64_t token) { return (int32_t)(token >> 48); }

static entry_t *lookup(const ts_offsets_t *t, uint64_t token, part_t **pp) {
    part_t *p = part(t, (int32_t)(token >> 48));
    if (!p || !p->assigned || (uint16_t)(token >> 32) != p->gen) return NULL;
    uint64_t seq32 = token & 0xffffffffu;
    uint64_t head32 = p->head_seq & 0xffffffffu;
    uint64_t idx = (seq32 - head32) & 0xffffffffu; /* position from head */
    if (idx >= p->n) return NULL;
    *pp = p;
    return &p->ring[(p->head_seq + idx) % p->cap];
}

void *ts_offsets_user(const ts_offsets_t *t, uint64_t token) {
    part_t *p;
    entry_t *e = lookup(t, token, &p);
    return e ? e->user : NULL;
}

bool ts_offsets_done(ts_offsets_t *t, uint64_t token, int64_t *store_offset,
                     void (*release)(void *, void *), void *opaque) {
    part_t *p;
    *store_offset = -1;
    entry_t *e = lookup(t, token, &p);
    if (!e || e->done) return false;
    e->done = true;
    while (p->n > 0) {
        entry_t *h = &p->ring[p->head_seq % p->cap];
        if (!h->done) break;
        *store_offset = h->offset + 1;
        if (release && h->user) release(h->user, opaque);
        p->head_seq++;
        p->n--;
        t->inflight--;
    }
    if (*store_offset >= 0) p->stored = *store_offset;
    return true;
}

size_t ts_offsets_inflight(const ts_offsets_t *t) { return t->inflight; }

size_t ts_offsets_partition_inflight(const ts_offsets_t *t, int32_t partition) {
    part_t *p = part(t, partition);
    return p && p->assigned ? p->n : 0;
}

int64_t ts_offsets_committed(const ts_offsets_t *t, int32_t partition) {
    part_t *p = part(t, partition);
    return p ? p->stored : -1;
}
