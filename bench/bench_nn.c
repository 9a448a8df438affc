/* Kernel micro-benchmark: the reference and the fast backend on
 * representative layers, single thread, median and p95 over N runs, with
 * GFLOP/s (2 x multiply-adds / time) beside one core's float32 peak: an
 * estimate from /proc/cpuinfo's "cpu MHz" x FLOP/cycle of the widest FMA
 * (under a hypervisor that is the base clock, not the turbo one), and a
 * measured FMA loop (16 independent chains, many short trials, the best, so
 * that time slices lost to other processes do not count). %peak is against
 * the measured figure. The last group is the 29 convolutions of the face
 * descriptor (face-api's ResNet-34-like net, ARCHITECTURE.md 7.2), run back
 * to back as the net does.
 *   usage: bench_nn [--runs N] [--ref-runs N] [--no-ref] [--layers]
 * (--layers: per-layer medians and oneDNN's implementation names) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "peak.h"

#define MAX_RUNS 1000
#define MAX_LAYERS 32

struct layer_spec {
    const char *name;
    int32_t h, w, k, cin, cout, s;
    bool same, dw;
};

struct group {
    const char *name;
    struct layer_spec l[MAX_LAYERS];
    int n;
};

static const struct group groups[] = {
    {"conv3x3 s2 150x150x3->32", {{"conv", 150, 150, 3, 3, 32, 2, true, false}}, 1},
    {"conv3x3 s1 38x38x64->64", {{"conv", 38, 38, 3, 64, 64, 1, true, false}}, 1},
    {"dw3x3+pw1x1 128x128x32->64",
     {{"dw3x3", 128, 128, 3, 32, 32, 1, true, true},
      {"pw1x1", 128, 128, 1, 32, 64, 1, true, false}},
     2},
    {"descriptor: 29 convs",
     {{"conv32_down 7x7/2", 150, 150, 7, 3, 32, 2, false, false},
      {"conv32 x6", 35, 35, 3, 32, 32, 1, true, false},
      {"", 35, 35, 3, 32, 32, 1, true, false},
      {"", 35, 35, 3, 32, 32, 1, true, false},
      {"", 35, 35, 3, 32, 32, 1, true, false},
      {"", 35, 35, 3, 32, 32, 1, true, false},
      {"", 35, 35, 3, 32, 32, 1, true, false},
      {"conv64_down", 35, 35, 3, 32, 64, 2, false, false},
      {"conv64 x7", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"", 17, 17, 3, 64, 64, 1, true, false},
      {"conv128_down", 17, 17, 3, 64, 128, 2, false, false},
      {"conv128 x5", 8, 8, 3, 128, 128, 1, true, false},
      {"", 8, 8, 3, 128, 128, 1, true, false},
      {"", 8, 8, 3, 128, 128, 1, true, false},
      {"", 8, 8, 3, 128, 128, 1, true, false},
      {"", 8, 8, 3, 128, 128, 1, true, false},
      {"conv256_down", 8, 8, 3, 128, 256, 2, false, false},
      {"conv256 3x3", 3, 3, 3, 256, 256, 1, true, false},
      {"conv256 x4", 4, 4, 3, 256, 256, 1, true, false},
      {"", 4, 4, 3, 256, 256, 1, true, false},
      {"", 4, 4, 3, 256, 256, 1, true, false},
      {"", 4, 4, 3, 256, 256, 1, true, false},
      {"conv256_down_out", 4, 4, 3, 256, 256, 2, false, false},
      {"conv256 1x1", 1, 1, 3, 256, 256, 1, true, false}},
     29},
};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpuinfo_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "cpu MHz", 7) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL)
                mhz = atof(colon + 1);
            break;
        }
    }
    fclose(f);
    return mhz;
}

struct result {
    double med_ms, p95_ms, gflops;
};

/* Build the group's layers on `be`, run them back to back `runs` times. */
static int bench_group(const struct group *g, struct nn_backend *be, struct nn_ctx *ctx, int runs,
                       struct result *r, bool verbose)
{
    struct nn_conv *k[MAX_LAYERS] = {0};
    float *buf[MAX_LAYERS + 1] = {0};
    uint64_t macs = 0;
    static double t[MAX_RUNS], tl[MAX_LAYERS][MAX_RUNS];
    int rc = 1;

    srand(1);
    for (int i = 0; i < g->n; i++) {
        const struct layer_spec *s = &g->l[i];
        struct nn_conv_desc d = {.in_h = s->h,
                                 .in_w = s->w,
                                 .kh = s->k,
                                 .kw = s->k,
                                 .cin = s->cin,
                                 .cout = s->cout,
                                 .stride = s->s,
                                 .depthwise = s->dw,
                                 .act = NN_ACT_RELU};
        if (s->same)
            d.pad = nn_pad_same(s->h, s->w, s->k, s->k, s->s);
        size_t wn = (size_t)s->k * s->k * s->cin * (s->dw ? 1 : s->cout);
        float *w = malloc(wn * sizeof(float)), *b = malloc(s->cout * sizeof(float));
        for (size_t j = 0; j < wn; j++)
            w[j] = (float)rand() / RAND_MAX - 0.5f;
        for (int32_t j = 0; j < s->cout; j++)
            b[j] = 0.01f * j;
        enum fa_status st = nn_conv_new(be, &d, w, b, &k[i]);
        free(w);
        free(b);
        if (st != FA_OK) {
            fprintf(stderr, "%s: nn_conv_new: %s\n", s->name, fa_status_str(st));
            goto out;
        }
        macs += nn_conv_macs(k[i]);
    }
    /* each layer has its own input and output (the net's shapes chain only
     * loosely: residual padding and pooling sit between) */
    for (int i = 0; i < g->n; i++) {
        const struct layer_spec *s = &g->l[i];
        int32_t oh, ow, oc;
        nn_conv_out_shape(k[i], &oh, &ow, &oc);
        size_t in_n = (size_t)s->h * s->w * s->cin, out_n = (size_t)oh * ow * oc;
        size_t n = in_n > out_n ? in_n : out_n;
        buf[i] = fa_malloc_aligned(2 * n * sizeof(float));
        for (size_t j = 0; j < 2 * n; j++)
            buf[i][j] = (float)rand() / RAND_MAX - 0.5f;
    }
    for (int it = -2; it < runs; it++) { /* two warm-up runs */
        int64_t t0 = fa_mono_ns(), tp = t0;
        for (int i = 0; i < g->n; i++) {
            const struct layer_spec *s = &g->l[i];
            int32_t oh, ow, oc;
            nn_conv_out_shape(k[i], &oh, &ow, &oc);
            size_t in_n = (size_t)s->h * s->w * s->cin, out_n = (size_t)oh * ow * oc;
            size_t n = in_n > out_n ? in_n : out_n;
            struct nn_tensor ti = {buf[i], 1, s->h, s->w, s->cin};
            struct nn_tensor to = {buf[i] + n, 1, oh, ow, oc};
            if (nn_conv_run(k[i], ctx, &ti, &to) != FA_OK) {
                fprintf(stderr, "%s: nn_conv_run failed\n", s->name);
                goto out;
            }
            int64_t tn = fa_mono_ns();
            if (it >= 0)
                tl[i][it] = (double)(tn - tp) / 1e6;
            tp = tn;
        }
        if (it >= 0)
            t[it] = (double)(fa_mono_ns() - t0) / 1e6;
    }
    qsort(t, runs, sizeof(t[0]), cmp_d);
    r->med_ms = t[runs / 2];
    r->p95_ms = t[(int)(runs * 0.95) < runs ? (int)(runs * 0.95) : runs - 1];
    r->gflops = 2.0 * (double)macs / (r->med_ms * 1e6);
    if (verbose) {
        /* per layer: median time, GFLOP/s, weight bytes (memory-bound when small) */
        for (int i = 0; i < g->n; i++) {
            const struct layer_spec *s = &g->l[i];
            qsort(tl[i], runs, sizeof(double), cmp_d);
            double ms = tl[i][runs / 2];
            size_t wb = (size_t)s->k * s->k * s->cin * (s->dw ? 1 : s->cout) * sizeof(float);
            printf("      %-18s %3dx%-3d k%d s%d %4d->%-4d %8.4f ms %7.1f GFLOP/s %6zu KB "
                   "weights  %s\n",
                   s->name[0] ? s->name : "", s->h, s->w, s->k, s->s, s->cin, s->cout, ms,
                   2.0 * (double)nn_conv_macs(k[i]) / (ms * 1e6), wb / 1024, nn_conv_impl(k[i]));
        }
        printf("      %.1f MMAC\n", (double)macs / 1e6);
    }
    rc = 0;
out:
    for (int i = 0; i < g->n; i++) {
        nn_conv_free(k[i]);
        fa_free_aligned(buf[i]);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int runs = 50, ref_runs = 5;
    bool no_ref = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ref-runs") == 0 && i + 1 < argc)
            ref_runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-ref") == 0)
            no_ref = true;
        else if (strcmp(argv[i], "--layers") == 0)
            verbose = true;
        else {
            fprintf(stderr, "usage: %s [--runs N] [--ref-runs N] [--no-ref] [--layers]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || ref_runs < 1 || ref_runs > MAX_RUNS) {
        fprintf(stderr, "runs must be 1..%d\n", MAX_RUNS);
        return 2;
    }
    unsetenv("FACEAUTH_NN_BACKEND");

    const char *isa;
    double measured = measured_peak(&isa);
    double mhz = cpuinfo_mhz();
    int flop_cycle = __builtin_cpu_supports("avx512f")                                 ? 64
                     : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 32
                                                                                       : 8;
    double est = mhz * 1e-3 * flop_cycle;
    printf("one core, %s: estimated peak %.1f GFLOP/s (estimate: cpu MHz %.0f from "
           "/proc/cpuinfo x %d FLOP/cycle; turbo clock and FMA unit count vary)\n"
           "measured FMA-loop peak %.1f GFLOP/s (= %.2f GHz x %d FLOP/cycle)\n",
           isa, est, mhz, flop_cycle, measured, measured / flop_cycle, flop_cycle);

    struct nn_backend *be[2] = {0};
    struct nn_ctx *ctx[2] = {0};
    if (nn_backend_new(NN_BACKEND_REF, &be[0]) != FA_OK || nn_ctx_new(be[0], &ctx[0]) != FA_OK ||
        nn_backend_new(NN_BACKEND_FAST, &be[1]) != FA_OK || nn_ctx_new(be[1], &ctx[1]) != FA_OK) {
        fprintf(stderr, "backend setup failed\n");
        return 1;
    }
    printf("OpenMP threads per call: %d (-1: not OpenMP)\n\n", nn_max_threads());
    double peak = measured > 0 ? measured : est;
    printf("%-30s %-7s %5s %10s %10s %9s %7s\n", "layers", "backend", "runs", "median ms", "p95 ms",
           "GFLOP/s", "%peak");
    for (size_t gi = 0; gi < sizeof(groups) / sizeof(groups[0]); gi++) {
        for (int b = no_ref ? 1 : 0; b < 2; b++) {
            struct result r;
            int n = b == 0 ? ref_runs : runs;
            if (bench_group(&groups[gi], be[b], ctx[b], n, &r, false) != 0)
                return 1;
            printf("%-30s %-7s %5d %10.3f %10.3f %9.2f %6.1f%%\n", groups[gi].name,
                   nn_backend_name(be[b]), n, r.med_ms, r.p95_ms, r.gflops,
                   100.0 * r.gflops / peak);
            if (b == 1 && verbose) {
                struct result dummy;
                (void)bench_group(&groups[gi], be[b], ctx[b], n, &dummy, true);
            }
        }
    }
    for (int b = 0; b < 2; b++) {
        nn_ctx_free(ctx[b]);
        nn_backend_free(be[b]);
    }
    return 0;
}
