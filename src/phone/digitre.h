/*
 * digitre.h - the regular expressions of libphonenumber's metadata, over
 * digits only, matched without ICU (src/phone/fast.cc, docs/phone.md).
 *
 * The metadata's number patterns use a small subset of regex syntax:
 * digits, \d, ".", classes ([2-9], [^0], [13-5\d]), groups ((...),
 * (?:...)), alternation, "$" and the quantifiers ? * + {n} {n,} {n,m}
 * (lazy "??" etc.).
 * ts_digitre_new refuses anything else ("^", lookaround, backreferences,
 * possessive quantifiers, letters), and the caller then leaves the number
 * to libphonenumber. The subjects are digit strings, so "." and [^...] are
 * taken over the ten digits only, which is exact for such subjects.
 *
 * Matching is a backtracking program with an explicit stack and a step
 * budget, trying alternatives in the order ICU's backtracking engine does
 * (an alternation left to right, a greedy quantifier's longer choice
 * first, a lazy one's shorter): it answers whether the pattern matches
 * the whole subject (ICU matches()) and where its match at the start
 * ends (lookingAt()). It gives up (TS_DIGITRE_GAVE_UP) rather than run
 * long, and the caller then asks libphonenumber.
 *
 * A compiled pattern is immutable: any thread may match with it at once.
 */
#ifndef TS_PHONE_DIGITRE_H
#define TS_PHONE_DIGITRE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_digitre_s ts_digitre_t;

#define TS_DIGITRE_MAX_SUBJECT 32 /* longer subjects: TS_DIGITRE_GAVE_UP */

typedef enum { TS_DIGITRE_NO = 0, TS_DIGITRE_YES = 1, TS_DIGITRE_GAVE_UP = -1 } ts_digitre_result_t;

/* Compiles `len` bytes of `pattern`. NULL when the pattern is outside the
 * subset above, too large (more than 32,768 instructions once the
 * counted repeats are unrolled) or memory ran out. The caller owns the
 * result: ts_digitre_destroy. */
ts_digitre_t *ts_digitre_new(const char *pattern, size_t len);
void ts_digitre_destroy(ts_digitre_t *re);

/* Does the pattern match all `len` digits of `s` (ICU matches())? */
ts_digitre_result_t ts_digitre_full(const ts_digitre_t *re, const char *s, size_t len);

/* Does the pattern match at the start of `s`, possibly matching nothing
 * (ICU lookingAt(), libphonenumber's Consume())? On TS_DIGITRE_YES, *end
 * (when not NULL) is where that match ends: the match ICU reports. */
ts_digitre_result_t ts_digitre_prefix(const ts_digitre_t *re, const char *s, size_t len,
                                      size_t *end);

#ifdef __cplusplus
}
#endif
#endif
