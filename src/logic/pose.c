/* Geometry of the FaceMesh points: head pose and the shape features that
 * liveness watches. Pose comes from two axes of the 3D mesh (eye corners,
 * forehead to chin), which is enough for "is the face frontal" and for
 * following head turns. The shape features are ratios of distances or affine
 * coordinates within the face, so they do not change when a picture of a
 * face is moved, scaled or rotated in the image plane; only a face that
 * really turns (parallax of the nose) or moves its mouth and brows changes
 * them. Mesh indices are MediaPipe's canonical ones. */
#include "logic/logic.h"

#include <math.h>

enum {
    P_EYE_R_OUT = 33,
    P_EYE_R_IN = 133,
    P_EYE_L_OUT = 263,
    P_EYE_L_IN = 362,
    P_NOSE_TIP = 1,
    P_MOUTH_R = 61,
    P_MOUTH_L = 291,
    P_LIP_UP = 13,
    P_LIP_LOW = 14,
    P_FOREHEAD = 10,
    P_CHIN = 152,
    P_BROW_R = 105,
    P_BROW_L = 334,
};

static const char *const FEATURE_NAMES[LOGIC_FEATURES] = {
    "nose_x", "nose_y", "mouth_open", "mouth_wide", "brow", "yaw", "pitch", "roll",
};

const char *logic_feature_name(enum logic_feature k)
{
    return (unsigned)k < LOGIC_FEATURES ? FEATURE_NAMES[k] : NULL;
}

static double dist2d(const float a[3], const float b[3])
{
    return hypot((double)a[0] - b[0], (double)a[1] - b[1]);
}

void logic_pose_of(const struct logic_frame *f, struct logic_pose *out)
{
    const float(*p)[3] = f->mesh;
    double x[3], y[3];
    for (int k = 0; k < 3; k++) {
        x[k] = (double)p[P_EYE_L_OUT][k] - p[P_EYE_R_OUT][k];
        y[k] = (double)p[P_CHIN][k] - p[P_FOREHEAD][k];
    }
    double nx = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
    if (!(nx > 0)) {
        *out = (struct logic_pose){0, 0, 0};
        return;
    }
    for (int k = 0; k < 3; k++)
        x[k] /= nx;
    double d = x[0] * y[0] + x[1] * y[1] + x[2] * y[2];
    for (int k = 0; k < 3; k++)
        y[k] -= d * x[k];
    const double deg = 180.0 / M_PI;
    out->yaw = atan2(x[2], x[0]) * deg;
    out->roll = atan2(x[1], x[0]) * deg;
    out->pitch = atan2(y[2], y[1]) * deg - LOGIC_PITCH_OFFSET;
}

/* Affine coordinates (a, b) of point q in the frame with origin at the eye
 * midpoint, u = right-to-left eye corner axis, v = eye midpoint to mouth
 * midpoint. */
static void affine_of(const float (*p)[3], int q, double *a, double *b)
{
    double e[2], m[2], u[2], v[2], dq[2];
    for (int k = 0; k < 2; k++) {
        e[k] = 0.5 * ((double)p[P_EYE_R_OUT][k] + p[P_EYE_L_OUT][k]);
        m[k] = 0.5 * ((double)p[P_MOUTH_R][k] + p[P_MOUTH_L][k]);
        u[k] = (double)p[P_EYE_L_OUT][k] - p[P_EYE_R_OUT][k];
        v[k] = m[k] - e[k];
        dq[k] = p[q][k] - e[k];
    }
    double det = u[0] * v[1] - u[1] * v[0];
    if (fabs(det) < 1e-9) {
        *a = *b = 0;
        return;
    }
    *a = (dq[0] * v[1] - dq[1] * v[0]) / det;
    *b = (u[0] * dq[1] - u[1] * dq[0]) / det;
}

void logic_features_of(const struct logic_frame *f, double out[LOGIC_FEATURES])
{
    const float(*p)[3] = f->mesh;
    double iod = dist2d(p[P_EYE_R_OUT], p[P_EYE_L_OUT]);
    double fh = dist2d(p[P_FOREHEAD], p[P_CHIN]);
    if (!(iod > 0) || !(fh > 0)) {
        for (int k = 0; k < LOGIC_FEATURES; k++)
            out[k] = 0;
        return;
    }
    affine_of(p, P_NOSE_TIP, &out[LOGIC_F_NOSE_X], &out[LOGIC_F_NOSE_Y]);
    out[LOGIC_F_MOUTH_OPEN] = dist2d(p[P_LIP_UP], p[P_LIP_LOW]) / fh;
    out[LOGIC_F_MOUTH_WIDE] = dist2d(p[P_MOUTH_R], p[P_MOUTH_L]) / iod;
    float mid_r[3], mid_l[3];
    for (int k = 0; k < 3; k++) {
        mid_r[k] = 0.5f * (p[P_EYE_R_OUT][k] + p[P_EYE_R_IN][k]);
        mid_l[k] = 0.5f * (p[P_EYE_L_OUT][k] + p[P_EYE_L_IN][k]);
    }
    out[LOGIC_F_BROW] = 0.5 * (dist2d(p[P_BROW_R], mid_r) + dist2d(p[P_BROW_L], mid_l)) / fh;
    struct logic_pose pose;
    logic_pose_of(f, &pose);
    out[LOGIC_F_YAW] = pose.yaw;
    out[LOGIC_F_PITCH] = pose.pitch;
    out[LOGIC_F_ROLL] = pose.roll;
}
