/* Private to face/: MediaPipe's Iris model (64 x 64) on both eye crops
 * (PIPELINE.md section 7): eye boxes from the raw mesh, crops from the
 * FaceMesh input, mirroring of the subject's left eye only (MediaPipe's
 * orientation; Human 3.3.6 mirrors both, which weakens the right eye's
 * signal), points mapped back to image pixels, and the lid aperture ratio. */
#ifndef FA_FACE_IRIS_H
#define FA_FACE_IRIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "nn/nn.h"

#define IRIS_INPUT 64
#define IRIS_POINTS 76 /* 71 contour + 5 iris */
#define IRIS_BOX_SCALE 2.3

struct iris_net;

/* Load dir/iris.json (+ .bin) planned for one 64 x 64 x 3 input (the model
 * takes any batch; we run the two eyes one after the other, which is the
 * same since batch elements are independent). Errors as bf_load. */
enum fa_status iris_load(const char *dir, const struct nn_backend *be, struct iris_net **out,
                         struct fa_errinfo *info);
void iris_free(struct iris_net *net);
/* Arena bytes of one iris_infer. */
size_t iris_arena_bytes(const struct iris_net *net);
/* Multiply-adds of one eye. */
uint64_t iris_macs(const struct iris_net *net);
/* The planned graph (borrowed), for tests and benchmarks. */
const struct nn_graph *iris_graph(const struct iris_net *net);

/* Mesh corner points of each eye: outer, inner. */
int32_t iris_corner(enum face_eye_side side, int outer);
/* Whether this eye's crop is mirrored (the subject's left eye only). */
bool iris_mirrored(enum face_eye_side side);

/* Eye box (x1, y1, x2, y2, integer 192-crop px) from the raw mesh
 * (192-input px, 468 x 3): corner box, enlarged by 2.3, squared, rounded. */
void iris_eye_box(const float *raw_mesh, enum face_eye_side side, int32_t box[4]);

/* The Iris input for one eye: cropAndResize of box / 192 (float32) from the
 * 192 x 192 FaceMesh input, mirrored left-right when `mirror`.
 * out: 64 * 64 * 3 floats. */
void iris_input(const float *face_input, const int32_t box[4], bool mirror, float *out);

/* Run the Iris model on one eye input: raw[228] = 76 x (x, y, z) in 64-input
 * px of the crop as fed. Uses `arena` and releases it. */
enum fa_status iris_infer(const struct iris_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const float *input, float *raw);

/* Raw output -> image px (PIPELINE.md 7.4 then 6.3): x un-mirrored as
 * 1 - x / 64 when `mirrored`; z unchanged. Writes the 71 contour and 5 iris
 * points and the lid ratio into `eye`. */
void iris_to_image(const int32_t face_box[4], const int32_t eye_box[4], bool mirrored,
                   const float *raw, struct face_eye *eye);

/* Lid ratio of 71 contour points (PIPELINE.md 7.5), x and y only. */
double iris_lid_ratio(const float contour[FACE_EYE_CONTOUR][3]);

#endif
