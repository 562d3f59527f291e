/* fuzz_time_decimal_phone - the value parsers (ISO-8601, decimals, phone
 * numbers through libphonenumber) on arbitrary bytes. */
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
    ts_phone_t ph;
    if (ts_phone_parse(buf, "AU", &ph, err, sizeof err) == TS_OK &&
        (ph.e164[0] != '+' || ph.type == TS_PHONE_INVALID))
        abort(); /* a valid number is always "+digits" with a type */
    ts_phone_parse(buf, NULL, &ph, err, sizeof err);
    free(buf);
    return 0;
}
