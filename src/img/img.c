/* Entry points of img/: limits, format sniffing (by magic bytes, as the
 * reference tool does: FF D8 is JPEG, 89 'P' 'N' 'G' is PNG), text and file
 * input, and the image object. An image is one allocation: the struct
 * followed by its pixels. The decoders live in jpeg.c and png.c. */
#include "img/img.h"

#include <string.h>

#include "base/alloc.h"
#include "base/b64.h"
#include "img/codec.h"

#define DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define DEFAULT_MAX_PIXELS ((int64_t)40000000)

static struct img_limits resolve(const struct img_limits *lim)
{
    struct img_limits r = {0};
    if (lim != NULL)
        r = *lim;
    if (r.max_bytes == 0)
        r.max_bytes = DEFAULT_MAX_BYTES;
    if (r.max_pixels <= 0)
        r.max_pixels = DEFAULT_MAX_PIXELS;
    if (r.shrink_to < 0)
        r.shrink_to = 0;
    return r;
}

struct img *img_new(int32_t w, int32_t h)
{
    size_t px, bytes;
    if (w <= 0 || h <= 0)
        return NULL;
    /* "bad size": more than 2^31 - 1 pixels (far beyond any decode limit) */
    if ((int64_t)w * h > INT32_MAX)
        return NULL;
    if (__builtin_mul_overflow((size_t)w, (size_t)h, &px) ||
        __builtin_mul_overflow(px, (size_t)3, &bytes) ||
        __builtin_add_overflow(bytes, sizeof(struct img), &bytes))
        return NULL;
    struct img *im = fa_malloc(bytes);
    if (im == NULL)
        return NULL;
    im->w = w;
    im->h = h;
    im->rgb = (uint8_t *)(im + 1);
    return im;
}

void img_free(struct img *im)
{
    fa_free(im);
}

enum fa_status img_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out)
{
    struct img_limits l = resolve(lim);
    if (in.n == 0)
        return FA_ERR_IMG_EMPTY;
    if (in.n > l.max_bytes)
        return FA_ERR_IMG_BYTES;
    if (in.n >= 2 && in.p[0] == 0xff && in.p[1] == 0xd8)
        return img_jpeg_decode(in, &l, out);
    if (in.n >= 4 && memcmp(in.p, "\x89PNG", 4) == 0)
        return img_png_decode(in, &l, out);
    return FA_ERR_IMG_FORMAT;
}

enum fa_status img_decode_text(struct fa_bytes in, const struct img_limits *lim, struct img **out)
{
    struct img_limits l = resolve(lim);
    struct fa_buf raw = {0};
    struct img *im = NULL;
    enum fa_status rc = fa_b64_decode_text(in, l.max_bytes, &raw);
    if (rc == FA_ERR_TOO_LARGE)
        rc = FA_ERR_IMG_BYTES;
    if (rc != FA_OK)
        goto out;
    rc = img_decode(fa_buf_bytes(&raw), &l, &im);
    if (rc != FA_OK)
        goto out;
    *out = im;
    im = NULL;
out:
    img_free(im);
    fa_buf_fini(&raw);
    return rc;
}

enum fa_status img_load_file(const char *path, const struct img_limits *lim, struct img **out)
{
    struct img_limits l = resolve(lim);
    struct fa_buf raw = {0};
    enum fa_status rc = fa_read_file(path, l.max_bytes, &raw);
    if (rc == FA_ERR_TOO_LARGE)
        rc = FA_ERR_IMG_BYTES;
    if (rc == FA_OK)
        rc = img_decode(fa_buf_bytes(&raw), &l, out);
    fa_buf_fini(&raw);
    return rc;
}
