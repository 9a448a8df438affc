/* The cheap ops (element-wise, pooling, padding, concat, means), plain C on
 * every backend: they are memory-bound and a small share of a frame. Each
 * follows TF.js's cpu backend numerics (see ref.c): add and max in float32,
 * avgpool summed in double and divided once, the mean divides each value by
 * the count in float32 and sums in double. Shapes are the caller's contract
 * (asserted): these run on tensors the nets planned, never on raw input. */
#include "nn/nn.h"

#include <assert.h>
#include <string.h>

#include "nn/kernels.h"

struct nn_tensor nn_tensor_arena(struct fa_arena *a, int32_t h, int32_t w, int32_t c)
{
    struct nn_tensor t = {.data = NULL, .n = 1, .h = h, .w = w, .c = c};
    size_t n;

    if (h <= 0 || w <= 0 || c <= 0)
        return t;
    if (__builtin_mul_overflow((size_t)h, (size_t)w, &n) ||
        __builtin_mul_overflow(n, (size_t)c, &n) || __builtin_mul_overflow(n, sizeof(float), &n))
        return t;
    t.data = fa_arena_alloc(a, n);
    return t;
}

struct nn_pad4 nn_pad_same(int32_t in_h, int32_t in_w, int32_t kh, int32_t kw, int32_t s)
{
    struct nn_pad4 p;
    int32_t oh = (in_h + s - 1) / s, ow = (in_w + s - 1) / s;
    int32_t th = (oh - 1) * s + kh - in_h, tw = (ow - 1) * s + kw - in_w;

    if (th < 0)
        th = 0;
    if (tw < 0)
        tw = 0;
    p.t = th / 2;
    p.b = th - p.t;
    p.l = tw / 2;
    p.r = tw - p.l;
    return p;
}

__attribute__((unused)) static inline bool same_shape(const struct nn_tensor *a,
                                                      const struct nn_tensor *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

void nn_add(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out,
            enum nn_act act)
{
    assert(same_shape(a, b) && same_shape(a, out));
    assert(act != NN_ACT_PRELU && act != NN_ACT_LEAKY);
    /* out may alias a or b: no restrict, one element read before written */
    const float *pa = a->data, *pb = b->data;
    float *po = out->data;
    size_t n = nn_tensor_len(a);

    if (act == NN_ACT_NONE) {
        for (size_t i = 0; i < n; i++)
            po[i] = pa[i] + pb[i];
        return;
    }
    if (act == NN_ACT_RELU) { /* the residual blocks' case: keep it vectorisable */
        for (size_t i = 0; i < n; i++) {
            float v = pa[i] + pb[i];
            po[i] = v > 0.0f ? v : 0.0f;
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        po[i] = nn_ref_act1(pa[i] + pb[i], act, 0.0f, 0.0f);
}

void nn_act_apply(struct nn_tensor *t, enum nn_act act, float alpha, const float *slopes)
{
    float *restrict p = t->data;
    size_t px = (size_t)t->n * t->h * t->w;
    int32_t c_n = t->c;

    if (act == NN_ACT_NONE)
        return;
    if (act == NN_ACT_PRELU) {
        assert(slopes != NULL);
        for (size_t i = 0; i < px; i++)
            for (int32_t c = 0; c < c_n; c++)
                p[i * c_n + c] = nn_ref_act1(p[i * c_n + c], act, alpha, slopes[c]);
        return;
    }
    size_t n = px * (size_t)c_n;
    for (size_t i = 0; i < n; i++)
        p[i] = nn_ref_act1(p[i], act, alpha, 0.0f);
}

/* The window of output (oy, ox) clipped to the input: rows [y0,y1), cols [x0,x1). */
struct win {
    int32_t y0, y1, x0, x1;
};

static struct win window(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                         int32_t oy, int32_t ox)
{
    struct win r;
    r.y0 = oy * s - pad.t;
    r.x0 = ox * s - pad.l;
    r.y1 = r.y0 + k < in->h ? r.y0 + k : in->h;
    r.x1 = r.x0 + k < in->w ? r.x0 + k : in->w;
    if (r.y0 < 0)
        r.y0 = 0;
    if (r.x0 < 0)
        r.x0 = 0;
    return r;
}

static void check_pool(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                       const struct nn_tensor *out)
{
    (void)in, (void)k, (void)s, (void)pad, (void)out;
    assert(in->n == 1 && out->n == 1 && k > 0 && s > 0);
    assert(out->c == in->c);
    assert(out->h == nn_out_dim(in->h, k, s, pad.t, pad.b));
    assert(out->w == nn_out_dim(in->w, k, s, pad.l, pad.r));
    assert(in->data != out->data);
}

/* A window that lies wholly in the padding (only possible with pad >= k)
 * gives 0 in both pools. */
void nn_maxpool(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                struct nn_tensor *out)
{
    check_pool(in, k, s, pad, out);
    const int32_t c_n = in->c;
    for (int32_t oy = 0; oy < out->h; oy++) {
        for (int32_t ox = 0; ox < out->w; ox++) {
            struct win r = window(in, k, s, pad, oy, ox);
            float *restrict o = out->data + ((size_t)oy * out->w + ox) * c_n;
            /* Start from the window's first element (never a padded one), then
             * a branch-free max over the rest, channel-innermost. */
            memcpy(o, in->data + ((size_t)r.y0 * in->w + r.x0) * c_n, (size_t)c_n * sizeof *o);
            for (int32_t y = r.y0; y < r.y1; y++) {
                for (int32_t x = r.x0; x < r.x1; x++) {
                    const float *restrict p = in->data + ((size_t)y * in->w + x) * c_n;
                    for (int32_t c = 0; c < c_n; c++)
                        o[c] = p[c] > o[c] ? p[c] : o[c];
                }
            }
        }
    }
}

void nn_avgpool(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                struct nn_tensor *out)
{
    check_pool(in, k, s, pad, out);
    const int32_t c_n = in->c;
    for (int32_t oy = 0; oy < out->h; oy++) {
        for (int32_t ox = 0; ox < out->w; ox++) {
            struct win r = window(in, k, s, pad, oy, ox);
            float *restrict o = out->data + ((size_t)oy * out->w + ox) * c_n;
            int32_t count = (r.y1 - r.y0) * (r.x1 - r.x0);
            if (r.y1 <= r.y0 || r.x1 <= r.x0)
                count = 0;
            for (int32_t c = 0; c < c_n; c++) {
                double sum = 0.0;
                for (int32_t y = r.y0; y < r.y1; y++)
                    for (int32_t x = r.x0; x < r.x1; x++)
                        sum += in->data[((size_t)y * in->w + x) * c_n + c];
                o[c] = count > 0 ? (float)(sum / count) : 0.0f;
            }
        }
    }
}

void nn_pad(const struct nn_tensor *in, struct nn_pad4 pad, float value, struct nn_tensor *out)
{
    assert(in->n == 1 && out->n == 1 && out->c == in->c);
    assert(pad.t >= 0 && pad.b >= 0 && pad.l >= 0 && pad.r >= 0);
    assert(out->h == in->h + pad.t + pad.b && out->w == in->w + pad.l + pad.r);
    assert(in->data != out->data);
    const size_t c_n = (size_t)in->c;
    const size_t row = (size_t)out->w * c_n;
    for (int32_t y = 0; y < out->h; y++) {
        float *restrict o = out->data + (size_t)y * row;
        int32_t iy = y - pad.t;
        if (iy < 0 || iy >= in->h) {
            for (size_t i = 0; i < row; i++)
                o[i] = value;
            continue;
        }
        for (size_t i = 0; i < (size_t)pad.l * c_n; i++)
            o[i] = value;
        memcpy(o + (size_t)pad.l * c_n, in->data + (size_t)iy * in->w * c_n,
               (size_t)in->w * c_n * sizeof(float));
        for (size_t i = (size_t)(pad.l + in->w) * c_n; i < row; i++)
            o[i] = value;
    }
}

void nn_concat_c(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out)
{
    assert(a->n == 1 && b->n == 1 && out->n == 1);
    assert(a->h == b->h && a->w == b->w && out->h == a->h && out->w == a->w);
    assert(out->c == a->c + b->c);
    assert(out->data != a->data && out->data != b->data);
    const size_t px = (size_t)a->h * a->w, ca = (size_t)a->c, cb = (size_t)b->c;
    for (size_t i = 0; i < px; i++) {
        memcpy(out->data + i * (ca + cb), a->data + i * ca, ca * sizeof(float));
        memcpy(out->data + i * (ca + cb) + ca, b->data + i * cb, cb * sizeof(float));
    }
}

void nn_global_avgpool(const struct nn_tensor *in, float *out)
{
    assert(in->n == 1 && in->h > 0 && in->w > 0);
    const size_t px = (size_t)in->h * in->w;
    const int32_t c_n = in->c;
    const float count = (float)px;
    for (int32_t c = 0; c < c_n; c++) {
        double sum = 0.0;
        for (size_t i = 0; i < px; i++)
            sum += in->data[i * c_n + c] / count;
        out[c] = (float)sum;
    }
}
