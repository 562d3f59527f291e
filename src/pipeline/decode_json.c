/*
 * decode_json.c - JSON customers and orders (the same field names as the
 * Avro schemas in schemas/) into the record model. Errors carry the field
 * path ("lines[2].quantity: expected a number or decimal string"), which
 * becomes the DECODE_ERROR dead letter's detail. Unknown fields are
 * ignored so producers can add fields before we read them.
 */
#include "tillstream/decode.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define BAD(...) ts_seterr(errstr, errstr_size, TS_ERR_INVALID, __VA_ARGS__)

typedef struct {
    ts_arena_t *arena;
    char *errstr;
    size_t errstr_size;
    char path[128]; /* prefix, e.g. "lines[2]." */
} dctx_t;

static bool is_id_field(const char *key) {
    size_t n = strlen(key);
    return (n > 3 && !strcmp(key + n - 3, "_id")) || !strcmp(key, "sku");
}

static ts_err_t get_str(dctx_t *c, const cJSON *obj, const char *key, bool required,
                        const char **out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required) return BAD("%s%s: required", c->path, key);
        return TS_OK;
    }
    if (cJSON_IsString(v)) {
        if (required && !*v->valuestring) return BAD("%s%s: must not be empty", c->path, key);
        *out = ts_arena_strdup(c->arena, v->valuestring);
    } else if (cJSON_IsNumber(v) && is_id_field(key)) {
        /* ids are often numeric in POS exports: accept integers as text */
        char buf[32];
        if (v->valuedouble != (double)(long long)v->valuedouble)
            return BAD("%s%s: expected a string", c->path, key);
        snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        *out = ts_arena_strdup(c->arena, buf);
    } else {
        return BAD("%s%s: expected a string", c->path, key);
    }
    return *out ? TS_OK : TS_ERR_NOMEM;
}

static ts_err_t get_tri(dctx_t *c, const cJSON *obj, const char *key, ts_tri_t *out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = TS_TRI_UNKNOWN;
    if (!v || cJSON_IsNull(v)) return TS_OK;
    if (!cJSON_IsBool(v)) return BAD("%s%s: expected true, false or null", c->path, key);
    *out = cJSON_IsTrue(v) ? TS_TRI_TRUE : TS_TRI_FALSE;
    return TS_OK;
}

static ts_err_t get_bool(dctx_t *c, const cJSON *obj, const char *key, bool *out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return TS_OK;
    if (!cJSON_IsBool(v)) return BAD("%s%s: expected true or false", c->path, key);
    *out = cJSON_IsTrue(v);
    return TS_OK;
}

static ts_err_t get_decimal(dctx_t *c, const cJSON *obj, const char *key, bool required,
                            ts_decimal_t *out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char why[160];
    memset(out, 0, sizeof *out);
    if (!v || cJSON_IsNull(v)) {
        if (required) return BAD("%s%s: required", c->path, key);
        return TS_OK;
    }
    ts_err_t rc;
    if (cJSON_IsNumber(v))
        rc = ts_decimal_from_double(v->valuedouble, out, why, sizeof why);
    else if (cJSON_IsString(v))
        rc = ts_decimal_parse(v->valuestring, strlen(v->valuestring), out, why, sizeof why);
    else
        return BAD("%s%s: expected a number or decimal string", c->path, key);
    if (rc != TS_OK) return BAD("%s%s: %s", c->path, key, why);
    return TS_OK;
}

static ts_err_t get_time(dctx_t *c, const cJSON *obj, const char *key, bool required,
                         int64_t *out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char why[160];
    *out = 0;
    if (!v || cJSON_IsNull(v)) {
        if (required) return BAD("%s%s: required", c->path, key);
        return TS_OK;
    }
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != (double)(long long)v->valuedouble)
            return BAD("%s%s: epoch milliseconds must be an integer", c->path, key);
        *out = (int64_t)v->valuedouble;
        return TS_OK;
    }
    if (!cJSON_IsString(v))
        return BAD("%s%s: expected an ISO-8601 string or epoch milliseconds", c->path, key);
    if (ts_time_parse_iso8601(v->valuestring, strlen(v->valuestring), out, why, sizeof why))
        return BAD("%s%s: %s", c->path, key, why);
    return TS_OK;
}

static ts_err_t parse_root(const char *buf, size_t len, cJSON **root, char *errstr,
                           size_t errstr_size) {
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!*root) {
        size_t off = end ? (size_t)(end - buf) : 0;
        return BAD("invalid JSON at byte %zu", off);
    }
    /* one value per record: anything but whitespace after it is an error */
    size_t off = end ? (size_t)(end - buf) : len;
    while (off < len &&
           (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\r' || buf[off] == '\n'))
        off++;
    if (off < len) {
        cJSON_Delete(*root);
        *root = NULL;
        return BAD("invalid JSON at byte %zu: trailing data after the object", off);
    }
    if (!cJSON_IsObject(*root)) {
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

ts_err_t ts_decode_customer_json(const char *buf, size_t len, ts_arena_t *arena, ts_customer_t *out,
                                 char *errstr, size_t errstr_size) {
    cJSON *root;
    ts_err_t rc = parse_root(buf, len, &root, errstr, errstr_size);
    if (rc) return rc;
    dctx_t c = {arena, errstr, errstr_size, ""};
    memset(out, 0, sizeof *out);
    TRY(get_str(&c, root, "customer_id", true, &out->customer_id));
    TRY(get_str(&c, root, "email", false, &out->email));
    TRY(get_str(&c, root, "phone", false, &out->phone));
    TRY(get_str(&c, root, "first_name", false, &out->first_name));
    TRY(get_str(&c, root, "last_name", false, &out->last_name));
    TRY(get_str(&c, root, "home_outlet_id", false, &out->home_outlet_id));
    TRY(get_tri(&c, root, "email_consent", &out->email_consent));
    TRY(get_tri(&c, root, "sms_consent", &out->sms_consent));
    TRY(get_tri(&c, root, "loyalty_member", &out->loyalty_member));
    TRY(get_str(&c, root, "date_of_birth", false, &out->date_of_birth));
    TRY(get_time(&c, root, "created_at", false, &out->created_at_ms));
    TRY(get_time(&c, root, "updated_at", false, &out->updated_at_ms));
    TRY(get_time(&c, root, "email_consent_at", false, &out->email_consent_at_ms));
    TRY(get_time(&c, root, "sms_consent_at", false, &out->sms_consent_at_ms));
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(root, "billing_address");
    if (addr && !cJSON_IsNull(addr)) {
        if (!cJSON_IsObject(addr)) {
            rc = BAD("billing_address: expected an object or null");
            goto done;
        }
        snprintf(c.path, sizeof c.path, "billing_address.");
        ts_address_t *a = &out->billing_address;
        out->has_billing_address = true;
        TRY(get_str(&c, addr, "line1", false, &a->line1));
        TRY(get_str(&c, addr, "line2", false, &a->line2));
        TRY(get_str(&c, addr, "city", false, &a->city));
        TRY(get_str(&c, addr, "region", false, &a->region));
        TRY(get_str(&c, addr, "postcode", false, &a->postcode));
        TRY(get_str(&c, addr, "country", false, &a->country));
    }
done:
    cJSON_Delete(root);
    return rc;
}

static ts_err_t decode_line(dctx_t *c, const cJSON *l, ts_order_line_t *line) {
    ts_err_t rc;
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    memset(line, 0, sizeof *line);
    if (!cJSON_IsObject(l)) return BAD("%s: expected an object", c->path);
    size_t plen = strlen(c->path);
    if (plen + 1 < sizeof c->path) {
        c->path[plen] = '.';
        c->path[plen + 1] = '\0';
    }
    TRY(get_str(c, l, "line_id", true, &line->line_id));
    TRY(get_str(c, l, "product_id", false, &line->product_id));
    TRY(get_str(c, l, "sku", false, &line->sku));
    TRY(get_str(c, l, "name", false, &line->name));
    TRY(get_decimal(c, l, "quantity", true, &line->quantity));
    TRY(get_decimal(c, l, "unit_price", false, &line->unit_price));
    TRY(get_decimal(c, l, "row_total", true, &line->row_total));
    TRY(get_decimal(c, l, "discount", false, &line->discount));
    TRY(get_str(c, l, "brand", false, &line->brand));
    TRY(get_str(c, l, "image_url", false, &line->image_url));
    TRY(get_str(c, l, "product_url", false, &line->product_url));
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(l, "categories");
    if (cats && !cJSON_IsNull(cats)) {
        if (!cJSON_IsArray(cats)) {
            rc = BAD("%scategories: expected an array of strings", c->path);
            goto done;
        }
        size_t n = (size_t)cJSON_GetArraySize(cats);
        line->categories = ts_arena_alloc(c->arena, (n ? n : 1) * sizeof(char *));
        if (!line->categories) return TS_ERR_NOMEM;
        for (const cJSON *it = cats->child; it; it = it->next) {
            if (!cJSON_IsString(it)) {
                rc = BAD("%scategories[%zu]: expected a string", c->path, line->n_categories);
                goto done;
            }
            line->categories[line->n_categories++] = ts_arena_strdup(c->arena, it->valuestring);
        }
    }
    rc = TS_OK;
done:
    c->path[plen] = '\0';
    return rc;
}

static ts_err_t enum_of(dctx_t *c, const cJSON *obj, const char *key, const char *const *names,
                        int n, int def, int *out) {
    char *errstr = c->errstr;
    size_t errstr_size = c->errstr_size;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return BAD("%s: required", key);
        return TS_OK;
    }
    if (cJSON_IsString(v))
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
    return BAD("%s: expected one of %s", key, list);
}

ts_err_t ts_decode_order_json(const char *buf, size_t len, ts_arena_t *arena, ts_order_t *out,
                              char *errstr, size_t errstr_size) {
    static const char *const statuses[] = {"completed", "fulfilled", "cancelled", "refunded",
                                           "voided"};
    static const char *const channels[] = {"in_store", "online"};
    cJSON *root;
    ts_err_t rc = parse_root(buf, len, &root, errstr, errstr_size);
    if (rc) return rc;
    dctx_t c = {arena, errstr, errstr_size, ""};
    int e;
    memset(out, 0, sizeof *out);
    TRY(get_str(&c, root, "order_id", true, &out->order_id));
    TRY(get_str(&c, root, "customer_id", false, &out->customer_id));
    TRY(get_str(&c, root, "outlet_id", false, &out->outlet_id));
    TRY(get_str(&c, root, "outlet_name", false, &out->outlet_name));
    TRY(enum_of(&c, root, "channel", channels, 2, 0, &e));
    out->channel = (ts_channel_t)e;
    TRY(enum_of(&c, root, "status", statuses, 5, -1, &e));
    out->status = (ts_order_status_t)e;
    TRY(get_bool(&c, root, "is_test", &out->is_test));
    TRY(get_time(&c, root, "occurred_at", true, &out->occurred_at_ms));
    const char *cur;
    TRY(get_str(&c, root, "currency", false, &cur));
    if (cur) {
        if (strlen(cur) != 3 || cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' || cur[1] > 'Z' ||
            cur[2] < 'A' || cur[2] > 'Z') {
            rc = BAD("currency: expected an ISO 4217 code like \"AUD\"");
            goto done;
        }
        memcpy(out->currency, cur, 4);
    }
    TRY(get_decimal(&c, root, "total", true, &out->total));
    TRY(get_decimal(&c, root, "discount", false, &out->discount));
    TRY(get_decimal(&c, root, "tax", false, &out->tax));
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(root, "lines");
    if (lines && !cJSON_IsNull(lines)) {
        if (!cJSON_IsArray(lines)) {
            rc = BAD("lines: expected an array");
            goto done;
        }
        size_t n = (size_t)cJSON_GetArraySize(lines);
        out->lines = ts_arena_alloc(arena, (n ? n : 1) * sizeof *out->lines);
        if (!out->lines) {
            rc = TS_ERR_NOMEM;
            goto done;
        }
        for (const cJSON *l = lines->child; l; l = l->next) {
            snprintf(c.path, sizeof c.path, "lines[%zu]", out->n_lines);
            TRY(decode_line(&c, l, &out->lines[out->n_lines]));
            out->n_lines++;
        }
        c.path[0] = '\0';
    }
    const cJSON *refund = cJSON_GetObjectItemCaseSensitive(root, "refund");
    if (refund && !cJSON_IsNull(refund)) {
        if (!cJSON_IsObject(refund)) {
            rc = BAD("refund: expected an object or null");
            goto done;
        }
        snprintf(c.path, sizeof c.path, "refund.");
        out->refund.present = true;
        TRY(get_str(&c, refund, "refund_id", false, &out->refund.refund_id));
        TRY(get_str(&c, refund, "reason", false, &out->refund.reason));
        TRY(get_decimal(&c, refund, "amount", false, &out->refund.amount));
        c.path[0] = '\0';
    }
    const cJSON *cust = cJSON_GetObjectItemCaseSensitive(root, "customer");
    if (cust && !cJSON_IsNull(cust)) {
        if (!cJSON_IsObject(cust)) {
            rc = BAD("customer: expected an object or null");
            goto done;
        }
        snprintf(c.path, sizeof c.path, "customer.");
        ts_customer_ref_t *s = &out->customer;
        s->present = true;
        s->customer_id = out->customer_id;
        TRY(get_str(&c, cust, "email", false, &s->email));
        TRY(get_str(&c, cust, "phone", false, &s->phone));
        TRY(get_str(&c, cust, "first_name", false, &s->first_name));
        TRY(get_str(&c, cust, "last_name", false, &s->last_name));
        TRY(get_str(&c, cust, "home_outlet_id", false, &s->home_outlet_id));
    }
done:
    cJSON_Delete(root);
    return rc;
}
