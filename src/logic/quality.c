/* Frame quality (R12): is there exactly one usable face, large, inside the
 * picture, lit, sharp, frontal and clearly detected? Each measure maps to a
 * score in [0, 1] that is 0.5 exactly at its limit and 1 once comfortably
 * good; quality_score is the minimum, so "counts iff quality_score >= 0.5"
 * and the failing measure is the reason. Image statistics are taken on a
 * fixed-size grey patch of the inner face, so sharpness means the same for a
 * 70 px and a 400 px face. */
#include "logic/logic.h"

#include <math.h>
#include <string.h>

static const char *const NAMES[LOGIC_REASON_COUNT] = {
#define LOGIC_X_NAME(e, name, msg) name,
    LOGIC_REASONS_X(LOGIC_X_NAME)
#undef LOGIC_X_NAME
};
static const char *const MESSAGES[LOGIC_REASON_COUNT] = {
#define LOGIC_X_MSG(e, name, msg) msg,
    LOGIC_REASONS_X(LOGIC_X_MSG)
#undef LOGIC_X_MSG
};

const char *logic_reason_name(enum logic_reason r)
{
    return (unsigned)r < LOGIC_REASON_COUNT ? NAMES[r] : NULL;
}

const char *logic_reason_message(enum logic_reason r)
{
    return (unsigned)r < LOGIC_REASON_COUNT ? MESSAGES[r] : NULL;
}

/* ---- Image statistics ------------------------------------------------------ */

void logic_face_stats(const uint8_t *rgb, int32_t w, int32_t h, const struct face_box *box,
                      struct logic_image_stats *out)
{
    memset(out, 0, sizeof *out);
    if (rgb == NULL || w < 1 || h < 1 || box == NULL)
        return;
    /* inner 80% of the box, clipped to the image */
    double x0 = box->x + 0.1 * box->w, y0 = box->y + 0.1 * box->h;
    double x1 = box->x + 0.9 * box->w, y1 = box->y + 0.9 * box->h;
    x0 = fmax(x0, 0.0);
    y0 = fmax(y0, 0.0);
    x1 = fmin(x1, (double)w);
    y1 = fmin(y1, (double)h);
    if (!(x1 - x0 >= 2.0 && y1 - y0 >= 2.0))
        return;
    static const int N = LOGIC_PATCH;
    float patch[LOGIC_PATCH][LOGIC_PATCH];
    double cw = (x1 - x0) / N, ch = (y1 - y0) / N;
    double sum = 0, sum2 = 0;
    for (int py = 0; py < N; py++) {
        /* source rows of this cell: at least one */
        int r0 = (int)floor(y0 + py * ch), r1 = (int)ceil(y0 + (py + 1) * ch);
        if (r1 <= r0)
            r1 = r0 + 1;
        if (r1 > h)
            r1 = h;
        if (r0 >= r1)
            r0 = r1 - 1;
        for (int px = 0; px < N; px++) {
            int c0 = (int)floor(x0 + px * cw), c1 = (int)ceil(x0 + (px + 1) * cw);
            if (c1 <= c0)
                c1 = c0 + 1;
            if (c1 > w)
                c1 = w;
            if (c0 >= c1)
                c0 = c1 - 1;
            uint32_t acc = 0, cnt = 0;
            for (int y = r0; y < r1; y++) {
                const uint8_t *row = rgb + ((size_t)y * (size_t)w + (size_t)c0) * 3;
                for (int x = c0; x < c1; x++, row += 3) {
                    acc += 77u * row[0] + 150u * row[1] + 29u * row[2];
                    cnt++;
                }
            }
            float v = (float)acc / (256.0f * (float)cnt);
            patch[py][px] = v;
            sum += v;
            sum2 += (double)v * v;
        }
    }
    double n = (double)N * N;
    double mean = sum / n;
    double var = fmax(0.0, sum2 / n - mean * mean);
    double ls = 0, ls2 = 0;
    for (int y = 1; y < N - 1; y++)
        for (int x = 1; x < N - 1; x++) {
            double l = 4.0 * patch[y][x] - patch[y - 1][x] - patch[y + 1][x] - patch[y][x - 1] -
                       patch[y][x + 1];
            ls += l;
            ls2 += l * l;
        }
    double m = (double)(N - 2) * (N - 2);
    double lvar = fmax(0.0, ls2 / m - (ls / m) * (ls / m));
    out->luma_mean = mean;
    out->luma_std = sqrt(var);
    out->sharpness = sqrt(lvar) / (out->luma_std + 8.0);
}

/* ---- Quality ---------------------------------------------------------------- */

/* Higher is better: 0.5 at `limit`, 1 from `good` up, down to 0 at 0. */
static double ramp_up(double x, double limit, double good)
{
    if (!(x == x))
        return 0;
    if (x >= good)
        return 1;
    if (x >= limit)
        return 0.5 + 0.5 * (x - limit) / (good - limit);
    return x <= 0 ? 0 : 0.5 * x / limit;
}

/* Lower is better: 1 up to `good`, 0.5 at `limit`, 0 at limit + (limit - good). */
static double ramp_down(double x, double limit, double good)
{
    if (!(x == x))
        return 0;
    if (x <= good)
        return 1;
    double c = 0.5 + 0.5 * (limit - x) / (limit - good);
    return c < 0 ? 0 : c;
}

void logic_quality_eval(const struct logic_frame *f, const struct logic_quality_params *p,
                        struct logic_quality *q)
{
    memset(q, 0, sizeof *q);
    int min_px = p != NULL && p->min_face_px > 0 ? p->min_face_px : LOGIC_MIN_FACE_PX;
    if (!f->face || f->faces < 1) {
        q->reason = LOGIC_NO_FACE;
        return;
    }
    const struct face_box *b = &f->box;
    q->face_px = b->w;
    q->det_score = f->score;
    q->luma = f->stats.luma_mean;
    q->contrast = f->stats.luma_std;
    q->sharpness = f->stats.sharpness;
    double cx = b->x + 0.5 * b->w, cy = b->y + 0.5 * b->h;
    q->center_off = f->img_w > 0 && f->img_h > 0
                        ? fmax(fabs(cx / f->img_w - 0.5), fabs(cy / f->img_h - 0.5))
                        : 1.0;
    int inside = 0;
    for (int i = 0; i < FACE_MESH_POINTS; i++)
        inside += f->mesh[i][0] >= 0 && f->mesh[i][1] >= 0 && f->mesh[i][0] < f->img_w &&
                  f->mesh[i][1] < f->img_h;
    q->inside = (double)inside / FACE_MESH_POINTS;
    logic_pose_of(f, &q->pose);

    /* one score per reason, in enum order */
    double c[LOGIC_REASON_COUNT];
    for (int i = 0; i < LOGIC_REASON_COUNT; i++)
        c[i] = 1;
    double second = b->w > 0 ? f->second_w / b->w : 1.0;
    c[LOGIC_MULTIPLE_FACES] =
        f->faces > 1 ? ramp_down(second, LOGIC_SECOND_FACE_RATIO, 0.5 * LOGIC_SECOND_FACE_RATIO)
                     : 1;
    c[LOGIC_FACE_TOO_SMALL] = ramp_up(b->w, min_px, 2.0 * min_px);
    c[LOGIC_NOT_CENTERED] = fmin(ramp_down(q->center_off, LOGIC_MAX_CENTER_OFF, 0.2),
                                 ramp_up(q->inside, LOGIC_MIN_INSIDE, 1.0));
    c[LOGIC_TOO_DARK] = ramp_up(q->luma, LOGIC_MIN_LUMA, 80.0);
    c[LOGIC_TOO_BRIGHT] = ramp_down(q->luma, LOGIC_MAX_LUMA, 190.0);
    c[LOGIC_LOW_CONTRAST] = ramp_up(q->contrast, LOGIC_MIN_CONTRAST, 2.0 * LOGIC_MIN_CONTRAST);
    c[LOGIC_BLURRY] = ramp_up(q->sharpness, LOGIC_MIN_SHARPNESS, 2.0 * LOGIC_MIN_SHARPNESS);
    c[LOGIC_NOT_FRONTAL] = fmin(ramp_down(fabs(q->pose.yaw), LOGIC_MAX_YAW, 10.0),
                                fmin(ramp_down(fabs(q->pose.pitch), LOGIC_MAX_PITCH, 10.0),
                                     ramp_down(fabs(q->pose.roll), LOGIC_MAX_ROLL, 10.0)));
    c[LOGIC_LOW_SCORE] = ramp_up(q->det_score, LOGIC_MIN_SCORE, 0.9);

    q->score = 1;
    q->reason = LOGIC_OK;
    for (int i = LOGIC_MULTIPLE_FACES; i <= LOGIC_LOW_SCORE; i++) {
        if (c[i] < q->score)
            q->score = c[i];
        if (q->reason == LOGIC_OK && c[i] < LOGIC_QUALITY_COUNTS)
            q->reason = (enum logic_reason)i;
    }
}
