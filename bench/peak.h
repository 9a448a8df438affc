/* Measured single-core float32 peak (GFLOP/s): 16 independent FMA chains
 * (enough to cover the FMA latency on two units), AVX-512 when the CPU has
 * it, else AVX2+FMA; best of many short trials, so time slices lost to other
 * processes do not count. Shared by the benchmarks. */
#ifndef FA_BENCH_PEAK_H
#define FA_BENCH_PEAK_H

#include <immintrin.h>
#include <stdbool.h>
#include <time.h>

static inline double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GFLOP/s of one trial of `iters` x 16 independent FMAs (AVX-512 or AVX2):
 * enough chains to cover the FMA latency on two units. */
#define CHAINS(X)                                                                                  \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

__attribute__((target("avx512f"))) static double peak512(long iters)
{
#define D512(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define F512(i) a##i = _mm512_fmadd_ps(a##i, m, c);
#define S512(i) s = _mm512_add_ps(s, a##i);
    CHAINS(D512)
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f), s = _mm512_setzero_ps();
    double t0 = secs();
    for (long k = 0; k < iters; k++) {
        CHAINS(F512)
    }
    double t = secs() - t0;
    CHAINS(S512)
    float out[16];
    _mm512_storeu_ps(out, s);
    volatile float keep = out[0];
    (void)keep;
    return (double)iters * 16 * 16 * 2 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double peak256(long iters)
{
#define D256(i) __m256 a##i = _mm256_set1_ps((float)(i));
#define F256(i) a##i = _mm256_fmadd_ps(a##i, m, c);
#define S256(i) s = _mm256_add_ps(s, a##i);
    CHAINS(D256)
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f), s = _mm256_setzero_ps();
    double t0 = secs();
    for (long k = 0; k < iters; k++) {
        CHAINS(F256)
    }
    double t = secs() - t0;
    CHAINS(S256)
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float keep = out[0];
    (void)keep;
    return (double)iters * 16 * 8 * 2 / t / 1e9;
}

static inline double measured_peak(const char **isa)
{
    bool avx512 = __builtin_cpu_supports("avx512f");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    double best = 0.0;
    *isa = avx512 ? "AVX-512 FMA" : avx2 ? "AVX2 FMA" : "no FMA";
    for (int r = 0; r < 300 && (avx512 || avx2); r++) {
        double g = avx512 ? peak512(50000) : peak256(50000);
        best = g > best ? g : best;
    }
    return best;
}

#endif
