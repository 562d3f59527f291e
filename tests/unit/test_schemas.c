/* test_schemas.c - the Avro schemas in schemas/ parse with Avro-C and carry the contract fields. */
#include "testlib.h"
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *name) {
    char path[1024];
    const char *d = getenv("TS_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/schemas/%s", d ? d : TS_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void check(const char *file, const char *const *required) {
    avro_schema_t s;
    char *json = slurp(file);
    if (avro_schema_from_json_length(json, strlen(json), &s))
        fail_msg("%s: %s", file, avro_strerror());
    assert_true(is_avro_record(s));
    for (int i = 0; required[i]; i++)
        if (!avro_schema_record_field_get(s, required[i]))
            fail_msg("%s lacks %s", file, required[i]);
    avro_schema_decref(s);
}

static void test_customer_schema(void **state) {
    (void)state;
    static const char *const req[] = {"customer_id",     "email",
                                      "phone",           "first_name",
                                      "last_name",       "home_outlet_id",
                                      "email_consent",   "sms_consent",
                                      "billing_address", "date_of_birth",
                                      "loyalty_member",  "created_at",
                                      "updated_at",      "email_consent_at",
                                      "sms_consent_at",  NULL};
    check("customer.avsc", req);
}

static void test_order_schema(void **state) {
    (void)state;
    static const char *const req[] = {"order_id", "customer_id", "outlet_id", "outlet_name",
                                      "channel",  "status",      "is_test",   "occurred_at",
                                      "currency", "total",       "discount",  "tax",
                                      "lines",    "refund",      "customer",  NULL};
    check("order.avsc", req);
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_customer_schema),
             cmocka_unit_test(test_order_schema))
