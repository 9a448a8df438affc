/* Allocation wrappers with a process-wide fault-injection counter: one atomic
 * load per allocation when injection is off. */
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_after = -1; /* <0: off */
static atomic_long alloc_count;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (left < 0)
        return 0;
    if (left == 0)
        return 1;
    return atomic_fetch_sub(&fail_after, 1) <= 0;
}

void *fa_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *fa_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *fa_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void fa_free(void *p)
{
    free(p);
}

char *fa_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fa_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void *fa_malloc_aligned(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0)
        return NULL;
    return p;
}

void fa_free_aligned(void *p)
{
    free(p);
}

void fa_alloc_fail_after(long n)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_after, n);
}

void fa_alloc_fail_reset(void)
{
    atomic_store(&fail_after, -1);
    atomic_store(&alloc_count, 0);
}

long fa_alloc_count(void)
{
    return atomic_load(&alloc_count);
}
