/* The app's skeleton: start-up (store, master key, models, workers), the
 * job plumbing between the loop and the workers, app_poll, metrics. The rule
 * that makes it safe: a job carries copies of what its worker needs and the
 * worker only reads {ro} app fields; everything else changes on the loop,
 * when app_poll applies the finished job. */
#include "app/app_priv.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

int64_t app_clock(const struct app *app)
{
    return app->cfg.now_ms != NULL ? app->cfg.now_ms(app->cfg.now_arg) : fa_wall_ms();
}

int64_t app_now_ms(const struct app *app)
{
    return app_clock(app);
}

const char *app_session_type_name(enum app_session_type t)
{
    return t == APP_SESSION_AUTHENTICATION ? "authentication" : "enrollment";
}

const char *app_session_status_name(enum app_session_status s)
{
    switch (s) {
    case APP_STATUS_PENDING:
        return "pending";
    case APP_STATUS_ACTIVE:
        return "active";
    case APP_STATUS_COMPLETED:
        return "completed";
    case APP_STATUS_FAILED:
        return "failed";
    case APP_STATUS_EXPIRED:
        return "expired";
    }
    return "unknown";
}

/* ---- Workers ------------------------------------------------------------ */

/* Runs on: the new worker's thread. */
static enum fa_status worker_ctx_new(void *arg, unsigned idx, void **ctx)
{
    struct app *app = arg;
    struct app_worker *w = fa_calloc(1, sizeof *w);
    struct fa_errinfo info = {{0}};
    (void)idx;
    if (w == NULL)
        return FA_ERR_NOMEM;
    struct store_config sc = {.path = app->cfg.db_path};
    enum fa_status rc = store_open(&sc, &w->st, &info);
    if (rc == FA_OK && app->models != NULL)
        rc = face_worker_new(app->models, &w->fw);
    if (rc != FA_OK) {
        fa_error("app: worker %u: %s %s", idx, fa_status_name(rc), info.what);
        store_close(w->st);
        fa_free(w);
        return rc;
    }
    *ctx = w;
    return FA_OK;
}

/* Runs on: the worker's thread, at pool shutdown. */
static void worker_ctx_free(void *arg, void *ctx)
{
    struct app_worker *w = ctx;
    (void)arg;
    face_worker_free(w->fw);
    store_close(w->st);
    fa_free(w);
}

/* Runs on: worker. */
static enum fa_status run_job(struct job *jb, void *ctx)
{
    struct app_job *j = (struct app_job *)jb;
    struct app_worker *w = ctx;
    enum fa_status rc;
    switch (j->kind) {
    case JOB_LOGIN:
        rc = app_run_login(j, w);
        break;
    case JOB_SESSION_CREATE:
        rc = app_run_session_create(j, w);
        break;
    case JOB_SESSION_GET:
        rc = app_run_session_get(j, w);
        break;
    case JOB_USER_DELETE:
        rc = app_run_user_delete(j, w);
        break;
    case JOB_FRAME:
        rc = app_run_frame(j, w);
        break;
    case JOB_PERSIST:
        rc = app_run_persist(j, w);
        break;
    default:
        rc = FA_ERR_INTERNAL;
    }
    j->reply.rc = rc;
    return rc;
}

static void free_job(struct job *jb)
{
    struct app_job *j = (struct app_job *)jb;
    crypto_wipe(j->secret_key, sizeof j->secret_key);
    crypto_wipe(j->api_key, sizeof j->api_key);
    app_frame_job_free(j);
    fa_free(j->payload);
    fa_free(j);
}

struct app_job *app_job_new(struct app *app, enum app_job_kind kind, uint64_t conn_id,
                            app_reply_fn cb, void *arg)
{
    struct app_job *j = fa_calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->base.run = run_job;
    j->base.free = free_job;
    j->base.conn_id = conn_id;
    j->app = app;
    j->kind = kind;
    j->cb = cb;
    j->arg = arg;
    j->reply.conn_id = conn_id;
    j->reply.rc = FA_OK;
    switch (kind) {
    case JOB_LOGIN:
        j->reply.op = APP_OP_LOGIN;
        break;
    case JOB_SESSION_CREATE:
        j->reply.op = APP_OP_SESSION_CREATE;
        break;
    case JOB_SESSION_GET:
        j->reply.op = APP_OP_SESSION_GET;
        break;
    case JOB_USER_DELETE:
        j->reply.op = APP_OP_USER_DELETE;
        break;
    case JOB_FRAME:
    case JOB_PERSIST:
        j->reply.op = APP_OP_FRAME;
        break;
    }
    return j;
}

enum fa_status app_job_submit(struct app *app, struct app_job *j)
{
    return jobs_submit(app->pool, &j->base);
}

void app_job_ready(struct app *app, struct app_job *j)
{
    j->ready_next = NULL;
    if (app->ready_tail != NULL)
        app->ready_tail->ready_next = j;
    else
        app->ready_head = j;
    app->ready_tail = j;
    if (app->notify != NULL)
        app->notify(app->notify_arg);
}

void app_count_error(struct app *app, enum fa_status rc)
{
    enum fa_class c = fa_status_class(rc);
    if ((int)c > 0 && (int)c < APP_CLASSES)
        app->metrics.errors[c]++;
    if (rc == FA_ERR_RATE_LIMIT)
        app->metrics.rate_limited++;
}

/* ---- Life cycle ---------------------------------------------------------- */

static enum fa_status make_dir(const char *path, struct fa_errinfo *info)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return FA_OK;
    fa_errinfo_set(info, "data dir %s: %s", path, strerror(errno));
    return FA_ERR_IO;
}

enum fa_status app_new(const struct app_config *cfg, struct app **out, struct fa_errinfo *info)
{
    struct app *app = fa_calloc(1, sizeof *app);
    if (app == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc = app_resolve_config(cfg, &app->cfg, info);
    if (rc != FA_OK)
        goto fail;
    app->notify = cfg->notify;
    app->notify_arg = cfg->notify_arg;
    rc = make_dir(app->cfg.data_dir, info);
    if (rc != FA_OK)
        goto fail;
    rc = app_gallery_new(&app->gallery);
    if (rc != FA_OK)
        goto fail;
    rc = crypto_keystore_open(app->cfg.data_dir, cfg->master_key, &app->ks, info);
    if (rc != FA_OK)
        goto fail;
    crypto_keystore_derive(app->ks, "jwt", app->jwt_key);
    rc = crypto_pwhash("faceauth: no such client", &app->cfg.kdf, app->dummy_hash);
    if (rc != FA_OK)
        goto fail;
    struct store_config sc = {.path = app->cfg.db_path};
    rc = store_open(&sc, &app->st, info); /* migrates the schema once, before workers */
    if (rc != FA_OK)
        goto fail;
    rc = app_sessions_reload(app, app->st);
    store_close(app->st);
    app->st = NULL;
    if (rc != FA_OK) {
        fa_errinfo_set(info, "reloading sessions: %s", fa_status_str(rc));
        goto fail;
    }
    if (!cfg->no_engine) {
        if (cfg->nn_backend == NULL) {
            fa_errinfo_set(info, "nn_backend: required unless no_engine");
            rc = FA_ERR_ARG;
            goto fail;
        }
        /* sessions find faces with BlazeFace + FaceMesh + Iris (app_observe) */
        unsigned nets = FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS | FACE_NET_LANDMARKS |
                        FACE_NET_DESCRIPTOR;
        rc = face_models_load(cfg->models_dir, cfg->nn_backend, nets, &app->models, info);
        if (rc != FA_OK)
            goto fail;
    }
    struct jobs_config jc = {
        .threads = app->cfg.workers,
        .max_todo = app->cfg.max_queue,
        .ctx_new = worker_ctx_new,
        .ctx_free = worker_ctx_free,
        .ctx_arg = app,
        .notify = app->notify,
        .notify_arg = app->notify_arg,
    };
    rc = jobs_pool_new(&jc, &app->pool);
    if (rc != FA_OK) {
        fa_errinfo_set(info, "starting %u workers: %s", app->cfg.workers, fa_status_str(rc));
        goto fail;
    }
    app->last_tick_ms = app_clock(app);
    app->last_purge_ms = 0;
    *out = app;
    return FA_OK;
fail:
    app_free(app);
    return rc;
}

void app_set_notify(struct app *app, void (*notify)(void *arg), void *arg)
{
    app->notify = notify;
    app->notify_arg = arg;
    if (app->pool != NULL)
        jobs_set_notify(app->pool, notify, arg);
}

void app_stop(struct app *app)
{
    app->stopping = true;
}

bool app_idle(struct app *app)
{
    return app->ready_head == NULL && (app->pool == NULL || jobs_in_flight(app->pool) == 0);
}

/* Apply a finished job on the loop, then reply (unless apply cleared cb). */
static void finish_job(struct app *app, struct app_job *j, bool call)
{
    switch (j->kind) {
    case JOB_LOGIN:
        app_apply_login(app, j);
        break;
    case JOB_SESSION_CREATE:
        app_apply_session(app, j);
        break;
    case JOB_FRAME:
        app_apply_frame(app, j);
        break;
    default:
        break;
    }
    if (j->kind != JOB_PERSIST && j->reply.rc != FA_OK)
        app_count_error(app, j->reply.rc);
    if (call && j->cb != NULL)
        j->cb(j->arg, &j->reply);
    job_free(&j->base);
}

static void drain(struct app *app, bool call)
{
    struct app_job *j;
    while ((j = app->ready_head) != NULL) {
        app->ready_head = j->ready_next;
        if (app->ready_head == NULL)
            app->ready_tail = NULL;
        if (call && j->cb != NULL)
            j->cb(j->arg, &j->reply);
        job_free(&j->base);
    }
    if (app->pool == NULL)
        return;
    struct job *jb;
    while ((jb = jobs_done_pop(app->pool)) != NULL)
        finish_job(app, (struct app_job *)jb, call);
}

void app_poll(struct app *app)
{
    drain(app, true);
    int64_t now = app_clock(app);
    if (now - app->last_tick_ms >= 1000 || now < app->last_tick_ms) {
        app->last_tick_ms = now;
        app_sessions_tick(app, now);
        app_rl_prune(app, now);
        /* replies made by the tick (none today) and persist jobs come back later */
    }
}

bool app_wait(struct app *app, int64_t timeout_ms)
{
    if (app->ready_head == NULL && !jobs_done_wait(app->pool, timeout_ms))
        return false;
    app_poll(app);
    return true;
}

void app_free(struct app *app)
{
    if (app == NULL)
        return;
    app->stopping = true;
    if (app->pool != NULL) {
        /* Finish every queued job (a completion is durable once its job ran),
         * applying results without replies; applying may queue persist jobs,
         * so repeat until nothing is left. */
        for (int round = 0; round < 8; round++) {
            while (jobs_in_flight(app->pool) > 0 || app->ready_head != NULL) {
                jobs_done_wait(app->pool, 100);
                drain(app, false);
            }
            if (app->ready_head == NULL && jobs_in_flight(app->pool) == 0)
                break;
        }
        jobs_pool_free(app->pool);
        app->pool = NULL;
        drain(app, false);
    }
    app_sessions_free(app);
    app_rl_free(app);
    app_gallery_free(app->gallery);
    face_models_free(app->models);
    store_close(app->st);
    crypto_keystore_free(app->ks);
    crypto_wipe(app->jwt_key, sizeof app->jwt_key);
    fa_free(app);
}

/* ---- Metrics ----------------------------------------------------------- */

/* frames_rejected[] labels: logic's reasons from index 1 (0: "no_face" is
 * LOGIC_NO_FACE - 1), then the app's own. */
#define REASON_DECODE (LOGIC_REASON_COUNT - 1)
#define REASON_OTHER (LOGIC_REASON_COUNT)
_Static_assert(REASON_OTHER < APP_REASONS, "APP_REASONS too small for logic's reasons");

int app_reason_index(const char *reason)
{
    for (int i = 1; i < LOGIC_REASON_COUNT; i++)
        if (reason != NULL && strcmp(logic_reason_name((enum logic_reason)i), reason) == 0)
            return i - 1;
    return REASON_OTHER;
}

int app_reason_decode_index(void)
{
    return REASON_DECODE;
}

const struct app_metrics *app_metrics(const struct app *app)
{
    return &app->metrics;
}

const char *app_metrics_reason_name(int i)
{
    if (i < 0 || i > REASON_OTHER)
        return NULL;
    if (i < REASON_DECODE)
        return logic_reason_name((enum logic_reason)(i + 1));
    return i == REASON_DECODE ? "decode_failed" : "other";
}

void app_metrics_ws(struct app *app, int delta)
{
    if (delta > 0) {
        app->metrics.ws_open += (uint64_t)delta;
        app->metrics.ws_total += (uint64_t)delta;
    } else if (delta < 0) {
        uint64_t d = (uint64_t)(-(int64_t)delta);
        app->metrics.ws_open = app->metrics.ws_open > d ? app->metrics.ws_open - d : 0;
    }
}

void app_metrics_error(struct app *app, enum fa_status rc)
{
    app_count_error(app, rc);
}
