/*
 * avro.c - Avro binary bodies into ts_customer_t/ts_order_t with Avro-C's
 * schema resolution (the only file that includes <avro.h>).
 *
 * Per writer schema id we keep: the writer schema, a resolved-writer
 * value (reads writer bytes, writes into the reader value) and a generic
 * value of the reader schema; records are read into those reused values
 * and then copied into the model, strings into the caller's arena. The
 * reader schema is the compiled-in copy of schemas/{customer,order}.avsc. Field indices
 * of the reader schema are looked up once in ts_avro_new().
 */
#include "tillstream/avro.h"

#include <avro.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t id;
    avro_schema_t writer;
    avro_schema_t reader; /* reader schema less the defaulted fields the writer lacks */
    avro_value_iface_t *reader_iface;
    avro_value_iface_t *resolver_iface;
    avro_value_t resolved; /* writer side */
    avro_value_t value;    /* reader side (resolved's destination) */
} writer_t;

struct ts_avro_s {
    ts_kind_t kind;
    avro_schema_t reader;
    avro_value_iface_t *reader_iface;
    avro_reader_t in;
    writer_t *w;
    size_t n_w, cap_w;
    char path[128]; /* field path of the value being converted */
};

static void writer_free(writer_t *w) {
    avro_value_decref(&w->resolved);
    avro_value_decref(&w->value);
    avro_value_iface_decref(w->resolver_iface);
    avro_value_iface_decref(w->reader_iface);
    avro_schema_decref(w->reader);
    avro_schema_decref(w->writer);
}

void ts_avro_destroy(ts_avro_t *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_w; i++) writer_free(&a->w[i]);
    free(a->w);
    if (a->in) avro_reader_free(a->in);
    if (a->reader_iface) avro_value_iface_decref(a->reader_iface);
    if (a->reader) avro_schema_decref(a->reader);
    free(a);
}

ts_avro_t *ts_avro_new(ts_kind_t kind, char *errstr, size_t errstr_size) {
    ts_avro_t *a = ts_zalloc(sizeof *a, "avro", errstr, errstr_size);
    if (!a) return NULL;
    a->kind = kind;
    const char *json = kind == TS_KIND_CUSTOMER ? ts_schema_customer_avsc : ts_schema_order_avsc;
    if (avro_schema_from_json_length(json, strlen(json), &a->reader)) {
        ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "avro: reader schema: %s", avro_strerror());
        a->reader = NULL;
        goto fail;
    }
    if (!(a->reader_iface = avro_generic_class_from_schema(a->reader))) {
        ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "avro: reader class: %s", avro_strerror());
        goto fail;
    }
    if (!(a->in = avro_reader_memory("", 0))) {
        ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
        goto fail;
    }
    return a;
fail:
    ts_avro_destroy(a);
    return NULL;
}

static writer_t *find(const ts_avro_t *a, int32_t id) {
    for (size_t i = 0; i < a->n_w; i++)
        if (a->w[i].id == id) return &a->w[i];
    return NULL;
}

bool ts_avro_has_writer(const ts_avro_t *a, int32_t id) { return find(a, id) != NULL; }

/* ---- per-writer reader schema --------------------------------------- */
/* Avro-C's resolver rejects a reader field the writer lacks even when the
 * reader gives it a default ("Reader field x doesn't appear in writer").
 * So each writer gets its own copy of the reader schema without such
 * fields; the conversion below reads an absent field as its default, and
 * every default in schemas/ equals the model's "absent" value (null,
 * false, [], in_store). A missing field without a default is an error. */

static const cJSON *named(const cJSON *names, const char *name) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(names, name);
    if (!n && strrchr(name, '.'))
        n = cJSON_GetObjectItemCaseSensitive(names, strrchr(name, '.') + 1);
    return n;
}

/* The record schema inside `t` (record, array of records, union with a
 * record, or a name), or NULL. */
static const cJSON *record_in(const cJSON *t, const cJSON *names) {
    if (cJSON_IsString(t)) return names ? named(names, t->valuestring) : NULL;
    if (cJSON_IsArray(t)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, t) {
            const cJSON *r = record_in(e, names);
            if (r) return r;
        }
        return NULL;
    }
    if (!cJSON_IsObject(t)) return NULL;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
    if (!cJSON_IsString(ty)) return record_in(ty, names);
    if (!strcmp(ty->valuestring, "record")) return t;
    if (!strcmp(ty->valuestring, "array"))
        return record_in(cJSON_GetObjectItemCaseSensitive(t, "items"), names);
    return NULL;
}

/* Collects every named record of the writer schema (full and short name). */
static void collect_names(const cJSON *t, const char *ns, cJSON *names) {
    if (cJSON_IsArray(t)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, t) collect_names(e, ns, names);
        return;
    }
    if (!cJSON_IsObject(t)) return;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
    if (!cJSON_IsString(ty)) {
        collect_names(ty, ns, names);
        return;
    }
    if (!strcmp(ty->valuestring, "array")) {
        collect_names(cJSON_GetObjectItemCaseSensitive(t, "items"), ns, names);
        return;
    }
    if (strcmp(ty->valuestring, "record")) return;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *n2 = cJSON_GetObjectItemCaseSensitive(t, "namespace");
    if (cJSON_IsString(n2)) ns = n2->valuestring;
    if (cJSON_IsString(nm)) {
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", ns && !strchr(nm->valuestring, '.') ? ns : "",
                 ns && !strchr(nm->valuestring, '.') ? "." : "", nm->valuestring);
        const char *shortn =
            strrchr(nm->valuestring, '.') ? strrchr(nm->valuestring, '.') + 1 : nm->valuestring;
        if (!cJSON_GetObjectItemCaseSensitive(names, full))
            cJSON_AddItemReferenceToObject(names, full, (cJSON *)t);
        if (!cJSON_GetObjectItemCaseSensitive(names, shortn))
            cJSON_AddItemReferenceToObject(names, shortn, (cJSON *)t);
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "fields"))
        collect_names(cJSON_GetObjectItemCaseSensitive(f, "type"), ns, names);
}

static ts_err_t prune(cJSON *rrec, const cJSON *wrec, const cJSON *names, const char *path,
                      char *errstr, size_t errstr_size) {
    cJSON *rfields = cJSON_GetObjectItemCaseSensitive(rrec, "fields");
    const cJSON *wfields = cJSON_GetObjectItemCaseSensitive(wrec, "fields");
    cJSON *f = rfields ? rfields->child : NULL;
    while (f) {
        cJSON *next = f->next;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *wf = NULL, *e;
        cJSON_ArrayForEach(e, wfields) {
            const cJSON *wn = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (cJSON_IsString(wn) && cJSON_IsString(nm) &&
                !strcmp(wn->valuestring, nm->valuestring))
                wf = e;
        }
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "",
                 cJSON_IsString(nm) ? nm->valuestring : "?");
        if (!wf) {
            if (!cJSON_HasObjectItem(f, "default"))
                return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                                 "reader field %s has no default and the writer schema lacks it",
                                 sub);
            cJSON_Delete(cJSON_DetachItemViaPointer(rfields, f));
        } else {
            cJSON *rr = (cJSON *)record_in(cJSON_GetObjectItemCaseSensitive(f, "type"), NULL);
            const cJSON *wr = record_in(cJSON_GetObjectItemCaseSensitive(wf, "type"), names);
            if (rr && wr) {
                ts_err_t rc = prune(rr, wr, names, sub, errstr, errstr_size);
                if (rc) return rc;
            }
        }
        f = next;
    }
    return TS_OK;
}

/* A new avro schema: the reader schema pruned for `writer_json`. */
static ts_err_t reader_for(const ts_avro_t *a, const char *writer_json, avro_schema_t *out,
                           char *errstr, size_t errstr_size) {
    const char *rjson =
        a->kind == TS_KIND_CUSTOMER ? ts_schema_customer_avsc : ts_schema_order_avsc;
    cJSON *r = cJSON_Parse(rjson), *w = cJSON_Parse(writer_json), *names = cJSON_CreateObject();
    ts_err_t rc = TS_OK;
    char *text = NULL;
    if (!r || !names) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
        goto done;
    }
    const cJSON *wrec = w ? record_in(w, NULL) : NULL;
    if (!wrec) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "writer schema is not an Avro record");
        goto done;
    }
    collect_names(w, NULL, names);
    if ((rc = prune(r, wrec, names, "", errstr, errstr_size))) goto done;
    if (!(text = cJSON_PrintUnformatted(r))) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
        goto done;
    }
    if (avro_schema_from_json_length(text, strlen(text), out))
        rc = ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "avro: pruned reader schema: %s",
                       avro_strerror());
done:
    free(text);
    cJSON_Delete(names);
    cJSON_Delete(r);
    cJSON_Delete(w);
    return rc;
}

ts_err_t ts_avro_add_writer(ts_avro_t *a, int32_t id, const char *schema_json, char *errstr,
                            size_t errstr_size) {
    if (find(a, id)) return TS_OK;
    if (a->n_w == a->cap_w) {
        size_t cap = a->cap_w ? a->cap_w * 2 : 4;
        writer_t *nw = realloc(a->w, cap * sizeof *nw);
        if (!nw) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
        a->w = nw;
        a->cap_w = cap;
    }
    writer_t w = {.id = id};
    ts_err_t rc;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &w.writer))
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "writer schema %ld is not a valid Avro schema: %s", (long)id,
                         avro_strerror());
    if ((rc = reader_for(a, schema_json, &w.reader, errstr, errstr_size))) {
        size_t l = errstr_size ? strlen(errstr) : 0;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(l < 200 ? l : 200), errstr);
        if (rc == TS_ERR_INVALID)
            ts_seterr(errstr, errstr_size, rc, "writer schema %ld cannot be resolved: %s", (long)id,
                      tmp);
        w.reader = NULL;
        goto fail;
    }
    if (!(w.reader_iface = avro_generic_class_from_schema(w.reader))) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "avro: %s", avro_strerror());
        goto fail;
    }
    if (!(w.resolver_iface = avro_resolved_writer_new(w.writer, w.reader))) {
        rc = ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                       "writer schema %ld cannot be resolved to the reader schema: %s", (long)id,
                       avro_strerror());
        goto fail;
    }
    if (avro_resolved_writer_new_value(w.resolver_iface, &w.resolved)) {
        avro_value_iface_decref(w.resolver_iface);
        w.resolver_iface = NULL;
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: %s", avro_strerror());
        goto fail;
    }
    if (avro_generic_value_new(w.reader_iface, &w.value)) {
        avro_value_decref(&w.resolved);
        avro_value_iface_decref(w.resolver_iface);
        w.resolver_iface = NULL;
        rc = ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: %s", avro_strerror());
        goto fail;
    }
    avro_resolved_writer_set_dest(&w.resolved, &w.value);
    a->w[a->n_w++] = w;
    return TS_OK;
fail:
    if (w.resolver_iface) avro_value_iface_decref(w.resolver_iface);
    if (w.reader_iface) avro_value_iface_decref(w.reader_iface);
    if (w.reader) avro_schema_decref(w.reader);
    avro_schema_decref(w.writer);
    return rc;
}

/* ---- conversion of the reader value into the model ------------------- */

typedef struct {
    ts_avro_t *a;
    ts_arena_t *arena;
    char *errstr;
    size_t errstr_size;
} cx_t;

#define NOMEM(c) ts_seterr((c)->errstr, (c)->errstr_size, TS_ERR_NOMEM, "avro: out of memory")

static ts_err_t bad(cx_t *c, const char *path, const char *what) {
    return ts_seterr(c->errstr, c->errstr_size, TS_ERR_INVALID, "%s: %s", path, what);
}

/* Field `name` of record `rec`; unwraps ["null", T] unions. *present =
 * false for null. */
static ts_err_t field(cx_t *c, avro_value_t *rec, const char *name, avro_value_t *out,
                      bool *present) {
    avro_value_t v = {NULL, NULL};
    *present = false; /* a field the writer lacks reads as its default (see prune) */
    if (avro_value_get_by_name(rec, name, &v, NULL)) return TS_OK;
    *present = true;
    if (avro_value_get_type(&v) == AVRO_UNION) {
        int disc;
        if (avro_value_get_discriminant(&v, &disc) || avro_value_get_current_branch(&v, &v))
            return bad(c, name, "union without a branch");
        if (avro_value_get_type(&v) == AVRO_NULL) *present = false;
    }
    *out = v;
    return TS_OK;
}

/* field() for the getters below: true when the field holds a value (in
 * *v); false when it is absent or null (*rc TS_OK) or on error (*rc set). */
static bool value(cx_t *c, avro_value_t *rec, const char *name, avro_value_t *v, ts_err_t *rc) {
    bool present = false;
    *rc = field(c, rec, name, v, &present);
    return !*rc && present;
}

static ts_err_t get_str(cx_t *c, avro_value_t *rec, const char *name, const char **out) {
    avro_value_t v = {NULL, NULL};
    ts_err_t rc;
    *out = NULL;
    if (!value(c, rec, name, &v, &rc)) return rc;
    const char *s;
    size_t size;
    if (avro_value_get_string(&v, &s, &size)) return bad(c, name, "expected a string");
    size_t n = size ? size - 1 : 0; /* Avro-C counts its terminating NUL */
    char why[96];
    if (ts_text_check(s, n, ts_field_is_identifier(name), why, sizeof why))
        return bad(c, name, why);
    if (!(*out = ts_arena_strndup(c->arena, s, n))) return NOMEM(c);
    return TS_OK;
}

/* A required string: the record's id. */
static ts_err_t get_id(cx_t *c, avro_value_t *rec, const char *name, const char **out) {
    ts_err_t rc = get_str(c, rec, name, out);
    return rc || *out ? rc : bad(c, name, "required");
}

static ts_err_t get_tri(cx_t *c, avro_value_t *rec, const char *name, ts_tri_t *out) {
    avro_value_t v = {NULL, NULL};
    ts_err_t rc;
    *out = TS_TRI_UNKNOWN;
    if (!value(c, rec, name, &v, &rc)) return rc;
    int b;
    if (avro_value_get_boolean(&v, &b)) return bad(c, name, "expected a boolean");
    *out = b ? TS_TRI_TRUE : TS_TRI_FALSE;
    return TS_OK;
}

static ts_err_t get_long(cx_t *c, avro_value_t *rec, const char *name, int64_t *out) {
    avro_value_t v = {NULL, NULL};
    ts_err_t rc;
    *out = 0;
    if (value(c, rec, name, &v, &rc) && avro_value_get_long(&v, out))
        rc = bad(c, name, "expected a long");
    return rc;
}

/* decimal(18,4) bytes: two's-complement big-endian unscaled value. */
static ts_err_t get_dec(cx_t *c, avro_value_t *rec, const char *name, ts_decimal_t *out) {
    avro_value_t v = {NULL, NULL};
    ts_err_t rc;
    memset(out, 0, sizeof *out);
    if (!value(c, rec, name, &v, &rc)) return rc;
    const void *p;
    size_t n;
    if (avro_value_get_bytes(&v, &p, &n)) return bad(c, name, "expected decimal bytes");
    const unsigned char *b = p;
    size_t skip = 0; /* redundant sign-extension bytes */
    while (n - skip > 8 && (b[skip] == 0x00 || b[skip] == 0xff) &&
           (b[skip] & 0x80) == (b[skip + 1] & 0x80))
        skip++;
    if (n - skip > 8) {
        char what[96];
        snprintf(what, sizeof what, "decimal of %zu bytes does not fit decimal(18,4)", n);
        return bad(c, name, what);
    }
    uint64_t u = (n - skip > 0 && (b[skip] & 0x80)) ? UINT64_MAX : 0;
    for (size_t i = skip; i < n; i++) u = (u << 8) | b[i];
    int64_t units = (int64_t)u;
    if (units > 999999999999999999LL || units < -999999999999999999LL)
        return bad(c, name, "decimal exceeds 18 digits");
    out->units = units;
    out->scale = 4;
    out->present = true;
    return TS_OK;
}

static ts_err_t get_enum(cx_t *c, avro_value_t *rec, const char *name, int nsym, int *out) {
    avro_value_t v = {NULL, NULL};
    ts_err_t rc;
    *out = 0; /* absent: the reader default, symbol 0 (in_store) */
    if (value(c, rec, name, &v, &rc) && (avro_value_get_enum(&v, out) || *out < 0 || *out >= nsym))
        rc = bad(c, name, "expected an enum symbol");
    return rc;
}

#define P(buf, fmt, ...) (snprintf(buf, sizeof buf, fmt, __VA_ARGS__), buf)

/* One scalar field of a record: its schema name, its getter and its place
 * in the struct. A table of them is read in order, and the first field
 * that does not decode is the error. */
typedef enum { F_ID, F_STR, F_TRI, F_LONG, F_DEC } ftype_t;
typedef struct {
    const char *name;
    ftype_t type;
    size_t off;
} field_t;

#define FLD(type, T, m)                                                                            \
    { #m, type, offsetof(T, m) }
#define FLD_AS(type, T, name, m)                                                                   \
    { name, type, offsetof(T, m) }

static ts_err_t get_fields(cx_t *c, avro_value_t *r, void *o, const field_t *f, size_t n) {
    ts_err_t rc = TS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        void *p = (char *)o + f[i].off;
        switch (f[i].type) {
        case F_ID: rc = get_id(c, r, f[i].name, p); break;
        case F_STR: rc = get_str(c, r, f[i].name, p); break;
        case F_TRI: rc = get_tri(c, r, f[i].name, p); break;
        case F_LONG: rc = get_long(c, r, f[i].name, p); break;
        case F_DEC: rc = get_dec(c, r, f[i].name, p); break;
        }
    }
    return rc;
}

#define GET_FIELDS(c, r, o, tab) get_fields((c), (r), (o), (tab), sizeof(tab) / sizeof(tab)[0])

/* A customer's fields after its id and person. */
static const field_t customer_fields[] = {
    FLD(F_TRI, ts_customer_t, email_consent),
    FLD(F_TRI, ts_customer_t, sms_consent),
    FLD(F_STR, ts_customer_t, date_of_birth),
    FLD(F_TRI, ts_customer_t, loyalty_member),
    FLD_AS(F_LONG, ts_customer_t, "created_at", created_at_ms),
    FLD_AS(F_LONG, ts_customer_t, "updated_at", updated_at_ms),
    FLD_AS(F_LONG, ts_customer_t, "email_consent_at", email_consent_at_ms),
    FLD_AS(F_LONG, ts_customer_t, "sms_consent_at", sms_consent_at_ms),
};

static const field_t address_fields[] = {
    FLD(F_STR, ts_address_t, line1),    FLD(F_STR, ts_address_t, line2),
    FLD(F_STR, ts_address_t, city),     FLD(F_STR, ts_address_t, region),
    FLD(F_STR, ts_address_t, postcode), FLD(F_STR, ts_address_t, country),
};

/* A line's fields but its categories. */
static const field_t line_fields[] = {
    FLD(F_ID, ts_order_line_t, line_id),      FLD(F_STR, ts_order_line_t, product_id),
    FLD(F_STR, ts_order_line_t, sku),         FLD(F_STR, ts_order_line_t, name),
    FLD(F_DEC, ts_order_line_t, quantity),    FLD(F_DEC, ts_order_line_t, unit_price),
    FLD(F_DEC, ts_order_line_t, row_total),   FLD(F_DEC, ts_order_line_t, discount),
    FLD(F_STR, ts_order_line_t, brand),       FLD(F_STR, ts_order_line_t, image_url),
    FLD(F_STR, ts_order_line_t, product_url),
};

/* An order's ids (before channel) and money (after currency). */
static const field_t order_ids[] = {
    FLD(F_ID, ts_order_t, order_id), FLD(F_STR, ts_order_t, customer_id),
    FLD(F_STR, ts_order_t, outlet_id), FLD(F_STR, ts_order_t, outlet_name)};
static const field_t order_money[] = {
    FLD(F_DEC, ts_order_t, total), FLD(F_DEC, ts_order_t, discount), FLD(F_DEC, ts_order_t, tax)};

static const field_t refund_fields[] = {FLD(F_STR, ts_refund_t, refund_id),
                                        FLD(F_STR, ts_refund_t, reason),
                                        FLD(F_DEC, ts_refund_t, amount)};

/* A nested record's error gets its place in front ("customer." or
 * "lines[2]."; idx < 0: no index), so the paths inside are relative and
 * nothing is formatted for records that decode. */
static ts_err_t nested_error(cx_t *c, ts_err_t rc, const char *name, long idx) {
    if (rc != TS_ERR_INVALID || !c->errstr_size) return rc;
    char rel[400];
    snprintf(rel, sizeof rel, "%s", c->errstr);
    if (idx >= 0) return ts_seterr(c->errstr, c->errstr_size, rc, "%s[%ld].%s", name, idx, rel);
    return ts_seterr(c->errstr, c->errstr_size, rc, "%s.%s", name, rel);
}

static ts_err_t get_person(cx_t *c, avro_value_t *r, ts_person_dst_t p) {
    ts_err_t rc;
    if ((rc = get_str(c, r, "email", p.email)) || (rc = get_str(c, r, "phone", p.phone)) ||
        (rc = get_str(c, r, "first_name", p.first_name)) ||
        (rc = get_str(c, r, "last_name", p.last_name)) ||
        (rc = get_str(c, r, "home_outlet_id", p.home_outlet_id)))
        return rc;
    return TS_OK;
}

static ts_err_t to_customer(cx_t *c, avro_value_t *r, ts_customer_t *o) {
    ts_err_t rc;
    memset(o, 0, sizeof *o);
    if ((rc = get_id(c, r, "customer_id", &o->customer_id)) ||
        (rc = get_person(c, r, TS_PERSON_DST(o))) || (rc = GET_FIELDS(c, r, o, customer_fields)))
        return rc;
    avro_value_t ad;
    if ((rc = field(c, r, "billing_address", &ad, &o->has_billing_address))) return rc;
    if (o->has_billing_address)
        return nested_error(c, GET_FIELDS(c, &ad, &o->billing_address, address_fields),
                            "billing_address", -1);
    return TS_OK;
}

/* Field paths are relative ("row_total"); to_order() prefixes "lines[i]."
 * on error, so no path is formatted for records that decode. */
static ts_err_t to_line(cx_t *c, avro_value_t *l, size_t i, ts_order_line_t *o) {
    char p[64];
    ts_err_t rc;
    memset(o, 0, sizeof *o);
    if ((rc = GET_FIELDS(c, l, o, line_fields))) return rc;
    avro_value_t cats;
    bool present;
    if ((rc = field(c, l, "categories", &cats, &present))) return rc;
    size_t n = 0;
    if (present && avro_value_get_size(&cats, &n)) return bad(c, "categories", "expected an array");
    if (n) {
        if (!(o->categories = ts_arena_alloc(c->arena, n * sizeof *o->categories))) return NOMEM(c);
        for (size_t k = 0; k < n; k++) {
            avro_value_t s;
            const char *str;
            size_t size;
            if (avro_value_get_by_index(&cats, k, &s, NULL) ||
                avro_value_get_string(&s, &str, &size))
                return bad(c, P(p, "categories[%zu]", k), "expected a string");
            size_t sl = size ? size - 1 : 0;
            char why[96];
            if (ts_text_check(str, sl, false, why, sizeof why))
                return bad(c, P(p, "categories[%zu]", k), why);
            if (!(o->categories[k] = ts_arena_strndup(c->arena, str, sl))) return NOMEM(c);
        }
        o->n_categories = n;
    }
    return TS_OK;
}

/* The order's own fields: ids, channel, status, is_test, time, money. */
static ts_err_t order_head(cx_t *c, avro_value_t *r, ts_order_t *o) {
    ts_err_t rc;
    int e;
    const char *cur;
    if ((rc = GET_FIELDS(c, r, o, order_ids))) return rc;
    if ((rc = get_enum(c, r, "channel", 2, &e))) return rc;
    o->channel = (ts_channel_t)e;
    if ((rc = get_enum(c, r, "status", 5, &e))) return rc;
    o->status = (ts_order_status_t)e;
    avro_value_t v = {NULL, NULL};
    bool present;
    if ((rc = field(c, r, "is_test", &v, &present))) return rc;
    if (present) {
        int b;
        if (avro_value_get_boolean(&v, &b)) return bad(c, "is_test", "expected a boolean");
        o->is_test = b != 0;
    }
    if ((rc = get_long(c, r, "occurred_at", &o->occurred_at_ms)) ||
        (rc = get_str(c, r, "currency", &cur)))
        return rc;
    if (cur) {
        if (strlen(cur) != 3) return bad(c, "currency", "expected a 3-letter ISO 4217 code");
        memcpy(o->currency, cur, 4);
    }
    return GET_FIELDS(c, r, o, order_money);
}

static ts_err_t order_lines(cx_t *c, avro_value_t *r, ts_order_t *o) {
    avro_value_t lines;
    bool present;
    ts_err_t rc = field(c, r, "lines", &lines, &present);
    if (rc) return rc;
    size_t n = 0;
    if (present && avro_value_get_size(&lines, &n)) return bad(c, "lines", "expected an array");
    if (!n) return TS_OK;
    if (!(o->lines = ts_arena_alloc(c->arena, n * sizeof *o->lines))) return NOMEM(c);
    for (size_t i = 0; i < n; i++) {
        avro_value_t l;
        if (avro_value_get_by_index(&lines, i, &l, NULL)) return bad(c, "lines", "bad item");
        if ((rc = to_line(c, &l, i, &o->lines[i]))) return nested_error(c, rc, "lines", (long)i);
    }
    o->n_lines = n;
    return TS_OK;
}

/* The optional refund and customer snapshot. */
static ts_err_t order_parts(cx_t *c, avro_value_t *r, ts_order_t *o) {
    avro_value_t rf, cs;
    ts_err_t rc = field(c, r, "refund", &rf, &o->refund.present);
    if (!rc && o->refund.present) {
        if ((rc = GET_FIELDS(c, &rf, &o->refund, refund_fields)))
            return nested_error(c, rc, "refund", -1);
    }
    ts_customer_ref_t *C = &o->customer;
    if (!rc) rc = field(c, r, "customer", &cs, &C->present);
    if (rc || !C->present) return rc;
    C->customer_id = o->customer_id;
    return nested_error(c, get_person(c, &cs, TS_PERSON_DST(C)), "customer", -1);
}

static ts_err_t to_order(cx_t *c, avro_value_t *r, ts_order_t *o) {
    ts_err_t rc;
    memset(o, 0, sizeof *o);
    if ((rc = order_head(c, r, o)) || (rc = order_lines(c, r, o)) || (rc = order_parts(c, r, o)))
        return rc;
    return TS_OK;
}

/* ---- validation of the bytes against the writer schema -------------- */
/* Avro-C trusts length prefixes: it mallocs a string's announced length
 * before reading it and leaks the buffer when the read then fails, so a
 * garbage record could allocate (and leak) gigabytes. Every body is
 * therefore walked first against the writer schema without allocating:
 * lengths, union and enum indices, block counts and the end of the record
 * are checked, and a failure names the byte offset and the field path.
 * Avro-C only ever sees bytes that decode. */

#define V_MAX_DEPTH 48

typedef struct {
    const unsigned char *p, *start, *end;
    size_t base;
    int depth;
    const char *name[V_MAX_DEPTH];
    long idx[V_MAX_DEPTH]; /* array index, or -1 */
    char *errstr;
    size_t errstr_size;
} vx_t;

static ts_err_t vfail(vx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ts_err_t vfail(vx_t *v, const char *fmt, ...) {
    char path[192] = "", what[160];
    size_t pl = 0;
    for (int i = 0; i < v->depth && pl < sizeof path - 1; i++) {
        int n = v->idx[i] >= 0 ? snprintf(path + pl, sizeof path - pl, "[%ld]", v->idx[i])
                               : snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "",
                                          v->name[i] ? v->name[i] : "?");
        if (n < 0) break;
        pl += (size_t)n;
        if (pl >= sizeof path) pl = sizeof path - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ts_seterr(v->errstr, v->errstr_size, TS_ERR_INVALID, "Avro at byte %zu%s%s: %s",
                     v->base + (size_t)(v->p - v->start), pl ? ", field " : "", path, what);
}

static ts_err_t vlong(vx_t *v, int64_t *out, int maxbytes) {
    *out = 0;
    uint64_t u = 0;
    const unsigned char *at = v->p;
    for (int i = 0, shift = 0; i < maxbytes; i++, shift += 7) {
        if (v->p >= v->end) {
            v->p = at; /* report where the varint starts */
            return vfail(v, "truncated varint");
        }
        unsigned char b = *v->p++;
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return TS_OK;
        }
    }
    v->p = at;
    return vfail(v, "varint longer than %d bytes", maxbytes);
}

static ts_err_t vskip(vx_t *v, int64_t n, const char *what) {
    if (n < 0) return vfail(v, "negative %s length %lld", what, (long long)n);
    if (n > v->end - v->p)
        return vfail(v, "%s of %lld bytes but only %lld remain", what, (long long)n,
                     (long long)(v->end - v->p));
    v->p += n;
    return TS_OK;
}

static ts_err_t vwalk(vx_t *v, avro_schema_t s);

static ts_err_t vpush(vx_t *v, const char *name, long idx) {
    if (v->depth >= V_MAX_DEPTH) return vfail(v, "nested deeper than %d", V_MAX_DEPTH);
    v->name[v->depth] = name;
    v->idx[v->depth] = idx;
    v->depth++;
    return TS_OK;
}

/* array/map blocks */
static ts_err_t vblocks(vx_t *v, avro_schema_t items, bool map) {
    long index = 0;
    for (;;) {
        int64_t count = 0, size = 0;
        ts_err_t rc = vlong(v, &count, 10);
        if (rc) return rc;
        if (count == 0) return TS_OK;
        if (count < 0) {
            if (count == INT64_MIN) return vfail(v, "bad block count");
            count = -count;
            if ((rc = vlong(v, &size, 10))) return rc;
        }
        /* every item takes at least one byte unless its type is empty */
        if (count > v->end - v->p && count > (1 << 20))
            return vfail(v, "block of %lld items but only %lld bytes remain", (long long)count,
                         (long long)(v->end - v->p));
        for (int64_t i = 0; i < count; i++, index++) {
            if ((rc = vpush(v, NULL, index))) return rc;
            if (map) {
                int64_t kl = 0;
                if ((rc = vlong(v, &kl, 10)) || (rc = vskip(v, kl, "map key"))) return rc;
            }
            if ((rc = vwalk(v, items))) return rc;
            v->depth--;
        }
    }
}

static ts_err_t vbool(vx_t *v) {
    if (v->p >= v->end) return vfail(v, "truncated boolean");
    if (*v->p > 1) return vfail(v, "boolean byte 0x%02x", *v->p);
    v->p++;
    return TS_OK;
}

/* An enum index or a union branch: a long in [0, n). */
static ts_err_t vindex(vx_t *v, int64_t n, const char *what, int64_t *x) {
    ts_err_t rc = vlong(v, x, 10);
    if (rc) return rc;
    if (*x < 0 || *x >= n) return vfail(v, "%s %lld out of range", what, (long long)*x);
    return TS_OK;
}

static ts_err_t vrecord(vx_t *v, avro_schema_t s) {
    ts_err_t rc;
    for (size_t i = 0; i < avro_schema_record_size(s); i++) {
        if ((rc = vpush(v, avro_schema_record_field_name(s, (int)i), -1))) return rc;
        if ((rc = vwalk(v, avro_schema_record_field_get_by_index(s, (int)i)))) return rc;
        v->depth--;
    }
    return TS_OK;
}

/* One value of schema s: a flat dispatch on the type. */
static ts_err_t vwalk(vx_t *v, avro_schema_t s) {
    int64_t x = 0;
    ts_err_t rc;
    switch (avro_typeof(s)) {
    case AVRO_NULL: return TS_OK;
    case AVRO_BOOLEAN: return vbool(v);
    case AVRO_INT32: return vlong(v, &x, 5);
    case AVRO_INT64: return vlong(v, &x, 10);
    case AVRO_FLOAT: return vskip(v, 4, "float");
    case AVRO_DOUBLE: return vskip(v, 8, "double");
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((rc = vlong(v, &x, 10))) return rc;
        return vskip(v, x, avro_typeof(s) == AVRO_STRING ? "string" : "bytes");
    case AVRO_FIXED: return vskip(v, avro_schema_fixed_size(s), "fixed");
    case AVRO_ENUM: return vindex(v, avro_schema_enum_number_of_symbols(s), "enum index", &x);
    case AVRO_UNION:
        if ((rc = vindex(v, (int64_t)avro_schema_union_size(s), "union branch", &x))) return rc;
        return vwalk(v, avro_schema_union_branch(s, (int)x));
    case AVRO_ARRAY: return vblocks(v, avro_schema_array_items(s), false);
    case AVRO_MAP: return vblocks(v, avro_schema_map_values(s), true);
    case AVRO_RECORD: return vrecord(v, s);
    case AVRO_LINK: return vwalk(v, avro_schema_link_target(s));
    default: return vfail(v, "unsupported schema type");
    }
}

static ts_err_t validate(avro_schema_t writer, const void *buf, size_t len, size_t base,
                         char *errstr, size_t errstr_size) {
    vx_t v = {.p = buf,
              .start = buf,
              .end = (const unsigned char *)buf + len,
              .base = base,
              .errstr = errstr,
              .errstr_size = errstr_size};
    ts_err_t rc = vwalk(&v, writer);
    if (rc) return rc;
    if (v.p != v.end)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "Avro record ends at byte %zu but the message has %zu: trailing bytes",
                         base + (size_t)(v.p - v.start), base + len);
    return TS_OK;
}

ts_err_t ts_avro_decode(ts_avro_t *a, int32_t id, const void *buf, size_t len, size_t base_offset,
                        ts_arena_t *arena, void *out, char *errstr, size_t errstr_size) {
    writer_t *w = find(a, id);
    if (!w)
        return ts_seterr(errstr, errstr_size, TS_ERR_NOT_FOUND, "writer schema %ld not loaded",
                         (long)id);
    ts_err_t rc = validate(w->writer, len ? buf : "", len, base_offset, errstr, errstr_size);
    if (rc) return rc;
    avro_reader_memory_set_source(a->in, len ? buf : "", (int64_t)len);
    avro_value_reset(&w->value);
    if (avro_value_read(a->in, &w->resolved)) { /* not expected after validate() */
        const char *why = avro_strerror();
        size_t wl = strlen(why);
        while (wl > 0 && (why[wl - 1] == '\n' || why[wl - 1] == ' ')) wl--;
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "Avro body at byte %zu (writer schema %ld) does not decode: %.*s",
                         base_offset, (long)id, (int)wl, why);
    }
    cx_t c = {a, arena, errstr, errstr_size};
    return a->kind == TS_KIND_CUSTOMER ? to_customer(&c, &w->value, out)
                                       : to_order(&c, &w->value, out);
}
