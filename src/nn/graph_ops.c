/* The ops of the TF.js graph runtime: for each, attribute checks and shape
 * inference at load (prepare), and the kernel call at run. Convolutions run
 * on the kernel layer (nn_conv_*), the cheap ops on its plain C helpers
 * (nn_maxpool, nn_concat_c); only what graphs alone
 * need is written here (N-d zero/constant padding, any-axis concat, an add
 * with a fused PReLU/LeakyReLU or a vector over the last dimension). A new op is one prepare/run
 * pair and one row of the table at the end; the loader (graph.c) does not change. Every check names
 * the node; nothing here trusts the model file. */
#include "nn/graph_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nn/kernels.h"

/* ---------------------------------------------------------------- helpers */

enum fa_status gr_fail(struct fa_errinfo *info, const struct gr_node *n, enum fa_status st,
                       const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* long TF names differ in their tail: keep the end */
    const char *name = n->name;
    size_t len = strlen(name);
    const char *dots = "";
    if (len > 64) {
        name += len - 61;
        dots = "...";
    }
    if (n->op == NULL || n->op[0] == '\0')
        fa_errinfo_set(info, "node '%s%s': %s", dots, name, msg);
    else
        fa_errinfo_set(info, "node '%s%s' (%s): %s", dots, name, n->op, msg);
    return st;
}

struct nn_tensor gr_tensor(const struct gr_run *r, int32_t i)
{
    const struct gr_node *n = &r->g->nodes[i];
    struct nn_tensor t = {.data = gr_ptr(r, i), .n = 1, .h = 1, .w = 1, .c = 1};
    if (n->rank == 4) {
        t.n = n->dim[0];
        t.h = n->dim[1];
        t.w = n->dim[2];
        t.c = n->dim[3];
    } else if (n->rank >= 1) {
        t.c = n->dim[n->rank - 1];
        t.w = (int32_t)(n->len / (size_t)t.c);
    }
    return t;
}

static void fmt_shape(char *buf, size_t cap, int32_t rank, const int32_t *dim)
{
    size_t used = 0;
    int w = snprintf(buf, cap, "[");
    used = w > 0 ? (size_t)w : 0;
    for (int32_t i = 0; i < rank && used < cap; i++) {
        w = snprintf(buf + used, cap - used, i ? ",%d" : "%d", (int)dim[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static const struct gr_node *input_node(const struct nn_graph *g, const struct gr_node *n,
                                        int32_t k)
{
    return &g->nodes[n->in[k]];
}

static bool is_const(const struct gr_node *n)
{
    return n->loc == GR_LOC_CONST;
}

/* Set the output shape, checking the element count. */
static enum fa_status set_shape(struct gr_node *n, int32_t rank, const int64_t *dim,
                                struct fa_errinfo *info)
{
    size_t len = 1;
    if (rank < 0 || rank > NN_GRAPH_MAX_RANK)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "output of rank %d unsupported", (int)rank);
    for (int32_t i = 0; i < rank; i++) {
        if (dim[i] < 1 || dim[i] > GR_MAX_DIM)
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "output dimension %d is %lld", (int)i,
                           (long long)dim[i]);
        if (__builtin_mul_overflow(len, (size_t)dim[i], &len) || len > GR_MAX_ELEMS)
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "output too large");
        n->dim[i] = (int32_t)dim[i];
    }
    n->rank = rank;
    n->len = len;
    return FA_OK;
}

static enum fa_status want_inputs(const struct gr_node *n, int32_t lo, int32_t hi,
                                  struct fa_errinfo *info)
{
    if (n->n_in < lo || n->n_in > hi)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "has %d inputs, expected %d..%d", (int)n->n_in,
                       (int)lo, (int)hi);
    return FA_OK;
}

/* Input k must be a tensor of rank 1..4 (an activation). */
static enum fa_status want_tensor(const struct nn_graph *g, const struct gr_node *n, int32_t k,
                                  int32_t rank, struct fa_errinfo *info)
{
    const struct gr_node *x = input_node(g, n, k);
    if (x->rank < 1 || x->rank > NN_GRAPH_MAX_RANK || (rank > 0 && x->rank != rank)) {
        char s[64];
        fmt_shape(s, sizeof s, x->rank, x->dim);
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "input %d has shape %s", (int)k, s);
    }
    if (rank == 4 && x->dim[0] != 1)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "batch %d unsupported (the runtime runs one)",
                       (int)x->dim[0]);
    return FA_OK;
}

static enum fa_status want_const(const struct nn_graph *g, const struct gr_node *n, int32_t k,
                                 const char *what, struct fa_errinfo *info)
{
    if (!is_const(input_node(g, n, k)))
        return gr_fail(info, n, FA_ERR_MODEL_OP, "%s (input %d) is not a constant", what, (int)k);
    return FA_OK;
}

/* The integers of constant input k (exact: int32 weights are held as floats). */
static enum fa_status const_ints(const struct nn_graph *g, const struct gr_node *n, int32_t k,
                                 const char *what, int64_t *out, int32_t cap, int32_t *cnt,
                                 struct fa_errinfo *info)
{
    enum fa_status rc = want_const(g, n, k, what, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *c = input_node(g, n, k);
    if (c->len > (size_t)cap)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "%s has %zu values, at most %d", what, c->len,
                       (int)cap);
    for (size_t i = 0; i < c->len; i++) {
        float v = c->cdata[i];
        if (!(v >= -(float)GR_MAX_DIM && v <= (float)GR_MAX_DIM) || v != floorf(v))
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "%s holds %g, not a small integer", what,
                           (double)v);
        out[i] = (int64_t)v;
    }
    *cnt = (int32_t)c->len;
    return FA_OK;
}

/* Constant input k holding one value per channel: len == c and every
 * dimension but the last is 1 (a [c], [1,1,c] or [1,1,1,c] vector). */
static enum fa_status want_vector(const struct nn_graph *g, const struct gr_node *n, int32_t k,
                                  const char *what, int32_t c, struct fa_errinfo *info)
{
    enum fa_status rc = want_const(g, n, k, what, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *v = input_node(g, n, k);
    bool ok = v->len == (size_t)c && v->rank >= 1 && v->dim[v->rank - 1] == c;
    if (!ok) {
        char s[64];
        fmt_shape(s, sizeof s, v->rank, v->dim);
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "%s '%.40s' has shape %s, expected [%d]", what,
                       v->name, s, (int)c);
    }
    return FA_OK;
}

/* An optional string attribute that must equal `want` when present. */
static enum fa_status want_str_attr(const struct gr_node *n, const char *key, const char *want,
                                    struct fa_errinfo *info)
{
    char s[32];
    enum fa_status rc = gr_attr_str(n->attrs, key, s, sizeof s);
    if (rc == FA_ERR_NOT_FOUND)
        return FA_OK;
    if (rc != FA_OK)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute %s malformed", key);
    if (strcmp(s, want) != 0)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "%s %s unsupported", key, s);
    return FA_OK;
}

/* strides / ksize of the form [1, s, s, 1]. */
static enum fa_status window_attr(const struct gr_node *n, const char *key, int32_t *out,
                                  struct fa_errinfo *info)
{
    int64_t v[4];
    int32_t cnt = 0;
    enum fa_status rc = gr_attr_ints(n->attrs, key, v, 4, &cnt);
    if (rc == FA_ERR_NOT_FOUND)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute %s missing", key);
    if (rc != FA_OK || cnt != 4)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute %s malformed", key);
    if (v[0] != 1 || v[3] != 1 || v[1] != v[2])
        return gr_fail(info, n, FA_ERR_MODEL_OP,
                       "%s [%lld,%lld,%lld,%lld] unsupported (need [1,s,s,1])", key,
                       (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
    if (v[1] < 1 || v[1] > 1024)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "%s %lld unsupported", key, (long long)v[1]);
    *out = (int32_t)v[1];
    return FA_OK;
}

enum pad_kind { PAD_SAME, PAD_VALID, PAD_EXPLICIT };

static enum fa_status padding_attr(const struct gr_node *n, enum pad_kind *out,
                                   struct fa_errinfo *info)
{
    char s[32];
    enum fa_status rc = gr_attr_str(n->attrs, "padding", s, sizeof s);
    if (rc == FA_ERR_NOT_FOUND)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute padding missing");
    if (rc != FA_OK)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute padding malformed");
    if (strcmp(s, "SAME") == 0)
        *out = PAD_SAME;
    else if (strcmp(s, "VALID") == 0)
        *out = PAD_VALID;
    else if (strcmp(s, "EXPLICIT") == 0)
        *out = PAD_EXPLICIT;
    else
        return gr_fail(info, n, FA_ERR_MODEL_OP, "padding '%s' unsupported", s);
    return FA_OK;
}

/* Window placement along both spatial axes; fills pad, returns out dims. */
static enum fa_status window_geometry(const struct gr_node *n, enum pad_kind kind,
                                      const int64_t *explicit8, int32_t in_h, int32_t in_w,
                                      int32_t kh, int32_t kw, int32_t s, struct nn_pad4 *pad,
                                      int64_t *oh, int64_t *ow, struct fa_errinfo *info)
{
    if (kind == PAD_SAME) {
        *pad = nn_pad_same(in_h, in_w, kh, kw, s);
    } else if (kind == PAD_VALID) {
        *pad = (struct nn_pad4){0, 0, 0, 0};
    } else {
        if (explicit8[0] || explicit8[1] || explicit8[6] || explicit8[7])
            return gr_fail(info, n, FA_ERR_MODEL_OP, "explicit padding of batch or channels");
        for (int i = 2; i < 6; i++)
            if (explicit8[i] < 0 || explicit8[i] >= (i < 4 ? kh : kw))
                return gr_fail(info, n, FA_ERR_MODEL_OP,
                               "explicit padding %lld not below the window",
                               (long long)explicit8[i]);
        *pad = (struct nn_pad4){(int32_t)explicit8[2], (int32_t)explicit8[3], (int32_t)explicit8[4],
                                (int32_t)explicit8[5]};
    }
    if (in_h + pad->t + pad->b < kh || in_w + pad->l + pad->r < kw)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "input %dx%d smaller than the %dx%d window",
                       (int)in_h, (int)in_w, (int)kh, (int)kw);
    *oh = nn_out_dim(in_h, kh, s, pad->t, pad->b);
    *ow = nn_out_dim(in_w, kw, s, pad->l, pad->r);
    return FA_OK;
}

static enum fa_status act_from_name(const struct gr_node *n, const char *s, enum nn_act *act,
                                    struct fa_errinfo *info)
{
    if (strcmp(s, "Relu") == 0)
        *act = NN_ACT_RELU;
    else if (strcmp(s, "Relu6") == 0)
        *act = NN_ACT_RELU6;
    else if (strcmp(s, "Prelu") == 0)
        *act = NN_ACT_PRELU;
    else if (strcmp(s, "LeakyRelu") == 0)
        *act = NN_ACT_LEAKY;
    else if (strcmp(s, "Sigmoid") == 0)
        *act = NN_ACT_SIGMOID;
    else
        return gr_fail(info, n, FA_ERR_MODEL_OP, "fused op '%s' unsupported", s);
    return FA_OK;
}

static float leaky_alpha(const struct gr_node *n, const char *key, struct fa_errinfo *info,
                         enum fa_status *rc)
{
    double a = 0.2; /* TF's default */
    enum fa_status st = gr_attr_float(n->attrs, key, &a);
    *rc = FA_OK;
    if (st != FA_OK && st != FA_ERR_NOT_FOUND)
        *rc = gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute %s malformed", key);
    else if (!isfinite(a))
        *rc = gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute %s not finite", key);
    return (float)a;
}

/* Element-wise loops of the fused ops. The kernel layer's nn_add takes no
 * PReLU slopes or LeakyReLU alpha and applies its activation through a call
 * per element; here the sum and the activation are one pass over memory,
 * eight lanes at a time (GCC/clang vector extensions: AVX on x86-64-v3,
 * two NEON registers elsewhere, no intrinsics) and branch-free, since the
 * sign of an activation is a coin flip for the branch predictor. Numerics
 * as TF.js, bit for bit: the sum rounded to float32, then x > 0 ? x :
 * slope * x in float32 (the sigmoid as nn_ref_act1). An output buffer is
 * either an input's (in place) or disjoint from it: the planner shares
 * whole buffers only, and each block of eight is loaded before it is
 * stored. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define V8 8
/* The helpers below pass v8f by value; they are static (inlined), so a
 * build without AVX (the sanitizer preset) has no ABI to keep stable. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

static inline v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st8(float *p, v8f v)
{
    memcpy(p, &v, sizeof v);
}

static inline v8f splat8(float x)
{
    return (v8f){x, x, x, x, x, x, x, x};
}

/* m ? a : b, lane by lane (m: all ones or all zeros) */
static inline v8f sel8(v8i m, v8f a, v8f b)
{
    return (v8f)((m & (v8i)a) | (~m & (v8i)b));
}

/* act(x) for the activations without per-channel slopes (s: alpha) */
static inline __attribute__((always_inline)) v8f act8(v8f x, enum nn_act act, v8f s)
{
    const v8f zero = splat8(0.0f), six = splat8(6.0f);
    switch (act) {
    case NN_ACT_RELU:
        return sel8(x > zero, x, zero);
    case NN_ACT_RELU6:
        return sel8(x > zero, sel8(x < six, x, six), zero);
    case NN_ACT_LEAKY:
    case NN_ACT_PRELU: /* s: the slopes of these lanes */
        return sel8(x > zero, x, s * x);
    default:
        return x;
    }
}

static inline float act1(float x, enum nn_act act, float s)
{
    switch (act) {
    case NN_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case NN_ACT_RELU6:
        return x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f;
    case NN_ACT_LEAKY:
    case NN_ACT_PRELU: {
        float y = s * x;
        return x > 0.0f ? x : y;
    }
    case NN_ACT_SIGMOID:
        return nn_ref_act1(x, NN_ACT_SIGMOID, 0.0f, 0.0f);
    default:
        return x;
    }
}

/* What one fused element-wise pass computes: o = act(a + b) where b is
 * NULL (no sum), a tensor like a (b_c == 0), or a vector over the last
 * dimension (b_c values, or 1); slopes over the last dimension (c values)
 * for PReLU. */
struct ew {
    float *o;
    const float *a, *b, *slopes;
    size_t n, c, b_c;
    enum nn_act act;
    float alpha;
};

static inline __attribute__((always_inline)) v8f ew_in8(const struct ew *e, size_t i, size_t k)
{
    v8f x = ld8(e->a + i + k);
    if (e->b == NULL)
        return x;
    if (e->b_c == 0)
        return x + ld8(e->b + i + k);
    return x + (e->b_c == 1 ? splat8(e->b[0]) : ld8(e->b + k));
}

static inline float ew_in1(const struct ew *e, size_t i, size_t k)
{
    float x = e->a[i + k];
    if (e->b == NULL)
        return x;
    return x + e->b[e->b_c == 0 ? i + k : e->b_c == 1 ? 0 : k];
}

/* the pass, specialised by the compiler for each constant act */
static inline __attribute__((always_inline)) void ew_run_act(const struct ew *e, enum nn_act act)
{
    const bool per_chan = act == NN_ACT_PRELU || (e->b != NULL && e->b_c > 1);
    if (act == NN_ACT_SIGMOID || (per_chan && e->c % V8 != 0)) {
        for (size_t i = 0; i < e->n; i += e->c)
            for (size_t k = 0; k < e->c; k++)
                e->o[i + k] =
                    act1(ew_in1(e, i, k), act, act == NN_ACT_PRELU ? e->slopes[k] : e->alpha);
        return;
    }
    if (per_chan) {
        for (size_t i = 0; i < e->n; i += e->c)
            for (size_t k = 0; k < e->c; k += V8)
                st8(e->o + i + k,
                    act8(ew_in8(e, i, k), act,
                         act == NN_ACT_PRELU ? ld8(e->slopes + k) : splat8(e->alpha)));
        return;
    }
    size_t i = 0;
    for (; i + V8 <= e->n; i += V8)
        st8(e->o + i, act8(ew_in8(e, i, 0), act, splat8(e->alpha)));
    for (; i < e->n; i++)
        e->o[i] = act1(ew_in1(e, i, 0), act, e->alpha);
}

static void ew_run(const struct ew *e)
{
    switch (e->act) {
    case NN_ACT_NONE:
        ew_run_act(e, NN_ACT_NONE);
        return;
    case NN_ACT_RELU:
        ew_run_act(e, NN_ACT_RELU);
        return;
    case NN_ACT_RELU6:
        ew_run_act(e, NN_ACT_RELU6);
        return;
    case NN_ACT_LEAKY:
        ew_run_act(e, NN_ACT_LEAKY);
        return;
    case NN_ACT_PRELU:
        ew_run_act(e, NN_ACT_PRELU);
        return;
    case NN_ACT_SIGMOID:
        ew_run_act(e, NN_ACT_SIGMOID);
        return;
    }
}

/* n's fused activation on x (b, b_c: a sum first, as struct ew), into o. */
static void apply_act(const struct gr_run *r, const struct gr_node *n, float *o, const float *x,
                      const float *b, size_t b_c)
{
    const struct ew e = {
        .o = o,
        .a = x,
        .b = b,
        .slopes = n->slope_node >= 0 ? gr_ptr(r, n->slope_node) : NULL,
        .n = n->len,
        .c = n->rank >= 1 ? (size_t)n->dim[n->rank - 1] : 1,
        .b_c = b_c,
        .act = n->act,
        .alpha = n->alpha,
    };
    if (e.act == NN_ACT_NONE && e.b == NULL) {
        if (o != x)
            memcpy(o, x, n->len * sizeof(float));
        return;
    }
    ew_run(&e);
}

static int32_t self_index(const struct gr_run *r, const struct gr_node *n)
{
    return (int32_t)(n - r->g->nodes);
}

/* ------------------------------------------------------- Identity, Reshape */

static enum fa_status prep_identity(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    enum fa_status rc = want_inputs(n, 1, 1, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0);
    n->rank = x->rank;
    memcpy(n->dim, x->dim, sizeof n->dim);
    n->len = x->len;
    n->is_int = x->is_int;
    return FA_OK;
}

static enum fa_status prep_reshape(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    int64_t shape[NN_GRAPH_MAX_RANK];
    int32_t cnt = 0, unknown = -1;
    size_t known = 1;
    enum fa_status rc = want_inputs(n, 2, 2, info);
    if (rc == FA_OK)
        rc = const_ints(g, n, 1, "shape", shape, NN_GRAPH_MAX_RANK, &cnt, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0);
    for (int32_t i = 0; i < cnt; i++) {
        if (shape[i] == -1 && unknown < 0) {
            unknown = i;
        } else if (shape[i] < 1) {
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "shape entry %lld unsupported",
                           (long long)shape[i]);
        } else if (__builtin_mul_overflow(known, (size_t)shape[i], &known)) {
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "shape too large");
        }
    }
    if (unknown >= 0) {
        if (x->len % known != 0)
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "%zu values do not fit the shape", x->len);
        shape[unknown] = (int64_t)(x->len / known);
        known = x->len;
    }
    if (known != x->len)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "reshapes %zu values into %zu", x->len, known);
    rc = set_shape(n, cnt, shape, info);
    n->is_int = x->is_int;
    return rc;
}

/* ---------------------------------------------------------- convolutions */

static enum fa_status prep_conv(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    const bool depthwise = strstr(n->op, "Depthwise") != NULL;
    const bool fused = strncmp(n->op, "_Fused", 6) == 0 || strncmp(n->op, "Fused", 5) == 0;
    char fops[3][32];
    int32_t n_fops = 0, stride = 1, n_args = 0;
    enum pad_kind pk;
    int64_t expl[8] = {0};
    enum fa_status rc;

    if (n->n_in < 2)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "has %d inputs", (int)n->n_in);
    if ((rc = want_tensor(g, n, 0, 4, info)) != FA_OK ||
        (rc = want_str_attr(n, "data_format", "NHWC", info)) != FA_OK ||
        (rc = window_attr(n, "strides", &stride, info)) != FA_OK ||
        (rc = padding_attr(n, &pk, info)) != FA_OK)
        return rc;
    int64_t dil[4];
    int32_t n_dil = 0;
    rc = gr_attr_ints(n->attrs, "dilations", dil, 4, &n_dil);
    if (rc == FA_OK) {
        for (int32_t i = 0; i < n_dil; i++)
            if (dil[i] != 1)
                return gr_fail(info, n, FA_ERR_MODEL_OP, "dilation %lld unsupported",
                               (long long)dil[i]);
    } else if (rc != FA_ERR_NOT_FOUND) {
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute dilations malformed");
    }
    if (pk == PAD_EXPLICIT) {
        int32_t cnt = 0;
        rc = gr_attr_ints(n->attrs, "explicit_paddings", expl, 8, &cnt);
        if (rc != FA_OK || cnt != 8)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "explicit_paddings malformed");
    }

    /* filter */
    if ((rc = want_const(g, n, 1, "filter", info)) != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0), *f = input_node(g, n, 1);
    const int32_t c_in = x->dim[3];
    if (f->rank != 4 || f->dim[2] != c_in) {
        char s[64];
        fmt_shape(s, sizeof s, f->rank, f->dim);
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR,
                       "filter '%.40s' has shape %s, expected [kh,kw,%d,%s]", f->name, s, (int)c_in,
                       depthwise ? "1" : "cout");
    }
    if (depthwise && f->dim[3] != 1)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "channel multiplier %d unsupported",
                       (int)f->dim[3]);
    const int32_t kh = f->dim[0], kw = f->dim[1], c_out = depthwise ? c_in : f->dim[3];

    /* fused ops and their arguments */
    n->act = NN_ACT_NONE;
    n->bias_node = -1;
    n->slope_node = -1;
    if (fused) {
        rc = gr_attr_strs(n->attrs, "fused_ops", fops, 3, &n_fops);
        if (rc == FA_ERR_NOT_FOUND)
            n_fops = 0;
        else if (rc != FA_OK)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute fused_ops malformed");
        if (n_fops > 2 || (n_fops >= 1 && strcmp(fops[0], "BiasAdd") != 0))
            return gr_fail(info, n, FA_ERR_MODEL_OP, "fused ops [%s%s%s] unsupported",
                           n_fops > 0 ? fops[0] : "", n_fops > 1 ? "," : "",
                           n_fops > 1 ? fops[1] : "");
        n_args = n_fops >= 1 ? 1 : 0;
        if (n_fops == 2) {
            if ((rc = act_from_name(n, fops[1], &n->act, info)) != FA_OK)
                return rc;
            if (n->act == NN_ACT_PRELU)
                n_args = 2;
            if (n->act == NN_ACT_LEAKY) {
                n->alpha = leaky_alpha(n, "leakyrelu_alpha", info, &rc);
                if (rc != FA_OK)
                    return rc;
            }
        }
        int64_t num_args;
        rc = gr_attr_int(n->attrs, "num_args", &num_args);
        if (rc == FA_OK && num_args != n_args)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "num_args %lld, fused ops need %d",
                           (long long)num_args, (int)n_args);
        if (rc != FA_OK && rc != FA_ERR_NOT_FOUND)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute num_args malformed");
    }
    if ((rc = want_inputs(n, 2 + n_args, 2 + n_args, info)) != FA_OK)
        return rc;
    if (n_args >= 1) {
        if ((rc = want_vector(g, n, 2, "bias", c_out, info)) != FA_OK)
            return rc;
        n->bias_node = n->in[2];
    }
    if (n_args == 2) {
        if ((rc = want_vector(g, n, 3, "prelu alpha", c_out, info)) != FA_OK)
            return rc;
        n->slope_node = n->in[3];
    }

    struct nn_pad4 pad;
    int64_t oh, ow;
    rc = window_geometry(n, pk, expl, x->dim[1], x->dim[2], kh, kw, stride, &pad, &oh, &ow, info);
    if (rc != FA_OK)
        return rc;
    if (pad.t >= kh || pad.b >= kh || pad.l >= kw || pad.r >= kw)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "padding as large as the window unsupported");
    n->conv = (struct nn_conv_desc){.in_h = x->dim[1],
                                    .in_w = x->dim[2],
                                    .kh = kh,
                                    .kw = kw,
                                    .cin = c_in,
                                    .cout = c_out,
                                    .stride = stride,
                                    .pad = pad,
                                    .depthwise = depthwise};
    int64_t shape[4] = {1, oh, ow, c_out};
    return set_shape(n, 4, shape, info);
}

static enum fa_status setup_conv(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    struct nn_conv_desc d = n->conv;
    d.act = n->act;
    d.alpha = n->alpha;
    d.prelu = n->slope_node >= 0 ? g->nodes[n->slope_node].cdata : NULL;
    const float *w = g->nodes[n->in[1]].cdata;
    const float *b = n->bias_node >= 0 ? g->nodes[n->bias_node].cdata : NULL;
    enum fa_status rc = nn_conv_new(g->be, &d, w, b, &n->layer);
    if (rc == FA_ERR_ARG)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "convolution refused by the kernel layer");
    if (rc != FA_OK)
        return gr_fail(info, n, rc, "%s", fa_status_str(rc));
    int32_t oh, ow, oc;
    nn_conv_out_shape(n->layer, &oh, &ow, &oc);
    if (oh != n->dim[1] || ow != n->dim[2] || oc != n->dim[3])
        return gr_fail(info, n, FA_ERR_INTERNAL, "kernel output shape disagrees");
    return FA_OK;
}

static void cleanup_conv(struct gr_node *n)
{
    nn_conv_free(n->layer);
    n->layer = NULL;
}

static enum fa_status run_conv(const struct gr_run *r, const struct gr_node *n)
{
    struct nn_tensor in = gr_tensor(r, n->in[0]), out = gr_tensor(r, self_index(r, n));
    return nn_conv_run(n->layer, r->ctx, &in, &out);
}

/* ------------------------------------------------------- element-wise ops */

static enum fa_status prep_biasadd(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    enum fa_status rc = want_inputs(n, 2, 2, info);
    if (rc == FA_OK)
        rc = want_tensor(g, n, 0, 0, info);
    if (rc == FA_OK)
        rc = want_str_attr(n, "data_format", "NHWC", info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0);
    if ((rc = want_vector(g, n, 1, "bias", x->dim[x->rank - 1], info)) != FA_OK)
        return rc;
    n->add_mode = GR_ADD_CHANS;
    n->data_in = 0;
    n->bias_node = n->in[1];
    n->act = NN_ACT_NONE;
    n->slope_node = -1;
    n->rank = x->rank;
    memcpy(n->dim, x->dim, sizeof n->dim);
    n->len = x->len;
    return FA_OK;
}

static bool same_shape(const struct gr_node *a, const struct gr_node *b)
{
    if (a->rank != b->rank)
        return false;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

/* b is a constant scalar or a vector over a's last dimension. */
static bool chans_of(const struct gr_node *a, const struct gr_node *b)
{
    if (!is_const(b) || a->rank < 1 || b->rank > a->rank)
        return false;
    if (b->len == 1)
        return true;
    return b->rank >= 1 && b->len == (size_t)a->dim[a->rank - 1] &&
           b->dim[b->rank - 1] == a->dim[a->rank - 1];
}

static enum fa_status prep_add(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    enum fa_status rc = want_inputs(n, 2, 2, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *a = input_node(g, n, 0), *b = input_node(g, n, 1);
    n->act = NN_ACT_NONE;
    n->slope_node = -1;
    n->bias_node = -1;
    const struct gr_node *x = a;
    if (same_shape(a, b) && a->rank >= 1 && a->rank <= NN_GRAPH_MAX_RANK) {
        n->add_mode = GR_ADD_SAME;
    } else if (chans_of(a, b)) {
        n->add_mode = GR_ADD_CHANS;
        n->data_in = 0;
        n->bias_node = n->in[1];
    } else if (chans_of(b, a)) {
        n->add_mode = GR_ADD_CHANS;
        n->data_in = 1;
        n->bias_node = n->in[0];
        x = b;
    } else {
        char sa[64], sb[64];
        fmt_shape(sa, sizeof sa, a->rank, a->dim);
        fmt_shape(sb, sizeof sb, b->rank, b->dim);
        return gr_fail(info, n, FA_ERR_MODEL_OP, "broadcasting %s + %s unsupported", sa, sb);
    }
    if (x->rank < 1 || x->rank > NN_GRAPH_MAX_RANK)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "input of rank %d", (int)x->rank);
    n->rank = x->rank;
    memcpy(n->dim, x->dim, sizeof n->dim);
    n->len = x->len;
    return FA_OK;
}

static enum fa_status run_add(const struct gr_run *r, const struct gr_node *n)
{
    float *o = gr_ptr(r, self_index(r, n)); /* may be an input: read before written */
    if (n->add_mode == GR_ADD_SAME)
        apply_act(r, n, o, gr_ptr(r, n->in[0]), gr_ptr(r, n->in[1]), 0);
    else
        apply_act(r, n, o, gr_ptr(r, n->in[n->data_in]), gr_ptr(r, n->bias_node),
                  r->g->nodes[n->bias_node].len);
    return FA_OK;
}

static enum fa_status prep_act(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    const bool prelu = strcmp(n->op, "Prelu") == 0;
    enum fa_status rc = want_inputs(n, prelu ? 2 : 1, prelu ? 2 : 1, info);
    if (rc == FA_OK)
        rc = want_tensor(g, n, 0, 0, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0);
    n->slope_node = -1;
    n->alpha = 0.0f;
    if (strcmp(n->op, "Relu") == 0) {
        n->act = NN_ACT_RELU;
    } else if (strcmp(n->op, "Relu6") == 0) {
        n->act = NN_ACT_RELU6;
    } else if (strcmp(n->op, "Sigmoid") == 0) {
        n->act = NN_ACT_SIGMOID;
    } else if (strcmp(n->op, "LeakyRelu") == 0) {
        n->act = NN_ACT_LEAKY;
        n->alpha = leaky_alpha(n, "alpha", info, &rc);
        if (rc != FA_OK)
            return rc;
    } else {
        n->act = NN_ACT_PRELU;
        if ((rc = want_vector(g, n, 1, "alpha", x->dim[x->rank - 1], info)) != FA_OK)
            return rc;
        n->slope_node = n->in[1];
    }
    n->rank = x->rank;
    memcpy(n->dim, x->dim, sizeof n->dim);
    n->len = x->len;
    return FA_OK;
}

static enum fa_status run_act(const struct gr_run *r, const struct gr_node *n)
{
    apply_act(r, n, gr_ptr(r, self_index(r, n)), gr_ptr(r, n->in[0]), NULL, 0);
    return FA_OK;
}

/* ---------------------------------------------------------------- MaxPool */

static enum fa_status prep_maxpool(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    enum pad_kind pk;
    int32_t k = 0, s = 0;
    enum fa_status rc = want_inputs(n, 1, 1, info);
    if (rc == FA_OK)
        rc = want_tensor(g, n, 0, 4, info);
    if (rc == FA_OK)
        rc = want_str_attr(n, "data_format", "NHWC", info);
    if (rc == FA_OK)
        rc = window_attr(n, "ksize", &k, info);
    if (rc == FA_OK)
        rc = window_attr(n, "strides", &s, info);
    if (rc == FA_OK)
        rc = padding_attr(n, &pk, info);
    if (rc != FA_OK)
        return rc;
    if (pk == PAD_EXPLICIT)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "explicit padding unsupported");
    const struct gr_node *x = input_node(g, n, 0);
    int64_t oh, ow;
    rc = window_geometry(n, pk, NULL, x->dim[1], x->dim[2], k, k, s, &n->pool_pad, &oh, &ow, info);
    if (rc != FA_OK)
        return rc;
    n->pool_k = k;
    n->pool_s = s;
    int64_t shape[4] = {1, oh, ow, x->dim[3]};
    return set_shape(n, 4, shape, info);
}

static enum fa_status run_maxpool(const struct gr_run *r, const struct gr_node *n)
{
    struct nn_tensor in = gr_tensor(r, n->in[0]), out = gr_tensor(r, self_index(r, n));
    nn_maxpool(&in, n->pool_k, n->pool_s, n->pool_pad, &out);
    return FA_OK;
}

/* -------------------------------------------------------------- Pad, PadV2 */

static enum fa_status prep_pad(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    const bool v2 = strcmp(n->op, "PadV2") == 0;
    int64_t p[2 * NN_GRAPH_MAX_RANK];
    int32_t cnt = 0;
    enum fa_status rc = want_inputs(n, v2 ? 3 : 2, v2 ? 3 : 2, info);
    if (rc == FA_OK)
        rc = want_tensor(g, n, 0, 0, info);
    if (rc == FA_OK)
        rc = const_ints(g, n, 1, "paddings", p, 2 * NN_GRAPH_MAX_RANK, &cnt, info);
    if (rc != FA_OK)
        return rc;
    const struct gr_node *x = input_node(g, n, 0);
    if (cnt != 2 * x->rank)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "%d paddings for a tensor of rank %d",
                       (int)cnt, (int)x->rank);
    n->pad_value = 0.0f;
    if (v2) {
        if ((rc = want_const(g, n, 2, "constant_values", info)) != FA_OK)
            return rc;
        const struct gr_node *v = input_node(g, n, 2);
        if (v->len != 1)
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "constant_values has %zu values", v->len);
        n->pad_value = v->cdata[0];
    }
    int64_t shape[NN_GRAPH_MAX_RANK];
    const int32_t off = NN_GRAPH_MAX_RANK - x->rank;
    memset(n->pads, 0, sizeof n->pads);
    for (int32_t i = 0; i < x->rank; i++) {
        if (p[2 * i] < 0 || p[2 * i + 1] < 0)
            return gr_fail(info, n, FA_ERR_MODEL_OP, "negative padding unsupported");
        n->pads[off + i][0] = (int32_t)p[2 * i];
        n->pads[off + i][1] = (int32_t)p[2 * i + 1];
        shape[i] = (int64_t)x->dim[i] + p[2 * i] + p[2 * i + 1];
    }
    return set_shape(n, x->rank, shape, info);
}

/* dims of a rank-r shape on the 4-D view (leading 1s) */
static void view4(const struct gr_node *n, int32_t d[4])
{
    const int32_t off = 4 - n->rank;
    for (int32_t i = 0; i < 4; i++)
        d[i] = i < off ? 1 : n->dim[i - off];
}

static enum fa_status run_pad(const struct gr_run *r, const struct gr_node *n)
{
    const struct gr_node *xn = &r->g->nodes[n->in[0]];
    const float *x = gr_ptr(r, n->in[0]);
    float *o = gr_ptr(r, self_index(r, n));
    int32_t id[4], od[4];
    view4(xn, id);
    view4(n, od);
    const int32_t(*p)[2] = n->pads;
    const float v = n->pad_value;
    const size_t row = (size_t)od[3];
    for (int32_t a = 0; a < od[0]; a++) {
        for (int32_t b = 0; b < od[1]; b++) {
            for (int32_t c = 0; c < od[2]; c++) {
                float *orow = o + (((size_t)a * od[1] + b) * od[2] + c) * row;
                int32_t ia = a - p[0][0], ib = b - p[1][0], ic = c - p[2][0];
                if (ia < 0 || ia >= id[0] || ib < 0 || ib >= id[1] || ic < 0 || ic >= id[2]) {
                    for (size_t k = 0; k < row; k++)
                        orow[k] = v;
                    continue;
                }
                const float *irow = x + (((size_t)ia * id[1] + ib) * id[2] + ic) * id[3];
                size_t before = (size_t)p[3][0];
                for (size_t k = 0; k < before; k++)
                    orow[k] = v;
                memcpy(orow + before, irow, (size_t)id[3] * sizeof(float));
                for (size_t k = before + (size_t)id[3]; k < row; k++)
                    orow[k] = v;
            }
        }
    }
    return FA_OK;
}

/* --------------------------------------------------------------- ConcatV2 */

static enum fa_status prep_concat(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info)
{
    int64_t axis;
    int32_t cnt = 0;
    enum fa_status rc = want_inputs(n, 2, INT32_MAX, info);
    if (rc != FA_OK)
        return rc;
    const int32_t n_data = n->n_in - 1;
    int64_t attr_n;
    rc = gr_attr_int(n->attrs, "N", &attr_n);
    if (rc == FA_OK && attr_n != n_data)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "N is %lld for %d inputs", (long long)attr_n,
                       (int)n_data);
    if (rc != FA_OK && rc != FA_ERR_NOT_FOUND)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attribute N malformed");
    if ((rc = const_ints(g, n, n_data, "axis", &axis, 1, &cnt, info)) != FA_OK)
        return rc;
    if (cnt != 1)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "axis is not a scalar");
    for (int32_t k = 0; k < n_data; k++)
        if ((rc = want_tensor(g, n, k, 0, info)) != FA_OK)
            return rc;
    const struct gr_node *x0 = input_node(g, n, 0);
    const int32_t rank = x0->rank;
    if (axis < -rank || axis >= rank)
        return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "axis %lld for rank %d", (long long)axis,
                       (int)rank);
    if (axis < 0)
        axis += rank;
    int64_t shape[NN_GRAPH_MAX_RANK];
    for (int32_t i = 0; i < rank; i++)
        shape[i] = i == axis ? 0 : x0->dim[i];
    for (int32_t k = 0; k < n_data; k++) {
        const struct gr_node *x = input_node(g, n, k);
        bool ok = x->rank == rank;
        for (int32_t i = 0; ok && i < rank; i++)
            ok = i == axis || x->dim[i] == x0->dim[i];
        if (!ok) {
            char s0[64], s[64];
            fmt_shape(s0, sizeof s0, x0->rank, x0->dim);
            fmt_shape(s, sizeof s, x->rank, x->dim);
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "cannot concatenate %s and %s on %lld", s0,
                           s, (long long)axis);
        }
        shape[axis] += x->dim[axis];
        if (shape[axis] > GR_MAX_DIM)
            return gr_fail(info, n, FA_ERR_MODEL_TENSOR, "output too large");
    }
    n->axis = (int32_t)axis;
    return set_shape(n, rank, shape, info);
}

static enum fa_status run_concat(const struct gr_run *r, const struct gr_node *n)
{
    const int32_t self = self_index(r, n), n_data = n->n_in - 1;
    if (n_data == 2 && n->rank == 4 && n->axis == 3 && n->dim[0] == 1) {
        struct nn_tensor a = gr_tensor(r, n->in[0]), b = gr_tensor(r, n->in[1]);
        struct nn_tensor out = gr_tensor(r, self);
        nn_concat_c(&a, &b, &out);
        return FA_OK;
    }
    size_t outer = 1, inner = 1;
    for (int32_t i = 0; i < n->axis; i++)
        outer *= (size_t)n->dim[i];
    for (int32_t i = n->axis + 1; i < n->rank; i++)
        inner *= (size_t)n->dim[i];
    float *o = gr_ptr(r, self);
    for (size_t a = 0; a < outer; a++) {
        for (int32_t k = 0; k < n_data; k++) {
            const struct gr_node *x = &r->g->nodes[n->in[k]];
            size_t chunk = (size_t)x->dim[n->axis] * inner;
            memcpy(o, gr_ptr(r, n->in[k]) + a * chunk, chunk * sizeof(float));
            o += chunk;
        }
    }
    return FA_OK;
}

/* ------------------------------------------------------------------ table */

static const struct gr_opdef ops[] = {
    {"Identity", GR_F_ALIAS, prep_identity, NULL, NULL, NULL},
    {"Reshape", GR_F_ALIAS, prep_reshape, NULL, NULL, NULL},
    {"Conv2D", GR_F_CONV, prep_conv, setup_conv, cleanup_conv, run_conv},
    {"_FusedConv2D", GR_F_CONV, prep_conv, setup_conv, cleanup_conv, run_conv},
    {"DepthwiseConv2dNative", GR_F_CONV, prep_conv, setup_conv, cleanup_conv, run_conv},
    {"FusedDepthwiseConv2dNative", GR_F_CONV, prep_conv, setup_conv, cleanup_conv, run_conv},
    {"BiasAdd", GR_F_INPLACE | GR_F_ADD, prep_biasadd, NULL, NULL, run_add},
    {"Add", GR_F_INPLACE | GR_F_ADD, prep_add, NULL, NULL, run_add},
    {"AddV2", GR_F_INPLACE | GR_F_ADD, prep_add, NULL, NULL, run_add},
    {"Relu", GR_F_INPLACE | GR_F_ACT, prep_act, NULL, NULL, run_act},
    {"Relu6", GR_F_INPLACE | GR_F_ACT, prep_act, NULL, NULL, run_act},
    {"Sigmoid", GR_F_INPLACE | GR_F_ACT, prep_act, NULL, NULL, run_act},
    {"LeakyRelu", GR_F_INPLACE | GR_F_ACT, prep_act, NULL, NULL, run_act},
    {"Prelu", GR_F_INPLACE | GR_F_ACT, prep_act, NULL, NULL, run_act},
    {"MaxPool", 0, prep_maxpool, NULL, NULL, run_maxpool},
    {"Pad", 0, prep_pad, NULL, NULL, run_pad},
    {"PadV2", 0, prep_pad, NULL, NULL, run_pad},
    {"ConcatV2", 0, prep_concat, NULL, NULL, run_concat},
};

/* ------------------------------------------------- the fused residual block */

static void cleanup_block(struct gr_node *n)
{
    nn_block_free(n->block);
    n->block = NULL;
}

static enum fa_status run_block(const struct gr_run *r, const struct gr_node *n)
{
    return nn_block_run(n->block, r->ctx, gr_ptr(r, n->in[0]),
                        n->n_in > 1 ? gr_ptr(r, n->in[1]) : NULL, gr_ptr(r, self_index(r, n)));
}

const struct gr_opdef gr_op_block = {"_FaResidualBlock", GR_F_INPLACE_RES, NULL, NULL,
                                     cleanup_block,      run_block};

const struct gr_opdef *gr_op_find(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    return NULL;
}
