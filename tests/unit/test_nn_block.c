/* The fused residual block (nn/block.c) against the reference kernels it
 * replaces: a depthwise conv, a 1x1 or patch conv, the residual add and the
 * activation, each run by the REF backend one after the other. The block
 * keeps the reference's order of operations (multiply-adds from zero in tap
 * and channel order, then the bias, the residual, the activation), so the
 * two agree to the last bit or, where the reference's double-precision
 * multiply-add rounds twice, within a few ulps; the check allows 1e-6 of
 * the output's scale and fails on a perturbed weight. Shapes cover channel
 * counts that are not multiples of 16 (masked lanes), widths that leave
 * partial pixel tiles and partial groups of eight columns, stride 2, both
 * edges of the padding, patch convs and whole-input windows, every
 * activation, with and without the residual, the output written over the
 * residual, the pooled shortcut (2x2 max pool, channels zero-padded), and
 * the nets' first convs (any window and stride, with the padding gathered
 * as zeros). Then refusals, argument
 * errors and fault injection. Skipped on a CPU without AVX-512 (the graph then keeps the unfused
 * steps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn_fixture.h"

#define TOL_REL 1e-6

static float *rnd_buf(size_t n)
{
    float *p = fa_malloc_aligned(n * sizeof(float) + 64);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd();
    return p;
}

struct cfg {
    int32_t h, w, c, co;
    bool dw;       /* depthwise 3x3 (or dk x dk) SAME first */
    int32_t dk, s; /* depthwise window and stride */
    int32_t pk;    /* conv window = stride (1: 1x1) */
    bool whole;    /* conv window covers the whole input (stride 1) */
    bool res;
    enum nn_act act;
    int32_t pool_c; /* > 0: the residual is a 2x2 max pool of [2oh, 2ow, pool_c], zero-padded */
    bool half;      /* conv weights exact in float16 (FaceMesh's): the float16 path */
    int32_t gs;     /* > 0: a conv alone with window pk and this stride */
    bool same;      /* with gs: SAME padding (else VALID) */
};

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* The unfused steps on the REF backend. */
static void reference(const struct nn_block_desc *d, const float *dww, const float *dwb,
                      const float *pww, const float *pwb, const float *x, const float *res,
                      float *out, size_t out_n)
{
    const float *in = x;
    float *mid = NULL;
    if (d->has_dw) {
        struct nn_conv *k = NULL;
        assert_int_equal(nn_conv_new(g_ref, &d->dw, dww, dwb, &k), FA_OK);
        int32_t oh, ow, oc;
        nn_conv_out_shape(k, &oh, &ow, &oc);
        mid = fa_malloc_aligned((size_t)oh * ow * oc * sizeof(float));
        assert_non_null(mid);
        struct nn_tensor ti = {
            .n = 1, .h = d->dw.in_h, .w = d->dw.in_w, .c = d->dw.cin, .data = (float *)x};
        struct nn_tensor to = {.n = 1, .h = oh, .w = ow, .c = oc, .data = mid};
        assert_int_equal(nn_conv_run(k, g_ref_ctx, &ti, &to), FA_OK);
        nn_conv_free(k);
        in = mid;
    }
    struct nn_conv *k = NULL;
    assert_int_equal(nn_conv_new(g_ref, &d->pw, pww, pwb, &k), FA_OK);
    int32_t oh, ow, oc;
    nn_conv_out_shape(k, &oh, &ow, &oc);
    assert_int_equal((size_t)oh * ow * oc, out_n);
    struct nn_tensor ti = {
        .n = 1, .h = d->pw.in_h, .w = d->pw.in_w, .c = d->pw.cin, .data = (float *)in};
    struct nn_tensor to = {.n = 1, .h = oh, .w = ow, .c = oc, .data = out};
    assert_int_equal(nn_conv_run(k, g_ref_ctx, &ti, &to), FA_OK);
    nn_conv_free(k);
    for (size_t i = 0; i < out_n; i++) {
        float v = res != NULL ? out[i] + res[i] : out[i];
        const float slope = d->prelu != NULL ? d->prelu[i % (size_t)oc] : 0.0f;
        out[i] = nn_ref_act1(v, d->act, d->alpha, slope);
    }
    fa_free_aligned(mid);
}

static void make_desc(const struct cfg *t, struct nn_block_desc *d, int32_t *oh, int32_t *ow)
{
    memset(d, 0, sizeof *d);
    int32_t h = t->h, w = t->w;
    if (t->dw) {
        d->has_dw = true;
        d->dw = (struct nn_conv_desc){.in_h = h,
                                      .in_w = w,
                                      .kh = t->dk,
                                      .kw = t->dk,
                                      .cin = t->c,
                                      .cout = t->c,
                                      .stride = t->s,
                                      .pad = nn_pad_same(h, w, t->dk, t->dk, t->s),
                                      .depthwise = true};
        h = (h + t->s - 1) / t->s;
        w = (w + t->s - 1) / t->s;
    }
    if (t->gs > 0) {
        d->pw = (struct nn_conv_desc){.in_h = h,
                                      .in_w = w,
                                      .kh = t->pk,
                                      .kw = t->pk,
                                      .cin = t->c,
                                      .cout = t->co,
                                      .stride = t->gs,
                                      .pad = t->same ? nn_pad_same(h, w, t->pk, t->pk, t->gs)
                                                     : (struct nn_pad4){0}};
        *oh = nn_out_dim(h, t->pk, t->gs, d->pw.pad.t, d->pw.pad.b);
        *ow = nn_out_dim(w, t->pk, t->gs, d->pw.pad.l, d->pw.pad.r);
        d->act = t->act;
        d->alpha = 0.15f;
        return;
    }
    const int32_t k = t->whole ? h : t->pk;
    d->pw = (struct nn_conv_desc){.in_h = h,
                                  .in_w = w,
                                  .kh = k,
                                  .kw = t->whole ? w : k,
                                  .cin = t->c,
                                  .cout = t->co,
                                  .stride = t->whole ? 1 : k};
    *oh = t->whole ? 1 : h / k;
    *ow = t->whole ? 1 : w / k;
    d->act = t->act;
    d->alpha = 0.15f;
    if (t->pool_c > 0) {
        d->res_pool = 2;
        d->res_c = t->pool_c;
    }
}

/* The MaxPool 2x2 stride 2 -> Pad(channels) shortcut, written out. */
static void pool_pad(const float *src, int32_t oh, int32_t ow, int32_t rc, int32_t co, float *res)
{
    for (int32_t y = 0; y < oh; y++)
        for (int32_t x = 0; x < ow; x++)
            for (int32_t c = 0; c < co; c++) {
                float v = 0.0f;
                if (c < rc) {
                    v = -INFINITY;
                    for (int32_t dy = 0; dy < 2; dy++)
                        for (int32_t dx = 0; dx < 2; dx++)
                            v = fmaxf(v,
                                      src[((size_t)(2 * y + dy) * 2 * ow + 2 * x + dx) * rc + c]);
                }
                res[((size_t)y * ow + x) * co + c] = v;
            }
}

/* Runs one configuration; returns the worst error relative to the
 * output's scale. `perturb` changes one conv weight of the block only. */
static double run_cfg(const struct cfg *t, bool in_place, bool perturb)
{
    struct nn_block_desc d;
    int32_t oh, ow;
    make_desc(t, &d, &oh, &ow);
    const int32_t dk = t->dw ? t->dk : 0;
    const size_t pw_n = (size_t)d.pw.kh * d.pw.kw * t->c * t->co;
    float *x = rnd_buf((size_t)t->h * t->w * t->c);
    float *dww = t->dw ? rnd_buf((size_t)dk * dk * t->c) : NULL;
    float *dwb = t->dw ? rnd_buf((size_t)t->c) : NULL;
    float *pww = rnd_buf(pw_n), *pwb = rnd_buf((size_t)t->co), *slopes = rnd_buf((size_t)t->co);
    if (t->half) /* multiples of 2^-10 in [-1, 1): exact in float16 */
        for (size_t i = 0; i < pw_n; i++)
            pww[i] = floorf(pww[i] * 1024.0f) / 1024.0f;
    const size_t out_n = (size_t)oh * ow * t->co;
    float *res = t->res ? rnd_buf(out_n) : NULL;
    float *want = rnd_buf(out_n), *got = rnd_buf(out_n);
    float *pool_src = t->pool_c > 0 ? rnd_buf((size_t)4 * oh * ow * t->pool_c) : NULL;
    if (pool_src != NULL)
        pool_pad(pool_src, oh, ow, t->pool_c, t->co, res);
    d.prelu = t->act == NN_ACT_PRELU ? slopes : NULL;

    reference(&d, dww, dwb, pww, pwb, x, res, want, out_n);
    if (perturb)
        pww[pw_n / 2] += 0.015625f; /* 2^-6: the float16 path stays exact */
    struct nn_block *b = NULL;
    assert_int_equal(nn_block_new(g_fast, &d, dww, dwb, pww, pwb, &b), FA_OK);
    int32_t bh, bw, bc;
    nn_block_out_shape(b, &bh, &bw, &bc);
    assert_true(bh == oh && bw == ow && bc == t->co);
    float *dst = got;
    if (pool_src != NULL) {
        assert_int_equal(nn_block_run(b, g_fast_ctx, x, pool_src, dst), FA_OK);
    } else if (in_place && res != NULL) {
        memcpy(got, res, out_n * sizeof(float));
        dst = got;
        assert_int_equal(nn_block_run(b, g_fast_ctx, x, got, dst), FA_OK);
    } else {
        assert_int_equal(nn_block_run(b, g_fast_ctx, x, res, dst), FA_OK);
    }
    double err = 0;
    for (size_t i = 0; i < out_n; i++)
        err = fmax(err, fabs((double)got[i] - want[i]));
    err /= fmax(1.0, max_abs(want, out_n));
    nn_block_free(b);
    fa_free_aligned(x);
    fa_free_aligned(dww);
    fa_free_aligned(dwb);
    fa_free_aligned(pww);
    fa_free_aligned(pwb);
    fa_free_aligned(slopes);
    fa_free_aligned(res);
    fa_free_aligned(pool_src);
    fa_free_aligned(want);
    fa_free_aligned(got);
    return err;
}

static const struct cfg CASES[] = {
    /* the three models' blocks */
    {96, 96, 16, 16, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {96, 96, 16, 32, true, 3, 2, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {32, 32, 32, 64, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {16, 16, 64, 128, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {2, 2, 64, 128, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {3, 3, 128, 128, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {64, 64, 24, 24, true, 3, 1, 1, false, true, NN_ACT_RELU, 0, false, 0, false},
    {32, 32, 28, 32, true, 3, 2, 1, false, true, NN_ACT_RELU, 0, false, 0, false},
    /* odd widths, masked channels, other windows, every activation */
    {7, 13, 5, 7, true, 3, 1, 1, false, true, NN_ACT_NONE, 0, false, 0, false},
    {9, 21, 17, 33, true, 3, 2, 1, false, true, NN_ACT_RELU6, 0, false, 0, false},
    {11, 19, 40, 72, true, 5, 1, 1, false, false, NN_ACT_LEAKY, 0, false, 0, false},
    {6, 10, 3, 80, true, 3, 1, 1, false, false, NN_ACT_PRELU, 0, false, 0, false},
    {1, 1, 16, 16, true, 3, 1, 1, false, true, NN_ACT_PRELU, 0, false, 0, false},
    {5, 5, 16, 16, true, 2, 2, 1, false, true, NN_ACT_RELU, 0, false, 0, false},
    /* convs alone: 1x1, patch (window = stride), whole input */
    {32, 32, 64, 32, false, 0, 1, 1, false, false, NN_ACT_PRELU, 0, false, 0, false},
    {13, 7, 5, 19, false, 0, 1, 1, false, true, NN_ACT_NONE, 0, false, 0, false},
    {32, 32, 64, 64, false, 0, 1, 2, false, false, NN_ACT_PRELU, 0, false, 0, false},
    {8, 12, 20, 40, false, 0, 1, 2, false, true, NN_ACT_RELU6, 0, false, 0, false},
    {3, 3, 32, 1404, false, 0, 1, 3, false, false, NN_ACT_NONE, 0, false, 0, false},
    {3, 3, 32, 1404, false, 0, 1, 3, false, false, NN_ACT_NONE, 0, true, 0, false},
    {2, 2, 128, 213, false, 0, 1, 1, true, true, NN_ACT_PRELU, 0, true, 0, false},
    {3, 3, 5, 21, false, 0, 1, 3, false, false, NN_ACT_RELU, 0, true, 0, false},
    {2, 2, 128, 213, false, 0, 1, 1, true, false, NN_ACT_NONE, 0, false, 0, false},
    {9, 9, 7, 9, false, 0, 1, 3, false, false, NN_ACT_LEAKY, 0, false, 0, false},
    /* the pooled shortcut: FaceMesh's and BlazeFace's downsampling blocks,
     * Iris's (its source is not the block's input), odd channel counts */
    {96, 96, 16, 32, true, 3, 2, 1, false, true, NN_ACT_PRELU, 16, false, 0, false},
    {6, 6, 128, 128, true, 3, 2, 1, false, true, NN_ACT_PRELU, 128, false, 0, false},
    {16, 16, 64, 128, true, 3, 1, 1, false, true, NN_ACT_PRELU, 64, false, 0, false},
    {64, 64, 24, 24, true, 3, 2, 1, false, true, NN_ACT_RELU, 24, false, 0, false},
    {10, 14, 12, 40, true, 3, 2, 1, false, true, NN_ACT_NONE, 21, false, 0, false},
    {8, 8, 32, 48, false, 0, 1, 1, false, true, NN_ACT_RELU, 17, false, 0, false},
    {8, 8, 32, 16, false, 0, 1, 2, false, true, NN_ACT_LEAKY, 16, false, 0, false},
    /* first convs: FaceMesh's, Iris's and BlazeFace's (SAME, stride 2),
     * then padding on every side, an even window, VALID with stride 3 */
    {192, 192, 3, 16, false, 0, 1, 3, false, false, NN_ACT_PRELU, 0, false, 2, true},
    {64, 64, 3, 64, false, 0, 1, 3, false, false, NN_ACT_PRELU, 0, false, 2, true},
    {128, 128, 3, 24, false, 0, 1, 5, false, false, NN_ACT_RELU, 0, false, 2, true},
    {7, 9, 5, 19, false, 0, 1, 3, false, true, NN_ACT_NONE, 0, false, 1, true},
    {10, 13, 4, 40, false, 0, 1, 4, false, false, NN_ACT_RELU6, 0, false, 3, true},
    {8, 8, 16, 16, false, 0, 1, 3, false, false, NN_ACT_LEAKY, 0, false, 3, false},
};

static void test_matches_reference(void **state)
{
    (void)state;
    if (g_fast == NULL || !nn_block_cpu())
        skip();
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const struct cfg *t = &CASES[i];
        double err = run_cfg(t, false, false);
        if (err > TOL_REL)
            fail_msg("case %zu (%dx%dx%d -> %d): error %.3g > %.3g", i, t->h, t->w, t->c, t->co,
                     err, TOL_REL);
        if (t->res && t->pool_c == 0) {
            err = run_cfg(t, true, false);
            if (err > TOL_REL)
                fail_msg("case %zu in place: error %.3g", i, err);
        }
    }
}

static void test_check_can_fail(void **state)
{
    (void)state;
    if (g_fast == NULL || !nn_block_cpu())
        skip();
    /* a weight of the block changed by 2^-6: the comparison sees it */
    assert_true(run_cfg(&CASES[2], false, true) > 100 * TOL_REL);
    assert_true(run_cfg(&CASES[18], false, true) > 100 * TOL_REL);
    assert_true(run_cfg(&CASES[19], false, true) > 100 * TOL_REL); /* float16 */
    assert_true(run_cfg(&CASES[24], false, true) > 100 * TOL_REL); /* pooled shortcut */
    size_t first = 0; /* the first of the first convs (gathered windows) */
    while (CASES[first].gs == 0)
        first++;
    assert_true(run_cfg(&CASES[first], false, true) > 100 * TOL_REL);
}

/* A block whose weights moved into a pool (as a graph packs them) gives
 * the same output, bit for bit, and reads its weights there from then on;
 * the pool outlives it. */
static void check_pack(const struct cfg *t)
{
    struct nn_block_desc d;
    int32_t oh, ow;
    make_desc(t, &d, &oh, &ow);
    const size_t pw_n = (size_t)d.pw.kh * d.pw.kw * t->c * t->co, out_n = (size_t)oh * ow * t->co;
    float *x = rnd_buf((size_t)t->h * t->w * t->c), *pww = rnd_buf(pw_n);
    float *dww = t->dw ? rnd_buf((size_t)t->dk * t->dk * t->c) : NULL;
    float *pwb = rnd_buf((size_t)t->co), *slopes = rnd_buf((size_t)t->co);
    float *a = rnd_buf(out_n), *b2 = rnd_buf(out_n);
    if (t->half)
        for (size_t i = 0; i < pw_n; i++)
            pww[i] = floorf(pww[i] * 1024.0f) / 1024.0f;
    d.prelu = t->act == NN_ACT_PRELU ? slopes : NULL;
    struct nn_block *b = NULL;
    assert_int_equal(nn_block_new(g_fast, &d, dww, NULL, pww, pwb, &b), FA_OK);
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, a), FA_OK);
    const size_t bytes = nn_block_pack_bytes(b);
    assert_true(bytes >= pw_n * (t->half ? 2 : 4));
    unsigned char *pool = fa_malloc_aligned(bytes);
    assert_non_null(pool);
    memset(pool, 0xff, bytes);
    nn_block_pack(b, pool);
    memset(pww, 0, pw_n * sizeof(float)); /* the block keeps its own copy */
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, b2), FA_OK);
    assert_memory_equal(a, b2, out_n * sizeof(float));
    memset(pool, 0, bytes); /* the block now reads the pool: its output changes */
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, b2), FA_OK);
    assert_memory_not_equal(a, b2, out_n * sizeof(float));
    nn_block_free(b);
    fa_free_aligned(pool);
    fa_free_aligned(x);
    fa_free_aligned(pww);
    fa_free_aligned(dww);
    fa_free_aligned(pwb);
    fa_free_aligned(slopes);
    fa_free_aligned(a);
    fa_free_aligned(b2);
}

static void test_pack(void **state)
{
    (void)state;
    if (g_fast == NULL || !nn_block_cpu())
        skip();
    check_pack(&CASES[0]);  /* depthwise + 1x1, PReLU */
    check_pack(&CASES[9]);  /* masked channels, stride 2 */
    check_pack(&CASES[19]); /* float16 weights */
    check_pack(&CASES[22]); /* one pixel, float32 */
}

static void test_refusals(void **state)
{
    (void)state;
    if (g_fast == NULL || !nn_block_cpu())
        skip();
    const struct cfg t = {8,     8,    16,           16, true,  3, 1,    1,
                          false, true, NN_ACT_PRELU, 0,  false, 0, false};
    struct nn_block_desc d, bad;
    int32_t oh, ow;
    make_desc(&t, &d, &oh, &ow);
    float *w = rnd_buf(16 * 16 * 9), *sl = rnd_buf(16);
    d.prelu = sl;
    struct nn_block *b = (struct nn_block *)&d; /* must be cleared on failure */

    bad = d;
    bad.pw.stride = 2; /* 1x1 with stride 2: not a block */
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    assert_null(b);
    bad = d;
    bad.dw.act = NN_ACT_RELU; /* the depthwise step has no activation */
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.act = NN_ACT_SIGMOID;
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.prelu = NULL;
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.pw.cin = 8; /* does not follow the depthwise step */
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.pw.kh = bad.pw.kw = 3; /* a window after the depthwise step */
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad.has_dw = false;
    bad.pw.stride = 4; /* a stride past the window skips pixels */
    assert_int_equal(nn_block_new(g_fast, &bad, NULL, NULL, w, NULL, &b), FA_ERR_ARG);
    bad.pw.stride = 1;
    bad.pw.pad.l = 3; /* padding as wide as the window */
    assert_int_equal(nn_block_new(g_fast, &bad, NULL, NULL, w, NULL, &b), FA_ERR_ARG);
    bad.pw.pad.l = -1;
    assert_int_equal(nn_block_new(g_fast, &bad, NULL, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.res_pool = 3; /* only 2x2 pools */
    bad.res_c = 16;
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad.res_pool = 2;
    bad.res_c = 17; /* more channels than the output */
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    bad = d;
    bad.dw.in_w = 2000; /* a row wider than the scratch */
    bad.pw.in_w = 2000;
    bad.dw.cin = bad.dw.cout = bad.pw.cin = 16;
    assert_int_equal(nn_block_new(g_fast, &bad, w, NULL, w, NULL, &b), FA_ERR_ARG);
    assert_int_equal(nn_block_new(g_fast, &d, NULL, NULL, w, NULL, &b), FA_ERR_ARG);
    assert_int_equal(nn_block_new(g_fast, NULL, w, NULL, w, NULL, &b), FA_ERR_ARG);
    assert_int_equal(nn_block_new(g_fast, &d, w, NULL, w, NULL, NULL), FA_ERR_ARG);
    /* the REF backend stays the plain reference */
    assert_false(nn_block_available(g_ref));
    assert_int_equal(nn_block_new(g_ref, &d, w, NULL, w, NULL, &b), FA_ERR_NN_BACKEND);

    /* run: overlapping buffers and a ctx without scratch are refused */
    assert_int_equal(nn_block_new(g_fast, &d, w, NULL, w, NULL, &b), FA_OK);
    float *x = rnd_buf(8 * 8 * 16 * 2);
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, x), FA_ERR_ARG);
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, x + 8 * 8 * 16 - 1), FA_ERR_ARG);
    assert_int_equal(nn_block_run(b, g_fast_ctx, x + 8 * 8 * 16, x + 4, x + 8), FA_ERR_ARG);
    assert_int_equal(nn_block_run(b, g_ref_ctx, x, NULL, x + 8 * 8 * 16), FA_ERR_ARG);
    assert_int_equal(nn_block_run(NULL, g_fast_ctx, x, NULL, x + 8 * 8 * 16), FA_ERR_ARG);
    assert_int_equal(nn_block_run(b, g_fast_ctx, x, NULL, x + 8 * 8 * 16), FA_OK);
    nn_block_free(b);
    nn_block_free(NULL);
    fa_free_aligned(x);

    /* every allocation failure is reported, nothing leaks (ASan build) */
    for (long n = 0; n < 6; n++) {
        fa_alloc_fail_after(n);
        enum fa_status rc = nn_block_new(g_fast, &d, w, NULL, w, NULL, &b);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            nn_block_free(b);
            break;
        }
        assert_int_equal(rc, FA_ERR_NOMEM);
        assert_null(b);
    }
    fa_free_aligned(w);
    fa_free_aligned(sl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_check_can_fail),
        cmocka_unit_test(test_pack),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, nn_fixture_setup, nn_fixture_teardown);
}
