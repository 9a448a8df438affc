/* Frames and completion. A frame job decodes the image, finds exactly one
 * face large enough, and computes its descriptor (face engine, on the
 * worker's own face_worker). When the frame brings the session to its target
 * and liveness is not required, the same job completes the session: the
 * enrollment template (mean descriptor + samples) is sealed under the master
 * key and stored together with the session result in one transaction, or the
 * probe (mean of the session's descriptors) is matched 1:1 or 1:N. Sessions
 * that require liveness never complete until the liveness issue lands: refuse
 * rather than pretend. The loop applies the job's outcome to the session. */
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
    float mean[FACE_DESCRIPTOR] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < FACE_DESCRIPTOR; k++)
            mean[k] += desc[i][k];
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        mean[k] /= (float)n;
    uint32_t hdr[3] = {TPL_MAGIC, FACE_DESCRIPTOR, (uint32_t)n};
    enum fa_status rc = fa_buf_reserve(out, sizeof hdr + sizeof mean + (size_t)n * sizeof desc[0]);
    if (rc == FA_OK)
        rc = fa_buf_append(out, hdr, sizeof hdr);
    if (rc == FA_OK)
        rc = fa_buf_append(out, mean, sizeof mean);
    if (rc == FA_OK)
        rc = fa_buf_append(out, desc, (size_t)n * sizeof desc[0]);
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

float app_confidence(float distance, float threshold)
{
    if (!isfinite(distance) || threshold <= 0)
        return 0;
    float c = 1.0f - distance / (2.0f * threshold);
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

/* ---- Worker side --------------------------------------------------------- */

void app_frame_job_free(struct app_job *j)
{
    if (j->fin != NULL) {
        fa_buf_fini(&j->fin->image);
        crypto_wipe(j->fin->desc, sizeof j->fin->desc);
        fa_free(j->fin);
        j->fin = NULL;
    }
    if (j->fout != NULL) {
        fa_free(j->fout->payload);
        crypto_wipe(j->fout->desc, sizeof j->fout->desc);
        fa_free(j->fout);
        j->fout = NULL;
    }
}

struct nearest {
    struct app *app;
    const char *client_id;
    const float *probe;
    float best;
    char user_id[APP_USER_ID_MAX + 1];
    enum fa_status rc;
};

static enum fa_status distance_to(struct app *app, const char *client_id, const char *user_id,
                                  struct fa_bytes sealed, const float *probe, float *d)
{
    char aad[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 16];
    struct fa_buf pt = {0};
    float mean[FACE_DESCRIPTOR];
    template_aad(aad, sizeof aad, client_id, user_id);
    enum fa_status rc = crypto_unseal(app->ks, fa_bytes_of(aad, strlen(aad)), sealed, &pt);
    if (rc == FA_OK)
        rc = app_template_decode(fa_buf_bytes(&pt), mean, NULL);
    if (rc == FA_OK)
        *d = face_distance(probe, mean);
    if (pt.p != NULL)
        crypto_wipe(pt.p, pt.cap);
    fa_buf_fini(&pt);
    crypto_wipe(mean, sizeof mean);
    return rc;
}

static enum fa_status nearest_cb(void *arg, const char *user_id, struct fa_bytes sealed)
{
    struct nearest *nn = arg;
    float d;
    enum fa_status rc = distance_to(nn->app, nn->client_id, user_id, sealed, nn->probe, &d);
    if (rc != FA_OK) {
        /* One unreadable template must not hide the others: log and skip. */
        fa_warn("app: template of a user of client %s unreadable: %s", nn->client_id,
                fa_status_str(rc));
        return FA_OK;
    }
    if (d < nn->best) {
        nn->best = d;
        snprintf(nn->user_id, sizeof nn->user_id, "%s", user_id);
    }
    return FA_OK;
}

/* Complete the session of frame job j (the worker has the new descriptor in
 * fout->desc). On FA_OK fout->completed and the result are set and durable. */
static enum fa_status complete(struct app_job *j, struct app_worker *w, int64_t now)
{
    struct app *app = j->app;
    struct frame_in *in = j->fin;
    struct frame_out *o = j->fout;
    const struct store_session *row = &in->row;
    float descs[APP_MAX_SAMPLES][FACE_DESCRIPTOR];
    int n = in->ndesc < APP_MAX_SAMPLES ? in->ndesc : APP_MAX_SAMPLES - 1;
    struct fa_buf tpl = {0}, sealed = {0}, json = {0}, env = {0};
    uint8_t key[CRYPTO_KEY_BYTES];
    int method = 0;
    bool in_tx = false;
    enum fa_status rc;

    memcpy(descs, in->desc, (size_t)n * sizeof descs[0]);
    memcpy(descs[n], o->desc, sizeof descs[0]);
    n++;

    rc = app_client_key(app, w->st, row->client_id, key, &method);
    if (rc != FA_OK)
        goto out;
    struct app_result *r = &o->result;
    memset(r, 0, sizeof *r);
    r->type = (enum app_session_type)row->type;
    snprintf(r->session_id, sizeof r->session_id, "%s", row->id);
    r->encryption_method = crypto_method_name((enum crypto_method)method);
    r->finished_at_ms = now;

    if (row->type == APP_SESSION_ENROLLMENT) {
        char aad[APP_CLIENT_ID_MAX + APP_USER_ID_MAX + 16];
        template_aad(aad, sizeof aad, row->client_id, row->user_id);
        rc = app_template_encode((const float(*)[FACE_DESCRIPTOR])descs, n, &tpl);
        if (rc == FA_OK)
            rc = crypto_seal(app->ks, fa_bytes_of(aad, strlen(aad)), fa_buf_bytes(&tpl), &sealed);
        if (rc != FA_OK)
            goto out;
        r->authenticated = true;
        r->has_user_id = true;
        snprintf(r->user_id, sizeof r->user_id, "%s", row->user_id);
        r->confidence = 1.0;
        o->status = APP_STATUS_COMPLETED;
    } else {
        float probe[FACE_DESCRIPTOR] = {0};
        for (int i = 0; i < n; i++)
            for (int k = 0; k < FACE_DESCRIPTOR; k++)
                probe[k] += descs[i][k] / (float)n;
        float thr = app->cfg.match_threshold, d = INFINITY;
        if (row->has_user_id) {
            rc = store_user_get(w->st, row->client_id, row->user_id, &sealed, NULL);
            if (rc == FA_OK)
                rc = distance_to(app, row->client_id, row->user_id, fa_buf_bytes(&sealed), probe,
                                 &d);
            else if (rc == FA_ERR_NOT_FOUND) /* deleted since the session began */
                rc = FA_OK;
            if (rc != FA_OK)
                goto out;
            r->authenticated = d < thr;
            r->has_user_id = true;
            snprintf(r->user_id, sizeof r->user_id, "%s", row->user_id);
        } else {
            struct nearest nn = {
                .app = app, .client_id = row->client_id, .probe = probe, .best = INFINITY};
            rc = store_user_each(w->st, row->client_id, nearest_cb, &nn);
            if (rc != FA_OK)
                goto out;
            d = nn.best;
            r->authenticated = d < thr;
            r->has_user_id = r->authenticated; /* open set: no match, no user */
            if (r->authenticated)
                snprintf(r->user_id, sizeof r->user_id, "%s", nn.user_id);
        }
        r->confidence = app_confidence(d, thr);
        o->status = r->authenticated ? APP_STATUS_COMPLETED : APP_STATUS_FAILED;
        fa_debug("session %s: distance %.4f threshold %.2f -> %s", row->id, (double)d, (double)thr,
                 r->authenticated ? "match" : "no match");
    }

    rc = app_result_json(r, in->token, now, &json);
    if (rc == FA_OK)
        rc = crypto_envelope_seal((enum crypto_method)method, key, fa_buf_bytes(&json), &env);
    if (rc != FA_OK)
        goto out;

    struct store_session upd = *row;
    upd.status = o->status;
    upd.frames_processed = row->frames_processed + 1;
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
    snprintf(a.detail, sizeof a.detail, "samples=%d confidence=%.4f", n, r->confidence);

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
    o->payload = (char *)env.p; /* ownership to the job */
    env = (struct fa_buf){0};
    o->completed = true;
out:
    if (in_tx)
        store_rollback(w->st);
    crypto_wipe(key, sizeof key);
    crypto_wipe(descs, sizeof descs);
    if (tpl.p != NULL)
        crypto_wipe(tpl.p, tpl.cap);
    fa_buf_fini(&tpl);
    fa_buf_fini(&sealed);
    if (json.p != NULL)
        crypto_wipe(json.p, json.cap);
    fa_buf_fini(&json);
    fa_buf_fini(&env);
    return rc;
}

/* Runs on: worker. */
enum fa_status app_run_frame(struct app_job *j, struct app_worker *w)
{
    struct app *app = j->app;
    struct frame_in *in = j->fin;
    struct frame_out *o = j->fout;
    struct app_frame_result *fr = &o->fr;
    struct img *im = NULL;
    int64_t t0 = fa_mono_ns();
    enum fa_status rc;

    fr->quality_score = 0;
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
        goto out;
    }
    struct face_box boxes[8];
    size_t n = 0;
    rc = face_detect(app->models, w->fw, im, app->cfg.detector, 0, boxes, 8, &n);
    if (rc != FA_OK)
        goto out;
    fr->faces = (int)n;
    if (n == 0) {
        fr->reason = APP_REASON_NO_FACE;
        fr->message = "No face found: face the camera in good light";
        goto out;
    }
    /* The largest face is the subject. */
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (boxes[i].w * boxes[i].h > boxes[best].w * boxes[best].h)
            best = i;
    const struct face_box *b = &boxes[best];
    fr->box[0] = b->x;
    fr->box[1] = b->y;
    fr->box[2] = b->w;
    fr->box[3] = b->h;
    fr->quality_score = b->score < 0 ? 0 : b->score > 1 ? 1 : b->score;
    if (n > 1) {
        fr->reason = APP_REASON_MULTIPLE_FACES;
        fr->message = "Several faces found: only the user may be in the picture";
        goto out;
    }
    if (b->w < app->cfg.min_face_px || b->h < app->cfg.min_face_px) {
        fr->reason = APP_REASON_FACE_TOO_SMALL;
        fr->message = "Face too small: come closer to the camera";
        goto out;
    }
    float pts[FACE_LANDMARKS][2];
    rc = face_landmarks(app->models, w->fw, im, b, pts);
    if (rc == FA_OK)
        rc = face_descriptor(app->models, w->fw, im, pts, o->desc);
    if (rc != FA_OK)
        goto out;
    o->good = true;
    fr->success = true;
    if (in->row.require_liveness) {
        /* No liveness evidence exists yet: this session cannot complete. */
        fr->liveness_verified = false;
        fr->reason = APP_REASON_LIVENESS_UNAVAILABLE;
        fr->message = "Liveness detection is not available on this server yet; a session "
                      "that requires liveness cannot complete";
        goto out;
    }
    if (in->ndesc + 1 >= in->row.target_samples) {
        int64_t now = app_clock(app);
        if (now >= in->row.expires_ms) {
            rc = FA_ERR_SESSION_EXPIRED;
            goto out;
        }
        rc = complete(j, w, now);
    }
out:
    img_free(im);
    fr->process_ms = (double)(fa_mono_ns() - t0) / 1e6;
    return rc;
}

/* ---- Loop side ------------------------------------------------------------ */

enum fa_status app_frame_start(struct app *app, struct app_session *s, app_reply_fn cb, void *arg)
{
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
    memcpy(j->fin->desc, s->desc, (size_t)s->ndesc * sizeof s->desc[0]);
    j->fin->ndesc = s->ndesc;
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

static int reason_index(const char *reason)
{
    for (int i = 0; i < APP_REASONS; i++) {
        const char *n = app_metrics_reason_name(i);
        if (n == NULL)
            break;
        if (reason != NULL && strcmp(n, reason) == 0)
            return i;
    }
    return 6; /* "other" */
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

    if (rc != FA_ERR_SHUTDOWN) {
        app->metrics.frames_total++;
        app->metrics.frame_seconds_sum += o->fr.process_ms / 1000.0;
    }
    if (o->good) {
        app->metrics.frames_good++;
        s->row.frames_processed++;
        if (s->ndesc < APP_MAX_SAMPLES)
            memcpy(s->desc[s->ndesc++], o->desc, sizeof o->desc);
    } else if (rc == FA_OK) {
        app->metrics.frames_rejected[reason_index(fr->reason)]++;
    } else if (fa_status_class(rc) == FA_CLASS_INPUT) {
        app->metrics.frames_rejected[5]++; /* decode_failed */
    }

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
    fr->blinks = s->blinks;

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
