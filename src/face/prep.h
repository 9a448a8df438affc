/* Private to face/: the pre-processing every network shares (ARCHITECTURE.md
 * section 3 and PIPELINE.md): crop, pad to a square with zeros, resize with
 * TF's legacy bilinear rule, normalise per channel. */
#ifndef FA_FACE_PREP_H
#define FA_FACE_PREP_H

#include <stdint.h>

#include "img/img.h"

enum prep_pad {
    PREP_PAD_CORNER, /* image at the top-left, zeros at the bottom/right (detectors) */
    PREP_PAD_CENTRE, /* floor(d/2) zeros before, ceil(d/2) after (face crops) */
};

/* out = (x - mean[c]) / div - offset, in float32 ops in that order. */
struct prep_norm {
    float mean[3];
    float div;
    float offset;
};

/* Integer rectangle inside an image. */
struct prep_rect {
    int32_t x, y, w, h;
};

/* Crop `r` (must lie inside im, w,h >= 1) from im, pad it to a square of side
 * L = max(w,h) as `pad` says, resize the square to S x S (TF legacy bilinear,
 * alignCorners = halfPixelCenters = false, computed in double and rounded to
 * float32 once, as the TF.js cpu backend), normalise, and write
 * out[S][S][3]. Runs on: any thread; allocates nothing. */
void prep_crop_resize(const struct img *im, struct prep_rect r, enum prep_pad pad, int32_t S,
                      const struct prep_norm *norm, float *out);

/* The size the content has inside the S x S input ("reshaped dimensions",
 * ARCHITECTURE.md 3.4): scale = S / max(h, w), round half up. */
void prep_reshaped_dims(int32_t w, int32_t h, int32_t S, int32_t *rw, int32_t *rh);

#endif
