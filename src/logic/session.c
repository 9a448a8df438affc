/* One session's decisions, frame by frame: the quality verdict, repeats,
 * the face track, the identity check that cancels a session whose face
 * changed, blinks from the engine's eye signal (face_eyes_*, fed only with
 * frames that pass quality, so a blink is seen on the same identified,
 * frontal face), motion (liveness.c), the best samples, and when the session
 * may complete. When liveness is required, all evidence - counted frames,
 * samples, blinks, motion - is bound to one face track: when the subject's
 * face is lost for over a second or re-found elsewhere, everything starts
 * again, so the liveness shown by one face never vouches for the frames of
 * another (the descriptor alone cannot always tell two similar people
 * apart). Liveness that does not come
 * within LOGIC_LIVENESS_FRAMES frames fails the session, which bounds what an
 * attacker can try in one session. */
#include "logic/liveness.h"

#include <math.h>
#include <string.h>

void logic_session_init(struct logic_session *s, const struct logic_session_params *p)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (s->p.target_samples < 1)
        s->p.target_samples = 1;
    if (s->p.target_samples > LOGIC_MAX_SAMPLES)
        s->p.target_samples = LOGIC_MAX_SAMPLES;
    if (s->p.required_blinks < 0)
        s->p.required_blinks = 0;
    face_eyes_init(&s->eyes, NULL);
    s->live = !s->p.require_liveness;
}

static double box_iou(const struct face_box *a, const struct face_box *b)
{
    double x0 = fmax(a->x, b->x), y0 = fmax(a->y, b->y);
    double x1 = fmin(a->x + a->w, b->x + b->w), y1 = fmin(a->y + a->h, b->y + b->h);
    double inter = fmax(0.0, x1 - x0) * fmax(0.0, y1 - y0);
    double u = a->w * a->h + b->w * b->h - inter;
    return u > 0 ? inter / u : 0.0;
}

static void fail(struct logic_session *s, enum logic_reason r)
{
    if (!s->failed) {
        s->failed = true;
        s->fail_reason = r;
    }
}

/* Liveness bookkeeping common to every frame, then the progress fields. */
static void finish(struct logic_session *s, struct logic_frame_result *out)
{
    if (!s->live && !s->failed) {
        s->live = s->blinks >= s->p.required_blinks && s->motion;
        if (!s->live && ++s->live_frames > LOGIC_LIVENESS_FRAMES)
            fail(s, LOGIC_LIVENESS_FAILED);
    }
    out->counted_total = (int)s->counted;
    out->blinks = s->blinks;
    out->blinks_required = s->p.require_liveness ? s->p.required_blinks : 0;
    out->motion = s->motion;
    out->liveness_verified = s->live;
    out->failed = s->failed;
    if (s->failed) {
        out->reason = s->fail_reason;
        out->counted = false;
    }
    /* complete only on a frame of the verified face itself */
    out->ready =
        !s->failed && s->live && s->counted >= s->p.target_samples && out->counted && !out->no_desc;
}

/* The counted samples are a ring of the most recent LOGIC_MAX_SAMPLES. */
static void add_sample(struct logic_session *s, const float u[FACE_DESCRIPTOR], double q)
{
    int at = (int)(s->sample_next % LOGIC_MAX_SAMPLES);
    memcpy(s->samples[at], u, sizeof s->samples[at]);
    s->sample_q[at] = q;
    s->sample_next++;
    if (s->nsamples < LOGIC_MAX_SAMPLES)
        s->nsamples++;
}

/* A new face track: the eye baseline and the motion history start again,
 * and when liveness is required all evidence does - counted frames and
 * samples too, so that liveness and samples come from one face (the attempt
 * budget does not restart). Without liveness the samples of all tracks add
 * up (e.g. several photos), still under the identity check. */
static void new_track(struct logic_session *s)
{
    face_eyes_reset(&s->eyes);
    s->open_frames = 0;
    s->nfeat = 0;
    s->swap_run = 0;
    s->blinks = 0;
    s->motion = false;
    if (s->p.require_liveness) {
        s->live = false;
        s->counted = 0;
        s->nsamples = 0;
        s->sample_next = 0;
        s->nref = 0;
        memset(s->ref_sum, 0, sizeof s->ref_sum);
    }
    s->tracks++;
}

void logic_session_skip(struct logic_session *s, int64_t t_ms)
{
    struct face_eyes_state es;
    struct logic_frame_result out;
    s->frames++;
    face_eyes_update(&s->eyes, t_ms, NULL, &es);
    memset(&out, 0, sizeof out);
    finish(s, &out);
}

void logic_session_frame(struct logic_session *s, const struct logic_frame *f,
                         struct logic_frame_result *out)
{
    struct face_eyes_state es;
    memset(out, 0, sizeof *out);
    out->swap_distance = -1;
    s->frames++;
    if (s->failed) {
        finish(s, out);
        return;
    }
    logic_quality_eval(f, &s->p.quality, &out->q);
    out->reason = out->q.reason;
    if (live_seen_hash(s, f->pixel_hash)) {
        out->duplicate = true;
        out->reason = LOGIC_DUPLICATE_FRAME;
        finish(s, out);
        return;
    }
    if (out->q.reason == LOGIC_NO_FACE || out->q.reason == LOGIC_MULTIPLE_FACES) {
        /* no single subject: an eye closure in progress is abandoned */
        face_eyes_update(&s->eyes, f->t_ms, NULL, &es);
        finish(s, out);
        return;
    }

    /* the face track: the same face if it overlaps the last one, recently */
    bool same = s->has_last && box_iou(&f->box, &s->last_box) >= LOGIC_TRACK_IOU &&
                f->t_ms - s->last_face_ms <= LOGIC_TRACK_GAP_MS && f->t_ms >= s->last_face_ms;
    if (!same)
        new_track(s);
    s->has_last = true;
    s->last_box = f->box;
    s->last_face_ms = f->t_ms;
    s->face_frames++;

    /* identity: good frames far from the session's face cancel it (two in
     * a row: one odd descriptor is not a new face; it just does not count) */
    float u[FACE_DESCRIPTOR];
    bool far = false;
    if (f->has_desc)
        logic_normalize(f->desc, u);
    if (f->has_desc && s->nref > 0 && out->q.reason == LOGIC_OK) {
        float ref[FACE_DESCRIPTOR];
        logic_normalize(s->ref_sum, ref);
        out->swap_distance = logic_distance(u, ref);
        far = !(out->swap_distance <= LOGIC_SWAP_DIST);
        s->swap_run = far ? s->swap_run + 1 : 0;
        if (s->swap_run >= LOGIC_SWAP_FRAMES) {
            fail(s, LOGIC_FACE_CHANGED);
            finish(s, out);
            return;
        }
    }

    /* motion (a frame that may show another face adds nothing) */
    if (f->score >= LOGIC_MIN_SCORE && !far)
        live_push_features(s, f);
    out->motion_score = live_motion_score(s, NULL);
    if (out->motion_score >= 1.0)
        s->motion = true;

    /* eyes: frames of the session's face (not a far descriptor) that pass
     * quality, or fail it only by blur (lids blur as they move) or by a pose
     * the eye contour still follows; a blink counts once the track has a
     * verified (counted) frame */
    bool eye_ok = !far && (out->q.reason == LOGIC_OK || out->q.reason == LOGIC_BLURRY ||
                           (out->q.reason == LOGIC_NOT_FRONTAL &&
                            fabs(out->q.pose.yaw) <= LOGIC_EYES_MAX_POSE &&
                            fabs(out->q.pose.pitch) <= LOGIC_EYES_MAX_POSE));
    face_eyes_update(&s->eyes, f->t_ms, eye_ok ? f->eye_ratio : NULL, &es);
    out->eyes_closed = es.closed;
    out->eye_rel[0] = es.relative[0];
    out->eye_rel[1] = es.relative[1];
    if (es.blink && s->open_frames >= LOGIC_BLINK_MIN_HIST && s->nref > 0) {
        s->blinks++;
        out->blink = true;
        out->blink_first = es.blink_first;
        out->blink_last = es.blink_last;
    }
    if (es.face && !es.closed)
        s->open_frames++;

    /* counting */
    if (out->q.reason == LOGIC_OK && f->has_desc)
        s->since_desc = 0;
    if (out->q.reason == LOGIC_OK && f->has_desc && !far) {
        for (int k = 0; k < FACE_DESCRIPTOR; k++)
            s->ref_sum[k] += u[k];
        s->nref++;
        add_sample(s, u, out->q.score);
        s->counted++;
        out->counted = true;
    } else if (out->q.reason == LOGIC_OK && f->desc_skipped && !f->has_desc) {
        /* the tracked face between identity checks: counts, adds no sample */
        s->since_desc++;
        s->counted++;
        out->counted = true;
        out->no_desc = true;
    } else if (out->q.reason == LOGIC_OK) {
        out->reason = LOGIC_LOW_SCORE; /* an odd descriptor (or none) */
    }
    finish(s, out);
}

bool logic_session_wants_desc(const struct logic_session *s)
{
    return s->failed || s->counted < s->p.target_samples || s->nref == 0 || s->live ||
           s->swap_run > 0 || s->since_desc + 1 >= LOGIC_DESC_EVERY;
}

int logic_session_samples(const struct logic_session *s, float (*out)[FACE_DESCRIPTOR], int max)
{
    /* the window: the 2 x max most recent samples (ring slots, newest first) */
    int win = 2 * max < s->nsamples ? 2 * max : s->nsamples;
    int slot[LOGIC_MAX_SAMPLES];
    for (int i = 0; i < win; i++)
        slot[i] = (int)((s->sample_next - 1 - i) % LOGIC_MAX_SAMPLES);
    bool used[LOGIC_MAX_SAMPLES] = {false};
    int n = 0;
    while (n < max && n < win) {
        int best = -1;
        for (int i = 0; i < win; i++)
            if (!used[i] && (best < 0 || s->sample_q[slot[i]] > s->sample_q[slot[best]]))
                best = i;
        used[best] = true;
        memcpy(out[n++], s->samples[slot[best]], sizeof out[0]);
    }
    return n;
}

bool logic_session_probe(const struct logic_session *s, float out[FACE_DESCRIPTOR])
{
    float d[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR];
    int k = s->p.target_samples > LOGIC_PROBE_FRAMES ? s->p.target_samples : LOGIC_PROBE_FRAMES;
    int n = logic_session_samples(s, d, k);
    if (n < 1)
        return false;
    logic_mean((const float(*)[FACE_DESCRIPTOR])d, n, out);
    return true;
}
