/* The 1:N gallery: per client, an immutable snapshot of every enrolled
 * user's template (normalised mean, rows of 128 floats in one 64-byte
 * aligned block, the layout logic_identify scans), reference counted and
 * swapped under one mutex (STYLE.md section 7). Readers take a reference
 * under the lock and search without it; a writer (an enrollment that was
 * committed, a user that was erased) copies the current snapshot with the
 * change into a new one and swaps it in, under the same lock, so concurrent
 * writers never lose each other's change. A client's snapshot is built from
 * the store on its first identification; a version counter makes sure that a
 * build racing with a write is not cached. The store stays the authority:
 * the caller re-reads the matched user's template before trusting a match,
 * so a user erased by another process (the operator CLI) is never returned. */
#include "app/app_priv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "logic/logic.h"

#define GAL_BUCKETS 256

struct gal_entry {
    struct gal_entry *next;
    char client_id[APP_CLIENT_ID_MAX];
    struct app_gallery_snap *snap; /* {mu} NULL: not built */
    uint64_t version;              /* {mu} bumped by every write */
};

struct app_gallery {
    pthread_mutex_t mu;
    struct gal_entry *b[GAL_BUCKETS]; /* {mu} */
};

static unsigned bucket(const char *client_id)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)client_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % GAL_BUCKETS;
}

static struct app_gallery_snap *snap_new(size_t cap)
{
    struct app_gallery_snap *g = fa_calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    if (cap > 0) {
        g->ids = fa_calloc(cap, sizeof *g->ids);
        g->vecs = fa_malloc_aligned(cap * FACE_DESCRIPTOR * sizeof(float));
        if (g->ids == NULL || g->vecs == NULL) {
            fa_free(g->ids);
            fa_free_aligned(g->vecs);
            fa_free(g);
            return NULL;
        }
    }
    atomic_init(&g->refs, 1);
    return g;
}

void app_gallery_put(struct app_gallery_snap *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    if (g->vecs != NULL)
        crypto_wipe(g->vecs, g->n * FACE_DESCRIPTOR * sizeof(float));
    fa_free_aligned(g->vecs);
    fa_free(g->ids);
    fa_free(g);
}

enum fa_status app_gallery_new(struct app_gallery **out)
{
    struct app_gallery *gl = fa_calloc(1, sizeof *gl);
    if (gl == NULL)
        return FA_ERR_NOMEM;
    if (pthread_mutex_init(&gl->mu, NULL) != 0) {
        fa_free(gl);
        return FA_ERR_INTERNAL;
    }
    *out = gl;
    return FA_OK;
}

void app_gallery_free(struct app_gallery *gl)
{
    if (gl == NULL)
        return;
    for (unsigned i = 0; i < GAL_BUCKETS; i++) {
        struct gal_entry *e = gl->b[i];
        while (e != NULL) {
            struct gal_entry *n = e->next;
            app_gallery_put(e->snap);
            fa_free(e);
            e = n;
        }
    }
    pthread_mutex_destroy(&gl->mu);
    fa_free(gl);
}

/* Find (or add) the entry of a client. NULL on OOM. Expects gl->mu held. */
static struct gal_entry *entry_locked(struct app_gallery *gl, const char *client_id)
{
    unsigned b = bucket(client_id);
    for (struct gal_entry *e = gl->b[b]; e != NULL; e = e->next)
        if (strcmp(e->client_id, client_id) == 0)
            return e;
    struct gal_entry *e = fa_calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    snprintf(e->client_id, sizeof e->client_id, "%s", client_id);
    e->next = gl->b[b];
    gl->b[b] = e;
    return e;
}

/* ---- building from the store -------------------------------------------------- */

struct build {
    struct app *app;
    const char *client_id;
    struct app_gallery_snap *g;
    size_t cap;
    enum fa_status rc;
};

static enum fa_status build_cb(void *arg, const char *user_id, struct fa_bytes sealed)
{
    struct build *b = arg;
    float t[FACE_DESCRIPTOR];
    enum fa_status rc = app_template_open(b->app, b->client_id, user_id, sealed, t);
    if (rc != FA_OK) {
        /* one unreadable template must not hide the others */
        fa_warn("app: template of a user of client %s unreadable: %s", b->client_id,
                fa_status_str(rc));
        return FA_OK;
    }
    if (b->g->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        struct app_gallery_snap *g = snap_new(cap);
        if (g == NULL)
            return FA_ERR_NOMEM;
        g->n = b->g->n;
        if (g->n > 0) {
            memcpy(g->ids, b->g->ids, g->n * sizeof *g->ids);
            memcpy(g->vecs, b->g->vecs, g->n * FACE_DESCRIPTOR * sizeof(float));
        }
        app_gallery_put(b->g);
        b->g = g;
        b->cap = cap;
    }
    snprintf(b->g->ids[b->g->n], sizeof b->g->ids[0], "%s", user_id);
    memcpy(b->g->vecs + b->g->n * FACE_DESCRIPTOR, t, sizeof t);
    b->g->n++;
    crypto_wipe(t, sizeof t);
    return FA_OK;
}

enum fa_status app_gallery_get(struct app *app, struct store *st, const char *client_id,
                               struct app_gallery_snap **out)
{
    struct app_gallery *gl = app->gallery;
    pthread_mutex_lock(&gl->mu);
    struct gal_entry *e = entry_locked(gl, client_id);
    if (e == NULL) {
        pthread_mutex_unlock(&gl->mu);
        return FA_ERR_NOMEM;
    }
    if (e->snap != NULL) {
        atomic_fetch_add(&e->snap->refs, 1);
        *out = e->snap;
        pthread_mutex_unlock(&gl->mu);
        return FA_OK;
    }
    uint64_t version = e->version;
    pthread_mutex_unlock(&gl->mu);

    /* build without the lock (decrypts every template) */
    struct build b = {.app = app, .client_id = client_id, .g = snap_new(0)};
    if (b.g == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc = store_user_each(st, client_id, build_cb, &b);
    if (rc != FA_OK) {
        app_gallery_put(b.g);
        return rc;
    }
    pthread_mutex_lock(&gl->mu);
    e = entry_locked(gl, client_id);
    if (e != NULL && e->snap == NULL && e->version == version) {
        atomic_fetch_add(&b.g->refs, 1); /* the cache's reference */
        e->snap = b.g;
    }
    pthread_mutex_unlock(&gl->mu);
    *out = b.g; /* a write raced with the build: used once, not cached */
    return FA_OK;
}

/* Replace the client's snapshot by a copy without user_id and, if tpl is
 * not NULL, with user_id -> tpl. Only when a snapshot is cached; the version
 * moves either way. */
static void write_user(struct app *app, const char *client_id, const char *user_id,
                       const float *tpl)
{
    struct app_gallery *gl = app->gallery;
    pthread_mutex_lock(&gl->mu);
    struct gal_entry *e = entry_locked(gl, client_id);
    if (e == NULL) {
        pthread_mutex_unlock(&gl->mu);
        return;
    }
    e->version++;
    struct app_gallery_snap *old = e->snap;
    if (old == NULL) {
        pthread_mutex_unlock(&gl->mu);
        return;
    }
    struct app_gallery_snap *g = snap_new(old->n + 1);
    if (g == NULL) { /* OOM: drop the cache, the next reader rebuilds it */
        e->snap = NULL;
        pthread_mutex_unlock(&gl->mu);
        app_gallery_put(old);
        return;
    }
    for (size_t i = 0; i < old->n; i++) {
        if (strcmp(old->ids[i], user_id) == 0)
            continue;
        memcpy(g->ids[g->n], old->ids[i], sizeof g->ids[0]);
        memcpy(g->vecs + g->n * FACE_DESCRIPTOR, old->vecs + i * FACE_DESCRIPTOR,
               FACE_DESCRIPTOR * sizeof(float));
        g->n++;
    }
    if (tpl != NULL) {
        snprintf(g->ids[g->n], sizeof g->ids[0], "%s", user_id);
        memcpy(g->vecs + g->n * FACE_DESCRIPTOR, tpl, FACE_DESCRIPTOR * sizeof(float));
        g->n++;
    }
    e->snap = g;
    pthread_mutex_unlock(&gl->mu);
    app_gallery_put(old);
}

void app_gallery_set(struct app *app, const char *client_id, const char *user_id,
                     const float tpl[FACE_DESCRIPTOR])
{
    write_user(app, client_id, user_id, tpl);
}

void app_gallery_erase(struct app *app, const char *client_id, const char *user_id)
{
    write_user(app, client_id, user_id, NULL);
}
