/*
 * phone_internal.h - what phone.cc and fast.cc share (C++, src/phone/ only).
 *
 * phone.cc asks libphonenumber (the reference); fast.cc answers the
 * numbers written "+<digits>" from libphonenumber's own metadata without
 * ICU, and hands every other number back (docs/phone.md).
 */
#ifndef TS_PHONE_INTERNAL_H
#define TS_PHONE_INTERNAL_H

#include "tillstream/phone.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

namespace ts_phone {

/* libphonenumber's PhoneNumberUtil singleton. */
const i18n::phonenumbers::PhoneNumberUtil &util();

/* The library's type as ts_phone_type_t. */
ts_phone_type_t type_of(i18n::phonenumbers::PhoneNumberUtil::PhoneNumberType t);

/* Why a parsed number is not valid, in words (TS_ERR_INVALID in errstr). */
void invalid_reason(const i18n::phonenumbers::PhoneNumberUtil &u,
                    const i18n::phonenumbers::PhoneNumber &n, char *errstr, size_t errstr_size);

/* libphonenumber alone: Parse, GetNumberType, Format. May throw. */
ts_err_t parse_reference(const char *input, const char *default_region, ts_phone_t *out,
                         char *errstr, size_t errstr_size);

/* The metadata path (fast.cc): TS_OK or TS_ERR_INVALID exactly as
 * parse_reference would answer, with *out and errstr filled; or -1 when
 * it does not answer this number (then ask parse_reference). May throw. */
int parse_fast(const char *input, size_t len, ts_phone_t *out, char *errstr, size_t errstr_size);

/* Compares parse_fast with parse_reference over every calling code's
 * example numbers, variants of them and `random_per_code` random
 * numbers per code (fast.cc). May throw. */
ts_err_t crosscheck(unsigned seed, int random_per_code, ts_phone_crosscheck_t *st, char *errstr,
                    size_t errstr_size);

} // namespace ts_phone

#endif
