/* Private to nn/graph*.c: the intermediate form of a TF.js graph model.
 * graph.c parses model.json (the only file that sees jansson) into an array
 * of nodes in execution order; graph_ops.c knows each op (attributes, shape
 * inference, the kernel call); graph_plan.c fuses, places buffers and checks
 * the plan. One node = one value: every supported op has a single output. */
#ifndef FA_NN_GRAPH_INT_H
#define FA_NN_GRAPH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"

#define GR_MAX_RANK 6                  /* constants; activations: NN_GRAPH_MAX_RANK */
#define GR_MAX_ELEMS ((size_t)1 << 26) /* floats in any one tensor (256 MiB) */
#define GR_MAX_DIM (1 << 20)

enum gr_kind {
    GR_CONST, /* a weight of the manifest */
    GR_INPUT, /* the Placeholder */
    GR_OP,    /* everything else (may become constant by folding) */
};

enum gr_loc {
    GR_LOC_NONE,
    GR_LOC_CONST, /* cdata: a weight, or a folded value */
    GR_LOC_INPUT, /* the caller's input */
    GR_LOC_ARENA, /* arena block + off */
};

struct nn_graph;
struct gr_node;
struct gr_attrs; /* graph.c: a node's "attr" object; alive during load only */

/* Ops with this flag produce their input 0 reinterpreted (Reshape,
 * Identity): no kernel call, no buffer of their own. */
#define GR_F_ALIAS 1u
/* The output may take the buffer of a same-sized input whose last use is
 * this node (element-wise ops). */
#define GR_F_INPLACE 2u
/* Fusion roles: a convolution absorbs a following bias add and activation;
 * an add absorbs a following activation (and is a bias add in
 * GR_ADD_CHANS mode); an activation op can be absorbed. */
#define GR_F_CONV 4u
#define GR_F_ADD 8u
#define GR_F_ACT 16u
/* Like GR_F_INPLACE, but only over input 1, and only when input 1 is not
 * also input 0 (the fused residual block reads input 0's neighbours). */
#define GR_F_INPLACE_RES 32u

/* State of one run: where the input and the arena block are. */
struct gr_run {
    const struct nn_graph *g;
    struct nn_ctx *ctx;
    const float *input;
    unsigned char *base;
};

struct gr_opdef {
    const char *name; /* TF op name */
    unsigned flags;
    /* Check inputs and attributes, infer the output shape, set the node's
     * parameters. Constant inputs are already values. */
    enum fa_status (*prepare)(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info);
    /* Optional: create kernel objects (after fusion); undone by cleanup. */
    enum fa_status (*setup)(struct nn_graph *g, struct gr_node *n, struct fa_errinfo *info);
    void (*cleanup)(struct gr_node *n);
    /* Compute the node's value from its inputs (no allocation). */
    enum fa_status (*run)(const struct gr_run *r, const struct gr_node *n);
};

/* The op called `name`, or NULL when unsupported. */
const struct gr_opdef *gr_op_find(const char *name);
/* The fused residual block that gr_fuse makes of depthwise conv -> 1x1
 * conv -> add (-> activation); not a TF op. */
extern const struct gr_opdef gr_op_block;

enum gr_add_mode {
    GR_ADD_SAME,  /* two tensors of one shape */
    GR_ADD_CHANS, /* a tensor plus a constant vector over its last dim (or a scalar) */
};

struct gr_node {
    char *name;     /* owned */
    const char *op; /* the TF op name (static storage) */
    const struct gr_opdef *def;
    enum gr_kind kind;
    int32_t *in; /* data inputs (node indices, earlier in the order); owned */
    int32_t n_in;
    const struct gr_attrs *attrs; /* load time only */

    /* the value */
    int32_t rank;
    int32_t dim[GR_MAX_RANK];
    size_t len; /* elements */
    enum gr_loc loc;
    const float *cdata; /* GR_LOC_CONST */
    float *cown;        /* folded value (owned) */
    bool is_int;        /* constant of dtype int32 (held as exact floats) */
    int32_t weight;     /* GR_CONST: index in the graph's weights */

    /* parameters (by op) */
    struct nn_conv_desc conv; /* convolutions; conv.prelu set at setup */
    int32_t bias_node;        /* conv bias / GR_ADD_CHANS constant: node or -1 */
    int32_t slope_node;       /* PReLU slopes: node or -1 */
    enum nn_act act;          /* fused activation (conv, add, activation ops) */
    float alpha;              /* NN_ACT_LEAKY */
    struct nn_conv *layer;    /* conv: created by setup */
    struct nn_block *block;   /* fused residual block (gr_op_block): in = {x, res} */
    enum gr_add_mode add_mode;
    int32_t data_in; /* GR_ADD_CHANS: which input is the tensor */
    int32_t pool_k, pool_s;
    struct nn_pad4 pool_pad;
    int32_t pads[NN_GRAPH_MAX_RANK][2]; /* Pad: before/after, on the 4-D view */
    float pad_value;
    int32_t axis; /* ConcatV2 */

    /* planning */
    bool live;       /* needed for an output */
    bool pinned;     /* is (or shares its buffer with) an output */
    bool needed_run; /* a constant read by a kernel at run time */
    int32_t users;   /* consumers among live nodes */
    int32_t step;    /* position in the run order, -1 when not a kernel call */
    int32_t root;    /* the node whose buffer holds this value */
    size_t off;      /* GR_LOC_ARENA: offset in the block */
};

struct gr_output {
    int32_t node;
    char *name; /* node name (owned) */
    char *key;  /* signature key (owned) */
    bool copy;  /* value is a constant or the input: copied into the arena */
    size_t off; /* copy: where */
};

struct nn_graph {
    const struct nn_backend *be;
    struct nn_weights weights;
    struct gr_node *nodes;
    int32_t n_nodes;
    int32_t *steps; /* node indices, in run order */
    int32_t n_steps;
    int32_t input; /* the Placeholder node */
    int32_t in_hwc[3];
    struct gr_output *outs;
    size_t n_outs;
    size_t arena_bytes;
    uint64_t macs;
    struct nn_ctx *fold_ctx;   /* load time only: for folding constants */
    unsigned char *block_pool; /* the fused blocks' weights, in run order */
};

/* Where node `i`'s value is during run `r` (constants and the input
 * included). The const is cast away only for outputs, which are always in
 * the arena or, while folding, a constant the loader owns. */
static inline float *gr_ptr(const struct gr_run *r, int32_t i)
{
    const struct gr_node *n = &r->g->nodes[r->g->nodes[i].root];
    switch (n->loc) {
    case GR_LOC_CONST:
        return (float *)n->cdata;
    case GR_LOC_INPUT:
        return (float *)r->input;
    case GR_LOC_ARENA:
        return (float *)(r->base + n->off);
    case GR_LOC_NONE:
        break;
    }
    return NULL;
}

/* A node's value as a [n,h,w,c] kernel tensor: rank-4 shapes as they are,
 * lower ranks as [1, 1, len/c, c] with c the last dimension. */
struct nn_tensor gr_tensor(const struct gr_run *r, int32_t i);

/* Attributes (graph.c). Each returns FA_ERR_NOT_FOUND when the attribute is
 * absent and FA_ERR_MODEL_FORMAT when it has the wrong form. */
enum fa_status gr_attr_int(const struct gr_attrs *a, const char *key, int64_t *out);
enum fa_status gr_attr_float(const struct gr_attrs *a, const char *key, double *out);
/* "s" (base64 in the JSON) decoded, NUL-terminated; or "type" as written. */
enum fa_status gr_attr_str(const struct gr_attrs *a, const char *key, char *buf, size_t cap);
/* "list": {"i": [...]} into out[cap]; *n = number of entries (<= cap). */
enum fa_status gr_attr_ints(const struct gr_attrs *a, const char *key, int64_t *out, int32_t cap,
                            int32_t *n);
/* "list": {"s": [...]} decoded, each into out[k] of 32 bytes. */
enum fa_status gr_attr_strs(const struct gr_attrs *a, const char *key, char (*out)[32], int32_t cap,
                            int32_t *n);
/* "shape": {"dim": [{"size": ...}]} into out[cap], -1 for unknown sizes. */
enum fa_status gr_attr_shape(const struct gr_attrs *a, const char *key, int64_t *out, int32_t cap,
                             int32_t *n);

/* Error naming the node: "node '<name>' (<op>): <message>"; returns st. */
enum fa_status gr_fail(struct fa_errinfo *info, const struct gr_node *n, enum fa_status st,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* graph_plan.c */
/* Fuse bias and activations into convolutions, activations into adds, and
 * (FAST backend on an AVX-512 CPU, unless FACEAUTH_NN_FUSE=0) depthwise conv
 * -> 1x1 conv -> residual add into one block. */
void gr_fuse(struct nn_graph *g);
/* Order the kernel calls, place every buffer, size the arena, verify. */
enum fa_status gr_plan(struct nn_graph *g, struct fa_errinfo *info);

#endif
