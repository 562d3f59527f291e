/*
 * model.c - value helpers of the record model: exact decimals, ISO-8601
 * times, enum names. Pure functions, no allocation. Phone numbers are
 * src/phone/'s (libphonenumber).
 */
#include "tillstream/model.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t pow10_tab[19] = {1LL,
                                      10LL,
                                      100LL,
                                      1000LL,
                                      10000LL,
                                      100000LL,
                                      1000000LL,
                                      10000000LL,
                                      100000000LL,
                                      1000000000LL,
                                      10000000000LL,
                                      100000000000LL,
                                      1000000000000LL,
                                      10000000000000LL,
                                      100000000000000LL,
                                      1000000000000000LL,
                                      10000000000000000LL,
                                      100000000000000000LL,
                                      1000000000000000000LL};

ts_err_t ts_decimal_parse(const char *s, size_t len, ts_decimal_t *out, char *errstr,
                          size_t errstr_size) {
    size_t i = 0;
    bool neg = false;
    int64_t units = 0;
    int32_t scale = 0;
    int digits = 0;
    bool seen_dot = false, seen_digit = false;
    while (i < len && isspace((unsigned char)s[i])) i++;
    while (len > i && isspace((unsigned char)s[len - 1])) len--;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (seen_dot)
                return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                                 "expected a decimal number, got two decimal points");
            seen_dot = true;
            continue;
        }
        if (c < '0' || c > '9')
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "expected a decimal number, got character '%c'",
                             isprint((unsigned char)c) ? c : '?');
        seen_digit = true;
        if (digits > 0 || c != '0') digits++;
        if (digits > 18)
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "decimal has more than 18 significant digits");
        units = units * 10 + (c - '0');
        if (seen_dot) scale++;
        if (scale > 18)
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "decimal has more than 18 fraction digits");
    }
    if (!seen_digit)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "expected a decimal number");
    out->units = neg ? -units : units;
    out->scale = scale;
    out->present = true;
    return TS_OK;
}

ts_err_t ts_decimal_from_double(double d, ts_decimal_t *out, char *errstr, size_t errstr_size) {
    if (!isfinite(d)) return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "number is not finite");
    if (fabs(d) >= 1e17) return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "number too large");
    /* fast path, no text: the first scale s <= 6 at which an integer r has
     * r / 10^s == d (both exact doubles, so the division rounds correctly):
     * r * 10^-s is then the shortest decimal that reads back as d, which is
     * what the %.15g path below finds (shown in test_model against it) */
    if (fabs(d) < 1e15) {
        static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
        for (int sc = 0; sc <= 6; sc++) {
            double r = nearbyint(d * p10[sc]);
            if (fabs(r) < 9007199254740992.0 && r / p10[sc] == d) {
                out->units = (int64_t)r;
                out->scale = sc;
                out->present = true;
                return TS_OK;
            }
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
    if (strchr(buf, 'e') || strchr(buf, 'E')) {
        /* tiny values: print positionally */
        snprintf(buf, sizeof buf, "%.18f", d);
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0') buf[--n] = '\0';
    }
    return ts_decimal_parse(buf, strlen(buf), out, errstr, errstr_size);
}

int ts_decimal_format(ts_decimal_t d, char *buf, size_t bufsize) {
    uint64_t mag = d.units < 0 ? (uint64_t)(-(d.units + 1)) + 1u : (uint64_t)d.units;
    int32_t scale = d.scale;
    while (scale > 0 && mag % 10 == 0) {
        mag /= 10;
        scale--;
    }
    int nd = 1; /* digits of mag: up to 19 by the table, 20 past 10^19 */
    while (nd < 19 && mag >= (uint64_t)pow10_tab[nd]) nd++;
    if (nd == 19 && mag >= 10000000000000000000u) nd = 20;
    bool neg = d.units < 0 && mag != 0;
    int lead = scale == 0 ? 0 : nd <= scale ? 2 + scale - nd : 1; /* "0." and zeros, or '.' */
    size_t len = (size_t)neg + (size_t)nd + (size_t)lead;
    if (len + 1 > bufsize) return -1;
    /* written backwards from the end: the fraction's scale digits (zeros
     * once mag runs out), the point, then the integer digits or "0" */
    char *o = buf + len;
    *o = '\0';
    uint64_t u = mag;
    if (scale > 0) {
        for (int i = 0; i < scale; i++, u /= 10) *--o = (char)('0' + u % 10);
        *--o = '.';
        if (nd <= scale) *--o = '0';
    }
    if (scale == 0 || nd > scale) {
        do *--o = (char)('0' + u % 10);
        while (u /= 10);
    }
    if (neg) *--o = '-';
    return (int)len;
}

ts_err_t ts_decimal_rescale(ts_decimal_t d, int32_t scale, ts_decimal_t *out) {
    if (scale < 0 || scale > 18 || d.scale < 0 || d.scale > 18) return TS_ERR_INVALID;
    ts_decimal_t r = d;
    if (scale >= d.scale) {
        int64_t f = pow10_tab[scale - d.scale];
        if (d.units != 0 && (d.units > INT64_MAX / f || d.units < INT64_MIN / f))
            return TS_ERR_INVALID;
        r.units = d.units * f;
    } else {
        int64_t f = pow10_tab[d.scale - scale];
        if (d.units % f != 0) return TS_ERR_INVALID;
        r.units = d.units / f;
    }
    r.scale = scale;
    *out = r;
    return TS_OK;
}

/* ---- time ---------------------------------------------------------------- */

/* days since 1970-01-01 for a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int read_digits(const char *s, size_t len, size_t *i, int n, int *out) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return 0;
}

static const char ISO_BAD[] = "expected an ISO-8601 time like 2026-11-20T10:15:00+11:00";

/* hh:mm[:ss[.fff]] at s[*i]: NULL, or what is wrong. Fractions beyond
 * milliseconds are read and dropped. */
static const char *parse_clock(const char *s, size_t len, size_t *i, int *h, int *mi, int *se,
                               int *ms) {
    if (read_digits(s, len, i, 2, h) || *i >= len || s[(*i)++] != ':' ||
        read_digits(s, len, i, 2, mi))
        return ISO_BAD;
    if (*i >= len || s[*i] != ':') return NULL;
    (*i)++;
    if (read_digits(s, len, i, 2, se)) return ISO_BAD;
    if (*i >= len || (s[*i] != '.' && s[*i] != ',')) return NULL;
    (*i)++;
    int nd = 0;
    for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++, nd++)
        if (nd < 3) *ms = *ms * 10 + (s[*i] - '0');
    if (nd == 0) return ISO_BAD;
    for (; nd < 3; nd++) *ms *= 10;
    return NULL;
}

/* Z or +hh[[:]mm] / -hh[[:]mm] ending the text: NULL, or what is wrong. */
static const char *parse_offset(const char *s, size_t len, size_t *i, int64_t *offset_min) {
    if (*i >= len) return "time has no UTC offset (add Z or +hh:mm)";
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
    } else if (s[*i] == '+' || s[*i] == '-') {
        int sign = s[(*i)++] == '-' ? -1 : 1, oh, om = 0;
        if (read_digits(s, len, i, 2, &oh)) return ISO_BAD;
        if (*i < len && s[*i] == ':') (*i)++;
        if (*i < len && read_digits(s, len, i, 2, &om)) return ISO_BAD;
        if (oh > 23 || om > 59) return "UTC offset out of range";
        *offset_min = sign * (oh * 60 + om);
    } else {
        return ISO_BAD;
    }
    return *i == len ? NULL : ISO_BAD;
}

ts_err_t ts_time_parse_iso8601(const char *s, size_t len, int64_t *out_ms, char *errstr,
                               size_t errstr_size) {
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    const char *why = NULL;
    int64_t offset_min = 0;
    if (read_digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' ||
        read_digits(s, len, &i, 2, &mo) || i >= len || s[i++] != '-' ||
        read_digits(s, len, &i, 2, &d)) {
        why = ISO_BAD;
    } else if (i < len) { /* a date alone is midnight UTC */
        char sep = s[i++];
        if (sep != 'T' && sep != 't' && sep != ' ')
            why = ISO_BAD;
        else if (!(why = parse_clock(s, len, &i, &h, &mi, &se, &ms)))
            why = parse_offset(s, len, &i, &offset_min);
    }
    if (why) return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "%s", why);
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "date or time out of range");
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return TS_OK;
}

int ts_time_format_iso8601(int64_t ms, char *buf, size_t bufsize) {
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || bufsize < 26) /* rare: let printf handle width and sign */
        return snprintf(buf, bufsize, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d+00:00", y, m, d,
                        (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60));
    char *q = buf;
    unsigned yy = (unsigned)y, hh = (unsigned)(rem / 3600), mi = (unsigned)(rem % 3600 / 60),
             ss = (unsigned)(rem % 60);
    *q++ = (char)('0' + yy / 1000);
    *q++ = (char)('0' + yy / 100 % 10);
    *q++ = (char)('0' + yy / 10 % 10);
    *q++ = (char)('0' + yy % 10);
    const unsigned two[5] = {m, d, hh, mi, ss};
    const char sep[5] = {'-', '-', 'T', ':', ':'};
    for (int i = 0; i < 5; i++) {
        *q++ = sep[i];
        *q++ = (char)('0' + two[i] / 10);
        *q++ = (char)('0' + two[i] % 10);
    }
    memcpy(q, "+00:00", 7);
    return 25;
}

const char *ts_channel_name(ts_channel_t c) {
    return c == TS_CHANNEL_ONLINE ? "online" : "in_store";
}

const char *ts_order_status_name(ts_order_status_t s) {
    switch (s) {
    case TS_ORDER_COMPLETED: return "completed";
    case TS_ORDER_FULFILLED: return "fulfilled";
    case TS_ORDER_CANCELLED: return "cancelled";
    case TS_ORDER_REFUNDED: return "refunded";
    case TS_ORDER_VOIDED: return "voided";
    }
    return "unknown";
}

/* ---- text ---------------------------------------------------------------- */

size_t ts_utf8_seq(const unsigned char *s, size_t n) {
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

size_t ts_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = ts_utf8_seq(p + i, n - i);
        if (!l) return i;
        i += l;
    }
    return n;
}

bool ts_field_is_identifier(const char *name) {
    size_t n = strlen(name);
    if (n > 3 && !memcmp(name + n - 3, "_id", 3)) return true;
    switch (n) { /* called for every string field decoded: no strcmp chain */
    case 3: return !memcmp(name, "sku", 3);
    case 5: return !memcmp(name, "email", 5) || !memcmp(name, "phone", 5);
    case 8: return !memcmp(name, "currency", 8);
    default: return false;
    }
}

ts_err_t ts_text_check(const char *s, size_t n, bool identifier, char *errstr, size_t errstr_size) {
    const char *z = memchr(s, 0, n);
    if (z)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "contains a NUL character (\\u0000) at byte %zu", (size_t)(z - s));
    if (identifier) {
        size_t bad = ts_utf8_invalid_at(s, n);
        if (bad < n)
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "is not valid UTF-8 at byte %zu",
                             bad);
    }
    return TS_OK;
}
