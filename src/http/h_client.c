/* POST /api/auth/client/ (R1): {"api_key","secret_key"} -> a JWT. The
 * argon2id check runs on a worker inside the app; failed logins are limited
 * per peer IP and per api_key there, and come back as 429 with Retry-After. */
#include "http/http.h"

#include <stdio.h>
#include <string.h>

#include "http/priv.h"

/* A required string field without embedded NULs; NULL after replying 400. */
static const char *string_field(struct http_ctx *h, uint64_t conn_id, json_t *body,
                                const char *name)
{
    json_t *v = json_object_get(body, name);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "field '%s' is required and must be a non-empty string", name);
        http_reply_error(h, conn_id, FA_ERR_ARG, name, msg, 0);
        return NULL;
    }
    return json_string_value(v);
}

void http_h_client_login(struct http_ctx *h, const struct http_req *req)
{
    struct fa_errinfo err = {{0}};
    json_t *body = NULL;
    enum fa_status rc = http_parse_body(h, req->body, &body, &err);
    if (rc != FA_OK) {
        http_reply_error(h, req->conn_id, rc, NULL, err.what[0] ? err.what : NULL, 0);
        return;
    }
    const char *api_key = string_field(h, req->conn_id, body, "api_key");
    const char *secret_key = api_key ? string_field(h, req->conn_id, body, "secret_key") : NULL;
    if (api_key != NULL && secret_key != NULL) {
        rc = app_client_login(h->app, api_key, secret_key, req->peer_ip, req->conn_id,
                              http_on_app_reply, h);
        if (rc != FA_OK)
            http_reply_error(h, req->conn_id, rc, NULL, NULL, 0);
    }
    json_decref(body);
}

void http_login_done(struct http_ctx *h, const struct app_reply *r)
{
    if (r->rc != FA_OK) {
        http_reply_app_error(h, r);
        return;
    }
    json_t *o = json_object();
    bool ok = json_object_set_new(o, "token", json_string(r->u.login.token)) == 0;
    ok = json_object_set_new(o, "client_id", json_string(r->u.login.client_id)) == 0 && ok;
    ok = json_object_set_new(o, "expires_at", http_json_time(r->u.login.expires_at_ms)) == 0 && ok;
    ok = json_object_set_new(o, "token_type", json_string("Bearer")) == 0 && ok;
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    http_reply_json(h, r->conn_id, 200, o);
}
