/* Graph fusion A/B: each graph model loaded twice on the fast backend, once
 * with the fused residual-block kernel (the default) and once without
 * (FACEAUTH_NN_FUSE=0 while it loads), run alternately on the same input so
 * that both see the same machine load; prints per model the median and p95
 * ms of each, the ratio unfused/fused, the kernel calls per run, and the
 * largest difference between the two outputs (they must agree to float
 * rounding). Single thread.
 *   usage: bench_graph [--runs N] [MODEL...]   (default: blazeface facemesh
 *          iris, from $FACEAUTH_MODELS/human or the build's models dir) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "nn/nn.h"
#include "stats.h"

static struct samples S[2];

static double ms_of(const struct nn_graph *g, struct nn_ctx *ctx, struct fa_arena *a,
                    const float *in, float **outs)
{
    const int64_t t0 = fa_mono_ns();
    const size_t mark = fa_arena_mark(a);
    if (nn_graph_run(g, ctx, a, in, outs) != FA_OK) {
        fprintf(stderr, "bench_graph: run failed\n");
        exit(1);
    }
    const double ms = (double)(fa_mono_ns() - t0) / 1e6;
    fa_arena_release(a, mark);
    return ms;
}

static int one(const char *models, const char *name, struct nn_backend *be, struct nn_ctx *ctx,
               int runs)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/human/%s.json", models, name);
    struct nn_graph *g[2] = {NULL, NULL};
    struct fa_errinfo info = {{0}};
    for (int k = 0; k < 2; k++) {
        if (k == 1)
            setenv("FACEAUTH_NN_FUSE", "0", 1);
        enum fa_status rc = nn_graph_load(path, be, NULL, &g[k], &info);
        unsetenv("FACEAUTH_NN_FUSE");
        if (rc != FA_OK) {
            fprintf(stderr, "bench_graph: %s: %s\n", path, info.what);
            return 1;
        }
    }
    int32_t hwc[3];
    nn_graph_input_shape(g[0], hwc);
    const size_t n_in = (size_t)hwc[0] * hwc[1] * hwc[2];
    float *in = malloc(n_in * sizeof(float));
    struct fa_arena arena = {0}, *a = &arena;
    const size_t need = nn_graph_arena_bytes(g[0]) + nn_graph_arena_bytes(g[1]) + 4096;
    if (in == NULL || fa_arena_init(a, need) != FA_OK) {
        fprintf(stderr, "bench_graph: out of memory\n");
        return 1;
    }
    srand(7);
    for (size_t i = 0; i < n_in; i++)
        in[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;

    /* agreement: both outputs of one input, kept side by side */
    float *o0[16], *o1[16];
    const size_t n_out = nn_graph_output_count(g[0]);
    if (n_out > 16 || nn_graph_run(g[0], ctx, a, in, o0) != FA_OK ||
        nn_graph_run(g[1], ctx, a, in, o1) != FA_OK) {
        fprintf(stderr, "bench_graph: %s: run failed\n", name);
        return 1;
    }
    double diff = 0, mag = 0;
    for (size_t j = 0; j < n_out; j++)
        for (size_t i = 0; i < nn_graph_output_len(g[0], j); i++) {
            diff = fmax(diff, fabs((double)o0[j][i] - o1[j][i]));
            mag = fmax(mag, fabs((double)o1[j][i]));
        }
    fa_arena_reset(a);

    S[0].n = S[1].n = 0;
    float *outs[16];
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < 2; k++) {
            const int which = (r & 1) ? 1 - k : k; /* ABBA order */
            samples_add(&S[which], ms_of(g[which], ctx, a, in, outs));
        }
    const double f50 = samples_pct(&S[0], 0.5), f95 = samples_pct(&S[0], 0.95);
    const double u50 = samples_pct(&S[1], 0.5), u95 = samples_pct(&S[1], 0.95);
    printf("%-10s %8.3f %8.3f %8.3f %8.3f %7.2fx %6zu %6zu   %.2g (of %.3g)\n", name, f50, f95, u50,
           u95, u50 / f50, nn_graph_step_count(g[0]), nn_graph_step_count(g[1]), diff, mag);
    fa_arena_fini(a);
    free(in);
    nn_graph_free(g[0]);
    nn_graph_free(g[1]);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 200;
    const char *names[8];
    int n_names = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (n_names < 8)
            names[n_names++] = argv[i];
    }
    if (n_names == 0) {
        names[0] = "blazeface";
        names[1] = "facemesh";
        names[2] = "iris";
        n_names = 3;
    }
    const char *models = getenv("FACEAUTH_MODELS");
    if (models == NULL || !*models)
        models = FA_MODELS_DIR_DEFAULT;
    struct nn_backend *be = NULL;
    struct nn_ctx *ctx = NULL;
    if (nn_backend_new(NN_BACKEND_FAST, &be) != FA_OK || nn_ctx_new(be, &ctx) != FA_OK) {
        fprintf(stderr, "bench_graph: no backend\n");
        return 1;
    }
    printf("graph fusion A/B, %d runs each, alternating, one thread, backend %s\n", runs,
           nn_backend_name(be));
    printf("%-10s %8s %8s %8s %8s %8s %6s %6s   %s\n", "model", "fused", "p95", "unfused", "p95",
           "ratio", "calls", "calls", "max |diff|");
    int rc = 0;
    for (int i = 0; i < n_names; i++)
        rc |= one(models, names[i], be, ctx, runs);
    nn_ctx_free(ctx);
    nn_backend_free(be);
    return rc;
}
