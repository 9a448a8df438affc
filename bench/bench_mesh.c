/* BlazeFace / FaceMesh / Iris benchmark on the shared clips' frames, one
 * thread. Per stage, as the JavaScript oracle times them (facemesh-reference
 * README): BlazeFace = resize + normalise + net + decoding + NMS; FaceMesh =
 * crop + net; Iris = both eye crops + both nets; and the tracked frame of a
 * stream (face_stream_update when the previous mesh places the crop:
 * FaceMesh + both irises + the eye-state machine, no detector). Prints
 * median and p95 ms, each network's GFLOP/s (2 x multiply-adds over the
 * net's own time) beside the core's measured FMA peak, and writes the
 * medians as JSON for bench/run_bench_mesh.sh, which runs the oracle on
 * the same frames and prints JS/C.
 *   usage: bench_mesh [--runs N] [--json FILE] DIR|IMG... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "face/blazeface.h"
#include "face/face.h"
#include "face/iris.h"
#include "face/mesh.h"
#include "img/img.h"
#include "nn/nn.h"
#include "images.h"
#include "peak.h"
#include "stats.h"

enum stage { ST_BF, ST_MESH, ST_IRIS, ST_TRACKED, ST_BF_NET, ST_MESH_NET, ST_IRIS_NET, ST_N };
static const char *const stage_name[ST_N] = {
    "blazeface", "facemesh", "iris", "tracked_frame", "blazeface_net", "facemesh_net", "iris_net"};

static struct samples S[ST_N];

static void add(enum stage s, double ms)
{
    samples_add(&S[s], ms);
}

static struct image_list imgs;

int main(int argc, char **argv)
{
    int runs = 3;
    const char *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_out = argv[++i];
        else
            images_collect(&imgs, argv[i]);
    }
    if (imgs.n == 0) {
        fprintf(stderr, "usage: bench_mesh [--runs N] [--json FILE] DIR|IMG...\n");
        return 2;
    }
    images_sort(&imgs);

    struct nn_backend *be = NULL;
    struct nn_ctx *ctx = NULL;
    struct bf_net *bf = NULL;
    struct mesh_net *mesh = NULL;
    struct iris_net *iris = NULL;
    struct face_models *m = NULL;
    struct face_worker *w = NULL;
    struct fa_errinfo info = {{0}};
    char dir[4096];
    const char *models = getenv("FACEAUTH_MODELS");
    if (models == NULL || !*models)
        models = FA_MODELS_DIR_DEFAULT;
    snprintf(dir, sizeof dir, "%s/human", models);
    if (nn_backend_new(NN_BACKEND_FAST, &be) != FA_OK || nn_ctx_new(be, &ctx) != FA_OK ||
        bf_load(dir, be, &bf, &info) != FA_OK || mesh_load(dir, be, &mesh, &info) != FA_OK ||
        iris_load(dir, be, &iris, &info) != FA_OK ||
        face_models_load(models, be, FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS, &m,
                         &info) != FA_OK ||
        face_worker_new(m, &w) != FA_OK) {
        fprintf(stderr, "bench_mesh: cannot load the models from %s: %s\n", models, info.what);
        return 1;
    }
    struct mesh_nets nets = {bf, mesh, iris};
    struct fa_arena arena;
    if (fa_arena_init(&arena, mesh_detect_arena_bytes(&nets)) != FA_OK)
        return 1;
    static float face_in[MESH_INPUT * MESH_INPUT * 3], raw[FACE_MESH_POINTS * 3];
    static float eye_in[2][IRIS_INPUT * IRIS_INPUT * 3], eye_raw[2][IRIS_POINTS * 3];

    /* the frames, decoded once (decoding is not part of the pipeline) */
    static struct img *frames[IMAGES_MAX];
    int nimg = 0;
    for (int i = 0; i < imgs.n; i++) {
        const struct img_limits lim = {0};
        if (img_load_file(imgs.path[i], &lim, &frames[nimg]) == FA_OK)
            nimg++;
    }

    /* warm-up: every stage a few times */
    for (int i = 0; i < 3 && nimg > 0; i++) {
        struct bf_det d;
        size_t n = 0;
        bf_detect(bf, ctx, &arena, frames[0], 0, &d, 1, &n);
    }

    int faces = 0;
    for (int i = 0; i < nimg; i++) {
        const struct img *im = frames[i];
        for (int r = 0; r < runs; r++) {
            struct bf_det det;
            size_t n = 0;
            float score;
            int64_t t0 = fa_mono_ns();
            bf_detect(bf, ctx, &arena, im, 0, &det, 1, &n);
            add(ST_BF, ms_since(t0));
            if (n == 0)
                continue;
            faces += r == 0;
            int64_t t1 = fa_mono_ns();
            mesh_input(im, det.face_box, face_in);
            int64_t t2 = fa_mono_ns();
            mesh_infer(mesh, ctx, &arena, face_in, raw, &score);
            add(ST_MESH_NET, ms_since(t2));
            add(ST_MESH, ms_since(t1));
            if (!mesh_kept(score))
                continue;
            int32_t box[2][4];
            double net_ms = 0;
            int64_t t3 = fa_mono_ns();
            for (int s = 0; s < 2; s++) {
                iris_eye_box(raw, (enum face_eye_side)s, box[s]);
                iris_input(face_in, box[s], iris_mirrored((enum face_eye_side)s), eye_in[s]);
            }
            for (int s = 0; s < 2; s++) {
                int64_t t4 = fa_mono_ns();
                iris_infer(iris, ctx, &arena, eye_in[s], eye_raw[s]);
                net_ms += ms_since(t4);
            }
            add(ST_IRIS, ms_since(t3));
            add(ST_IRIS_NET, net_ms / 2);
        }
        /* the net alone on BlazeFace's input */
        {
            static float bf_in[BF_INPUT * BF_INPUT * 3];
            float *outs[8];
            bf_input(im, bf_in);
            size_t mark = fa_arena_mark(&arena);
            int64_t t5 = fa_mono_ns();
            nn_graph_run(bf_graph(bf), ctx, &arena, bf_in, outs);
            add(ST_BF_NET, ms_since(t5));
            fa_arena_release(&arena, mark);
        }
    }

    /* tracked frames: each clip (folder) as one stream, runs times over */
    long tracked = 0, detected = 0;
    static struct face_stream stream;
    static struct face_stream_frame fr;
    for (int r = 0; r < runs; r++) {
        char prev_dir[4096] = "";
        int64_t t_ms = 0;
        for (int i = 0; i < nimg; i++) {
            const char *slash = strrchr(imgs.path[i], '/');
            size_t dl = slash ? (size_t)(slash - imgs.path[i]) : 0;
            if (strlen(prev_dir) != dl || strncmp(prev_dir, imgs.path[i], dl) != 0) {
                snprintf(prev_dir, sizeof prev_dir, "%.*s", (int)dl, imgs.path[i]);
                face_stream_init(&stream, NULL);
                t_ms = 0;
            }
            int64_t t0 = fa_mono_ns();
            face_stream_update(m, w, &stream, frames[i], t_ms, &fr);
            double ms = ms_since(t0);
            t_ms += 100;
            if (fr.detected) {
                detected += r == 0;
            } else if (fr.face) {
                add(ST_TRACKED, ms);
                tracked += r == 0;
            }
        }
    }

    const char *isa;
    double peak = measured_peak(&isa);
    const uint64_t macs[ST_N] = {[ST_BF] = bf_macs(bf),           [ST_MESH] = mesh_macs(mesh),
                                 [ST_IRIS] = 2 * iris_macs(iris), [ST_TRACKED] = 0,
                                 [ST_BF_NET] = bf_macs(bf),       [ST_MESH_NET] = mesh_macs(mesh),
                                 [ST_IRIS_NET] = iris_macs(iris)};
    printf("faceauth mesh benchmark: %d frames (%d with a face), %d runs each, one thread, "
           "backend %s\n",
           nimg, faces, runs, nn_backend_name(be));
    printf("streams: %ld tracked frames, detector on %ld frames\n", tracked, detected);
    printf("one-core peak (measured, %s): %.1f GFLOP/s\n\n", isa, peak);
    printf("%-16s %8s %8s %8s %9s %8s %6s\n", "stage", "median", "p95", "samples", "GFLOP",
           "GFLOP/s", "%peak");
    double med[ST_N], p95[ST_N];
    for (int s = 0; s < ST_N; s++) {
        med[s] = samples_pct(&S[s], 0.5);
        p95[s] = samples_pct(&S[s], 0.95);
        printf("%-16s %8.3f %8.3f %8d", stage_name[s], med[s], p95[s], S[s].n);
        if (macs[s] && med[s] > 0 && s >= ST_BF_NET) {
            double gf = 2.0 * (double)macs[s] / 1e9, rate = gf / (med[s] / 1e3);
            printf(" %9.3f %8.1f %5.0f%%", gf, rate, 100 * rate / peak);
        }
        printf("\n");
    }
    printf("(blazeface = resize + net + decoding + NMS; facemesh = crop + net; iris = 2 crops + "
           "2 nets; *_net = the network alone, iris_net per eye; tracked_frame = "
           "face_stream_update without the detector)\n");
    if (json_out) {
        FILE *f = fopen(json_out, "w");
        if (f) {
            fprintf(f, "{\"backend\":\"%s\",\"frames\":%d,\"runs\":%d,\"peak_gflops\":%.2f",
                    nn_backend_name(be), nimg, runs, peak);
            for (int s = 0; s < ST_N; s++)
                fprintf(f, ",\"%s\":{\"median\":%.4f,\"p95\":%.4f,\"macs\":%llu}", stage_name[s],
                        med[s], p95[s], (unsigned long long)macs[s]);
            fprintf(f, "}\n");
            fclose(f);
        }
    }
    for (int i = 0; i < nimg; i++)
        img_free(frames[i]);
    images_free(&imgs);
    fa_arena_fini(&arena);
    face_worker_free(w);
    face_models_free(m);
    bf_free(bf);
    mesh_free(mesh);
    iris_free(iris);
    nn_ctx_free(ctx);
    nn_backend_free(be);
    return 0;
}
