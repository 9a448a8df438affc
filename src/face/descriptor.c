/* face-api's face recognition net (ARCHITECTURE.md 7): conv 7x7/2 + maxpool,
 * 15 residual blocks (32 -> 64 -> 128 -> 256 channels, 35 -> 17 -> 8 -> 4 -> 2),
 * mean over the 2x2 positions, fc 256 -> 128 without bias. Each convLayer's
 * per-channel scale layer (the folded batch norm, v * s + o) is folded into
 * the conv at load (w * s, b * s + o, in double, rounded once), so a layer is
 * one fused conv + bias + relu. Layers are planned for the fixed 150x150
 * input; a run cuts one block of the caller's arena into fixed slots (input,
 * the 72x72x32 first activation, two 35x35x32 slots, a vector) that rotate
 * between blocks, and gives it back. */
#include "face/descriptor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "face/align.h"

#define DS_IN_FLOATS ((size_t)DESC_INPUT * DESC_INPUT * 3)
#define DS_BIG_FLOATS ((size_t)72 * 72 * 32)  /* conv32_down output */
#define DS_SLOT_FLOATS ((size_t)35 * 35 * 32) /* the largest tensor after the maxpool */
#define DS_VEC_FLOATS ((size_t)256)

/* (x - mean) / 255, FaceRecognitionNet.ts */
static const struct prep_norm ds_norm = {
    .mean = {122.782f, 117.001f, 104.298f}, .div = 255.0f, .offset = 0.0f};

struct res_spec {
    const char *name;
    int32_t cin, cout, in_hw;
    bool down; /* residualDown: conv1 3x3/2 VALID, avgpool shortcut */
};

static const struct res_spec specs[] = {
    {"conv32_1", 32, 32, 35, false},     {"conv32_2", 32, 32, 35, false},
    {"conv32_3", 32, 32, 35, false},     {"conv64_down", 32, 64, 35, true},
    {"conv64_1", 64, 64, 17, false},     {"conv64_2", 64, 64, 17, false},
    {"conv64_3", 64, 64, 17, false},     {"conv128_down", 64, 128, 17, true},
    {"conv128_1", 128, 128, 8, false},   {"conv128_2", 128, 128, 8, false},
    {"conv256_down", 128, 256, 8, true}, {"conv256_1", 256, 256, 4, false},
    {"conv256_2", 256, 256, 4, false},   {"conv256_down_out", 256, 256, 4, true},
};
#define DS_BLOCKS ((int)(sizeof specs / sizeof specs[0]))

struct res_block {
    struct nn_conv *c1; /* relu fused */
    struct nn_conv *c2; /* no activation */
};

struct desc_net {
    struct nn_conv *first; /* conv32_down 7x7/2 VALID, relu */
    struct res_block blk[DS_BLOCKS];
    struct nn_dense *fc;
};

static size_t r64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static size_t work_bytes(void)
{
    return r64(DS_BIG_FLOATS * sizeof(float)) + 2 * r64(DS_SLOT_FLOATS * sizeof(float)) +
           r64(DS_VEC_FLOATS * sizeof(float));
}

size_t desc_arena_bytes(const struct desc_net *net)
{
    (void)net;
    return r64(DS_IN_FLOATS * sizeof(float)) + work_bytes();
}

void desc_free(struct desc_net *net)
{
    if (net == NULL)
        return;
    nn_conv_free(net->first);
    for (int i = 0; i < DS_BLOCKS; i++) {
        nn_conv_free(net->blk[i].c1);
        nn_conv_free(net->blk[i].c2);
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
            fa_errinfo_set(info, "face_recognition: %s", why);
        }
        return NULL;
    }
    return t->data;
}

/* face-api convLayer `prefix` (prefix/conv/{filters,bias},
 * prefix/scale/{weights,biases}) as one conv with the scale folded in. */
static enum fa_status conv_layer(const struct nn_backend *be, const struct nn_weights *ws,
                                 const char *prefix, int32_t in_hw, int32_t k, int32_t cin,
                                 int32_t cout, int32_t stride, bool valid, enum nn_act act,
                                 struct nn_conv **out, struct fa_errinfo *info)
{
    char name[96];
    const int32_t fshape[4] = {k, k, cin, cout}, vshape[1] = {cout};
    const float *f, *b, *s, *o;

    snprintf(name, sizeof name, "%s/conv/filters", prefix);
    if ((f = wget(ws, name, 4, fshape, info)) == NULL)
        return FA_ERR_MODEL_TENSOR;
    snprintf(name, sizeof name, "%s/conv/bias", prefix);
    if ((b = wget(ws, name, 1, vshape, info)) == NULL)
        return FA_ERR_MODEL_TENSOR;
    snprintf(name, sizeof name, "%s/scale/weights", prefix);
    if ((s = wget(ws, name, 1, vshape, info)) == NULL)
        return FA_ERR_MODEL_TENSOR;
    snprintf(name, sizeof name, "%s/scale/biases", prefix);
    if ((o = wget(ws, name, 1, vshape, info)) == NULL)
        return FA_ERR_MODEL_TENSOR;

    size_t nw = (size_t)k * (size_t)k * (size_t)cin * (size_t)cout;
    float *fw = fa_malloc(nw * sizeof(float));
    float *fb = fa_malloc((size_t)cout * sizeof(float));
    enum fa_status rc = FA_ERR_NOMEM;
    if (fw == NULL || fb == NULL)
        goto out;
    for (size_t i = 0; i < nw; i++) /* [kh,kw,cin,cout]: cout is the fastest index */
        fw[i] = (float)((double)f[i] * (double)s[i % (size_t)cout]);
    for (int32_t c = 0; c < cout; c++)
        fb[c] = (float)((double)b[c] * (double)s[c] + (double)o[c]);

    struct nn_conv_desc d = {
        .in_h = in_hw,
        .in_w = in_hw,
        .kh = k,
        .kw = k,
        .cin = cin,
        .cout = cout,
        .stride = stride,
        .pad = valid ? (struct nn_pad4){0, 0, 0, 0} : nn_pad_same(in_hw, in_hw, k, k, stride),
        .depthwise = false,
        .act = act,
    };
    rc = nn_conv_new(be, &d, fw, fb, out);
    if (rc != FA_OK && rc != FA_ERR_NOMEM)
        fa_errinfo_set(info, "face_recognition: %s: layer refused (%s)", prefix,
                       fa_status_name(rc));
out:
    fa_free(fw);
    fa_free(fb);
    return rc;
}

enum fa_status desc_load(const char *dir, const struct nn_backend *be, struct desc_net **out,
                         struct fa_errinfo *info)
{
    struct nn_weights ws = {0};
    struct desc_net *net = NULL;
    float *zeros = NULL;
    char path[4096], prefix[64];
    enum fa_status rc;

    if (dir == NULL || be == NULL || out == NULL)
        return FA_ERR_ARG;
    if ((size_t)snprintf(path, sizeof path, "%s/face_recognition_model-weights_manifest.json",
                         dir) >= sizeof path) {
        fa_errinfo_set(info, "face_recognition: model path too long");
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
    rc = conv_layer(be, &ws, "conv32_down", DESC_INPUT, 7, 3, 32, 2, true, NN_ACT_RELU, &net->first,
                    info);
    if (rc != FA_OK)
        goto out;
    for (int i = 0; i < DS_BLOCKS; i++) {
        const struct res_spec *sp = &specs[i];
        int32_t mid = sp->down ? (sp->in_hw - 3) / 2 + 1 : sp->in_hw;
        snprintf(prefix, sizeof prefix, "%s/conv1", sp->name);
        rc = conv_layer(be, &ws, prefix, sp->in_hw, 3, sp->cin, sp->cout, sp->down ? 2 : 1,
                        sp->down, NN_ACT_RELU, &net->blk[i].c1, info);
        if (rc != FA_OK)
            goto out;
        snprintf(prefix, sizeof prefix, "%s/conv2", sp->name);
        rc = conv_layer(be, &ws, prefix, mid, 3, sp->cout, sp->cout, 1, false, NN_ACT_NONE,
                        &net->blk[i].c2, info);
        if (rc != FA_OK)
            goto out;
    }
    const int32_t fcw[2] = {256, FACE_DESCRIPTOR};
    const float *w = wget(&ws, "fc", 2, fcw, info);
    if (w == NULL) {
        rc = FA_ERR_MODEL_TENSOR;
        goto out;
    }
    zeros = fa_calloc(FACE_DESCRIPTOR, sizeof(float)); /* the fc has no bias */
    if (zeros == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    rc = nn_dense_new(be, 256, FACE_DESCRIPTOR, w, zeros, NN_ACT_NONE, &net->fc);
    if (rc != FA_OK)
        goto out;
    *out = net;
    net = NULL;
out:
    fa_free(zeros);
    desc_free(net);
    nn_weights_fini(&ws);
    return rc;
}

static void tap_call(desc_tap_fn tap, void *arg, const char *name, const struct nn_tensor *t)
{
    if (tap != NULL)
        tap(arg, name, t);
}

/* residualDown's merge: out [ph,pw,cout] = relu(p + r), where the pooled
 * shortcut p [ph,pw,cin] gets zero channels appended and the conv branch r
 * [rh,rw,cout] (rh <= ph) zero rows/columns at the bottom/right. An absent
 * term is skipped rather than added as 0, which gives the same float. */
static void merge_down(const struct nn_tensor *p, const struct nn_tensor *r, struct nn_tensor *out)
{
    int32_t cp = p->c, cr = r->c;
    for (int32_t y = 0; y < out->h; y++)
        for (int32_t x = 0; x < out->w; x++) {
            const float *pp = p->data + ((size_t)y * (size_t)p->w + (size_t)x) * (size_t)cp;
            bool in_r = y < r->h && x < r->w;
            const float *rp = r->data + ((size_t)y * (size_t)r->w + (size_t)x) * (size_t)cr;
            float *op = out->data + ((size_t)y * (size_t)out->w + (size_t)x) * (size_t)cr;
            for (int32_t c = 0; c < cr; c++) {
                float v;
                if (c < cp)
                    v = in_r ? pp[c] + rp[c] : pp[c];
                else
                    v = in_r ? rp[c] : 0.0f;
                op[c] = v > 0.0f ? v : 0.0f;
            }
        }
}

enum fa_status desc_forward(const struct desc_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float out[FACE_DESCRIPTOR], desc_tap_fn tap,
                            void *tap_arg)
{
    if (net == NULL || ctx == NULL || arena == NULL || input == NULL || out == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    unsigned char *work = fa_arena_alloc(arena, work_bytes());
    if (work == NULL)
        return FA_ERR_NOMEM;
    size_t big = r64(DS_BIG_FLOATS * sizeof(float)), small = r64(DS_SLOT_FLOATS * sizeof(float));
    float *a = (float *)(void *)work;
    float *b = (float *)(void *)(work + big);
    float *c = (float *)(void *)(work + big + small);
    float *vec = (float *)(void *)(work + big + 2 * small);
    enum fa_status rc;

    /* the input is read only; the conv API takes a non-const tensor view */
    struct nn_tensor in = nn_tensor_hwc((float *)(uintptr_t)input, DESC_INPUT, DESC_INPUT, 3);
    struct nn_tensor t0 = nn_tensor_hwc(a, 72, 72, 32);
    if ((rc = nn_conv_run(net->first, ctx, &in, &t0)) != FA_OK)
        goto out;
    tap_call(tap, tap_arg, "conv32_down", &t0);
    struct nn_tensor x = nn_tensor_hwc(b, 35, 35, 32);
    nn_maxpool(&t0, 3, 2, (struct nn_pad4){0, 0, 0, 0}, &x);
    tap_call(tap, tap_arg, "maxpool", &x);

    float *free0 = a, *free1 = c; /* the two slots not holding x */
    for (int i = 0; i < DS_BLOCKS; i++) {
        const struct res_spec *sp = &specs[i];
        int32_t h, w, ch;
        nn_conv_out_shape(net->blk[i].c1, &h, &w, &ch);
        struct nn_tensor t1 = nn_tensor_hwc(free0, h, w, ch);
        if ((rc = nn_conv_run(net->blk[i].c1, ctx, &x, &t1)) != FA_OK)
            goto out;
        struct nn_tensor t2 = nn_tensor_hwc(free1, h, w, ch);
        if ((rc = nn_conv_run(net->blk[i].c2, ctx, &t1, &t2)) != FA_OK)
            goto out;
        if (!sp->down) {
            nn_add(&t2, &x, &t2, NN_ACT_RELU); /* relu(conv2(conv1(x)) + x) */
            float *old = x.data;
            x = t2;
            free1 = old;
        } else {
            int32_t ph = (x.h - 2) / 2 + 1;
            struct nn_tensor pooled = nn_tensor_hwc(free0, ph, ph, x.c); /* t1 is consumed */
            nn_avgpool(&x, 2, 2, (struct nn_pad4){0, 0, 0, 0}, &pooled);
            struct nn_tensor y = nn_tensor_hwc(x.data, ph, ph, sp->cout); /* x is consumed */
            merge_down(&pooled, &t2, &y);
            x = y;
        }
        tap_call(tap, tap_arg, sp->name, &x);
    }
    nn_global_avgpool(&x, vec);
    struct nn_tensor g = nn_tensor_hwc(vec, 1, 1, 256);
    tap_call(tap, tap_arg, "global_avg", &g);
    float desc[FACE_DESCRIPTOR];
    if ((rc = nn_dense_run(net->fc, ctx, vec, desc)) != FA_OK)
        goto out;
    memcpy(out, desc, sizeof desc);
out:
    fa_arena_release(arena, mark);
    return rc;
}

void desc_prepare(const struct img *im, struct prep_rect crop, float *input)
{
    prep_crop_resize(im, crop, PREP_PAD_CENTRE, DESC_INPUT, &ds_norm, input);
}

static bool img_ok(const struct img *im)
{
    return im != NULL && im->rgb != NULL && im->w >= 1 && im->h >= 1;
}

static enum fa_status run_crop(const struct desc_net *net, struct nn_ctx *ctx,
                               struct fa_arena *arena, const struct img *im, struct prep_rect r,
                               float out[FACE_DESCRIPTOR])
{
    size_t mark = fa_arena_mark(arena);
    float *input = fa_arena_alloc(arena, DS_IN_FLOATS * sizeof(float));
    if (input == NULL)
        return FA_ERR_NOMEM;
    desc_prepare(im, r, input);
    enum fa_status rc = desc_forward(net, ctx, arena, input, out, NULL, NULL);
    fa_arena_release(arena, mark);
    return rc;
}

enum fa_status desc_crop_from_landmarks(const struct img *im, const float pts[FACE_LANDMARKS][2],
                                        const struct face_box *landmark_box, struct prep_rect *crop)
{
    if (!img_ok(im) || pts == NULL || crop == NULL)
        return FA_ERR_ARG;
    double cw = INFINITY, ch = INFINITY;
    enum fa_status rc;
    if (landmark_box != NULL) {
        struct prep_rect lc;
        rc = align_clip(landmark_box->x, landmark_box->y, landmark_box->w, landmark_box->h, im->w,
                        im->h, &lc);
        if (rc != FA_OK)
            return rc;
        cw = lc.w;
        ch = lc.h;
    }
    struct face_box sq;
    rc = align_dlib(pts, cw, ch, &sq);
    if (rc != FA_OK)
        return rc;
    return align_clip(sq.x, sq.y, sq.w, sq.h, im->w, im->h, crop);
}

enum fa_status desc_run_landmarks_crop(const struct desc_net *net, struct nn_ctx *ctx,
                                       struct fa_arena *arena, const struct img *im,
                                       const float pts[FACE_LANDMARKS][2],
                                       const struct face_box *landmark_box,
                                       float out[FACE_DESCRIPTOR])
{
    if (net == NULL || ctx == NULL || arena == NULL || out == NULL)
        return FA_ERR_ARG;
    struct prep_rect r;
    enum fa_status rc = desc_crop_from_landmarks(im, pts, landmark_box, &r);
    if (rc != FA_OK)
        return rc;
    return run_crop(net, ctx, arena, im, r, out);
}

enum fa_status desc_run_landmarks(const struct desc_net *net, struct nn_ctx *ctx,
                                  struct fa_arena *arena, const struct img *im,
                                  const float pts[FACE_LANDMARKS][2], float out[FACE_DESCRIPTOR])
{
    return desc_run_landmarks_crop(net, ctx, arena, im, pts, NULL, out);
}

enum fa_status desc_run_rect(const struct desc_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                             const struct img *im, const struct face_box *rect,
                             float out[FACE_DESCRIPTOR])
{
    if (net == NULL || ctx == NULL || arena == NULL || !img_ok(im) || rect == NULL || out == NULL)
        return FA_ERR_ARG;
    struct prep_rect r;
    enum fa_status rc = align_clip(rect->x, rect->y, rect->w, rect->h, im->w, im->h, &r);
    if (rc != FA_OK)
        return rc;
    return run_crop(net, ctx, arena, im, r, out);
}

uint64_t desc_macs(const struct desc_net *net)
{
    uint64_t m = nn_conv_macs(net->first);
    for (int i = 0; i < DS_BLOCKS; i++)
        m += nn_conv_macs(net->blk[i].c1) + nn_conv_macs(net->blk[i].c2);
    return m;
}
