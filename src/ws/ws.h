/* The WebSocket protocol of /ws/auth/process-image/<token>/ (R5-R9, R14,
 * R15), without sockets: the daemon feeds each connection's events in
 * (open, received fragments, a 1 s tick, shutdown, closed) and carries the
 * protocol's actions out through struct ws_io (queue a text message, close
 * with a code once the queue is written). Frames go to the app, which runs
 * them on its workers; their replies come back through app_poll. Messages
 * are parsed and built with jansson (msg.c), frames are throttled per session
 * (throttle.c). Runs on: loop, everything (the lws service thread). */
#ifndef FA_WS_WS_H
#define FA_WS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

struct app;

/* Close codes (R9). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_GENERIC = 4000,
    WS_CLOSE_BAD_REQUEST = 4400,
    WS_CLOSE_EXPIRED = 4401,
    WS_CLOSE_FORBIDDEN = 4403,
    WS_CLOSE_NOT_FOUND = 4404,
    WS_CLOSE_RATE = 4429,
    WS_CLOSE_INTERNAL = 4500,
};

#define WS_MAX_MESSAGE_DEFAULT (2u * 1024u * 1024u)
#define WS_PATH_PREFIX "/ws/auth/process-image/"

/* The one mapping from a status class to a close / error code:
 * input 4400, auth 4401, forbidden 4403, not found 4404, conflict 4000,
 * rate limit 4429 (a size limit: 4400), internal and unavailable 4500,
 * FA_OK 1000. Runs on: any. */
int ws_close_code(enum fa_status s);

/* ---- throttle.c: at most one frame per min_interval_ms (R14) ----------- */

struct ws_throttle_config {
    int64_t min_interval_ms;     /* 0: 100 */
    int64_t jitter_ms;           /* a frame may come this early for its slot; < 0: 0,
                                    0 in ws_config: WS_JITTER_DEFAULT */
    unsigned flood_burst;        /* frames + refused messages tolerated at once; 0: 20 */
    unsigned flood_refill_per_s; /* ... and per second after that; 0: 15 */
};

#define WS_JITTER_DEFAULT 25

struct ws_throttle {
    int64_t tat_ms;       /* the next frame's slot (theoretical arrival time) */
    int64_t tokens_milli; /* flood bucket, thousandths of a frame */
    int64_t refill_ms;
    uint64_t dropped; /* frames refused for coming too early */
};

enum ws_throttle_verdict {
    WS_THROTTLE_ACCEPT, /* process it */
    WS_THROTTLE_DROP,   /* refuse it (error 4429), stay open */
    WS_THROTTLE_CLOSE,  /* sustained flooding: close 4429 */
};

/* `cfg` must have its defaults filled in (ws_config_defaults does it). */
void ws_throttle_init(struct ws_throttle *t, const struct ws_throttle_config *cfg, int64_t now_ms);
/* A frame arrived at now_ms (monotonic): ACCEPT, DROP (earlier than its slot
 * minus jitter_ms, so always when closer than min_interval_ms - jitter_ms to
 * the last accepted one) or CLOSE (the flood bucket is empty). */
enum ws_throttle_verdict ws_throttle_frame(struct ws_throttle *t,
                                           const struct ws_throttle_config *cfg, int64_t now_ms);
/* Another refused message (malformed, unknown type): spends a flood token
 * without touching the frame schedule. Returns DROP or CLOSE. */
enum ws_throttle_verdict ws_throttle_strike(struct ws_throttle *t,
                                            const struct ws_throttle_config *cfg, int64_t now_ms);

/* ---- msg.c: messages --------------------------------------------------- */

enum ws_msg_type { WS_MSG_PING = 1, WS_MSG_FRAME };

struct ws_msg {
    enum ws_msg_type type;
    struct fa_buf image; /* WS_MSG_FRAME: the "image" text (base64 or data URL) */
};

/* Parse one client message. FA_OK fills *out (release with ws_msg_fini).
 * FA_ERR_JSON (not JSON, not an object, nested too deep), FA_ERR_ARG
 * (missing/odd "type", unknown type, missing or empty "image"), FA_ERR_NOMEM;
 * `err` says which. The size limit is the caller's (it closes). */
enum fa_status ws_msg_parse(struct fa_bytes in, struct ws_msg *out, struct fa_errinfo *err);
void ws_msg_fini(struct ws_msg *m);

/* What connection_established says (R5). Strings borrowed. */
struct ws_session_info {
    const char *session_token, *session_type, *status, *expires_at;
    int target_samples;
    bool require_liveness;
};

/* What frame_processed says (R6); "reason" and "message" only when set. */
struct ws_frame_report {
    bool success;
    int frames_processed, target_samples;
    bool liveness_verified;
    double quality_score;
    int blinks_detected, blinks_required;
    bool motion_detected;
    uint64_t frames_dropped;
    const char *reason;  /* why the frame did not count, or NULL */
    const char *message; /* human text: why not, or what is still missing; or NULL */
};

/* Builders: append one compact JSON message to `out`. FA_ERR_NOMEM leaves
 * `out` as it was. */
enum fa_status ws_msg_connection_established(const struct ws_session_info *si, struct fa_buf *out);
enum fa_status ws_msg_frame_processed(const struct ws_frame_report *r, struct fa_buf *out);
enum fa_status ws_msg_enrollment_complete(const char *enrollment_id, const char *payload_b64,
                                          const char *method, struct fa_buf *out);
/* user_id NULL: "user_id": null (identification without a match). */
enum fa_status ws_msg_authentication_complete(bool authenticated, const char *user_id,
                                              double confidence, const char *payload_b64,
                                              const char *method, struct fa_buf *out);
enum fa_status ws_msg_error(const char *text, int code, struct fa_buf *out);
/* A session that ended without a result (an enrollment refused): an error
 * message with the machine-readable "reason" (and "duplicate_of" when not
 * NULL) next to "error" and "code". */
enum fa_status ws_msg_session_failed(const char *text, int code, const char *reason,
                                     const char *duplicate_of, struct fa_buf *out);
enum fa_status ws_msg_pong(struct fa_buf *out);

/* ---- proto.c: one connection's protocol ---------------------------------- */

struct ws_conn;

/* The daemon's side of a connection. */
struct ws_io {
    /* Queue a text message for conn_id; takes `text` on FA_OK. An error
     * (FA_ERR_RATE_LIMIT: the peer does not read its replies; FA_ERR_NOMEM)
     * leaves `text` with the caller. */
    enum fa_status (*send)(void *arg, uint64_t conn_id, struct fa_buf *text);
    /* Close with `code` once the queued messages are written. */
    void (*close)(void *arg, uint64_t conn_id, int code, const char *reason);
    /* The live connection with this id, or NULL (closed meanwhile). */
    struct ws_conn *(*find)(void *arg, uint64_t conn_id);
    void *arg;
};

struct ws_config {
    size_t max_message_bytes;           /* 0: WS_MAX_MESSAGE_DEFAULT; over it: close 4400 */
    struct ws_throttle_config throttle; /* zeros: defaults */
    int64_t (*mono_ms)(void);           /* NULL: fa_mono_ms; tests pass a fake clock */
};

/* Fill the zero fields of cfg with the defaults. Runs on: any. */
void ws_config_defaults(struct ws_config *cfg);

/* Counters of the protocol layer, for /metrics. */
struct ws_stats {
    uint64_t messages_in;      /* complete messages received */
    uint64_t messages_out;     /* messages queued */
    uint64_t frames_in;        /* frame messages received */
    uint64_t frames_throttled; /* refused for coming too early (error 4429) */
    uint64_t invalid;          /* malformed / unknown / binary messages (error 4400) */
    uint64_t oversized;        /* closed 4400 for size */
    uint64_t closes[9];        /* closes we sent: 1000 1001 4000 4400 4401 4403 4404 4429 4500 */
};

struct ws_ctx;

/* `app` is borrowed and must outlive the ctx; cfg and io are copied. NULL on
 * OOM. Runs on: loop. */
struct ws_ctx *ws_new(struct app *app, const struct ws_config *cfg, const struct ws_io *io);
/* Every connection must have been ws_closed first. NULL is fine. */
void ws_free(struct ws_ctx *ctx);
const struct ws_stats *ws_stats(const struct ws_ctx *ctx);
/* Index of a close code in ws_stats.closes, -1 if none. */
int ws_close_index(int code);

/* A socket was upgraded on `path` (the URI, without query). Validates the
 * token (R5): on success queues connection_established; otherwise queues an
 * error and a close (4404 unknown or malformed, 4401 expired, 4403 used or
 * finished). Returns the connection state (owned by the daemon until
 * ws_closed), or NULL on OOM (the daemon then closes with 4500). */
struct ws_conn *ws_open(struct ws_ctx *ctx, uint64_t conn_id, const char *path, const char *peer);
/* A received fragment. `first`/`final` delimit one message; binary messages
 * are refused (error 4400, open); a message over the limit closes 4400. */
void ws_rx(struct ws_conn *c, const void *p, size_t n, bool first, bool final, bool binary);
/* About once a second: closes 4401 when the session has expired. */
void ws_tick(struct ws_conn *c);
/* The server is stopping: close 1001 (unless already closing). */
void ws_shutdown(struct ws_conn *c);
/* Whether a close has been requested. */
bool ws_closing(const struct ws_conn *c);
/* The socket is gone (whoever closed it): detach the session (an unfinished
 * one fails for good), log, free `c`. `peer_code` is the peer's close code
 * when it closed first, else 0. */
void ws_closed(struct ws_conn *c, int peer_code);

#endif
