/* faceauth enroll|authenticate: one whole session against a running
 * faceauthd, as a client application does it and as
 * tools/test_websocket_auth.py does it, for users without Python: log in over
 * REST, create the session, stream JPEG frames from a directory at no more
 * than 10 fps over the WebSocket, print progress and guidance, decrypt the
 * result with the secret key (R10 CBC, or GCM when the server says so) and
 * compare it with the server's record (GET /api/auth/sessions/<token>/).
 * One libwebsockets client context, driven step by step: each REST call and
 * the socket run the lws loop until they are done. Secrets come from options
 * or, better (not visible in ps), from $FACEAUTH_API_KEY/$FACEAUTH_SECRET_KEY. */
#include "cli/cli.h"

#include <getopt.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/clock.h"
#include "crypto/crypto.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOT_AUTH = 3, EXIT_NO_LIVENESS = 4 };

#define MAX_FPS 10.0
#define FRAME_MAX_BYTES (4u << 20) /* a frame file larger than this is refused */
#define RESP_MAX_BYTES (1u << 20)  /* REST response bodies */
#define WS_RX_MAX_BYTES (1u << 20) /* server messages are small */
#define HTTP_TIMEOUT_MS 30000
#define DEFAULT_FRAMES "../shared/data/faces/video/studio_man_blink/frames"

struct opts {
    bool enroll;
    const char *url, *api_key, *secret_key, *user_id, *frames;
    double fps, wait_s;
    int skip, max_frames, min_frames, blinks;
    bool no_liveness, replace, insecure, json;
};

/* The server's address, from the base URL or the websocket_url. */
struct target {
    char buf[512]; /* lws_parse_uri cuts it into the pieces below */
    const char *host;
    int port;
    bool tls;
    char path[512]; /* with the leading '/' */
    char hostport[270];
};

enum conn_kind { KIND_HTTP, KIND_WS };

struct http_call {
    const char *method;
    const char *body;
    const char *bearer;
    struct lws *wsi; /* this request's connection: events of others are ignored */
    int status;
    struct fa_buf resp;
    bool done, failed, body_sent, too_large;
    char err[200];
};

struct ws_state {
    char **files;
    size_t nfiles, next;
    int64_t interval_ms, all_sent_ms;
    struct fa_buf rx, out;
    bool out_ready, established, closed, closing, no_liveness, failed;
    json_t *hello, *completion;
    int close_code;
    char err[200];
    struct lws *wsi;
    lws_sorted_usec_list_t sul;
};

struct session {
    const struct opts *o;
    struct lws_context *ctx;
    struct http_call *call;
    struct ws_state ws;
    lws_sorted_usec_list_t tick;
    int64_t t0;
};

static struct session *g_sess; /* for the sul callbacks' context lookups */

static void say(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct session *s, const char *fmt, ...)
{
    va_list ap;
    printf("[%6.2fs] ", (double)(fa_mono_ms() - s->t0) / 1000.0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void usage(FILE *f)
{
    fputs("usage: faceauth enroll USER_ID [options]\n"
          "       faceauth authenticate [USER_ID] [options]\n"
          "Run one session end to end against a faceauthd: log in, create the session,\n"
          "stream JPEG frames at <= 10 fps, print progress, decrypt and print the result.\n"
          "authenticate with USER_ID verifies (1:1); without it, identifies (1:N).\n"
          "options:\n"
          "  --url URL           server base URL (default $FACEAUTH_URL, else\n"
          "                      http://127.0.0.1:8000)\n"
          "  --api-key KEY       default $FACEAUTH_API_KEY\n"
          "  --secret-key KEY    default $FACEAUTH_SECRET_KEY (prefer the variable: options\n"
          "                      are visible to other users in ps)\n"
          "  --frames DIR        JPEG frames, sent in name order (default " DEFAULT_FRAMES ")\n"
          "  --fps N             frames per second, at most 10 (default 10)\n"
          "  --skip N            skip the first N frames; --max-frames N: send at most N\n"
          "  --min-frames N      metadata.min_frames_required (default 3)\n"
          "  --blinks N          metadata.required_blinks (default 1)\n"
          "  --no-liveness       \"require_liveness\": false (default true)\n"
          "  --replace           enrollment: replace an enrolled USER_ID\n"
          "  --wait S            seconds to wait for the result after the last frame (15)\n"
          "  --insecure          accept a self-signed TLS certificate\n"
          "  --json              also print the outcome as one line 'RESULT {...}'\n"
          "exit status: 0 success, 3 not authenticated, 4 the server cannot verify\n"
          "liveness (use --no-liveness), 1 other failure, 2 usage.\n",
          f);
}

/* ---- URLs ------------------------------------------------------------------ */

/* Parse "http[s]://host[:port][/path]" or "ws[s]://...". */
static bool target_parse(const char *url, const char *suffix, struct target *t)
{
    const char *prot, *ads, *path;
    memset(t, 0, sizeof *t);
    if (snprintf(t->buf, sizeof t->buf, "%s", url) >= (int)sizeof t->buf)
        return false;
    if (lws_parse_uri(t->buf, &prot, &ads, &t->port, &path) != 0 || ads[0] == 0)
        return false;
    if (strcmp(prot, "https") == 0 || strcmp(prot, "wss") == 0)
        t->tls = true;
    else if (strcmp(prot, "http") != 0 && strcmp(prot, "ws") != 0)
        return false;
    if (t->port == 0 || (t->port == 80 && t->tls && !strstr(url + strlen(prot) + 3, ":80")))
        t->port = t->tls ? 443 : 80;
    t->host = ads;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/' && suffix != NULL)
        pl--; /* base URL: drop trailing slashes before appending */
    if (snprintf(t->path, sizeof t->path, "/%.*s%s", (int)pl, path, suffix ? suffix : "") >=
        (int)sizeof t->path)
        return false;
    bool v6 = strchr(ads, ':') != NULL;
    snprintf(t->hostport, sizeof t->hostport, "%s%s%s:%d", v6 ? "[" : "", ads, v6 ? "]" : "",
             t->port);
    return true;
}

static int ssl_flags(const struct opts *o, const struct target *t)
{
    if (!t->tls)
        return 0;
    int f = LCCSCF_USE_SSL;
    if (o->insecure)
        f |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
             LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    return f;
}

/* ---- the lws callback ---------------------------------------------------- */

static void ws_handle_message(struct session *s);

static int http_cb(struct session *s, struct lws *wsi, enum lws_callback_reasons reason, void *in,
                   size_t len)
{
    struct http_call *c = s->call;
    if (c == NULL || (c->wsi != NULL && wsi != c->wsi))
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(c->err, sizeof c->err, "cannot reach the server: %s",
                 in != NULL ? (const char *)in : "connection failed");
        c->failed = c->done = true;
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ACCEPT,
                                         (const unsigned char *)"application/json", 16, p, end))
            return -1;
        if (c->bearer != NULL) {
            char auth[600];
            int n = snprintf(auth, sizeof auth, "Bearer %s", c->bearer);
            if (n >= (int)sizeof auth ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                             (const unsigned char *)auth, n, p, end))
                return -1;
        }
        if (c->body != NULL) {
            char cl[24];
            int n = snprintf(cl, sizeof cl, "%zu", strlen(c->body));
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                             (const unsigned char *)"application/json", 16, p,
                                             end) ||
                lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                             (const unsigned char *)cl, n, p, end))
                return -1;
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (c->body == NULL || c->body_sent)
            return 0;
        size_t n = strlen(c->body);
        unsigned char *b = fa_malloc(LWS_PRE + n);
        if (b == NULL)
            return -1;
        memcpy(b + LWS_PRE, c->body, n);
        int w = lws_write(wsi, b + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
        fa_free(b);
        c->body_sent = true;
        lws_client_http_body_pending(wsi, 0);
        return w < (int)n ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        c->status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (len > RESP_MAX_BYTES - c->resp.n) {
            c->too_large = true;
            return -1;
        }
        return fa_buf_append(&c->resp, in, len) == FA_OK ? 0 : -1;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 4096];
        char *px = buf + LWS_PRE;
        int lenx = (int)sizeof buf - LWS_PRE;
        return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        c->done = true;
        return -1; /* one request per connection */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (!c->done) {
            if (c->status == 0) {
                snprintf(c->err, sizeof c->err, "connection closed before a response");
                c->failed = true;
            }
            c->done = true;
        }
        return 0;
    default:
        return 0;
    }
}

static int ws_cb(struct session *s, struct lws *wsi, enum lws_callback_reasons reason, void *in,
                 size_t len)
{
    struct ws_state *w = &s->ws;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(w->err, sizeof w->err, "WebSocket connection failed: %s",
                 in != NULL ? (const char *)in : "?");
        w->failed = w->closed = true;
        w->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->established = true;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (len > WS_RX_MAX_BYTES - w->rx.n || fa_buf_append(&w->rx, in, len) != FA_OK) {
            snprintf(w->err, sizeof w->err, "server message too large");
            w->failed = true;
            return -1;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            ws_handle_message(s);
            fa_buf_reset(&w->rx);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (w->out_ready) {
            size_t n = w->out.n - LWS_PRE;
            int r = lws_write(wsi, w->out.p + LWS_PRE, n, LWS_WRITE_TEXT);
            w->out_ready = false;
            if (r < (int)n)
                return -1;
        }
        if (w->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *b = in;
            w->close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        w->closed = true;
        w->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *s = lws_context_user(lws_get_context(wsi));
    (void)user;
    if (s == NULL)
        return 0;
    const struct lws_protocols *p = lws_get_protocol(wsi);
    if (p != NULL && p->id == KIND_WS)
        return ws_cb(s, wsi, reason, in, len);
    if (p != NULL && p->id == KIND_HTTP)
        return http_cb(s, wsi, reason, in, len);
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"fa-http", callback, 0, 4096, KIND_HTTP, NULL, 0},
    {"fa-ws", callback, 0, 64 * 1024, KIND_WS, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* A wake-up every 100 ms so the loops below see their deadlines. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct session *s = g_sess;
    (void)sul;
    if (s != NULL && s->ctx != NULL)
        lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, 100 * LWS_US_PER_MS);
}

/* ---- REST ------------------------------------------------------------------ */

/* One request; on success *out is the parsed JSON object (json_decref) and
 * *status the HTTP status. Returns false with `err` on a transport failure. */
static bool rest(struct session *s, const char *base, const char *method, const char *path,
                 const char *body, const char *bearer, int *status, json_t **out, char *err,
                 size_t errlen)
{
    struct target t;
    struct http_call c = {.method = method, .body = body, .bearer = bearer};
    bool ok = false;
    *out = NULL;
    if (!target_parse(base, path, &t)) {
        snprintf(err, errlen, "bad URL '%s'", base);
        return false;
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = s->ctx;
    i.address = t.host;
    i.port = t.port;
    i.ssl_connection = ssl_flags(s->o, &t);
    i.path = t.path;
    i.host = t.hostport;
    i.origin = t.hostport;
    i.method = method;
    i.protocol = protocols[KIND_HTTP].name;
    i.alpn = "http/1.1";
    i.pwsi = &c.wsi;
    s->call = &c;
    if (lws_client_connect_via_info(&i) == NULL && !c.done) {
        snprintf(err, errlen, "cannot connect to %s", t.hostport);
        goto out;
    }
    int64_t deadline = fa_mono_ms() + HTTP_TIMEOUT_MS;
    while (!c.done && fa_mono_ms() < deadline)
        if (lws_service(s->ctx, 0) < 0)
            break;
    if (!c.done) {
        snprintf(err, errlen, "%s %s: no response within %d s", method, path,
                 HTTP_TIMEOUT_MS / 1000);
        goto out;
    }
    if (c.failed) {
        snprintf(err, errlen, "%s %s: %s", method, path, c.err);
        goto out;
    }
    json_error_t je;
    *out = json_loadb((const char *)c.resp.p, c.resp.n, 0, &je);
    if (*out == NULL || !json_is_object(*out)) {
        snprintf(err, errlen, "%s %s: HTTP %d with a body that is not a JSON object", method, path,
                 c.status);
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    *status = c.status;
    ok = true;
out:
    s->call = NULL;
    fa_buf_fini(&c.resp);
    return ok;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

/* "HTTP 401: message (field x)" for an error body. */
static void api_error(struct session *s, const char *what, int status, json_t *body)
{
    const char *field = json_string_value(json_object_get(body, "field"));
    say(s, "error: %s: HTTP %d: %s%s%s%s", what, status, jstr(body, "error"),
        field ? " (field " : "", field ? field : "", field ? ")" : "");
}

/* ---- the socket ---------------------------------------------------------- */

static void describe_frame(struct session *s, json_t *m)
{
    char extra[400] = "";
    const char *reason = json_string_value(json_object_get(m, "reason"));
    json_t *blinks = json_object_get(m, "blinks_detected");
    int n = 0;
    if (json_is_integer(blinks))
        n = snprintf(extra, sizeof extra, " blinks %lld", (long long)json_integer_value(blinks));
    if (reason != NULL && n >= 0 && (size_t)n < sizeof extra)
        snprintf(extra + n, sizeof extra - (size_t)n, " [%s] %s", reason, jstr(m, "message"));
    say(s, "      frame: %s %lld/%lld quality %.2f liveness %s%s",
        json_is_true(json_object_get(m, "success")) ? "counted" : "not counted",
        (long long)json_integer_value(json_object_get(m, "frames_processed")),
        (long long)json_integer_value(json_object_get(m, "target_samples")),
        json_number_value(json_object_get(m, "quality_score")),
        json_is_true(json_object_get(m, "liveness_verified")) ? "verified" : "pending", extra);
}

static void ws_handle_message(struct session *s)
{
    struct ws_state *w = &s->ws;
    json_error_t je;
    json_t *m = json_loadb((const char *)w->rx.p, w->rx.n, 0, &je);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type == NULL) {
        say(s, "      unreadable server message");
    } else if (strcmp(type, "connection_established") == 0 && w->hello == NULL) {
        w->hello = json_incref(m);
    } else if (strcmp(type, "frame_processed") == 0) {
        const char *reason = json_string_value(json_object_get(m, "reason"));
        if (reason != NULL && strcmp(reason, "liveness_unavailable") == 0)
            w->no_liveness = true;
        describe_frame(s, m);
    } else if (strcmp(type, "enrollment_complete") == 0 ||
               strcmp(type, "authentication_complete") == 0) {
        if (w->completion == NULL)
            w->completion = json_incref(m);
    } else if (strcmp(type, "error") == 0) {
        const char *dup = json_string_value(json_object_get(m, "duplicate_of"));
        say(s, "      server error %lld: %s%s%s",
            (long long)json_integer_value(json_object_get(m, "code")), jstr(m, "error"),
            dup != NULL ? " duplicate_of " : "", dup != NULL ? dup : "");
    } else if (strcmp(type, "pong") != 0) {
        say(s, "      unexpected message type '%s'", type);
    }
    json_decref(m);
}

/* Queue the next frame or, once they are all sent and the wait is over,
 * the close. Runs every frame interval. */
static void on_frame_timer(lws_sorted_usec_list_t *sul)
{
    struct session *s = g_sess;
    struct ws_state *w = &s->ws;
    (void)sul;
    if (w->closed || w->closing || w->wsi == NULL)
        return;
    int64_t now = fa_mono_ms();
    if (w->completion != NULL) {
        lws_sul_schedule(s->ctx, 0, &w->sul, on_frame_timer, 100 * LWS_US_PER_MS);
        return; /* the server closes with 1000 */
    }
    if (w->out_ready) { /* the previous frame is still waiting to be written */
        lws_sul_schedule(s->ctx, 0, &w->sul, on_frame_timer, 10 * LWS_US_PER_MS);
        return;
    }
    if (w->next < w->nfiles) {
        struct fa_buf raw = {0};
        const char *path = w->files[w->next++];
        bool png = strlen(path) > 4 && strcasecmp(path + strlen(path) - 4, ".png") == 0;
        fa_buf_reset(&w->out);
        static const char zeros[LWS_PRE];
        if (fa_read_file(path, FRAME_MAX_BYTES, &raw) != FA_OK ||
            fa_buf_append(&w->out, zeros, LWS_PRE) != FA_OK ||
            fa_buf_printf(&w->out, "{\"type\":\"frame\",\"image\":\"data:image/%s;base64,",
                          png ? "png" : "jpeg") != FA_OK ||
            fa_b64_encode(fa_buf_bytes(&raw), &w->out) != FA_OK ||
            fa_buf_puts(&w->out, "\"}") != FA_OK) {
            say(s, "      cannot read frame %s (skipped)", path);
        } else {
            w->out_ready = true;
            lws_callback_on_writable(w->wsi);
        }
        fa_buf_fini(&raw);
        if (w->next == w->nfiles) {
            w->all_sent_ms = now;
            say(s, "      all frames sent; waiting for the server");
        }
        /* a little over the interval, so jitter never brings two frames
         * closer than the server's minimum */
        lws_sul_schedule(s->ctx, 0, &w->sul, on_frame_timer,
                         (lws_usec_t)(w->interval_ms * 108 / 100) * LWS_US_PER_MS);
        return;
    }
    if (now - w->all_sent_ms >= (int64_t)(s->o->wait_s * 1000)) {
        w->closing = true;
        lws_callback_on_writable(w->wsi);
        return;
    }
    lws_sul_schedule(s->ctx, 0, &w->sul, on_frame_timer, 100 * LWS_US_PER_MS);
}

/* Connect and stream; returns false on a transport failure. */
static bool run_socket(struct session *s, const char *url)
{
    struct ws_state *w = &s->ws;
    struct target t;
    if (!target_parse(url, NULL, &t)) {
        say(s, "error: bad websocket_url '%s'", url);
        return false;
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = s->ctx;
    i.address = t.host;
    i.port = t.port;
    i.ssl_connection = ssl_flags(s->o, &t);
    i.path = t.path;
    i.host = t.hostport;
    i.origin = t.hostport;
    i.protocol = NULL; /* no Sec-WebSocket-Protocol, like a browser */
    i.local_protocol_name = protocols[KIND_WS].name;
    i.alpn = "http/1.1";
    i.pwsi = &w->wsi;
    if (lws_client_connect_via_info(&i) == NULL && !w->failed) {
        say(s, "error: cannot connect to %s", t.hostport);
        return false;
    }
    int64_t deadline = fa_mono_ms() + 20000;
    while (w->hello == NULL && !w->closed && fa_mono_ms() < deadline)
        if (lws_service(s->ctx, 0) < 0)
            break;
    if (w->hello == NULL) {
        say(s, "error: %s",
            w->failed   ? w->err
            : w->closed ? "the server closed the socket at once"
                        : "no connection_established within 20 s");
        if (w->closed && w->close_code != 0)
            say(s, "      (close code %d)", w->close_code);
        return false;
    }
    say(s,
        "[3/5] WebSocket connected: session %s, status %s, %lld good frames needed, "
        "expires %s",
        jstr(w->hello, "session_type"), jstr(w->hello, "status"),
        (long long)json_integer_value(json_object_get(w->hello, "target_samples")),
        jstr(w->hello, "expires_at"));
    say(s, "[4/5] streaming %zu frames from %s at %.0f fps", w->nfiles, s->o->frames,
        1000.0 / (double)w->interval_ms);
    if (w->nfiles == 0)
        w->all_sent_ms = fa_mono_ms();
    lws_sul_schedule(s->ctx, 0, &w->sul, on_frame_timer, 1);
    while (!w->closed)
        if (lws_service(s->ctx, 0) < 0)
            break;
    lws_sul_cancel(&w->sul);
    return true;
}

/* ---- main -------------------------------------------------------------- */

static int parse(int argc, char **argv, struct opts *o)
{
    enum {
        O_URL = 256,
        O_API,
        O_SECRET,
        O_FRAMES,
        O_FPS,
        O_SKIP,
        O_MAX,
        O_MIN,
        O_BLINKS,
        O_NOLIVE,
        O_REPLACE,
        O_WAIT,
        O_INSECURE,
        O_JSON
    };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, O_URL},
        {"api-key", required_argument, NULL, O_API},
        {"secret-key", required_argument, NULL, O_SECRET},
        {"frames", required_argument, NULL, O_FRAMES},
        {"fps", required_argument, NULL, O_FPS},
        {"skip", required_argument, NULL, O_SKIP},
        {"max-frames", required_argument, NULL, O_MAX},
        {"min-frames", required_argument, NULL, O_MIN},
        {"blinks", required_argument, NULL, O_BLINKS},
        {"no-liveness", no_argument, NULL, O_NOLIVE},
        {"replace", no_argument, NULL, O_REPLACE},
        {"wait", required_argument, NULL, O_WAIT},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *e;
    *o = (struct opts){.fps = 10,
                       .wait_s = 15,
                       .min_frames = 3,
                       .blinks = 1,
                       .frames = DEFAULT_FRAMES,
                       .url = "http://127.0.0.1:8000"};
    o->enroll = strcmp(argv[0], "enroll") == 0;
    if ((e = getenv("FACEAUTH_URL")) != NULL && e[0] != 0)
        o->url = e;
    o->api_key = getenv("FACEAUTH_API_KEY");
    o->secret_key = getenv("FACEAUTH_SECRET_KEY");
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_URL:
            o->url = optarg;
            break;
        case O_API:
            o->api_key = optarg;
            break;
        case O_SECRET:
            o->secret_key = optarg;
            break;
        case O_FRAMES:
            o->frames = optarg;
            break;
        case O_NOLIVE:
            o->no_liveness = true;
            break;
        case O_REPLACE:
            o->replace = true;
            break;
        case O_INSECURE:
            o->insecure = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_FPS:
        case O_WAIT: {
            double v = strtod(optarg, &end);
            if (*end != 0 || end == optarg || !(v > 0) || (c == O_FPS && v > MAX_FPS) || v > 3600) {
                fprintf(stderr, "faceauth: --%s: %s\n", c == O_FPS ? "fps" : "wait",
                        c == O_FPS ? "expected a number in (0, 10]: the server accepts at most "
                                     "10 frames per second"
                                   : "expected seconds in (0, 3600]");
                return EXIT_USAGE;
            }
            *(c == O_FPS ? &o->fps : &o->wait_s) = v;
            break;
        }
        case O_SKIP:
        case O_MAX:
        case O_MIN:
        case O_BLINKS: {
            long v = strtol(optarg, &end, 10);
            if (*end != 0 || end == optarg || v < 0 || v > 100000) {
                fprintf(stderr, "faceauth: %s: expected a non-negative integer\n",
                        argv[optind - 1]);
                return EXIT_USAGE;
            }
            *(c == O_SKIP  ? &o->skip
              : c == O_MAX ? &o->max_frames
              : c == O_MIN ? &o->min_frames
                           : &o->blinks) = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            return -1;
        default:
            fprintf(stderr, "faceauth: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        o->user_id = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "faceauth: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->enroll && o->user_id == NULL) {
        fprintf(stderr, "faceauth enroll: a USER_ID is required\n");
        return EXIT_USAGE;
    }
    if (o->api_key == NULL || o->api_key[0] == 0 || o->secret_key == NULL ||
        o->secret_key[0] == 0) {
        fprintf(stderr, "faceauth: the api key and secret key are required (--api-key and "
                        "--secret-key, or $FACEAUTH_API_KEY and $FACEAUTH_SECRET_KEY)\n");
        return EXIT_USAGE;
    }
    return 0;
}

static void lws_quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

/* Decrypt encrypted_data with the secret; *plain is a new JSON object. */
static bool decrypt(const char *secret, json_t *enc, json_t **plain, char *err, size_t errlen)
{
    enum crypto_method m;
    uint8_t key[CRYPTO_KEY_BYTES];
    struct fa_buf pt = {0};
    const char *method = json_string_value(json_object_get(enc, "encryption_method"));
    const char *payload = json_string_value(json_object_get(enc, "encrypted_payload"));
    if (payload == NULL || crypto_method_parse(method ? method : "AES-256-CBC", &m) != FA_OK) {
        snprintf(err, errlen, "unknown encryption_method or no payload");
        return false;
    }
    crypto_result_key(secret, key);
    enum fa_status rc = crypto_envelope_open(m, key, fa_bytes_of(payload, strlen(payload)), &pt);
    crypto_wipe(key, sizeof key);
    if (rc != FA_OK) {
        snprintf(err, errlen, "%s", fa_status_str(rc));
        fa_buf_fini(&pt);
        return false;
    }
    json_error_t je;
    *plain = json_loadb((const char *)pt.p, pt.n, 0, &je);
    fa_buf_fini(&pt);
    if (*plain == NULL || !json_is_object(*plain)) {
        json_decref(*plain);
        snprintf(err, errlen, "the plaintext is not a JSON object");
        return false;
    }
    return true;
}

int cli_session_main(int argc, char **argv)
{
    struct opts o;
    struct session s;
    char **paths = NULL;
    json_t *login = NULL, *sess = NULL, *plain = NULL, *rec = NULL, *outcome = NULL;
    char *body_text = NULL;
    char err[300];
    int status = 0, rc = EXIT_FAIL;

    int pr = parse(argc, argv, &o);
    if (pr != 0)
        return pr < 0 ? 0 : pr;
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.t0 = fa_mono_ms();
    g_sess = &s;

    char *fa[1] = {(char *)o.frames};
    paths = cli_expand_paths(fa, 1);
    if (paths == NULL)
        return EXIT_FAIL;
    size_t n = 0;
    while (paths[n] != NULL)
        n++;
    size_t first = (size_t)o.skip < n ? (size_t)o.skip : n;
    s.ws.files = paths + first;
    s.ws.nfiles = n - first;
    if (o.max_frames > 0 && s.ws.nfiles > (size_t)o.max_frames)
        s.ws.nfiles = (size_t)o.max_frames;
    if (n == 0) {
        fprintf(stderr, "faceauth: no JPEG frames in %s (see --frames)\n", o.frames);
        rc = EXIT_USAGE;
        goto out;
    }
    s.ws.interval_ms = (int64_t)(1000.0 / o.fps + 0.5);

    lws_set_log_level(LLL_ERR, lws_quiet);
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.protocols = protocols;
    ci.user = &s;
    ci.gid = -1;
    ci.uid = -1;
    ci.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    s.ctx = lws_create_context(&ci);
    if (s.ctx == NULL) {
        fprintf(stderr, "faceauth: cannot create the libwebsockets context\n");
        goto out;
    }
    lws_sul_schedule(s.ctx, 0, &s.tick, on_tick, 100 * LWS_US_PER_MS);

    /* 1. log in */
    json_t *cred = json_pack("{s:s, s:s}", "api_key", o.api_key, "secret_key", o.secret_key);
    body_text = cred ? json_dumps(cred, JSON_COMPACT) : NULL;
    json_decref(cred);
    if (body_text == NULL)
        goto out;
    if (!rest(&s, o.url, "POST", "/api/auth/client/", body_text, NULL, &status, &login, err,
              sizeof err)) {
        say(&s, "error: %s", err);
        goto out;
    }
    free(body_text);
    body_text = NULL;
    if (status != 200) {
        api_error(&s, "POST /api/auth/client/", status, login);
        goto out;
    }
    const char *token = jstr(login, "token");
    say(&s, "[1/5] client %s authenticated; token expires %s", jstr(login, "client_id"),
        jstr(login, "expires_at"));

    /* 2. the session */
    json_t *req = json_pack("{s:b, s:{s:i, s:i}}", "require_liveness", !o.no_liveness, "metadata",
                            "min_frames_required", o.min_frames, "required_blinks", o.blinks);
    if (req != NULL && o.user_id != NULL)
        json_object_set_new(req, "user_id", json_string(o.user_id));
    if (req != NULL && o.replace)
        json_object_set_new(req, "replace", json_true());
    body_text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body_text == NULL)
        goto out;
    const char *ep = o.enroll ? "/api/auth/enrollment/" : "/api/auth/authentication/";
    if (!rest(&s, o.url, "POST", ep, body_text, token, &status, &sess, err, sizeof err)) {
        say(&s, "error: %s", err);
        goto out;
    }
    if (status != 201 && status != 200) {
        char what[64];
        snprintf(what, sizeof what, "POST %s", ep);
        api_error(&s, what, status, sess);
        goto out;
    }
    const char *sid = o.enroll ? jstr(sess, "enrollment_id") : jstr(sess, "authentication_id");
    say(&s, "[2/5] %s%s session %s created; %lld good frames needed, liveness %s, expires %s",
        o.enroll    ? "enrollment"
        : o.user_id ? "verification of "
                    : "identification (1:N)",
        o.enroll || !o.user_id ? "" : o.user_id, sid,
        (long long)json_integer_value(json_object_get(sess, "target_samples")),
        o.no_liveness ? "off" : "required", jstr(sess, "expires_at"));

    /* 3, 4. the socket */
    if (!run_socket(&s, jstr(sess, "websocket_url")))
        goto out;
    json_t *done = s.ws.completion;
    if (done == NULL) {
        say(&s, "the session did not complete (socket closed with code %d)", s.ws.close_code);
        if (s.ws.no_liveness) {
            say(&s, "hint: this server cannot verify liveness yet, so a session with "
                    "\"require_liveness\": true never completes; rerun with --no-liveness");
            rc = EXIT_NO_LIVENESS;
        }
        goto out;
    }

    /* 5. decrypt and compare with the server's record */
    const char *type = jstr(done, "type");
    json_t *enc = json_object_get(done, "encrypted_data");
    say(&s, "[5/5] %s (socket closed with code %d), result encrypted with %s", type,
        s.ws.close_code, jstr(enc, "encryption_method"));
    if (!decrypt(o.secret_key, enc, &plain, err, sizeof err)) {
        say(&s, "error: cannot decrypt the result with this secret key: %s", err);
        goto out;
    }
    char *pt = json_dumps(plain, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(10));
    say(&s, "      decrypted: %s", pt ? pt : "?");
    free(pt);
    bool ok = strcmp(jstr(plain, "session_token"), jstr(sess, "session_token")) == 0;
    if (!ok)
        say(&s, "error: the decrypted session_token is not this session's");
    bool enrolled = strcmp(type, "enrollment_complete") == 0;
    bool authenticated = json_is_true(json_object_get(done, "authenticated"));
    json_t *uid = json_object_get(done, "user_id");
    if (enrolled) {
        outcome = json_pack("{s:s, s:b, s:s, s:s}", "type", "enrollment", "enrolled", 1, "user_id",
                            o.user_id, "enrollment_id", jstr(done, "enrollment_id"));
        if (strcmp(jstr(plain, "id"), jstr(done, "enrollment_id")) != 0) {
            say(&s, "error: decrypted id differs from enrollment_id");
            ok = false;
        }
        say(&s, "      enrolled %s (enrollment_id %s)", o.user_id, jstr(done, "enrollment_id"));
    } else {
        outcome = json_pack("{s:s, s:b, s:O, s:O}", "type", "authentication", "authenticated",
                            authenticated, "user_id", uid ? uid : json_null(), "confidence",
                            json_object_get(done, "confidence"));
        if (authenticated && strcmp(jstr(plain, "id"), jstr(done, "user_id")) != 0) {
            say(&s, "error: decrypted id differs from user_id");
            ok = false;
        }
        say(&s, "      authenticated: %s, user_id: %s, confidence: %.3f",
            authenticated ? "true" : "false", json_is_string(uid) ? json_string_value(uid) : "null",
            json_number_value(json_object_get(done, "confidence")));
    }
    char path[160];
    snprintf(path, sizeof path, "/api/auth/sessions/%s/", jstr(sess, "session_token"));
    if (!rest(&s, o.url, "GET", path, NULL, token, &status, &rec, err, sizeof err) ||
        status != 200) {
        if (rec != NULL)
            api_error(&s, "GET /api/auth/sessions/<token>/", status, rec);
        else
            say(&s, "error: %s", err);
        ok = false;
    } else {
        json_t *res = json_object_get(rec, "result");
        const char *p1 = json_string_value(
            json_object_get(json_object_get(res, "encrypted_data"), "encrypted_payload"));
        bool same = p1 != NULL && strcmp(p1, jstr(enc, "encrypted_payload")) == 0;
        say(&s, "      server record: status %s, result %s", jstr(rec, "status"),
            same ? "matches the socket's" : "DIFFERS");
        ok = ok && same;
        if (outcome != NULL)
            json_object_set_new(outcome, "status", json_string(jstr(rec, "status")));
    }
    if (outcome == NULL)
        goto out;
    json_object_set(outcome, "decrypted", plain);
    if (o.json) {
        char *line = json_dumps(outcome, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(10));
        if (line != NULL)
            printf("RESULT %s\n", line);
        free(line);
        fflush(stdout);
    }
    rc = !ok ? EXIT_FAIL : (!enrolled && !authenticated) ? EXIT_NOT_AUTH : EXIT_OK;
out:
    if (s.ctx != NULL) {
        lws_sul_cancel(&s.tick);
        lws_context_destroy(s.ctx);
    }
    g_sess = NULL;
    json_decref(s.ws.hello);
    json_decref(s.ws.completion);
    fa_buf_fini(&s.ws.rx);
    fa_buf_fini(&s.ws.out);
    json_decref(login);
    json_decref(sess);
    json_decref(plain);
    json_decref(rec);
    json_decref(outcome);
    free(body_text);
    cli_paths_free(paths);
    return rc;
}
