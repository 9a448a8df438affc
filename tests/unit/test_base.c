/* base/: status table, buffers, constant-time compare, arena, fault
 * injection, time formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/ct_eq.h"
#include "base/log.h"
#include "base/status.h"

static void test_status_table(void **state)
{
    (void)state;
    assert_string_equal(fa_status_name(FA_OK), "FA_OK");
    assert_int_equal(fa_status_class(FA_OK), FA_CLASS_OK);
    assert_string_equal(fa_status_name(FA_ERR_IMG_CORRUPT), "FA_ERR_IMG_CORRUPT");
    assert_int_equal(fa_status_class(FA_ERR_IMG_CORRUPT), FA_CLASS_INPUT);
    assert_int_equal(fa_status_class(FA_ERR_NOMEM), FA_CLASS_INTERNAL);
    assert_string_equal(fa_status_name((enum fa_status)12345), "FA_UNKNOWN");
    assert_int_equal(fa_status_class((enum fa_status)12345), FA_CLASS_INTERNAL);
    /* Every row has a distinct value and a message; errors are negative. */
    static const int values[] = {
#define V(name, value, cls, msg) value,
        FA_STATUS_TABLE(V)
#undef V
    };
    size_t n = sizeof values / sizeof values[0];
    for (size_t i = 0; i < n; i++) {
        assert_true(values[i] <= 0);
        assert_true(strlen(fa_status_str((enum fa_status)values[i])) > 0);
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(values[i], values[j]);
    }
}

static void test_buf(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    assert_int_equal(fa_buf_puts(&b, "abc"), FA_OK);
    assert_int_equal(fa_buf_printf(&b, "-%d-", 42), FA_OK);
    assert_int_equal(b.n, 7);
    assert_string_equal((char *)b.p, "abc-42-");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fa_buf_append(&b, "xy", 2), FA_OK);
    assert_int_equal(b.n, 2007);
    assert_int_equal(b.p[b.n], 0);
    fa_buf_reset(&b);
    assert_int_equal(b.n, 0);
    fa_buf_fini(&b);
    assert_null(b.p);
}

static void test_buf_nomem_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    assert_int_equal(fa_buf_puts(&b, "keep"), FA_OK);
    fa_alloc_fail_after(0);
    enum fa_status rc = fa_buf_append(
        &b, "0123456789012345678901234567890123456789012345678901234567890123456789", 70);
    fa_alloc_fail_reset();
    assert_int_equal(rc, FA_ERR_NOMEM);
    assert_int_equal(b.n, 4);
    assert_string_equal((char *)b.p, "keep");
    fa_buf_fini(&b);
}

static void test_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/fa_test_base_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("hello file", f);
    fclose(f);
    struct fa_buf b = {0};
    assert_int_equal(fa_read_file(path, 100, &b), FA_OK);
    assert_string_equal((char *)b.p, "hello file");
    fa_buf_reset(&b);
    assert_int_equal(fa_read_file(path, 5, &b), FA_ERR_TOO_LARGE);
    assert_int_equal(b.n, 0);
    remove(path);
    assert_int_equal(fa_read_file(path, 100, &b), FA_ERR_NOT_FOUND);
    fa_buf_fini(&b);
}

static void test_ct_eq(void **state)
{
    (void)state;
    assert_true(fa_ct_eq("abcdef", "abcdef", 6));
    assert_false(fa_ct_eq("abcdef", "abcdeg", 6));
    assert_false(fa_ct_eq("xbcdef", "abcdef", 6));
    assert_true(fa_ct_eq("", "", 0));
    assert_true(fa_ct_streq("secret", "secret"));
    assert_false(fa_ct_streq("secret", "secret2"));
    assert_false(fa_ct_streq("secret2", "secret"));
    assert_false(fa_ct_streq("", "x"));
    assert_true(fa_ct_streq("", ""));
}

static void test_arena(void **state)
{
    (void)state;
    struct fa_arena a;
    assert_int_equal(fa_arena_init(&a, 1024), FA_OK);
    void *p = fa_arena_alloc(&a, 10);
    void *q = fa_arena_alloc(&a, 100);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal((uintptr_t)q % 64, 0);
    assert_true((char *)q >= (char *)p + 10);
    assert_null(fa_arena_alloc(&a, 2000)); /* too big: NULL, not a crash */
    size_t mark = fa_arena_mark(&a);
    assert_non_null(fa_arena_alloc(&a, 64));
    fa_arena_release(&a, mark);
    assert_int_equal(a.used, mark);
    fa_arena_reset(&a);
    assert_int_equal(a.used, 0);
    assert_true(a.high >= 64 + 128);
    assert_null(fa_arena_alloc(&a, SIZE_MAX)); /* overflow of the rounding */
    fa_arena_fini(&a);
}

static void test_fault_injection(void **state)
{
    (void)state;
    fa_alloc_fail_after(2);
    void *a = fa_malloc(8), *b = fa_malloc(8), *c = fa_malloc(8);
    fa_alloc_fail_reset();
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    fa_free(a);
    fa_free(b);
    void *d = fa_malloc(8);
    assert_non_null(d);
    fa_free(d);
}

static void test_iso8601(void **state)
{
    (void)state;
    char out[32];
    fa_iso8601_ms(1761568496789LL, out); /* 2025-10-27T12:34:56.789Z */
    assert_string_equal(out, "2025-10-27T12:34:56.789Z");
    fa_iso8601_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    assert_true(fa_mono_ms() >= 0);
}

static void test_log_levels(void **state)
{
    (void)state;
    assert_int_equal(fa_log_parse_level("warn"), FA_LOG_WARN);
    assert_int_equal(fa_log_parse_level("nope"), -1);
    fa_log_set_level(FA_LOG_ERROR);
    assert_int_equal(fa_log_get_level(), FA_LOG_ERROR);
    fa_info("not shown");
    fa_log_set_level(FA_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_nomem_leaves_buffer_unchanged),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_ct_eq),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
