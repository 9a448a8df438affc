/* Private to face/: face-api's face recognition net (face_recognition,
 * ARCHITECTURE.md 7 and 8.2), a ResNet-34-like net giving a 128-float
 * descriptor (not normalised). Loaded once, immutable, shared by all threads;
 * a run takes one fixed block from the caller's arena and gives it back. */
#ifndef FA_FACE_DESCRIPTOR_H
#define FA_FACE_DESCRIPTOR_H

#include <stddef.h>

#include "base/arena.h"
#include "base/status.h"
#include "face/face.h"
#include "face/prep.h"
#include "nn/nn.h"

#define DESC_INPUT 150

struct desc_net;

/* Load dir/face_recognition_model-weights_manifest.json (+ .bin), check every
 * tensor's name and shape, fold each conv's scale layer into its weights and
 * bias, plan the layers for 150x150 on `be`. Errors as lm68_load. On FA_OK
 * *out is the caller's (desc_free). Runs on: any thread (load time). */
enum fa_status desc_load(const char *dir, const struct nn_backend *be, struct desc_net **out,
                         struct fa_errinfo *info);
void desc_free(struct desc_net *net);
/* Arena bytes one desc_run_* needs (released again before it returns). */
size_t desc_arena_bytes(const struct desc_net *net);

/* Descriptor of the face with these 68 image-pixel landmarks: the plain
 * "dlib" square (align_dlib with no crop cap), clipped to the image.
 * face-api additionally caps the square's width and height with the landmark
 * crop's (crop_w + x, crop_h + y), which changes the crop of faces at the
 * left or top image border: desc_run_landmarks_crop does exactly that.
 * FA_ERR_ARG for a bad image, non-finite points or a square outside the image
 * or degenerate; FA_ERR_NOMEM when the arena has less than desc_arena_bytes
 * free. out is written only on FA_OK. Runs on: the thread owning ctx, arena. */
enum fa_status desc_run_landmarks(const struct desc_net *net, struct nn_ctx *ctx,
                                  struct fa_arena *arena, const struct img *im,
                                  const float pts[FACE_LANDMARKS][2], float out[FACE_DESCRIPTOR]);

/* Exactly face-api's withFaceDescriptors(): as desc_run_landmarks, with the
 * square capped by the landmark crop the points came from (the detection box
 * given to lm68_run; align_clip of it). */
enum fa_status desc_run_landmarks_crop(const struct desc_net *net, struct nn_ctx *ctx,
                                       struct fa_arena *arena, const struct img *im,
                                       const float pts[FACE_LANDMARKS][2],
                                       const struct face_box *landmark_box,
                                       float out[FACE_DESCRIPTOR]);

/* Descriptor of an explicit rectangle (clipped to the image, floored), e.g.
 * the whole image as face-api's computeFaceDescriptor(image). Errors as
 * desc_run_landmarks. */
enum fa_status desc_run_rect(const struct desc_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                             const struct img *im, const struct face_box *rect,
                             float out[FACE_DESCRIPTOR]);

/* ----------------------------------------------- pieces, for the tests */

/* The crop desc_run_landmarks_crop feeds to the net (landmark_box NULL: the
 * uncapped square of desc_run_landmarks). */
enum fa_status desc_crop_from_landmarks(const struct img *im, const float pts[FACE_LANDMARKS][2],
                                        const struct face_box *landmark_box,
                                        struct prep_rect *crop);

/* The net's input for an integer crop inside im: pad centred, resize to
 * 150x150, (x - mean) / 255. input: [150,150,3]. */
void desc_prepare(const struct img *im, struct prep_rect crop, float *input);

/* Observer of intermediate tensors ("conv32_down", "maxpool", "conv32_1" ...
 * "conv256_down_out", "global_avg"); borrowed for the call. */
typedef void (*desc_tap_fn)(void *arg, const char *name, const struct nn_tensor *t);

/* The net alone: input [150,150,3] to the descriptor. tap may be NULL. */
enum fa_status desc_forward(const struct desc_net *net, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float out[FACE_DESCRIPTOR], desc_tap_fn tap,
                            void *tap_arg);

/* Multiply-adds of the convolutions of one run (GFLOP/s reports). */
uint64_t desc_macs(const struct desc_net *net);

#endif
