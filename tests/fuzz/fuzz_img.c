/* tests/fuzz/fuzz_img.c: any bytes in; a status or a valid image out, never
 * a crash. The input goes both through img_decode_text (base64 / data URL)
 * and, as raw bytes, through img_decode, each with small limits so that
 * decoding stays fast; the first byte picks a DCT scaling target. */
#include <stdint.h>
#include <stdlib.h>

#include "img/img.h"

/* abort() rather than assert(): checked in release builds too. */
#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(enum fa_status rc, struct img *im, const struct img_limits *lim)
{
    if (rc != FA_OK)
        return;
    CHECK(im != NULL && im->w > 0 && im->h > 0);
    CHECK((int64_t)im->w * im->h <= lim->max_pixels);
    /* touch the first and the last pixel */
    volatile uint8_t sink = im->rgb[0];
    sink = im->rgb[(size_t)im->w * (size_t)im->h * 3 - 1];
    (void)sink;
    img_free(im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct img_limits lim = {.max_pixels = 1024 * 1024, .max_bytes = 1u << 20};
    if (size > 0)
        lim.shrink_to = (int32_t)(data[0] % 4) * 16; /* 0, 16, 32, 48 */
    struct img *im = NULL;
    enum fa_status rc = img_decode_text((struct fa_bytes){data, size}, &lim, &im);
    check(rc, im, &lim);
    im = NULL;
    rc = img_decode((struct fa_bytes){data, size}, &lim, &im);
    check(rc, im, &lim);
    return 0;
}
