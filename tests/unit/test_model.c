/* test_model.c - exact decimals, ISO-8601 times, E.164 normalisation. */
#include "testlib.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tillstream/model.h"

static void fmt_eq(ts_decimal_t d, const char *want) {
    char buf[48];
    assert_true(ts_decimal_format(d, buf, sizeof buf) > 0);
    assert_string_equal(buf, want);
}

static void test_decimal_money_is_exact(void **state) {
    (void)state;
    ts_decimal_t d;
    char err[128];
    assert_int_equal(ts_decimal_parse("335.99", 6, &d, err, sizeof err), TS_OK);
    assert_int_equal(d.units, 33599);
    assert_int_equal(d.scale, 2);
    fmt_eq(d, "335.99");
    /* the JSON-number path: cJSON hands us a double */
    assert_int_equal(ts_decimal_from_double(335.99, &d, err, sizeof err), TS_OK);
    assert_int_equal(d.units, 33599);
    assert_int_equal(d.scale, 2);
    fmt_eq(d, "335.99");
    assert_int_equal(ts_decimal_from_double(0.1 + 0.2, &d, err, sizeof err), TS_OK);
    fmt_eq(d, "0.30000000000000004"); /* what the producer actually sent */
    assert_int_equal(ts_decimal_from_double(19.9, &d, err, sizeof err), TS_OK);
    fmt_eq(d, "19.9");
    /* Avro decimal(18,4) path: 335.9900 formats without trailing zeros */
    d = (ts_decimal_t){3359900, 4, true};
    fmt_eq(d, "335.99");
    d = (ts_decimal_t){50000, 4, true};
    fmt_eq(d, "5");
    d = (ts_decimal_t){-5, 2, true};
    fmt_eq(d, "-0.05");
    d = (ts_decimal_t){0, 4, true};
    fmt_eq(d, "0");
}

static void test_decimal_rejects_garbage(void **state) {
    (void)state;
    ts_decimal_t d;
    char err[128];
    assert_int_equal(ts_decimal_parse("1e5", 3, &d, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "'e'"));
    assert_int_equal(ts_decimal_parse("", 0, &d, err, sizeof err), TS_ERR_INVALID);
    assert_int_equal(ts_decimal_parse("1.2.3", 5, &d, err, sizeof err), TS_ERR_INVALID);
    assert_int_equal(ts_decimal_parse("1234567890123456789", 19, &d, err, sizeof err),
                     TS_ERR_INVALID);
    assert_int_equal(ts_decimal_parse(" -12.50 ", 8, &d, err, sizeof err), TS_OK);
    assert_int_equal(d.units, -1250);
}

static void test_decimal_rescale_detects_loss(void **state) {
    (void)state;
    ts_decimal_t d = {33599, 2, true}, r;
    assert_int_equal(ts_decimal_rescale(d, 4, &r), TS_OK);
    assert_int_equal(r.units, 3359900);
    assert_int_equal(ts_decimal_rescale(r, 2, &d), TS_OK);
    assert_int_equal(d.units, 33599);
    assert_int_equal(ts_decimal_rescale(d, 1, &r), TS_ERR_INVALID);
}

static void test_time_parse_offsets(void **state) {
    (void)state;
    int64_t a, b;
    char err[128];
    const char *s1 = "2026-11-20T10:15:00+11:00", *s2 = "2026-11-19T23:15:00Z";
    assert_int_equal(ts_time_parse_iso8601(s1, strlen(s1), &a, err, sizeof err), TS_OK);
    assert_int_equal(ts_time_parse_iso8601(s2, strlen(s2), &b, err, sizeof err), TS_OK);
    assert_int_equal(a, b);
    assert_int_equal(b, 1795130100000LL);
    const char *s3 = "2026-11-19T23:15:00.250-0000";
    assert_int_equal(ts_time_parse_iso8601(s3, strlen(s3), &a, err, sizeof err), TS_OK);
    assert_int_equal(a, b + 250);
    const char *s4 = "2026-11-19T23:15:00"; /* no offset: ambiguous, rejected */
    assert_int_equal(ts_time_parse_iso8601(s4, strlen(s4), &a, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "offset"));
    const char *s5 = "2026-02-30";
    assert_int_equal(ts_time_parse_iso8601(s5, strlen(s5), &a, err, sizeof err), TS_ERR_INVALID);
    char out[40];
    ts_time_format_iso8601(b + 999, out, sizeof out);
    assert_string_equal(out, "2026-11-19T23:15:00+00:00");
    ts_time_format_iso8601(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00+00:00");
}

/* The arithmetic fast path of ts_decimal_from_double gives the same text
 * as the shortest-round-trip path it skips (%.15g, else %.17g). */
static void reference_text(double d, char *out, size_t n) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
    ts_decimal_t r;
    char err[128];
    if (ts_decimal_parse(buf, strlen(buf), &r, err, sizeof err) != TS_OK) {
        snprintf(out, n, "(%s)", buf);
        return;
    }
    ts_decimal_format(r, out, n);
}

static void test_decimal_from_double_matches_text_path(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char err[128], want[64], got[64];
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        switch (k % 5) {
        case 0: d = (double)(int64_t)(x % 20000001) / 100.0 - 100000.0; break; /* cents */
        case 1: d = (double)(x % 100000000) / 10000.0; break;                  /* scale 4 */
        case 2: d = (double)(int64_t)(x % 2000001) - 1000000.0; break;         /* integers */
        case 3: d = (double)(x >> 11) / 9007199254740992.0 * 1e6; break;       /* any */
        default: d = (double)(x % 1000) / 1000.0 + (double)(x % 7) / 10.0; break;
        }
        ts_decimal_t dec;
        if (ts_decimal_from_double(d, &dec, err, sizeof err) != TS_OK) continue;
        reference_text(d, want, sizeof want);
        ts_decimal_format(dec, got, sizeof got);
        if (strcmp(got, want)) fail_msg("%.17g: fast %s, text %s", d, got, want);
    }
}

/* The formatter equals a printf-built reference for edge and random
 * units at every scale 0..18: sign, leading "0.", the point's place,
 * trailing zeros trimmed; and refuses a buffer one byte short. */
static void reference_format(ts_decimal_t d, char *out, size_t n) {
    char digits[32];
    uint64_t mag = d.units < 0 ? (uint64_t)(-(d.units + 1)) + 1u : (uint64_t)d.units;
    int len = snprintf(digits, sizeof digits, "%0*" PRIu64, d.scale + 1, mag);
    int scale = d.scale;
    while (scale > 0 && digits[len - 1] == '0') digits[--len] = '\0', scale--;
    snprintf(out, n, "%s%.*s%s%s", d.units < 0 && mag ? "-" : "", len - scale, digits,
             scale ? "." : "", digits + len - scale);
}

static void test_decimal_format_matches_printf(void **state) {
    (void)state;
    const int64_t edge[] = {0,
                            1,
                            -1,
                            9,
                            10,
                            -10,
                            100,
                            12300,
                            INT64_MAX,
                            INT64_MIN,
                            INT64_MIN + 1,
                            1000000000000000000LL,
                            -999999999999999999LL};
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int k = 0; k < 60000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t u = k < 13 * 19 ? edge[k / 19] : (int64_t)(x >> (x % 60));
        ts_decimal_t d = {
            .units = k % 3 == 2 && u != INT64_MIN ? -u : u, .scale = k % 19, .present = true};
        char want[64], got[64];
        reference_format(d, want, sizeof want);
        int n = ts_decimal_format(d, got, sizeof got);
        if (n != (int)strlen(want) || strcmp(got, want))
            fail_msg("%" PRId64 " scale %d: got %s (%d), want %s", d.units, d.scale, got, n, want);
        assert_int_equal(ts_decimal_format(d, got, (size_t)n), -1);
        assert_int_equal(ts_decimal_format(d, got, (size_t)n + 1), n);
    }
}

/* The hand-written ISO-8601 formatter equals the printf one. */
static void test_time_format_matches_printf(void **state) {
    (void)state;
    char a[40], b[40];
    uint64_t x = 0;
    for (int k = 0; k < 100000; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t t = (int64_t)(x % 4102444800000ULL); /* 1970..2100 */
        int n = ts_time_format_iso8601(t, a, sizeof a);
        time_t s = (time_t)(t / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
        assert_int_equal(n, (int)strlen(b));
        assert_string_equal(a, b);
    }
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_decimal_money_is_exact),
             cmocka_unit_test(test_decimal_rejects_garbage),
             cmocka_unit_test(test_decimal_rescale_detects_loss),
             cmocka_unit_test(test_time_parse_offsets),
             cmocka_unit_test(test_decimal_from_double_matches_text_path),
             cmocka_unit_test(test_decimal_format_matches_printf),
             cmocka_unit_test(test_time_format_matches_printf))
