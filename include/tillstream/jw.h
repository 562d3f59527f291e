/*
 * tillstream/jw.h - a streaming JSON writer into a ts_buf_t.
 *
 * The request bodies for Klaviyo are written straight into one reusable
 * buffer per lane: no tree, no allocation per field. The writer tracks
 * commas with a small nesting stack; callers write keys and values in
 * order. Strings are escaped per RFC 8259 (control characters as \u00XX,
 * invalid UTF-8 bytes replaced by U+FFFD so the body is always valid).
 * Any allocation failure sets `failed`; check it once at the end.
 */
#ifndef TILLSTREAM_JW_H
#define TILLSTREAM_JW_H

#include <string.h>

#include "tillstream/common.h"
#include "tillstream/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_JW_MAX_DEPTH 32

typedef struct {
    ts_buf_t *out; /* borrowed */
    int depth;
    bool first[TS_JW_MAX_DEPTH]; /* no element written yet at this level */
    bool after_key;
    bool failed;
    /* String limit (0 = none, the default): a string value whose text
     * would exceed max_str bytes is cut at a character boundary and ends in
     * TS_JW_TRUNC_MARKER, the whole at most max_str bytes; `truncated` then
     * turns true. The cut depends only on the value, so one value written
     * in several places is cut the same everywhere. Keys are not limited. */
    size_t max_str;
    bool truncated;
} ts_jw_t;

#define TS_JW_TRUNC_MARKER "\xE2\x80\xA6[truncated]" /* U+2026 then "[truncated]" */

/* Starts writing at the current end of `out` (appends); no string limit. */
void ts_jw_init(ts_jw_t *w, ts_buf_t *out);
/* ts_jw_init, then the opening brace of a top-level object. */
void ts_jw_init_obj(ts_jw_t *w, ts_buf_t *out);
void ts_jw_obj_open(ts_jw_t *w);
void ts_jw_obj_close(ts_jw_t *w);
void ts_jw_arr_open(ts_jw_t *w);
void ts_jw_arr_close(ts_jw_t *w);
void ts_jw_key(ts_jw_t *w, const char *key);
/* A key already in its written form `"key":` (n bytes), no escaping:
 * for string literals through TS_JW_KEY, escaped by the compiler.
 * Inline: with a literal's length the copy is a few moves, not a call
 * (millions of keys per second on the orders path); a full buffer or a
 * key right after a key goes through ts_jw_key_raw_put. */
void ts_jw_key_raw_put(ts_jw_t *w, const char *quoted, size_t n);
static inline void ts_jw_key_raw(ts_jw_t *w, const char *quoted, size_t n) {
    ts_buf_t *b = w->out;
    if (w->after_key || b->len + n + 1 >= b->cap) {
        ts_jw_key_raw_put(w, quoted, n);
        return;
    }
    char *d = b->data + b->len;
    if (!w->first[w->depth]) *d++ = ',';
    w->first[w->depth] = false;
    memcpy(d, quoted, n);
    d[n] = '\0';
    b->len = (size_t)(d + n - b->data);
    w->after_key = true;
}
/* TS_JW_KEY(w, "OrderId"): a constant key (a literal that needs no
 * escaping: letters, digits, '_', ' ') written with one copy. */
#define TS_JW_QUOTED(lit) "\"" lit "\":"
#define TS_JW_KEY(w, lit) ts_jw_key_raw((w), TS_JW_QUOTED(lit), sizeof TS_JW_QUOTED(lit) - 1)
#define TS_JW_KV_STR(w, lit, s)                                                                    \
    do {                                                                                           \
        TS_JW_KEY(w, lit);                                                                         \
        ts_jw_str((w), (s));                                                                       \
    } while (0)
#define TS_JW_KV_DECIMAL_OPT(w, lit, d)                                                            \
    do {                                                                                           \
        if ((d).present) {                                                                         \
            TS_JW_KEY(w, lit);                                                                     \
            ts_jw_decimal((w), (d));                                                               \
        }                                                                                          \
    } while (0)
void ts_jw_strn(ts_jw_t *w, const char *s, size_t n);
void ts_jw_null(ts_jw_t *w);
/* NULL writes null; inline, a call less per string value */
static inline void ts_jw_str(ts_jw_t *w, const char *s) {
    if (!s)
        ts_jw_null(w);
    else
        ts_jw_strn(w, s, strlen(s));
}
/* One string value made of the parts a, b, c (NULL parts are skipped),
 * e.g. a unique_id "<order id>:<line id>"; never limited by max_str. */
void ts_jw_str3(ts_jw_t *w, const char *a, const char *b, const char *c);
void ts_jw_int(ts_jw_t *w, int64_t v);
void ts_jw_bool(ts_jw_t *w, bool v);
void ts_jw_decimal(ts_jw_t *w, ts_decimal_t d); /* exact number text; null if !present */
void ts_jw_time(ts_jw_t *w, int64_t ms);        /* ISO-8601 string */
/* Inserts already-valid JSON text as one value (e.g. a pre-rendered fragment). */
void ts_jw_raw(ts_jw_t *w, const char *json, size_t n);
/* Convenience: key + value; the *_opt forms write nothing for NULL/absent. */
void ts_jw_kv_str(ts_jw_t *w, const char *key, const char *s);
void ts_jw_kv_int(ts_jw_t *w, const char *key, int64_t v);
void ts_jw_kv_bool(ts_jw_t *w, const char *key, bool v);
void ts_jw_kv_str_opt(ts_jw_t *w, const char *key, const char *s);
void ts_jw_kv_decimal_opt(ts_jw_t *w, const char *key, ts_decimal_t d);

/* Appends the escaped form of s (without quotes) to out. Returns 0/-1. */
int ts_json_escape(ts_buf_t *out, const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
