/*
 * decode_json.c - JSON customers and orders (the same field names as the
 * Avro schemas in schemas/) into the record model. Errors carry the field
 * path ("lines[2].quantity: expected a number or decimal string"), which
 * becomes the DECODE_ERROR dead letter's detail. Unknown fields are
 * ignored so producers can add fields before we read them.
 */
#include "tillstream/decode.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tillstream/hash.h"
#include "tillstream/model.h"

/* ---- cJSON trees on a per-thread scratch arena ----------------------------
 * cJSON mallocs every node and string of a tree (some 50 per order) and
 * frees each again. Its allocator hooks are process-wide, so they are
 * installed once, before main (a constructor: no other thread runs yet),
 * and they send an allocation to this thread's scratch arena only while
 * this thread is inside one of the decoders below (tls_scope); anywhere
 * else (other threads, other cJSON users, this thread outside a decode)
 * they are plain malloc and free. Inside a decode nothing is freed: the
 * scratch arena is reset when the next decode starts, so a tree costs a
 * few pointer bumps and no walk to delete it. No tree leaves a decode.
 * The decoded record still lives in the caller's arena (strings copied),
 * so callers that keep records (the dry run's customer map) keep no trees.
 * If something else replaced the hooks, cJSON_Delete still frees. */
static _Thread_local ts_arena_t *tls_scratch;
static _Thread_local bool tls_scope;
static _Thread_local size_t tls_allocs; /* served from the scratch arena in this decode */
static pthread_key_t scratch_key;       /* destroys a thread's scratch arena at its exit */

/* The scratch arena is taken in chunks of SCRATCH_CHUNK bytes and a
 * node or string is a bump of tls_cur in the current chunk (some 140 of
 * them per order: a call into the arena each was 4 % of the orders
 * path's instructions); a larger allocation gets its own arena block. */
#define SCRATCH_CHUNK 8192
static _Thread_local char *tls_cur;   /* the current chunk's free bytes */
static _Thread_local size_t tls_left; /* how many */

static void *hook_malloc(size_t n) {
    if (!tls_scope) return malloc(n);
    tls_allocs++;
    n = n ? (n + 7u) & ~(size_t)7u : 8; /* the arena's alignment */
    if (tls_left < n) {
        if (n > SCRATCH_CHUNK / 4) return ts_arena_alloc(tls_scratch, n);
        if (!(tls_cur = ts_arena_alloc(tls_scratch, SCRATCH_CHUNK))) return NULL;
        tls_left = SCRATCH_CHUNK;
    }
    void *p = tls_cur;
    tls_cur += n;
    tls_left -= n;
    return p;
}
static void hook_free(void *p) {
    if (!tls_scope) free(p);
}
static void scratch_destroy(void *a) { ts_arena_destroy(a); }

__attribute__((constructor)) static void install_hooks(void) {
    if (pthread_key_create(&scratch_key, scratch_destroy) != 0) return; /* plain malloc */
    cJSON_Hooks h = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&h);
}

static void scope_enter(void) {
    if (!tls_scratch) {
        if (!(tls_scratch = ts_arena_new(1 << 16))) return; /* plain malloc */
        pthread_setspecific(scratch_key, tls_scratch);
    }
    ts_arena_reset(tls_scratch);
    tls_left = 0;
    tls_allocs = 0;
    tls_scope = true;
}
static void scope_leave(void) { tls_scope = false; }
/* A tree on the scratch arena goes with the next reset; one that cJSON
 * built with other hooks is deleted. */
static void tree_delete(cJSON *t) {
    if (!tls_allocs) cJSON_Delete(t);
}

/* cJSON's type tests inline (cJSON_IsString and the rest are calls into
 * the library, millions per second here): the same tests as cJSON 1.7's,
 * on the low byte of type. */
static inline bool json_is(const cJSON *v, int type) { return v && (v->type & 0xFF) == type; }
static inline bool json_is_bool(const cJSON *v) {
    return v && (v->type & (cJSON_True | cJSON_False)) != 0;
}

#define BAD(...) ts_seterr(errstr, errstr_size, TS_ERR_INVALID, __VA_ARGS__)
/* the same, in the functions that carry a dctx_t *c */
#define CBAD(...) ts_seterr(c->errstr, c->errstr_size, TS_ERR_INVALID, __VA_ARGS__)

typedef struct {
    ts_arena_t *arena;
    char *errstr;
    size_t errstr_size;
    char path[128]; /* prefix, e.g. "lines[2]." */
    bool nul_subst; /* the text had \u0000 escapes, parsed as C0 80 (parse_root) */
} dctx_t;

/* The members of one JSON object, read in one pass: each member's key is
 * looked up once in the static key set of the object's kind (a hash
 * probe and one strcmp) and the member lands in its field's slot, so a
 * field is then an array index; unknown keys are ignored. Of repeated
 * keys the first wins, as in cJSON_GetObjectItemCaseSensitive (a lookup
 * per field, hashing its name each time, was 4 % of the orders path). */
#define KEYSET_SLOTS 64
#define KIDX_MAX     20 /* fields of the largest key set */
typedef struct {
    const char *const *names; /* the fields, in their enum's order */
    int n;
    uint64_t hash[KEYSET_SLOTS];
    int8_t slot[KEYSET_SLOTS]; /* 1 + index into names, 0 = empty */
    bool ident[KIDX_MAX];      /* ts_field_is_identifier(names[i]) */
    size_t len[KIDX_MAX];      /* strlen(names[i]) */
} keyset_t;

typedef struct {
    const keyset_t *ks;
    const cJSON *v[KIDX_MAX];
} kidx_t;

/* The key sets: an X-macro per object kind gives the names and the enum
 * (prefix C_ customer, A_ address, O_ order, L_ order line, F_ refund).
 * The order's embedded customer is read with the customer set (its first
 * members are the person fields get_person reads). */
// clang-format off
#define CUSTOMER_KEYS(X) \
    X(C, email) X(C, phone) X(C, first_name) X(C, last_name) X(C, home_outlet_id) \
    X(C, customer_id) X(C, email_consent) X(C, sms_consent) X(C, loyalty_member) \
    X(C, date_of_birth) X(C, created_at) X(C, updated_at) X(C, email_consent_at) \
    X(C, sms_consent_at) X(C, billing_address)
#define ADDRESS_KEYS(X) \
    X(A, line1) X(A, line2) X(A, city) X(A, region) X(A, postcode) X(A, country)
#define ORDER_KEYS(X) \
    X(O, order_id) X(O, customer_id) X(O, outlet_id) X(O, outlet_name) X(O, channel) \
    X(O, status) X(O, is_test) X(O, occurred_at) X(O, currency) X(O, total) X(O, discount) \
    X(O, tax) X(O, lines) X(O, refund) X(O, customer)
#define LINE_KEYS(X) \
    X(L, line_id) X(L, product_id) X(L, sku) X(L, name) X(L, quantity) X(L, unit_price) \
    X(L, row_total) X(L, discount) X(L, brand) X(L, image_url) X(L, product_url) \
    X(L, categories)
#define REFUND_KEYS(X) X(F, refund_id) X(F, reason) X(F, amount)
// clang-format on

#define KEY_ENUM(p, k) p##_##k,
#define KEY_NAME(p, k) #k,
/* enum { <prefix>_<key>..., count }, the names and ks_<set> */
#define KEYSET(set, KEYS, count)                                                                   \
    enum { KEYS(KEY_ENUM) count };                                                                 \
    _Static_assert(count <= KIDX_MAX, "kidx_t holds no more fields");                              \
    static const char *const set##_names[] = {KEYS(KEY_NAME)};                                     \
    static keyset_t ks_##set = {set##_names, count, {0}, {0}, {0}, {0}};
KEYSET(customer, CUSTOMER_KEYS, C_N)
KEYSET(address, ADDRESS_KEYS, A_N)
KEYSET(order, ORDER_KEYS, O_N)
KEYSET(line, LINE_KEYS, L_N)
KEYSET(refund, REFUND_KEYS, F_N)
_Static_assert(KIDX_MAX * 2 <= KEYSET_SLOTS, "a key set's table is at most half full");

/* A key's hash for the key sets: its length and its first, middle and
 * last bytes (field names differ in those; a collision only costs a
 * probe, the match is confirmed by length and bytes). Cheaper than a
 * hash of every byte, once per member of every object decoded. */
static uint64_t key_hash(const char *s, size_t n) {
    if (!n) return 0;
    uint64_t h = n | (uint64_t)(unsigned char)s[0] << 8 | (uint64_t)(unsigned char)s[n / 2] << 16 |
                 (uint64_t)(unsigned char)s[n - 1] << 24;
    return ts_hash_finish(h * 0x9E3779B97F4A7C15u);
}

/* Fills a key set's table (from the constructor, before any thread). */
static void keyset_init(keyset_t *ks) {
    for (int i = 0; i < ks->n; i++) {
        ks->len[i] = strlen(ks->names[i]);
        uint64_t h = key_hash(ks->names[i], ks->len[i]);
        size_t j = h & (KEYSET_SLOTS - 1);
        while (ks->slot[j]) j = (j + 1) & (KEYSET_SLOTS - 1);
        ks->slot[j] = (int8_t)(i + 1);
        ks->hash[j] = h;
        ks->ident[i] = ts_field_is_identifier(ks->names[i]);
    }
}

__attribute__((constructor)) static void keysets_init(void) {
    keyset_init(&ks_customer);
    keyset_init(&ks_address);
    keyset_init(&ks_order);
    keyset_init(&ks_line);
    keyset_init(&ks_refund);
}

static inline uint64_t load8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t load4(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* memcmp(a, b, n) == 0 for a key set name's length, inline: two
 * overlapping loads of 8 (or 4) bytes from each cover n from 4 to 16 */
static inline bool key_eq(const char *a, const char *b, size_t n) {
    if (n >= 8 && n <= 16) return load8(a) == load8(b) && load8(a + n - 8) == load8(b + n - 8);
    if (n >= 4 && n < 8) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
    return !memcmp(a, b, n);
}

static void kidx_build(kidx_t *x, const keyset_t *ks, const cJSON *obj) {
    memset(x->v, 0, sizeof x->v);
    x->ks = ks;
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (!m->string) continue;
        size_t n = strlen(m->string);
        uint64_t h = key_hash(m->string, n);
        for (size_t j = h & (KEYSET_SLOTS - 1); ks->slot[j]; j = (j + 1) & (KEYSET_SLOTS - 1)) {
            int i = ks->slot[j] - 1;
            if (ks->hash[j] == h && ks->len[i] == n && key_eq(ks->names[i], m->string, n)) {
                if (!x->v[i]) x->v[i] = m;
                break;
            }
        }
    }
}

static const cJSON *kidx_get(const kidx_t *x, int key) { return x->v[key]; }
static const char *kidx_name(const kidx_t *x, int key) { return x->ks->names[key]; }

/* The text rule (model.h: NUL anywhere and invalid UTF-8 in identifiers
 * are DECODE_ERRORs) for the string value of `key`. */
static ts_err_t check_text(dctx_t *c, const char *key, bool identifier, const char *s, size_t n) {
    char why[96];
    if (c->nul_subst) {
        const char *z = s;
        while ((z = memchr(z, 0xC0, (size_t)(s + n - z))) != NULL && z + 1 < s + n &&
               (unsigned char)z[1] != 0x80)
            z++;
        if (z && z + 1 < s + n)
            return CBAD("%s%s: contains a NUL character (\\u0000) at byte %zu", c->path, key,
                        (size_t)(z - s));
    }
    /* s is a cJSON string of n = strlen(s) bytes, so no NUL: of
     * ts_text_check only the identifiers' UTF-8 rule can fail, and it
     * words the error once the quick test finds a bad byte */
    if (identifier && ts_utf8_invalid_at(s, n) < n &&
        ts_text_check(s, n, true, why, sizeof why) != TS_OK)
        return CBAD("%s%s: %s", c->path, key, why);
    return TS_OK;
}

/* The value at key into *v, NULL when absent or null (an error then if
 * required). */
static ts_err_t lookup(dctx_t *c, const kidx_t *obj, int key, bool required, const cJSON **v) {
    *v = kidx_get(obj, key);
    if (*v && json_is(*v, cJSON_NULL)) *v = NULL;
    if (!*v && required) return CBAD("%s%s: required", c->path, kidx_name(obj, key));
    return TS_OK;
}

static ts_err_t get_str(dctx_t *c, const kidx_t *obj, int k, bool required, const char **out) {
    const char *key = kidx_name(obj, k);
    const cJSON *v;
    *out = NULL;
    ts_err_t rc = lookup(c, obj, k, required, &v);
    if (rc || !v) return rc;
    if (!json_is(v, cJSON_String)) {
        /* the contract's strings are strings: a numeric id would be
         * re-formatted (12345.0, 1e21) and no longer match its records */
        if (json_is(v, cJSON_Number))
            return CBAD("%s%s: expected a string, got a number (send it quoted)", c->path, key);
        return CBAD("%s%s: expected a string", c->path, key);
    }
    size_t n = strlen(v->valuestring);
    if (required && n == 0) return CBAD("%s%s: must not be empty", c->path, key);
    if ((rc = check_text(c, key, obj->ks->ident[k], v->valuestring, n))) return rc;
    *out = ts_arena_strndup(c->arena, v->valuestring, n);
    return *out ? TS_OK : TS_ERR_NOMEM;
}

/* A boolean at key: *out 1 or 0, -1 when absent or null; `expected` is
 * what the error says the field takes. */
static ts_err_t get_flag(dctx_t *c, const kidx_t *obj, int k, const char *expected, int *out) {
    const char *key = kidx_name(obj, k);
    const cJSON *v;
    *out = -1;
    ts_err_t rc = lookup(c, obj, k, false, &v);
    if (rc || !v) return rc;
    if (!json_is_bool(v)) return CBAD("%s%s: expected %s", c->path, key, expected);
    *out = json_is(v, cJSON_True) ? 1 : 0;
    return TS_OK;
}

static ts_err_t get_tri(dctx_t *c, const kidx_t *obj, int k, ts_tri_t *out) {
    int f;
    ts_err_t rc = get_flag(c, obj, k, "true, false or null", &f);
    *out = f < 0 ? TS_TRI_UNKNOWN : f ? TS_TRI_TRUE : TS_TRI_FALSE;
    return rc;
}

static ts_err_t get_bool(dctx_t *c, const kidx_t *obj, int k, bool *out) {
    int f;
    ts_err_t rc = get_flag(c, obj, k, "true or false", &f);
    *out = f == 1;
    return rc;
}

static ts_err_t get_decimal(dctx_t *c, const kidx_t *obj, int k, bool required, ts_decimal_t *out) {
    const char *key = kidx_name(obj, k);
    const cJSON *v;
    char why[160];
    memset(out, 0, sizeof *out);
    ts_err_t rc = lookup(c, obj, k, required, &v);
    if (rc || !v) return rc;
    if (json_is(v, cJSON_Number))
        rc = ts_decimal_from_double(v->valuedouble, out, why, sizeof why);
    else if (json_is(v, cJSON_String))
        rc = ts_decimal_parse(v->valuestring, strlen(v->valuestring), out, why, sizeof why);
    else
        return CBAD("%s%s: expected a number or decimal string", c->path, key);
    if (rc != TS_OK) return CBAD("%s%s: %s", c->path, key, why);
    return TS_OK;
}

static ts_err_t get_time(dctx_t *c, const kidx_t *obj, int k, bool required, int64_t *out) {
    const char *key = kidx_name(obj, k);
    const cJSON *v;
    char why[160];
    *out = 0;
    ts_err_t rc = lookup(c, obj, k, required, &v);
    if (rc || !v) return rc;
    if (json_is(v, cJSON_Number)) {
        if (v->valuedouble != (double)(long long)v->valuedouble)
            return CBAD("%s%s: epoch milliseconds must be an integer", c->path, key);
        *out = (int64_t)v->valuedouble;
        return TS_OK;
    }
    if (!json_is(v, cJSON_String))
        return CBAD("%s%s: expected an ISO-8601 string or epoch milliseconds", c->path, key);
    if (ts_time_parse_iso8601(v->valuestring, strlen(v->valuestring), out, why, sizeof why))
        return CBAD("%s%s: %s", c->path, key, why);
    return TS_OK;
}

/* Offset of the first \u0000 escape in the text (an odd run of
 * backslashes before "u0000"), or len. */
static size_t nul_escape_at(const char *buf, size_t len) {
    const char *p = buf, *end = buf + len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        const char *q = p;
        while (q < end && *q == '\\') q++;
        /* an odd run ends in an escape: the backslash before q */
        if ((q - p) % 2 == 1 && end - q >= 5 && !memcmp(q, "u0000", 5))
            return (size_t)(q - 1 - buf);
        p = q;
    }
    return len;
}

/* cJSON ends a string at an escaped \u0000 ("a\u0000b@x.com" would read
 * as "a"). A text with one is parsed from a copy in which each such escape
 * is the two bytes C0 80 (invalid UTF-8, which no escape produces), and
 * check_text reports a NUL where it finds them; *nul_subst says so. */
static ts_err_t parse_root(const char *buf, size_t len, ts_arena_t *arena, bool *nul_subst,
                           cJSON **root, char *errstr, size_t errstr_size) {
    const char *end = NULL;
    const char *text = buf, *orig = buf;
    size_t orig_len = len;
    size_t at = nul_escape_at(buf, len);
    *nul_subst = at < len;
    if (*nul_subst) {
        char *copy = ts_arena_alloc(arena, len + 1);
        if (!copy) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "out of memory");
        size_t o = 0, i = 0;
        while (at < len) {
            memcpy(copy + o, buf + i, at - i);
            o += at - i;
            copy[o++] = (char)0xC0;
            copy[o++] = (char)0x80;
            i = at + 6;
            at = i + nul_escape_at(buf + i, len - i);
        }
        memcpy(copy + o, buf + i, len - i);
        o += len - i;
        text = copy;
        len = o;
    }
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*root && text != buf) {
        /* a substitution moves offsets: find the error in the original */
        cJSON *again = cJSON_ParseWithLengthOpts(buf, orig_len, &end, 0);
        cJSON_Delete(again);
        text = buf;
        if (again) end = buf;
    }
    if (!*root) {
        size_t off = end ? (size_t)(end - text) : 0;
        return BAD("invalid JSON at byte %zu", off);
    }
    buf = text;
    /* one value per record: anything but whitespace after it is an error */
    size_t off = end ? (size_t)(end - buf) : len;
    while (off < len &&
           (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\r' || buf[off] == '\n'))
        off++;
    if (off < len) {
        cJSON_Delete(*root);
        *root = NULL;
        if (text != orig) { /* the offset in the original, not in the copy */
            cJSON *again = cJSON_ParseWithLengthOpts(orig, orig_len, &end, 0);
            cJSON_Delete(again);
            for (off = end ? (size_t)(end - orig) : 0;
                 off < orig_len &&
                 (orig[off] == ' ' || orig[off] == '\t' || orig[off] == '\r' || orig[off] == '\n');)
                off++;
        }
        return BAD("invalid JSON at byte %zu: trailing data after the object", off);
    }
    if (!json_is(*root, cJSON_Object)) {
        cJSON_Delete(*root);
        *root = NULL;
        return BAD("not a JSON object");
    }
    return TS_OK;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != TS_OK) goto done;                                                        \
    } while (0)

/* The object at `k` of a record's root, if any: TS_OK with *found false
 * when absent or null; else its members by the key set ks in *idx and
 * "key." as the path of their errors. */
static ts_err_t nested_object(dctx_t *c, const kidx_t *root, int k, const keyset_t *ks, kidx_t *idx,
                              bool *found) {
    const char *key = kidx_name(root, k);
    const cJSON *v = kidx_get(root, k);
    *found = false;
    if (!v || json_is(v, cJSON_NULL)) return TS_OK;
    if (!json_is(v, cJSON_Object)) return CBAD("%s: expected an object or null", key);
    snprintf(c->path, sizeof c->path, "%s.", key);
    kidx_build(idx, ks, v);
    *found = true;
    return TS_OK;
}

static ts_err_t get_person(dctx_t *c, const kidx_t *obj, ts_person_dst_t p) {
    ts_err_t rc;
    if ((rc = get_str(c, obj, C_email, false, p.email)) ||
        (rc = get_str(c, obj, C_phone, false, p.phone)) ||
        (rc = get_str(c, obj, C_first_name, false, p.first_name)) ||
        (rc = get_str(c, obj, C_last_name, false, p.last_name)) ||
        (rc = get_str(c, obj, C_home_outlet_id, false, p.home_outlet_id)))
        return rc;
    return TS_OK;
}

static ts_err_t get_address(dctx_t *c, const kidx_t *obj, ts_address_t *a) {
    ts_err_t rc;
    if ((rc = get_str(c, obj, A_line1, false, &a->line1)) ||
        (rc = get_str(c, obj, A_line2, false, &a->line2)) ||
        (rc = get_str(c, obj, A_city, false, &a->city)) ||
        (rc = get_str(c, obj, A_region, false, &a->region)) ||
        (rc = get_str(c, obj, A_postcode, false, &a->postcode)) ||
        (rc = get_str(c, obj, A_country, false, &a->country)))
        return rc;
    return TS_OK;
}

/* A customer record's fields from its root object. */
static ts_err_t customer_fields(dctx_t *c, const kidx_t *R, void *vout) {
    ts_customer_t *out = vout;
    ts_err_t rc = TS_OK;
    memset(out, 0, sizeof *out);
    TRY(get_str(c, R, C_customer_id, true, &out->customer_id));
    TRY(get_person(c, R, TS_PERSON_DST(out)));
    TRY(get_tri(c, R, C_email_consent, &out->email_consent));
    TRY(get_tri(c, R, C_sms_consent, &out->sms_consent));
    TRY(get_tri(c, R, C_loyalty_member, &out->loyalty_member));
    TRY(get_str(c, R, C_date_of_birth, false, &out->date_of_birth));
    TRY(get_time(c, R, C_created_at, false, &out->created_at_ms));
    TRY(get_time(c, R, C_updated_at, false, &out->updated_at_ms));
    TRY(get_time(c, R, C_email_consent_at, false, &out->email_consent_at_ms));
    TRY(get_time(c, R, C_sms_consent_at, false, &out->sms_consent_at_ms));
    kidx_t A;
    TRY(nested_object(c, R, C_billing_address, &ks_address, &A, &out->has_billing_address));
    if (out->has_billing_address) TRY(get_address(c, &A, &out->billing_address));
done:
    return rc;
}

/* "lines[<i>]" into path (128 bytes), without printf: once per line. */
static void line_path(char *path, size_t i) {
    char d[24];
    int n = 0;
    do d[n++] = (char)('0' + i % 10);
    while (i /= 10);
    memcpy(path, "lines[", 6);
    size_t o = 6;
    while (n) path[o++] = d[--n];
    path[o++] = ']';
    path[o] = '\0';
}

static ts_err_t decode_line(dctx_t *c, const cJSON *l, ts_order_line_t *line) {
    ts_err_t rc;
    memset(line, 0, sizeof *line);
    if (!json_is(l, cJSON_Object)) return CBAD("%s: expected an object", c->path);
    kidx_t L;
    kidx_build(&L, &ks_line, l);
    size_t plen = strlen(c->path);
    if (plen + 1 < sizeof c->path) {
        c->path[plen] = '.';
        c->path[plen + 1] = '\0';
    }
    TRY(get_str(c, &L, L_line_id, true, &line->line_id));
    TRY(get_str(c, &L, L_product_id, false, &line->product_id));
    TRY(get_str(c, &L, L_sku, false, &line->sku));
    TRY(get_str(c, &L, L_name, false, &line->name));
    TRY(get_decimal(c, &L, L_quantity, true, &line->quantity));
    TRY(get_decimal(c, &L, L_unit_price, false, &line->unit_price));
    TRY(get_decimal(c, &L, L_row_total, true, &line->row_total));
    TRY(get_decimal(c, &L, L_discount, false, &line->discount));
    TRY(get_str(c, &L, L_brand, false, &line->brand));
    TRY(get_str(c, &L, L_image_url, false, &line->image_url));
    TRY(get_str(c, &L, L_product_url, false, &line->product_url));
    const cJSON *cats = kidx_get(&L, L_categories);
    if (cats && !json_is(cats, cJSON_NULL)) {
        if (!json_is(cats, cJSON_Array)) {
            rc = CBAD("%scategories: expected an array of strings", c->path);
            goto done;
        }
        size_t n = (size_t)cJSON_GetArraySize(cats);
        line->categories = ts_arena_alloc(c->arena, (n ? n : 1) * sizeof(char *));
        if (!line->categories) return TS_ERR_NOMEM;
        for (const cJSON *it = cats->child; it; it = it->next) {
            if (!json_is(it, cJSON_String)) {
                rc = CBAD("%scategories[%zu]: expected a string", c->path, line->n_categories);
                goto done;
            }
            size_t sl = strlen(it->valuestring);
            if (c->nul_subst) { /* free text: only a NUL is an error (check_text) */
                char key[40];
                snprintf(key, sizeof key, "categories[%zu]", line->n_categories);
                TRY(check_text(c, key, ts_field_is_identifier(key), it->valuestring, sl));
            }
            if (!(line->categories[line->n_categories++] =
                      ts_arena_strndup(c->arena, it->valuestring, sl)))
                return TS_ERR_NOMEM;
        }
    }
    rc = TS_OK;
done:
    c->path[plen] = '\0';
    return rc;
}

static ts_err_t enum_of(dctx_t *c, const kidx_t *obj, int k, const char *const *names, int n,
                        int def, int *out) {
    const char *key = kidx_name(obj, k);
    const cJSON *v = kidx_get(obj, k);
    *out = def;
    if (!v || json_is(v, cJSON_NULL)) {
        if (def < 0) return CBAD("%s: required", key);
        return TS_OK;
    }
    if (json_is(v, cJSON_String))
        for (int i = 0; i < n; i++)
            if (!strcmp(v->valuestring, names[i])) {
                *out = i;
                return TS_OK;
            }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 2);
        if (i + 1 < n) strncat(list, "|", sizeof list - strlen(list) - 1);
    }
    return CBAD("%s: expected one of %s", key, list);
}

/* An order record's fields from its root object. */
static ts_err_t order_fields(dctx_t *c, const kidx_t *R, void *vout) {
    ts_order_t *out = vout;
    static const char *const statuses[] = {"completed", "fulfilled", "cancelled", "refunded",
                                           "voided"};
    static const char *const channels[] = {"in_store", "online"};
    ts_err_t rc = TS_OK;
    int e;
    memset(out, 0, sizeof *out);
    TRY(get_str(c, R, O_order_id, true, &out->order_id));
    TRY(get_str(c, R, O_customer_id, false, &out->customer_id));
    TRY(get_str(c, R, O_outlet_id, false, &out->outlet_id));
    TRY(get_str(c, R, O_outlet_name, false, &out->outlet_name));
    TRY(enum_of(c, R, O_channel, channels, 2, 0, &e));
    out->channel = (ts_channel_t)e;
    TRY(enum_of(c, R, O_status, statuses, 5, -1, &e));
    out->status = (ts_order_status_t)e;
    TRY(get_bool(c, R, O_is_test, &out->is_test));
    TRY(get_time(c, R, O_occurred_at, true, &out->occurred_at_ms));
    const char *cur;
    TRY(get_str(c, R, O_currency, false, &cur));
    if (cur) {
        if (strlen(cur) != 3 || cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' || cur[1] > 'Z' ||
            cur[2] < 'A' || cur[2] > 'Z') {
            rc = CBAD("currency: expected an ISO 4217 code like \"AUD\"");
            goto done;
        }
        memcpy(out->currency, cur, 4);
    }
    TRY(get_decimal(c, R, O_total, true, &out->total));
    TRY(get_decimal(c, R, O_discount, false, &out->discount));
    TRY(get_decimal(c, R, O_tax, false, &out->tax));
    const cJSON *lines = kidx_get(R, O_lines);
    if (lines && !json_is(lines, cJSON_NULL)) {
        if (!json_is(lines, cJSON_Array)) {
            rc = CBAD("lines: expected an array");
            goto done;
        }
        size_t n = (size_t)cJSON_GetArraySize(lines);
        out->lines = ts_arena_alloc(c->arena, (n ? n : 1) * sizeof *out->lines);
        if (!out->lines) {
            rc = TS_ERR_NOMEM;
            goto done;
        }
        for (const cJSON *l = lines->child; l; l = l->next) {
            line_path(c->path, out->n_lines);
            TRY(decode_line(c, l, &out->lines[out->n_lines]));
            out->n_lines++;
        }
        c->path[0] = '\0';
    }
    kidx_t F;
    TRY(nested_object(c, R, O_refund, &ks_refund, &F, &out->refund.present));
    if (out->refund.present) {
        TRY(get_str(c, &F, F_refund_id, false, &out->refund.refund_id));
        TRY(get_str(c, &F, F_reason, false, &out->refund.reason));
        TRY(get_decimal(c, &F, F_amount, false, &out->refund.amount));
        c->path[0] = '\0';
    }
    kidx_t C;
    ts_customer_ref_t *s = &out->customer;
    TRY(nested_object(c, R, O_customer, &ks_customer, &C, &s->present));
    if (s->present) {
        s->customer_id = out->customer_id;
        TRY(get_person(c, &C, TS_PERSON_DST(s)));
    }
done:
    return rc;
}

typedef ts_err_t fields_fn(dctx_t *c, const kidx_t *root, void *out);

/* One record: parsed inside the thread's scratch scope (cJSON's
 * allocations), its root's keys indexed, `fields` reading them into out. */
static ts_err_t decode(fields_fn *fields, const keyset_t *ks, const char *buf, size_t len,
                       ts_arena_t *arena, void *out, char *errstr, size_t errstr_size) {
    scope_enter();
    cJSON *root;
    bool nul_subst;
    ts_err_t rc = parse_root(buf, len, arena, &nul_subst, &root, errstr, errstr_size);
    if (rc == TS_OK) {
        dctx_t c = {
            .arena = arena, .errstr = errstr, .errstr_size = errstr_size, .nul_subst = nul_subst};
        kidx_t R;
        kidx_build(&R, ks, root);
        rc = fields(&c, &R, out);
        tree_delete(root);
    }
    scope_leave();
    return rc;
}

ts_err_t ts_decode_customer_json(const char *buf, size_t len, ts_arena_t *arena, ts_customer_t *out,
                                 char *errstr, size_t errstr_size) {
    return decode(customer_fields, &ks_customer, buf, len, arena, out, errstr, errstr_size);
}

ts_err_t ts_decode_order_json(const char *buf, size_t len, ts_arena_t *arena, ts_order_t *out,
                              char *errstr, size_t errstr_size) {
    return decode(order_fields, &ks_order, buf, len, arena, out, errstr, errstr_size);
}
