/* Image decoding (img/): one test per error class of img.h on real photos
 * from shared/data/faces (cut, damaged, with edited headers) and on PNGs
 * made here with libspng's encoder; colour handling (grey JPEG, PNG alpha,
 * 16-bit, palette, low bit depths); DCT scaling; text input; allocation
 * failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "base/alloc.h"
#include "base/b64.h"
#include "img/img.h"
#include "testutil.h"

static void read_face(const char *rel, struct fa_buf *b)
{
    char path[1024], r[512];
    snprintf(r, sizeof r, "data/faces/%s", rel);
    assert_int_equal(fa_read_file(tu_shared_path(path, sizeof path, r), 64u << 20, b), FA_OK);
}

static enum fa_status decode(const void *p, size_t n, const struct img_limits *lim,
                             struct img **out)
{
    return img_decode(fa_bytes_of(p, n), lim, out);
}

/* Decode and expect `want`; on FA_OK the image is returned (else NULL). */
static struct img *expect(const void *p, size_t n, const struct img_limits *lim,
                          enum fa_status want, const char *what)
{
    struct img *im = (struct img *)&im; /* sentinel: untouched on failure */
    enum fa_status rc = decode(p, n, lim, &im);
    if (rc != want)
        fail_msg("%s: got %s, want %s", what, fa_status_name(rc), fa_status_name(want));
    if (rc != FA_OK) {
        assert_ptr_equal(im, (struct img *)&im);
        return NULL;
    }
    return im;
}

/* Offset of the first marker segment `m` (FF m) found by walking the
 * segments from SOI, or 0. */
static size_t find_segment(const uint8_t *p, size_t n, uint8_t m)
{
    size_t i = 2;
    while (i + 4 <= n && p[i] == 0xff) {
        if (p[i + 1] == m)
            return i;
        if (p[i + 1] == 0xda)
            return 0;
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
    }
    return 0;
}

static size_t find_sof(const uint8_t *p, size_t n)
{
    size_t s = find_segment(p, n, 0xc0);
    return s ? s : find_segment(p, n, 0xc2);
}

/* ------------------------------------------------------------- PNG maker */

struct png_spec {
    uint32_t w, h;
    uint8_t depth, color, interlace;
    const void *data; /* SPNG_FMT_PNG layout, host-endian 16-bit samples */
    size_t len;
    const struct spng_plte *plte;
    const char *text; /* a tEXt chunk, or NULL */
};

static void make_png(const struct png_spec *s, struct fa_buf *out)
{
    spng_ctx *enc = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(enc);
    assert_int_equal(spng_set_option(enc, SPNG_ENCODE_TO_BUFFER, 1), 0);
    struct spng_ihdr ih = {s->w, s->h, s->depth, s->color, 0, 0, s->interlace};
    assert_int_equal(spng_set_ihdr(enc, &ih), 0);
    if (s->plte != NULL)
        assert_int_equal(spng_set_plte(enc, (struct spng_plte *)s->plte), 0);
    if (s->text != NULL) {
        struct spng_text t = {.keyword = "Comment", .type = SPNG_TEXT};
        t.length = strlen(s->text);
        t.text = (char *)s->text;
        assert_int_equal(spng_set_text(enc, &t, 1), 0);
    }
    int err = spng_encode_image(enc, s->data, s->len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (err != 0)
        fail_msg("spng_encode_image: %s", spng_strerror(err));
    size_t len = 0;
    void *png = spng_get_png_buffer(enc, &len, &err);
    assert_non_null(png);
    fa_buf_reset(out);
    assert_int_equal(fa_buf_append(out, png, len), FA_OK);
    free(png);
    spng_ctx_free(enc);
}

/* A w x h RGB8 PNG of noise (so that it compresses badly and has a long
 * IDAT) into out; the pixels into px when not NULL. */
static void noise_png(uint32_t w, uint32_t h, struct fa_buf *out, uint8_t *px)
{
    size_t n = (size_t)w * h * 3;
    uint8_t *d = malloc(n);
    srand(11);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)rand();
    struct png_spec s = {w, h, 8, SPNG_COLOR_TYPE_TRUECOLOR, 0, d, n, NULL, "hello"};
    make_png(&s, out);
    if (px != NULL)
        memcpy(px, d, n);
    free(d);
}

/* ------------------------------------------------------------ the tests */

static void test_empty_and_format(void **state)
{
    (void)state;
    struct img *im = NULL;
    assert_int_equal(img_decode(fa_bytes_of("", 0), NULL, &im), FA_ERR_IMG_EMPTY);
    assert_int_equal(img_decode_text(fa_bytes_of("", 0), NULL, &im), FA_ERR_IMG_EMPTY);
    assert_int_equal(img_decode_text(fa_bytes_of("data:image/png;base64,", 22), NULL, &im),
                     FA_ERR_IMG_EMPTY);
    expect("hello world", 11, NULL, FA_ERR_IMG_FORMAT, "text");
    expect("GIF89a\x01\x00\x01\x00", 10, NULL, FA_ERR_IMG_FORMAT, "gif");
    expect("BM\x3a\0\0\0", 6, NULL, FA_ERR_IMG_FORMAT, "bmp");
    expect("\xff", 1, NULL, FA_ERR_IMG_FORMAT, "one byte");
    expect("\x89PN", 3, NULL, FA_ERR_IMG_FORMAT, "png magic cut");
    expect("\xff\xd8", 2, NULL, FA_ERR_IMG_CORRUPT, "SOI only");
    expect("\xff\xd8\xff\xd9", 4, NULL, FA_ERR_IMG_CORRUPT, "SOI EOI");
    expect("\x89PNG\r\n\x1a\n", 8, NULL, FA_ERR_IMG_CORRUPT, "png signature only");
    char path[1024];
    assert_int_equal(
        img_load_file(tu_shared_path(path, sizeof path, "data/faces/nope.jpg"), NULL, &im),
        FA_ERR_NOT_FOUND);
    assert_int_equal(img_load_file(tu_shared_path(path, sizeof path, "data/faces"), NULL, &im),
                     FA_ERR_IO);
}

static void test_jpeg_ok_and_grey(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    read_face("identities/elton_john/01.jpg", &b);
    struct img *im = expect(b.p, b.n, NULL, FA_OK, "elton");
    assert_int_equal(im->w, 300);
    assert_int_equal(im->h, 300);
    size_t colour = 0;
    for (size_t i = 0; i < 300 * 300; i++)
        colour += im->rgb[3 * i] != im->rgb[3 * i + 1] || im->rgb[3 * i] != im->rgb[3 * i + 2];
    assert_true(colour > 1000); /* a colour photo */
    img_free(im);

    /* a greyscale JPEG (one component) comes out as R = G = B */
    fa_buf_reset(&b);
    read_face("identities/amy/01.jpg", &b);
    im = expect(b.p, b.n, NULL, FA_OK, "amy");
    assert_int_equal(im->w, 150);
    size_t distinct = 0;
    int seen[256] = {0};
    for (size_t i = 0; i < 150 * 150; i++) {
        assert_int_equal(im->rgb[3 * i], im->rgb[3 * i + 1]);
        assert_int_equal(im->rgb[3 * i], im->rgb[3 * i + 2]);
        distinct += !seen[im->rgb[3 * i]]++;
    }
    assert_true(distinct > 100);
    img_free(im);
    fa_buf_fini(&b);
}

static void test_jpeg_truncated(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    read_face("identities/elton_john/01.jpg", &b);
    size_t sof = find_sof(b.p, b.n);
    assert_true(sof > 0);
    /* every cut from inside the headers to the last byte fails */
    for (size_t cut = 2; cut < b.n; cut += (cut < sof + 64 ? 7 : 211))
        expect(b.p, cut, NULL, FA_ERR_IMG_CORRUPT, "truncated");
    expect(b.p, b.n - 1, NULL, FA_ERR_IMG_CORRUPT, "EOI cut");
    expect(b.p, b.n - 2, NULL, FA_ERR_IMG_CORRUPT, "EOI missing");
    fa_buf_fini(&b);
}

static void test_jpeg_corrupt(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    read_face("identities/elton_john/01.jpg", &b);
    uint8_t *p = malloc(b.n);

    /* an EOI marker in the middle of the entropy-coded data */
    memcpy(p, b.p, b.n);
    size_t mid = b.n / 2;
    while (p[mid - 1] == 0xff)
        mid++;
    p[mid] = 0xff;
    p[mid + 1] = 0xd9;
    expect(p, b.n, NULL, FA_ERR_IMG_CORRUPT, "EOI mid-scan");

    /* a restart marker out of place in the scan */
    memcpy(p, b.p, b.n);
    p[mid] = 0xff;
    p[mid + 1] = 0xd3;
    expect(p, b.n, NULL, FA_ERR_IMG_CORRUPT, "RST mid-scan");

    /* a broken Huffman table */
    memcpy(p, b.p, b.n);
    size_t dht = find_segment(p, b.n, 0xc4);
    assert_true(dht > 0);
    memset(p + dht + 5, 0xff, 16); /* the 16 code-length counts */
    expect(p, b.n, NULL, FA_ERR_IMG_CORRUPT, "DHT");

    /* unsupported sample precision in SOF */
    memcpy(p, b.p, b.n);
    size_t sof = find_sof(p, b.n);
    p[sof + 4] = 7;
    expect(p, b.n, NULL, FA_ERR_IMG_CORRUPT, "precision");

    /* a quantisation table cut short */
    memcpy(p, b.p, b.n);
    size_t dqt = find_segment(p, b.n, 0xdb);
    assert_true(dqt > 0);
    p[dqt + 2] = 0;
    p[dqt + 3] = 3;
    expect(p, b.n, NULL, FA_ERR_IMG_CORRUPT, "DQT length");
    free(p);
    fa_buf_fini(&b);
}

/* Junk bytes between two segments: libjpeg warns, the image is complete,
 * we accept it with the same pixels; the same file truncated is refused. */
static void test_jpeg_benign_warning(void **state)
{
    (void)state;
    struct fa_buf b = {0}, j = {0};
    read_face("identities/elton_john/01.jpg", &b);
    struct img *ref = expect(b.p, b.n, NULL, FA_OK, "clean");
    size_t dqt = find_segment(b.p, b.n, 0xdb);
    assert_true(dqt > 0);
    fa_buf_append(&j, b.p, dqt);
    fa_buf_append(&j, "\x00\x01\x02", 3);
    fa_buf_append(&j, b.p + dqt, b.n - dqt);
    struct img *im = expect(j.p, j.n, NULL, FA_OK, "extraneous bytes");
    assert_memory_equal(im->rgb, ref->rgb, 300 * 300 * 3);
    img_free(im);
    expect(j.p, j.n - 2, NULL, FA_ERR_IMG_CORRUPT, "extraneous bytes + no EOI");
    expect(j.p, j.n * 2 / 3, NULL, FA_ERR_IMG_CORRUPT, "extraneous bytes + truncated");
    /* trailing bytes after EOI are ignored */
    fa_buf_reset(&j);
    fa_buf_append(&j, b.p, b.n);
    fa_buf_append(&j, "trailing", 8);
    im = expect(j.p, j.n, NULL, FA_OK, "trailing data");
    assert_memory_equal(im->rgb, ref->rgb, 300 * 300 * 3);
    img_free(im);
    img_free(ref);
    fa_buf_fini(&b);
    fa_buf_fini(&j);
}

static void test_jpeg_size_limits(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    read_face("identities/elton_john/01.jpg", &b);
    uint8_t *p = malloc(b.n);
    size_t sof = find_sof(b.p, b.n);

    /* zero height / width in SOF */
    memcpy(p, b.p, b.n);
    p[sof + 5] = p[sof + 6] = 0;
    expect(p, b.n, NULL, FA_ERR_IMG_TOO_SMALL, "height 0");
    memcpy(p, b.p, b.n);
    p[sof + 7] = p[sof + 8] = 0;
    expect(p, b.n, NULL, FA_ERR_IMG_TOO_SMALL, "width 0");

    /* the header claims 65000 x 65000: refused before decoding */
    memcpy(p, b.p, b.n);
    p[sof + 5] = p[sof + 7] = 0xfd;
    p[sof + 6] = p[sof + 8] = 0xe8;
    expect(p, b.n, NULL, FA_ERR_IMG_TOO_LARGE, "65000^2");

    /* pixel limit: 300 x 300 = 90000 */
    struct img_limits lim = {.max_pixels = 89999};
    expect(b.p, b.n, &lim, FA_ERR_IMG_TOO_LARGE, "89999 px");
    lim.max_pixels = 90000;
    img_free(expect(b.p, b.n, &lim, FA_OK, "90000 px"));

    /* byte limit, for bytes, text and files */
    lim = (struct img_limits){.max_bytes = b.n - 1};
    expect(b.p, b.n, &lim, FA_ERR_IMG_BYTES, "bytes");
    struct fa_buf t = {0};
    fa_buf_puts(&t, "data:image/jpeg;base64,");
    fa_b64_encode(fa_buf_bytes(&b), &t);
    struct img *im = NULL;
    assert_int_equal(img_decode_text(fa_buf_bytes(&t), &lim, &im), FA_ERR_IMG_BYTES);
    char path[1024];
    tu_shared_path(path, sizeof path, "data/faces/identities/elton_john/01.jpg");
    assert_int_equal(img_load_file(path, &lim, &im), FA_ERR_IMG_BYTES);
    lim.max_bytes = b.n;
    assert_int_equal(img_decode_text(fa_buf_bytes(&t), &lim, &im), FA_OK);
    img_free(im);
    assert_int_equal(img_load_file(path, &lim, &im), FA_OK);
    img_free(im);
    fa_buf_fini(&t);
    free(p);
    fa_buf_fini(&b);
}

static void test_jpeg_cmyk(void **state)
{
    (void)state;
    uint8_t cmyk[16 * 16 * 4];
    for (size_t i = 0; i < sizeof cmyk; i++)
        cmyk[i] = (uint8_t)(i * 7);
    tjhandle tj = tjInitCompress();
    unsigned char *jbuf = NULL;
    unsigned long jsize = 0;
    assert_int_equal(tjCompress2(tj, cmyk, 16, 0, 16, TJPF_CMYK, &jbuf, &jsize, TJSAMP_444, 90, 0),
                     0);
    expect(jbuf, jsize, NULL, FA_ERR_IMG_FORMAT, "CMYK");
    tjFree(jbuf);
    tjDestroy(tj);
}

static void test_jpeg_dct_scaling(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    read_face("identities/barack_obama/01.jpg", &b); /* 910 x 1137 */
    static const struct {
        int32_t shrink_to, w, h;
    } cases[] = {
        {0, 910, 1137},  {114, 114, 143}, {115, 228, 285},  {200, 228, 285},   {228, 228, 285},
        {229, 455, 569}, {455, 455, 569}, {456, 910, 1137}, {2000, 910, 1137}, {1, 114, 143},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct img_limits lim = {.shrink_to = cases[i].shrink_to};
        struct img *im = expect(b.p, b.n, &lim, FA_OK, "scaled");
        if (im->w != cases[i].w || im->h != cases[i].h)
            fail_msg("shrink_to %d: %dx%d, want %dx%d", cases[i].shrink_to, im->w, im->h,
                     cases[i].w, cases[i].h);
        img_free(im);
    }
    /* a 1/4 decode resembles the full image averaged over 4x4 blocks */
    struct img *full = expect(b.p, b.n, NULL, FA_OK, "full");
    struct img_limits lim = {.shrink_to = 200};
    struct img *q = expect(b.p, b.n, &lim, FA_OK, "quarter");
    double err = 0;
    for (int y = 0; y < 284; y++)
        for (int x = 0; x < 227; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0;
                for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 4; dx++)
                        s += full->rgb[((size_t)(4 * y + dy) * 910 + (size_t)(4 * x + dx)) * 3 +
                                       (size_t)c];
                err += fabs(s / 16.0 - q->rgb[((size_t)y * 228 + (size_t)x) * 3 + (size_t)c]);
            }
    err /= 284.0 * 227 * 3;
    assert_true(err < 3.0);
    img_free(full);
    img_free(q);
    fa_buf_fini(&b);
}

static void test_png_colour_types(void **state)
{
    (void)state;
    struct fa_buf png = {0};
    struct img *im;

    /* RGBA: alpha dropped, colour not composited */
    uint8_t rgba[2 * 2 * 4] = {10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 1, 2, 3, 7};
    struct png_spec s = {2,           2,    8,   SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 0, rgba,
                         sizeof rgba, NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "rgba");
    for (int i = 0; i < 4; i++)
        assert_memory_equal(im->rgb + 3 * i, rgba + 4 * i, 3);
    img_free(im);

    /* grey + alpha */
    uint8_t ga[3 * 2] = {0, 9, 128, 0, 255, 255};
    s = (struct png_spec){3, 1, 8, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 0, ga, sizeof ga, NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "ga");
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(im->rgb[3 * i + c], ga[2 * i]);
    img_free(im);

    /* 16-bit grey, every value: round(v * 255 / 65535) as pngjs does */
    uint16_t *g16 = malloc(65536 * 2);
    for (uint32_t v = 0; v < 65536; v++)
        g16[v] = (uint16_t)v;
    s = (struct png_spec){256, 256, 16, SPNG_COLOR_TYPE_GRAYSCALE, 0, g16, 65536 * 2, NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "g16");
    for (uint32_t v = 0; v < 65536; v++) {
        uint8_t want = (uint8_t)floor((double)v * 255.0 / 65535.0 + 0.5);
        if (im->rgb[3 * v] != want || im->rgb[3 * v + 1] != want || im->rgb[3 * v + 2] != want)
            fail_msg("16-bit %u -> %u, want %u", v, im->rgb[3 * v], want);
    }
    img_free(im);
    free(g16);

    /* 16-bit RGBA */
    uint16_t rgba16[2 * 4] = {0x0000, 0x8080, 0xffff, 0x1234, 0x7f7f, 0x0101, 0xfe00, 0};
    s = (struct png_spec){2,    1,   16, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 0, rgba16, sizeof rgba16,
                          NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "rgba16");
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(im->rgb[3 * i + c],
                             (uint8_t)floor(rgba16[4 * i + c] * 255.0 / 65535.0 + 0.5));
    img_free(im);

    /* 4-bit palette */
    struct spng_plte plte = {.n_entries = 16};
    for (int i = 0; i < 16; i++)
        plte.entries[i] =
            (struct spng_plte_entry){(uint8_t)(i * 16), (uint8_t)(255 - i), (uint8_t)(i * 3), 255};
    uint8_t idx[4] = {0x01, 0x23, 0xef, 0x50}; /* 8 x 1 pixels, 4 bits each */
    s = (struct png_spec){8, 1, 4, SPNG_COLOR_TYPE_INDEXED, 0, idx, sizeof idx, &plte, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "palette");
    static const int want_idx[8] = {0, 1, 2, 3, 14, 15, 5, 0};
    for (int i = 0; i < 8; i++) {
        const struct spng_plte_entry *e = &plte.entries[want_idx[i]];
        assert_int_equal(im->rgb[3 * i], e->red);
        assert_int_equal(im->rgb[3 * i + 1], e->green);
        assert_int_equal(im->rgb[3 * i + 2], e->blue);
    }
    img_free(im);

    /* 1-bit and 2-bit grey scale to 0..255 */
    uint8_t g1[1] = {0xa5}; /* 10100101 */
    s = (struct png_spec){8, 1, 1, SPNG_COLOR_TYPE_GRAYSCALE, 0, g1, 1, NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "g1");
    for (int i = 0; i < 8; i++)
        assert_int_equal(im->rgb[3 * i + 1], ((0xa5 >> (7 - i)) & 1) ? 255 : 0);
    img_free(im);
    uint8_t g2[1] = {0x1b}; /* 00 01 10 11 */
    s = (struct png_spec){4, 1, 2, SPNG_COLOR_TYPE_GRAYSCALE, 0, g2, 1, NULL, NULL};
    make_png(&s, &png);
    im = expect(png.p, png.n, NULL, FA_OK, "g2");
    for (int i = 0; i < 4; i++)
        assert_int_equal(im->rgb[3 * i + 2], 85 * i);
    img_free(im);

    /* shrink_to does not apply to PNG */
    uint8_t *px = malloc(64 * 48 * 3);
    noise_png(64, 48, &png, px);
    struct img_limits lim = {.shrink_to = 8};
    im = expect(png.p, png.n, &lim, FA_OK, "noise");
    assert_int_equal(im->w, 64);
    assert_int_equal(im->h, 48);
    assert_memory_equal(im->rgb, px, 64 * 48 * 3);
    img_free(im);
    free(px);
    fa_buf_fini(&png);
}

static void test_png_errors(void **state)
{
    (void)state;
    struct fa_buf png = {0};
    noise_png(64, 48, &png, NULL);
    uint8_t *p = malloc(png.n);

    /* truncated anywhere, including just before or inside IEND */
    for (size_t cut = 4; cut < png.n; cut += (cut < 64 ? 3 : 397))
        expect(png.p, cut, NULL, FA_ERR_IMG_CORRUPT, "png truncated");
    expect(png.p, png.n - 12, NULL, FA_ERR_IMG_CORRUPT, "no IEND");
    expect(png.p, png.n - 1, NULL, FA_ERR_IMG_CORRUPT, "IEND cut");

    /* bad CRC: IHDR's, a bit in the IDAT data, the tEXt chunk's text */
    memcpy(p, png.p, png.n);
    p[29] ^= 1;
    expect(p, png.n, NULL, FA_ERR_IMG_CORRUPT, "IHDR crc");
    memcpy(p, png.p, png.n);
    p[png.n - 200] ^= 0x10;
    expect(p, png.n, NULL, FA_ERR_IMG_CORRUPT, "IDAT crc");
    memcpy(p, png.p, png.n);
    size_t at = 0;
    while (at + 5 <= png.n && memcmp(p + at, "hello", 5) != 0)
        at++;
    assert_true(at + 5 <= png.n);
    p[at] = 'j';
    expect(p, png.n, NULL, FA_ERR_IMG_CORRUPT, "tEXt crc");

    /* zero width / height and huge sizes, from IHDR */
    memcpy(p, png.p, png.n);
    memset(p + 16, 0, 4);
    expect(p, png.n, NULL, FA_ERR_IMG_TOO_SMALL, "png width 0");
    memcpy(p, png.p, png.n);
    memset(p + 20, 0, 4);
    expect(p, png.n, NULL, FA_ERR_IMG_TOO_SMALL, "png height 0");
    memcpy(p, png.p, png.n);
    memcpy(p + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8); /* 100000 x 100000 */
    expect(p, png.n, NULL, FA_ERR_IMG_TOO_LARGE, "png 10 Gpx");
    memcpy(p + 16, "\xff\xff\xff\xff\x00\x00\x00\x01", 8);
    expect(p, png.n, NULL, FA_ERR_IMG_TOO_LARGE, "png width 2^32-1");
    struct img_limits lim = {.max_pixels = 64 * 48 - 1};
    expect(png.p, png.n, &lim, FA_ERR_IMG_TOO_LARGE, "png pixel limit");
    lim = (struct img_limits){.max_bytes = png.n - 1};
    expect(png.p, png.n, &lim, FA_ERR_IMG_BYTES, "png byte limit");

    /* not IHDR first */
    memcpy(p, png.p, png.n);
    memcpy(p + 12, "IDAT", 4);
    expect(p, png.n, NULL, FA_ERR_IMG_CORRUPT, "no IHDR");
    /* a valid signature, then garbage */
    memcpy(p, png.p, png.n);
    memset(p + 33, 0x55, png.n - 33);
    expect(p, png.n, NULL, FA_ERR_IMG_CORRUPT, "png garbage");
    free(p);
    fa_buf_fini(&png);
}

static void test_text_input(void **state)
{
    (void)state;
    struct fa_buf b = {0}, t = {0}, e = {0};
    read_face("identities/elton_john/01.jpg", &b);
    struct img *ref = expect(b.p, b.n, NULL, FA_OK, "ref");
    fa_b64_encode(fa_buf_bytes(&b), &e);

    static const char *prefixes[] = {"", "data:image/jpeg;base64,", "DATA:IMAGE/JPEG;BASE64,",
                                     "  data:image/jpg;base64,", "data:image/png;base64,"};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
        fa_buf_reset(&t);
        fa_buf_puts(&t, prefixes[k]);
        for (size_t i = 0; i < e.n; i += 76) { /* MIME-style lines */
            fa_buf_append(&t, e.p + i, e.n - i < 76 ? e.n - i : 76);
            fa_buf_puts(&t, "\r\n");
        }
        struct img *im = NULL;
        assert_int_equal(img_decode_text(fa_buf_bytes(&t), NULL, &im), FA_OK);
        assert_memory_equal(im->rgb, ref->rgb, 300 * 300 * 3);
        img_free(im);
    }

    struct img *im = (struct img *)&im;
    static const struct {
        const char *prefix;
        enum fa_status rc;
    } bad[] = {
        {"data:image/gif;base64,", FA_ERR_DATAURL}, {"data:image/webp;base64,", FA_ERR_DATAURL},
        {"data:image/jpeg,", FA_ERR_DATAURL},       {"data:image/jpeg;utf8,", FA_ERR_DATAURL},
        {"data:text/html;base64,", FA_ERR_DATAURL}, {"data:;base64,", FA_ERR_DATAURL},
        {"data:image/jpeg;base64,!", FA_ERR_B64},   {"%", FA_ERR_B64},
        {"data:image/jpeg;base64,-_", FA_ERR_B64},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fa_buf_reset(&t);
        fa_buf_puts(&t, bad[k].prefix);
        fa_buf_append(&t, e.p, e.n);
        enum fa_status rc = img_decode_text(fa_buf_bytes(&t), NULL, &im);
        if (rc != bad[k].rc)
            fail_msg("%s...: %s", bad[k].prefix, fa_status_name(rc));
        assert_ptr_equal(im, (struct img *)&im);
    }
    /* base64 of something that is not an image */
    assert_int_equal(img_decode_text(fa_bytes_of("aGVsbG8gd29ybGQ=", 16), NULL, &im),
                     FA_ERR_IMG_FORMAT);
    /* base64 of a truncated JPEG */
    fa_buf_reset(&t);
    fa_b64_encode(fa_bytes_of(b.p, b.n / 2), &t);
    assert_int_equal(img_decode_text(fa_buf_bytes(&t), NULL, &im), FA_ERR_IMG_CORRUPT);
    img_free(ref);
    fa_buf_fini(&b);
    fa_buf_fini(&t);
    fa_buf_fini(&e);
}

static void test_new_and_encode(void **state)
{
    (void)state;
    assert_null(img_new(0, 5));
    assert_null(img_new(5, -1));
    struct img *big = img_new(INT32_MAX, INT32_MAX); /* 1.4e19 bytes: refused, no overflow */
    assert_null(big);
    struct img *im = img_new(64, 48);
    assert_non_null(im);
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++) {
            uint8_t *px = im->rgb + ((size_t)y * 64 + (size_t)x) * 3;
            px[0] = (uint8_t)(x * 4);
            px[1] = (uint8_t)(y * 5);
            px[2] = 128;
        }
    struct fa_buf j = {0};
    assert_int_equal(img_encode_jpeg(im, 0, &j), FA_ERR_ARG);
    assert_int_equal(img_encode_jpeg(im, 101, &j), FA_ERR_ARG);
    assert_int_equal(j.n, 0);
    assert_int_equal(img_encode_jpeg(im, 95, &j), FA_OK);
    assert_true(j.n > 100 && j.p[0] == 0xff && j.p[1] == 0xd8);
    struct img *back = expect(j.p, j.n, NULL, FA_OK, "round trip");
    assert_int_equal(back->w, 64);
    assert_int_equal(back->h, 48);
    int maxd = 0;
    for (size_t i = 0; i < 64 * 48 * 3; i++) {
        int d = abs((int)back->rgb[i] - (int)im->rgb[i]);
        maxd = d > maxd ? d : maxd;
    }
    assert_true(maxd <= 12);
    img_free(back);
    img_free(im);
    img_free(NULL);
    fa_buf_fini(&j);
}

/* Every allocation failure on the way gives FA_ERR_NOMEM and leaks nothing
 * (the ASan build checks leaks); then the same call succeeds. */
static void alloc_loop(const struct fa_buf *in, bool text, const char *what)
{
    for (long k = 0;; k++) {
        struct img *im = NULL;
        fa_alloc_fail_after(k);
        enum fa_status rc = text ? img_decode_text(fa_buf_bytes(in), NULL, &im)
                                 : img_decode(fa_buf_bytes(in), NULL, &im);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            assert_true(k > 0);
            img_free(im);
            return;
        }
        if (rc != FA_ERR_NOMEM)
            fail_msg("%s: allocation %ld failing gave %s", what, k, fa_status_name(rc));
        assert_true(k < 1000);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    struct fa_buf b = {0}, t = {0}, png = {0};
    read_face("identities/amy/01.jpg", &b);
    alloc_loop(&b, false, "jpeg");
    fa_buf_puts(&t, "data:image/jpeg;base64,");
    fa_b64_encode(fa_buf_bytes(&b), &t);
    alloc_loop(&t, true, "jpeg text");
    noise_png(64, 48, &png, NULL);
    alloc_loop(&png, false, "png");
    uint16_t g16[16 * 16];
    for (int i = 0; i < 256; i++)
        g16[i] = (uint16_t)(i * 257);
    struct png_spec s = {16, 16, 16, SPNG_COLOR_TYPE_GRAYSCALE, 0, g16, sizeof g16, NULL, NULL};
    make_png(&s, &png);
    alloc_loop(&png, false, "png16");
    fa_buf_fini(&b);
    fa_buf_fini(&t);
    fa_buf_fini(&png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_format),    cmocka_unit_test(test_jpeg_ok_and_grey),
        cmocka_unit_test(test_jpeg_truncated),      cmocka_unit_test(test_jpeg_corrupt),
        cmocka_unit_test(test_jpeg_benign_warning), cmocka_unit_test(test_jpeg_size_limits),
        cmocka_unit_test(test_jpeg_cmyk),           cmocka_unit_test(test_jpeg_dct_scaling),
        cmocka_unit_test(test_png_colour_types),    cmocka_unit_test(test_png_errors),
        cmocka_unit_test(test_text_input),          cmocka_unit_test(test_new_and_encode),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
