/* FaceMesh on the enlarged face box and the pipeline around it (PIPELINE.md
 * sections 6-7). The crops are TF's cropAndResize, reproduced sample for
 * sample (the box is scaled by size - 1, samples outside the image are 0,
 * not clamped), because the reference's points depend on them. All box and
 * point arithmetic outside the networks is in double, as Human's
 * JavaScript; the networks run through nn_graph. One face takes a few
 * arena blocks (face input, raw mesh, two eye inputs), released on return. */
#include "face/mesh.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "face/blazeface.h"
#include "face/gmodel.h"
#include "face/iris.h"
#include "face/simd.h"

enum { OUT_MESH, OUT_FLAG, NOUT };
static const struct gmodel_output outputs[NOUT] = {{"Identity_2", FACE_MESH_POINTS * 3},
                                                   {"Identity_1", 1}};

struct mesh_net {
    struct nn_graph *g;
    int out_idx[NOUT];
};

enum fa_status mesh_load(const char *dir, const struct nn_backend *be, struct mesh_net **out,
                         struct fa_errinfo *info)
{
    struct mesh_net *net = fa_calloc(1, sizeof *net);
    if (net == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc = gmodel_load(dir, "facemesh.json", be, MESH_INPUT, outputs, NOUT,
                                    net->out_idx, &net->g, info);
    if (rc == FA_OK) {
        *out = net;
        net = NULL;
    }
    mesh_free(net);
    return rc;
}

void mesh_free(struct mesh_net *net)
{
    if (net == NULL)
        return;
    nn_graph_free(net->g);
    fa_free(net);
}

size_t mesh_arena_bytes(const struct mesh_net *net)
{
    return nn_graph_arena_bytes(net->g) + 64;
}

uint64_t mesh_macs(const struct mesh_net *net)
{
    return nn_graph_macs(net->g);
}

const struct nn_graph *mesh_graph(const struct mesh_net *net)
{
    return net->g;
}

/* ------------------------------------------------------------------- crops */

/* One axis of cropAndResize: the source coordinate of output index i, or
 * NAN when it falls outside [0, n - 1]. */
static inline double crop_coord(double a, double b, int32_t n, int32_t out_n, int32_t i)
{
    double v;
    if (out_n > 1) {
        double scale = (b - a) * (n - 1) / (out_n - 1);
        v = a * (n - 1) + i * scale;
    } else {
        v = 0.5 * (a + b) * (n - 1);
    }
    return (v < 0 || v > n - 1) ? NAN : v;
}

/* The sampling of one axis, computed once per crop: for each output index
 * the two source indices and the weight; lo < 0 marks an outside sample. */
struct axis {
    int32_t lo, hi;
    double w;
};

#define CROP_MAX 256 /* largest crop side (FaceMesh 192, Iris 64) */

static void crop_axis(double a, double b, int32_t n, int32_t out_n, struct axis *ax)
{
    for (int32_t i = 0; i < out_n; i++) {
        double v = crop_coord(a, b, n, out_n, i);
        if (isnan(v)) {
            ax[i] = (struct axis){-1, -1, 0.0};
        } else {
            int32_t lo = (int32_t)floor(v);
            ax[i] = (struct axis){lo, (int32_t)ceil(v), v - lo};
        }
    }
}

/* out = t + (b - t) * ly with t, b the horizontal interpolations, all in
 * double from the source values, stored as float32 (TF.js cpu). */
#define CROP_BODY(PIX)                                                                             \
    struct axis ys[CROP_MAX], xs[CROP_MAX];                                                        \
    crop_axis(box[0], box[2], hi, ch, ys);                                                         \
    crop_axis(box[1], box[3], wi, cw, xs);                                                         \
    for (int32_t y = 0; y < ch; y++) {                                                             \
        float *orow = out + (size_t)y * (size_t)cw * 3;                                            \
        const struct axis yy = ys[y];                                                              \
        if (yy.lo < 0) {                                                                           \
            memset(orow, 0, sizeof(float) * (size_t)cw * 3);                                       \
            continue;                                                                              \
        }                                                                                          \
        for (int32_t x = 0; x < cw; x++) {                                                         \
            float *o = orow + (size_t)x * 3;                                                       \
            const struct axis xx = xs[x];                                                          \
            if (xx.lo < 0) {                                                                       \
                o[0] = o[1] = o[2] = 0.0f;                                                         \
                continue;                                                                          \
            }                                                                                      \
            for (int k = 0; k < 3; k++) {                                                          \
                double tl = PIX(yy.lo, xx.lo, k), tr = PIX(yy.lo, xx.hi, k);                       \
                double bl = PIX(yy.hi, xx.lo, k), br = PIX(yy.hi, xx.hi, k);                       \
                double t = tl + (tr - tl) * xx.w;                                                  \
                double b = bl + (br - bl) * xx.w;                                                  \
                o[k] = (float)(t + (b - t) * yy.w);                                                \
            }                                                                                      \
        }                                                                                          \
    }

#ifdef FACE_SIMD
#define CROP_SIMD_BODY(T, PX)                                                                      \
    size_t x_lo = SIZE_MAX, x_hi = 0; /* source columns read */                                    \
    for (int32_t x = 0; x < cw; x++)                                                               \
        if (xs[x].lo >= 0) {                                                                       \
            x_lo = (size_t)xs[x].lo < x_lo ? (size_t)xs[x].lo : x_lo;                              \
            x_hi = (size_t)xs[x].hi > x_hi ? (size_t)xs[x].hi : x_hi;                              \
        }                                                                                          \
    for (int32_t y = 0; y < ch; y++) {                                                             \
        float *orow = out + (size_t)y * (size_t)cw * 3;                                            \
        const struct axis yy = ys[y];                                                              \
        if (yy.lo < 0) {                                                                           \
            memset(orow, 0, sizeof(float) * (size_t)cw * 3);                                       \
            continue;                                                                              \
        }                                                                                          \
        const T *r0 = src + (size_t)yy.lo * (size_t)wi * 3;                                        \
        const T *r1 = src + (size_t)yy.hi * (size_t)wi * 3;                                        \
        const __m256d wy = _mm256_set1_pd(yy.w);                                                   \
        if (y + 1 < ch && ys[y + 1].lo >= 0 && x_hi >= x_lo) {                                     \
            /* the next output row's source rows, while this one is done */                        \
            const char *n0 = (const char *)(src + (size_t)ys[y + 1].lo * (size_t)wi * 3);          \
            const char *n1 = (const char *)(src + (size_t)ys[y + 1].hi * (size_t)wi * 3);          \
            for (size_t o = x_lo * 3 * sizeof(T); o < (x_hi + 1) * 3 * sizeof(T); o += 64) {       \
                _mm_prefetch(n0 + o, _MM_HINT_T0);                                                 \
                _mm_prefetch(n1 + o, _MM_HINT_T0);                                                 \
            }                                                                                      \
        }                                                                                          \
        for (int32_t x = 0; x < cw; x++) {                                                         \
            const struct axis xx = xs[x];                                                          \
            __m128 v = _mm_setzero_ps();                                                           \
            if (xx.lo >= 0) {                                                                      \
                const size_t a = (size_t)xx.lo * 3, b = (size_t)xx.hi * 3;                         \
                v = face_lerp4(PX(r0 + a), PX(r0 + b), PX(r1 + a), PX(r1 + b),                     \
                               _mm256_set1_pd(xx.w), wy);                                          \
                if (unit)                                                                          \
                    v = _mm_div_ps(v, _mm_set1_ps(255.0f));                                        \
            }                                                                                      \
            /* four lanes (the fourth, zero, lands on the next pixel, written                      \
             * next): masked stores are slow on some CPUs; the last pixel                          \
             * stops at the buffer's end */                                                        \
            if (x + 1 < cw || y + 1 < ch)                                                          \
                _mm_storeu_ps(orow + (size_t)x * 3, v);                                            \
            else                                                                                   \
                face_store3(orow + (size_t)x * 3, v);                                              \
        }                                                                                          \
    }

/* unit: each value divided by 255 as it is stored (mesh_input()) */
FACE_AVX512 static void crop_u8_simd(const uint8_t *src, int32_t wi, const struct axis *ys,
                                     const struct axis *xs, int32_t ch, int32_t cw, float *out,
                                     bool unit){CROP_SIMD_BODY(uint8_t, face_px_u8)}

FACE_AVX512 static void crop_f32_simd(const float *src, int32_t wi, const struct axis *ys,
                                      const struct axis *xs, int32_t ch, int32_t cw, float *out)
{
    const bool unit = false;
    CROP_SIMD_BODY(float, face_px_f32)
}

static bool crop_simd(void)
{
    return fa_cpu_avx512();
}
#endif

/* mesh_crop_resize_u8(), then each value / 255 when unit (in the same
 * pass on the SIMD path: the same float division) */
static void crop_u8(const struct img *im, const float box[4], int32_t ch, int32_t cw, float *out,
                    bool unit)
{
    const int32_t hi = im->h, wi = im->w;
    assert(ch <= CROP_MAX && cw <= CROP_MAX);
#ifdef FACE_SIMD
    if (crop_simd()) {
        struct axis ys[CROP_MAX], xs[CROP_MAX];
        crop_axis(box[0], box[2], hi, ch, ys);
        crop_axis(box[1], box[3], wi, cw, xs);
        crop_u8_simd(im->rgb, wi, ys, xs, ch, cw, out, unit);
        return;
    }
#endif
#define PIX_U8(r, c, k) ((double)im->rgb[((size_t)(r) * (size_t)wi + (size_t)(c)) * 3 + (k)])
    CROP_BODY(PIX_U8)
#undef PIX_U8
    if (unit)
        for (size_t i = 0; i < (size_t)ch * cw * 3; i++)
            out[i] = out[i] / 255.0f;
}

void mesh_crop_resize_u8(const struct img *im, const float box[4], int32_t ch, int32_t cw,
                         float *out)
{
    crop_u8(im, box, ch, cw, out, false);
}

void mesh_crop_resize_f32(const float *src, int32_t hi, int32_t wi, const float box[4], int32_t ch,
                          int32_t cw, float *out)
{
    assert(ch <= CROP_MAX && cw <= CROP_MAX);
#ifdef FACE_SIMD
    if (crop_simd()) {
        struct axis ys[CROP_MAX], xs[CROP_MAX];
        crop_axis(box[0], box[2], hi, ch, ys);
        crop_axis(box[1], box[3], wi, cw, xs);
        crop_f32_simd(src, wi, ys, xs, ch, cw, out);
        return;
    }
#endif
#define PIX_F32(r, c, k) ((double)src[((size_t)(r) * (size_t)wi + (size_t)(c)) * 3 + (k)])
    CROP_BODY(PIX_F32)
#undef PIX_F32
}

void mesh_input(const struct img *im, const int32_t box[4], float *out)
{
    const double W = im->w, H = im->h;
    const float nb[4] = {(float)(box[1] / H), (float)(box[0] / W), (float)(box[3] / H),
                         (float)(box[2] / W)};
    crop_u8(im, nb, MESH_INPUT, MESH_INPUT, out, true);
}

/* ----------------------------------------------------------------- network */

enum fa_status mesh_infer(const struct mesh_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const float *input, float *raw, float *score)
{
    float *outs[GMODEL_MAX_OUTPUTS];
    size_t mark = fa_arena_mark(arena);
    enum fa_status rc = nn_graph_run(net->g, ctx, arena, input, outs);
    if (rc == FA_OK) {
        memcpy(raw, outs[net->out_idx[OUT_MESH]], sizeof(float) * FACE_MESH_POINTS * 3);
        *score = outs[net->out_idx[OUT_FLAG]][0];
    }
    fa_arena_release(arena, mark);
    return rc;
}

bool mesh_kept(float score)
{
    return floor(100.0 * (double)score + 0.5) / 100.0 > MESH_MIN_SCORE;
}

void mesh_to_image(const int32_t box[4], double x, double y, double *ix, double *iy)
{
    double sx = box[2] - box[0], sy = box[3] - box[1];
    double cx = box[0] + sx / 2, cy = box[1] + sy / 2;
    *ix = (sx / MESH_INPUT) * (x - MESH_INPUT / 2) + cx;
    *iy = (sy / MESH_INPUT) * (y - MESH_INPUT / 2) + cy;
}

static void bbox(const float pts[FACE_MESH_POINTS][3], double b[4])
{
    b[0] = b[2] = pts[0][0];
    b[1] = b[3] = pts[0][1];
    for (int i = 1; i < FACE_MESH_POINTS; i++) {
        b[0] = fmin(b[0], pts[i][0]);
        b[1] = fmin(b[1], pts[i][1]);
        b[2] = fmax(b[2], pts[i][0]);
        b[3] = fmax(b[3], pts[i][1]);
    }
}

void mesh_face_box(const float pts[FACE_MESH_POINTS][3], struct face_box *out)
{
    double b[4];
    bbox(pts, b);
    out->x = b[0];
    out->y = b[1];
    out->w = b[2] - b[0];
    out->h = b[3] - b[1];
}

void mesh_track_crop(const float pts[FACE_MESH_POINTS][3], int32_t crop[4])
{
    double b[4];
    bbox(pts, b);
    bf_square_box(b, BF_BOX_SCALE, crop);
}

/* ---------------------------------------------------------------- pipeline */

static size_t blk(size_t bytes)
{
    return (bytes + 63) / 64 * 64 + 64;
}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

size_t mesh_face_arena_bytes(const struct mesh_nets *nets)
{
    size_t own = blk(sizeof(float) * MESH_INPUT * MESH_INPUT * 3) +
                 blk(sizeof(float) * FACE_MESH_POINTS * 3) +
                 blk(sizeof(float) * IRIS_INPUT * IRIS_INPUT * 3) + blk(sizeof(float) * 256);
    size_t nets_bytes = 0;
    if (nets->mesh != NULL)
        nets_bytes = max_sz(nets_bytes, blk(mesh_arena_bytes(nets->mesh)));
    if (nets->iris != NULL)
        nets_bytes = max_sz(nets_bytes, blk(iris_arena_bytes(nets->iris)));
    return own + nets_bytes;
}

enum fa_status mesh_face(const struct mesh_nets *nets, struct nn_ctx *ctx, struct fa_arena *arena,
                         const struct img *im, const int32_t crop[4], bool eyes,
                         struct face_mesh *out, bool *kept)
{
    if (nets->mesh == NULL || (eyes && nets->iris == NULL))
        return FA_ERR_ARG;
    if (im == NULL || im->w < 1 || im->h < 1 || im->rgb == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    enum fa_status rc = FA_ERR_NOMEM;
    float *input = fa_arena_alloc(arena, sizeof(float) * MESH_INPUT * MESH_INPUT * 3);
    float *raw = fa_arena_alloc(arena, sizeof(float) * FACE_MESH_POINTS * 3);
    float *eye_in = fa_arena_alloc(arena, sizeof(float) * IRIS_INPUT * IRIS_INPUT * 3);
    float *eye_raw = fa_arena_alloc(arena, sizeof(float) * 256);
    if (input == NULL || raw == NULL || eye_in == NULL || eye_raw == NULL)
        goto out;
    mesh_input(im, crop, input);
    rc = mesh_infer(nets->mesh, ctx, arena, input, raw, &out->score);
    if (rc != FA_OK)
        goto out;
    memcpy(out->crop, crop, sizeof out->crop);
    for (int i = 0; i < FACE_MESH_POINTS; i++) {
        double x, y;
        mesh_to_image(crop, raw[3 * i], raw[3 * i + 1], &x, &y);
        out->pts[i][0] = (float)x;
        out->pts[i][1] = (float)y;
        out->pts[i][2] = raw[3 * i + 2];
    }
    mesh_face_box(out->pts, &out->box);
    out->box.score = out->score;
    *kept = mesh_kept(out->score);
    if (!*kept || !eyes)
        goto out;
    for (int side = 0; side < 2; side++) {
        int32_t ebox[4];
        bool mirror = iris_mirrored((enum face_eye_side)side);
        iris_eye_box(raw, (enum face_eye_side)side, ebox);
        iris_input(input, ebox, mirror, eye_in);
        rc = iris_infer(nets->iris, ctx, arena, eye_in, eye_raw);
        if (rc != FA_OK)
            goto out;
        iris_to_image(crop, ebox, mirror, eye_raw, &out->eye[side]);
    }
out:
    fa_arena_release(arena, mark);
    return rc;
}

size_t mesh_detect_arena_bytes(const struct mesh_nets *nets)
{
    size_t det = blk(sizeof(struct bf_det) * FACE_MAX_FACES) + blk(sizeof(struct face_mesh)) +
                 blk(sizeof(struct face_box) * FACE_MAX_FACES);
    size_t bf = nets->bf != NULL ? bf_arena_bytes(nets->bf) : 0;
    return det + max_sz(bf, mesh_face_arena_bytes(nets));
}

enum fa_status mesh_detect_pass(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                struct fa_arena *arena, const struct img *im, int pass,
                                float min_score, struct bf_det *dets, size_t max, size_t *n)
{
    int32_t px = pass ? (int32_t)(BF_PAD * im->w) : 0, py = pass ? (int32_t)(BF_PAD * im->h) : 0;
    if (im->w < 1 || im->h < 1)
        return FA_ERR_ARG;
    return bf_detect_padded(nets->bf, ctx, arena, im, px, py, min_score, dets, max, n);
}

enum fa_status mesh_detect_all(const struct mesh_nets *nets, struct nn_ctx *ctx,
                               struct fa_arena *arena, const struct img *im, float min_score,
                               struct face_mesh *out, size_t max, size_t *n)
{
    if (nets->bf == NULL || nets->mesh == NULL || nets->iris == NULL || im == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    size_t nout = 0;
    if (max > FACE_MAX_FACES)
        max = FACE_MAX_FACES;
    struct bf_det *dets = fa_arena_alloc(arena, sizeof(struct bf_det) * FACE_MAX_FACES);
    enum fa_status rc = dets == NULL ? FA_ERR_NOMEM : FA_OK;
    for (int pass = 0; rc == FA_OK && pass < 2 && nout == 0; pass++) {
        size_t ndet = 0;
        rc = mesh_detect_pass(nets, ctx, arena, im, pass, min_score, dets, max, &ndet);
        for (size_t i = 0; rc == FA_OK && i < ndet; i++) {
            bool kept = false;
            struct face_mesh *f = &out[nout];
            rc = mesh_face(nets, ctx, arena, im, dets[i].face_box, true, f, &kept);
            if (rc != FA_OK || !kept)
                continue;
            f->det.x = dets[i].box[0];
            f->det.y = dets[i].box[1];
            f->det.w = dets[i].box[2] - dets[i].box[0];
            f->det.h = dets[i].box[3] - dets[i].box[1];
            f->det.score = dets[i].score;
            nout++;
        }
    }
    if (rc == FA_OK)
        *n = nout;
    fa_arena_release(arena, mark);
    return rc;
}

enum fa_status mesh_detect_boxes(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                 struct fa_arena *arena, const struct img *im, float min_score,
                                 struct face_box *boxes, size_t max, size_t *n)
{
    if (nets->bf == NULL || nets->mesh == NULL || im == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    size_t nout = 0;
    struct bf_det *dets = fa_arena_alloc(arena, sizeof(struct bf_det) * FACE_MAX_FACES);
    struct face_box *sorted = fa_arena_alloc(arena, sizeof(struct face_box) * FACE_MAX_FACES);
    struct face_mesh *f = fa_arena_alloc(arena, sizeof(struct face_mesh));
    enum fa_status rc = FA_ERR_NOMEM;
    if (dets == NULL || sorted == NULL || f == NULL)
        goto out;
    rc = FA_OK;
    for (int pass = 0; rc == FA_OK && pass < 2 && nout == 0; pass++) {
        size_t ndet = 0;
        rc = mesh_detect_pass(nets, ctx, arena, im, pass, min_score, dets, FACE_MAX_FACES, &ndet);
        for (size_t i = 0; rc == FA_OK && i < ndet; i++) {
            bool kept = false;
            rc = mesh_face(nets, ctx, arena, im, dets[i].face_box, false, f, &kept);
            if (rc != FA_OK || !kept || !(f->score >= MESH_PRESENCE))
                continue;
            struct face_box b = f->box;
            b.score = dets[i].score;
            /* largest first; equal areas keep the detector's order */
            size_t j = nout++;
            while (j > 0 && sorted[j - 1].w * sorted[j - 1].h < b.w * b.h) {
                sorted[j] = sorted[j - 1];
                j--;
            }
            sorted[j] = b;
        }
    }
    if (rc == FA_OK) {
        *n = nout < max ? nout : max;
        memcpy(boxes, sorted, sizeof(struct face_box) * *n);
    }
out:
    fa_arena_release(arena, mark);
    return rc;
}

/* c's centre lies inside b */
static bool centre_in(const struct face_box *c, const struct face_box *b)
{
    double cx = c->x + c->w / 2, cy = c->y + c->h / 2;
    return cx >= b->x && cx <= b->x + b->w && cy >= b->y && cy <= b->y + b->h;
}

enum fa_status mesh_detect_others(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                  struct fa_arena *arena, const struct img *im,
                                  const struct face_box *subject, int32_t *n, float *max_w)
{
    if (nets->bf == NULL || nets->mesh == NULL || im == NULL || im->w < 1 || im->h < 1)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    struct bf_det *dets = fa_arena_alloc(arena, sizeof(struct bf_det) * FACE_MAX_FACES);
    struct face_mesh *f = fa_arena_alloc(arena, sizeof(struct face_mesh));
    enum fa_status rc = dets == NULL || f == NULL ? FA_ERR_NOMEM : FA_OK;
    size_t ndet = 0;
    int32_t nout = 0;
    float w = 0;
    /* the subject is found: the framed pass (a face filling the frame) is moot */
    if (rc == FA_OK)
        rc = mesh_detect_pass(nets, ctx, arena, im, 0, 0.0f, dets, FACE_MAX_FACES, &ndet);
    for (size_t i = 0; rc == FA_OK && i < ndet; i++) {
        const struct face_box d = {dets[i].box[0], dets[i].box[1], dets[i].box[2] - dets[i].box[0],
                                   dets[i].box[3] - dets[i].box[1], dets[i].score};
        if (centre_in(&d, subject))
            continue;
        bool kept = false;
        rc = mesh_face(nets, ctx, arena, im, dets[i].face_box, false, f, &kept);
        if (rc != FA_OK || !kept || centre_in(&f->box, subject))
            continue;
        nout++;
        if (f->box.w > w)
            w = f->box.w;
    }
    if (rc == FA_OK) {
        *n = nout;
        *max_w = w;
    }
    fa_arena_release(arena, mark);
    return rc;
}
