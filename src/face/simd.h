/* Private to face/: AVX-512 helpers of the vectorised crops and resizes
 * (mesh.c, blazeface.c). One pixel's three channels travel in the low
 * lanes of a vector, read with masked loads (three values, never past the
 * buffer) and written four lanes at a time, the fourth overwritten by the
 * next pixel (a masked store, only for a buffer's last pixel, is slow on
 * some CPUs); the arithmetic is the plain path's, op for op, so the
 * results are the same bit for bit. Callers check
 * fa_cpu_avx512() before calling any function marked FACE_AVX512. */
#ifndef FA_FACE_SIMD_H
#define FA_FACE_SIMD_H

#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FACE_SIMD 1
#define FACE_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw")))

/* The three bytes at p as doubles (lanes 0-2; lane 3 is 0). */
FACE_AVX512 static inline __m256d face_px_u8(const uint8_t *p)
{
    return _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_maskz_loadu_epi8(0x7, p)));
}

/* The three floats at p as doubles. */
FACE_AVX512 static inline __m256d face_px_f32(const float *p)
{
    return _mm256_cvtps_pd(_mm_maskz_loadu_ps(0x7, p));
}

/* Bilinear: t = tl + (tr - tl) * wx, b likewise, t + (b - t) * wy, in
 * double without fused multiply-adds, rounded to float. */
FACE_AVX512 static inline __m128 face_lerp4(__m256d tl, __m256d tr, __m256d bl, __m256d br,
                                            __m256d wx, __m256d wy)
{
    const __m256d t = _mm256_add_pd(tl, _mm256_mul_pd(_mm256_sub_pd(tr, tl), wx));
    const __m256d b = _mm256_add_pd(bl, _mm256_mul_pd(_mm256_sub_pd(br, bl), wx));
    return _mm256_cvtpd_ps(_mm256_add_pd(t, _mm256_mul_pd(_mm256_sub_pd(b, t), wy)));
}

/* The three low lanes of v at p. */
FACE_AVX512 static inline void face_store3(float *p, __m128 v)
{
    _mm_mask_storeu_ps(p, 0x7, v);
}
#endif

#endif
