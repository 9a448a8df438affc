/* The landmark crop and the descriptor square of face-api (ARCHITECTURE.md
 * 8.1, 8.2), in double and in face-api's order of operations (sums start at 0
 * and add point by point, as its Point class does), so the integer rectangles
 * come out identical to face-api's. */
#include "face/align.h"

#include <math.h>

enum fa_status align_clip(double x, double y, double w, double h, int32_t img_w, int32_t img_h,
                          struct prep_rect *out)
{
    if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h) || img_w < 1 || img_h < 1)
        return FA_ERR_ARG;
    double x0 = x > 0.0 ? x : 0.0;
    double y0 = y > 0.0 ? y : 0.0;
    double cw = fmin(x + w - x0, (double)img_w - x0);
    double ch = fmin(y + h - y0, (double)img_h - y0);
    double fw = floor(cw), fh = floor(ch);
    /* fw >= 1 implies x0 <= img_w - 1, so every value below fits in int32 */
    if (!(fw >= 1.0) || !(fh >= 1.0))
        return FA_ERR_ARG;
    *out = (struct prep_rect){
        .x = (int32_t)floor(x0), .y = (int32_t)floor(y0), .w = (int32_t)fw, .h = (int32_t)fh};
    return FA_OK;
}

/* face-api's getCenterPoint: sum from (0, 0) point by point, then divide. */
static void centre(const float pts[][2], int from, int to, double c[2])
{
    double sx = 0.0, sy = 0.0;
    for (int i = from; i < to; i++) {
        sx += (double)pts[i][0];
        sy += (double)pts[i][1];
    }
    c[0] = sx / (double)(to - from);
    c[1] = sy / (double)(to - from);
}

enum fa_status align_dlib(const float pts[FACE_LANDMARKS][2], double crop_w, double crop_h,
                          struct face_box *out)
{
    for (int i = 0; i < FACE_LANDMARKS; i++)
        if (!isfinite(pts[i][0]) || !isfinite(pts[i][1]))
            return FA_ERR_ARG;
    if (isnan(crop_w) || isnan(crop_h))
        return FA_ERR_ARG;
    double le[2], re[2], mo[2];
    centre(pts, 36, 42, le); /* face-api's getLeftEye (image left) */
    centre(pts, 42, 48, re);
    centre(pts, 48, 68, mo);
    double dl = sqrt((mo[0] - le[0]) * (mo[0] - le[0]) + (mo[1] - le[1]) * (mo[1] - le[1]));
    double dr = sqrt((mo[0] - re[0]) * (mo[0] - re[0]) + (mo[1] - re[1]) * (mo[1] - re[1]));
    double size = floor(((dl + dr) / 2.0) / 0.45);
    if (!(size >= 1.0))
        return FA_ERR_ARG;
    double rx = ((le[0] + re[0]) + mo[0]) / 3.0;
    double ry = ((le[1] + re[1]) + mo[1]) / 3.0;
    double x = floor(fmax(0.0, rx - 0.5 * size));
    double y = floor(fmax(0.0, ry - 0.43 * size));
    *out = (struct face_box){
        .x = x, .y = y, .w = fmin(size, crop_w + x), .h = fmin(size, crop_h + y), .score = 0.0f};
    return FA_OK;
}
