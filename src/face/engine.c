/* The engine's public face (face.h): loads the networks named in a bit set,
 * gives each thread a worker (nn context + one activation arena sized for the
 * largest network), and dispatches to the per-network files. The arena is
 * reset at the start of every call, so no call allocates from the heap. */
#include "face/face.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "face/descriptor.h"
#include "face/landmark68.h"
#include "face/ssd.h"
#include "face/tiny.h"
/* BlazeFace, FaceMesh, Iris */
#include "face/blazeface.h"
#include "face/iris.h"
#include "face/mesh.h"

struct face_models {
    const struct nn_backend *be;
    struct tiny_net *tiny;
    struct ssd_net *ssd;
    struct lm68_net *lm68;
    struct desc_net *desc;
    /* BlazeFace, FaceMesh, Iris (models/human) */
    struct bf_net *bf;
    struct mesh_net *mesh;
    struct iris_net *iris;
    size_t arena_bytes;
};

struct face_worker {
    const struct face_models *m;
    struct nn_ctx *ctx;
    struct fa_arena arena;
};

const char *face_models_default_dir(void)
{
    const char *e = getenv("FACEAUTH_MODELS");
    return e != NULL && *e ? e : "models";
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

enum fa_status face_models_load(const char *dir, const struct nn_backend *be, unsigned nets,
                                struct face_models **out, struct fa_errinfo *info)
{
    enum fa_status rc = FA_OK;
    char fa_dir[4096];
    struct face_models *m = fa_calloc(1, sizeof *m);
    if (m == NULL)
        return FA_ERR_NOMEM;
    m->be = be;
    if (dir == NULL)
        dir = face_models_default_dir();
    snprintf(fa_dir, sizeof fa_dir, "%s/face-api", dir);

    if (nets & FACE_NET_TINY) {
        rc = tiny_load(fa_dir, be, &m->tiny, info);
        if (rc != FA_OK)
            goto out;
        m->arena_bytes = max_size(m->arena_bytes, tiny_arena_bytes(m->tiny));
    }
    if (nets & FACE_NET_SSD) {
        rc = ssd_load(fa_dir, be, &m->ssd, info);
        if (rc != FA_OK)
            goto out;
        m->arena_bytes = max_size(m->arena_bytes, ssd_arena_bytes(m->ssd));
    }
    if (nets & FACE_NET_LANDMARKS) {
        rc = lm68_load(fa_dir, be, &m->lm68, info);
        if (rc != FA_OK)
            goto out;
        m->arena_bytes = max_size(m->arena_bytes, lm68_arena_bytes(m->lm68));
    }
    if (nets & FACE_NET_DESCRIPTOR) {
        rc = desc_load(fa_dir, be, &m->desc, info);
        if (rc != FA_OK)
            goto out;
        m->arena_bytes = max_size(m->arena_bytes, desc_arena_bytes(m->desc));
    }
    /* ---- BlazeFace, FaceMesh, Iris (models/human) */
    if (nets & (FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS)) {
        char human_dir[4096];
        snprintf(human_dir, sizeof human_dir, "%s/human", dir);
        if (nets & FACE_NET_BLAZEFACE) {
            rc = bf_load(human_dir, be, &m->bf, info);
            if (rc != FA_OK)
                goto out;
        }
        if (nets & FACE_NET_MESH) {
            rc = mesh_load(human_dir, be, &m->mesh, info);
            if (rc != FA_OK)
                goto out;
        }
        if (nets & FACE_NET_IRIS) {
            rc = iris_load(human_dir, be, &m->iris, info);
            if (rc != FA_OK)
                goto out;
        }
        const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
        m->arena_bytes = max_size(m->arena_bytes, mesh_detect_arena_bytes(&mn));
    }
    /* ---- */
    *out = m;
    m = NULL;
out:
    face_models_free(m);
    return rc;
}

void face_models_free(struct face_models *m)
{
    if (m == NULL)
        return;
    tiny_free(m->tiny);
    ssd_free(m->ssd);
    lm68_free(m->lm68);
    desc_free(m->desc);
    bf_free(m->bf);
    mesh_free(m->mesh);
    iris_free(m->iris);
    fa_free(m);
}

enum fa_status face_worker_new(const struct face_models *m, struct face_worker **out)
{
    enum fa_status rc;
    struct face_worker *w = fa_calloc(1, sizeof *w);
    if (w == NULL)
        return FA_ERR_NOMEM;
    w->m = m;
    rc = nn_ctx_new(m->be, &w->ctx);
    if (rc != FA_OK)
        goto out;
    rc = fa_arena_init(&w->arena, m->arena_bytes + 4096);
    if (rc != FA_OK)
        goto out;
    *out = w;
    w = NULL;
out:
    face_worker_free(w);
    return rc;
}

void face_worker_free(struct face_worker *w)
{
    if (w == NULL)
        return;
    nn_ctx_free(w->ctx);
    fa_arena_fini(&w->arena);
    fa_free(w);
}

enum fa_status face_detect(const struct face_models *m, struct face_worker *w, const struct img *im,
                           enum face_detector det, float min_score, struct face_box *boxes,
                           size_t max, size_t *n)
{
    /* ---- BlazeFace as FaceMesh refines it (its own default threshold, 0.2) */
    if (det == FACE_DET_BLAZEFACE) {
        const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
        fa_arena_reset(&w->arena);
        return mesh_detect_boxes(&mn, w->ctx, &w->arena, im, min_score, boxes, max, n);
    }
    /* ---- */
    if (min_score <= 0.0f)
        min_score = 0.5f;
    fa_arena_reset(&w->arena);
    switch (det) {
    case FACE_DET_TINY:
        if (m->tiny == NULL)
            return FA_ERR_ARG;
        return tiny_detect(m->tiny, w->ctx, &w->arena, im, min_score, boxes, max, n);
    case FACE_DET_SSD:
        if (m->ssd == NULL)
            return FA_ERR_ARG;
        return ssd_detect(m->ssd, w->ctx, &w->arena, im, min_score, boxes, max, n);
    case FACE_DET_BLAZEFACE:
        return FA_ERR_ARG;
    }
    return FA_ERR_ARG;
}

enum fa_status face_landmarks(const struct face_models *m, struct face_worker *w,
                              const struct img *im, const struct face_box *box,
                              float pts[FACE_LANDMARKS][2])
{
    if (m->lm68 == NULL)
        return FA_ERR_ARG;
    fa_arena_reset(&w->arena);
    return lm68_run(m->lm68, w->ctx, &w->arena, im, box, pts);
}

enum fa_status face_descriptor(const struct face_models *m, struct face_worker *w,
                               const struct img *im, const float pts[FACE_LANDMARKS][2],
                               float desc[FACE_DESCRIPTOR])
{
    if (m->desc == NULL)
        return FA_ERR_ARG;
    fa_arena_reset(&w->arena);
    return desc_run_landmarks(m->desc, w->ctx, &w->arena, im, pts, desc);
}

enum fa_status face_descriptor_box(const struct face_models *m, struct face_worker *w,
                                   const struct img *im, const struct face_box *box,
                                   const float pts[FACE_LANDMARKS][2], float desc[FACE_DESCRIPTOR])
{
    if (m->desc == NULL)
        return FA_ERR_ARG;
    fa_arena_reset(&w->arena);
    return desc_run_landmarks_crop(m->desc, w->ctx, &w->arena, im, pts, box, desc);
}

enum fa_status face_descriptor_rect(const struct face_models *m, struct face_worker *w,
                                    const struct img *im, const struct face_box *rect,
                                    float desc[FACE_DESCRIPTOR])
{
    if (m->desc == NULL)
        return FA_ERR_ARG;
    fa_arena_reset(&w->arena);
    return desc_run_rect(m->desc, w->ctx, &w->arena, im, rect, desc);
}

float face_distance(const float a[FACE_DESCRIPTOR], const float b[FACE_DESCRIPTOR])
{
    float s = 0.0f;
    for (int i = 0; i < FACE_DESCRIPTOR; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return sqrtf(s);
}

uint64_t face_models_macs(const struct face_models *m, enum face_net net)
{
    /* ---- BlazeFace, FaceMesh, Iris (Iris: one eye) */
    if (net == FACE_NET_BLAZEFACE)
        return m->bf != NULL ? bf_macs(m->bf) : 0;
    if (net == FACE_NET_MESH)
        return m->mesh != NULL ? mesh_macs(m->mesh) : 0;
    if (net == FACE_NET_IRIS)
        return m->iris != NULL ? iris_macs(m->iris) : 0;
    /* ---- */
    switch (net) {
    case FACE_NET_TINY:
        return m->tiny != NULL ? tiny_macs(m->tiny) : 0;
    case FACE_NET_SSD:
        return m->ssd != NULL ? ssd_macs(m->ssd) : 0;
    case FACE_NET_LANDMARKS:
        return m->lm68 != NULL ? lm68_macs(m->lm68) : 0;
    case FACE_NET_DESCRIPTOR:
        return m->desc != NULL ? desc_macs(m->desc) : 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------ BlazeFace, FaceMesh, Iris */

enum fa_status face_mesh_detect(const struct face_models *m, struct face_worker *w,
                                const struct img *im, float min_score, struct face_mesh *out,
                                size_t max, size_t *n)
{
    const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
    fa_arena_reset(&w->arena);
    return mesh_detect_all(&mn, w->ctx, &w->arena, im, min_score, out, max, n);
}

enum fa_status face_stream_update(const struct face_models *m, struct face_worker *w,
                                  struct face_stream *s, const struct img *im, int64_t t_ms,
                                  struct face_stream_frame *out)
{
    const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
    fa_arena_reset(&w->arena);
    return track_update(&mn, w->ctx, &w->arena, s, im, t_ms, out);
}

enum fa_status face_track_next(const struct face_models *m, struct face_worker *w,
                               struct face_track *t, const struct img *im, float min_score,
                               struct face_mesh *out, bool *ok)
{
    const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
    fa_arena_reset(&w->arena);
    return track_face_next(&mn, w->ctx, &w->arena, t, im, min_score, out, ok);
}

enum fa_status face_mesh_others(const struct face_models *m, struct face_worker *w,
                                const struct img *im, const struct face_box *subject, int32_t *n,
                                float *max_w)
{
    const struct mesh_nets mn = {m->bf, m->mesh, m->iris};
    fa_arena_reset(&w->arena);
    return mesh_detect_others(&mn, w->ctx, &w->arena, im, subject, n, max_w);
}
