/*
 * avro_enc.c - the Avro *encoder* of the dev tools (generator, tests,
 * benchmarks): records into Avro binary with any compatible writer
 * schema. Kept out of the core library so the production binaries do not
 * carry it; the core only decodes (src/avro/avro.c).
 */
#include "tillstream/avro_enc.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding --------------------------------------------------------- */

struct ts_avro_enc_s {
    ts_kind_t kind;
    avro_schema_t reader, writer;
    avro_value_iface_t *reader_iface, *writer_iface;
    avro_value_t rv, wv;
};

void ts_avro_enc_destroy(ts_avro_enc_t *e) {
    if (!e) return;
    if (e->wv.iface) avro_value_decref(&e->wv);
    if (e->rv.iface) avro_value_decref(&e->rv);
    if (e->writer_iface) avro_value_iface_decref(e->writer_iface);
    if (e->reader_iface) avro_value_iface_decref(e->reader_iface);
    if (e->writer) avro_schema_decref(e->writer);
    if (e->reader) avro_schema_decref(e->reader);
    free(e);
}

ts_avro_enc_t *ts_avro_enc_new(ts_kind_t kind, const char *writer_schema_json, char *errstr,
                               size_t errstr_size) {
    ts_avro_enc_t *e = ts_zalloc(sizeof *e, "avro", errstr, errstr_size);
    if (!e) return NULL;
    e->kind = kind;
    const char *rj = kind == TS_KIND_CUSTOMER ? ts_schema_customer_avsc : ts_schema_order_avsc;
    const char *wj = writer_schema_json ? writer_schema_json : rj;
    if (avro_schema_from_json_length(rj, strlen(rj), &e->reader)) {
        e->reader = NULL;
        ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "avro: %s", avro_strerror());
        goto fail;
    }
    if (avro_schema_from_json_length(wj, strlen(wj), &e->writer)) {
        e->writer = NULL;
        ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "writer schema: %s", avro_strerror());
        goto fail;
    }
    if (!(e->reader_iface = avro_generic_class_from_schema(e->reader)) ||
        !(e->writer_iface = avro_generic_class_from_schema(e->writer)) ||
        avro_generic_value_new(e->reader_iface, &e->rv) ||
        avro_generic_value_new(e->writer_iface, &e->wv)) {
        ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "avro: %s", avro_strerror());
        goto fail;
    }
    return e;
fail:
    ts_avro_enc_destroy(e);
    return NULL;
}

/* Field `name` of rec, selecting the non-null branch of a union (or the
 * null branch when `null`). */
static int efield(avro_value_t *rec, const char *name, bool null, avro_value_t *out) {
    avro_value_t v = {NULL, NULL};
    if (avro_value_get_by_name(rec, name, &v, NULL)) return -1;
    if (avro_value_get_type(&v) == AVRO_UNION) return avro_value_set_branch(&v, null ? 0 : 1, out);
    *out = v;
    return 0;
}
static int estr(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t v = {NULL, NULL};
    if (efield(rec, name, s == NULL, &v)) return -1;
    return s ? avro_value_set_string(&v, s) : 0;
}
static int elong(avro_value_t *rec, const char *name, int64_t x, bool null) {
    avro_value_t v = {NULL, NULL};
    if (efield(rec, name, null, &v)) return -1;
    return null ? 0 : avro_value_set_long(&v, x);
}
static int etri(avro_value_t *rec, const char *name, ts_tri_t t) {
    avro_value_t v = {NULL, NULL};
    if (efield(rec, name, t == TS_TRI_UNKNOWN, &v)) return -1;
    return t == TS_TRI_UNKNOWN ? 0 : avro_value_set_boolean(&v, t == TS_TRI_TRUE);
}
static int edec(avro_value_t *rec, const char *name, ts_decimal_t d) {
    avro_value_t v = {NULL, NULL};
    ts_decimal_t d4 = {0, 4, true};
    if (d.present && ts_decimal_rescale(d, 4, &d4)) return -1;
    if (efield(rec, name, !d.present, &v)) return -1;
    if (!d.present) return 0;
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)d4.units >> (56 - 8 * i));
    int k = 0;
    while (k < 7 && ((b[k] == 0 && !(b[k + 1] & 0x80)) || (b[k] == 0xff && (b[k + 1] & 0x80)))) k++;
    return avro_value_set_bytes(&v, b + k, (size_t)(8 - k));
}

static int fill_customer(avro_value_t *r, const ts_customer_t *c) {
    avro_value_t ad;
    if (estr(r, "customer_id", c->customer_id) || estr(r, "email", c->email) ||
        estr(r, "phone", c->phone) || estr(r, "first_name", c->first_name) ||
        estr(r, "last_name", c->last_name) || estr(r, "home_outlet_id", c->home_outlet_id) ||
        etri(r, "email_consent", c->email_consent) || etri(r, "sms_consent", c->sms_consent) ||
        estr(r, "date_of_birth", c->date_of_birth) ||
        etri(r, "loyalty_member", c->loyalty_member) ||
        elong(r, "created_at", c->created_at_ms, c->created_at_ms == 0) ||
        elong(r, "updated_at", c->updated_at_ms, c->updated_at_ms == 0) ||
        elong(r, "email_consent_at", c->email_consent_at_ms, c->email_consent_at_ms == 0) ||
        elong(r, "sms_consent_at", c->sms_consent_at_ms, c->sms_consent_at_ms == 0) ||
        efield(r, "billing_address", !c->has_billing_address, &ad))
        return -1;
    if (!c->has_billing_address) return 0;
    const ts_address_t *A = &c->billing_address;
    return estr(&ad, "line1", A->line1) || estr(&ad, "line2", A->line2) ||
           estr(&ad, "city", A->city) || estr(&ad, "region", A->region) ||
           estr(&ad, "postcode", A->postcode) || estr(&ad, "country", A->country);
}

static int fill_line(avro_value_t *lines, const ts_order_line_t *L) {
    avro_value_t l, cats, cat;
    if (avro_value_append(lines, &l, NULL) || estr(&l, "line_id", L->line_id) ||
        estr(&l, "product_id", L->product_id) || estr(&l, "sku", L->sku) ||
        estr(&l, "name", L->name) || edec(&l, "quantity", L->quantity) ||
        edec(&l, "unit_price", L->unit_price) || edec(&l, "row_total", L->row_total) ||
        edec(&l, "discount", L->discount) || estr(&l, "brand", L->brand) ||
        estr(&l, "image_url", L->image_url) || estr(&l, "product_url", L->product_url) ||
        efield(&l, "categories", false, &cats))
        return -1;
    for (size_t k = 0; k < L->n_categories; k++)
        if (avro_value_append(&cats, &cat, NULL) || avro_value_set_string(&cat, L->categories[k]))
            return -1;
    return 0;
}

/* The optional refund and customer snapshot. */
static int fill_order_parts(avro_value_t *r, const ts_order_t *o) {
    avro_value_t sub;
    if (efield(r, "refund", !o->refund.present, &sub)) return -1;
    if (o->refund.present &&
        (estr(&sub, "refund_id", o->refund.refund_id) || estr(&sub, "reason", o->refund.reason) ||
         edec(&sub, "amount", o->refund.amount)))
        return -1;
    if (efield(r, "customer", !o->customer.present, &sub)) return -1;
    const ts_customer_ref_t *C = &o->customer;
    if (C->present &&
        (estr(&sub, "email", C->email) || estr(&sub, "phone", C->phone) ||
         estr(&sub, "first_name", C->first_name) || estr(&sub, "last_name", C->last_name) ||
         estr(&sub, "home_outlet_id", C->home_outlet_id)))
        return -1;
    return 0;
}

static int fill_order(avro_value_t *r, const ts_order_t *o) {
    avro_value_t v, lines;
    if (estr(r, "order_id", o->order_id) || estr(r, "customer_id", o->customer_id) ||
        estr(r, "outlet_id", o->outlet_id) || estr(r, "outlet_name", o->outlet_name) ||
        efield(r, "channel", false, &v) || avro_value_set_enum(&v, (int)o->channel) ||
        efield(r, "status", false, &v) || avro_value_set_enum(&v, (int)o->status) ||
        efield(r, "is_test", false, &v) || avro_value_set_boolean(&v, o->is_test) ||
        elong(r, "occurred_at", o->occurred_at_ms, false) ||
        estr(r, "currency", o->currency[0] ? o->currency : NULL) || edec(r, "total", o->total) ||
        edec(r, "discount", o->discount) || edec(r, "tax", o->tax) ||
        efield(r, "lines", false, &lines))
        return -1;
    for (size_t i = 0; i < o->n_lines; i++)
        if (fill_line(&lines, &o->lines[i])) return -1;
    return fill_order_parts(r, o);
}

/* Writer-side value for a field the reader value lacks: null, zero, "",
 * empty array, first enum symbol, a record of such. */
static int zero_value(avro_value_t *d) {
    avro_value_t c;
    size_t n;
    switch (avro_value_get_type(d)) {
    case AVRO_UNION: {
        avro_schema_t us = avro_value_get_schema(d);
        for (size_t i = 0; i < avro_schema_union_size(us); i++)
            if (avro_typeof(avro_schema_union_branch(us, (int)i)) == AVRO_NULL)
                return avro_value_set_branch(d, (int)i, &c);
        return avro_value_set_branch(d, 0, &c) || zero_value(&c);
    }
    case AVRO_RECORD:
        avro_value_get_size(d, &n);
        for (size_t i = 0; i < n; i++)
            if (avro_value_get_by_index(d, i, &c, NULL) || zero_value(&c)) return -1;
        return 0;
    case AVRO_STRING: return avro_value_set_string(d, "");
    case AVRO_ENUM: return avro_value_set_enum(d, 0);
    default: return 0; /* generic values start at zero / empty */
    }
}

static bool same_family(avro_type_t a, avro_type_t b) {
    bool an = a == AVRO_INT32 || a == AVRO_INT64, bn = b == AVRO_INT32 || b == AVRO_INT64;
    bool af = a == AVRO_FLOAT || a == AVRO_DOUBLE, bf = b == AVRO_FLOAT || b == AVRO_DOUBLE;
    return a == b || (an && bn) || (af && bf) ||
           ((a == AVRO_STRING || a == AVRO_BYTES) && (b == AVRO_STRING || b == AVRO_BYTES));
}

static int project(avro_value_t *d, avro_value_t *s);

/* Into a writer union: the first branch of s's type family. */
static int project_into_union(avro_value_t *d, avro_value_t *s, avro_type_t st) {
    avro_value_t dc;
    avro_schema_t us = avro_value_get_schema(d);
    for (size_t i = 0; i < avro_schema_union_size(us); i++) {
        avro_schema_t b = avro_schema_union_branch(us, (int)i);
        if (is_avro_link(b)) b = avro_schema_link_target(b);
        if (same_family(avro_typeof(b), st))
            return avro_value_set_branch(d, (int)i, &dc) || project(&dc, s);
    }
    return -1;
}

/* A record by field name (a field s lacks is zero), an array item by item. */
static int project_record(avro_value_t *d, avro_value_t *s) {
    avro_value_t sc, dc;
    size_t n;
    avro_value_get_size(d, &n);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        if (avro_value_get_by_index(d, i, &dc, &name)) return -1;
        if (avro_value_get_by_name(s, name, &sc, NULL) ? zero_value(&dc) : project(&dc, &sc))
            return -1;
    }
    return 0;
}

static int project_array(avro_value_t *d, avro_value_t *s) {
    avro_value_t sc, dc;
    size_t n;
    avro_value_get_size(s, &n);
    for (size_t i = 0; i < n; i++)
        if (avro_value_get_by_index(s, i, &sc, NULL) || avro_value_append(d, &dc, NULL) ||
            project(&dc, &sc))
            return -1;
    return 0;
}

/* An enum by symbol name. */
static int project_enum(avro_value_t *d, avro_value_t *s) {
    int sym, k;
    if (avro_value_get_enum(s, &sym)) return -1;
    const char *name = avro_schema_enum_get(avro_value_get_schema(s), sym);
    if (!name || (k = avro_schema_enum_get_by_name(avro_value_get_schema(d), name)) < 0) return -1;
    return avro_value_set_enum(d, k);
}

/* string or bytes into string or bytes. */
static int project_text(avro_value_t *d, avro_value_t *s, avro_type_t st, avro_type_t dt) {
    const void *p;
    size_t len;
    if (st == AVRO_STRING) {
        const char *str;
        if (avro_value_get_string(s, &str, &len)) return -1;
        p = str;
        len = len ? len - 1 : 0;
    } else if (st != AVRO_BYTES || avro_value_get_bytes(s, &p, &len)) {
        return -1;
    }
    if (dt == AVRO_BYTES) return avro_value_set_bytes(d, (void *)p, len);
    return avro_value_set_string_len(d, p, len + 1) ? -1 : 0;
}

/* int or long into int or long; float or double into float or double. */
static int project_number(avro_value_t *d, avro_value_t *s, avro_type_t st, avro_type_t dt) {
    bool integral = dt == AVRO_INT32 || dt == AVRO_INT64;
    int32_t i32 = 0;
    int64_t x = 0;
    float f32 = 0;
    double f = 0;
    int rc = -1;
    if (integral && st == AVRO_INT32)
        rc = avro_value_get_int(s, &i32), x = i32;
    else if (integral && st == AVRO_INT64)
        rc = avro_value_get_long(s, &x);
    else if (!integral && st == AVRO_FLOAT)
        rc = avro_value_get_float(s, &f32), f = f32;
    else if (!integral && st == AVRO_DOUBLE)
        rc = avro_value_get_double(s, &f);
    if (rc) return -1;
    switch (dt) {
    case AVRO_INT32: return avro_value_set_int(d, (int32_t)x);
    case AVRO_INT64: return avro_value_set_long(d, x);
    case AVRO_FLOAT: return avro_value_set_float(d, (float)f);
    default: return avro_value_set_double(d, f);
    }
}

/* Projects reader-shaped `s` onto writer-shaped `d` by field name. */
static int project(avro_value_t *d, avro_value_t *s) {
    avro_value_t sc;
    if (avro_value_get_type(s) == AVRO_UNION) {
        if (avro_value_get_current_branch(s, &sc)) return zero_value(d);
        return project(d, &sc);
    }
    avro_type_t st = avro_value_get_type(s), dt = avro_value_get_type(d);
    if (dt == AVRO_UNION) return project_into_union(d, s, st);
    switch (dt) {
    case AVRO_RECORD: return st == AVRO_RECORD ? project_record(d, s) : -1;
    case AVRO_ARRAY: return st == AVRO_ARRAY ? project_array(d, s) : -1;
    case AVRO_ENUM: return st == AVRO_ENUM ? project_enum(d, s) : -1;
    case AVRO_STRING:
    case AVRO_BYTES: return project_text(d, s, st, dt);
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE: return project_number(d, s, st, dt);
    case AVRO_BOOLEAN: {
        int b;
        if (st != AVRO_BOOLEAN || avro_value_get_boolean(s, &b)) return -1;
        return avro_value_set_boolean(d, b);
    }
    case AVRO_NULL: return st == AVRO_NULL ? 0 : -1;
    default: return -1;
    }
}

ts_err_t ts_avro_encode(ts_avro_enc_t *e, const void *rec, int32_t framed_id, ts_buf_t *out,
                        char *errstr, size_t errstr_size) {
    avro_value_reset(&e->rv);
    avro_value_reset(&e->wv);
    if (zero_value(&e->rv) ||
        (e->kind == TS_KIND_CUSTOMER ? fill_customer(&e->rv, rec) : fill_order(&e->rv, rec)))
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "avro encode: %s", avro_strerror());
    if (project(&e->wv, &e->rv))
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID,
                         "avro encode: the record does not fit the writer schema");
    size_t n = 0;
    if (avro_value_sizeof(&e->wv, &n))
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "avro encode: %s", avro_strerror());
    if (ts_buf_reserve(out, n + 6))
        return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
    if (framed_id >= 0) {
        unsigned char h[5] = {0, (unsigned char)(framed_id >> 24), (unsigned char)(framed_id >> 16),
                              (unsigned char)(framed_id >> 8), (unsigned char)framed_id};
        ts_buf_append(out, h, 5);
    }
    avro_writer_t w = avro_writer_memory(out->data + out->len, (int64_t)n);
    if (!w) return ts_seterr(errstr, errstr_size, TS_ERR_NOMEM, "avro: out of memory");
    int rc = avro_value_write(w, &e->wv);
    avro_writer_free(w);
    if (rc)
        return ts_seterr(errstr, errstr_size, TS_ERR_INVALID, "avro encode: %s", avro_strerror());
    out->len += n;
    out->data[out->len] = '\0';
    return TS_OK;
}
