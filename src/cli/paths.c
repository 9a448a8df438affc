/* Turning command-line arguments into a sorted list of image files. */
#include "cli/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"

struct list {
    char **v;
    size_t n, cap;
};

static int push(struct list *l, const char *s)
{
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = fa_realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = fa_strdup(s);
    if (l->v[l->n] == NULL)
        return -1;
    l->n++;
    l->v[l->n] = NULL;
    return 0;
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot != NULL && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                           strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(struct list *l, const char *path, int top)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (top)
            return push(l, path); /* let the decoder report "not found" */
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (top || is_image_name(path))
            return push(l, path);
        return 0;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "faceauth: %s: cannot read directory\n", path);
        return -1;
    }
    struct list names = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (push(&names, e->d_name) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (names.n > 0)
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, names.v[i]);
        rc = walk(l, sub, 0);
    }
    for (size_t i = 0; i < names.n; i++)
        fa_free(names.v[i]);
    fa_free(names.v);
    return rc;
}

char **cli_expand_paths(char **args, int n)
{
    struct list l = {0};
    if (push(&l, "") != 0) /* ensure a non-NULL array even when empty */
        return NULL;
    fa_free(l.v[0]);
    l.n = 0;
    l.v[0] = NULL;
    for (int i = 0; i < n; i++) {
        if (walk(&l, args[i], 1) != 0) {
            l.v[l.n] = NULL;
            cli_paths_free(l.v);
            return NULL;
        }
    }
    return l.v;
}

void cli_paths_free(char **paths)
{
    if (paths == NULL)
        return;
    for (char **p = paths; *p != NULL; p++)
        fa_free(*p);
    fa_free(paths);
}
