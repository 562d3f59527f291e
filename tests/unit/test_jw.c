/* test_jw.c - the streaming JSON writer: nesting, commas, escaping, UTF-8. */
#include "testlib.h"
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "tillstream/jw.h"

static void test_nesting_and_values(void **state) {
    (void)state;
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    ts_jw_obj_open(&w);
    ts_jw_kv_str(&w, "a", "x");
    ts_jw_key(&w, "arr");
    ts_jw_arr_open(&w);
    ts_jw_int(&w, -3);
    ts_jw_bool(&w, true);
    ts_jw_null(&w);
    ts_jw_decimal(&w, (ts_decimal_t){33599, 2, true});
    ts_jw_obj_open(&w);
    ts_jw_obj_close(&w);
    ts_jw_arr_close(&w);
    ts_jw_kv_str_opt(&w, "skipped", NULL);
    ts_jw_kv_decimal_opt(&w, "absent", (ts_decimal_t){0, 0, false});
    ts_jw_key(&w, "t");
    ts_jw_time(&w, 1795130100000LL);
    ts_jw_obj_close(&w);
    assert_false(w.failed);
    assert_string_equal(b.data, "{\"a\":\"x\",\"arr\":[-3,true,null,335.99,{}],"
                                "\"t\":\"2026-11-19T23:15:00+00:00\"}");
    ts_buf_free(&b);
}

/* Times repeated, alternated and back (the writer keeps the last one
 * formatted): each is the formatter's text. */
static void test_times_in_any_order(void **state) {
    (void)state;
    const int64_t t[] = {1795130100000LL, 1795130100000LL, 0, 1795130100999LL, -1000,
                         1795130101000LL, 1795130100000LL};
    ts_buf_t b = TS_BUF_INIT, want = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    ts_jw_arr_open(&w);
    ts_buf_puts(&want, "[");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char text[40];
        ts_time_format_iso8601(t[i], text, sizeof text);
        ts_buf_printf(&want, "%s\"%s\"", i ? "," : "", text);
        ts_jw_time(&w, t[i]);
    }
    ts_jw_arr_close(&w);
    ts_buf_puts(&want, "]");
    assert_string_equal(b.data, want.data);
    assert_non_null(strstr(b.data, "\"1970-01-01T00:00:00+00:00\",\"2026-11-19T23:15:00+00:00\""));
    ts_buf_free(&b);
    ts_buf_free(&want);
}

static void test_escaping_and_invalid_utf8(void **state) {
    (void)state;
    ts_buf_t b = TS_BUF_INIT;
    ts_jw_t w;
    ts_jw_init(&w, &b);
    const char s[] = "q\"b\\n\n\x01 caf\xc3\xa9 bad\xff\xfe end \xe2\x82";
    ts_jw_strn(&w, s, sizeof s - 1);
    assert_string_equal(b.data,
                        "\"q\\\"b\\\\n\\n\\u0001 caf\xc3\xa9 bad\xef\xbf\xbd\xef\xbf\xbd end "
                        "\xef\xbf\xbd\xef\xbf\xbd\"");
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j); /* always valid JSON */
    cJSON_Delete(j);
    ts_buf_free(&b);
}

/* Every byte value at every position of plain runs of 1 to 40 bytes (the
 * escaper tests 16 or eight bytes at a time, the tail as an overlapping
 * last block): exactly that byte is escaped, replaced (a lone byte >= 0x80
 * is invalid UTF-8: U+FFFD) or copied, by ts_json_escape and by a writer's
 * string (with room reserved: its one-copy path). Also a valid two-byte
 * character across the 8-byte boundary. */
static void expect_escaped(const char *in, size_t n, const char *want, int c, size_t pos) {
    ts_buf_t b = TS_BUF_INIT;
    assert_int_equal(ts_json_escape(&b, in, n), 0);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len))
        fail_msg("byte %#x at %zu of %zu: got %.*s", c, pos, n, (int)b.len, b.data);
    ts_buf_reset(&b);
    assert_int_equal(ts_buf_reserve(&b, 4 * n + 8), 0);
    ts_jw_t w;
    ts_jw_init(&w, &b);
    ts_jw_strn(&w, in, n);
    if (b.len != strlen(want) + 2 || b.data[0] != '"' || memcmp(b.data + 1, want, b.len - 2) ||
        b.data[b.len - 1] != '"' || b.data[b.len] != '\0')
        fail_msg("writer, byte %#x at %zu of %zu: got %.*s", c, pos, n, (int)b.len, b.data);
    ts_buf_free(&b);
}

static void test_escape_every_byte_every_position(void **state) {
    (void)state;
    for (int c = 1; c < 256; c++) {
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r')
            snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        else if (c >= 0x80)
            snprintf(esc, sizeof esc, "\xEF\xBF\xBD");
        else
            snprintf(esc, sizeof esc, "%c", c);
        for (size_t n = 1; n <= 40; n++)
            for (size_t pos = 0; pos < n; pos++) {
                char in[41], want[64];
                memset(in, 'a', n);
                in[pos] = (char)c;
                in[n] = '\0';
                snprintf(want, sizeof want, "%.*s%s%.*s", (int)pos, in, esc, (int)(n - pos - 1),
                         in + pos + 1);
                expect_escaped(in, n, want, c, pos);
            }
    }
    const char *across = "abcdefg\xC3\xA9hijklmn"; /* U+00E9 at bytes 7-8 */
    ts_buf_t b = TS_BUF_INIT;
    assert_int_equal(ts_json_escape(&b, across, strlen(across)), 0);
    assert_int_equal(b.len, strlen(across));
    assert_memory_equal(b.data, across, b.len);
    ts_buf_free(&b);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_nesting_and_values),
             cmocka_unit_test(test_times_in_any_order),
             cmocka_unit_test(test_escaping_and_invalid_utf8),
             cmocka_unit_test(test_escape_every_byte_every_position))
