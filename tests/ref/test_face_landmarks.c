/* Parity of the 68-point landmark net (face/landmark68.c) with face-api.js:
 * - layer by layer on the tensor dump of identities/kit_harington/02.jpg
 *   (crop pixels, net input, every dense block's four outputs, pool, fc,
 *   post-processing, final points);
 * - on every SSD face of every image of data/reference/faceapi.json (mean
 *   error <= 0.5 px per face, landmark crop equal), fast backend; the ref
 *   backend on two images;
 * - errors: boxes outside the image or degenerate, a short arena, no heap
 *   allocation per run, model files with a missing or mis-shaped tensor,
 *   allocation failures at load.
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
#include "face/landmark68.h"
#include "refdata.h"
#include "testutil.h"

static struct {
    struct nn_backend *be;
    struct nn_ctx *ctx;
    struct lm68_net *net;
    struct fa_arena arena;
    json_t *ref;     /* faceapi.json */
    json_t *tensors; /* tensors.json */
    char models[1024];
    bool quick;
} g;

/* ------------------------------------------------------------- helpers */

static const char *dump_path(char *buf, size_t n, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "data/reference/tensors/%s", file);
    return tu_shared_path(buf, n, rel);
}

/* A dumped float32 tensor; *n its element count. */
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

static void ref_points(const json_t *lm, double pts[FACE_LANDMARKS][2])
{
    assert_int_equal(json_array_size(lm), FACE_LANDMARKS);
    for (size_t p = 0; p < FACE_LANDMARKS; p++)
        for (size_t k = 0; k < 2; k++)
            pts[p][k] = json_number_value(json_array_get(json_array_get(lm, p), k));
}

/* Mean and max Euclidean distance between our points and face-api's. */
static void point_error(const float got[FACE_LANDMARKS][2], const double want[FACE_LANDMARKS][2],
                        double *mean, double *max)
{
    double s = 0.0, m = 0.0;
    for (int i = 0; i < FACE_LANDMARKS; i++) {
        double d = hypot(got[i][0] - want[i][0], got[i][1] - want[i][1]);
        s += d;
        m = d > m ? d : m;
    }
    *mean = s / FACE_LANDMARKS;
    *max = m;
}

/* The decoded image of the dump (identities/kit_harington/02.jpg). */
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
    return idx % 25 == 0 || strcmp(key, "identities/kit_harington/02.jpg") == 0 ||
           strcmp(key, "group/bbt2.jpg") == 0;
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
    enum fa_status rc = lm68_load(g.models, g.be, &g.net, &info);
    if (rc != FA_OK) {
        fprintf(stderr, "lm68_load: %s: %s\n", fa_status_name(rc), info.what);
        return -1;
    }
    if (fa_arena_init(&g.arena, lm68_arena_bytes(g.net)) != FA_OK)
        return -1;
    g.ref =
        json_load_file(tu_shared_path(path, sizeof path, "data/reference/faceapi.json"), 0, &err);
    g.tensors = json_load_file(dump_path(path, sizeof path, "tensors.json"), 0, &err);
    if (g.ref == NULL || g.tensors == NULL)
        return -1;
    printf("backend %s, arena %zu bytes%s\n", nn_backend_name(g.be), lm68_arena_bytes(g.net),
           g.quick ? ", quick" : "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g.ref);
    json_decref(g.tensors);
    fa_arena_fini(&g.arena);
    lm68_free(g.net);
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

/* Each intermediate against face-api's: max |diff| relative to max |ref|. */
static void tap_compare(void *arg, const char *name, const struct nn_tensor *t)
{
    struct tapcheck *tc = arg;
    char full[128];
    size_t n;
    snprintf(full, sizeof full, "landmarks.%s", name);
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
    printf("  %-22s [%d,%d,%d] max|diff| %.3g  relative %.3g\n", full, t->h, t->w, t->c, dmax, rel);
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
    const json_t *notes = json_object_get(json_object_get(g.tensors, "notes"), "face_landmark_68");
    struct face_box det = box_of(json_object_get(notes, "detection"));
    const json_t *crop = json_object_get(notes, "crop");
    struct img im = dump_image();
    size_t n, len;
    char path[1024];

    /* the crop: rectangle and pixels */
    struct prep_rect r;
    assert_int_equal(align_clip(det.x, det.y, det.w, det.h, im.w, im.h, &r), FA_OK);
    assert_true(r.x == tu_json_num(crop, "x") && r.y == tu_json_num(crop, "y") &&
                r.w == tu_json_num(crop, "width") && r.h == tu_json_num(crop, "height"));
    uint8_t *cpx = tu_read_file(dump_path(path, sizeof path, "landmarks.crop.rgb.u8.bin"), &len);
    assert_int_equal(len, (size_t)r.w * (size_t)r.h * 3);
    for (int32_t y = 0; y < r.h; y++)
        assert_memory_equal(cpx + (size_t)y * (size_t)r.w * 3,
                            im.rgb + ((size_t)(r.y + y) * (size_t)im.w + (size_t)r.x) * 3,
                            (size_t)r.w * 3);
    free(cpx);

    /* the input: pad centred, resize, normalise */
    float *want_in = load_f32("landmarks.input", &n);
    assert_int_equal(n, (size_t)LM68_INPUT * LM68_INPUT * 3);
    float *in = malloc(n * sizeof(float));
    lm68_prepare(&im, r, in);
    double dmax = 0.0;
    for (size_t i = 0; i < n; i++)
        dmax = fmax(dmax, fabs((double)in[i] - (double)want_in[i]));
    printf("  landmarks.input        max|diff| %.3g\n", dmax);
    assert_true(dmax <= 1e-6);
    free(in);

    /* the net on face-api's own input, every layer end */
    struct tapcheck tc = {0};
    float raw[LM68_OUTPUTS];
    assert_int_equal(lm68_forward(g.net, g.ctx, &g.arena, want_in, raw, tap_compare, &tc), FA_OK);
    assert_int_equal(tc.seen, 4 * 5 + 2);
    printf("  worst layer: %s, relative %.3g\n", tc.worst_name, tc.worst);
    assert_true(tc.worst <= 1e-4);
    free(want_in);

    float *want_raw = load_f32("landmarks.output.raw", &n);
    assert_int_equal(n, LM68_OUTPUTS);
    for (int i = 0; i < LM68_OUTPUTS; i++)
        assert_true(fabs(raw[i] - want_raw[i]) <= 1e-5);

    /* post-processing alone, from face-api's raw output: exact float32 ops */
    float rel[LM68_OUTPUTS], pts[FACE_LANDMARKS][2];
    lm68_postprocess(want_raw, r.w, r.h, det.x, det.y, rel, pts);
    float *want_rel = load_f32("landmarks.output.relative", &n);
    assert_int_equal(n, LM68_OUTPUTS);
    for (int i = 0; i < LM68_OUTPUTS; i++)
        if (rel[i] != want_rel[i])
            fail_msg("relative %d: %.9g, face-api %.9g", i, (double)rel[i], (double)want_rel[i]);
    double want_pts[FACE_LANDMARKS][2], mean, max;
    ref_points(json_object_get(notes, "landmarks"), want_pts);
    point_error((const float(*)[2])pts, want_pts, &mean, &max);
    printf("  post-processing of face-api's raw output: max error %.3g px\n", max);
    assert_true(max <= 1e-4); /* float32 rounding of ~400 px */
    float *want_f32 = load_f32("landmarks.points", &n);
    assert_int_equal(n, FACE_LANDMARKS * 2);
    assert_memory_equal(want_f32, pts, sizeof pts);

    /* the whole path from the decoded image */
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, &det, pts), FA_OK);
    point_error((const float(*)[2])pts, want_pts, &mean, &max);
    printf("  lm68_run on the dump image: mean %.3g px, max %.3g px\n", mean, max);
    assert_true(max <= 0.01);
    assert_int_equal(g.arena.used, 0);

    free(want_raw);
    free(want_rel);
    free(want_f32);
    free(im.rgb);
}

/* ----------------------------------------------- every reference face */

struct sweep {
    size_t images, faces;
    double worst_mean, worst_max;
    char worst_key[256];
};

static void run_images(const struct lm68_net *net, struct nn_ctx *ctx, const char *only1,
                       const char *only2, struct sweep *sw)
{
    const char *key;
    json_t *res;
    size_t idx = 0;
    json_object_foreach(g.ref, key, res)
    {
        bool take = only1 != NULL ? (strcmp(key, only1) == 0 || strcmp(key, only2) == 0)
                                  : keep_image(idx, key);
        idx++;
        if (!take)
            continue;
        struct img *im = load_image(key);
        assert_int_equal(im->w, (int32_t)tu_json_num(res, "width"));
        assert_int_equal(im->h, (int32_t)tu_json_num(res, "height"));
        sw->images++;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(res, "faces"), i, f)
        {
            struct face_box det = box_of(json_object_get(f, "detection"));
            const json_t *lc = json_object_get(f, "landmark_crop");
            struct prep_rect r;
            assert_int_equal(align_clip(det.x, det.y, det.w, det.h, im->w, im->h, &r), FA_OK);
            assert_true(r.x == tu_json_num(lc, "x") && r.y == tu_json_num(lc, "y") &&
                        r.w == tu_json_num(lc, "width") && r.h == tu_json_num(lc, "height"));
            float pts[FACE_LANDMARKS][2];
            double want[FACE_LANDMARKS][2], mean, max;
            assert_int_equal(lm68_run(net, ctx, &g.arena, im, &det, pts), FA_OK);
            ref_points(json_object_get(f, "landmarks"), want);
            point_error((const float(*)[2])pts, want, &mean, &max);
            if (mean > 0.5)
                fail_msg("%s face %zu: mean landmark error %.3g px (max %.3g)", key, i, mean, max);
            if (mean > sw->worst_mean) {
                sw->worst_mean = mean;
                snprintf(sw->worst_key, sizeof sw->worst_key, "%s face %zu", key, i);
            }
            sw->worst_max = fmax(sw->worst_max, max);
            sw->faces++;
        }
        img_free(im);
    }
}

static void test_reference_images(void **state)
{
    (void)state;
    struct sweep sw = {0};
    run_images(g.net, g.ctx, NULL, NULL, &sw);
    printf("  %s: %zu images, %zu faces; worst mean error %.3g px (%s), max point error %.3g px\n",
           nn_backend_name(g.be), sw.images, sw.faces, sw.worst_mean, sw.worst_key, sw.worst_max);
    assert_true(sw.faces >= (g.quick ? 3u : 120u));
}

/* The reference backend on two images (FACEAUTH_NN_BACKEND would override
 * the kind, so it is set for the creation only). */
static void test_ref_backend(void **state)
{
    (void)state;
    char *saved = getenv("FACEAUTH_NN_BACKEND") ? strdup(getenv("FACEAUTH_NN_BACKEND")) : NULL;
    struct nn_backend *be = NULL;
    struct nn_ctx *ctx = NULL;
    struct lm68_net *net = NULL;
    setenv("FACEAUTH_NN_BACKEND", "ref", 1);
    assert_int_equal(nn_backend_new(NN_BACKEND_REF, &be), FA_OK);
    if (saved != NULL)
        setenv("FACEAUTH_NN_BACKEND", saved, 1);
    else
        unsetenv("FACEAUTH_NN_BACKEND");
    free(saved);
    assert_string_equal(nn_backend_name(be), "ref");
    assert_int_equal(nn_ctx_new(be, &ctx), FA_OK);
    assert_int_equal(lm68_load(g.models, be, &net, NULL), FA_OK);
    struct sweep sw = {0};
    run_images(net, ctx, "identities/kit_harington/02.jpg", "group/bbt2.jpg", &sw);
    printf("  ref: %zu images, %zu faces; worst mean error %.3g px, max point error %.3g px\n",
           sw.images, sw.faces, sw.worst_mean, sw.worst_max);
    assert_int_equal(sw.images, 2);
    lm68_free(net);
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

/* ------------------------------------------------------------- errors */

static void test_bad_input(void **state)
{
    (void)state;
    struct img im = dump_image();
    float pts[FACE_LANDMARKS][2];
    pts[0][0] = 12345.0f;
    const struct face_box bad[] = {
        {700, 10, 50, 50, 0},  {10, 400, 50, 50, 0},      {-100, 10, 50, 50, 0},
        {10, -100, 50, 50, 0}, {10, 10, 0.5, 50, 0},      {10, 10, 50, 0.99, 0},
        {NAN, 10, 50, 50, 0},  {10, 10, INFINITY, 50, 0}, {629.5, 10, 50, 50, 0},
        {10, 10, -50, 50, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lm68_run(g.net, g.ctx, &g.arena, &im, &bad[i], pts) != FA_ERR_ARG)
            fail_msg("bad box %zu accepted", i);
    assert_true(pts[0][0] == 12345.0f); /* untouched */
    struct face_box ok = {316.3, 76.9, 150, 201.9, 0};
    assert_int_equal(lm68_run(NULL, g.ctx, &g.arena, &im, &ok, pts), FA_ERR_ARG);
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, NULL, &ok, pts), FA_ERR_ARG);
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, NULL, pts), FA_ERR_ARG);
    struct img empty = {.w = 0, .h = 0, .rgb = im.rgb};
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &empty, &ok, pts), FA_ERR_ARG);

    /* tiny crops still work: 1x1, 1 x h, w x 1 (padding to a square) */
    const struct face_box tiny[] = {{5, 5, 1, 1, 0}, {5, 5, 1, 300, 0}, {0, 373, 630, 1, 0}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, &tiny[i], pts), FA_OK);
        for (int p = 0; p < FACE_LANDMARKS; p++)
            assert_true(isfinite(pts[p][0]) && isfinite(pts[p][1]));
    }
    /* a box beyond the left/top border: points are shifted by the clipped origin */
    struct face_box left = {-20.5, -7.25, 150, 200, 0};
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, &left, pts), FA_OK);
    free(im.rgb);
}

static void test_arena(void **state)
{
    (void)state;
    struct img im = dump_image();
    struct face_box det = {316.33715093135834, 76.89710722471538, 149.9536907672882,
                           201.859957393847, 0};
    float pts[FACE_LANDMARKS][2], again[FACE_LANDMARKS][2];
    size_t need = lm68_arena_bytes(g.net);
    struct fa_arena a;

    /* exactly the advertised size: works, everything given back */
    assert_int_equal(fa_arena_init(&a, need), FA_OK);
    assert_int_equal(lm68_run(g.net, g.ctx, &a, &im, &det, pts), FA_OK);
    assert_int_equal(a.used, 0);
    assert_int_equal(a.high, need);
    /* no heap allocation per run: every fa_malloc fails, the run still works */
    fa_alloc_fail_after(0);
    enum fa_status rc = lm68_run(g.net, g.ctx, &a, &im, &det, again);
    fa_alloc_fail_reset();
    assert_int_equal(rc, FA_OK);
    assert_memory_equal(pts, again, sizeof pts);
    fa_arena_fini(&a);
    /* one slot short: FA_ERR_NOMEM, nothing written */
    assert_int_equal(fa_arena_init(&a, need - 64), FA_OK);
    again[0][0] = -1.0f;
    assert_int_equal(lm68_run(g.net, g.ctx, &a, &im, &det, again), FA_ERR_NOMEM);
    assert_true(again[0][0] == -1.0f);
    assert_int_equal(a.used, 0);
    fa_arena_fini(&a);
    free(im.rgb);
}

/* A copy of the model folder with the manifest edited: `from` -> `to`. */
static void write_edited_model(const char *dir, const char *from, const char *to)
{
    char src[1200], dst[1200];
    size_t len;
    mkdir(dir, 0700);
    snprintf(src, sizeof src, "%s/face_landmark_68_model-weights_manifest.json", g.models);
    char *json = tu_read_file(src, &len);
    char *at = strstr(json, from);
    assert_non_null(at);
    snprintf(dst, sizeof dst, "%s/face_landmark_68_model-weights_manifest.json", dir);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    fwrite(json, 1, (size_t)(at - json), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(json);
    snprintf(src, sizeof src, "%s/face_landmark_68_model.bin", g.models);
    void *bin = tu_read_file(src, &len);
    snprintf(dst, sizeof dst, "%s/face_landmark_68_model.bin", dir);
    f = fopen(dst, "wb");
    assert_non_null(f);
    fwrite(bin, 1, len, f);
    fclose(f);
    free(bin);
}

static void remove_model(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/face_landmark_68_model-weights_manifest.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/face_landmark_68_model.bin", dir);
    remove(p);
    rmdir(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct lm68_net *net = NULL;
    struct fa_errinfo info = {{0}};
    char dir[256];

    assert_int_equal(lm68_load("/nonexistent/face-api", g.be, &net, &info), FA_ERR_MODEL_MISSING);
    assert_null(net);

    snprintf(dir, sizeof dir, "/tmp/faceauth_lm68_test_%d", (int)getpid());
    /* a renamed tensor: the loader accepts the file, lm68_load names what is missing */
    write_edited_model(dir, "\"dense2/conv1/bias\"", "\"dense2/conv1/biaz\"");
    assert_int_equal(lm68_load(dir, g.be, &net, &info), FA_ERR_MODEL_TENSOR);
    assert_null(net);
    printf("  renamed: %s\n", info.what);
    assert_non_null(strstr(info.what, "dense2/conv1/bias"));
    remove_model(dir);
    /* same byte count, other shape */
    write_edited_model(dir, "\"dense3/conv2/pointwise_filter\",\"shape\":[1,1,256,256]",
                       "\"dense3/conv2/pointwise_filter\",\"shape\":[1,1,128,512]");
    assert_int_equal(lm68_load(dir, g.be, &net, &info), FA_ERR_MODEL_TENSOR);
    printf("  reshaped: %s\n", info.what);
    assert_non_null(strstr(info.what, "dense3/conv2/pointwise_filter"));
    remove_model(dir);

    /* every allocation failure at load: FA_ERR_NOMEM, no leak (ASan) */
    long fails = 0;
    for (long n = 0;; n += g.quick ? 7 : 1) {
        fa_alloc_fail_after(n);
        enum fa_status rc = lm68_load(g.models, g.be, &net, NULL);
        fa_alloc_fail_reset();
        if (rc == FA_OK)
            break;
        assert_int_equal(rc, FA_ERR_NOMEM);
        fails++;
        assert_true(n < 100000);
    }
    printf("  %ld allocation failures at load handled\n", fails);
    lm68_free(net);
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
    struct face_box det = {316.33715093135834, 76.89710722471538, 149.9536907672882,
                           201.859957393847, 0};
    float pts[FACE_LANDMARKS][2];
    enum { RUNS = 31 };
    int64_t ns[RUNS];
    assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, &det, pts), FA_OK); /* warm-up */
    for (int i = 0; i < RUNS; i++) {
        int64_t t0 = fa_mono_ns();
        assert_int_equal(lm68_run(g.net, g.ctx, &g.arena, &im, &det, pts), FA_OK);
        ns[i] = fa_mono_ns() - t0;
    }
    qsort(ns, RUNS, sizeof ns[0], cmp_i64);
    printf("  lm68_run (crop + 112x112 net + post-processing), %s: median %.3f ms, min %.3f ms\n",
           nn_backend_name(g.be), (double)ns[RUNS / 2] / 1e6, (double)ns[0] / 1e6);
    free(im.rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump),        cmocka_unit_test(test_reference_images),
        cmocka_unit_test(test_ref_backend), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_arena),       cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
