/* The REST front's context and dispatch: route a request to its handler and
 * bring the app's asynchronous replies back to the right completion. What a
 * reply needs beyond the app's answer (the websocket_url base computed from
 * the request) waits in a short pending list keyed by connection id. */
#include "http/http.h"

#include <string.h>

#include "base/alloc.h"
#include "http/priv.h"

/* "http://x" -> "ws://x", "https://x" -> "wss://x"; ws:// and wss:// kept;
 * no trailing '/'. NULL for anything else. */
static char *normalise_public_url(const char *url)
{
    static const struct {
        const char *from, *to;
    } schemes[] = {
        {"http://", "ws://"}, {"https://", "wss://"}, {"ws://", "ws://"}, {"wss://", "wss://"}};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t fl = strlen(schemes[i].from);
        if (strncmp(url, schemes[i].from, fl) != 0)
            continue;
        struct fa_buf b = {0};
        size_t rest = strlen(url + fl);
        while (rest > 0 && url[fl + rest - 1] == '/')
            rest--;
        if (rest == 0 || fa_buf_puts(&b, schemes[i].to) != FA_OK ||
            fa_buf_append(&b, url + fl, rest) != FA_OK) {
            fa_buf_fini(&b);
            return NULL;
        }
        return (char *)b.p;
    }
    return NULL;
}

struct http_ctx *http_new(struct app *app, const struct http_config *cfg, http_respond_fn respond,
                          void *respond_arg)
{
    struct http_ctx *h = fa_calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->app = app;
    h->respond = respond;
    h->respond_arg = respond_arg;
    h->tls = cfg->tls;
    h->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : HTTP_MAX_BODY_DEFAULT;
    h->listen = fa_strdup(cfg->listen != NULL ? cfg->listen : "127.0.0.1:8000");
    if (h->listen == NULL)
        goto fail;
    if (cfg->public_url != NULL && cfg->public_url[0] != 0) {
        h->public_url = normalise_public_url(cfg->public_url);
        if (h->public_url == NULL)
            goto fail;
    }
    return h;
fail:
    http_free(h);
    return NULL;
}

void http_free(struct http_ctx *h)
{
    if (h == NULL)
        return;
    while (h->pending != NULL) {
        struct http_pending *p = h->pending;
        h->pending = p->next;
        fa_free(p);
    }
    fa_free(h->public_url);
    fa_free(h->listen);
    fa_free(h);
}

void http_set_metrics_hook(struct http_ctx *h, http_metrics_fn fn, void *arg)
{
    h->metrics_fn = fn;
    h->metrics_arg = arg;
}

void http_set_draining(struct http_ctx *h, bool draining)
{
    h->draining = draining;
}

struct http_pending *http_pending_add(struct http_ctx *h, uint64_t conn_id)
{
    struct http_pending *p = fa_calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conn_id = conn_id;
    p->next = h->pending;
    h->pending = p;
    return p;
}

struct http_pending *http_pending_take(struct http_ctx *h, uint64_t conn_id)
{
    for (struct http_pending **pp = &h->pending; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->conn_id == conn_id) {
            struct http_pending *p = *pp;
            *pp = p->next;
            p->next = NULL;
            return p;
        }
    }
    return NULL;
}

void http_on_app_reply(void *arg, const struct app_reply *r)
{
    struct http_ctx *h = arg;
    struct http_pending *p = http_pending_take(h, r->conn_id);
    switch (r->op) {
    case APP_OP_LOGIN:
        http_login_done(h, r);
        break;
    case APP_OP_SESSION_CREATE:
    case APP_OP_SESSION_GET:
        http_session_done(h, r, p);
        break;
    case APP_OP_USER_DELETE:
        http_user_delete_done(h, r, p);
        break;
    case APP_OP_FRAME:
        break; /* not ours */
    }
    fa_free(p);
}

void http_handle(struct http_ctx *h, const struct http_req *req)
{
    char param[HTTP_PARAM_MAX];
    enum http_route_id id;
    bool method_ok;
    const char *allow;

    if (!http_route_match(req->method, req->path, &id, &method_ok, &allow, param)) {
        http_reply_error(h, req->conn_id, FA_ERR_NOT_FOUND, NULL, "no such endpoint", 0);
        return;
    }
    if (!method_ok) {
        http_reply_method(h, req->conn_id, allow);
        return;
    }
    if (req->body.n > h->max_body) {
        http_reply_error(h, req->conn_id, FA_ERR_TOO_LARGE, NULL, "request body too large", 0);
        return;
    }
    switch (id) {
    case HTTP_ROUTE_CLIENT_LOGIN:
        http_h_client_login(h, req);
        break;
    case HTTP_ROUTE_ENROLLMENT:
        http_h_session_create(h, req, APP_SESSION_ENROLLMENT);
        break;
    case HTTP_ROUTE_AUTHENTICATION:
        http_h_session_create(h, req, APP_SESSION_AUTHENTICATION);
        break;
    case HTTP_ROUTE_SESSION_GET:
        http_h_session_get(h, req, param);
        break;
    case HTTP_ROUTE_USER_DELETE:
        http_h_user_delete(h, req, param);
        break;
    case HTTP_ROUTE_HEALTHZ:
        http_h_healthz(h, req);
        break;
    case HTTP_ROUTE_METRICS:
        http_h_metrics(h, req);
        break;
    case HTTP_ROUTE_NONE:
        http_reply_error(h, req->conn_id, FA_ERR_NOT_FOUND, NULL, "no such endpoint", 0);
        break;
    }
}
