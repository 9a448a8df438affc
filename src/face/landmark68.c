/* face-api's 68-point landmark net (ARCHITECTURE.md 6): four dense blocks of
 * separable 3x3 convolutions (112 -> 56 -> 28 -> 14 -> 7), a 7x7 average pool
 * and fc 256 -> 136, then face-api's post-processing to image pixels.
 * Layers are planned once for the fixed 112x112 input. A run cuts one block
 * of the caller's arena into fixed slots (the input, five activation slots of
 * the largest layer, one vector) and gives it back, so nothing is allocated
 * per frame. Additions follow face-api's float32 order (see denseBlock4). */
#include "face/landmark68.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "face/align.h"

#define LM_BLOCKS 4
#define LM_CONVS 4
#define LM_IN_FLOATS ((size_t)LM68_INPUT * LM68_INPUT * 3)
#define LM_SLOT_FLOATS ((size_t)56 * 56 * 32) /* the largest activation (dense0) */
#define LM_SLOTS 5                            /* out1..out4 and the depthwise result */
#define LM_VEC_FLOATS ((size_t)256)

static const int32_t blk_in[LM_BLOCKS] = {112, 56, 28, 14};
static const int32_t blk_cin[LM_BLOCKS] = {3, 32, 64, 128};
static const int32_t blk_cout[LM_BLOCKS] = {32, 64, 128, 256};

/* (x - mean) / 255, FaceFeatureExtractor.ts */
static const struct prep_norm lm_norm = {
    .mean = {122.782f, 117.001f, 104.298f}, .div = 255.0f, .offset = 0.0f};

/* A separable conv: depthwise 3x3 (no bias) then pointwise 1x1 + bias (+ act).
 * dense0/conv0 is a plain 3x3 conv: dw NULL, the conv in pw. Where the
 * backend has the fused block kernel, blk runs both in one pass instead. */
struct sep_conv {
    struct nn_conv *dw;
    struct nn_conv *pw;
    struct nn_block *blk;
};

struct lm68_net {
    struct sep_conv conv[LM_BLOCKS][LM_CONVS];
    struct nn_dense *fc;
};

static size_t r64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static size_t work_bytes(void)
{
    return LM_SLOTS * r64(LM_SLOT_FLOATS * sizeof(float)) + r64(LM_VEC_FLOATS * sizeof(float));
}

size_t lm68_arena_bytes(const struct lm68_net *net)
{
    (void)net;
    return r64(LM_IN_FLOATS * sizeof(float)) + work_bytes();
}

void lm68_free(struct lm68_net *net)
{
    if (net == NULL)
        return;
    for (int b = 0; b < LM_BLOCKS; b++)
        for (int k = 0; k < LM_CONVS; k++) {
            nn_conv_free(net->conv[b][k].dw);
            nn_conv_free(net->conv[b][k].pw);
            nn_block_free(net->conv[b][k].blk);
        }
    nn_dense_free(net->fc);
    fa_free(net);
}

/* The tensor `name` with exactly `shape`, or NULL with info naming it. */
static const float *wget(const struct nn_weights *ws, const char *name, int32_t rank,
                         const int32_t *shape, struct fa_errinfo *info)
{
    const struct nn_weight *t = nn_weights_get(ws, name, rank, shape, info);
    if (t == NULL) {
        if (info != NULL) {
            char why[sizeof info->what];
            memcpy(why, info->what, sizeof why);
            why[sizeof why - 1] = '\0';
            fa_errinfo_set(info, "face_landmark_68: %s", why);
        }
        return NULL;
    }
    return t->data;
}

static enum fa_status conv_new(const struct nn_backend *be, int32_t in_hw, int32_t k, int32_t cin,
                               int32_t cout, int32_t stride, bool dw, enum nn_act act,
                               const float *w, const float *bias, struct nn_conv **out)
{
    struct nn_conv_desc d = {
        .in_h = in_hw,
        .in_w = in_hw,
        .kh = k,
        .kw = k,
        .cin = cin,
        .cout = dw ? cin : cout,
        .stride = stride,
        .pad = nn_pad_same(in_hw, in_hw, k, k, stride),
        .depthwise = dw,
        .act = act,
    };
    return nn_conv_new(be, &d, w, bias, out);
}

/* dense<b>/conv<k>: conv0 has stride 2 and relu, conv1..3 stride 1, none. */
static enum fa_status load_conv(const struct nn_backend *be, const struct nn_weights *ws, int b,
                                int k, struct sep_conv *sc, struct fa_errinfo *info)
{
    int32_t cin = k == 0 ? blk_cin[b] : blk_cout[b], cout = blk_cout[b];
    int32_t in_hw = k == 0 ? blk_in[b] : blk_in[b] / 2, stride = k == 0 ? 2 : 1;
    enum nn_act act = k == 0 ? NN_ACT_RELU : NN_ACT_NONE;
    char name[64];
    enum fa_status rc;

    const int32_t bshape[1] = {cout};
    snprintf(name, sizeof name, "dense%d/conv%d/bias", b, k);
    const float *bias = wget(ws, name, 1, bshape, info);
    if (bias == NULL)
        return FA_ERR_MODEL_TENSOR;
    if (b == 0 && k == 0) {
        const int32_t fshape[4] = {3, 3, cin, cout};
        const float *f = wget(ws, "dense0/conv0/filters", 4, fshape, info);
        if (f == NULL)
            return FA_ERR_MODEL_TENSOR;
        rc = conv_new(be, in_hw, 3, cin, cout, stride, false, act, f, bias, &sc->pw);
    } else {
        const int32_t dshape[4] = {3, 3, cin, 1}, pshape[4] = {1, 1, cin, cout};
        snprintf(name, sizeof name, "dense%d/conv%d/depthwise_filter", b, k);
        const float *dwf = wget(ws, name, 4, dshape, info);
        if (dwf == NULL)
            return FA_ERR_MODEL_TENSOR;
        snprintf(name, sizeof name, "dense%d/conv%d/pointwise_filter", b, k);
        const float *pwf = wget(ws, name, 4, pshape, info);
        if (pwf == NULL)
            return FA_ERR_MODEL_TENSOR;
        if (nn_block_available(be)) {
            /* both steps in one fused kernel; no oneDNN layers then */
            const int32_t o = in_hw / stride;
            const struct nn_block_desc bd = {
                .has_dw = true,
                .dw = {.in_h = in_hw,
                       .in_w = in_hw,
                       .kh = 3,
                       .kw = 3,
                       .cin = cin,
                       .cout = cin,
                       .stride = stride,
                       .pad = nn_pad_same(in_hw, in_hw, 3, 3, stride),
                       .depthwise = true},
                .pw =
                    {.in_h = o, .in_w = o, .kh = 1, .kw = 1, .cin = cin, .cout = cout, .stride = 1},
                .act = act,
            };
            rc = nn_block_new(be, &bd, dwf, NULL, pwf, bias, &sc->blk);
        } else {
            rc = conv_new(be, in_hw, 3, cin, cin, stride, true, NN_ACT_NONE, dwf, NULL, &sc->dw);
            if (rc == FA_OK)
                rc = conv_new(be, in_hw / stride, 1, cin, cout, 1, false, act, pwf, bias, &sc->pw);
        }
    }
    if (rc != FA_OK && rc != FA_ERR_NOMEM)
        fa_errinfo_set(info, "face_landmark_68: dense%d/conv%d: layer refused (%s)", b, k,
                       fa_status_name(rc));
    return rc;
}

enum fa_status lm68_load(const char *dir, const struct nn_backend *be, struct lm68_net **out,
                         struct fa_errinfo *info)
{
    struct nn_weights ws = {0};
    struct lm68_net *net = NULL;
    char path[4096];
    enum fa_status rc;

    if (dir == NULL || be == NULL || out == NULL)
        return FA_ERR_ARG;
    if ((size_t)snprintf(path, sizeof path, "%s/face_landmark_68_model-weights_manifest.json",
                         dir) >= sizeof path) {
        fa_errinfo_set(info, "face_landmark_68: model path too long");
        return FA_ERR_ARG;
    }
    rc = nn_weights_load(path, &ws, info);
    if (rc != FA_OK)
        goto out;
    net = fa_calloc(1, sizeof *net);
    if (net == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    for (int b = 0; b < LM_BLOCKS; b++)
        for (int k = 0; k < LM_CONVS; k++) {
            rc = load_conv(be, &ws, b, k, &net->conv[b][k], info);
            if (rc != FA_OK)
                goto out;
        }
    const int32_t fcw[2] = {256, LM68_OUTPUTS}, fcb[1] = {LM68_OUTPUTS};
    const float *w = wget(&ws, "fc/weights", 2, fcw, info);
    const float *bias = wget(&ws, "fc/bias", 1, fcb, info);
    if (w == NULL || bias == NULL) {
        rc = FA_ERR_MODEL_TENSOR;
        goto out;
    }
    rc = nn_dense_new(be, 256, LM68_OUTPUTS, w, bias, NN_ACT_NONE, &net->fc);
    if (rc != FA_OK)
        goto out;
    *out = net;
    net = NULL;
out:
    lm68_free(net);
    nn_weights_fini(&ws);
    return rc;
}

static void tap_call(lm68_tap_fn tap, void *arg, const char *name, const struct nn_tensor *t)
{
    if (tap != NULL)
        tap(arg, name, t);
}

/* out = sep(in); tmp holds the depthwise result. out must not alias in or tmp. */
static enum fa_status sep_run(const struct sep_conv *sc, struct nn_ctx *ctx,
                              const struct nn_tensor *in, float *tmp, struct nn_tensor *out)
{
    if (sc->blk != NULL)
        return nn_block_run(sc->blk, ctx, in->data, NULL, out->data);
    if (sc->dw == NULL)
        return nn_conv_run(sc->pw, ctx, in, out);
    int32_t h, w, c;
    nn_conv_out_shape(sc->dw, &h, &w, &c);
    struct nn_tensor t = nn_tensor_hwc(tmp, h, w, c);
    enum fa_status rc = nn_conv_run(sc->dw, ctx, in, &t);
    if (rc != FA_OK)
        return rc;
    return nn_conv_run(sc->pw, ctx, &t, out);
}

/* One denseBlock4 (face-api denseBlock.ts); the block output lands in s[2]. */
static enum fa_status dense_block(const struct lm68_net *net, int b, struct nn_ctx *ctx,
                                  const struct nn_tensor *x, float *const slot[LM_SLOTS],
                                  struct nn_tensor *res, lm68_tap_fn tap, void *arg)
{
    static const char *const names[LM_BLOCKS][5] = {
        {"dense0.out1", "dense0.out2", "dense0.out3", "dense0.out4", "dense0"},
        {"dense1.out1", "dense1.out2", "dense1.out3", "dense1.out4", "dense1"},
        {"dense2.out1", "dense2.out2", "dense2.out3", "dense2.out4", "dense2"},
        {"dense3.out1", "dense3.out2", "dense3.out3", "dense3.out4", "dense3"},
    };
    const struct sep_conv *cv = net->conv[b];
    int32_t o = blk_in[b] / 2, c = blk_cout[b];
    struct nn_tensor out1 = nn_tensor_hwc(slot[0], o, o, c), out2 = nn_tensor_hwc(slot[1], o, o, c);
    struct nn_tensor t = nn_tensor_hwc(slot[2], o, o, c), out3 = nn_tensor_hwc(slot[3], o, o, c);
    float *dwtmp = slot[4];
    enum fa_status rc;

    if ((rc = sep_run(&cv[0], ctx, x, dwtmp, &out1)) != FA_OK) /* relu fused */
        return rc;
    tap_call(tap, arg, names[b][0], &out1);
    if ((rc = sep_run(&cv[1], ctx, &out1, dwtmp, &out2)) != FA_OK)
        return rc;
    tap_call(tap, arg, names[b][1], &out2);
    nn_add(&out1, &out2, &t, NN_ACT_RELU);
    if ((rc = sep_run(&cv[2], ctx, &t, dwtmp, &out3)) != FA_OK)
        return rc;
    tap_call(tap, arg, names[b][2], &out3);
    nn_add(&out2, &out3, &t, NN_ACT_NONE);
    nn_add(&out1, &t, &t, NN_ACT_RELU); /* relu(out1 + (out2 + out3)) */
    /* the depthwise result is in dwtmp, so t is free for out4; the fused
     * block needs no dwtmp, and reads t while it writes, so out4 goes there */
    struct nn_tensor out4 = cv[3].blk != NULL ? nn_tensor_hwc(dwtmp, o, o, c) : t;
    if ((rc = sep_run(&cv[3], ctx, &t, dwtmp, &out4)) != FA_OK)
        return rc;
    tap_call(tap, arg, names[b][3], &out4);
    nn_add(&out3, &out4, &t, NN_ACT_NONE);
    nn_add(&out2, &t, &t, NN_ACT_NONE);
    nn_add(&out1, &t, &t, NN_ACT_RELU); /* relu(out1 + (out2 + (out3 + out4))) */
    tap_call(tap, arg, names[b][4], &t);
    *res = t;
    return FA_OK;
}

enum fa_status lm68_forward(const struct lm68_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float raw[LM68_OUTPUTS], lm68_tap_fn tap,
                            void *tap_arg)
{
    if (net == NULL || ctx == NULL || arena == NULL || input == NULL || raw == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    unsigned char *work = fa_arena_alloc(arena, work_bytes());
    if (work == NULL)
        return FA_ERR_NOMEM;
    float *slot[LM_SLOTS];
    for (int i = 0; i < LM_SLOTS; i++)
        slot[i] = (float *)(void *)(work + (size_t)i * r64(LM_SLOT_FLOATS * sizeof(float)));
    float *vec = (float *)(void *)(work + LM_SLOTS * r64(LM_SLOT_FLOATS * sizeof(float)));

    /* the input is read only; the conv API takes a non-const tensor view */
    struct nn_tensor x = nn_tensor_hwc((float *)(uintptr_t)input, LM68_INPUT, LM68_INPUT, 3);
    enum fa_status rc = FA_OK;
    for (int b = 0; b < LM_BLOCKS && rc == FA_OK; b++) {
        struct nn_tensor res;
        rc = dense_block(net, b, ctx, &x, slot, &res, tap, tap_arg);
        x = res;
    }
    if (rc == FA_OK) {
        struct nn_tensor pooled = nn_tensor_hwc(vec, 1, 1, 256);
        nn_avgpool(&x, 7, 2, (struct nn_pad4){0, 0, 0, 0}, &pooled);
        tap_call(tap, tap_arg, "avgpool", &pooled);
        rc = nn_dense_run(net->fc, ctx, vec, raw);
        if (rc == FA_OK) {
            struct nn_tensor o = nn_tensor_hwc(raw, 1, 1, LM68_OUTPUTS);
            tap_call(tap, tap_arg, "fc", &o);
        }
    }
    fa_arena_release(arena, mark);
    return rc;
}

void lm68_prepare(const struct img *im, struct prep_rect crop, float *input)
{
    prep_crop_resize(im, crop, PREP_PAD_CENTRE, LM68_INPUT, &lm_norm, input);
}

void lm68_postprocess(const float raw[LM68_OUTPUTS], int32_t crop_w, int32_t crop_h,
                      double origin_x, double origin_y, float rel[LM68_OUTPUTS],
                      float pts[FACE_LANDMARKS][2])
{
    /* FaceLandmark68NetBase.postProcess: sizes in double, then float32 ops */
    double scale = (double)LM68_INPUT / (double)(crop_w > crop_h ? crop_w : crop_h);
    double sw = crop_w * scale, sh = crop_h * scale;
    double padx = sw < sh ? fabs(sw - sh) / 2.0 : 0.0;
    double pady = sh < sw ? fabs(sw - sh) / 2.0 : 0.0;
    const float fpad[2] = {(float)padx, (float)pady}, fdim[2] = {(float)sw, (float)sh};
    const double dim[2] = {crop_w, crop_h}, org[2] = {origin_x, origin_y};
    for (int i = 0; i < LM68_OUTPUTS; i++) {
        int xy = i & 1;
        float v = raw[i] * (float)LM68_INPUT;
        v = v - fpad[xy];
        v = v / fdim[xy];
        if (rel != NULL)
            rel[i] = v;
        /* FaceLandmarks: relative * crop size + the detection's origin, in double */
        pts[i / 2][xy] = (float)((double)v * dim[xy] + org[xy]);
    }
}

enum fa_status lm68_run(const struct lm68_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                        const struct img *im, const struct face_box *box,
                        float pts[FACE_LANDMARKS][2])
{
    if (net == NULL || ctx == NULL || arena == NULL || im == NULL || im->rgb == NULL ||
        box == NULL || pts == NULL)
        return FA_ERR_ARG;
    struct prep_rect r;
    enum fa_status rc = align_clip(box->x, box->y, box->w, box->h, im->w, im->h, &r);
    if (rc != FA_OK)
        return rc;
    size_t mark = fa_arena_mark(arena);
    float *input = fa_arena_alloc(arena, LM_IN_FLOATS * sizeof(float));
    if (input == NULL)
        return FA_ERR_NOMEM;
    lm68_prepare(im, r, input);
    float raw[LM68_OUTPUTS];
    rc = lm68_forward(net, ctx, arena, input, raw, NULL, NULL);
    fa_arena_release(arena, mark);
    if (rc != FA_OK)
        return rc;
    /* face-api shifts by the detection's own x, y (not the floored crop
     * origin); for a box starting left of or above the image we use the
     * clipped origin, where face-api would shift the points off the face. */
    lm68_postprocess(raw, r.w, r.h, fmax(box->x, 0.0), fmax(box->y, 0.0), NULL, pts);
    return FA_OK;
}

uint64_t lm68_macs(const struct lm68_net *net)
{
    uint64_t m = 0;
    for (int b = 0; b < LM_BLOCKS; b++)
        for (int c = 0; c < LM_CONVS; c++) {
            if (net->conv[b][c].dw != NULL)
                m += nn_conv_macs(net->conv[b][c].dw);
            m += nn_conv_macs(net->conv[b][c].pw);
        }
    return m;
}
