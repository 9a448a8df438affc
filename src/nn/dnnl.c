/* The fast backend on oneDNN 2.x (C API). Each layer is planned once, at
 * creation, for its fixed input size: activations stay NHWC float32 in our
 * own buffers, the weights are reordered once into whatever blocked layout
 * the primitive picked, bias and activation are fused (post-ops), and the
 * scratchpad is the caller's (scratchpad mode user). A primitive is then
 * immutable and shared by all threads.
 *
 * Threads: Debian's libdnnl uses OpenMP. A run must use exactly the calling
 * thread, so the calling thread's OpenMP thread count is set to 1 while a
 * primitive is planned (oneDNN plans its work split for the current count)
 * and whenever a ctx runs (omp_* found with dlsym: libgomp is libdnnl's
 * dependency, not ours). Per-thread state, in struct nnd_ctx: a stream, the
 * scratchpad, and a small cache of memory objects keyed by shape, whose data
 * handles are pointed at the caller's tensors on every run (no copies). Only
 * the first run of a shape on a ctx allocates. */
#include "nn/kernels.h"

#ifdef FA_NN_WITH_DNNL

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"

struct nnd_engine {
    dnnl_engine_t eng;
};

/* Key of a cached memory object: the plain f32 NHWC activation [1,h,w,c]
 * (kind 1 as a source, 11 as a destination: a layer's input and output can
 * have the same shape), the [1,n] vector (2, 12) or the u8 scratchpad of n
 * bytes (3). The key determines the memory descriptor. */
struct mkey {
    int64_t kind, a, b, c;
};

struct mslot {
    struct mkey key;
    dnnl_memory_t mem;
};

struct nnd_ctx {
    dnnl_engine_t eng; /* borrowed from the backend */
    dnnl_stream_t stream;
    void *scratch; /* fa_malloc_aligned, grown at warm-up */
    size_t scratch_cap;
    struct mslot *slots;
    size_t nslots, cap;
};

/* What a run needs from a planned primitive (conv or inner product). */
struct plan {
    dnnl_primitive_t prim;
    dnnl_memory_t wmem, bmem, prelu_mem; /* read-only, shared by all threads */
    void *wbuf, *bbuf;                   /* their storage (fa_malloc_aligned) */
    dnnl_memory_desc_t src_md, dst_md, sp_md;
    struct mkey src_key, dst_key, sp_key;
    size_t sp_size;
    const float *prelu_c; /* PReLU applied in C after the primitive: oneDNN
                             2.6 has no fast kernel with a prelu post-op */
    size_t prelu_px;
    int32_t prelu_ch;
    char impl[48];
};

struct nnd_conv {
    struct plan p;
};

struct nnd_dense {
    struct plan p;
};

/* ------------------------------------------------------------ OpenMP control */

static int (*omp_get_max_threads_fn)(void);
static void (*omp_set_num_threads_fn)(int);
static pthread_once_t omp_once = PTHREAD_ONCE_INIT;

static void omp_resolve(void)
{
    omp_get_max_threads_fn = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    omp_set_num_threads_fn = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (omp_get_max_threads_fn == NULL || omp_set_num_threads_fn == NULL) {
        omp_get_max_threads_fn = NULL;
        omp_set_num_threads_fn = NULL;
    }
}

/* Make the calling thread run oneDNN alone; returns the previous count (0
 * without OpenMP). */
static int single_thread_enter(void)
{
    pthread_once(&omp_once, omp_resolve);
    if (omp_get_max_threads_fn == NULL)
        return 0;
    int prev = omp_get_max_threads_fn();
    if (prev != 1)
        omp_set_num_threads_fn(1);
    return prev;
}

static void single_thread_leave(int prev)
{
    if (omp_set_num_threads_fn != NULL && prev > 1)
        omp_set_num_threads_fn(prev);
}

int nnd_max_threads(void)
{
    pthread_once(&omp_once, omp_resolve);
    return omp_get_max_threads_fn != NULL ? omp_get_max_threads_fn() : -1;
}

/* ------------------------------------------------------------------ engine */

static enum fa_status st(dnnl_status_t s)
{
    return s == dnnl_success ? FA_OK : s == dnnl_out_of_memory ? FA_ERR_NOMEM : FA_ERR_NN_BACKEND;
}

enum fa_status nnd_engine_new(struct nnd_engine **out)
{
    struct nnd_engine *e = fa_calloc(1, sizeof(*e));
    if (e == NULL)
        return FA_ERR_NOMEM;
    if (dnnl_engine_create(&e->eng, dnnl_cpu, 0) != dnnl_success) {
        fa_free(e);
        return FA_ERR_NN_BACKEND;
    }
    *out = e;
    return FA_OK;
}

void nnd_engine_free(struct nnd_engine *e)
{
    if (e == NULL)
        return;
    dnnl_engine_destroy(e->eng);
    fa_free(e);
}

/* --------------------------------------------------------------------- ctx */

enum fa_status nnd_ctx_new(struct nnd_engine *e, struct nnd_ctx **out)
{
    struct nnd_ctx *c = fa_calloc(1, sizeof(*c));
    if (c == NULL)
        return FA_ERR_NOMEM;
    c->eng = e->eng;
    if (dnnl_stream_create(&c->stream, e->eng, dnnl_stream_default_flags) != dnnl_success) {
        fa_free(c);
        return FA_ERR_NN_BACKEND;
    }
    (void)single_thread_enter(); /* this thread is the ctx's worker */
    *out = c;
    return FA_OK;
}

void nnd_ctx_free(struct nnd_ctx *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nslots; i++)
        dnnl_memory_destroy(c->slots[i].mem);
    fa_free(c->slots);
    fa_free_aligned(c->scratch);
    dnnl_stream_destroy(c->stream);
    fa_free(c);
}

/* The ctx's memory object for `key` (created from md on first use), with
 * its data handle set to `data`. */
static enum fa_status ctx_mem(struct nnd_ctx *c, const struct mkey *key,
                              const dnnl_memory_desc_t *md, void *data, dnnl_memory_t *out)
{
    struct mslot *s = NULL;
    for (size_t i = 0; i < c->nslots; i++) {
        if (memcmp(&c->slots[i].key, key, sizeof(*key)) == 0) {
            s = &c->slots[i];
            break;
        }
    }
    if (s == NULL) {
        if (c->nslots == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            struct mslot *p = fa_realloc(c->slots, cap * sizeof(*p));
            if (p == NULL)
                return FA_ERR_NOMEM;
            c->slots = p;
            c->cap = cap;
        }
        dnnl_memory_t m;
        enum fa_status rc = st(dnnl_memory_create(&m, md, c->eng, DNNL_MEMORY_NONE));
        if (rc != FA_OK)
            return rc;
        s = &c->slots[c->nslots++];
        s->key = *key;
        s->mem = m;
    }
    if (dnnl_memory_set_data_handle(s->mem, data) != dnnl_success)
        return FA_ERR_NN_BACKEND;
    *out = s->mem;
    return FA_OK;
}

/* ------------------------------------------------------------------ plans */

static void plan_free(struct plan *p)
{
    if (p->prim != NULL)
        dnnl_primitive_destroy(p->prim);
    if (p->wmem != NULL)
        dnnl_memory_destroy(p->wmem);
    if (p->bmem != NULL)
        dnnl_memory_destroy(p->bmem);
    if (p->prelu_mem != NULL)
        dnnl_memory_destroy(p->prelu_mem);
    fa_free_aligned(p->wbuf);
    fa_free_aligned(p->bbuf);
}

/* Post-ops for the activation; PRELU slopes are an execution argument. */
static enum fa_status make_attr(enum nn_act act, float alpha, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s;

    s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && act != NN_ACT_NONE) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) {
            switch (act) {
            case NN_ACT_RELU:
                s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
                break;
            case NN_ACT_RELU6:
                s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f);
                break;
            case NN_ACT_LEAKY:
                s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, alpha, 0.0f);
                break;
            case NN_ACT_SIGMOID:
                s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f);
                break;
            case NN_ACT_PRELU:
                s = dnnl_post_ops_append_prelu(po, 1 << 1); /* one slope per channel */
                break;
            case NN_ACT_NONE:
                break;
            }
        }
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (po != NULL)
        dnnl_post_ops_destroy(po);
    if (s != dnnl_success) {
        if (attr != NULL)
            dnnl_primitive_attr_destroy(attr);
        return st(s);
    }
    *out = attr;
    return FA_OK;
}

/* Copy `user` (described by user_md) into a new buffer in the layout
 * `want_md` through a reorder, once. */
static enum fa_status reorder_in(dnnl_engine_t eng, const dnnl_memory_desc_t *user_md,
                                 const float *user, const dnnl_memory_desc_t *want_md,
                                 dnnl_memory_t *out_mem, void **out_buf)
{
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_stream_t s = NULL;
    size_t n = dnnl_memory_desc_get_size(want_md);
    void *buf = fa_malloc_aligned(n);
    enum fa_status rc = FA_ERR_NOMEM;

    if (buf == NULL)
        goto out;
    memset(buf, 0, n); /* blocked layouts pad channels; the padding must be 0 */
    rc = st(dnnl_memory_create(&src, user_md, eng, (void *)user));
    if (rc == FA_OK)
        rc = st(dnnl_memory_create(&dst, want_md, eng, buf));
    if (rc == FA_OK)
        rc = st(dnnl_reorder_primitive_desc_create(&rpd, user_md, eng, want_md, eng, NULL));
    if (rc == FA_OK)
        rc = st(dnnl_primitive_create(&r, rpd));
    if (rc == FA_OK)
        rc = st(dnnl_stream_create(&s, eng, dnnl_stream_default_flags));
    if (rc == FA_OK) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        rc = st(dnnl_primitive_execute(r, s, 2, args));
        if (rc == FA_OK)
            rc = st(dnnl_stream_wait(s));
    }
    if (rc == FA_OK) {
        *out_mem = dst;
        *out_buf = buf;
        dst = NULL;
        buf = NULL;
    }
out:
    if (s != NULL)
        dnnl_stream_destroy(s);
    if (r != NULL)
        dnnl_primitive_destroy(r);
    if (rpd != NULL)
        dnnl_primitive_desc_destroy(rpd);
    if (src != NULL)
        dnnl_memory_destroy(src);
    if (dst != NULL)
        dnnl_memory_destroy(dst);
    fa_free_aligned(buf);
    return rc;
}

/* Everything after the operation descriptor, common to conv and dense:
 * primitive, weights reorder, bias, slopes, keys. `op` is the op desc. */
static enum fa_status plan_build(dnnl_engine_t eng, const void *op, enum nn_act act, float alpha,
                                 const dnnl_memory_desc_t *user_w_md, const float *w,
                                 const dnnl_memory_desc_t *bias_md, const float *bias,
                                 const dnnl_memory_desc_t *prelu_md, const float *prelu,
                                 struct plan *p)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    enum fa_status rc;

    rc = make_attr(act, alpha, &attr);
    if (rc != FA_OK)
        return rc;
    rc = st(dnnl_primitive_desc_create(&pd, op, attr, eng, NULL));
    if (rc != FA_OK)
        goto out;
    rc = st(dnnl_primitive_create(&p->prim, pd));
    if (rc != FA_OK)
        goto out;

    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl != NULL) {
        strncpy(p->impl, impl, sizeof(p->impl) - 1);
        p->impl[sizeof(p->impl) - 1] = '\0';
    }
    p->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    p->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    p->sp_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->sp_size = dnnl_memory_desc_get_size(&p->sp_md);
    p->sp_key = (struct mkey){3, (int64_t)p->sp_size, 0, 0};

    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    rc = reorder_in(eng, user_w_md, w, wmd, &p->wmem, &p->wbuf);
    if (rc != FA_OK)
        goto out;
    if (bias != NULL) {
        rc = reorder_in(eng, bias_md, bias, bias_md, &p->bmem, &p->bbuf);
        if (rc != FA_OK)
            goto out;
    }
    if (prelu != NULL)
        rc = st(dnnl_memory_create(&p->prelu_mem, prelu_md, eng, (void *)prelu));
out:
    if (pd != NULL)
        dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* out[px][ch] = x > 0 ? x : slope[ch] * x, eight lanes at a time with GCC
 * vector extensions (branch-free: the sign is a coin flip for a branch
 * predictor); bit-identical to the scalar rule. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static void prelu_inplace(float *out, size_t px, int32_t ch_n, const float *slope)
{
    const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < px; i++) {
        float *o = out + i * (size_t)ch_n;
        int32_t ch = 0;
        for (; ch + 8 <= ch_n; ch += 8) {
            v8f x, s;
            memcpy(&x, o + ch, sizeof x);
            memcpy(&s, slope + ch, sizeof s);
            v8f y = s * x;
            v8i m = x > zero;
            v8f r = (v8f)((m & (v8i)x) | (~m & (v8i)y));
            memcpy(o + ch, &r, sizeof r);
        }
        for (; ch < ch_n; ch++) {
            float x = o[ch], y = slope[ch] * x;
            o[ch] = x > 0.0f ? x : y;
        }
    }
}

static enum fa_status plan_run(const struct plan *p, struct nnd_ctx *c, const float *in, float *out)
{
    dnnl_exec_arg_t args[6];
    int n = 0;
    dnnl_memory_t src, dst, sp;
    enum fa_status rc;

    /* the ctx's thread may have changed its OpenMP count: one thread here */
    (void)single_thread_enter();
    rc = ctx_mem(c, &p->src_key, &p->src_md, (void *)in, &src);
    if (rc != FA_OK)
        return rc;
    rc = ctx_mem(c, &p->dst_key, &p->dst_md, out, &dst);
    if (rc != FA_OK)
        return rc;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, p->wmem};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
    if (p->bmem != NULL)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bmem};
    if (p->prelu_mem != NULL)
        args[n++] =
            (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_WEIGHTS, p->prelu_mem};
    if (p->sp_size > 0) {
        if (c->scratch_cap < p->sp_size) {
            void *buf = fa_malloc_aligned(p->sp_size);
            if (buf == NULL)
                return FA_ERR_NOMEM;
            fa_free_aligned(c->scratch);
            c->scratch = buf;
            c->scratch_cap = p->sp_size;
        }
        rc = ctx_mem(c, &p->sp_key, &p->sp_md, c->scratch, &sp);
        if (rc != FA_OK)
            return rc;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sp};
    }
    if (dnnl_primitive_execute(p->prim, c->stream, n, args) != dnnl_success)
        return FA_ERR_NN_BACKEND;
    /* CPU streams are synchronous: the output is ready */
    if (p->prelu_c != NULL)
        prelu_inplace(out, p->prelu_px, p->prelu_ch, p->prelu_c);
    return FA_OK;
}

/* ------------------------------------------------------------- convolution */

enum fa_status nnd_conv_new(struct nnd_engine *e, const struct nn_conv *k, const float *w,
                            const float *bias, struct nnd_conv **out)
{
    const struct nn_conv_desc *d = &k->d;
    dnnl_memory_desc_t src_md, dst_md, w_any, w_user, b_md, prelu_md;
    dnnl_convolution_desc_t op;
    struct nnd_conv *c;
    enum fa_status rc;
    int prev;

    c = fa_calloc(1, sizeof(*c));
    if (c == NULL)
        return FA_ERR_NOMEM;

    const dnnl_dims_t src_dims = {1, d->cin, d->in_h, d->in_w};
    const dnnl_dims_t dst_dims = {1, d->cout, k->oh, k->ow};
    const dnnl_dims_t b_dims = {d->cout};
    const dnnl_dims_t prelu_dims = {1, d->cout, 1, 1};
    const dnnl_dims_t strides = {d->stride, d->stride};
    const dnnl_dims_t pad_l = {d->pad.t, d->pad.l}, pad_r = {d->pad.b, d->pad.r};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&prelu_md, 4, prelu_dims, dnnl_f32, dnnl_abcd);
    if (s == dnnl_success && d->depthwise) {
        /* groups = channels: dims (g, oc/g, ic/g, kh, kw); TF [kh, kw, c, 1] */
        const dnnl_dims_t wd = {d->cin, 1, 1, d->kh, d->kw};
        const dnnl_dims_t ws = {1, 1, 1, (dnnl_dim_t)d->kw * d->cin, d->cin};
        s = dnnl_memory_desc_init_by_strides(&w_user, 5, wd, dnnl_f32, ws);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(&w_any, 5, wd, dnnl_f32, dnnl_format_tag_any);
    } else if (s == dnnl_success) {
        /* dims (oc, ic, kh, kw); TF [kh, kw, ic, oc] */
        const dnnl_dims_t wd = {d->cout, d->cin, d->kh, d->kw};
        const dnnl_dims_t ws = {1, d->cout, (dnnl_dim_t)d->kw * d->cin * d->cout,
                                (dnnl_dim_t)d->cin * d->cout};
        s = dnnl_memory_desc_init_by_strides(&w_user, 4, wd, dnnl_f32, ws);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any);
    }
    if (s == dnnl_success)
        s = dnnl_convolution_forward_desc_init(&op, dnnl_forward_inference, dnnl_convolution_direct,
                                               &src_md, &w_any, bias != NULL ? &b_md : NULL,
                                               &dst_md, strides, pad_l, pad_r);
    if (s != dnnl_success) {
        fa_free(c);
        return st(s);
    }
    prev = single_thread_enter(); /* plan the work split for one thread */
    rc = plan_build(e->eng, &op, d->act, d->alpha, &w_user, w, &b_md, bias, &prelu_md,
                    d->act == NN_ACT_PRELU ? k->prelu : NULL, &c->p);
    if (rc == FA_OK && d->act == NN_ACT_PRELU && strncmp(c->p.impl, "ref", 3) == 0) {
        /* the fused prelu only exists as the slow reference kernel: plan
         * without it and apply the slopes in plan_run */
        plan_free(&c->p);
        memset(&c->p, 0, sizeof(c->p));
        rc = plan_build(e->eng, &op, NN_ACT_NONE, 0.0f, &w_user, w, &b_md, bias, NULL, NULL, &c->p);
        c->p.prelu_c = k->prelu;
        c->p.prelu_px = (size_t)k->oh * k->ow;
        c->p.prelu_ch = d->cout;
    }
    single_thread_leave(prev);
    if (rc != FA_OK) {
        nnd_conv_free(c);
        return rc;
    }
    c->p.src_key = (struct mkey){1, d->in_h, d->in_w, d->cin};
    c->p.dst_key = (struct mkey){11, k->oh, k->ow, d->cout};
    *out = c;
    return FA_OK;
}

void nnd_conv_free(struct nnd_conv *c)
{
    if (c == NULL)
        return;
    plan_free(&c->p);
    fa_free(c);
}

enum fa_status nnd_conv_run(const struct nnd_conv *c, struct nnd_ctx *ctx, const float *in,
                            float *out)
{
    return plan_run(&c->p, ctx, in, out);
}

const char *nnd_conv_impl(const struct nnd_conv *c)
{
    return c->p.impl;
}

/* ------------------------------------------------------------------- dense */

enum fa_status nnd_dense_new(struct nnd_engine *e, const struct nn_dense *d, const float *w,
                             const float *bias, struct nnd_dense **out)
{
    dnnl_memory_desc_t src_md, dst_md, w_any, w_user, b_md;
    dnnl_inner_product_desc_t op;
    struct nnd_dense *c;
    enum fa_status rc;
    int prev;

    c = fa_calloc(1, sizeof(*c));
    if (c == NULL)
        return FA_ERR_NOMEM;
    const dnnl_dims_t src_dims = {1, d->in}, dst_dims = {1, d->out}, b_dims = {d->out};
    const dnnl_dims_t wd = {d->out, d->in}, ws = {1, d->out}; /* TF [in, out] */
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_f32, dnnl_nc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_nc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_strides(&w_user, 2, wd, dnnl_f32, ws);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dnnl_f32, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_inner_product_forward_desc_init(&op, dnnl_forward_inference, &src_md, &w_any,
                                                 bias != NULL ? &b_md : NULL, &dst_md);
    if (s != dnnl_success) {
        fa_free(c);
        return st(s);
    }
    prev = single_thread_enter();
    rc = plan_build(e->eng, &op, d->act, 0.0f, &w_user, w, &b_md, bias, NULL, NULL, &c->p);
    single_thread_leave(prev);
    if (rc != FA_OK) {
        nnd_dense_free(c);
        return rc;
    }
    c->p.src_key = (struct mkey){2, d->in, 0, 0};
    c->p.dst_key = (struct mkey){12, d->out, 0, 0};
    *out = c;
    return FA_OK;
}

void nnd_dense_free(struct nnd_dense *c)
{
    if (c == NULL)
        return;
    plan_free(&c->p);
    fa_free(c);
}

enum fa_status nnd_dense_run(const struct nnd_dense *c, struct nnd_ctx *ctx, const float *in,
                             float *out)
{
    return plan_run(&c->p, ctx, in, out);
}

#endif
