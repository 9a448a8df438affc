/* Session logic: the decisions that make faceauth a biometric system (R11-R13).
 * Which frames count (quality), whether a live person is in front of the
 * camera (blinks, head and face motion, repeated frames, a face swapped
 * mid-session), and whether it is the right person (templates, calibrated
 * confidence, 1:1 and open-set 1:N decisions).
 *
 * Pure decisions: no I/O, no threads, no allocation, no networks. The engine's
 * outputs for one frame arrive in a struct logic_frame (app/ fills it); all
 * state lives in plain structs the caller owns (one struct logic_session per
 * session), so the same code serves a live session and the offline
 * evaluation (bench/eval_sessions.c). Every threshold below was measured on
 * ../shared/data/faces with the repo's own engine by tools/tune_logic.py,
 * which prints the figures that chose it. Runs on: any thread. */
#ifndef FA_LOGIC_LOGIC_H
#define FA_LOGIC_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "face/face.h"

/* ==========================================================================
 * Reasons: why a frame did not count, or why a session failed. Names are the
 * machine-readable `reason` of frame_processed; messages are short texts a
 * page can show.
 * ========================================================================== */
#define LOGIC_REASONS_X(X)                                                                         \
    X(LOGIC_OK, "ok", NULL)                                                                        \
    X(LOGIC_NO_FACE, "no_face", "No face found: look at the camera")                               \
    X(LOGIC_MULTIPLE_FACES, "multiple_faces", "Several faces: only you should be in the picture")  \
    X(LOGIC_FACE_TOO_SMALL, "face_too_small", "Move closer to the camera")                         \
    X(LOGIC_NOT_CENTERED, "not_centered", "Center your face in the picture")                       \
    X(LOGIC_TOO_DARK, "too_dark", "Too dark: find more light")                                     \
    X(LOGIC_TOO_BRIGHT, "too_bright", "Too bright: avoid direct light on your face")               \
    X(LOGIC_LOW_CONTRAST, "low_contrast", "Face not clear: improve the lighting")                  \
    X(LOGIC_BLURRY, "blurry", "Image blurred: hold still")                                         \
    X(LOGIC_NOT_FRONTAL, "not_frontal", "Look straight at the camera")                             \
    X(LOGIC_LOW_SCORE, "face_unclear", "Face not clearly visible: remove anything covering it")    \
    X(LOGIC_DUPLICATE_FRAME, "duplicate_frame", "The same image was sent again")                   \
    X(LOGIC_FACE_CHANGED, "face_changed", "A different face appeared: the session is cancelled")   \
    X(LOGIC_LIVENESS_FAILED, "liveness_failed",                                                    \
      "No live person seen (blink and move your head slightly): the session is cancelled")         \
    X(LOGIC_INCONSISTENT, "inconsistent_samples",                                                  \
      "The enrollment pictures do not show one person: please retry")                              \
    X(LOGIC_DUPLICATE_USER, "duplicate_face", "This face is already enrolled as another user")

enum logic_reason {
#define LOGIC_X_ENUM(e, name, msg) e,
    LOGIC_REASONS_X(LOGIC_X_ENUM)
#undef LOGIC_X_ENUM
        LOGIC_REASON_COUNT
};

/* "no_face", ...; NULL past the end. */
const char *logic_reason_name(enum logic_reason r);
/* A short human message; NULL for LOGIC_OK. */
const char *logic_reason_message(enum logic_reason r);

/* ==========================================================================
 * One frame as the engine saw it (app/ fills this from BlazeFace + FaceMesh +
 * Iris on every face, the 68-point net and the descriptor on the subject).
 * ========================================================================== */

/* Statistics of the inner face (the recognition box shrunk to its central
 * 80%), resampled to LOGIC_PATCH x LOGIC_PATCH grey levels so that they do
 * not depend on the face's size in pixels. */
#define LOGIC_PATCH 64
struct logic_image_stats {
    double luma_mean; /* 0-255 */
    double luma_std;  /* contrast, 0-128 */
    double sharpness; /* standard deviation of the 3x3 Laplacian of the patch
                         over (luma_std + 8): fine detail relative to contrast */
};

/* Compute the statistics of the face in `box` of an 8-bit RGB image (rows
 * top to bottom, 3 bytes a pixel, no padding). A box outside the image gives
 * zeros. Pure arithmetic, no allocation. Runs on: any thread. */
void logic_face_stats(const uint8_t *rgb, int32_t w, int32_t h, const struct face_box *box,
                      struct logic_image_stats *out);

struct logic_frame {
    int64_t t_ms;                    /* capture time (monotonic; the session's clock) */
    int32_t img_w, img_h;            /* image size */
    uint64_t pixel_hash;             /* hash of the decoded pixels: exact repeats */
    int32_t faces;                   /* faces found in the image */
    double second_w;                 /* width of the second largest face, 0 if none */
    bool face;                       /* faces >= 1; the largest one (the subject) follows */
    struct face_box box;             /* its recognition box (face_mesh.box), image px */
    float score;                     /* FaceMesh face score */
    float mesh[FACE_MESH_POINTS][3]; /* x, y image px; z in px (raw z x crop / 192) */
    double eye_ratio[2];             /* lid aperture per eye (enum face_eye_side) */
    struct logic_image_stats stats;
    bool has_desc;               /* a descriptor was computed (single face, usable size) */
    bool desc_skipped;           /* passes quality, but the descriptor was not computed:
                                    logic_session_wants_desc said no */
    float desc[FACE_DESCRIPTOR]; /* face-api's 128-d descriptor, as computed */
};

/* ==========================================================================
 * Geometry from the mesh (pose.c)
 * ========================================================================== */

/* Head pose in degrees from the mesh: yaw (turn, + toward the subject's
 * left), pitch (nod, + chin up, 0 for a face looking into the camera), roll
 * (in-plane tilt). From the eye-corner axis and the forehead-chin axis of
 * the 3D mesh. */
struct logic_pose {
    double yaw, pitch, roll;
};
void logic_pose_of(const struct logic_frame *f, struct logic_pose *out);

/* Shape features of the face in the image (liveness.c watches them):
 * `nose_x`, `nose_y` are the nose tip's affine coordinates in the frame of
 * the eye corners and mouth corners (parallax of a turning head, and
 * expressions); `mouth_open` is the inner-lip gap over the face height;
 * `mouth_wide` the mouth-corner distance over the eye-corner distance; `brow`
 * the brow-to-eye height over the face height; then the pose. The first
 * LOGIC_SHAPE_FEATURES are ratios that moving a picture in the image plane
 * does not change. */
enum logic_feature {
    LOGIC_F_NOSE_X = 0,
    LOGIC_F_NOSE_Y,
    LOGIC_F_MOUTH_OPEN,
    LOGIC_F_MOUTH_WIDE,
    LOGIC_F_BROW,
    LOGIC_F_YAW,
    LOGIC_F_PITCH,
    LOGIC_F_ROLL,
    LOGIC_FEATURES
};
#define LOGIC_SHAPE_FEATURES 5
/* Name of a feature ("nose_x", ...). */
const char *logic_feature_name(enum logic_feature k);
/* All features of a frame with a face (yaw and pitch in degrees). */
void logic_features_of(const struct logic_frame *f, double out[LOGIC_FEATURES]);

/* ==========================================================================
 * Quality (quality.c): R12
 * ========================================================================== */

/* A frame counts when every measure is inside its limit; quality_score is
 * then >= 0.5 (each measure scores 0.5 at its limit, 1 when comfortably
 * good; the score is their minimum). The image limits (face size, luma,
 * contrast, sharpness) and the pose limits (yaw, pitch) are measured by
 * tools/tune_logic.py: where degrading a good face (blur, darken, brighten,
 * flatten, shrink) moves its descriptor by a median 0.2 (1.4 x the spread of
 * a live session's own frames), and the head angle beyond which the
 * descriptor drifts 0.075 more than on frontal frames. The others are design
 * choices: a second face at least half as wide as the subject's is a second
 * person in the picture; the face's centre must not lie in the outer tenth of
 * the picture nor a tenth of its mesh outside it; FaceMesh's own presence
 * threshold (0.5); roll does not hurt the aligned descriptor up to 30 deg. */
#define LOGIC_MIN_FACE_PX 39        /* recognition box width */
#define LOGIC_SECOND_FACE_RATIO 0.5 /* a 2nd face this wide x the 1st: multiple_faces */
#define LOGIC_MAX_CENTER_OFF 0.40   /* face centre off the image centre, share of the size */
#define LOGIC_MIN_INSIDE 0.90       /* share of the mesh points inside the image */
#define LOGIC_MIN_LUMA 27.1
#define LOGIC_MAX_LUMA 212.0
#define LOGIC_MIN_CONTRAST 8.25
#define LOGIC_MIN_SHARPNESS 0.168
#define LOGIC_MAX_YAW 15.0
#define LOGIC_MAX_PITCH 15.0
#define LOGIC_MAX_ROLL 30.0
#define LOGIC_MIN_SCORE 0.5      /* FaceMesh face score */
#define LOGIC_PITCH_OFFSET 3.3   /* mesh pitch of a face looking into the camera */
#define LOGIC_QUALITY_COUNTS 0.5 /* documented: a frame counts iff score >= this */

struct logic_quality_params {
    int min_face_px; /* 0: LOGIC_MIN_FACE_PX */
};

struct logic_quality {
    enum logic_reason reason; /* LOGIC_OK: the frame may count */
    double score;             /* [0, 1]: min over the measures, each 0.5 at its limit */
    double face_px, center_off, inside, luma, contrast, sharpness, det_score;
    struct logic_pose pose;
};

/* Judge one frame. The first failing measure, in the order of
 * enum logic_reason, names the reason. p NULL: defaults. */
void logic_quality_eval(const struct logic_frame *f, const struct logic_quality_params *p,
                        struct logic_quality *q);

/* ==========================================================================
 * Matching (match.c): R13
 * ========================================================================== */

/* Descriptors are compared after L2 normalisation (distance in [0, 2]).
 * LOGIC_MATCH_DIST is the operating point: the largest distance with FMR <=
 * 0.1% on the 2770 impostor pairs of the 77 identity photos AND no 1:N false
 * match (each photo against every other person's template); measured there:
 * FAR 0/2770, FRR 112/156 photo pairs (72%: single press photos years apart
 * are hard for face-api's descriptor); a live session's probe (mean of its
 * frames) lies at 0.12-0.27 from the same person's enrollment on the clips
 * (bench/eval_sessions.c: enrollment on the clip played backwards).
 * LOGIC_SWAP_DIST (a new face mid-session, 2 good frames in a row) sits
 * midway between the largest a genuine clip reaches (0.398) and the least
 * another person does (0.432): thin margins, measured and printed by the
 * script. LOGIC_AMBIGUOUS_MARGIN is a design choice. */
#define LOGIC_MATCH_DIST 0.31
#define LOGIC_SWAP_DIST 0.41
#define LOGIC_ENROLL_DIST 0.41      /* enrollment samples must all be this close to their mean */
#define LOGIC_AMBIGUOUS_MARGIN 0.03 /* 1:N: runner-up within this of the best: refuse */
/* confidence = 1 / (1 + exp(LOGIC_CONF_SLOPE * (d - LOGIC_CONF_MID))): the
 * probability that the two faces are the same person for equal prior odds
 * (logistic regression with balanced classes on the same/different photo
 * pairs). At the operating point it is 0.994: `authenticated` is the
 * decision, and a refused match can still show a high confidence. */
#define LOGIC_CONF_SLOPE 42.1
#define LOGIC_CONF_MID 0.433

/* out = v / |v| (zeros stay zeros). out may alias v. */
void logic_normalize(const float v[FACE_DESCRIPTOR], float out[FACE_DESCRIPTOR]);
/* Euclidean distance of two normalised descriptors. */
float logic_distance(const float a[FACE_DESCRIPTOR], const float b[FACE_DESCRIPTOR]);
/* Normalised mean of the normalised descriptors d[0..n). n >= 1. */
void logic_mean(const float (*d)[FACE_DESCRIPTOR], int n, float out[FACE_DESCRIPTOR]);
/* Calibrated confidence in [0, 1] of a distance (see LOGIC_CONF_*). */
double logic_confidence(double distance);

/* An enrollment's samples belong to one person: every normalised sample is
 * within LOGIC_ENROLL_DIST of their normalised mean. */
bool logic_samples_consistent(const float (*d)[FACE_DESCRIPTOR], int n);

/* 1:N over a gallery of normalised templates, stored row by row (n rows of
 * FACE_DESCRIPTOR floats, `vecs` 64-byte aligned for SIMD), for a normalised
 * probe. Open set: `match` is set only when the best is within `thr` (<= 0:
 * LOGIC_MATCH_DIST) and no other row is within LOGIC_AMBIGUOUS_MARGIN of it
 * while also within `thr` (then `ambiguous`). best/second are row indices or
 * -1. `skip` (or -1) is a row to leave out (the user being re-enrolled). */
struct logic_ident {
    int best, second;
    double d_best, d_second; /* INFINITY when absent */
    bool match, ambiguous;
};
void logic_identify(const float *vecs, size_t n, const float probe[FACE_DESCRIPTOR], long skip,
                    double thr, struct logic_ident *out);

/* ==========================================================================
 * Liveness and the session (liveness.c, session.c): R11
 * ========================================================================== */

#define LOGIC_MAX_SAMPLES 20      /* most recent counted descriptors kept */
#define LOGIC_PROBE_FRAMES 3      /* a decision uses at least this many frames when counted */
#define LOGIC_HIST 200            /* motion history (frames) */
#define LOGIC_LIVENESS_FRAMES 200 /* frames (20 s at 10 fps) without liveness: liveness_failed */
#define LOGIC_BLINK_MIN_HIST 3    /* open frames of a face before a blink can count */
#define LOGIC_EYES_MAX_POSE 30.0  /* |yaw|, |pitch| up to which eye ratios are used */
#define LOGIC_SWAP_FRAMES 2       /* consecutive good frames beyond LOGIC_SWAP_DIST: face_changed */
#define LOGIC_DESC_EVERY 3        /* once the samples are in: a descriptor every 3rd good frame */
#define LOGIC_RESID_MIN_FRAMES 15 /* face frames before shape residuals count as motion */
#define LOGIC_TRACK_IOU 0.3       /* the subject's box overlapping the last one this much */
#define LOGIC_TRACK_GAP_MS 1000   /* ... and seen within this time is the same face */

/* Motion that a moved picture does not make (liveness.c): over the current
 * face track, the trimmed range of each shape feature's residual after
 * regressing it on the head pose (yaw, pitch, roll and their squares and
 * product). Motion once one of them exceeds its limit (tools/tune_logic.py:
 * the largest value seen on the attacks x 1.25); 0: not evidence (the pose
 * itself, which a tilted picture fakes). */
extern const double logic_motion_limit[LOGIC_FEATURES];

struct logic_session_params {
    bool enrollment;
    int target_samples; /* counted frames needed (1-20) */
    bool require_liveness;
    int required_blinks; /* 0-5; liveness also needs motion */
    struct logic_quality_params quality;
};

/* All the state of one session. Plain data: the caller owns and copies it.
 * Fields are private to logic/. */
struct logic_session {
    struct logic_session_params p;
    /* frames */
    int64_t frames, face_frames, counted;
    uint64_t hashes[8];
    int nhash;
    bool failed;
    enum logic_reason fail_reason;
    /* identity */
    float ref_sum[FACE_DESCRIPTOR]; /* sum of the counted normalised descriptors */
    int nref;
    float samples[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR]; /* normalised; ring of the newest */
    double sample_q[LOGIC_MAX_SAMPLES];
    int nsamples;
    int64_t sample_next; /* samples ever added (ring position) */
    int swap_run;        /* consecutive good frames beyond LOGIC_SWAP_DIST */
    int since_desc;      /* good frames since the last descriptor */
    /* track */
    bool has_last;
    struct face_box last_box;
    int64_t last_face_ms;
    /* eyes and blinks */
    struct face_eyes eyes;
    int open_frames; /* open-eyed quality frames since the eye baseline was reset */
    int blinks;
    /* motion of the current face track */
    float feat[LOGIC_HIST][LOGIC_FEATURES];
    int nfeat;
    bool motion;
    int64_t live_frames; /* frames while liveness was missing */
    bool live;
    int tracks; /* face tracks seen */
};

struct logic_frame_result {
    bool counted;             /* the frame counts toward target_samples */
    enum logic_reason reason; /* why not (LOGIC_OK when counted) */
    struct logic_quality q;
    bool duplicate;    /* the same pixels as one of the last 8 frames */
    int counted_total; /* counted frames (with liveness: of the current face track) */
    int blinks, blinks_required;
    bool blink;                      /* a blink ended with this frame ... */
    int64_t blink_first, blink_last; /* ... its closed frames (1-based frame numbers) */
    bool eyes_closed;
    double eye_rel[2];
    bool motion;            /* motion seen so far */
    double motion_score;    /* max over features of range / limit (>= 1: motion) */
    bool liveness_verified; /* required blinks and motion seen (or not required) */
    double swap_distance;   /* this frame's distance to the session's face, -1 if none */
    bool no_desc;           /* counted without a descriptor (desc_skipped) */
    bool ready;             /* the session's requirements are met: complete it now */
    bool failed;            /* the session failed (fail reason in `reason`) */
};

/* p is copied; target_samples clamped to 1-LOGIC_MAX_SAMPLES. */
void logic_session_init(struct logic_session *s, const struct logic_session_params *p);
/* Feed the next frame (frames in time order). Once failed, every later frame
 * is refused with the same reason. */
void logic_session_frame(struct logic_session *s, const struct logic_frame *f,
                         struct logic_frame_result *out);
/* Whether the next frame needs its descriptor (when it passes quality):
 * while samples are still wanted, once liveness is verified (a session
 * completes only on a frame whose identity was checked), while a far
 * descriptor awaits its confirmation, and at least every LOGIC_DESC_EVERY
 * good frames (the identity check). Between, a good frame of the tracked
 * face counts without one (its 68 landmarks and descriptor are about 40% of
 * the engine's time per frame). */
bool logic_session_wants_desc(const struct logic_session *s);
/* A frame that could not be decoded: counts as a frame without a face. */
void logic_session_skip(struct logic_session *s, int64_t t_ms);
/* Normalised descriptors of the best (highest quality first) of the 2 x max
 * most recent counted frames, at most max; returns the count. Recent: the
 * frames that came with the liveness, not those shown before it (a photo
 * held up before a live face takes over; at most the LOGIC_MAX_SAMPLES kept). */
int logic_session_samples(const struct logic_session *s, float (*out)[FACE_DESCRIPTOR], int max);
/* The session's probe: normalised mean of logic_session_samples for
 * max(target_samples, LOGIC_PROBE_FRAMES) - the decision rests on several
 * frames. false when nothing was counted. */
bool logic_session_probe(const struct logic_session *s, float out[FACE_DESCRIPTOR]);

#endif
