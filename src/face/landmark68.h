/* Private to face/: face-api's 68-point landmark net (face_landmark_68,
 * ARCHITECTURE.md 6 and 8.1). Loaded once, immutable, shared by all threads;
 * a run takes one fixed block from the caller's arena and gives it back. */
#ifndef FA_FACE_LANDMARK68_H
#define FA_FACE_LANDMARK68_H

#include <stddef.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "face/prep.h"
#include "nn/nn.h"

#define LM68_INPUT 112
#define LM68_OUTPUTS 136

struct lm68_net;

/* Load dir/face_landmark_68_model-weights_manifest.json (+ .bin), check every
 * tensor's name and shape, plan the layers for 112x112 on `be`.
 * FA_ERR_MODEL_MISSING / FA_ERR_MODEL_FORMAT / FA_ERR_MODEL_TENSOR (info names
 * the file or tensor), FA_ERR_NN_BACKEND, FA_ERR_NOMEM. On FA_OK *out is the
 * caller's (lm68_free). Runs on: any thread (load time). */
enum fa_status lm68_load(const char *dir, const struct nn_backend *be, struct lm68_net **out,
                         struct fa_errinfo *info);
void lm68_free(struct lm68_net *net);
/* Arena bytes one lm68_run needs (released again before it returns). */
size_t lm68_arena_bytes(const struct lm68_net *net);

/* 68 landmarks in image pixels for the face in `box` (a detection: clipped
 * to the image and floored for the crop, landmarks shifted by the unfloored
 * clipped origin as face-api does). FA_ERR_ARG for a bad image or a box
 * outside the image or degenerate (crop width or height < 1); FA_ERR_NOMEM
 * when the arena has less than lm68_arena_bytes free. pts is written only on
 * FA_OK. Runs on: the thread owning ctx and arena. */
enum fa_status lm68_run(const struct lm68_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                        const struct img *im, const struct face_box *box,
                        float pts[FACE_LANDMARKS][2]);

/* ----------------------------------------------- pieces, for the tests */

/* Observer of intermediate tensors ("dense0.out1" ... "dense3", "avgpool",
 * "fc"); the tensor is borrowed for the call. */
typedef void (*lm68_tap_fn)(void *arg, const char *name, const struct nn_tensor *t);

/* The landmark net's input for an integer crop inside im: pad centred,
 * resize to 112x112, (x - mean) / 255. input: [112,112,3]. */
void lm68_prepare(const struct img *im, struct prep_rect crop, float *input);

/* The net alone: input [112,112,3] (normalised) to the 136 raw outputs.
 * `tap` may be NULL. Uses lm68_arena_bytes of the arena and gives them back. */
enum fa_status lm68_forward(const struct lm68_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float raw[LM68_OUTPUTS], lm68_tap_fn tap,
                            void *tap_arg);

/* face-api's postProcess + shift (ARCHITECTURE.md 6.3): raw outputs of a
 * crop_w x crop_h crop to crop-relative (rel, may be NULL) and image pixels
 * (origin = the detection's clipped, unfloored x, y). */
void lm68_postprocess(const float raw[LM68_OUTPUTS], int32_t crop_w, int32_t crop_h,
                      double origin_x, double origin_y, float rel[LM68_OUTPUTS],
                      float pts[FACE_LANDMARKS][2]);

/* Multiply-adds of the convolutions of one run (GFLOP/s reports). */
uint64_t lm68_macs(const struct lm68_net *net);

#endif
