/* The evaluation of the session logic on ../shared/data/faces (issue 8):
 * verification FAR/FRR over every pair of identity photos at the operating
 * threshold, open-set identification, blink recall and false blinks on the
 * labelled clips, and the decision for every genuine session and every attack
 * (a frame repeated identically and re-encoded, a still photo warped along a
 * path, two people's clips spliced, the phone replay clip). Sessions are
 * simulated frame by frame at 10 fps through logic/ on the very engine pass
 * the server's workers run (app_observe), computed once per clip.
 *
 *   usage: eval_sessions [--quick] [--no-track] [--cache DIR] [--dump FILE] [--models DIR]
 *   --quick  a subset (what FA_TEST_QUICK=1 tests use)
 *   --no-track  BlazeFace on every frame of a stream (the server tracks:
 *            struct app_track), to measure what tracking changes
 *   --cache  keep engine outputs in DIR between runs (invalidated by size)
 *   --dump   per-frame measures as JSON lines for tools/tune_logic.py
 *
 * tests/ref/test_app_eval.c includes this file with EVAL_NO_MAIN and asserts
 * the outcomes the table shows. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "face/face.h"
#include "img/img.h"
#include "logic/logic.h"
#include "nn/nn.h"

#ifndef FA_SHARED_DIR_DEFAULT
#define FA_SHARED_DIR_DEFAULT "../shared"
#endif
#ifndef FA_MODELS_DIR_DEFAULT
#define FA_MODELS_DIR_DEFAULT "models"
#endif

#define EV_MAX_SEQ 128
#define EV_MAX_PHOTOS 128
#define EV_FRAME_MS 100
#define EV_CACHE_MAGIC 0x324c56454146ull /* "FAEVL2": frames tracked as the server does */

/* ---- data -------------------------------------------------------------- */

struct ev_labels {
    bool has;
    int frames;
    int blinks[32][2], nblinks;
    int winks[32][2], nwinks;
    int half[64], nhalf;
};

/* A frame sequence: a clip or an attack built from the shared data. */
struct ev_seq {
    char name[160];
    const char *kind; /* "clip", "spoof", "repeat", "reencode", "warp", "splice" */
    char person[64];  /* whose face it shows (the identity claimed by an attack) */
    struct logic_frame *f;
    int n;
    struct ev_labels lab;
    int required_blinks; /* genuine: what the session asks for */
};

struct ev_photo {
    char person[64];
    char file[160];
    bool face;
    bool quality_ok;
    enum logic_reason reason;
    float u[FACE_DESCRIPTOR]; /* normalised descriptor */
};

struct ev {
    const char *shared, *models, *cache;
    bool quick;
    bool no_track; /* app_observe without a track */
    FILE *dump;
    struct nn_backend *be;
    struct face_models *m;
    struct face_worker *w;
    struct ev_seq seq[EV_MAX_SEQ];
    int nseq;
    struct ev_photo ph[EV_MAX_PHOTOS];
    int nph;
    uint64_t engine_frames;
    double engine_ms;
};

/* ---- results ------------------------------------------------------------- */

struct ev_session {
    bool ready;      /* liveness and samples complete */
    int ready_frame; /* 1-based, 0 if never */
    bool failed;
    enum logic_reason fail_reason;
    int blinks;
    bool motion;
    double motion_score;
    int counted;
    bool accepted; /* enrollment: stored; authentication: matched */
    double distance, confidence;
    float probe[FACE_DESCRIPTOR];
    int nsamples;
    float samples[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR];
    int64_t blink_ranges[32][2];
    int nblink_ranges;
};

struct ev_verif {
    int photos, photos_face, photos_ok;
    int gen, gen_acc, imp, imp_acc;
    double eer_like;
};

struct ev_ident {
    int probes, top1, matched_wrong, refused, ambiguous;
    int unknown, unknown_matched;
};

struct ev_blinks {
    char clip[160];
    int labelled, found, false_blinks, wink_blinks;
    char detected[256];
};

struct ev_decision {
    char name[240];
    const char *kind;
    char claim[64];
    int required_blinks;
    bool genuine;
    bool accepted;
    char why[200];
};

struct ev_results {
    struct ev_verif v;
    struct ev_ident id;
    struct ev_blinks bl[16];
    int nbl;
    struct ev_decision d[96];
    int nd;
    int genuine_total, genuine_accepted, attacks_total, attacks_rejected;
    int blinks_labelled, blinks_found, false_blinks, wink_blinks;
};

/* ---- helpers ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.jpg names of a directory; returns count (names malloc'd). */
static int list_jpg(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".jpg") != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* One frame as the server's worker sees it; tr: the stream's track (NULL:
 * a single photo). */
static enum fa_status observe(struct ev *ev, struct app_track *tr, const struct img *im,
                              int64_t t_ms, struct logic_frame *f)
{
    int64_t t0 = fa_mono_ns();
    enum fa_status rc =
        app_observe(ev->m, ev->w, ev->no_track ? NULL : tr, im, t_ms, 0, APP_OBSERVE_ALL_DESC, f);
    ev->engine_ms += (double)(fa_mono_ns() - t0) / 1e6;
    ev->engine_frames++;
    return rc;
}

static void read_ranges(json_t *a, int (*r)[2], int *n, int max)
{
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach(a, i, v)
    {
        if (*n < max && json_array_size(v) == 2) {
            r[*n][0] = (int)json_integer_value(json_array_get(v, 0));
            r[*n][1] = (int)json_integer_value(json_array_get(v, 1));
            (*n)++;
        }
    }
}

static void read_labels(const char *path, struct ev_labels *l)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    memset(l, 0, sizeof *l);
    if (j == NULL)
        return;
    l->has = true;
    l->frames = (int)json_integer_value(json_object_get(j, "frames"));
    read_ranges(json_object_get(j, "blinks"), l->blinks, &l->nblinks, 32);
    read_ranges(json_object_get(j, "winks"), l->winks, &l->nwinks, 32);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "half_closed"), i, v)
    {
        if (l->nhalf < 64)
            l->half[l->nhalf++] = (int)json_integer_value(v);
    }
    json_decref(j);
}

/* ---- the engine cache ------------------------------------------------------ */

static void cache_path(const struct ev *ev, const char *name, char *out, size_t n)
{
    char clean[128];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof clean; p++)
        clean[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_');
    clean[k] = 0;
    snprintf(out, n, "%s/%s.bin", ev->cache, clean);
}

static bool cache_load(struct ev *ev, struct ev_seq *s)
{
    if (ev->cache == NULL)
        return false;
    char path[600];
    cache_path(ev, s->name, path, sizeof path);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    uint64_t hdr[3];
    bool ok = fread(hdr, sizeof hdr, 1, fp) == 1 && hdr[0] == EV_CACHE_MAGIC &&
              hdr[1] == sizeof(struct logic_frame) && hdr[2] > 0 && hdr[2] < 100000;
    if (ok) {
        s->n = (int)hdr[2];
        s->f = calloc((size_t)s->n, sizeof *s->f);
        ok = fread(s->f, sizeof *s->f, (size_t)s->n, fp) == (size_t)s->n;
        if (!ok) {
            free(s->f);
            s->f = NULL;
            s->n = 0;
        }
    }
    fclose(fp);
    return ok;
}

static void cache_save(const struct ev *ev, const struct ev_seq *s)
{
    if (ev->cache == NULL || s->n == 0)
        return;
    mkdir(ev->cache, 0755);
    char path[600];
    cache_path(ev, s->name, path, sizeof path);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return;
    uint64_t hdr[3] = {EV_CACHE_MAGIC, sizeof(struct logic_frame), (uint64_t)s->n};
    fwrite(hdr, sizeof hdr, 1, fp);
    fwrite(s->f, sizeof *s->f, (size_t)s->n, fp);
    fclose(fp);
}

static struct ev_seq *seq_new(struct ev *ev, const char *name, const char *kind, const char *person)
{
    if (ev->nseq == EV_MAX_SEQ)
        return NULL;
    struct ev_seq *s = &ev->seq[ev->nseq++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->kind = kind;
    snprintf(s->person, sizeof s->person, "%s", person);
    return s;
}

static struct ev_seq *seq_find(struct ev *ev, const char *name)
{
    for (int i = 0; i < ev->nseq; i++)
        if (strcmp(ev->seq[i].name, name) == 0)
            return &ev->seq[i];
    return NULL;
}

/* A clip folder (frames/NNNN.jpg at 10 fps): every frame through the engine. */
static int load_clip(struct ev *ev, const char *rel, const char *name, const char *kind,
                     const char *person, int max_frames)
{
    char dir[600], lab[600];
    snprintf(dir, sizeof dir, "%s/%s/frames", ev->shared, rel);
    snprintf(lab, sizeof lab, "%s/%s/labels.json", ev->shared, rel);
    struct ev_seq *s = seq_new(ev, name, kind, person);
    if (s == NULL)
        return -1;
    read_labels(lab, &s->lab);
    if (cache_load(ev, s)) {
        if (max_frames > 0 && s->n > max_frames)
            s->n = max_frames;
        return 0;
    }
    char **names = NULL;
    int n = list_jpg(dir, &names);
    if (n == 0) {
        fprintf(stderr, "eval: no frames in %s\n", dir);
        return -1;
    }
    if (max_frames > 0 && n > max_frames)
        n = max_frames;
    s->f = calloc((size_t)n, sizeof *s->f);
    struct app_track tr = {0};
    for (int i = 0; i < n; i++) {
        char path[900];
        struct img *im = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (img_load_file(path, NULL, &im) != FA_OK ||
            observe(ev, &tr, im, (int64_t)i * EV_FRAME_MS, &s->f[i]) != FA_OK) {
            fprintf(stderr, "eval: %s failed\n", path);
            img_free(im);
            free_list(names, n);
            return -1;
        }
        img_free(im);
    }
    s->n = n;
    free_list(names, n);
    if (max_frames <= 0)
        cache_save(ev, s);
    return 0;
}

/* ---- attack builders ---------------------------------------------------- */

static struct img *load_frame(const struct ev *ev, const char *rel, int frame)
{
    char path[700];
    struct img *im = NULL;
    snprintf(path, sizeof path, "%s/%s/frames/%04d.jpg", ev->shared, rel, frame);
    if (img_load_file(path, NULL, &im) != FA_OK)
        return NULL;
    return im;
}

/* JPEG round trip at `quality`: what a browser's canvas.toDataURL sends. */
static struct img *reencode(const struct img *im, int quality)
{
    struct fa_buf b = {0};
    struct img *out = NULL;
    if (img_encode_jpeg(im, quality, &b) == FA_OK)
        img_decode(fa_buf_bytes(&b), NULL, &out);
    fa_buf_fini(&b);
    return out;
}

static void inv3(const double a[9], double r[9])
{
    double d = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
               a[2] * (a[3] * a[7] - a[4] * a[6]);
    r[0] = (a[4] * a[8] - a[5] * a[7]) / d;
    r[1] = (a[2] * a[7] - a[1] * a[8]) / d;
    r[2] = (a[1] * a[5] - a[2] * a[4]) / d;
    r[3] = (a[5] * a[6] - a[3] * a[8]) / d;
    r[4] = (a[0] * a[8] - a[2] * a[6]) / d;
    r[5] = (a[2] * a[3] - a[0] * a[5]) / d;
    r[6] = (a[3] * a[7] - a[4] * a[6]) / d;
    r[7] = (a[1] * a[6] - a[0] * a[7]) / d;
    r[8] = (a[0] * a[4] - a[1] * a[3]) / d;
}

static void mul3(const double a[9], const double b[9], double r[9])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            r[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                r[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
        }
}

/* The homography that shows the photo `s` as a flat print at time t (s) on
 * a W x H camera image: the print's plane turned by yaw/pitch/roll, scaled
 * and shifted, seen by a pinhole camera (focal 700 px). amp scales the path
 * (1: yaw +-25 deg, pitch +-15, roll +-12, scale +-15%, shift +-40 px).
 * Returns the camera-to-photo mapping. */
static void warp_path(const struct img *s, int W, int H, double t, double amp, double out[9])
{
    const double rad = M_PI / 180.0;
    double yaw = amp * 25 * sin(2 * M_PI * t / 4.0) * rad;
    double pitch = amp * 15 * sin(2 * M_PI * t / 3.0 + 1) * rad;
    double roll = amp * 12 * sin(2 * M_PI * t / 5.0 + 2) * rad;
    double sc = 1.0 + amp * 0.15 * sin(2 * M_PI * t / 3.5);
    double tx = amp * 40 * sin(2 * M_PI * t / 4.5), ty = amp * 25 * sin(2 * M_PI * t / 3.7 + 0.5);
    /* fit the photo into 90% of the camera image */
    double fit = fmin(0.9 * W / s->w, 0.9 * H / s->h) * sc;
    double cy = cos(yaw), sy = sin(yaw), cp = cos(pitch), sp = sin(pitch), cr = cos(roll),
           sr = sin(roll);
    double Ry[9] = {cy, 0, sy, 0, 1, 0, -sy, 0, cy}, Rx[9] = {1, 0, 0, 0, cp, -sp, 0, sp, cp};
    double Rz[9] = {cr, -sr, 0, sr, cr, 0, 0, 0, 1}, T[9], R[9];
    mul3(Ry, Rx, T);
    mul3(T, Rz, R);
    const double f = 700, z0 = 700;
    double ccx = s->w / 2.0, ccy = s->h / 2.0, A[9], K[9] = {f, 0, W / 2.0, 0, f, H / 2.0, 0, 0, 1};
    double Hf[9];
    for (int i = 0; i < 3; i++) {
        A[i * 3 + 0] = R[i * 3 + 0] * fit;
        A[i * 3 + 1] = R[i * 3 + 1] * fit;
        A[i * 3 + 2] = -R[i * 3 + 0] * fit * ccx - R[i * 3 + 1] * fit * ccy +
                       (i == 0   ? tx
                        : i == 1 ? ty
                                 : z0);
    }
    mul3(K, A, Hf);
    inv3(Hf, out);
}

/* Render the photo through the camera-to-photo homography (bilinear; a grey
 * room around the print). */
static struct img *warp_img(const struct img *s, int W, int H, const double M[9])
{
    struct img *d = img_new(W, H);
    if (d == NULL)
        return NULL;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double X = M[0] * x + M[1] * y + M[2], Y = M[3] * x + M[4] * y + M[5],
                   Z = M[6] * x + M[7] * y + M[8];
            double u = X / Z, v = Y / Z;
            uint8_t *o = d->rgb + 3 * ((size_t)y * W + x);
            int x0 = (int)floor(u), y0 = (int)floor(v);
            if (Z <= 0 || x0 < 0 || y0 < 0 || x0 + 1 >= s->w || y0 + 1 >= s->h) {
                o[0] = 118;
                o[1] = 112;
                o[2] = 104;
                continue;
            }
            double fx = u - x0, fy = v - y0;
            for (int c = 0; c < 3; c++) {
                const uint8_t *p = s->rgb + 3 * ((size_t)y0 * s->w + x0) + c;
                double a = p[0] * (1 - fx) + p[3] * fx;
                double b = p[3 * (size_t)s->w] * (1 - fx) + p[3 * (size_t)s->w + 3] * fx;
                o[c] = (uint8_t)(a * (1 - fy) + b * fy + 0.5);
            }
        }
    return d;
}

/* Attack: one frame of a clip sent n times, identical bytes. */
static int build_repeat(struct ev *ev, const char *clip_rel, const char *person, int frame, int n)
{
    char name[96];
    snprintf(name, sizeof name, "repeat %s #%d", person, frame);
    struct ev_seq *s = seq_new(ev, name, "repeat", person);
    struct img *im = load_frame(ev, clip_rel, frame);
    if (s == NULL || im == NULL) {
        img_free(im);
        return -1;
    }
    s->f = calloc((size_t)n, sizeof *s->f);
    struct app_track tr = {0}; /* as the server sees it: tracked after the first */
    enum fa_status rc = FA_OK;
    for (int i = 0; i < n && rc == FA_OK; i++)
        rc = observe(ev, &tr, im, (int64_t)i * EV_FRAME_MS, &s->f[i]);
    img_free(im);
    if (rc != FA_OK)
        return -1;
    s->n = n;
    return 0;
}

/* Attack: one frame re-encoded again and again (JPEG q 70-95, never the same
 * bytes twice in a row), so no two frames are identical. */
static int build_reencode(struct ev *ev, const char *clip_rel, const char *person, int frame, int n)
{
    char name[96];
    snprintf(name, sizeof name, "re-encoded %s #%d", person, frame);
    struct ev_seq *s = seq_new(ev, name, "reencode", person);
    if (s == NULL)
        return -1;
    if (cache_load(ev, s))
        return 0;
    struct img *im = load_frame(ev, clip_rel, frame);
    if (im == NULL)
        return -1;
    s->f = calloc((size_t)n, sizeof *s->f);
    static const int Q[] = {95, 80, 70, 90, 75, 85};
    struct img *cur = im;
    struct app_track tr = {0};
    for (int i = 0; i < n; i++) {
        struct img *nx = reencode(cur, Q[i % 6]);
        if (cur != im)
            img_free(cur);
        cur = nx;
        if (cur == NULL || observe(ev, &tr, cur, (int64_t)i * EV_FRAME_MS, &s->f[i]) != FA_OK) {
            img_free(im);
            img_free(cur);
            return -1;
        }
    }
    if (cur != im)
        img_free(cur);
    img_free(im);
    s->n = n;
    cache_save(ev, s);
    return 0;
}

/* Attack: a still photo (a frame of a clip, as a print) moved along a path,
 * seen on a 640x480 camera, JPEG q80. */
static int build_warp(struct ev *ev, const char *clip_rel, const char *person, int frame,
                      double amp, int n)
{
    char name[96];
    snprintf(name, sizeof name, "photo of %s moved x%.1f", person, amp);
    struct ev_seq *s = seq_new(ev, name, "warp", person);
    if (s == NULL)
        return -1;
    if (cache_load(ev, s))
        return 0;
    struct img *src = load_frame(ev, clip_rel, frame);
    if (src == NULL)
        return -1;
    s->f = calloc((size_t)n, sizeof *s->f);
    struct app_track tr = {0};
    for (int i = 0; i < n; i++) {
        double M[9];
        warp_path(src, 640, 480, i * 0.1, amp, M);
        struct img *d = warp_img(src, 640, 480, M);
        struct img *j = d != NULL ? reencode(d, 80) : NULL;
        img_free(d);
        if (j == NULL || observe(ev, &tr, j, (int64_t)i * EV_FRAME_MS, &s->f[i]) != FA_OK) {
            img_free(j);
            img_free(src);
            return -1;
        }
        img_free(j);
    }
    img_free(src);
    s->n = n;
    cache_save(ev, s);
    return 0;
}

static void run_session(const struct ev_seq *s, int from, int to, bool enrollment,
                        int required_blinks, int target, const float *tpl, bool backwards,
                        struct ev_session *r);

/* Attack: clip a's first frames, cut before a alone would have passed
 * liveness (with 1 blink or with motion only), then clip b: the face is
 * swapped mid-session, and b brings the liveness; claims a. */
static int build_splice(struct ev *ev, const char *a, const char *b)
{
    static struct ev_session r;
    struct ev_seq *sa = seq_find(ev, a), *sb = seq_find(ev, b);
    if (sa == NULL || sb == NULL)
        return -1;
    int na = sa->n / 3;
    for (int blinks = 0; blinks <= 1; blinks++) {
        run_session(sa, 0, sa->n, true, blinks, 3, NULL, false, &r);
        if (r.ready && r.ready_frame - 1 < na)
            na = r.ready_frame - 1;
    }
    if (na < 2)
        na = 2;
    char name[160];
    snprintf(name, sizeof name, "splice %s -> %s", sa->person, sb->person);
    struct ev_seq *s = seq_new(ev, name, "splice", sa->person);
    if (s == NULL)
        return -1;
    s->n = na + sb->n;
    s->f = calloc((size_t)s->n, sizeof *s->f);
    for (int i = 0; i < na; i++)
        s->f[i] = sa->f[i];
    for (int i = 0; i < sb->n; i++)
        s->f[na + i] = sb->f[i];
    for (int i = 0; i < s->n; i++)
        s->f[i].t_ms = (int64_t)i * EV_FRAME_MS;
    return 0;
}

/* ---- photos --------------------------------------------------------------- */

static int load_photos(struct ev *ev)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data/faces/identities", ev->shared);
    char **people = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int np = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            people = realloc(people, (size_t)(np + 1) * sizeof *people);
            people[np++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(people, (size_t)np, sizeof *people, cmp_str);
    struct logic_frame *f = malloc(sizeof *f);
    for (int p = 0; p < np; p++) {
        char pdir[700];
        snprintf(pdir, sizeof pdir, "%s/%s", dir, people[p]);
        char **files = NULL;
        int nf = list_jpg(pdir, &files);
        for (int i = 0; i < nf && ev->nph < EV_MAX_PHOTOS; i++) {
            struct ev_photo *ph = &ev->ph[ev->nph];
            memset(ph, 0, sizeof *ph);
            snprintf(ph->person, sizeof ph->person, "%s", people[p]);
            snprintf(ph->file, sizeof ph->file, "%s/%s", people[p], files[i]);
            char path[900];
            struct img *im = NULL;
            snprintf(path, sizeof path, "%s/%s", pdir, files[i]);
            if (img_load_file(path, NULL, &im) != FA_OK || observe(ev, NULL, im, 0, f) != FA_OK) {
                img_free(im);
                continue;
            }
            img_free(im);
            struct logic_quality q;
            logic_quality_eval(f, NULL, &q);
            ph->face = f->face && f->has_desc;
            ph->quality_ok = q.reason == LOGIC_OK;
            ph->reason = q.reason;
            if (ph->face)
                logic_normalize(f->desc, ph->u);
            if (ev->dump != NULL) {
                fprintf(ev->dump,
                        "{\"photo\":\"%s\",\"person\":\"%s\",\"face\":%d,\"reason\":\"%s\"",
                        ph->file, ph->person, ph->face, logic_reason_name(q.reason));
                if (ph->face) {
                    fprintf(ev->dump, ",\"u\":[");
                    for (int k = 0; k < FACE_DESCRIPTOR; k++)
                        fprintf(ev->dump, "%s%.6f", k ? "," : "", (double)ph->u[k]);
                    fprintf(ev->dump, "]");
                }
                fprintf(ev->dump, "}\n");
            }
            ev->nph++;
        }
        free_list(files, nf);
    }
    free(f);
    free_list(people, np);
    return 0;
}

/* ---- dump for tools/tune_logic.py ------------------------------------------- */

static void dump_seq(struct ev *ev, const struct ev_seq *s)
{
    if (ev->dump == NULL)
        return;
    for (int i = 0; i < s->n; i++) {
        const struct logic_frame *f = &s->f[i];
        struct logic_quality q;
        logic_quality_eval(f, NULL, &q);
        fprintf(ev->dump,
                "{\"seq\":\"%s\",\"kind\":\"%s\",\"person\":\"%s\",\"frame\":%d,\"faces\":%d,"
                "\"face\":%d,\"t\":%lld",
                s->name, s->kind, s->person, i + 1, f->faces, f->face, (long long)f->t_ms);
        if (f->face) {
            double x[LOGIC_FEATURES];
            logic_features_of(f, x);
            fprintf(ev->dump,
                    ",\"reason\":\"%s\",\"score\":%.4f,\"box\":[%.1f,%.1f,%.1f,%.1f],\"w\":%.1f,"
                    "\"second\":%.1f,\"center\":%.4f,"
                    "\"inside\":%.4f,\"luma\":%.2f,\"contrast\":%.2f,\"sharp\":%.4f,\"det\":%.4f,"
                    "\"yaw\":%.2f,\"pitch\":%.2f,\"roll\":%.2f,\"ratio\":[%.5f,%.5f],"
                    "\"feat\":[",
                    logic_reason_name(q.reason), q.score, f->box.x, f->box.y, f->box.w, f->box.h,
                    f->box.w, f->second_w, q.center_off, q.inside, q.luma, q.contrast, q.sharpness,
                    q.det_score, q.pose.yaw, q.pose.pitch, q.pose.roll, f->eye_ratio[0],
                    f->eye_ratio[1]);
            for (int k = 0; k < LOGIC_FEATURES; k++)
                fprintf(ev->dump, "%s%.5f", k ? "," : "", x[k]);
            fprintf(ev->dump, "]");
            if (f->has_desc) {
                float u[FACE_DESCRIPTOR];
                logic_normalize(f->desc, u);
                fprintf(ev->dump, ",\"u\":[");
                for (int k = 0; k < FACE_DESCRIPTOR; k++)
                    fprintf(ev->dump, "%s%.5f", k ? "," : "", (double)u[k]);
                fprintf(ev->dump, "]");
            }
        }
        fprintf(ev->dump, "}\n");
    }
}

/* ---- sessions --------------------------------------------------------------- */

/* Run frames [from, to) of s as one session at 10 fps (backwards: from the
 * last frame to the first, so that an enrollment and a verification on one
 * clip rest on different frames). A template (normalised) makes it a
 * verification; NULL an enrollment. ready_frame counts frames sent. */
static void run_session(const struct ev_seq *s, int from, int to, bool enrollment,
                        int required_blinks, int target, const float *tpl, bool backwards,
                        struct ev_session *r)
{
    static struct logic_session ls;
    struct logic_session_params p = {.enrollment = enrollment,
                                     .target_samples = target,
                                     .require_liveness = true,
                                     .required_blinks = required_blinks};
    memset(r, 0, sizeof *r);
    logic_session_init(&ls, &p);
    for (int step = 0; step < to - from; step++) {
        int i = backwards ? to - 1 - step : from + step;
        struct logic_frame_result fr;
        struct logic_frame f = s->f[i];
        f.t_ms = (int64_t)step * EV_FRAME_MS;
        if (!logic_session_wants_desc(&ls) && f.has_desc) { /* as the server's worker */
            f.has_desc = false;
            f.desc_skipped = true;
        }
        logic_session_frame(&ls, &f, &fr);
        if (fr.blink && r->nblink_ranges < 32) {
            r->blink_ranges[r->nblink_ranges][0] = fr.blink_first + from;
            r->blink_ranges[r->nblink_ranges][1] = fr.blink_last + from;
            r->nblink_ranges++;
        }
        r->blinks = fr.blinks;
        r->motion = fr.motion;
        if (fr.motion_score > r->motion_score)
            r->motion_score = fr.motion_score;
        r->counted = fr.counted_total;
        if (fr.failed) {
            r->failed = true;
            r->fail_reason = fr.reason;
            break;
        }
        if (fr.ready && !r->ready) {
            r->ready = true;
            r->ready_frame = step + 1;
            if (tpl == NULL && enrollment)
                break; /* the server completes here */
            if (tpl != NULL)
                break;
        }
    }
    if (r->ready) {
        logic_session_probe(&ls, r->probe);
        r->nsamples = logic_session_samples(&ls, r->samples, p.target_samples);
        if (enrollment) {
            r->accepted =
                logic_samples_consistent((const float(*)[FACE_DESCRIPTOR])r->samples, r->nsamples);
            if (!r->accepted) {
                r->failed = true;
                r->fail_reason = LOGIC_INCONSISTENT;
            }
        } else if (tpl != NULL) {
            r->distance = logic_distance(r->probe, tpl);
            r->confidence = logic_confidence(r->distance);
            r->accepted = r->distance <= LOGIC_MATCH_DIST;
        }
    }
}

/* Why a session did not pass, in words. */
static void explain(const struct ev_session *r, int required_blinks, bool verification, char *out,
                    size_t n)
{
    if (r->accepted) {
        if (verification)
            snprintf(out, n, "accepted after %d frames (d %.3f, confidence %.3f)", r->ready_frame,
                     r->distance, r->confidence);
        else
            snprintf(out, n, "accepted after %d frames", r->ready_frame);
        return;
    }
    if (r->failed) {
        snprintf(out, n, "session failed: %s (blinks %d/%d, motion %s)",
                 logic_reason_name(r->fail_reason), r->blinks, required_blinks,
                 r->motion ? "yes" : "no");
        return;
    }
    if (r->ready) {
        snprintf(out, n, "no match (d %.3f > %.2f)", r->distance, LOGIC_MATCH_DIST);
        return;
    }
    snprintf(out, n, "not live: blinks %d/%d, motion %s (score %.2f), %d frames counted", r->blinks,
             required_blinks, r->motion ? "yes" : "no", r->motion_score, r->counted);
}

/* ---- the evaluation ----------------------------------------------------------- */

struct ev_clip_def {
    const char *rel, *name, *person;
    int required_blinks;
};

static const struct ev_clip_def CLIPS[] = {
    {"data/faces/video/interview_man_blink_headmotion", "interview_man_blink_headmotion",
     "interview_man", 1},
    {"data/faces/video/older_woman_glasses_blink", "older_woman_glasses_blink", "older_woman", 1},
    {"data/faces/video/selfie_man_glasses_blink", "selfie_man_glasses_blink", "selfie_man", 1},
    {"data/faces/video/speech_woman_frequent_blinks", "speech_woman_frequent_blinks",
     "speech_woman", 1},
    {"data/faces/video/stock_woman_wink_blink", "stock_woman_wink_blink", "stock_woman", 1},
    {"data/faces/video/studio_man_blink", "studio_man_blink", "studio_man", 1},
    {"data/faces/video/studio_man_glasses_winks", "studio_man_glasses_winks", "studio_man_glasses",
     1},
    /* no blink ground truth (blinks hidden by glare or too small): motion only */
    {"data/faces/video/webcam_man_beard_headturn", "webcam_man_beard_headturn", "beard_man", 0},
    {"data/faces/video/webcam_man_glasses_headturn", "webcam_man_glasses_headturn", "glasses_man",
     0},
};
#define NCLIPS (int)(sizeof CLIPS / sizeof CLIPS[0])
static const int QUICK_CLIPS[] = {5, 6, 8}; /* studio_man_blink, winks, glasses headturn */

static int ev_open(struct ev *ev)
{
    if (nn_backend_new(NN_BACKEND_FAST, &ev->be) != FA_OK)
        return -1;
    struct fa_errinfo info = {{0}};
    unsigned nets = FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS | FACE_NET_LANDMARKS |
                    FACE_NET_DESCRIPTOR;
    if (face_models_load(ev->models, ev->be, nets, &ev->m, &info) != FA_OK) {
        fprintf(stderr, "eval: models: %s\n", info.what);
        return -1;
    }
    return face_worker_new(ev->m, &ev->w) == FA_OK ? 0 : -1;
}

static void ev_close(struct ev *ev)
{
    for (int i = 0; i < ev->nseq; i++)
        free(ev->seq[i].f);
    face_worker_free(ev->w);
    face_models_free(ev->m);
    nn_backend_free(ev->be);
}

/* ---- degradations (--dump only): how far the descriptor drifts as a measure
 * worsens, which is what sets each quality limit (tools/tune_logic.py) */

enum ev_degrade { DG_BLUR, DG_DARK, DG_BRIGHT, DG_CONTRAST, DG_SMALL, DG_N };
static const char *const DG_NAME[DG_N] = {"blur", "dark", "bright", "contrast", "small"};
#define DG_LEVELS 8

/* Box blur of radius r, separable, edges clamped. */
static void box_blur(struct img *im, int r)
{
    if (r <= 0)
        return;
    size_t n = (size_t)im->w * (size_t)im->h * 3;
    uint8_t *tmp = malloc(n);
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *src = pass == 0 ? im->rgb : tmp, *dst = pass == 0 ? tmp : im->rgb;
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++)
                for (int c = 0; c < 3; c++) {
                    int acc = 0, cnt = 0;
                    for (int d = -r; d <= r; d++) {
                        int xx = pass == 0 ? x + d : x, yy = pass == 0 ? y : y + d;
                        if (xx < 0 || yy < 0 || xx >= im->w || yy >= im->h)
                            continue;
                        acc += src[((size_t)yy * im->w + xx) * 3 + c];
                        cnt++;
                    }
                    dst[((size_t)y * im->w + x) * 3 + c] = (uint8_t)((acc + cnt / 2) / cnt);
                }
    }
    free(tmp);
}

static struct img *scaled(const struct img *s, double f)
{
    int w = (int)(s->w * f + 0.5), h = (int)(s->h * f + 0.5);
    if (w < 8 || h < 8)
        return NULL;
    struct img *d = img_new(w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) { /* area average */
            int x0 = (int)(x / f), x1 = (int)((x + 1) / f), y0 = (int)(y / f),
                y1 = (int)((y + 1) / f);
            if (x1 <= x0)
                x1 = x0 + 1;
            if (y1 <= y0)
                y1 = y0 + 1;
            for (int c = 0; c < 3; c++) {
                int acc = 0, cnt = 0;
                for (int yy = y0; yy < y1 && yy < s->h; yy++)
                    for (int xx = x0; xx < x1 && xx < s->w; xx++) {
                        acc += s->rgb[((size_t)yy * s->w + xx) * 3 + c];
                        cnt++;
                    }
                d->rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(cnt ? acc / cnt : 0);
            }
        }
    return d;
}

static struct img *degrade(const struct img *s, enum ev_degrade k, int level)
{
    static const int BLUR[DG_LEVELS] = {0, 1, 2, 3, 4, 6, 8, 11};
    static const double DARK[DG_LEVELS] = {1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08};
    static const double BRIGHT[DG_LEVELS] = {1, 1.3, 1.6, 2.0, 2.5, 3.0, 3.6, 4.5};
    static const double CONTRAST[DG_LEVELS] = {1, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1, 0.06};
    static const double SMALL[DG_LEVELS] = {1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.13, 0.09};
    if (k == DG_SMALL)
        return scaled(s, SMALL[level]);
    struct img *d = img_new(s->w, s->h);
    size_t n = (size_t)s->w * (size_t)s->h * 3;
    memcpy(d->rgb, s->rgb, n);
    if (k == DG_BLUR) {
        box_blur(d, BLUR[level]);
        return d;
    }
    for (size_t i = 0; i < n; i++) {
        double v = d->rgb[i];
        if (k == DG_DARK)
            v *= DARK[level];
        else if (k == DG_BRIGHT)
            v *= BRIGHT[level];
        else
            v = 128 + (v - 128) * CONTRAST[level];
        d->rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
    }
    return d;
}

static void dump_degradations(struct ev *ev)
{
    struct logic_frame *f = malloc(sizeof *f);
    float base[FACE_DESCRIPTOR];
    for (int src = 0; src < NCLIPS + 16; src++) {
        struct img *im = NULL;
        char name[200];
        if (src < NCLIPS) {
            im = load_frame(ev, CLIPS[src].rel, 5);
            snprintf(name, sizeof name, "%s#5", CLIPS[src].name);
        } else { /* each person's first photo with a face (whatever the quality limits) */
            int want = src - NCLIPS, seen = 0;
            for (int i = 0; i < ev->nph && im == NULL; i++) {
                bool first = ev->ph[i].face;
                for (int j = 0; j < i && first; j++)
                    first = !(ev->ph[j].face && strcmp(ev->ph[j].person, ev->ph[i].person) == 0);
                if (first && seen++ == want) {
                    char path[700];
                    snprintf(path, sizeof path, "%s/data/faces/identities/%s", ev->shared,
                             ev->ph[i].file);
                    img_load_file(path, NULL, &im);
                    snprintf(name, sizeof name, "%s", ev->ph[i].file);
                }
            }
        }
        if (im == NULL)
            continue;
        for (int k = 0; k < DG_N; k++)
            for (int lv = 0; lv < DG_LEVELS; lv++) {
                struct img *d = degrade(im, (enum ev_degrade)k, lv);
                struct img *j = d != NULL ? reencode(d, 90) : NULL;
                img_free(d);
                if (j == NULL || observe(ev, NULL, j, 0, f) != FA_OK) {
                    img_free(j);
                    continue;
                }
                img_free(j);
                struct logic_quality q;
                logic_quality_eval(f, NULL, &q);
                double drift = -1;
                if (f->has_desc) {
                    float u[FACE_DESCRIPTOR];
                    logic_normalize(f->desc, u);
                    if (lv == 0 && k == 0)
                        memcpy(base, u, sizeof base);
                    drift = logic_distance(u, base);
                } else if (lv == 0 && k == 0) {
                    break;
                }
                fprintf(ev->dump,
                        "{\"degrade\":\"%s\",\"src\":\"%s\",\"level\":%d,\"face\":%d,\"w\":%.1f,"
                        "\"luma\":%.2f,\"contrast\":%.2f,\"sharp\":%.4f,\"reason\":\"%s\","
                        "\"drift\":%.4f}\n",
                        DG_NAME[k], name, lv, f->face, f->box.w, q.luma, q.contrast, q.sharpness,
                        logic_reason_name(q.reason), drift);
            }
        img_free(im);
    }
    free(f);
}

/* Build every sequence (engine pass once per clip; attacks from them). */
static int ev_build(struct ev *ev)
{
    int nclips = ev->quick ? (int)(sizeof QUICK_CLIPS / sizeof QUICK_CLIPS[0]) : NCLIPS;
    for (int k = 0; k < nclips; k++) {
        const struct ev_clip_def *c = &CLIPS[ev->quick ? QUICK_CLIPS[k] : k];
        if (load_clip(ev, c->rel, c->name, "clip", c->person, 0) != 0)
            return -1;
        ev->seq[ev->nseq - 1].required_blinks = c->required_blinks;
    }
    if (load_clip(ev, "data/faces/video/spoof/phone_replay_man_glasses", "phone_replay_man_glasses",
                  "spoof", "glasses_man", 0) != 0)
        return -1;
    /* a frame repeated: identical bytes, and re-encoded */
    int nrep = ev->quick ? 30 : 60;
    if (build_repeat(ev, "data/faces/video/studio_man_blink", "studio_man", 10, nrep) != 0 ||
        build_reencode(ev, "data/faces/video/studio_man_blink", "studio_man", 10, nrep) != 0)
        return -1;
    if (!ev->quick && (build_repeat(ev, "data/faces/video/speech_woman_frequent_blinks",
                                    "speech_woman", 20, nrep) != 0 ||
                       build_reencode(ev, "data/faces/video/speech_woman_frequent_blinks",
                                      "speech_woman", 20, nrep) != 0))
        return -1;
    /* still photos moved along a path */
    static const double AMPS[] = {0.6, 1.4};
    int nwarp = ev->quick ? 30 : 60;
    for (int k = 0; k < nclips; k++) {
        const struct ev_clip_def *c = &CLIPS[ev->quick ? QUICK_CLIPS[k] : k];
        if (c->required_blinks == 0 && ev->quick)
            continue;
        for (int a = 0; a < 2; a++) {
            if (ev->quick && a == 0)
                continue;
            if (build_warp(ev, c->rel, c->person, 1, AMPS[a], nwarp) != 0)
                return -1;
        }
    }
    /* faces swapped mid-session */
    if (ev->quick) {
        if (build_splice(ev, "studio_man_blink", "studio_man_glasses_winks") != 0)
            return -1;
    } else {
        static const char *const SPLICE[][2] = {
            {"studio_man_blink", "studio_man_glasses_winks"},
            {"studio_man_glasses_winks", "studio_man_blink"},
            {"speech_woman_frequent_blinks", "stock_woman_wink_blink"},
            {"older_woman_glasses_blink", "speech_woman_frequent_blinks"},
            {"interview_man_blink_headmotion", "selfie_man_glasses_blink"},
            {"webcam_man_glasses_headturn", "webcam_man_beard_headturn"},
        };
        for (size_t i = 0; i < sizeof SPLICE / sizeof SPLICE[0]; i++)
            if (build_splice(ev, SPLICE[i][0], SPLICE[i][1]) != 0)
                return -1;
    }
    if (load_photos(ev) != 0)
        return -1;
    for (int i = 0; i < ev->nseq; i++)
        dump_seq(ev, &ev->seq[i]);
    if (ev->dump != NULL)
        dump_degradations(ev);
    return 0;
}

static bool range_hit(int a, int b, const int (*r)[2], int n)
{
    for (int i = 0; i < n; i++)
        if (a <= r[i][1] + 1 && b >= r[i][0] - 1)
            return true;
    return false;
}

static void eval_blinks(const struct ev_seq *s, const struct ev_session *r, struct ev_blinks *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->clip, sizeof b->clip, "%s", s->name);
    b->labelled = s->lab.nblinks;
    bool used[32] = {false};
    for (int i = 0; i < s->lab.nblinks; i++)
        for (int j = 0; j < r->nblink_ranges; j++)
            if (!used[j] && r->blink_ranges[j][0] <= s->lab.blinks[i][1] + 1 &&
                r->blink_ranges[j][1] >= s->lab.blinks[i][0] - 1) {
                used[j] = true;
                b->found++;
                break;
            }
    size_t k = 0;
    for (int j = 0; j < r->nblink_ranges; j++) {
        int a = (int)r->blink_ranges[j][0], z = (int)r->blink_ranges[j][1];
        k += (size_t)snprintf(b->detected + k, sizeof b->detected - k, "%s%d", j ? " " : "", a);
        if (z != a && k < sizeof b->detected)
            k += (size_t)snprintf(b->detected + k, sizeof b->detected - k, "-%d", z);
        if (k >= sizeof b->detected)
            break;
        if (range_hit(a, z, (const int(*)[2])s->lab.blinks, s->lab.nblinks))
            continue;
        if (range_hit(a, z, (const int(*)[2])s->lab.winks, s->lab.nwinks)) {
            b->wink_blinks++;
            continue;
        }
        bool half = false;
        for (int h = 0; h < s->lab.nhalf; h++)
            half |= s->lab.half[h] >= a && s->lab.half[h] <= z;
        if (!half)
            b->false_blinks++;
    }
}

static void add_decision(struct ev_results *res, const char *name, const char *kind,
                         const char *claim, int blinks, bool genuine, bool accepted,
                         const char *why)
{
    if (res->nd >= (int)(sizeof res->d / sizeof res->d[0]))
        return;
    struct ev_decision *d = &res->d[res->nd++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->kind = kind;
    snprintf(d->claim, sizeof d->claim, "%s", claim);
    d->required_blinks = blinks;
    d->genuine = genuine;
    d->accepted = accepted;
    snprintf(d->why, sizeof d->why, "%s", why);
    if (genuine) {
        res->genuine_total++;
        res->genuine_accepted += accepted;
    } else {
        res->attacks_total++;
        res->attacks_rejected += !accepted;
    }
}

/* A gallery of templates: one row per person. */
struct ev_gallery {
    char person[64][64];
    float *vecs; /* 64-byte aligned */
    int n;
};

static int gal_find(const struct ev_gallery *g, const char *person)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->person[i], person) == 0)
            return i;
    return -1;
}

static void gal_put(struct ev_gallery *g, const char *person, const float u[FACE_DESCRIPTOR])
{
    int i = gal_find(g, person);
    if (i < 0) {
        if (g->n == 64)
            return;
        i = g->n++;
        snprintf(g->person[i], sizeof g->person[i], "%s", person);
    }
    memcpy(g->vecs + (size_t)i * FACE_DESCRIPTOR, u, FACE_DESCRIPTOR * sizeof(float));
}

static void ev_verification(const struct ev *ev, struct ev_results *res)
{
    struct ev_verif *v = &res->v;
    v->photos = ev->nph;
    for (int i = 0; i < ev->nph; i++) {
        v->photos_face += ev->ph[i].face;
        v->photos_ok += ev->ph[i].quality_ok;
    }
    for (int i = 0; i < ev->nph; i++)
        for (int j = i + 1; j < ev->nph; j++) {
            const struct ev_photo *a = &ev->ph[i], *b = &ev->ph[j];
            bool same = strcmp(a->person, b->person) == 0;
            /* a photo without a face cannot be accepted: counts as a reject */
            bool acc = a->face && b->face && logic_distance(a->u, b->u) <= LOGIC_MATCH_DIST;
            if (same) {
                v->gen++;
                v->gen_acc += acc;
            } else {
                v->imp++;
                v->imp_acc += acc;
            }
        }
}

/* Identification over the photo templates: each photo a probe against a
 * gallery of every person's template from their other photos (closed set:
 * top-1), and against a gallery without its person (open set: must be
 * nobody). */
static void ev_identification(const struct ev *ev, struct ev_results *res, struct ev_gallery *g)
{
    struct ev_ident *id = &res->id;
    static const char *people[64];
    int np = 0;
    for (int i = 0; i < ev->nph; i++) {
        bool seen = false;
        for (int k = 0; k < np; k++)
            seen |= strcmp(people[k], ev->ph[i].person) == 0;
        if (!seen && np < 64)
            people[np++] = ev->ph[i].person;
    }
    for (int i = 0; i < ev->nph; i++) {
        const struct ev_photo *pr = &ev->ph[i];
        for (int mode = 0; mode < 2; mode++) { /* 0: enrolled, 1: unknown */
            g->n = 0;
            for (int k = 0; k < np; k++) {
                bool own = strcmp(people[k], pr->person) == 0;
                if (own && mode == 1)
                    continue;
                float acc[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR];
                int na = 0;
                for (int j = 0; j < ev->nph && na < LOGIC_MAX_SAMPLES; j++)
                    if (j != i && ev->ph[j].face && strcmp(ev->ph[j].person, people[k]) == 0)
                        memcpy(acc[na++], ev->ph[j].u, sizeof acc[0]);
                if (na == 0)
                    continue;
                float t[FACE_DESCRIPTOR];
                logic_mean((const float(*)[FACE_DESCRIPTOR])acc, na, t);
                gal_put(g, people[k], t);
            }
            if (mode == 0 && gal_find(g, pr->person) < 0)
                continue; /* the only photo of its person */
            struct logic_ident r;
            if (pr->face)
                logic_identify(g->vecs, (size_t)g->n, pr->u, -1, 0, &r);
            else
                memset(&r, 0, sizeof r);
            if (mode == 0) {
                id->probes++;
                if (r.match && strcmp(g->person[r.best], pr->person) == 0)
                    id->top1++;
                else if (r.match)
                    id->matched_wrong++;
                else if (r.ambiguous)
                    id->ambiguous++;
                else
                    id->refused++;
            } else {
                id->unknown++;
                id->unknown_matched += r.match;
            }
        }
    }
}

static void ev_sessions(struct ev *ev, struct ev_results *res, struct ev_gallery *g)
{
    static struct ev_session r;
    char why[200];
    float tpl[NCLIPS + 2][FACE_DESCRIPTOR];
    /* genuine: enrollment, then verification and identification */
    g->n = 0;
    for (int i = 0; i < ev->nph; i++) { /* photo people as distractors */
        float acc[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR];
        int na = 0;
        if (gal_find(g, ev->ph[i].person) >= 0)
            continue;
        for (int j = 0; j < ev->nph && na < LOGIC_MAX_SAMPLES; j++)
            if (ev->ph[j].face && strcmp(ev->ph[j].person, ev->ph[i].person) == 0)
                memcpy(acc[na++], ev->ph[j].u, sizeof acc[0]);
        if (na > 0) {
            float t[FACE_DESCRIPTOR];
            logic_mean((const float(*)[FACE_DESCRIPTOR])acc, na, t);
            gal_put(g, ev->ph[i].person, t);
        }
    }
    for (int i = 0; i < ev->nseq; i++) {
        const struct ev_seq *s = &ev->seq[i];
        if (strcmp(s->kind, "clip") != 0)
            continue;
        run_session(s, 0, s->n, true, s->required_blinks, 3, NULL, true, &r);
        char name[224];
        snprintf(name, sizeof name, "%s: enrollment (clip backwards)", s->name);
        explain(&r, s->required_blinks, false, why, sizeof why);
        add_decision(res, name, "genuine", s->person, s->required_blinks, true, r.accepted, why);
        if (r.accepted) {
            float t[FACE_DESCRIPTOR];
            logic_mean((const float(*)[FACE_DESCRIPTOR])r.samples, r.nsamples, t);
            gal_put(g, s->person, t);
        }
        /* blink figures: the whole clip as one session that never completes */
        if (s->lab.has && res->nbl < 16) {
            struct ev_session all;
            run_session(s, 0, s->n, true, 99, 20, NULL, false, &all);
            eval_blinks(s, &all, &res->bl[res->nbl]);
            res->blinks_labelled += res->bl[res->nbl].labelled;
            res->blinks_found += res->bl[res->nbl].found;
            res->false_blinks += res->bl[res->nbl].false_blinks;
            res->wink_blinks += res->bl[res->nbl].wink_blinks;
            res->nbl++;
        }
    }
    (void)tpl;
    for (int i = 0; i < ev->nseq; i++) {
        const struct ev_seq *s = &ev->seq[i];
        if (strcmp(s->kind, "clip") != 0)
            continue;
        int t = gal_find(g, s->person);
        char name[224];
        snprintf(name, sizeof name, "%s: verification", s->name);
        if (t < 0) {
            add_decision(res, name, "genuine", s->person, s->required_blinks, true, false,
                         "not enrolled");
            continue;
        }
        run_session(s, 0, s->n, false, s->required_blinks, 3, g->vecs + (size_t)t * FACE_DESCRIPTOR,
                    false, &r);
        explain(&r, s->required_blinks, true, why, sizeof why);
        add_decision(res, name, "genuine", s->person, s->required_blinks, true, r.accepted, why);
        /* identification: the same session's probe against everyone */
        snprintf(name, sizeof name, "%s: identification", s->name);
        if (r.ready) {
            struct logic_ident id;
            logic_identify(g->vecs, (size_t)g->n, r.probe, -1, 0, &id);
            bool ok = id.match && strcmp(g->person[id.best], s->person) == 0;
            snprintf(why, sizeof why, "%s (d %.3f; runner-up %s d %.3f)",
                     id.match       ? g->person[id.best]
                     : id.ambiguous ? "ambiguous"
                                    : "nobody",
                     id.d_best, id.second >= 0 ? g->person[id.second] : "-", id.d_second);
            add_decision(res, name, "genuine", s->person, s->required_blinks, true, ok, why);
        } else {
            add_decision(res, name, "genuine", s->person, s->required_blinks, true, false,
                         "session not live");
        }
    }
    /* attacks: verification claiming the person shown, default (1 blink) and
     * motion only (0 blinks) */
    for (int i = 0; i < ev->nseq; i++) {
        const struct ev_seq *s = &ev->seq[i];
        if (strcmp(s->kind, "clip") == 0)
            continue;
        int t = gal_find(g, s->person);
        for (int blinks = 1; blinks >= 0; blinks--) {
            char name[224];
            snprintf(name, sizeof name, "%s", s->name);
            if (t < 0) {
                add_decision(res, name, s->kind, s->person, blinks, false, false,
                             "claimed user not enrolled");
                continue;
            }
            run_session(s, 0, s->n, false, blinks, 3, g->vecs + (size_t)t * FACE_DESCRIPTOR, false,
                        &r);
            explain(&r, blinks, true, why, sizeof why);
            add_decision(res, name, s->kind, s->person, blinks, false, r.accepted, why);
        }
    }
}

static int ev_run(struct ev *ev, struct ev_results *res)
{
    memset(res, 0, sizeof *res);
    if (ev_build(ev) != 0)
        return -1;
    struct ev_gallery g = {.n = 0};
    g.vecs = fa_malloc_aligned(64 * FACE_DESCRIPTOR * sizeof(float));
    if (g.vecs == NULL)
        return -1;
    ev_verification(ev, res);
    ev_identification(ev, res, &g);
    ev_sessions(ev, res, &g);
    fa_free_aligned(g.vecs);
    return 0;
}

static void ev_print(const struct ev *ev, const struct ev_results *res, FILE *o)
{
    const struct ev_verif *v = &res->v;
    fprintf(o, "Session logic on shared/data/faces (engine: %llu frames, %.1f ms/frame)\n\n",
            (unsigned long long)ev->engine_frames,
            ev->engine_frames ? ev->engine_ms / (double)ev->engine_frames : 0.0);
    fprintf(o,
            "Verification, every pair of the %d identity photos (%d with a face, %d pass "
            "quality), threshold d <= %.2f (normalised descriptors):\n",
            v->photos, v->photos_face, v->photos_ok, LOGIC_MATCH_DIST);
    fprintf(o, "  FAR %d/%d = %.3f%%   FRR %d/%d = %.2f%%\n", v->imp_acc, v->imp,
            v->imp ? 100.0 * v->imp_acc / v->imp : 0.0, v->gen - v->gen_acc, v->gen,
            v->gen ? 100.0 * (v->gen - v->gen_acc) / v->gen : 0.0);
    const struct ev_ident *id = &res->id;
    fprintf(o, "Identification 1:N (each photo against templates of the others' photos):\n");
    fprintf(o,
            "  top-1 %d/%d = %.1f%% (wrong user %d, ambiguous %d, nobody %d); "
            "not enrolled -> matched %d/%d = %.2f%%\n\n",
            id->top1, id->probes, id->probes ? 100.0 * id->top1 / id->probes : 0.0,
            id->matched_wrong, id->ambiguous, id->refused, id->unknown_matched, id->unknown,
            id->unknown ? 100.0 * id->unknown_matched / id->unknown : 0.0);
    fprintf(o, "Blinks on the labelled clips (session pipeline, 10 fps):\n");
    fprintf(o, "  %-32s %8s %6s %6s  detected\n", "clip", "found", "false", "winks");
    for (int i = 0; i < res->nbl; i++) {
        const struct ev_blinks *b = &res->bl[i];
        fprintf(o, "  %-32s %4d/%-3d %6d %6d  [%s]\n", b->clip, b->found, b->labelled,
                b->false_blinks, b->wink_blinks, b->detected);
    }
    fprintf(o, "  %-32s %4d/%-3d %6d %6d  (recall %.1f%%)\n\n", "all", res->blinks_found,
            res->blinks_labelled, res->false_blinks, res->wink_blinks,
            res->blinks_labelled ? 100.0 * res->blinks_found / res->blinks_labelled : 0.0);
    fprintf(o, "Sessions (require_liveness, 3 frames, blinks as listed; attacks claim the "
               "person shown):\n");
    fprintf(o, "  %-58s %-8s %6s  %-8s  %s\n", "session", "kind", "blinks", "decision", "why");
    for (int i = 0; i < res->nd; i++) {
        const struct ev_decision *d = &res->d[i];
        bool good = d->genuine == d->accepted;
        fprintf(o, "  %-58s %-8s %6d  %-8s  %s%s\n", d->name, d->kind, d->required_blinks,
                d->accepted ? "ACCEPT" : "REJECT", d->why, good ? "" : "   <-- UNEXPECTED");
    }
    fprintf(o, "\n  genuine sessions accepted: %d/%d; attacks rejected: %d/%d\n",
            res->genuine_accepted, res->genuine_total, res->attacks_rejected, res->attacks_total);
}

#ifndef EVAL_NO_MAIN
int main(int argc, char **argv)
{
    static struct ev ev;
    static struct ev_results res;
    ev.shared = getenv("FA_SHARED_DIR") ? getenv("FA_SHARED_DIR") : FA_SHARED_DIR_DEFAULT;
    ev.models = getenv("FACEAUTH_MODELS") ? getenv("FACEAUTH_MODELS") : FA_MODELS_DIR_DEFAULT;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            ev.quick = true;
        else if (strcmp(argv[i], "--no-track") == 0)
            ev.no_track = true;
        else if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc)
            ev.cache = argv[++i];
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc)
            ev.models = argv[++i];
        else {
            fprintf(stderr,
                    "usage: eval_sessions [--quick] [--no-track] [--cache DIR] [--dump FILE] "
                    "[--models DIR]\n");
            return 2;
        }
    }
    if (dump != NULL && (ev.dump = fopen(dump, "w")) == NULL) {
        fprintf(stderr, "eval: %s: %s\n", dump, strerror(errno));
        return 1;
    }
    if (ev_open(&ev) != 0 || ev_run(&ev, &res) != 0) {
        fprintf(stderr, "eval: failed\n");
        return 1;
    }
    ev_print(&ev, &res, stdout);
    if (ev.dump != NULL)
        fclose(ev.dump);
    ev_close(&ev);
    return 0;
}
#endif
