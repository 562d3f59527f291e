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

/* Every byte value at every position of a 16-byte plain run (the escaper
 * tests eight bytes at a time): exactly that byte is escaped, replaced
 * (a lone byte >= 0x80 is invalid UTF-8: U+FFFD) or copied. Also a valid
 * two-byte character across the 8-byte boundary. */
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
        for (int pos = 0; pos < 16; pos++) {
            char in[17], want[64];
            memset(in, 'a', 16);
            in[pos] = (char)c;
            in[16] = '\0';
            snprintf(want, sizeof want, "%.*s%s%.*s", pos, in, esc, 15 - pos, in + pos + 1);
            ts_buf_t b = TS_BUF_INIT;
            assert_int_equal(ts_json_escape(&b, in, 16), 0);
            if (b.len != strlen(want) || memcmp(b.data, want, b.len))
                fail_msg("byte %#x at %d: got %.*s", c, pos, (int)b.len, b.data);
            ts_buf_free(&b);
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
             cmocka_unit_test(test_escaping_and_invalid_utf8),
             cmocka_unit_test(test_escape_every_byte_every_position))
