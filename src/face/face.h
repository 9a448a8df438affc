/* The face engine: camera frame in, faces, landmarks and descriptors out.
 * Networks are ported from face-api.js (tiny face detector, SSD MobileNet v1,
 * 68-point landmarks, 128-d descriptor) and from MediaPipe via Human
 * (BlazeFace, FaceMesh, Iris). Models are loaded once and shared read-only by
 * all threads; each thread owns a struct face_worker (nn context + arena), so
 * a frame allocates nothing on the heap after warm-up.
 *
 * Coordinates are image pixels, x right, y down, boxes as x, y, w, h. */
#ifndef FA_FACE_FACE_H
#define FA_FACE_FACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "img/img.h"
#include "nn/nn.h"

#define FACE_LANDMARKS 68
#define FACE_DESCRIPTOR 128
#define FACE_MAX_FACES 64

enum face_detector {
    FACE_DET_BLAZEFACE = 0, /* default once available (eye-signal issue) */
    FACE_DET_SSD,
    FACE_DET_TINY,
};

/* Which networks face_models_load loads (bit set). */
enum face_net {
    FACE_NET_TINY = 1u << 0,
    FACE_NET_SSD = 1u << 1,
    FACE_NET_LANDMARKS = 1u << 2,
    FACE_NET_DESCRIPTOR = 1u << 3,
    FACE_NET_BLAZEFACE = 1u << 4,
    FACE_NET_MESH = 1u << 5,
    FACE_NET_IRIS = 1u << 6,
    FACE_NET_FACEAPI = 0x0f,
    FACE_NET_ALL = 0x7f,
};

struct face_box {
    double x, y, w, h; /* image pixels, as face-api reports them */
    float score;
};

/* Loaded networks. Immutable after load; shared by all threads. */
struct face_models;

/* Load the networks in `nets` from `dir` (the models/ tree of
 * tools/fetch_models.sh: dir/face-api/..., dir/human/...); dir NULL means
 * $FACEAUTH_MODELS, else ./models. Every tensor is checked (name, shape,
 * byte range). FA_ERR_MODEL_MISSING / FA_ERR_MODEL_FORMAT /
 * FA_ERR_MODEL_TENSOR with `info` naming the file or tensor.
 * Runs on: any thread (load time). */
enum fa_status face_models_load(const char *dir, const struct nn_backend *be, unsigned nets,
                                struct face_models **out, struct fa_errinfo *info);
void face_models_free(struct face_models *m);
/* The model directory that face_models_load(NULL, ...) would use. */
const char *face_models_default_dir(void);

/* Per-thread working state: nn context and activation arena.
 * Runs on: the thread that uses it. */
struct face_worker;
enum fa_status face_worker_new(const struct face_models *m, struct face_worker **out);
void face_worker_free(struct face_worker *w);

/* Detect faces, largest score first (face-api order). min_score <= 0 uses
 * the detector's default (0.5). Writes up to `max` boxes, *n the count.
 * FA_ERR_ARG if that detector was not loaded. Runs on: the worker's thread. */
enum fa_status face_detect(const struct face_models *m, struct face_worker *w,
                           const struct img *im, enum face_detector det, float min_score,
                           struct face_box *boxes, size_t max, size_t *n);

/* 68 landmarks (image pixels) for a face box from any detector or the
 * caller (the face-api crop: box clipped to the image, floored).
 * FA_ERR_ARG for a box outside the image. */
enum fa_status face_landmarks(const struct face_models *m, struct face_worker *w,
                              const struct img *im, const struct face_box *box,
                              float pts[FACE_LANDMARKS][2]);

/* 128-float descriptor (not normalised, as face-api) of the face whose 68
 * landmarks are given (face-api's "dlib alignment" square crop). */
enum fa_status face_descriptor(const struct face_models *m, struct face_worker *w,
                               const struct img *im, const float pts[FACE_LANDMARKS][2],
                               float desc[FACE_DESCRIPTOR]);

/* Descriptor of an explicit crop rectangle (x, y, w, h; clipped, floored),
 * e.g. the whole image as face-api's recognition example does. */
enum fa_status face_descriptor_rect(const struct face_models *m, struct face_worker *w,
                                    const struct img *im, const struct face_box *rect,
                                    float desc[FACE_DESCRIPTOR]);

/* Multiply-adds of one run of a loaded network (one bit of enum face_net),
 * 0 if it is not loaded. For GFLOP/s reports. */
uint64_t face_models_macs(const struct face_models *m, enum face_net net);

/* Euclidean distance between two descriptors. */
float face_distance(const float a[FACE_DESCRIPTOR], const float b[FACE_DESCRIPTOR]);

/* Default same-person threshold on face_distance (documented in README). */
#define FACE_SAME_THRESHOLD 0.6f

#endif
