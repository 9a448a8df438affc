/* CPU feature checks (GCC/Clang's __builtin_cpu_supports, which reads
 * CPUID and the OS's XCR0 once at start-up). */
#include "base/cpu.h"

#include <stdlib.h>

bool fa_cpu_avx512(void)
{
    const char *off = getenv("FACEAUTH_NO_AVX512");
    if (off != NULL && off[0] != '\0' && !(off[0] == '0' && off[1] == '\0'))
        return false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
#else
    return false;
#endif
}
