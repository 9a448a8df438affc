/* The neural core: NHWC float32 tensors and a narrow op interface with two
 * implementations: plain C reference kernels (nn/ref.c, the tests' ground
 * truth and the fallback) and a fast backend on oneDNN (nn/dnnl.c), chosen at
 * build time and selectable at run time. Layers are created once at load
 * (weights repacked, primitives planned for a fixed input size) and are then
 * immutable and shared by all threads; each thread runs them with its own
 * struct nn_ctx. Nothing here allocates per frame.
 *
 * Also: the TF.js weights-manifest loader (nn/tfjs.c) used by the face-api
 * nets, and the TF.js graph-model runtime (nn/graph.c) for BlazeFace, FaceMesh
 * and Iris. */
#ifndef FA_NN_NN_H
#define FA_NN_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/status.h"

/* A dense float32 tensor, NHWC. `data` is borrowed: it points into a model's
 * weight block or a worker's arena. */
struct nn_tensor {
    float *data;
    int32_t n, h, w, c;
};

/* One image's [1, h, w, c] view of p. */
static inline struct nn_tensor nn_tensor_hwc(float *p, int32_t h, int32_t w, int32_t c)
{
    return (struct nn_tensor){.data = p, .n = 1, .h = h, .w = w, .c = c};
}

static inline size_t nn_tensor_len(const struct nn_tensor *t)
{
    return (size_t)t->n * (size_t)t->h * (size_t)t->w * (size_t)t->c;
}

/* A [1,h,w,c] tensor carved from an arena; data is NULL when it is full. */
struct nn_tensor nn_tensor_arena(struct fa_arena *a, int32_t h, int32_t w, int32_t c);

/* ------------------------------------------------------------------ backends */

enum nn_backend_kind {
    NN_BACKEND_REF,  /* plain C loops: slow, obviously correct */
    NN_BACKEND_FAST, /* oneDNN when built with it, else the reference */
};

/* Process-wide backend state (for oneDNN: the CPU engine). Immutable after
 * creation, shared by all threads. */
struct nn_backend;

/* Create a backend. FAST falls back to REF when the build has no fast
 * backend. The environment variable FACEAUTH_NN_BACKEND=ref|fast overrides
 * `kind` (for benchmarks and tests). Runs on: any thread. */
enum fa_status nn_backend_new(enum nn_backend_kind kind, struct nn_backend **out);
void nn_backend_free(struct nn_backend *be);
/* "ref" or "onednn". */
const char *nn_backend_name(const struct nn_backend *be);
/* True when this build has a fast backend. */
bool nn_fast_available(void);

/* Per-thread execution state (oneDNN stream, scratchpad). One per worker;
 * never shared between threads. Kernels run single-threaded on the calling
 * thread so that workers can run frames side by side. */
struct nn_ctx;
enum fa_status nn_ctx_new(const struct nn_backend *be, struct nn_ctx **out);
void nn_ctx_free(struct nn_ctx *ctx);

/* --------------------------------------------------------------- activations */

enum nn_act {
    NN_ACT_NONE,
    NN_ACT_RELU,
    NN_ACT_RELU6,
    NN_ACT_LEAKY, /* x > 0 ? x : alpha * x */
    NN_ACT_PRELU, /* x > 0 ? x : slope[c] * x, per channel */
    NN_ACT_SIGMOID,
};

/* Explicit padding of a window: rows before/after, columns before/after. */
struct nn_pad4 {
    int32_t t, b, l, r;
};

/* TensorFlow SAME padding for an in_h x in_w input, a kh x kw window and
 * stride s: out = ceil(in/s), total = max(0,(out-1)*s+k-in), t = total/2. */
struct nn_pad4 nn_pad_same(int32_t in_h, int32_t in_w, int32_t kh, int32_t kw, int32_t s);

/* Output size of a window op. */
static inline int32_t nn_out_dim(int32_t in, int32_t k, int32_t s, int32_t before, int32_t after)
{
    return (in + before + after - k) / s + 1;
}

/* ------------------------------------------------------------- convolutions */

struct nn_conv_desc {
    int32_t in_h, in_w; /* input size; the layer is planned for exactly this */
    int32_t kh, kw;
    int32_t cin, cout; /* depthwise: cout == cin */
    int32_t stride;    /* same in both directions */
    struct nn_pad4 pad;
    bool depthwise;     /* weights [kh,kw,cin,1] (channel multiplier 1) */
    enum nn_act act;    /* applied after the bias, fused */
    float alpha;        /* NN_ACT_LEAKY slope */
    const float *prelu; /* NN_ACT_PRELU: [cout] slopes, copied at creation */
};

/* A convolution (dense or depthwise) with bias and activation fused. */
struct nn_conv;

/* Create a layer. `w` is in TF.js order: [kh,kw,cin,cout] (dense) or
 * [kh,kw,cin,1] (depthwise); `bias` is [cout] or NULL. Both are copied (the
 * backend repacks them), so the caller may free its copies afterwards.
 * FA_ERR_ARG for inconsistent shapes, FA_ERR_NN_BACKEND if the backend
 * refuses, FA_ERR_NOMEM. Runs on: any thread (load time). */
enum fa_status nn_conv_new(const struct nn_backend *be, const struct nn_conv_desc *d,
                           const float *w, const float *bias, struct nn_conv **out);
void nn_conv_free(struct nn_conv *k);
/* Output spatial size and channels. */
void nn_conv_out_shape(const struct nn_conv *k, int32_t *oh, int32_t *ow, int32_t *oc);
/* Multiply-adds of one run (for GFLOP/s reports). */
uint64_t nn_conv_macs(const struct nn_conv *k);

/* in: [1, in_h, in_w, cin]; out: [1, oh, ow, cout], caller-allocated, must
 * not alias in. FA_ERR_ARG when shapes differ from the plan.
 * Runs on: the thread owning ctx. */
enum fa_status nn_conv_run(const struct nn_conv *k, struct nn_ctx *ctx, const struct nn_tensor *in,
                           struct nn_tensor *out);

/* Fully connected: out[o] = act(sum_i in[i] * W[i][o] + b[o]); W is [in, out]
 * (TF.js order), copied at creation. */
struct nn_dense;
enum fa_status nn_dense_new(const struct nn_backend *be, int32_t in, int32_t out_n, const float *w,
                            const float *bias, enum nn_act act, struct nn_dense **out);
void nn_dense_free(struct nn_dense *d);
/* in: any tensor with `in` elements; out: `out_n` elements (caller's). */
enum fa_status nn_dense_run(const struct nn_dense *d, struct nn_ctx *ctx, const float *in,
                            float *out);

/* The fused residual block (nn/block.c, AVX-512 only): out = act(res + pw(dw(x))), where dw
 * (optional) is a depthwise conv with its bias and no activation, pw a conv
 * with its bias and no activation (1x1 stride 1 after a dw; without one, a
 * square window with its stride at most the window and padding smaller
 * than it), and res (optional, given at run time) a tensor of the output's
 * shape. */
struct nn_block_desc {
    bool has_dw;
    struct nn_conv_desc dw, pw;
    enum nn_act act;    /* after the residual add: NONE, RELU, RELU6, LEAKY, PRELU */
    float alpha;        /* LEAKY */
    const float *prelu; /* PRELU: [pw.cout] slopes, copied at creation */
    /* 2: the residual given at run time is [2*oh, 2*ow, res_c], and the one
     * added is its 2 x 2 stride 2 max pool with channels res_c.. zero (the
     * nets' MaxPool -> Pad shortcut); 0: the residual is as it is */
    int32_t res_pool, res_c;
};
struct nn_block;

/* The CPU can run the block kernel (AVX-512), and so can this backend
 * (FAST only: the REF backend stays the plain reference). */
bool nn_block_cpu(void);
bool nn_block_available(const struct nn_backend *be);
/* Weights in TF.js order (dw [kh,kw,c,1], pw [kh,kw,c,cout]); dw_w only
 * with has_dw; biases may be NULL; all copied. FA_ERR_ARG when the descriptor is not such a block
 * (or its rows are too wide for the scratch), FA_ERR_NN_BACKEND when !nn_block_available(be),
 * FA_ERR_NOMEM. Runs on: any thread (load). */
enum fa_status nn_block_new(const struct nn_backend *be, const struct nn_block_desc *d,
                            const float *dw_w, const float *dw_b, const float *pw_w,
                            const float *pw_b, struct nn_block **out);
void nn_block_free(struct nn_block *b);
void nn_block_out_shape(const struct nn_block *b, int32_t *oh, int32_t *ow, int32_t *oc);
uint64_t nn_block_macs(const struct nn_block *b);
/* Bytes the block's weights take in a pool, and their move into one at
 * dst (64-byte aligned, that many bytes): a graph puts all its blocks'
 * weights in one run, in the order they are read, so that a run streams
 * them from memory as one sequence. The pool must outlive the block; b's
 * own arrays are freed. Runs on: any thread (load time). */
size_t nn_block_pack_bytes(const struct nn_block *b);
void nn_block_pack(struct nn_block *b, unsigned char *dst);
/* x: the first stage's input; res (or NULL): [oh, ow, cout] (or the pool's
 * source, see res_pool); out: [oh, ow, cout]. out may be a plain res (each
 * value is read before it is written) but must not overlap x or any other
 * part of res. Uses
 * ctx's scratch: one run per ctx at a time. Runs on: the ctx's thread. */
enum fa_status nn_block_run(const struct nn_block *b, struct nn_ctx *ctx, const float *x,
                            const float *res, float *out);

/* ------------------------------------------ cheap ops (plain C, any backend) */

/* out = act(a + b), element-wise, same shapes; out may alias a or b. */
void nn_add(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out,
            enum nn_act act);
/* In-place activation. `slopes` for PRELU ([c]), alpha for LEAKY. */
void nn_act_apply(struct nn_tensor *t, enum nn_act act, float alpha, const float *slopes);
/* Max pooling; padded positions are ignored (TF). out caller-allocated. */
void nn_maxpool(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                struct nn_tensor *out);
/* Average pooling, VALID-style when pad is zero; padded positions are
 * excluded from the count (TF). */
void nn_avgpool(const struct nn_tensor *in, int32_t k, int32_t s, struct nn_pad4 pad,
                struct nn_tensor *out);
/* Copy `in` into `out` surrounded by `pad`, filling with `value`; out is
 * [1, in.h+t+b, in.w+l+r, in.c]. */
void nn_pad(const struct nn_tensor *in, struct nn_pad4 pad, float value, struct nn_tensor *out);
/* Channel concat of a and b (same h, w): out [1,h,w,a.c+b.c]. */
void nn_concat_c(const struct nn_tensor *a, const struct nn_tensor *b, struct nn_tensor *out);
/* Mean over h and w: out has c elements. */
void nn_global_avgpool(const struct nn_tensor *in, float *out);

/* --------------------------------------------------------- TF.js weights */

/* One tensor of a weights manifest, dequantized to float32 exactly as TF.js
 * does ((float)((double)q * scale + min) for uint8/uint16; float16 widened). */
struct nn_weight {
    char *name;
    int32_t shape[6];
    int32_t rank;
    float *data; /* owned by the nn_weights that holds it */
    size_t count;
    bool is_int32; /* dtype int32: data holds the integers as floats (exact:
                      values beyond +-2^24 are rejected at load) */
};

/* All tensors of a weights manifest (`*-weights_manifest.json` + its .bin
 * shards, or the weightsManifest of a graph model.json). */
struct nn_weights {
    struct nn_weight *t;
    size_t n;
};

/* Load a face-api weights manifest and its shards from the manifest's
 * folder. A graph model.json is accepted too (its "weightsManifest" is
 * used). Shard paths must be relative and stay in that folder. Every tensor's dtype, shape and byte
 * range is checked against the shard sizes before any data is read; the manifest's total must equal
 * the shards' total. FA_ERR_MODEL_MISSING (file absent), FA_ERR_MODEL_FORMAT (malformed JSON, bad
 * dtype, sizes disagree), FA_ERR_NOMEM; `info` names the file or tensor. Runs on: any thread (load
 * time). */
enum fa_status nn_weights_load(const char *manifest_path, struct nn_weights *out,
                               struct fa_errinfo *info);
/* Same, with the manifest JSON (a manifest array, or a model.json object
 * with "weightsManifest") and the concatenated shard bytes in memory (for
 * fuzzing and tests); bin_len must equal the manifest's total. On failure
 * *out is untouched. float16 inf/NaN codes are rejected (FA_ERR_MODEL_FORMAT). */
enum fa_status nn_weights_parse(const char *json, size_t json_len, const uint8_t *bin,
                                size_t bin_len, struct nn_weights *out, struct fa_errinfo *info);
/* Free every tensor; *w is empty ({0}) afterwards. Accepts an empty struct. */
void nn_weights_fini(struct nn_weights *w);
/* The tensor called `name` with exactly the given shape (rank = number of
 * dims given, up to 6; pass -1 to accept any size in a dimension), or NULL
 * with `info` saying what is missing or how the shape differs. */
const struct nn_weight *nn_weights_get(const struct nn_weights *w, const char *name, int32_t rank,
                                       const int32_t *shape, struct fa_errinfo *info);

/* ------------------------------------------------------ TF.js graph models */

/* A TF.js graph model (model.json topology + weightsManifest + .bin shards)
 * planned at load into a fixed sequence of kernel calls (nn/graph.c): shapes
 * inferred for one fixed input shape (batch 1), constant sub-graphs folded,
 * bias and activation fused into the convolution before them, every
 * activation buffer placed at load in one block (buffers reused once their
 * last consumer has run). Immutable after load, shared by all threads; a run
 * allocates nothing from the heap. */
struct nn_graph;

#define NN_GRAPH_MAX_RANK 4 /* rank of any activation tensor */

struct nn_graph_opts {
    const int32_t *input_hwc;   /* fixed input [h, w, c], or NULL: the model's */
    const char *const *outputs; /* node names to return instead of the model's
                                   outputs (for tests: any computing node), or NULL */
    size_t n_outputs;
};

/* Load model.json and its weight shards (read from the file's folder; paths
 * must be relative and stay there) and plan the graph on backend `be` (which
 * must outlive the graph) for one input of shape [1, h, w, c]: `input_hwc`,
 * or the model's input shape when NULL (FA_ERR_ARG when the model does not
 * fix it, or when input_hwc contradicts a size the model fixes). On FA_OK,
 * *out owns the graph (nn_graph_free). Errors, with `info` naming the node
 * or tensor: FA_ERR_MODEL_MISSING (file absent), FA_ERR_MODEL_FORMAT
 * (malformed JSON, unknown input, cycle, shard sizes), FA_ERR_MODEL_OP (an op
 * or attribute this runtime does not support), FA_ERR_MODEL_TENSOR (weight
 * missing or mis-shaped, shapes that do not fit), FA_ERR_NN_BACKEND,
 * FA_ERR_NOMEM. Runs on: any thread (load time). */
enum fa_status nn_graph_load(const char *model_json_path, const struct nn_backend *be,
                             const int32_t *input_hwc, struct nn_graph **out,
                             struct fa_errinfo *info);
/* Same with options (input shape, outputs chosen by node name). */
enum fa_status nn_graph_load_opts(const char *model_json_path, const struct nn_backend *be,
                                  const struct nn_graph_opts *opts, struct nn_graph **out,
                                  struct fa_errinfo *info);
/* Same with model.json and the concatenated shards in memory (fuzzing,
 * tests); bin_len must equal the manifest's total. `opts` may be NULL. */
enum fa_status nn_graph_parse(const char *json, size_t json_len, const uint8_t *bin, size_t bin_len,
                              const struct nn_backend *be, const struct nn_graph_opts *opts,
                              struct nn_graph **out, struct fa_errinfo *info);
/* Accepts NULL. */
void nn_graph_free(struct nn_graph *g);

/* Bytes a run takes from its arena (one block: every activation and output). */
size_t nn_graph_arena_bytes(const struct nn_graph *g);
/* The planned input shape [h, w, c] (the input is [1, h, w, c], NHWC). */
void nn_graph_input_shape(const struct nn_graph *g, int32_t hwc[3]);
/* Outputs, in the model's signature order (or the order of opts.outputs). */
size_t nn_graph_output_count(const struct nn_graph *g);
/* Node name of output i ("Identity_2"); borrowed, valid while g lives. */
const char *nn_graph_output_name(const struct nn_graph *g, size_t i);
/* Signature key of output i ("output_mesh"), or its node name without one. */
const char *nn_graph_output_key(const struct nn_graph *g, size_t i);
/* Shape of output i into shape[NN_GRAPH_MAX_RANK]; returns its rank. */
int32_t nn_graph_output_shape(const struct nn_graph *g, size_t i, int32_t *shape);
/* Number of floats of output i. */
size_t nn_graph_output_len(const struct nn_graph *g, size_t i);
/* Index of the output whose node name or key is `name`, or -1. */
int nn_graph_output_find(const struct nn_graph *g, const char *name);
/* Kernel calls per run, after folding and fusion (for tests and logs). */
size_t nn_graph_step_count(const struct nn_graph *g);
/* Multiply-adds of one run (convolutions and matrix products). */
uint64_t nn_graph_macs(const struct nn_graph *g);

/* Run the graph on `input` ([1, h, w, c] floats, NHWC). Takes
 * nn_graph_arena_bytes(g) from `arena` (FA_ERR_NOMEM when it has less free;
 * nothing is taken on failure) and writes nn_graph_output_count(g) pointers
 * into `outputs`: borrowed, pointing into that block, valid until the arena
 * is reset or released below it. `ctx` must come from the graph's backend
 * (FA_ERR_ARG otherwise). No heap allocation. Runs on: the thread owning ctx
 * and arena; several threads may run one graph, each with its own. */
enum fa_status nn_graph_run(const struct nn_graph *g, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float **outputs);

#endif
