/* The engine pass of one frame, turned into what the session logic decides
 * on (struct logic_frame): the faces - BlazeFace + FaceMesh + Iris on every
 * face at least every APP_DETECT_EVERY frames, the subject tracked between
 * (struct app_track) -, the subject = the largest face, its image
 * statistics, and - only when the frame passes quality, the one case where
 * it is used - the 68 landmarks and the descriptor. The worker runs this
 * for every frame; the offline evaluation (bench/eval_sessions.c) runs the
 * same function. */
#include "app/app_priv.h"

#include <string.h>

#include "logic/logic.h"

#define OBSERVE_MAX_FACES 8

/* A repeat detector over every byte, not a cryptographic hash: eight
 * independent FNV-1a lanes over 8-byte words (word i into lane i % 8, so
 * eight multiplies are in flight instead of one chain), folded together
 * with the tail and the size. */
static uint64_t pixel_hash(const struct img *im)
{
    enum { LANES = 8 };
    const uint64_t prime = 1099511628211ull;
    const size_t n = (size_t)im->w * (size_t)im->h * 3;
    uint64_t h[LANES];
    for (int k = 0; k < LANES; k++)
        h[k] = 1469598103934665603ull + (uint64_t)k;
    size_t i = 0;
    for (; i + 8 * LANES <= n; i += 8 * LANES)
        for (int k = 0; k < LANES; k++) {
            uint64_t v;
            memcpy(&v, im->rgb + i + 8 * (size_t)k, 8);
            h[k] = (h[k] ^ v) * prime;
        }
    uint64_t r = 1469598103934665603ull;
    for (int k = 0; k < LANES; k++)
        r = (r ^ h[k]) * prime;
    for (; i < n; i++)
        r = (r ^ im->rgb[i]) * prime;
    return r ^ ((uint64_t)im->w << 32 | (uint64_t)im->h);
}

/* BlazeFace + FaceMesh + Iris on every face; the subject (the largest
 * face) into *f, and what a tracked frame carries into nt. */
static enum fa_status detect_faces(const struct face_models *m, struct face_worker *w,
                                   const struct img *im, struct face_mesh *f,
                                   struct logic_frame *out, struct app_track *nt)
{
    struct face_mesh faces[OBSERVE_MAX_FACES];
    size_t n = 0;
    enum fa_status rc = face_mesh_detect(m, w, im, 0, faces, OBSERVE_MAX_FACES, &n);
    if (rc != FA_OK)
        return rc;
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (faces[i].box.w > faces[best].box.w)
            best = i;
    for (size_t i = 0; i < n; i++)
        if (i != best && faces[i].box.w > out->second_w)
            out->second_w = faces[i].box.w;
    out->faces = (int32_t)n;
    *nt = (struct app_track){.faces = out->faces, .second_w = out->second_w};
    if (n > 0) {
        *f = faces[best];
        face_track_start(&nt->t, f);
    }
    return FA_OK;
}

enum fa_status app_observe(const struct face_models *m, struct face_worker *w, struct app_track *tr,
                           const struct img *im, int64_t t_ms, int min_face_px, unsigned flags,
                           struct logic_frame *out)
{
    struct face_mesh mesh, *f = &mesh;
    struct app_track nt = tr != NULL ? *tr : (struct app_track){0};
    bool tracked = false;
    enum fa_status rc;
    memset(out, 0, sizeof *out);
    out->t_ms = t_ms;
    out->img_w = im->w;
    out->img_h = im->h;
    out->pixel_hash = pixel_hash(im);
    if (tr != NULL && nt.t.on) {
        rc = face_track_next(m, w, &nt.t, im, 0.0f, f, &tracked);
        if (rc != FA_OK)
            return rc;
    }
    if (tracked && ++nt.since_detect >= APP_DETECT_EVERY) {
        /* BlazeFace for the other faces; the subject keeps its tracked mesh
         * (crops from the detector and from the track would alternate) */
        int32_t others = 0;
        float w_other = 0;
        rc = face_mesh_others(m, w, im, &f->box, &others, &w_other);
        if (rc != FA_OK)
            return rc;
        nt.since_detect = 0;
        nt.faces = 1 + others;
        nt.second_w = w_other;
    }
    if (tracked) { /* the faces of the last detection are still there */
        out->faces = nt.faces;
        out->second_w = nt.second_w;
    } else {
        rc = detect_faces(m, w, im, f, out, &nt);
        if (rc != FA_OK)
            return rc;
    }
    if (out->faces == 0)
        goto done;
    out->face = true;
    out->box = f->box;
    out->score = f->score;
    double zs = (double)(f->crop[2] - f->crop[0]) / 192.0;
    for (int i = 0; i < FACE_MESH_POINTS; i++) {
        out->mesh[i][0] = f->pts[i][0];
        out->mesh[i][1] = f->pts[i][1];
        out->mesh[i][2] = (float)(f->pts[i][2] * zs);
    }
    out->eye_ratio[FACE_EYE_RIGHT] = f->eye[FACE_EYE_RIGHT].ratio;
    out->eye_ratio[FACE_EYE_LEFT] = f->eye[FACE_EYE_LEFT].ratio;
    logic_face_stats(im->rgb, im->w, im->h, &f->box, &out->stats);

    /* the descriptor only where it is used: frames that pass quality */
    struct logic_quality q;
    const struct logic_quality_params qp = {.min_face_px = min_face_px};
    logic_quality_eval(out, &qp, &q);
    if (q.reason != LOGIC_OK && !(flags & APP_OBSERVE_ALL_DESC))
        goto done;
    if (q.reason == LOGIC_OK && (flags & APP_OBSERVE_NO_DESC) && !(flags & APP_OBSERVE_ALL_DESC)) {
        out->desc_skipped = true;
        goto done;
    }
    float pts[FACE_LANDMARKS][2];
    rc = face_landmarks(m, w, im, &f->box, pts);
    if (rc == FA_OK)
        rc = face_descriptor_box(m, w, im, &f->box, pts, out->desc);
    if (rc != FA_OK)
        return rc;
    out->has_desc = true;
done:
    if (tr != NULL)
        *tr = nt;
    return FA_OK;
}
