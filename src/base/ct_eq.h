/* Constant-time comparison for secrets (keys, tokens, MACs). */
#ifndef FA_BASE_CT_EQ_H
#define FA_BASE_CT_EQ_H

#include <stdbool.h>
#include <stddef.h>

/* True when a[0..n) == b[0..n); time depends only on n. */
bool fa_ct_eq(const void *a, const void *b, size_t n);
/* Compare two strings of possibly different lengths; time depends only on
 * the lengths, not on where they differ. */
bool fa_ct_streq(const char *a, const char *b);

#endif
