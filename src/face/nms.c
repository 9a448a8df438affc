/* face-api.js's IoU and non-maximum suppressions (see nms.h). Both NMS
 * variants are the same greedy loop over a sorted candidate list; they differ
 * in the IoU, in how ties are ordered and in the count limit. The sort is a
 * bottom-up merge sort on indices with a total order (score, then index), so
 * it reproduces JavaScript's stable Array.prototype.sort without allocating. */
#include "face/nms.h"

#include <string.h>

double nms_iou_rect(const struct nms_rect *a, const struct nms_rect *b)
{
    double ar = a->x + a->w, br = b->x + b->w;
    double ab = a->y + a->h, bb = b->y + b->h;
    double iw = (ar < br ? ar : br) - (a->x > b->x ? a->x : b->x);
    double ih = (ab < bb ? ab : bb) - (a->y > b->y ? a->y : b->y);
    if (!(iw > 0.0))
        iw = 0.0;
    if (!(ih > 0.0))
        ih = 0.0;
    double inter = iw * ih;
    return inter / (a->w * a->h + b->w * b->h - inter);
}

static inline double dmin(double a, double b)
{
    return a < b ? a : b;
}

static inline double dmax(double a, double b)
{
    return a > b ? a : b;
}

double nms_iou_corners(const float a[4], const float b[4])
{
    double ay0 = dmin(a[0], a[2]), ax0 = dmin(a[1], a[3]);
    double ay1 = dmax(a[0], a[2]), ax1 = dmax(a[1], a[3]);
    double by0 = dmin(b[0], b[2]), bx0 = dmin(b[1], b[3]);
    double by1 = dmax(b[0], b[2]), bx1 = dmax(b[1], b[3]);
    double area_a = (ay1 - ay0) * (ax1 - ax0);
    double area_b = (by1 - by0) * (bx1 - bx0);
    if (area_a <= 0.0 || area_b <= 0.0)
        return 0.0;
    double ih = dmax(dmin(ay1, by1) - dmax(ay0, by0), 0.0);
    double iw = dmax(dmin(ax1, bx1) - dmax(ax0, bx0), 0.0);
    double inter = ih * iw;
    return inter / (area_a + area_b - inter);
}

/* Scores come as double (tiny) or float (SSD); exactly one of sd, sf is set. */
struct keys {
    const double *sd;
    const float *sf;
    bool later_first;
};

static inline double key(const struct keys *k, uint32_t i)
{
    return k->sd != NULL ? k->sd[i] : (double)k->sf[i];
}

/* True when candidate a goes before candidate b. */
static inline bool before(const struct keys *k, uint32_t a, uint32_t b)
{
    double sa = key(k, a), sb = key(k, b);
    if (sa != sb)
        return sa > sb;
    return k->later_first ? a > b : a < b;
}

static void sort_idx(const struct keys *k, uint32_t *idx, size_t n, uint32_t *tmp)
{
    uint32_t *src = idx, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = before(k, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof *idx);
}

void nms_sort_desc(const double *score, uint32_t *idx, size_t n, bool later_first, uint32_t *tmp)
{
    struct keys k = {.sd = score, .later_first = later_first};
    sort_idx(&k, idx, n, tmp);
}

size_t nms_tiny(const struct nms_rect *box, const double *score, size_t n, double iou_max,
                uint32_t *scratch, uint32_t *keep)
{
    uint32_t *order = scratch, *tmp = scratch + n;
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    /* face-api sorts ascending (stable) and pops the last: the highest score,
     * and among equal scores the later candidate. */
    nms_sort_desc(score, order, n, true, tmp);
    size_t kept = 0, left = n;
    uint32_t *rest = order;
    while (left > 0) {
        uint32_t cur = rest[0];
        keep[kept++] = cur;
        size_t m = 0;
        for (size_t i = 1; i < left; i++) {
            /* kept only when IoU <= iou_max (so NaN drops the candidate) */
            if (nms_iou_rect(&box[cur], &box[rest[i]]) <= iou_max)
                rest[m++] = rest[i];
        }
        left = m;
    }
    return kept;
}

size_t nms_ssd(const float *box, const float *score, size_t n, double min_score, double iou_max,
               size_t max_keep, uint32_t *scratch, uint32_t *keep)
{
    uint32_t *cand = scratch, *tmp = scratch + n;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if ((double)score[i] > min_score)
            cand[nc++] = (uint32_t)i;
    }
    struct keys k = {.sf = score, .later_first = false};
    sort_idx(&k, cand, nc, tmp);
    size_t limit = max_keep < n ? max_keep : n;
    size_t kept = 0;
    for (size_t c = 0; c < nc && kept < limit; c++) {
        const float *b = &box[(size_t)cand[c] * 4];
        bool ok = true;
        for (size_t j = kept; j-- > 0;) {
            if (!(nms_iou_corners(b, &box[(size_t)keep[j] * 4]) <= iou_max)) {
                ok = false;
                break;
            }
        }
        if (ok)
            keep[kept++] = cand[c];
    }
    return kept;
}
