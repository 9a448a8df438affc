/* The lws side of faceauthd: one context, one port, HTTP/1.1 REST and the
 * WebSocket upgrade. Browsers send no Sec-WebSocket-Protocol, and lws binds
 * both plain HTTP and such upgrades to the vhost's default protocol, so one
 * protocols[] entry carries both halves: HTTP reasons go to http/, WebSocket
 * reasons to ws/; neither module touches lws. Every connection gets an entry
 * in a table keyed by a connection id that is never reused; the app's replies
 * and the protocol modules find a connection by id, so a reply for a socket
 * that closed meanwhile is dropped. Writes happen only in WRITEABLE, from a
 * per-connection queue. The app's worker pool wakes the loop with
 * lws_cancel_service; LWS_CALLBACK_EVENT_WAIT_CANCELLED (and a 1 s timer)
 * run app_poll. Runs on: loop, all of it. */
#include "daemon/daemon.h"

#include <inttypes.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "http/http.h"
#include "ws/ws.h"
#include "daemon/web.h"

#define OUT_MAX_BYTES (1u << 20) /* unread replies per socket before closing it */
#define PATH_MAX_LEN 1024        /* longest request path we route */
#define HDR_MAX_LEN 2048         /* longest Authorization / Host kept */
#define STOP_GRACE_MS 10000      /* wait this long for queued work at shutdown */
#define CLOSE_GRACE_MS 5000      /* ... and this long for the close handshakes */
#define TICK_US (1000 * LWS_US_PER_MS)

struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the payload */
};

enum conn_kind { CONN_HTTP, CONN_WS };

/* One HTTP request/response, from LWS_CALLBACK_HTTP to the written body. */
struct http_txn {
    enum http_method method;
    const char *route; /* static route name for the log (never the path: it holds tokens) */
    char path[PATH_MAX_LEN];
    char *authorization, *host; /* owned */
    char peer[64];
    struct fa_buf body;
    bool awaiting_body;
    bool body_too_large;
    bool have_resp;
    bool headers_sent;
    bool close_after; /* the request was refused before its body: do not keep alive */
    struct http_resp resp;
    int64_t started_ns;
};

struct conn {
    uint64_t id;
    enum conn_kind kind;
    struct lws *wsi;
    struct conn *hnext;       /* hash chain */
    struct conn *prev, *next; /* list of every connection */
    /* WebSocket */
    struct ws_conn *ws;
    struct outmsg *head, *tail;
    size_t out_bytes;
    bool close_pending; /* ws/ asked for a close: after the queue is written */
    bool close_started; /* handed to lws (close frame, then the peer's ack) */
    int close_code;
    char close_reason[124];
    int peer_close_code;
    bool rx_in_msg;
    /* HTTP */
    struct http_txn http;
};

struct pss {
    struct conn *c;
};

struct server {
    const struct config *cfg;
    struct app *app;
    struct http_ctx *http;
    struct web *web; /* embedded files and the demo backend (web.c) */
    struct ws_ctx *ws;
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
    uint64_t next_id;
    struct conn **buckets;
    size_t nbuckets, nconns;
    struct conn *all;
    bool stopping, closes_sent, done;
    int64_t stop_ms, closes_ms;
    uint64_t http_requests, ws_accepted;
};

/* ---- the connection table -------------------------------------------------- */

static struct conn *conn_find(struct server *s, uint64_t id)
{
    for (struct conn *c = s->buckets[id & (s->nbuckets - 1)]; c != NULL; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

/* Double the buckets when the table is full; on OOM keep the longer chains. */
static void table_grow(struct server *s)
{
    size_t n = s->nbuckets * 2;
    struct conn **b = fa_calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (struct conn *c = s->all; c != NULL; c = c->next) {
        c->hnext = b[c->id & (n - 1)];
        b[c->id & (n - 1)] = c;
    }
    fa_free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static struct conn *conn_new(struct server *s, enum conn_kind kind, struct lws *wsi)
{
    struct conn *c = fa_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->id = ++s->next_id;
    c->kind = kind;
    c->wsi = wsi;
    if (s->nconns >= s->nbuckets)
        table_grow(s);
    size_t b = c->id & (s->nbuckets - 1);
    c->hnext = s->buckets[b];
    s->buckets[b] = c;
    c->next = s->all;
    if (s->all != NULL)
        s->all->prev = c;
    s->all = c;
    s->nconns++;
    return c;
}

static void conn_free(struct server *s, struct conn *c)
{
    for (struct conn **pp = &s->buckets[c->id & (s->nbuckets - 1)]; *pp != NULL;
         pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->all = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    while (c->head != NULL) {
        struct outmsg *m = c->head;
        c->head = m->next;
        fa_free(m);
    }
    fa_free(c->http.authorization);
    fa_free(c->http.host);
    fa_buf_fini(&c->http.body);
    fa_buf_fini(&c->http.resp.body);
    fa_free(c);
}

/* ---- shutdown ------------------------------------------------------------------ */

static void stop_progress(struct server *s)
{
    int64_t now = fa_mono_ms();
    if (!s->closes_sent && (app_idle(s->app) || now - s->stop_ms > STOP_GRACE_MS)) {
        int n = 0;
        for (struct conn *c = s->all; c != NULL; c = c->next) {
            if (c->kind == CONN_WS && c->ws != NULL && !ws_closing(c->ws)) {
                ws_shutdown(c->ws);
                n++;
            }
        }
        fa_info("shutdown: work finished%s, closing %d socket(s) with 1001",
                app_idle(s->app) ? "" : " (grace period over)", n);
        s->closes_sent = true;
        s->closes_ms = now;
    }
    if (s->closes_sent && (s->nconns == 0 || now - s->closes_ms > CLOSE_GRACE_MS))
        s->done = true;
}

static void begin_stop(struct server *s)
{
    s->stopping = true;
    s->stop_ms = fa_mono_ms();
    /* lws 4.1.6's lws_context_deprecate() uses the listening wsi after
     * freeing it, so new connections are refused one by one instead, in
     * LWS_CALLBACK_FILTER_NETWORK_CONNECTION */
    fa_info("shutdown: signal received, no longer accepting connections");
    app_stop(s->app);
    http_set_draining(s->http, true);
    stop_progress(s);
}

static void on_wake(struct server *s)
{
    app_poll(s->app);
    if (!s->stopping && signals_stop_requested())
        begin_stop(s);
    if (s->stopping)
        stop_progress(s);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, tick);
    app_poll(s->app);
    for (struct conn *c = s->all; c != NULL; c = c->next)
        if (c->kind == CONN_WS && c->ws != NULL)
            ws_tick(c->ws);
    on_wake(s);
    if (!s->done)
        lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, TICK_US);
}

/* ---- HTTP ---------------------------------------------------------------------- */

/* The peer's address; IPv4-mapped IPv6 ("::ffff:1.2.3.4") shown as IPv4. */
static void peer_of(struct lws *wsi, char *out, size_t n)
{
    char tmp[64] = "";
    lws_get_peer_simple(wsi, tmp, sizeof tmp);
    const char *p = strncmp(tmp, "::ffff:", 7) == 0 && strchr(tmp + 7, '.') ? tmp + 7 : tmp;
    snprintf(out, n, "%s", p);
}

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0 || n >= HDR_MAX_LEN)
        return NULL;
    char *p = fa_malloc((size_t)n + 1);
    if (p == NULL)
        return NULL;
    if (lws_hdr_copy(wsi, p, n + 1, tok) < 0) {
        fa_free(p);
        return NULL;
    }
    return p;
}

/* Answer now without a request for http/ (411, 413, 414). */
static void respond_local(struct conn *c, int status, const char *message)
{
    struct http_txn *t = &c->http;
    if (t->have_resp)
        return;
    (void)http_error_response(status, message, &t->resp);
    t->have_resp = true;
    t->close_after = true;
    lws_callback_on_writable(c->wsi);
}

/* http_respond_fn: a response for conn_id, now or from app_poll. */
static void on_http_response(void *arg, uint64_t conn_id, struct http_resp *resp)
{
    struct server *s = arg;
    struct conn *c = conn_find(s, conn_id);
    if (c == NULL || c->kind != CONN_HTTP || c->http.have_resp) {
        fa_buf_fini(&resp->body);
        return;
    }
    c->http.resp = *resp;
    resp->body = (struct fa_buf){0};
    c->http.have_resp = true;
    lws_callback_on_writable(c->wsi);
}

static void http_dispatch(struct server *s, struct conn *c)
{
    struct http_txn *t = &c->http;
    struct http_req req = {
        .conn_id = c->id,
        .method = t->method,
        .path = t->path,
        .authorization = t->authorization,
        .host = t->host,
        .peer_ip = t->peer[0] ? t->peer : NULL,
        .body = fa_buf_bytes(&t->body),
    };
    if (web_handle(s->web, &req))
        return;
    http_handle(s->http, &req);
}

static int on_http(struct server *s, struct lws *wsi, struct pss *pss)
{
    if (pss->c != NULL) { /* a previous transaction on this keep-alive socket */
        conn_free(s, pss->c);
        pss->c = NULL;
    }
    struct conn *c = conn_new(s, CONN_HTTP, wsi);
    if (c == NULL)
        return -1;
    pss->c = c;
    s->http_requests++;
    struct http_txn *t = &c->http;
    t->started_ns = fa_mono_ns();
    peer_of(wsi, t->peer, sizeof t->peer);

    char *uri = NULL;
    int ulen = 0;
    int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    t->method = m == LWSHUMETH_GET      ? HTTP_METHOD_GET
                : m == LWSHUMETH_POST   ? HTTP_METHOD_POST
                : m == LWSHUMETH_DELETE ? HTTP_METHOD_DELETE
                                        : HTTP_METHOD_OTHER;
    if (uri == NULL || ulen <= 0 || ulen >= PATH_MAX_LEN) {
        t->route = "-";
        respond_local(c, 414, "request path too long");
        return 0;
    }
    memcpy(t->path, uri, (size_t)ulen);
    t->path[ulen] = 0;
    t->route = http_route_name(t->method, t->path, NULL);
    if (t->route == NULL)
        t->route = web_route_name(s->web, t->path);
    if (t->route == NULL)
        t->route = "-";
    t->authorization = hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    t->host = hdr_dup(wsi, WSI_TOKEN_HOST);

    if (m == LWSHUMETH_POST) {
        char cl[32];
        size_t max = HTTP_MAX_BODY_DEFAULT;
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
            respond_local(c, 411, "a Content-Length header is required");
            return 0;
        }
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end != 0 || v > max) {
            respond_local(c, 413, "request body too large");
            return 0;
        }
        t->awaiting_body = true; /* answered at LWS_CALLBACK_HTTP_BODY_COMPLETION */
        return 0;
    }
    http_dispatch(s, c);
    return 0;
}

static int on_http_body(struct pss *pss, const void *in, size_t len)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL || !c->http.awaiting_body || c->http.body_too_large)
        return 0;
    struct http_txn *t = &c->http;
    if (len > HTTP_MAX_BODY_DEFAULT - t->body.n || fa_buf_append(&t->body, in, len) != FA_OK) {
        t->body_too_large = true;
        fa_buf_fini(&t->body);
    }
    return 0;
}

static int on_http_body_done(struct server *s, struct pss *pss)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL || !c->http.awaiting_body)
        return 0;
    c->http.awaiting_body = false;
    if (c->http.body_too_large)
        respond_local(c, 413, "request body too large");
    else
        http_dispatch(s, c);
    return 0;
}

static int on_http_writeable(struct server *s, struct lws *wsi, struct pss *pss)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL || !c->http.have_resp)
        return 0;
    struct http_txn *t = &c->http;
    struct http_resp *r = &t->resp;
    if (!t->headers_sent) {
        unsigned char buf[LWS_PRE + 1024];
        unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
        char v[32];
        if (lws_add_http_common_headers(wsi, (unsigned int)r->status,
                                        r->content_type ? r->content_type : "application/json",
                                        r->body.n, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                        (const unsigned char *)"nosniff", 7, &p, end))
            return -1;
        if (r->retry_after_s > 0) {
            int n = snprintf(v, sizeof v, "%" PRId64, r->retry_after_s);
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                            (const unsigned char *)v, n, &p, end))
                return -1;
        }
        if (r->allow != NULL && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                                            (const unsigned char *)r->allow,
                                                            (int)strlen(r->allow), &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        t->headers_sent = true;
        if (r->body.n > 0) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else if (r->body.n > 0) {
        unsigned char *b = fa_malloc(LWS_PRE + r->body.n);
        if (b == NULL)
            return -1;
        memcpy(b + LWS_PRE, r->body.p, r->body.n);
        int w = lws_write(wsi, b + LWS_PRE, r->body.n, LWS_WRITE_HTTP_FINAL);
        fa_free(b);
        if (w < (int)r->body.n)
            return -1;
    }
    double ms = (double)(fa_mono_ns() - t->started_ns) / 1e6;
    static const char *const names[] = {"OTHER", "GET", "POST", "DELETE"};
    fa_info("http %s %s -> %d (%.1f ms) peer=%s", names[t->method], t->route, r->status, ms,
            t->peer[0] ? t->peer : "-");
    bool close_after = t->close_after;
    conn_free(s, c);
    pss->c = NULL;
    if (s->stopping)
        stop_progress(s);
    if (close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static void http_gone(struct server *s, struct pss *pss)
{
    if (pss == NULL || pss->c == NULL || pss->c->kind != CONN_HTTP)
        return;
    conn_free(s, pss->c);
    pss->c = NULL;
    if (s->stopping)
        stop_progress(s);
}

/* ---- WebSocket ------------------------------------------------------------------- */

static enum fa_status io_send(void *arg, uint64_t conn_id, struct fa_buf *text)
{
    struct server *s = arg;
    struct conn *c = conn_find(s, conn_id);
    if (c == NULL || c->kind != CONN_WS)
        return FA_ERR_NOT_FOUND;
    if (c->close_pending) { /* nothing goes out after the close */
        fa_buf_fini(text);
        return FA_OK;
    }
    if (text->n > OUT_MAX_BYTES - c->out_bytes)
        return FA_ERR_RATE_LIMIT;
    struct outmsg *m = fa_malloc(sizeof *m + LWS_PRE + text->n);
    if (m == NULL)
        return FA_ERR_NOMEM;
    m->next = NULL;
    m->len = text->n;
    memcpy(m->data + LWS_PRE, text->p, text->n);
    fa_buf_fini(text);
    if (c->tail != NULL)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->out_bytes += m->len;
    lws_callback_on_writable(c->wsi);
    return FA_OK;
}

static void io_close(void *arg, uint64_t conn_id, int code, const char *reason)
{
    struct server *s = arg;
    struct conn *c = conn_find(s, conn_id);
    if (c == NULL || c->kind != CONN_WS || c->close_pending)
        return;
    c->close_pending = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason != NULL ? reason : "");
    lws_callback_on_writable(c->wsi);
}

static struct ws_conn *io_find(void *arg, uint64_t conn_id)
{
    struct conn *c = conn_find(arg, conn_id);
    return c != NULL && c->kind == CONN_WS ? c->ws : NULL;
}

static int on_ws_open(struct server *s, struct lws *wsi, struct pss *pss)
{
    struct conn *c = conn_new(s, CONN_WS, wsi);
    if (c == NULL) {
        lws_close_reason(wsi, (enum lws_close_status)WS_CLOSE_INTERNAL, NULL, 0);
        return -1;
    }
    pss->c = c;
    s->ws_accepted++;
    char path[PATH_MAX_LEN], peer[64] = "";
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0)
        path[0] = 0;
    peer_of(wsi, peer, sizeof peer);
    c->ws = ws_open(s->ws, c->id, path, peer);
    if (c->ws == NULL) {
        lws_close_reason(wsi, (enum lws_close_status)WS_CLOSE_INTERNAL, NULL, 0);
        return -1;
    }
    if (s->stopping)
        ws_shutdown(c->ws);
    return 0;
}

static int on_ws_rx(struct lws *wsi, struct pss *pss, const void *in, size_t len)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL || c->ws == NULL)
        return 0;
    bool first = !c->rx_in_msg;
    bool final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    c->rx_in_msg = !final;
    ws_rx(c->ws, in, len, first, final, lws_frame_is_binary(wsi) != 0);
    return 0;
}

static int on_ws_writeable(struct lws *wsi, struct pss *pss)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL)
        return 0;
    struct outmsg *m = c->head;
    if (m != NULL) {
        c->head = m->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->out_bytes -= m->len;
        int w = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        size_t len = m->len;
        fa_free(m);
        if (w < (int)len)
            return -1;
        if (c->head != NULL || (c->close_pending && !c->close_started))
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->close_pending && !c->close_started) {
        /* once: lws then sends the close frame and waits for the peer's
         * ack; failing a later WRITEABLE would cut that short with a reset */
        c->close_started = true;
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

static void on_ws_closed(struct server *s, struct pss *pss)
{
    struct conn *c = pss != NULL ? pss->c : NULL;
    if (c == NULL || c->kind != CONN_WS)
        return;
    ws_closed(c->ws, c->peer_close_code);
    c->ws = NULL;
    conn_free(s, c);
    pss->c = NULL;
    if (s->stopping)
        stop_progress(s);
}

/* ---- the protocol ---------------------------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct server *s = lws_context_user(lws_get_context(wsi));
    struct pss *pss = user;
    if (s == NULL)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        on_wake(s);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return s->stopping ? -1 : 0; /* shutting down: hang up on new sockets */
    case LWS_CALLBACK_HTTP:
        return pss != NULL ? on_http(s, wsi, pss) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return on_http_body(pss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_http_body_done(s, pss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_http_writeable(s, wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        http_gone(s, pss);
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        return pss != NULL ? on_ws_open(s, wsi, pss) : -1;
    case LWS_CALLBACK_RECEIVE:
        return on_ws_rx(wsi, pss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_ws_writeable(wsi, pss);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (pss != NULL && pss->c != NULL && len >= 2) {
            const unsigned char *b = in;
            pss->c->peer_close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        on_ws_closed(s, pss);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"faceauth", callback, sizeof(struct pss), 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- metrics of this layer -------------------------------------------------------- */

static void metrics_hook(void *arg, struct fa_buf *b)
{
    struct server *s = arg;
    const struct ws_stats *st = ws_stats(s->ws);
    static const int codes[9] = {1000, 1001, 4000, 4400, 4401, 4403, 4404, 4429, 4500};
    (void)fa_buf_printf(b,
                        "# HELP faceauth_ws_messages_received_total WebSocket messages received\n"
                        "# TYPE faceauth_ws_messages_received_total counter\n"
                        "faceauth_ws_messages_received_total %" PRIu64 "\n"
                        "# HELP faceauth_ws_messages_sent_total WebSocket messages queued\n"
                        "# TYPE faceauth_ws_messages_sent_total counter\n"
                        "faceauth_ws_messages_sent_total %" PRIu64 "\n"
                        "# HELP faceauth_ws_frames_received_total Frame messages received\n"
                        "# TYPE faceauth_ws_frames_received_total counter\n"
                        "faceauth_ws_frames_received_total %" PRIu64 "\n"
                        "# HELP faceauth_ws_frames_throttled_total Frames refused for coming "
                        "sooner than the frame interval\n"
                        "# TYPE faceauth_ws_frames_throttled_total counter\n"
                        "faceauth_ws_frames_throttled_total %" PRIu64 "\n"
                        "# HELP faceauth_ws_invalid_messages_total Malformed or unknown messages\n"
                        "# TYPE faceauth_ws_invalid_messages_total counter\n"
                        "faceauth_ws_invalid_messages_total %" PRIu64 "\n"
                        "# HELP faceauth_ws_closes_total Closes sent by the server, by code\n"
                        "# TYPE faceauth_ws_closes_total counter\n",
                        st->messages_in, st->messages_out, st->frames_in, st->frames_throttled,
                        st->invalid);
    for (int i = 0; i < 9; i++)
        (void)fa_buf_printf(b, "faceauth_ws_closes_total{code=\"%d\"} %" PRIu64 "\n", codes[i],
                            st->closes[i]);
    (void)fa_buf_printf(b,
                        "# HELP faceauth_http_requests_total HTTP requests received\n"
                        "# TYPE faceauth_http_requests_total counter\n"
                        "faceauth_http_requests_total %" PRIu64 "\n"
                        "# HELP faceauth_connections_active Requests in progress and sockets\n"
                        "# TYPE faceauth_connections_active gauge\n"
                        "faceauth_connections_active %zu\n",
                        s->http_requests, s->nconns);
}

/* ---- life cycle -------------------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    enum fa_log_level l = level & LLL_ERR      ? FA_LOG_ERROR
                          : level & LLL_WARN   ? FA_LOG_WARN
                          : level & LLL_NOTICE ? FA_LOG_INFO
                                               : FA_LOG_DEBUG;
    fa_log(l, "lws: %.*s", (int)n, line);
}

/* The app's workers wake the loop through this; it may run on any worker,
 * also while the context is being destroyed at exit, hence the lock and a
 * context pointer that outlives the server. */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *wake_ctx; /* {wake_lock} */

static void wake(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wake_lock);
    if (wake_ctx != NULL)
        lws_cancel_service(wake_ctx);
    pthread_mutex_unlock(&wake_lock);
}

static void wake_set(struct lws_context *ctx)
{
    pthread_mutex_lock(&wake_lock);
    wake_ctx = ctx;
    pthread_mutex_unlock(&wake_lock);
}

struct server *server_new(const struct config *cfg, struct app *app)
{
    struct server *s = fa_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cfg = cfg;
    s->app = app;
    s->nbuckets = 256;
    s->buckets = fa_calloc(s->nbuckets, sizeof *s->buckets);
    bool tls = cfg->tls_cert != NULL;
    struct http_config hc = {
        .public_url = cfg->public_url,
        .listen = cfg->listen,
        .tls = tls,
    };
    struct ws_config wc = {
        .max_message_bytes = (size_t)cfg->max_message_bytes,
        .throttle = {.min_interval_ms = cfg->frame_interval_ms,
                     .jitter_ms = cfg->frame_jitter_ms > 0 ? cfg->frame_jitter_ms : -1},
    };
    struct ws_io io = {.send = io_send, .close = io_close, .find = io_find, .arg = s};
    s->http = http_new(app, &hc, on_http_response, s);
    s->ws = ws_new(app, &wc, &io);
    s->web = web_new(app, cfg, on_http_response, s);
    if (s->web == NULL) {
        fa_error("faceauthd: cannot set up the web files%s", cfg->demo ? " and the demo" : "");
        goto fail;
    }
    if (s->buckets == NULL || s->http == NULL || s->ws == NULL) {
        fa_error("faceauthd: out of memory");
        goto fail;
    }
    http_set_metrics_hook(s->http, metrics_hook, s);

    int lv =
        fa_log_get_level() <= FA_LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR | LLL_WARN;
    const char *lwslog = getenv("FACEAUTH_LWS_LOG"); /* lws's own bits, for debugging lws */
    if (lwslog != NULL)
        lv = atoi(lwslog);
    lws_set_log_level(lv, lws_log_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->host[0] ? cfg->host : NULL;
    info.protocols = protocols;
    info.user = s;
    info.gid = -1;
    info.uid = -1;
    info.alpn = "http/1.1";
    info.max_http_header_data = 8192;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    s->ctx = lws_create_context(&info);
    if (s->ctx == NULL) {
        fa_error("faceauthd: cannot serve on %s (address in use, bad interface or TLS files?)",
                 cfg->listen);
        goto fail;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(s->ctx, "default");
    int port = vh != NULL ? lws_get_vhost_listen_port(vh) : cfg->port;
    if (port <= 0) {
        fa_error("faceauthd: not listening on %s", cfg->listen);
        goto fail;
    }
    wake_set(s->ctx);
    app_set_notify(app, wake, NULL);
    signals_set_context(s->ctx);
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, TICK_US);
    const char *h = cfg->host[0] ? cfg->host : "0.0.0.0";
    bool v6 = strchr(h, ':') != NULL;
    fa_info("faceauthd listening on %s://%s%s%s:%d (WebSocket %s://.../ws/auth/process-image/"
            "<token>/)",
            tls ? "https" : "http", v6 ? "[" : "", h, v6 ? "]" : "", port, tls ? "wss" : "ws");
    return s;
fail:
    server_free(s);
    return NULL;
}

int server_run(struct server *s)
{
    if (signals_stop_requested())
        lws_cancel_service(s->ctx);
    while (!s->done) {
        if (lws_service(s->ctx, 0) < 0) {
            fa_error("faceauthd: the event loop failed");
            return 1;
        }
        if (!s->stopping && signals_stop_requested())
            begin_stop(s);
    }
    fa_info("shutdown: sockets closed");
    return 0;
}

void server_free(struct server *s)
{
    if (s == NULL)
        return;
    if (s->ctx != NULL) {
        signals_set_context(NULL);
        wake_set(NULL);
        lws_sul_cancel(&s->tick);
        lws_context_destroy(s->ctx); /* closes what is left: CLOSED callbacks run here */
    }
    while (s->all != NULL)
        conn_free(s, s->all);
    ws_free(s->ws);
    web_free(s->web);
    http_free(s->http);
    fa_free(s->buckets);
    fa_free(s);
}
