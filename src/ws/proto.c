/* One WebSocket connection's protocol (R5-R9, R14, R15) as a small state
 * machine: open (token check, connection_established or a refusal close),
 * messages (reassembled under the size limit, parsed, throttled, frames
 * handed to the app), the app's frame replies (frame_processed, completion,
 * close 1000), the 1 s tick (expiry 4401), shutdown (1001). It never touches
 * a socket: every action goes out through struct ws_io, and a reply finds
 * its connection again by id, so a late reply for a closed socket is dropped.
 * Errors that close first send {"type":"error"} with the same code. */
#include "ws/ws.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

#define RX_KEEP_MAX (256u * 1024u) /* a larger reassembly buffer is freed after use */

struct ws_ctx {
    struct app *app;
    struct ws_config cfg;
    struct ws_io io;
    struct ws_stats stats;
};

struct ws_conn {
    struct ws_ctx *ctx;
    uint64_t conn_id;
    struct app_session *sess; /* NULL when the connect was refused */
    char session_id[APP_ID_MAX];
    const char *type_name; /* static */
    char peer[64];
    struct ws_throttle thr;
    struct fa_buf rx; /* the message being reassembled */
    bool rx_binary;
    bool closing;
    int close_code;
    int64_t opened_ms; /* monotonic */
    uint64_t frames_in, replies, invalid;
    int frames_processed;
};

static const int close_codes[9] = {1000, 1001, 4000, 4400, 4401, 4403, 4404, 4429, 4500};

int ws_close_index(int code)
{
    for (int i = 0; i < 9; i++)
        if (close_codes[i] == code)
            return i;
    return -1;
}

void ws_config_defaults(struct ws_config *cfg)
{
    if (cfg->max_message_bytes == 0)
        cfg->max_message_bytes = WS_MAX_MESSAGE_DEFAULT;
    if (cfg->throttle.min_interval_ms <= 0)
        cfg->throttle.min_interval_ms = 100;
    if (cfg->throttle.jitter_ms == 0)
        cfg->throttle.jitter_ms = WS_JITTER_DEFAULT;
    else if (cfg->throttle.jitter_ms < 0)
        cfg->throttle.jitter_ms = 0;
    if (cfg->throttle.jitter_ms >= cfg->throttle.min_interval_ms)
        cfg->throttle.jitter_ms = cfg->throttle.min_interval_ms - 1;
    if (cfg->throttle.flood_burst == 0)
        cfg->throttle.flood_burst = 20;
    if (cfg->throttle.flood_refill_per_s == 0)
        cfg->throttle.flood_refill_per_s = 15;
    if (cfg->mono_ms == NULL)
        cfg->mono_ms = fa_mono_ms;
}

struct ws_ctx *ws_new(struct app *app, const struct ws_config *cfg, const struct ws_io *io)
{
    struct ws_ctx *ctx = fa_calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->app = app;
    ctx->cfg = *cfg;
    ws_config_defaults(&ctx->cfg);
    ctx->io = *io;
    return ctx;
}

void ws_free(struct ws_ctx *ctx)
{
    fa_free(ctx);
}

const struct ws_stats *ws_stats(const struct ws_ctx *ctx)
{
    return &ctx->stats;
}

bool ws_closing(const struct ws_conn *c)
{
    return c->closing;
}

static void close_with(struct ws_conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    int i = ws_close_index(code);
    if (i >= 0)
        c->ctx->stats.closes[i]++;
    c->ctx->io.close(c->ctx->io.arg, c->conn_id, code, reason);
}

/* Queue `b` (taken in every case). A peer that does not read its replies
 * is closed. */
static void send_buf(struct ws_conn *c, struct fa_buf *b)
{
    enum fa_status rc = c->ctx->io.send(c->ctx->io.arg, c->conn_id, b);
    if (rc == FA_OK) {
        c->ctx->stats.messages_out++;
        return;
    }
    fa_buf_fini(b);
    if (rc == FA_ERR_RATE_LIMIT)
        close_with(c, WS_CLOSE_RATE, "too many unread messages");
    else
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
}

static void send_error(struct ws_conn *c, const char *text, int code)
{
    struct fa_buf b = {0};
    if (ws_msg_error(text, code, &b) != FA_OK) {
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
        return;
    }
    send_buf(c, &b);
}

/* An error that ends the connection: the error message, then the close. */
static void fail(struct ws_conn *c, int code, const char *text)
{
    if (c->closing)
        return;
    fa_warn("ws error conn=%" PRIu64 " session=%s code=%d: %s", c->conn_id,
            c->session_id[0] ? c->session_id : "-", code, text);
    send_error(c, text, code);
    close_with(c, code, text);
}

/* The token of "/ws/auth/process-image/<token>/" (trailing '/' optional):
 * url-safe base64 characters only. */
static bool token_of(const char *path, char token[APP_TOKEN_MAX])
{
    size_t plen = strlen(WS_PATH_PREFIX);
    if (path == NULL || strncmp(path, WS_PATH_PREFIX, plen) != 0)
        return false;
    const char *t = path + plen;
    size_t n = strlen(t);
    if (n > 0 && t[n - 1] == '/')
        n--;
    if (n == 0 || n >= APP_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    memcpy(token, t, n);
    token[n] = 0;
    return true;
}

struct ws_conn *ws_open(struct ws_ctx *ctx, uint64_t conn_id, const char *path, const char *peer)
{
    struct ws_conn *c = fa_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->ctx = ctx;
    c->conn_id = conn_id;
    c->opened_ms = ctx->cfg.mono_ms();
    c->type_name = "-";
    snprintf(c->peer, sizeof c->peer, "%s", peer != NULL ? peer : "-");
    ws_throttle_init(&c->thr, &ctx->cfg.throttle, c->opened_ms);
    app_metrics_ws(ctx->app, +1);

    char token[APP_TOKEN_MAX];
    if (!token_of(path, token)) {
        app_metrics_error(ctx->app, FA_ERR_SESSION_NOT_FOUND);
        fail(c, WS_CLOSE_NOT_FOUND, "session not found");
        return c;
    }
    struct app_session_info info;
    enum fa_status rc = app_ws_attach(ctx->app, token, conn_id, &c->sess, &info);
    if (rc != FA_OK) {
        c->sess = NULL;
        app_metrics_error(ctx->app, rc);
        fail(c, ws_close_code(rc), fa_status_str(rc));
        return c;
    }
    snprintf(c->session_id, sizeof c->session_id, "%s", info.session_id);
    c->type_name = app_session_type_name(info.type);
    c->frames_processed = info.frames_processed;

    char expires[32];
    fa_iso8601_ms(info.expires_at_ms, expires);
    struct ws_session_info si = {
        .session_token = info.session_token,
        .session_type = c->type_name,
        .status = app_session_status_name(info.status),
        .expires_at = expires,
        .target_samples = info.target_samples,
        .require_liveness = info.require_liveness,
    };
    struct fa_buf b = {0};
    if (ws_msg_connection_established(&si, &b) != FA_OK) {
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
        return c;
    }
    fa_info("ws open conn=%" PRIu64 " session=%s type=%s peer=%s target=%d liveness=%s", conn_id,
            c->session_id, c->type_name, c->peer, info.target_samples,
            info.require_liveness ? "required" : "off");
    send_buf(c, &b);
    return c;
}

/* A refused message: error 4400, or 4429 and close when they keep coming. */
static void invalid(struct ws_conn *c, enum fa_status rc, const char *text)
{
    c->ctx->stats.invalid++;
    c->invalid++;
    app_metrics_error(c->ctx->app, rc);
    if (ws_throttle_strike(&c->thr, &c->ctx->cfg.throttle, c->ctx->cfg.mono_ms()) ==
        WS_THROTTLE_CLOSE) {
        fail(c, WS_CLOSE_RATE, "rate limit exceeded: too many invalid messages");
        return;
    }
    fa_debug("ws invalid message conn=%" PRIu64 ": %s", c->conn_id, text);
    send_error(c, text, ws_close_code(rc));
}

static void send_completion(struct ws_conn *c, const struct app_result *res)
{
    struct fa_buf b = {0};
    enum fa_status rc;
    if (res->type == APP_SESSION_ENROLLMENT) {
        rc = ws_msg_enrollment_complete(res->session_id, res->encrypted_payload,
                                        res->encryption_method, &b);
        fa_info("enrollment complete conn=%" PRIu64 " session=%s user=%s frames=%d", c->conn_id,
                res->session_id, res->has_user_id ? res->user_id : "-", c->frames_processed);
    } else {
        rc = ws_msg_authentication_complete(res->authenticated,
                                            res->has_user_id ? res->user_id : NULL, res->confidence,
                                            res->encrypted_payload, res->encryption_method, &b);
        fa_info("authentication complete conn=%" PRIu64 " session=%s authenticated=%s user=%s "
                "confidence=%.3f",
                c->conn_id, res->session_id, res->authenticated ? "true" : "false",
                res->has_user_id ? res->user_id : "-", res->confidence);
    }
    if (rc != FA_OK) {
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
        return;
    }
    send_buf(c, &b);
    close_with(c, WS_CLOSE_NORMAL, "session complete");
}

/* The session ended without a result (an enrollment refused: the face
 * changed, liveness failed, inconsistent samples, a duplicate face): say
 * why, close 4403; the token is spent. */
static void send_failure(struct ws_conn *c, const struct app_frame_result *f)
{
    struct fa_buf b = {0};
    const char *reason = f->reason != NULL ? f->reason : "session_failed";
    fa_info("session failed conn=%" PRIu64 " session=%s type=%s reason=%s%s%s", c->conn_id,
            c->session_id, c->type_name, reason, f->has_duplicate_of ? " duplicate_of=" : "",
            f->has_duplicate_of ? f->duplicate_of : "");
    if (ws_msg_session_failed(f->message != NULL ? f->message : reason, WS_CLOSE_FORBIDDEN, reason,
                              f->has_duplicate_of ? f->duplicate_of : NULL, &b) != FA_OK) {
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
        return;
    }
    send_buf(c, &b);
    close_with(c, WS_CLOSE_FORBIDDEN, reason);
}

/* The app's reply to a frame. Runs on: loop, from app_poll. */
static void on_frame_reply(void *arg, const struct app_reply *r)
{
    struct ws_ctx *ctx = arg;
    struct ws_conn *c = ctx->io.find(ctx->io.arg, r->conn_id);
    if (c == NULL || c->closing)
        return;
    c->replies++;
    if (r->rc != FA_OK) {
        const char *text = r->err.what[0] ? r->err.what : fa_status_str(r->rc);
        int code = ws_close_code(r->rc);
        if (fa_status_class(r->rc) == FA_CLASS_INPUT) {
            fa_debug("ws frame refused conn=%" PRIu64 ": %s", c->conn_id, text);
            send_error(c, text, code); /* undecodable image: the socket stays open */
        } else {
            fail(c, code, text);
        }
        return;
    }
    const struct app_frame_result *f = &r->u.frame;
    c->frames_processed = f->frames_processed;
    struct ws_frame_report rep = {
        .success = f->success,
        .frames_processed = f->frames_processed,
        .target_samples = f->target_samples,
        .liveness_verified = f->liveness_verified,
        .quality_score = f->quality_score,
        .blinks_detected = f->blinks,
        .blinks_required = f->blinks_required,
        .motion_detected = f->motion_detected,
        .frames_dropped = f->dropped,
        .reason = f->reason,
        .message = f->message,
    };
    fa_debug("ws frame conn=%" PRIu64 " session=%s success=%d processed=%d/%d quality=%.2f "
             "faces=%d reason=%s worker_ms=%.1f",
             c->conn_id, c->session_id, f->success, f->frames_processed, f->target_samples,
             f->quality_score, f->faces, f->reason ? f->reason : "-", f->process_ms);
    struct fa_buf b = {0};
    if (ws_msg_frame_processed(&rep, &b) != FA_OK) {
        close_with(c, WS_CLOSE_INTERNAL, "internal error");
        return;
    }
    send_buf(c, &b);
    if (f->completed && f->result != NULL && !c->closing)
        send_completion(c, f->result);
    else if (f->failed && !c->closing)
        send_failure(c, f);
}

static void on_frame(struct ws_conn *c, struct ws_msg *m)
{
    struct ws_ctx *ctx = c->ctx;
    ctx->stats.frames_in++;
    c->frames_in++;
    switch (ws_throttle_frame(&c->thr, &ctx->cfg.throttle, ctx->cfg.mono_ms())) {
    case WS_THROTTLE_DROP: {
        char text[128];
        ctx->stats.frames_throttled++;
        app_metrics_error(ctx->app, FA_ERR_RATE_LIMIT);
        snprintf(text, sizeof text,
                 "rate limit exceeded: at most one frame per %" PRId64 " ms; frame dropped",
                 ctx->cfg.throttle.min_interval_ms);
        send_error(c, text, WS_CLOSE_RATE);
        return;
    }
    case WS_THROTTLE_CLOSE:
        ctx->stats.frames_throttled++;
        app_metrics_error(ctx->app, FA_ERR_RATE_LIMIT);
        fail(c, WS_CLOSE_RATE, "rate limit exceeded: sustained flooding");
        return;
    case WS_THROTTLE_ACCEPT:
        break;
    }
    enum fa_status rc =
        app_ws_frame(ctx->app, c->sess, fa_buf_bytes(&m->image), on_frame_reply, ctx);
    switch (rc) {
    case FA_OK:
        return;
    case FA_ERR_SHUTDOWN:
        close_with(c, WS_CLOSE_GOING_AWAY, "server shutting down");
        return;
    case FA_ERR_SESSION_EXPIRED:
    case FA_ERR_SESSION_USED:
        fail(c, ws_close_code(rc), fa_status_str(rc));
        return;
    default:
        /* too large an image, or a passing overload (busy, no memory):
         * refuse this frame and keep the session */
        app_metrics_error(ctx->app, rc);
        send_error(c, fa_status_str(rc), ws_close_code(rc));
        return;
    }
}

static void on_message(struct ws_conn *c)
{
    struct ws_msg m = {0};
    struct fa_errinfo err = {{0}};
    if (c->rx_binary) {
        invalid(c, FA_ERR_ARG, "binary messages are not accepted: send JSON text");
        return;
    }
    enum fa_status rc = ws_msg_parse(fa_buf_bytes(&c->rx), &m, &err);
    if (rc == FA_ERR_NOMEM) {
        send_error(c, fa_status_str(rc), WS_CLOSE_INTERNAL);
        return;
    }
    if (rc != FA_OK) {
        invalid(c, rc, err.what[0] ? err.what : fa_status_str(rc));
        return;
    }
    if (m.type == WS_MSG_PING) {
        struct fa_buf b = {0};
        if (ws_msg_pong(&b) == FA_OK)
            send_buf(c, &b);
        else
            close_with(c, WS_CLOSE_INTERNAL, "internal error");
    } else {
        on_frame(c, &m);
    }
    ws_msg_fini(&m);
}

void ws_rx(struct ws_conn *c, const void *p, size_t n, bool first, bool final, bool binary)
{
    struct ws_ctx *ctx = c->ctx;
    if (c->closing)
        return;
    if (first) {
        fa_buf_reset(&c->rx);
        c->rx_binary = binary;
    }
    if (n > ctx->cfg.max_message_bytes - c->rx.n) {
        char text[96];
        ctx->stats.oversized++;
        app_metrics_error(ctx->app, FA_ERR_TOO_LARGE);
        fa_buf_fini(&c->rx);
        snprintf(text, sizeof text, "message exceeds %zu bytes", ctx->cfg.max_message_bytes);
        fail(c, WS_CLOSE_BAD_REQUEST, text);
        return;
    }
    if (fa_buf_append(&c->rx, p, n) != FA_OK) {
        fa_buf_fini(&c->rx);
        fail(c, WS_CLOSE_INTERNAL, "internal error");
        return;
    }
    if (!final)
        return;
    ctx->stats.messages_in++;
    on_message(c);
    if (c->rx.cap > RX_KEEP_MAX)
        fa_buf_fini(&c->rx);
    else
        fa_buf_reset(&c->rx);
}

void ws_tick(struct ws_conn *c)
{
    if (c->closing || c->sess == NULL)
        return;
    enum fa_status rc = app_ws_check(c->ctx->app, c->sess);
    if (rc == FA_ERR_SESSION_EXPIRED)
        fail(c, WS_CLOSE_EXPIRED, "session expired");
    else if (rc == FA_ERR_SESSION_USED)
        close_with(c, WS_CLOSE_FORBIDDEN, fa_status_str(rc));
}

void ws_shutdown(struct ws_conn *c)
{
    close_with(c, WS_CLOSE_GOING_AWAY, "server shutting down");
}

void ws_closed(struct ws_conn *c, int peer_code)
{
    if (c == NULL)
        return;
    struct ws_ctx *ctx = c->ctx;
    if (c->sess != NULL)
        app_ws_detach(ctx->app, c->sess);
    app_metrics_ws(ctx->app, -1);
    int64_t ms = ctx->cfg.mono_ms() - c->opened_ms;
    int code = c->closing ? c->close_code : peer_code;
    fa_info("ws closed conn=%" PRIu64 " session=%s type=%s code=%d by=%s frames=%" PRIu64
            " replies=%" PRIu64 " throttled=%" PRIu64 " invalid=%" PRIu64 " good=%d "
            "duration_ms=%" PRId64,
            c->conn_id, c->session_id[0] ? c->session_id : "-", c->type_name, code,
            c->closing ? "server" : "peer", c->frames_in, c->replies, c->thr.dropped, c->invalid,
            c->frames_processed, ms);
    fa_buf_fini(&c->rx);
    fa_free(c);
}
