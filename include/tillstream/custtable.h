/*
 * tillstream/custtable.h - the customer table of tillstream-orders: the
 * stream-table join that gives an order its customer's Home Outlet and
 * identifiers. Built from the (compacted) customers topic; tombstones
 * delete.
 *
 * Memory: entries are packed (one slab allocation per customer holding
 * all its strings, outlet ids interned) in an open-addressing hash; the
 * target is 1 million customers well inside 256 MiB (docs/customer-table.md
 * records the measured bytes per customer).
 *
 * Threading: not thread-safe; owned by the consumer loop thread.
 */
#ifndef TILLSTREAM_CUSTTABLE_H
#define TILLSTREAM_CUSTTABLE_H

#include "tillstream/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_custtable_s ts_custtable_t;

/* `expected` sizes the initial table (0 = small default; it grows). */
ts_custtable_t *ts_custtable_new(size_t expected);
void ts_custtable_destroy(ts_custtable_t *t);

/* Inserts or replaces the entry for c->customer_id, copying what the
 * order path needs (email, phone, names, home outlet). TS_ERR_INVALID
 * without a customer_id, TS_ERR_NOMEM. */
ts_err_t ts_custtable_put(ts_custtable_t *t, const ts_customer_t *c);
/* Removes the entry (tombstone). Returns true if it existed. */
bool ts_custtable_delete(ts_custtable_t *t, const char *customer_id, size_t id_len);
/* Finds a customer. On success fills `out` (present = true) with pointers
 * into the table's storage, valid until the next put/delete of that id or
 * destroy; returns false when unknown. */
bool ts_custtable_get(const ts_custtable_t *t, const char *customer_id, ts_customer_ref_t *out);

size_t ts_custtable_size(const ts_custtable_t *t);
/* Bytes allocated by the table (slabs + index + interned outlets). */
size_t ts_custtable_memory_bytes(const ts_custtable_t *t);

#ifdef __cplusplus
}
#endif
#endif
