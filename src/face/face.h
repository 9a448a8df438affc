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
    FACE_DET_BLAZEFACE = 0, /* default: BlazeFace's box as FaceMesh refines it */
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

/* Detect faces, largest score first (face-api order; BlazeFace: largest
 * face first). min_score <= 0 uses the detector's default (0.5; BlazeFace
 * 0.2). Writes up to `max` boxes, *n the count. FACE_DET_BLAZEFACE needs
 * FACE_NET_BLAZEFACE | FACE_NET_MESH: BlazeFace, then FaceMesh on each
 * detection; a face is one whose mesh scores >= 0.5, its box the bounding
 * box of the 468 points (Human's face box shrunk by 1/1.4), its score the
 * detection's; when none is found, BlazeFace runs once more on the image
 * framed in black (faces that fill the frame).
 * FA_ERR_ARG if that detector was not loaded. Runs on: the worker's thread. */
enum fa_status face_detect(const struct face_models *m, struct face_worker *w, const struct img *im,
                           enum face_detector det, float min_score, struct face_box *boxes,
                           size_t max, size_t *n);

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

/* Exactly face-api's withFaceDescriptors(): as face_descriptor, with the
 * square also capped by the landmark crop of `box` (the box the landmarks
 * were computed from), which changes the crop of faces at the left or top
 * image border. The CLI and the server use this one. */
enum fa_status face_descriptor_box(const struct face_models *m, struct face_worker *w,
                                   const struct img *im, const struct face_box *box,
                                   const float pts[FACE_LANDMARKS][2], float desc[FACE_DESCRIPTOR]);

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

/* ==========================================================================
 * BlazeFace, FaceMesh and Iris (MediaPipe's models as Human 3.3.6 ships
 * them): dense mesh, eyelid contours, and the eye-openness signal that
 * liveness stands on. Implemented in blazeface.c, mesh.c, iris.c (nets),
 * track.c (streams) and eyes.c (the eye-state machine, pure). Load with
 * FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS.
 * ========================================================================== */

#define FACE_MESH_POINTS 468
#define FACE_EYE_CONTOUR 71 /* Iris model: lids, eye rings, brow (PIPELINE.md 7.3) */
#define FACE_IRIS_POINTS 5  /* centre, inner side, top, outer side, bottom */

/* The subject's eyes: right = mesh points 33 (outer) / 133 (inner), on the
 * image's left in a non-mirrored picture; left = 263 / 362. */
enum face_eye_side {
    FACE_EYE_RIGHT = 0,
    FACE_EYE_LEFT = 1,
};

struct face_eye {
    float contour[FACE_EYE_CONTOUR][3]; /* x, y image px; z raw (64-input units) */
    float iris[FACE_IRIS_POINTS][3];
    /* Lid aperture: mean of the three upper-to-lower lid distances (contour
     * 11-3, 12-4, 13-5) over the corner-to-corner distance (0-8). */
    double ratio;
};

struct face_mesh {
    /* The face box for recognition: BlazeFace's box as FaceMesh refines it
     * (the bounding box of the 468 points, i.e. Human's face box shrunk by
     * 1/1.4); score = the FaceMesh face score. */
    struct face_box box;
    /* What placed the FaceMesh crop: the BlazeFace detection (image px,
     * score = detection score) or, on a tracked frame, the previous mesh
     * box (score 0). */
    struct face_box det;
    int32_t crop[4]; /* square x1, y1, x2, y2 (image px) FaceMesh saw; may reach outside */
    float score;     /* FaceMesh face score (sigmoid output) */
    float pts[FACE_MESH_POINTS][3]; /* x, y image px; z raw (192-input units) */
    struct face_eye eye[2];         /* enum face_eye_side */
};

/* BlazeFace, then FaceMesh and Iris on each detection: up to `max` faces
 * with detection score > min_score (<= 0: 0.2, Human's default), highest
 * score first; a face whose mesh score fails Human's rule
 * (round(100 * score) / 100 > 0.2) is dropped. When none is left,
 * BlazeFace runs once more on the image framed in black (a face filling
 * the frame). Only the subject's left eye crop (263/362) is mirrored for
 * the Iris model, as MediaPipe does.
 * FA_ERR_ARG when the three nets are not loaded or the image is empty.
 * Runs on: the worker's thread. */
enum fa_status face_mesh_detect(const struct face_models *m, struct face_worker *w,
                                const struct img *im, float min_score, struct face_mesh *out,
                                size_t max, size_t *n);

/* ---- one face followed without the detector (MediaPipe's tracking) */

/* Where the last frame's mesh places this frame's FaceMesh crop. A plain
 * struct the caller owns (zeroed: off); fields are private. */
struct face_track {
    bool on;         /* crop is set */
    int32_t crop[4]; /* the last mesh's box enlarged by 1.4 and squared */
    double box[4];   /* the last mesh's box x1, y1, x2, y2 */
};

/* Follow f (a mesh found by face_mesh_detect) from the next frame on.
 * Runs on: any thread. */
void face_track_start(struct face_track *t, const struct face_mesh *f);
/* FaceMesh + Iris on the crop t places, as face_mesh_detect measures a
 * face. *ok when that mesh scores at least min_score (<= 0: 0.5,
 * MediaPipe's presence threshold), lies mostly inside the frame, overlaps
 * the last one (a jump means the mesh latched onto something else) and
 * moved less than 8% of the crop's size since the last frame (a face that
 * moved faster is squeezed in the lagging crop: at 10 fps its mesh, and the
 * descriptor placed by it, drift): then t follows it; otherwise t is off
 * and the caller re-detects.
 * Errors as face_mesh_detect; t is unchanged by one.
 * Runs on: the worker's thread. */
enum fa_status face_track_next(const struct face_models *m, struct face_worker *w,
                               struct face_track *t, const struct img *im, float min_score,
                               struct face_mesh *out, bool *ok);

/* The faces other than a tracked subject (its mesh box): BlazeFace, then
 * FaceMesh on each detection whose centre lies outside the subject's box,
 * kept by face_mesh_detect's rule. *n of them, *max_w the widest one's mesh
 * box width (0 when none). Errors as face_mesh_detect.
 * Runs on: the worker's thread. */
enum fa_status face_mesh_others(const struct face_models *m, struct face_worker *w,
                                const struct img *im, const struct face_box *subject, int32_t *n,
                                float *max_w);

/* ---- the eye-state machine (pure: no networks, no allocation) */

struct face_eyes_params {
    double closed_rel; /* an eye is closed below closed_rel x its baseline; 0: default */
    double window_s;   /* baseline: median ratio over this many past seconds; 0: default */
};

/* Defaults of the two parameters, chosen on the labelled clips by
 * tools/tune_eyes.py, and the fixed parts of the rule. */
#define FACE_EYES_CLOSED_REL 0.85
#define FACE_EYES_WINDOW_S 1.5
/* Reopened: both eyes back above this x their baseline from before the
 * closed frames, within FACE_EYES_REOPEN_S after them. */
#define FACE_EYES_REOPEN_REL 0.88
#define FACE_EYES_REOPEN_S 0.3
#define FACE_EYES_MAX_LOW_S 2.0 /* a low eye stays out of its baseline this long at most */
#define FACE_EYES_HIST 128      /* baseline samples kept per eye (>= window x fps) */

/* Per-eye open baseline and blink detector for one stream. A plain struct
 * the caller owns; fields are private. */
struct face_eyes {
    struct face_eyes_params p;
    int64_t frame;         /* updates so far */
    int32_t n[2], head[2]; /* baseline history rings, per eye */
    int64_t hist_ms[2][FACE_EYES_HIST];
    float hist[2][FACE_EYES_HIST];
    bool low[2]; /* eye below its threshold since low_ms */
    int64_t low_ms[2];
    bool in_run; /* closed frames: first..last */
    int64_t run_first, run_last;
    double run_base[2]; /* baselines when the run began */
    bool pending;       /* run ended at pend_ms, awaiting reopening */
    int64_t pend_first, pend_last, pend_ms;
    double pend_base[2];
};

/* One frame's eye state. */
struct face_eyes_state {
    int64_t frame;                   /* 1-based number of this update */
    bool face;                       /* a face was given */
    double ratio[2];                 /* enum face_eye_side */
    double baseline[2];              /* causal: from earlier frames only */
    double relative[2];              /* ratio / baseline */
    bool eye_closed[2];              /* relative < closed_rel */
    bool closed;                     /* both eyes closed */
    bool blink;                      /* a blink was confirmed at this frame */
    int64_t blink_first, blink_last; /* its closed frames (frame numbers) */
};

/* p NULL: defaults. Runs on: any thread. */
void face_eyes_init(struct face_eyes *e, const struct face_eyes_params *p);
/* Forget the baselines and any closure in progress (the face changed);
 * the frame count goes on. */
void face_eyes_reset(struct face_eyes *e);
/* Feed one frame taken at t_ms (monotonic); ratio NULL (or not finite,
 * negative) = no face in it: a closure in progress is abandoned.
 * Baseline: per eye, the median of its ratios over the last window_s
 * seconds, from earlier frames only and without the frames where that eye
 * was below its threshold (for up to FACE_EYES_MAX_LOW_S, so a wrong
 * baseline recovers); with no sample in the window, the newest; the first
 * frame is its own baseline. A frame is closed when both eyes are below
 * closed_rel x baseline. A blink is a run of closed frames (one frame is
 * enough, a long run is one blink) followed by reopening: both eyes back
 * above FACE_EYES_REOPEN_REL x their baseline from before the run, within
 * FACE_EYES_REOPEN_S after it, or a new closed run after a partial
 * reopening. A run that is not followed by either (the eyes stay narrowed:
 * a smile, a squint) is no blink, and one eye closed never is.
 * Runs on: any thread. */
void face_eyes_update(struct face_eyes *e, int64_t t_ms, const double *ratio,
                      struct face_eyes_state *out);

/* ---- streams: tracking and eye state per frame */

struct face_stream_params {
    struct face_eyes_params eyes;
    float track_min_score;   /* a face needs this FaceMesh score (tracked or
                                detected; below it a track is re-detected); 0: 0.5 */
    int32_t reset_gap_ms;    /* face re-found after this long without one: changed; 0: 1000 */
    bool detect_every_frame; /* tracking off (to measure what it saves) */
};

/* One camera stream: tracking and eye state. A plain struct the caller owns
 * (one per session; no globals), initialised by face_stream_init; fields
 * are private. A worker may update any stream, one update at a time. */
struct face_stream {
    struct face_stream_params p;
    struct face_track track; /* on: the previous frame's mesh places the crop */
    bool had_face;           /* a face was seen before */
    double last_box[4];      /* last face's mesh box x1, y1, x2, y2 */
    int64_t last_face_ms;
    struct face_eyes eyes;
    uint64_t frames, detector_runs;
};

struct face_stream_frame {
    bool face;     /* a face in this frame (then mesh and eyes are set) */
    bool lost;     /* no face now, one in the previous frame */
    bool changed;  /* a new face: the first one, or one detected away from the
                      last one or after reset_gap_ms (the eye baselines were
                      reset). Geometric only: a face swapped in place keeps
                      the track; telling people apart is the descriptor's job */
    bool detected; /* BlazeFace ran on this frame (tracking was lost or off) */
    struct face_mesh mesh;
    struct face_eyes_state eyes;
};

/* p NULL: defaults. Runs on: any thread. */
void face_stream_init(struct face_stream *s, const struct face_stream_params *p);
/* A frame that could not be used (e.g. undecodable), taken at t_ms: counts
 * as a frame without a face. Runs on: any thread. */
void face_stream_skip(struct face_stream *s, int64_t t_ms, struct face_stream_frame *out);
/* Process the next frame, taken at t_ms (monotonic). The previous frame's
 * mesh places this frame's crop (MediaPipe's tracking); BlazeFace runs only
 * when there is no track, when the tracked mesh scores below
 * track_min_score, or when the face leaves the frame, and then on this same
 * frame, so tracking loses no frame. The largest detected face is followed.
 * FA_ERR_ARG when the three nets are not loaded or the image is empty;
 * nets errors as face_detect. On error the stream is unchanged.
 * Runs on: the worker's thread. */
enum fa_status face_stream_update(const struct face_models *m, struct face_worker *w,
                                  struct face_stream *s, const struct img *im, int64_t t_ms,
                                  struct face_stream_frame *out);

#endif
