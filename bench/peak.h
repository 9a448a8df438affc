/* Measured single-core float32 peak (GFLOP/s): a loop of independent FMAs,
 * AVX-512 when the CPU has it, else AVX2+FMA. Shared by the benchmarks. */
#ifndef FA_BENCH_PEAK_H
#define FA_BENCH_PEAK_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static inline double peak_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static double peak_avx512(long iters)
{
    __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i);
    double t0 = peak_now_s();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    double t = peak_now_s() - t0;
    float sink[16];
    __m512 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, a[i]);
    _mm512_storeu_ps(sink, s);
    volatile float keep = sink[0];
    (void)keep;
    return (double)iters * 12 * 16 * 2 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(long iters)
{
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    double t0 = peak_now_s();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    double t = peak_now_s() - t0;
    float sink[8];
    __m256 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(sink, s);
    volatile float keep = sink[0];
    (void)keep;
    return (double)iters * 12 * 8 * 2 / t / 1e9;
}

/* Best of 5 short runs; *isa names the instruction set used. */
static inline double peak_gflops(const char **isa)
{
    double best = 0;
    int avx512 = __builtin_cpu_supports("avx512f");
    *isa = avx512 ? "AVX-512 FMA" : "AVX2 FMA";
    for (int r = 0; r < 5; r++) {
        double g = avx512 ? peak_avx512(2000000) : peak_avx2(2000000);
        if (g > best)
            best = g;
    }
    return best;
}

#endif
