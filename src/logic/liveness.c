/* Liveness evidence (R11) other than the eye signal: motion that a picture
 * moved in front of the camera cannot make. FaceMesh reads a tilted or
 * turned print as a turned head and bends its shape a little with it, so raw
 * shape changes are no proof; what a print cannot do is change its shape
 * independently of its pose. Over the face track's frames, each shape feature
 * (pose.c) is regressed on the pose (least squares on yaw, pitch, roll, their
 * squares and yaw x pitch); the trimmed range of the residual (the extreme
 * tenth at each end left out, so one mis-fitted mesh does not count) is
 * expression and parallax that the pose does not explain. The pose alone is
 * never evidence: the mesh reads a tilted print as a turned head, at any
 * angle the print is tilted. The limits are the
 * largest values seen on the attacks (still photos moved along paths with
 * rotation, translation, scale and perspective; repeated and re-encoded
 * frames) times 1.25, measured by tools/tune_logic.py. */
#include "logic/liveness.h"

#include <math.h>
#include <string.h>

const double logic_motion_limit[LOGIC_FEATURES] = {
    [LOGIC_F_NOSE_X] = 0.0389,
    [LOGIC_F_NOSE_Y] = 0.0457,
    [LOGIC_F_MOUTH_OPEN] = 0.04,
    [LOGIC_F_MOUTH_WIDE] = 0.1609,
    [LOGIC_F_BROW] = 0.0201,
    /* 0: the pose is not evidence (see above) */
    [LOGIC_F_YAW] = 0,
    [LOGIC_F_PITCH] = 0,
    [LOGIC_F_ROLL] = 0,
};

#define NREG 7 /* 1, yaw, pitch, roll, yaw^2, pitch^2, yaw x pitch (angles / 30 deg) */

static void regressors(const float *x, double r[NREG])
{
    double y = x[LOGIC_F_YAW] / 30.0, p = x[LOGIC_F_PITCH] / 30.0, o = x[LOGIC_F_ROLL] / 30.0;
    r[0] = 1;
    r[1] = y;
    r[2] = p;
    r[3] = o;
    r[4] = y * y;
    r[5] = p * p;
    r[6] = y * p;
}

/* Solve A c = b (n x n, partial pivoting); false if singular. A, b destroyed. */
static bool solve(double A[NREG][NREG], double b[NREG], double c[NREG])
{
    for (int k = 0; k < NREG; k++) {
        int piv = k;
        for (int i = k + 1; i < NREG; i++)
            if (fabs(A[i][k]) > fabs(A[piv][k]))
                piv = i;
        if (fabs(A[piv][k]) < 1e-12)
            return false;
        if (piv != k) {
            for (int j = 0; j < NREG; j++) {
                double t = A[k][j];
                A[k][j] = A[piv][j];
                A[piv][j] = t;
            }
            double t = b[k];
            b[k] = b[piv];
            b[piv] = t;
        }
        for (int i = k + 1; i < NREG; i++) {
            double f = A[i][k] / A[k][k];
            for (int j = k; j < NREG; j++)
                A[i][j] -= f * A[k][j];
            b[i] -= f * b[k];
        }
    }
    for (int k = NREG - 1; k >= 0; k--) {
        double t = b[k];
        for (int j = k + 1; j < NREG; j++)
            t -= A[k][j] * c[j];
        c[k] = t / A[k][k];
    }
    return true;
}

/* Insertion sort of n values (n <= LOGIC_HIST). */
static void sort_d(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

double live_trimmed_range(const double *v_in, int n)
{
    double v[LOGIC_HIST];
    if (n < LIVE_MIN_FRAMES)
        return 0;
    if (n > LOGIC_HIST)
        n = LOGIC_HIST;
    memcpy(v, v_in, (size_t)n * sizeof v[0]);
    sort_d(v, n);
    int k = (n + 9) / 10;
    return v[n - 1 - k] - v[k];
}

double live_motion_score(const struct logic_session *s, double range[LOGIC_FEATURES])
{
    double best = 0;
    double v[LOGIC_HIST];
    int n = s->nfeat;
    double coef[LOGIC_SHAPE_FEATURES][NREG];
    bool fitted = false;
    if (n >= LOGIC_RESID_MIN_FRAMES) {
        double A[NREG][NREG] = {{0}}, rhs[LOGIC_SHAPE_FEATURES][NREG] = {{0}};
        for (int i = 0; i < n; i++) {
            double r[NREG];
            regressors(s->feat[i], r);
            for (int a = 0; a < NREG; a++) {
                for (int b = 0; b < NREG; b++)
                    A[a][b] += r[a] * r[b];
                for (int k = 0; k < LOGIC_SHAPE_FEATURES; k++)
                    rhs[k][a] += r[a] * s->feat[i][k];
            }
        }
        fitted = true;
        for (int k = 0; k < LOGIC_SHAPE_FEATURES && fitted; k++) {
            double Ak[NREG][NREG];
            memcpy(Ak, A, sizeof Ak);
            for (int a = 0; a < NREG; a++)
                Ak[a][a] += 1e-6;
            fitted = solve(Ak, rhs[k], coef[k]);
        }
    }
    for (int k = 0; k < LOGIC_FEATURES; k++) {
        double r = 0;
        if (k < LOGIC_SHAPE_FEATURES) {
            if (fitted) {
                for (int i = 0; i < n; i++) {
                    double x[NREG], fit = 0;
                    regressors(s->feat[i], x);
                    for (int a = 0; a < NREG; a++)
                        fit += coef[k][a] * x[a];
                    v[i] = s->feat[i][k] - fit;
                }
                r = live_trimmed_range(v, n);
            }
        } else {
            for (int i = 0; i < n; i++)
                v[i] = s->feat[i][k];
            r = live_trimmed_range(v, n);
        }
        if (range != NULL)
            range[k] = r;
        if (logic_motion_limit[k] > 0 && r / logic_motion_limit[k] > best)
            best = r / logic_motion_limit[k];
    }
    return best;
}

void live_push_features(struct logic_session *s, const struct logic_frame *f)
{
    double x[LOGIC_FEATURES];
    logic_features_of(f, x);
    if (s->nfeat == LOGIC_HIST) { /* keep the newest: drop the oldest */
        memmove(s->feat[0], s->feat[1], (LOGIC_HIST - 1) * sizeof s->feat[0]);
        s->nfeat--;
    }
    for (int k = 0; k < LOGIC_FEATURES; k++)
        s->feat[s->nfeat][k] = (float)x[k];
    s->nfeat++;
}

bool live_seen_hash(struct logic_session *s, uint64_t h)
{
    int n = s->nhash < 8 ? s->nhash : 8;
    for (int i = 0; i < n; i++)
        if (s->hashes[i] == h)
            return true;
    s->hashes[s->nhash % 8] = h;
    s->nhash++;
    if (s->nhash >= 16)
        s->nhash -= 8; /* same slot sequence, no overflow */
    return false;
}
