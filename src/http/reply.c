/* REST replies: JSON bodies, the one mapping from a status class to an HTTP
 * status, the error body {"error","code","reason"[,"field"]}, and the bounded
 * parse of request bodies (size checked first, nesting depth scanned before
 * jansson sees the bytes, duplicate keys refused). */
#include "http/http.h"

#include <ctype.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "http/priv.h"

int http_status_of(enum fa_status s)
{
    switch (fa_status_class(s)) {
    case FA_CLASS_OK:
        return 200;
    case FA_CLASS_INPUT:
        return 400;
    case FA_CLASS_AUTH:
        return 401;
    case FA_CLASS_FORBIDDEN:
        return 403;
    case FA_CLASS_NOT_FOUND:
        return 404;
    case FA_CLASS_CONFLICT:
        return 409;
    case FA_CLASS_LIMIT:
        return s == FA_ERR_TOO_LARGE ? 413 : 429;
    case FA_CLASS_INTERNAL:
        return 500;
    case FA_CLASS_UNAVAILABLE:
        return 503;
    }
    return 500;
}

static void respond(struct http_ctx *h, uint64_t conn_id, struct http_resp *resp)
{
    int cls = resp->status / 100;
    if (cls >= 1 && cls <= 5)
        h->responses[cls]++;
    h->respond(h->respond_arg, conn_id, resp);
}

static int dump_cb(const char *p, size_t n, void *arg)
{
    return fa_buf_append(arg, p, n) == FA_OK ? 0 : -1;
}

/* A last-resort body that needs no allocation from jansson. */
static void reply_oom(struct http_ctx *h, uint64_t conn_id)
{
    struct http_resp resp = {.status = 500, .content_type = "application/json"};
    (void)fa_buf_puts(&resp.body, "{\"error\":\"out of memory\",\"code\":500,"
                                  "\"reason\":\"nomem\"}");
    respond(h, conn_id, &resp);
}

void http_reply_json(struct http_ctx *h, uint64_t conn_id, int status, json_t *body)
{
    struct http_resp resp = {.status = status, .content_type = "application/json"};
    if (body == NULL || json_dump_callback(body, dump_cb, &resp.body, JSON_COMPACT) != 0 ||
        fa_buf_puts(&resp.body, "\n") != FA_OK) {
        json_decref(body);
        fa_buf_fini(&resp.body);
        reply_oom(h, conn_id);
        return;
    }
    json_decref(body);
    respond(h, conn_id, &resp);
}

void http_reply_text(struct http_ctx *h, uint64_t conn_id, int status, const char *content_type,
                     struct fa_buf *text)
{
    struct http_resp resp = {.status = status, .content_type = content_type, .body = *text};
    *text = (struct fa_buf){0};
    respond(h, conn_id, &resp);
}

/* "FA_ERR_SESSION_NOT_FOUND" -> "session_not_found" */
static void reason_of(enum fa_status rc, const char *field, char out[48])
{
    if (rc == FA_ERR_ARG) {
        strcpy(out, field != NULL ? "invalid_field" : "invalid_request");
        return;
    }
    const char *name = fa_status_name(rc);
    if (strncmp(name, "FA_ERR_", 7) == 0)
        name += 7;
    size_t i = 0;
    for (; name[i] != 0 && i < 47; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[i] = 0;
}

static bool put(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0;
}

static json_t *error_body(enum fa_status rc, int status, const char *field, const char *message)
{
    char reason[48];
    reason_of(rc, field, reason);
    json_t *o = json_object();
    bool ok = put(o, "error", json_string(message != NULL ? message : fa_status_str(rc)));
    ok = put(o, "code", json_integer(status)) && ok;
    ok = put(o, "reason", json_string(reason)) && ok;
    if (field != NULL)
        ok = put(o, "field", json_string(field)) && ok;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

enum fa_status http_error_response(int status, const char *message, struct http_resp *resp)
{
    *resp = (struct http_resp){.status = status, .content_type = "application/json"};
    enum fa_status rc = status == 413   ? FA_ERR_TOO_LARGE
                        : status == 400 ? FA_ERR_ARG
                        : status == 404 ? FA_ERR_NOT_FOUND
                                        : FA_ERR_INTERNAL;
    json_t *o = error_body(rc, status, NULL, message);
    if (o == NULL || json_dump_callback(o, dump_cb, &resp->body, JSON_COMPACT) != 0 ||
        fa_buf_puts(&resp->body, "\n") != FA_OK) {
        json_decref(o);
        fa_buf_fini(&resp->body);
        return FA_ERR_NOMEM;
    }
    json_decref(o);
    return FA_OK;
}

static void send_error(struct http_ctx *h, uint64_t conn_id, enum fa_status rc, const char *field,
                       const char *message, int64_t retry_after_s);

void http_reply_app_error(struct http_ctx *h, const struct app_reply *r)
{
    send_error(h, r->conn_id, r->rc, r->field[0] ? r->field : NULL,
               r->err.what[0] ? r->err.what : NULL, r->retry_after_s);
}

void http_reply_error(struct http_ctx *h, uint64_t conn_id, enum fa_status rc, const char *field,
                      const char *message, int64_t retry_after_s)
{
    if (h->app != NULL)
        app_metrics_error(h->app, rc); /* errors of the app's replies it counts itself */
    send_error(h, conn_id, rc, field, message, retry_after_s);
}

static void send_error(struct http_ctx *h, uint64_t conn_id, enum fa_status rc, const char *field,
                       const char *message, int64_t retry_after_s)
{
    int status = http_status_of(rc);
    json_t *o = error_body(rc, status, field, message);
    if (o == NULL) {
        reply_oom(h, conn_id);
        return;
    }
    struct http_resp resp = {.status = status, .content_type = "application/json"};
    if (status == 429)
        resp.retry_after_s = retry_after_s > 0 ? retry_after_s : 1;
    if (json_dump_callback(o, dump_cb, &resp.body, JSON_COMPACT) != 0 ||
        fa_buf_puts(&resp.body, "\n") != FA_OK) {
        json_decref(o);
        fa_buf_fini(&resp.body);
        reply_oom(h, conn_id);
        return;
    }
    json_decref(o);
    respond(h, conn_id, &resp);
}

void http_reply_method(struct http_ctx *h, uint64_t conn_id, const char *allow)
{
    if (h->app != NULL)
        app_metrics_error(h->app, FA_ERR_ARG);
    json_t *o = json_object();
    bool ok = put(o, "error", json_string("method not allowed"));
    ok = put(o, "code", json_integer(405)) && ok;
    ok = put(o, "reason", json_string("method_not_allowed")) && ok;
    struct http_resp resp = {.status = 405, .content_type = "application/json", .allow = allow};
    if (!ok || json_dump_callback(o, dump_cb, &resp.body, JSON_COMPACT) != 0) {
        json_decref(o);
        fa_buf_fini(&resp.body);
        reply_oom(h, conn_id);
        return;
    }
    json_decref(o);
    respond(h, conn_id, &resp);
}

/* Deepest nesting of objects/arrays, brackets inside strings ignored; stops
 * once over `limit`. Malformed input is jansson's to reject. */
static int json_depth(struct fa_bytes in, int limit)
{
    int depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < in.n; i++) {
        uint8_t c = in.p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max && (max = depth) > limit)
                return max;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

enum fa_status http_parse_body(const struct http_ctx *h, struct fa_bytes body, json_t **out,
                               struct fa_errinfo *err)
{
    if (body.n > h->max_body) {
        fa_errinfo_set(err, "request body exceeds %zu bytes", h->max_body);
        return FA_ERR_TOO_LARGE;
    }
    size_t i = 0;
    while (i < body.n &&
           (body.p[i] == ' ' || body.p[i] == '\t' || body.p[i] == '\r' || body.p[i] == '\n'))
        i++;
    if (i == body.n) {
        json_t *o = json_object();
        if (o == NULL)
            return FA_ERR_NOMEM;
        *out = o;
        return FA_OK;
    }
    if (json_depth(body, HTTP_MAX_DEPTH) > HTTP_MAX_DEPTH) {
        fa_errinfo_set(err, "request body nests deeper than %d levels", HTTP_MAX_DEPTH);
        return FA_ERR_JSON;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body.p, body.n, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return FA_ERR_NOMEM;
        fa_errinfo_set(err, "malformed JSON body: %s", jerr.text);
        return FA_ERR_JSON;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fa_errinfo_set(err, "request body must be a JSON object");
        return FA_ERR_JSON;
    }
    *out = root;
    return FA_OK;
}

json_t *http_json_time(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    char ts[32];
    fa_iso8601_ms(wall_ms, ts);
    return json_string(ts);
}
