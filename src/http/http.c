/*
 * http.c - process-wide libcurl initialisation shared by the engine and the
 * registry client: once, before any handle, whichever comes first.
 */
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_rc = CURLE_OK;

static void init_once(void) { g_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ts_err_t ts_http_global_init(char *errstr, size_t errstr_size) {
    pthread_once(&g_once, init_once);
    if (g_rc != CURLE_OK)
        return ts_seterr(errstr, errstr_size, TS_ERR_INTERNAL, "libcurl initialisation: %s",
                         curl_easy_strerror(g_rc));
    return TS_OK;
}
