/* Private to app/: the app's state, sessions, jobs and helpers shared by its
 * files. Loop-owned fields are marked {loop}; fields set at app_new and
 * read-only afterwards are marked {ro} and may be read by workers. */
#ifndef FA_APP_APP_PRIV_H
#define FA_APP_APP_PRIV_H

#include <stdatomic.h>

#include "app/app.h"
#include "crypto/crypto.h"
#include "face/face.h"
#include "jobs/jobs.h"
#include "logic/logic.h"
#include "store/store.h"

#define APP_MAX_SAMPLES 20
#define APP_SESSION_BUCKETS 4096
#define APP_RL_BUCKETS 1024
#define APP_RETAIN_MS (10 * 60 * 1000)            /* finished sessions kept in memory */
#define APP_DB_RETAIN_MS (7LL * 24 * 3600 * 1000) /* finished sessions kept in the store */

/* Resolved configuration (defaults applied). {ro} */
struct app_cfg {
    char data_dir[1024];
    char db_path[1100];
    enum face_detector detector;
    unsigned workers;
    size_t max_queue;
    int64_t session_ttl_ms;
    int64_t jwt_ttl_s;
    int auth_fail_max;
    int64_t auth_fail_window_ms;
    int login_fail_max;
    int64_t login_fail_window_ms;
    float match_threshold;
    int min_face_px;
    bool allow_duplicate_faces;
    size_t max_image_bytes;
    struct crypto_kdf_params kdf;
    int64_t (*now_ms)(void *arg);
    void *now_arg;
};

/* A failure window: timestamps of recent failures for one key (hashed). */
struct app_rl {
    uint8_t key[32];
    int64_t t[16]; /* ring of the newest failure times */
    int n;         /* entries used (<= 16) */
    int head;
    struct app_rl *next;
};

struct app_session {
    struct app_session *next; /* hash chain {loop} */
    uint8_t token_hash[32];
    char token[APP_TOKEN_MAX]; /* "" if unknown (reloaded after restart, not attached yet) */
    struct store_session row;  /* persisted fields (row.res_payload owned) */
    struct logic_session *ls;  /* the session logic's state (owned; NULL until attached) */
    struct app_track track;    /* where the engine finds the face in the next frame */
    bool attached;             /* a socket is attached now */
    bool used;                 /* a socket was attached once */
    bool busy;                 /* a frame job is in flight */
    bool has_result;
    struct app_result result;
    /* The waiting frame (newest wins) and its reply target. */
    struct fa_buf pending;
    bool has_pending;
    int64_t pending_ms; /* when the waiting frame arrived (app clock) */
    app_reply_fn pending_cb;
    void *pending_arg;
    uint64_t conn_id;
    uint64_t dropped;
};

struct app {
    struct app_cfg cfg;                 /* {ro} */
    struct crypto_keystore *ks;         /* {ro} */
    uint8_t jwt_key[CRYPTO_KEY_BYTES];  /* {ro} */
    char dummy_hash[CRYPTO_PWHASH_MAX]; /* {ro} verified for unknown api_keys (timing) */
    struct face_models *models;         /* {ro}, NULL with no_engine */
    struct app_gallery *gallery;        /* thread-safe (its own lock): 1:N snapshots */
    struct jobs_pool *pool;
    struct store *st;          /* {loop} start-up only (reload); NULL after */
    void (*notify)(void *arg); /* {loop} (copied into the pool) */
    void *notify_arg;
    bool stopping;                                     /* {loop} */
    struct app_session *sessions[APP_SESSION_BUCKETS]; /* {loop} */
    size_t nsessions;                                  /* {loop} */
    struct app_rl *rl[APP_RL_BUCKETS];                 /* {loop} */
    struct app_job *ready_head, *ready_tail;           /* {loop} answered without a worker */
    int64_t last_tick_ms;                              /* {loop} */
    int64_t last_purge_ms;                             /* {loop} */
    struct app_metrics metrics;                        /* {loop} */
};

enum app_job_kind {
    JOB_LOGIN,
    JOB_SESSION_CREATE,
    JOB_SESSION_GET,
    JOB_USER_DELETE,
    JOB_FRAME,
    JOB_PERSIST,
};

/* What a frame job needs from its session: a copy, since the session is
 * loop-owned. The worker updates `ls` (the logic state) and the loop copies
 * it back (one frame per session is in flight). */
struct frame_in {
    struct store_session row; /* res_payload NULL */
    char token[APP_TOKEN_MAX];
    struct logic_session ls;
    struct app_track track; /* moves on with ls */
    bool ls_updated;        /* the worker fed this frame to ls (and track) */
    int64_t t_ms;           /* when the frame arrived (the eye signal's clock) */
    struct fa_buf image;
};

struct frame_out {
    struct app_frame_result fr;
    bool good;
    bool completed;
    struct app_result result;
    char *payload; /* owned */
    int status;    /* final session status when completed or ended */
    bool ended;    /* the session ended without a result (enrollment refused) */
    enum logic_reason end_reason;
};

struct app_job {
    struct job base; /* first */
    struct app *app;
    enum app_job_kind kind;
    app_reply_fn cb;
    void *arg;
    struct app_reply reply;
    struct app_job *ready_next;
    /* inputs */
    char client_id[APP_CLIENT_ID_MAX];
    char user_id[APP_USER_ID_MAX + 1];
    bool has_user_id;
    char api_key[APP_KEY_MAX];
    char secret_key[APP_KEY_MAX];
    char peer_ip[64];
    uint8_t token_hash[32];
    char token[APP_TOKEN_MAX];
    struct app_session_req req;
    /* session create output (the new row) */
    struct store_session row;
    /* persist input */
    bool persist_audit;
    struct store_audit audit;
    /* frame */
    struct frame_in *fin;
    struct frame_out *fout;
    char *payload; /* owned result payload for session get from the store */
};

/* app.c */
struct app_worker {
    struct store *st;
    struct face_worker *fw;
};
int64_t app_clock(const struct app *app);
struct app_job *app_job_new(struct app *app, enum app_job_kind kind, uint64_t conn_id,
                            app_reply_fn cb, void *arg);
enum fa_status app_job_submit(struct app *app, struct app_job *j);
void app_job_ready(struct app *app, struct app_job *j);
void app_count_error(struct app *app, enum fa_status rc);

/* sessions.c */
struct app_session *app_session_find(struct app *app, const uint8_t token_hash[32]);
enum fa_status app_session_add(struct app *app, const struct store_session *row,
                               struct app_session **out);
void app_session_fill_result(struct app_session *s);
/* Mark s finished with `status` at `now` and count it (no persistence). */
void app_session_end(struct app *app, struct app_session *s, int status, int64_t now);
void app_session_to_info(const struct app_session *s, struct app_session_info *info);
void app_row_to_info(const struct store_session *row, struct app_session_info *info);
/* Queue the session's row (and an audit event) for the store. FA_OK when
 * queued; never refused for load, only for OOM or shutdown. */
enum fa_status app_persist(struct app *app, const struct app_session *s, const char *event,
                           const char *detail);
void app_sessions_tick(struct app *app, int64_t now);
void app_sessions_free(struct app *app);
enum fa_status app_sessions_reload(struct app *app, struct store *st);
void app_apply_session(struct app *app, struct app_job *j);
enum fa_status app_run_session_create(struct app_job *j, struct app_worker *w);
enum fa_status app_run_session_get(struct app_job *j, struct app_worker *w);
enum fa_status app_run_user_delete(struct app_job *j, struct app_worker *w);
enum fa_status app_run_persist(struct app_job *j, struct app_worker *w);
/* Rate limits. */
int64_t app_rl_blocked(struct app *app, const char *key, int max, int64_t window_ms, int64_t now);
void app_rl_fail(struct app *app, const char *key, int64_t now);
void app_rl_free(struct app *app);
void app_rl_prune(struct app *app, int64_t now);

/* clients.c */
enum fa_status app_run_login(struct app_job *j, struct app_worker *w);
void app_apply_login(struct app *app, struct app_job *j);
/* Load and unseal a client's R10 key; FA_ERR_AUTH if revoked or unknown. */
enum fa_status app_client_key(struct app *app, struct store *st, const char *client_id,
                              uint8_t key[CRYPTO_KEY_BYTES], int *method);
enum fa_status app_resolve_config(const struct app_config *in, struct app_cfg *out,
                                  struct fa_errinfo *info);

/* app.c: index into metrics.frames_rejected of a reason name / of decode errors */
int app_reason_index(const char *reason);
int app_reason_decode_index(void);

/* frame.c */
enum fa_status app_run_frame(struct app_job *j, struct app_worker *w);
void app_apply_frame(struct app *app, struct app_job *j);
void app_frame_job_free(struct app_job *j);
enum fa_status app_frame_start(struct app *app, struct app_session *s, app_reply_fn cb, void *arg);
/* Template blob (plaintext, before sealing): the normalised mean of the
 * normalised samples, then the samples. Decoding normalises the mean (older
 * blobs stored it raw). */
enum fa_status app_template_encode(const float (*desc)[FACE_DESCRIPTOR], int n, struct fa_buf *out);
enum fa_status app_template_decode(struct fa_bytes b, float mean[FACE_DESCRIPTOR], int *n);
/* Unseal and decode a stored template to its normalised mean. Runs on: worker. */
enum fa_status app_template_open(struct app *app, const char *client_id, const char *user_id,
                                 struct fa_bytes sealed, float mean[FACE_DESCRIPTOR]);
/* {"id",...} payload JSON with careful escaping. */
enum fa_status app_result_json(const struct app_result *r, const char *token, int64_t ts_ms,
                               struct fa_buf *out);

/* gallery.c: per-client 1:N snapshots (see the file's comment). */
struct app_gallery;
struct app_gallery_snap {
    _Atomic int refs;
    size_t n;
    char (*ids)[APP_USER_ID_MAX + 1];
    float *vecs; /* n rows of FACE_DESCRIPTOR, normalised, 64-byte aligned */
};
enum fa_status app_gallery_new(struct app_gallery **out);
void app_gallery_free(struct app_gallery *gl);
/* The client's current snapshot, built from the store on first use; the
 * caller owns a reference (app_gallery_put). Runs on: worker. */
enum fa_status app_gallery_get(struct app *app, struct store *st, const char *client_id,
                               struct app_gallery_snap **out);
void app_gallery_put(struct app_gallery_snap *g);
/* After the store committed: user_id's template is now tpl / user_id is gone.
 * Runs on: worker (any thread). */
void app_gallery_set(struct app *app, const char *client_id, const char *user_id,
                     const float tpl[FACE_DESCRIPTOR]);
void app_gallery_erase(struct app *app, const char *client_id, const char *user_id);

#endif
