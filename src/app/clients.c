/* Clients: configuration defaults, login (argon2id on a worker, JWT), bearer
 * checks, the per-client result key, and the operator functions. A login for
 * an unknown or revoked api_key still runs one argon2id verification against
 * a dummy hash, so response time does not tell which keys exist. */
#include "app/app_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

enum fa_status app_resolve_config(const struct app_config *in, struct app_cfg *o,
                                  struct fa_errinfo *info)
{
    memset(o, 0, sizeof *o);
    if (in == NULL || in->data_dir == NULL || in->data_dir[0] == 0) {
        fa_errinfo_set(info, "data_dir: required");
        return FA_ERR_ARG;
    }
    if ((size_t)snprintf(o->data_dir, sizeof o->data_dir, "%s", in->data_dir) >=
            sizeof o->data_dir ||
        (size_t)snprintf(o->db_path, sizeof o->db_path, "%s/faceauth.db", in->data_dir) >=
            sizeof o->db_path) {
        fa_errinfo_set(info, "data_dir: path too long");
        return FA_ERR_ARG;
    }
    const char *det = in->detector != NULL ? in->detector : "ssd";
    if (strcasecmp(det, "ssd") == 0)
        o->detector = FACE_DET_SSD;
    else if (strcasecmp(det, "tiny") == 0)
        o->detector = FACE_DET_TINY;
    else if (strcasecmp(det, "blazeface") == 0)
        o->detector = FACE_DET_BLAZEFACE;
    else {
        fa_errinfo_set(info, "detector: '%s' is not ssd, tiny or blazeface", det);
        return FA_ERR_ARG;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = in->workers ? in->workers : (cpus > 0 ? (unsigned)cpus : 2);
    if (o->workers > 256) {
        fa_errinfo_set(info, "workers: at most 256");
        return FA_ERR_ARG;
    }
    o->max_queue = in->max_queue ? in->max_queue : 1024;
    if (in->session_ttl_s < 0 || in->jwt_ttl_s < 0 || in->auth_fail_window_s < 0 ||
        in->login_fail_window_s < 0 || in->auth_fail_max < 0 || in->login_fail_max < 0) {
        fa_errinfo_set(info, "negative time or limit in the configuration");
        return FA_ERR_ARG;
    }
    o->session_ttl_ms = (in->session_ttl_s ? in->session_ttl_s : 300) * 1000;
    o->jwt_ttl_s = in->jwt_ttl_s ? in->jwt_ttl_s : 3600;
    o->auth_fail_max = in->auth_fail_max ? in->auth_fail_max : 5;
    o->auth_fail_window_ms = (in->auth_fail_window_s ? in->auth_fail_window_s : 180) * 1000;
    o->login_fail_max = in->login_fail_max ? in->login_fail_max : 5;
    o->login_fail_window_ms = (in->login_fail_window_s ? in->login_fail_window_s : 180) * 1000;
    if (o->auth_fail_max > 16 || o->login_fail_max > 16) {
        fa_errinfo_set(info, "failure limits: at most 16");
        return FA_ERR_ARG;
    }
    o->match_threshold = in->match_threshold > 0 ? in->match_threshold : LOGIC_MATCH_DIST;
    o->min_face_px = in->min_face_px > 0 ? in->min_face_px : LOGIC_MIN_FACE_PX;
    o->allow_duplicate_faces = in->allow_duplicate_faces;
    o->max_image_bytes = in->max_image_bytes ? in->max_image_bytes : (size_t)2 << 20;
    o->kdf.t_cost = in->kdf_t_cost;
    o->kdf.m_cost_kib = in->kdf_m_cost_kib;
    o->now_ms = in->now_ms;
    o->now_arg = in->now_arg;
    return FA_OK;
}

/* ---- Per-client key ---------------------------------------------------- */

static void client_key_aad(const char *client_id, char *aad, size_t n)
{
    snprintf(aad, n, "client-key:%s", client_id);
}

static enum fa_status unseal_client_key(const struct crypto_keystore *ks,
                                        const struct store_client *c, uint8_t key[CRYPTO_KEY_BYTES])
{
    char aad[96];
    struct fa_buf pt = {0};
    client_key_aad(c->id, aad, sizeof aad);
    enum fa_status rc = crypto_unseal(ks, fa_bytes_of(aad, strlen(aad)),
                                      fa_bytes_of(c->sealed_key, c->sealed_key_len), &pt);
    if (rc == FA_OK && pt.n != CRYPTO_KEY_BYTES)
        rc = FA_ERR_CRYPTO;
    if (rc == FA_OK)
        memcpy(key, pt.p, CRYPTO_KEY_BYTES);
    if (pt.p != NULL)
        crypto_wipe(pt.p, pt.cap);
    fa_buf_fini(&pt);
    return rc == FA_ERR_DECRYPT ? FA_ERR_CRYPTO : rc;
}

enum fa_status app_client_key(struct app *app, struct store *st, const char *client_id,
                              uint8_t key[CRYPTO_KEY_BYTES], int *method)
{
    struct store_client c;
    enum fa_status rc = store_client_get(st, client_id, &c);
    if (rc == FA_ERR_NOT_FOUND || (rc == FA_OK && c.revoked))
        return FA_ERR_AUTH;
    if (rc != FA_OK)
        return rc;
    rc = unseal_client_key(app->ks, &c, key);
    if (rc == FA_OK && method != NULL)
        *method = c.enc_method;
    return rc;
}

/* ---- Login ------------------------------------------------------------- */

static void rl_key(char *out, size_t n, const char *kind, const char *v)
{
    snprintf(out, n, "%s:%s", kind, v);
}

enum fa_status app_client_login(struct app *app, const char *api_key, const char *secret_key,
                                const char *peer_ip, uint64_t conn_id, app_reply_fn cb, void *arg)
{
    if (cb == NULL)
        return FA_ERR_ARG;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    struct app_job *j = app_job_new(app, JOB_LOGIN, conn_id, cb, arg);
    if (j == NULL)
        return FA_ERR_NOMEM;
    const char *bad = NULL;
    if (api_key == NULL || api_key[0] == 0 || strlen(api_key) >= APP_KEY_MAX)
        bad = "api_key";
    else if (secret_key == NULL || secret_key[0] == 0 || strlen(secret_key) >= APP_KEY_MAX)
        bad = "secret_key";
    if (bad != NULL) {
        j->reply.rc = FA_ERR_ARG;
        snprintf(j->reply.field, sizeof j->reply.field, "%s", bad);
        fa_errinfo_set(&j->reply.err, "%s: required, at most %d characters", bad, APP_KEY_MAX - 1);
        app_count_error(app, FA_ERR_ARG);
        app_job_ready(app, j);
        return FA_OK;
    }
    int64_t now = app_clock(app);
    char key[APP_KEY_MAX + 80];
    int64_t wait_ms = 0;
    if (peer_ip != NULL && peer_ip[0] != 0) {
        rl_key(key, sizeof key, "ip", peer_ip);
        wait_ms =
            app_rl_blocked(app, key, app->cfg.login_fail_max, app->cfg.login_fail_window_ms, now);
    }
    rl_key(key, sizeof key, "ak", api_key);
    int64_t w2 =
        app_rl_blocked(app, key, app->cfg.login_fail_max, app->cfg.login_fail_window_ms, now);
    crypto_wipe(key, sizeof key);
    if (w2 > wait_ms)
        wait_ms = w2;
    if (wait_ms > 0) {
        j->reply.rc = FA_ERR_RATE_LIMIT;
        j->reply.retry_after_s = (wait_ms + 999) / 1000;
        fa_errinfo_set(&j->reply.err, "too many failed logins; retry in %lld s",
                       (long long)j->reply.retry_after_s);
        app_count_error(app, FA_ERR_RATE_LIMIT);
        app_job_ready(app, j);
        return FA_OK;
    }
    snprintf(j->api_key, sizeof j->api_key, "%s", api_key);
    snprintf(j->secret_key, sizeof j->secret_key, "%s", secret_key);
    if (peer_ip != NULL)
        snprintf(j->peer_ip, sizeof j->peer_ip, "%s", peer_ip);
    enum fa_status rc = app_job_submit(app, j);
    if (rc != FA_OK)
        job_free(&j->base);
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_login(struct app_job *j, struct app_worker *w)
{
    struct app *app = j->app;
    struct store_client c;
    uint8_t h[32];
    crypto_sha256(j->api_key, strlen(j->api_key), h);
    enum fa_status rc = store_client_by_api_key(w->st, h, &c);
    if (rc != FA_OK && rc != FA_ERR_NOT_FOUND)
        return rc;
    bool known = rc == FA_OK && !c.revoked;
    enum fa_status vr =
        crypto_pwhash_verify(known ? c.secret_hash : app->dummy_hash, j->secret_key);
    crypto_wipe(j->secret_key, sizeof j->secret_key);
    if (vr == FA_ERR_NOMEM)
        return vr;
    if (!known || vr != FA_OK) {
        if (known) { /* a real client's key with a wrong secret: worth an audit entry */
            struct store_audit a = {.at_ms = app_clock(app)};
            snprintf(a.client_id, sizeof a.client_id, "%s", c.id);
            snprintf(a.event, sizeof a.event, "login_failed");
            snprintf(a.detail, sizeof a.detail, "wrong secret_key%s%.64s",
                     j->peer_ip[0] ? " from " : "", j->peer_ip);
            store_audit_add(w->st, &a);
        }
        fa_errinfo_set(&j->reply.err, "invalid api_key or secret_key");
        return FA_ERR_AUTH;
    }
    int64_t now_s = app_clock(app) / 1000;
    struct app_login_result *L = &j->reply.u.login;
    rc = crypto_jwt_issue(app->jwt_key, sizeof app->jwt_key, c.id, now_s, app->cfg.jwt_ttl_s,
                          L->token, sizeof L->token);
    if (rc != FA_OK)
        return rc;
    snprintf(L->client_id, sizeof L->client_id, "%s", c.id);
    L->expires_at_ms = (now_s + app->cfg.jwt_ttl_s) * 1000;
    return FA_OK;
}

/* Runs on: loop. */
void app_apply_login(struct app *app, struct app_job *j)
{
    if (j->reply.rc == FA_OK) {
        app->metrics.logins_ok++;
        return;
    }
    if (j->reply.rc != FA_ERR_AUTH)
        return;
    app->metrics.logins_failed++;
    int64_t now = app_clock(app);
    char key[APP_KEY_MAX + 80];
    if (j->peer_ip[0] != 0) {
        rl_key(key, sizeof key, "ip", j->peer_ip);
        app_rl_fail(app, key, now);
    }
    rl_key(key, sizeof key, "ak", j->api_key);
    app_rl_fail(app, key, now);
    crypto_wipe(key, sizeof key);
    fa_info("login failed (client unknown or wrong secret)%s%s", j->peer_ip[0] ? " from " : "",
            j->peer_ip);
}

enum fa_status app_bearer_auth(struct app *app, const char *authorization,
                               char client_id[APP_CLIENT_ID_MAX])
{
    if (authorization == NULL)
        return FA_ERR_AUTH;
    const char *t = authorization;
    while (*t == ' ')
        t++;
    if (strncasecmp(t, "Bearer ", 7) == 0) {
        t += 7;
        while (*t == ' ')
            t++;
    } else if (strchr(t, ' ') != NULL) {
        return FA_ERR_AUTH; /* another scheme */
    }
    char tok[CRYPTO_JWT_MAX];
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\r' || t[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof tok)
        return FA_ERR_AUTH;
    memcpy(tok, t, n);
    tok[n] = 0;
    return crypto_jwt_verify(app->jwt_key, sizeof app->jwt_key, tok, app_clock(app) / 1000,
                             client_id, APP_CLIENT_ID_MAX, NULL);
}

/* ---- Operator functions -------------------------------------------------- */

struct app_admin {
    struct app_cfg cfg;
    struct store *st;
    struct crypto_keystore *ks;
};

enum fa_status app_admin_open(const struct app_config *cfg, struct app_admin **out,
                              struct fa_errinfo *info)
{
    struct app_admin *ad = fa_calloc(1, sizeof *ad);
    if (ad == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc = app_resolve_config(cfg, &ad->cfg, info);
    if (rc == FA_OK && mkdir(ad->cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fa_errinfo_set(info, "data dir %s: %s", ad->cfg.data_dir, strerror(errno));
        rc = FA_ERR_IO;
    }
    if (rc == FA_OK)
        rc = crypto_keystore_open(ad->cfg.data_dir, cfg->master_key, &ad->ks, info);
    if (rc == FA_OK) {
        struct store_config sc = {.path = ad->cfg.db_path};
        rc = store_open(&sc, &ad->st, info);
    }
    if (rc != FA_OK) {
        app_admin_close(ad);
        return rc;
    }
    *out = ad;
    return FA_OK;
}

void app_admin_close(struct app_admin *ad)
{
    if (ad == NULL)
        return;
    store_close(ad->st);
    crypto_keystore_free(ad->ks);
    fa_free(ad);
}

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != 0; n++) {
        if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return false;
    }
    return n >= 1;
}

bool app_user_id_valid(const char *user_id)
{
    return user_id != NULL && printable(user_id, APP_USER_ID_MAX);
}

static int64_t admin_now(const struct app_admin *ad)
{
    return ad->cfg.now_ms != NULL ? ad->cfg.now_ms(ad->cfg.now_arg) : fa_wall_ms();
}

enum fa_status app_admin_client_create(struct app_admin *ad, const char *name, const char *method,
                                       struct app_client_secret *out)
{
    enum crypto_method m = CRYPTO_AES_256_CBC;
    if (name == NULL || !printable(name, APP_NAME_MAX))
        return FA_ERR_ARG;
    if (method != NULL && crypto_method_parse(method, &m) != FA_OK)
        return FA_ERR_ARG;
    struct store_client c;
    struct app_client_secret sec;
    uint8_t key[CRYPTO_KEY_BYTES];
    struct fa_buf sealed = {0};
    char tok[64], aad[96];
    enum fa_status rc;
    memset(&c, 0, sizeof c);
    memset(&sec, 0, sizeof sec);
    if ((rc = crypto_token(16, tok, sizeof tok)) != FA_OK)
        goto out;
    snprintf(sec.client_id, sizeof sec.client_id, "cl_%.36s", tok);
    if ((rc = crypto_token(24, tok, sizeof tok)) != FA_OK)
        goto out;
    snprintf(sec.api_key, sizeof sec.api_key, "ak_%.60s", tok);
    if ((rc = crypto_token(32, tok, sizeof tok)) != FA_OK)
        goto out;
    snprintf(sec.secret_key, sizeof sec.secret_key, "sk_%.60s", tok);
    crypto_wipe(tok, sizeof tok);

    snprintf(c.id, sizeof c.id, "%s", sec.client_id);
    snprintf(c.name, sizeof c.name, "%s", name);
    crypto_sha256(sec.api_key, strlen(sec.api_key), c.api_key_hash);
    snprintf(c.api_key_prefix, sizeof c.api_key_prefix, "%.10s", sec.api_key);
    if ((rc = crypto_pwhash(sec.secret_key, &ad->cfg.kdf, c.secret_hash)) != FA_OK)
        goto out;
    crypto_result_key(sec.secret_key, key);
    client_key_aad(c.id, aad, sizeof aad);
    rc = crypto_seal(ad->ks, fa_bytes_of(aad, strlen(aad)), fa_bytes_of(key, sizeof key), &sealed);
    if (rc != FA_OK)
        goto out;
    if (sealed.n > sizeof c.sealed_key) {
        rc = FA_ERR_INTERNAL;
        goto out;
    }
    memcpy(c.sealed_key, sealed.p, sealed.n);
    c.sealed_key_len = sealed.n;
    c.enc_method = (int)m;
    c.created_ms = admin_now(ad);
    rc = store_client_insert(ad->st, &c);
    if (rc != FA_OK)
        goto out;
    *out = sec;
out:
    crypto_wipe(key, sizeof key);
    crypto_wipe(&sec, sizeof sec);
    fa_buf_fini(&sealed);
    return rc;
}

enum fa_status app_admin_client_list(struct app_admin *ad, struct app_client_info **out, size_t *n)
{
    struct store_client *cs = NULL;
    size_t k = 0;
    enum fa_status rc = store_client_list(ad->st, &cs, &k);
    if (rc != FA_OK)
        return rc;
    struct app_client_info *arr = NULL;
    if (k > 0) {
        arr = fa_calloc(k, sizeof *arr);
        if (arr == NULL) {
            fa_free(cs);
            return FA_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < k && rc == FA_OK; i++) {
        snprintf(arr[i].client_id, sizeof arr[i].client_id, "%s", cs[i].id);
        snprintf(arr[i].name, sizeof arr[i].name, "%s", cs[i].name);
        snprintf(arr[i].api_key_prefix, sizeof arr[i].api_key_prefix, "%s", cs[i].api_key_prefix);
        arr[i].encryption_method = crypto_method_name((enum crypto_method)cs[i].enc_method);
        arr[i].revoked = cs[i].revoked;
        arr[i].created_at_ms = cs[i].created_ms;
        rc = store_user_count(ad->st, cs[i].id, &arr[i].users);
    }
    fa_free(cs);
    if (rc != FA_OK) {
        fa_free(arr);
        return rc;
    }
    *out = arr;
    *n = k;
    return FA_OK;
}

enum fa_status app_admin_client_revoke(struct app_admin *ad, const char *client_id)
{
    if (client_id == NULL)
        return FA_ERR_ARG;
    return store_client_set_revoked(ad->st, client_id, true);
}

enum fa_status app_admin_client_set_method(struct app_admin *ad, const char *client_id,
                                           const char *method)
{
    enum crypto_method m;
    if (client_id == NULL || crypto_method_parse(method, &m) != FA_OK)
        return FA_ERR_ARG;
    return store_client_set_method(ad->st, client_id, (int)m);
}

enum fa_status app_admin_user_list(struct app_admin *ad, const char *client_id,
                                   struct app_user_info **out, size_t *n)
{
    struct store_client c;
    if (client_id == NULL)
        return FA_ERR_ARG;
    enum fa_status rc = store_client_get(ad->st, client_id, &c);
    if (rc != FA_OK)
        return rc;
    struct store_user *us = NULL;
    size_t k = 0;
    rc = store_user_list(ad->st, client_id, &us, &k);
    if (rc != FA_OK)
        return rc;
    struct app_user_info *arr = NULL;
    if (k > 0) {
        arr = fa_calloc(k, sizeof *arr);
        if (arr == NULL) {
            fa_free(us);
            return FA_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < k; i++) {
        snprintf(arr[i].user_id, sizeof arr[i].user_id, "%s", us[i].user_id);
        arr[i].samples = us[i].samples;
        arr[i].created_at_ms = us[i].created_ms;
        arr[i].updated_at_ms = us[i].updated_ms;
    }
    fa_free(us);
    *out = arr;
    *n = k;
    return FA_OK;
}

enum fa_status app_admin_user_delete(struct app_admin *ad, const char *client_id,
                                     const char *user_id)
{
    if (client_id == NULL || !app_user_id_valid(user_id))
        return FA_ERR_ARG;
    enum fa_status rc = store_user_delete(ad->st, client_id, user_id);
    if (rc == FA_ERR_NOT_FOUND)
        return FA_ERR_USER_NOT_FOUND;
    if (rc == FA_OK) {
        struct store_audit a = {.at_ms = admin_now(ad)};
        snprintf(a.client_id, sizeof a.client_id, "%s", client_id);
        snprintf(a.event, sizeof a.event, "user_deleted");
        snprintf(a.user_id, sizeof a.user_id, "%s", user_id);
        snprintf(a.detail, sizeof a.detail, "operator");
        store_audit_add(ad->st, &a);
    }
    return rc;
}
