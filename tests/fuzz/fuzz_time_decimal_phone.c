/* fuzz_time_decimal_phone - the value parsers (ISO-8601, decimals, phone
 * numbers) on arbitrary bytes; a phone's answer must be libphonenumber's
 * own (ts_phone_parse_reference), whichever path gave it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/model.h"
#include "tillstream/phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (size) memcpy(buf, data, size);
    buf[size] = '\0';
    char err[256], out[32];
    int64_t ms;
    ts_decimal_t d;
    if (ts_time_parse_iso8601(buf, size, &ms, err, sizeof err) == TS_OK)
        ts_time_format_iso8601(ms, out, sizeof out);
    if (ts_decimal_parse(buf, size, &d, err, sizeof err) == TS_OK)
        ts_decimal_format(d, out, sizeof out);
    static const char *const regions[] = {"AU", NULL};
    for (size_t i = 0; i < 2; i++) {
        ts_phone_t ph, ref;
        char ref_err[256];
        ts_err_t rc = ts_phone_parse(buf, regions[i], &ph, err, sizeof err);
        if (rc == TS_OK && (ph.e164[0] != '+' || ph.type == TS_PHONE_INVALID))
            abort(); /* a valid number is always "+digits" with a type */
        if (ts_phone_parse_reference(buf, regions[i], &ref, ref_err, sizeof ref_err) != rc ||
            memcmp(&ph, &ref, sizeof ph) || (rc != TS_OK && strcmp(err, ref_err)))
            abort(); /* the metadata path answered differently */
    }
    free(buf);
    return 0;
}
