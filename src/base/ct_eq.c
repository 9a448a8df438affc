/* Constant-time equality: accumulate differences with OR, never branch on data. */
#include "base/ct_eq.h"

#include <stdint.h>
#include <string.h>

bool fa_ct_eq(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (uint8_t)(x[i] ^ y[i]);
    return d == 0;
}

bool fa_ct_streq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    const volatile uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    uint8_t d = (uint8_t)(na != nb);
    size_t n = na > nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        uint8_t p = i < na ? x[i] : 0, q = i < nb ? y[i] : 0;
        d |= (uint8_t)(p ^ q);
    }
    return d == 0;
}
