/*
 * test_phone.c - phone numbers through libphonenumber: issue 16's table
 * (region AU, each row what libphonenumber 8.12 answers), extensions,
 * types and the SMS rule, numbers without a default region, the default
 * country as a region or a calling code, and input libphonenumber must
 * refuse without throwing; the metadata path ("+<digits>" without ICU)
 * against libphonenumber, and its pattern matcher (phone/digitre.h).
 */
#include "testlib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone/digitre.h"
#include "tillstream/phone.h"

typedef struct {
    const char *input;
    const char *e164; /* NULL: invalid */
    const char *extension;
    ts_phone_type_t type;
} row_t;

/* Issue 16's table, region AU. */
static const row_t issue16[] = {
    {"+61 0412 345 678", "+61412345678", "", TS_PHONE_MOBILE}, /* "(0)" trunk prefix after +61 */
    {"61412345678", "+61412345678", "", TS_PHONE_MOBILE},      /* country code without '+' */
    {"+44 (0)20 7946 0958", "+442079460958", "", TS_PHONE_FIXED_LINE},
    {"+1 (415) 555-0100 ext 2", "+14155550100", "2", TS_PHONE_FIXED_LINE_OR_MOBILE},
    {"+61 2 9876 5432 x12", "+61298765432", "12", TS_PHONE_FIXED_LINE},
    {"1300 123 456", "+611300123456", "", TS_PHONE_SHARED_COST},
    {"1800 123 456", "+611800123456", "", TS_PHONE_TOLL_FREE},
    {"9876 5432", NULL, "", TS_PHONE_INVALID}, /* no area code */
    {"+999 123 456 789", NULL, "", TS_PHONE_INVALID},
};

static void check(const row_t *r, const char *region) {
    ts_phone_t p;
    char err[256] = "";
    ts_err_t rc = ts_phone_parse(r->input, region, &p, err, sizeof err);
    if (!r->e164) {
        if (rc != TS_ERR_INVALID) fail_msg("%s: expected invalid, got %s", r->input, p.e164);
        assert_int_equal(p.type, TS_PHONE_INVALID);
        assert_string_equal(p.e164, "");
        assert_true(err[0] != '\0');
        return;
    }
    if (rc != TS_OK) fail_msg("%s: %s", r->input, err);
    assert_string_equal(p.e164, r->e164);
    assert_string_equal(p.extension, r->extension);
    if (p.type != r->type)
        fail_msg("%s: type %s, expected %s", r->input, ts_phone_type_name(p.type),
                 ts_phone_type_name(r->type));
}

static void test_issue16_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof issue16 / sizeof issue16[0]; i++) check(&issue16[i], "AU");
}

/* The SMS rule on the table: only the mobile and the US number (which the
 * US numbering plan cannot tell from a landline) may get SMS consent. */
static void test_sms_capable(void **state) {
    (void)state;
    assert_true(ts_phone_sms_capable(TS_PHONE_MOBILE));
    assert_true(ts_phone_sms_capable(TS_PHONE_FIXED_LINE_OR_MOBILE));
    assert_false(ts_phone_sms_capable(TS_PHONE_FIXED_LINE));
    assert_false(ts_phone_sms_capable(TS_PHONE_TOLL_FREE));
    assert_false(ts_phone_sms_capable(TS_PHONE_SHARED_COST));
    assert_false(ts_phone_sms_capable(TS_PHONE_VOIP));
    assert_false(ts_phone_sms_capable(TS_PHONE_OTHER));
    assert_false(ts_phone_sms_capable(TS_PHONE_INVALID));
    assert_string_equal(ts_phone_type_name(TS_PHONE_FIXED_LINE_OR_MOBILE), "fixed_line_or_mobile");
    assert_string_equal(ts_phone_type_name(TS_PHONE_SHARED_COST), "shared_cost");
    assert_string_equal(ts_phone_type_name(TS_PHONE_INVALID), "invalid");
}

/* Formats the old heuristic also accepted, with the same answers. */
static void test_national_formats(void **state) {
    (void)state;
    static const row_t rows[] = {
        {"+61 412 345 678", "+61412345678", "", TS_PHONE_MOBILE},
        {"0412 345 678", "+61412345678", "", TS_PHONE_MOBILE},
        {"(02) 9999-0000", "+61299990000", "", TS_PHONE_FIXED_LINE},
        {"03 9555 0101", "+61395550101", "", TS_PHONE_FIXED_LINE},
        {"0011 44 20 7946 0958", "+442079460958", "", TS_PHONE_FIXED_LINE}, /* AU's IDD */
        {"12", NULL, "", TS_PHONE_INVALID},
        {"call me", NULL, "", TS_PHONE_INVALID},
        {"+1234567890123456", NULL, "", TS_PHONE_INVALID},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) check(&rows[i], "AU");
}

/* "00" is an international prefix only where the region dials it: not in
 * Australia (0011), yes in the UK. */
static void test_international_prefix_by_region(void **state) {
    (void)state;
    row_t au = {"0061412345678", NULL, "", TS_PHONE_INVALID};
    row_t gb = {"0061412345678", "+61412345678", "", TS_PHONE_MOBILE};
    check(&au, "AU");
    check(&gb, "GB");
}

/* Without a default region only international numbers are kept. */
static void test_no_default_region(void **state) {
    (void)state;
    row_t intl = {"+61 412 345 678", "+61412345678", "", TS_PHONE_MOBILE};
    row_t national = {"0412 345 678", NULL, "", TS_PHONE_INVALID};
    check(&intl, NULL);
    check(&intl, "");
    check(&national, NULL);
    ts_phone_t p;
    char err[256];
    assert_int_equal(ts_phone_parse("0412 345 678", NULL, &p, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "routing.default_phone_country"));
}

/* Error messages say why, and never repeat the number. */
static void test_errors_do_not_echo_the_number(void **state) {
    (void)state;
    ts_phone_t p;
    char err[256];
    assert_int_equal(ts_phone_parse("9876 5432", "AU", &p, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "not a valid phone number for +61 (AU)"));
    assert_null(strstr(err, "9876"));
    assert_int_equal(ts_phone_parse("+999 123 456 789", "AU", &p, err, sizeof err), TS_ERR_INVALID);
    assert_non_null(strstr(err, "unassigned country calling code"));
    assert_null(strstr(err, "123"));
    assert_int_equal(ts_phone_parse(NULL, "AU", &p, err, sizeof err), TS_ERR_INVALID);
}

/* Hostile input: refused with a code, no exception, no overflow. */
static void test_hostile_input(void **state) {
    (void)state;
    ts_phone_t p;
    char err[256];
    char *big = malloc(100001);
    memset(big, '4', 100000);
    big[100000] = '\0';
    assert_int_equal(ts_phone_parse(big, "AU", &p, err, sizeof err), TS_ERR_INVALID);
    free(big);
    assert_int_equal(ts_phone_parse("\xff\xfe\x80 0412", "AU", &p, err, sizeof err),
                     TS_ERR_INVALID);
    assert_int_equal(ts_phone_parse("", "AU", &p, err, sizeof err), TS_ERR_INVALID);
    /* an unknown default region reads national numbers as nothing */
    assert_int_equal(ts_phone_parse("0412 345 678", "QQ", &p, err, sizeof err), TS_ERR_INVALID);
    /* an extension over libphonenumber's 20 digits is not split off */
    ts_err_t rc =
        ts_phone_parse("+61 2 9876 5432 ext 123456789012345678901234", "AU", &p, err, sizeof err);
    if (rc == TS_OK) assert_true(strlen(p.extension) < TS_PHONE_EXT_SIZE);
}

static void test_region(void **state) {
    (void)state;
    char r[3], err[256];
    static const struct {
        const char *in, *out;
    } ok[] = {{"AU", "AU"}, {"au", "AU"}, {"61", "AU"}, {"1", "US"},
              {"44", "GB"}, {"7", "RU"},  {"64", "NZ"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (ts_phone_region(ok[i].in, r, sizeof r, err, sizeof err) != TS_OK)
            fail_msg("%s: %s", ok[i].in, err);
        assert_string_equal(r, ok[i].out);
    }
    static const char *const bad[] = {"+61", "061", "999", "800", "XX", "AUS", "", "6a", "1234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ts_phone_region(bad[i], r, sizeof r, err, sizeof err) != TS_ERR_INVALID)
            fail_msg("%s accepted as %s", bad[i], r);
        assert_string_equal(r, "");
    }
    assert_int_equal(ts_phone_region("AU", r, 2, err, sizeof err), TS_ERR_INVALID);
}

/* Every calling code: examples, variants and random numbers, both ways.
 * The metadata path must answer most of them (it is the point) and never
 * differently. */
static void test_metadata_path_agrees_with_libphonenumber(void **state) {
    (void)state;
    ts_phone_crosscheck_t st;
    char err[512] = "";
    ts_err_t rc = ts_phone_crosscheck(7, 40, &st, err, sizeof err);
    print_message("crosscheck: %zu numbers, %zu by the metadata path, %zu valid, %zu differ\n",
                  st.compared, st.fast, st.valid, st.mismatches);
    if (rc != TS_OK) fail_msg("%s", err);
    assert_int_equal(st.mismatches, 0);
    assert_true(st.compared > 12000);
    assert_true(st.valid > 4000);
    assert_true(st.fast * 10 > st.compared * 8); /* > 80 % answered without ICU */
}

/* The shapes the metadata path answers and the ones it hands back, each
 * the same as libphonenumber: valid, invalid (same reason), a national
 * prefix after the code, a leading zero (Italy), a non-geographic code,
 * formatting characters, an extension. */
static void test_metadata_path_edges(void **state) {
    (void)state;
    static const char *const in[] = {"+61412345678",
                                     "+61412345",
                                     "+61212345678",
                                     "+14155550100",
                                     "+12015550123",
                                     "+610412345678",
                                     "+390612345678",
                                     "+3906123456",
                                     "+80012345678",
                                     "+442079460958",
                                     "+4402079460958",
                                     "+61 412345678",
                                     "+61412345678x12",
                                     "+6141234567890123",
                                     "+999123456789",
                                     "+1",
                                     "+61",
                                     "+0412345678",
                                     "+5491123456789",
                                     "+8613812345678",
                                     "+79161234567"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        for (int r = 0; r < 2; r++) {
            ts_phone_t a, b;
            char ea[256] = "", eb[256] = "";
            const char *region = r ? "AU" : NULL;
            ts_err_t ra = ts_phone_parse(in[i], region, &a, ea, sizeof ea);
            ts_err_t rb = ts_phone_parse_reference(in[i], region, &b, eb, sizeof eb);
            if (ra != rb || strcmp(a.e164, b.e164) || strcmp(a.extension, b.extension) ||
                a.type != b.type || strcmp(ea, eb))
                fail_msg("%s (%s): %d %s %s \"%s\" vs libphonenumber %d %s %s \"%s\"", in[i],
                         region ? region : "-", ra, a.e164, ts_phone_type_name(a.type), ea, rb,
                         b.e164, ts_phone_type_name(b.type), eb);
        }
    }
}

static ts_digitre_result_t full(const char *p, const char *s) {
    ts_digitre_t *re = ts_digitre_new(p, strlen(p));
    assert_non_null(re);
    ts_digitre_result_t r = ts_digitre_full(re, s, strlen(s));
    ts_digitre_destroy(re);
    return r;
}

/* -1: no match; else where lookingAt()'s match ends */
static long prefix_end(const char *p, const char *s) {
    ts_digitre_t *re = ts_digitre_new(p, strlen(p));
    assert_non_null(re);
    size_t end = 999;
    ts_digitre_result_t r = ts_digitre_prefix(re, s, strlen(s), &end);
    ts_digitre_destroy(re);
    assert_int_not_equal(r, TS_DIGITRE_GAVE_UP);
    return r == TS_DIGITRE_YES ? (long)end : -1;
}

static void test_digitre_matches(void **state) {
    (void)state;
    const char *mobile_au = "4(?:83[0-38]|93[0-6])\\d{5}|4(?:[0-3]\\d|4[047-9]|5[0-25-9])\\d{6}";
    assert_int_equal(full(mobile_au, "412345678"), TS_DIGITRE_YES);
    assert_int_equal(full(mobile_au, "483312345"), TS_DIGITRE_YES);
    assert_int_equal(full(mobile_au, "4833123456"), TS_DIGITRE_NO); /* one digit too many */
    assert_int_equal(full(mobile_au, "44312345"), TS_DIGITRE_NO);
    assert_int_equal(full("[^0-7]\\d?", "9"), TS_DIGITRE_YES);
    assert_int_equal(full("[^0-7]\\d?", "79"), TS_DIGITRE_NO);
    assert_int_equal(full("1\\d{2,}", "1"), TS_DIGITRE_NO);
    assert_int_equal(full("1\\d{2,}", "1234567"), TS_DIGITRE_YES);
    assert_int_equal(full("1(?:2|)3", "13"), TS_DIGITRE_YES);
    assert_int_equal(full("(?:12)+", "121212"), TS_DIGITRE_YES);
    assert_int_equal(full("(?:12)+", "1212123"), TS_DIGITRE_NO);
    assert_int_equal(full("([59]\\d{2})$", "512"), TS_DIGITRE_YES);
    assert_int_equal(full("", ""), TS_DIGITRE_YES);
    assert_int_equal(full("", "1"), TS_DIGITRE_NO);
}

/* lookingAt()'s match is the backtracking order's first: it decides
 * whether a national prefix is stripped. */
static void test_digitre_prefix_order(void **state) {
    (void)state;
    assert_int_equal(prefix_end("0|(183[12])|", "412345678"), 0); /* AU: the empty alternative */
    assert_int_equal(prefix_end("0|(183[12])|", "0412345678"), 1);
    assert_int_equal(prefix_end("0|(183[12])|", "18312345"), 4);
    assert_int_equal(prefix_end("1|12", "123"), 1); /* first alternative, not the longest */
    assert_int_equal(prefix_end("12|1", "123"), 2);
    assert_int_equal(prefix_end("1?", "1"), 1);  /* greedy */
    assert_int_equal(prefix_end("1??", "1"), 0); /* lazy */
    assert_int_equal(prefix_end("\\d{1,3}?", "1234"), 1);
    assert_int_equal(prefix_end("\\d{1,3}", "1234"), 3);
    assert_int_equal(prefix_end("2", "123"), -1);
    assert_int_equal(prefix_end("1$", "12"), -1);
}

static void test_digitre_refuses_and_gives_up(void **state) {
    (void)state;
    static const char *const refused[] = {"^1",  "(?=1)2", "a",     "\\1",   "1{2}+",  "(1",
                                          "1)",  "[a-c]",  "[]",    "[1-",   "1{3,2}", "1{65}",
                                          "\\s", "*1",     "1{,2}", "(?i)1", "[9-1]"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ts_digitre_t *re = ts_digitre_new(refused[i], strlen(refused[i]));
        if (re) fail_msg("\"%s\" compiled", refused[i]);
    }
    /* an empty loop: the budget ends it, nothing hangs */
    ts_digitre_t *re = ts_digitre_new("(?:\\d?)*", 8);
    assert_non_null(re);
    assert_int_equal(ts_digitre_full(re, "123", 3), TS_DIGITRE_GAVE_UP);
    assert_int_equal(ts_digitre_full(re, "123456789012345678901234567890123", 33),
                     TS_DIGITRE_GAVE_UP); /* longer than any subject */
    ts_digitre_destroy(re);
    assert_int_equal(ts_digitre_full(NULL, "1", 1), TS_DIGITRE_GAVE_UP);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_metadata_path_agrees_with_libphonenumber),
             cmocka_unit_test(test_metadata_path_edges), cmocka_unit_test(test_digitre_matches),
             cmocka_unit_test(test_digitre_prefix_order),
             cmocka_unit_test(test_digitre_refuses_and_gives_up),
             cmocka_unit_test(test_issue16_table), cmocka_unit_test(test_sms_capable),
             cmocka_unit_test(test_national_formats),
             cmocka_unit_test(test_international_prefix_by_region),
             cmocka_unit_test(test_no_default_region),
             cmocka_unit_test(test_errors_do_not_echo_the_number),
             cmocka_unit_test(test_hostile_input), cmocka_unit_test(test_region))
