/* Stream tracking (face_stream_*): the previous frame's mesh places the
 * next frame's FaceMesh crop (its bounding box enlarged by 1.4 and squared,
 * the same scale as the detector's box), so BlazeFace runs only when there
 * is no track, the tracked mesh scores low or the face leaves the frame. A
 * failed track is re-detected on the same frame, so no frame is lost to
 * tracking. The stream state is a plain caller-owned struct; nothing here
 * is global, so any worker can serve any stream. */
#include "face/face.h"

#include <math.h>
#include <string.h>

#include "face/blazeface.h"
#include "face/mesh.h"

#define TRACK_MIN_SCORE 0.5f /* MediaPipe's face presence threshold */
#define TRACK_RESET_GAP_MS 1000
#define TRACK_SAME_IOU 0.3   /* a re-found face overlapping the last one this much is the same */
#define TRACK_MIN_INSIDE 0.5 /* share of the mesh box that must be inside the image */
#define TRACK_MAX_DETS 8
/* face_track_next: a crop this far off its face (share of its size) lags */
#define TRACK_MOVED 0.08

void face_stream_init(struct face_stream *s, const struct face_stream_params *p)
{
    memset(s, 0, sizeof *s);
    if (p != NULL)
        s->p = *p;
    if (!(s->p.track_min_score > 0 && s->p.track_min_score <= 1))
        s->p.track_min_score = TRACK_MIN_SCORE;
    if (s->p.reset_gap_ms <= 0)
        s->p.reset_gap_ms = TRACK_RESET_GAP_MS;
    face_eyes_init(&s->eyes, &s->p.eyes);
    s->p.eyes = s->eyes.p;
}

void face_stream_skip(struct face_stream *s, int64_t t_ms, struct face_stream_frame *out)
{
    memset(out, 0, sizeof *out);
    out->lost = s->track.on;
    s->track.on = false;
    s->frames++;
    face_eyes_update(&s->eyes, t_ms, NULL, &out->eyes);
}

static void mesh_bounds(const struct face_mesh *f, double b[4])
{
    b[0] = b[2] = f->pts[0][0];
    b[1] = b[3] = f->pts[0][1];
    for (int i = 1; i < FACE_MESH_POINTS; i++) {
        b[0] = fmin(b[0], f->pts[i][0]);
        b[1] = fmin(b[1], f->pts[i][1]);
        b[2] = fmax(b[2], f->pts[i][0]);
        b[3] = fmax(b[3], f->pts[i][1]);
    }
}

static double area(const double b[4])
{
    return fmax(0.0, b[2] - b[0]) * fmax(0.0, b[3] - b[1]);
}

static double overlap(const double a[4], const double b[4])
{
    double i[4] = {fmax(a[0], b[0]), fmax(a[1], b[1]), fmin(a[2], b[2]), fmin(a[3], b[3])};
    return area(i);
}

static double iou(const double a[4], const double b[4])
{
    double inter = overlap(a, b), u = area(a) + area(b) - inter;
    return u > 0 ? inter / u : 0.0;
}

/* The tracked face is still usable: scored high enough, mostly inside the
 * frame, and where the last one was (a jump means the mesh latched onto
 * something else in the crop: re-detect, which then flags a new face). */
static bool track_ok(const double last_box[4], float min_score, const struct face_mesh *f,
                     const struct img *im)
{
    if (!(f->score >= min_score))
        return false;
    double b[4], frame[4] = {0, 0, im->w, im->h};
    mesh_bounds(f, b);
    double a = area(b);
    return a > 0 && overlap(b, frame) >= TRACK_MIN_INSIDE * a && iou(b, last_box) >= TRACK_SAME_IOU;
}

/* b is more than TRACK_MOVED of a's size away from a (centre or size) */
static bool crop_moved(const int32_t a[4], const int32_t b[4])
{
    double sa = a[2] - a[0], sb = b[2] - b[0];
    double dx = (b[0] + b[2] - a[0] - a[2]) / 2.0, dy = (b[1] + b[3] - a[1] - a[3]) / 2.0;
    return sa > 0 && (fabs(dx) > TRACK_MOVED * sa || fabs(dy) > TRACK_MOVED * sa ||
                      fabs(sb - sa) > TRACK_MOVED * sa);
}

/* t follows f, whose next crop is already known */
static void track_follow(struct face_track *t, const struct face_mesh *f, const int32_t crop[4])
{
    t->on = true;
    mesh_bounds(f, t->box);
    memcpy(t->crop, crop, sizeof t->crop);
}

void face_track_start(struct face_track *t, const struct face_mesh *f)
{
    int32_t crop[4];
    mesh_track_crop(f->pts, crop);
    track_follow(t, f, crop);
}

/* mesh_face on t's crop, judged by track_ok (and, when no_lag, refused if
 * the face moved more than TRACK_MOVED of the crop); t follows a kept face. */
static enum fa_status track_next(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                 struct fa_arena *arena, struct face_track *t, const struct img *im,
                                 float min_score, bool no_lag, struct face_mesh *f, bool *ok)
{
    bool kept = false;
    *ok = false;
    if (!t->on)
        return FA_OK;
    enum fa_status rc = mesh_face(nets, ctx, arena, im, t->crop, true, f, &kept);
    if (rc != FA_OK)
        return rc;
    int32_t next[4];
    mesh_track_crop(f->pts, next);
    if (no_lag && kept && crop_moved(t->crop, next))
        kept = false; /* the face moved fast: its mesh in the lagging crop is squeezed */
    if (!kept || !track_ok(t->box, min_score, f, im)) {
        t->on = false;
        return FA_OK;
    }
    f->det = (struct face_box){t->crop[0], t->crop[1], t->crop[2] - t->crop[0],
                               t->crop[3] - t->crop[1], 0.0f};
    track_follow(t, f, next);
    *ok = true;
    return FA_OK;
}

enum fa_status track_face_next(const struct mesh_nets *nets, struct nn_ctx *ctx,
                               struct fa_arena *arena, struct face_track *t, const struct img *im,
                               float min_score, struct face_mesh *out, bool *ok)
{
    *ok = false;
    if (nets->mesh == NULL || nets->iris == NULL || im == NULL || im->w < 1 || im->h < 1 ||
        im->rgb == NULL)
        return FA_ERR_ARG;
    return track_next(nets, ctx, arena, t, im, min_score > 0 ? min_score : TRACK_MIN_SCORE, true,
                      out, ok);
}

/* FaceMesh + Iris on the detections, largest first, until one scores at
 * least min_score. */
static enum fa_status best_face(const struct mesh_nets *nets, struct nn_ctx *ctx,
                                struct fa_arena *arena, const struct img *im, float min_score,
                                const struct bf_det *dets, size_t n, struct face_mesh *f,
                                bool *found)
{
    bool tried[TRACK_MAX_DETS] = {false};
    enum fa_status rc = FA_OK;
    while (rc == FA_OK && !*found) {
        int best = -1;
        double best_area = -1;
        for (size_t i = 0; i < n; i++) {
            double a = (dets[i].box[2] - dets[i].box[0]) * (dets[i].box[3] - dets[i].box[1]);
            if (!tried[i] && a > best_area) {
                best = (int)i;
                best_area = a;
            }
        }
        if (best < 0)
            break;
        tried[best] = true;
        rc = mesh_face(nets, ctx, arena, im, dets[best].face_box, true, f, found);
        *found = *found && f->score >= min_score;
        if (rc == FA_OK && *found) {
            const struct bf_det *d = &dets[best];
            f->det = (struct face_box){d->box[0], d->box[1], d->box[2] - d->box[0],
                                       d->box[3] - d->box[1], d->score};
        }
    }
    return rc;
}

/* BlazeFace, then FaceMesh + Iris on the largest detection whose mesh
 * scores at least min_score (a stream holds a face to MediaPipe's presence
 * threshold, not to Human's 0.2: a cat's face reaches 0.47). *found says
 * whether one was. */
static enum fa_status detect(const struct mesh_nets *nets, struct nn_ctx *ctx,
                             struct fa_arena *arena, const struct img *im, float min_score,
                             struct face_mesh *f, bool *found)
{
    struct bf_det dets[TRACK_MAX_DETS];
    enum fa_status rc = FA_OK;
    *found = false;
    for (int pass = 0; rc == FA_OK && pass < 2 && !*found; pass++) {
        size_t n = 0;
        rc = mesh_detect_pass(nets, ctx, arena, im, pass, 0.0f, dets, TRACK_MAX_DETS, &n);
        if (rc == FA_OK)
            rc = best_face(nets, ctx, arena, im, min_score, dets, n, f, found);
    }
    return rc;
}

enum fa_status track_update(const struct mesh_nets *nets, struct nn_ctx *ctx,
                            struct fa_arena *arena, struct face_stream *s, const struct img *im,
                            int64_t t_ms, struct face_stream_frame *out)
{
    enum fa_status rc;
    bool found = false;
    if (nets->bf == NULL || nets->mesh == NULL || nets->iris == NULL)
        return FA_ERR_ARG;
    if (im == NULL || im->w < 1 || im->h < 1 || im->rgb == NULL)
        return FA_ERR_ARG;
    memset(out, 0, sizeof *out);
    struct face_mesh *f = &out->mesh;

    const struct face_track was = s->track;
    if (s->track.on && !s->p.detect_every_frame) {
        rc = track_next(nets, ctx, arena, &s->track, im, s->p.track_min_score, false, f, &found);
        if (rc != FA_OK)
            return rc;
    }
    if (!found) {
        rc = detect(nets, ctx, arena, im, s->p.track_min_score, f, &found);
        if (rc != FA_OK) {
            s->track = was;
            return rc;
        }
        out->detected = true;
        s->detector_runs++;
    }
    if (!found) {
        s->track.on = was.on;
        face_stream_skip(s, t_ms, out); /* lost: the previous frame had a face */
        out->detected = true;
        return FA_OK;
    }
    s->frames++;

    double b[4];
    mesh_bounds(f, b);
    out->face = true;
    if (!s->had_face)
        out->changed = true;
    else if (out->detected) /* a new detection: the same face only if near the last one */
        out->changed =
            (t_ms - s->last_face_ms) > s->p.reset_gap_ms || iou(b, s->last_box) < TRACK_SAME_IOU;
    if (out->changed)
        face_eyes_reset(&s->eyes);
    s->had_face = true;
    memcpy(s->last_box, b, sizeof b);
    s->last_face_ms = t_ms;
    if (out->detected) /* a tracked face already moved the track on */
        face_track_start(&s->track, f);
    double ratio[2] = {f->eye[FACE_EYE_RIGHT].ratio, f->eye[FACE_EYE_LEFT].ratio};
    face_eyes_update(&s->eyes, t_ms, ratio, &out->eyes);
    return FA_OK;
}
