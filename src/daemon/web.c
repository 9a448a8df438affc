/* What faceauthd serves besides the REST API: the files embedded at build
 * time (web_assets.h: the SDK, the OpenAPI document and, with --demo, the
 * demo page) and the demo backend. The demo backend plays the part a
 * client's own backend plays in a real integration, for one built-in demo
 * client whose keys stay on the server (data_dir/demo-client.json, 0600):
 * it creates sessions for the page (the app's session_create, as
 * POST /api/auth/enrollment/ does for a Bearer client), and when the page
 * reports a completion it takes the session from the app (as
 * GET /api/auth/sessions/<token>/ does) and decrypts the result with the
 * demo secret, so the page shows an outcome it could not have forged.
 * Runs on: loop, everything except web_new's admin calls (before the loop). */
#include "daemon/web.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "daemon/web_assets.h"

#define DEMO_FILE "demo-client.json"
#define DEMO_API "/demo/api/sessions"
#define WSBASE_MAX 320

struct pending {
    uint64_t conn_id;
    char ws_base[WSBASE_MAX];
    char token[APP_TOKEN_MAX];
    struct pending *next;
};

struct web {
    struct app *app;
    const struct config *cfg;
    http_respond_fn respond;
    void *respond_arg;
    bool demo;
    char client_id[APP_CLIENT_ID_MAX];
    char secret[APP_KEY_MAX]; /* the demo client's secret_key: never sent anywhere */
    struct pending *pending;
};

/* ---- responses ---------------------------------------------------------- */

static int dump_cb(const char *p, size_t n, void *arg)
{
    return fa_buf_append(arg, p, n) == FA_OK ? 0 : -1;
}

/* Send `o` (stolen; NULL after an OOM gives a 500). */
static void reply_json(struct web *w, uint64_t conn_id, int status, json_t *o)
{
    struct http_resp resp = {.status = status, .content_type = "application/json"};
    if (o == NULL || json_dump_callback(o, dump_cb, &resp.body, JSON_COMPACT) != 0 ||
        fa_buf_puts(&resp.body, "\n") != FA_OK) {
        fa_buf_fini(&resp.body);
        (void)http_error_response(500, "out of memory", &resp);
    }
    json_decref(o);
    w->respond(w->respond_arg, conn_id, &resp);
}

/* {"error","code","reason"[,"field"]} as the REST API answers errors. */
static void reply_error(struct web *w, uint64_t conn_id, enum fa_status rc, const char *field,
                        const char *message, int64_t retry_after_s)
{
    int status = http_status_of(rc);
    char reason[48];
    const char *name = fa_status_name(rc);
    if (rc == FA_ERR_ARG)
        name = field != NULL ? "invalid_field" : "invalid_request";
    else if (strncmp(name, "FA_ERR_", 7) == 0)
        name += 7;
    size_t i = 0;
    for (; name[i] != 0 && i < sizeof reason - 1; i++)
        reason[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    reason[i] = 0;
    json_t *o = json_pack("{s:s, s:i, s:s}", "error", message ? message : fa_status_str(rc), "code",
                          status, "reason", reason);
    if (o != NULL && field != NULL)
        json_object_set_new(o, "field", json_string(field));
    struct http_resp resp = {.status = status, .content_type = "application/json"};
    if (o == NULL || json_dump_callback(o, dump_cb, &resp.body, JSON_COMPACT) != 0 ||
        fa_buf_puts(&resp.body, "\n") != FA_OK) {
        fa_buf_fini(&resp.body);
        (void)http_error_response(500, "out of memory", &resp);
    }
    json_decref(o);
    if (status == 429)
        resp.retry_after_s = retry_after_s > 0 ? retry_after_s : 1;
    w->respond(w->respond_arg, conn_id, &resp);
}

static json_t *time_json(int64_t wall_ms)
{
    if (wall_ms <= 0)
        return json_null();
    char ts[32];
    fa_iso8601_ms(wall_ms, ts);
    return json_string(ts);
}

/* ---- static files --------------------------------------------------------- */

static const struct web_asset *asset_find(const struct web *w, const char *path)
{
    if (strcmp(path, "/demo") == 0 || strcmp(path, "/demo/index.html") == 0)
        path = "/demo/";
    if (!w->demo && strncmp(path, "/demo/", 6) == 0)
        return NULL;
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

static void serve_asset(struct web *w, const struct http_req *req, const struct web_asset *a)
{
    if (req->method != HTTP_METHOD_GET) {
        struct http_resp resp;
        (void)http_error_response(405, "method not allowed", &resp);
        resp.allow = "GET";
        w->respond(w->respond_arg, req->conn_id, &resp);
        return;
    }
    struct http_resp resp = {.status = 200, .content_type = a->type};
    if (fa_buf_append(&resp.body, a->data, a->len) != FA_OK) {
        reply_error(w, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        return;
    }
    w->respond(w->respond_arg, req->conn_id, &resp);
}

/* ---- the demo backend -------------------------------------------------------- */

static struct pending *pending_add(struct web *w, uint64_t conn_id)
{
    struct pending *p = fa_calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conn_id = conn_id;
    p->next = w->pending;
    w->pending = p;
    return p;
}

static struct pending *pending_take(struct web *w, uint64_t conn_id)
{
    for (struct pending **pp = &w->pending; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->conn_id == conn_id) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

/* Base of websocket_url, as the REST API computes it (R4). */
static void ws_base(const struct web *w, const struct http_req *req, char out[WSBASE_MAX])
{
    const char *pu = w->cfg->public_url;
    if (pu != NULL && pu[0] != 0) {
        const char *rest = pu;
        const char *scheme = "ws";
        if (strncmp(pu, "https://", 8) == 0) {
            scheme = "wss";
            rest = pu + 8;
        } else if (strncmp(pu, "http://", 7) == 0) {
            rest = pu + 7;
        } else if (strncmp(pu, "wss://", 6) == 0) {
            scheme = "wss";
            rest = pu + 6;
        } else if (strncmp(pu, "ws://", 5) == 0) {
            rest = pu + 5;
        }
        size_t n = strlen(rest);
        while (n > 0 && rest[n - 1] == '/')
            n--;
        snprintf(out, WSBASE_MAX, "%s://%.*s", scheme, (int)n, rest);
        return;
    }
    const char *host = req->host;
    bool ok = host != NULL && host[0] != 0 && strlen(host) < 256;
    for (const char *c = host; ok && *c != 0; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '.' || *c == '-' || *c == ':' || *c == '[' || *c == ']';
    snprintf(out, WSBASE_MAX, "%s://%s", w->cfg->tls_cert != NULL ? "wss" : "ws",
             ok ? host : w->cfg->listen);
}

static json_t *result_json(const struct app_result *res)
{
    json_t *enc =
        json_pack("{s:s, s:s, s:s}", "encrypted_payload",
                  res->encrypted_payload ? res->encrypted_payload : "", "encryption_method",
                  res->encryption_method ? res->encryption_method : "AES-256-CBC", "instructions",
                  "Decrypt with your secret_key to access the data");
    if (res->type == APP_SESSION_ENROLLMENT)
        return json_pack("{s:s, s:s, s:o}", "type", "enrollment_complete", "enrollment_id",
                         res->session_id, "encrypted_data", enc);
    return json_pack("{s:s, s:b, s:o, s:f, s:o}", "type", "authentication_complete",
                     "authenticated", res->authenticated, "user_id",
                     res->has_user_id ? json_string(res->user_id) : json_null(), "confidence",
                     res->confidence, "encrypted_data", enc);
}

/* The body of POST /api/auth/enrollment/ or /authentication/ for `si`. */
static json_t *created_json(const struct app_session_info *si, const char *base)
{
    bool enr = si->type == APP_SESSION_ENROLLMENT;
    char url[WSBASE_MAX + APP_TOKEN_MAX + 32];
    snprintf(url, sizeof url, "%s/ws/auth/process-image/%s/", base, si->session_token);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:i, s:i, s:o, s:s, s:s}", "session_token",
                  si->session_token, enr ? "enrollment_id" : "authentication_id", si->session_id,
                  "session_type", app_session_type_name(si->type), "status",
                  app_session_status_name(si->status), "user_id",
                  si->has_user_id ? json_string(si->user_id) : json_null(), "require_liveness",
                  si->require_liveness, "target_samples", si->target_samples, "required_blinks",
                  si->required_blinks, "expires_at", time_json(si->expires_at_ms), "websocket_url",
                  url, "message",
                  enr ? "Enrollment session created. Stream frames to continue."
                      : "Authentication session created. Stream frames to continue.");
    if (o != NULL && !enr)
        json_object_set_new(o, "mode",
                            json_string(si->has_user_id ? "verification" : "identification"));
    return o;
}

/* Decrypt the result with the demo secret, as the client's backend would,
 * and check that it belongs to this session. *verified false when not. */
static json_t *decrypt_result(const struct web *w, const struct app_session_info *si,
                              bool *verified)
{
    const struct app_result *res = &si->result;
    enum crypto_method m;
    uint8_t key[CRYPTO_KEY_BYTES];
    struct fa_buf pt = {0};
    json_t *plain = NULL;
    *verified = false;
    if (res->encrypted_payload == NULL || crypto_method_parse(res->encryption_method, &m) != FA_OK)
        return NULL;
    crypto_result_key(w->secret, key);
    enum fa_status rc = crypto_envelope_open(
        m, key, fa_bytes_of(res->encrypted_payload, strlen(res->encrypted_payload)), &pt);
    crypto_wipe(key, sizeof key);
    if (rc == FA_OK) {
        json_error_t je;
        plain = json_loadb((const char *)pt.p, pt.n, 0, &je);
    }
    fa_buf_fini(&pt);
    if (!json_is_object(plain)) {
        json_decref(plain);
        return NULL;
    }
    const char *tok = json_string_value(json_object_get(plain, "session_token"));
    json_t *id = json_object_get(plain, "id");
    bool id_ok;
    if (res->type == APP_SESSION_ENROLLMENT)
        id_ok = json_is_string(id) && strcmp(json_string_value(id), res->session_id) == 0;
    else if (res->authenticated && res->has_user_id)
        id_ok = json_is_string(id) && strcmp(json_string_value(id), res->user_id) == 0;
    else
        id_ok = json_is_null(id);
    *verified = tok != NULL && strcmp(tok, si->session_token) == 0 && id_ok;
    return plain;
}

static void on_app_reply(void *arg, const struct app_reply *r)
{
    struct web *w = arg;
    struct pending *p = pending_take(w, r->conn_id);
    if (r->rc != FA_OK) {
        reply_error(w, r->conn_id, r->rc, r->field[0] ? r->field : NULL,
                    r->err.what[0] ? r->err.what : NULL, r->retry_after_s);
    } else if (r->op == APP_OP_SESSION_CREATE) {
        const struct app_session_info *si = &r->u.session;
        fa_info("demo: %s session %s created for the demo client", app_session_type_name(si->type),
                si->session_id);
        reply_json(w, r->conn_id, 201, created_json(si, p != NULL ? p->ws_base : "ws://-"));
    } else if (r->op == APP_OP_SESSION_GET) {
        const struct app_session_info *si = &r->u.session;
        bool verified = false;
        json_t *plain = si->has_result ? decrypt_result(w, si, &verified) : NULL;
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:b}", "session_token", si->session_token,
                              "status", app_session_status_name(si->status), "user_id",
                              si->has_user_id ? json_string(si->user_id) : json_null(), "result",
                              si->has_result ? result_json(&si->result) : json_null(), "decrypted",
                              plain != NULL ? plain : json_null(), "verified", verified);
        reply_json(w, r->conn_id, 200, o);
    } else {
        reply_error(w, r->conn_id, FA_ERR_INTERNAL, NULL, NULL, 0);
    }
    fa_free(p);
}

static void demo_create(struct web *w, const struct http_req *req)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)req->body.p, req->body.n, JSON_REJECT_DUPLICATES, &je);
    struct app_session_req sr = {.min_frames_required = APP_DEFAULT,
                                 .required_blinks = APP_DEFAULT};
    if (!json_is_object(body)) {
        reply_error(w, req->conn_id, FA_ERR_JSON, NULL, "the body must be a JSON object", 0);
        goto out;
    }
    const char *type = json_string_value(json_object_get(body, "type"));
    if (type != NULL && strcmp(type, "enrollment") == 0) {
        sr.type = APP_SESSION_ENROLLMENT;
    } else if (type != NULL && strcmp(type, "authentication") == 0) {
        sr.type = APP_SESSION_AUTHENTICATION;
    } else {
        reply_error(w, req->conn_id, FA_ERR_ARG, "type",
                    "field 'type' must be \"enrollment\" or \"authentication\"", 0);
        goto out;
    }
    json_t *uid = json_object_get(body, "user_id");
    if (uid != NULL && !json_is_null(uid)) {
        if (!json_is_string(uid) || strlen(json_string_value(uid)) != json_string_length(uid) ||
            !app_user_id_valid(json_string_value(uid))) {
            reply_error(w, req->conn_id, FA_ERR_ARG, "user_id",
                        "field 'user_id' must be 1-128 printable ASCII characters", 0);
            goto out;
        }
        sr.user_id = json_string_value(uid);
    }
    json_t *live = json_object_get(body, "require_liveness");
    json_t *repl = json_object_get(body, "replace");
    if ((live != NULL && !json_is_boolean(live)) || (repl != NULL && !json_is_boolean(repl))) {
        reply_error(w, req->conn_id, FA_ERR_ARG,
                    live != NULL && !json_is_boolean(live) ? "require_liveness" : "replace",
                    "must be true or false", 0);
        goto out;
    }
    sr.require_liveness = json_is_true(live);
    sr.replace = json_is_true(repl);
    if (!sr.require_liveness)
        sr.required_blinks = 0;
    struct pending *p = pending_add(w, req->conn_id);
    if (p == NULL) {
        reply_error(w, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        goto out;
    }
    ws_base(w, req, p->ws_base);
    enum fa_status rc =
        app_session_create(w->app, w->client_id, &sr, req->conn_id, on_app_reply, w);
    if (rc != FA_OK) {
        fa_free(pending_take(w, req->conn_id));
        reply_error(w, req->conn_id, rc, NULL, NULL, 0);
    }
out:
    json_decref(body);
}

static void demo_get(struct web *w, const struct http_req *req, const char *token)
{
    struct pending *p = pending_add(w, req->conn_id);
    if (p == NULL) {
        reply_error(w, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        return;
    }
    snprintf(p->token, sizeof p->token, "%s", token);
    enum fa_status rc =
        app_session_get(w->app, w->client_id, p->token, req->conn_id, on_app_reply, w);
    if (rc != FA_OK) {
        fa_free(pending_take(w, req->conn_id));
        reply_error(w, req->conn_id, rc, NULL, NULL, 0);
    }
}

/* /demo/api/sessions[/] -> true with token ""; /demo/api/sessions/<token>[/]
 * -> true with the token; anything else false. */
static bool demo_path(const char *path, char token[APP_TOKEN_MAX])
{
    size_t n = strlen(DEMO_API);
    if (strncmp(path, DEMO_API, n) != 0)
        return false;
    const char *t = path + n;
    token[0] = 0;
    if (*t == 0)
        return true;
    if (*t != '/')
        return false;
    t++;
    size_t len = strlen(t);
    if (len > 0 && t[len - 1] == '/')
        len--;
    if (len >= APP_TOKEN_MAX || memchr(t, '/', len) != NULL)
        return false;
    memcpy(token, t, len);
    token[len] = 0;
    return true;
}

bool web_handle(struct web *w, const struct http_req *req)
{
    if (w == NULL || req->path == NULL)
        return false;
    const struct web_asset *a = asset_find(w, req->path);
    if (a != NULL) {
        serve_asset(w, req, a);
        return true;
    }
    char token[APP_TOKEN_MAX];
    if (!w->demo || !demo_path(req->path, token))
        return false;
    if (token[0] == 0 && req->method == HTTP_METHOD_POST) {
        demo_create(w, req);
    } else if (token[0] != 0 && req->method == HTTP_METHOD_GET) {
        demo_get(w, req, token);
    } else {
        struct http_resp resp;
        (void)http_error_response(405, "method not allowed", &resp);
        resp.allow = token[0] == 0 ? "POST" : "GET";
        w->respond(w->respond_arg, req->conn_id, &resp);
    }
    return true;
}

const char *web_route_name(const struct web *w, const char *path)
{
    char token[APP_TOKEN_MAX];
    if (w == NULL || path == NULL)
        return NULL;
    if (asset_find(w, path) != NULL)
        return "static";
    if (w->demo && demo_path(path, token))
        return "demo_api";
    return NULL;
}

/* ---- the demo client ---------------------------------------------------------- */

/* Read data_dir/demo-client.json into w; false if absent or unreadable. */
static bool demo_load(struct web *w, const char *file)
{
    struct fa_buf b = {0};
    json_t *o = NULL;
    bool ok = false;
    if (fa_read_file(file, 4096, &b) != FA_OK)
        goto out;
    json_error_t je;
    o = json_loadb((const char *)b.p, b.n, 0, &je);
    const char *id = json_string_value(json_object_get(o, "client_id"));
    const char *sk = json_string_value(json_object_get(o, "secret_key"));
    if (id == NULL || sk == NULL || strlen(id) >= sizeof w->client_id ||
        strlen(sk) >= sizeof w->secret)
        goto out;
    snprintf(w->client_id, sizeof w->client_id, "%s", id);
    snprintf(w->secret, sizeof w->secret, "%s", sk);
    ok = true;
out:
    json_decref(o);
    if (b.p != NULL)
        crypto_wipe(b.p, b.cap);
    fa_buf_fini(&b);
    return ok;
}

static bool demo_save(const struct app_client_secret *cs, const char *file)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "client_id", cs->client_id, "api_key",
                          cs->api_key, "secret_key", cs->secret_key, "note",
                          "keys of faceauthd's built-in demo client (--demo); not for production");
    char *text = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (text == NULL)
        return false;
    bool ok = false;
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t n = strlen(text);
        ok = fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n;
        ok = close(fd) == 0 && ok;
    }
    if (!ok)
        fa_error("demo: cannot write %s: %s", file, strerror(errno));
    crypto_wipe(text, strlen(text));
    fa_free(text); /* jansson allocates with fa_malloc (daemon/main.c) */
    return ok;
}

/* Reuse the demo client of an earlier start, or create one. */
static bool demo_client(struct web *w, const struct config *cfg)
{
    struct app_config ac = {.data_dir = cfg->data_dir,
                            .kdf_m_cost_kib = (uint32_t)cfg->kdf_m_cost_kib};
    struct app_admin *ad = NULL;
    struct fa_errinfo info = {{0}};
    char file[1024];
    bool ok = false;
    snprintf(file, sizeof file, "%s/%s", cfg->data_dir, DEMO_FILE);
    enum fa_status rc = app_admin_open(&ac, &ad, &info);
    if (rc != FA_OK) {
        fa_error("demo: %s %s", fa_status_str(rc), info.what);
        return false;
    }
    if (demo_load(w, file)) {
        struct app_client_info *list = NULL;
        size_t n = 0;
        if (app_admin_client_list(ad, &list, &n) == FA_OK) {
            for (size_t i = 0; i < n && !ok; i++)
                ok = strcmp(list[i].client_id, w->client_id) == 0 && !list[i].revoked;
        }
        fa_free(list);
        if (!ok)
            fa_warn("demo: the client of %s is gone or revoked; creating a new one", file);
    }
    if (!ok) {
        struct app_client_secret cs;
        rc = app_admin_client_create(ad, "faceauth demo (--demo)", NULL, &cs);
        if (rc == FA_OK && demo_save(&cs, file)) {
            snprintf(w->client_id, sizeof w->client_id, "%s", cs.client_id);
            snprintf(w->secret, sizeof w->secret, "%s", cs.secret_key);
            ok = true;
        } else if (rc != FA_OK) {
            fa_error("demo: cannot create the demo client: %s", fa_status_str(rc));
        }
        crypto_wipe(&cs, sizeof cs);
    }
    app_admin_close(ad);
    if (ok)
        fa_info("demo: serving /demo/ for the demo client %s (keys in %s)", w->client_id, file);
    return ok;
}

struct web *web_new(struct app *app, const struct config *cfg, http_respond_fn respond,
                    void *respond_arg)
{
    struct web *w = fa_calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->app = app;
    w->cfg = cfg;
    w->respond = respond;
    w->respond_arg = respond_arg;
    w->demo = cfg->demo;
    if (w->demo && !demo_client(w, cfg)) {
        web_free(w);
        return NULL;
    }
    return w;
}

void web_free(struct web *w)
{
    if (w == NULL)
        return;
    while (w->pending != NULL) {
        struct pending *p = w->pending;
        w->pending = p->next;
        fa_free(p);
    }
    crypto_wipe(w->secret, sizeof w->secret);
    fa_free(w);
}
