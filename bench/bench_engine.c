/* Engine benchmark: the shared photos letterboxed to 640x480 and encoded as
 * JPEG q80 (what a browser sends), then per stage on one thread: decode,
 * tiny detector, SSD, 68 landmarks, descriptor, and the whole frame (decode +
 * tiny + landmarks + descriptor). Prints median and p95 ms, each network's
 * GFLOP/s (2 x multiply-adds / time) beside this core's measured FMA peak,
 * and writes the medians as JSON for bench/run_bench.sh, which runs the
 * JavaScript reference on the same JPEGs and prints JS/C per stage.
 *   usage: bench_engine [--runs N] [--write-inputs DIR] [--json FILE] IMG|DIR... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"
#include "images.h"
#include "peak.h"
#include "stats.h"

enum stage { ST_DECODE, ST_TINY, ST_SSD, ST_LM, ST_DESC, ST_FRAME, ST_N };
static const char *const stage_name[ST_N] = {"decode",    "tiny_face_detector", "ssd_mobilenetv1",
                                             "landmarks", "descriptor",         "frame"};
static const enum face_net stage_net[ST_N] = {
    0, FACE_NET_TINY, FACE_NET_SSD, FACE_NET_LANDMARKS, FACE_NET_DESCRIPTOR, 0};

static struct samples S[ST_N];

static void add(enum stage s, double ms)
{
    samples_add(&S[s], ms);
}

/* Letterbox (black bars) to 640x480 with bilinear sampling. */
static struct img *to_vga(const struct img *src)
{
    const int W = 640, H = 480;
    struct img *dst = img_new(W, H);
    if (dst == NULL)
        return NULL;
    memset(dst->rgb, 0, (size_t)W * H * 3);
    double scale = (double)W / src->w;
    if ((double)H / src->h < scale)
        scale = (double)H / src->h;
    int cw = (int)(src->w * scale + 0.5), ch = (int)(src->h * scale + 0.5);
    int ox = (W - cw) / 2, oy = (H - ch) / 2;
    for (int y = 0; y < ch; y++) {
        double fy = (y + 0.5) / scale - 0.5;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < src->h ? y0 + 1 : y0;
        double dy = fy - y0;
        for (int x = 0; x < cw; x++) {
            double fx = (x + 0.5) / scale - 0.5;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < src->w ? x0 + 1 : x0;
            double dx = fx - x0;
            for (int c = 0; c < 3; c++) {
                const uint8_t *r0 = src->rgb + (size_t)y0 * src->w * 3,
                              *r1 = src->rgb + (size_t)y1 * src->w * 3;
                double v = (r0[x0 * 3 + c] * (1 - dx) + r0[x1 * 3 + c] * dx) * (1 - dy) +
                           (r1[x0 * 3 + c] * (1 - dx) + r1[x1 * 3 + c] * dx) * dy;
                dst->rgb[((size_t)(y + oy) * W + (x + ox)) * 3 + c] = (uint8_t)(v + 0.5);
            }
        }
    }
    return dst;
}

static struct image_list imgs;

int main(int argc, char **argv)
{
    int runs = 5;
    const char *write_dir = NULL, *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--write-inputs") && i + 1 < argc)
            write_dir = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_out = argv[++i];
        else
            images_collect(&imgs, argv[i]);
    }
    if (imgs.n == 0) {
        char def[4096];
        snprintf(def, sizeof def, "%s/data/faces/identities", FA_SHARED_DIR_DEFAULT);
        images_collect(&imgs, def);
    }
    images_sort(&imgs);
    if (imgs.n == 0 || runs < 1) {
        fprintf(stderr, "bench_engine: no images\n");
        return 1;
    }

    struct nn_backend *be = NULL;
    struct face_models *m = NULL;
    struct face_worker *w = NULL;
    struct fa_errinfo info = {{0}};
    if (nn_backend_new(NN_BACKEND_FAST, &be) != FA_OK ||
        face_models_load(NULL, be, FACE_NET_FACEAPI, &m, &info) != FA_OK ||
        face_worker_new(m, &w) != FA_OK) {
        fprintf(stderr, "bench_engine: cannot load the models: %s\n", info.what);
        return 1;
    }

    static struct fa_buf jpeg[IMAGES_MAX];
    int nimg = 0;
    for (int i = 0; i < imgs.n; i++) {
        struct img *im = NULL, *vga;
        const struct img_limits lim = {0};
        if (img_load_file(imgs.path[i], &lim, &im) != FA_OK)
            continue;
        vga = to_vga(im);
        img_free(im);
        if (vga == NULL || img_encode_jpeg(vga, 80, &jpeg[nimg]) != FA_OK) {
            img_free(vga);
            continue;
        }
        img_free(vga);
        if (write_dir) {
            char out[4096];
            const char *base = strrchr(imgs.path[i], '/');
            const char *parent = base;
            while (parent > imgs.path[i] && parent[-1] != '/')
                parent--;
            snprintf(out, sizeof out, "%s/%03d_%.*s_%s", write_dir, nimg, (int)(base - parent),
                     parent, base + 1);
            char *dot = strrchr(out, '.');
            if (dot)
                strcpy(dot, ".jpg");
            FILE *f = fopen(out, "wb");
            if (f) {
                fwrite(jpeg[nimg].p, 1, jpeg[nimg].n, f);
                fclose(f);
            }
        }
        nimg++;
    }

    int frames_with_face = 0;
    for (int i = 0; i < nimg; i++) {
        const struct img_limits lim = {0};
        for (int r = -1; r < runs; r++) { /* r = -1: warm-up, not counted */
            struct img *im = NULL;
            struct face_box tb[FACE_MAX_FACES], sb[FACE_MAX_FACES];
            float pts[FACE_LANDMARKS][2], desc[FACE_DESCRIPTOR];
            size_t nt = 0, ns = 0;
            int64_t t0 = fa_mono_ns();
            if (img_decode(fa_buf_bytes(&jpeg[i]), &lim, &im) != FA_OK)
                break;
            double t_dec = ms_since(t0);
            int64_t t1 = fa_mono_ns();
            face_detect(m, w, im, FACE_DET_TINY, 0.5f, tb, FACE_MAX_FACES, &nt);
            double t_tiny = ms_since(t1);
            int64_t t2 = fa_mono_ns();
            face_detect(m, w, im, FACE_DET_SSD, 0.5f, sb, FACE_MAX_FACES, &ns);
            double t_ssd = ms_since(t2);
            const struct face_box *face = nt ? &tb[0] : ns ? &sb[0] : NULL;
            double t_lm = 0, t_desc = 0;
            if (face) {
                int64_t t3 = fa_mono_ns();
                face_landmarks(m, w, im, face, pts);
                t_lm = ms_since(t3);
                int64_t t4 = fa_mono_ns();
                face_descriptor_box(m, w, im, face, pts, desc);
                t_desc = ms_since(t4);
            }
            img_free(im);
            if (r < 0)
                continue;
            add(ST_DECODE, t_dec);
            add(ST_TINY, t_tiny);
            add(ST_SSD, t_ssd);
            if (face) {
                add(ST_LM, t_lm);
                add(ST_DESC, t_desc);
            }
            if (nt) { /* the whole frame, timed as one piece */
                int64_t t5 = fa_mono_ns();
                struct img *im2 = NULL;
                img_decode(fa_buf_bytes(&jpeg[i]), &lim, &im2);
                face_detect(m, w, im2, FACE_DET_TINY, 0.5f, tb, FACE_MAX_FACES, &nt);
                face_landmarks(m, w, im2, &tb[0], pts);
                face_descriptor_box(m, w, im2, &tb[0], pts, desc);
                img_free(im2);
                add(ST_FRAME, ms_since(t5));
                if (r == 0)
                    frames_with_face++;
            }
        }
    }

    const char *isa;
    double peak = measured_peak(&isa);
    printf("faceauth engine benchmark: %d images letterboxed to 640x480 JPEG q80, %d runs each "
           "after a warm-up, one thread, backend %s\n",
           nimg, runs, nn_backend_name(be));
    printf("one-core peak (measured, %s): %.1f GFLOP/s\n\n", isa, peak);
    printf("%-20s %8s %8s %9s %9s %7s %7s\n", "stage", "median", "p95", "samples", "GFLOP",
           "GFLOP/s", "%peak");
    double med[ST_N];
    for (int s = 0; s < ST_N; s++) {
        med[s] = samples_pct(&S[s], 0.5);
        double p95 = samples_pct(&S[s], 0.95);
        uint64_t macs = stage_net[s] ? face_models_macs(m, stage_net[s]) : 0;
        printf("%-20s %8.2f %8.2f %9d", stage_name[s], med[s], p95, S[s].n);
        if (macs && med[s] > 0) {
            double gf = 2.0 * (double)macs / 1e9, rate = gf / (med[s] / 1e3);
            printf(" %9.3f %7.1f %6.0f%%", gf, rate, 100 * rate / peak);
        }
        printf("\n");
    }
    printf(
        "(frame = decode + tiny + landmarks + descriptor on %d images with a tiny-detector face)\n",
        frames_with_face);
    if (json_out) {
        FILE *f = fopen(json_out, "w");
        if (f) {
            fprintf(f, "{\"backend\":\"%s\",\"images\":%d,\"runs\":%d,\"peak_gflops\":%.2f",
                    nn_backend_name(be), nimg, runs, peak);
            for (int s = 0; s < ST_N; s++)
                fprintf(f, ",\"%s\":{\"median\":%.4f,\"p95\":%.4f}", stage_name[s], med[s],
                        samples_pct(&S[s], 0.95));
            fprintf(f, "}\n");
            fclose(f);
        }
    }
    for (int i = 0; i < nimg; i++)
        fa_buf_fini(&jpeg[i]);
    images_free(&imgs);
    face_worker_free(w);
    face_models_free(m);
    nn_backend_free(be);
    return 0;
}
