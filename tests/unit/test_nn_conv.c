/* Convolution and dense layers. Three levels of checks:
 *  1. the reference kernels (nn/ref.c) against a naive zero-padded formula
 *     with double accumulation, written here from the spec, plus a small
 *     case computed by hand (SAME stride 2 pads only bottom/right);
 *  2. the fast backend (oneDNN) against the reference on random data and odd
 *     shapes, every activation, by NMSE and max abs error (ggml's
 *     test-backend-ops); the checker is shown to fail on a perturbed weight;
 *  3. argument errors, fault injection on creation, two threads running the
 *     same layers side by side with one thread each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn_fixture.h"

#define NMSE_MAX 1e-10
#define MAXABS_MAX 1e-4 /* relative to max(1, max |ref|) */

/* ------------------------------------------------------------------ helpers */

static float *rnd_buf(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float) + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd() * scale;
    return p;
}

struct cmp {
    double nmse, maxabs, maxref;
};

static struct cmp compare(const float *got, const float *want, size_t n)
{
    double num = 0.0, den = 0.0;
    struct cmp c = {0};
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
        if (fabs(d) > c.maxabs || d != d)
            c.maxabs = d != d ? INFINITY : fabs(d);
        if (fabs(want[i]) > c.maxref)
            c.maxref = fabs(want[i]);
    }
    c.nmse = den > 0.0 ? num / den : num;
    if (num != num)
        c.nmse = INFINITY;
    return c;
}

static bool cmp_ok(struct cmp c)
{
    return c.nmse < NMSE_MAX && c.maxabs <= MAXABS_MAX * (c.maxref > 1.0 ? c.maxref : 1.0);
}

static struct nn_tensor T(float *d, int32_t h, int32_t w, int32_t c) {
    return (struct nn_tensor){.data = d, .n = 1, .h = h, .w = w, .c = c};
}

static const char *
act_name(enum nn_act a)
{
    static const char *n[] = {"none", "relu", "relu6", "leaky", "prelu", "sigmoid"};
    return n[a];
}

/* The spec's formula (ARCHITECTURE.md section 1), zero padding materialised,
 * double accumulation, bias, activation in double. */
static void naive_conv(const struct nn_conv_desc *d, const float *in, const float *w,
                       const float *b, float *out, int32_t oh, int32_t ow)
{
    for (int32_t y = 0; y < oh; y++)
        for (int32_t x = 0; x < ow; x++)
            for (int32_t o = 0; o < d->cout; o++) {
                double acc = 0.0;
                for (int32_t i = 0; i < d->kh; i++)
                    for (int32_t j = 0; j < d->kw; j++) {
                        int32_t iy = y * d->stride + i - d->pad.t;
                        int32_t ix = x * d->stride + j - d->pad.l;
                        bool inside = iy >= 0 && iy < d->in_h && ix >= 0 && ix < d->in_w;
                        if (d->depthwise) {
                            double v = inside ? in[((size_t)iy * d->in_w + ix) * d->cin + o] : 0;
                            acc += v * w[((size_t)i * d->kw + j) * d->cin + o];
                            continue;
                        }
                        for (int32_t c = 0; c < d->cin; c++) {
                            double v = inside ? in[((size_t)iy * d->in_w + ix) * d->cin + c] : 0;
                            acc += v * w[(((size_t)i * d->kw + j) * d->cin + c) * d->cout + o];
                        }
                    }
                acc += b != NULL ? b[o] : 0.0;
                switch (d->act) {
                case NN_ACT_RELU:
                    acc = acc > 0 ? acc : 0;
                    break;
                case NN_ACT_RELU6:
                    acc = acc > 0 ? (acc < 6 ? acc : 6) : 0;
                    break;
                case NN_ACT_LEAKY:
                    acc = acc > 0 ? acc : d->alpha * acc;
                    break;
                case NN_ACT_PRELU:
                    acc = acc > 0 ? acc : d->prelu[o] * acc;
                    break;
                case NN_ACT_SIGMOID:
                    acc = 1.0 / (1.0 + exp(-acc));
                    break;
                case NN_ACT_NONE:
                    break;
                }
                out[((size_t)y * ow + x) * d->cout + o] = (float)acc;
            }
}

/* A layer case: shape and padding; acts are looped over. */
enum padmode { VALID, SAME, EXPL };
struct ccase {
    int32_t h, w, kh, kw, cin, cout, s;
    enum padmode pm;
    struct nn_pad4 pad; /* EXPL */
    bool dw;
};

static const struct ccase g_cases[] = {
    {7, 5, 1, 1, 3, 5, 1, VALID, {0}, false},
    {9, 8, 1, 1, 13, 17, 2, SAME, {0}, false},
    {11, 13, 3, 3, 3, 16, 1, SAME, {0}, false},
    {12, 10, 3, 3, 5, 7, 2, SAME, {0}, false}, /* even, stride 2: bottom/right only */
    {13, 11, 3, 3, 9, 10, 2, SAME, {0}, false},
    {10, 9, 3, 3, 4, 6, 1, VALID, {0}, false},
    {8, 7, 3, 3, 3, 9, 1, EXPL, {.t = 0, .b = 2, .l = 1, .r = 0}, false},
    {9, 9, 5, 5, 6, 11, 1, SAME, {0}, false},
    {16, 15, 5, 5, 3, 8, 2, SAME, {0}, false},
    {17, 17, 5, 5, 5, 3, 2, VALID, {0}, false},
    {6, 6, 3, 1, 4, 4, 1, EXPL, {.t = 1, .b = 1, .l = 0, .r = 0}, false},
    {8, 8, 2, 2, 3, 5, 2, VALID, {0}, false},
    {19, 19, 3, 3, 64, 64, 1, SAME, {0}, false},
    {13, 13, 1, 1, 512, 25, 1, VALID, {0}, false},
    {1, 1, 1, 1, 1, 1, 1, VALID, {0}, false},
    {10, 10, 3, 3, 13, 13, 1, SAME, {0}, true},
    {12, 12, 3, 3, 32, 32, 2, SAME, {0}, true},
    {15, 13, 3, 3, 9, 9, 2, SAME, {0}, true},
    {9, 11, 5, 5, 24, 24, 1, SAME, {0}, true},
    {16, 16, 5, 5, 7, 7, 2, SAME, {0}, true},
    {8, 9, 3, 3, 17, 17, 1, EXPL, {.t = 1, .b = 0, .l = 0, .r = 2}, true},
    {1, 1, 1, 1, 3, 3, 1, VALID, {0}, true},
};

static struct nn_conv_desc make_desc(const struct ccase *c, enum nn_act act, const float *slopes)
{
    struct nn_conv_desc d = {
        .in_h = c->h,
        .in_w = c->w,
        .kh = c->kh,
        .kw = c->kw,
        .cin = c->cin,
        .cout = c->cout,
        .stride = c->s,
        .depthwise = c->dw,
        .act = act,
        .alpha = 0.1f,
        .prelu = act == NN_ACT_PRELU ? slopes : NULL,
    };
    if (c->pm == SAME)
        d.pad = nn_pad_same(c->h, c->w, c->kh, c->kw, c->s);
    else if (c->pm == EXPL)
        d.pad = c->pad;
    return d;
}

/* Weights, bias, slopes and input of one case. */
struct data {
    float *w, *b, *slopes, *in;
    size_t wn, inn;
};

static struct data make_data(const struct ccase *c)
{
    struct data x;
    x.wn = (size_t)c->kh * c->kw * c->cin * (c->dw ? 1 : (size_t)c->cout);
    x.inn = (size_t)c->h * c->w * c->cin;
    x.w = rnd_buf(x.wn, 1.0f / sqrtf((float)(c->kh * c->kw * (c->dw ? 1 : c->cin))));
    x.b = rnd_buf((size_t)c->cout, 0.5f);
    x.slopes = rnd_buf((size_t)c->cout, 0.5f);
    for (int32_t i = 0; i < c->cout; i++)
        x.slopes[i] = fabsf(x.slopes[i]);
    x.in = rnd_buf(x.inn, 2.0f);
    return x;
}

static void free_data(struct data *x)
{
    free(x->w);
    free(x->b);
    free(x->slopes);
    free(x->in);
}

/* Build the layer on `be`, run it, return the output (malloc'd). */
static float *run_conv(struct nn_backend *be, struct nn_ctx *ctx, const struct nn_conv_desc *d,
                       const float *w, const float *b, const float *in, int32_t *oh, int32_t *ow)
{
    struct nn_conv *k = NULL;
    int32_t oc;
    assert_int_equal(nn_conv_new(be, d, w, b, &k), FA_OK);
    nn_conv_out_shape(k, oh, ow, &oc);
    assert_int_equal(oc, d->cout);
    size_t on = (size_t)*oh * *ow * oc;
    float *out = malloc(on * sizeof(float));
    assert_non_null(out);
    for (size_t i = 0; i < on; i++)
        out[i] = NAN; /* every element must be written */
    struct nn_tensor ti = T((float *)in, d->in_h, d->in_w, d->cin), to = T(out, *oh, *ow, oc);
    assert_int_equal(nn_conv_run(k, ctx, &ti, &to), FA_OK);
    nn_conv_free(k);
    return out;
}

/* ------------------------------------------------------- reference kernels */

static void test_ref_hand_same_stride2(void **state)
{
    (void)state;
    /* 4x4 ones, 3x3 ones, stride 2 SAME: pad only bottom/right, so the
     * windows cover 9, 6, 6, 4 input pixels */
    float in[16], w[9], out[4];
    for (int i = 0; i < 16; i++)
        in[i] = 1.0f;
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    struct nn_conv_desc d = {.in_h = 4,
                             .in_w = 4,
                             .kh = 3,
                             .kw = 3,
                             .cin = 1,
                             .cout = 1,
                             .stride = 2,
                             .pad = nn_pad_same(4, 4, 3, 3, 2)};
    const float bias = 0.5f;
    struct nn_conv *k;
    assert_int_equal(nn_conv_new(g_ref, &d, w, &bias, &k), FA_OK);
    struct nn_tensor ti = T(in, 4, 4, 1), to = T(out, 2, 2, 1);
    assert_int_equal(nn_conv_run(k, g_ref_ctx, &ti, &to), FA_OK);
    assert_true(out[0] == 9.5f && out[1] == 6.5f && out[2] == 6.5f && out[3] == 4.5f);
    assert_int_equal(nn_conv_macs(k), 4 * 9);
    nn_conv_free(k);

    /* dense 1x1 with two in / two out channels and relu: W[c][o] order */
    float in2[2] = {1.0f, 2.0f}, w2[4] = {1.0f, -1.0f, 10.0f, -10.0f}, out2[2];
    struct nn_conv_desc d2 = {.in_h = 1,
                              .in_w = 1,
                              .kh = 1,
                              .kw = 1,
                              .cin = 2,
                              .cout = 2,
                              .stride = 1,
                              .act = NN_ACT_RELU};
    assert_int_equal(nn_conv_new(g_ref, &d2, w2, NULL, &k), FA_OK);
    struct nn_tensor ti2 = T(in2, 1, 1, 2), to2 = T(out2, 1, 1, 2);
    assert_int_equal(nn_conv_run(k, g_ref_ctx, &ti2, &to2), FA_OK);
    assert_true(out2[0] == 21.0f && out2[1] == 0.0f);
    nn_conv_free(k);
}

static void test_ref_vs_naive(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof(g_cases) / sizeof(g_cases[0]); ci++) {
        const struct ccase *c = &g_cases[ci];
        struct data x = make_data(c);
        for (int a = NN_ACT_NONE; a <= NN_ACT_SIGMOID; a++) {
            struct nn_conv_desc d = make_desc(c, (enum nn_act)a, x.slopes);
            int32_t oh, ow;
            float *got = run_conv(g_ref, g_ref_ctx, &d, x.w, x.b, x.in, &oh, &ow);
            size_t on = (size_t)oh * ow * c->cout;
            float *want = malloc(on * sizeof(float));
            naive_conv(&d, x.in, x.w, x.b, want, oh, ow);
            struct cmp r = compare(got, want, on);
            if (!cmp_ok(r))
                fail_msg("case %zu act %s: nmse %g maxabs %g", ci, act_name(d.act), r.nmse,
                         r.maxabs);
            free(got);
            free(want);
        }
        free_data(&x);
    }
}

static void test_ref_dense(void **state)
{
    (void)state;
    /* 100 inputs (three blocks of 48), 9 outputs, against double sums */
    const int32_t in_n = 100, out_n = 9;
    float *w = rnd_buf((size_t)in_n * out_n, 0.1f), *b = rnd_buf(out_n, 1.0f);
    float *in = rnd_buf(in_n, 1.0f), out[9], want[9];
    for (int a = NN_ACT_NONE; a <= NN_ACT_SIGMOID; a++) {
        if (a == NN_ACT_LEAKY || a == NN_ACT_PRELU)
            continue;
        struct nn_dense *d;
        assert_int_equal(nn_dense_new(g_ref, in_n, out_n, w, b, (enum nn_act)a, &d), FA_OK);
        assert_int_equal(nn_dense_run(d, g_ref_ctx, in, out), FA_OK);
        for (int32_t o = 0; o < out_n; o++) {
            double s = b[o];
            for (int32_t i = 0; i < in_n; i++)
                s += (double)in[i] * w[(size_t)i * out_n + o];
            if (a == NN_ACT_RELU)
                s = s > 0 ? s : 0;
            else if (a == NN_ACT_RELU6)
                s = s > 0 ? (s < 6 ? s : 6) : 0;
            else if (a == NN_ACT_SIGMOID)
                s = 1 / (1 + exp(-s));
            want[o] = (float)s;
        }
        struct cmp r = compare(out, want, out_n);
        if (!cmp_ok(r))
            fail_msg("dense act %s: nmse %g", act_name((enum nn_act)a), r.nmse);
        nn_dense_free(d);
    }
    free(w);
    free(b);
    free(in);
}

/* ------------------------------------------------------ fast vs reference */

static void test_fast_vs_ref(void **state)
{
    (void)state;
    if (!nn_fast_available())
        skip();
    for (size_t ci = 0; ci < sizeof(g_cases) / sizeof(g_cases[0]); ci++) {
        const struct ccase *c = &g_cases[ci];
        struct data x = make_data(c);
        for (int a = NN_ACT_NONE; a <= NN_ACT_SIGMOID; a++) {
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                struct nn_conv_desc d = make_desc(c, (enum nn_act)a, x.slopes);
                const float *b = with_bias ? x.b : NULL;
                if (a == NN_ACT_LEAKY && with_bias)
                    d.alpha = 0.2f;
                int32_t oh, ow, oh2, ow2;
                float *got = run_conv(g_fast, g_fast_ctx, &d, x.w, b, x.in, &oh, &ow);
                float *want = run_conv(g_ref, g_ref_ctx, &d, x.w, b, x.in, &oh2, &ow2);
                assert_int_equal(oh, oh2);
                assert_int_equal(ow, ow2);
                struct cmp r = compare(got, want, (size_t)oh * ow * c->cout);
                if (!cmp_ok(r))
                    fail_msg("case %zu (%dx%dx%d k%dx%d s%d %s%s) act %s bias %d: nmse %g "
                             "maxabs %g",
                             ci, c->h, c->w, c->cin, c->kh, c->kw, c->s,
                             c->pm == SAME    ? "SAME"
                             : c->pm == VALID ? "VALID"
                                              : "EXPL",
                             c->dw ? " dw" : "", act_name(d.act), with_bias, r.nmse, r.maxabs);
                free(got);
                free(want);
            }
        }
        free_data(&x);
    }
}

static void test_fast_dense_vs_ref(void **state)
{
    (void)state;
    if (!nn_fast_available())
        skip();
    static const int32_t shapes[][2] = {{256, 128}, {7, 3}, {1, 1}, {100, 9}, {1024, 136}};
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        int32_t in_n = shapes[si][0], out_n = shapes[si][1];
        float *w = rnd_buf((size_t)in_n * out_n, 1.0f / sqrtf((float)in_n));
        float *b = rnd_buf(out_n, 0.5f), *in = rnd_buf(in_n, 2.0f);
        float *got = malloc(out_n * sizeof(float)), *want = malloc(out_n * sizeof(float));
        for (int a = NN_ACT_NONE; a <= NN_ACT_SIGMOID; a++) {
            if (a == NN_ACT_LEAKY || a == NN_ACT_PRELU)
                continue;
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                struct nn_dense *df, *dr;
                const float *bb = with_bias ? b : NULL;
                assert_int_equal(nn_dense_new(g_fast, in_n, out_n, w, bb, a, &df), FA_OK);
                assert_int_equal(nn_dense_new(g_ref, in_n, out_n, w, bb, a, &dr), FA_OK);
                assert_int_equal(nn_dense_run(df, g_fast_ctx, in, got), FA_OK);
                assert_int_equal(nn_dense_run(dr, g_ref_ctx, in, want), FA_OK);
                struct cmp r = compare(got, want, out_n);
                if (!cmp_ok(r))
                    fail_msg("dense %dx%d act %s: nmse %g maxabs %g", in_n, out_n,
                             act_name((enum nn_act)a), r.nmse, r.maxabs);
                nn_dense_free(df);
                nn_dense_free(dr);
            }
        }
        free(w);
        free(b);
        free(in);
        free(got);
        free(want);
    }
}

/* The checker must be able to fail: one perturbed weight, one perturbed
 * bias, one perturbed slope, each on the backend under test. */
static void test_checker_detects_wrong(void **state)
{
    (void)state;
    struct nn_backend *be = g_fast != NULL ? g_fast : g_ref;
    struct nn_ctx *ctx = g_fast != NULL ? g_fast_ctx : g_ref_ctx;
    const struct ccase cs[] = {
        {12, 10, 3, 3, 5, 7, 2, SAME, {0}, false},
        {12, 12, 3, 3, 32, 32, 2, SAME, {0}, true},
    };
    for (size_t ci = 0; ci < 2; ci++) {
        struct data x = make_data(&cs[ci]);
        struct nn_conv_desc d = make_desc(&cs[ci], NN_ACT_PRELU, x.slopes);
        int32_t oh, ow;
        float *want = run_conv(g_ref, g_ref_ctx, &d, x.w, x.b, x.in, &oh, &ow);
        size_t on = (size_t)oh * ow * d.cout;

        float *same = run_conv(be, ctx, &d, x.w, x.b, x.in, &oh, &ow);
        assert_true(cmp_ok(compare(same, want, on)));

        x.w[x.wn / 2] += 0.01f;
        float *bad = run_conv(be, ctx, &d, x.w, x.b, x.in, &oh, &ow);
        assert_false(cmp_ok(compare(bad, want, on)));
        x.w[x.wn / 2] -= 0.01f;
        free(bad);

        x.b[1] += 0.01f;
        bad = run_conv(be, ctx, &d, x.w, x.b, x.in, &oh, &ow);
        assert_false(cmp_ok(compare(bad, want, on)));
        x.b[1] -= 0.01f;
        free(bad);

        x.slopes[2] += 0.05f;
        bad = run_conv(be, ctx, &d, x.w, x.b, x.in, &oh, &ow);
        assert_false(cmp_ok(compare(bad, want, on)));
        free(bad);

        /* a single wrong output element is caught by the max abs error */
        same[on / 3] += 0.01f;
        assert_false(cmp_ok(compare(same, want, on)));
        free(same);
        free(want);
        free_data(&x);
    }
}

/* ------------------------------------------------------------ argument errors */

static void check_bad_desc(struct nn_backend *be)
{
    float w[4096] = {0}, slopes[64] = {0};
    struct nn_conv *k = NULL;
    const struct nn_conv_desc good = {.in_h = 8,
                                      .in_w = 8,
                                      .kh = 3,
                                      .kw = 3,
                                      .cin = 4,
                                      .cout = 4,
                                      .stride = 1,
                                      .pad = {1, 1, 1, 1}};
    struct nn_conv_desc d;

#define BAD(field_expr)                                                                            \
    do {                                                                                           \
        d = good;                                                                                  \
        field_expr;                                                                                \
        assert_int_equal(nn_conv_new(be, &d, w, NULL, &k), FA_ERR_ARG);                            \
    } while (0)
    BAD(d.cin = 0);
    BAD(d.cout = -1);
    BAD(d.kh = 0);
    BAD(d.stride = 0);
    BAD(d.in_w = 0);
    BAD(d.pad.l = -1);
    BAD(d.pad.t = 3);                      /* padding as large as the window */
    BAD((d.depthwise = true, d.cout = 8)); /* depthwise: cout must equal cin */
    BAD(d.act = NN_ACT_PRELU);             /* no slopes */
    BAD(d.act = (enum nn_act)42);
    BAD((d.in_h = 2, d.pad = (struct nn_pad4){0})); /* input smaller than the window */
    BAD(d.in_h = 1 << 20);
    BAD((d.cin = 60000, d.cout = 60000)); /* weights beyond the element limit */
#undef BAD
    assert_int_equal(nn_conv_new(be, &good, NULL, NULL, &k), FA_ERR_ARG);
    assert_int_equal(nn_conv_new(be, NULL, w, NULL, &k), FA_ERR_ARG);

    d = good;
    d.act = NN_ACT_PRELU;
    d.prelu = slopes;
    assert_int_equal(nn_conv_new(be, &d, w, NULL, &k), FA_OK);
    nn_conv_free(k);

    struct nn_dense *dn = NULL;
    assert_int_equal(nn_dense_new(be, 0, 4, w, NULL, NN_ACT_NONE, &dn), FA_ERR_ARG);
    assert_int_equal(nn_dense_new(be, 4, 0, w, NULL, NN_ACT_NONE, &dn), FA_ERR_ARG);
    assert_int_equal(nn_dense_new(be, 4, 4, w, NULL, NN_ACT_LEAKY, &dn), FA_ERR_ARG);
    assert_int_equal(nn_dense_new(be, 4, 4, w, NULL, NN_ACT_PRELU, &dn), FA_ERR_ARG);
    assert_int_equal(nn_dense_new(be, 4, 4, NULL, NULL, NN_ACT_NONE, &dn), FA_ERR_ARG);
    assert_null(dn);
}

static void check_bad_run(struct nn_backend *be, struct nn_ctx *ctx)
{
    float w[3 * 3 * 4 * 5] = {0};
    const struct nn_conv_desc d = {.in_h = 6,
                                   .in_w = 7,
                                   .kh = 3,
                                   .kw = 3,
                                   .cin = 4,
                                   .cout = 5,
                                   .stride = 2,
                                   .pad = nn_pad_same(6, 7, 3, 3, 2)};
    struct nn_conv *k;
    assert_int_equal(nn_conv_new(be, &d, w, NULL, &k), FA_OK);
    int32_t oh, ow, oc;
    nn_conv_out_shape(k, &oh, &ow, &oc);
    assert_int_equal(oh, 3);
    assert_int_equal(ow, 4);
    assert_int_equal(oc, 5);
    static float in[6 * 7 * 4], out[3 * 4 * 5 + 8];
    struct nn_tensor ti = T(in, 6, 7, 4), to = T(out, 3, 4, 5), t;

    assert_int_equal(nn_conv_run(k, ctx, &ti, &to), FA_OK);
    t = ti;
    t.h = 7;
    assert_int_equal(nn_conv_run(k, ctx, &t, &to), FA_ERR_ARG);
    t = ti;
    t.c = 3;
    assert_int_equal(nn_conv_run(k, ctx, &t, &to), FA_ERR_ARG);
    t = ti;
    t.n = 2;
    assert_int_equal(nn_conv_run(k, ctx, &t, &to), FA_ERR_ARG);
    t = ti;
    t.data = NULL;
    assert_int_equal(nn_conv_run(k, ctx, &t, &to), FA_ERR_ARG);
    t = to;
    t.c = 4;
    assert_int_equal(nn_conv_run(k, ctx, &ti, &t), FA_ERR_ARG);
    t = to;
    t.w = 3;
    assert_int_equal(nn_conv_run(k, ctx, &ti, &t), FA_ERR_ARG);
    t = to;
    t.data = in + 8; /* output overlapping the input */
    assert_int_equal(nn_conv_run(k, ctx, &ti, &t), FA_ERR_ARG);
    assert_int_equal(nn_conv_run(k, ctx, NULL, &to), FA_ERR_ARG);
    assert_int_equal(nn_conv_run(k, NULL, &ti, &to), FA_ERR_ARG);
    nn_conv_free(k);

    struct nn_dense *dn;
    assert_int_equal(nn_dense_new(be, 8, 4, w, NULL, NN_ACT_NONE, &dn), FA_OK);
    assert_int_equal(nn_dense_run(dn, ctx, in, out), FA_OK);
    assert_int_equal(nn_dense_run(dn, ctx, in, in + 4), FA_ERR_ARG); /* overlap */
    assert_int_equal(nn_dense_run(dn, ctx, NULL, out), FA_ERR_ARG);
    nn_dense_free(dn);
}

static void test_arg_errors(void **state)
{
    (void)state;
    check_bad_desc(g_ref);
    check_bad_run(g_ref, g_ref_ctx);
    if (g_fast != NULL) {
        check_bad_desc(g_fast);
        check_bad_run(g_fast, g_fast_ctx);
        /* a fast layer needs a fast ctx */
        float w[9] = {0}, in[16] = {0}, out[16];
        const struct nn_conv_desc d = {.in_h = 4,
                                       .in_w = 4,
                                       .kh = 3,
                                       .kw = 3,
                                       .cin = 1,
                                       .cout = 1,
                                       .stride = 1,
                                       .pad = {1, 1, 1, 1}};
        struct nn_conv *k;
        assert_int_equal(nn_conv_new(g_fast, &d, w, NULL, &k), FA_OK);
        struct nn_tensor ti = T(in, 4, 4, 1), to = T(out, 4, 4, 1);
        assert_int_equal(nn_conv_run(k, g_ref_ctx, &ti, &to), FA_ERR_ARG);
        nn_conv_free(k);
    }
}

static void test_backend_env(void **state)
{
    (void)state;
    struct nn_backend *be;
    assert_int_equal(nn_backend_new(NN_BACKEND_REF, &be), FA_OK);
    assert_string_equal(nn_backend_name(be), "ref");
    nn_backend_free(be);
    assert_int_equal(nn_backend_new(NN_BACKEND_FAST, &be), FA_OK);
    assert_string_equal(nn_backend_name(be), nn_fast_available() ? "onednn" : "ref");
    nn_backend_free(be);

    setenv("FACEAUTH_NN_BACKEND", "ref", 1);
    assert_int_equal(nn_backend_new(NN_BACKEND_FAST, &be), FA_OK);
    assert_string_equal(nn_backend_name(be), "ref");
    nn_backend_free(be);
    setenv("FACEAUTH_NN_BACKEND", "fast", 1);
    assert_int_equal(nn_backend_new(NN_BACKEND_REF, &be), FA_OK);
    assert_string_equal(nn_backend_name(be), nn_fast_available() ? "onednn" : "ref");
    nn_backend_free(be);
    unsetenv("FACEAUTH_NN_BACKEND");
    assert_int_equal(nn_backend_new((enum nn_backend_kind)7, &be), FA_ERR_ARG);
}

/* ---------------------------------------------------------- fault injection */

static void fault_inject(enum nn_backend_kind kind)
{
    float *w = rnd_buf(3 * 3 * 8 * 8, 0.3f), *b = rnd_buf(8, 0.1f);
    float slopes[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    const struct nn_conv_desc d = {.in_h = 9,
                                   .in_w = 9,
                                   .kh = 3,
                                   .kw = 3,
                                   .cin = 8,
                                   .cout = 8,
                                   .stride = 1,
                                   .pad = {1, 1, 1, 1},
                                   .act = NN_ACT_PRELU,
                                   .prelu = slopes};
    struct nn_conv_desc dd = d;
    dd.depthwise = true;
    bool done_be = false, done_ctx = false, done_conv = false, done_dw = false, done_dense = false;

    for (long n = 0; n < 1000 && !(done_be && done_ctx && done_conv && done_dw && done_dense);
         n++) {
        struct nn_backend *be = NULL;
        struct nn_ctx *ctx = NULL;
        struct nn_conv *k = NULL;
        struct nn_dense *dn = NULL;
        enum fa_status rc;

        fa_alloc_fail_after(n);
        rc = nn_backend_new(kind, &be);
        fa_alloc_fail_reset();
        if (rc != FA_OK) {
            assert_int_equal(rc, FA_ERR_NOMEM);
            continue;
        }
        done_be = true;
        fa_alloc_fail_after(n);
        rc = nn_ctx_new(be, &ctx);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            done_ctx = true;
            nn_ctx_free(ctx);
        } else {
            assert_int_equal(rc, FA_ERR_NOMEM);
        }
        fa_alloc_fail_after(n);
        rc = nn_conv_new(be, &d, w, b, &k);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            done_conv = true;
            nn_conv_free(k);
        } else {
            assert_int_equal(rc, FA_ERR_NOMEM);
        }
        fa_alloc_fail_after(n);
        rc = nn_conv_new(be, &dd, w, b, &k);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            done_dw = true;
            nn_conv_free(k);
        } else {
            assert_int_equal(rc, FA_ERR_NOMEM);
        }
        fa_alloc_fail_after(n);
        rc = nn_dense_new(be, 24, 8, w, b, NN_ACT_SIGMOID, &dn);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            done_dense = true;
            nn_dense_free(dn);
        } else {
            assert_int_equal(rc, FA_ERR_NOMEM);
        }
        nn_backend_free(be);
    }
    assert_true(done_be && done_ctx && done_conv && done_dw && done_dense);
    free(w);
    free(b);
}

static void test_fault_injection(void **state)
{
    (void)state;
    fault_inject(NN_BACKEND_REF);
    if (nn_fast_available())
        fault_inject(NN_BACKEND_FAST);
}

/* A fast ctx runs out of scratch or cached memory objects only at warm-up:
 * a failed allocation there is FA_ERR_NOMEM, and the next run succeeds. */
static void test_fault_injection_run(void **state)
{
    (void)state;
    if (!nn_fast_available())
        skip();
    const struct ccase c = {19, 19, 3, 3, 64, 64, 1, SAME, {0}, false};
    struct data x = make_data(&c);
    struct nn_conv_desc d = make_desc(&c, NN_ACT_RELU, NULL);
    struct nn_conv *k;
    assert_int_equal(nn_conv_new(g_fast, &d, x.w, x.b, &k), FA_OK);
    float *out = malloc((size_t)19 * 19 * 64 * sizeof(float));
    struct nn_tensor ti = T(x.in, 19, 19, 64), to = T(out, 19, 19, 64);
    bool ok = false;
    for (long n = 0; n < 100 && !ok; n++) {
        struct nn_ctx *ctx;
        assert_int_equal(nn_ctx_new(g_fast, &ctx), FA_OK);
        fa_alloc_fail_after(n);
        enum fa_status rc = nn_conv_run(k, ctx, &ti, &to);
        fa_alloc_fail_reset();
        if (rc == FA_OK)
            ok = true;
        else
            assert_int_equal(rc, FA_ERR_NOMEM);
        assert_int_equal(nn_conv_run(k, ctx, &ti, &to), FA_OK);
        /* warm: no allocation at all */
        fa_alloc_fail_after(0);
        rc = nn_conv_run(k, ctx, &ti, &to);
        fa_alloc_fail_reset();
        assert_int_equal(rc, FA_OK);
        nn_ctx_free(ctx);
    }
    assert_true(ok);
    nn_conv_free(k);
    free(out);
    free_data(&x);
}

/* ------------------------------------------------------------------ threads */

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct worker {
    const struct nn_conv *k1, *k2;
    const float *in, *want;
    size_t mid_n, out_n;
    int runs, mismatches, max_threads;
    enum fa_status rc;
    double cpu_s, wall_s;
    pthread_barrier_t *bar;
};

static double now_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct nn_ctx *ctx = NULL;
    float *mid = malloc(w->mid_n * sizeof(float)), *out = malloc(w->out_n * sizeof(float));
    w->rc = nn_ctx_new(g_fast, &ctx);
    if (w->rc == FA_OK) {
        w->max_threads = nn_max_threads();
        struct nn_tensor ti = T((float *)w->in, 32, 32, 32), tm = T(mid, 32, 32, 48),
                         to = T(out, 16, 16, 48);
        double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), t0 = now_s(CLOCK_MONOTONIC);
        for (int i = 0; i < w->runs && w->rc == FA_OK; i++) {
            w->rc = nn_conv_run(w->k1, ctx, &ti, &tm);
            if (w->rc == FA_OK)
                w->rc = nn_conv_run(w->k2, ctx, &tm, &to);
            w->mismatches += memcmp(out, w->want, w->out_n * sizeof(float)) != 0;
        }
        w->cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        w->wall_s = now_s(CLOCK_MONOTONIC) - t0;
    }
    pthread_barrier_wait(w->bar); /* main counts threads while we are alive */
    pthread_barrier_wait(w->bar);
    nn_ctx_free(ctx);
    free(mid);
    free(out);
    return NULL;
}

static void test_threads_single_core(void **state)
{
    (void)state;
    if (!nn_fast_available())
        skip();
    const struct ccase c1 = {32, 32, 3, 3, 32, 48, 1, SAME, {0}, false};
    const struct ccase c2 = {32, 32, 3, 3, 48, 48, 2, SAME, {0}, true};
    struct data x1 = make_data(&c1), x2 = make_data(&c2);
    struct nn_conv_desc d1 = make_desc(&c1, NN_ACT_RELU, NULL);
    struct nn_conv_desc d2 = make_desc(&c2, NN_ACT_LEAKY, NULL);
    d2.in_h = d2.in_w = 32;
    d2.cin = d2.cout = 48;
    d2.pad = nn_pad_same(32, 32, 3, 3, 2);
    struct nn_conv *k1, *k2, *r1, *r2;
    assert_int_equal(nn_conv_new(g_fast, &d1, x1.w, x1.b, &k1), FA_OK);
    assert_int_equal(nn_conv_new(g_fast, &d2, x2.w, x2.b, &k2), FA_OK);
    assert_int_equal(nn_conv_new(g_ref, &d1, x1.w, x1.b, &r1), FA_OK);
    assert_int_equal(nn_conv_new(g_ref, &d2, x2.w, x2.b, &r2), FA_OK);

    /* expected: the fast result on this thread, checked against the reference */
    float *mid = malloc(32 * 32 * 48 * sizeof(float)), *want = malloc(16 * 16 * 48 * 4),
          *rmid = malloc(32 * 32 * 48 * 4), *rout = malloc(16 * 16 * 48 * 4);
    struct nn_tensor ti = T(x1.in, 32, 32, 32), tm = T(mid, 32, 32, 48), to = T(want, 16, 16, 48);
    assert_int_equal(nn_conv_run(k1, g_fast_ctx, &ti, &tm), FA_OK);
    assert_int_equal(nn_conv_run(k2, g_fast_ctx, &tm, &to), FA_OK);
    struct nn_tensor trm = T(rmid, 32, 32, 48), tro = T(rout, 16, 16, 48);
    assert_int_equal(nn_conv_run(r1, g_ref_ctx, &ti, &trm), FA_OK);
    assert_int_equal(nn_conv_run(r2, g_ref_ctx, &trm, &tro), FA_OK);
    assert_true(cmp_ok(compare(want, rout, 16 * 16 * 48)));

    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 3);
    struct worker w[2];
    pthread_t th[2];
    int before = count_tasks();
    double pc0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){.k1 = k1,
                               .k2 = k2,
                               .in = x1.in,
                               .want = want,
                               .mid_n = 32 * 32 * 48,
                               .out_n = 16 * 16 * 48,
                               .runs = 30,
                               .bar = &bar};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    pthread_barrier_wait(&bar);
    int during = count_tasks();
    double pcpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - pc0;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].rc, FA_OK);
        assert_int_equal(w[i].mismatches, 0); /* bit-identical to this thread's run */
        if (w[i].max_threads != -1)
            assert_int_equal(w[i].max_threads, 1);
        /* one core per call: the thread's own CPU time is its wall time
         * (not less, as when work is handed to helper threads) */
        print_message("worker %d: cpu %.3f s wall %.3f s\n", i, w[i].cpu_s, w[i].wall_s);
    }
    /* no helper threads were started: only our two workers exist */
    assert_int_equal(during, before + 2);
    /* the whole process burnt about what the two workers did themselves */
    print_message("process cpu %.3f s, workers %.3f s\n", pcpu, w[0].cpu_s + w[1].cpu_s);
    assert_true(pcpu < (w[0].cpu_s + w[1].cpu_s) * 1.5 + 0.05);

    nn_conv_free(k1);
    nn_conv_free(k2);
    nn_conv_free(r1);
    nn_conv_free(r2);
    free(mid);
    free(want);
    free(rmid);
    free(rout);
    free_data(&x1);
    free_data(&x2);
}

/* ---------------------------------------------------------------------- main */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_hand_same_stride2),
        cmocka_unit_test(test_ref_vs_naive),
        cmocka_unit_test(test_ref_dense),
        cmocka_unit_test(test_fast_vs_ref),
        cmocka_unit_test(test_fast_dense_vs_ref),
        cmocka_unit_test(test_checker_detects_wrong),
        cmocka_unit_test(test_arg_errors),
        cmocka_unit_test(test_backend_env),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_fault_injection_run),
        cmocka_unit_test(test_threads_single_core),
    };
    return cmocka_run_group_tests(tests, nn_fixture_setup, nn_fixture_teardown);
}
