/*
 * http.h - what the two libcurl users of src/http (the delivery engine and
 * the schema-registry client) share. Private to src/http.
 */
#ifndef TS_HTTP_PRIVATE_H
#define TS_HTTP_PRIVATE_H

#include "tillstream/common.h"

/* curl_global_init() once per process, before the first curl handle,
 * whichever module creates it first (the registry client is created before
 * the engine). Thread-safe (pthread_once). TS_ERR_INTERNAL with errstr
 * when libcurl cannot initialise. */
ts_err_t ts_http_global_init(char *errstr, size_t errstr_size);

#endif
