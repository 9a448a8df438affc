/* BlazeFace (PIPELINE.md section 5): input resize, anchors, decoding, NMS,
 * face box. Every step reproduces the reference's arithmetic (float32 where
 * TF.js computes on tensors, double where Human computes in JavaScript), so
 * that the integer face box, which a tiny difference could round the other
 * way, comes out the same. The network is run by nn_graph; this file only
 * checks its outputs at load and picks them by node name. */
#include "face/blazeface.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "face/gmodel.h"
#include "face/simd.h"

/* Graph outputs by node name, and their sizes in floats. */
enum { OUT_LOGIT512, OUT_LOGIT384, OUT_REG512, OUT_REG384, NOUT };
static const struct gmodel_output outputs[NOUT] = {
    {"Identity", 512}, {"Identity_1", 384}, {"Identity_2", 512 * 16}, {"Identity_3", 384 * 16}};

struct bf_net {
    struct nn_graph *g;
    int out_idx[NOUT]; /* graph output index of each */
};

enum fa_status bf_load(const char *dir, const struct nn_backend *be, struct bf_net **out,
                       struct fa_errinfo *info)
{
    struct bf_net *net = fa_calloc(1, sizeof *net);
    if (net == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc = gmodel_load(dir, "blazeface.json", be, BF_INPUT, outputs, NOUT,
                                    net->out_idx, &net->g, info);
    if (rc == FA_OK) {
        *out = net;
        net = NULL;
    }
    bf_free(net);
    return rc;
}

void bf_free(struct bf_net *net)
{
    if (net == NULL)
        return;
    nn_graph_free(net->g);
    fa_free(net);
}

/* Arena blocks are 64-byte aligned: one block's worst-case footprint. */
static size_t blk(size_t bytes)
{
    return (bytes + 63) / 64 * 64 + 64;
}

size_t bf_arena_bytes(const struct bf_net *net)
{
    return blk(sizeof(float) * BF_INPUT * BF_INPUT * 3) + blk(nn_graph_arena_bytes(net->g)) +
           blk(sizeof(float) * BF_ANCHORS * BF_COLS) + blk(bf_decode_scratch_bytes());
}

uint64_t bf_macs(const struct bf_net *net)
{
    return nn_graph_macs(net->g);
}

const struct nn_graph *bf_graph(const struct bf_net *net)
{
    return net->g;
}

/* ------------------------------------------------------------------- input */

/* Canvas row/column -> image row/column, or -1 in the black frame. */
static inline int32_t unpad(int32_t v, int32_t pad, int32_t n)
{
    v -= pad;
    return v >= 0 && v < n ? v : -1;
}

static const uint8_t black[3] = {0, 0, 0};

#ifdef FACE_SIMD
/* One output row of bf_input_padded: the same double interpolation and
 * float scaling, a pixel's three channels per vector. */
FACE_AVX512 static void input_row_simd(const uint8_t *row0, const uint8_t *row1, const int32_t *cx0,
                                       const int32_t *cx1, const double *cdx, double dy, float *o)
{
    const __m256d wy = _mm256_set1_pd(dy);
    const __m128 scale = _mm_set1_ps(127.5f), one = _mm_set1_ps(1.0f);
    for (int32_t c = 0; c < BF_INPUT; c++, o += 3) {
        const int32_t ix0 = cx0[c], ix1 = cx1[c];
        const uint8_t *ptl = row0 && ix0 >= 0 ? row0 + (size_t)ix0 * 3 : black;
        const uint8_t *ptr = row0 && ix1 >= 0 ? row0 + (size_t)ix1 * 3 : black;
        const uint8_t *pbl = row1 && ix0 >= 0 ? row1 + (size_t)ix0 * 3 : black;
        const uint8_t *pbr = row1 && ix1 >= 0 ? row1 + (size_t)ix1 * 3 : black;
        const __m128 v = face_lerp4(face_px_u8(ptl), face_px_u8(ptr), face_px_u8(pbl),
                                    face_px_u8(pbr), _mm256_set1_pd(cdx[c]), wy);
        const __m128 r = _mm_sub_ps(_mm_div_ps(v, scale), one);
        /* four lanes (the fourth lands on the next pixel, written next):
         * masked stores are slow on some CPUs; not past the row's end */
        if (c + 1 < BF_INPUT)
            _mm_storeu_ps(o, r);
        else
            face_store3(o, r);
    }
}
#endif

void bf_input_padded(const struct img *im, int32_t pad_x, int32_t pad_y, float *out)
{
#ifdef FACE_SIMD
    const bool simd = fa_cpu_avx512();
#endif
    const int32_t W = im->w, H = im->h;
    const int32_t CW = W + 2 * pad_x, CH = H + 2 * pad_y; /* the canvas */
    const double ry = (double)CH / BF_INPUT, rx = (double)CW / BF_INPUT;
    int32_t cx0[BF_INPUT], cx1[BF_INPUT]; /* image columns, -1 in the frame */
    double cdx[BF_INPUT];
    for (int32_t c = 0; c < BF_INPUT; c++) {
        double fx = rx * c;
        int32_t x0 = (int32_t)floor(fx), x1 = (int32_t)ceil(fx);
        if (x0 < 0)
            x0 = 0;
        if (x1 > CW - 1)
            x1 = CW - 1;
        cdx[c] = fx - x0;
        cx0[c] = unpad(x0, pad_x, W);
        cx1[c] = unpad(x1, pad_x, W);
    }
    for (int32_t r = 0; r < BF_INPUT; r++) {
        double fy = ry * r;
        int32_t y0 = (int32_t)floor(fy), y1 = (int32_t)ceil(fy);
        if (y0 < 0)
            y0 = 0;
        if (y1 > CH - 1)
            y1 = CH - 1;
        double dy = fy - y0;
        int32_t iy0 = unpad(y0, pad_y, H), iy1 = unpad(y1, pad_y, H);
        const uint8_t *row0 = iy0 < 0 ? NULL : im->rgb + (size_t)iy0 * (size_t)W * 3;
        const uint8_t *row1 = iy1 < 0 ? NULL : im->rgb + (size_t)iy1 * (size_t)W * 3;
#ifdef FACE_SIMD
        if (simd) {
            input_row_simd(row0, row1, cx0, cx1, cdx, dy, out + (size_t)r * BF_INPUT * 3);
            continue;
        }
#endif
        for (int32_t c = 0; c < BF_INPUT; c++) {
            const double dx = cdx[c];
            const int32_t ix0 = cx0[c], ix1 = cx1[c];
            const uint8_t *ptl = row0 && ix0 >= 0 ? row0 + (size_t)ix0 * 3 : black;
            const uint8_t *ptr = row0 && ix1 >= 0 ? row0 + (size_t)ix1 * 3 : black;
            const uint8_t *pbl = row1 && ix0 >= 0 ? row1 + (size_t)ix0 * 3 : black;
            const uint8_t *pbr = row1 && ix1 >= 0 ? row1 + (size_t)ix1 * 3 : black;
            float *o = out + ((size_t)r * BF_INPUT + (size_t)c) * 3;
            for (int k = 0; k < 3; k++) {
                double tl = ptl[k], tr = ptr[k], bl = pbl[k], br = pbr[k];
                double top = tl + (tr - tl) * dx;
                double bottom = bl + (br - bl) * dx;
                float v = (float)(top + (bottom - top) * dy);
                o[k] = v / 127.5f - 1.0f;
            }
        }
    }
}

void bf_input(const struct img *im, float *out)
{
    bf_input_padded(im, 0, 0, out);
}

/* ----------------------------------------------------------------- decoding */

void bf_table(const float *logit512, const float *logit384, const float *reg512,
              const float *reg384, float *table)
{
    for (int32_t a = 0; a < 512; a++) {
        float *row = table + (size_t)a * BF_COLS;
        row[0] = logit512[a];
        memcpy(row + 1, reg512 + (size_t)a * 16, 16 * sizeof(float));
    }
    for (int32_t b = 0; b < 384; b++) {
        float *row = table + (size_t)(512 + b) * BF_COLS;
        row[0] = logit384[b];
        memcpy(row + 1, reg384 + (size_t)b * 16, 16 * sizeof(float));
    }
}

void bf_anchor(int32_t a, float *ax, float *ay)
{
    /* strides 16 (16 x 16 grid, 2 per cell) then 32 (8 x 8, 6 per cell) */
    int32_t s, g, per, cell;
    if (a < 512) {
        s = 16, g = 16, per = 2, cell = a / per;
    } else {
        s = 32, g = 8, per = 6, cell = (a - 512) / per;
    }
    *ax = (float)s * ((float)(cell % g) + 0.5f);
    *ay = (float)s * ((float)(cell / g) + 0.5f);
}

void bf_square_box(const double box[4], double scale, int32_t out[4])
{
    double s[2] = {box[0], box[1]}, e[2] = {box[2], box[3]}, size[2];
    for (int k = 0; k < 2; k++) {
        double c = s[k] + (e[k] - s[k]) / 2;
        double half = scale * fabs(e[k] - s[k]) / 2;
        s[k] = c - half;
        e[k] = c + half;
        size[k] = fabs(e[k] - s[k]);
    }
    double half = (size[0] > size[1] ? size[0] : size[1]) / 2;
    for (int k = 0; k < 2; k++) {
        double c = s[k] + (e[k] - s[k]) / 2;
        double lo = floor(c - half + 0.5), hi = floor(c + half + 0.5);
        /* a hostile image cannot make these overflow an int32: clamp */
        if (!(lo > -1e7))
            lo = -1e7;
        if (!(lo < 1e7))
            lo = 1e7;
        if (!(hi > -1e7))
            hi = -1e7;
        if (!(hi < 1e7))
            hi = 1e7;
        out[k] = (int32_t)lo;
        out[k + 2] = (int32_t)hi;
    }
}

struct scratch {
    float boxes[BF_ANCHORS][4];
    float scores[BF_ANCHORS];
    int32_t order[BF_ANCHORS];
    int32_t keep[BF_ANCHORS];
};

size_t bf_decode_scratch_bytes(void)
{
    return sizeof(struct scratch);
}

static double iou(const float *a, const float *b)
{
    double ax1 = fmin(a[0], a[2]), ax2 = fmax(a[0], a[2]);
    double ay1 = fmin(a[1], a[3]), ay2 = fmax(a[1], a[3]);
    double bx1 = fmin(b[0], b[2]), bx2 = fmax(b[0], b[2]);
    double by1 = fmin(b[1], b[3]), by2 = fmax(b[1], b[3]);
    double area_a = (ay2 - ay1) * (ax2 - ax1), area_b = (by2 - by1) * (bx2 - bx1);
    if (area_a <= 0 || area_b <= 0)
        return 0.0;
    double ih = fmax(fmin(ay2, by2) - fmax(ay1, by1), 0.0);
    double iw = fmax(fmin(ax2, bx2) - fmax(ax1, bx1), 0.0);
    double inter = ih * iw;
    return inter / (area_a + area_b - inter);
}

/* Insertion of candidate indices in descending score, ties: lower row first
 * (rows are visited in ascending order, so a stable insertion does it). */
static size_t sort_candidates(const float *scores, float min_score, int32_t *order)
{
    size_t n = 0;
    for (int32_t a = 0; a < BF_ANCHORS; a++) {
        if (!(scores[a] > min_score))
            continue;
        size_t j = n++;
        while (j > 0 && scores[order[j - 1]] < scores[a]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = a;
    }
    return n;
}

void bf_boxes(const float *table, float (*boxes)[4], float *scores)
{
    for (int32_t a = 0; a < BF_ANCHORS; a++) {
        const float *row = table + (size_t)a * BF_COLS;
        float ax, ay;
        bf_anchor(a, &ax, &ay);
        /* float32 tensor arithmetic, one rounding per op (PIPELINE.md 5.3) */
        float cx = row[1] + ax, cy = row[2] + ay;
        float hw = (row[3] / 256.0f) / 2.0f, hh = (row[4] / 256.0f) / 2.0f;
        boxes[a][0] = (cx / 256.0f - hw) * 256.0f;
        boxes[a][1] = (cy / 256.0f - hh) * 256.0f;
        boxes[a][2] = (cx / 256.0f + hw) * 256.0f;
        boxes[a][3] = (cy / 256.0f + hh) * 256.0f;
        scores[a] = (float)(1.0 / (1.0 + exp(-(double)row[0])));
    }
}

size_t bf_decode(const float *table, int32_t img_w, int32_t img_h, float min_score, void *scratch,
                 struct bf_det *dets, size_t max)
{
    struct scratch *s = scratch;
    if (min_score <= 0.0f)
        min_score = BF_MIN_SCORE;
    bf_boxes(table, s->boxes, s->scores);
    size_t ncand = sort_candidates(s->scores, min_score, s->order);
    size_t nkeep = 0;
    for (size_t i = 0; i < ncand && nkeep < max; i++) {
        int32_t a = s->order[i];
        bool drop = false;
        for (size_t k = 0; k < nkeep && !drop; k++)
            drop = iou(s->boxes[a], s->boxes[s->keep[k]]) >= BF_IOU;
        if (!drop)
            s->keep[nkeep++] = a;
    }

    const double fx = (double)img_w / BF_INPUT, fy = (double)img_h / BF_INPUT;
    for (size_t k = 0; k < nkeep; k++) {
        int32_t a = s->keep[k];
        struct bf_det *d = &dets[k];
        const float *row = table + (size_t)a * BF_COLS;
        float ax, ay;
        bf_anchor(a, &ax, &ay);
        d->anchor = a;
        d->score = s->scores[a];
        memcpy(d->raw, row, sizeof d->raw);
        memcpy(d->box_input, s->boxes[a], sizeof d->box_input);
        d->box[0] = (double)s->boxes[a][0] * fx;
        d->box[1] = (double)s->boxes[a][1] * fy;
        d->box[2] = (double)s->boxes[a][2] * fx;
        d->box[3] = (double)s->boxes[a][3] * fy;
        for (int p = 0; p < 6; p++) {
            d->kp[p][0] = ((double)row[5 + 2 * p] + (double)ax) * fx;
            d->kp[p][1] = ((double)row[6 + 2 * p] + (double)ay) * fy;
        }
        bf_square_box(d->box, BF_BOX_SCALE, d->face_box);
    }
    return nkeep;
}

/* ----------------------------------------------------------------------- run */

enum fa_status bf_detect(const struct bf_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                         const struct img *im, float min_score, struct bf_det *dets, size_t max,
                         size_t *n)
{
    return bf_detect_padded(net, ctx, arena, im, 0, 0, min_score, dets, max, n);
}

enum fa_status bf_detect_padded(const struct bf_net *net, struct nn_ctx *ctx,
                                struct fa_arena *arena, const struct img *im, int32_t pad_x,
                                int32_t pad_y, float min_score, struct bf_det *dets, size_t max,
                                size_t *n)
{
    if (im == NULL || im->w < 1 || im->h < 1 || im->rgb == NULL || pad_x < 0 || pad_y < 0 ||
        pad_x > im->w || pad_y > im->h)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    enum fa_status rc = FA_ERR_NOMEM;
    float *outs[GMODEL_MAX_OUTPUTS];
    float *input = fa_arena_alloc(arena, sizeof(float) * BF_INPUT * BF_INPUT * 3);
    float *table = fa_arena_alloc(arena, sizeof(float) * BF_ANCHORS * BF_COLS);
    void *scratch = fa_arena_alloc(arena, bf_decode_scratch_bytes());
    if (input == NULL || table == NULL || scratch == NULL)
        goto out;
    bf_input_padded(im, pad_x, pad_y, input);
    rc = nn_graph_run(net->g, ctx, arena, input, outs);
    if (rc != FA_OK)
        goto out;
    bf_table(outs[net->out_idx[OUT_LOGIT512]], outs[net->out_idx[OUT_LOGIT384]],
             outs[net->out_idx[OUT_REG512]], outs[net->out_idx[OUT_REG384]], table);
    *n = bf_decode(table, im->w + 2 * pad_x, im->h + 2 * pad_y, min_score, scratch, dets, max);
    for (size_t i = 0; (pad_x > 0 || pad_y > 0) && i < *n; i++) {
        struct bf_det *d = &dets[i];
        d->box[0] -= pad_x;
        d->box[1] -= pad_y;
        d->box[2] -= pad_x;
        d->box[3] -= pad_y;
        for (int p = 0; p < 6; p++) {
            d->kp[p][0] -= pad_x;
            d->kp[p][1] -= pad_y;
        }
        bf_square_box(d->box, BF_BOX_SCALE, d->face_box);
    }
out:
    fa_arena_release(arena, mark);
    return rc;
}
