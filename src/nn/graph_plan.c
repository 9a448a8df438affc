/* Planning a TF.js graph: fusion, run order and buffer placement.
 * Fusion folds a bias add and an activation into the convolution before
 * them (and an activation into an add) when the producer's value has no
 * other use. Placement gives every kernel output a buffer class: Reshape and
 * Identity share their input's buffer, an element-wise op takes the buffer
 * of a same-sized input that dies there, and classes whose lifetimes
 * (first write .. last read, in run order) overlap get disjoint ranges of
 * one block, placed largest first at the lowest free offset. Outputs live to
 * the end of the run. The plan is verified pairwise before it is accepted. */
#include "nn/graph_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/kernels.h"

#define ALIGN 64

/* A node that does work or passes a value at run time. */
static bool runtime(const struct gr_node *n)
{
    return n->live && n->kind == GR_OP && n->loc != GR_LOC_CONST;
}

/* -------------------------------------------------------------- fusion */

static void count_users(struct nn_graph *g, int32_t *first_user)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        g->nodes[i].users = 0;
        first_user[i] = -1;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const struct gr_node *m = &g->nodes[i];
        if (!runtime(m))
            continue;
        for (int32_t k = 0; k < m->n_in; k++) {
            struct gr_node *v = &g->nodes[m->in[k]];
            if (v->users++ == 0)
                first_user[m->in[k]] = i;
        }
    }
}

/* Every use of node c becomes a use of p; c disappears. */
static void replace(struct nn_graph *g, int32_t c, int32_t p, int32_t *first_user)
{
    struct gr_node *cn = &g->nodes[c], *pn = &g->nodes[p];
    for (int32_t i = c + 1; i < g->n_nodes; i++) {
        struct gr_node *m = &g->nodes[i];
        if (!runtime(m))
            continue;
        for (int32_t k = 0; k < m->n_in; k++)
            if (m->in[k] == c)
                m->in[k] = p;
    }
    for (size_t j = 0; j < g->n_outs; j++)
        if (g->outs[j].node == c)
            g->outs[j].node = p;
    pn->users = cn->users;
    pn->pinned = cn->pinned;
    first_user[p] = first_user[c];
    cn->live = false;
}

/* Can node p (conv or add) take over consumer c? */
static bool absorb(struct nn_graph *g, struct gr_node *p, int32_t self, const struct gr_node *c)
{
    const unsigned pf = p->def->flags, cf = c->def->flags;
    if ((pf & GR_F_CONV) && (cf & GR_F_ADD) && c->add_mode == GR_ADD_CHANS &&
        c->in[c->data_in] == self && p->bias_node < 0 && p->act == NN_ACT_NONE &&
        g->nodes[c->bias_node].len == (size_t)p->conv.cout) {
        p->bias_node = c->bias_node;
        return true;
    }
    if ((pf & (GR_F_CONV | GR_F_ADD)) && (cf & GR_F_ACT) && c->in[0] == self &&
        p->act == NN_ACT_NONE) {
        p->act = c->act;
        p->alpha = c->alpha;
        p->slope_node = c->slope_node;
        return true;
    }
    return false;
}

/* A depthwise or 1x1 conv that may disappear into a block: its value has
 * one use and no activation of its own. */
static bool block_part(const struct gr_node *n, bool depthwise)
{
    return runtime(n) && (n->def->flags & GR_F_CONV) && n->conv.depthwise == depthwise &&
           n->act == NN_ACT_NONE && n->users == 1 && !n->pinned;
}

/* The shortcut of a downsampling block: MaxPool 2x2 stride 2 (no padding,
 * even input) of some tensor, then maybe a Pad of zeros after the channels
 * only, neither value used elsewhere. Sets *pool (and *pad) or leaves NULL. */
static void pool_shortcut(struct nn_graph *g, int32_t r, struct gr_node **pool,
                          struct gr_node **pad)
{
    struct gr_node *n = &g->nodes[r], *p = NULL;
    if (!runtime(n) || n->users != 1 || n->pinned)
        return;
    if (strcmp(n->op, "Pad") == 0 || strcmp(n->op, "PadV2") == 0) {
        if (n->rank != 4 || n->pad_value != 0.0f || n->pads[3][0] != 0)
            return;
        for (int32_t i = 0; i < 3; i++)
            if (n->pads[i][0] != 0 || n->pads[i][1] != 0)
                return;
        p = n;
        n = &g->nodes[n->in[0]];
        if (!runtime(n) || n->users != 1 || n->pinned)
            return;
    }
    if (strcmp(n->op, "MaxPool") != 0 || n->pool_k != 2 || n->pool_s != 2 || n->pool_pad.t ||
        n->pool_pad.b || n->pool_pad.l || n->pool_pad.r)
        return;
    const struct gr_node *src = &g->nodes[n->in[0]];
    if (src->rank != 4 || src->dim[1] != 2 * n->dim[1] || src->dim[2] != 2 * n->dim[2])
        return;
    *pool = n;
    *pad = p;
}

/* Add node s = act(res + pw(dw(x))) becomes one block when the kernel
 * takes it. */
static void fuse_block(struct nn_graph *g, struct gr_node *s)
{
    for (int32_t k = 0; k < 2; k++) {
        struct gr_node *pw = &g->nodes[s->in[k]];
        if (!block_part(pw, false))
            continue;
        struct gr_node *dw = &g->nodes[pw->in[0]];
        if (!block_part(dw, true))
            continue;
        struct nn_block_desc d = {
            .has_dw = true,
            .dw = dw->conv,
            .pw = pw->conv,
            .act = s->act,
            .alpha = s->alpha,
            .prelu = s->slope_node >= 0 ? g->nodes[s->slope_node].cdata : NULL,
        };
        const float *dw_b = dw->bias_node >= 0 ? g->nodes[dw->bias_node].cdata : NULL;
        const float *pw_b = pw->bias_node >= 0 ? g->nodes[pw->bias_node].cdata : NULL;
        int32_t res = s->in[1 - k];
        struct gr_node *pool = NULL, *pad = NULL;
        pool_shortcut(g, res, &pool, &pad);
        if (pool != NULL) {
            d.res_pool = 2;
            d.res_c = g->nodes[pool->in[0]].dim[3];
            if (nn_block_new(g->be, &d, g->nodes[dw->in[1]].cdata, dw_b, g->nodes[pw->in[1]].cdata,
                             pw_b, &s->block) == FA_OK) {
                res = pool->in[0];
                pool->live = false;
                if (pad != NULL)
                    pad->live = false;
            } else {
                pool = NULL;
            }
        }
        if (pool == NULL) {
            d.res_pool = d.res_c = 0;
            if (nn_block_new(g->be, &d, g->nodes[dw->in[1]].cdata, dw_b, g->nodes[pw->in[1]].cdata,
                             pw_b, &s->block) != FA_OK)
                return; /* not such a block, or no memory: the steps stay apart */
        }
        s->in[1] = res;
        s->in[0] = dw->in[0];
        s->def = &gr_op_block;
        dw->live = false;
        pw->live = false;
        return;
    }
}

/* A conv the block kernel runs alone (1x1, or a window equal to its
 * stride): no oneDNN call, and its activation (PReLU included) fused. */
static void conv_block(struct nn_graph *g, struct gr_node *n)
{
    struct nn_block_desc d = {
        .pw = n->conv,
        .act = n->act,
        .alpha = n->alpha,
        .prelu = n->slope_node >= 0 ? g->nodes[n->slope_node].cdata : NULL,
    };
    d.pw.act = NN_ACT_NONE;
    const float *b = n->bias_node >= 0 ? g->nodes[n->bias_node].cdata : NULL;
    if (nn_block_new(g->be, &d, NULL, NULL, g->nodes[n->in[1]].cdata, b, &n->block) != FA_OK)
        return;
    n->def = &gr_op_block;
    n->n_in = 1;
}

static void fuse_blocks(struct nn_graph *g)
{
    const char *env = getenv("FACEAUTH_NN_FUSE");
    if (!nn_block_available(g->be) || (env != NULL && strcmp(env, "0") == 0))
        return;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *s = &g->nodes[i];
        if (runtime(s) && (s->def->flags & GR_F_ADD) && s->add_mode == GR_ADD_SAME &&
            s->act != NN_ACT_SIGMOID)
            fuse_block(g, s);
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        if (runtime(n) && (n->def->flags & GR_F_CONV) && !n->conv.depthwise &&
            n->act != NN_ACT_SIGMOID)
            conv_block(g, n);
    }
}

void gr_fuse(struct nn_graph *g)
{
    int32_t *first_user = fa_malloc((size_t)g->n_nodes * sizeof(int32_t));
    if (first_user == NULL)
        return; /* fusion is an optimisation: the plan works without it */
    count_users(g, first_user);
    for (int32_t i = 0; i < g->n_nodes; i++)
        g->nodes[i].pinned = false;
    for (size_t j = 0; j < g->n_outs; j++)
        g->nodes[g->outs[j].node].pinned = true;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *p = &g->nodes[i];
        if (!runtime(p) || !(p->def->flags & (GR_F_CONV | GR_F_ADD)))
            continue;
        while (p->users == 1 && !p->pinned && first_user[i] >= 0) {
            int32_t c = first_user[i];
            const struct gr_node *cn = &g->nodes[c];
            if (!runtime(cn) || !absorb(g, p, i, cn))
                break;
            replace(g, c, i, first_user);
        }
    }
    fuse_blocks(g);
    fa_free(first_user);
}

/* --------------------------------------------------------------- placing */

static int32_t find(int32_t *parent, int32_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

struct cls {
    int32_t node; /* root node, or -1 - j for the copy of output j */
    int32_t first, last;
    size_t bytes, off;
};

static int cmp_cls(const void *a, const void *b)
{
    const struct cls *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

static bool overlap_t(const struct cls *a, const struct cls *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static bool overlap_m(const struct cls *a, const struct cls *b)
{
    return a->off < b->off + b->bytes && b->off < a->off + a->bytes;
}

static int cmp_off(const void *a, const void *b)
{
    const struct cls *const *x = a, *const *y = b;
    return (*x)->off < (*y)->off ? -1 : (*x)->off > (*y)->off;
}

/* Lowest offset where c fits beside the already placed classes that are
 * alive at the same time. */
static enum fa_status place(struct cls *all, size_t n_placed, struct cls *c, const struct cls **tmp)
{
    size_t k = 0;
    for (size_t i = 0; i < n_placed; i++)
        if (overlap_t(&all[i], c))
            tmp[k++] = &all[i];
    qsort(tmp, k, sizeof *tmp, cmp_off);
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        if (tmp[i]->off >= off + c->bytes)
            break;
        size_t end = tmp[i]->off + tmp[i]->bytes;
        if (end > off)
            off = end;
    }
    if (off > SIZE_MAX / 2)
        return FA_ERR_TOO_LARGE;
    c->off = off;
    return FA_OK;
}

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

enum fa_status gr_plan(struct nn_graph *g, struct fa_errinfo *info)
{
    const int32_t nn = g->n_nodes;
    int32_t *parent = NULL, *last = NULL;
    bool *pin = NULL;
    struct cls *cls = NULL;
    const struct cls **tmp = NULL;
    enum fa_status rc = FA_ERR_NOMEM;

    parent = fa_malloc((size_t)nn * sizeof *parent);
    last = fa_malloc((size_t)nn * sizeof *last);
    pin = fa_calloc((size_t)nn, sizeof *pin);
    g->steps = fa_malloc((size_t)nn * sizeof *g->steps);
    if (parent == NULL || last == NULL || pin == NULL || g->steps == NULL)
        goto out;

    /* run order; aliases join their input's class */
    g->n_steps = 0;
    for (int32_t i = 0; i < nn; i++) {
        struct gr_node *n = &g->nodes[i];
        parent[i] = i;
        n->step = -1;
        /* a folded Reshape of a weight reads that weight's data */
        bool alias = n->kind == GR_OP && (n->def->flags & GR_F_ALIAS);
        if (alias && (runtime(n) || n->loc == GR_LOC_CONST)) {
            parent[i] = find(parent, n->in[0]);
        } else if (runtime(n)) {
            g->steps[g->n_steps] = i;
            n->step = g->n_steps++;
        }
    }
    /* lifetimes of the classes: first write .. last read; outputs pinned */
    for (int32_t i = 0; i < nn; i++)
        last[i] = g->nodes[i].step;
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *m = &g->nodes[g->steps[s]];
        for (int32_t k = 0; k < m->n_in; k++) {
            int32_t v = find(parent, m->in[k]);
            if (g->nodes[v].step >= 0 && last[v] < s)
                last[v] = s;
        }
    }
    for (size_t j = 0; j < g->n_outs; j++)
        pin[find(parent, g->outs[j].node)] = true;

    /* element-wise ops write over an input that dies with them */
    for (int32_t s = 0; s < g->n_steps; s++) {
        const int32_t mi = g->steps[s];
        const struct gr_node *m = &g->nodes[mi];
        const bool res_only = (m->def->flags & GR_F_INPLACE_RES) != 0;
        if (!(m->def->flags & GR_F_INPLACE) && !res_only)
            continue;
        int32_t own = find(parent, mi);
        for (int32_t k = 0; k < m->n_in; k++) {
            int32_t v = find(parent, m->in[k]);
            if (res_only && (k != 1 || v == find(parent, m->in[0])))
                continue;
            if (v == own || g->nodes[v].step < 0 || pin[v] || last[v] != s ||
                g->nodes[v].len != m->len)
                continue;
            parent[own] = v;
            last[v] = last[own];
            pin[v] = pin[own];
            break;
        }
    }

    /* one class per buffer, plus one per output that must be copied */
    size_t n_cls = 0;
    cls = fa_calloc((size_t)nn + g->n_outs, sizeof *cls);
    tmp = fa_malloc(((size_t)nn + g->n_outs) * sizeof *tmp);
    if (cls == NULL || tmp == NULL)
        goto out;
    for (int32_t i = 0; i < nn; i++) {
        struct gr_node *n = &g->nodes[i];
        n->root = find(parent, i);
        if (n->step >= 0 && n->root == i) {
            cls[n_cls++] = (struct cls){.node = i,
                                        .first = n->step,
                                        .last = pin[i] ? g->n_steps : last[i],
                                        .bytes = round_up(n->len * sizeof(float))};
        }
    }
    for (size_t j = 0; j < g->n_outs; j++) {
        const struct gr_node *n = &g->nodes[g->nodes[g->outs[j].node].root];
        g->outs[j].copy = n->step < 0;
        if (g->outs[j].copy)
            cls[n_cls++] = (struct cls){.node = -1 - (int32_t)j,
                                        .first = g->n_steps,
                                        .last = g->n_steps,
                                        .bytes = round_up(n->len * sizeof(float))};
    }
    qsort(cls, n_cls, sizeof *cls, cmp_cls);
    g->arena_bytes = 0;
    for (size_t c = 0; c < n_cls; c++) {
        if ((rc = place(cls, c, &cls[c], tmp)) != FA_OK) {
            fa_errinfo_set(info, "activations too large");
            goto out;
        }
        if (cls[c].off + cls[c].bytes > g->arena_bytes)
            g->arena_bytes = cls[c].off + cls[c].bytes;
    }
    /* verify: classes alive at the same time never share bytes */
    for (size_t a = 0; a < n_cls; a++)
        for (size_t b = a + 1; b < n_cls; b++)
            if (overlap_t(&cls[a], &cls[b]) && overlap_m(&cls[a], &cls[b]) && cls[a].bytes > 0 &&
                cls[b].bytes > 0) {
                fa_errinfo_set(info, "buffer plan overlaps (internal error)");
                rc = FA_ERR_INTERNAL;
                goto out;
            }
    for (size_t c = 0; c < n_cls; c++) {
        if (cls[c].node >= 0) {
            g->nodes[cls[c].node].loc = GR_LOC_ARENA;
            g->nodes[cls[c].node].off = cls[c].off;
        } else {
            g->outs[-1 - cls[c].node].off = cls[c].off;
        }
    }

    /* constants read at run time (the others may be released) */
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *m = &g->nodes[g->steps[s]];
        if (m->def->flags & GR_F_CONV)
            continue; /* the kernel layer copied what it needs */
        for (int32_t k = 0; k < m->n_in; k++)
            g->nodes[g->nodes[m->in[k]].root].needed_run = true;
        if (m->bias_node >= 0)
            g->nodes[g->nodes[m->bias_node].root].needed_run = true;
        if (m->slope_node >= 0)
            g->nodes[g->nodes[m->slope_node].root].needed_run = true;
    }
    for (size_t j = 0; j < g->n_outs; j++)
        if (g->outs[j].copy)
            g->nodes[g->nodes[g->outs[j].node].root].needed_run = true;
    rc = FA_OK;
out:
    if (rc == FA_ERR_NOMEM)
        fa_errinfo_set(info, "out of memory planning the graph");
    fa_free(parent);
    fa_free(last);
    fa_free(pin);
    fa_free(cls);
    fa_free(tmp);
    return rc;
}
