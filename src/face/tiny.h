/* Private to face/: face-api.js's Tiny Face Detector (a tiny-YOLOv2 with
 * depthwise-separable convolutions, one class, 5 anchors), input 416 x 416,
 * ARCHITECTURE.md section 4. The engine (face/engine.c) owns the models and
 * calls these; the reference test also taps the intermediate tensors. */
#ifndef FA_FACE_TINY_H
#define FA_FACE_TINY_H

#include <stddef.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"

#define TINY_INPUT 416      /* face-api's default inputSize */
#define TINY_MIN_SCORE 0.5f /* default scoreThreshold */
#define TINY_IOU 0.4        /* fixed NMS IoU threshold */
#define TINY_GRID 13        /* output cells per side at 416 */
#define TINY_ANCHORS 5

struct tiny_net;

/* Load tiny_face_detector_model-weights_manifest.json (+ .bin) from `dir`
 * (the face-api models folder, e.g. models/face-api) and plan its layers on
 * `be` (borrowed; must outlive the net). Every tensor is checked by name and
 * shape. FA_ERR_MODEL_MISSING, FA_ERR_MODEL_FORMAT, FA_ERR_MODEL_TENSOR
 * (info names the tensor), FA_ERR_NN_BACKEND, FA_ERR_NOMEM. On FA_OK *out is
 * the caller's (tiny_free); immutable, shareable between threads.
 * Runs on: any thread (load time). */
enum fa_status tiny_load(const char *dir, const struct nn_backend *be, struct tiny_net **out,
                         struct fa_errinfo *info);
void tiny_free(struct tiny_net *net);

/* Arena bytes one tiny_detect needs (activations and scratch). */
size_t tiny_arena_bytes(const struct tiny_net *net);

/* Detect faces in `im` as face-api's TinyFaceDetector.locateFaces with
 * inputSize 416: boxes in image pixels, not clipped, in NMS order (highest
 * score first). min_score <= 0 means TINY_MIN_SCORE. Writes up to `max`
 * boxes; *n is the number written. Uses `arena` for activations and releases
 * what it took before returning. FA_ERR_ARG (empty image, NULL pointers),
 * FA_ERR_NOMEM (arena smaller than tiny_arena_bytes), or a backend error.
 * Runs on: the thread that owns ctx and arena. */
enum fa_status tiny_detect(const struct tiny_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                           const struct img *im, float min_score, struct face_box *boxes,
                           size_t max, size_t *n);

/* ---- for the reference test */

/* Called with every layer's output: "tiny.input", "tiny.conv0", "tiny.pool0",
 * "tiny.conv1.depthwise", "tiny.conv1", "tiny.pool1", ..., "tiny.pool5",
 * "tiny.conv8" (the names of the reference tensor dump where it has them).
 * The tensor is borrowed for the call. */
struct tiny_tap {
    void (*fn)(void *arg, const char *name, const struct nn_tensor *t);
    void *arg;
};

/* tiny_detect, calling `tap` (may be NULL) on each layer's output. */
enum fa_status tiny_run(const struct tiny_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                        const struct img *im, float min_score, const struct tiny_tap *tap,
                        struct face_box *boxes, size_t max, size_t *n);

/* The post-processing alone: decode a raw [13, 13, 25] output for an image of
 * img_w x img_h, NMS, write boxes as tiny_detect. scratch: at least
 * tiny_decode_scratch_bytes() bytes, 8-byte aligned. */
size_t tiny_decode_scratch_bytes(void);
void tiny_decode(const float *raw, int32_t img_w, int32_t img_h, float min_score, void *scratch,
                 struct face_box *boxes, size_t max, size_t *n);

/* Multiply-adds of the convolutions of one run (GFLOP/s reports). */
uint64_t tiny_macs(const struct tiny_net *net);

#endif
