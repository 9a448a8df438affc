/* DELETE /api/users/<user_id>/: erase one user's face data for the Bearer's
 * client (another client's user is simply not found). The user_id arrives
 * URL-decoded by lws; it is checked like the one of a session body. */
#include "http/http.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "http/priv.h"

void http_h_user_delete(struct http_ctx *h, const struct http_req *req, const char *user_id)
{
    char client_id[APP_CLIENT_ID_MAX];
    if (req->authorization == NULL) {
        http_reply_error(h, req->conn_id, FA_ERR_AUTH, NULL,
                         "missing 'Authorization: Bearer <token>' header", 0);
        return;
    }
    enum fa_status rc = app_bearer_auth(h->app, req->authorization, client_id);
    if (rc != FA_OK) {
        http_reply_error(h, req->conn_id, rc, NULL,
                         rc == FA_ERR_TOKEN_EXPIRED ? "token expired" : "invalid bearer token", 0);
        return;
    }
    if (!app_user_id_valid(user_id)) {
        http_reply_error(h, req->conn_id, FA_ERR_ARG, "user_id",
                         "field 'user_id' must be 1-128 printable ASCII characters", 0);
        return;
    }
    struct http_pending *p = http_pending_add(h, req->conn_id);
    if (p == NULL) {
        http_reply_error(h, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        return;
    }
    snprintf(p->user_id, sizeof p->user_id, "%s", user_id);
    rc = app_user_delete(h->app, client_id, user_id, req->conn_id, http_on_app_reply, h);
    if (rc != FA_OK) {
        fa_free(http_pending_take(h, req->conn_id));
        http_reply_error(h, req->conn_id, rc, NULL, NULL, 0);
    }
}

void http_user_delete_done(struct http_ctx *h, const struct app_reply *r,
                           const struct http_pending *p)
{
    if (r->rc != FA_OK) {
        http_reply_app_error(h, r);
        return;
    }
    json_t *o = json_object();
    bool ok = json_object_set_new(o, "deleted", json_true()) == 0;
    ok = json_object_set_new(o, "user_id", json_string(p != NULL ? p->user_id : "")) == 0 && ok;
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    http_reply_json(h, r->conn_id, 200, o);
}
