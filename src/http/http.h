/* The REST API (R1-R4 and the operations endpoints), without sockets: the
 * daemon hands over one complete request (method, decoded path, a few
 * headers, the body) and gets exactly one response back through a callback,
 * either before http_handle returns or later from app_poll, when the app's
 * worker has answered. Bodies are JSON (jansson, size and depth bounded);
 * errors are {"error","code","reason"[,"field"]} with the HTTP status mapped
 * once from the fa_status class (reply.c). Runs on: loop, everything. */
#ifndef FA_HTTP_HTTP_H
#define FA_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

struct app;

enum http_method {
    HTTP_METHOD_OTHER = 0,
    HTTP_METHOD_GET,
    HTTP_METHOD_POST,
    HTTP_METHOD_DELETE,
};

#define HTTP_MAX_BODY_DEFAULT (64u * 1024u) /* REST bodies are a few hundred bytes */

/* One request, borrowed for the duration of http_handle. Strings are
 * NUL-terminated; NULL means the header was absent. */
struct http_req {
    uint64_t conn_id;
    enum http_method method;
    const char *path;          /* URL-decoded path without the query string */
    const char *authorization; /* "Bearer <jwt>" */
    const char *host;          /* Host header, used for websocket_url without --public-url */
    const char *peer_ip;       /* for the per-IP login limit */
    struct fa_bytes body;
};

/* One response. The receiver of http_respond_fn takes `body` (fa_buf_fini). */
struct http_resp {
    int status;
    int64_t retry_after_s;    /* > 0: a Retry-After header */
    const char *content_type; /* static string */
    const char *allow;        /* 405: the Allow header (static), else NULL */
    struct fa_buf body;
};

/* Receives the response of conn_id (the connection may be gone: drop it).
 * Takes resp->body. Runs on: loop. */
typedef void (*http_respond_fn)(void *arg, uint64_t conn_id, struct http_resp *resp);
/* Appends extra Prometheus lines (the daemon's own figures) to `out`.
 * Runs on: loop. */
typedef void (*http_metrics_fn)(void *arg, struct fa_buf *out);

struct http_config {
    /* Base of websocket_url, e.g. "https://auth.example.com" (http->ws,
     * https->wss) or "wss://...". NULL: ws:// (wss:// when tls) and the
     * request's Host header, or `listen` when Host is absent or odd. */
    const char *public_url;
    const char *listen; /* "127.0.0.1:8000" */
    bool tls;
    size_t max_body_bytes; /* 0: HTTP_MAX_BODY_DEFAULT */
};

struct http_ctx;

/* Make the REST front of `app` (borrowed; must outlive the ctx). The config
 * strings are copied. NULL on OOM. Runs on: loop. */
struct http_ctx *http_new(struct app *app, const struct http_config *cfg, http_respond_fn respond,
                          void *respond_arg);
/* NULL is fine. Replies still pending in the app are dropped by it. */
void http_free(struct http_ctx *h);
/* Extra lines for GET /metrics (optional). */
void http_set_metrics_hook(struct http_ctx *h, http_metrics_fn fn, void *arg);
/* Shutting down: /healthz answers 503 from now on. */
void http_set_draining(struct http_ctx *h, bool draining);

/* Handle one complete request: `respond` is called exactly once for
 * req->conn_id, before this returns or later from app_poll. Runs on: loop. */
void http_handle(struct http_ctx *h, const struct http_req *req);

/* A response with no request behind it (413 for an oversized body, 411 for a
 * POST without Content-Length, 400 for an unreadable request): the daemon
 * answers these itself. Fills *resp (body owned by the caller); FA_ERR_NOMEM
 * leaves resp->body empty. Runs on: any. */
enum fa_status http_error_response(int status, const char *message, struct http_resp *resp);

/* HTTP status for a status class (FA_ERR_TOO_LARGE: 413). Runs on: any. */
int http_status_of(enum fa_status s);

/* Route lookup (router.c), for the daemon's access log and the tests:
 * the route's name ("client_login", ...), or NULL when no route has this
 * path. *method_ok tells whether the method is allowed there. */
const char *http_route_name(enum http_method m, const char *path, bool *method_ok);

#endif
