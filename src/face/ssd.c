/* SSD MobileNet V1 (face-api.js ssdMobilenetv1/, ARCHITECTURE.md 5). The
 * network is planned at load as a flat list of convolutions for the fixed
 * 512 x 512 input; a run ping-pongs between two arena buffers sized at load.
 * Each depthwise layer's batch-norm is folded into its filters and a bias
 * (in double, rounded once), so every layer is one fused conv + bias + relu6.
 * Each of the six box predictors is one 1x1 conv producing box encodings and
 * class logits side by side; it runs as soon as its feature map exists, so no
 * feature map outlives the next layer. Decoding follows outputLayer.ts in
 * float32, NMS and the mapping to pixels locateFaces() in double. */
#include "face/ssd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "face/nms.h"
#include "face/prep.h"

#define MANIFEST "ssd_mobilenetv1_model-weights_manifest.json"
#define NSTEPS 35 /* conv_0, 13 x (depthwise, pointwise), 8 extra layers */
#define NHEADS 6
#define BN_EPSILON 0.0010000000474974513 /* float32(1e-3), as face-api passes it */

struct step {
    char name[40]; /* tap name, as in the reference dump */
    struct nn_conv *conv;
    int32_t oh, ow, oc; /* output shape */
    int head;           /* box predictor fed by this output, or -1 */
};

struct head {
    struct nn_conv *conv; /* 1x1, cout = 4A box encodings then 3A class logits */
    int32_t grid, anchors;
    int32_t first; /* index of its first anchor */
};

struct ssd_net {
    struct step step[NSTEPS];
    int nstep;
    struct head head[NHEADS];
    size_t buf_floats[2]; /* ping-pong buffer sizes; the input goes in buffer 0 */
    float anchors[SSD_ANCHORS * 4];
};

/* ------------------------------------------------------------------ loading */

struct builder {
    struct ssd_net *net;
    const struct nn_backend *be;
    const struct nn_weights *w;
    struct fa_errinfo *info;
    int32_t h, wd, c; /* shape of the current output */
};

static const struct nn_weight *get(struct builder *b, const char *name, int rank,
                                   const int32_t *shape)
{
    return nn_weights_get(b->w, name, rank, shape, b->info);
}

static enum fa_status plan(struct builder *b, struct nn_conv **out, const char *name,
                           const struct nn_conv_desc *d, const float *w, const float *bias)
{
    enum fa_status rc = nn_conv_new(b->be, d, w, bias, out);
    if (rc != FA_OK)
        fa_errinfo_set(b->info, "ssd_mobilenetv1: layer %s: %s", name, fa_status_str(rc));
    return rc;
}

static struct step *push(struct builder *b, const char *name)
{
    struct step *s = &b->net->step[b->net->nstep++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->head = -1;
    return s;
}

static void advance(struct builder *b, struct step *s)
{
    nn_conv_out_shape(s->conv, &s->oh, &s->ow, &s->oc);
    b->h = s->oh;
    b->wd = s->ow;
    b->c = s->oc;
}

/* pointwiseConvLayer: conv k x k / stride SAME + convolution_bn_offset, relu6 */
static enum fa_status add_pointwise(struct builder *b, const char *name, const char *prefix,
                                    int32_t k, int32_t stride, int32_t cout)
{
    char wname[96], oname[96];
    snprintf(wname, sizeof wname, "%s/weights", prefix);
    snprintf(oname, sizeof oname, "%s/convolution_bn_offset", prefix);
    const int32_t ws[4] = {k, k, b->c, cout}, os[1] = {cout};
    const struct nn_weight *w = get(b, wname, 4, ws), *o = w ? get(b, oname, 1, os) : NULL;
    if (o == NULL)
        return FA_ERR_MODEL_TENSOR;
    struct nn_conv_desc d = {
        .in_h = b->h,
        .in_w = b->wd,
        .kh = k,
        .kw = k,
        .cin = b->c,
        .cout = cout,
        .stride = stride,
        .pad = nn_pad_same(b->h, b->wd, k, k, stride),
        .act = NN_ACT_RELU6,
    };
    struct step *s = push(b, name);
    enum fa_status rc = plan(b, &s->conv, name, &d, w->data, o->data);
    if (rc == FA_OK)
        advance(b, s);
    return rc;
}

/* depthwiseConvLayer: depthwise 3x3 / stride SAME, batch-norm, relu6; the
 * batch-norm (v - mean) * gamma / sqrt(var + eps) + beta is folded into the
 * filters (w * s) and a bias (beta - mean * s), s = gamma / sqrt(var + eps).
 * Measured on the reference dump: folded, the layers stay within 1.2e-5
 * (relative) of TF.js and boxes within 2e-4 px; TF.js's own order (a separate
 * batch-norm pass in double) is bit-exact but costs a pass over 10.5 M values. */
static enum fa_status add_depthwise(struct builder *b, const char *name, int i, int32_t stride)
{
    static const char *const bn[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    char tname[96];
    const int32_t ws[4] = {3, 3, b->c, 1}, cs[1] = {b->c};
    const struct nn_weight *p[4];
    float *w = NULL, *bias = NULL;
    enum fa_status rc;

    snprintf(tname, sizeof tname, "MobilenetV1/Conv2d_%d_depthwise/depthwise_weights", i);
    const struct nn_weight *filt = get(b, tname, 4, ws);
    if (filt == NULL)
        return FA_ERR_MODEL_TENSOR;
    for (int k = 0; k < 4; k++) {
        snprintf(tname, sizeof tname, "MobilenetV1/Conv2d_%d_depthwise/BatchNorm/%s", i, bn[k]);
        p[k] = get(b, tname, 1, cs);
        if (p[k] == NULL)
            return FA_ERR_MODEL_TENSOR;
    }
    size_t nc = (size_t)b->c;
    w = fa_malloc(9 * nc * sizeof *w);
    bias = fa_malloc(nc * sizeof *bias);
    if (w == NULL || bias == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    for (size_t c = 0; c < nc; c++) {
        double s = (double)p[0]->data[c] / sqrt((double)p[3]->data[c] + BN_EPSILON);
        for (size_t t = 0; t < 9; t++)
            w[t * nc + c] = (float)((double)filt->data[t * nc + c] * s);
        bias[c] = (float)((double)p[1]->data[c] - (double)p[2]->data[c] * s);
    }
    struct nn_conv_desc d = {
        .in_h = b->h,
        .in_w = b->wd,
        .kh = 3,
        .kw = 3,
        .cin = b->c,
        .cout = b->c,
        .stride = stride,
        .pad = nn_pad_same(b->h, b->wd, 3, 3, stride),
        .depthwise = true,
        .act = NN_ACT_RELU6,
    };
    struct step *s = push(b, name);
    rc = plan(b, &s->conv, name, &d, w, bias);
    if (rc == FA_OK)
        advance(b, s);
out:
    fa_free(w);
    fa_free(bias);
    return rc;
}

/* Box predictor k on the current output: BoxEncodingPredictor [1,1,c,4A] and
 * ClassPredictor [1,1,c,3A] side by side in one 1x1 conv with bias. */
static enum fa_status add_head(struct builder *b, int k, int32_t anchors, int32_t first)
{
    char wn[2][96], bnm[2][96];
    const int32_t co[2] = {4 * anchors, 3 * anchors}, cout = co[0] + co[1];
    const struct nn_weight *wt[2], *bt[2];
    float *w = NULL, *bias = NULL;
    enum fa_status rc;

    snprintf(wn[0], sizeof wn[0], "Prediction/BoxPredictor_%d/BoxEncodingPredictor/weights", k);
    snprintf(bnm[0], sizeof bnm[0], "Prediction/BoxPredictor_%d/BoxEncodingPredictor/biases", k);
    snprintf(wn[1], sizeof wn[1], "Prediction/BoxPredictor_%d/ClassPredictor/weights", k);
    snprintf(bnm[1], sizeof bnm[1], "Prediction/BoxPredictor_%d/ClassPredictor/biases", k);
    for (int j = 0; j < 2; j++) {
        const int32_t ws[4] = {1, 1, b->c, co[j]}, bs[1] = {co[j]};
        wt[j] = get(b, wn[j], 4, ws);
        bt[j] = wt[j] ? get(b, bnm[j], 1, bs) : NULL;
        if (bt[j] == NULL)
            return FA_ERR_MODEL_TENSOR;
    }
    size_t cin = (size_t)b->c;
    w = fa_malloc(cin * (size_t)cout * sizeof *w);
    bias = fa_malloc((size_t)cout * sizeof *bias);
    if (w == NULL || bias == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cin; i++) {
        memcpy(&w[i * (size_t)cout], &wt[0]->data[i * (size_t)co[0]], (size_t)co[0] * sizeof *w);
        memcpy(&w[i * (size_t)cout + (size_t)co[0]], &wt[1]->data[i * (size_t)co[1]],
               (size_t)co[1] * sizeof *w);
    }
    memcpy(bias, bt[0]->data, (size_t)co[0] * sizeof *bias);
    memcpy(bias + co[0], bt[1]->data, (size_t)co[1] * sizeof *bias);
    struct nn_conv_desc d = {
        .in_h = b->h,
        .in_w = b->wd,
        .kh = 1,
        .kw = 1,
        .cin = b->c,
        .cout = cout,
        .stride = 1,
        .act = NN_ACT_NONE,
    };
    char name[40];
    snprintf(name, sizeof name, "ssd.box_predictor_%d", k);
    struct head *h = &b->net->head[k];
    rc = plan(b, &h->conv, name, &d, w, bias);
    if (rc != FA_OK)
        goto out;
    h->grid = b->h;
    h->anchors = anchors;
    h->first = first;
    b->net->step[b->net->nstep - 1].head = k;
out:
    fa_free(w);
    fa_free(bias);
    return rc;
}

static enum fa_status build(struct builder *b)
{
    /* MobileNet body: depthwise stride and pointwise output channels, i = 1..13 */
    static const int32_t dw_stride[14] = {0, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};
    static const int32_t pw_cout[14] = {0,   64,  128, 128, 256, 256,  512,
                                        512, 512, 512, 512, 512, 1024, 1024};
    /* extra layers j = 0..7: alternately 1x1/1 and 3x3/2 */
    static const int32_t ex_cout[8] = {256, 512, 128, 256, 128, 256, 64, 128};
    char name[40], prefix[64];
    enum fa_status rc;
    int32_t first = 0;

    rc = add_pointwise(b, "ssd.mobilenet.conv_0", "MobilenetV1/Conv2d_0_pointwise", 3, 2, 32);
    for (int i = 1; i <= 13 && rc == FA_OK; i++) {
        snprintf(name, sizeof name, "ssd.mobilenet.conv_%d.depthwise", i);
        rc = add_depthwise(b, name, i, dw_stride[i]);
        if (rc != FA_OK)
            break;
        snprintf(name, sizeof name, "ssd.mobilenet.conv_%d.pointwise", i);
        snprintf(prefix, sizeof prefix, "MobilenetV1/Conv2d_%d_pointwise", i);
        rc = add_pointwise(b, name, prefix, 1, 1, pw_cout[i]);
        if (rc == FA_OK && (i == 11 || i == 13)) {
            int k = i == 11 ? 0 : 1, a = k == 0 ? 3 : 6;
            rc = add_head(b, k, a, first);
            first += b->h * b->wd * a;
        }
    }
    for (int j = 0; j < 8 && rc == FA_OK; j++) {
        snprintf(name, sizeof name, "ssd.prediction.conv_%d", j);
        snprintf(prefix, sizeof prefix, "Prediction/Conv2d_%d_pointwise", j);
        rc = add_pointwise(b, name, prefix, j % 2 ? 3 : 1, j % 2 ? 2 : 1, ex_cout[j]);
        if (rc == FA_OK && j % 2 == 1) {
            rc = add_head(b, 2 + j / 2, 6, first);
            first += b->h * b->wd * 6;
        }
    }
    if (rc != FA_OK)
        return rc;
    if (first != SSD_ANCHORS || b->h != 1 || b->wd != 1) {
        fa_errinfo_set(b->info, "ssd_mobilenetv1: %d anchors planned, want %d", (int)first,
                       SSD_ANCHORS);
        return FA_ERR_INTERNAL;
    }
    const int32_t as[3] = {1, SSD_ANCHORS, 4};
    const struct nn_weight *anc = get(b, "Output/extra_dim", 3, as);
    if (anc == NULL)
        return FA_ERR_MODEL_TENSOR;
    memcpy(b->net->anchors, anc->data, sizeof b->net->anchors);
    /* step i writes buffer (i + 1) % 2; buffer 0 also holds the input */
    b->net->buf_floats[0] = (size_t)SSD_INPUT * SSD_INPUT * 3;
    for (int i = 0; i < b->net->nstep; i++) {
        const struct step *s = &b->net->step[i];
        size_t n = (size_t)s->oh * (size_t)s->ow * (size_t)s->oc;
        size_t *slot = &b->net->buf_floats[(i + 1) % 2];
        if (n > *slot)
            *slot = n;
    }
    return FA_OK;
}

enum fa_status ssd_load(const char *dir, const struct nn_backend *be, struct ssd_net **out,
                        struct fa_errinfo *info)
{
    struct nn_weights w = {0};
    struct ssd_net *net = NULL;
    struct builder b = {.be = be, .w = &w, .info = info, .h = SSD_INPUT, .wd = SSD_INPUT, .c = 3};
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
    ssd_free(net);
    nn_weights_fini(&w);
    return rc;
}

void ssd_free(struct ssd_net *net)
{
    if (net == NULL)
        return;
    for (int i = 0; i < net->nstep; i++)
        nn_conv_free(net->step[i].conv);
    for (int k = 0; k < NHEADS; k++)
        nn_conv_free(net->head[k].conv);
    fa_free(net);
}

const float *ssd_anchors(const struct ssd_net *net)
{
    return net->anchors;
}

/* ----------------------------------------------------------- post-processing */

struct decode_scratch {
    float box[SSD_ANCHORS * 4]; /* ymin, xmin, ymax, xmax relative to the input */
    float score[SSD_ANCHORS];
    uint32_t nms[2 * SSD_ANCHORS];
    uint32_t keep[SSD_MAX_RESULTS];
};

size_t ssd_decode_scratch_bytes(void)
{
    return sizeof(struct decode_scratch);
}

static void tap_call(const struct ssd_tap *tap, const char *name, float *data, int32_t h, int32_t w,
                     int32_t c)
{
    if (tap != NULL && tap->fn != NULL) {
        struct nn_tensor t = {data, 1, h, w, c};
        tap->fn(tap->arg, name, &t);
    }
}

void ssd_decode(const struct ssd_net *net, const float *enc, const float *logits, int32_t img_w,
                int32_t img_h, float min_score, void *scratch, const struct ssd_tap *tap,
                struct face_box *boxes, size_t max, size_t *n)
{
    struct decode_scratch *sc = scratch;

    /* outputLayer.ts, element-wise float32 ops in TF.js's order; exp and
     * sigmoid are evaluated in double and rounded once, as TF.js cpu does */
    for (size_t i = 0; i < SSD_ANCHORS; i++) {
        const float *a = &net->anchors[i * 4], *e = &enc[i * 4];
        float ha = a[2] - a[0], wa = a[3] - a[1];
        float cya = a[0] + ha / 2.0f, cxa = a[1] + wa / 2.0f;
        float hh = (float)exp((double)(e[2] / 5.0f)) * ha / 2.0f;
        float cy = (e[0] / 10.0f) * ha + cya;
        float hw = (float)exp((double)(e[3] / 5.0f)) * wa / 2.0f;
        float cx = (e[1] / 10.0f) * wa + cxa;
        float *o = &sc->box[i * 4];
        o[0] = cy - hh;
        o[1] = cx - hw;
        o[2] = cy + hh;
        o[3] = cx + hw;
        sc->score[i] = (float)(1.0 / (1.0 + exp(-(double)logits[i * 3 + 1])));
    }
    tap_call(tap, "ssd.output.boxes", sc->box, 1, SSD_ANCHORS, 4);
    tap_call(tap, "ssd.output.scores", sc->score, 1, SSD_ANCHORS, 1);

    double thr = min_score > 0.0f ? (double)min_score : (double)SSD_MIN_SCORE;
    size_t kept =
        nms_ssd(sc->box, sc->score, SSD_ANCHORS, thr, SSD_IOU, SSD_MAX_RESULTS, sc->nms, sc->keep);

    /* locateFaces: clip to [0, 1] of the padded square, map through the
     * reshaped dimensions, scale to the image */
    int32_t rw, rh;
    prep_reshaped_dims(img_w, img_h, SSD_INPUT, &rw, &rh);
    /* a side that rounds to 0 (an extreme aspect ratio) would divide by zero;
     * face-api then reports infinite boxes, we keep them finite */
    rw = rw > 0 ? rw : 1;
    rh = rh > 0 ? rh : 1;
    double px = (double)SSD_INPUT / rw, py = (double)SSD_INPUT / rh;
    size_t out = kept < max ? kept : max;
    for (size_t i = 0; i < out; i++) {
        const float *b = &sc->box[(size_t)sc->keep[i] * 4];
        double top = (b[0] > 0.0f ? (double)b[0] : 0.0) * py;
        double bottom = (b[2] < 1.0f ? (double)b[2] : 1.0) * py;
        double left = (b[1] > 0.0f ? (double)b[1] : 0.0) * px;
        double right = (b[3] < 1.0f ? (double)b[3] : 1.0) * px;
        boxes[i] = (struct face_box){.x = left * img_w,
                                     .y = top * img_h,
                                     .w = (right - left) * img_w,
                                     .h = (bottom - top) * img_h,
                                     .score = sc->score[sc->keep[i]]};
    }
    *n = out;
}

/* ------------------------------------------------------------------ running */

static size_t round64(size_t n)
{
    return (n + 63) / 64 * 64;
}

size_t ssd_arena_bytes(const struct ssd_net *net)
{
    /* fa_arena_alloc rounds every block up to 64 bytes */
    return round64(net->buf_floats[0] * sizeof(float)) +
           round64(net->buf_floats[1] * sizeof(float)) +
           round64((size_t)SSD_ANCHORS * 7 * sizeof(float)) * 2 + /* heads, enc + logits */
           round64(ssd_decode_scratch_bytes());
}

enum fa_status ssd_run(const struct ssd_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                       const struct img *im, float min_score, const struct ssd_tap *tap,
                       struct face_box *boxes, size_t max, size_t *n)
{
    static const struct prep_norm norm = {{0.0f, 0.0f, 0.0f}, 127.5f, 1.0f};
    enum fa_status rc = FA_OK;

    if (net == NULL || ctx == NULL || arena == NULL || im == NULL || im->rgb == NULL ||
        im->w <= 0 || im->h <= 0 || (boxes == NULL && max > 0) || n == NULL)
        return FA_ERR_ARG;
    size_t mark = fa_arena_mark(arena);
    float *buf[2];
    buf[0] = fa_arena_alloc(arena, net->buf_floats[0] * sizeof(float));
    buf[1] = fa_arena_alloc(arena, net->buf_floats[1] * sizeof(float));
    float *heads = fa_arena_alloc(arena, (size_t)SSD_ANCHORS * 7 * sizeof(float));
    float *cat = fa_arena_alloc(arena, (size_t)SSD_ANCHORS * 7 * sizeof(float));
    void *scratch = fa_arena_alloc(arena, ssd_decode_scratch_bytes());
    if (buf[0] == NULL || buf[1] == NULL || heads == NULL || cat == NULL || scratch == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    struct nn_tensor cur = {buf[0], 1, SSD_INPUT, SSD_INPUT, 3};
    /* x / 127.5 - 1 (prep computes (x - 0) / 127.5 - 1: the same float ops) */
    prep_crop_resize(im, (struct prep_rect){0, 0, im->w, im->h}, PREP_PAD_CORNER, SSD_INPUT, &norm,
                     cur.data);
    tap_call(tap, "ssd.input", cur.data, SSD_INPUT, SSD_INPUT, 3);
    for (int i = 0; i < net->nstep; i++) {
        const struct step *s = &net->step[i];
        struct nn_tensor o = {buf[(i + 1) % 2], 1, s->oh, s->ow, s->oc};
        rc = nn_conv_run(s->conv, ctx, &cur, &o);
        if (rc != FA_OK)
            goto out;
        tap_call(tap, s->name, o.data, o.h, o.w, o.c);
        if (s->head >= 0) {
            const struct head *h = &net->head[s->head];
            struct nn_tensor ho = {heads + (size_t)h->first * 7, 1, h->grid, h->grid,
                                   7 * h->anchors};
            rc = nn_conv_run(h->conv, ctx, &o, &ho);
            if (rc != FA_OK)
                goto out;
            char name[40];
            snprintf(name, sizeof name, "ssd.box_predictor_%d", s->head);
            tap_call(tap, name, ho.data, ho.h, ho.w, ho.c);
        }
        cur = o;
    }
    /* concatenate the heads: anchor first + cell * A + a of head k takes box
     * channels 4a..4a+3 and class channels 4A + 3a .. 4A + 3a + 2 */
    float *enc = cat, *logits = cat + (size_t)SSD_ANCHORS * 4;
    for (int k = 0; k < NHEADS; k++) {
        const struct head *h = &net->head[k];
        const size_t A = (size_t)h->anchors, cells = (size_t)h->grid * (size_t)h->grid;
        const float *src = heads + (size_t)h->first * 7;
        for (size_t cell = 0; cell < cells; cell++) {
            const float *p = src + cell * 7 * A;
            for (size_t a = 0; a < A; a++) {
                size_t idx = (size_t)h->first + cell * A + a;
                memcpy(&enc[idx * 4], &p[4 * a], 4 * sizeof(float));
                memcpy(&logits[idx * 3], &p[4 * A + 3 * a], 3 * sizeof(float));
            }
        }
    }
    tap_call(tap, "ssd.box_encodings", enc, 1, SSD_ANCHORS, 4);
    tap_call(tap, "ssd.class_logits", logits, 1, SSD_ANCHORS, 3);
    ssd_decode(net, enc, logits, im->w, im->h, min_score, scratch, tap, boxes, max, n);
out:
    fa_arena_release(arena, mark);
    return rc;
}

enum fa_status ssd_detect(const struct ssd_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const struct img *im, float min_score, struct face_box *boxes, size_t max,
                          size_t *n)
{
    return ssd_run(net, ctx, arena, im, min_score, NULL, boxes, max, n);
}

uint64_t ssd_macs(const struct ssd_net *net)
{
    uint64_t m = 0;
    for (int i = 0; i < net->nstep; i++)
        m += nn_conv_macs(net->step[i].conv);
    for (int i = 0; i < NHEADS; i++)
        m += nn_conv_macs(net->head[i].conv);
    return m;
}
