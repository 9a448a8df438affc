/* Private to http/: the context, the route table's handlers and the reply
 * helpers shared by the h_*.c files. */
#ifndef FA_HTTP_PRIV_H
#define FA_HTTP_PRIV_H

#include <jansson.h>

#include "app/app.h"
#include "http/http.h"

#define HTTP_MAX_DEPTH 8    /* nesting of a request body: {"metadata":{..}} needs 2 */
#define HTTP_PARAM_MAX 256  /* a path parameter (token, user_id), decoded */
#define HTTP_WSBASE_MAX 320 /* "wss://" + host + port */

/* A request waiting for the app: what the reply needs that the app does not
 * carry back. Kept in a short list; removed when the reply arrives. */
struct http_pending {
    uint64_t conn_id;
    char ws_base[HTTP_WSBASE_MAX];     /* session create: base of websocket_url */
    char user_id[APP_USER_ID_MAX + 1]; /* user delete: echoed back */
    struct http_pending *next;
};

struct http_ctx {
    struct app *app;
    http_respond_fn respond;
    void *respond_arg;
    http_metrics_fn metrics_fn;
    void *metrics_arg;
    char *public_url; /* owned, normalised to ws:// or wss:// without a trailing '/' */
    char *listen;     /* owned */
    bool tls;
    bool draining;
    size_t max_body;
    struct http_pending *pending;
    /* responses by status class: index status / 100 (1..5) */
    uint64_t responses[6];
};

enum http_route_id {
    HTTP_ROUTE_NONE = 0,
    HTTP_ROUTE_CLIENT_LOGIN,
    HTTP_ROUTE_ENROLLMENT,
    HTTP_ROUTE_AUTHENTICATION,
    HTTP_ROUTE_SESSION_GET,
    HTTP_ROUTE_USER_DELETE,
    HTTP_ROUTE_HEALTHZ,
    HTTP_ROUTE_METRICS,
};

/* router.c. Match `path` against the table. On a match of the path, writes
 * the route id, whether the method is allowed (else *allow names the
 * allowed methods) and the decoded parameter (token, user_id) into `param`.
 * Returns false when no route has this path, or when the parameter is empty
 * or longer than HTTP_PARAM_MAX - 1. */
bool http_route_match(enum http_method m, const char *path, enum http_route_id *id, bool *method_ok,
                      const char **allow, char param[HTTP_PARAM_MAX]);

/* Handlers (h_*.c). Each calls one of the reply helpers exactly once, now or
 * from the app's reply callback. */
void http_h_client_login(struct http_ctx *h, const struct http_req *req);
void http_h_session_create(struct http_ctx *h, const struct http_req *req,
                           enum app_session_type type);
void http_h_session_get(struct http_ctx *h, const struct http_req *req, const char *token);
void http_h_user_delete(struct http_ctx *h, const struct http_req *req, const char *user_id);
void http_h_healthz(struct http_ctx *h, const struct http_req *req);
void http_h_metrics(struct http_ctx *h, const struct http_req *req);

/* The app's reply callback for every asynchronous operation (arg: the ctx). */
void http_on_app_reply(void *arg, const struct app_reply *r);
/* Per-op completions, called by http_on_app_reply with the pending entry
 * (NULL if none was kept). */
void http_login_done(struct http_ctx *h, const struct app_reply *r);
void http_session_done(struct http_ctx *h, const struct app_reply *r, const struct http_pending *p);
void http_user_delete_done(struct http_ctx *h, const struct app_reply *r,
                           const struct http_pending *p);

/* reply.c */

/* Send `body` (stolen, may be NULL after an OOM: then a 500 goes out). */
void http_reply_json(struct http_ctx *h, uint64_t conn_id, int status, json_t *body);
/* Send text as is (metrics). Takes `text`. */
void http_reply_text(struct http_ctx *h, uint64_t conn_id, int status, const char *content_type,
                     struct fa_buf *text);
/* {"error": message or fa_status_str(rc), "code": http status, "reason":
 * lower-case status name, "field": field (when not NULL)}, status from the
 * class, Retry-After when retry_after_s > 0. */
void http_reply_error(struct http_ctx *h, uint64_t conn_id, enum fa_status rc, const char *field,
                      const char *message, int64_t retry_after_s);
/* The same for the error of an app reply (which the app has counted in its
 * metrics already; http_reply_error counts the ones the edge finds). */
void http_reply_app_error(struct http_ctx *h, const struct app_reply *r);
/* 405 with Allow. */
void http_reply_method(struct http_ctx *h, uint64_t conn_id, const char *allow);

/* Parse a request body as a JSON object with the size and depth limits. An
 * empty body gives an empty object. FA_ERR_TOO_LARGE, FA_ERR_JSON (err says
 * why), FA_ERR_NOMEM. On FA_OK *out is a new reference. */
enum fa_status http_parse_body(const struct http_ctx *h, struct fa_bytes body, json_t **out,
                               struct fa_errinfo *err);

/* Keep / take the pending entry of conn_id. http_pending_add returns NULL on
 * OOM. http_pending_take unlinks it (the caller fa_free()s it), NULL if none. */
struct http_pending *http_pending_add(struct http_ctx *h, uint64_t conn_id);
struct http_pending *http_pending_take(struct http_ctx *h, uint64_t conn_id);

/* "2025-10-27T12:34:56.789Z" as a JSON string, or JSON null for 0. */
json_t *http_json_time(int64_t wall_ms);

#endif
