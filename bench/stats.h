/* Samples of one timed stage and their percentiles, for the benchmarks.
 * A fixed-size array: the benchmarks know their sample counts up front. */
#ifndef FA_BENCH_STATS_H
#define FA_BENCH_STATS_H

#include <stdlib.h>

#define STATS_MAX 16384

struct samples {
    double v[STATS_MAX];
    int n;
};

static inline void samples_add(struct samples *s, double x)
{
    if (s->n < STATS_MAX)
        s->v[s->n++] = x;
}

static int samples_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0..1, nearest rank); 0 when empty. Sorts in place. */
static inline double samples_pct(struct samples *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, (size_t)s->n, sizeof s->v[0], samples_cmp);
    return s->v[(int)(p * (s->n - 1) + 0.5)];
}

#endif
