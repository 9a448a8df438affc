/* What the CPU can run, for the hand-written AVX-512 kernels (nn/block.c,
 * the face crops). Each has a plain C path beside it that gives the same
 * results; FACEAUTH_NO_AVX512=1 (read at every call) selects the plain
 * paths, for tests of both and for A/B benchmarks. */
#ifndef FA_BASE_CPU_H
#define FA_BASE_CPU_H

#include <stdbool.h>

/* AVX-512 F, VL and BW in the CPU and enabled by the OS, and
 * FACEAUTH_NO_AVX512 unset, empty or "0". Runs on: any thread. */
bool fa_cpu_avx512(void);

#endif
