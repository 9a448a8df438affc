/* Bump allocator over one aligned block. */
#include "base/arena.h"

#include "base/alloc.h"

enum fa_status fa_arena_init(struct fa_arena *a, size_t cap)
{
    *a = (struct fa_arena){0};
    a->base = fa_malloc_aligned(cap);
    if (a->base == NULL)
        return FA_ERR_NOMEM;
    a->cap = cap;
    return FA_OK;
}

void fa_arena_fini(struct fa_arena *a)
{
    fa_free_aligned(a->base);
    *a = (struct fa_arena){0};
}

void *fa_arena_alloc(struct fa_arena *a, size_t n)
{
    size_t need = (n + 63) & ~(size_t)63;
    if (need < n || a->used > a->cap || need > a->cap - a->used)
        return NULL;
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->high)
        a->high = a->used;
    return p;
}
