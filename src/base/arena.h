/* A bump allocator: one block sized up front, pointers handed out in order,
 * everything released at once by fa_arena_reset. Workers keep one per frame
 * so a frame allocates nothing from the heap after warm-up. Not thread-safe:
 * one arena per thread. */
#ifndef FA_BASE_ARENA_H
#define FA_BASE_ARENA_H

#include <stddef.h>

#include "base/status.h"

struct fa_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t high; /* high-water mark, to size the arena at load */
};

/* Reserve `cap` bytes (64-byte aligned). FA_ERR_NOMEM on failure. */
enum fa_status fa_arena_init(struct fa_arena *a, size_t cap);
void fa_arena_fini(struct fa_arena *a);
/* 64-byte aligned block of n bytes, or NULL when the arena is full. */
void *fa_arena_alloc(struct fa_arena *a, size_t n);
/* Release everything allocated since init (or since the mark). */
static inline void fa_arena_reset(struct fa_arena *a)
{
    a->used = 0;
}
static inline size_t fa_arena_mark(const struct fa_arena *a)
{
    return a->used;
}
static inline void fa_arena_release(struct fa_arena *a, size_t mark)
{
    a->used = mark;
}

#endif
