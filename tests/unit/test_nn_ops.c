/* The cheap ops of nn/ops.c against small cases computed by hand: TF SAME
 * padding, maxpool ignoring padded positions, avgpool excluding them from
 * the count, pad, concat, add, activations, global mean, arena tensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "base/arena.h"
#include "nn/nn.h"

static struct nn_tensor T(float *d, int32_t h, int32_t w, int32_t c) {
    return (struct nn_tensor){.data = d, .n = 1, .h = h, .w = w, .c = c};
}

static void
expect_floats(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i])
            fail_msg("element %zu: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
    }
}

static void test_pad_same(void **state)
{
    (void)state;
    /* stride 2, even input, 3x3: total 1, all at the bottom/right */
    struct nn_pad4 p = nn_pad_same(150, 150, 3, 3, 2);
    assert_int_equal(p.t, 0);
    assert_int_equal(p.b, 1);
    assert_int_equal(p.l, 0);
    assert_int_equal(p.r, 1);
    assert_int_equal(nn_out_dim(150, 3, 2, p.t, p.b), 75);
    /* stride 2, odd input: one on each side */
    p = nn_pad_same(75, 75, 3, 3, 2);
    assert_int_equal(p.t, 1);
    assert_int_equal(p.b, 1);
    assert_int_equal(nn_out_dim(75, 3, 2, p.t, p.b), 38);
    /* stride 1, 3x3: one on every side */
    p = nn_pad_same(13, 7, 3, 3, 1);
    assert_int_equal(p.t, 1);
    assert_int_equal(p.b, 1);
    assert_int_equal(p.l, 1);
    assert_int_equal(p.r, 1);
    /* 5x5 stride 1: 2 each side; different h and w sizes */
    p = nn_pad_same(10, 9, 5, 5, 1);
    assert_int_equal(p.t, 2);
    assert_int_equal(p.b, 2);
    /* 2x2 stride 2 on odd 207: total 1 at the bottom; even 414: none */
    p = nn_pad_same(207, 414, 2, 2, 2);
    assert_int_equal(p.t, 0);
    assert_int_equal(p.b, 1);
    assert_int_equal(p.l, 0);
    assert_int_equal(p.r, 0);
    /* 2x2 stride 1 (tiny yolo pool5): one at the bottom/right */
    p = nn_pad_same(13, 13, 2, 2, 1);
    assert_int_equal(p.t, 0);
    assert_int_equal(p.b, 1);
    /* 1x1 stride 2, even input: none (total would be negative) */
    p = nn_pad_same(8, 8, 1, 1, 2);
    assert_int_equal(p.t + p.b + p.l + p.r, 0);
}

static void test_maxpool_same_ignores_padding(void **state)
{
    (void)state;
    /* 3x3 input, all negative so a padded zero would win if it counted */
    float in[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    float out[4];
    struct nn_tensor ti = T(in, 3, 3, 1), to = T(out, 2, 2, 1);
    struct nn_pad4 p = nn_pad_same(3, 3, 2, 2, 2); /* t=0, b=1, l=0, r=1 */

    assert_int_equal(p.b, 1);
    nn_maxpool(&ti, 2, 2, p, &to);
    const float want[4] = {-1, -3, -7, -9};
    expect_floats(out, want, 4);

    /* stride 1 SAME 2x2 (last row/col see only themselves), 2 channels */
    float in2[2 * 2 * 2] = {1, -1, 4, -4, 2, -2, 3, -3};
    float out2[8];
    struct nn_tensor ti2 = T(in2, 2, 2, 2), to2 = T(out2, 2, 2, 2);
    nn_maxpool(&ti2, 2, 1, nn_pad_same(2, 2, 2, 2, 1), &to2);
    const float want2[8] = {4, -1, 4, -3, 3, -2, 3, -3};
    expect_floats(out2, want2, 8);
}

static void test_maxpool_valid(void **state)
{
    (void)state;
    float in[16], out[4];
    for (int i = 0; i < 16; i++)
        in[i] = (float)((i * 7) % 16);
    /* rows: 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9 */
    struct nn_tensor ti = T(in, 4, 4, 1), to = T(out, 2, 2, 1);
    nn_maxpool(&ti, 2, 2, (struct nn_pad4){0}, &to);
    const float want[4] = {12, 14, 15, 13};
    expect_floats(out, want, 4);
}

static void test_avgpool(void **state)
{
    (void)state;
    float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float out[4];
    struct nn_tensor ti = T(in, 3, 3, 1), to = T(out, 2, 2, 1);
    /* SAME 2x2/2: the padded positions are excluded from the count */
    nn_avgpool(&ti, 2, 2, nn_pad_same(3, 3, 2, 2, 2), &to);
    const float want[4] = {3.0f, 4.5f, 7.5f, 9.0f};
    expect_floats(out, want, 4);

    /* VALID 2x2/1 */
    nn_avgpool(&ti, 2, 1, (struct nn_pad4){0}, &to);
    const float want2[4] = {3, 4, 6, 7};
    expect_floats(out, want2, 4);

    /* explicit asymmetric padding: top 1, left 1; corner sees only in[0] */
    float out3[4];
    struct nn_tensor to3 = T(out3, 2, 2, 1);
    nn_avgpool(&ti, 2, 2, (struct nn_pad4){.t = 1, .b = 0, .l = 1, .r = 0}, &to3);
    const float want3[4] = {1.0f, 2.5f, 5.5f, 7.0f};
    expect_floats(out3, want3, 4);
}

static void test_avgpool_double_sum(void **state)
{
    (void)state;
    /* float sums would lose the 1s against 2^24; the double sum keeps them */
    float in[4] = {16777216.0f, 1.0f, 1.0f, -16777216.0f};
    float out[1];
    struct nn_tensor ti = T(in, 2, 2, 1), to = T(out, 1, 1, 1);
    nn_avgpool(&ti, 2, 2, (struct nn_pad4){0}, &to);
    assert_true(out[0] == 0.5f);
}

/* Random odd shapes: maxpool SAME equals padding with -inf then pooling
 * VALID; avgpool VALID equals the plain mean of each window. */
static void test_pools_random(void **state)
{
    (void)state;
    static float in[13 * 11 * 5], padded[15 * 13 * 5], a[7 * 6 * 5], b[7 * 6 * 5];
    uint32_t r = 7;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        r = r * 1664525u + 1013904223u;
        in[i] = (float)(r >> 8) / 16777216.0f - 0.75f;
    }
    struct nn_tensor ti = T(in, 13, 11, 5);
    for (int32_t k = 2; k <= 3; k++) {
        struct nn_pad4 p = nn_pad_same(13, 11, k, k, 2);
        int32_t oh = nn_out_dim(13, k, 2, p.t, p.b), ow = nn_out_dim(11, k, 2, p.l, p.r);
        assert_int_equal(oh, 7);
        assert_int_equal(ow, 6);
        struct nn_tensor tp = T(padded, 13 + p.t + p.b, 11 + p.l + p.r, 5);
        struct nn_tensor ta = T(a, oh, ow, 5), tb = T(b, oh, ow, 5);
        nn_pad(&ti, p, -INFINITY, &tp);
        nn_maxpool(&ti, k, 2, p, &ta);
        nn_maxpool(&tp, k, 2, (struct nn_pad4){0}, &tb);
        expect_floats(a, b, (size_t)oh * ow * 5);
    }
    struct nn_tensor ta = T(a, 4, 3, 5);
    nn_avgpool(&ti, 3, 3, (struct nn_pad4){0}, &ta);
    for (int32_t y = 0; y < 4; y++)
        for (int32_t x = 0; x < 3; x++)
            for (int32_t c = 0; c < 5; c++) {
                double s = 0;
                for (int32_t i = 0; i < 3; i++)
                    for (int32_t j = 0; j < 3; j++)
                        s += in[((y * 3 + i) * 11 + x * 3 + j) * 5 + c];
                assert_true(a[(y * 3 + x) * 5 + c] == (float)(s / 9));
            }
}

static void test_pad_op(void **state)
{
    (void)state;
    float in[2 * 1 * 2] = {1, 2, 3, 4}; /* h=2 w=1 c=2 */
    float out[4 * 3 * 2];
    struct nn_tensor ti = T(in, 2, 1, 2), to = T(out, 4, 3, 2);
    nn_pad(&ti, (struct nn_pad4){.t = 1, .b = 1, .l = 0, .r = 2}, -1.0f, &to);
    const float want[24] = {-1, -1, -1, -1, -1, -1, 1,  2,  -1, -1, -1, -1,
                            3,  4,  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    expect_floats(out, want, 24);
}

static void test_concat(void **state)
{
    (void)state;
    float a[2 * 1 * 1] = {1, 2}, b[2 * 1 * 2] = {10, 11, 20, 21};
    float out[6];
    struct nn_tensor ta = T(a, 2, 1, 1), tb = T(b, 2, 1, 2), to = T(out, 2, 1, 3);
    nn_concat_c(&ta, &tb, &to);
    const float want[6] = {1, 10, 11, 2, 20, 21};
    expect_floats(out, want, 6);
}

static void test_add_act(void **state)
{
    (void)state;
    float a[4] = {1, -2, 3, 10}, b[4] = {-3, 1, 4, -1};
    float out[4];
    struct nn_tensor ta = T(a, 1, 2, 2), tb = T(b, 1, 2, 2), to = T(out, 1, 2, 2);
    nn_add(&ta, &tb, &to, NN_ACT_NONE);
    const float w0[4] = {-2, -1, 7, 9};
    expect_floats(out, w0, 4);
    nn_add(&ta, &tb, &to, NN_ACT_RELU);
    const float w1[4] = {0, 0, 7, 9};
    expect_floats(out, w1, 4);
    nn_add(&ta, &tb, &to, NN_ACT_RELU6);
    const float w2[4] = {0, 0, 6, 6};
    expect_floats(out, w2, 4);
    /* aliasing the output with an input is allowed */
    nn_add(&ta, &tb, &ta, NN_ACT_NONE);
    expect_floats(a, w0, 4);
}

static void test_act_apply(void **state)
{
    (void)state;
    float v[4] = {-2, 3, -4, 0.5f};
    struct nn_tensor t = T(v, 1, 2, 2);
    nn_act_apply(&t, NN_ACT_LEAKY, 0.1f, NULL);
    const float w1[4] = {-2 * 0.1f, 3, -4 * 0.1f, 0.5f};
    expect_floats(v, w1, 4);

    float p[4] = {-2, 3, -4, -1};
    const float slopes[2] = {0.5f, 2.0f};
    struct nn_tensor tp = T(p, 1, 2, 2);
    nn_act_apply(&tp, NN_ACT_PRELU, 0.0f, slopes);
    const float w2[4] = {-1, 3, -2, -2};
    expect_floats(p, w2, 4);

    float s[3] = {0.0f, 100.0f, -100.0f};
    struct nn_tensor ts = T(s, 1, 1, 3);
    nn_act_apply(&ts, NN_ACT_SIGMOID, 0.0f, NULL);
    assert_true(s[0] == 0.5f);
    assert_true(s[1] == 1.0f);
    assert_true(s[2] > 0.0f && s[2] < 1e-40f); /* subnormal, not flushed */
    assert_true(s[2] == (float)(1.0 / (1.0 + exp(100.0))));

    float n[2] = {-1, 1};
    struct nn_tensor tn = T(n, 1, 1, 2);
    nn_act_apply(&tn, NN_ACT_NONE, 0.0f, NULL);
    assert_true(n[0] == -1 && n[1] == 1);
    nn_act_apply(&tn, NN_ACT_RELU, 0.0f, NULL);
    assert_true(n[0] == 0 && n[1] == 1);
}

static void test_global_avgpool(void **state)
{
    (void)state;
    float in[3 * 1 * 2] = {1, 10, 2, 20, 4, 40};
    float out[2];
    struct nn_tensor t = T(in, 3, 1, 2);
    nn_global_avgpool(&t, out);
    /* TF.js: each value divided by the count in float32, summed in double */
    float want0 = (float)((double)(1.0f / 3.0f) + (double)(2.0f / 3.0f) + (double)(4.0f / 3.0f));
    float want1 = (float)((double)(10.0f / 3.0f) + (double)(20.0f / 3.0f) + (double)(40.0f / 3.0f));
    assert_true(out[0] == want0);
    assert_true(out[1] == want1);
    assert_true(fabsf(out[0] - 7.0f / 3.0f) < 1e-6f);
}

static void test_tensor_arena(void **state)
{
    (void)state;
    struct fa_arena a;
    assert_int_equal(fa_arena_init(&a, 4096), FA_OK);
    struct nn_tensor t = nn_tensor_arena(&a, 4, 8, 16); /* 2048 bytes */
    assert_non_null(t.data);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.h, 4);
    assert_int_equal(t.w, 8);
    assert_int_equal(t.c, 16);
    assert_int_equal(nn_tensor_len(&t), 512);
    assert_int_equal((uintptr_t)t.data % 64, 0);
    struct nn_tensor t2 = nn_tensor_arena(&a, 4, 8, 16);
    assert_non_null(t2.data);
    struct nn_tensor t3 = nn_tensor_arena(&a, 1, 1, 1); /* full */
    assert_null(t3.data);
    struct nn_tensor t4 = nn_tensor_arena(&a, 0, 1, 1);
    assert_null(t4.data);
    struct nn_tensor t5 = nn_tensor_arena(&a, INT32_MAX, INT32_MAX, INT32_MAX);
    assert_null(t5.data);
    fa_arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_same),
        cmocka_unit_test(test_maxpool_same_ignores_padding),
        cmocka_unit_test(test_maxpool_valid),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_avgpool_double_sum),
        cmocka_unit_test(test_pools_random),
        cmocka_unit_test(test_pad_op),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_add_act),
        cmocka_unit_test(test_act_apply),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_tensor_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
