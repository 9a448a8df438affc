/* Private to face/: intersection over union and the two greedy non-maximum
 * suppressions of face-api.js, reproduced decision for decision: the tiny
 * detector's (ops/nonMaxSuppression.ts + ops/iou.ts: boxes as x, y, w, h,
 * ties broken in favour of the later candidate, no count limit) and the SSD's
 * (ssdMobilenetv1/nonMaxSuppression.ts: float32 corners normalised by
 * min/max, zero-area boxes never overlap, stable order, a count limit).
 * All arithmetic is in double, as JavaScript does it. Nothing here allocates:
 * the caller passes the scratch arrays. */
#ifndef FA_FACE_NMS_H
#define FA_FACE_NMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A face-api Box: left x, top y, width, height (right = x + w). */
struct nms_rect {
    double x, y, w, h;
};

/* ops/iou.ts: inter / (area_a + area_b - inter), with inter the product of
 * the clamped overlaps. NaN when both areas are 0. */
double nms_iou_rect(const struct nms_rect *a, const struct nms_rect *b);

/* The SSD IoU of two (ymin, xmin, ymax, xmax) float32 boxes: corners
 * normalised with min/max, 0 when either area is <= 0. */
double nms_iou_corners(const float a[4], const float b[4]);

/* Orders idx[0..n) by score[idx] descending; equal scores put the lower
 * index first, or the higher one when `later_first`. A total order, so the
 * result does not depend on the input order. tmp: n entries of scratch. */
void nms_sort_desc(const double *score, uint32_t *idx, size_t n, bool later_first, uint32_t *tmp);

/* Tiny-detector NMS over candidates 0..n-1: repeatedly pick the highest
 * score (ties: the later candidate), drop every remaining candidate whose
 * nms_iou_rect with it is not <= iou_max. Writes the picks in order to
 * keep[] (n entries suffice) and returns their count. scratch: 2n entries. */
size_t nms_tiny(const struct nms_rect *box, const double *score, size_t n, double iou_max,
                uint32_t *scratch, uint32_t *keep);

/* SSD NMS over n anchors: candidates are the anchors with score > min_score,
 * visited by descending score (ties: lower anchor first); a candidate is kept
 * when its nms_iou_corners with every kept box is <= iou_max, until max_keep
 * are kept. box: n x 4 floats. Writes anchor indices to keep[] (max_keep
 * entries) and returns their count. scratch: 2n entries. */
size_t nms_ssd(const float *box, const float *score, size_t n, double min_score, double iou_max,
               size_t max_keep, uint32_t *scratch, uint32_t *keep);

#endif
