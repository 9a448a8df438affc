/* face/nms.c against hand-computed cases: both IoU formulas (clamped
 * overlaps, min/max-normalised corners, zero areas), the sort's tie rules
 * against a naive stable insertion sort, and every decision rule of the two
 * face-api NMS variants: inclusive IoU threshold, strict score threshold,
 * tie order (later candidate first for tiny, anchor order for SSD), the
 * greedy chain (a suppressed box suppresses nothing) and the count limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "face/nms.h"

static void test_iou_rect(void **state)
{
    (void)state;
    struct nms_rect a = {0, 0, 10, 10}, b = {5, 0, 10, 10}, c = {10, 0, 5, 5}, d = {2, 2, 2, 2};
    assert_true(fabs(nms_iou_rect(&a, &b) - 50.0 / 150.0) < 1e-15);
    assert_true(nms_iou_rect(&a, &b) == nms_iou_rect(&b, &a));
    assert_true(nms_iou_rect(&a, &a) == 1.0);
    /* touching edges, disjoint boxes: no overlap */
    assert_true(nms_iou_rect(&a, &c) == 0.0);
    struct nms_rect far = {100, 100, 1, 1};
    assert_true(nms_iou_rect(&a, &far) == 0.0);
    /* containment: inter = small area */
    assert_true(fabs(nms_iou_rect(&a, &d) - 4.0 / 100.0) < 1e-15);
    /* negative coordinates (tiny boxes are not clipped) */
    struct nms_rect e = {-4, -4, 8, 8}, f = {0, 0, 8, 8};
    assert_true(fabs(nms_iou_rect(&e, &f) - 16.0 / 112.0) < 1e-15);
}

static void test_iou_corners(void **state)
{
    (void)state;
    const float a[4] = {0.0f, 0.0f, 1.0f, 1.0f};
    const float b[4] = {0.0f, 0.5f, 1.0f, 1.5f};
    const float b_swapped[4] = {1.0f, 1.5f, 0.0f, 0.5f}; /* ymax, xmax first */
    assert_true(fabs(nms_iou_corners(a, b) - 0.5 / 1.5) < 1e-15);
    assert_true(nms_iou_corners(a, b_swapped) == nms_iou_corners(a, b));
    assert_true(nms_iou_corners(a, a) == 1.0);
    /* a zero-area box overlaps nothing, not even itself */
    const float flat[4] = {0.2f, 0.2f, 0.2f, 0.8f};
    assert_true(nms_iou_corners(flat, flat) == 0.0);
    assert_true(nms_iou_corners(a, flat) == 0.0);
    const float apart[4] = {2.0f, 2.0f, 3.0f, 3.0f};
    assert_true(nms_iou_corners(a, apart) == 0.0);
}

/* Stable insertion sort by descending score; `later_first` reverses the
 * input order first so that stability favours the later index. */
static void naive_sort(const double *score, uint32_t *idx, size_t n, bool later_first)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)(later_first ? n - 1 - i : i);
    for (size_t i = 1; i < n; i++) {
        uint32_t v = idx[i];
        size_t j = i;
        while (j > 0 && score[idx[j - 1]] < score[v]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

static void test_sort_ties(void **state)
{
    (void)state;
    enum { N = 257 };
    double score[N];
    uint32_t idx[N], tmp[N], want[N];
    srand(7);
    for (int round = 0; round < 20; round++) {
        size_t n = (size_t)(1 + rand() % N);
        for (size_t i = 0; i < n; i++)
            score[i] = (double)(rand() % 9) / 8.0; /* many ties */
        for (int lf = 0; lf < 2; lf++) {
            for (size_t i = 0; i < n; i++)
                idx[n - 1 - i] = (uint32_t)i; /* input order must not matter */
            nms_sort_desc(score, idx, n, lf, tmp);
            naive_sort(score, want, n, lf);
            assert_memory_equal(idx, want, n * sizeof *idx);
        }
    }
}

static void test_tiny_tie_and_threshold(void **state)
{
    (void)state;
    uint32_t scratch[16], keep[8];
    /* two identical boxes with equal scores: face-api pops the later one */
    struct nms_rect same[2] = {{0, 0, 10, 10}, {0, 0, 10, 10}};
    double eq[2] = {0.9, 0.9};
    assert_int_equal(nms_tiny(same, eq, 2, 0.4, scratch, keep), 1);
    assert_int_equal(keep[0], 1);

    /* IoU exactly 0.4 (inter 2, union 5) is kept: suppression needs > 0.4 */
    struct nms_rect ab[2] = {{0, 0, 4, 1}, {2, 0, 3, 1}};
    double s2[2] = {0.6, 0.7};
    assert_true(nms_iou_rect(&ab[0], &ab[1]) == 0.4);
    assert_int_equal(nms_tiny(ab, s2, 2, 0.4, scratch, keep), 2);
    assert_int_equal(keep[0], 1); /* highest score first */
    assert_int_equal(keep[1], 0);
    /* a little more overlap: suppressed */
    ab[1].x = 1.9;
    assert_int_equal(nms_tiny(ab, s2, 2, 0.4, scratch, keep), 1);
    assert_int_equal(keep[0], 1);
}

static void test_tiny_chain(void **state)
{
    (void)state;
    uint32_t scratch[16], keep[8];
    /* A suppresses B; B would suppress C, but B is gone, so C stays */
    struct nms_rect r[3] = {{0, 0, 10, 10}, {4, 0, 10, 10}, {8, 0, 10, 10}};
    double s[3] = {0.9, 0.8, 0.7};
    assert_true(nms_iou_rect(&r[0], &r[1]) > 0.4);
    assert_true(nms_iou_rect(&r[1], &r[2]) > 0.4);
    assert_true(nms_iou_rect(&r[0], &r[2]) <= 0.4);
    assert_int_equal(nms_tiny(r, s, 3, 0.4, scratch, keep), 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 2);
    /* no candidates */
    assert_int_equal(nms_tiny(r, s, 0, 0.4, scratch, keep), 0);
}

static void test_ssd_rules(void **state)
{
    (void)state;
    uint32_t scratch[16], keep[8];
    /* anchors: 0 and 1 identical with equal scores; 2 half-overlapping 0;
     * 3 exactly at the threshold; 4 below min score */
    const float box[5 * 4] = {
        0.0f, 0.0f, 1.0f, 1.0f, /* 0 */
        0.0f, 0.0f, 1.0f, 1.0f, /* 1 */
        0.0f, 0.5f, 1.0f, 1.5f, /* 2: IoU with 0 = 1/3 */
        0.0f, 2.0f, 1.0f, 4.0f, /* 3: far away */
        0.0f, 2.0f, 1.0f, 3.0f, /* 4: inside 3 */
    };
    const float score[5] = {0.8f, 0.8f, 0.7f, 0.9f, 0.5f};
    size_t n = nms_ssd(box, score, 5, 0.5, 0.5, 100, scratch, keep);
    /* 4 is not > 0.5; among the tied 0 and 1 the lower anchor wins */
    assert_int_equal(n, 3);
    assert_int_equal(keep[0], 3);
    assert_int_equal(keep[1], 0);
    assert_int_equal(keep[2], 2);
    /* the count limit */
    assert_int_equal(nms_ssd(box, score, 5, 0.5, 0.5, 2, scratch, keep), 2);
    assert_int_equal(keep[1], 0);
    /* IoU exactly 0.5 is kept; a lower threshold suppresses */
    const float half[2 * 4] = {0.0f, 0.0f, 1.0f, 3.0f, 0.0f, 1.0f, 1.0f, 4.0f};
    const float hs[2] = {0.9f, 0.8f};
    assert_true(nms_iou_corners(&half[0], &half[4]) == 0.5);
    assert_int_equal(nms_ssd(half, hs, 2, 0.5, 0.5, 100, scratch, keep), 2);
    assert_int_equal(nms_ssd(half, hs, 2, 0.5, 0.49, 100, scratch, keep), 1);
    /* degenerate boxes never suppress each other */
    const float flat[2 * 4] = {0.5f, 0.1f, 0.5f, 0.9f, 0.5f, 0.1f, 0.5f, 0.9f};
    assert_int_equal(nms_ssd(flat, hs, 2, 0.5, 0.5, 100, scratch, keep), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iou_rect),   cmocka_unit_test(test_iou_corners),
        cmocka_unit_test(test_sort_ties),  cmocka_unit_test(test_tiny_tie_and_threshold),
        cmocka_unit_test(test_tiny_chain), cmocka_unit_test(test_ssd_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
