/* Frames and completion. A frame job decodes the image, runs the engine pass
 * (app_observe: BlazeFace + FaceMesh + Iris on every face, the descriptor of
 * a good frame) and feeds it to the session logic (logic/: quality, blinks,
 * motion, identity), whose state travels with the job. When the logic says
 * the session is ready (enough counted frames of one live face), the same job
 * completes it: an enrollment checks that its best samples are one person
 * and not another user of the client (duplicate_of), then seals and stores
 * the template (normalised mean + samples) together with the session result
 * in one transaction; an authentication matches the probe (normalised mean of
 * the session's best frames) 1:1 against the claimed user's template, or 1:N
 * against the client's gallery snapshot (open set, ambiguity refused, the
 * winner re-read from the store). A session the logic fails (face changed,
 * no liveness in time) completes as a failed authentication, or ends a
 * refused enrollment. The loop applies the job's outcome to the session. */
#include "app/app_priv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

#define TPL_MAGIC 0x31544146u /* "FAT1" little-endian */

/* ---- Template blob ------------------------------------------------------- */

enum fa_status app_template_encode(const float (*desc)[FACE_DESCRIPTOR], int n, struct fa_buf *out)
{
    if (n < 1 || n > APP_MAX_SAMPLES)
        return FA_ERR_ARG;
    float mean[FACE_DESCRIPTOR];
    logic_mean(desc, n, mean);
    uint32_t hdr[3] = {TPL_MAGIC, FACE_DESCRIPTOR, (uint32_t)n};
    enum fa_status rc = fa_buf_reserve(out, sizeof hdr + sizeof mean + (size_t)n * sizeof desc[0]);
    if (rc == FA_OK)
        rc = fa_buf_append(out, hdr, sizeof hdr);
    if (rc == FA_OK)
        rc = fa_buf_append(out, mean, sizeof mean);
    for (int i = 0; i < n && rc == FA_OK; i++) {
        float u[FACE_DESCRIPTOR];
        logic_normalize(desc[i], u);
        rc = fa_buf_append(out, u, sizeof u);
    }
    return rc;
}

enum fa_status app_template_decode(struct fa_bytes b, float mean[FACE_DESCRIPTOR], int *n)
{
    uint32_t hdr[3];
    if (b.n < sizeof hdr + FACE_DESCRIPTOR * sizeof(float))
        return FA_ERR_STORE;
    memcpy(hdr, b.p, sizeof hdr);
    if (hdr[0] != TPL_MAGIC || hdr[1] != FACE_DESCRIPTOR || hdr[2] < 1 ||
        hdr[2] > APP_MAX_SAMPLES ||
        b.n != sizeof hdr + (1 + (size_t)hdr[2]) * FACE_DESCRIPTOR * sizeof(float))
        return FA_ERR_STORE;
    memcpy(mean, b.p + sizeof hdr, FACE_DESCRIPTOR * sizeof(float));
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        if (!isfinite(mean[k]))
            return FA_ERR_STORE;
    logic_normalize(mean, mean);
    if (n != NULL)
        *n = (int)hdr[2];
    return FA_OK;
}

static void template_aad(char *out, size_t n, const char *client_id, const char *user_id)
{
    snprintf(out, n, "template:%s:%s", client_id, user_id);
}

/* ---- Result payload ---------------------------------------------------- */

static enum fa_status json_str(struct fa_buf *b, const char *s)
{
    enum fa_status rc = fa_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; rc == FA_OK && *p != 0; p++) {
        if (*p == '"' || *p == '\\')
            rc = fa_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            rc = fa_buf_printf(b, "\\u%04x", *p);
        else
            rc = fa_buf_append(b, p, 1);
    }
    if (rc == FA_OK)
        rc = fa_buf_puts(b, "\"");
    return rc;
}

enum fa_status app_result_json(const struct app_result *r, const char *token, int64_t ts_ms,
                               struct fa_buf *out)
{
    char ts[32];
    fa_iso8601_ms(ts_ms, ts);
    enum fa_status rc = fa_buf_puts(out, "{\"id\":");
    if (rc == FA_OK) {
        if (r->type == APP_SESSION_ENROLLMENT)
            rc = json_str(out, r->session_id);
        else if (r->authenticated && r->has_user_id)
            rc = json_str(out, r->user_id);
        else
            rc = fa_buf_puts(out, "null");
    }
    if (rc == FA_OK)
        rc = fa_buf_puts(out, ",\"timestamp\":");
    if (rc == FA_OK)
        rc = json_str(out, ts);
    if (rc == FA_OK)
        rc = fa_buf_puts(out, ",\"session_type\":");
    if (rc == FA_OK)
        rc = json_str(out, app_session_type_name(r->type));
    if (rc == FA_OK)
        rc = fa_buf_puts(out, ",\"session_token\":");
    if (rc == FA_OK)
        rc = json_str(out, token);
    if (rc == FA_OK && r->type == APP_SESSION_AUTHENTICATION)
        rc = fa_buf_printf(out, ",\"confidence\":%.4f", r->confidence);
    if (rc == FA_OK)
        rc = fa_buf_puts(out, "}");
    return rc;
}

/* ---- Worker side --------------------------------------------------------- */

void app_frame_job_free(struct app_job *j)
{
    if (j->fin != NULL) {
        fa_buf_fini(&j->fin->image);
        crypto_wipe(&j->fin->ls, sizeof j->fin->ls);
        fa_free(j->fin);
        j->fin = NULL;
    }
    if (j->fout != NULL) {
        fa_free(j->fout->payload);
        fa_free(j->fout);
        j->fout = NULL;
    }
}

enum fa_status app_template_open(struct app *app, const char *client_id, const char *user_id,
                                 struct fa_bytes sealed, float mean[FACE_DESCRIPTOR])
{
    char aad[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 16];
    struct fa_buf pt = {0};
    template_aad(aad, sizeof aad, client_id, user_id);
    enum fa_status rc = crypto_unseal(app->ks, fa_bytes_of(aad, strlen(aad)), sealed, &pt);
    if (rc == FA_OK)
        rc = app_template_decode(fa_buf_bytes(&pt), mean, NULL);
    if (pt.p != NULL)
        crypto_wipe(pt.p, pt.cap);
    fa_buf_fini(&pt);
    return rc;
}

/* The stored template of one user: *found false when not enrolled. */
static enum fa_status user_template(struct app *app, struct store *st, const char *client_id,
                                    const char *user_id, float t[FACE_DESCRIPTOR], bool *found)
{
    struct fa_buf sealed = {0};
    *found = false;
    enum fa_status rc = store_user_get(st, client_id, user_id, &sealed, NULL);
    if (rc == FA_ERR_NOT_FOUND) {
        rc = FA_OK;
    } else if (rc == FA_OK) {
        rc = app_template_open(app, client_id, user_id, fa_buf_bytes(&sealed), t);
        *found = rc == FA_OK;
    }
    fa_buf_fini(&sealed);
    return rc;
}

/* The decision of a session the logic calls ready: enrollment checks (one
 * person, not another user) or the match. Fills o->result's decision fields
 * and samples[0..*n) for an enrollment; sets o->ended (enrollment refused). */
static enum fa_status decide(struct app_job *j, struct app_worker *w,
                             float (*samples)[FACE_DESCRIPTOR], int *n, float tpl[FACE_DESCRIPTOR])
{
    struct app *app = j->app;
    struct frame_in *in = j->fin;
    struct frame_out *o = j->fout;
    const struct store_session *row = &in->row;
    struct app_result *r = &o->result;
    struct app_frame_result *fr = &o->fr;
    struct app_gallery_snap *g = NULL;
    enum fa_status rc = FA_OK;
    float probe[FACE_DESCRIPTOR];

    if (row->type == APP_SESSION_ENROLLMENT) {
        *n = logic_session_samples(&in->ls, samples, row->target_samples);
        if (!logic_samples_consistent((const float(*)[FACE_DESCRIPTOR])samples, *n)) {
            o->ended = true;
            o->end_reason = LOGIC_INCONSISTENT;
            return FA_OK;
        }
        logic_mean((const float(*)[FACE_DESCRIPTOR])samples, *n, tpl);
        /* duplicate_of: another user of this client with this face */
        rc = app_gallery_get(app, w->st, row->client_id, &g);
        if (rc != FA_OK)
            return rc;
        long self = -1;
        for (size_t i = 0; i < g->n; i++)
            if (strcmp(g->ids[i], row->user_id) == 0)
                self = (long)i;
        struct logic_ident id;
        logic_identify(g->vecs, g->n, tpl, self, app->cfg.match_threshold, &id);
        fr->debug.match_distance = id.best >= 0 ? id.d_best : -1;
        if (id.best >= 0 && id.d_best <= app->cfg.match_threshold) {
            fr->has_duplicate_of = true;
            snprintf(fr->duplicate_of, sizeof fr->duplicate_of, "%s", g->ids[id.best]);
            if (!app->cfg.allow_duplicate_faces) {
                o->ended = true;
                o->end_reason = LOGIC_DUPLICATE_USER;
            }
        }
        app_gallery_put(g);
        r->authenticated = true;
        r->has_user_id = true;
        snprintf(r->user_id, sizeof r->user_id, "%s", row->user_id);
        r->confidence = 1.0;
        return FA_OK;
    }

    /* authentication */
    if (!logic_session_probe(&in->ls, probe))
        return FA_ERR_INTERNAL; /* ready implies counted frames */
    double d = INFINITY;
    float t[FACE_DESCRIPTOR];
    bool found = false;
    if (row->has_user_id) {
        rc = user_template(app, w->st, row->client_id, row->user_id, t, &found);
        if (rc != FA_OK)
            return rc;
        if (found) /* else: deleted since the session began */
            d = logic_distance(probe, t);
        r->authenticated = d <= app->cfg.match_threshold;
        r->has_user_id = true;
        snprintf(r->user_id, sizeof r->user_id, "%s", row->user_id);
    } else {
        rc = app_gallery_get(app, w->st, row->client_id, &g);
        if (rc != FA_OK)
            return rc;
        struct logic_ident id;
        logic_identify(g->vecs, g->n, probe, -1, app->cfg.match_threshold, &id);
        d = id.d_best;
        bool match = id.match;
        if (match) {
            /* the store is the authority: the winner must still be enrolled */
            char uid[APP_USER_ID_MAX + 1];
            snprintf(uid, sizeof uid, "%s", g->ids[id.best]);
            rc = user_template(app, w->st, row->client_id, uid, t, &found);
            if (rc == FA_OK && found) {
                d = logic_distance(probe, t);
                if (d <= app->cfg.match_threshold)
                    snprintf(r->user_id, sizeof r->user_id, "%s", uid);
                else
                    match = false;
            } else {
                match = false;
            }
        }
        app_gallery_put(g);
        if (rc != FA_OK)
            return rc;
        r->authenticated = match;
        r->has_user_id = match; /* open set: no match, no user */
        fa_debug("session %s: 1:N best %.4f runner-up %.4f%s", row->id, id.d_best, id.d_second,
                 id.ambiguous ? " (ambiguous: refused)" : "");
    }
    r->confidence = logic_confidence(d);
    fr->debug.match_distance = isfinite(d) ? d : -1;
    fa_debug("session %s: distance %.4f threshold %.2f -> %s", row->id, d,
             (double)app->cfg.match_threshold, r->authenticated ? "match" : "no match");
    return FA_OK;
}

/* Complete the session of frame job j: the logic said ready (or, for an
 * authentication, failed: then it completes as not authenticated). On FA_OK
 * either fout->completed (result durable) or fout->ended (an enrollment
 * refused; the loop persists the status). */
static enum fa_status complete(struct app_job *j, struct app_worker *w, int64_t now, bool failed)
{
    struct app *app = j->app;
    struct frame_in *in = j->fin;
    struct frame_out *o = j->fout;
    const struct store_session *row = &in->row;
    float samples[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR], tpl[FACE_DESCRIPTOR];
    int n = 0;
    struct fa_buf tbuf = {0}, sealed = {0}, json = {0}, env = {0};
    uint8_t key[CRYPTO_KEY_BYTES];
    int method = 0;
    bool in_tx = false;
    enum fa_status rc;

    rc = app_client_key(app, w->st, row->client_id, key, &method);
    if (rc != FA_OK)
        goto out;
    struct app_result *r = &o->result;
    memset(r, 0, sizeof *r);
    r->type = (enum app_session_type)row->type;
    snprintf(r->session_id, sizeof r->session_id, "%s", row->id);
    r->encryption_method = crypto_method_name((enum crypto_method)method);
    r->finished_at_ms = now;

    if (failed) { /* authentication only: a decision, not a match */
        r->has_user_id = row->has_user_id;
        if (row->has_user_id)
            snprintf(r->user_id, sizeof r->user_id, "%s", row->user_id);
    } else {
        rc = decide(j, w, samples, &n, tpl);
        if (rc != FA_OK || o->ended)
            goto out;
    }
    o->status = r->authenticated ? APP_STATUS_COMPLETED : APP_STATUS_FAILED;
    if (row->type == APP_SESSION_ENROLLMENT) {
        char aad[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 16];
        template_aad(aad, sizeof aad, row->client_id, row->user_id);
        rc = app_template_encode((const float(*)[FACE_DESCRIPTOR])samples, n, &tbuf);
        if (rc == FA_OK)
            rc = crypto_seal(app->ks, fa_bytes_of(aad, strlen(aad)), fa_buf_bytes(&tbuf), &sealed);
        if (rc != FA_OK)
            goto out;
    }

    rc = app_result_json(r, in->token, now, &json);
    if (rc == FA_OK)
        rc = crypto_envelope_seal((enum crypto_method)method, key, fa_buf_bytes(&json), &env);
    if (rc != FA_OK)
        goto out;

    struct store_session upd = *row;
    upd.status = o->status;
    upd.frames_processed = in->ls.counted > INT32_MAX ? INT32_MAX : (int)in->ls.counted;
    upd.finished_ms = now;
    upd.has_result = true;
    upd.res_authenticated = r->authenticated;
    upd.res_has_user_id = r->has_user_id;
    snprintf(upd.res_user_id, sizeof upd.res_user_id, "%s", r->user_id);
    upd.res_confidence = r->confidence;
    upd.res_method = method;
    upd.res_payload = (char *)env.p;
    struct store_audit a = {.at_ms = now};
    snprintf(a.client_id, sizeof a.client_id, "%s", row->client_id);
    snprintf(a.event, sizeof a.event, "%s",
             row->type == APP_SESSION_ENROLLMENT
                 ? "enrollment_completed"
                 : (r->authenticated ? "authentication_succeeded" : "authentication_failed"));
    snprintf(a.user_id, sizeof a.user_id, "%s", r->has_user_id ? r->user_id : "");
    snprintf(a.session_id, sizeof a.session_id, "%s", row->id);
    if (failed)
        snprintf(a.detail, sizeof a.detail, "%s", logic_reason_name(in->ls.fail_reason));
    else
        snprintf(a.detail, sizeof a.detail, "samples=%d confidence=%.4f%s%.100s",
                 n > 0 ? n : in->ls.nsamples, r->confidence,
                 o->fr.has_duplicate_of ? " duplicate_of=" : "",
                 o->fr.has_duplicate_of ? o->fr.duplicate_of : "");

    rc = store_begin(w->st);
    if (rc != FA_OK)
        goto out;
    in_tx = true;
    if (row->type == APP_SESSION_ENROLLMENT) {
        rc = store_user_put(w->st, row->client_id, row->user_id, fa_buf_bytes(&sealed), n,
                            row->replace, now);
        if (rc == FA_ERR_CONFLICT)
            fa_errinfo_set(&j->reply.err, "user_id was enrolled meanwhile");
        else if (rc == FA_ERR_NOT_FOUND)
            rc = FA_ERR_AUTH;
        if (rc != FA_OK)
            goto out;
    }
    rc = store_session_update(w->st, &upd);
    if (rc == FA_OK)
        rc = store_audit_add(w->st, &a);
    if (rc == FA_OK) {
        rc = store_commit(w->st);
        in_tx = false;
    }
    if (rc != FA_OK)
        goto out;
    if (row->type == APP_SESSION_ENROLLMENT)
        app_gallery_set(app, row->client_id, row->user_id, tpl);
    o->payload = (char *)env.p; /* ownership to the job */
    env = (struct fa_buf){0};
    o->completed = true;
out:
    if (in_tx)
        store_rollback(w->st);
    crypto_wipe(key, sizeof key);
    crypto_wipe(samples, sizeof samples);
    crypto_wipe(tpl, sizeof tpl);
    if (tbuf.p != NULL)
        crypto_wipe(tbuf.p, tbuf.cap);
    fa_buf_fini(&tbuf);
    fa_buf_fini(&sealed);
    if (json.p != NULL)
        crypto_wipe(json.p, json.cap);
    fa_buf_fini(&json);
    fa_buf_fini(&env);
    return rc;
}

/* The reply fields from the logic's verdict. */
static void fill_reply(struct app_frame_result *fr, const struct logic_frame *f,
                       const struct logic_frame_result *lr)
{
    fr->success = lr->counted;
    if (!lr->counted) {
        fr->reason = logic_reason_name(lr->reason);
        fr->message = logic_reason_message(lr->reason);
    } else if (!lr->liveness_verified) {
        fr->message = lr->blinks < lr->blinks_required ? "Blink once, naturally"
                                                       : "Move your head a little, or speak";
    }
    fr->quality_score = lr->q.score;
    fr->liveness_verified = lr->liveness_verified;
    fr->blinks = lr->blinks;
    fr->blinks_required = lr->blinks_required;
    fr->motion_detected = lr->motion;
    struct app_frame_debug *d = &fr->debug;
    d->match_distance = -1;
    d->swap_distance = lr->swap_distance;
    d->motion_score = lr->motion_score;
    if (f != NULL && f->face) {
        fr->box[0] = f->box.x;
        fr->box[1] = f->box.y;
        fr->box[2] = f->box.w;
        fr->box[3] = f->box.h;
        d->valid = true;
        d->eye_openness[0] = lr->eye_rel[0];
        d->eye_openness[1] = lr->eye_rel[1];
        d->eyes_closed = lr->eyes_closed;
        d->yaw = lr->q.pose.yaw;
        d->pitch = lr->q.pose.pitch;
        d->roll = lr->q.pose.roll;
        d->sharpness = lr->q.sharpness;
        d->brightness = lr->q.luma;
        d->contrast = lr->q.contrast;
        d->face_px = lr->q.face_px;
    }
}

/* Runs on: worker. */
enum fa_status app_run_frame(struct app_job *j, struct app_worker *w)
{
    struct app *app = j->app;
    struct frame_in *in = j->fin;
    struct frame_out *o = j->fout;
    struct app_frame_result *fr = &o->fr;
    struct img *im = NULL;
    struct logic_frame *f = NULL;
    struct logic_frame_result lr;
    int64_t t0 = fa_mono_ns();
    enum fa_status rc;

    fr->quality_score = 0;
    fr->debug.match_distance = -1;
    fr->debug.swap_distance = -1;
    if (app->models == NULL || w->fw == NULL) {
        rc = FA_ERR_MODEL_MISSING;
        fa_errinfo_set(&j->reply.err, "the face engine is not loaded");
        goto out;
    }
    const struct img_limits lim = {.max_bytes = app->cfg.max_image_bytes,
                                   .max_pixels = 4096 * 4096};
    rc = img_decode_text(fa_buf_bytes(&in->image), &lim, &im);
    if (rc != FA_OK) {
        fa_errinfo_set(&j->reply.err, "image: %s", fa_status_str(rc));
        logic_session_skip(&in->ls, in->t_ms); /* counts as a frame without a face */
        in->ls_updated = true;
        goto out;
    }
    f = fa_malloc(sizeof *f);
    if (f == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    rc = app_observe(app->models, w->fw, &in->track, im, in->t_ms, app->cfg.min_face_px,
                     logic_session_wants_desc(&in->ls) ? 0 : APP_OBSERVE_NO_DESC, f);
    if (rc != FA_OK)
        goto out;
    fr->faces = f->faces;
    logic_session_frame(&in->ls, f, &lr);
    in->ls_updated = true;
    fill_reply(fr, f, &lr);
    o->good = lr.counted;

    if (lr.failed) {
        if (in->row.type == APP_SESSION_AUTHENTICATION) {
            rc = complete(j, w, app_clock(app), true);
        } else {
            o->ended = true;
            o->end_reason = lr.reason;
        }
    } else if (lr.ready) {
        int64_t now = app_clock(app);
        if (now >= in->row.expires_ms) {
            rc = FA_ERR_SESSION_EXPIRED;
            goto out;
        }
        rc = complete(j, w, now, false);
    }
    if (o->ended) {
        o->status = APP_STATUS_FAILED;
        fr->success = false;
        fr->reason = logic_reason_name(o->end_reason);
        fr->message = logic_reason_message(o->end_reason);
        fr->failed = true;
    }
out:
    fa_free(f);
    img_free(im);
    fr->process_ms = (double)(fa_mono_ns() - t0) / 1e6;
    return rc;
}

/* ---- Loop side ------------------------------------------------------------ */

enum fa_status app_frame_start(struct app *app, struct app_session *s, app_reply_fn cb, void *arg)
{
    if (s->ls == NULL) { /* the logic state, from the session's parameters */
        s->ls = fa_malloc(sizeof *s->ls);
        if (s->ls == NULL)
            return FA_ERR_NOMEM;
        struct logic_session_params p = {
            .enrollment = s->row.type == APP_SESSION_ENROLLMENT,
            .target_samples = s->row.target_samples,
            .require_liveness = s->row.require_liveness,
            .required_blinks = s->row.required_blinks,
            .quality = {.min_face_px = app->cfg.min_face_px},
        };
        logic_session_init(s->ls, &p);
    }
    struct app_job *j = app_job_new(app, JOB_FRAME, s->conn_id, cb, arg);
    if (j == NULL)
        return FA_ERR_NOMEM;
    j->fin = fa_calloc(1, sizeof *j->fin);
    j->fout = fa_calloc(1, sizeof *j->fout);
    if (j->fin == NULL || j->fout == NULL) {
        job_free(&j->base);
        return FA_ERR_NOMEM;
    }
    j->fin->row = s->row;
    j->fin->row.res_payload = NULL;
    snprintf(j->fin->token, sizeof j->fin->token, "%s", s->token);
    j->fin->ls = *s->ls;
    j->fin->track = s->track;
    j->fin->t_ms = s->pending_ms;
    memcpy(j->token_hash, s->token_hash, 32);
    j->fin->image = s->pending; /* the waiting frame moves into the job */
    s->pending = (struct fa_buf){0};
    s->has_pending = false;
    enum fa_status rc = app_job_submit(app, j);
    if (rc != FA_OK) {
        s->pending = j->fin->image; /* give it back */
        j->fin->image = (struct fa_buf){0};
        job_free(&j->base);
        return rc;
    }
    s->busy = true;
    return FA_OK;
}

static bool is_finished(const struct app_session *s)
{
    return s->row.status == APP_STATUS_COMPLETED || s->row.status == APP_STATUS_FAILED ||
           s->row.status == APP_STATUS_EXPIRED;
}

static void end_session(struct app *app, struct app_session *s, int status, int64_t now,
                        const char *event, const char *detail, bool persist)
{
    app_session_end(app, s, status, now);
    if (persist)
        app_persist(app, s, event, detail);
}

/* Runs on: loop. */
void app_apply_frame(struct app *app, struct app_job *j)
{
    struct app_session *s = app_session_find(app, j->token_hash);
    if (s == NULL) { /* cannot happen: busy sessions are never freed */
        j->cb = NULL;
        return;
    }
    s->busy = false;
    struct frame_out *o = j->fout;
    enum fa_status rc = j->reply.rc;
    int64_t now = app_clock(app);
    j->reply.u.frame = o->fr;
    struct app_frame_result *fr = &j->reply.u.frame;

    if (j->fin->ls_updated && s->ls != NULL) {
        *s->ls = j->fin->ls; /* the logic state moves on */
        s->track = j->fin->track;
    }
    if (rc != FA_ERR_SHUTDOWN) {
        app->metrics.frames_total++;
        app->metrics.frame_seconds_sum += o->fr.process_ms / 1000.0;
    }
    if (o->good) {
        app->metrics.frames_good++;
    } else if (rc == FA_OK && fr->reason != NULL) {
        app->metrics.frames_rejected[app_reason_index(fr->reason)]++;
    } else if (fa_status_class(rc) == FA_CLASS_INPUT) {
        app->metrics.frames_rejected[app_reason_decode_index()]++;
    }
    if (s->ls != NULL)
        s->row.frames_processed = (int)(s->ls->counted > INT32_MAX ? INT32_MAX : s->ls->counted);

    if (o->completed) {
        fa_free(s->row.res_payload);
        s->row.res_payload = o->payload;
        o->payload = NULL;
        s->row.has_result = true;
        s->row.res_authenticated = o->result.authenticated;
        s->row.res_has_user_id = o->result.has_user_id;
        snprintf(s->row.res_user_id, sizeof s->row.res_user_id, "%s", o->result.user_id);
        s->row.res_confidence = o->result.confidence;
        s->row.res_method = strcmp(o->result.encryption_method, "AES-256-GCM") == 0 ? 1 : 0;
        /* Already durable: the worker stored it with the result. */
        end_session(app, s, o->status, o->result.finished_at_ms, NULL, NULL, false);
        app_session_fill_result(s);
        fr->completed = true;
        fr->result = &s->result;
        if (s->row.type == APP_SESSION_AUTHENTICATION && !o->result.authenticated &&
            s->row.has_user_id) {
            char key[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 8];
            snprintf(key, sizeof key, "u:%s:%s", s->row.client_id, s->row.user_id);
            app_rl_fail(app, key, now);
        }
        fa_info("session %s %s (%s)", s->row.id,
                s->row.type == APP_SESSION_ENROLLMENT ? "enrolled" : "decided",
                o->result.authenticated ? "success" : "no match");
    } else if (o->ended && rc == FA_OK) {
        if (!is_finished(s))
            end_session(app, s, APP_STATUS_FAILED, now, "enrollment_refused",
                        logic_reason_name(o->end_reason), true);
        fa_info("session %s: enrollment refused (%s)", s->row.id, logic_reason_name(o->end_reason));
    } else if (rc == FA_ERR_SESSION_EXPIRED) {
        if (!is_finished(s))
            end_session(app, s, APP_STATUS_EXPIRED, now, "session_expired", NULL, true);
    } else if (rc != FA_OK && rc != FA_ERR_SHUTDOWN && fa_status_class(rc) != FA_CLASS_INPUT) {
        /* Completion or engine failure: the session cannot go on. */
        if (!is_finished(s)) {
            char detail[160];
            snprintf(detail, sizeof detail, "%s", fa_status_name(rc));
            end_session(app, s, APP_STATUS_FAILED, now, "session_failed", detail, true);
        }
        fa_warn("session %s failed: %s %s", s->row.id, fa_status_name(rc), j->reply.err.what);
    }
    fr->frames_processed = s->row.frames_processed;
    fr->target_samples = s->row.target_samples;
    fr->dropped = s->dropped;

    if (!s->attached) {
        j->cb = NULL; /* the socket is gone: no reply */
        if (!is_finished(s))
            end_session(app, s, APP_STATUS_FAILED, now, "session_abandoned",
                        "socket closed before completion", true);
        return;
    }
    if (is_finished(s)) {
        s->has_pending = false;
        fa_buf_reset(&s->pending);
        return;
    }
    if (now >= s->row.expires_ms) {
        end_session(app, s, APP_STATUS_EXPIRED, now, "session_expired", NULL, true);
        s->has_pending = false;
        fa_buf_reset(&s->pending);
        return;
    }
    if (s->has_pending && !app->stopping) {
        enum fa_status r2 = app_frame_start(app, s, s->pending_cb, s->pending_arg);
        if (r2 != FA_OK) {
            s->dropped++;
            app->metrics.frames_dropped++;
            s->has_pending = false;
            fa_buf_reset(&s->pending);
        }
    }
}
