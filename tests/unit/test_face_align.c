/* The face-api crops of face/align.c: hand-computed cases (clipping at each
 * border, flooring, the dlib square and its crop cap), hostile inputs
 * (NaN, infinities, huge, degenerate: FA_ERR_ARG, never a crash), and every
 * face of the reference file: the landmark crop from the SSD box, the dlib
 * square from the reference landmarks and its clipped crop must equal
 * face-api's integer rectangles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>

#include "face/align.h"
#include "refdata.h"
#include "testutil.h"

static void expect_rect(struct prep_rect r, int32_t x, int32_t y, int32_t w, int32_t h)
{
    if (r.x != x || r.y != y || r.w != w || r.h != h)
        fail_msg("rect (%d,%d,%d,%d), want (%d,%d,%d,%d)", r.x, r.y, r.w, r.h, x, y, w, h);
}

static void test_clip_inside(void **state)
{
    (void)state;
    struct prep_rect r;
    /* the tensor dump's SSD box (tensors.json notes) */
    assert_int_equal(align_clip(316.33715093135834, 76.89710722471538, 149.9536907672882,
                                201.859957393847, 630, 374, &r),
                     FA_OK);
    expect_rect(r, 316, 76, 149, 201);
    /* each value floored separately: x + w = 12.9 + 10.9 = 23.8, width 10 */
    assert_int_equal(align_clip(12.9, 3.5, 10.9, 7.99, 100, 100, &r), FA_OK);
    expect_rect(r, 12, 3, 10, 7);
}

static void test_clip_borders(void **state)
{
    (void)state;
    struct prep_rect r;
    /* left/top outside: the origin moves to 0, the size shrinks by as much */
    assert_int_equal(align_clip(-10.5, -3.0, 50.0, 40.0, 100, 100, &r), FA_OK);
    expect_rect(r, 0, 0, 39, 37);
    /* right/bottom outside: cut at the image edge */
    assert_int_equal(align_clip(90.7, 80.2, 20.0, 30.0, 100, 90, &r), FA_OK);
    expect_rect(r, 90, 80, 9, 9);
    /* the whole image, and a box larger than it on every side */
    assert_int_equal(align_clip(0, 0, 630, 374, 630, 374, &r), FA_OK);
    expect_rect(r, 0, 0, 630, 374);
    assert_int_equal(align_clip(-1e300, -1e300, 3e300, 3e300, 630, 374, &r), FA_OK);
    expect_rect(r, 0, 0, 630, 374);
    /* exactly one pixel left */
    assert_int_equal(align_clip(99.0, 0.0, 5.0, 1.0, 100, 100, &r), FA_OK);
    expect_rect(r, 99, 0, 1, 1);
}

static void test_clip_bad(void **state)
{
    (void)state;
    struct prep_rect r = {7, 7, 7, 7};
    const double bad[][4] = {
        {NAN, 0, 10, 10},    {0, NAN, 10, 10},     {0, 0, NAN, 10},      {0, 0, 10, NAN},
        {INFINITY, 0, 1, 1}, {0, -INFINITY, 1, 1}, {0, 0, INFINITY, 1},  {200, 0, 10, 10},
        {0, 200, 10, 10},    {99.5, 0, 10, 10},    {0, 0, 0.99, 10},     {0, 0, 10, 0},
        {10, 10, -5, 20},    {-20, 0, 10, 10},     {1e300, 1e300, 1, 1}, {-5, -5, 5.5, 50},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (align_clip(bad[i][0], bad[i][1], bad[i][2], bad[i][3], 100, 100, &r) != FA_ERR_ARG)
            fail_msg("case %zu accepted", i);
    }
    assert_int_equal(align_clip(0, 0, 10, 10, 0, 100, &r), FA_ERR_ARG);
    assert_int_equal(align_clip(0, 0, 10, 10, 100, -1, &r), FA_ERR_ARG);
    /* untouched on failure */
    expect_rect(r, 7, 7, 7, 7);
}

static void fill_face(float pts[FACE_LANDMARKS][2], float lex, float ley, float rex, float rey,
                      float mox, float moy)
{
    for (int i = 0; i < FACE_LANDMARKS; i++) {
        pts[i][0] = 1000.0f; /* jaw, brows, nose: unused by the alignment */
        pts[i][1] = -1000.0f;
    }
    /* spread each group symmetrically around its centre */
    for (int i = 36; i < 42; i++) {
        pts[i][0] = lex + (float)(i - 36 < 3 ? -(i - 35) : (i - 38));
        pts[i][1] = ley;
    }
    for (int i = 42; i < 48; i++) {
        pts[i][0] = rex;
        pts[i][1] = rey + (float)(i - 42 < 3 ? -(i - 41) : (i - 44));
    }
    for (int i = 48; i < 68; i++) {
        pts[i][0] = mox + (float)((i & 1) ? 4 : -4);
        pts[i][1] = moy;
    }
}

static void test_dlib(void **state)
{
    (void)state;
    float pts[FACE_LANDMARKS][2];
    struct face_box b;
    /* eyes (40,50), (60,50), mouth (50,80): distance sqrt(1000) = 31.62,
     * size floor(70.27) = 70, ref (50,60): x = floor(15), y = floor(29.9) */
    fill_face(pts, 40, 50, 60, 50, 50, 80);
    assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &b), FA_OK);
    assert_true(b.x == 15.0 && b.y == 29.0 && b.w == 70.0 && b.h == 70.0);
    /* the cap with the landmark crop: min(70, 40 + 15), min(70, 200 + 29) */
    assert_int_equal(align_dlib(pts, 40, 200, &b), FA_OK);
    assert_true(b.x == 15.0 && b.y == 29.0 && b.w == 55.0 && b.h == 70.0);
    /* near the top-left corner: x, y clamp at 0 */
    fill_face(pts, 5, 5, 25, 5, 15, 35);
    assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &b), FA_OK);
    assert_true(b.x == 0.0 && b.y == 0.0 && b.w == 70.0 && b.h == 70.0);
    assert_int_equal(align_dlib(pts, 30, 31, &b), FA_OK);
    assert_true(b.w == 30.0 && b.h == 31.0);
}

static void test_dlib_bad(void **state)
{
    (void)state;
    float pts[FACE_LANDMARKS][2];
    struct face_box b = {.x = 7};
    fill_face(pts, 40, 50, 60, 50, 50, 80);
    pts[40][1] = NAN;
    assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &b), FA_ERR_ARG);
    fill_face(pts, 40, 50, 60, 50, 50, 80);
    pts[60][0] = INFINITY;
    assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &b), FA_ERR_ARG);
    fill_face(pts, 40, 50, 60, 50, 50, 80);
    assert_int_equal(align_dlib(pts, NAN, 10, &b), FA_ERR_ARG);
    /* all three centres on one point: size 0 */
    fill_face(pts, 50, 50, 50, 50, 50, 50);
    assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &b), FA_ERR_ARG);
    /* huge coordinates: a square far outside every image, rejected by the clip */
    fill_face(pts, 3e38f, 3e38f, 3.1e38f, 3e38f, 3.05e38f, 3.2e38f);
    struct prep_rect r;
    if (align_dlib(pts, INFINITY, INFINITY, &b) == FA_OK)
        assert_int_equal(align_clip(b.x, b.y, b.w, b.h, 640, 480, &r), FA_ERR_ARG);
    assert_true(b.x == 7.0 || b.x > 1e30);
}

static void expect_rect_json(struct prep_rect r, const json_t *o, const char *img, size_t face,
                             const char *what)
{
    if (r.x != tu_json_num(o, "x") || r.y != tu_json_num(o, "y") ||
        r.w != tu_json_num(o, "width") || r.h != tu_json_num(o, "height"))
        fail_msg("%s face %zu %s: (%d,%d,%d,%d), face-api (%g,%g,%g,%g)", img, face, what, r.x, r.y,
                 r.w, r.h, tu_json_num(o, "x"), tu_json_num(o, "y"), tu_json_num(o, "width"),
                 tu_json_num(o, "height"));
}

/* Every face of the reference: the three rectangles equal face-api's. */
static void test_reference_rects(void **state)
{
    (void)state;
    char path[1024];
    json_error_t err;
    json_t *root =
        json_load_file(tu_shared_path(path, sizeof path, "data/reference/faceapi.json"), 0, &err);
    if (root == NULL)
        fail_msg("%s: %s", path, err.text);
    const char *key;
    json_t *res;
    size_t faces = 0, capped = 0, clipped = 0;
    json_object_foreach(root, key, res)
    {
        int32_t W = (int32_t)tu_json_num(res, "width"), H = (int32_t)tu_json_num(res, "height");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(res, "faces"), i, f)
        {
            const json_t *det = json_object_get(f, "detection");
            struct prep_rect lc, dc;
            assert_int_equal(align_clip(tu_json_num(det, "x"), tu_json_num(det, "y"),
                                        tu_json_num(det, "width"), tu_json_num(det, "height"), W, H,
                                        &lc),
                             FA_OK);
            expect_rect_json(lc, json_object_get(f, "landmark_crop"), key, i, "landmark_crop");

            float pts[FACE_LANDMARKS][2];
            const json_t *lm = json_object_get(f, "landmarks");
            assert_int_equal(json_array_size(lm), FACE_LANDMARKS);
            for (int p = 0; p < FACE_LANDMARKS; p++)
                for (int k = 0; k < 2; k++)
                    pts[p][k] = (float)json_number_value(
                        json_array_get(json_array_get(lm, (size_t)p), (size_t)k));
            struct face_box sq, plain;
            assert_int_equal(align_dlib(pts, lc.w, lc.h, &sq), FA_OK);
            assert_int_equal(align_dlib(pts, INFINITY, INFINITY, &plain), FA_OK);
            struct prep_rect sr = {(int32_t)sq.x, (int32_t)sq.y, (int32_t)sq.w, (int32_t)sq.h};
            expect_rect_json(sr, json_object_get(f, "dlib_rect"), key, i, "dlib_rect");
            capped += sq.w != plain.w || sq.h != plain.h;
            assert_int_equal(align_clip(sq.x, sq.y, sq.w, sq.h, W, H, &dc), FA_OK);
            expect_rect_json(dc, json_object_get(f, "descriptor_crop"), key, i, "descriptor_crop");
            clipped += dc.w != sr.w || dc.h != sr.h;
            faces++;
        }
    }
    json_decref(root);
    printf("reference: %zu faces, %zu squares capped by the landmark crop, %zu clipped by the "
           "image\n",
           faces, capped, clipped);
    /* the reference covers both quirks (ARCHITECTURE.md 8.2) */
    assert_true(faces >= 100 && capped > 0 && clipped > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_inside), cmocka_unit_test(test_clip_borders),
        cmocka_unit_test(test_clip_bad),    cmocka_unit_test(test_dlib),
        cmocka_unit_test(test_dlib_bad),    cmocka_unit_test(test_reference_rects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
