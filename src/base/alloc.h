/* Allocation wrappers. Everything in the project allocates through these so
 * that tests can make the Nth allocation fail (fault injection) and check
 * that each failure path returns FA_ERR_NOMEM without a leak. */
#ifndef FA_BASE_ALLOC_H
#define FA_BASE_ALLOC_H

#include <stddef.h>

/* As malloc/calloc/realloc/free, but fail (return NULL) when fault injection
 * says so. fa_free accepts NULL. Runs on: any thread. */
void *fa_malloc(size_t n);
void *fa_calloc(size_t count, size_t size);
void *fa_realloc(void *p, size_t n);
void fa_free(void *p);
/* malloc'd copy of a NUL-terminated string, or NULL. */
char *fa_strdup(const char *s);
/* 64-byte aligned allocation (free with fa_free_aligned), for kernels. */
void *fa_malloc_aligned(size_t n);
void fa_free_aligned(void *p);

/* Fault injection (tests): after `n` more successful allocations, every
 * allocation fails until fa_alloc_fail_reset(). n < 0 disables. Counts
 * across all threads. */
void fa_alloc_fail_after(long n);
void fa_alloc_fail_reset(void);
/* Number of allocations made since the last fa_alloc_fail_after/reset. */
long fa_alloc_count(void);

#endif
