/* Private to nn/: the layer structs shared by backend.c (dispatch), ref.c
 * (reference kernels) and dnnl.c (oneDNN). A layer keeps its descriptor and,
 * on the reference backend, its weights in TF.js order; on the fast backend
 * the oneDNN primitive owns the repacked weights instead (struct nnd_*). */
#ifndef FA_NN_KERNELS_H
#define FA_NN_KERNELS_H

#include "nn/nn.h"

struct nnd_engine; /* dnnl.c: CPU engine */
struct nnd_ctx;    /* dnnl.c: stream, scratchpad, memory-object cache */
struct nnd_conv;   /* dnnl.c: planned primitive + repacked weights */
struct nnd_dense;

struct nn_backend {
    enum nn_backend_kind kind; /* effective: REF, or FAST only with oneDNN */
    struct nnd_engine *dnnl;   /* FAST only */
};

/* Floats of the per-context scratch of the fused residual block (64 KiB:
 * a few rows of the depthwise output, kept in L1). */
#define NN_BLOCK_SCRATCH_FLOATS 16384

struct nn_ctx {
    const struct nn_backend *be;
    struct nnd_ctx *dnnl; /* FAST only */
    float *block_scratch; /* FAST on an AVX-512 CPU only: NN_BLOCK_SCRATCH_FLOATS */
};

struct nn_conv {
    struct nn_conv_desc d; /* d.prelu points at `prelu` below (or NULL) */
    int32_t oh, ow;
    float *w;     /* REF: [kh,kw,cin,cout] or [kh,kw,cin] (depthwise) */
    float *bias;  /* REF: [cout], zeros when none was given */
    float *prelu; /* [cout] when d.act == NN_ACT_PRELU */
    struct nnd_conv *dnnl;
};

struct nn_dense {
    int32_t in, out;
    enum nn_act act;
    float *w;    /* REF: [in, out] */
    float *bias; /* REF: [out], zeros when none was given */
    struct nnd_dense *dnnl;
};

/* Scalar activation, as the reference kernels apply it after the bias. */
float nn_ref_act1(float x, enum nn_act act, float alpha, float slope);

/* Reference kernels (ref.c). Shapes were checked by the caller. */
void nn_ref_conv(const struct nn_conv *k, const float *restrict in, float *restrict out);
void nn_ref_dense(const struct nn_dense *d, const float *restrict in, float *restrict out);

#ifdef FA_NN_WITH_DNNL
/* dnnl.c. All return FA_OK, FA_ERR_NOMEM or FA_ERR_NN_BACKEND. */
enum fa_status nnd_engine_new(struct nnd_engine **out);
void nnd_engine_free(struct nnd_engine *e);
enum fa_status nnd_ctx_new(struct nnd_engine *e, struct nnd_ctx **out);
void nnd_ctx_free(struct nnd_ctx *c);
/* Plans k (k->d, k->prelu set; w/bias in TF.js order, bias may be NULL). */
enum fa_status nnd_conv_new(struct nnd_engine *e, const struct nn_conv *k, const float *w,
                            const float *bias, struct nnd_conv **out);
void nnd_conv_free(struct nnd_conv *c);
enum fa_status nnd_conv_run(const struct nnd_conv *c, struct nnd_ctx *ctx, const float *in,
                            float *out);
enum fa_status nnd_dense_new(struct nnd_engine *e, const struct nn_dense *d, const float *w,
                             const float *bias, struct nnd_dense **out);
void nnd_dense_free(struct nnd_dense *c);
enum fa_status nnd_dense_run(const struct nnd_dense *c, struct nnd_ctx *ctx, const float *in,
                             float *out);
const char *nnd_conv_impl(const struct nnd_conv *c);
int nnd_max_threads(void);
#endif

/* For tests and benchmarks (backend.c): the implementation that runs the
 * layer ("ref", or oneDNN's name such as "brg:avx512_core"), and the number
 * of threads oneDNN's OpenMP runtime would use on the calling thread (1
 * after nn_ctx_new on it; -1 without OpenMP or oneDNN). */
const char *nn_conv_impl(const struct nn_conv *k);
int nn_max_threads(void);

#endif
