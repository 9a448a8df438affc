/* The residual block of MobileNet-style nets (BlazeFace, FaceMesh, Iris) as
 * one kernel: out = act(res + conv(dwconv(x) + b_dw) + b_pw), where the
 * depthwise stage and the residual are optional and conv is a 1x1 conv or,
 * with no depthwise stage, a k x k conv (the nets' first convs, their
 * downsampling "patch" convs whose window equals the stride, and the output
 * heads). Run as separate oneDNN calls, each step streams a whole tensor
 * through L2 and pays a per-call cost that dominates the small layers. Here
 * the depthwise output of a few rows at a time stays in an L1 scratch, a
 * k x k conv reads its windows where they lie (gathering only those that
 * reach into the padding), and the residual and activation are applied
 * before the one store. Hand-written
 * for AVX-512 (chosen at run time; without it the graph keeps the unfused
 * steps). Weights are repacked with channels padded to 16 lanes and zeros
 * in the padding, so partial vectors need masks only at the tensor's own
 * loads and stores. */
#include "nn/kernels.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BLK_X86 1
#include <immintrin.h>
#endif

#define LANES 16
#define MAX_V 4  /* output vectors per register tile */
#define GEMV_V 8 /* the same for one output pixel */

struct nn_block {
    struct nn_block_desc d;
    int32_t oh, ow;
    int32_t cp, cop; /* dw channels, conv outputs: rounded up to LANES */
    int32_t cin;     /* conv inputs per pixel: cin (1x1) or k*k*cin (patch) */
    int32_t istride; /* floats between the conv's input pixels */
    bool gather;     /* patch conv: windows copied into the scratch */
    int32_t rows;    /* output rows per pass (scratch fits) */
    size_t res_off;  /* pooled residual: its place in the scratch */
    float *dw_w;     /* [kh*kw][cp] */
    float *dw_b;     /* [cp] */
    int32_t tile;    /* output vectors per register tile: MAX_V, or GEMV_V
                        for one output pixel */
    float *pw_w;     /* [cin][cop] in tiles: see pack_tiles() */
    uint16_t *pw_h;  /* one output pixel: pw_w as float16 when each weight is one
                        exactly (FaceMesh's are), else NULL; halves the bytes
                        the large heads stream from memory */
    float *pw_b;     /* [cop] */
    float *slope;    /* [cop] (PReLU) */
    bool pooled;     /* the arrays live in a caller's pool (nn_block_pack) */
};

static int32_t round_up(int32_t n)
{
    return (n + LANES - 1) / LANES * LANES;
}

bool nn_block_cpu(void)
{
#ifdef BLK_X86
    return fa_cpu_avx512();
#else
    return false;
#endif
}

bool nn_block_available(const struct nn_backend *be)
{
    return be != NULL && be->kind == NN_BACKEND_FAST && nn_block_cpu();
}

void nn_block_free(struct nn_block *b)
{
    if (b == NULL)
        return;
    if (b->pooled) {
        fa_free(b);
        return;
    }
    fa_free_aligned(b->dw_w);
    fa_free_aligned(b->dw_b);
    fa_free_aligned(b->pw_w);
    fa_free_aligned(b->pw_h);
    fa_free_aligned(b->pw_b);
    fa_free_aligned(b->slope);
    fa_free(b);
}

/* The block's arrays, in the order a run reads them, with their sizes. */
static void arrays(const struct nn_block *b, void ***ptr, size_t *bytes, int *n)
{
    const size_t taps = b->d.has_dw ? (size_t)b->d.dw.kh * b->d.dw.kw : 0;
    struct nn_block *m = (struct nn_block *)b; /* pointers to its fields */
    void **p[] = {(void **)&m->dw_w,  (void **)&m->dw_b, (void **)&m->pw_b,
                  (void **)&m->slope, (void **)&m->pw_w, (void **)&m->pw_h};
    const size_t sz[] = {taps * b->cp * sizeof(float),
                         (size_t)b->cp * sizeof(float),
                         (size_t)b->cop * sizeof(float),
                         (size_t)b->cop * sizeof(float),
                         (size_t)b->cin * b->cop * sizeof(float),
                         (size_t)b->cin * b->cop * sizeof(uint16_t)};
    *n = 0;
    for (int i = 0; i < 6; i++)
        if (*p[i] != NULL) {
            ptr[*n] = p[i];
            bytes[*n] = sz[i];
            (*n)++;
        }
}

size_t nn_block_pack_bytes(const struct nn_block *b)
{
    void **ptr[6];
    size_t bytes[6], total = 0;
    int n;
    arrays(b, ptr, bytes, &n);
    for (int i = 0; i < n; i++)
        total += (bytes[i] + 63) / 64 * 64;
    return total;
}

void nn_block_pack(struct nn_block *b, unsigned char *dst)
{
    void **ptr[6];
    size_t bytes[6];
    int n;
    arrays(b, ptr, bytes, &n);
    for (int i = 0; i < n; i++) {
        memcpy(dst, *ptr[i], bytes[i]);
        if (!b->pooled)
            fa_free_aligned(*ptr[i]);
        *ptr[i] = dst;
        dst += (bytes[i] + 63) / 64 * 64;
    }
    b->pooled = true;
}

static bool dw_ok(const struct nn_conv_desc *dw)
{
    if (!dw->depthwise || dw->act != NN_ACT_NONE || dw->cin != dw->cout || dw->cin < 1 ||
        dw->cin > 4096 || dw->kh < 1 || dw->kw < 1 || dw->kh > 7 || dw->kw > 7 || dw->stride < 1 ||
        dw->stride > 4)
        return false;
    if (dw->pad.t < 0 || dw->pad.b < 0 || dw->pad.l < 0 || dw->pad.r < 0 || dw->pad.t >= dw->kh ||
        dw->pad.b >= dw->kh || dw->pad.l >= dw->kw || dw->pad.r >= dw->kw)
        return false;
    return dw->in_h >= 1 && dw->in_w >= 1 && dw->in_h <= 4096 && dw->in_w <= 4096 &&
           nn_out_dim(dw->in_h, dw->kh, dw->stride, dw->pad.t, dw->pad.b) >= 1 &&
           nn_out_dim(dw->in_w, dw->kw, dw->stride, dw->pad.l, dw->pad.r) >= 1;
}

/* 1x1 stride 1; a k x k window with stride k that tiles the input
 * exactly; a window as large as the input (one output pixel); or, with no
 * depthwise stage before it, any k x k window (stride at most k, padding
 * smaller than the window: the nets' first convs). No activation of its
 * own. */
static bool pw_ok(const struct nn_conv_desc *pw, bool has_dw)
{
    if (pw->depthwise || pw->kh != pw->kw || pw->kh < 1 || pw->kh > 8 || pw->stride < 1 ||
        pw->act != NN_ACT_NONE || pw->cin < 1 || pw->cin > 4096 || pw->cout < 1 ||
        pw->cout > 4096 || pw->in_h < 1 || pw->in_w < 1 || pw->in_h > 4096 || pw->in_w > 4096)
        return false;
    const bool padded = pw->pad.t || pw->pad.b || pw->pad.l || pw->pad.r;
    const bool whole = pw->in_h == pw->kh && pw->in_w == pw->kw;
    if (!padded &&
        (whole || (pw->stride == pw->kh && pw->in_h % pw->kh == 0 && pw->in_w % pw->kw == 0)))
        return true;
    if (has_dw || pw->kh == 1 || pw->stride > pw->kh || pw->pad.t < 0 || pw->pad.b < 0 ||
        pw->pad.l < 0 || pw->pad.r < 0 || pw->pad.t >= pw->kh || pw->pad.b >= pw->kh ||
        pw->pad.l >= pw->kw || pw->pad.r >= pw->kw)
        return false;
    return nn_out_dim(pw->in_h, pw->kh, pw->stride, pw->pad.t, pw->pad.b) >= 1 &&
           nn_out_dim(pw->in_w, pw->kw, pw->stride, pw->pad.l, pw->pad.r) >= 1;
}

/* Output size of the conv stage. */
static void pw_out(const struct nn_conv_desc *pw, int32_t *oh, int32_t *ow)
{
    *oh = nn_out_dim(pw->in_h, pw->kh, pw->stride, pw->pad.t, pw->pad.b);
    *ow = nn_out_dim(pw->in_w, pw->kw, pw->stride, pw->pad.l, pw->pad.r);
}

static bool desc_ok(const struct nn_block_desc *d)
{
    const struct nn_conv_desc *dw = &d->dw, *pw = &d->pw;
    if (!pw_ok(pw, d->has_dw))
        return false;
    if (d->has_dw) {
        if (!dw_ok(dw) || pw->kh != 1 || pw->cin != dw->cout ||
            pw->in_h != nn_out_dim(dw->in_h, dw->kh, dw->stride, dw->pad.t, dw->pad.b) ||
            pw->in_w != nn_out_dim(dw->in_w, dw->kw, dw->stride, dw->pad.l, dw->pad.r))
            return false;
    }
    if (d->act != NN_ACT_NONE && d->act != NN_ACT_RELU && d->act != NN_ACT_RELU6 &&
        d->act != NN_ACT_LEAKY && d->act != NN_ACT_PRELU)
        return false;
    if (d->act == NN_ACT_PRELU && d->prelu == NULL)
        return false;
    if (d->res_pool != 0 && (d->res_pool != 2 || d->res_c < 1 || d->res_c > pw->cout))
        return false;
    /* one output row of the first stage (and of the pooled residual) must
     * fit the scratch */
    int32_t oh, ow;
    pw_out(pw, &oh, &ow);
    int64_t per_px = d->res_pool ? pw->cout : 0;
    if (d->has_dw)
        per_px += round_up(dw->cin);
    else if (pw->kh > 1)
        per_px += round_up(pw->kh * pw->kw * pw->cin);
    return ow * per_px <= NN_BLOCK_SCRATCH_FLOATS - LANES;
}

/* The conv weights w ([cin][co]) tile by tile, in the order the kernel
 * reads them: the outputs in tiles of `tile` vectors (the last one
 * narrower), and within a tile of v vectors at channel c0, [cin][v * 16] at
 * dst + c0 * cin. Each tile is one contiguous run, so a tile's weights are
 * a sequential stream from memory and do not collide in the L1 sets, as
 * rows of a wide [cin][cop] matrix would. Padding channels are zero. */
static void pack_tiles(const float *w, int32_t cin, int32_t co, int32_t cop, int32_t tile,
                       float *dst)
{
    memset(dst, 0, (size_t)cin * cop * sizeof(float));
    for (int32_t c0 = 0; c0 < cop; c0 += tile * LANES) {
        const int32_t width = cop - c0 < tile * LANES ? cop - c0 : tile * LANES;
        const int32_t n = co - c0 < width ? co - c0 : width; /* real outputs */
        float *t = dst + (size_t)c0 * cin;
        for (int32_t k = 0; k < cin; k++)
            memcpy(t + (size_t)k * width, w + (size_t)k * co + c0, (size_t)n * sizeof(float));
    }
}

static float *vec_copy(const float *src, int32_t n, int32_t cap)
{
    float *v = fa_malloc_aligned((size_t)cap * sizeof(float));
    if (v == NULL)
        return NULL;
    memset(v, 0, (size_t)cap * sizeof(float));
    if (src != NULL)
        memcpy(v, src, (size_t)n * sizeof(float));
    return v;
}

#ifdef BLK_X86
/* src[n] (n a multiple of 16) as float16 into dst; false when a value does
 * not come back exactly. */
__attribute__((target("avx512f"))) static bool to_half_exact(const float *src, size_t n,
                                                             uint16_t *dst)
{
    for (size_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_loadu_ps(src + i);
        const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (_mm512_cmp_ps_mask(_mm512_cvtph_ps(h), v, _CMP_NEQ_UQ) != 0)
            return false;
        _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    return true;
}
#endif

enum fa_status nn_block_new(const struct nn_backend *be, const struct nn_block_desc *d,
                            const float *dw_w, const float *dw_b, const float *pw_w,
                            const float *pw_b, struct nn_block **out)
{
    if (out == NULL)
        return FA_ERR_ARG;
    *out = NULL;
    if (d == NULL || pw_w == NULL || !desc_ok(d) || (d->has_dw && dw_w == NULL))
        return FA_ERR_ARG;
    if (!nn_block_available(be))
        return FA_ERR_NN_BACKEND;
    struct nn_block *b = fa_calloc(1, sizeof *b);
    if (b == NULL)
        return FA_ERR_NOMEM;
    b->d = *d;
    b->d.prelu = NULL;
    const int32_t k = d->pw.kh, co = d->pw.cout;
    pw_out(&d->pw, &b->oh, &b->ow);
    b->cin = k * k * d->pw.cin;
    b->cop = round_up(co);
    b->gather = !d->has_dw && k > 1;
    int32_t stage = 0; /* scratch floats per output pixel */
    if (d->has_dw) {
        b->cp = round_up(d->dw.cin);
        b->istride = b->cp;
        stage = b->cp;
    } else if (b->gather) {
        b->istride = round_up(b->cin); /* 27 -> 32: a stride the kernel knows */
        stage = b->istride;
    } else {
        b->istride = b->cin; /* reads x directly */
    }
    const int32_t per_px = stage + (d->res_pool ? co : 0);
    /* LANES floats of room past the rows: copy_run() writes whole vectors */
    b->rows = per_px > 0 ? (NN_BLOCK_SCRATCH_FLOATS - LANES) / (b->ow * per_px) : b->oh;
    if (b->rows > b->oh)
        b->rows = b->oh;
    b->res_off = (size_t)b->rows * b->ow * stage + LANES;
    const int32_t taps = d->has_dw ? d->dw.kh * d->dw.kw : 0;
    if (d->has_dw) {
        b->dw_w = fa_malloc_aligned((size_t)taps * b->cp * sizeof(float));
        b->dw_b = vec_copy(dw_b, d->dw.cin, b->cp);
        if (b->dw_w == NULL || b->dw_b == NULL) {
            nn_block_free(b);
            return FA_ERR_NOMEM;
        }
        memset(b->dw_w, 0, (size_t)taps * b->cp * sizeof(float));
        for (int32_t t = 0; t < taps; t++)
            memcpy(b->dw_w + (size_t)t * b->cp, dw_w + (size_t)t * d->dw.cin,
                   (size_t)d->dw.cin * sizeof(float));
    }
    b->pw_w = fa_malloc_aligned((size_t)b->cin * b->cop * sizeof(float));
    b->pw_b = vec_copy(pw_b, co, b->cop);
    b->slope = vec_copy(d->act == NN_ACT_PRELU ? d->prelu : NULL, co, b->cop);
    if (b->pw_w == NULL || b->pw_b == NULL || b->slope == NULL) {
        nn_block_free(b);
        return FA_ERR_NOMEM;
    }
    b->tile = b->oh * b->ow == 1 ? GEMV_V : MAX_V;
    pack_tiles(pw_w, b->cin, co, b->cop, b->tile, b->pw_w);
#ifdef BLK_X86
    if (b->oh * b->ow == 1 && !d->has_dw && d->res_pool == 0) {
        const size_t n = (size_t)b->cin * b->cop;
        b->pw_h = fa_malloc_aligned(n * sizeof(uint16_t));
        if (b->pw_h == NULL) {
            nn_block_free(b);
            return FA_ERR_NOMEM;
        }
        if (to_half_exact(b->pw_w, n, b->pw_h)) {
            fa_free_aligned(b->pw_w);
            b->pw_w = NULL;
        } else {
            fa_free_aligned(b->pw_h);
            b->pw_h = NULL;
        }
    }
#endif
    *out = b;
    return FA_OK;
}

void nn_block_out_shape(const struct nn_block *b, int32_t *oh, int32_t *ow, int32_t *oc)
{
    *oh = b->oh;
    *ow = b->ow;
    *oc = b->d.pw.cout;
}

uint64_t nn_block_macs(const struct nn_block *b)
{
    const uint64_t px = (uint64_t)b->oh * (uint64_t)b->ow;
    uint64_t m = px * (uint64_t)b->cin * (uint64_t)b->d.pw.cout;
    if (b->d.has_dw)
        m += px * (uint64_t)b->d.dw.cin * (uint64_t)(b->d.dw.kh * b->d.dw.kw);
    return m;
}

#ifdef BLK_X86

#define AVX512 __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))

/* Lanes of the vector at channel c0 that exist in a tensor of n channels. */
AVX512 INLINE __mmask16 tail_mask(int32_t c0, int32_t n)
{
    const int32_t left = n - c0;
    return left >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* One depthwise output vector at column xo, any window, checking every
 * tap against the tensor's edges. */
AVX512 INLINE __m512 dw_edge(const struct nn_block *b, const float *x, int32_t iy0, int32_t ix0,
                             int32_t c0, __mmask16 m)
{
    const struct nn_conv_desc *d = &b->d.dw;
    const int32_t c = d->cin, w = d->in_w, h = d->in_h;
    __m512 acc = _mm512_setzero_ps();
    for (int32_t ky = 0; ky < d->kh; ky++) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= h)
            continue;
        for (int32_t kx = 0; kx < d->kw; kx++) {
            const int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= w)
                continue;
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + ((size_t)iy * w + ix) * c + c0);
            const __m512 wv = _mm512_load_ps(b->dw_w + (size_t)(ky * d->kw + kx) * b->cp + c0);
            acc = _mm512_fmadd_ps(xv, wv, acc);
        }
    }
    return _mm512_add_ps(acc, _mm512_load_ps(b->dw_b + c0));
}

/* Depthwise output row yo, channels [c0, c0+16), 3 x 3 window (C and S:
 * the channel count and stride when known at compile time, else 0). The weights
 * stay in registers along the row (zeros for a window row outside the
 * tensor, so the inner loop has no branch); the columns whose window lies
 * inside take the unchecked path, four at a time with one accumulator per
 * column and window row, so that twelve FMA chains are in flight. */
AVX512 INLINE void dw_row3_t(const struct nn_block *b, const float *x, int32_t yo, float *o,
                             int32_t c0, const int C, const int S, const int FULL)
{
    const struct nn_conv_desc *d = &b->d.dw;
    const int32_t c = C ? C : d->cin, w = d->in_w, h = d->in_h, s = S ? S : d->stride;
    const int32_t cp = b->cp;
    const __mmask16 m = tail_mask(c0, c);
    const int32_t iy0 = yo * s - d->pad.t;
    __m512 k0[3], k1[3], k2[3];
    const float *r0, *r1, *r2;
    {
        const float *rp[3];
        __m512 wk[3][3];
        for (int ky = 0; ky < 3; ky++) {
            const int32_t iy = iy0 + ky;
            const bool ok = iy >= 0 && iy < h;
            rp[ky] = x + (size_t)(ok ? iy : 0) * w * c + c0;
            for (int kx = 0; kx < 3; kx++)
                wk[ky][kx] = ok ? _mm512_load_ps(b->dw_w + (size_t)(ky * 3 + kx) * cp + c0)
                                : _mm512_setzero_ps();
        }
        r0 = rp[0], r1 = rp[1], r2 = rp[2];
        for (int kx = 0; kx < 3; kx++) {
            k0[kx] = wk[0][kx];
            k1[kx] = wk[1][kx];
            k2[kx] = wk[2][kx];
        }
    }
    const __m512 bias = _mm512_load_ps(b->dw_b + c0);
    int32_t x_lo = (d->pad.l + s - 1) / s, x_hi = (w - 3 + d->pad.l) / s + 1;
    if (x_hi > b->ow)
        x_hi = b->ow;
    if (x_lo > x_hi)
        x_lo = x_hi;
        /* a whole vector (FULL: c0 + 16 <= channels) needs no mask, and masked
         * loads cost more */
#define LD(p) (FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p))
        /* an edge column: the taps inside the tensor, in the same order */
#define EDGE_ROW(r, k)                                                                             \
    for (int kx = 0; kx < 3; kx++)                                                                 \
        if (ix0 + kx >= 0 && ix0 + kx < w)                                                         \
            a = _mm512_fmadd_ps(LD((r) + (size_t)(ix0 + kx) * c), k[kx], a);
#define EDGE(xo)                                                                                   \
    do {                                                                                           \
        const int32_t ix0 = (xo)*s - d->pad.l;                                                     \
        __m512 a = _mm512_setzero_ps();                                                            \
        EDGE_ROW(r0, k0)                                                                           \
        EDGE_ROW(r1, k1)                                                                           \
        EDGE_ROW(r2, k2)                                                                           \
        _mm512_store_ps(o + (size_t)(xo)*cp, _mm512_add_ps(a, bias));                              \
    } while (0)
    for (int32_t xo = 0; xo < x_lo; xo++)
        EDGE(xo);
    const size_t step = (size_t)s * c;
    const size_t at = (size_t)(x_lo * s - d->pad.l) * c;
    const float *p0 = r0 + at, *p1 = r1 + at, *p2 = r2 + at;
    float *q = o + (size_t)x_lo * cp;
    /* The reference's order: taps in (ky, kx) order by fused multiply-adds
     * from zero, then the bias. Eight columns keep eight chains in flight;
     * each column's address is the previous one plus `step`. */
#define TAP(p, kv)                                                                                 \
    do {                                                                                           \
        const float *t = (p);                                                                      \
        _Pragma("GCC unroll 8") for (int i = 0; i < N; i++, t += step) a[i] =                      \
            _mm512_fmadd_ps(LD(t), kv, a[i]);                                                      \
    } while (0)
    /* stride 1: a window row's N + 2 input vectors are loaded once and
     * serve three taps each (the same multiply-adds per column, in the
     * same order) */
#define ROW1(p, k)                                                                                 \
    do {                                                                                           \
        __m512 v[N + 2];                                                                           \
        _Pragma("GCC unroll 10") for (int j = 0; j < N + 2; j++) v[j] = LD((p) + (size_t)j * c);   \
        _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)                                     \
            _Pragma("GCC unroll 8") for (int i = 0; i < N; i++) a[i] =                             \
                _mm512_fmadd_ps(v[i + kx], k[kx], a[i]);                                           \
    } while (0)
#define TAPS(N_)                                                                                   \
    do {                                                                                           \
        enum { N = N_ };                                                                           \
        __m512 a[N];                                                                               \
        _Pragma("GCC unroll 8") for (int i = 0; i < N; i++) a[i] = _mm512_setzero_ps();            \
        if (S == 1) {                                                                              \
            ROW1(p0, k0);                                                                          \
            ROW1(p1, k1);                                                                          \
            ROW1(p2, k2);                                                                          \
        } else {                                                                                   \
            TAP(p0, k0[0]);                                                                        \
            TAP(p0 + c, k0[1]);                                                                    \
            TAP(p0 + 2 * c, k0[2]);                                                                \
            TAP(p1, k1[0]);                                                                        \
            TAP(p1 + c, k1[1]);                                                                    \
            TAP(p1 + 2 * c, k1[2]);                                                                \
            TAP(p2, k2[0]);                                                                        \
            TAP(p2 + c, k2[1]);                                                                    \
            TAP(p2 + 2 * c, k2[2]);                                                                \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int i = 0; i < N; i++)                                        \
            _mm512_store_ps(q + (size_t)i * cp, _mm512_add_ps(a[i], bias));                        \
        p0 += N * step, p1 += N * step, p2 += N * step, q += N * cp;                               \
    } while (0)
    int32_t xo = x_lo;
    for (; xo + 8 <= x_hi; xo += 8)
        TAPS(8);
    for (; xo + 4 <= x_hi; xo += 4)
        TAPS(4);
    for (; xo < x_hi; xo++)
        TAPS(1);
#undef TAPS
#undef ROW1
#undef TAP
    for (xo = x_hi; xo < b->ow; xo++)
        EDGE(xo);
#undef EDGE
#undef EDGE_ROW
#undef LD
}

/* dw_row3 with the channel count and stride as constants where the nets
 * have them: every tap address is then a displacement from one register. */
AVX512 static void dw_row3(const struct nn_block *b, const float *x, int32_t yo, float *o,
                           int32_t c0)
{
    const int32_t c = b->d.dw.cin, s = b->d.dw.stride;
#define DW_CASE(C_, S_)                                                                            \
    if (c == (C_) && s == (S_)) {                                                                  \
        dw_row3_t(b, x, yo, o, c0, C_, S_, 1);                                                     \
        return;                                                                                    \
    }
    DW_CASE(16, 1)
    DW_CASE(16, 2)
    DW_CASE(32, 1)
    DW_CASE(32, 2)
    DW_CASE(64, 1)
    DW_CASE(64, 2)
    DW_CASE(128, 1)
    DW_CASE(128, 2)
#undef DW_CASE
    if (c0 + LANES <= c)
        dw_row3_t(b, x, yo, o, c0, 0, 0, 1);
    else
        dw_row3_t(b, x, yo, o, c0, 0, 0, 0);
}

/* Depthwise output rows [y0, y0+nrows) into scr ([nrows*ow][cp]). */
AVX512 static void dw_rows(const struct nn_block *b, const float *x, int32_t y0, int32_t nrows,
                           float *scr)
{
    const struct nn_conv_desc *d = &b->d.dw;
    for (int32_t yo = y0; yo < y0 + nrows; yo++) {
        float *o = scr + (size_t)(yo - y0) * b->ow * b->cp;
        for (int32_t c0 = 0; c0 < b->cp; c0 += LANES) {
            if (d->kh == 3 && d->kw == 3)
                dw_row3(b, x, yo, o + c0, c0);
            else
                for (int32_t xo = 0; xo < b->ow; xo++)
                    _mm512_store_ps(o + (size_t)xo * b->cp + c0,
                                    dw_edge(b, x, yo * d->stride - d->pad.t,
                                            xo * d->stride - d->pad.l, c0, tail_mask(c0, d->cin)));
        }
    }
}

/* Epilogues known at compile time (E): the nets' common case, PReLU on
 * whole vectors with or without the residual, has no branch and no mask. */
enum { E_ANY = 0, E_PRELU_RES = 1, E_PRELU = 2 };

/* The residual, the activation and the store of one output vector. */
AVX512 INLINE void finish(const struct nn_block *b, __m512 acc, const float *res, float *out,
                          int32_t c0, __mmask16 m)
{
    const bool whole = m == (__mmask16)0xffff; /* masked memory ops cost more */
    acc = _mm512_add_ps(acc, _mm512_load_ps(b->pw_b + c0));
    if (res != NULL)
        acc = _mm512_add_ps(acc,
                            whole ? _mm512_loadu_ps(res + c0) : _mm512_maskz_loadu_ps(m, res + c0));
    const __m512 zero = _mm512_setzero_ps();
    switch (b->d.act) {
    case NN_ACT_RELU:
        acc = _mm512_max_ps(acc, zero);
        break;
    case NN_ACT_RELU6:
        acc = _mm512_min_ps(_mm512_max_ps(acc, zero), _mm512_set1_ps(6.0f));
        break;
    case NN_ACT_LEAKY: {
        const __mmask16 neg = _mm512_cmp_ps_mask(acc, zero, _CMP_LT_OQ);
        acc = _mm512_mask_mul_ps(acc, neg, acc, _mm512_set1_ps(b->d.alpha));
        break;
    }
    case NN_ACT_PRELU: {
        const __mmask16 neg = _mm512_cmp_ps_mask(acc, zero, _CMP_LT_OQ);
        acc = _mm512_mask_mul_ps(acc, neg, acc, _mm512_load_ps(b->slope + c0));
        break;
    }
    default:
        break;
    }
    if (whole)
        _mm512_storeu_ps(out + c0, acc);
    else
        _mm512_mask_storeu_ps(out + c0, m, acc);
}

/* Where the conv finds the cin inputs of its pixels: pixel p's start at
 * in + p * is, in ng runs of glen floats, run g at + g * gs. One run
 * (glen = cin) for a 1x1 conv, the depthwise output or gathered windows;
 * one run per window row when a window is read where it lies in x. */
struct pw_in {
    int32_t is, ng, glen;
    size_t gs;
};

/* The conv of P pixels onto V output vectors starting at channel c0, then
 * finish(). V, P, IS (a.is, or 0 when it is only known at run time) and E
 * are constants at every call, so the accumulators live in registers and,
 * with IS known, all P inputs are addressed from one register. */
AVX512 INLINE void pw_tile(const struct nn_block *b, const float *in, const struct pw_in *a,
                           const float *res, float *out, int32_t c0, const int V, const int P,
                           const int IS, const int E)
{
    const int32_t co = b->d.pw.cout, is = IS ? IS : a->is;
    __m512 acc[12][MAX_V];
#pragma GCC unroll 12
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[p][v] = _mm512_setzero_ps();
    const float *w = b->pw_w + (size_t)c0 * b->cin; /* this tile: [cin][V * 16] */
    for (int32_t g = 0; g < a->ng; g++) {
        const float *src = in + (size_t)g * a->gs;
        for (int32_t k = 0; k < a->glen; k++, w += V * LANES) {
            __m512 wv[MAX_V];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                wv[v] = _mm512_load_ps(w + v * LANES);
#pragma GCC unroll 12
            for (int p = 0; p < P; p++) {
                const __m512 xb = _mm512_set1_ps(src[(size_t)p * is + k]);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[p][v] = _mm512_fmadd_ps(xb, wv[v], acc[p][v]);
            }
        }
    }
    if (E != E_ANY) { /* the tile's biases and slopes stay in registers */
        __m512 bv[MAX_V], sv[MAX_V];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            bv[v] = _mm512_load_ps(b->pw_b + c0 + v * LANES);
            sv[v] = _mm512_load_ps(b->slope + c0 + v * LANES);
        }
#pragma GCC unroll 12
        for (int p = 0; p < P; p++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) {
                const size_t at = (size_t)p * co + c0 + (size_t)v * LANES;
                __m512 t = _mm512_add_ps(acc[p][v], bv[v]);
                if (E == E_PRELU_RES)
                    t = _mm512_add_ps(t, _mm512_loadu_ps(res + at));
                const __mmask16 neg = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ);
                _mm512_storeu_ps(out + at, _mm512_mask_mul_ps(t, neg, t, sv[v]));
            }
        return;
    }
#pragma GCC unroll 12
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            finish(b, acc[p][v], res != NULL ? res + (size_t)p * co : NULL, out + (size_t)p * co,
                   c0 + v * LANES, tail_mask(c0 + v * LANES, co));
}

#define AT(ptr, p, stride) ((ptr) != NULL ? (ptr) + (size_t)(p) * (stride) : NULL)

/* Pixels [p, n) left over by the full tiles, in tiles of 4, 2 and 1 (so
 * that a small layer still reuses each weight load for several pixels). */
AVX512 INLINE void pw_rest(const struct nn_block *b, const float *in, const struct pw_in *a,
                           int32_t p, int32_t n, const float *res, float *out, int32_t c0,
                           const int V, const int E)
{
    const int32_t co = b->d.pw.cout, is = a->is;
#define REST(P_)                                                                                   \
    for (; p + (P_) <= n; p += (P_))                                                               \
        pw_tile(b, in + (size_t)p * is, a, AT(res, p, co), out + (size_t)p * co, c0, V, P_, 0, E);
    REST(4)
    REST(2)
    REST(1)
#undef REST
}

/* The conv over n pixels, read as `a` says. Narrow outputs (V <= 2
 * vectors) take 12 pixels per tile when IS is a constant, 8 otherwise (12
 * runtime addresses do not fit the registers). */
AVX512 INLINE void pw_pixels_is(const struct nn_block *b, const float *in, const struct pw_in *a,
                                int32_t n, const float *res, float *out, const int IS, const int E)
{
    const int32_t co = b->d.pw.cout, is = IS ? IS : a->is;
    int32_t c0 = 0;
    for (; c0 + 4 * LANES <= b->cop; c0 += 4 * LANES) {
        int32_t p = 0;
        for (; p + 6 <= n; p += 6)
            pw_tile(b, in + (size_t)p * is, a, AT(res, p, co), out + (size_t)p * co, c0, 4, 6, IS,
                    E);
        pw_rest(b, in, a, p, n, res, out, c0, 4, E);
    }
    const int32_t left = (b->cop - c0) / LANES; /* 0..3 vectors */
    if (left == 0)
        return;
    const int T = IS ? 12 : 8;
    const int32_t t = left == 3 ? 8 : T;
    int32_t p = 0;
    for (; p + t <= n; p += t) {
        const float *i = in + (size_t)p * is, *r = AT(res, p, co);
        float *o = out + (size_t)p * co;
        if (left == 1)
            pw_tile(b, i, a, r, o, c0, 1, T, IS, E);
        else if (left == 2)
            pw_tile(b, i, a, r, o, c0, 2, T, IS, E);
        else
            pw_tile(b, i, a, r, o, c0, 3, 8, IS, E);
    }
    if (left == 1)
        pw_rest(b, in, a, p, n, res, out, c0, 1, E);
    else if (left == 2)
        pw_rest(b, in, a, p, n, res, out, c0, 2, E);
    else
        pw_rest(b, in, a, p, n, res, out, c0, 3, E);
}

/* The pixel strides the nets have (6: a 3-channel image under a stride-2
 * window) become constants. */
AVX512 INLINE void pw_pixels_e(const struct nn_block *b, const float *in, const struct pw_in *a,
                               int32_t n, const float *res, float *out, const int E)
{
    switch (a->is) {
#define IS_CASE(IS_)                                                                               \
    case IS_:                                                                                      \
        pw_pixels_is(b, in, a, n, res, out, IS_, E);                                               \
        break;
#ifndef FA_BLOCK_FEW_VARIANTS /* sanitizer builds: the generic stride only */
        IS_CASE(6)
        IS_CASE(16)
        IS_CASE(32)
        IS_CASE(64)
        IS_CASE(128)
#endif
#undef IS_CASE
    default:
        pw_pixels_is(b, in, a, n, res, out, 0, E);
        break;
    }
}

AVX512 static void pw_pixels(const struct nn_block *b, const float *in, const struct pw_in *a,
                             int32_t n, const float *res, float *out)
{
    const bool prelu = b->d.act == NN_ACT_PRELU && b->d.pw.cout % LANES == 0;
    if (prelu && res != NULL)
        pw_pixels_e(b, in, a, n, res, out, E_PRELU_RES);
    else if (prelu)
        pw_pixels_e(b, in, a, n, res, out, E_PRELU);
    else
        pw_pixels_e(b, in, a, n, res, out, E_ANY);
}

/* dst[0, n) = src[0, n), or zeros when src is NULL, by whole-vector
 * stores: up to 15 floats past dst + n get zeros (the scratch keeps LANES
 * floats of room; the next run overwrites them). Masked stores would be
 * exact-sized, but they are slow on some CPUs (three per 3x3 window made
 * FaceMesh's first conv twice as slow as oneDNN's); the tail is read with
 * a mask, so nothing past the tensor is touched. */
AVX512 INLINE void copy_run(float *dst, const float *src, int32_t n, const float *end)
{
    int32_t i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm512_storeu_ps(dst + i, src != NULL ? _mm512_loadu_ps(src + i) : _mm512_setzero_ps());
    if (i < n) {
        __m512 v = _mm512_setzero_ps();
        if (src != NULL && src + i + LANES <= end)
            v = _mm512_loadu_ps(src + i); /* the floats past n are never read */
        else if (src != NULL)
            v = _mm512_maskz_loadu_ps(tail_mask(i, n), src + i);
        _mm512_storeu_ps(dst + i, v);
    }
}

/* The k x k windows of output row yo, columns [xa, xb), into scr one
 * after the other ([xb - xa][istride], in the weights' (ky, kx, c) order),
 * zeros where a window reaches past the tensor (the padding). A zero adds
 * nothing to the sums, so the result is that of skipping those taps. */
AVX512 static void gather_px(const struct nn_block *b, const float *x, int32_t yo, int32_t xa,
                             int32_t xb, float *scr)
{
    const struct nn_conv_desc *d = &b->d.pw;
    const int32_t k = d->kh, c = d->cin, w = d->in_w, h = d->in_h, s = d->stride;
    const int32_t run = k * c; /* one window row: k pixels, contiguous */
    const float *end = x + (size_t)h * w * c;
    const int32_t iy0 = yo * s - d->pad.t;
    for (int32_t xo = xa; xo < xb; xo++) {
        float *o = scr + (size_t)(xo - xa) * b->istride;
        const int32_t ix0 = xo * s - d->pad.l;
        const bool inside = ix0 >= 0 && ix0 + k <= w;
        for (int32_t ky = 0; ky < k; ky++, o += run) {
            const int32_t iy = iy0 + ky;
            const float *row = iy >= 0 && iy < h ? x + (size_t)iy * w * c : NULL;
            if (row == NULL || inside) {
                copy_run(o, row != NULL ? row + (size_t)ix0 * c : NULL, run, end);
                continue;
            }
            for (int32_t kx = 0; kx < k; kx++) {
                const int32_t ix = ix0 + kx;
                copy_run(o + kx * c, ix >= 0 && ix < w ? row + (size_t)ix * c : NULL, c, end);
            }
        }
    }
}

/* Output row yo of a conv with a k x k window (no depthwise stage): the
 * columns whose window lies inside x read it where it is, one run per
 * window row; the others (and a row whose window passes the top or bottom)
 * are gathered with their zeros first. rr: the row's residual or NULL. */
AVX512 static void conv_row(const struct nn_block *b, const float *x, int32_t yo, const float *rr,
                            float *oo, float *scr)
{
    const struct nn_conv_desc *d = &b->d.pw;
    const int32_t k = d->kh, c = d->cin, w = d->in_w, s = d->stride, co = d->cout;
    const int32_t iy0 = yo * s - d->pad.t;
    int32_t xl = b->ow, xh = b->ow; /* the columns read in place */
    if (iy0 >= 0 && iy0 + k <= d->in_h && w - k + d->pad.l >= 0) {
        xl = (d->pad.l + s - 1) / s;
        xh = (w - k + d->pad.l) / s + 1;
        if (xh > b->ow)
            xh = b->ow;
        if (xl > xh)
            xl = xh;
    }
    const struct pw_in g = {.is = b->istride, .ng = 1, .glen = b->cin};
    if (xl > 0) {
        gather_px(b, x, yo, 0, xl, scr);
        pw_pixels(b, scr, &g, xl, rr, oo);
    }
    if (xh > xl) {
        const struct pw_in a = {.is = s * c, .ng = k, .glen = k * c, .gs = (size_t)w * c};
        pw_pixels(b, x + ((size_t)iy0 * w + (size_t)(xl * s - d->pad.l)) * c, &a, xh - xl,
                  AT(rr, xl, co), oo + (size_t)xl * co);
    }
    if (xh < b->ow) {
        gather_px(b, x, yo, xh, b->ow, scr);
        pw_pixels(b, scr, &g, b->ow - xh, AT(rr, xh, co), oo + (size_t)xh * co);
    }
}

/* The residual of output rows [y0, y0+nrows) as a 2 x 2 max pool of the
 * source ([2*oh, 2*ow, res_c]), channels past res_c zero: into rs
 * ([nrows*ow][cout]). */
AVX512 static void pool_rows(const struct nn_block *b, const float *src, int32_t y0, int32_t nrows,
                             float *rs)
{
    const int32_t rc = b->d.res_c, co = b->d.pw.cout, w2 = 2 * b->ow;
    for (int32_t yo = y0; yo < y0 + nrows; yo++) {
        const float *r0 = src + (size_t)(2 * yo) * w2 * rc, *r1 = r0 + (size_t)w2 * rc;
        for (int32_t xo = 0; xo < b->ow; xo++) {
            float *o = rs + ((size_t)(yo - y0) * b->ow + xo) * co;
            const size_t a = (size_t)(2 * xo) * rc;
            for (int32_t c0 = 0; c0 < co; c0 += LANES) {
                __m512 v = _mm512_setzero_ps();
                if (c0 < rc) {
                    const __mmask16 m = tail_mask(c0, rc);
                    v = _mm512_max_ps(_mm512_max_ps(_mm512_maskz_loadu_ps(m, r0 + a + c0),
                                                    _mm512_maskz_loadu_ps(m, r0 + a + rc + c0)),
                                      _mm512_max_ps(_mm512_maskz_loadu_ps(m, r1 + a + c0),
                                                    _mm512_maskz_loadu_ps(m, r1 + a + rc + c0)));
                }
                _mm512_mask_storeu_ps(o + c0, tail_mask(c0, co), v);
            }
        }
    }
}

/* One output pixel, V output vectors at channel c0 (a tile of pw_w, or of
 * pw_h when HALF: float16 weights that convert exactly, so the same
 * multiply-adds in the same order). Eight vectors keep eight chains in
 * flight; the weights are one sequential stream. */
AVX512 INLINE void gemv_tile(const struct nn_block *b, const float *in, const float *res,
                             float *out, int32_t c0, const int V, const int HALF)
{
    __m512 acc[GEMV_V];
#pragma GCC unroll 8
    for (int v = 0; v < V; v++)
        acc[v] = _mm512_setzero_ps();
    const size_t at = (size_t)c0 * b->cin;
    const float *w = HALF ? NULL : b->pw_w + at;
    const uint16_t *h = HALF ? b->pw_h + at : NULL;
    for (int32_t k = 0; k < b->cin; k++) {
        const __m512 xb = _mm512_set1_ps(in[k]);
#pragma GCC unroll 8
        for (int v = 0; v < V; v++) {
            const size_t o = (size_t)k * V * LANES + (size_t)v * LANES;
            const __m512 wv = HALF ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(h + o)))
                                   : _mm512_load_ps(w + o);
            acc[v] = _mm512_fmadd_ps(xb, wv, acc[v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < V; v++)
        finish(b, acc[v], res, out, c0 + v * LANES, tail_mask(c0 + v * LANES, b->d.pw.cout));
}

AVX512 INLINE void gemv_h(const struct nn_block *b, const float *in, const float *res, float *out,
                          const int HALF)
{
    int32_t c0 = 0;
    for (; c0 + GEMV_V * LANES <= b->cop; c0 += GEMV_V * LANES)
        gemv_tile(b, in, res, out, c0, GEMV_V, HALF);
    switch ((b->cop - c0) / LANES) {
#define LAST(V_)                                                                                   \
    case V_:                                                                                       \
        gemv_tile(b, in, res, out, c0, V_, HALF);                                                  \
        break;
        LAST(1)
        LAST(2)
        LAST(3)
        LAST(4)
        LAST(5)
        LAST(6)
        LAST(7)
#undef LAST
    default:
        break;
    }
}

AVX512 static void gemv(const struct nn_block *b, const float *in, const float *res, float *out)
{
    if (b->pw_h != NULL)
        gemv_h(b, in, res, out, 1);
    else
        gemv_h(b, in, res, out, 0);
}

AVX512 static void block_run(const struct nn_block *b, const float *x, const float *res, float *out,
                             float *scr)
{
    const int32_t co = b->d.pw.cout;
    const size_t row = (size_t)b->ow * co;
    const struct pw_in flat = {.is = b->istride, .ng = 1, .glen = b->cin};
    for (int32_t y0 = 0; y0 < b->oh; y0 += b->rows) {
        const int32_t n = y0 + b->rows <= b->oh ? b->rows : b->oh - y0;
        const float *r = AT(res, (size_t)y0 * b->ow, co);
        if (b->d.res_pool && res != NULL) {
            pool_rows(b, res, y0, n, scr + b->res_off);
            r = scr + b->res_off;
        }
        if (b->gather && b->tile != GEMV_V) {
            for (int32_t yo = y0; yo < y0 + n; yo++)
                conv_row(b, x, yo, AT(r, (size_t)(yo - y0) * b->ow, co), out + (size_t)yo * row,
                         scr);
            continue;
        }
        const float *in = scr;
        if (b->d.has_dw)
            dw_rows(b, x, y0, n, scr);
        else if (b->gather)
            gather_px(b, x, y0, 0, b->ow, scr); /* one row of one pixel */
        else
            in = x + (size_t)y0 * b->ow * b->cin;
        if (b->tile == GEMV_V)
            gemv(b, in, r, out);
        else
            pw_pixels(b, in, &flat, n * b->ow, r, out + (size_t)y0 * row);
    }
}

#endif /* BLK_X86 */

enum fa_status nn_block_run(const struct nn_block *b, struct nn_ctx *ctx, const float *x,
                            const float *res, float *out)
{
    if (b == NULL || ctx == NULL || x == NULL || out == NULL || ctx->block_scratch == NULL)
        return FA_ERR_ARG;
    const size_t in_len = b->d.has_dw ? (size_t)b->d.dw.in_h * b->d.dw.in_w * b->d.dw.cin
                                      : (size_t)b->d.pw.in_h * b->d.pw.in_w * b->d.pw.cin;
    const size_t out_len = (size_t)b->oh * b->ow * b->d.pw.cout;
    /* out may be res (each value read before written, in place), never x */
    if ((const float *)out < x + in_len && x < (const float *)out + out_len)
        return FA_ERR_ARG;
    const size_t res_len = b->d.res_pool ? (size_t)4 * b->oh * b->ow * b->d.res_c : out_len;
    if (res != NULL && (res != out || b->d.res_pool) && (const float *)out < res + res_len &&
        res < (const float *)out + out_len)
        return FA_ERR_ARG;
#ifdef BLK_X86
    block_run(b, x, res, out, ctx->block_scratch);
    return FA_OK;
#else
    (void)in_len;
    return FA_ERR_NN_BACKEND;
#endif
}
