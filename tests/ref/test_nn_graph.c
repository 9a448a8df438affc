/* Parity of the TF.js graph runtime (nn/graph.c) with the JavaScript
 * reference, on the tensor dump of one frame (shared/data/reference/tensors/
 * facemesh/, TF.js 4.22 cpu backend): BlazeFace, FaceMesh and Iris run on
 * their dumped inputs, on both backends.
 *  1. Every graph node: the graph loaded with all computing nodes as outputs
 *     (so nothing is fused away), each node compared with its dump: NMSE and
 *     max |error| / max |reference| for nodes written in full; for the nodes
 *     dumped as statistics only, the 24 dumped values (first 8, 16 samples),
 *     the mean and the L2 norm.
 *  2. The graph outputs, loaded as the pipeline loads them (fused), against
 *     the dumped outputs: max |error| in the units of each output.
 *  3. Timing of each graph on the fast backend (median of 50 runs after
 *     warm-up, one thread), printed with its multiply-adds, not asserted.
 *  4. The package's other graph models (antispoof, liveness) load or are
 *     refused naming the unsupported op and its node.
 * Iris's dump has batch 2 (both eyes): the runtime plans batch 1, so each
 * eye is a run of its own. FA_TEST_QUICK=1 times 5 runs instead of 50. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/clock.h"
#include "nn/nn.h"
#include "testutil.h"

#define DUMP "data/reference/tensors/facemesh"

/* Tolerances, from PIPELINE.md section 9 and README.md "How the numbers
 * were validated": a float32 port should land within a few times TF.js's
 * own cpu-vs-wasm differences (other summation order, fused multiply-adds).
 * Those are, on the graph outputs: BlazeFace raw regressors 3.4e-5 (values
 * up to ~140), FaceMesh points 4.2e-4 image px = 2.0e-4 input px (a 399 px
 * face box on a 192 input), Iris contour 4.1e-4 image px = 2.8e-4 input px
 * (a 93 px eye box on a 64 input). Outputs: 4x those, in output units. */
#define TOL_OUT_BLAZEFACE 1.4e-4
#define TOL_OUT_FACEMESH 8.0e-4
#define TOL_OUT_IRIS 1.2e-3
/* Intermediate nodes: relative to the node's scale. 3.4e-5 on regressors
 * of magnitude ~140 is 2.4e-7 relative; with 4x and the deepest layers
 * (errors grow with depth), a node may differ by 1e-5 of its max |value|,
 * and its NMSE (sum of squared errors / sum of squares) be <= 1e-10. */
#define TOL_NODE_REL 1e-5
#define TOL_NODE_NMSE 1e-10

struct model {
    const char *name;
    double tol_out;
};

static const struct model MODELS[] = {
    {"blazeface", TOL_OUT_BLAZEFACE},
    {"facemesh", TOL_OUT_FACEMESH},
    {"iris", TOL_OUT_IRIS},
};

static json_t *g_dump; /* tensors.json */

static const json_t *tensor_entry(const char *name)
{
    const json_t *arr = json_object_get(g_dump, "tensors");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *t = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    return NULL;
}

static size_t shape_len(const json_t *t)
{
    const json_t *s = json_object_get(t, "shape");
    size_t n = 1;
    for (size_t i = 0; i < json_array_size(s); i++)
        n *= (size_t)json_integer_value(json_array_get(s, i));
    return n;
}

static float *read_f32(const char *file, size_t n)
{
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, DUMP "/%s", file);
    tu_shared_path(path, sizeof path, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    float *p = malloc(n * sizeof(float) + 1);
    assert_non_null(p);
    size_t got = fread(p, sizeof(float), n + 1, f);
    fclose(f);
    assert_int_equal(got, n);
    return p;
}

static struct nn_backend *backend(enum nn_backend_kind kind)
{
    struct nn_backend *be = NULL;
    assert_int_equal(nn_backend_new(kind, &be), FA_OK);
    return be;
}

struct cmp {
    double nmse, rel, max_abs, max_ref;
};

static struct cmp compare(const float *a, const float *r, size_t n)
{
    double se = 0, sr = 0;
    struct cmp c = {0};
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - r[i];
        se += d * d;
        sr += (double)r[i] * r[i];
        if (fabs(d) > c.max_abs)
            c.max_abs = fabs(d);
        if (fabs(r[i]) > c.max_ref)
            c.max_ref = fabs(r[i]);
    }
    c.nmse = sr > 0 ? se / sr : se;
    c.rel = c.max_ref > 0 ? c.max_abs / c.max_ref : c.max_abs;
    return c;
}

/* Run g once per batch item of `input` ([nb, h, w, c]); out[j] receives
 * output j for all items, back to back. */
static void run_batches(const struct nn_graph *g, struct nn_ctx *ctx, const float *input, int nb,
                        float **out)
{
    int32_t hwc[3];
    nn_graph_input_shape(g, hwc);
    const size_t in_len = (size_t)hwc[0] * hwc[1] * hwc[2];
    const size_t n_out = nn_graph_output_count(g);
    struct fa_arena arena;
    assert_int_equal(fa_arena_init(&arena, nn_graph_arena_bytes(g)), FA_OK);
    float **o = calloc(n_out, sizeof *o);
    assert_non_null(o);
    for (int b = 0; b < nb; b++) {
        fa_arena_reset(&arena);
        assert_int_equal(nn_graph_run(g, ctx, &arena, input + b * in_len, o), FA_OK);
        for (size_t j = 0; j < n_out; j++) {
            size_t len = nn_graph_output_len(g, j);
            memcpy(out[j] + b * len, o[j], len * sizeof(float));
        }
    }
    free(o);
    fa_arena_fini(&arena);
}

/* A node dumped as statistics only: its 24 dumped values, mean and L2. */
static void compare_stats(const json_t *t, const float *a, size_t n, double *worst_rel)
{
    const json_t *st = json_object_get(t, "stats");
    double maxref = fmax(fabs(json_number_value(json_object_get(st, "min"))),
                         fabs(json_number_value(json_object_get(st, "max"))));
    const json_t *first = json_object_get(st, "first");
    const json_t *sidx = json_object_get(st, "sample_index");
    const json_t *sval = json_object_get(st, "sample");
    double md = 0;
    for (size_t i = 0; i < json_array_size(first); i++)
        md = fmax(md, fabs(a[i] - json_number_value(json_array_get(first, i))));
    for (size_t i = 0; i < json_array_size(sidx); i++) {
        size_t k = (size_t)json_integer_value(json_array_get(sidx, i));
        assert_true(k < n);
        md = fmax(md, fabs(a[k] - json_number_value(json_array_get(sval, i))));
    }
    double sum = 0, l2 = 0;
    for (size_t i = 0; i < n; i++) {
        sum += a[i];
        l2 += (double)a[i] * a[i];
    }
    double ref_mean = json_number_value(json_object_get(st, "mean"));
    double ref_l2 = json_number_value(json_object_get(st, "l2"));
    double rel = md / maxref;
    double mean_rel = fabs(sum / n - ref_mean) / maxref;
    double l2_rel = fabs(sqrt(l2) - ref_l2) / ref_l2;
    if (rel > *worst_rel)
        *worst_rel = rel;
    if (rel > TOL_NODE_REL || mean_rel > TOL_NODE_REL || l2_rel > TOL_NODE_REL)
        fail_msg("%s (%s): stats differ: values %.3g, mean %.3g, l2 %.3g (relative)",
                 json_string_value(json_object_get(t, "name")),
                 json_string_value(json_object_get(t, "node")), rel, mean_rel, l2_rel);
}

/* 1. every node, nothing fused */
static void check_nodes(const struct model *m, enum nn_backend_kind kind)
{
    char prefix[64], name[128];
    snprintf(prefix, sizeof prefix, "%s.node", m->name);
    snprintf(name, sizeof name, "%s.input", m->name);
    const json_t *in_t = tensor_entry(name);
    assert_non_null(in_t);
    const json_t *shape = json_object_get(in_t, "shape");
    const int nb = (int)json_integer_value(json_array_get(shape, 0));
    int32_t hwc[3];
    for (int k = 0; k < 3; k++)
        hwc[k] = (int32_t)json_integer_value(json_array_get(shape, (size_t)k + 1));
    float *input = read_f32(json_string_value(json_object_get(in_t, "file")), shape_len(in_t));

    /* the dumped nodes */
    const json_t *arr = json_object_get(g_dump, "tensors");
    const json_t **ents = calloc(json_array_size(arr), sizeof *ents);
    const char **names = calloc(json_array_size(arr), sizeof *names);
    assert_true(ents != NULL && names != NULL);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *t = json_array_get(arr, i);
        if (strncmp(json_string_value(json_object_get(t, "name")), prefix, strlen(prefix)) != 0)
            continue;
        ents[n] = t;
        names[n++] = json_string_value(json_object_get(t, "node"));
    }
    assert_true(n > 100);

    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "human/%s.json", m->name);
    snprintf(path, sizeof path, "%s/%s", tu_models_dir(), rel);
    struct nn_backend *be = backend(kind);
    struct nn_ctx *ctx = NULL;
    assert_int_equal(nn_ctx_new(be, &ctx), FA_OK);
    struct nn_graph *g = NULL;
    struct fa_errinfo info = {{0}};
    struct nn_graph_opts opts = {.input_hwc = hwc, .outputs = names, .n_outputs = n};
    enum fa_status rc = nn_graph_load_opts(path, be, &opts, &g, &info);
    if (rc != FA_OK)
        fail_msg("%s: %s %s", path, fa_status_name(rc), info.what);
    assert_int_equal(nn_graph_output_count(g), n);

    float **out = calloc(n, sizeof *out);
    assert_non_null(out);
    for (size_t j = 0; j < n; j++) {
        /* the dump's shape is the node's shape with the batch */
        assert_int_equal(shape_len(ents[j]), nb * nn_graph_output_len(g, j));
        out[j] = malloc(shape_len(ents[j]) * sizeof(float));
        assert_non_null(out[j]);
    }
    run_batches(g, ctx, input, nb, out);

    double worst_nmse = 0, worst_rel = 0, worst_stats = 0;
    const char *worst_node = "";
    size_t full = 0;
    for (size_t j = 0; j < n; j++) {
        const size_t len = shape_len(ents[j]);
        const char *file = json_string_value(json_object_get(ents[j], "file"));
        if (file == NULL) {
            compare_stats(ents[j], out[j], len, &worst_stats);
            continue;
        }
        full++;
        float *ref = read_f32(file, len);
        struct cmp c = compare(out[j], ref, len);
        free(ref);
        if (c.nmse > worst_nmse)
            worst_nmse = c.nmse;
        if (c.rel > worst_rel) {
            worst_rel = c.rel;
            worst_node = names[j];
        }
        if (c.nmse > TOL_NODE_NMSE || c.rel > TOL_NODE_REL)
            fail_msg("%s %s node %s: NMSE %.3g, max err %.3g of max |ref| %.3g (rel %.3g)", m->name,
                     nn_backend_name(be), names[j], c.nmse, c.max_abs, c.max_ref, c.rel);
    }
    printf("%-9s %-6s nodes: %zu (%zu in full): worst NMSE %.2e, worst rel max err %.2e (%s); "
           "stats-only nodes worst rel %.2e\n",
           m->name, nn_backend_name(be), n, full, worst_nmse, worst_rel, worst_node, worst_stats);

    for (size_t j = 0; j < n; j++)
        free(out[j]);
    free(out);
    free(ents);
    free(names);
    free(input);
    nn_graph_free(g);
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

/* 2. the outputs of the graph as the pipeline loads it */
static void check_outputs(const struct model *m, enum nn_backend_kind kind)
{
    char name[128], path[1024];
    snprintf(name, sizeof name, "%s.input", m->name);
    const json_t *in_t = tensor_entry(name);
    const int nb = (int)json_integer_value(json_array_get(json_object_get(in_t, "shape"), 0));
    float *input = read_f32(json_string_value(json_object_get(in_t, "file")), shape_len(in_t));
    snprintf(path, sizeof path, "%s/human/%s.json", tu_models_dir(), m->name);

    struct nn_backend *be = backend(kind);
    struct nn_ctx *ctx = NULL;
    assert_int_equal(nn_ctx_new(be, &ctx), FA_OK);
    struct nn_graph *g = NULL;
    struct fa_errinfo info = {{0}};
    enum fa_status rc = nn_graph_load(path, be, NULL, &g, &info);
    if (rc != FA_OK)
        fail_msg("%s: %s %s", path, fa_status_name(rc), info.what);
    const size_t n = nn_graph_output_count(g);
    float **out = calloc(n, sizeof *out);
    assert_non_null(out);
    for (size_t j = 0; j < n; j++) {
        out[j] = malloc(nb * nn_graph_output_len(g, j) * sizeof(float));
        assert_non_null(out[j]);
    }
    run_batches(g, ctx, input, nb, out);
    for (size_t j = 0; j < n; j++) {
        snprintf(name, sizeof name, "%s.output.%s", m->name, nn_graph_output_name(g, j));
        const json_t *t = tensor_entry(name);
        assert_non_null(t);
        size_t len = shape_len(t);
        assert_int_equal(len, nb * nn_graph_output_len(g, j));
        float *ref = read_f32(json_string_value(json_object_get(t, "file")), len);
        struct cmp c = compare(out[j], ref, len);
        free(ref);
        printf("%-9s %-6s output %-10s (%-15s) max err %.3g (tolerance %.3g), NMSE %.3g, "
               "max |ref| %.3g\n",
               m->name, nn_backend_name(be), nn_graph_output_name(g, j), nn_graph_output_key(g, j),
               c.max_abs, m->tol_out, c.nmse, c.max_ref);
        if (c.max_abs > m->tol_out)
            fail_msg("%s output %s: max err %.3g > %.3g", m->name, nn_graph_output_name(g, j),
                     c.max_abs, m->tol_out);
    }
    for (size_t j = 0; j < n; j++)
        free(out[j]);
    free(out);
    free(input);
    nn_graph_free(g);
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

static void test_nodes_ref(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        check_nodes(&MODELS[i], NN_BACKEND_REF);
}

static void test_nodes_fast(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        check_nodes(&MODELS[i], NN_BACKEND_FAST);
}

static void test_outputs_ref(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        check_outputs(&MODELS[i], NN_BACKEND_REF);
}

static void test_outputs_fast(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        check_outputs(&MODELS[i], NN_BACKEND_FAST);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* 3. timing, fast backend, one thread */
static void test_timing(void **state)
{
    (void)state;
    const char *q = getenv("FA_TEST_QUICK");
    const int runs = q != NULL && strcmp(q, "1") == 0 ? 5 : 50;
    struct nn_backend *be = backend(NN_BACKEND_FAST);
    struct nn_ctx *ctx = NULL;
    assert_int_equal(nn_ctx_new(be, &ctx), FA_OK);
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/human/%s.json", tu_models_dir(), MODELS[i].name);
        struct nn_graph *g = NULL;
        assert_int_equal(nn_graph_load(path, be, NULL, &g, NULL), FA_OK);
        int32_t hwc[3];
        nn_graph_input_shape(g, hwc);
        size_t in_len = (size_t)hwc[0] * hwc[1] * hwc[2];
        float *input = malloc(in_len * sizeof(float));
        assert_non_null(input);
        for (size_t k = 0; k < in_len; k++)
            input[k] = (float)((k * 7919) % 255) / 255.0f;
        struct fa_arena arena;
        assert_int_equal(fa_arena_init(&arena, nn_graph_arena_bytes(g)), FA_OK);
        float *outs[8];
        int64_t t[64];
        for (int r = -5; r < runs; r++) {
            fa_arena_reset(&arena);
            int64_t t0 = fa_mono_ns();
            assert_int_equal(nn_graph_run(g, ctx, &arena, input, outs), FA_OK);
            if (r >= 0)
                t[r] = fa_mono_ns() - t0;
        }
        qsort(t, (size_t)runs, sizeof t[0], cmp_i64);
        double med_ms = (runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2) / 1e6;
        uint64_t macs = nn_graph_macs(g);
        printf("timing %-9s %s, %dx%dx%d, %zu kernel calls, %.1f M MACs, arena %.2f MiB: "
               "median %.3f ms of %d runs (min %.3f), %.2f GFLOP/s\n",
               MODELS[i].name, nn_backend_name(be), hwc[0], hwc[1], hwc[2], nn_graph_step_count(g),
               macs / 1e6, nn_graph_arena_bytes(g) / 1048576.0, med_ms, runs, t[0] / 1e6,
               2.0 * macs / (med_ms * 1e6));
        fa_arena_fini(&arena);
        free(input);
        nn_graph_free(g);
    }
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

/* 4. The package's other graph models: they load, or are refused at load
 * with the unsupported op and its node named (antispoof needs _FusedMatMul;
 * liveness Mul, _FusedMatMul and Softmax: not ops of the three models). */
static void test_other_models(void **state)
{
    (void)state;
    static const char *const names[] = {"antispoof", "liveness"};
    struct nn_backend *be = backend(NN_BACKEND_REF);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/human/%s.json", tu_models_dir(), names[i]);
        struct nn_graph *g = NULL;
        struct fa_errinfo info = {{0}};
        enum fa_status rc = nn_graph_load(path, be, NULL, &g, &info);
        printf("%-9s %s %s\n", names[i], fa_status_name(rc), info.what);
        if (rc == FA_OK) {
            nn_graph_free(g);
            continue;
        }
        assert_int_equal(rc, FA_ERR_MODEL_OP);
        assert_non_null(strstr(info.what, "node '"));
        assert_non_null(strstr(info.what, "unsupported op"));
        assert_null(g);
    }
    nn_backend_free(be);
}

static int setup(void **state)
{
    (void)state;
    char path[1024];
    tu_shared_path(path, sizeof path, DUMP "/tensors.json");
    json_error_t err;
    g_dump = json_load_file(path, 0, &err);
    if (g_dump == NULL) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_dump);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_ref), cmocka_unit_test(test_outputs_fast),
        cmocka_unit_test(test_nodes_ref),   cmocka_unit_test(test_nodes_fast),
        cmocka_unit_test(test_timing),      cmocka_unit_test(test_other_models),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
