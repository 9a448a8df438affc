/* Parity of the two face-api detectors (face/tiny.c, face/ssd.c) with the
 * JavaScript reference (shared/data/reference, TF.js cpu backend):
 *  1. layer by layer on the tensor dump of identities/kit_harington/02.jpg
 *     (its decoded pixels are in the dump, so no JPEG decoder is involved):
 *     the pre-processed inputs bit for bit, every dumped layer within a
 *     relative tolerance, the post-processing fed with the reference's raw
 *     outputs to within 1e-9;
 *  2. on every image of faceapi.json: same number of detections, in order,
 *     boxes within 1 px (or IoU >= 0.98), scores within 0.01;
 *  3. the loader's errors (a renamed or mis-shaped tensor names itself, every
 *     allocation failing in turn), the arena contract and no heap allocation
 *     per frame.
 * Backend: the fast one unless FACEAUTH_NN_BACKEND=ref; on the reference
 * backend (slow) and with FA_TEST_QUICK=1 only a few images are run. */
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
#include "base/arena.h"
#include "base/clock.h"
#include "face/ssd.h"
#include "face/tiny.h"
#include "img/img.h"
#include "nn/nn.h"
#include "refdata.h"
#include "testutil.h"

#define DUMP "data/reference/tensors"
#define DUMP_IMAGE "identities/kit_harington/02.jpg"
#define DUMP_W 630
#define DUMP_H 374
#define MAXBOX 128

/* Layer tolerance: max |ours - reference| <= LAYER_TOL * max |reference|.
 * TF.js's own two backends (cpu and wasm) differ by up to 1.5e-5 relative on
 * intermediate layers (faceapi-reference README); a different summation order
 * and the folded batch-norm stay within a few times that. */
#define LAYER_TOL 1e-4

struct fixture {
    struct nn_backend *be;
    struct nn_ctx *ctx;
    struct tiny_net *tiny;
    struct ssd_net *ssd;
    struct fa_arena arena;
    json_t *ref; /* faceapi.json */
    bool quick, ref_backend;
};

static struct fixture F;

/* ------------------------------------------------------------------ helpers */

/* A tensor of the dump as floats (NULL when the dump does not hold it). */
static float *dump_f32(const char *name, size_t *count)
{
    char rel[256], path[1024];
    size_t len = 0;
    snprintf(rel, sizeof rel, DUMP "/%s.f32.bin", name);
    float *p = tu_read_file(tu_shared_path(path, sizeof path, rel), &len);
    *count = len / sizeof(float);
    return p;
}

static const json_t *ref_entry(const char *image, const char *detector)
{
    const json_t *e = json_object_get(F.ref, image);
    return json_object_get(json_object_get(e, detector), "detections");
}

/* The maximum deviations of one image against the reference. */
struct dev {
    double box_px, score, min_iou;
};

static double iou(const struct face_box *a, double x, double y, double w, double h)
{
    double iw = fmin(a->x + a->w, x + w) - fmax(a->x, x);
    double ih = fmin(a->y + a->h, y + h) - fmax(a->y, y);
    double inter = (iw > 0 ? iw : 0) * (ih > 0 ? ih : 0);
    return inter / (a->w * a->h + w * h - inter);
}

/* Compare boxes[0..n) with the reference list, in order. Returns false (and
 * prints why) on a mismatch: count, a box off by more than box_tol px with
 * IoU < 0.98, or a score off by more than score_tol. */
static bool compare(const char *what, const struct face_box *b, size_t n, const json_t *want,
                    double box_tol, double score_tol, struct dev *d)
{
    *d = (struct dev){0, 0, 1};
    if (n != json_array_size(want)) {
        printf("  %s: %zu detections, reference %zu\n", what, n, json_array_size(want));
        for (size_t i = 0; i < n; i++)
            printf("    ours %zu: %.2f %.2f %.2f %.2f  %.6f\n", i, b[i].x, b[i].y, b[i].w, b[i].h,
                   (double)b[i].score);
        for (size_t i = 0; i < json_array_size(want); i++) {
            const json_t *r = json_array_get(want, i);
            printf("    ref  %zu: %.2f %.2f %.2f %.2f  %.6f\n", i,
                   json_number_value(json_object_get(r, "x")),
                   json_number_value(json_object_get(r, "y")),
                   json_number_value(json_object_get(r, "width")),
                   json_number_value(json_object_get(r, "height")),
                   json_number_value(json_object_get(r, "score")));
        }
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(want, i);
        double x = json_number_value(json_object_get(r, "x"));
        double y = json_number_value(json_object_get(r, "y"));
        double w = json_number_value(json_object_get(r, "width"));
        double h = json_number_value(json_object_get(r, "height"));
        double s = json_number_value(json_object_get(r, "score"));
        double dev = fmax(fmax(fabs(b[i].x - x), fabs(b[i].y - y)),
                          fmax(fabs(b[i].w - w), fabs(b[i].h - h)));
        double ds = fabs((double)b[i].score - s), io = iou(&b[i], x, y, w, h);
        d->box_px = fmax(d->box_px, dev);
        d->score = fmax(d->score, ds);
        d->min_iou = fmin(d->min_iou, io);
        if ((dev > box_tol && io < 0.98) || ds > score_tol) {
            printf("  %s #%zu: box %.4f %.4f %.4f %.4f score %.7f; reference %.4f %.4f %.4f %.4f "
                   "%.7f\n",
                   what, i, b[i].x, b[i].y, b[i].w, b[i].h, (double)b[i].score, x, y, w, h, s);
            ok = false;
        }
    }
    return ok;
}

static struct img dump_image(uint8_t **pixels)
{
    char path[1024];
    size_t len = 0;
    *pixels = tu_read_file(tu_shared_path(path, sizeof path, DUMP "/image.rgb.u8.bin"), &len);
    assert_non_null(*pixels);
    assert_int_equal(len, (size_t)DUMP_W * DUMP_H * 3);
    return (struct img){.w = DUMP_W, .h = DUMP_H, .rgb = *pixels};
}

/* ------------------------------------------------------------ layer checks */

struct layer_check {
    const char *tap;          /* our tap name */
    const char *file;         /* dump tensor name */
    int32_t c_first, c_count; /* channel slice of our tensor (c_count 0: all) */
    double tol;               /* max |diff| / max |ref| */
    bool seen;
    double max_diff, max_ref;
};

struct tap_state {
    struct layer_check *checks;
    size_t n;
};

static void tap_fn(void *arg, const char *name, const struct nn_tensor *t)
{
    struct tap_state *st = arg;
    for (size_t i = 0; i < st->n; i++) {
        struct layer_check *c = &st->checks[i];
        if (strcmp(c->tap, name) != 0)
            continue;
        size_t count = 0;
        float *ref = dump_f32(c->file, &count);
        if (ref == NULL)
            fail_msg("%s: reference tensor %s missing", name, c->file);
        int32_t c0 = c->c_first, cn = c->c_count ? c->c_count : t->c;
        size_t pixels = (size_t)t->n * t->h * t->w;
        if (count != pixels * (size_t)cn)
            fail_msg("%s: %zu values, reference %s has %zu", name, pixels * cn, c->file, count);
        double md = 0, mr = 0;
        for (size_t p = 0; p < pixels; p++) {
            for (int32_t k = 0; k < cn; k++) {
                double want = ref[p * (size_t)cn + (size_t)k];
                double got = t->data[p * (size_t)t->c + (size_t)(c0 + k)];
                double d = fabs(got - want);
                if (!(d <= md)) /* NaN counts as a huge difference */
                    md = isnan(d) ? INFINITY : d;
                mr = fmax(mr, fabs(want));
            }
        }
        free(ref);
        c->seen = true;
        c->max_diff = md;
        c->max_ref = mr;
    }
}

static void check_layers(struct layer_check *c, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        double rel = c[i].max_ref > 0 ? c[i].max_diff / c[i].max_ref : c[i].max_diff;
        printf("  %-34s max|diff| %.3g  max|ref| %.3g  rel %.3g%s\n", c[i].file, c[i].max_diff,
               c[i].max_ref, rel, c[i].seen ? "" : "  (NOT SEEN)");
        if (!c[i].seen || !(rel <= c[i].tol))
            ok = false;
    }
    assert_true(ok);
}

static void test_tiny_layers(void **state)
{
    (void)state;
    struct layer_check c[] = {
        {"tiny.input", "tiny.input", 0, 0, 0.0, false, 0, 0},
        {"tiny.pool3", "tiny.pool3", 0, 0, LAYER_TOL, false, 0, 0},
        {"tiny.pool4", "tiny.pool4", 0, 0, LAYER_TOL, false, 0, 0},
        {"tiny.conv5", "tiny.conv5", 0, 0, LAYER_TOL, false, 0, 0},
        {"tiny.pool5", "tiny.pool5", 0, 0, LAYER_TOL, false, 0, 0},
        {"tiny.conv8", "tiny.conv8", 0, 0, LAYER_TOL, false, 0, 0},
        {"tiny.conv8", "tiny.output", 0, 0, LAYER_TOL, false, 0, 0},
    };
    struct tap_state st = {c, sizeof c / sizeof c[0]};
    struct tiny_tap tap = {tap_fn, &st};
    uint8_t *px;
    struct img im = dump_image(&px);
    struct face_box b[MAXBOX];
    size_t n = 0;
    struct dev d;

    assert_int_equal(tiny_run(F.tiny, F.ctx, &F.arena, &im, 0.5f, &tap, b, MAXBOX, &n), FA_OK);
    printf("tiny layers (%s backend):\n", nn_backend_name(F.be));
    check_layers(c, st.n);
    assert_true(compare("tiny", b, n, ref_entry(DUMP_IMAGE, "tiny_face_detector"), 1.0, 0.01, &d));
    printf("  detections: %zu, max box dev %.3g px, max score dev %.3g\n", n, d.box_px, d.score);
    free(px);
}

static void test_tiny_decode(void **state)
{
    (void)state;
    size_t count = 0;
    float *raw = dump_f32("tiny.output", &count);
    assert_non_null(raw);
    assert_int_equal(count, (size_t)TINY_GRID * TINY_GRID * TINY_ANCHORS * 5);
    void *scratch = malloc(tiny_decode_scratch_bytes());
    struct face_box b[MAXBOX];
    size_t n = 0;
    struct dev d;

    /* the reference's own raw output: the post-processing alone, exact */
    tiny_decode(raw, DUMP_W, DUMP_H, 0.5f, scratch, b, MAXBOX, &n);
    assert_true(
        compare("tiny decode", b, n, ref_entry(DUMP_IMAGE, "tiny_face_detector"), 1e-9, 1e-7, &d));
    printf("tiny decode of the reference output: max box dev %.3g px, score %.3g\n", d.box_px,
           d.score);
    /* max limits the count; a high threshold removes everything */
    if (n > 0) {
        size_t m = 99;
        tiny_decode(raw, DUMP_W, DUMP_H, 0.5f, scratch, b, 0, &m);
        assert_int_equal(m, 0);
    }
    tiny_decode(raw, DUMP_W, DUMP_H, 0.999999f, scratch, b, MAXBOX, &n);
    assert_int_equal(n, 0);
    free(scratch);
    free(raw);
}

static void test_ssd_layers(void **state)
{
    (void)state;
    struct layer_check c[32];
    size_t nc = 0;
    char files[32][64], taps[32][64];
#define ADD(tapname, file, c0, cn, tl)                                                             \
    do {                                                                                           \
        snprintf(taps[nc], sizeof taps[nc], "%s", tapname);                                        \
        snprintf(files[nc], sizeof files[nc], "%s", file);                                         \
        c[nc] = (struct layer_check){taps[nc], files[nc], c0, cn, tl, false, 0, 0};                \
        nc++;                                                                                      \
    } while (0)
    ADD("ssd.input", "ssd.input", 0, 0, 0.0);
    ADD("ssd.mobilenet.conv_12.depthwise", "ssd.mobilenet.conv_12.depthwise", 0, 0, LAYER_TOL);
    ADD("ssd.mobilenet.conv_13.pointwise", "ssd.mobilenet.conv_13.pointwise", 0, 0, LAYER_TOL);
    for (int j = 0; j < 8; j++) {
        char n[64];
        snprintf(n, sizeof n, "ssd.prediction.conv_%d", j);
        ADD(n, n, 0, 0, LAYER_TOL);
    }
    static const int anchors[6] = {3, 6, 6, 6, 6, 6};
    for (int k = 0; k < 6; k++) {
        char t[64], f[64];
        snprintf(t, sizeof t, "ssd.box_predictor_%d", k);
        snprintf(f, sizeof f, "ssd.box_predictor_%d.box_encoding", k);
        ADD(t, f, 0, 4 * anchors[k], LAYER_TOL);
        snprintf(f, sizeof f, "ssd.box_predictor_%d.class_logits", k);
        ADD(t, f, 4 * anchors[k], 3 * anchors[k], LAYER_TOL);
    }
    ADD("ssd.box_encodings", "ssd.box_encodings", 0, 0, LAYER_TOL);
    ADD("ssd.class_logits", "ssd.class_logits", 0, 0, LAYER_TOL);
    ADD("ssd.output.boxes", "ssd.output.boxes", 0, 0, LAYER_TOL);
    ADD("ssd.output.scores", "ssd.output.scores", 0, 0, LAYER_TOL);
#undef ADD
    struct tap_state st = {c, nc};
    struct ssd_tap tap = {tap_fn, &st};
    uint8_t *px;
    struct img im = dump_image(&px);
    struct face_box b[MAXBOX];
    size_t n = 0;
    struct dev d;

    assert_int_equal(ssd_run(F.ssd, F.ctx, &F.arena, &im, 0.5f, &tap, b, MAXBOX, &n), FA_OK);
    printf("ssd layers (%s backend):\n", nn_backend_name(F.be));
    check_layers(c, nc);
    assert_true(compare("ssd", b, n, ref_entry(DUMP_IMAGE, "ssd_mobilenetv1"), 1.0, 0.01, &d));
    printf("  detections: %zu, max box dev %.3g px, max score dev %.3g\n", n, d.box_px, d.score);
    free(px);
}

static void test_ssd_decode(void **state)
{
    (void)state;
    size_t ne = 0, nl = 0, na = 0;
    float *enc = dump_f32("ssd.box_encodings", &ne);
    float *logits = dump_f32("ssd.class_logits", &nl);
    float *anchors = dump_f32("ssd.anchors", &na);
    assert_non_null(enc);
    assert_non_null(logits);
    assert_non_null(anchors);
    assert_int_equal(ne, (size_t)SSD_ANCHORS * 4);
    assert_int_equal(nl, (size_t)SSD_ANCHORS * 3);
    assert_int_equal(na, (size_t)SSD_ANCHORS * 4);
    /* the anchors are the stored weight, as loaded */
    assert_memory_equal(ssd_anchors(F.ssd), anchors, na * sizeof(float));

    struct layer_check c[] = {
        {"ssd.output.boxes", "ssd.output.boxes", 0, 0, 0.0, false, 0, 0},
        {"ssd.output.scores", "ssd.output.scores", 0, 0, 0.0, false, 0, 0},
    };
    struct tap_state st = {c, 2};
    struct ssd_tap tap = {tap_fn, &st};
    void *scratch = malloc(ssd_decode_scratch_bytes());
    struct face_box b[MAXBOX];
    size_t n = 0;
    struct dev d;

    /* the reference's raw heads: decoding bit for bit, boxes to 1e-9 px */
    ssd_decode(F.ssd, enc, logits, DUMP_W, DUMP_H, 0.5f, scratch, &tap, b, MAXBOX, &n);
    printf("ssd decode of the reference heads:\n");
    check_layers(c, 2);
    assert_true(
        compare("ssd decode", b, n, ref_entry(DUMP_IMAGE, "ssd_mobilenetv1"), 1e-9, 0.0, &d));
    printf("  max box dev %.3g px, score %.3g\n", d.box_px, d.score);
    free(scratch);
    free(enc);
    free(logits);
    free(anchors);
}

/* ---------------------------------------------------------------- all images */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void test_all_images(void **state)
{
    (void)state;
    const char *key;
    json_t *val;
    size_t total = json_object_size(F.ref), idx = 0, failures = 0, runs = 0;
    /* every image normally; a spread of a few on the slow reference backend
     * (about 5 s per SSD run) or in quick (sanitizer) builds */
    size_t want = F.ref_backend ? (F.quick ? 2 : 4) : F.quick ? 6 : total;
    size_t stride = total / (want ? want : 1);
    double *t_tiny = calloc(total, sizeof(double)), *t_ssd = calloc(total, sizeof(double));
    struct dev worst_t = {0, 0, 1}, worst_s = {0, 0, 1};
    size_t faces_t = 0, faces_s = 0;

    if (stride == 0)
        stride = 1;
    printf("%-52s %9s %9s %9s %9s | %9s %9s %9s %9s\n", "image (tiny | ssd)", "n ours/ref",
           "box px", "score", "ms", "n ours/ref", "box px", "score", "ms");
    json_object_foreach(F.ref, key, val)
    {
        if (idx++ % stride != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/data/faces/%s", tu_shared_dir(), key);
        struct img *im = NULL;
        enum fa_status rc = img_load_file(path, NULL, &im);
        if (rc != FA_OK)
            fail_msg("%s: img_load_file: %s", key, fa_status_name(rc));
        assert_int_equal(im->w, json_integer_value(json_object_get(val, "width")));
        assert_int_equal(im->h, json_integer_value(json_object_get(val, "height")));

        struct face_box bt[MAXBOX], bs[MAXBOX];
        size_t nt = 0, ns = 0;
        struct dev dt, ds;
        int64_t t0 = fa_mono_ns();
        assert_int_equal(tiny_detect(F.tiny, F.ctx, &F.arena, im, 0.5f, bt, MAXBOX, &nt), FA_OK);
        int64_t t1 = fa_mono_ns();
        assert_int_equal(ssd_detect(F.ssd, F.ctx, &F.arena, im, 0.5f, bs, MAXBOX, &ns), FA_OK);
        int64_t t2 = fa_mono_ns();
        t_tiny[runs] = (double)(t1 - t0) / 1e6;
        t_ssd[runs] = (double)(t2 - t1) / 1e6;

        const json_t *rt =
            json_object_get(json_object_get(val, "tiny_face_detector"), "detections");
        const json_t *rs = json_object_get(json_object_get(val, "ssd_mobilenetv1"), "detections");
        bool ok_t = compare("tiny", bt, nt, rt, 1.0, 0.01, &dt);
        bool ok_s = compare("ssd", bs, ns, rs, 1.0, 0.01, &ds);
        printf("%-52s %4zu/%-4zu %9.2e %9.2e %9.1f | %4zu/%-4zu %9.2e %9.2e %9.1f%s\n", key, nt,
               json_array_size(rt), dt.box_px, dt.score, t_tiny[runs], ns, json_array_size(rs),
               ds.box_px, ds.score, t_ssd[runs], ok_t && ok_s ? "" : "  FAIL");
        failures += !ok_t + !ok_s;
        worst_t.box_px = fmax(worst_t.box_px, dt.box_px);
        worst_t.score = fmax(worst_t.score, dt.score);
        worst_t.min_iou = fmin(worst_t.min_iou, dt.min_iou);
        worst_s.box_px = fmax(worst_s.box_px, ds.box_px);
        worst_s.score = fmax(worst_s.score, ds.score);
        worst_s.min_iou = fmin(worst_s.min_iou, ds.min_iou);
        faces_t += nt;
        faces_s += ns;
        runs++;
        img_free(im);
    }
    printf("%zu images (%s backend): tiny %zu faces, max box dev %.3g px, min IoU %.6f, max score "
           "dev %.3g, median %.1f ms; ssd %zu faces, max box dev %.3g px, min IoU %.6f, max score "
           "dev %.3g, median %.1f ms\n",
           runs, nn_backend_name(F.be), faces_t, worst_t.box_px, worst_t.min_iou, worst_t.score,
           median(t_tiny, runs), faces_s, worst_s.box_px, worst_s.min_iou, worst_s.score,
           median(t_ssd, runs));
    free(t_tiny);
    free(t_ssd);
    assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------- contracts */

static void test_no_alloc_and_arena(void **state)
{
    (void)state;
    uint8_t *px;
    struct img im = dump_image(&px);
    struct face_box b[MAXBOX];
    size_t n = 0;

    /* a frame allocates nothing from the heap and returns the arena as it was */
    fa_alloc_fail_reset();
    size_t used = F.arena.used;
    long before = fa_alloc_count();
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &F.arena, &im, 0.5f, b, MAXBOX, &n), FA_OK);
    if (!F.ref_backend)
        assert_int_equal(ssd_detect(F.ssd, F.ctx, &F.arena, &im, 0.5f, b, MAXBOX, &n), FA_OK);
    assert_int_equal(fa_alloc_count(), before);
    assert_int_equal(F.arena.used, used);

    /* the advertised sizes are enough and needed */
    struct fa_arena small;
    assert_int_equal(fa_arena_init(&small, tiny_arena_bytes(F.tiny) - 64), FA_OK);
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &small, &im, 0.5f, b, MAXBOX, &n), FA_ERR_NOMEM);
    assert_int_equal(small.used, 0);
    fa_arena_fini(&small);
    assert_int_equal(fa_arena_init(&small, tiny_arena_bytes(F.tiny)), FA_OK);
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &small, &im, 0.5f, b, MAXBOX, &n), FA_OK);
    fa_arena_fini(&small);
    assert_int_equal(fa_arena_init(&small, ssd_arena_bytes(F.ssd) - 64), FA_OK);
    assert_int_equal(ssd_detect(F.ssd, F.ctx, &small, &im, 0.5f, b, MAXBOX, &n), FA_ERR_NOMEM);
    fa_arena_fini(&small);

    /* a 2000 x 1 strip: its height rounds to 0 inside either input square;
     * whatever is found must be finite */
    uint8_t *strip = calloc(2000 * 3, 1);
    for (size_t i = 0; i < 2000 * 3; i++)
        strip[i] = (uint8_t)(i * 7);
    struct img thin = {.w = 2000, .h = 1, .rgb = strip};
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &F.arena, &thin, 1e-30f, b, MAXBOX, &n), FA_OK);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(b[i].x + b[i].y + b[i].w + b[i].h));
    if (!F.ref_backend) {
        assert_int_equal(ssd_detect(F.ssd, F.ctx, &F.arena, &thin, 1e-30f, b, MAXBOX, &n), FA_OK);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++)
            assert_true(isfinite(b[i].x + b[i].y + b[i].w + b[i].h));
    }
    free(strip);

    /* bad arguments */
    struct img empty = {.w = 0, .h = 10, .rgb = px};
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &F.arena, &empty, 0.5f, b, MAXBOX, &n), FA_ERR_ARG);
    assert_int_equal(ssd_detect(F.ssd, F.ctx, &F.arena, &empty, 0.5f, b, MAXBOX, &n), FA_ERR_ARG);
    assert_int_equal(tiny_detect(F.tiny, F.ctx, &F.arena, &im, 0.5f, NULL, 4, &n), FA_ERR_ARG);
    assert_int_equal(ssd_detect(F.ssd, F.ctx, &F.arena, NULL, 0.5f, b, MAXBOX, &n), FA_ERR_ARG);
    free(px);
}

/* Copy the model folder's manifest with `from` replaced by `to` into a fresh
 * directory beside a link to the real .bin; return that directory. */
static void make_bad_models(char *dir, size_t dlen, const char *manifest, const char *bin,
                            const char *from, const char *to)
{
    char src[1024], dst[1200], link[1200];
    size_t len = 0;
    snprintf(dir, dlen, "/tmp/fa_det_badXXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/face-api/%s", tu_models_dir(), manifest);
    char *json = tu_read_file(src, &len);
    assert_non_null(json);
    char *hit = NULL;
    for (size_t i = 0; hit == NULL && i + strlen(from) <= len; i++) {
        if (memcmp(json + i, from, strlen(from)) == 0)
            hit = json + i;
    }
    assert_non_null(hit);
    assert_int_equal(strlen(from), strlen(to));
    memcpy(hit, to, strlen(to));
    snprintf(dst, sizeof dst, "%s/%s", dir, manifest);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(json, 1, len, f), len);
    fclose(f);
    free(json);
    snprintf(src, sizeof src, "%s/face-api/%s", tu_models_dir(), bin);
    char *abs = realpath(src, NULL);
    assert_non_null(abs);
    snprintf(link, sizeof link, "%s/%s", dir, bin);
    assert_int_equal(symlink(abs, link), 0);
    free(abs);
}

static void remove_bad_models(const char *dir, const char *manifest, const char *bin)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, manifest);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", dir, bin);
    unlink(p);
    rmdir(dir);
}

static void expect_load_error(bool ssd, const char *from, const char *to, const char *named)
{
    const char *manifest = ssd ? "ssd_mobilenetv1_model-weights_manifest.json"
                               : "tiny_face_detector_model-weights_manifest.json";
    const char *bin = ssd ? "ssd_mobilenetv1_model.bin" : "tiny_face_detector_model.bin";
    char dir[64];
    struct fa_errinfo info = {{0}};
    enum fa_status rc;

    make_bad_models(dir, sizeof dir, manifest, bin, from, to);
    if (ssd) {
        struct ssd_net *net = NULL;
        rc = ssd_load(dir, F.be, &net, &info);
        assert_null(net);
    } else {
        struct tiny_net *net = NULL;
        rc = tiny_load(dir, F.be, &net, &info);
        assert_null(net);
    }
    remove_bad_models(dir, manifest, bin);
    printf("  %s -> %s: %s (%s)\n", from, to, fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_ERR_MODEL_TENSOR);
    assert_non_null(strstr(info.what, named));
}

static void test_load_errors(void **state)
{
    (void)state;
    struct fa_errinfo info = {{0}};
    struct tiny_net *tn = NULL;
    struct ssd_net *sn = NULL;

    assert_int_equal(tiny_load("/nonexistent", F.be, &tn, &info), FA_ERR_MODEL_MISSING);
    assert_int_equal(ssd_load("/nonexistent", F.be, &sn, &info), FA_ERR_MODEL_MISSING);
    assert_null(tn);
    assert_null(sn);
    /* a missing tensor (renamed), a mis-shaped one (same size, other shape) */
    expect_load_error(false, "\"conv3/bias\"", "\"conv3/biaz\"", "conv3/bias");
    expect_load_error(false, "[3,3,3,16]", "[3,3,16,3]", "conv0/filters");
    expect_load_error(true, "\"Output/extra_dim\"", "\"Output/extra_dix\"", "Output/extra_dim");
    expect_load_error(true, "BatchNorm/moving_variance\"", "BatchNorm/moving_varianc_\"",
                      "BatchNorm/moving_variance");
}

/* Every allocation of a load failing in turn: FA_ERR_NOMEM, nothing leaked
 * (ASan), and the load succeeds once enough allocations are allowed. The SSD
 * (several hundred allocations, each retry re-reads 5.6 MB) is sampled. */
static void test_load_nomem(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/face-api", tu_models_dir());
    for (int ssd = 0; ssd < 2; ssd++) {
        long step = ssd ? 17 : 1, n;
        enum fa_status rc = FA_ERR_NOMEM;
        for (n = 0; rc != FA_OK && n < 100000; n += step) {
            struct tiny_net *tn = NULL;
            struct ssd_net *sn = NULL;
            fa_alloc_fail_after(n);
            rc = ssd ? ssd_load(dir, F.be, &sn, NULL) : tiny_load(dir, F.be, &tn, NULL);
            fa_alloc_fail_reset();
            if (rc != FA_OK && rc != FA_ERR_NOMEM)
                fail_msg("%s load with %ld allocations: %s", ssd ? "ssd" : "tiny", n,
                         fa_status_name(rc));
            assert_true((rc == FA_OK) == (tn != NULL || sn != NULL));
            tiny_free(tn);
            ssd_free(sn);
        }
        printf("  %s: loads after %ld allocations\n", ssd ? "ssd" : "tiny", n - step);
        assert_int_equal(rc, FA_OK);
    }
}

/* ------------------------------------------------------------------ set-up */

static int setup(void **state)
{
    (void)state;
    char dir[1024], path[1024];
    struct fa_errinfo info = {{0}};
    const char *q = getenv("FA_TEST_QUICK");

    F.quick = q != NULL && *q && strcmp(q, "0") != 0;
    if (nn_backend_new(NN_BACKEND_FAST, &F.be) != FA_OK || nn_ctx_new(F.be, &F.ctx) != FA_OK)
        return -1;
    F.ref_backend = strcmp(nn_backend_name(F.be), "ref") == 0;
    snprintf(dir, sizeof dir, "%s/face-api", tu_models_dir());
    enum fa_status rc = tiny_load(dir, F.be, &F.tiny, &info);
    if (rc == FA_OK)
        rc = ssd_load(dir, F.be, &F.ssd, &info);
    if (rc != FA_OK) {
        fprintf(stderr, "load: %s: %s\n", fa_status_name(rc), info.what);
        return -1;
    }
    size_t need = tiny_arena_bytes(F.tiny);
    if (ssd_arena_bytes(F.ssd) > need)
        need = ssd_arena_bytes(F.ssd);
    printf("arena: tiny %.1f MiB, ssd %.1f MiB; backend %s%s\n",
           tiny_arena_bytes(F.tiny) / 1048576.0, ssd_arena_bytes(F.ssd) / 1048576.0,
           nn_backend_name(F.be), F.quick ? ", quick" : "");
    if (fa_arena_init(&F.arena, need) != FA_OK)
        return -1;
    json_error_t err;
    F.ref =
        json_load_file(tu_shared_path(path, sizeof path, "data/reference/faceapi.json"), 0, &err);
    if (F.ref == NULL) {
        fprintf(stderr, "faceapi.json: %s\n", err.text);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(F.ref);
    fa_arena_fini(&F.arena);
    tiny_free(F.tiny);
    ssd_free(F.ssd);
    nn_ctx_free(F.ctx);
    nn_backend_free(F.be);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_decode),        cmocka_unit_test(test_ssd_decode),
        cmocka_unit_test(test_tiny_layers),        cmocka_unit_test(test_ssd_layers),
        cmocka_unit_test(test_no_alloc_and_arena), cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_nomem),         cmocka_unit_test(test_all_images),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
