/*
 * tillstream/common.h - error codes, dead-letter reasons, growable buffers
 * and the per-record arena shared by every module.
 *
 * Error convention (librdkafka style): functions return ts_err_t (0 = ok)
 * and fill a caller-owned `char *errstr, size_t errstr_size` with a
 * human-readable message. Whether a failure is worth retrying is part of
 * the code (ts_err_retryable()), because that decides "retry and pause"
 * versus "dead-letter". Library code never exits and never prints to
 * stdout.
 */
#ifndef TILLSTREAM_COMMON_H
#define TILLSTREAM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TS_OK = 0,
    /* permanent: the input or config is wrong; retrying cannot help */
    TS_ERR_INVALID = 1,   /* bad input record / bad argument */
    TS_ERR_CONFIG = 2,    /* bad configuration (maps to exit code 2) */
    TS_ERR_NOT_FOUND = 3, /* e.g. schema id unknown to the registry (404) */
    TS_ERR_REJECTED = 4,  /* Klaviyo answered 4xx (not 429) */
    TS_ERR_TOO_LARGE = 5, /* payload over a Klaviyo limit */
    /* retryable: the world is temporarily unable */
    TS_ERR_TRANSIENT = 100, /* 5xx, timeout, connection error, outage */
    TS_ERR_THROTTLED = 101, /* 429 / local rate limit */
    TS_ERR_FULL = 102,      /* backpressure: queue full, try later */
    TS_ERR_WITHDRAWN = 103, /* withdrawn before it was sent (revoked partition): the new
                               owner re-consumes it; neither complete nor dead-letter */
    /* fatal for the process */
    TS_ERR_NOMEM = 200,
    TS_ERR_IO = 201,
    TS_ERR_INTERNAL = 202
} ts_err_t;

/* True for codes that must be retried (and never dead-lettered). */
static inline bool ts_err_retryable(ts_err_t e) {
    return e >= TS_ERR_TRANSIENT && e < TS_ERR_NOMEM;
}
const char *ts_err_name(ts_err_t e);

/* Dead-letter reasons: a closed, documented set (docs/dead-letter.md).
 * The string form (ts_reason_name) is the `reason` header value and is a
 * contract users alert on: never rename, only add. */
#define TS_REASONS(X)                                                                              \
    X(NONE)                                                                                        \
    X(NO_HOME_OUTLET)                                                                              \
    X(UNMAPPED_OUTLET)                                                                             \
    X(NO_PROFILE_IDENTIFIER)                                                                       \
    X(UNKNOWN_CUSTOMER)                                                                            \
    X(DECODE_ERROR)                                                                                \
    X(SCHEMA_NOT_FOUND)                                                                            \
    X(KLAVIYO_REJECTED)                                                                            \
    X(PAYLOAD_TOO_LARGE)
/* TS_REASON_NONE = 0, TS_REASON_NO_HOME_OUTLET, ...: the list above, in order. */
#define TS_REASON_ITEM_(name) TS_REASON_##name,
typedef enum { TS_REASONS(TS_REASON_ITEM_) TS_REASON__COUNT } ts_reason_t;
const char *ts_reason_name(ts_reason_t r);
/* Parses a reason name; returns TS_REASON_NONE when unknown. */
ts_reason_t ts_reason_parse(const char *name);

/* Writes a formatted message into a caller-owned buffer (always
 * NUL-terminated when errstr_size > 0). Returns `code` for chaining:
 *   return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "x: %s", y); */
ts_err_t ts_seterr(char *errstr, size_t errstr_size, ts_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first line of a _new: calloc(1, size), or NULL with errstr set to
 * "<what>: out of memory" ("out of memory" when what is NULL). The caller
 * frees the memory. */
void *ts_zalloc(size_t size, const char *what, char *errstr, size_t errstr_size);

/* Frees the n strings of v and v itself (NULL v: nothing). */
void ts_strv_free(char **v, size_t n);

/* ---- intrusive singly linked lists ----------------------------------- */
/* Appends `node` to the list `head`..`tail` linked through its member
 * `next` (which the caller has cleared): FIFO queues of held messages,
 * pending writes, metric series. Arguments are plain lvalues, evaluated
 * more than once. */
#define TS_LIST_APPEND(head, tail, node, next)                                                     \
    do {                                                                                           \
        if (tail)                                                                                  \
            (tail)->next = (node);                                                                 \
        else                                                                                       \
            (head) = (node);                                                                       \
        (tail) = (node);                                                                           \
    } while (0)

/* ---- ts_buf_t: growable byte buffer, reused across records ------------ */
typedef struct ts_buf_s {
    char *data; /* owned; always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
} ts_buf_t;

#define TS_BUF_INIT                                                                                \
    { NULL, 0, 0 }
void ts_buf_init(ts_buf_t *b);
/* Frees the storage; the struct itself belongs to the caller. */
void ts_buf_free(ts_buf_t *b);
/* Keeps the storage, forgets the content (the hot-path "clear"). */
static inline void ts_buf_reset(ts_buf_t *b) {
    b->len = 0;
    if (b->cap) b->data[0] = '\0';
}
/* All appenders return 0, or -1 on allocation failure (buffer unchanged). */
int ts_buf_reserve(ts_buf_t *b, size_t extra);
int ts_buf_append(ts_buf_t *b, const void *p, size_t n);
int ts_buf_puts(ts_buf_t *b, const char *s);
int ts_buf_putc(ts_buf_t *b, char c);
int ts_buf_printf(ts_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s percent-encoded for a URL's query: every byte but RFC 3986's
 * unreserved ones (A-Z a-z 0-9 - _ . ~) as %XX. */
int ts_buf_urlenc(ts_buf_t *b, const char *s);

/* ---- files ------------------------------------------------------------- */
/* Appends the whole file to `out` (NUL-terminated). TS_ERR_IO when it cannot
 * be opened or read (errno kept), TS_ERR_TOO_LARGE past `max` bytes,
 * TS_ERR_NOMEM. */
ts_err_t ts_file_read(const char *path, size_t max, ts_buf_t *out);
/* A secret (API key, password, PEM) from a file: at most 64 KiB, surrounding
 * whitespace and newlines trimmed; the read buffer is wiped. Returns a
 * malloc'd string the caller frees (and should wipe), or NULL with errno
 * set (ENOENT, EACCES, EFBIG, ...). */
char *ts_secret_file_read(const char *path);
/* What tells a file's new content from its old without reading it: device,
 * inode (the kubelet and `mv` write a new one), size and mtime. All zero
 * when the file cannot be stat'ed. */
typedef struct {
    uint64_t dev, ino;
    int64_t size, mtime_ns;
} ts_file_sig_t;
void ts_file_sig(const char *path, ts_file_sig_t *out);
bool ts_file_sig_same(const ts_file_sig_t *a, const ts_file_sig_t *b);

/* ---- ts_arena_t: bump allocator for one record's strings -------------- */
/* Decoders put a record's strings and arrays here; ts_arena_reset() frees
 * them all at once, so decoding a record costs no malloc once the arena
 * has grown to the largest record seen. Blocks are kept across resets. */
typedef struct ts_arena_s ts_arena_t;
ts_arena_t *ts_arena_new(size_t block_size);
void ts_arena_destroy(ts_arena_t *a);
void ts_arena_reset(ts_arena_t *a);
/* Returns 8-byte aligned memory valid until the next reset, or NULL. */
void *ts_arena_alloc(ts_arena_t *a, size_t n);
char *ts_arena_strndup(ts_arena_t *a, const char *s, size_t n);
char *ts_arena_strdup(ts_arena_t *a, const char *s);
/* Bytes currently handed out (for memory accounting). */
size_t ts_arena_used(const ts_arena_t *a);

/* Monotonic and wall clocks in milliseconds. Modules that need time take a
 * ts_clock_fn so tests can inject a fake clock instead of sleeping. */
typedef int64_t (*ts_clock_fn)(void *opaque);
int64_t ts_now_mono_ms(void);
int64_t ts_now_wall_ms(void);
int64_t ts_clock_mono(void *opaque); /* ts_clock_fn adapter for ts_now_mono_ms */

/* ---- the C library's heap ------------------------------------------- */
/* Asks the C library to give the memory it holds freed but unreturned back
 * to the kernel (glibc: malloc_trim(0) over every arena; elsewhere nothing).
 * For after a phase that freed much at once (the customer table's restore:
 * librdkafka's fetch buffers); costs milliseconds per GiB of heap, so never
 * on a hot path. Returns true when the C library says it released memory.
 * Any thread. */
bool ts_mem_release(void);

#ifdef __cplusplus
}
#endif
#endif
