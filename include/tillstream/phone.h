/*
 * tillstream/phone.h - phone numbers as Klaviyo needs them: parsed and
 * validated by libphonenumber (Debian's libphonenumber-dev, C++), written
 * in E.164, with the extension split off and the number's type, which
 * decides whether SMS consent may be sent (docs/decisions.md).
 *
 * src/phone/ is the only folder that includes libphonenumber; this C
 * header hides it. Numbers written "+<digits>" are answered from
 * libphonenumber's own metadata without its ICU regexes (src/phone/fast.cc,
 * 0.6 us instead of ~20 us), every other number by libphonenumber itself;
 * both give the same answer (ts_phone_crosscheck, docs/phone.md). No C++
 * exception crosses into C: every entry point catches everything and
 * returns a code.
 *
 * Threads: every function may be called from any thread at any time.
 * libphonenumber's PhoneNumberUtil::GetInstance() is a process-wide
 * singleton, created on first use (its creation is locked) and never
 * freed: valgrind reports it as "still reachable", never as a leak
 * (tests/valgrind.supp). Its const methods, the only ones used, are safe
 * to call concurrently. The first call builds the metadata (a few ms);
 * config validation makes that call at start when a default country is
 * configured.
 */
#ifndef TILLSTREAM_PHONE_H
#define TILLSTREAM_PHONE_H

#include "tillstream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What libphonenumber says the number is. Only MOBILE and
 * FIXED_LINE_OR_MOBILE (regions such as the US where the two cannot be
 * told apart) can receive SMS: ts_phone_sms_capable(). */
typedef enum {
    TS_PHONE_INVALID = 0, /* not a valid number (the parse failed) */
    TS_PHONE_MOBILE,
    TS_PHONE_FIXED_LINE_OR_MOBILE,
    TS_PHONE_FIXED_LINE,
    TS_PHONE_TOLL_FREE,   /* e.g. AU 1800 */
    TS_PHONE_SHARED_COST, /* e.g. AU 1300 */
    TS_PHONE_VOIP,
    TS_PHONE_OTHER /* premium rate, personal, pager, UAN, voicemail, unknown */
} ts_phone_type_t;

#define TS_PHONE_E164_SIZE 17 /* "+" and at most 15 digits (ITU-T E.164), NUL; 1 spare */
#define TS_PHONE_EXT_SIZE  24 /* libphonenumber keeps at most 20 extension digits */

typedef struct {
    ts_phone_type_t type;
    char e164[TS_PHONE_E164_SIZE];     /* "+61412345678"; "" when invalid */
    char extension[TS_PHONE_EXT_SIZE]; /* digits after "ext", "x", ","...; "" if none */
} ts_phone_t;

/* Parses `input` (any human formatting: spaces, dashes, brackets, "(0)",
 * "+", an extension) and keeps it only if libphonenumber finds it a valid
 * number. National numbers are read as numbers of `default_region`, an
 * ISO 3166-1 alpha-2 code in upper case such as "AU" (as returned by
 * ts_phone_region); NULL or "" accepts only international numbers
 * ("+..."). Fills *out on every call.
 * Returns TS_OK for a valid number (out->type != TS_PHONE_INVALID);
 * TS_ERR_INVALID when it is not one, with the reason in errstr, which
 * never repeats the number (it may end up in logs and dead letters);
 * TS_ERR_NOMEM if libphonenumber ran out of memory; TS_ERR_INTERNAL for
 * any other exception it threw. */
ts_err_t ts_phone_parse(const char *input, const char *default_region, ts_phone_t *out,
                        char *errstr, size_t errstr_size);

/* libphonenumber alone, never the metadata path: what ts_phone_parse must
 * answer for every input (the tests and the fuzz target compare them). */
ts_err_t ts_phone_parse_reference(const char *input, const char *default_region, ts_phone_t *out,
                                  char *errstr, size_t errstr_size);

typedef struct {
    size_t compared;   /* numbers asked both ways */
    size_t fast;       /* of them, answered by the metadata path */
    size_t valid;      /* of them, valid numbers */
    size_t mismatches; /* answers that differ (0 is the only good value) */
} ts_phone_crosscheck_t;

/* Asks ts_phone_parse and ts_phone_parse_reference the same numbers and
 * compares the whole answer (code, E.164, extension, type, reason): for
 * every country calling code libphonenumber knows, each region's example
 * number of every type, variants of them (last digits changed, one digit
 * more or less) and `random_per_code` numbers of random digits (seeded).
 * Fills *st. TS_OK when nothing differs; TS_ERR_INVALID otherwise, the
 * first difference in errstr (with the number: these are synthetic).
 * A test and diagnostic tool: about 20 ms per 1,000 numbers. */
ts_err_t ts_phone_crosscheck(unsigned seed, int random_per_code, ts_phone_crosscheck_t *st,
                             char *errstr, size_t errstr_size);

/* Resolves a configured default country: an ISO region ("AU", "au") or a
 * country calling code in digits ("61", mapped to that code's main region:
 * "1" -> "US", "44" -> "GB", "7" -> "RU"). Writes the upper-case region
 * (3 bytes suffice) into `region`. TS_ERR_INVALID, with a message, for a
 * region libphonenumber does not know or a calling code that is unassigned
 * or not geographic (800, 808, 870, 878, 881-883, 888, 979). */
ts_err_t ts_phone_region(const char *country, char *region, size_t region_size, char *errstr,
                         size_t errstr_size);

/* "mobile", "fixed_line_or_mobile", "fixed_line", "toll_free",
 * "shared_cost", "voip", "other", "invalid". */
const char *ts_phone_type_name(ts_phone_type_t t);

/* True for the types that may receive SMS consent: MOBILE and
 * FIXED_LINE_OR_MOBILE. */
bool ts_phone_sms_capable(ts_phone_type_t t);

#ifdef __cplusplus
}
#endif
#endif
