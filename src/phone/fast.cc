/*
 * fast.cc - phone numbers written "+<digits>" answered from libphonenumber's
 * own metadata, without its ICU regexes (phone_internal.h, docs/phone.md).
 *
 * libphonenumber spends ~20 us on such a number, nearly all of it in ICU
 * (a RegexMatcher built per match, UTF-16 copies); its regex engine cannot
 * be swapped from outside. The steps below are libphonenumber's own for
 * this input shape (PhoneNumberUtil::ParseHelper, GetNumberType,
 * GetRegionCodeForNumberFromRegionList, IsNumberMatchingDesc), on the
 * metadata it was built with (metadata_get()), with the patterns matched
 * by digitre.c. Wherever they would take a branch not rebuilt here (a
 * national prefix or a carrier code to strip, a leading zero, a
 * non-geographic code, a pattern digitre.c refuses or gives up on) the
 * number goes back to libphonenumber. A calling code is used only after
 * its regions' example numbers, and variants of them, got the same answer
 * both ways; ts_phone_crosscheck (tests/unit/test_phone.c) compares many
 * more.
 *
 * State: one table per process, built on first use, a calling code at a
 * time (under a mutex), never freed (like libphonenumber's singleton:
 * "still reachable"). Built entries are immutable, so lookups after the
 * first are lock-free reads of an atomic pointer per calling code.
 */
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <phonenumbers/phonemetadata.pb.h>

#include "digitre.h"
#include "phone_internal.h"

namespace i18n {
namespace phonenumbers {
/* The compiled-in metadata PhoneNumberUtil loads (libphonenumber's
 * metadata.h, not installed by Debian; exported by libphonenumber.so). */
int metadata_size();
const void *metadata_get();
} // namespace phonenumbers
} // namespace i18n

namespace ts_phone {
namespace {

using i18n::phonenumbers::PhoneMetadata;
using i18n::phonenumbers::PhoneMetadataCollection;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberDesc;
using i18n::phonenumbers::PhoneNumberUtil;
using Type = PhoneNumberUtil::PhoneNumberType;

constexpr int kMaxCallingCode = 999;
constexpr size_t kMinNsn = 2, kMaxNsn = 17; /* PhoneNumberUtil::kMin/kMaxLengthForNsn */
constexpr int kGaveUp = -2;                 /* a type helper's "ask libphonenumber" */

struct Re {
    ts_digitre_t *re = nullptr;
    bool refused = false; /* digitre.c cannot compile it */
    void compile(const std::string &p) {
        re = ts_digitre_new(p.data(), p.size());
        refused = re == nullptr;
    }
};

/* PhoneNumberDesc: possible lengths and the national number pattern. */
struct Desc {
    std::vector<int> lengths;
    bool empty = true; /* no pattern: never matches (RegexBasedMatcher) */
    Re re;
    void load(const PhoneNumberDesc &d) {
        lengths.assign(d.possible_length().begin(), d.possible_length().end());
        empty = d.national_number_pattern().empty();
        if (!empty) re.compile(d.national_number_pattern());
    }
    /* IsNumberMatchingDesc: 1, 0, or -1 (gave up) */
    int match(const char *nsn, size_t len) const {
        if (!lengths.empty() &&
            std::find(lengths.begin(), lengths.end(), (int)len) == lengths.end())
            return 0;
        if (empty) return 0;
        return ts_digitre_full(re.re, nsn, len);
    }
};

struct Region {
    Desc general, premium, toll_free, shared_cost, voip, personal, pager, uan, voicemail, fixed,
        mobile;
    bool same_mobile_fixed = false;
    bool has_leading = false;
    Re leading;
    bool has_nprefix = false; /* national_prefix_for_parsing */
    Re nprefix;
    bool refused = false;

    void load(const PhoneMetadata &m) {
        const std::pair<Desc *, const PhoneNumberDesc *> descs[] = {
            {&general, &m.general_desc()},
            {&premium, &m.premium_rate()},
            {&toll_free, &m.toll_free()},
            {&shared_cost, &m.shared_cost()},
            {&voip, &m.voip()},
            {&personal, &m.personal_number()},
            {&pager, &m.pager()},
            {&uan, &m.uan()},
            {&voicemail, &m.voicemail()},
            {&fixed, &m.fixed_line()},
            {&mobile, &m.mobile()}};
        for (const auto &d : descs) {
            d.first->load(*d.second);
            refused = refused || d.first->re.refused;
        }
        same_mobile_fixed = m.same_mobile_and_fixed_line_pattern();
        if ((has_leading = m.has_leading_digits())) leading.compile(m.leading_digits());
        if ((has_nprefix = !m.national_prefix_for_parsing().empty()))
            nprefix.compile(m.national_prefix_for_parsing());
        refused = refused || leading.refused || nprefix.refused;
    }

    /* GetNumberTypeHelper; kGaveUp when a match gave up. */
    int type(const char *nsn, size_t len) const {
        int g = general.match(nsn, len);
        if (g <= 0) return g < 0 ? kGaveUp : PhoneNumberUtil::UNKNOWN;
        const std::pair<const Desc *, Type> ordered[] = {
            {&premium, PhoneNumberUtil::PREMIUM_RATE},
            {&toll_free, PhoneNumberUtil::TOLL_FREE},
            {&shared_cost, PhoneNumberUtil::SHARED_COST},
            {&voip, PhoneNumberUtil::VOIP},
            {&personal, PhoneNumberUtil::PERSONAL_NUMBER},
            {&pager, PhoneNumberUtil::PAGER},
            {&uan, PhoneNumberUtil::UAN},
            {&voicemail, PhoneNumberUtil::VOICEMAIL}};
        for (const auto &o : ordered) {
            int r = o.first->match(nsn, len);
            if (r != 0) return r < 0 ? kGaveUp : o.second;
        }
        int f = fixed.match(nsn, len);
        if (f < 0) return kGaveUp;
        if (f) {
            if (same_mobile_fixed) return PhoneNumberUtil::FIXED_LINE_OR_MOBILE;
            int mm = mobile.match(nsn, len);
            return mm < 0 ? kGaveUp
                   : mm   ? PhoneNumberUtil::FIXED_LINE_OR_MOBILE
                          : PhoneNumberUtil::FIXED_LINE;
        }
        if (same_mobile_fixed) return PhoneNumberUtil::UNKNOWN;
        int mm = mobile.match(nsn, len);
        return mm < 0 ? kGaveUp : mm ? PhoneNumberUtil::MOBILE : PhoneNumberUtil::UNKNOWN;
    }
};

/* A calling code's regions in libphonenumber's order (main region first). */
struct CallingCode {
    std::vector<std::unique_ptr<Region>> regions;
    size_t main = 0;     /* GetRegionCodeForCountryCode's region */
    bool usable = false; /* built, nothing refused, example numbers agreed */
};

struct Table {
    std::once_flag once;
    PhoneMetadataCollection collection;
    std::unordered_map<std::string, const PhoneMetadata *> by_region;
    bool known[kMaxCallingCode + 1] = {}; /* calling codes libphonenumber has (set once) */
    std::atomic<CallingCode *> codes[kMaxCallingCode + 1] = {}; /* built on first use */
    std::mutex build;
};

Table &table() {
    static Table *t = new Table(); /* never freed: "still reachable" */
    std::call_once(t->once, [] {
        Table &tt = *t;
        if (!tt.collection.ParseFromArray(i18n::phonenumbers::metadata_get(),
                                          i18n::phonenumbers::metadata_size()))
            return; /* no code known: every number goes to libphonenumber */
        for (int i = 0; i < tt.collection.metadata_size(); i++) {
            const PhoneMetadata &m = tt.collection.metadata(i);
            if (m.id() != "001") tt.by_region.emplace(m.id(), &m);
        }
        std::set<int> calling;
        util().GetSupportedCallingCodes(&calling);
        for (int cc : calling)
            if (cc > 0 && cc <= kMaxCallingCode) tt.known[cc] = true;
    });
    return *t;
}

int answer(const char *input, size_t len, const CallingCode *code, ts_phone_t *out, char *errstr,
           size_t errstr_size);

/* Compares one number both ways; false (and the difference in errstr)
 * when they differ. Counts into *st when it is not NULL. */
bool agree(const std::string &number, const CallingCode *code, ts_phone_crosscheck_t *st,
           char *errstr, size_t errstr_size) {
    /* the metadata path ignores the default region for "+" numbers; so
     * must libphonenumber: ask it with one of a few */
    static const char *const regions[] = {nullptr, "US", "GB", "AU", "IT", "DE", "BR"};
    const char *region =
        st ? regions[st->compared % (sizeof regions / sizeof regions[0])] : nullptr;
    ts_phone_t f{}, r{};
    char fe[160] = "", re[160] = "";
    int frc = answer(number.c_str(), number.size(), code, &f, fe, sizeof fe);
    ts_err_t rrc = parse_reference(number.c_str(), region, &r, re, sizeof re);
    if (rrc != TS_OK) r = ts_phone_t{};
    if (st) {
        st->compared++;
        st->fast += frc >= 0;
        st->valid += rrc == TS_OK;
    }
    if (frc < 0) return true;
    bool same = frc == (int)rrc && !strcmp(f.e164, r.e164) && !strcmp(f.extension, r.extension) &&
                f.type == r.type && (rrc == TS_OK || !strcmp(fe, re));
    if (!same) {
        if (st) st->mismatches++;
        ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                  "%s (region %s): metadata path %d %s %s \"%s\", libphonenumber %d %s %s \"%s\"",
                  number.c_str(), region ? region : "none", frc, f.e164, ts_phone_type_name(f.type),
                  fe, (int)rrc, r.e164, ts_phone_type_name(r.type), re);
    }
    return same;
}

/* The numbers a calling code is checked with: each region's example of
 * every type, with its last digit changed, one digit more and one less. */
std::vector<std::string> examples(int cc) {
    static const Type types[] = {
        PhoneNumberUtil::FIXED_LINE,      PhoneNumberUtil::MOBILE,      PhoneNumberUtil::TOLL_FREE,
        PhoneNumberUtil::PREMIUM_RATE,    PhoneNumberUtil::SHARED_COST, PhoneNumberUtil::VOIP,
        PhoneNumberUtil::PERSONAL_NUMBER, PhoneNumberUtil::PAGER,       PhoneNumberUtil::UAN,
        PhoneNumberUtil::VOICEMAIL};
    const PhoneNumberUtil &u = util();
    std::list<std::string> regions;
    u.GetRegionCodesForCountryCallingCode(cc, &regions);
    std::vector<std::string> out;
    for (const std::string &r : regions) {
        for (Type t : types) {
            PhoneNumber n;
            if (!u.GetExampleNumberForType(r, t, &n)) continue;
            std::string e;
            u.Format(n, PhoneNumberUtil::E164, &e);
            if (e.size() < 3) continue;
            std::string changed = e;
            changed.back() = (char)('0' + (changed.back() - '0' + 1) % 10);
            out.insert(out.end(), {e, changed, e + "5", e.substr(0, e.size() - 1)});
        }
    }
    return out;
}

CallingCode *build(int cc) {
    auto code = std::make_unique<CallingCode>();
    std::list<std::string> regions;
    util().GetRegionCodesForCountryCallingCode(cc, &regions);
    std::string main;
    util().GetRegionCodeForCountryCode(cc, &main);
    bool ok = !regions.empty();
    for (const std::string &r : regions) {
        if (r == main) code->main = code->regions.size();
        auto it = table().by_region.find(r);
        if (it == table().by_region.end()) { /* "001": non-geographic */
            ok = false;
            break;
        }
        code->regions.push_back(std::make_unique<Region>());
        code->regions.back()->load(*it->second);
        ok = ok && !code->regions.back()->refused;
    }
    if (ok) {
        char err[2];
        for (const std::string &n : examples(cc))
            if (!(ok = agree(n, code.get(), nullptr, err, sizeof err))) break;
    }
    code->usable = ok;
    return code.release(); /* kept for the process, like the table */
}

const CallingCode *calling_code(int cc) {
    Table &t = table();
    CallingCode *c = t.codes[cc].load(std::memory_order_acquire);
    if (c) return c;
    std::lock_guard<std::mutex> lock(t.build);
    if (!(c = t.codes[cc].load(std::memory_order_relaxed))) {
        c = build(cc);
        t.codes[cc].store(c, std::memory_order_release);
    }
    return c;
}

/* GetRegionCodeForNumber, then GetNumberTypeHelper for that region:
 * a Type, or kGaveUp. */
int number_type(const CallingCode *code, const char *nsn, size_t len) {
    const Region *region = nullptr;
    if (code->regions.size() == 1) region = code->regions[0].get();
    for (size_t i = 0; !region && i < code->regions.size(); i++) {
        const Region &r = *code->regions[i];
        int m =
            r.has_leading ? ts_digitre_prefix(r.leading.re, nsn, len, nullptr) : r.type(nsn, len);
        if (m == kGaveUp || m == TS_DIGITRE_GAVE_UP) return kGaveUp;
        if (r.has_leading ? m == TS_DIGITRE_YES : m != PhoneNumberUtil::UNKNOWN) region = &r;
    }
    return region ? region->type(nsn, len) : PhoneNumberUtil::UNKNOWN;
}

/* The metadata path for "+<digits>" with `code` the number's calling
 * code (NULL: look it up, and use it only if usable). */
int answer(const char *input, size_t len, const CallingCode *code, ts_phone_t *out, char *errstr,
           size_t errstr_size) {
    if (len < 5 || len > 1 + 3 + kMaxNsn || input[0] != '+' || input[1] == '0') return -1;
    for (size_t i = 1; i < len; i++)
        if (input[i] < '0' || input[i] > '9') return -1;
    Table &t = table();
    int cc = 0;
    size_t cc_len = 0; /* ExtractCountryCode: the shortest known prefix */
    for (size_t i = 1; i <= 3 && !cc_len; i++) {
        cc = cc * 10 + (input[i] - '0');
        if (t.known[cc]) cc_len = i;
    }
    if (!cc_len) return -1;
    const char *nsn = input + 1 + cc_len;
    size_t nsn_len = len - 1 - cc_len;
    /* a leading zero (Italy) or a length libphonenumber refuses: its path */
    if (nsn_len < kMinNsn || nsn_len > kMaxNsn || nsn[0] == '0') return -1;
    if (!code && !(code = calling_code(cc))->usable) return -1;
    /* ParseHelper strips a national prefix (the main region's metadata,
     * GetRegionCodeForCountryCode) where its pattern's match at the start
     * consumes digits: not rebuilt here. A match of nothing (AU's
     * "0|(183[12])|" ends in an empty alternative) strips nothing and
     * captures nothing: the number stays as it is. */
    const Region &main = *code->regions[code->main];
    size_t prefix_end = 0;
    if (main.has_nprefix) {
        ts_digitre_result_t r = ts_digitre_prefix(main.nprefix.re, nsn, nsn_len, &prefix_end);
        if (r == TS_DIGITRE_GAVE_UP || (r == TS_DIGITRE_YES && prefix_end > 0)) return -1;
    }
    int type = number_type(code, nsn, nsn_len);
    if (type == kGaveUp) return -1;
    if (type == PhoneNumberUtil::UNKNOWN) {
        PhoneNumber n;
        n.set_country_code(cc);
        n.set_national_number(strtoull(std::string(nsn, nsn_len).c_str(), nullptr, 10));
        invalid_reason(util(), n, errstr, errstr_size);
        return TS_ERR_INVALID;
    }
    if (len >= sizeof out->e164) return -1; /* libphonenumber's "too long" reply */
    memcpy(out->e164, input, len);          /* E.164 is "+", code, NSN: the input */
    out->e164[len] = '\0';
    out->extension[0] = '\0';
    out->type = type_of((Type)type);
    return TS_OK;
}

} // namespace

int parse_fast(const char *input, size_t len, ts_phone_t *out, char *errstr, size_t errstr_size) {
    return answer(input, len, nullptr, out, errstr, errstr_size);
}

ts_err_t crosscheck(unsigned seed, int random_per_code, ts_phone_crosscheck_t *st, char *errstr,
                    size_t errstr_size) {
    std::mt19937 rng(seed);
    Table &t = table();
    bool first = true;
    char err[256];
    for (int cc = 1; cc <= kMaxCallingCode; cc++) {
        if (!t.known[cc]) continue;
        std::vector<std::string> numbers = examples(cc);
        size_t n_examples = numbers.size();
        std::string prefix = "+" + std::to_string(cc);
        for (int i = 0; i < random_per_code; i++) {
            std::string n;
            if (i % 2 && n_examples) { /* an example with its last 1-6 digits redrawn */
                n = numbers[rng() % n_examples];
                size_t k = 1 + rng() % 6;
                for (size_t j = n.size() > k + prefix.size() ? n.size() - k : prefix.size();
                     j < n.size(); j++)
                    n[j] = (char)('0' + rng() % 10);
            } else { /* random digits of a random length */
                n = prefix;
                for (size_t k = kMinNsn + rng() % (kMaxNsn - kMinNsn + 1); k > 0; k--)
                    n += (char)('0' + rng() % 10);
            }
            numbers.push_back(n);
        }
        for (const std::string &n : numbers) {
            /* code NULL: the path ts_phone_parse takes, the code's own check included */
            if (!agree(n, nullptr, st, err, sizeof err) && first) {
                ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "%s", err);
                first = false;
            }
        }
    }
    return st->mismatches ? TS_ERR_INVALID : TS_OK;
}

} // namespace ts_phone
