/* test_common.c - ts_buf_t, the arena, reason names, ts_mem_release. */
#include "testlib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tillstream/common.h"

static void test_buf_grows_and_stays_terminated(void **state) {
    (void)state;
    ts_buf_t b = TS_BUF_INIT;
    for (int i = 0; i < 1000; i++) assert_int_equal(ts_buf_printf(&b, "%d,", i), 0);
    assert_true(b.len > 3000);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "0,1,2,", 6);
    ts_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    ts_buf_free(&b);
}

static void test_buf_urlenc_keeps_only_unreserved(void **state) {
    (void)state;
    ts_buf_t b = TS_BUF_INIT;
    assert_int_equal(ts_buf_urlenc(&b, "aZ09-_.~ +&=/%\xc3\xa9"), 0);
    assert_string_equal(b.data, "aZ09-_.~%20%2B%26%3D%2F%25%C3%A9");
    ts_buf_free(&b);
}

static void test_arena_reuses_blocks_after_reset(void **state) {
    (void)state;
    ts_arena_t *a = ts_arena_new(64);
    char *s1 = ts_arena_strdup(a, "hello");
    assert_string_equal(s1, "hello");
    void *big = ts_arena_alloc(a, 1000); /* larger than a block */
    assert_non_null(big);
    assert_true(ts_arena_used(a) >= 1008);
    ts_arena_reset(a);
    assert_int_equal(ts_arena_used(a), 0);
    char *s2 = ts_arena_strdup(a, "world");
    assert_ptr_equal(s1, s2); /* same memory handed out again */
    ts_arena_destroy(a);
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_files_and_secrets(void **state) {
    (void)state;
    char path[] = "/tmp/ts-common-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* text: appended whole, NUL-terminated; over the limit: TOO_LARGE */
    write_file(path, "ab\0cd", 5);
    ts_buf_t b = TS_BUF_INIT;
    ts_buf_puts(&b, "x");
    assert_int_equal(ts_file_read(path, 100, &b), TS_OK);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "xab\0cd", 7);
    assert_int_equal(ts_file_read(path, 4, &b), TS_ERR_TOO_LARGE);
    ts_buf_free(&b);
    /* a secret: surrounding whitespace and newlines go, inner spaces stay */
    write_file(path, "  pass word\r\n\n", 14);
    char *s = ts_secret_file_read(path);
    assert_string_equal(s, "pass word");
    free(s);
    /* a PEM-sized secret is read whole (no silent truncation); too big fails */
    char *big = malloc(70000);
    memset(big, 'k', 70000);
    write_file(path, big, 5000);
    s = ts_secret_file_read(path);
    assert_int_equal(strlen(s), 5000);
    free(s);
    write_file(path, big, 70000);
    errno = 0;
    assert_null(ts_secret_file_read(path));
    assert_int_equal(errno, EFBIG);
    free(big);
    unlink(path);
    assert_null(ts_secret_file_read(path));
    assert_int_equal(errno, ENOENT);
    b = (ts_buf_t)TS_BUF_INIT;
    assert_int_equal(ts_file_read(path, 100, &b), TS_ERR_IO);
    ts_buf_free(&b);
}

static void test_reason_names_round_trip(void **state) {
    (void)state;
    for (int r = 1; r < TS_REASON__COUNT; r++)
        assert_int_equal(ts_reason_parse(ts_reason_name((ts_reason_t)r)), r);
    assert_string_equal(ts_reason_name(TS_REASON_NO_HOME_OUTLET), "NO_HOME_OUTLET");
    assert_int_equal(ts_reason_parse("NOPE"), TS_REASON_NONE);
    assert_true(ts_err_retryable(TS_ERR_THROTTLED));
    assert_false(ts_err_retryable(TS_ERR_REJECTED));
}

#if defined(__SANITIZE_ADDRESS__)
#define TS_TEST_OWN_MALLOC 0 /* ASan's allocator: glibc's heap is not ours */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TS_TEST_OWN_MALLOC 0
#endif
#endif
#ifndef TS_TEST_OWN_MALLOC
#define TS_TEST_OWN_MALLOC 1
#endif

#if defined(__GLIBC__) && TS_TEST_OWN_MALLOC
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}
#endif

/* What the customer table's restore leaves: many small blocks freed below
 * one still in use, so free() alone cannot shrink the heap. */
static void test_mem_release_returns_freed_heap(void **state) {
    (void)state;
#if defined(__GLIBC__) && TS_TEST_OWN_MALLOC
    enum { N = 65536, SZ = 1000 };
    char **blocks = malloc(N * sizeof *blocks);
    assert_non_null(blocks);
    for (int i = 0; i < N; i++) {
        assert_non_null(blocks[i] = malloc(SZ));
        memset(blocks[i], 'x', SZ);
    }
    char *pin = malloc(SZ); /* above them: the heap's top stays in use */
    assert_non_null(pin);
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(blocks);
    long before = rss_kib();
    assert_true(ts_mem_release());
    long after = rss_kib();
    free(pin);
    assert_true(before > 0 && after > 0);
    assert_true(before - after >= 32 * 1024); /* of the 64 MB freed */
#else
    (void)ts_mem_release(); /* another C library or allocator: a no-op that must not fail */
    skip();
#endif
}

TS_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_buf_grows_and_stays_terminated),
             cmocka_unit_test(test_buf_urlenc_keeps_only_unreserved),
             cmocka_unit_test(test_arena_reuses_blocks_after_reset),
             cmocka_unit_test(test_reason_names_round_trip),
             cmocka_unit_test(test_files_and_secrets),
             cmocka_unit_test(test_mem_release_returns_freed_heap))
