/*
 * phone.cc - the only file that includes libphonenumber: parsing,
 * validation, E.164 formatting, extension and type of a phone number, and
 * the default region from a configured country (tillstream/phone.h).
 *
 * C++ behind a C header. Every entry point catches every exception:
 * std::bad_alloc becomes TS_ERR_NOMEM, anything else TS_ERR_INTERNAL, so
 * nothing unwinds into C frames. Error messages never repeat the number
 * (they end up in logs and dead-letter details).
 */
#include "phone_internal.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

/* libphonenumber refuses longer input itself (kMaxInputStringLength);
 * checking first keeps a 100 KB string from being copied. */
constexpr size_t kMaxInput = 250;

} // namespace

namespace ts_phone {

const PhoneNumberUtil &util() { return *PhoneNumberUtil::GetInstance(); }

ts_phone_type_t type_of(PhoneNumberUtil::PhoneNumberType t) {
    switch (t) {
    case PhoneNumberUtil::MOBILE: return TS_PHONE_MOBILE;
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return TS_PHONE_FIXED_LINE_OR_MOBILE;
    case PhoneNumberUtil::FIXED_LINE: return TS_PHONE_FIXED_LINE;
    case PhoneNumberUtil::TOLL_FREE: return TS_PHONE_TOLL_FREE;
    case PhoneNumberUtil::SHARED_COST: return TS_PHONE_SHARED_COST;
    case PhoneNumberUtil::VOIP: return TS_PHONE_VOIP;
    default: return TS_PHONE_OTHER;
    }
}

static const char *parse_error(PhoneNumberUtil::ErrorType e, bool have_region) {
    switch (e) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        /* with a default region, only a "+"/IDD number can miss its code */
        return have_region ? "an unassigned country calling code"
                           : "no country calling code (a national number needs "
                             "routing.default_phone_country)";
    case PhoneNumberUtil::NOT_A_NUMBER: return "not a phone number";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD: return "too short after the international prefix";
    case PhoneNumberUtil::TOO_SHORT_NSN: return "too short";
    case PhoneNumberUtil::TOO_LONG_NSN: return "too long";
    default: return "cannot be parsed";
    }
}

/* Why a parsed number is not valid, in words. */
void invalid_reason(const PhoneNumberUtil &u, const PhoneNumber &n, char *errstr,
                    size_t errstr_size) {
    std::string region;
    u.GetRegionCodeForCountryCode(n.country_code(), &region);
    const char *why;
    switch (u.IsPossibleNumberWithReason(n)) {
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
        why = "a local number without its area code";
        break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE: why = "an unassigned country calling code"; break;
    case PhoneNumberUtil::TOO_SHORT: why = "too short"; break;
    case PhoneNumberUtil::TOO_LONG: why = "too long"; break;
    case PhoneNumberUtil::INVALID_LENGTH: why = "of a length no number has"; break;
    default: why = "not an assigned number range"; break;
    }
    ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "not a valid phone number for +%d (%s): %s",
              (int)n.country_code(), region.c_str(), why);
}

ts_err_t parse_reference(const char *input, const char *default_region, ts_phone_t *out,
                         char *errstr, size_t errstr_size) {
    size_t len = strnlen(input, kMaxInput + 1);
    if (len > kMaxInput)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "longer than %zu characters",
                         kMaxInput);
    const PhoneNumberUtil &u = util();
    PhoneNumber n;
    /* "ZZ" is libphonenumber's unknown region: only "+..." numbers parse */
    bool have_region = default_region && *default_region;
    std::string region = have_region ? default_region : "ZZ";
    PhoneNumberUtil::ErrorType e = u.Parse(std::string(input, len), region, &n);
    if (e != PhoneNumberUtil::NO_PARSING_ERROR)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "%s", parse_error(e, have_region));
    /* IsValidNumber(n) is GetNumberType(n) != UNKNOWN (both resolve the
     * region and run the same type match; libphonenumber's
     * IsValidNumberForRegion); one call instead of both halves the cost
     * of a phone, the orders path's biggest (docs/benchmarks.md). */
    PhoneNumberUtil::PhoneNumberType type = u.GetNumberType(n);
    if (type == PhoneNumberUtil::UNKNOWN) {
        invalid_reason(u, n, errstr, errstr_size);
        return TS_ERR_INVALID;
    }
    std::string e164;
    u.Format(n, PhoneNumberUtil::E164, &e164);
    if (e164.size() >= sizeof out->e164 || n.extension().size() >= sizeof out->extension)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "number or extension too long");
    memcpy(out->e164, e164.c_str(), e164.size() + 1);
    memcpy(out->extension, n.extension().c_str(), n.extension().size() + 1);
    out->type = type_of(type);
    return TS_OK;
}

} // namespace ts_phone

namespace {

using namespace ts_phone;

/* "+<digits>" through the metadata path, everything else (and what that
 * path does not answer) through libphonenumber: the same answers. */
ts_err_t parse(const char *input, const char *default_region, ts_phone_t *out, char *errstr,
               size_t errstr_size) {
    size_t len = strnlen(input, 64);
    int rc = parse_fast(input, len, out, errstr, errstr_size);
    if (rc >= 0) return (ts_err_t)rc;
    *out = ts_phone_t{};
    return parse_reference(input, default_region, out, errstr, errstr_size);
}

ts_err_t region_of(const char *country, char *region, size_t region_size, char *errstr,
                   size_t errstr_size) {
    const PhoneNumberUtil &u = util();
    size_t n = strnlen(country, 4);
    bool digits = n >= 1 && n <= 3, alpha = n == 2;
    for (size_t i = 0; i < n; i++) {
        digits = digits && isdigit((unsigned char)country[i]);
        alpha = alpha && isalpha((unsigned char)country[i]);
    }
    std::string r;
    if (digits && country[0] != '0') {
        u.GetRegionCodeForCountryCode(atoi(country), &r);
        if (r.size() != 2 || r == "ZZ")
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "calling code %s is %s", country,
                             r == "001" ? "not a country's (non-geographic)" : "not assigned");
    } else if (alpha) {
        r = {(char)toupper((unsigned char)country[0]), (char)toupper((unsigned char)country[1])};
        if (u.GetCountryCodeForRegion(r) == 0)
            return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                             "\"%s\" is not a region libphonenumber knows", r.c_str());
    } else {
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "expected an ISO 3166 region (e.g. \"AU\") or a country calling code "
                         "(1-3 digits, e.g. \"61\")");
    }
    if (r.size() >= region_size)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "region buffer too small");
    memcpy(region, r.c_str(), r.size() + 1);
    return TS_OK;
}

} // namespace

namespace {

using parse_fn = ts_err_t (*)(const char *, const char *, ts_phone_t *, char *, size_t);

/* The C boundary: every exception becomes a code (std::bad_alloc
 * TS_ERR_NOMEM, anything else TS_ERR_INTERNAL). */
template <class F> ts_err_t catching(char *errstr, size_t errstr_size, F f) {
    try {
        return f();
    } catch (const std::bad_alloc &) {
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
    } catch (...) {
        return ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "libphonenumber failed");
    }
}

/* A parse behind the C boundary; *out cleared unless the number is valid. */
ts_err_t guarded(parse_fn fn, const char *input, const char *default_region, ts_phone_t *out,
                 char *errstr, size_t errstr_size) {
    *out = ts_phone_t{};
    if (!input) return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "no phone number");
    ts_err_t rc = catching(errstr, errstr_size,
                           [&] { return fn(input, default_region, out, errstr, errstr_size); });
    if (rc != TS_OK) *out = ts_phone_t{};
    return rc;
}

} // namespace

extern "C" ts_err_t ts_phone_parse(const char *input, const char *default_region, ts_phone_t *out,
                                   char *errstr, size_t errstr_size) {
    return guarded(parse, input, default_region, out, errstr, errstr_size);
}

extern "C" ts_err_t ts_phone_parse_reference(const char *input, const char *default_region,
                                             ts_phone_t *out, char *errstr, size_t errstr_size) {
    return guarded(parse_reference, input, default_region, out, errstr, errstr_size);
}

extern "C" ts_err_t ts_phone_crosscheck(unsigned seed, int random_per_code,
                                        ts_phone_crosscheck_t *st, char *errstr,
                                        size_t errstr_size) {
    *st = ts_phone_crosscheck_t{};
    return catching(errstr, errstr_size,
                    [&] { return crosscheck(seed, random_per_code, st, errstr, errstr_size); });
}

extern "C" ts_err_t ts_phone_region(const char *country, char *region, size_t region_size,
                                    char *errstr, size_t errstr_size) {
    if (region_size) region[0] = '\0';
    if (!country) return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "no country");
    return catching(errstr, errstr_size,
                    [&] { return region_of(country, region, region_size, errstr, errstr_size); });
}

extern "C" const char *ts_phone_type_name(ts_phone_type_t t) {
    switch (t) {
    case TS_PHONE_INVALID: return "invalid";
    case TS_PHONE_MOBILE: return "mobile";
    case TS_PHONE_FIXED_LINE_OR_MOBILE: return "fixed_line_or_mobile";
    case TS_PHONE_FIXED_LINE: return "fixed_line";
    case TS_PHONE_TOLL_FREE: return "toll_free";
    case TS_PHONE_SHARED_COST: return "shared_cost";
    case TS_PHONE_VOIP: return "voip";
    case TS_PHONE_OTHER: return "other";
    }
    return "invalid";
}

extern "C" bool ts_phone_sms_capable(ts_phone_type_t t) {
    return t == TS_PHONE_MOBILE || t == TS_PHONE_FIXED_LINE_OR_MOBILE;
}
