/* The eye signal end to end (face_stream_*: tracking, FaceMesh, Iris, the
 * eye-state machine) through the engine's public API, on real data:
 *  1. the labelled clips (shared/data/faces/video/<clip>/labels.json), each as one
 *     stream at 10 fps with the default parameters (chosen by
 *     tools/tune_eyes.py): >= 95% of the closed frames found, <= 1% of the
 *     open frames called closed (`half_closed` frames count neither way),
 *     every labelled blink found (one detected blink accounts for one
 *     labelled blink), no wink counted as a blink, no blink where none is
 *     labelled; and tracking: BlazeFace runs on the first frame only;
 *  2. bad input: corrupt images (the stream goes on), images without a face,
 *     faces cut by the frame's edge, tiny faces, degenerate image sizes: no
 *     crash, no blink, every reported point finite;
 *  3. stream semantics: a different face is flagged `changed` and resets the
 *     baselines; a long gap does too; no heap allocation per frame.
 * FA_TEST_QUICK=1 (sanitizer builds) runs two short clips in part 1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"
#include "testutil.h"

#define MAX_FRAMES 200
#define MAX_BLINKS 64

struct fixture {
    struct nn_backend *be;
    struct face_models *m;
    struct face_worker *w;
    bool quick;
};

static struct fixture F;

static int setup(void **state)
{
    (void)state;
    struct fa_errinfo info = {{0}};
    const char *q = getenv("FA_TEST_QUICK");
    F.quick = q != NULL && *q && strcmp(q, "0") != 0;
    if (nn_backend_new(NN_BACKEND_FAST, &F.be) != FA_OK)
        return -1;
    if (face_models_load(tu_models_dir(), F.be, FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS,
                         &F.m, &info) != FA_OK) {
        fprintf(stderr, "models: %s\n", info.what);
        return -1;
    }
    if (face_worker_new(F.m, &F.w) != FA_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    face_worker_free(F.w);
    face_models_free(F.m);
    nn_backend_free(F.be);
    return 0;
}

static struct img *load(const char *rel)
{
    char path[1024];
    struct img *im = NULL;
    const struct img_limits lim = {0};
    enum fa_status rc = img_load_file(tu_shared_path(path, sizeof path, rel), &lim, &im);
    if (rc != FA_OK)
        fprintf(stderr, "%s: %s\n", rel, fa_status_str(rc));
    assert_int_equal(rc, FA_OK);
    return im;
}

/* Every number a frame reports is finite; a face's points are near the
 * image (FaceMesh may place points a little outside a cut face). */
static void check_frame(const struct face_stream_frame *fr, const struct img *im)
{
    if (!fr->face) {
        assert_false(fr->eyes.closed);
        return;
    }
    const struct face_mesh *f = &fr->mesh;
    double span = 4.0 * (im->w > im->h ? im->w : im->h);
    for (int i = 0; i < FACE_MESH_POINTS; i++)
        for (int c = 0; c < 3; c++)
            assert_true(isfinite(f->pts[i][c]));
    for (int i = 0; i < FACE_MESH_POINTS; i++)
        assert_true(fabs(f->pts[i][0]) < span && fabs(f->pts[i][1]) < span);
    for (int s = 0; s < 2; s++) {
        assert_true(isfinite(f->eye[s].ratio) && f->eye[s].ratio >= 0);
        for (int i = 0; i < FACE_EYE_CONTOUR; i++)
            assert_true(isfinite(f->eye[s].contour[i][0]) && isfinite(f->eye[s].contour[i][1]));
        assert_true(isfinite(fr->eyes.relative[s]));
    }
    assert_true(isfinite(f->box.x) && f->box.w > 0 && f->box.h > 0);
}

/* --------------------------------------------------- 1. labelled clips */

struct tally {
    int closed, closed_found, open, open_false, blinks, blinks_found, wink_blinks, false_blinks;
    int frames, detector_runs;
};

static bool in_ranges(const json_t *ranges, int64_t f, int64_t slack)
{
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        int64_t a = json_integer_value(json_array_get(r, 0));
        int64_t b = json_integer_value(json_array_get(r, 1));
        if (f >= a - slack && f <= b + slack)
            return true;
    }
    return false;
}

static bool in_list(const json_t *list, int64_t f)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_integer_value(v) == f)
            return true;
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_clip(const char *clip, struct tally *t)
{
    char rel[512], path[1024];
    json_error_t err;
    snprintf(rel, sizeof rel, "data/faces/video/%s/labels.json", clip);
    json_t *labels = json_load_file(tu_shared_path(path, sizeof path, rel), 0, &err);
    assert_non_null(labels);
    const json_t *blinks = json_object_get(labels, "blinks");
    const json_t *winks = json_object_get(labels, "winks");
    const json_t *half = json_object_get(labels, "half_closed");
    static json_t *empty;
    if (empty == NULL)
        empty = json_array();
    if (winks == NULL)
        winks = empty;
    if (half == NULL)
        half = empty;
    int nframes = (int)json_integer_value(json_object_get(labels, "frames"));
    assert_true(nframes > 0 && nframes <= MAX_FRAMES);

    static struct face_stream s;
    static struct face_stream_frame fr;
    int64_t det[MAX_BLINKS][2];
    int ndet = 0;
    struct tally c = {0};
    face_stream_init(&s, NULL);
    for (int n = 1; n <= nframes; n++) {
        snprintf(rel, sizeof rel, "data/faces/video/%s/frames/%04d.jpg", clip, n);
        struct img *im = load(rel);
        assert_int_equal(face_stream_update(F.m, F.w, &s, im, (int64_t)(n - 1) * 100, &fr), FA_OK);
        check_frame(&fr, im);
        img_free(im);
        assert_true(fr.face); /* every frame of these clips has a face */
        assert_int_equal(fr.eyes.frame, n);
        c.detector_runs += fr.detected;
        bool closed_lab = in_ranges(blinks, n, 0);
        bool wink_lab = in_ranges(winks, n, 0);
        bool half_lab = in_list(half, n);
        if (closed_lab) {
            c.closed++;
            c.closed_found += fr.eyes.closed;
        } else if (!wink_lab && !half_lab) {
            c.open++;
            c.open_false += fr.eyes.closed;
        }
        if (fr.eyes.blink) {
            assert_true(ndet < MAX_BLINKS);
            det[ndet][0] = fr.eyes.blink_first;
            det[ndet][1] = fr.eyes.blink_last;
            assert_true(det[ndet][0] <= det[ndet][1] && det[ndet][1] < n);
            ndet++;
        }
    }
    c.frames = nframes;
    /* one-to-one matching within a frame (labels are +-1 frame) */
    bool used[MAX_BLINKS] = {false};
    size_t i;
    json_t *r;
    json_array_foreach(blinks, i, r)
    {
        int64_t a = json_integer_value(json_array_get(r, 0));
        int64_t b = json_integer_value(json_array_get(r, 1));
        c.blinks++;
        for (int k = 0; k < ndet; k++) {
            if (!used[k] && det[k][0] <= b + 1 && det[k][1] >= a - 1) {
                used[k] = true;
                c.blinks_found++;
                break;
            }
        }
    }
    for (int k = 0; k < ndet; k++) {
        bool on_blink = false, on_half = false;
        for (int64_t f = det[k][0]; f <= det[k][1]; f++) {
            on_blink |= in_ranges(blinks, f, 1);
            on_half |= in_list(half, f);
        }
        if (on_blink)
            continue;
        bool on_wink = false;
        for (int64_t f = det[k][0]; f <= det[k][1]; f++)
            on_wink |= in_ranges(winks, f, 1);
        if (on_wink)
            c.wink_blinks++;
        else if (!on_half)
            c.false_blinks++;
    }
    fprintf(stderr,
            "  %-32s closed %d/%d, open called closed %d/%d, blinks %d/%d, winks as blinks %d, "
            "false blinks %d, detector on %d of %d frames\n",
            clip, c.closed_found, c.closed, c.open_false, c.open, c.blinks_found, c.blinks,
            c.wink_blinks, c.false_blinks, c.detector_runs, c.frames);
    /* per clip: every blink, no wink or false blink, tracking holds */
    assert_int_equal(c.blinks_found, c.blinks);
    assert_int_equal(c.wink_blinks, 0);
    assert_int_equal(c.false_blinks, 0);
    assert_int_equal(c.detector_runs, 1);
    t->closed += c.closed;
    t->closed_found += c.closed_found;
    t->open += c.open;
    t->open_false += c.open_false;
    t->blinks += c.blinks;
    t->blinks_found += c.blinks_found;
    t->wink_blinks += c.wink_blinks;
    t->false_blinks += c.false_blinks;
    t->frames += c.frames;
    t->detector_runs += c.detector_runs;
    json_decref(labels);
}

static void test_labelled_clips(void **state)
{
    (void)state;
    char path[1024];
    char *names[32];
    int n = 0;
    DIR *d = opendir(tu_shared_path(path, sizeof path, "data/faces/video"));
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 32) {
        char lab[1400];
        snprintf(lab, sizeof lab, "%s/%s/labels.json", path, de->d_name);
        FILE *f = de->d_name[0] != '.' ? fopen(lab, "r") : NULL;
        if (f != NULL) {
            fclose(f);
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    assert_int_equal(n, 7);
    struct tally t = {0};
    for (int i = 0; i < n; i++) {
        if (!F.quick || strcmp(names[i], "older_woman_glasses_blink") == 0 ||
            strcmp(names[i], "studio_man_blink") == 0)
            run_clip(names[i], &t);
        free(names[i]);
    }
    fprintf(stderr,
            "all: closed frames found %d/%d (%.1f%%), open frames called closed %d/%d (%.2f%%), "
            "blinks %d/%d, winks as blinks %d, false blinks %d; BlazeFace on %d of %d frames\n",
            t.closed_found, t.closed, 100.0 * t.closed_found / t.closed, t.open_false, t.open,
            100.0 * t.open_false / t.open, t.blinks_found, t.blinks, t.wink_blinks, t.false_blinks,
            t.detector_runs, t.frames);
    assert_true(t.closed_found * 100 >= 95 * t.closed);
    assert_true(t.open_false * 100 <= t.open);
    assert_int_equal(t.blinks_found, t.blinks);
    assert_int_equal(t.wink_blinks, 0);
    assert_int_equal(t.false_blinks, 0);
}

/* ------------------------------------------------------- 2. bad input */

static struct img *crop_shift(const struct img *src, int32_t w, int32_t h, int32_t dx, int32_t dy)
{
    struct img *im = img_new(w, h);
    assert_non_null(im);
    memset(im->rgb, 0, (size_t)w * (size_t)h * 3);
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            int32_t sx = x - dx, sy = y - dy;
            if (sx >= 0 && sy >= 0 && sx < src->w && sy < src->h)
                memcpy(im->rgb + ((size_t)y * (size_t)w + (size_t)x) * 3,
                       src->rgb + ((size_t)sy * (size_t)src->w + (size_t)sx) * 3, 3);
        }
    return im;
}

/* Nearest-neighbour resize by 1/k. */
static struct img *shrink(const struct img *src, int32_t k)
{
    int32_t w = src->w / k > 0 ? src->w / k : 1, h = src->h / k > 0 ? src->h / k : 1;
    struct img *im = img_new(w, h);
    assert_non_null(im);
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++)
            memcpy(im->rgb + ((size_t)y * (size_t)w + (size_t)x) * 3,
                   src->rgb + ((size_t)(y * k) * (size_t)src->w + (size_t)(x * k)) * 3, 3);
    return im;
}

static void feed(struct face_stream *s, int64_t *t, const struct img *im,
                 struct face_stream_frame *fr)
{
    assert_int_equal(face_stream_update(F.m, F.w, s, im, *t, fr), FA_OK);
    check_frame(fr, im);
    assert_false(fr->eyes.blink);
    *t += 100;
}

static void test_bad_input(void **state)
{
    (void)state;
    static struct face_stream s;
    static struct face_stream_frame fr;
    int64_t t = 0;
    const struct img_limits lim = {0};
    char path[1024];
    face_stream_init(&s, NULL);

    /* a face, then corrupt frames: decoding fails, the stream goes on */
    struct img *face = load("data/faces/video/studio_man_blink/frames/0010.jpg");
    feed(&s, &t, face, &fr);
    assert_true(fr.face && fr.changed);
    size_t n = 0;
    FILE *f = fopen(
        tu_shared_path(path, sizeof path, "data/faces/video/studio_man_blink/frames/0011.jpg"),
        "rb");
    assert_non_null(f);
    static uint8_t bytes[1 << 20];
    n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    struct img *bad = NULL;
    for (size_t cut = 16; cut < n; cut += n / 5) {
        enum fa_status rc = img_decode(fa_bytes_of(bytes, cut), &lim, &bad);
        if (rc == FA_OK) { /* a truncated JPEG may decode grey at the bottom */
            feed(&s, &t, bad, &fr);
            img_free(bad);
            bad = NULL;
        } else {
            face_stream_skip(&s, t, &fr);
            t += 100;
            assert_false(fr.face);
        }
    }
    for (size_t i = 0; i < 4096; i++)
        bytes[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_not_equal(img_decode(fa_bytes_of(bytes, 4096), &lim, &bad), FA_OK);
    feed(&s, &t, face, &fr);
    assert_true(fr.face);

    /* no face: the noface/ images, and a blank frame (cats.jpg and
     * dogs.jpg hold an animal face that FaceMesh scores as human, see
     * tests/ref/test_face_mesh.c: only "no crash, no blink" there) */
    static const char *const noface[] = {"park.jpg",    "cat.jpg",   "cars.jpg", "cars2.jpg",
                                         "pilatus.jpg", "white.jpg", "cats.jpg", "dogs.jpg"};
    for (size_t i = 0; i < sizeof noface / sizeof noface[0]; i++) {
        char rel[256];
        bool animal = strcmp(noface[i], "cats.jpg") == 0 || strcmp(noface[i], "dogs.jpg") == 0;
        snprintf(rel, sizeof rel, "data/faces/noface/%s", noface[i]);
        struct img *im = load(rel);
        feed(&s, &t, im, &fr);
        if (!animal) {
            assert_false(fr.face);
            assert_true(fr.detected);
        }
        img_free(im);
    }
    struct img *black = img_new(640, 480);
    assert_non_null(black);
    memset(black->rgb, 0, 640 * 480 * 3);
    feed(&s, &t, black, &fr);
    assert_false(fr.face);

    /* faces cut by the frame's edge: the reference's hard cases, and a
     * clip frame slid out of the frame step by step while tracked */
    struct img *im = load("data/faces/hard/obama_partial_face.jpg");
    feed(&s, &t, im, &fr);
    img_free(im);
    im = load("data/faces/hard/obama_partial_face2.jpg");
    feed(&s, &t, im, &fr);
    img_free(im);
    face_stream_init(&s, NULL);
    for (int32_t dx = 0; dx <= 560; dx += 80) {
        struct img *sh = crop_shift(face, face->w, face->h, dx, dx / 4);
        feed(&s, &t, sh, &fr);
        if (dx == 0)
            assert_true(fr.face);
        img_free(sh);
    }
    assert_false(fr.face); /* gone at the end */
    for (int32_t dx = 0; dx >= -560; dx -= 80) {
        struct img *sh = crop_shift(face, face->w, face->h, dx, -dx / 3);
        feed(&s, &t, sh, &fr);
        img_free(sh);
    }

    /* tiny faces: the frame shrunk 8x and 16x, and as a 40 px patch of a
     * large black frame; degenerate image sizes */
    for (int32_t k = 8; k <= 64; k *= 2) {
        struct img *small = shrink(face, k);
        feed(&s, &t, small, &fr);
        struct img *patch = crop_shift(small, 1280, 720, 600, 300);
        feed(&s, &t, patch, &fr);
        img_free(patch);
        img_free(small);
    }
    static const int32_t sizes[][2] = {{1, 1}, {1, 500}, {500, 1}, {3, 2}, {4000, 2}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct img *odd = img_new(sizes[i][0], sizes[i][1]);
        assert_non_null(odd);
        memset(odd->rgb, 128, (size_t)sizes[i][0] * (size_t)sizes[i][1] * 3);
        feed(&s, &t, odd, &fr);
        assert_false(fr.face);
        img_free(odd);
    }
    /* an empty image is refused and leaves the stream as it was */
    struct img empty = {0, 0, NULL};
    struct face_stream before = s;
    assert_int_equal(face_stream_update(F.m, F.w, &s, &empty, t, &fr), FA_ERR_ARG);
    assert_memory_equal(&before, &s, sizeof s);
    img_free(black);
    img_free(face);
}

/* ------------------------------------------------ 3. stream semantics */

static void test_face_change_and_allocation(void **state)
{
    (void)state;
    static struct face_stream s;
    static struct face_stream_frame fr;
    int64_t t = 0;
    face_stream_init(&s, NULL);
    struct img *a = load("data/faces/video/studio_man_blink/frames/0010.jpg");
    struct img *a2 = load("data/faces/video/studio_man_blink/frames/0011.jpg");
    struct img *b = load("data/faces/video/older_woman_glasses_blink/frames/0020.jpg");
    struct img *black = img_new(a->w, a->h);
    assert_non_null(black);
    memset(black->rgb, 0, (size_t)a->w * (size_t)a->h * 3);

    feed(&s, &t, a, &fr);
    assert_true(fr.changed && fr.detected);
    assert_true(fr.eyes.relative[0] == 1.0 && fr.eyes.relative[1] == 1.0);
    feed(&s, &t, a2, &fr);
    assert_false(fr.changed);
    assert_false(fr.detected); /* tracked */
    assert_true(fr.mesh.det.score == 0.0f);

    /* no heap allocation for a tracked frame, a detected one, none */
    fa_alloc_fail_reset();
    long before = fa_alloc_count();
    feed(&s, &t, a, &fr);
    feed(&s, &t, b, &fr);
    feed(&s, &t, black, &fr);
    feed(&s, &t, a, &fr);
    assert_int_equal(fa_alloc_count(), before);

    /* lost, then the same face back soon in the same place: not new */
    face_stream_init(&s, NULL);
    feed(&s, &t, a, &fr);
    feed(&s, &t, a2, &fr);
    feed(&s, &t, black, &fr);
    assert_true(fr.lost && !fr.face);
    feed(&s, &t, black, &fr);
    assert_false(fr.lost);
    feed(&s, &t, a, &fr);
    assert_true(fr.face && fr.detected);
    assert_false(fr.changed);
    /* after a gap longer than reset_gap_ms (1 s): a new face, baselines reset */
    for (int i = 0; i < 12; i++)
        feed(&s, &t, black, &fr);
    feed(&s, &t, a, &fr);
    assert_true(fr.changed);
    assert_true(fr.eyes.relative[0] == 1.0 && fr.eyes.relative[1] == 1.0);
    /* a face found elsewhere right after the track was lost: new */
    struct img *moved = crop_shift(b, b->w, b->h, -230, 40);
    feed(&s, &t, a2, &fr);
    feed(&s, &t, black, &fr);
    feed(&s, &t, moved, &fr);
    assert_true(fr.face && fr.detected);
    assert_true(fr.changed);
    /* (a face swapped for another between two frames, where FaceMesh can
     * still fit the tracked crop, keeps the track: which person it is, is
     * for the descriptor, not for this geometric flag) */
    img_free(moved);
    img_free(black);
    img_free(a);
    img_free(a2);
    img_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labelled_clips),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_face_change_and_allocation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
