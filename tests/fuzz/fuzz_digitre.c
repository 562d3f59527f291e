/* fuzz_digitre - the phone metadata's pattern matcher (src/phone/digitre.h)
 * on arbitrary patterns and subjects: it compiles or refuses, and matches
 * or gives up, without crashing, hanging or leaking. Input: pattern, a
 * NUL byte, subject (its non-digits dropped). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phone/digitre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    char subject[TS_DIGITRE_MAX_SUBJECT + 8];
    size_t slen = 0;
    for (size_t i = plen + 1; nul && i < size && slen < sizeof subject; i++)
        if (data[i] >= '0' && data[i] <= '9') subject[slen++] = (char)data[i];
    ts_digitre_t *re = ts_digitre_new((const char *)data, plen);
    if (!re) return 0;
    size_t end = 0;
    ts_digitre_result_t full = ts_digitre_full(re, subject, slen);
    ts_digitre_result_t pre = ts_digitre_prefix(re, subject, slen, &end);
    if (pre == TS_DIGITRE_YES && end > slen) abort();
    if (full == TS_DIGITRE_YES && pre == TS_DIGITRE_NO)
        abort(); /* a full match is a prefix match */
    ts_digitre_destroy(re);
    return 0;
}
