/* test_log.c - log lines are single valid JSON objects; level filtering works. */
#include "testlib.h"
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "tillstream/log.h"

static void test_line_is_valid_json(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    ts_log_set_sink(f);
    ts_log_set_level(TS_LOG_INFO);
    ts_log(TS_LOG_WARN, "orders", "\"topic\":\"pos.orders\",\"partition\":3", "bad \"x\"\n\t%d",
           42);
    ts_log(TS_LOG_DEBUG, "orders", NULL, "filtered");
    fflush(f);
    rewind(f);
    char line[2048];
    assert_non_null(fgets(line, sizeof line, f));
    assert_null(fgets(line + strlen(line), (int)(sizeof line - strlen(line)), f)); /* one line */
    cJSON *j = cJSON_Parse(line);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(j, "logger")->valuestring, "orders");
    assert_string_equal(cJSON_GetObjectItem(j, "message")->valuestring, "bad \"x\"\n\t42");
    assert_string_equal(cJSON_GetObjectItem(j, "topic")->valuestring, "pos.orders");
    assert_int_equal(cJSON_GetObjectItem(j, "partition")->valueint, 3);
    const char *t = cJSON_GetObjectItem(j, "time")->valuestring;
    assert_int_equal(strlen(t), 24); /* 2026-11-23T01:02:03.123Z */
    assert_int_equal(t[23], 'Z');
    cJSON_Delete(j);
    ts_log_set_sink(stderr);
    fclose(f);
}

static void test_level_parse(void **state) {
    (void)state;
    ts_log_level_t l;
    assert_int_equal(ts_log_level_parse("error", &l), 0);
    assert_int_equal(l, TS_LOG_ERROR);
    assert_int_equal(ts_log_level_parse("verbose", &l), -1);
    ts_log_set_level(TS_LOG_ERROR);
    assert_false(ts_log_enabled(TS_LOG_WARN));
    assert_true(ts_log_enabled(TS_LOG_ERROR));
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_line_is_valid_json),
             cmocka_unit_test(test_level_parse))
