/* Shared network input preparation. The padded square is never materialised:
 * a sample outside the crop reads 0, which is what the zero padding holds. */
#include "face/prep.h"

#include <assert.h>
#include <math.h>

/* Largest network input side (SSD: 512). */
#define PREP_MAX_S 1024

/* One axis of the resize: for each output index, the two source indices
 * inside the crop (-1 where the padded square holds zeros) and the weight. */
struct axis {
    int32_t i0[PREP_MAX_S], i1[PREP_MAX_S];
    double d[PREP_MAX_S];
};

static void plan_axis(struct axis *a, int32_t S, int32_t L, int32_t off, int32_t len)
{
    double ratio = (double)L / (double)S;
    for (int32_t o = 0; o < S; o++) {
        double f = ratio * o;
        int32_t v0 = (int32_t)floor(f);
        int32_t v1 = (int32_t)ceil(f);
        if (v1 > L - 1)
            v1 = L - 1;
        a->d[o] = f - v0;
        v0 -= off;
        v1 -= off;
        a->i0[o] = v0 >= 0 && v0 < len ? v0 : -1;
        a->i1[o] = v1 >= 0 && v1 < len ? v1 : -1;
    }
}

static inline double px(const uint8_t *row, int32_t i, int c)
{
    return row != NULL && i >= 0 ? (double)row[(size_t)i * 3 + (size_t)c] : 0.0;
}

void prep_crop_resize(const struct img *im, struct prep_rect r, enum prep_pad pad, int32_t S,
                      const struct prep_norm *norm, float *out)
{
    static _Thread_local struct axis ax, ay; /* 24 KiB each: off the stack, per thread */
    assert(S > 0 && S <= PREP_MAX_S);
    int32_t L = r.w > r.h ? r.w : r.h;
    int32_t off_x = 0, off_y = 0;
    if (pad == PREP_PAD_CENTRE) {
        /* before = d - ceil(d/2) = floor(d/2) */
        off_x = (L - r.w) / 2;
        off_y = (L - r.h) / 2;
    }
    plan_axis(&ax, S, L, off_x, r.w);
    plan_axis(&ay, S, L, off_y, r.h);
    const size_t stride = (size_t)im->w * 3;
    const uint8_t *base = im->rgb + (size_t)r.y * stride + (size_t)r.x * 3;
    for (int32_t oy = 0; oy < S; oy++) {
        const uint8_t *r0 = ay.i0[oy] >= 0 ? base + (size_t)ay.i0[oy] * stride : NULL;
        const uint8_t *r1 = ay.i1[oy] >= 0 ? base + (size_t)ay.i1[oy] * stride : NULL;
        double dy = ay.d[oy];
        float *o = out + (size_t)oy * (size_t)S * 3;
        for (int32_t ox = 0; ox < S; ox++, o += 3) {
            int32_t x0 = ax.i0[ox], x1 = ax.i1[ox];
            double dx = ax.d[ox];
            for (int c = 0; c < 3; c++) {
                double tl = px(r0, x0, c), tr = px(r0, x1, c);
                double bl = px(r1, x0, c), br = px(r1, x1, c);
                double top = tl + (tr - tl) * dx;
                double bottom = bl + (br - bl) * dx;
                float v = (float)(top + (bottom - top) * dy);
                o[c] = (v - norm->mean[c]) / norm->div - norm->offset;
            }
        }
    }
}

void prep_reshaped_dims(int32_t w, int32_t h, int32_t S, int32_t *rw, int32_t *rh)
{
    double scale = (double)S / (double)(w > h ? w : h);
    *rw = (int32_t)floor((double)w * scale + 0.5);
    *rh = (int32_t)floor((double)h * scale + 0.5);
}
