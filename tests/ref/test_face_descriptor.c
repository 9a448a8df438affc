/* Parity of the 128-d descriptor net (face/descriptor.c) with face-api.js:
 * - layer by layer on the tensor dump of identities/kit_harington/02.jpg
 *   (the dlib square, crop pixels, net input, every block, mean, output);
 * - on every SSD face of data/reference/faceapi.json, end to end from the
 *   SSD box (our landmarks, our square): descriptor crop equal, Euclidean
 *   distance to face-api's descriptor <= 0.01; the whole-image descriptor of
 *   every image too; fast backend, and the ref backend on two images;
 * - recognition on identities/: with face-api's source "auto" (the best SSD
 *   face, else the whole image) every same/different decision at 0.6 equals
 *   face-api's, pair by pair;
 * - errors: bad points and rectangles, a short arena, no heap allocation
 *   per run, mis-named or mis-shaped tensors, allocation failures at load.
 * FA_TEST_QUICK=1 checks a handful of images only (sanitizer builds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "face/align.h"
#include "face/descriptor.h"
#include "face/landmark68.h"
#include "refdata.h"
#include "testutil.h"

#define MAX_IMAGES 256

/* What the sweep computed for one reference image, for the decision test. */
struct cached {
    const char *key;
    bool done, has_face;
    float face[FACE_DESCRIPTOR];  /* ours, highest-scoring SSD face */
    float whole[FACE_DESCRIPTOR]; /* ours, whole image */
    double ref_face[FACE_DESCRIPTOR], ref_whole[FACE_DESCRIPTOR];
};

static struct {
    struct nn_backend *be;
    struct nn_ctx *ctx;
    struct lm68_net *lm;
    struct desc_net *net;
    struct fa_arena arena;
    json_t *ref;
    json_t *tensors;
    char models[1024];
    bool quick;
    struct cached cache[MAX_IMAGES];
    size_t ncache;
} g;

/* ------------------------------------------------------------- helpers */

static const char *dump_path(char *buf, size_t n, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "data/reference/tensors/%s", file);
    return tu_shared_path(buf, n, rel);
}

static float *load_f32(const char *name, size_t *n)
{
    char file[256], path[1024];
    size_t len;
    snprintf(file, sizeof file, "%s.f32.bin", name);
    float *p = tu_read_file(dump_path(path, sizeof path, file), &len);
    *n = len / sizeof(float);
    return p;
}

static struct face_box box_of(const json_t *o)
{
    return (struct face_box){tu_json_num(o, "x"), tu_json_num(o, "y"), tu_json_num(o, "width"),
                             tu_json_num(o, "height"), 0.0f};
}

static bool rect_is(struct prep_rect r, const json_t *o)
{
    return r.x == tu_json_num(o, "x") && r.y == tu_json_num(o, "y") &&
           r.w == tu_json_num(o, "width") && r.h == tu_json_num(o, "height");
}

static void ref_vector(const json_t *a, double v[FACE_DESCRIPTOR])
{
    assert_int_equal(json_array_size(a), FACE_DESCRIPTOR);
    for (size_t i = 0; i < FACE_DESCRIPTOR; i++)
        v[i] = json_number_value(json_array_get(a, i));
}

static double dist_fd(const float *a, const double *b)
{
    double s = 0.0;
    for (int i = 0; i < FACE_DESCRIPTOR; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s);
}

static double dist_ff(const float *a, const float *b)
{
    double s = 0.0;
    for (int i = 0; i < FACE_DESCRIPTOR; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s);
}

static double dist_dd(const double *a, const double *b)
{
    double s = 0.0;
    for (int i = 0; i < FACE_DESCRIPTOR; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

static struct img dump_image(void)
{
    char path[1024];
    size_t len;
    const json_t *im = json_object_get(g.tensors, "image");
    struct img out = {.w = (int32_t)tu_json_num(im, "width"),
                      .h = (int32_t)tu_json_num(im, "height")};
    out.rgb = tu_read_file(dump_path(path, sizeof path, "image.rgb.u8.bin"), &len);
    assert_int_equal(len, (size_t)out.w * (size_t)out.h * 3);
    return out;
}

static bool keep_image(size_t idx, const char *key)
{
    if (!g.quick)
        return true;
    /* a spread of images, the dump's, and a same-person pair of cropped faces
     * whose squares face-api caps with the landmark crop */
    return idx % 25 == 0 || strcmp(key, "identities/kit_harington/02.jpg") == 0 ||
           strcmp(key, "identities/raj/01.jpg") == 0 || strcmp(key, "identities/raj/02.jpg") == 0;
}

static struct img *load_image(const char *key)
{
    char rel[1024], path[1200];
    snprintf(rel, sizeof rel, "data/faces/%s", key);
    struct img *im = NULL;
    const struct img_limits lim = {0};
    enum fa_status rc = img_load_file(tu_shared_path(path, sizeof path, rel), &lim, &im);
    if (rc != FA_OK)
        fail_msg("%s: %s", key, fa_status_name(rc));
    return im;
}

static struct nn_backend *backend_of(const char *kind)
{
    char *saved = getenv("FACEAUTH_NN_BACKEND") ? strdup(getenv("FACEAUTH_NN_BACKEND")) : NULL;
    struct nn_backend *be = NULL;
    setenv("FACEAUTH_NN_BACKEND", kind, 1);
    enum fa_status rc = nn_backend_new(NN_BACKEND_REF, &be);
    if (saved != NULL)
        setenv("FACEAUTH_NN_BACKEND", saved, 1);
    else
        unsetenv("FACEAUTH_NN_BACKEND");
    free(saved);
    assert_int_equal(rc, FA_OK);
    return be;
}

/* ------------------------------------------------------------- fixture */

static int setup(void **state)
{
    (void)state;
    char path[1024];
    json_error_t err;
    const char *q = getenv("FA_TEST_QUICK");
    g.quick = q != NULL && *q && strcmp(q, "0") != 0;
    snprintf(g.models, sizeof g.models, "%s/face-api", tu_models_dir());
    struct fa_errinfo info = {{0}};
    if (nn_backend_new(NN_BACKEND_FAST, &g.be) != FA_OK || nn_ctx_new(g.be, &g.ctx) != FA_OK)
        return -1;
    enum fa_status rc = desc_load(g.models, g.be, &g.net, &info);
    if (rc == FA_OK)
        rc = lm68_load(g.models, g.be, &g.lm, &info);
    if (rc != FA_OK) {
        fprintf(stderr, "load: %s: %s\n", fa_status_name(rc), info.what);
        return -1;
    }
    size_t need = desc_arena_bytes(g.net);
    if (lm68_arena_bytes(g.lm) > need)
        need = lm68_arena_bytes(g.lm);
    if (fa_arena_init(&g.arena, need) != FA_OK)
        return -1;
    g.ref =
        json_load_file(tu_shared_path(path, sizeof path, "data/reference/faceapi.json"), 0, &err);
    g.tensors = json_load_file(dump_path(path, sizeof path, "tensors.json"), 0, &err);
    if (g.ref == NULL || g.tensors == NULL)
        return -1;
    printf("backend %s, arena %zu bytes%s\n", nn_backend_name(g.be), desc_arena_bytes(g.net),
           g.quick ? ", quick" : "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g.ref);
    json_decref(g.tensors);
    fa_arena_fini(&g.arena);
    desc_free(g.net);
    lm68_free(g.lm);
    nn_ctx_free(g.ctx);
    nn_backend_free(g.be);
    return 0;
}

/* ------------------------------------------------------ the tensor dump */

struct tapcheck {
    int seen;
    double worst;
    char worst_name[128];
};

static void tap_compare(void *arg, const char *name, const struct nn_tensor *t)
{
    struct tapcheck *tc = arg;
    char full[128];
    size_t n;
    snprintf(full, sizeof full, "recognition.%s", name);
    float *want = load_f32(full, &n);
    if (n != nn_tensor_len(t))
        fail_msg("%s: %zu values, dump has %zu", full, nn_tensor_len(t), n);
    double dmax = 0.0, amax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)t->data[i] - (double)want[i]);
        dmax = d > dmax ? d : dmax;
        amax = fabs(want[i]) > amax ? fabs(want[i]) : amax;
    }
    double rel = dmax / (amax > 1e-6 ? amax : 1e-6);
    printf("  %-30s [%d,%d,%d] max|diff| %.3g  relative %.3g\n", full, t->h, t->w, t->c, dmax, rel);
    if (rel > tc->worst) {
        tc->worst = rel;
        snprintf(tc->worst_name, sizeof tc->worst_name, "%s", full);
    }
    tc->seen++;
    free(want);
}

static void test_dump(void **state)
{
    (void)state;
    const json_t *notes = json_object_get(g.tensors, "notes");
    const json_t *lnotes = json_object_get(notes, "face_landmark_68");
    const json_t *rnotes = json_object_get(notes, "face_recognition");
    struct face_box det = box_of(json_object_get(lnotes, "detection"));
    struct img im = dump_image();
    size_t n, len;
    char path[1024];

    /* the square from face-api's landmarks, and its pixels */
    float pts[FACE_LANDMARKS][2];
    const json_t *lm = json_object_get(lnotes, "landmarks");
    for (size_t p = 0; p < FACE_LANDMARKS; p++)
        for (size_t k = 0; k < 2; k++)
            pts[p][k] = (float)json_number_value(json_array_get(json_array_get(lm, p), k));
    struct prep_rect r;
    assert_int_equal(desc_crop_from_landmarks(&im, pts, &det, &r), FA_OK);
    assert_true(rect_is(r, json_object_get(rnotes, "crop")));
    assert_true(rect_is(r, json_object_get(rnotes, "dlib_rect")));
    uint8_t *cpx = tu_read_file(dump_path(path, sizeof path, "recognition.crop.rgb.u8.bin"), &len);
    assert_int_equal(len, (size_t)r.w * (size_t)r.h * 3);
    for (int32_t y = 0; y < r.h; y++)
        assert_memory_equal(cpx + (size_t)y * (size_t)r.w * 3,
                            im.rgb + ((size_t)(r.y + y) * (size_t)im.w + (size_t)r.x) * 3,
                            (size_t)r.w * 3);
    free(cpx);

    float *want_in = load_f32("recognition.input", &n);
    assert_int_equal(n, (size_t)DESC_INPUT * DESC_INPUT * 3);
    float *in = malloc(n * sizeof(float));
    desc_prepare(&im, r, in);
    double dmax = 0.0;
    for (size_t i = 0; i < n; i++)
        dmax = fmax(dmax, fabs((double)in[i] - (double)want_in[i]));
    printf("  recognition.input              max|diff| %.3g\n", dmax);
    assert_true(dmax <= 1e-6);
    free(in);

    /* the net on face-api's own input, every block end */
    struct tapcheck tc = {0};
    float d[FACE_DESCRIPTOR];
    assert_int_equal(desc_forward(g.net, g.ctx, &g.arena, want_in, d, tap_compare, &tc), FA_OK);
    assert_int_equal(tc.seen, 2 + 14 + 1);
    printf("  worst layer: %s, relative %.3g\n", tc.worst_name, tc.worst);
    assert_true(tc.worst <= 1e-4);
    free(want_in);

    float *want_out = load_f32("recognition.output", &n);
    assert_int_equal(n, FACE_DESCRIPTOR);
    double ref[FACE_DESCRIPTOR];
    ref_vector(json_object_get(rnotes, "descriptor"), ref);
    double dd = dist_fd(d, ref), dmx = 0.0;
    for (int i = 0; i < FACE_DESCRIPTOR; i++)
        dmx = fmax(dmx, fabs((double)d[i] - (double)want_out[i]));
    printf("  net on face-api's input: descriptor distance %.3g, max element diff %.3g\n", dd, dmx);
    assert_true(dd <= 1e-4);
    free(want_out);

    /* the whole path from the decoded image and face-api's landmarks */
    float d2[FACE_DESCRIPTOR];
    assert_int_equal(desc_run_landmarks_crop(g.net, g.ctx, &g.arena, &im, pts, &det, d2), FA_OK);
    printf("  desc_run_landmarks_crop on the dump image: distance %.3g\n", dist_fd(d2, ref));
    assert_true(dist_fd(d2, ref) <= 1e-4);
    assert_int_equal(g.arena.used, 0);
    free(im.rgb);
}

/* ----------------------------------------------- every reference face */

struct sweep {
    size_t images, faces, wholes;
    double worst_face, worst_whole, worst_lm;
    char worst_key[256];
};

static void run_images(const struct desc_net *net, const struct lm68_net *lmn, struct nn_ctx *ctx,
                       const char *only1, const char *only2, struct sweep *sw, bool fill_cache)
{
    const char *key;
    json_t *res;
    size_t idx = 0;
    json_object_foreach(g.ref, key, res)
    {
        bool take = only1 != NULL ? (strcmp(key, only1) == 0 || strcmp(key, only2) == 0)
                                  : keep_image(idx, key);
        size_t ci = idx++;
        if (!take)
            continue;
        struct img *im = load_image(key);
        assert_int_equal(im->w, (int32_t)tu_json_num(res, "width"));
        assert_int_equal(im->h, (int32_t)tu_json_num(res, "height"));
        sw->images++;
        struct cached *c = fill_cache && ci < MAX_IMAGES ? &g.cache[ci] : NULL;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(res, "faces"), i, f)
        {
            /* end to end from the SSD box */
            struct face_box det = box_of(json_object_get(f, "detection"));
            float pts[FACE_LANDMARKS][2], d[FACE_DESCRIPTOR];
            double ref[FACE_DESCRIPTOR];
            assert_int_equal(lm68_run(lmn, ctx, &g.arena, im, &det, pts), FA_OK);
            struct prep_rect r;
            assert_int_equal(desc_crop_from_landmarks(im, pts, &det, &r), FA_OK);
            if (!rect_is(r, json_object_get(f, "descriptor_crop")))
                fail_msg("%s face %zu: descriptor crop (%d,%d,%d,%d) differs", key, i, r.x, r.y,
                         r.w, r.h);
            assert_int_equal(desc_run_landmarks_crop(net, ctx, &g.arena, im, pts, &det, d), FA_OK);
            ref_vector(json_object_get(f, "descriptor"), ref);
            double dist = dist_fd(d, ref);
            if (dist > 0.01)
                fail_msg("%s face %zu: descriptor distance %.4g", key, i, dist);
            if (dist > sw->worst_face) {
                sw->worst_face = dist;
                snprintf(sw->worst_key, sizeof sw->worst_key, "%s face %zu", key, i);
            }
            sw->faces++;
            if (c != NULL && i == 0) {
                c->has_face = true;
                memcpy(c->face, d, sizeof d);
                memcpy(c->ref_face, ref, sizeof ref);
            }
        }
        /* the whole image, as computeFaceDescriptor(image) */
        float w[FACE_DESCRIPTOR];
        double ref_w[FACE_DESCRIPTOR];
        struct face_box all = {0, 0, im->w, im->h, 0};
        assert_int_equal(desc_run_rect(net, ctx, &g.arena, im, &all, w), FA_OK);
        ref_vector(json_object_get(res, "whole_image_descriptor"), ref_w);
        double dist = dist_fd(w, ref_w);
        if (dist > 0.01)
            fail_msg("%s: whole-image descriptor distance %.4g", key, dist);
        sw->worst_whole = fmax(sw->worst_whole, dist);
        sw->wholes++;
        if (c != NULL) {
            c->key = key;
            c->done = true;
            memcpy(c->whole, w, sizeof w);
            memcpy(c->ref_whole, ref_w, sizeof ref_w);
            if (ci + 1 > g.ncache)
                g.ncache = ci + 1;
        }
        img_free(im);
    }
}

static void test_reference_images(void **state)
{
    (void)state;
    struct sweep sw = {0};
    int64_t t0 = fa_mono_ms();
    run_images(g.net, g.lm, g.ctx, NULL, NULL, &sw, true);
    printf("  %s: %zu images, %zu faces: max descriptor distance %.3g (%s); %zu whole images: "
           "max %.3g (%lld ms)\n",
           nn_backend_name(g.be), sw.images, sw.faces, sw.worst_face, sw.worst_key, sw.wholes,
           sw.worst_whole, (long long)(fa_mono_ms() - t0));
    assert_true(sw.faces >= (g.quick ? 3u : 120u));
}

/* identities/<person>/<photo>: every pair, face-api's "auto" source. */
static void test_decisions(void **state)
{
    (void)state;
    size_t n = 0, pairs = 0, same = 0, same_ok = 0, diff = 0, diff_ok = 0;
    const struct cached *v[MAX_IMAGES];
    for (size_t i = 0; i < g.ncache; i++)
        if (g.cache[i].done && strncmp(g.cache[i].key, "identities/", 11) == 0)
            v[n++] = &g.cache[i];
    assert_true(n >= (g.quick ? 2u : 77u));
    double closest = 1.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const float *a = v[i]->has_face ? v[i]->face : v[i]->whole;
            const float *b = v[j]->has_face ? v[j]->face : v[j]->whole;
            const double *ra = v[i]->has_face ? v[i]->ref_face : v[i]->ref_whole;
            const double *rb = v[j]->has_face ? v[j]->ref_face : v[j]->ref_whole;
            double ours = dist_ff(a, b), theirs = dist_dd(ra, rb);
            bool ours_same = ours < FACE_SAME_THRESHOLD, ref_same = theirs < FACE_SAME_THRESHOLD;
            if (ours_same != ref_same)
                fail_msg("%s vs %s: distance %.6f, face-api %.6f: decisions differ", v[i]->key,
                         v[j]->key, ours, theirs);
            closest = fmin(closest, fabs(theirs - FACE_SAME_THRESHOLD));
            /* same person: same folder */
            const char *sa = strrchr(v[i]->key, '/'), *sb = strrchr(v[j]->key, '/');
            bool person = sa - v[i]->key == sb - v[j]->key &&
                          strncmp(v[i]->key, v[j]->key, (size_t)(sa - v[i]->key)) == 0;
            if (person) {
                same++;
                same_ok += ours_same;
            } else {
                diff++;
                diff_ok += !ours_same;
            }
            pairs++;
        }
    printf("  %zu photos, %zu pairs, all decisions equal face-api's (closest face-api distance "
           "to 0.6: %.4f); same person below 0.6: %zu/%zu, different people at or above: "
           "%zu/%zu\n",
           n, pairs, closest, same_ok, same, diff_ok, diff);
}

static void test_ref_backend(void **state)
{
    (void)state;
    struct nn_backend *be = backend_of("ref");
    struct nn_ctx *ctx = NULL;
    struct desc_net *net = NULL;
    struct lm68_net *lmn = NULL;
    assert_string_equal(nn_backend_name(be), "ref");
    assert_int_equal(nn_ctx_new(be, &ctx), FA_OK);
    assert_int_equal(desc_load(g.models, be, &net, NULL), FA_OK);
    assert_int_equal(lm68_load(g.models, be, &lmn, NULL), FA_OK);
    struct sweep sw = {0};
    run_images(net, lmn, ctx, "identities/kit_harington/02.jpg", "identities/raj/01.jpg", &sw,
               false);
    printf("  ref: %zu images, %zu faces: max descriptor distance %.3g; whole images %.3g\n",
           sw.images, sw.faces, sw.worst_face, sw.worst_whole);
    assert_int_equal(sw.images, 2);
    desc_free(net);
    lm68_free(lmn);
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

/* ------------------------------------------------------------- errors */

static void test_bad_input(void **state)
{
    (void)state;
    struct img im = dump_image();
    const json_t *lnotes = json_object_get(json_object_get(g.tensors, "notes"), "face_landmark_68");
    float good[FACE_LANDMARKS][2], pts[FACE_LANDMARKS][2], d[FACE_DESCRIPTOR];
    const json_t *lm = json_object_get(lnotes, "landmarks");
    for (size_t p = 0; p < FACE_LANDMARKS; p++)
        for (size_t k = 0; k < 2; k++)
            good[p][k] = (float)json_number_value(json_array_get(json_array_get(lm, p), k));
    d[0] = 4321.0f;

    memcpy(pts, good, sizeof pts);
    pts[50][1] = NAN;
    assert_int_equal(desc_run_landmarks(g.net, g.ctx, &g.arena, &im, pts, d), FA_ERR_ARG);
    memcpy(pts, good, sizeof pts);
    for (int p = 0; p < FACE_LANDMARKS; p++)
        pts[p][0] += 5000.0f; /* square right of the image */
    assert_int_equal(desc_run_landmarks(g.net, g.ctx, &g.arena, &im, pts, d), FA_ERR_ARG);
    for (int p = 0; p < FACE_LANDMARKS; p++)
        pts[p][0] = pts[p][1] = 100.0f; /* all on one point: size 0 */
    assert_int_equal(desc_run_landmarks(g.net, g.ctx, &g.arena, &im, pts, d), FA_ERR_ARG);
    for (int p = 0; p < FACE_LANDMARKS; p++) {
        pts[p][0] = good[p][0] * 1e30f + 1e33f; /* huge, far right and below */
        pts[p][1] = good[p][1] * 1e30f + 1e33f;
    }
    assert_int_equal(desc_run_landmarks(g.net, g.ctx, &g.arena, &im, pts, d), FA_ERR_ARG);
    struct face_box bad_box = {-500, 0, 100, 100, 0};
    assert_int_equal(desc_run_landmarks_crop(g.net, g.ctx, &g.arena, &im, good, &bad_box, d),
                     FA_ERR_ARG);

    const struct face_box bad[] = {{700, 0, 10, 10, 0},    {0, 374, 10, 10, 0},
                                   {0, 0, 0.5, 10, 0},     {NAN, 0, 10, 10, 0},
                                   {0, 0, INFINITY, 1, 0}, {-10, -10, 10.5, 50, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (desc_run_rect(g.net, g.ctx, &g.arena, &im, &bad[i], d) != FA_ERR_ARG)
            fail_msg("bad rect %zu accepted", i);
    assert_true(d[0] == 4321.0f);
    assert_int_equal(desc_run_rect(g.net, g.ctx, &g.arena, NULL, &bad[0], d), FA_ERR_ARG);
    assert_int_equal(desc_run_landmarks(NULL, g.ctx, &g.arena, &im, good, d), FA_ERR_ARG);

    /* 1-pixel-wide and -high crops are valid inputs */
    const struct face_box thin[] = {{3, 3, 1, 1, 0}, {629, 0, 1, 374, 0}, {0, 100, 630, 1, 0}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(desc_run_rect(g.net, g.ctx, &g.arena, &im, &thin[i], d), FA_OK);
        for (int k = 0; k < FACE_DESCRIPTOR; k++)
            assert_true(isfinite(d[k]));
    }
    /* the plain square equals the capped one when the cap does not bite */
    float d1[FACE_DESCRIPTOR], d2[FACE_DESCRIPTOR];
    struct face_box det = box_of(json_object_get(lnotes, "detection"));
    assert_int_equal(desc_run_landmarks(g.net, g.ctx, &g.arena, &im, good, d1), FA_OK);
    assert_int_equal(desc_run_landmarks_crop(g.net, g.ctx, &g.arena, &im, good, &det, d2), FA_OK);
    assert_memory_equal(d1, d2, sizeof d1);
    free(im.rgb);
}

static void test_arena(void **state)
{
    (void)state;
    struct img im = dump_image();
    struct face_box rect = {272, 91, 202, 202, 0};
    float d[FACE_DESCRIPTOR], again[FACE_DESCRIPTOR];
    size_t need = desc_arena_bytes(g.net);
    struct fa_arena a;

    assert_int_equal(fa_arena_init(&a, need), FA_OK);
    assert_int_equal(desc_run_rect(g.net, g.ctx, &a, &im, &rect, d), FA_OK);
    assert_int_equal(a.used, 0);
    assert_int_equal(a.high, need);
    fa_alloc_fail_after(0); /* no heap allocation per run */
    enum fa_status rc = desc_run_rect(g.net, g.ctx, &a, &im, &rect, again);
    fa_alloc_fail_reset();
    assert_int_equal(rc, FA_OK);
    assert_memory_equal(d, again, sizeof d);
    fa_arena_fini(&a);
    assert_int_equal(fa_arena_init(&a, need - 64), FA_OK);
    again[0] = -1.0f;
    assert_int_equal(desc_run_rect(g.net, g.ctx, &a, &im, &rect, again), FA_ERR_NOMEM);
    assert_true(again[0] == -1.0f);
    assert_int_equal(a.used, 0);
    fa_arena_fini(&a);
    free(im.rgb);
}

static void write_edited_model(const char *dir, const char *from, const char *to)
{
    char src[1200], dst[1200];
    size_t len;
    mkdir(dir, 0700);
    snprintf(src, sizeof src, "%s/face_recognition_model-weights_manifest.json", g.models);
    char *json = tu_read_file(src, &len);
    char *at = strstr(json, from);
    assert_non_null(at);
    snprintf(dst, sizeof dst, "%s/face_recognition_model-weights_manifest.json", dir);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    fwrite(json, 1, (size_t)(at - json), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(json);
    /* the shard: a symbolic link is enough */
    snprintf(src, sizeof src, "%s/face_recognition_model.bin", g.models);
    snprintf(dst, sizeof dst, "%s/face_recognition_model.bin", dir);
    char abs[4096];
    assert_non_null(realpath(src, abs));
    assert_int_equal(symlink(abs, dst), 0);
}

static void remove_model(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/face_recognition_model-weights_manifest.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/face_recognition_model.bin", dir);
    remove(p);
    rmdir(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct desc_net *net = NULL;
    struct fa_errinfo info = {{0}};
    char dir[256];

    assert_int_equal(desc_load("/nonexistent/face-api", g.be, &net, &info), FA_ERR_MODEL_MISSING);
    assert_null(net);
    snprintf(dir, sizeof dir, "/tmp/faceauth_desc_test_%d", (int)getpid());
    write_edited_model(dir, "\"conv128_1/conv2/scale/biases\"", "\"conv128_1/conv2/scale/biasez\"");
    assert_int_equal(desc_load(dir, g.be, &net, &info), FA_ERR_MODEL_TENSOR);
    assert_null(net);
    printf("  renamed: %s\n", info.what);
    assert_non_null(strstr(info.what, "conv128_1/conv2/scale/biases"));
    remove_model(dir);
    write_edited_model(dir, "\"fc\",\"shape\":[256,128]", "\"fc\",\"shape\":[128,256]");
    assert_int_equal(desc_load(dir, g.be, &net, &info), FA_ERR_MODEL_TENSOR);
    printf("  reshaped: %s\n", info.what);
    assert_non_null(strstr(info.what, "fc"));
    remove_model(dir);

    /* allocation failures at load: FA_ERR_NOMEM, no leak (ASan) */
    long fails = 0, step = g.quick ? 23 : 3;
    for (long n = 0;; n += step) {
        fa_alloc_fail_after(n);
        enum fa_status rc = desc_load(g.models, g.be, &net, NULL);
        fa_alloc_fail_reset();
        if (rc == FA_OK)
            break;
        assert_int_equal(rc, FA_ERR_NOMEM);
        fails++;
        assert_true(n < 100000);
    }
    printf("  %ld allocation failures at load handled (every %ld-th)\n", fails, step);
    desc_free(net);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_timing(void **state)
{
    (void)state;
    struct img im = dump_image();
    struct face_box rect = {272, 91, 202, 202, 0};
    float d[FACE_DESCRIPTOR];
    enum { RUNS = 21 };
    int64_t ns[RUNS];
    assert_int_equal(desc_run_rect(g.net, g.ctx, &g.arena, &im, &rect, d), FA_OK);
    for (int i = 0; i < RUNS; i++) {
        int64_t t0 = fa_mono_ns();
        assert_int_equal(desc_run_rect(g.net, g.ctx, &g.arena, &im, &rect, d), FA_OK);
        ns[i] = fa_mono_ns() - t0;
    }
    qsort(ns, RUNS, sizeof ns[0], cmp_i64);
    printf("  descriptor (crop + 150x150 net), %s: median %.3f ms, min %.3f ms\n",
           nn_backend_name(g.be), (double)ns[RUNS / 2] / 1e6, (double)ns[0] / 1e6);
    free(im.rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump),        cmocka_unit_test(test_reference_images),
        cmocka_unit_test(test_decisions),   cmocka_unit_test(test_ref_backend),
        cmocka_unit_test(test_bad_input),   cmocka_unit_test(test_arena),
        cmocka_unit_test(test_load_errors), cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
