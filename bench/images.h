/* The images a benchmark runs on: files and directories (walked
 * recursively) from its command line, *.jpg, *.jpeg and *.png, in sorted
 * order; and the millisecond timer the benchmarks share. */
#ifndef FA_BENCH_IMAGES_H
#define FA_BENCH_IMAGES_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/clock.h"

#define IMAGES_MAX 2048

struct image_list {
    char *path[IMAGES_MAX];
    int n;
};

static inline int images_is_image(const char *n)
{
    const char *d = strrchr(n, '.');
    return d && (!strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg") || !strcasecmp(d, ".png"));
}

/* p: an image file, or a directory to walk; anything else is skipped. */
static inline void images_collect(struct image_list *l, const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        if (l->n < IMAGES_MAX && images_is_image(p))
            l->path[l->n++] = strdup(p);
        return;
    }
    DIR *d = opendir(p);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        int k = snprintf(sub, sizeof sub, "%s/%s", p, e->d_name);
        if (k > 0 && (size_t)k < sizeof sub) /* a longer path is skipped */
            images_collect(l, sub);
    }
    closedir(d);
}

static inline int images_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void images_sort(struct image_list *l)
{
    qsort(l->path, (size_t)l->n, sizeof l->path[0], images_cmp);
}

static inline void images_free(struct image_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->path[i]);
    l->n = 0;
}

static inline double ms_since(int64_t t0)
{
    return (double)(fa_mono_ns() - t0) / 1e6;
}

#endif
