/* Private to face/: MediaPipe's BlazeFace ("back" model, 256 x 256) as
 * Human 3.3.6 runs it (shared/tools/facemesh-reference/PIPELINE.md section
 * 5): whole-image resize without keeping the aspect ratio, anchors,
 * float32 box decoding, NMS, then the enlarged square integer face box that
 * FaceMesh crops. The network itself is a TF.js graph model (nn_graph). */
#ifndef FA_FACE_BLAZEFACE_H
#define FA_FACE_BLAZEFACE_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/status.h"
#include "img/img.h"
#include "nn/nn.h"

#define BF_INPUT 256
#define BF_ANCHORS 896
#define BF_COLS 17        /* logit, dx, dy, w, h, 6 keypoints x (dx, dy) */
#define BF_MIN_SCORE 0.2f /* Human's face.detector.minConfidence */
#define BF_IOU 0.1        /* face.detector.iouThreshold */
#define BF_BOX_SCALE 1.4  /* face.detector.scale (enlargement) */
#define BF_PAD 0.25       /* the close-up retry: this much black added on each side */

/* One detection after decoding and NMS (PIPELINE.md 5.3-5.5). */
struct bf_det {
    int32_t anchor;      /* row of the [896, 17] table */
    float score;         /* sigmoid(logit), float32 */
    float raw[BF_COLS];  /* the row itself */
    float box_input[4];  /* x1, y1, x2, y2 in 256-input px (float32 decoding) */
    double box[4];       /* the same in image px */
    double kp[6][2];     /* keypoints, image px */
    int32_t face_box[4]; /* enlarged x1.4, squared, rounded: x1, y1, x2, y2 */
};

struct bf_net;

/* Load dir/blazeface.json (+ .bin) and plan it on `be` (borrowed, must
 * outlive the net); the four outputs are checked by name and shape.
 * FA_ERR_MODEL_* with `info` naming the file or node (FA_ERR_MODEL_TENSOR also
 * for a model whose input is not 256 x 256 x 3), FA_ERR_NOMEM.
 * Runs on: any thread (load time). */
enum fa_status bf_load(const char *dir, const struct nn_backend *be, struct bf_net **out,
                       struct fa_errinfo *info);
void bf_free(struct bf_net *net);
/* Arena bytes one bf_detect needs. */
size_t bf_arena_bytes(const struct bf_net *net);
uint64_t bf_macs(const struct bf_net *net);
/* The planned graph (borrowed), for tests and benchmarks. */
const struct nn_graph *bf_graph(const struct bf_net *net);

/* Detect up to `max` faces (NMS order: descending score) with score >
 * min_score (min_score <= 0: BF_MIN_SCORE). Uses `arena` and releases what
 * it took. FA_ERR_ARG (empty image), FA_ERR_NOMEM (arena too small).
 * Runs on: the thread owning ctx and arena. */
enum fa_status bf_detect(const struct bf_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                         const struct img *im, float min_score, struct bf_det *dets, size_t max,
                         size_t *n);
/* The same on the image framed in a black canvas, pad_x columns left and
 * right, pad_y rows above and below (never materialised); boxes, keypoints
 * and face boxes are in the image's own pixels. BlazeFace misses faces
 * that fill the frame (the back model is trained on faces at a distance);
 * framed smaller, it finds them. pad 0 is bf_detect. */
enum fa_status bf_detect_padded(const struct bf_net *net, struct nn_ctx *ctx,
                                struct fa_arena *arena, const struct img *im, int32_t pad_x,
                                int32_t pad_y, float min_score, struct bf_det *dets, size_t max,
                                size_t *n);

/* ---- the stages, for the reference test */

/* PIPELINE.md 5.1: resize to 256 x 256 (TF legacy bilinear, double, stored
 * float32), then x / 127.5 - 1 in float32. out: 256 * 256 * 3 floats. */
void bf_input(const struct img *im, float *out);
/* The same for the image framed in black (bf_detect_padded). */
void bf_input_padded(const struct img *im, int32_t pad_x, int32_t pad_y, float *out);

/* The four graph outputs (Identity [512], Identity_1 [384], Identity_2
 * [512, 16], Identity_3 [384, 16]) into the [896, 17] table. */
void bf_table(const float *logit512, const float *logit384, const float *reg512,
              const float *reg384, float *table);

/* Anchor centre of row a (input px). */
void bf_anchor(int32_t a, float *ax, float *ay);

/* PIPELINE.md 5.3 for all 896 rows: boxes x1, y1, x2, y2 (input px) and
 * sigmoid scores, float32 as TF.js computes them. */
void bf_boxes(const float *table, float (*boxes)[4], float *scores);

/* Decode, NMS (max outputs, IoU >= BF_IOU drops) and face boxes for an
 * img_w x img_h image, from the [896, 17] table. scratch: at least
 * bf_decode_scratch_bytes() bytes, 8-byte aligned. Returns the count. */
size_t bf_decode_scratch_bytes(void);
size_t bf_decode(const float *table, int32_t img_w, int32_t img_h, float min_score, void *scratch,
                 struct bf_det *dets, size_t max);

/* PIPELINE.md 5.5 steps 2-3 (also 7.1 with factor 2.3): enlarge the box
 * (x1, y1, x2, y2) by `scale` about its centre, square it on the larger
 * side, round the corners (floor(v + 0.5)). */
void bf_square_box(const double box[4], double scale, int32_t out[4]);

#endif
