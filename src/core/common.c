/*
 * common.c - error names, dead-letter reason names, ts_buf_t, the
 * per-record arena and clocks. Everything here is used on hot paths:
 * buffers and arenas are reused so steady-state processing does not
 * allocate.
 */
#include "tillstream/common.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

const char *ts_err_name(ts_err_t e) {
    switch (e) {
    case TS_OK: return "OK";
    case TS_ERR_INVALID: return "INVALID";
    case TS_ERR_CONFIG: return "CONFIG";
    case TS_ERR_NOT_FOUND: return "NOT_FOUND";
    case TS_ERR_REJECTED: return "REJECTED";
    case TS_ERR_TOO_LARGE: return "TOO_LARGE";
    case TS_ERR_TRANSIENT: return "TRANSIENT";
    case TS_ERR_THROTTLED: return "THROTTLED";
    case TS_ERR_FULL: return "FULL";
    case TS_ERR_WITHDRAWN: return "WITHDRAWN";
    case TS_ERR_NOMEM: return "NOMEM";
    case TS_ERR_IO: return "IO";
    case TS_ERR_INTERNAL: return "INTERNAL";
    }
    return "UNKNOWN";
}

#define NAME_OF(name) #name,
static const char *const reason_names[TS_REASON__COUNT] = {TS_REASONS(NAME_OF)};

const char *ts_reason_name(ts_reason_t r) {
    if ((unsigned)r >= TS_REASON__COUNT) return "UNKNOWN";
    return reason_names[r];
}

ts_reason_t ts_reason_parse(const char *name) {
    if (!name) return TS_REASON_NONE;
    for (int i = 1; i < TS_REASON__COUNT; i++)
        if (strcmp(reason_names[i], name) == 0) return (ts_reason_t)i;
    return TS_REASON_NONE;
}

ts_err_t ts_seterr(char *errstr, size_t errstr_size, ts_err_t code, const char *fmt, ...) {
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

void *ts_zalloc(size_t size, const char *what, char *errstr, size_t errstr_size) {
    void *p = calloc(1, size);
    if (!p)
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "%s%sout of memory", what ? what : "",
                  what ? ": " : "");
    return p;
}

void ts_strv_free(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* ---- ts_buf_t ---------------------------------------------------------- */

void ts_buf_init(ts_buf_t *b) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ts_buf_free(ts_buf_t *b) {
    free(b->data);
    ts_buf_init(b);
}

int ts_buf_reserve(ts_buf_t *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + extra + 1) {
        if (ncap > SIZE_MAX / 2) return -1;
        ncap *= 2;
    }
    char *p = realloc(b->data, ncap);
    if (!p) return -1;
    if (b->cap == 0) p[0] = '\0';
    b->data = p;
    b->cap = ncap;
    return 0;
}

int ts_buf_append(ts_buf_t *b, const void *p, size_t n) {
    if (ts_buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ts_buf_puts(ts_buf_t *b, const char *s) { return ts_buf_append(b, s, strlen(s)); }

int ts_buf_putc(ts_buf_t *b, char c) { return ts_buf_append(b, &c, 1); }

int ts_buf_printf(ts_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof tmp) return ts_buf_append(b, tmp, (size_t)n);
    if (ts_buf_reserve(b, (size_t)n) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ts_buf_urlenc(ts_buf_t *b, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int rc = isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~'
                     ? ts_buf_putc(b, (char)ch)
                     : ts_buf_printf(b, "%%%02X", ch);
        if (rc) return -1;
    }
    return 0;
}

/* ---- ts_arena_t -------------------------------------------------------- */

typedef struct arena_block_s {
    struct arena_block_s *next;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
} arena_block_t;

struct ts_arena_s {
    arena_block_t *head;  /* block being filled */
    arena_block_t *first; /* chain of all blocks, kept across resets */
    size_t block_size;
    size_t used_total;
};

ts_arena_t *ts_arena_new(size_t block_size) {
    ts_arena_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size ? block_size : 16384;
    return a;
}

void ts_arena_destroy(ts_arena_t *a) {
    if (!a) return;
    arena_block_t *b = a->first;
    while (b) {
        arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

void ts_arena_reset(ts_arena_t *a) {
    for (arena_block_t *b = a->first; b; b = b->next) b->used = 0;
    a->head = a->first;
    a->used_total = 0;
}

void *ts_arena_alloc(ts_arena_t *a, size_t n) {
    n = (n + 7u) & ~(size_t)7u;
    if (n == 0) n = 8;
    arena_block_t *b = a->head;
    /* walk kept blocks before allocating a new one */
    while (b && b->size - b->used < n) {
        if (!b->next) break;
        b = b->next;
    }
    if (!b || b->size - b->used < n) {
        size_t sz = n > a->block_size ? n : a->block_size;
        arena_block_t *nb = malloc(sizeof *nb + sz);
        if (!nb) return NULL;
        nb->size = sz;
        nb->used = 0;
        nb->next = NULL;
        if (b)
            b->next = nb;
        else
            a->first = nb;
        b = nb;
    }
    a->head = b;
    void *p = b->data + b->used;
    b->used += n;
    a->used_total += n;
    return p;
}

char *ts_arena_strndup(ts_arena_t *a, const char *s, size_t n) {
    char *p = ts_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ts_arena_strdup(ts_arena_t *a, const char *s) { return ts_arena_strndup(a, s, strlen(s)); }

size_t ts_arena_used(const ts_arena_t *a) { return a->used_total; }

/* ---- clocks -------------------------------------------------------------- */

int64_t ts_now_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ts_now_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ts_clock_mono(void *opaque) {
    (void)opaque;
    return ts_now_mono_ms();
}

/* ---- files ------------------------------------------------------------- */

ts_err_t ts_file_read(const char *path, size_t max, ts_buf_t *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return TS_ERR_IO;
    char chunk[8192];
    size_t n, start = out->len;
    ts_err_t rc = TS_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len - start + n > max) {
            rc = TS_ERR_TOO_LARGE;
            break;
        }
        if (ts_buf_append(out, chunk, n)) {
            rc = TS_ERR_NOMEM;
            break;
        }
    }
    if (rc == TS_OK && ferror(f)) rc = TS_ERR_IO;
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc == TS_OK && ts_buf_reserve(out, 1)) rc = TS_ERR_NOMEM;
    if (rc == TS_OK) out->data[out->len] = '\0';
    return rc;
}

void ts_file_sig(const char *path, ts_file_sig_t *out) {
    struct stat st;
    *out = (ts_file_sig_t){0};
    if (stat(path, &st) != 0) return;
    *out = (ts_file_sig_t){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (int64_t)st.st_size,
                           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
}

bool ts_file_sig_same(const ts_file_sig_t *a, const ts_file_sig_t *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

char *ts_secret_file_read(const char *path) {
    ts_buf_t b = TS_BUF_INIT;
    ts_err_t rc = ts_file_read(path, 64u << 10, &b); /* PEM keys fit; a secret is never more */
    if (rc != TS_OK) {
        if (b.data) memset(b.data, 0, b.cap);
        ts_buf_free(&b);
        errno = rc == TS_ERR_TOO_LARGE ? EFBIG : rc == TS_ERR_NOMEM ? ENOMEM : errno;
        return NULL;
    }
    size_t n = b.len, lead = 0;
    while (n > 0 && isspace((unsigned char)b.data[n - 1])) n--;
    while (lead < n && isspace((unsigned char)b.data[lead])) lead++;
    char *s = strndup(b.data + lead, n - lead);
    memset(b.data, 0, b.cap);
    ts_buf_free(&b);
    if (!s) errno = ENOMEM;
    return s;
}

bool ts_mem_release(void) {
#ifdef __GLIBC__
    return malloc_trim(0) == 1;
#else
    return false;
#endif
}
