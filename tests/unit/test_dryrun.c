/*
 * test_dryrun.c - the offline pipeline as a library call: one output
 * object per input line in input order (blank and malformed lines
 * included), the --customers table standing in for the customer topic
 * (later lines win), the subscriptions shape, the statistics, and an
 * unreadable customers file reported as TS_ERR_IO.
 */
#include "testlib.h"
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/dryrun.h"

static const char *CONFIG =
    "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\",\"102\"]},"
    "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]}],"
    "\"routing\":{\"default_phone_country\":\"61\"}}";

typedef struct {
    cJSON *rows[16];
    size_t n;
    ts_dryrun_stats_t st;
    ts_err_t rc;
    char err[256];
} run_t;

static void run_cfg(run_t *r, const char *config, ts_kind_t kind, const char *input,
                    const char *customers_path) {
    ts_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(ts_config_parse(config, &cfg, err, sizeof err), TS_OK);
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    assert_non_null(in);
    char *obuf = NULL;
    size_t olen = 0;
    FILE *out = open_memstream(&obuf, &olen);
    assert_non_null(out);
    memset(r, 0, sizeof *r);
    r->rc = ts_dryrun_run(cfg, kind, in, customers_path, NULL, out, &r->st, r->err, sizeof r->err);
    fclose(in);
    fclose(out);
    /* every output line is one complete JSON object */
    for (char *line = strtok(obuf, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(r->n < 16);
        r->rows[r->n] = cJSON_Parse(line);
        if (!r->rows[r->n]) fail_msg("output line is not JSON: %s", line);
        r->n++;
    }
    free(obuf);
    ts_config_destroy(cfg);
}

static void run(run_t *r, ts_kind_t kind, const char *input, const char *customers_path) {
    run_cfg(r, CONFIG, kind, input, customers_path);
}

static void run_free(run_t *r) {
    for (size_t i = 0; i < r->n; i++) cJSON_Delete(r->rows[i]);
}

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *reason(const cJSON *row) {
    const cJSON *dl = get(row, "dead_letter");
    return cJSON_IsObject(dl) ? cJSON_GetStringValue(get(dl, "reason")) : NULL;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define ORDER(id, cust, extra)                                                                     \
    "{\"order_id\":\"" id "\",\"customer_id\":\"" cust "\",\"outlet_id\":\"102\",\"status\":"      \
    "\"completed\",\"occurred_at\":\"2026-11-20T10:15:00+11:00\",\"currency\":\"AUD\","            \
    "\"total\":\"335.99\",\"lines\":[{\"line_id\":\"1\",\"sku\":\"S\",\"quantity\":1,"             \
    "\"row_total\":\"335.99\"}]" extra "}\n"

static void test_one_object_per_line_in_order(void **state) {
    (void)state;
    char path[] = "/tmp/ts-dryrun-custXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* C1 moves from brand-a (101) to brand-b (201): the later line wins */
    write_file(path,
               "{\"customer_id\":\"C1\",\"email\":\"a@b.co\",\"home_outlet_id\":\"101\"}\n"
               "not json, ignored\n"
               "{\"customer_id\":\"C1\",\"email\":\"a@b.co\",\"home_outlet_id\":\"201\"}\n"
               "{\"customer_id\":\"C2\",\"phone\":\"0412 345 678\",\"home_outlet_id\":\"102\"}\n");
    const char *input =
        ORDER("O1", "C1",
              "") "\n"
                  "{\"order_id\":\n" ORDER("O2", "C9", "") ORDER("O3", "C2", "")
                      ORDER("O4", "C1",
                            ",\"customer\":{\"email\":\"snap@b.co\",\"home_outlet_id\":\"101\"}")
                          ORDER("O5", "C1", ",\"is_test\":true");
    run_t r;
    run(&r, TS_KIND_ORDER, input, path);
    unlink(path);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.n, 7);
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(get(r.rows[i], "input")->valueint, (int)i + 1);

    /* O1: routed by C1's latest Home Outlet; events carry the profile */
    assert_string_equal(cJSON_GetStringValue(get(r.rows[0], "account")), "brand-b");
    const cJSON *evs = get(r.rows[0], "events");
    assert_int_equal(cJSON_GetArraySize(evs), 2);
    const cJSON *e0 = cJSON_GetArrayItem(evs, 0);
    assert_string_equal(cJSON_GetStringValue(get(e0, "unique_id")), "O1");
    assert_string_equal(
        cJSON_GetStringValue(get(get(get(get(e0, "metric"), "data"), "attributes"), "name")),
        "Placed Order");
    assert_string_equal(cJSON_GetStringValue(get(get(e0, "profile"), "external_id")), "C1");
    assert_string_equal(cJSON_GetStringValue(get(get(e0, "profile"), "email")), "a@b.co");
    assert_true(get(e0, "value")->valuedouble == 335.99);
    assert_int_equal(cJSON_GetArraySize(get(r.rows[0], "profiles")), 1);
    assert_true(cJSON_IsNull(get(r.rows[0], "dead_letter")));
    assert_true(cJSON_IsNull(get(r.rows[0], "skipped")));

    /* blank line and malformed JSON: DECODE_ERROR, the run goes on */
    assert_string_equal(reason(r.rows[1]), "DECODE_ERROR");
    assert_string_equal(reason(r.rows[2]), "DECODE_ERROR");
    assert_non_null(
        strstr(cJSON_GetStringValue(get(get(r.rows[2], "dead_letter"), "detail")), "invalid JSON"));
    assert_true(cJSON_IsNull(get(r.rows[2], "account")));
    assert_int_equal(cJSON_GetArraySize(get(r.rows[2], "events")), 0);

    /* O2: C9 is in no table and has no snapshot */
    assert_string_equal(reason(r.rows[3]), "UNKNOWN_CUSTOMER");
    /* O3: phone-only customer from the table, phone normalised to E.164 */
    assert_string_equal(cJSON_GetStringValue(get(r.rows[4], "account")), "brand-a");
    assert_string_equal(
        cJSON_GetStringValue(
            get(get(cJSON_GetArrayItem(get(r.rows[4], "events"), 0), "profile"), "phone_number")),
        "+61412345678");
    /* O4: the embedded snapshot wins over the table (101 -> brand-a) */
    assert_string_equal(cJSON_GetStringValue(get(r.rows[5], "account")), "brand-a");
    /* O5: a test order is skipped, not dead-lettered */
    assert_string_equal(cJSON_GetStringValue(get(r.rows[6], "skipped")), "TEST_ORDER");
    assert_true(cJSON_IsNull(get(r.rows[6], "dead_letter")));

    assert_int_equal(r.st.lines, 7);
    assert_int_equal(r.st.sent, 3);
    assert_int_equal(r.st.dead_letter, 3);
    assert_int_equal(r.st.skipped, 1);
    assert_int_equal(r.st.by_reason[TS_REASON_DECODE_ERROR], 2);
    assert_int_equal(r.st.by_reason[TS_REASON_UNKNOWN_CUSTOMER], 1);
    assert_int_equal(r.st.events_per_account_total, 6);
    run_free(&r);
}

static void test_customer_profiles_and_subscriptions(void **state) {
    (void)state;
    const char *input =
        "{\"customer_id\":\"C1\",\"email\":\"A@B.co\",\"phone\":\"+61412345678\","
        "\"home_outlet_id\":\"101\",\"email_consent\":true,\"sms_consent\":false}\n"
        "{\"customer_id\":\"C2\",\"email\":\"c@d.co\",\"home_outlet_id\":\"102\"}\n"
        "{\"customer_id\":\"C3\",\"email\":\"e@f.co\",\"home_outlet_id\":\"999\"}\n"
        "{\"customer_id\":\"C4\",\"home_outlet_id\":\"101\",\"email_consent\":true}\n";
    run_t r;
    run(&r, TS_KIND_CUSTOMER, input, NULL);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.n, 4);
    const cJSON *p = cJSON_GetArrayItem(get(r.rows[0], "profiles"), 0);
    assert_string_equal(cJSON_GetStringValue(get(p, "email")), "a@b.co");
    assert_string_equal(cJSON_GetStringValue(get(get(p, "subscriptions"), "email")), "SUBSCRIBED");
    assert_string_equal(cJSON_GetStringValue(get(get(p, "subscriptions"), "sms")), "UNSUBSCRIBED");
    assert_int_equal(cJSON_GetArraySize(get(r.rows[0], "events")), 0);
    /* unknown consent: no subscriptions member at all */
    p = cJSON_GetArrayItem(get(r.rows[1], "profiles"), 0);
    assert_non_null(p);
    assert_null(get(p, "subscriptions"));
    assert_string_equal(reason(r.rows[2]), "UNMAPPED_OUTLET");
    assert_non_null(
        strstr(cJSON_GetStringValue(get(get(r.rows[2], "dead_letter"), "detail")), "999"));
    assert_int_equal(cJSON_GetArraySize(get(r.rows[2], "profiles")), 0);
    assert_string_equal(reason(r.rows[3]), "NO_PROFILE_IDENTIFIER");
    run_free(&r);
}

/* A deployment limited to brand-a: brand-b's records are skipped (not
 * dead-lettered) and the line names the account they belong to. */
static void test_other_account_is_skipped(void **state) {
    (void)state;
    const char *cfg =
        "{\"accounts\":[{\"name\":\"brand-a\",\"api_key_env\":\"K\",\"outlets\":[\"101\"]},"
        "{\"name\":\"brand-b\",\"api_key_env\":\"K\",\"outlets\":[\"201\"]}],"
        "\"routing\":{\"only_accounts\":[\"brand-a\"]}}";
    run_t r;
    run_cfg(&r, cfg, TS_KIND_CUSTOMER,
            "{\"customer_id\":\"C1\",\"email\":\"a@b.co\",\"home_outlet_id\":\"201\"}\n"
            "{\"customer_id\":\"C2\",\"email\":\"c@d.co\",\"home_outlet_id\":\"101\"}\n",
            NULL);
    assert_int_equal(r.rc, TS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(cJSON_GetStringValue(get(r.rows[0], "skipped")), "OTHER_ACCOUNT");
    assert_string_equal(cJSON_GetStringValue(get(r.rows[0], "account")), "brand-b");
    assert_true(cJSON_IsNull(get(r.rows[0], "dead_letter")));
    assert_int_equal(cJSON_GetArraySize(get(r.rows[0], "profiles")), 0);
    assert_string_equal(cJSON_GetStringValue(get(r.rows[1], "account")), "brand-a");
    assert_int_equal(r.st.skipped, 1);
    assert_int_equal(r.st.sent, 1);
    run_free(&r);
}

static void test_unreadable_customers_file(void **state) {
    (void)state;
    run_t r;
    run(&r, TS_KIND_ORDER, ORDER("O1", "C1", ""), "/nonexistent/customers.jsonl");
    assert_int_equal(r.rc, TS_ERR_IO);
    assert_non_null(strstr(r.err, "/nonexistent/customers.jsonl"));
    assert_int_equal(r.n, 0);
    run_free(&r);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_one_object_per_line_in_order),
             cmocka_unit_test(test_customer_profiles_and_subscriptions),
             cmocka_unit_test(test_other_account_is_skipped),
             cmocka_unit_test(test_unreadable_customers_file))
