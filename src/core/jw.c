/*
 * jw.c - streaming JSON writer. Writes straight into a ts_buf_t with a
 * small nesting stack for commas; no tree, no allocation per value.
 * Invalid UTF-8 is replaced by U+FFFD so bodies are always valid JSON.
 */
#include "tillstream/jw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void ts_jw_init(ts_jw_t *w, ts_buf_t *out) {
    w->out = out;
    w->depth = 0;
    w->first[0] = true;
    w->after_key = false;
    w->failed = false;
}

static void put(ts_jw_t *w, const char *s, size_t n) {
    if (ts_buf_append(w->out, s, n) != 0) w->failed = true;
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

/* Length of a valid UTF-8 sequence starting at s (max n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int ts_json_escape(ts_buf_t *out, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    if (ts_buf_reserve(out, n + 2) != 0) return -1;
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char ubuf[8];
        size_t l = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
            esc = ubuf;
        } else if (c >= 0x80) {
            l = utf8_seq(p + i, n - i);
            if (l == 0) {
                esc = "\xEF\xBF\xBD"; /* U+FFFD */
                l = 1;
            }
        }
        if (esc) {
            if (run && ts_buf_append(out, s + i - run, run) != 0) return -1;
            run = 0;
            if (ts_buf_puts(out, esc) != 0) return -1;
            i += l;
        } else {
            run += l;
            i += l;
        }
    }
    if (run && ts_buf_append(out, s + n - run, run) != 0) return -1;
    return 0;
}

void ts_jw_key(ts_jw_t *w, const char *key) {
    pre_value(w);
    put(w, "\"", 1);
    if (ts_json_escape(w->out, key, strlen(key)) != 0) w->failed = true;
    put(w, "\":", 2);
    w->after_key = true;
}

void ts_jw_strn(ts_jw_t *w, const char *s, size_t n) {
    pre_value(w);
    put(w, "\"", 1);
    if (ts_json_escape(w->out, s, n) != 0) w->failed = true;
    put(w, "\"", 1);
}

void ts_jw_str(ts_jw_t *w, const char *s) {
    if (!s)
        ts_jw_null(w);
    else
        ts_jw_strn(w, s, strlen(s));
}

void ts_jw_int(ts_jw_t *w, int64_t v) {
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    pre_value(w);
    put(w, buf, (size_t)n);
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
    char buf[48];
    int n = ts_decimal_format(d, buf, sizeof buf);
    if (n < 0) {
        w->failed = true;
        return;
    }
    pre_value(w);
    put(w, buf, (size_t)n);
}

void ts_jw_time(ts_jw_t *w, int64_t ms) {
    char buf[40];
    int n = ts_time_format_iso8601(ms, buf, sizeof buf);
    ts_jw_strn(w, buf, (size_t)n);
}

void ts_jw_raw(ts_jw_t *w, const char *json, size_t n) {
    pre_value(w);
    put(w, json, n);
}

void ts_jw_kv_str(ts_jw_t *w, const char *key, const char *s) {
    ts_jw_key(w, key);
    ts_jw_str(w, s);
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
