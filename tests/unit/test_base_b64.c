/* base64 and data: URLs (base/b64.c): RFC 4648 vectors, the strictness
 * rules of b64.h one by one, round trips of every length around the fast
 * path's 4-character step, limits, and allocation failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/b64.h"

static enum fa_status dec(const char *s, size_t max, struct fa_buf *out)
{
    return fa_b64_decode(fa_bytes_of(s, strlen(s)), max, out);
}

static void expect_dec(const char *in, const char *want)
{
    struct fa_buf b = {0};
    enum fa_status rc = dec(in, 1 << 20, &b);
    if (rc != FA_OK)
        fail_msg("'%s': %s", in, fa_status_name(rc));
    assert_int_equal(b.n, strlen(want));
    assert_memory_equal(b.p, want, b.n);
    fa_buf_fini(&b);
}

static void expect_bad(const char *in)
{
    struct fa_buf b = {0};
    fa_buf_puts(&b, "keep");
    enum fa_status rc = dec(in, 1 << 20, &b);
    if (rc != FA_ERR_B64)
        fail_msg("'%s': %s, want FA_ERR_B64", in, fa_status_name(rc));
    assert_int_equal(b.n, 4); /* unchanged */
    assert_string_equal((char *)b.p, "keep");
    fa_buf_fini(&b);
}

static void test_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, padded and unpadded */
    static const char *v[][3] = {{"", "", ""},
                                 {"f", "Zg==", "Zg"},
                                 {"fo", "Zm8=", "Zm8"},
                                 {"foo", "Zm9v", "Zm9v"},
                                 {"foob", "Zm9vYg==", "Zm9vYg"},
                                 {"fooba", "Zm9vYmE=", "Zm9vYmE"},
                                 {"foobar", "Zm9vYmFy", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        expect_dec(v[i][1], v[i][0]);
        expect_dec(v[i][2], v[i][0]);
        struct fa_buf e = {0};
        assert_int_equal(fa_b64_encode(fa_bytes_of(v[i][0], strlen(v[i][0])), &e), FA_OK);
        assert_int_equal(e.n, strlen(v[i][1]));
        assert_memory_equal(e.p, v[i][1], e.n);
        fa_buf_fini(&e);
    }
    expect_dec("+/+/", "\xfb\xff\xbf");
    /* whitespace anywhere is skipped */
    expect_dec("Zm9v\r\nYmFy\n", "foobar");
    expect_dec(" Z m 9 v Y g = = ", "foob");
    expect_dec("Zm9vYg=\n=", "foob");
    expect_dec("\t\n", "");
}

static void test_strict(void **state)
{
    (void)state;
    expect_bad("Zm9v!");
    expect_bad("Zm9v-_");       /* URL-safe alphabet */
    expect_bad("Zm9vYmFy\x80"); /* non-ASCII */
    expect_bad("Zg=");          /* incomplete padding */
    expect_bad("Zg===");
    expect_bad("Zm9=v"); /* data after padding */
    expect_bad("Zg==Zg==");
    expect_bad("=");
    expect_bad("====");
    expect_bad("Z"); /* one character in the last group */
    expect_bad("Zm9vY");
    expect_bad("Zh=="); /* non-zero unused bits */
    expect_bad("Zm9=");
    expect_bad("Zm9vYh");
    expect_bad("Zm\x0bv"); /* vertical tab is not whitespace here */
    struct fa_buf b = {0};
    assert_int_equal(fa_b64_decode(fa_bytes_of("Zm\0v", 4), 100, &b), FA_ERR_B64);
    fa_buf_fini(&b);
}

/* Random bytes of every length 0..300 round-trip, also with line breaks
 * inserted every 76 characters, and decode appends after existing bytes. */
static void test_round_trip(void **state)
{
    (void)state;
    uint8_t src[300];
    srand(7);
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)rand();
    for (size_t n = 0; n <= sizeof src; n++) {
        struct fa_buf e = {0}, d = {0}, w = {0};
        assert_int_equal(fa_b64_encode(fa_bytes_of(src, n), &e), FA_OK);
        assert_int_equal(e.n, (n + 2) / 3 * 4);
        fa_buf_puts(&d, "xy");
        assert_int_equal(fa_b64_decode(fa_buf_bytes(&e), n, &d), FA_OK);
        assert_int_equal(d.n, n + 2);
        assert_memory_equal(d.p, "xy", 2);
        if (n > 0)
            assert_memory_equal(d.p + 2, src, n);
        for (size_t i = 0; i < e.n; i += 76) {
            fa_buf_append(&w, e.p + i, e.n - i < 76 ? e.n - i : 76);
            fa_buf_puts(&w, "\r\n");
        }
        fa_buf_reset(&d);
        assert_int_equal(fa_b64_decode(fa_buf_bytes(&w), n, &d), FA_OK);
        assert_int_equal(d.n, n);
        if (n > 0)
            assert_memory_equal(d.p, src, n);
        fa_buf_fini(&e);
        fa_buf_fini(&d);
        fa_buf_fini(&w);
    }
}

static void test_limit(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    assert_int_equal(dec("Zm9vYmFy", 5, &b), FA_ERR_TOO_LARGE);
    assert_int_equal(b.n, 0);
    assert_int_equal(dec("Zm9vYmFy", 6, &b), FA_OK);
    fa_buf_reset(&b);
    /* whitespace does not count against the limit */
    assert_int_equal(dec("Zm9v          \n\n\n\n    YmE=", 5, &b), FA_OK);
    assert_int_equal(b.n, 5);
    fa_buf_reset(&b);
    assert_int_equal(dec("Zm9vYmE=", 4, &b), FA_ERR_TOO_LARGE);
    assert_int_equal(dec("Zm9vYmE", 4, &b), FA_ERR_TOO_LARGE);
    fa_buf_fini(&b);
}

static void test_dataurl(void **state)
{
    (void)state;
    enum fa_media m;
    struct fa_bytes pl;
    const char *u = "data:image/jpeg;base64,Zm9v";
    assert_int_equal(fa_dataurl_split(fa_bytes_of(u, strlen(u)), &m, &pl), FA_OK);
    assert_int_equal(m, FA_MEDIA_JPEG);
    assert_int_equal(pl.n, 4);
    assert_memory_equal(pl.p, "Zm9v", 4);
    static const struct {
        const char *url;
        enum fa_status rc;
        enum fa_media m;
    } cases[] = {
        {"DATA:IMAGE/PNG;BASE64,Zm9v", FA_OK, FA_MEDIA_PNG},
        {"  data:Image/Jpg;Base64,", FA_OK, FA_MEDIA_JPEG},
        {"data:image/png;name=a.png;base64,Zm9v", FA_OK, FA_MEDIA_PNG},
        {"data:image/gif;base64,Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/webp;base64,Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpegx;base64,Zm9v", FA_ERR_DATAURL, 0},
        {"data:text/plain;base64,Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpeg,Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpeg;Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpeg;base64Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpeg;charset=;base64,Zm9v", FA_ERR_DATAURL, 0},
        {"data:image/jpeg", FA_ERR_DATAURL, 0},
        {"data:", FA_ERR_DATAURL, 0},
        {"dat", FA_ERR_DATAURL, 0},
        {"http://x/y.jpg", FA_ERR_DATAURL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum fa_status rc =
            fa_dataurl_split(fa_bytes_of(cases[i].url, strlen(cases[i].url)), &m, &pl);
        if (rc != cases[i].rc)
            fail_msg("%s: %s", cases[i].url, fa_status_name(rc));
        if (rc == FA_OK)
            assert_int_equal(m, cases[i].m);
    }

    /* text: either form */
    struct fa_buf b = {0};
    const char *t = "data:image/png;base64,Zm9vYmFy";
    assert_int_equal(fa_b64_decode_text(fa_bytes_of(t, strlen(t)), 100, &b), FA_OK);
    assert_int_equal(b.n, 6);
    fa_buf_reset(&b);
    t = "Zm9vYmFy";
    assert_int_equal(fa_b64_decode_text(fa_bytes_of(t, strlen(t)), 100, &b), FA_OK);
    assert_int_equal(b.n, 6);
    fa_buf_reset(&b);
    t = "data:image/gif;base64,Zm9vYmFy";
    assert_int_equal(fa_b64_decode_text(fa_bytes_of(t, strlen(t)), 100, &b), FA_ERR_DATAURL);
    t = "data:image/png;base64,Zm9vYmF";
    assert_int_equal(fa_b64_decode_text(fa_bytes_of(t, strlen(t)), 100, &b), FA_ERR_B64);
    t = "data:image/png;base64,Zm9vYmFy";
    assert_int_equal(fa_b64_decode_text(fa_bytes_of(t, strlen(t)), 5, &b), FA_ERR_TOO_LARGE);
    assert_int_equal(b.n, 0);
    fa_buf_fini(&b);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    fa_alloc_fail_after(0);
    assert_int_equal(dec("Zm9vYmFy", 100, &b), FA_ERR_NOMEM);
    assert_int_equal(fa_b64_encode(fa_bytes_of("foo", 3), &b), FA_ERR_NOMEM);
    fa_alloc_fail_reset();
    assert_int_equal(b.n, 0);
    fa_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),    cmocka_unit_test(test_strict),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_limit),
        cmocka_unit_test(test_dataurl),    cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
