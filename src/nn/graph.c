/* TF.js graph models: model.json (topology + weightsManifest) to a planned
 * graph, and its run. The only file of the runtime that sees jansson: it
 * turns the JSON into nodes (names resolved to indices, put in execution
 * order by a depth-first sort that also finds cycles), binds every Const to
 * its weight (decoded by nn/tfjs.c exactly as TF.js does), fixes the input
 * shape, keeps only what the outputs need, lets each op check itself
 * (graph_ops.c), folds nodes whose inputs are all constant, and hands the
 * rest to graph_plan.c. A run is a loop over kernel calls on one arena
 * block: no allocation, no JSON, nothing shared is written. */
#include "nn/nn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "nn/graph_int.h"
#include "nn/kernels.h"
#include "nn/tfjs_json.h"

#define MAX_JSON_BYTES (64u << 20)
#define MAX_NODES 65536
#define MAX_NAME 1024
#define MAX_PATH_LEN 1024
#define FOLD_MAX_ELEMS ((size_t)1 << 20)

/* ------------------------------------------------------------- attributes */

static const json_t *attr_value(const struct gr_attrs *a, const char *key)
{
    if (a == NULL)
        return NULL;
    return json_object_get((const json_t *)a, key);
}

static bool parse_i64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0')
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)x;
    return true;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional, into buf (NUL-terminated). */
static bool b64_text(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '=') {
            for (; *p == '='; p++)
                ;
            if (*p != '\0')
                return false;
            break;
        }
        int v = b64_val(*p);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)(acc >> bits);
            if (c == '\0' || n + 1 >= cap)
                return false;
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
    return true;
}

enum fa_status gr_attr_int(const struct gr_attrs *a, const char *key, int64_t *out)
{
    const json_t *v = attr_value(a, key);
    if (v == NULL)
        return FA_ERR_NOT_FOUND;
    if (!json_is_object(v) || !parse_i64(json_object_get(v, "i"), out))
        return FA_ERR_MODEL_FORMAT;
    return FA_OK;
}

enum fa_status gr_attr_float(const struct gr_attrs *a, const char *key, double *out)
{
    const json_t *v = attr_value(a, key);
    if (v == NULL)
        return FA_ERR_NOT_FOUND;
    const json_t *f = json_is_object(v) ? json_object_get(v, "f") : NULL;
    if (!json_is_number(f))
        return FA_ERR_MODEL_FORMAT;
    *out = json_number_value(f);
    return FA_OK;
}

enum fa_status gr_attr_str(const struct gr_attrs *a, const char *key, char *buf, size_t cap)
{
    const json_t *v = attr_value(a, key);
    if (v == NULL)
        return FA_ERR_NOT_FOUND;
    if (!json_is_object(v) || cap == 0)
        return FA_ERR_MODEL_FORMAT;
    const char *s = json_string_value(json_object_get(v, "s"));
    if (s != NULL)
        return b64_text(s, buf, cap) ? FA_OK : FA_ERR_MODEL_FORMAT;
    const char *t = json_string_value(json_object_get(v, "type"));
    if (t == NULL || strlen(t) >= cap)
        return FA_ERR_MODEL_FORMAT;
    strcpy(buf, t);
    return FA_OK;
}

/* The array `field` of attribute key's "list" (absent = empty list). */
static enum fa_status attr_list(const struct gr_attrs *a, const char *key, const char *field,
                                const json_t **arr, int32_t cap, int32_t *n)
{
    const json_t *v = attr_value(a, key);
    if (v == NULL)
        return FA_ERR_NOT_FOUND;
    const json_t *list = json_is_object(v) ? json_object_get(v, "list") : NULL;
    if (!json_is_object(list))
        return FA_ERR_MODEL_FORMAT;
    *arr = json_object_get(list, field);
    if (*arr == NULL) {
        *n = 0;
        return FA_OK;
    }
    if (!json_is_array(*arr) || json_array_size(*arr) > (size_t)cap)
        return FA_ERR_MODEL_FORMAT;
    *n = (int32_t)json_array_size(*arr);
    return FA_OK;
}

enum fa_status gr_attr_ints(const struct gr_attrs *a, const char *key, int64_t *out, int32_t cap,
                            int32_t *n)
{
    const json_t *arr;
    enum fa_status rc = attr_list(a, key, "i", &arr, cap, n);
    if (rc != FA_OK)
        return rc;
    for (int32_t i = 0; i < *n; i++)
        if (!parse_i64(json_array_get(arr, (size_t)i), &out[i]))
            return FA_ERR_MODEL_FORMAT;
    return FA_OK;
}

enum fa_status gr_attr_strs(const struct gr_attrs *a, const char *key, char (*out)[32], int32_t cap,
                            int32_t *n)
{
    const json_t *arr;
    enum fa_status rc = attr_list(a, key, "s", &arr, cap, n);
    if (rc != FA_OK)
        return rc;
    for (int32_t i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(arr, (size_t)i));
        if (s == NULL || !b64_text(s, out[i], sizeof out[i]))
            return FA_ERR_MODEL_FORMAT;
    }
    return FA_OK;
}

enum fa_status gr_attr_shape(const struct gr_attrs *a, const char *key, int64_t *out, int32_t cap,
                             int32_t *n)
{
    const json_t *v = attr_value(a, key);
    if (v == NULL)
        return FA_ERR_NOT_FOUND;
    const json_t *shape = json_is_object(v) ? json_object_get(v, "shape") : NULL;
    if (!json_is_object(shape) || json_is_true(json_object_get(shape, "unknownRank")))
        return FA_ERR_MODEL_FORMAT;
    const json_t *dims = json_object_get(shape, "dim");
    if (dims == NULL) {
        *n = 0;
        return FA_OK;
    }
    if (!json_is_array(dims) || json_array_size(dims) > (size_t)cap)
        return FA_ERR_MODEL_FORMAT;
    *n = (int32_t)json_array_size(dims);
    for (int32_t i = 0; i < *n; i++) {
        const json_t *d = json_array_get(dims, (size_t)i);
        if (!json_is_object(d))
            return FA_ERR_MODEL_FORMAT;
        const json_t *size = json_object_get(d, "size");
        out[i] = 0; /* protobuf JSON leaves out a size of 0 */
        if (size != NULL && !parse_i64(size, &out[i]))
            return FA_ERR_MODEL_FORMAT;
    }
    return FA_OK;
}

/* ------------------------------------------------------------------ names */

struct name_ix {
    const char *name;
    int32_t idx;
};

static int cmp_name_ix(const void *a, const void *b)
{
    return strcmp(((const struct name_ix *)a)->name, ((const struct name_ix *)b)->name);
}

static int32_t lookup(const struct name_ix *map, size_t n, const char *name)
{
    struct name_ix key = {name, 0};
    const struct name_ix *hit = bsearch(&key, map, n, sizeof *map, cmp_name_ix);
    return hit != NULL ? hit->idx : -1;
}

/* "name", "name:0" -> node index; "name:k" (k > 0) is refused. Returns -1
 * (unknown), -2 (another output than the first), else the index. */
static int32_t resolve_tensor(const struct name_ix *map, size_t n, const char *ref)
{
    char buf[MAX_NAME + 1];
    size_t len = strlen(ref);
    if (len > MAX_NAME)
        return -1;
    memcpy(buf, ref, len + 1);
    char *colon = strrchr(buf, ':');
    long k = 0;
    if (colon != NULL && colon[1] != '\0' && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        k = strlen(colon + 1) > 6 ? 1000000 : strtol(colon + 1, NULL, 10);
        *colon = '\0';
    }
    int32_t i = lookup(map, n, buf);
    if (i >= 0 && k != 0)
        return -2;
    return i;
}

/* ----------------------------------------------------------------- build */

struct raw {
    const json_t *node; /* the NodeDef */
    const json_t *inputs;
};

static void graph_release_node(struct gr_node *n)
{
    if (n->def != NULL && n->def->cleanup != NULL)
        n->def->cleanup(n);
    fa_free(n->name);
    fa_free(n->in);
    fa_free(n->cown);
}

void nn_graph_free(struct nn_graph *g)
{
    if (g == NULL)
        return;
    for (int32_t i = 0; g->nodes != NULL && i < g->n_nodes; i++)
        graph_release_node(&g->nodes[i]);
    fa_free(g->nodes);
    for (size_t j = 0; j < g->n_outs; j++) {
        fa_free(g->outs[j].name);
        fa_free(g->outs[j].key);
    }
    fa_free(g->outs);
    fa_free(g->steps);
    fa_free_aligned(g->block_pool);
    nn_ctx_free(g->fold_ctx);
    nn_weights_fini(&g->weights);
    fa_free(g);
}

/* Parse the NodeDefs into g->nodes (file order) and `raw`. */
static enum fa_status read_nodes(struct nn_graph *g, const json_t *list, struct raw *raw,
                                 struct fa_errinfo *info)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const json_t *jn = json_array_get(list, (size_t)i);
        struct gr_node *n = &g->nodes[i];
        n->weight = -1;
        n->bias_node = n->slope_node = -1;
        n->root = i;
        const char *name = json_string_value(json_object_get(jn, "name"));
        const char *op = json_string_value(json_object_get(jn, "op"));
        if (!json_is_object(jn) || name == NULL || name[0] == '\0' || strlen(name) > MAX_NAME ||
            op == NULL) {
            fa_errinfo_set(info, "modelTopology.node[%d]: name or op missing", (int)i);
            return FA_ERR_MODEL_FORMAT;
        }
        n->name = fa_strdup(name);
        if (n->name == NULL)
            return FA_ERR_NOMEM;
        const json_t *attr = json_object_get(jn, "attr");
        if (attr != NULL && !json_is_object(attr)) {
            n->op = "";
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "attr is not an object");
        }
        n->attrs = (const struct gr_attrs *)attr;
        if (strcmp(op, "Const") == 0) {
            n->kind = GR_CONST;
            n->op = "Const";
        } else if (strcmp(op, "Placeholder") == 0) {
            n->kind = GR_INPUT;
            n->op = "Placeholder";
        } else {
            n->kind = GR_OP;
            n->def = gr_op_find(op);
            if (n->def == NULL) {
                n->op = "";
                return gr_fail(info, n, FA_ERR_MODEL_OP, "unsupported op '%.40s'", op);
            }
            n->op = n->def->name;
        }
        raw[i].node = jn;
        raw[i].inputs = json_object_get(jn, "input");
        if (raw[i].inputs != NULL && !json_is_array(raw[i].inputs))
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "input is not a list");
    }
    return FA_OK;
}

/* Resolve input names to indices (control inputs "^x" dropped). */
static enum fa_status link_inputs(struct nn_graph *g, const struct raw *raw,
                                  const struct name_ix *map, struct fa_errinfo *info)
{
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        size_t cnt = raw[i].inputs != NULL ? json_array_size(raw[i].inputs) : 0;
        if (cnt == 0)
            continue;
        if (cnt > MAX_NODES)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "too many inputs");
        n->in = fa_malloc(cnt * sizeof(int32_t));
        if (n->in == NULL)
            return FA_ERR_NOMEM;
        for (size_t k = 0; k < cnt; k++) {
            const char *ref = json_string_value(json_array_get(raw[i].inputs, k));
            if (ref == NULL)
                return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "input %zu is not a string", k);
            if (ref[0] == '^')
                continue;
            int32_t j = resolve_tensor(map, (size_t)g->n_nodes, ref);
            if (j == -2)
                return gr_fail(info, n, FA_ERR_MODEL_OP,
                               "input '%.50s' is a second output (unsupported)", ref);
            if (j < 0)
                return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "unknown input '%.50s'", ref);
            n->in[n->n_in++] = j;
        }
        if ((n->kind != GR_OP) && n->n_in > 0)
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "has data inputs");
    }
    return FA_OK;
}

/* Depth-first post-order: every node after its inputs; a back edge is a
 * cycle. Then renumber the nodes in that order. */
static enum fa_status sort_nodes(struct nn_graph *g, struct fa_errinfo *info)
{
    const int32_t n = g->n_nodes;
    enum fa_status rc = FA_ERR_NOMEM;
    uint8_t *state = fa_calloc((size_t)n, 1);
    int32_t *order = fa_malloc((size_t)n * sizeof(int32_t));
    int32_t *pos = fa_malloc((size_t)n * sizeof(int32_t));
    int32_t(*stack)[2] = fa_malloc((size_t)n * sizeof *stack);
    struct gr_node *sorted = fa_calloc((size_t)n, sizeof *sorted);
    int32_t done = 0;
    if (state == NULL || order == NULL || pos == NULL || stack == NULL || sorted == NULL)
        goto out;
    for (int32_t r = 0; r < n; r++) {
        if (state[r] != 0)
            continue;
        int32_t sp = 0;
        stack[sp][0] = r;
        stack[sp++][1] = 0;
        state[r] = 1;
        while (sp > 0) {
            int32_t v = stack[sp - 1][0], k = stack[sp - 1][1];
            if (k < g->nodes[v].n_in) {
                int32_t u = g->nodes[v].in[k];
                stack[sp - 1][1]++;
                if (state[u] == 1) {
                    rc = gr_fail(info, &g->nodes[u], FA_ERR_MODEL_FORMAT, "is part of a cycle");
                    goto out;
                }
                if (state[u] == 0) {
                    state[u] = 1;
                    stack[sp][0] = u;
                    stack[sp++][1] = 0;
                }
            } else {
                sp--;
                state[v] = 2;
                pos[v] = done;
                order[done++] = v;
            }
        }
    }
    for (int32_t i = 0; i < n; i++) {
        sorted[i] = g->nodes[order[i]];
        sorted[i].root = i;
        for (int32_t k = 0; k < sorted[i].n_in; k++)
            sorted[i].in[k] = pos[sorted[i].in[k]];
    }
    fa_free(g->nodes);
    g->nodes = sorted;
    sorted = NULL;
    rc = FA_OK;
out:
    fa_free(state);
    fa_free(order);
    fa_free(pos);
    fa_free(stack);
    fa_free(sorted);
    return rc;
}

/* Every Const takes the weight of its name. */
static enum fa_status bind_consts(struct nn_graph *g, struct fa_errinfo *info)
{
    const size_t nw = g->weights.n;
    struct name_ix *map = fa_malloc((nw ? nw : 1) * sizeof *map);
    if (map == NULL)
        return FA_ERR_NOMEM;
    for (size_t i = 0; i < nw; i++)
        map[i] = (struct name_ix){g->weights.t[i].name, (int32_t)i};
    qsort(map, nw, sizeof *map, cmp_name_ix);
    enum fa_status rc = FA_OK;
    for (int32_t i = 0; i < g->n_nodes && rc == FA_OK; i++) {
        struct gr_node *n = &g->nodes[i];
        if (n->kind != GR_CONST)
            continue;
        int32_t w = lookup(map, nw, n->name);
        if (w < 0) {
            rc = gr_fail(info, n, FA_ERR_MODEL_TENSOR, "no weight of that name in the manifest");
            break;
        }
        const struct nn_weight *t = &g->weights.t[w];
        if (t->rank > GR_MAX_RANK || t->count > GR_MAX_ELEMS) {
            rc = gr_fail(info, n, FA_ERR_MODEL_TENSOR, "weight too large");
            break;
        }
        n->weight = w;
        n->rank = t->rank;
        for (int32_t k = 0; k < t->rank; k++)
            n->dim[k] = t->shape[k];
        n->len = t->count;
        n->cdata = t->data;
        n->is_int = t->is_int32;
        n->loc = GR_LOC_CONST;
    }
    fa_free(map);
    return rc;
}

/* The Placeholder and the planned input shape [1, h, w, c]. */
static enum fa_status bind_input(struct nn_graph *g, const int32_t *hwc, struct fa_errinfo *info)
{
    g->input = -1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].kind != GR_INPUT)
            continue;
        if (g->input >= 0)
            return gr_fail(info, &g->nodes[i], FA_ERR_MODEL_OP,
                           "a second input (one input supported)");
        g->input = i;
    }
    if (g->input < 0) {
        fa_errinfo_set(info, "model has no Placeholder input");
        return FA_ERR_MODEL_FORMAT;
    }
    struct gr_node *n = &g->nodes[g->input];
    char dtype[32];
    enum fa_status rc = gr_attr_str(n->attrs, "dtype", dtype, sizeof dtype);
    if (rc == FA_OK && strcmp(dtype, "DT_FLOAT") != 0)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "input dtype %s unsupported", dtype);
    int64_t dims[8] = {-1, -1, -1, -1};
    int32_t rank = 4;
    rc = gr_attr_shape(n->attrs, "shape", dims, 8, &rank);
    if (rc == FA_ERR_NOT_FOUND)
        rank = 4;
    else if (rc != FA_OK)
        return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "shape attribute malformed");
    if (rank != 4)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "input of rank %d unsupported (need NHWC)",
                       (int)rank);
    if (dims[0] != -1 && dims[0] != 1)
        return gr_fail(info, n, FA_ERR_MODEL_OP, "input batch %lld unsupported",
                       (long long)dims[0]);
    size_t len = 1;
    for (int k = 0; k < 3; k++) {
        int64_t m = dims[k + 1];
        if (m != -1 && (m < 1 || m > GR_MAX_DIM))
            return gr_fail(info, n, FA_ERR_MODEL_FORMAT, "input dimension %lld", (long long)m);
        if (hwc != NULL) {
            if (hwc[k] < 1 || hwc[k] > GR_MAX_DIM || (m != -1 && m != hwc[k]))
                return gr_fail(info, n, FA_ERR_ARG,
                               "input %dx%dx%d does not fit the model's [%lld,%lld,%lld]",
                               (int)hwc[0], (int)hwc[1], (int)hwc[2], (long long)dims[1],
                               (long long)dims[2], (long long)dims[3]);
            m = hwc[k];
        }
        if (m == -1)
            return gr_fail(info, n, FA_ERR_ARG, "input size not fixed by the model: pass it");
        g->in_hwc[k] = (int32_t)m;
        len *= (size_t)m;
        if (len > GR_MAX_ELEMS)
            return gr_fail(info, n, hwc != NULL ? FA_ERR_ARG : FA_ERR_MODEL_TENSOR,
                           "input too large");
    }
    n->rank = 4;
    n->dim[0] = 1;
    for (int k = 0; k < 3; k++)
        n->dim[k + 1] = g->in_hwc[k];
    n->len = len;
    n->loc = GR_LOC_INPUT;
    return FA_OK;
}

static enum fa_status add_output(struct nn_graph *g, int32_t node, const char *key)
{
    struct gr_output *o = &g->outs[g->n_outs];
    o->node = node;
    o->name = fa_strdup(g->nodes[node].name);
    o->key = fa_strdup(key);
    g->n_outs++;
    return o->name != NULL && o->key != NULL ? FA_OK : FA_ERR_NOMEM;
}

/* Outputs: those asked for, else the signature's, else every node nothing
 * consumes (in execution order). */
static enum fa_status bind_outputs(struct nn_graph *g, const json_t *root,
                                   const struct nn_graph_opts *opts, const struct name_ix *map,
                                   struct fa_errinfo *info)
{
    const size_t nn = (size_t)g->n_nodes;
    enum fa_status rc;
    if (opts != NULL && opts->outputs != NULL) {
        if (opts->n_outputs == 0 || opts->n_outputs > nn) {
            fa_errinfo_set(info, "%zu outputs asked for", opts->n_outputs);
            return FA_ERR_ARG;
        }
        g->outs = fa_calloc(opts->n_outputs, sizeof *g->outs);
        if (g->outs == NULL)
            return FA_ERR_NOMEM;
        for (size_t j = 0; j < opts->n_outputs; j++) {
            int32_t i = opts->outputs[j] != NULL ? resolve_tensor(map, nn, opts->outputs[j]) : -1;
            if (i < 0) {
                fa_errinfo_set(info, "output '%.100s' is not a node of the model",
                               opts->outputs[j] != NULL ? opts->outputs[j] : "(null)");
                return FA_ERR_ARG;
            }
            if ((rc = add_output(g, i, g->nodes[i].name)) != FA_OK)
                return rc;
        }
        return FA_OK;
    }
    const json_t *sig = json_object_get(root, "signature");
    if (sig == NULL)
        sig = json_object_get(json_object_get(root, "userDefinedMetadata"), "signature");
    const json_t *outs = json_object_get(sig, "outputs");
    if (json_is_object(outs) && json_object_size(outs) > 0) {
        if (json_object_size(outs) > nn) {
            fa_errinfo_set(info, "signature has more outputs than nodes");
            return FA_ERR_MODEL_FORMAT;
        }
        g->outs = fa_calloc(json_object_size(outs), sizeof *g->outs);
        if (g->outs == NULL)
            return FA_ERR_NOMEM;
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)outs, key, v)
        {
            const char *name = json_string_value(json_object_get(v, "name"));
            int32_t i = name != NULL ? resolve_tensor(map, nn, name) : -1;
            if (i < 0) {
                fa_errinfo_set(info, "signature output '%.60s' names no node (%.60s)", key,
                               name != NULL ? name : "no name");
                return i == -2 ? FA_ERR_MODEL_OP : FA_ERR_MODEL_FORMAT;
            }
            if ((rc = add_output(g, i, key)) != FA_OK)
                return rc;
        }
        return FA_OK;
    }
    /* no signature: the nodes nothing consumes */
    bool *used = fa_calloc(nn, sizeof *used);
    if (used == NULL)
        return FA_ERR_NOMEM;
    size_t cnt = 0;
    for (size_t i = 0; i < nn; i++)
        for (int32_t k = 0; k < g->nodes[i].n_in; k++)
            used[g->nodes[i].in[k]] = true;
    for (size_t i = 0; i < nn; i++)
        cnt += g->nodes[i].kind == GR_OP && !used[i];
    g->outs = fa_calloc(cnt ? cnt : 1, sizeof *g->outs);
    rc = g->outs != NULL ? FA_OK : FA_ERR_NOMEM;
    for (size_t i = 0; i < nn && rc == FA_OK; i++)
        if (g->nodes[i].kind == GR_OP && !used[i])
            rc = add_output(g, (int32_t)i, g->nodes[i].name);
    fa_free(used);
    if (rc == FA_OK && cnt == 0) {
        fa_errinfo_set(info, "model has no outputs");
        rc = FA_ERR_MODEL_FORMAT;
    }
    return rc;
}

/* Compute node n now: its inputs are all constants. */
static enum fa_status fold(struct nn_graph *g, int32_t i, struct fa_errinfo *info)
{
    struct gr_node *n = &g->nodes[i];
    if (n->def->flags & GR_F_ALIAS) {
        n->cdata = g->nodes[n->in[0]].cdata;
        n->loc = GR_LOC_CONST;
        return FA_OK;
    }
    enum fa_status rc;
    if (g->fold_ctx == NULL && (rc = nn_ctx_new(g->be, &g->fold_ctx)) != FA_OK)
        return gr_fail(info, n, rc, "no context to fold constants");
    n->cown = fa_malloc(n->len * sizeof(float));
    if (n->cown == NULL)
        return FA_ERR_NOMEM;
    n->cdata = n->cown;
    n->loc = GR_LOC_CONST;
    n->is_int = false;
    if (n->def->setup != NULL && (rc = n->def->setup(g, n, info)) != FA_OK)
        return rc;
    struct gr_run r = {.g = g, .ctx = g->fold_ctx, .input = NULL, .base = NULL};
    rc = n->def->run(&r, n);
    if (n->def->cleanup != NULL)
        n->def->cleanup(n);
    if (rc != FA_OK)
        return gr_fail(info, n, rc, "folding failed");
    return FA_OK;
}

/* The fused blocks' weights moved into one allocation in run order, so a
 * run reads them as one sequence (hot runs of FaceMesh and Iris measured
 * 5-12% faster than with scattered arrays). Without memory for it they
 * stay where they are. */
static void pack_blocks(struct nn_graph *g)
{
    size_t total = 0;
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *n = &g->nodes[g->steps[s]];
        if (n->block != NULL)
            total += nn_block_pack_bytes(n->block);
    }
    if (total == 0 || (g->block_pool = fa_malloc_aligned(total)) == NULL)
        return;
    unsigned char *at = g->block_pool;
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *n = &g->nodes[g->steps[s]];
        if (n->block != NULL) {
            nn_block_pack(n->block, at);
            at += nn_block_pack_bytes(n->block);
        }
    }
}

/* Release the weights nothing reads at run time (convolutions copied
 * theirs into the kernel layer). */
static void drop_unused(struct nn_graph *g)
{
    bool *keep = fa_calloc(g->weights.n ? g->weights.n : 1, sizeof *keep);
    if (keep == NULL)
        return; /* keeping them all is correct, only larger */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        if (n->kind == GR_CONST && n->needed_run)
            keep[n->weight] = true;
        if (n->cown != NULL && !n->needed_run) {
            fa_free(n->cown);
            n->cown = NULL;
        }
    }
    for (size_t w = 0; w < g->weights.n; w++) {
        if (keep[w])
            continue;
        fa_free(g->weights.t[w].data);
        g->weights.t[w].data = NULL;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        const struct gr_node *r = &g->nodes[n->root];
        if (n->loc == GR_LOC_CONST && !r->needed_run)
            n->cdata = NULL;
        n->attrs = NULL;
    }
    fa_free(keep);
}

/* model.json (parsed) + its weights (taken) -> a planned graph. */
static enum fa_status build(const json_t *root, struct nn_weights *w, const struct nn_backend *be,
                            const struct nn_graph_opts *opts, struct nn_graph **out,
                            struct fa_errinfo *info)
{
    struct nn_graph *g = fa_calloc(1, sizeof *g);
    struct raw *raw = NULL;
    struct name_ix *map = NULL;
    enum fa_status rc = FA_ERR_NOMEM;
    if (g == NULL) {
        nn_weights_fini(w);
        return FA_ERR_NOMEM;
    }
    g->be = be;
    g->weights = *w;
    *w = (struct nn_weights){0};

    const json_t *list = json_object_get(json_object_get(root, "modelTopology"), "node");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > MAX_NODES) {
        fa_errinfo_set(info, "modelTopology.node missing, empty or too long");
        rc = FA_ERR_MODEL_FORMAT;
        goto out;
    }
    g->n_nodes = (int32_t)json_array_size(list);
    g->nodes = fa_calloc((size_t)g->n_nodes, sizeof *g->nodes);
    raw = fa_calloc((size_t)g->n_nodes, sizeof *raw);
    map = fa_malloc((size_t)g->n_nodes * sizeof *map);
    if (g->nodes == NULL || raw == NULL || map == NULL)
        goto out;
    if ((rc = read_nodes(g, list, raw, info)) != FA_OK)
        goto out;
    for (int32_t i = 0; i < g->n_nodes; i++)
        map[i] = (struct name_ix){g->nodes[i].name, i};
    qsort(map, (size_t)g->n_nodes, sizeof *map, cmp_name_ix);
    for (int32_t i = 1; i < g->n_nodes; i++)
        if (strcmp(map[i - 1].name, map[i].name) == 0) {
            rc = gr_fail(info, &g->nodes[map[i].idx], FA_ERR_MODEL_FORMAT, "duplicate name");
            goto out;
        }
    if ((rc = link_inputs(g, raw, map, info)) != FA_OK || (rc = sort_nodes(g, info)) != FA_OK)
        goto out;
    for (int32_t i = 0; i < g->n_nodes; i++) /* the renumbered order */
        map[i] = (struct name_ix){g->nodes[i].name, i};
    qsort(map, (size_t)g->n_nodes, sizeof *map, cmp_name_ix);
    if ((rc = bind_outputs(g, root, opts, map, info)) != FA_OK)
        goto out;
    if ((rc = bind_consts(g, info)) != FA_OK ||
        (rc = bind_input(g, opts != NULL ? opts->input_hwc : NULL, info)) != FA_OK)
        goto out;

    /* keep what the outputs need */
    for (size_t j = 0; j < g->n_outs; j++)
        g->nodes[g->outs[j].node].live = true;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--)
        if (g->nodes[i].live)
            for (int32_t k = 0; k < g->nodes[i].n_in; k++)
                g->nodes[g->nodes[i].in[k]].live = true;

    /* shapes, parameters, constant folding, in execution order */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        if (!n->live || n->kind != GR_OP)
            continue;
        if ((rc = n->def->prepare(g, n, info)) != FA_OK)
            goto out;
        bool all_const = n->n_in > 0;
        for (int32_t k = 0; k < n->n_in && all_const; k++)
            all_const = g->nodes[n->in[k]].loc == GR_LOC_CONST;
        /* a large constant result stays a kernel call rather than memory */
        if (all_const && ((n->def->flags & GR_F_ALIAS) || n->len <= FOLD_MAX_ELEMS) &&
            (rc = fold(g, i, info)) != FA_OK)
            goto out;
    }
    for (size_t j = 0; j < g->n_outs; j++) {
        const struct gr_node *n = &g->nodes[g->outs[j].node];
        if (n->rank > NN_GRAPH_MAX_RANK) {
            rc = gr_fail(info, n, FA_ERR_MODEL_OP, "output of rank %d unsupported", (int)n->rank);
            goto out;
        }
    }

    gr_fuse(g);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct gr_node *n = &g->nodes[i];
        if (n->live && n->kind == GR_OP && n->loc != GR_LOC_CONST && n->def->setup != NULL &&
            (rc = n->def->setup(g, n, info)) != FA_OK)
            goto out;
    }
    if ((rc = gr_plan(g, info)) != FA_OK)
        goto out;
    g->macs = 0;
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *n = &g->nodes[g->steps[s]];
        if (n->layer != NULL)
            g->macs += nn_conv_macs(n->layer);
        if (n->block != NULL)
            g->macs += nn_block_macs(n->block);
    }
    drop_unused(g);
    pack_blocks(g);
    nn_ctx_free(g->fold_ctx);
    g->fold_ctx = NULL;
    *out = g;
    g = NULL;
    rc = FA_OK;
out:
    if (rc == FA_ERR_NOMEM && info != NULL && info->what[0] == '\0')
        fa_errinfo_set(info, "out of memory loading the graph");
    nn_graph_free(g);
    fa_free(raw);
    fa_free(map);
    return rc;
}

/* A weightsManifest without any tensor (a graph of no constants): TF.js
 * loads it; the weights loader refuses empty manifests, so skip it. */
static bool manifest_empty(const json_t *manifest)
{
    if (!json_is_array(manifest))
        return false;
    for (size_t i = 0; i < json_array_size(manifest); i++) {
        const json_t *w = json_object_get(json_array_get(manifest, i), "weights");
        if (!json_is_array(w) || json_array_size(w) > 0)
            return false;
    }
    return true;
}

static enum fa_status parse_json(const char *text, size_t len, json_t **out,
                                 struct fa_errinfo *info)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        fa_errinfo_set(info, "model.json line %d: %.100s", err.line, err.text);
        return FA_ERR_MODEL_FORMAT;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fa_errinfo_set(info, "model.json is not an object");
        return FA_ERR_MODEL_FORMAT;
    }
    *out = root;
    return FA_OK;
}

enum fa_status nn_graph_parse(const char *json, size_t json_len, const uint8_t *bin, size_t bin_len,
                              const struct nn_backend *be, const struct nn_graph_opts *opts,
                              struct nn_graph **out, struct fa_errinfo *info)
{
    json_t *root = NULL;
    struct nn_weights w = {0};
    if (info != NULL)
        info->what[0] = '\0';
    if (json == NULL || be == NULL || out == NULL || (bin == NULL && bin_len > 0))
        return FA_ERR_ARG;
    enum fa_status rc = parse_json(json, json_len, &root, info);
    if (rc != FA_OK)
        return rc;
    const json_t *manifest = json_object_get(root, "weightsManifest");
    if (manifest_empty(manifest))
        manifest = NULL;
    if (manifest != NULL) {
        rc = nn_weights_from_json(manifest, bin != NULL ? bin : (const uint8_t *)"", bin_len, &w,
                                  info);
    } else if (bin_len != 0) {
        fa_errinfo_set(info, "weights given but model.json has no weightsManifest");
        rc = FA_ERR_MODEL_FORMAT;
    }
    if (rc == FA_OK)
        rc = build(root, &w, be, opts, out, info);
    json_decref(root);
    return rc;
}

enum fa_status nn_graph_load_opts(const char *path, const struct nn_backend *be,
                                  const struct nn_graph_opts *opts, struct nn_graph **out,
                                  struct fa_errinfo *info)
{
    struct fa_buf text = {0};
    json_t *root = NULL;
    struct nn_weights w = {0};
    char dir[MAX_PATH_LEN];
    enum fa_status rc;
    if (info != NULL)
        info->what[0] = '\0';
    if (path == NULL || be == NULL || out == NULL)
        return FA_ERR_ARG;
    const char *slash = strrchr(path, '/');
    size_t dn = slash == NULL ? 0 : (size_t)(slash - path);
    if (dn >= sizeof dir) {
        fa_errinfo_set(info, "model path too long");
        return FA_ERR_MODEL_MISSING;
    }
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (dn == 0) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, dn);
        dir[dn] = '\0';
    }
    rc = fa_read_file(path, MAX_JSON_BYTES, &text);
    if (rc != FA_OK) {
        fa_errinfo_set(info, "%.120s: %s", path, fa_status_str(rc));
        rc = rc == FA_ERR_NOT_FOUND ? FA_ERR_MODEL_MISSING
             : rc == FA_ERR_NOMEM   ? FA_ERR_NOMEM
                                    : FA_ERR_MODEL_FORMAT;
        goto out;
    }
    if ((rc = parse_json((const char *)text.p, text.n, &root, info)) != FA_OK)
        goto out;
    const json_t *manifest = json_object_get(root, "weightsManifest");
    if (manifest_empty(manifest))
        manifest = NULL;
    if (manifest != NULL && (rc = nn_weights_load_json(manifest, dir, &w, info)) != FA_OK)
        goto out;
    rc = build(root, &w, be, opts, out, info);
out:
    json_decref(root);
    fa_buf_fini(&text);
    return rc;
}

enum fa_status nn_graph_load(const char *model_json_path, const struct nn_backend *be,
                             const int32_t *input_hwc, struct nn_graph **out,
                             struct fa_errinfo *info)
{
    struct nn_graph_opts opts = {.input_hwc = input_hwc};
    return nn_graph_load_opts(model_json_path, be, &opts, out, info);
}

/* ------------------------------------------------------------- accessors */

size_t nn_graph_arena_bytes(const struct nn_graph *g)
{
    return g->arena_bytes;
}

void nn_graph_input_shape(const struct nn_graph *g, int32_t hwc[3])
{
    memcpy(hwc, g->in_hwc, sizeof g->in_hwc);
}

size_t nn_graph_output_count(const struct nn_graph *g)
{
    return g->n_outs;
}

const char *nn_graph_output_name(const struct nn_graph *g, size_t i)
{
    return i < g->n_outs ? g->outs[i].name : NULL;
}

const char *nn_graph_output_key(const struct nn_graph *g, size_t i)
{
    return i < g->n_outs ? g->outs[i].key : NULL;
}

int32_t nn_graph_output_shape(const struct nn_graph *g, size_t i, int32_t *shape)
{
    if (i >= g->n_outs)
        return 0;
    const struct gr_node *n = &g->nodes[g->outs[i].node];
    for (int32_t k = 0; k < n->rank; k++)
        shape[k] = n->dim[k];
    return n->rank;
}

size_t nn_graph_output_len(const struct nn_graph *g, size_t i)
{
    return i < g->n_outs ? g->nodes[g->outs[i].node].len : 0;
}

int nn_graph_output_find(const struct nn_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_outs; i++)
        if (strcmp(g->outs[i].name, name) == 0 || strcmp(g->outs[i].key, name) == 0)
            return (int)i;
    return -1;
}

size_t nn_graph_step_count(const struct nn_graph *g)
{
    return (size_t)g->n_steps;
}

uint64_t nn_graph_macs(const struct nn_graph *g)
{
    return g->macs;
}

/* -------------------------------------------------------------------- run */

enum fa_status nn_graph_run(const struct nn_graph *g, struct nn_ctx *ctx, struct fa_arena *arena,
                            const float *input, float **outputs)
{
    if (g == NULL || ctx == NULL || arena == NULL || input == NULL || outputs == NULL)
        return FA_ERR_ARG;
    if (ctx->be != g->be)
        return FA_ERR_ARG;
    const size_t mark = fa_arena_mark(arena);
    unsigned char *base = fa_arena_alloc(arena, g->arena_bytes);
    if (base == NULL)
        return FA_ERR_NOMEM;
    const struct gr_run r = {.g = g, .ctx = ctx, .input = input, .base = base};
    for (int32_t s = 0; s < g->n_steps; s++) {
        const struct gr_node *n = &g->nodes[g->steps[s]];
        enum fa_status rc = n->def->run(&r, n);
        if (rc != FA_OK) {
            fa_arena_release(arena, mark);
            return rc;
        }
    }
    for (size_t j = 0; j < g->n_outs; j++) {
        const struct gr_output *o = &g->outs[j];
        if (o->copy) {
            float *dst = (float *)(base + o->off);
            memcpy(dst, gr_ptr(&r, o->node), g->nodes[o->node].len * sizeof(float));
            outputs[j] = dst;
        } else {
            outputs[j] = gr_ptr(&r, o->node);
        }
    }
    return FA_OK;
}
