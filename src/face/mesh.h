/* Private to face/: FaceMesh (192 x 192) on the enlarged square face box
 * (PIPELINE.md section 6), TF's cropAndResize sampling shared with the eye
 * crops, and the composition detector -> mesh -> both irises that the
 * engine's public functions (face_mesh_detect, face_stream_update) call. */
#ifndef FA_FACE_MESH_H
#define FA_FACE_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"

#define MESH_INPUT 192
#define MESH_MIN_SCORE 0.2 /* Human: kept when round(100 * score) / 100 > 0.2 */
#define MESH_PRESENCE 0.5f /* a face for recognition and streams (MediaPipe's threshold) */

struct bf_net;
struct iris_net;
struct mesh_net;

/* The three networks of the pipeline (borrowed; NULL when not loaded). */
struct mesh_nets {
    const struct bf_net *bf;
    const struct mesh_net *mesh;
    const struct iris_net *iris;
};

/* Load dir/facemesh.json (+ .bin, float16 weights) planned for one
 * 192 x 192 x 3 input; outputs checked by name and size. Errors as bf_load.
 * Runs on: any thread (load time). */
enum fa_status mesh_load(const char *dir, const struct nn_backend *be, struct mesh_net **out,
                         struct fa_errinfo *info);
void mesh_free(struct mesh_net *net);
/* Arena bytes of one mesh_infer (the graph alone). */
size_t mesh_arena_bytes(const struct mesh_net *net);
uint64_t mesh_macs(const struct mesh_net *net);
/* The planned graph (borrowed), for tests and benchmarks. */
const struct nn_graph *mesh_graph(const struct mesh_net *net);

/* tf.image.cropAndResize of one box (y1, x1, y2, x2 normalised, float32),
 * bilinear, extrapolation 0, exactly as TF.js's cpu kernel (PIPELINE.md
 * 6.1): from an 8-bit RGB image (values 0..255) or from an HWC float
 * image. ch, cw <= 256. out: ch * cw * 3 floats. Runs on: any thread. */
void mesh_crop_resize_u8(const struct img *im, const float box[4], int32_t ch, int32_t cw,
                         float *out);
void mesh_crop_resize_f32(const float *src, int32_t hi, int32_t wi, const float box[4], int32_t ch,
                          int32_t cw, float *out);

/* FaceMesh input for the integer face box (x1, y1, x2, y2 image px):
 * cropAndResize of box / (W, H) rounded to float32, then / 255.
 * out: 192 * 192 * 3 floats. */
void mesh_input(const struct img *im, const int32_t box[4], float *out);

/* Run FaceMesh on its input: raw[1404] = 468 x (x, y, z) in 192-input px,
 * *score = face flag. Uses `arena` and releases it. */
enum fa_status mesh_infer(const struct mesh_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const float *input, float *raw, float *score);

/* Human's keep rule on the face score. */
bool mesh_kept(float score);

/* 192-input px -> image px for the face box (PIPELINE.md 6.3). */
void mesh_to_image(const int32_t box[4], double x, double y, double *ix, double *iy);

/* The recognition box: the mesh points' bounding box (x, y, w, h), which
 * is Human's face box (that box enlarged by 1.4) shrunk by 1/1.4. */
void mesh_face_box(const float pts[FACE_MESH_POINTS][3], struct face_box *out);
/* The tracking crop for the next frame: the bounding box enlarged by 1.4
 * and squared (Human's mesh box). */
void mesh_track_crop(const float pts[FACE_MESH_POINTS][3], int32_t crop[4]);

/* Arena bytes of mesh_face (mesh, both eyes, buffers). */
size_t mesh_face_arena_bytes(const struct mesh_nets *nets);

/* FaceMesh on the face box `crop`, then (when `eyes`) Iris on both eyes if
 * the face is kept. Fills out->crop, score, pts, box and eye[]; *kept says
 * whether the mesh passed Human's rule (out->eye is only set when it did
 * and `eyes`). out->det is left to the caller. FA_ERR_ARG when a needed net
 * is missing or the image is empty. Runs on: the thread owning ctx, arena. */
enum fa_status mesh_face(const struct mesh_nets *nets, struct nn_ctx *ctx, struct fa_arena *arena,
                         const struct img *im, const int32_t crop[4], bool eyes,
                         struct face_mesh *out, bool *kept);

/* BlazeFace then mesh_face on each detection (face_mesh_detect); faces
 * kept by Human's rule. When BlazeFace finds none that is kept, once more
 * on the image framed in black (bf_detect_padded, BF_PAD), for faces that
 * fill the frame. */
enum fa_status mesh_detect_all(const struct mesh_nets *nets, struct nn_ctx *ctx,
                               struct fa_arena *arena, const struct img *im, float min_score,
                               struct face_mesh *out, size_t max, size_t *n);
/* BlazeFace pass 0 (the image) or 1 (framed in black, BF_PAD each side). */
struct bf_det;
enum fa_status mesh_detect_pass(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                struct fa_arena *arena, const struct img *im, int pass,
                                float min_score, struct bf_det *dets, size_t max, size_t *n);

/* Arena bytes of mesh_detect_all, mesh_detect_boxes and track_update. */
size_t mesh_detect_arena_bytes(const struct mesh_nets *nets);

/* The recognition face finder (face_detect with FACE_DET_BLAZEFACE):
 * BlazeFace, FaceMesh on each detection (no Iris), and for each face whose
 * mesh scores >= MESH_PRESENCE the mesh box (BlazeFace's box as FaceMesh
 * refines it, shrunk by 1/1.4), score = detection score; largest face
 * first; the framed retry as mesh_detect_all. Needs bf and mesh. */
enum fa_status mesh_detect_boxes(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                 struct fa_arena *arena, const struct img *im, float min_score,
                                 struct face_box *boxes, size_t max, size_t *n);

/* face_stream_update's work (track.c). */
/* face_mesh_others on the nets. */
enum fa_status mesh_detect_others(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                  struct fa_arena *arena, const struct img *im,
                                  const struct face_box *subject, int32_t *n, float *max_w);
/* face_track_next on the nets. */
enum fa_status track_face_next(const struct mesh_nets *nets, struct nn_ctx *ctx,
                               struct fa_arena *arena, struct face_track *t, const struct img *im,
                               float min_score, struct face_mesh *out, bool *ok);
enum fa_status track_update(const struct mesh_nets *nets, struct nn_ctx *ctx,
                            struct fa_arena *arena, struct face_stream *s, const struct img *im,
                            int64_t t_ms, struct face_stream_frame *out);

#endif
