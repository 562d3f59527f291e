/* test_jw.c - the streaming JSON writer: nesting, commas, escaping, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cJSON.h>
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_and_values),
        cmocka_unit_test(test_escaping_and_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
