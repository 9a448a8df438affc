/* Sessions over REST: POST /api/auth/enrollment/ and /authentication/ (R2,
 * R3) create one for the Bearer's client; GET /api/auth/sessions/<token>/
 * shows its status, progress and, once finished, the same result the socket
 * sent, so a client's backend can take the outcome from the server rather
 * than from the browser. Every body field is type- and range-checked here,
 * with a 400 naming the field; the app checks what needs the store. */
#include "http/http.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "http/priv.h"

#define MIN_FRAMES_MIN 1
#define MIN_FRAMES_MAX 20
#define BLINKS_MIN 0
#define BLINKS_MAX 5

/* Is `host` a plausible Host header (name or address, optional port)? */
static bool host_ok(const char *host)
{
    size_t n = host != NULL ? strlen(host) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

/* Base of websocket_url for this request (R4). */
static void ws_base(const struct http_ctx *h, const struct http_req *req, char out[HTTP_WSBASE_MAX])
{
    if (h->public_url != NULL)
        snprintf(out, HTTP_WSBASE_MAX, "%s", h->public_url);
    else
        snprintf(out, HTTP_WSBASE_MAX, "%s://%s", h->tls ? "wss" : "ws",
                 host_ok(req->host) ? req->host : h->listen);
}

static void bad_field(struct http_ctx *h, uint64_t conn_id, const char *field, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof msg, "field '%s' %s", field, why);
    http_reply_error(h, conn_id, FA_ERR_ARG, field, msg, 0);
}

/* An optional integer in [lo, hi]; APP_DEFAULT when absent or null. False
 * after replying 400. */
static bool int_field(struct http_ctx *h, uint64_t conn_id, json_t *obj, const char *key,
                      const char *field, int lo, int hi, int *out)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;
    *out = APP_DEFAULT;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char why[64];
        snprintf(why, sizeof why, "must be an integer from %d to %d", lo, hi);
        bad_field(h, conn_id, field, why);
        return false;
    }
    *out = (int)json_integer_value(v);
    return true;
}

/* An optional boolean; `dflt` when absent or null. */
static bool bool_field(struct http_ctx *h, uint64_t conn_id, json_t *obj, const char *key,
                       bool dflt, bool *out)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        bad_field(h, conn_id, key, "must be true or false");
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* Check the body of R2/R3 into *sr (strings borrowed from body). */
static bool parse_session_req(struct http_ctx *h, uint64_t conn_id, json_t *body,
                              struct app_session_req *sr)
{
    json_t *uid = json_object_get(body, "user_id");
    sr->user_id = NULL;
    if (uid != NULL && !json_is_null(uid)) {
        if (!json_is_string(uid) || strlen(json_string_value(uid)) != json_string_length(uid) ||
            !app_user_id_valid(json_string_value(uid))) {
            bad_field(h, conn_id, "user_id", "must be 1-128 printable ASCII characters");
            return false;
        }
        sr->user_id = json_string_value(uid);
    }
    if (!bool_field(h, conn_id, body, "require_liveness", true, &sr->require_liveness) ||
        !bool_field(h, conn_id, body, "replace", false, &sr->replace))
        return false;
    json_t *md = json_object_get(body, "metadata");
    if (md != NULL && !json_is_null(md) && !json_is_object(md)) {
        bad_field(h, conn_id, "metadata", "must be an object");
        return false;
    }
    if (md != NULL && json_is_null(md))
        md = NULL;
    return int_field(h, conn_id, md, "min_frames_required", "metadata.min_frames_required",
                     MIN_FRAMES_MIN, MIN_FRAMES_MAX, &sr->min_frames_required) &&
           int_field(h, conn_id, md, "required_blinks", "metadata.required_blinks", BLINKS_MIN,
                     BLINKS_MAX, &sr->required_blinks);
}

/* Bearer check; false after replying 401. */
static bool bearer(struct http_ctx *h, const struct http_req *req,
                   char client_id[APP_CLIENT_ID_MAX])
{
    if (req->authorization == NULL) {
        http_reply_error(h, req->conn_id, FA_ERR_AUTH, NULL,
                         "missing 'Authorization: Bearer <token>' header", 0);
        return false;
    }
    enum fa_status rc = app_bearer_auth(h->app, req->authorization, client_id);
    if (rc != FA_OK) {
        http_reply_error(h, req->conn_id, rc, NULL,
                         rc == FA_ERR_TOKEN_EXPIRED ? "token expired" : "invalid bearer token", 0);
        return false;
    }
    return true;
}

void http_h_session_create(struct http_ctx *h, const struct http_req *req,
                           enum app_session_type type)
{
    char client_id[APP_CLIENT_ID_MAX];
    struct fa_errinfo err = {{0}};
    json_t *body = NULL;

    if (!bearer(h, req, client_id))
        return;
    enum fa_status rc = http_parse_body(h, req->body, &body, &err);
    if (rc != FA_OK) {
        http_reply_error(h, req->conn_id, rc, NULL, err.what[0] ? err.what : NULL, 0);
        return;
    }
    struct app_session_req sr = {.type = type};
    if (!parse_session_req(h, req->conn_id, body, &sr))
        goto out;
    struct http_pending *p = http_pending_add(h, req->conn_id);
    if (p == NULL) {
        http_reply_error(h, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        goto out;
    }
    ws_base(h, req, p->ws_base);
    rc = app_session_create(h->app, client_id, &sr, req->conn_id, http_on_app_reply, h);
    if (rc != FA_OK) {
        fa_free(http_pending_take(h, req->conn_id));
        http_reply_error(h, req->conn_id, rc, NULL, NULL, 0);
    }
out:
    json_decref(body);
}

void http_h_session_get(struct http_ctx *h, const struct http_req *req, const char *token)
{
    char client_id[APP_CLIENT_ID_MAX];
    if (!bearer(h, req, client_id))
        return;
    enum fa_status rc =
        app_session_get(h->app, client_id, token, req->conn_id, http_on_app_reply, h);
    if (rc != FA_OK)
        http_reply_error(h, req->conn_id, rc, NULL, NULL, 0);
}

/* The result as the socket sent it (R7, R10). NULL on OOM. */
static json_t *result_json(const struct app_result *res)
{
    json_t *enc = json_object();
    bool ok =
        json_object_set_new(enc, "encrypted_payload",
                            json_string(res->encrypted_payload ? res->encrypted_payload : "")) == 0;
    ok = json_object_set_new(
             enc, "encryption_method",
             json_string(res->encryption_method ? res->encryption_method : "AES-256-CBC")) == 0 &&
         ok;
    ok = json_object_set_new(enc, "instructions",
                             json_string("Decrypt with your secret_key to access the data")) == 0 &&
         ok;
    json_t *o = json_object();
    if (res->type == APP_SESSION_ENROLLMENT) {
        ok = json_object_set_new(o, "type", json_string("enrollment_complete")) == 0 && ok;
        ok = json_object_set_new(o, "enrollment_id", json_string(res->session_id)) == 0 && ok;
    } else {
        ok = json_object_set_new(o, "type", json_string("authentication_complete")) == 0 && ok;
        ok = json_object_set_new(o, "authenticated", json_boolean(res->authenticated)) == 0 && ok;
        ok = json_object_set_new(o, "user_id",
                                 res->has_user_id ? json_string(res->user_id) : json_null()) == 0 &&
             ok;
        /* 4 decimals, as the socket and the encrypted payload carry it */
        ok = json_object_set_new(o, "confidence", json_real(round(res->confidence * 1e4) / 1e4)) ==
                 0 &&
             ok;
    }
    ok = json_object_set_new(o, "encrypted_data", enc) == 0 && ok;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The session as REST shows it; `created` adds websocket_url and message. */
static json_t *session_json(const struct app_session_info *si, const struct http_pending *p,
                            bool created)
{
    bool enr = si->type == APP_SESSION_ENROLLMENT;
    json_t *o = json_object();
    bool ok = json_object_set_new(o, "session_token", json_string(si->session_token)) == 0;
    ok = json_object_set_new(o, enr ? "enrollment_id" : "authentication_id",
                             json_string(si->session_id)) == 0 &&
         ok;
    ok =
        json_object_set_new(o, "session_type", json_string(app_session_type_name(si->type))) == 0 &&
        ok;
    ok = json_object_set_new(o, "status", json_string(app_session_status_name(si->status))) == 0 &&
         ok;
    ok = json_object_set_new(o, "user_id",
                             si->has_user_id ? json_string(si->user_id) : json_null()) == 0 &&
         ok;
    if (!enr)
        ok =
            json_object_set_new(
                o, "mode", json_string(si->has_user_id ? "verification" : "identification")) == 0 &&
            ok;
    ok = json_object_set_new(o, "require_liveness", json_boolean(si->require_liveness)) == 0 && ok;
    ok = json_object_set_new(o, "target_samples", json_integer(si->target_samples)) == 0 && ok;
    ok = json_object_set_new(o, "required_blinks", json_integer(si->required_blinks)) == 0 && ok;
    ok = json_object_set_new(o, "expires_at", http_json_time(si->expires_at_ms)) == 0 && ok;
    if (created) {
        struct fa_buf url = {0};
        if (fa_buf_printf(&url, "%s/ws/auth/process-image/%s/", p != NULL ? p->ws_base : "",
                          si->session_token) != FA_OK)
            ok = false;
        ok = json_object_set_new(o, "websocket_url", json_string((const char *)url.p)) == 0 && ok;
        fa_buf_fini(&url);
        ok = json_object_set_new(o, "message",
                                 json_string(enr ? "Enrollment session created. Stream frames "
                                                   "to continue."
                                                 : "Authentication session created. Stream "
                                                   "frames to continue.")) == 0 &&
             ok;
    } else {
        ok = json_object_set_new(o, "frames_processed", json_integer(si->frames_processed)) == 0 &&
             ok;
        ok = json_object_set_new(o, "created_at", http_json_time(si->created_at_ms)) == 0 && ok;
        ok = json_object_set_new(o, "finished_at", http_json_time(si->finished_at_ms)) == 0 && ok;
        ok = json_object_set_new(o, "result",
                                 si->has_result ? result_json(&si->result) : json_null()) == 0 &&
             ok;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void http_session_done(struct http_ctx *h, const struct app_reply *r, const struct http_pending *p)
{
    if (r->rc != FA_OK) {
        http_reply_app_error(h, r);
        return;
    }
    bool created = r->op == APP_OP_SESSION_CREATE;
    http_reply_json(h, r->conn_id, created ? 201 : 200, session_json(&r->u.session, p, created));
}
