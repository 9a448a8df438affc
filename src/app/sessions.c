/* Sessions: validation and creation (the store work on a worker, the
 * in-memory table on the loop), WebSocket attach/detach/expiry, status
 * queries, user deletion, persistence of state changes, and the failure
 * windows behind the rate limits. The in-memory table, keyed by the SHA-256
 * of the token, is the authority for live sessions; the store keeps every
 * session (token hashes only) so tokens survive a restart and finished
 * results stay queryable. */
#include "app/app_priv.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/ct_eq.h"
#include "base/log.h"

/* ---- Failure windows (rate limits) ------------------------------------- */

#define RL_RING 16

static unsigned rl_bucket(const uint8_t h[32])
{
    return ((unsigned)h[0] | (unsigned)h[1] << 8) % APP_RL_BUCKETS;
}

static struct app_rl *rl_find(struct app *app, const uint8_t h[32])
{
    for (struct app_rl *e = app->rl[rl_bucket(h)]; e != NULL; e = e->next)
        if (memcmp(e->key, h, 32) == 0)
            return e;
    return NULL;
}

static int64_t rl_newest(const struct app_rl *e, int i)
{
    return e->t[(e->head - 1 - i + 2 * RL_RING) % RL_RING];
}

int64_t app_rl_blocked(struct app *app, const char *key, int max, int64_t window_ms, int64_t now)
{
    uint8_t h[32];
    crypto_sha256(key, strlen(key), h);
    struct app_rl *e = rl_find(app, h);
    if (e == NULL || max <= 0 || e->n < max)
        return 0;
    /* Blocked while the max-th newest failure is inside the window. */
    int64_t t = rl_newest(e, max - 1);
    int64_t until = t + window_ms;
    return until > now ? until - now : 0;
}

void app_rl_fail(struct app *app, const char *key, int64_t now)
{
    uint8_t h[32];
    crypto_sha256(key, strlen(key), h);
    struct app_rl *e = rl_find(app, h);
    if (e == NULL) {
        e = fa_calloc(1, sizeof *e);
        if (e == NULL)
            return; /* OOM: the failure goes uncounted */
        memcpy(e->key, h, 32);
        unsigned b = rl_bucket(h);
        e->next = app->rl[b];
        app->rl[b] = e;
    }
    e->t[e->head] = now;
    e->head = (e->head + 1) % RL_RING;
    if (e->n < RL_RING)
        e->n++;
}

void app_rl_prune(struct app *app, int64_t now)
{
    int64_t w = app->cfg.auth_fail_window_ms > app->cfg.login_fail_window_ms
                    ? app->cfg.auth_fail_window_ms
                    : app->cfg.login_fail_window_ms;
    for (unsigned b = 0; b < APP_RL_BUCKETS; b++) {
        struct app_rl **pp = &app->rl[b];
        while (*pp != NULL) {
            struct app_rl *e = *pp;
            if (rl_newest(e, 0) + w <= now) {
                *pp = e->next;
                fa_free(e);
            } else {
                pp = &e->next;
            }
        }
    }
}

void app_rl_free(struct app *app)
{
    for (unsigned b = 0; b < APP_RL_BUCKETS; b++) {
        struct app_rl *e = app->rl[b];
        while (e != NULL) {
            struct app_rl *n = e->next;
            fa_free(e);
            e = n;
        }
        app->rl[b] = NULL;
    }
}

static void user_rl_key(char *out, size_t n, const char *client_id, const char *user_id)
{
    snprintf(out, n, "u:%s:%s", client_id, user_id);
}

/* ---- The table ------------------------------------------------------------ */

static unsigned s_bucket(const uint8_t h[32])
{
    return ((unsigned)h[0] | (unsigned)h[1] << 8) % APP_SESSION_BUCKETS;
}

struct app_session *app_session_find(struct app *app, const uint8_t token_hash[32])
{
    for (struct app_session *s = app->sessions[s_bucket(token_hash)]; s != NULL; s = s->next)
        if (fa_ct_eq(s->token_hash, token_hash, 32))
            return s;
    return NULL;
}

void app_session_fill_result(struct app_session *s)
{
    const struct store_session *r = &s->row;
    s->has_result = r->has_result;
    if (!r->has_result)
        return;
    struct app_result *o = &s->result;
    memset(o, 0, sizeof *o);
    o->type = (enum app_session_type)r->type;
    o->authenticated = r->res_authenticated;
    o->has_user_id = r->res_has_user_id;
    snprintf(o->user_id, sizeof o->user_id, "%s", r->res_user_id);
    o->confidence = r->res_confidence;
    snprintf(o->session_id, sizeof o->session_id, "%s", r->id);
    o->encryption_method = crypto_method_name((enum crypto_method)r->res_method);
    o->encrypted_payload = r->res_payload != NULL ? r->res_payload : "";
    o->finished_at_ms = r->finished_ms;
}

enum fa_status app_session_add(struct app *app, const struct store_session *row,
                               struct app_session **out)
{
    struct app_session *s = fa_calloc(1, sizeof *s);
    if (s == NULL)
        return FA_ERR_NOMEM;
    s->row = *row;
    s->row.res_payload = NULL;
    if (row->res_payload != NULL) {
        s->row.res_payload = fa_strdup(row->res_payload);
        if (s->row.res_payload == NULL) {
            fa_free(s);
            return FA_ERR_NOMEM;
        }
    }
    memcpy(s->token_hash, row->token_hash, 32);
    s->used = row->status != APP_STATUS_PENDING;
    app_session_fill_result(s);
    unsigned b = s_bucket(s->token_hash);
    s->next = app->sessions[b];
    app->sessions[b] = s;
    app->nsessions++;
    if (out != NULL)
        *out = s;
    return FA_OK;
}

static void session_free(struct app_session *s)
{
    fa_buf_fini(&s->pending);
    fa_free(s->row.res_payload);
    if (s->ls != NULL)
        crypto_wipe(s->ls, sizeof *s->ls);
    fa_free(s->ls);
    fa_free(s);
}

void app_sessions_free(struct app *app)
{
    for (unsigned b = 0; b < APP_SESSION_BUCKETS; b++) {
        struct app_session *s = app->sessions[b];
        while (s != NULL) {
            struct app_session *n = s->next;
            session_free(s);
            s = n;
        }
        app->sessions[b] = NULL;
    }
    app->nsessions = 0;
}

enum fa_status app_sessions_reload(struct app *app, struct store *st)
{
    struct store_session *rows = NULL;
    size_t n = 0;
    enum fa_status rc = store_session_list_recent(st, app_clock(app) - APP_RETAIN_MS, &rows, &n);
    if (rc != FA_OK)
        return rc;
    for (size_t i = 0; i < n && rc == FA_OK; i++)
        rc = app_session_add(app, &rows[i], NULL);
    store_sessions_free(rows, n);
    if (rc == FA_OK && n > 0)
        fa_info("app: %zu recent sessions reloaded", n);
    return rc;
}

void app_row_to_info(const struct store_session *r, struct app_session_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->session_id, sizeof o->session_id, "%s", r->id);
    snprintf(o->client_id, sizeof o->client_id, "%s", r->client_id);
    o->type = (enum app_session_type)r->type;
    o->status = (enum app_session_status)r->status;
    o->has_user_id = r->has_user_id;
    snprintf(o->user_id, sizeof o->user_id, "%s", r->user_id);
    o->require_liveness = r->require_liveness;
    o->target_samples = r->target_samples;
    o->required_blinks = r->required_blinks;
    o->frames_processed = r->frames_processed;
    o->created_at_ms = r->created_ms;
    o->expires_at_ms = r->expires_ms;
    o->finished_at_ms = r->finished_ms;
    o->has_result = r->has_result;
    if (r->has_result) {
        struct app_result *x = &o->result;
        x->type = o->type;
        x->authenticated = r->res_authenticated;
        x->has_user_id = r->res_has_user_id;
        snprintf(x->user_id, sizeof x->user_id, "%s", r->res_user_id);
        x->confidence = r->res_confidence;
        snprintf(x->session_id, sizeof x->session_id, "%s", r->id);
        x->encryption_method = crypto_method_name((enum crypto_method)r->res_method);
        x->encrypted_payload = r->res_payload != NULL ? r->res_payload : "";
        x->finished_at_ms = r->finished_ms;
    }
}

void app_session_to_info(const struct app_session *s, struct app_session_info *o)
{
    app_row_to_info(&s->row, o);
    snprintf(o->session_token, sizeof o->session_token, "%s", s->token);
}

void app_ws_info(const struct app_session *s, struct app_session_info *info)
{
    app_session_to_info(s, info);
}

static bool finished(const struct app_session *s)
{
    return s->row.status == APP_STATUS_COMPLETED || s->row.status == APP_STATUS_FAILED ||
           s->row.status == APP_STATUS_EXPIRED;
}

/* ---- Persistence of state changes --------------------------------------- */

/* Each state change queues its own persist job, and the pool's workers may
 * commit two jobs of one session in either order (attach's "active" and
 * detach's "failed" on a quick connect/disconnect). Ordering is enforced by
 * the store instead: the only non-final write is "active" (at attach), every
 * session gets one final write (here or in the frame job's completion), and
 * store_session_update never changes a finished row, so a late "active" is
 * dropped (FA_ERR_NOT_FOUND) instead of reviving the session. */

enum fa_status app_persist(struct app *app, const struct app_session *s, const char *event,
                           const char *detail)
{
    struct app_job *j = app_job_new(app, JOB_PERSIST, 0, NULL, NULL);
    if (j == NULL) {
        fa_warn("app: out of memory persisting session %s", s->row.id);
        return FA_ERR_NOMEM;
    }
    j->row = s->row;
    j->row.res_payload = NULL;
    if (s->row.res_payload != NULL) {
        j->payload = fa_strdup(s->row.res_payload);
        if (j->payload == NULL)
            j->row.has_result = false;
        j->row.res_payload = j->payload;
    }
    if (event != NULL) {
        j->persist_audit = true;
        j->audit.at_ms = app_clock(app);
        snprintf(j->audit.client_id, sizeof j->audit.client_id, "%s", s->row.client_id);
        snprintf(j->audit.event, sizeof j->audit.event, "%s", event);
        snprintf(j->audit.user_id, sizeof j->audit.user_id, "%s",
                 s->row.has_user_id ? s->row.user_id : "");
        snprintf(j->audit.session_id, sizeof j->audit.session_id, "%s", s->row.id);
        snprintf(j->audit.detail, sizeof j->audit.detail, "%s", detail != NULL ? detail : "");
    }
    /* Persist jobs are not refused while stopping: they record what happened. */
    enum fa_status rc = jobs_submit_unbounded(app->pool, &j->base);
    if (rc != FA_OK) {
        fa_warn("app: could not queue the update of session %s", s->row.id);
        job_free(&j->base);
    }
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_persist(struct app_job *j, struct app_worker *w)
{
    enum fa_status rc = FA_OK;
    if (j->row.id[0] != 0) {
        rc = store_session_update(w->st, &j->row);
        if (rc == FA_ERR_NOT_FOUND) /* gone, or already finished: this write is stale */
            fa_debug("app: session %s update (status %d) dropped: finished or purged", j->row.id,
                     j->row.status);
        else if (rc != FA_OK)
            fa_warn("app: session %s update: %s", j->row.id, fa_status_str(rc));
    }
    if (j->persist_audit) {
        enum fa_status r2 = store_audit_add(w->st, &j->audit);
        if (r2 != FA_OK)
            fa_warn("app: audit %s: %s", j->audit.event, fa_status_str(r2));
    }
    if (j->token_hash[0] == 0xff && j->row.id[0] == 0) { /* purge request */
        uint64_t n = 0;
        rc = store_session_purge(w->st, j->row.expires_ms, &n);
        if (rc == FA_OK && n > 0)
            fa_info("app: purged %llu old sessions", (unsigned long long)n);
    }
    return rc;
}

void app_session_end(struct app *app, struct app_session *s, int status, int64_t now)
{
    int t = s->row.type == APP_SESSION_AUTHENTICATION ? 1 : 0;
    s->row.status = status;
    s->row.finished_ms = now;
    if (status == APP_STATUS_EXPIRED) {
        app->metrics.sessions_expired[t]++;
    } else {
        if (status == APP_STATUS_COMPLETED)
            app->metrics.sessions_completed[t]++;
        else
            app->metrics.sessions_failed[t]++;
        app->metrics.session_seconds_sum += (double)(now - s->row.created_ms) / 1000.0;
        app->metrics.session_seconds_count++;
    }
}

/* Expire, free old finished sessions, purge the store now and then. */
void app_sessions_tick(struct app *app, int64_t now)
{
    for (unsigned b = 0; b < APP_SESSION_BUCKETS; b++) {
        struct app_session **pp = &app->sessions[b];
        while (*pp != NULL) {
            struct app_session *s = *pp;
            if (!finished(s) && !s->busy && now >= s->row.expires_ms) {
                app_session_end(app, s, APP_STATUS_EXPIRED, now);
                fa_info("session %s expired", s->row.id);
                app_persist(app, s, "session_expired", NULL);
            }
            if (finished(s) && !s->attached && !s->busy &&
                now - s->row.finished_ms > APP_RETAIN_MS) {
                *pp = s->next;
                app->nsessions--;
                session_free(s);
                continue;
            }
            pp = &s->next;
        }
    }
    if (now - app->last_purge_ms > 3600 * 1000) {
        app->last_purge_ms = now;
        struct app_job *j = app_job_new(app, JOB_PERSIST, 0, NULL, NULL);
        if (j != NULL) {
            j->token_hash[0] = 0xff; /* purge request */
            j->row.expires_ms = now - APP_DB_RETAIN_MS;
            if (jobs_submit(app->pool, &j->base) != FA_OK)
                job_free(&j->base);
        }
    }
}

/* ---- Create ----------------------------------------------------------------- */

static enum fa_status ready_error(struct app *app, struct app_job *j, enum fa_status rc,
                                  const char *field, const char *msg)
{
    j->reply.rc = rc;
    if (field != NULL)
        snprintf(j->reply.field, sizeof j->reply.field, "%s", field);
    fa_errinfo_set(&j->reply.err, "%s", msg);
    app_count_error(app, rc);
    app_job_ready(app, j);
    return FA_OK;
}

enum fa_status app_session_create(struct app *app, const char *client_id,
                                  const struct app_session_req *req, uint64_t conn_id,
                                  app_reply_fn cb, void *arg)
{
    if (cb == NULL || client_id == NULL || req == NULL)
        return FA_ERR_ARG;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    struct app_job *j = app_job_new(app, JOB_SESSION_CREATE, conn_id, cb, arg);
    if (j == NULL)
        return FA_ERR_NOMEM;
    if (client_id[0] == 0 || strlen(client_id) >= sizeof j->client_id)
        return ready_error(app, j, FA_ERR_AUTH, NULL, "unknown client");
    snprintf(j->client_id, sizeof j->client_id, "%s", client_id);
    j->req = *req;
    j->req.user_id = NULL;
    if (req->type != APP_SESSION_ENROLLMENT && req->type != APP_SESSION_AUTHENTICATION)
        return ready_error(app, j, FA_ERR_ARG, "type", "type: enrollment or authentication");
    if (req->user_id != NULL) {
        if (!app_user_id_valid(req->user_id))
            return ready_error(app, j, FA_ERR_ARG, "user_id",
                               "user_id: 1-128 printable ASCII characters");
        snprintf(j->user_id, sizeof j->user_id, "%s", req->user_id);
        j->has_user_id = true;
    } else if (req->type == APP_SESSION_ENROLLMENT) {
        return ready_error(app, j, FA_ERR_ARG, "user_id", "user_id: required for enrollment");
    }
    if (req->min_frames_required == APP_DEFAULT)
        j->req.min_frames_required = 3;
    else if (req->min_frames_required < 1 || req->min_frames_required > APP_MAX_SAMPLES)
        return ready_error(app, j, FA_ERR_ARG, "min_frames_required",
                           "min_frames_required: an integer from 1 to 20");
    if (req->required_blinks == APP_DEFAULT)
        j->req.required_blinks = 1;
    else if (req->required_blinks < 0 || req->required_blinks > 5)
        return ready_error(app, j, FA_ERR_ARG, "required_blinks",
                           "required_blinks: an integer from 0 to 5");
    if (req->type == APP_SESSION_AUTHENTICATION && j->has_user_id) {
        char key[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 8];
        user_rl_key(key, sizeof key, j->client_id, j->user_id);
        int64_t wait = app_rl_blocked(app, key, app->cfg.auth_fail_max,
                                      app->cfg.auth_fail_window_ms, app_clock(app));
        if (wait > 0) {
            j->reply.retry_after_s = (wait + 999) / 1000;
            return ready_error(app, j, FA_ERR_RATE_LIMIT, NULL,
                               "too many failed authentications for this user_id");
        }
    }
    enum fa_status rc = app_job_submit(app, j);
    if (rc != FA_OK)
        job_free(&j->base);
    return rc;
}

/* The client of a bearer token must still exist and not be revoked. */
static enum fa_status check_client(struct store *st, const char *client_id)
{
    struct store_client c;
    enum fa_status rc = store_client_get(st, client_id, &c);
    if (rc == FA_ERR_NOT_FOUND || (rc == FA_OK && c.revoked))
        return FA_ERR_AUTH;
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_session_create(struct app_job *j, struct app_worker *w)
{
    struct app *app = j->app;
    enum fa_status rc = check_client(w->st, j->client_id);
    if (rc != FA_OK) {
        fa_errinfo_set(&j->reply.err, "client unknown or revoked");
        return rc;
    }
    if (j->has_user_id) {
        rc = store_user_get(w->st, j->client_id, j->user_id, NULL, NULL);
        if (rc != FA_OK && rc != FA_ERR_NOT_FOUND)
            return rc;
        bool exists = rc == FA_OK;
        if (j->req.type == APP_SESSION_AUTHENTICATION && !exists) {
            fa_errinfo_set(&j->reply.err, "user_id is not enrolled");
            return FA_ERR_USER_NOT_FOUND;
        }
        if (j->req.type == APP_SESSION_ENROLLMENT && exists && !j->req.replace) {
            fa_errinfo_set(&j->reply.err, "user_id is already enrolled (send \"replace\": true)");
            return FA_ERR_CONFLICT;
        }
    }
    struct store_session *r = &j->row;
    memset(r, 0, sizeof *r);
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = crypto_token(32, j->token, sizeof j->token)) != FA_OK)
            return rc;
        if ((rc = crypto_uuid(r->id)) != FA_OK)
            return rc;
        crypto_sha256(j->token, strlen(j->token), r->token_hash);
        snprintf(r->client_id, sizeof r->client_id, "%s", j->client_id);
        r->type = (int)j->req.type;
        r->status = APP_STATUS_PENDING;
        r->has_user_id = j->has_user_id;
        snprintf(r->user_id, sizeof r->user_id, "%s", j->user_id);
        r->target_samples = j->req.min_frames_required;
        r->required_blinks = j->req.required_blinks;
        r->require_liveness = j->req.require_liveness;
        r->replace = j->req.replace;
        r->created_ms = app_clock(app);
        r->expires_ms = r->created_ms + app->cfg.session_ttl_ms;
        rc = store_session_insert(w->st, r);
        if (rc != FA_ERR_CONFLICT)
            break;
    }
    if (rc != FA_OK)
        return rc;
    app_row_to_info(r, &j->reply.u.session);
    snprintf(j->reply.u.session.session_token, sizeof j->reply.u.session.session_token, "%s",
             j->token);
    return FA_OK;
}

/* Runs on: loop. */
void app_apply_session(struct app *app, struct app_job *j)
{
    if (j->reply.rc != FA_OK)
        return;
    struct app_session *s = NULL;
    enum fa_status rc = app_session_add(app, &j->row, &s);
    if (rc != FA_OK) {
        j->reply.rc = rc;
        return;
    }
    snprintf(s->token, sizeof s->token, "%s", j->token);
    app->metrics.sessions_created[j->row.type == APP_SESSION_AUTHENTICATION ? 1 : 0]++;
    fa_info("session %s created: %s%s%s", j->row.id,
            app_session_type_name((enum app_session_type)j->row.type),
            j->row.has_user_id ? "" : " (identification)",
            j->row.require_liveness ? ", liveness required" : "");
}

/* ---- Get ---------------------------------------------------------------------- */

enum fa_status app_session_get(struct app *app, const char *client_id, const char *token,
                               uint64_t conn_id, app_reply_fn cb, void *arg)
{
    if (cb == NULL || client_id == NULL)
        return FA_ERR_ARG;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    struct app_job *j = app_job_new(app, JOB_SESSION_GET, conn_id, cb, arg);
    if (j == NULL)
        return FA_ERR_NOMEM;
    if (token == NULL || token[0] == 0 || strlen(token) >= APP_TOKEN_MAX ||
        strlen(client_id) >= APP_CLIENT_ID_MAX)
        return ready_error(app, j, FA_ERR_SESSION_NOT_FOUND, NULL, "session not found");
    snprintf(j->client_id, sizeof j->client_id, "%s", client_id);
    snprintf(j->token, sizeof j->token, "%s", token);
    crypto_sha256(token, strlen(token), j->token_hash);
    struct app_session *s = app_session_find(app, j->token_hash);
    if (s != NULL) {
        if (strcmp(s->row.client_id, client_id) != 0)
            return ready_error(app, j, FA_ERR_SESSION_NOT_FOUND, NULL, "session not found");
        app_session_to_info(s, &j->reply.u.session);
        if (s->row.res_payload != NULL) { /* the reply must not borrow the session */
            j->payload = fa_strdup(s->row.res_payload);
            if (j->payload == NULL) {
                job_free(&j->base);
                return FA_ERR_NOMEM;
            }
            j->reply.u.session.result.encrypted_payload = j->payload;
        }
        snprintf(j->reply.u.session.session_token, sizeof j->reply.u.session.session_token, "%s",
                 token);
        app_job_ready(app, j);
        return FA_OK;
    }
    enum fa_status rc = app_job_submit(app, j);
    if (rc != FA_OK)
        job_free(&j->base);
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_session_get(struct app_job *j, struct app_worker *w)
{
    struct store_session row;
    enum fa_status rc = check_client(w->st, j->client_id);
    if (rc != FA_OK)
        return rc;
    rc = store_session_get(w->st, j->client_id, j->token_hash, &row);
    if (rc == FA_ERR_NOT_FOUND) {
        fa_errinfo_set(&j->reply.err, "session not found");
        return FA_ERR_SESSION_NOT_FOUND;
    }
    if (rc != FA_OK)
        return rc;
    j->payload = row.res_payload; /* owned by the job now */
    app_row_to_info(&row, &j->reply.u.session);
    snprintf(j->reply.u.session.session_token, sizeof j->reply.u.session.session_token, "%s",
             j->token);
    return FA_OK;
}

/* ---- User delete ----------------------------------------------------------------- */

enum fa_status app_user_delete(struct app *app, const char *client_id, const char *user_id,
                               uint64_t conn_id, app_reply_fn cb, void *arg)
{
    if (cb == NULL || client_id == NULL)
        return FA_ERR_ARG;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    struct app_job *j = app_job_new(app, JOB_USER_DELETE, conn_id, cb, arg);
    if (j == NULL)
        return FA_ERR_NOMEM;
    if (!app_user_id_valid(user_id))
        return ready_error(app, j, FA_ERR_ARG, "user_id",
                           "user_id: 1-128 printable ASCII characters");
    if (strlen(client_id) >= APP_CLIENT_ID_MAX)
        return ready_error(app, j, FA_ERR_AUTH, NULL, "unknown client");
    snprintf(j->client_id, sizeof j->client_id, "%s", client_id);
    snprintf(j->user_id, sizeof j->user_id, "%s", user_id);
    enum fa_status rc = app_job_submit(app, j);
    if (rc != FA_OK)
        job_free(&j->base);
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_user_delete(struct app_job *j, struct app_worker *w)
{
    enum fa_status rc = check_client(w->st, j->client_id);
    if (rc != FA_OK)
        return rc;
    rc = store_user_delete(w->st, j->client_id, j->user_id);
    if (rc == FA_ERR_NOT_FOUND) {
        fa_errinfo_set(&j->reply.err, "user_id is not enrolled");
        return FA_ERR_USER_NOT_FOUND;
    }
    if (rc != FA_OK)
        return rc;
    app_gallery_erase(j->app, j->client_id, j->user_id); /* after the store: never resurrects */
    struct store_audit a = {.at_ms = app_clock(j->app)};
    snprintf(a.client_id, sizeof a.client_id, "%s", j->client_id);
    snprintf(a.event, sizeof a.event, "user_deleted");
    snprintf(a.user_id, sizeof a.user_id, "%s", j->user_id);
    snprintf(a.detail, sizeof a.detail, "api");
    store_audit_add(w->st, &a);
    fa_info("user deleted (client %s)", j->client_id);
    return FA_OK;
}

/* ---- WebSocket --------------------------------------------------------------------- */

static enum fa_status finished_status(const struct app_session *s)
{
    return s->row.status == APP_STATUS_EXPIRED ? FA_ERR_SESSION_EXPIRED : FA_ERR_SESSION_USED;
}

/* Expire s if its time has passed (not while a frame is in flight: the
 * frame's result decides, the worker refuses completion after expiry). */
static bool expire_if_due(struct app *app, struct app_session *s, int64_t now)
{
    if (finished(s) || s->busy || now < s->row.expires_ms)
        return false;
    app_session_end(app, s, APP_STATUS_EXPIRED, now);
    fa_info("session %s expired", s->row.id);
    app_persist(app, s, "session_expired", NULL);
    return true;
}

enum fa_status app_ws_attach(struct app *app, const char *token, uint64_t conn_id,
                             struct app_session **out, struct app_session_info *info)
{
    if (token == NULL || token[0] == 0 || strlen(token) >= APP_TOKEN_MAX)
        return FA_ERR_SESSION_NOT_FOUND;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    uint8_t h[32];
    crypto_sha256(token, strlen(token), h);
    struct app_session *s = app_session_find(app, h);
    if (s == NULL)
        return FA_ERR_SESSION_NOT_FOUND;
    int64_t now = app_clock(app);
    expire_if_due(app, s, now);
    if (finished(s))
        return finished_status(s);
    if (s->used || s->attached)
        return FA_ERR_SESSION_USED;
    s->attached = true;
    s->used = true;
    s->conn_id = conn_id;
    snprintf(s->token, sizeof s->token, "%s", token);
    /* The token is spent only once its "active" state is on its way to the
     * store: otherwise a restart within the TTL would accept it again (R15). */
    int prev = s->row.status;
    s->row.status = APP_STATUS_ACTIVE;
    enum fa_status prc = app_persist(app, s, NULL, NULL);
    if (prc != FA_OK) {
        s->row.status = prev;
        s->attached = false;
        s->used = false;
        s->conn_id = 0;
        return prc;
    }
    fa_info("session %s: socket attached", s->row.id);
    *out = s;
    if (info != NULL)
        app_session_to_info(s, info);
    return FA_OK;
}

void app_ws_detach(struct app *app, struct app_session *s)
{
    if (s == NULL || !s->attached)
        return;
    s->attached = false;
    if (s->has_pending) {
        s->has_pending = false;
        fa_buf_reset(&s->pending);
    }
    s->pending_cb = NULL;
    /* A frame in flight decides the outcome when it comes back. */
    if (!finished(s) && !s->busy) {
        app_session_end(app, s, APP_STATUS_FAILED, app_clock(app));
        app_persist(app, s, "session_abandoned", "socket closed before completion");
    }
    fa_info("session %s: socket detached (%s)", s->row.id,
            app_session_status_name((enum app_session_status)s->row.status));
}

enum fa_status app_ws_check(struct app *app, struct app_session *s)
{
    expire_if_due(app, s, app_clock(app));
    if (finished(s))
        return finished_status(s);
    return FA_OK;
}

enum fa_status app_ws_frame(struct app *app, struct app_session *s, struct fa_bytes image,
                            app_reply_fn cb, void *arg)
{
    if (s == NULL || cb == NULL || (image.p == NULL && image.n > 0))
        return FA_ERR_ARG;
    if (app->stopping)
        return FA_ERR_SHUTDOWN;
    expire_if_due(app, s, app_clock(app));
    if (finished(s))
        return finished_status(s);
    if (!s->attached)
        return FA_ERR_SESSION_USED;
    /* base64 text of max_image_bytes, plus a data: URL prefix */
    if (image.n > app->cfg.max_image_bytes / 3 * 4 + 256)
        return FA_ERR_TOO_LARGE;
    if (s->has_pending) { /* newest wins */
        s->dropped++;
        app->metrics.frames_dropped++;
    }
    fa_buf_reset(&s->pending);
    enum fa_status rc = fa_buf_append(&s->pending, image.p, image.n);
    if (rc != FA_OK) {
        s->has_pending = false;
        return rc;
    }
    s->has_pending = true;
    s->pending_ms = app_clock(app);
    s->pending_cb = cb;
    s->pending_arg = arg;
    if (s->busy)
        return FA_OK;
    rc = app_frame_start(app, s, cb, arg);
    if (rc != FA_OK) {
        s->has_pending = false;
        fa_buf_reset(&s->pending);
    }
    return rc;
}
