/* Reference kernels: plain loops that follow TF.js's cpu backend operation by
 * operation, so they are the ground truth of the fast backend's tests and
 * close to bit-exact with the JavaScript reference:
 *  - conv / depthwise: a float32 accumulator from 0, acc = float(acc + x*w)
 *    (product and sum in double, rounded once) over filter row, filter
 *    column, input channel; taps outside the input skipped; then + bias in
 *    float32, then the activation.
 *  - dense (matMul): the shared dimension in blocks of 48, each block summed
 *    in double and added into a float32 accumulator; then + bias, activation.
 * The output pixel itself is the accumulator, so nothing is allocated. */
#include "nn/kernels.h"

#include <math.h>

float nn_ref_act1(float x, enum nn_act act, float alpha, float slope)
{
    switch (act) {
    case NN_ACT_NONE:
        return x;
    case NN_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case NN_ACT_RELU6:
        return x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f;
    case NN_ACT_LEAKY:
        return x > 0.0f ? x : alpha * x;
    case NN_ACT_PRELU:
        return x > 0.0f ? x : slope * x;
    case NN_ACT_SIGMOID:
        return (float)(1.0 / (1.0 + exp(-(double)x)));
    }
    return x;
}

/* Dense conv. in: [in_h, in_w, cin]; w: [kh, kw, cin, cout];
 * out: [oh, ow, cout]. */
static void conv_dense(const struct nn_conv *k, const float *restrict in, float *restrict out)
{
    const struct nn_conv_desc *d = &k->d;
    const int32_t cin = d->cin, cout = d->cout;

    for (int32_t oy = 0; oy < k->oh; oy++) {
        for (int32_t ox = 0; ox < k->ow; ox++) {
            float *restrict acc = out + ((size_t)oy * k->ow + ox) * cout;
            for (int32_t o = 0; o < cout; o++)
                acc[o] = 0.0f;
            for (int32_t i = 0; i < d->kh; i++) {
                int32_t y = oy * d->stride + i - d->pad.t;
                if (y < 0 || y >= d->in_h)
                    continue;
                for (int32_t j = 0; j < d->kw; j++) {
                    int32_t x = ox * d->stride + j - d->pad.l;
                    if (x < 0 || x >= d->in_w)
                        continue;
                    const float *px = in + ((size_t)y * d->in_w + x) * cin;
                    const float *wij = k->w + ((size_t)i * d->kw + j) * cin * cout;
                    for (int32_t c = 0; c < cin; c++) {
                        const double v = px[c];
                        const float *wc = wij + (size_t)c * cout;
                        for (int32_t o = 0; o < cout; o++)
                            acc[o] = (float)(v * wc[o] + acc[o]);
                    }
                }
            }
            for (int32_t o = 0; o < cout; o++) {
                float slope = k->prelu != NULL ? k->prelu[o] : 0.0f;
                acc[o] = nn_ref_act1(acc[o] + k->bias[o], d->act, d->alpha, slope);
            }
        }
    }
}

/* Depthwise conv, channel multiplier 1. w: [kh, kw, c]. */
static void conv_depthwise(const struct nn_conv *k, const float *restrict in, float *restrict out)
{
    const struct nn_conv_desc *d = &k->d;
    const int32_t c_n = d->cin;

    for (int32_t oy = 0; oy < k->oh; oy++) {
        for (int32_t ox = 0; ox < k->ow; ox++) {
            float *restrict acc = out + ((size_t)oy * k->ow + ox) * c_n;
            for (int32_t c = 0; c < c_n; c++)
                acc[c] = 0.0f;
            for (int32_t i = 0; i < d->kh; i++) {
                int32_t y = oy * d->stride + i - d->pad.t;
                if (y < 0 || y >= d->in_h)
                    continue;
                for (int32_t j = 0; j < d->kw; j++) {
                    int32_t x = ox * d->stride + j - d->pad.l;
                    if (x < 0 || x >= d->in_w)
                        continue;
                    const float *px = in + ((size_t)y * d->in_w + x) * c_n;
                    const float *wij = k->w + ((size_t)i * d->kw + j) * c_n;
                    for (int32_t c = 0; c < c_n; c++)
                        acc[c] = (float)((double)px[c] * wij[c] + acc[c]);
                }
            }
            for (int32_t c = 0; c < c_n; c++) {
                float slope = k->prelu != NULL ? k->prelu[c] : 0.0f;
                acc[c] = nn_ref_act1(acc[c] + k->bias[c], d->act, d->alpha, slope);
            }
        }
    }
}

void nn_ref_conv(const struct nn_conv *k, const float *restrict in, float *restrict out)
{
    if (k->d.depthwise)
        conv_depthwise(k, in, out);
    else
        conv_dense(k, in, out);
}

void nn_ref_dense(const struct nn_dense *d, const float *restrict in, float *restrict out)
{
    enum { BLOCK = 48 }; /* TF.js cpu matMul block size */

    for (int32_t o = 0; o < d->out; o++)
        out[o] = 0.0f;
    for (int32_t i0 = 0; i0 < d->in; i0 += BLOCK) {
        int32_t i1 = i0 + BLOCK < d->in ? i0 + BLOCK : d->in;
        for (int32_t o = 0; o < d->out; o++) {
            double sum = 0.0;
            for (int32_t i = i0; i < i1; i++)
                sum += (double)in[i] * d->w[(size_t)i * d->out + o];
            out[o] = (float)(out[o] + sum);
        }
    }
    for (int32_t o = 0; o < d->out; o++)
        out[o] = nn_ref_act1(out[o] + d->bias[o], d->act, 0.0f, 0.0f);
}
