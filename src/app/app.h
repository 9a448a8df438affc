/* The service without sockets or JSON: clients, sessions, frames, results.
 *
 * Threading (STYLE.md section 7). One thread, "the loop" (the lws service
 * thread in the daemon, the test's own thread in tests), owns every struct app
 * state: sessions, rate limits, metrics. Functions marked "Runs on: loop" must
 * only be called there. Work that hashes, decodes, runs nets or touches the
 * store goes to the worker pool inside the app; each worker owns a face_worker
 * and a store connection. Finished work comes back when the loop calls
 * app_poll(), which applies it and then calls the caller's app_reply_fn.
 *
 * Asynchronous operations (login, session create/get, frame, user delete)
 * follow one rule: they return FA_OK and later call `cb` exactly once from
 * app_poll (also for validation errors, which arrive in the reply with the
 * field named), or they return an error at once and never call `cb` (only
 * FA_ERR_NOMEM, FA_ERR_BUSY, FA_ERR_SHUTDOWN, FA_ERR_ARG for NULL arguments,
 * and the session errors of app_ws_frame). The reply is borrowed for the
 * duration of the callback. Frame replies are not delivered to a session that
 * was detached (socket closed) meanwhile; everything else is.
 *
 * The app calls cfg.notify (the daemon: lws_cancel_service) from any thread
 * whenever app_poll has something to do; the daemon must also call app_poll
 * about once a second (expiry, purging). */
#ifndef FA_APP_APP_H
#define FA_APP_APP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"
#include "face/face.h"

struct nn_backend; /* nn/nn.h: the daemon creates it; app only passes it on */

#define APP_USER_ID_MAX 128  /* characters of a user_id (printable ASCII 0x20-0x7e) */
#define APP_TOKEN_MAX 64     /* buffer for a session token (43 url-safe chars + NUL) */
#define APP_ID_MAX 40        /* buffer for a UUID (36 chars + NUL): session ids */
#define APP_CLIENT_ID_MAX 40 /* buffer for a client_id ("cl_" + 22 chars + NUL) */
#define APP_JWT_MAX 512      /* buffer for an issued JWT */
#define APP_NAME_MAX 128     /* client display name */
#define APP_KEY_MAX 64       /* buffer for an api_key or secret_key (43 chars + NUL) */
#define APP_DEFAULT INT_MIN  /* "absent" for the int fields of app_session_req */

enum app_session_type { APP_SESSION_ENROLLMENT = 0, APP_SESSION_AUTHENTICATION = 1 };
enum app_session_status {
    APP_STATUS_PENDING = 0, /* created, no socket yet */
    APP_STATUS_ACTIVE,      /* a socket is attached */
    APP_STATUS_COMPLETED,   /* result delivered (enrollment stored / authenticated) */
    APP_STATUS_FAILED,      /* authentication not matched, socket lost, internal error */
    APP_STATUS_EXPIRED,
};
/* "enrollment" / "authentication"; "pending", "active", ... Runs on: any. */
const char *app_session_type_name(enum app_session_type t);
const char *app_session_status_name(enum app_session_status s);

struct app_config {
    const char *data_dir;                /* required: faceauth.db and master.key live here */
    const char *master_key;              /* NULL: $FACEAUTH_MASTER_KEY, else data_dir/master.key
                                            (created with mode 0600 on first start); 64 hex
                                            chars or base64 of 32 bytes */
    const char *models_dir;              /* NULL: face_models_default_dir() */
    const struct nn_backend *nn_backend; /* required unless no_engine: the caller
                                            makes it (nn_backend_new(NN_BACKEND_FAST))
                                            and frees it after app_free */
    bool no_engine;                      /* true: load no models (tests that send no frames);
                                            frames then fail with FA_ERR_MODEL_MISSING */
    const char *detector;                /* accepted for compatibility ("ssd", "tiny",
                                            "blazeface"); sessions always find faces with
                                            BlazeFace + FaceMesh (liveness needs the mesh) */
    unsigned workers;                    /* 0: number of online CPUs */
    size_t max_queue;             /* jobs waiting for a worker; 0: 1024. Over it: FA_ERR_BUSY */
    int64_t session_ttl_s;        /* 0: 300 */
    int64_t jwt_ttl_s;            /* 0: 3600 */
    int auth_fail_max;            /* failed authentications of one user_id ... 0: 5 */
    int64_t auth_fail_window_s;   /* ... within this window block new sessions. 0: 180 */
    int login_fail_max;           /* failed logins per IP and per api_key ... 0: 5 */
    int64_t login_fail_window_s;  /* ... within this window. 0: 180 */
    float match_threshold;        /* same-person distance between L2-normalised descriptors;
                                     0: LOGIC_MATCH_DIST (0.31, FMR <= 0.1% on the shared
                                     photos; see docs) */
    int min_face_px;              /* narrower faces do not count; 0: LOGIC_MIN_FACE_PX (39) */
    bool allow_duplicate_faces;   /* enroll a face that matches another user of the same
                                     client (reported as duplicate_of either way); default
                                     false: such an enrollment is refused */
    size_t max_image_bytes;       /* decoded image bytes; 0: 2 MiB */
    uint32_t kdf_t_cost;          /* argon2id passes; 0: 3 */
    uint32_t kdf_m_cost_kib;      /* argon2id memory; 0: 65536 (64 MiB). Tests use less */
    int64_t (*now_ms)(void *arg); /* wall clock (ms since epoch); NULL: fa_wall_ms.
                                     Tests pass a fake clock. Called on loop and workers. */
    void *now_arg;
    void (*notify)(void *arg); /* thread-safe wake-up of the loop; NULL: none (tests
                                  use app_wait) */
    void *notify_arg;
};

struct app;
/* A session attached to a WebSocket: borrowed from the app, valid until
 * app_ws_detach. */
struct app_session;

/* Open the store (migrating the schema), the master key, load the models
 * (unless no_engine) and start the workers; reload unfinished, unexpired
 * sessions from the store so that tokens survive a restart.
 * Errors: FA_ERR_ARG (config, `info` names the field), FA_ERR_IO, FA_ERR_STORE,
 * FA_ERR_MODEL_*, FA_ERR_CRYPTO, FA_ERR_NOMEM. Runs on: the future loop thread,
 * before the loop starts. */
enum fa_status app_new(const struct app_config *cfg, struct app **out, struct fa_errinfo *info);
/* Stop accepting operations (they return FA_ERR_SHUTDOWN); jobs already
 * queued still run and their replies still arrive through app_poll, so every
 * finished enrollment is durable. Runs on: loop. */
void app_stop(struct app *app);
/* True when no job is queued, running or waiting for app_poll. Runs on: loop. */
bool app_idle(struct app *app);
/* Wait for the workers to finish every queued job (applied, callbacks NOT
 * called), stop them and free everything. NULL is fine. Runs on: loop, after
 * the loop has stopped. */
void app_free(struct app *app);
/* Set the wake-up after creating the lws context (before any operation).
 * Runs on: loop. */
void app_set_notify(struct app *app, void (*notify)(void *arg), void *arg);

/* Apply finished work and call the reply callbacks; expire and purge
 * sessions. Call on every wake-up and about once a second. Runs on: loop. */
void app_poll(struct app *app);
/* Tests and CLI only: block up to timeout_ms until app_poll has work, then
 * run app_poll. Returns false on timeout. Runs on: loop. */
bool app_wait(struct app *app, int64_t timeout_ms);

/* The app's clock (cfg.now_ms), wall ms since epoch. Runs on: any. */
int64_t app_now_ms(const struct app *app);

/* ---- Replies ---------------------------------------------------------- */

enum app_op {
    APP_OP_LOGIN = 0,
    APP_OP_SESSION_CREATE,
    APP_OP_SESSION_GET,
    APP_OP_FRAME,
    APP_OP_USER_DELETE,
};

/* The outcome of a finished session, as the socket sends it (R7, R10). */
struct app_result {
    enum app_session_type type;
    bool authenticated; /* authentication: match decision; enrollment: true */
    bool has_user_id;   /* false: "user_id": null (identification without match) */
    char user_id[APP_USER_ID_MAX + 1];
    double confidence;             /* authentication, in [0,1]; enrollment 1 */
    char session_id[APP_ID_MAX];   /* the enrollment_id / authentication_id */
    const char *encryption_method; /* "AES-256-CBC" or "AES-256-GCM" (static) */
    const char *encrypted_payload; /* base64 (R10), owned by the app */
    int64_t finished_at_ms;
};

/* A session as REST shows it (create, get) and as the socket greets it. */
struct app_session_info {
    char session_token[APP_TOKEN_MAX];
    char session_id[APP_ID_MAX]; /* "enrollment_id" or "authentication_id" */
    char client_id[APP_CLIENT_ID_MAX];
    enum app_session_type type;
    enum app_session_status status;
    bool has_user_id; /* false: identification (1:N) */
    char user_id[APP_USER_ID_MAX + 1];
    bool require_liveness;
    int target_samples;
    int required_blinks;
    int frames_processed;
    int64_t created_at_ms, expires_at_ms, finished_at_ms; /* wall ms; finished 0 if not */
    bool has_result;          /* status COMPLETED or FAILED with a decision */
    struct app_result result; /* when has_result */
};

struct app_login_result {
    char token[APP_JWT_MAX]; /* HS256 JWT, claim "client_id", "exp" */
    char client_id[APP_CLIENT_ID_MAX];
    int64_t expires_at_ms;
};

/* Machine-readable reasons of app_frame_result.reason (NULL: none). */
/* Machine-readable reasons of app_frame_result.reason (NULL: the frame
 * counted). The full list, with the human messages, is logic/logic.h's
 * LOGIC_REASONS_X: no_face, multiple_faces, face_too_small, not_centered,
 * too_dark, too_bright, low_contrast, blurry, not_frontal, face_unclear,
 * duplicate_frame, and the session failures face_changed, liveness_failed,
 * inconsistent_samples, duplicate_face. */
#define APP_REASON_NO_FACE "no_face"
#define APP_REASON_MULTIPLE_FACES "multiple_faces"
#define APP_REASON_FACE_TOO_SMALL "face_too_small"

/* Raw measures of a frame: NOT for the browser by default (an attacker
 * could tune a fake against them); the edge sends them only to a client
 * with the debug option. */
struct app_frame_debug {
    bool valid;             /* a face was measured */
    double eye_openness[2]; /* per eye (subject's right, left), relative to its open baseline */
    bool eyes_closed;
    double motion_score;     /* >= 1: motion seen */
    double swap_distance;    /* distance to the session's face, -1 if not measured */
    double yaw, pitch, roll; /* degrees */
    double sharpness, brightness, contrast, face_px;
    double match_distance; /* completion: probe to template (or best in 1:N), else -1 */
};

struct app_frame_result {
    bool success;         /* the frame counted toward target_samples */
    const char *reason;   /* static machine-readable reason when it did not, else NULL */
    const char *message;  /* static human text: why not, or (counted) what is still
                             missing ("Blink once"); NULL when nothing to say */
    int frames_processed; /* counted frames of the current face (progress to target) */
    int target_samples;
    bool liveness_verified; /* the required blinks and motion were seen */
    double quality_score;   /* [0,1]; >= 0.5 for a frame that may count; 0 without a face */
    int faces;              /* faces detected */
    double box[4];          /* x, y, w, h of the face used (pixels) when faces >= 1 */
    int blinks;             /* blinks_detected so far (of the current face) */
    int blinks_required;    /* what liveness needs (0 without require_liveness) */
    bool motion_detected;   /* head/face motion seen */
    double process_ms;      /* worker time for this frame */
    uint64_t dropped;       /* frames of this session dropped so far (newest-wins) */
    bool completed;         /* the session finished with this frame: `result` is set */
    const struct app_result *result; /* when completed; borrowed */
    /* The session ended without a result to send (an enrollment refused:
     * reason face_changed, liveness_failed, inconsistent_samples or
     * duplicate_face). Send the failure and close. An authentication that
     * fails completes instead (completed, authenticated false). */
    bool failed;
    bool has_duplicate_of; /* reason duplicate_face (or allowed duplicate) */
    char duplicate_of[APP_USER_ID_MAX + 1];
    struct app_frame_debug debug;
};

struct app_reply {
    enum app_op op;
    enum fa_status rc;     /* FA_OK or the error; map with fa_status_class */
    char field[32];        /* rc FA_ERR_ARG: the offending field ("user_id", ...) */
    struct fa_errinfo err; /* rc != FA_OK: human detail (no secrets) */
    int64_t retry_after_s; /* rc FA_ERR_RATE_LIMIT: seconds until allowed */
    uint64_t conn_id;      /* as passed in */
    union {
        struct app_login_result login;   /* APP_OP_LOGIN */
        struct app_session_info session; /* APP_OP_SESSION_CREATE, APP_OP_SESSION_GET */
        struct app_frame_result frame;   /* APP_OP_FRAME */
    } u;                                 /* APP_OP_USER_DELETE: nothing */
};

/* Runs on: loop, from app_poll. `r` is borrowed for the call. */
typedef void (*app_reply_fn)(void *arg, const struct app_reply *r);

/* ---- REST --------------------------------------------------------------- */

/* R1. Verify api_key + secret_key (argon2id, on a worker) and issue a JWT.
 * Reply rc: FA_OK (u.login), FA_ERR_AUTH (unknown key, wrong secret, revoked;
 * indistinguishable), FA_ERR_RATE_LIMIT with retry_after_s (too many failures
 * for this peer_ip or this api_key), FA_ERR_ARG (field "api_key"/"secret_key"
 * missing or too long). peer_ip may be NULL (no per-IP limit). Borrows the
 * strings. Runs on: loop. */
enum fa_status app_client_login(struct app *app, const char *api_key, const char *secret_key,
                                const char *peer_ip, uint64_t conn_id, app_reply_fn cb, void *arg);

/* Check an "Authorization" header value ("Bearer <jwt>", scheme
 * case-insensitive) or a bare JWT. On FA_OK writes the client_id. Errors:
 * FA_ERR_AUTH (missing, malformed, bad signature), FA_ERR_TOKEN_EXPIRED.
 * Signature and expiry only (cheap HMAC): a revoked client is refused by the
 * asynchronous operations, which check the store. Runs on: loop (or any). */
enum fa_status app_bearer_auth(struct app *app, const char *authorization,
                               char client_id[APP_CLIENT_ID_MAX]);

/* R2/R3 body, after the edge has checked JSON types. APP_DEFAULT means
 * "absent" for the ints; the edge passes JSON integers clamped to int. */
struct app_session_req {
    enum app_session_type type;
    const char *user_id;     /* NULL: absent (required for enrollment; absent for
                                authentication means identification 1:N) */
    bool require_liveness;   /* the edge defaults it to true when absent */
    int min_frames_required; /* 1-20; APP_DEFAULT: 3 */
    int required_blinks;     /* 0-5; APP_DEFAULT: 1 */
    bool replace;            /* enrollment of an existing user_id replaces it */
};

/* Create a session for client_id (from app_bearer_auth). Reply rc: FA_OK
 * (u.session, with the new token), FA_ERR_ARG with `field` ("user_id",
 * "min_frames_required", "required_blinks"), FA_ERR_USER_NOT_FOUND
 * (verification of a user not enrolled by this client), FA_ERR_CONFLICT
 * (enrolling an existing user without replace), FA_ERR_RATE_LIMIT with
 * retry_after_s (too many failed authentications of this user_id),
 * FA_ERR_AUTH (client revoked or unknown). Runs on: loop. */
enum fa_status app_session_create(struct app *app, const char *client_id,
                                  const struct app_session_req *req, uint64_t conn_id,
                                  app_reply_fn cb, void *arg);

/* Status, progress and (once finished) the result of the session with this
 * token, for its owning client only (another client's token: not found).
 * Reply rc: FA_OK (u.session; session_token is filled), FA_ERR_SESSION_NOT_FOUND.
 * Runs on: loop. */
enum fa_status app_session_get(struct app *app, const char *client_id, const char *token,
                               uint64_t conn_id, app_reply_fn cb, void *arg);

/* Erase a user's face data (template) for this client. Reply rc: FA_OK,
 * FA_ERR_USER_NOT_FOUND, FA_ERR_ARG (field "user_id"). Runs on: loop. */
enum fa_status app_user_delete(struct app *app, const char *client_id, const char *user_id,
                               uint64_t conn_id, app_reply_fn cb, void *arg);

/* ---- WebSocket -------------------------------------------------------------- */

/* R5: attach a socket to the session with this token. Errors:
 * FA_ERR_SESSION_NOT_FOUND (4404), FA_ERR_SESSION_EXPIRED (4401),
 * FA_ERR_SESSION_USED (4403: finished, or a socket was attached before - a
 * token serves one connection only). On FA_OK the session is ACTIVE, *out is
 * the handle (borrowed until app_ws_detach) and *info (optional) describes
 * it. Runs on: loop. */
enum fa_status app_ws_attach(struct app *app, const char *token, uint64_t conn_id,
                             struct app_session **out, struct app_session_info *info);

/* The socket closed. An unfinished session becomes FAILED (it can never be
 * used again); a frame in flight is finished but not replied. Runs on: loop. */
void app_ws_detach(struct app *app, struct app_session *s);

/* R6: process one frame (base64 or data URL text; copied). At most one frame
 * per session is in flight; a frame arriving meanwhile waits, and a newer one
 * replaces the waiting one (dropped, counted in `dropped` and the metrics,
 * never replied). Throttling (R14) is the edge's job. Returns FA_OK (cb comes
 * later: rc FA_OK with u.frame, or an image error (FA_ERR_IMG_..., FA_ERR_B64,
 * FA_ERR_DATAURL) (class input: 4400, socket stays open), or
 * FA_ERR_SESSION_EXPIRED), or at once FA_ERR_SESSION_EXPIRED /
 * FA_ERR_SESSION_USED (finished), FA_ERR_TOO_LARGE (over max_image_bytes as
 * text), FA_ERR_NOMEM, FA_ERR_BUSY, FA_ERR_SHUTDOWN. When u.frame.completed,
 * the session is finished: send the completion message, then close 1000.
 * Runs on: loop. */
enum fa_status app_ws_frame(struct app *app, struct app_session *s, struct fa_bytes image,
                            app_reply_fn cb, void *arg);

/* FA_OK while the session may continue; FA_ERR_SESSION_EXPIRED once its
 * expires_at has passed (the session becomes EXPIRED: close 4401);
 * FA_ERR_SESSION_USED once finished. Call it from a timer. Runs on: loop. */
enum fa_status app_ws_check(struct app *app, struct app_session *s);

/* Describe an attached session (progress, expires_at...). Runs on: loop. */
void app_ws_info(const struct app_session *s, struct app_session_info *info);

/* ---- Metrics (R18) -------------------------------------------------------- */

#define APP_REASONS 20 /* frame rejection reasons counted (room for logic's list) */
#define APP_CLASSES 9  /* enum fa_class values */

struct app_metrics {
    uint64_t ws_open;                      /* sockets open now (edge: app_metrics_ws) */
    uint64_t ws_total;                     /* sockets accepted */
    uint64_t frames_total;                 /* frames processed by a worker */
    uint64_t frames_good;                  /* counted toward target_samples */
    uint64_t frames_dropped;               /* replaced while waiting (newest-wins) */
    uint64_t frames_rejected[APP_REASONS]; /* by reason, see app_metrics_reason_name */
    double frame_seconds_sum;              /* worker time of processed frames */
    uint64_t sessions_created[2];          /* index enum app_session_type */
    uint64_t sessions_completed[2];        /* success (enrolled / authenticated) */
    uint64_t sessions_failed[2];           /* not matched, socket lost, internal error */
    uint64_t sessions_expired[2];
    double session_seconds_sum; /* creation to finish of completed+failed sessions */
    uint64_t session_seconds_count;
    uint64_t logins_ok, logins_failed;
    uint64_t rate_limited;        /* requests refused by a rate limit */
    uint64_t errors[APP_CLASSES]; /* error replies by enum fa_class (index 0 unused) */
};
/* Borrowed, valid until app_free. Runs on: loop. */
const struct app_metrics *app_metrics(const struct app *app);
/* Label of frames_rejected[i] ("no_face", ...), NULL past the end. */
const char *app_metrics_reason_name(int i);
/* The edge reports socket open (+1) / close (-1) and errors it sends itself
 * (e.g. throttling 4429, bad JSON 4400). Runs on: loop. */
void app_metrics_ws(struct app *app, int delta);
void app_metrics_error(struct app *app, enum fa_status rc);

/* ---- Operator functions (CLI, tests) ------------------------------------------ */
/* Synchronous, with their own store connection; safe while a daemon runs on
 * the same data dir (SQLite WAL). Runs on: any thread except the loop. */

struct app_admin;
/* Uses cfg->data_dir, master_key, kdf_* and now_ms; nothing else. */
enum fa_status app_admin_open(const struct app_config *cfg, struct app_admin **out,
                              struct fa_errinfo *info);
void app_admin_close(struct app_admin *ad);

struct app_client_secret {
    char client_id[APP_CLIENT_ID_MAX];
    char api_key[APP_KEY_MAX];
    char secret_key[APP_KEY_MAX]; /* shown once; only hashes are stored */
};
/* Create a client with fresh keys. method: "cbc" | "gcm" | "AES-256-CBC" |
 * "AES-256-GCM", NULL: cbc. FA_ERR_ARG (field "name": 1-128 printable chars,
 * or "method"). */
enum fa_status app_admin_client_create(struct app_admin *ad, const char *name, const char *method,
                                       struct app_client_secret *out);

struct app_client_info {
    char client_id[APP_CLIENT_ID_MAX];
    char name[APP_NAME_MAX + 1];
    char api_key_prefix[16];       /* first characters of the api_key, for display */
    const char *encryption_method; /* "AES-256-CBC" / "AES-256-GCM" */
    bool revoked;
    int64_t created_at_ms;
    uint64_t users; /* enrolled users */
};
/* All clients, oldest first. *out: array of *n (fa_free), NULL if none. */
enum fa_status app_admin_client_list(struct app_admin *ad, struct app_client_info **out, size_t *n);
/* FA_ERR_NOT_FOUND for an unknown client_id. Revoked clients cannot log in
 * and their tokens are refused by every asynchronous operation. */
enum fa_status app_admin_client_revoke(struct app_admin *ad, const char *client_id);
enum fa_status app_admin_client_set_method(struct app_admin *ad, const char *client_id,
                                           const char *method);

struct app_user_info {
    char user_id[APP_USER_ID_MAX + 1];
    int samples; /* descriptors in the template */
    int64_t created_at_ms, updated_at_ms;
};
/* Users of a client, by user_id. *out: array of *n (fa_free). FA_ERR_NOT_FOUND
 * for an unknown client. */
enum fa_status app_admin_user_list(struct app_admin *ad, const char *client_id,
                                   struct app_user_info **out, size_t *n);
/* FA_ERR_USER_NOT_FOUND when absent. */
enum fa_status app_admin_user_delete(struct app_admin *ad, const char *client_id,
                                     const char *user_id);

/* Validate a user_id: 1-APP_USER_ID_MAX printable ASCII characters.
 * Runs on: any. */
bool app_user_id_valid(const char *user_id);

/* ---- Offline evaluation (bench/eval_sessions.c, tests) ------------------------ */

struct logic_frame;
/* What app_observe carries from one frame of a stream to the next (one per
 * session; zeroed: nothing seen yet). BlazeFace finds every face at least
 * every APP_DETECT_EVERY frames and whenever the track is lost; between,
 * the subject is tracked (FaceMesh + Iris on the crop its last mesh
 * places) and the faces of the last detection are assumed still there, so a
 * second face keeps frames from counting until a detection no longer sees
 * it. */
struct app_track {
    struct face_track t;
    int32_t since_detect; /* frames since BlazeFace last ran */
    int32_t faces;        /* faces BlazeFace found then */
    float second_w;       /* the width of the largest other face then */
};
#define APP_DETECT_EVERY 5 /* 0.5 s at 10 fps */

/* The engine pass a frame job runs (app/observe.c): the faces (BlazeFace +
 * FaceMesh + Iris on every face, or the tracked subject as struct
 * app_track says; tr NULL: detection on every frame), the largest face as
 * the subject, its image statistics, and its 68 landmarks and descriptor
 * when the frame passes quality (logic_quality_eval with min_face_px; 0:
 * default), or whenever there is a face with APP_OBSERVE_ALL_DESC (the
 * logic uses descriptors of good frames only, so its decisions do not
 * change; evaluations use it to cache one pass for any quality limit).
 * Errors as the engine's (tr is unchanged by one). Runs on: the thread
 * that owns `w`. */
#define APP_OBSERVE_ALL_DESC 1u
/* ... and none at all: the frame says desc_skipped (logic_session_wants_desc) */
#define APP_OBSERVE_NO_DESC 2u
enum fa_status app_observe(const struct face_models *m, struct face_worker *w, struct app_track *tr,
                           const struct img *im, int64_t t_ms, int min_face_px, unsigned flags,
                           struct logic_frame *out);

#endif
