/* Shared network input preparation. The padded square is never materialised:
 * a sample outside the crop reads 0, which is what the zero padding holds. */
#include "face/prep.h"

#include <math.h>

struct square {
    const struct img *im;
    struct prep_rect r;
    int32_t off_x, off_y; /* where the crop starts inside the square */
};

static inline double sample(const struct square *q, int32_t y, int32_t x, int c)
{
    int32_t cy = y - q->off_y, cx = x - q->off_x;
    if (cy < 0 || cx < 0 || cy >= q->r.h || cx >= q->r.w)
        return 0.0;
    const uint8_t *px = q->im->rgb + ((size_t)(q->r.y + cy) * (size_t)q->im->w + (size_t)(q->r.x + cx)) * 3;
    return (double)px[c];
}

void prep_crop_resize(const struct img *im, struct prep_rect r, enum prep_pad pad, int32_t S,
                      const struct prep_norm *norm, float *out)
{
    int32_t L = r.w > r.h ? r.w : r.h;
    struct square q = {.im = im, .r = r};
    if (pad == PREP_PAD_CENTRE) {
        /* before = d - ceil(d/2) = floor(d/2) */
        q.off_x = (L - r.w) / 2;
        q.off_y = (L - r.h) / 2;
    }
    double ratio = (double)L / (double)S;
    for (int32_t oy = 0; oy < S; oy++) {
        double fy = ratio * oy;
        int32_t y0 = (int32_t)floor(fy);
        int32_t y1 = (int32_t)ceil(fy);
        if (y1 > L - 1)
            y1 = L - 1;
        double dy = fy - y0;
        for (int32_t ox = 0; ox < S; ox++) {
            double fx = ratio * ox;
            int32_t x0 = (int32_t)floor(fx);
            int32_t x1 = (int32_t)ceil(fx);
            if (x1 > L - 1)
                x1 = L - 1;
            double dx = fx - x0;
            float *o = out + ((size_t)oy * (size_t)S + (size_t)ox) * 3;
            for (int c = 0; c < 3; c++) {
                double tl = sample(&q, y0, x0, c), tr = sample(&q, y0, x1, c);
                double bl = sample(&q, y1, x0, c), br = sample(&q, y1, x1, c);
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
