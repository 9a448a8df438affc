/* Decoding of untrusted images: JPEG (libjpeg-turbo, default settings so the
 * pixels are bit-identical to the reference tools) and PNG (libspng), from
 * raw bytes, base64 or a data: URL, into 8-bit RGB. Every malformed input
 * gets its own status; nothing here aborts on bad input. */
#ifndef FA_IMG_IMG_H
#define FA_IMG_IMG_H

#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

/* An 8-bit RGB image, rows top to bottom, 3 bytes a pixel, no row padding. */
struct img {
    int32_t w, h;
    uint8_t *rgb; /* w * h * 3 bytes, owned */
};

struct img_limits {
    size_t max_bytes;   /* encoded size limit (after base64 decoding); 0: 16 MiB */
    int64_t max_pixels; /* decoded w*h limit, checked from the header before
                           any pixel is decoded; 0: 40 megapixels */
    int32_t shrink_to;  /* 0: full size. Else a JPEG whose shorter side is at
                           least 2*shrink_to is decoded with DCT scaling
                           (1/2, 1/4, 1/8), keeping the shorter side >= shrink_to */
};

/* Decode JPEG or PNG bytes (format sniffed from the magic). Borrows `in`.
 * On FA_OK *out owns the image (img_free); on failure *out is untouched.
 * Errors: FA_ERR_IMG_EMPTY, FA_ERR_IMG_FORMAT, FA_ERR_IMG_CORRUPT,
 * FA_ERR_IMG_TOO_LARGE, FA_ERR_IMG_TOO_SMALL, FA_ERR_IMG_BYTES, FA_ERR_NOMEM.
 * Grayscale is expanded to R = G = B; PNG alpha is dropped; 16-bit PNG is
 * scaled to 8 bits; EXIF orientation is ignored. Runs on: any thread. */
enum fa_status img_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out);

/* Same, from text: plain base64 or "data:image/jpeg;base64,..." (also png).
 * Adds FA_ERR_B64 and FA_ERR_DATAURL. */
enum fa_status img_decode_text(struct fa_bytes in, const struct img_limits *lim, struct img **out);

/* Same, from a file. Adds FA_ERR_NOT_FOUND, FA_ERR_IO. */
enum fa_status img_load_file(const char *path, const struct img_limits *lim, struct img **out);

/* A new w x h image with uninitialised pixels, or NULL (OOM / bad size). */
struct img *img_new(int32_t w, int32_t h);
void img_free(struct img *im);

/* Encode as JPEG (quality 1-100) into out (appended). For tests, benches
 * and attack simulation. */
enum fa_status img_encode_jpeg(const struct img *im, int quality, struct fa_buf *out);

#endif
