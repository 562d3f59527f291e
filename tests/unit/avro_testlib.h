/*
 * avro_testlib.h - encoding helpers for the Avro tests and benchmarks:
 * build records with Avro-C generic values of any writer schema and
 * serialise them (plain or Confluent-framed). Test-only; header-only.
 */
#ifndef TS_AVRO_TESTLIB_H
#define TS_AVRO_TESTLIB_H

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t rec;
} tw_t;

static inline void tw_die(const char *what) {
    fprintf(stderr, "avro_testlib: %s: %s\n", what, avro_strerror());
    abort();
}

static inline void tw_init(tw_t *w, const char *schema_json) {
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &w->schema))
        tw_die("schema");
    if (!(w->iface = avro_generic_class_from_schema(w->schema))) tw_die("class");
    if (avro_generic_value_new(w->iface, &w->rec)) tw_die("value");
}
static inline void tw_free(tw_t *w) {
    avro_value_decref(&w->rec);
    avro_value_iface_decref(w->iface);
    avro_schema_decref(w->schema);
}

/* Field `name` of rec; for a ["null", T] union selects the T branch
 * (or the null branch when `null` is true). */
static inline avro_value_t tw_field(avro_value_t *rec, const char *name, int null) {
    avro_value_t v, b;
    if (avro_value_get_by_name(rec, name, &v, NULL)) tw_die(name);
    if (avro_value_get_type(&v) != AVRO_UNION) return v;
    if (avro_value_set_branch(&v, null ? 0 : 1, &b)) tw_die(name);
    return b;
}
static inline void tw_str(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t v = tw_field(rec, name, s == NULL);
    if (s && avro_value_set_string(&v, s)) tw_die(name);
}
static inline void tw_long(avro_value_t *rec, const char *name, int64_t x) {
    avro_value_t v = tw_field(rec, name, 0);
    if ((avro_value_get_type(&v) == AVRO_INT32 ? avro_value_set_int(&v, (int32_t)x)
                                               : avro_value_set_long(&v, x)))
        tw_die(name);
}
static inline void tw_bool(avro_value_t *rec, const char *name, int b) {
    avro_value_t v = tw_field(rec, name, 0);
    if (avro_value_set_boolean(&v, b)) tw_die(name);
}
static inline void tw_enum(avro_value_t *rec, const char *name, int sym) {
    avro_value_t v = tw_field(rec, name, 0);
    if (avro_value_set_enum(&v, sym)) tw_die(name);
}
/* decimal: minimal two's-complement big-endian bytes of `units`. */
static inline void tw_dec(avro_value_t *rec, const char *name, int64_t units) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)units >> (56 - 8 * i));
    int s = 0;
    while (s < 7 && ((b[s] == 0 && !(b[s + 1] & 0x80)) || (b[s] == 0xff && (b[s + 1] & 0x80)))) s++;
    avro_value_t v = tw_field(rec, name, 0);
    if (avro_value_set_bytes(&v, b + s, (size_t)(8 - s))) tw_die(name);
}
static inline void tw_null(avro_value_t *rec, const char *name) { (void)tw_field(rec, name, 1); }
/* Appends a record element to array field `name` of rec. */
static inline avro_value_t tw_append(avro_value_t *rec, const char *name) {
    avro_value_t arr = tw_field(rec, name, 0), e;
    if (avro_value_append(&arr, &e, NULL)) tw_die(name);
    return e;
}
/* Record inside union field `name`. */
static inline avro_value_t tw_sub(avro_value_t *rec, const char *name) {
    return tw_field(rec, name, 0);
}

/* Selects the null branch of every union left unset (generic values
 * start with no branch). */
static inline void tw_fill_nulls(avro_value_t *v) {
    size_t n = 0;
    avro_value_t c;
    int d;
    switch (avro_value_get_type(v)) {
    case AVRO_RECORD:
    case AVRO_ARRAY:
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &c, NULL);
            tw_fill_nulls(&c);
        }
        break;
    case AVRO_UNION:
        if (avro_value_get_discriminant(v, &d) || d < 0) {
            if (avro_value_set_branch(v, 0, &c)) tw_die("union");
        } else if (!avro_value_get_current_branch(v, &c)) {
            tw_fill_nulls(&c);
        }
        break;
    default: break;
    }
}

/* Serialises w->rec into buf; framed: Confluent magic 0 + BE schema id. */
static inline size_t tw_write(tw_t *w, int framed, int32_t id, char *buf, size_t size) {
    size_t off = 0;
    if (framed) {
        buf[0] = 0;
        buf[1] = (char)((uint32_t)id >> 24);
        buf[2] = (char)((uint32_t)id >> 16);
        buf[3] = (char)((uint32_t)id >> 8);
        buf[4] = (char)id;
        off = 5;
    }
    tw_fill_nulls(&w->rec);
    avro_writer_t wr = avro_writer_memory(buf + off, (int64_t)(size - off));
    if (avro_value_write(wr, &w->rec)) tw_die("write");
    size_t n = (size_t)avro_writer_tell(wr);
    avro_writer_free(wr);
    return off + n;
}

#endif
