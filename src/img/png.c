/* PNG decoding with libspng, matching pngjs (the reference tool's decoder):
 * every colour type becomes 8-bit RGB, alpha is dropped without compositing,
 * no gamma; 16-bit samples become round(v * 255 / 65535) (pngjs's
 * scaleDepth), not the high byte. Like pngjs we refuse a bad CRC in any
 * chunk and a file that ends before the end of IEND. libspng allocates through
 * fa_malloc, so fault injection reaches it. The size in IHDR is checked
 * against the limits before libspng sees the data. */
#include "img/codec.h"

#include <spng.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* libspng reports a failed allocation inside zlib as a stream error, so
 * the allocator wrappers note any failure of this thread's decode. */
static _Thread_local bool alloc_failed;

static void *png_malloc(size_t n)
{
    void *p = fa_malloc(n);
    alloc_failed |= p == NULL;
    return p;
}

static void *png_realloc(void *q, size_t n)
{
    void *p = fa_realloc(q, n);
    alloc_failed |= p == NULL;
    return p;
}

static void *png_calloc(size_t count, size_t size)
{
    void *p = fa_calloc(count, size);
    alloc_failed |= p == NULL;
    return p;
}

static enum fa_status map_spng(int err)
{
    if (err == SPNG_EMEM || alloc_failed)
        return FA_ERR_NOMEM;
    return FA_ERR_IMG_CORRUPT;
}

/* Walk the chunks from the signature: true when a complete IEND chunk
 * (length, type and CRC) is in the buffer. libspng stops reading at the last
 * IDAT and does not notice a file cut inside IEND; pngjs refuses it. */
static bool has_complete_iend(struct fa_bytes in)
{
    size_t i = 8;
    while (in.n - i >= 12) {
        uint32_t len = be32(in.p + i);
        if (len > 0x7fffffffu)
            return false;
        if (memcmp(in.p + i + 4, "IEND", 4) == 0)
            return true; /* 12 bytes are there: length, type, CRC */
        if (in.n - i - 12 < len)
            return false;
        i += 12 + (size_t)len;
    }
    return false;
}

/* 16-bit RGBA (host order) to 8-bit RGB, rounding as pngjs. */
static void rgba16_to_rgb8(const uint16_t *src, size_t npix, uint8_t *dst)
{
    for (size_t i = 0; i < npix; i++) {
        for (int c = 0; c < 3; c++)
            dst[3 * i + c] = (uint8_t)(((uint32_t)src[4 * i + c] * 255u + 32767u) / 65535u);
    }
}

enum fa_status img_png_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out)
{
    struct spng_alloc alloc = {png_malloc, png_realloc, png_calloc, fa_free};
    struct spng_ihdr ihdr;
    struct img *im = NULL;
    uint16_t *wide = NULL;
    enum fa_status rc = FA_OK;
    int err;

    /* signature (8), IHDR length (4), "IHDR", width, height */
    if (in.n < 24 || memcmp(in.p + 12, "IHDR", 4) != 0)
        return FA_ERR_IMG_CORRUPT;
    uint32_t w = be32(in.p + 16), h = be32(in.p + 20);
    if (w == 0 || h == 0)
        return FA_ERR_IMG_TOO_SMALL;
    if (w > INT32_MAX || h > INT32_MAX || (int64_t)w * h > lim->max_pixels)
        return FA_ERR_IMG_TOO_LARGE;

    if (!has_complete_iend(in))
        return FA_ERR_IMG_CORRUPT;

    alloc_failed = false;
    spng_ctx *ctx = spng_ctx_new2(&alloc, 0);
    if (ctx == NULL)
        return FA_ERR_NOMEM;
    if ((err = spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR)) != 0 ||
        (err = spng_set_chunk_limits(ctx, lim->max_bytes, lim->max_bytes)) != 0 ||
        (err = spng_set_png_buffer(ctx, in.p, in.n)) != 0 ||
        (err = spng_get_ihdr(ctx, &ihdr)) != 0) {
        rc = map_spng(err);
        goto out;
    }
    if (ihdr.width != w || ihdr.height != h) { /* cannot happen: same bytes */
        rc = FA_ERR_IMG_CORRUPT;
        goto out;
    }
    im = img_new((int32_t)w, (int32_t)h);
    if (im == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    size_t npix = (size_t)w * h, len = 0;
    if (ihdr.bit_depth == 16) {
        if ((err = spng_decoded_image_size(ctx, SPNG_FMT_RGBA16, &len)) != 0) {
            rc = map_spng(err);
            goto out;
        }
        wide = fa_malloc(len);
        if (wide == NULL) {
            rc = FA_ERR_NOMEM;
            goto out;
        }
        if ((err = spng_decode_image(ctx, wide, len, SPNG_FMT_RGBA16, 0)) != 0) {
            rc = map_spng(err);
            goto out;
        }
        rgba16_to_rgb8(wide, npix, im->rgb);
    } else {
        if ((err = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &len)) != 0 || len != npix * 3) {
            rc = err ? map_spng(err) : FA_ERR_INTERNAL;
            goto out;
        }
        if ((err = spng_decode_image(ctx, im->rgb, len, SPNG_FMT_RGB8, 0)) != 0) {
            rc = map_spng(err);
            goto out;
        }
    }
    /* the rest of the file, up to IEND, must be there and intact */
    if ((err = spng_decode_chunks(ctx)) != 0) {
        rc = map_spng(err);
        goto out;
    }
    *out = im;
    im = NULL;
out:
    fa_free(wide);
    img_free(im);
    spng_ctx_free(ctx);
    return rc;
}
