/* Matching (R13): descriptors are L2-normalised, so a distance is a function
 * of one dot product; templates are normalised means of normalised samples.
 * The 1:N search walks a gallery stored as contiguous rows of 128 floats with
 * eight independent accumulators, which compilers turn into SIMD code; it is
 * open-set (nobody within the threshold: no user) and refuses ambiguous
 * answers (two users within the threshold and too close to each other).
 * The calibration constants in logic.h come from tools/tune_logic.py. */
#include "logic/logic.h"

#include <math.h>
#include <string.h>

void logic_normalize(const float v[FACE_DESCRIPTOR], float out[FACE_DESCRIPTOR])
{
    double s = 0;
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        s += (double)v[k] * v[k];
    double n = sqrt(s);
    float inv = n > 0 && isfinite(n) ? (float)(1.0 / n) : 0.0f;
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        out[k] = v[k] * inv;
}

static float dot(const float *restrict a, const float *restrict b)
{
    float acc[8] = {0};
    for (int k = 0; k < FACE_DESCRIPTOR; k += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[k + j] * b[k + j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* |a - b| for unit vectors: sqrt(2 - 2 a.b), clamped against rounding. */
static float unit_distance(float d)
{
    float s = 2.0f - 2.0f * d;
    return s > 0 ? sqrtf(s) : 0.0f;
}

float logic_distance(const float a[FACE_DESCRIPTOR], const float b[FACE_DESCRIPTOR])
{
    float s = 0;
    for (int k = 0; k < FACE_DESCRIPTOR; k++) {
        float d = a[k] - b[k];
        s += d * d;
    }
    return sqrtf(s);
}

void logic_mean(const float (*d)[FACE_DESCRIPTOR], int n, float out[FACE_DESCRIPTOR])
{
    double acc[FACE_DESCRIPTOR] = {0};
    for (int i = 0; i < n; i++) {
        float u[FACE_DESCRIPTOR];
        logic_normalize(d[i], u);
        for (int k = 0; k < FACE_DESCRIPTOR; k++)
            acc[k] += u[k];
    }
    float m[FACE_DESCRIPTOR];
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        m[k] = (float)acc[k];
    logic_normalize(m, out);
}

double logic_confidence(double distance)
{
    if (!isfinite(distance))
        return 0;
    double z = LOGIC_CONF_SLOPE * (distance - LOGIC_CONF_MID);
    if (z > 700)
        return 0;
    return 1.0 / (1.0 + exp(z));
}

bool logic_samples_consistent(const float (*d)[FACE_DESCRIPTOR], int n)
{
    if (n < 1)
        return false;
    float m[FACE_DESCRIPTOR];
    logic_mean(d, n, m);
    for (int i = 0; i < n; i++) {
        float u[FACE_DESCRIPTOR];
        logic_normalize(d[i], u);
        if (!(logic_distance(u, m) <= LOGIC_ENROLL_DIST))
            return false;
    }
    return true;
}

void logic_identify(const float *vecs, size_t n, const float probe[FACE_DESCRIPTOR], long skip,
                    double thr, struct logic_ident *out)
{
    if (!(thr > 0))
        thr = LOGIC_MATCH_DIST;
    out->best = out->second = -1;
    out->d_best = out->d_second = INFINITY;
    out->match = out->ambiguous = false;
    /* highest dot product = smallest distance */
    float b1 = -INFINITY, b2 = -INFINITY;
    long i1 = -1, i2 = -1;
    for (size_t i = 0; i < n; i++) {
        if ((long)i == skip)
            continue;
        float d = dot(vecs + i * FACE_DESCRIPTOR, probe);
        if (d > b1) {
            b2 = b1;
            i2 = i1;
            b1 = d;
            i1 = (long)i;
        } else if (d > b2) {
            b2 = d;
            i2 = (long)i;
        }
    }
    if (i1 < 0)
        return;
    out->best = (int)i1;
    out->d_best = unit_distance(b1);
    if (i2 >= 0) {
        out->second = (int)i2;
        out->d_second = unit_distance(b2);
    }
    if (out->d_best <= thr) {
        out->ambiguous = out->second >= 0 && out->d_second <= thr &&
                         out->d_second - out->d_best < LOGIC_AMBIGUOUS_MARGIN;
        out->match = !out->ambiguous;
    }
}
