/*
 * jw.c - streaming JSON writer. Writes straight into a ts_buf_t with a
 * small nesting stack for commas; no tree, no allocation per value.
 * Invalid UTF-8 is replaced by U+FFFD so bodies are always valid JSON.
 */
#include "tillstream/jw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void ts_jw_init(ts_jw_t *w, ts_buf_t *out) {
    w->out = out;
    w->depth = 0;
    w->first[0] = true;
    w->after_key = false;
    w->failed = false;
    w->max_str = 0;
    w->truncated = false;
}

void ts_jw_init_obj(ts_jw_t *w, ts_buf_t *out) {
    ts_jw_init(w, out);
    ts_jw_obj_open(w);
}

/* Appends n bytes; the common case (room left) is a memcpy, no call. */
static inline void put(ts_jw_t *w, const char *s, size_t n) {
    ts_buf_t *b = w->out;
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else if (ts_buf_append(b, s, n) != 0) {
        w->failed = true;
    }
}

/* Comma handling before a value or key at the current level. */
static void pre_value(ts_jw_t *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth]) put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_(ts_jw_t *w, char c) {
    pre_value(w);
    put(w, &c, 1);
    if (w->depth + 1 >= TS_JW_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    w->first[++w->depth] = true;
}

static void close_(ts_jw_t *w, char c) {
    put(w, &c, 1);
    if (w->depth > 0) w->depth--;
}

void ts_jw_obj_open(ts_jw_t *w) { open_(w, '{'); }
void ts_jw_obj_close(ts_jw_t *w) { close_(w, '}'); }
void ts_jw_arr_open(ts_jw_t *w) { open_(w, '['); }
void ts_jw_arr_close(ts_jw_t *w) { close_(w, ']'); }

/* Bytes copied as they are: printable ASCII but '"' and '\\' (non-ASCII
 * bytes are copied too once validated as UTF-8). */
static inline bool plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* Eight plain bytes at p? One 64-bit word tested for any byte >= 0x80,
 * < 0x20, '"' or '\\' (the exact "has less than" / "has zero byte" word
 * tricks): text is mostly plain ASCII, and the byte loop was the single
 * biggest function of the orders path by instructions (callgrind). */
static inline bool plain_word(uint64_t v) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q, b;
    q = v ^ (ones * '"');
    b = v ^ (ones * '\\');
    return ((v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high) == 0;
}
static inline bool plain8(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return plain_word(v);
}

#ifdef __SSE2__
/* Sixteen plain bytes at p? One SSE2 compare each for '"' and '\\', and a
 * signed one for the rest: bytes below 0x20 and from 0x80 (negative as
 * signed) are both less than 0x20. */
static inline bool plain16(const unsigned char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    return _mm_movemask_epi8(bad) == 0;
}
#endif

/* No byte of p[0..n) to escape or validate (all plain)? Blocks of 16
 * (SSE2) or words of eight, the tail as the last block (overlapping,
 * already plain) when there are that many bytes; shorter text (most ids)
 * as one word: two overlapping 4-byte loads, or for 1-3 bytes the first,
 * middle and last byte (that is all of them) padded with plain 'a's. */
static inline __attribute__((always_inline)) bool all_plain(const unsigned char *p, size_t n) {
#ifdef __SSE2__
    if (n >= 16) {
        for (size_t i = 0; i + 16 <= n; i += 16)
            if (!plain16(p + i)) return false;
        return plain16(p + n - 16);
    }
#endif
    if (n >= 8) {
        for (size_t i = 0; i + 8 <= n; i += 8)
            if (!plain8(p + i)) return false;
        return plain8(p + n - 8);
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return plain_word(lo | (uint64_t)hi << 32);
    }
    if (n == 0) return true;
    return plain_word(0x6161616161000000u | p[0] | (uint64_t)p[n / 2] << 8 |
                      (uint64_t)p[n - 1] << 16);
}

int ts_json_escape(ts_buf_t *out, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    if (ts_buf_reserve(out, n + 2) != 0) return -1;
    if (all_plain(p, n)) { /* the common case: one copy */
        memcpy(out->data + out->len, s, n);
        out->len += n;
        out->data[out->len] = '\0';
        return 0;
    }
    while (i < n) {
        /* copy the longest run of plain bytes and valid UTF-8 at once */
        size_t start = i;
        for (;;) {
            while (i + 8 <= n && plain8(p + i)) i += 8;
            while (i < n && plain(p[i])) i++;
            if (i < n && p[i] >= 0x80) {
                size_t l = ts_utf8_seq(p + i, n - i);
                if (l) {
                    i += l;
                    continue;
                }
            }
            break;
        }
        if (i > start) { /* room reserved above: n + 2 covers the plain bytes */
            size_t run = i - start;
            if (out->len + run >= out->cap && ts_buf_reserve(out, run) != 0) return -1;
            memcpy(out->data + out->len, s + start, run);
            out->len += run;
            out->data[out->len] = '\0';
        }
        if (i == n) break;
        unsigned char c = p[i++];
        char ubuf[8];
        const char *esc;
        size_t el = 2;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                static const char hex[] = "0123456789abcdef";
                memcpy(ubuf, "\\u00", 4);
                ubuf[4] = hex[c >> 4];
                ubuf[5] = hex[c & 15];
                esc = ubuf;
                el = 6;
            } else {
                esc = "\xEF\xBF\xBD"; /* U+FFFD for an invalid byte */
                el = 3;
            }
        }
        if (ts_buf_append(out, esc, el) != 0) return -1;
    }
    return 0;
}

void ts_jw_key(ts_jw_t *w, const char *key) {
    pre_value(w);
    put(w, "\"", 1);
    if (ts_json_escape(w->out, key, strlen(key)) != 0) w->failed = true;
    put(w, "\":", 2);
    w->after_key = true;
}

void ts_jw_key_raw_put(ts_jw_t *w, const char *quoted, size_t n) {
    pre_value(w);
    put(w, quoted, n);
    w->after_key = true;
}

/* How many input bytes of s[0..n) fit `budget` bytes of string text once
 * written (an invalid byte becomes the 3-byte U+FFFD), never splitting a
 * character; *all = whether the whole input fits. */
static size_t fit(const char *s, size_t n, size_t budget, bool *all) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, outlen = 0;
    while (i < n) {
        size_t l = p[i] < 0x80 ? 1 : ts_utf8_seq(p + i, n - i);
        size_t o = l ? l : 3;
        if (outlen + o > budget) break;
        outlen += o;
        i += l ? l : 1;
    }
    *all = i == n;
    return i;
}

/* A string value after its comma: escaped, cut at the limit. Apart so
 * that ts_jw_strn's plain path stays a small function. */
static __attribute__((noinline)) void strn_escaped(ts_jw_t *w, const char *s, size_t n) {
    put(w, "\"", 1);
    /* only text over a third of the limit can exceed it (U+FFFD triples
     * an invalid byte), so short strings skip the measuring walk */
    if (w->max_str && n > w->max_str / 3) {
        bool all;
        size_t keep = fit(s, n, w->max_str, &all);
        if (!all) {
            keep = fit(s, keep, w->max_str - (sizeof TS_JW_TRUNC_MARKER - 1), &all);
            if (ts_json_escape(w->out, s, keep) != 0) w->failed = true;
            put(w, TS_JW_TRUNC_MARKER "\"", sizeof TS_JW_TRUNC_MARKER);
            w->truncated = true;
            return;
        }
    }
    if (ts_json_escape(w->out, s, n) != 0) w->failed = true;
    put(w, "\"", 1);
}

void ts_jw_strn(ts_jw_t *w, const char *s, size_t n) {
    pre_value(w);
    ts_buf_t *b = w->out;
    /* 3 * n <= max_str is n <= max_str / 3 (no string is SIZE_MAX / 3 long) */
    if (b->len + n + 3 < b->cap && (!w->max_str || 3 * n <= w->max_str) &&
        all_plain((const unsigned char *)s, n)) {
        /* plain text that cannot reach the limit, with room: one copy */
        char *d = b->data + b->len;
        d[0] = '"';
        memcpy(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = '\0';
        b->len += n + 2;
        return;
    }
    strn_escaped(w, s, n);
}

void ts_jw_str3(ts_jw_t *w, const char *a, const char *b, const char *c) {
    const char *parts[3] = {a, b, c};
    pre_value(w);
    put(w, "\"", 1);
    for (int i = 0; i < 3; i++)
        if (parts[i] && ts_json_escape(w->out, parts[i], strlen(parts[i])) != 0) w->failed = true;
    put(w, "\"", 1);
}

void ts_jw_int(ts_jw_t *w, int64_t v) {
    char buf[24], *e = buf + sizeof buf, *q = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do *--q = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--q = '-';
    pre_value(w);
    put(w, q, (size_t)(e - q));
}

void ts_jw_bool(ts_jw_t *w, bool v) {
    pre_value(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void ts_jw_null(ts_jw_t *w) {
    pre_value(w);
    put(w, "null", 4);
}

void ts_jw_decimal(ts_jw_t *w, ts_decimal_t d) {
    if (!d.present) {
        ts_jw_null(w);
        return;
    }
    ts_buf_t *b = w->out;
    if (b->len + 40 < b->cap) { /* room for a comma and the 32 bytes that always suffice */
        pre_value(w);
        int n = ts_decimal_format(d, b->data + b->len, b->cap - b->len);
        if (n < 0)
            w->failed = true;
        else
            b->len += (size_t)n; /* NUL-terminated by the formatter */
        return;
    }
    char buf[48];
    int n = ts_decimal_format(d, buf, sizeof buf);
    if (n < 0) {
        w->failed = true;
        return;
    }
    pre_value(w);
    put(w, buf, (size_t)n);
}

/* The last time formatted on this thread: an order's events all carry
 * its occurred_at, so most calls repeat the one before (the formatter is
 * a pure function of ms). */
static _Thread_local struct {
    int64_t ms;
    int n; /* 0: nothing kept */
    char text[40];
} tls_time;

void ts_jw_time(ts_jw_t *w, int64_t ms) {
    if (!tls_time.n || tls_time.ms != ms) {
        tls_time.n = ts_time_format_iso8601(ms, tls_time.text, sizeof tls_time.text);
        tls_time.ms = ms;
    }
    ts_jw_strn(w, tls_time.text, (size_t)tls_time.n);
}

void ts_jw_raw(ts_jw_t *w, const char *json, size_t n) {
    pre_value(w);
    put(w, json, n);
}

void ts_jw_kv_str(ts_jw_t *w, const char *key, const char *s) {
    ts_jw_key(w, key);
    ts_jw_str(w, s);
}

void ts_jw_kv_int(ts_jw_t *w, const char *key, int64_t v) {
    ts_jw_key(w, key);
    ts_jw_int(w, v);
}

void ts_jw_kv_bool(ts_jw_t *w, const char *key, bool v) {
    ts_jw_key(w, key);
    ts_jw_bool(w, v);
}

void ts_jw_kv_str_opt(ts_jw_t *w, const char *key, const char *s) {
    if (!s) return;
    ts_jw_key(w, key);
    ts_jw_str(w, s);
}

void ts_jw_kv_decimal_opt(ts_jw_t *w, const char *key, ts_decimal_t d) {
    if (!d.present) return;
    ts_jw_key(w, key);
    ts_jw_decimal(w, d);
}
