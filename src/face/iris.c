/* Iris on the two eye crops (PIPELINE.md section 7). The eye boxes come from
 * the raw mesh in 192-crop pixels and the crops from the FaceMesh input
 * itself, so the eyes are sampled twice (image -> face crop -> eye crop),
 * as the reference does. Deliberate difference from Human 3.3.6: only the
 * subject's left eye (263/362) is mirrored, as MediaPipe's graph does and as
 * the oracle's default `--eye-flip mediapipe` computes. */
#include "face/iris.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "face/blazeface.h"
#include "face/gmodel.h"
#include "face/mesh.h"

struct iris_net {
    struct nn_graph *g;
    int out_idx;
};

enum fa_status iris_load(const char *dir, const struct nn_backend *be, struct iris_net **out,
                         struct fa_errinfo *info)
{
    static const struct gmodel_output output = {"Identity", IRIS_POINTS * 3};
    struct iris_net *net = fa_calloc(1, sizeof *net);
    if (net == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc =
        gmodel_load(dir, "iris.json", be, IRIS_INPUT, &output, 1, &net->out_idx, &net->g, info);
    if (rc == FA_OK) {
        *out = net;
        net = NULL;
    }
    iris_free(net);
    return rc;
}

void iris_free(struct iris_net *net)
{
    if (net == NULL)
        return;
    nn_graph_free(net->g);
    fa_free(net);
}

size_t iris_arena_bytes(const struct iris_net *net)
{
    return nn_graph_arena_bytes(net->g) + 64;
}

uint64_t iris_macs(const struct iris_net *net)
{
    return nn_graph_macs(net->g);
}

const struct nn_graph *iris_graph(const struct iris_net *net)
{
    return net->g;
}

int32_t iris_corner(enum face_eye_side side, int outer)
{
    if (side == FACE_EYE_RIGHT)
        return outer ? 33 : 133;
    return outer ? 263 : 362;
}

bool iris_mirrored(enum face_eye_side side)
{
    return side == FACE_EYE_LEFT;
}

void iris_eye_box(const float *raw_mesh, enum face_eye_side side, int32_t box[4])
{
    const float *p = raw_mesh + 3 * iris_corner(side, 1);
    const float *q = raw_mesh + 3 * iris_corner(side, 0);
    double corner[4] = {fmin(p[0], q[0]), fmin(p[1], q[1]), fmax(p[0], q[0]), fmax(p[1], q[1])};
    bf_square_box(corner, IRIS_BOX_SCALE, box);
}

void iris_input(const float *face_input, const int32_t box[4], bool mirror, float *out)
{
    const float nb[4] = {(float)(box[1] / 192.0), (float)(box[0] / 192.0), (float)(box[3] / 192.0),
                         (float)(box[2] / 192.0)};
    mesh_crop_resize_f32(face_input, MESH_INPUT, MESH_INPUT, nb, IRIS_INPUT, IRIS_INPUT, out);
    if (!mirror)
        return;
    for (int32_t y = 0; y < IRIS_INPUT; y++) {
        float *row = out + (size_t)y * IRIS_INPUT * 3;
        for (int32_t x = 0; x < IRIS_INPUT / 2; x++) {
            float *a = row + (size_t)x * 3, *b = row + (size_t)(IRIS_INPUT - 1 - x) * 3;
            for (int k = 0; k < 3; k++) {
                float t = a[k];
                a[k] = b[k];
                b[k] = t;
            }
        }
    }
}

enum fa_status iris_infer(const struct iris_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const float *input, float *raw)
{
    float *outs[GMODEL_MAX_OUTPUTS];
    size_t mark = fa_arena_mark(arena);
    enum fa_status rc = nn_graph_run(net->g, ctx, arena, input, outs);
    if (rc == FA_OK)
        memcpy(raw, outs[net->out_idx], sizeof(float) * IRIS_POINTS * 3);
    fa_arena_release(arena, mark);
    return rc;
}

double iris_lid_ratio(const float c[FACE_EYE_CONTOUR][3])
{
    static const int up[3] = {11, 12, 13}, lo[3] = {3, 4, 5};
    double gap = 0;
    for (int k = 0; k < 3; k++)
        gap += hypot((double)c[up[k]][0] - c[lo[k]][0], (double)c[up[k]][1] - c[lo[k]][1]);
    gap /= 3;
    double width = hypot((double)c[0][0] - c[8][0], (double)c[0][1] - c[8][1]);
    return width > 0 ? gap / width : 0.0;
}

void iris_to_image(const int32_t face_box[4], const int32_t eye_box[4], bool mirrored,
                   const float *raw, struct face_eye *eye)
{
    double sx = eye_box[2] - eye_box[0], sy = eye_box[3] - eye_box[1];
    for (int i = 0; i < IRIS_POINTS; i++) {
        double u = (double)raw[3 * i] / 64;
        if (mirrored)
            u = 1 - u;
        double xc = u * sx + eye_box[0];
        double yc = (double)raw[3 * i + 1] / 64 * sy + eye_box[1];
        double xi, yi;
        mesh_to_image(face_box, xc, yc, &xi, &yi);
        float *o = i < FACE_EYE_CONTOUR ? eye->contour[i] : eye->iris[i - FACE_EYE_CONTOUR];
        o[0] = (float)xi;
        o[1] = (float)yi;
        o[2] = raw[3 * i + 2];
    }
    eye->ratio = iris_lid_ratio(eye->contour);
}
