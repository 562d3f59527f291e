/*
 * tillstream/hash.h - the one string hash of the project (64-bit FNV-1a),
 * used by every hash table: the customer table, the router, the mapper's
 * and the engine's de-duplication sets, the simulator, the dead-letter
 * tool. Not a cryptographic hash: tables keyed by input data bound their
 * probe lengths by load factor, not by the hash's strength.
 *
 * Header-only (static inline): it is on the hot path of every record.
 */
#ifndef TILLSTREAM_HASH_H
#define TILLSTREAM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TS_HASH_INIT 1469598103934665603ULL

/* Folds `n` bytes into the running hash `h` (start with TS_HASH_INIT). */
static inline uint64_t ts_hash_update(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* Folds a NUL-terminated string into `h`. */
static inline uint64_t ts_hash_update_str(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Final mix so the low bits (table index = hash & mask) depend on every
 * input byte. */
static inline uint64_t ts_hash_finish(uint64_t h) { return h ^ (h >> 29); }

static inline uint64_t ts_hash_bytes(const void *p, size_t n) {
    return ts_hash_finish(ts_hash_update(TS_HASH_INIT, p, n));
}

static inline uint64_t ts_hash_str(const char *s) {
    return ts_hash_finish(ts_hash_update_str(TS_HASH_INIT, s));
}

#endif
