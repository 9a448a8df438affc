/* Tiny Face Detector (face-api.js tinyFaceDetector/, ARCHITECTURE.md 4).
 * The network is planned at load as a flat list of steps (conv or maxpool)
 * for the fixed 416 x 416 input; a run ping-pongs between two arena buffers
 * sized at load to the largest output each of them receives. The separable
 * convolutions stay two layers (depthwise without bias, then pointwise with
 * bias and leaky ReLU), as TF.js computes them; there is no batch-norm to
 * fold. Post-processing follows TinyYolov2Base.extractBoxes and detect() in
 * double precision, as JavaScript does. */
#include "face/tiny.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "face/nms.h"
#include "face/prep.h"

#define MANIFEST "tiny_face_detector_model-weights_manifest.json"
#define NSTEPS 18 /* conv0, pool0, 5 x (depthwise, pointwise, pool), conv8 */
#define NCAND (TINY_GRID * TINY_GRID * TINY_ANCHORS)

enum step_kind { STEP_CONV, STEP_POOL };

struct step {
    enum step_kind kind;
    char name[32];        /* tap name, as in the reference dump */
    struct nn_conv *conv; /* STEP_CONV */
    int32_t k, s;         /* STEP_POOL window and stride */
    struct nn_pad4 pad;   /* STEP_POOL */
    int32_t oh, ow, oc;   /* output shape */
};

struct tiny_net {
    struct step step[NSTEPS];
    int nstep;
    size_t buf_floats[2]; /* ping-pong buffer sizes; the input goes in buffer 0 */
};

/* Box anchors in grid cells (tinyFaceDetector/const.ts BOX_ANCHORS). */
static const double anchor_w[TINY_ANCHORS] = {1.603231, 6.041143, 2.882459, 4.266906, 9.041765};
static const double anchor_h[TINY_ANCHORS] = {2.094468, 7.080126, 3.518061, 5.178857, 10.66308};

/* ------------------------------------------------------------------ loading */

struct builder {
    struct tiny_net *net;
    const struct nn_backend *be;
    const struct nn_weights *w;
    struct fa_errinfo *info;
    int32_t h, wd, c; /* shape of the current output */
};

static struct step *next_step(struct builder *b, enum step_kind kind, const char *name)
{
    struct step *s = &b->net->step[b->net->nstep++];
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* A k x k convolution with stride 1 from weights `wname` ([k,k,c,cout], or
 * [k,k,c,1] when depthwise) and optional bias `bname` ([cout]). */
static enum fa_status add_conv(struct builder *b, const char *name, const char *wname,
                               const char *bname, int32_t k, int32_t cout, bool depthwise,
                               struct nn_pad4 pad, enum nn_act act)
{
    if (depthwise)
        cout = b->c;
    int32_t wshape[4] = {k, k, b->c, depthwise ? 1 : cout};
    const struct nn_weight *wt = nn_weights_get(b->w, wname, 4, wshape, b->info);
    if (wt == NULL)
        return FA_ERR_MODEL_TENSOR;
    const float *bias = NULL;
    if (bname != NULL) {
        int32_t bshape[1] = {cout};
        const struct nn_weight *bt = nn_weights_get(b->w, bname, 1, bshape, b->info);
        if (bt == NULL)
            return FA_ERR_MODEL_TENSOR;
        bias = bt->data;
    }
    struct nn_conv_desc d = {
        .in_h = b->h,
        .in_w = b->wd,
        .kh = k,
        .kw = k,
        .cin = b->c,
        .cout = cout,
        .stride = 1,
        .pad = pad,
        .depthwise = depthwise,
        .act = act,
        .alpha = 0.1f,
    };
    struct step *s = next_step(b, STEP_CONV, name);
    enum fa_status rc = nn_conv_new(b->be, &d, wt->data, bias, &s->conv);
    if (rc != FA_OK) {
        fa_errinfo_set(b->info, "tiny_face_detector: layer %s: %s", name, fa_status_str(rc));
        return rc;
    }
    nn_conv_out_shape(s->conv, &s->oh, &s->ow, &s->oc);
    b->h = s->oh;
    b->wd = s->ow;
    b->c = s->oc;
    return FA_OK;
}

/* maxpool 2x2 with stride s, TF SAME padding (padded positions ignored). */
static void add_pool(struct builder *b, const char *name, int32_t s)
{
    struct step *st = next_step(b, STEP_POOL, name);
    st->k = 2;
    st->s = s;
    st->pad = nn_pad_same(b->h, b->wd, 2, 2, s);
    st->oh = nn_out_dim(b->h, 2, s, st->pad.t, st->pad.b);
    st->ow = nn_out_dim(b->wd, 2, s, st->pad.l, st->pad.r);
    st->oc = b->c;
    b->h = st->oh;
    b->wd = st->ow;
}

static enum fa_status build(struct builder *b)
{
    static const struct nn_pad4 valid = {0, 0, 0, 0}, one = {1, 1, 1, 1};
    static const int32_t cout[6] = {16, 32, 64, 128, 256, 512};
    char name[32], wname[48], pname[48], bname[48];
    enum fa_status rc;

    rc = add_conv(b, "tiny.conv0", "conv0/filters", "conv0/bias", 3, cout[0], false, valid,
                  NN_ACT_LEAKY);
    if (rc != FA_OK)
        return rc;
    add_pool(b, "tiny.pool0", 2);
    for (int i = 1; i <= 5; i++) {
        /* tf.pad by 1 then separableConv2d VALID: the same as SAME for 3x3/1 */
        snprintf(name, sizeof name, "tiny.conv%d.depthwise", i);
        snprintf(wname, sizeof wname, "conv%d/depthwise_filter", i);
        rc = add_conv(b, name, wname, NULL, 3, 0, true, one, NN_ACT_NONE);
        if (rc != FA_OK)
            return rc;
        snprintf(name, sizeof name, "tiny.conv%d", i);
        snprintf(pname, sizeof pname, "conv%d/pointwise_filter", i);
        snprintf(bname, sizeof bname, "conv%d/bias", i);
        rc = add_conv(b, name, pname, bname, 1, cout[i], false, valid, NN_ACT_LEAKY);
        if (rc != FA_OK)
            return rc;
        snprintf(name, sizeof name, "tiny.pool%d", i);
        add_pool(b, name, i < 5 ? 2 : 1);
    }
    rc = add_conv(b, "tiny.conv8", "conv8/filters", "conv8/bias", 1, TINY_ANCHORS * 5, false, valid,
                  NN_ACT_NONE);
    if (rc != FA_OK)
        return rc;
    if (b->h != TINY_GRID || b->wd != TINY_GRID) {
        fa_errinfo_set(b->info, "tiny_face_detector: output grid %dx%d, want %d", (int)b->h,
                       (int)b->wd, TINY_GRID);
        return FA_ERR_INTERNAL;
    }
    /* step i writes buffer (i + 1) % 2; buffer 0 also holds the input */
    b->net->buf_floats[0] = (size_t)TINY_INPUT * TINY_INPUT * 3;
    for (int i = 0; i < b->net->nstep; i++) {
        const struct step *s = &b->net->step[i];
        size_t n = (size_t)s->oh * (size_t)s->ow * (size_t)s->oc;
        size_t *slot = &b->net->buf_floats[(i + 1) % 2];
        if (n > *slot)
            *slot = n;
    }
    return FA_OK;
}

enum fa_status tiny_load(const char *dir, const struct nn_backend *be, struct tiny_net **out,
                         struct fa_errinfo *info)
{
    struct nn_weights w = {0};
    struct tiny_net *net = NULL;
    struct builder b = {.be = be, .w = &w, .info = info, .h = TINY_INPUT, .wd = TINY_INPUT, .c = 3};
    char path[4096];
    enum fa_status rc;

    if (dir == NULL || be == NULL || out == NULL)
        return FA_ERR_ARG;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, MANIFEST) >= sizeof path) {
        fa_errinfo_set(info, "model directory path too long");
        return FA_ERR_ARG;
    }
    rc = nn_weights_load(path, &w, info);
    if (rc != FA_OK)
        goto out;
    net = fa_calloc(1, sizeof *net);
    if (net == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    b.net = net;
    rc = build(&b);
    if (rc != FA_OK)
        goto out;
    *out = net;
    net = NULL;
out:
    tiny_free(net);
    nn_weights_fini(&w);
    return rc;
}

void tiny_free(struct tiny_net *net)
{
    if (net == NULL)
        return;
    for (int i = 0; i < net->nstep; i++)
        nn_conv_free(net->step[i].conv);
    fa_free(net);
}

/* ----------------------------------------------------------- post-processing */

struct decode_scratch {
    struct nms_rect rel[NCAND]; /* boxes relative to the image (0..1 inside it) */
    struct nms_rect box[NCAND]; /* the same scaled by the input size, for NMS */
    double score[NCAND];
    uint32_t nms[2 * NCAND];
    uint32_t keep[NCAND];
};

size_t tiny_decode_scratch_bytes(void)
{
    return sizeof(struct decode_scratch);
}

static inline double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

void tiny_decode(const float *raw, int32_t img_w, int32_t img_h, float min_score, void *scratch,
                 struct face_box *boxes, size_t max, size_t *n)
{
    struct decode_scratch *sc = scratch;
    const double G = TINY_GRID;
    double thr = min_score > 0.0f ? (double)min_score : (double)TINY_MIN_SCORE;
    int32_t rw, rh;
    prep_reshaped_dims(img_w, img_h, TINY_INPUT, &rw, &rh);
    /* a side that rounds to 0 (an extreme aspect ratio) would divide by zero;
     * face-api then reports infinite boxes, we keep them finite */
    rw = rw > 0 ? rw : 1;
    rh = rh > 0 ? rh : 1;
    double in_size = rw > rh ? rw : rh;
    double cfx = in_size / rw, cfy = in_size / rh;
    size_t nc = 0;

    /* raw is [13, 13, 5 anchors, (tx, ty, tw, th, logit)] */
    for (int r = 0; r < TINY_GRID; r++) {
        for (int c = 0; c < TINY_GRID; c++) {
            for (int a = 0; a < TINY_ANCHORS; a++) {
                const float *p = raw + (((size_t)r * TINY_GRID + (size_t)c) * TINY_ANCHORS + a) * 5;
                double score = sigmoid(p[4]);
                if (!(score > thr))
                    continue;
                double cx = ((c + sigmoid(p[0])) / G) * cfx;
                double cy = ((r + sigmoid(p[1])) / G) * cfy;
                double bw = ((exp(p[2]) * anchor_w[a]) / G) * cfx;
                double bh = ((exp(p[3]) * anchor_h[a]) / G) * cfy;
                double x = cx - bw / 2, y = cy - bh / 2;
                /* BoundingBox(x, y, x + bw, y + bh): width = right - left */
                struct nms_rect rel = {x, y, (x + bw) - x, (y + bh) - y};
                sc->rel[nc] = rel;
                sc->box[nc] = (struct nms_rect){rel.x * TINY_INPUT, rel.y * TINY_INPUT,
                                                rel.w * TINY_INPUT, rel.h * TINY_INPUT};
                sc->score[nc] = score;
                nc++;
            }
        }
    }
    size_t kept = nms_tiny(sc->box, sc->score, nc, TINY_IOU, sc->nms, sc->keep);
    size_t out = kept < max ? kept : max;
    for (size_t i = 0; i < out; i++) {
        const struct nms_rect *r = &sc->rel[sc->keep[i]];
        boxes[i] = (struct face_box){.x = r->x * img_w,
                                     .y = r->y * img_h,
                                     .w = r->w * img_w,
                                     .h = r->h * img_h,
                                     .score = (float)sc->score[sc->keep[i]]};
    }
    *n = out;
}

/* ------------------------------------------------------------------ running */

size_t tiny_arena_bytes(const struct tiny_net *net)
{
    /* fa_arena_alloc rounds every block up to 64 bytes */
    return (net->buf_floats[0] * sizeof(float) + 63) / 64 * 64 +
           (net->buf_floats[1] * sizeof(float) + 63) / 64 * 64 +
           (tiny_decode_scratch_bytes() + 63) / 64 * 64;
}

static void tap_call(const struct tiny_tap *tap, const char *name, const struct nn_tensor *t)
{
    if (tap != NULL && tap->fn != NULL)
        tap->fn(tap->arg, name, t);
}

enum fa_status tiny_run(const struct tiny_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                        const struct img *im, float min_score, const struct tiny_tap *tap,
                        struct face_box *boxes, size_t max, size_t *n)
{
    static const struct prep_norm norm = {{117.001f, 114.697f, 97.404f}, 255.0f, 0.0f};
    enum fa_status rc = FA_OK;

    if (net == NULL || ctx == NULL || arena == NULL || im == NULL || im->rgb == NULL ||
        im->w <= 0 || im->h <= 0 || (boxes == NULL && max > 0) || n == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    float *buf[2];
    buf[0] = fa_arena_alloc(arena, net->buf_floats[0] * sizeof(float));
    buf[1] = fa_arena_alloc(arena, net->buf_floats[1] * sizeof(float));
    void *scratch = fa_arena_alloc(arena, tiny_decode_scratch_bytes());
    if (buf[0] == NULL || buf[1] == NULL || scratch == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    struct nn_tensor cur = {buf[0], 1, TINY_INPUT, TINY_INPUT, 3};
    prep_crop_resize(im, (struct prep_rect){0, 0, im->w, im->h}, PREP_PAD_CORNER, TINY_INPUT, &norm,
                     cur.data);
    tap_call(tap, "tiny.input", &cur);
    for (int i = 0; i < net->nstep; i++) {
        const struct step *s = &net->step[i];
        struct nn_tensor o = {buf[(i + 1) % 2], 1, s->oh, s->ow, s->oc};
        if (s->kind == STEP_CONV) {
            rc = nn_conv_run(s->conv, ctx, &cur, &o);
            if (rc != FA_OK)
                goto out;
        } else {
            nn_maxpool(&cur, s->k, s->s, s->pad, &o);
        }
        tap_call(tap, s->name, &o);
        cur = o;
    }
    tiny_decode(cur.data, im->w, im->h, min_score, scratch, boxes, max, n);
out:
    fa_arena_release(arena, mark);
    return rc;
}

enum fa_status tiny_detect(const struct tiny_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                           const struct img *im, float min_score, struct face_box *boxes,
                           size_t max, size_t *n)
{
    return tiny_run(net, ctx, arena, im, min_score, NULL, boxes, max, n);
}

uint64_t tiny_macs(const struct tiny_net *net)
{
    uint64_t m = 0;
    for (int i = 0; i < net->nstep; i++)
        if (net->step[i].kind == STEP_CONV)
            m += nn_conv_macs(net->step[i].conv);
    return m;
}
