/* Backend selection and layer dispatch. Every layer is validated here once,
 * at creation, so the kernels below (ref.c, dnnl.c) only see consistent
 * shapes; a run checks the tensors against the plan and hands the raw
 * pointers over. The reference backend keeps the weights in TF.js order; the
 * fast one lets oneDNN repack them and keeps no copy. */
#include "nn/nn.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/kernels.h"

/* Upper bound on any layer dimension and element count: far above every
 * model we run, low enough that no size product below overflows. */
#define NN_MAX_DIM 65536
#define NN_MAX_ELEMS ((size_t)1 << 30)

bool nn_fast_available(void)
{
#ifdef FA_NN_WITH_DNNL
    return true;
#else
    return false;
#endif
}

enum fa_status nn_backend_new(enum nn_backend_kind kind, struct nn_backend **out)
{
    const char *env = getenv("FACEAUTH_NN_BACKEND");
    struct nn_backend *be;

    if (env != NULL && strcmp(env, "ref") == 0)
        kind = NN_BACKEND_REF;
    else if (env != NULL && strcmp(env, "fast") == 0)
        kind = NN_BACKEND_FAST;
    if (kind != NN_BACKEND_REF && kind != NN_BACKEND_FAST)
        return FA_ERR_ARG;
    if (!nn_fast_available())
        kind = NN_BACKEND_REF;

    be = fa_calloc(1, sizeof(*be));
    if (be == NULL)
        return FA_ERR_NOMEM;
    be->kind = kind;
#ifdef FA_NN_WITH_DNNL
    if (kind == NN_BACKEND_FAST) {
        enum fa_status rc = nnd_engine_new(&be->dnnl);
        if (rc != FA_OK) {
            fa_free(be);
            return rc;
        }
    }
#endif
    *out = be;
    return FA_OK;
}

void nn_backend_free(struct nn_backend *be)
{
    if (be == NULL)
        return;
#ifdef FA_NN_WITH_DNNL
    nnd_engine_free(be->dnnl);
#endif
    fa_free(be);
}

const char *nn_backend_name(const struct nn_backend *be)
{
    return be->kind == NN_BACKEND_FAST ? "onednn" : "ref";
}

enum fa_status nn_ctx_new(const struct nn_backend *be, struct nn_ctx **out)
{
    struct nn_ctx *ctx = fa_calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return FA_ERR_NOMEM;
    ctx->be = be;
    if (nn_block_available(be)) {
        ctx->block_scratch = fa_malloc_aligned(NN_BLOCK_SCRATCH_FLOATS * sizeof(float));
        if (ctx->block_scratch == NULL) {
            fa_free(ctx);
            return FA_ERR_NOMEM;
        }
    }
#ifdef FA_NN_WITH_DNNL
    if (be->kind == NN_BACKEND_FAST) {
        enum fa_status rc = nnd_ctx_new(be->dnnl, &ctx->dnnl);
        if (rc != FA_OK) {
            fa_free_aligned(ctx->block_scratch);
            fa_free(ctx);
            return rc;
        }
    }
#endif
    *out = ctx;
    return FA_OK;
}

void nn_ctx_free(struct nn_ctx *ctx)
{
    if (ctx == NULL)
        return;
#ifdef FA_NN_WITH_DNNL
    nnd_ctx_free(ctx->dnnl);
#endif
    fa_free_aligned(ctx->block_scratch);
    fa_free(ctx);
}

/* ------------------------------------------------------------------ helpers */

static bool act_valid(enum nn_act a)
{
    return a == NN_ACT_NONE || a == NN_ACT_RELU || a == NN_ACT_RELU6 || a == NN_ACT_LEAKY ||
           a == NN_ACT_PRELU || a == NN_ACT_SIGMOID;
}

static float *copy_floats(const float *src, size_t n)
{
    float *p = fa_malloc_aligned(n * sizeof(float));
    if (p == NULL)
        return NULL;
    if (src != NULL)
        memcpy(p, src, n * sizeof(float));
    else
        memset(p, 0, n * sizeof(float));
    return p;
}

/* True when the byte ranges of a and b overlap. */
static bool overlap(const float *a, size_t na, const float *b, size_t nb)
{
    return (uintptr_t)a < (uintptr_t)(b + nb) && (uintptr_t)b < (uintptr_t)(a + na);
}

/* ------------------------------------------------------------- convolution */

static enum fa_status conv_check(const struct nn_conv_desc *d, int32_t *oh, int32_t *ow)
{
    size_t n;

    if (d->in_h < 1 || d->in_w < 1 || d->kh < 1 || d->kw < 1 || d->cin < 1 || d->cout < 1 ||
        d->stride < 1)
        return FA_ERR_ARG;
    if (d->in_h > NN_MAX_DIM || d->in_w > NN_MAX_DIM || d->kh > NN_MAX_DIM || d->kw > NN_MAX_DIM ||
        d->cin > NN_MAX_DIM || d->cout > NN_MAX_DIM || d->stride > NN_MAX_DIM)
        return FA_ERR_ARG;
    if (d->pad.t < 0 || d->pad.b < 0 || d->pad.l < 0 || d->pad.r < 0 || d->pad.t >= d->kh ||
        d->pad.b >= d->kh || d->pad.l >= d->kw || d->pad.r >= d->kw)
        return FA_ERR_ARG;
    if (d->depthwise && d->cout != d->cin)
        return FA_ERR_ARG;
    if (!act_valid(d->act) || (d->act == NN_ACT_PRELU && d->prelu == NULL))
        return FA_ERR_ARG;
    if (d->in_h + d->pad.t + d->pad.b < d->kh || d->in_w + d->pad.l + d->pad.r < d->kw)
        return FA_ERR_ARG;
    *oh = nn_out_dim(d->in_h, d->kh, d->stride, d->pad.t, d->pad.b);
    *ow = nn_out_dim(d->in_w, d->kw, d->stride, d->pad.l, d->pad.r);
    /* weights, input and output element counts must stay in range */
    n = (size_t)d->kh * d->kw * d->cin * (d->depthwise ? 1 : (size_t)d->cout);
    if (n > NN_MAX_ELEMS || (size_t)d->in_h * d->in_w * d->cin > NN_MAX_ELEMS ||
        (size_t)*oh * *ow * d->cout > NN_MAX_ELEMS)
        return FA_ERR_ARG;
    return FA_OK;
}

/* Create a layer. Padding is limited to less than the window on each side
 * (every TF SAME or explicit padding of our nets is), which both backends
 * support. */
enum fa_status nn_conv_new(const struct nn_backend *be, const struct nn_conv_desc *d,
                           const float *w, const float *bias, struct nn_conv **out)
{
    struct nn_conv *k = NULL;
    enum fa_status rc;
    int32_t oh, ow;
    size_t wn;

    if (be == NULL || d == NULL || w == NULL || out == NULL)
        return FA_ERR_ARG;
    rc = conv_check(d, &oh, &ow);
    if (rc != FA_OK)
        return rc;
    wn = (size_t)d->kh * d->kw * d->cin * (d->depthwise ? 1 : (size_t)d->cout);

    k = fa_calloc(1, sizeof(*k));
    if (k == NULL)
        return FA_ERR_NOMEM;
    k->d = *d;
    k->d.prelu = NULL;
    k->oh = oh;
    k->ow = ow;
    if (d->act == NN_ACT_PRELU) {
        k->prelu = copy_floats(d->prelu, (size_t)d->cout);
        if (k->prelu == NULL) {
            rc = FA_ERR_NOMEM;
            goto out;
        }
        k->d.prelu = k->prelu;
    }
#ifdef FA_NN_WITH_DNNL
    if (be->kind == NN_BACKEND_FAST) {
        rc = nnd_conv_new(be->dnnl, k, w, bias, &k->dnnl);
        if (rc != FA_OK)
            goto out;
        *out = k;
        return FA_OK;
    }
#endif
    k->w = copy_floats(w, wn);
    k->bias = copy_floats(bias, (size_t)d->cout);
    if (k->w == NULL || k->bias == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    *out = k;
    return FA_OK;
out:
    nn_conv_free(k);
    return rc;
}

void nn_conv_free(struct nn_conv *k)
{
    if (k == NULL)
        return;
#ifdef FA_NN_WITH_DNNL
    nnd_conv_free(k->dnnl);
#endif
    fa_free_aligned(k->w);
    fa_free_aligned(k->bias);
    fa_free_aligned(k->prelu);
    fa_free(k);
}

void nn_conv_out_shape(const struct nn_conv *k, int32_t *oh, int32_t *ow, int32_t *oc)
{
    *oh = k->oh;
    *ow = k->ow;
    *oc = k->d.cout;
}

uint64_t nn_conv_macs(const struct nn_conv *k)
{
    uint64_t per_out = (uint64_t)k->d.kh * k->d.kw * (k->d.depthwise ? 1 : k->d.cin);
    return (uint64_t)k->oh * k->ow * k->d.cout * per_out;
}

enum fa_status nn_conv_run(const struct nn_conv *k, struct nn_ctx *ctx, const struct nn_tensor *in,
                           struct nn_tensor *out)
{
    const struct nn_conv_desc *d;

    if (k == NULL || ctx == NULL || in == NULL || out == NULL)
        return FA_ERR_ARG;
    d = &k->d;
    if (in->n != 1 || in->h != d->in_h || in->w != d->in_w || in->c != d->cin || in->data == NULL)
        return FA_ERR_ARG;
    if (out->n != 1 || out->h != k->oh || out->w != k->ow || out->c != d->cout || out->data == NULL)
        return FA_ERR_ARG;
    if (overlap(in->data, nn_tensor_len(in), out->data, nn_tensor_len(out)))
        return FA_ERR_ARG;
#ifdef FA_NN_WITH_DNNL
    if (k->dnnl != NULL) {
        if (ctx->dnnl == NULL)
            return FA_ERR_ARG; /* a REF ctx cannot run a FAST layer */
        return nnd_conv_run(k->dnnl, ctx->dnnl, in->data, out->data);
    }
#endif
    nn_ref_conv(k, in->data, out->data);
    return FA_OK;
}

const char *nn_conv_impl(const struct nn_conv *k)
{
#ifdef FA_NN_WITH_DNNL
    if (k->dnnl != NULL)
        return nnd_conv_impl(k->dnnl);
#endif
    (void)k;
    return "ref";
}

int nn_max_threads(void)
{
#ifdef FA_NN_WITH_DNNL
    return nnd_max_threads();
#else
    return -1;
#endif
}

/* ------------------------------------------------------------------- dense */

enum fa_status nn_dense_new(const struct nn_backend *be, int32_t in, int32_t out_n, const float *w,
                            const float *bias, enum nn_act act, struct nn_dense **out)
{
    struct nn_dense *d;
    enum fa_status rc;

    if (be == NULL || w == NULL || out == NULL)
        return FA_ERR_ARG;
    if (in < 1 || out_n < 1 || in > NN_MAX_DIM * 16 || out_n > NN_MAX_DIM * 16 ||
        (size_t)in * (size_t)out_n > NN_MAX_ELEMS)
        return FA_ERR_ARG;
    /* no alpha or slopes in this interface */
    if (!act_valid(act) || act == NN_ACT_LEAKY || act == NN_ACT_PRELU)
        return FA_ERR_ARG;

    d = fa_calloc(1, sizeof(*d));
    if (d == NULL)
        return FA_ERR_NOMEM;
    d->in = in;
    d->out = out_n;
    d->act = act;
#ifdef FA_NN_WITH_DNNL
    if (be->kind == NN_BACKEND_FAST) {
        rc = nnd_dense_new(be->dnnl, d, w, bias, &d->dnnl);
        if (rc != FA_OK)
            goto out;
        *out = d;
        return FA_OK;
    }
#endif
    d->w = copy_floats(w, (size_t)in * (size_t)out_n);
    d->bias = copy_floats(bias, (size_t)out_n);
    if (d->w == NULL || d->bias == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    *out = d;
    return FA_OK;
out:
    nn_dense_free(d);
    return rc;
}

void nn_dense_free(struct nn_dense *d)
{
    if (d == NULL)
        return;
#ifdef FA_NN_WITH_DNNL
    nnd_dense_free(d->dnnl);
#endif
    fa_free_aligned(d->w);
    fa_free_aligned(d->bias);
    fa_free(d);
}

enum fa_status nn_dense_run(const struct nn_dense *d, struct nn_ctx *ctx, const float *in,
                            float *out)
{
    if (d == NULL || ctx == NULL || in == NULL || out == NULL)
        return FA_ERR_ARG;
    if (overlap(in, (size_t)d->in, out, (size_t)d->out))
        return FA_ERR_ARG;
#ifdef FA_NN_WITH_DNNL
    if (d->dnnl != NULL) {
        if (ctx->dnnl == NULL)
            return FA_ERR_ARG;
        return nnd_dense_run(d->dnnl, ctx->dnnl, in, out);
    }
#endif
    nn_ref_dense(d, in, out);
    return FA_OK;
}
