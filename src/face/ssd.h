/* Private to face/: face-api.js's SSD MobileNet V1 face detector, input
 * 512 x 512, 5118 stored anchors, ARCHITECTURE.md section 5. The engine
 * (face/engine.c) owns the models and calls these; the reference test also
 * taps the intermediate tensors. */
#ifndef FA_FACE_SSD_H
#define FA_FACE_SSD_H

#include <stddef.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"

#define SSD_INPUT 512
#define SSD_ANCHORS 5118
#define SSD_MIN_SCORE 0.5f /* default minConfidence */
#define SSD_MAX_RESULTS 100
#define SSD_IOU 0.5 /* fixed NMS IoU threshold */

struct ssd_net;

/* Load ssd_mobilenetv1_model-weights_manifest.json (+ .bin) from `dir` (the
 * face-api models folder) and plan its layers on `be` (borrowed; must outlive
 * the net). Every tensor used is checked by name and shape; the batch-norm of
 * each depthwise layer is folded into its filters and bias. Errors as
 * tiny_load. On FA_OK *out is the caller's (ssd_free); immutable, shareable
 * between threads. Runs on: any thread (load time). */
enum fa_status ssd_load(const char *dir, const struct nn_backend *be, struct ssd_net **out,
                        struct fa_errinfo *info);
void ssd_free(struct ssd_net *net);

/* Arena bytes one ssd_detect needs (activations and scratch). */
size_t ssd_arena_bytes(const struct ssd_net *net);

/* Detect faces in `im` as face-api's SsdMobilenetv1.locateFaces with
 * maxResults 100: boxes in image pixels, clipped at the top/left image border
 * (and at the bottom/right of the padded square only), highest score first.
 * min_score <= 0 means SSD_MIN_SCORE. Writes up to `max` boxes; *n is the
 * number written. Uses `arena` and releases what it took before returning.
 * FA_ERR_ARG (empty image, NULL pointers), FA_ERR_NOMEM (arena smaller than
 * ssd_arena_bytes), or a backend error. Runs on: the thread that owns ctx
 * and arena. */
enum fa_status ssd_detect(const struct ssd_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                          const struct img *im, float min_score, struct face_box *boxes, size_t max,
                          size_t *n);

/* ---- for the reference test */

/* Called with every layer's output, named as the reference tensor dump:
 * "ssd.input", "ssd.mobilenet.conv_0", "ssd.mobilenet.conv_<i>.depthwise",
 * "ssd.mobilenet.conv_<i>.pointwise", "ssd.prediction.conv_<j>",
 * "ssd.box_predictor_<k>" (box encodings and class logits side by side:
 * [G, G, 4A + 3A]), "ssd.box_encodings" [1, 1, 5118, 4], "ssd.class_logits"
 * [1, 1, 5118, 3], "ssd.output.boxes" [1, 1, 5118, 4], "ssd.output.scores"
 * [1, 1, 5118, 1]. The tensor is borrowed for the call. */
struct ssd_tap {
    void (*fn)(void *arg, const char *name, const struct nn_tensor *t);
    void *arg;
};

/* ssd_detect, calling `tap` (may be NULL) on each layer's output. */
enum fa_status ssd_run(const struct ssd_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                       const struct img *im, float min_score, const struct ssd_tap *tap,
                       struct face_box *boxes, size_t max, size_t *n);

/* The post-processing alone: decode the concatenated raw heads (enc [5118, 4]
 * = ty, tx, th, tw; logits [5118, 3]) against the net's anchors, NMS, and
 * write boxes for an img_w x img_h image as ssd_detect. scratch: at least
 * ssd_decode_scratch_bytes() bytes, 8-byte aligned. */
size_t ssd_decode_scratch_bytes(void);
void ssd_decode(const struct ssd_net *net, const float *enc, const float *logits, int32_t img_w,
                int32_t img_h, float min_score, void *scratch, const struct ssd_tap *tap,
                struct face_box *boxes, size_t max, size_t *n);

/* The stored anchors, [5118][4] = (ymin, xmin, ymax, xmax). */
const float *ssd_anchors(const struct ssd_net *net);

/* Multiply-adds of the convolutions of one run (GFLOP/s reports). */
uint64_t ssd_macs(const struct ssd_net *net);

#endif
