/* faceauth mesh | eyes: BlazeFace, FaceMesh and Iris on image files, JSON
 * lines on stdout, errors on stderr. `mesh` reports every face of each
 * image; `eyes` takes its files (directories expanded, sorted) as one
 * stream at --fps frames a second and reports the eye state of each frame,
 * then the blinks, through the same face_stream the server uses. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"

#define MAX_BLINKS 4096

struct engine {
    struct nn_backend *be;
    struct face_models *models;
    struct face_worker *worker;
};

static void engine_close(struct engine *e)
{
    face_worker_free(e->worker);
    face_models_free(e->models);
    nn_backend_free(e->be);
}

/* The three nets and a worker, and the image arguments expanded (files or
 * directories); NULL, with nothing left open, when either fails. */
static char **engine_open(struct engine *e, const char *models, char **args, int n)
{
    struct fa_errinfo info = {{0}};
    enum fa_status rc = nn_backend_new(NN_BACKEND_FAST, &e->be);
    if (rc == FA_OK)
        rc = face_models_load(models, e->be, FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_IRIS,
                              &e->models, &info);
    if (rc == FA_OK)
        rc = face_worker_new(e->models, &e->worker);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: loading models from %s: %s%s%s\n",
                models ? models : face_models_default_dir(), fa_status_str(rc),
                info.what[0] ? ": " : "", info.what);
        engine_close(e);
        return NULL;
    }
    char **paths = cli_expand_paths(args, n);
    if (paths == NULL)
        engine_close(e);
    return paths;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_points(const float (*p)[3], int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf("%s[%.9g,%.9g,%.9g]", i ? "," : "", (double)p[i][0], (double)p[i][1],
               (double)p[i][2]);
    putchar(']');
}

static int load(const char *path, struct img **im)
{
    const struct img_limits lim = {0};
    enum fa_status rc = img_load_file(path, &lim, im);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: %s: %s\n", path, fa_status_str(rc));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- mesh */

static void print_mesh(const char *path, const struct img *im, const struct face_mesh *f, size_t n)
{
    static const char *const side_name[2] = {"right", "left"};
    printf("{\"file\":");
    json_str(path);
    printf(",\"width\":%d,\"height\":%d,\"faces\":[", im->w, im->h);
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"box\":[%.10g,%.10g,%.10g,%.10g],\"score\":%.9g", i ? "," : "", f[i].det.x,
               f[i].det.y, f[i].det.w, f[i].det.h, (double)f[i].det.score);
        printf(",\"face_box\":[%d,%d,%d,%d]", f[i].crop[0], f[i].crop[1], f[i].crop[2],
               f[i].crop[3]);
        printf(",\"mesh_box\":[%.10g,%.10g,%.10g,%.10g],\"mesh_score\":%.9g,\"mesh\":", f[i].box.x,
               f[i].box.y, f[i].box.w, f[i].box.h, (double)f[i].score);
        print_points((const float(*)[3])f[i].pts, FACE_MESH_POINTS);
        for (int s = 0; s < 2; s++) {
            const struct face_eye *e = &f[i].eye[s];
            printf(",\"%s\":{\"contour\":", side_name[s]);
            print_points((const float(*)[3])e->contour, FACE_EYE_CONTOUR);
            printf(",\"iris\":");
            print_points((const float(*)[3])e->iris, FACE_IRIS_POINTS);
            printf(",\"ratio\":%.9g}", e->ratio);
        }
        printf("}");
    }
    printf("]}\n");
}

static void mesh_usage(FILE *f)
{
    fputs("usage: faceauth mesh IMG|DIR... [options]\n"
          "BlazeFace, FaceMesh (468 points) and Iris (per eye 71 contour + 5 iris points and\n"
          "the lid aperture ratio); eyes are the subject's.\n"
          "options:\n"
          "  --max-faces N   faces per image (default 1, as Human)\n"
          "  --min-score S   BlazeFace threshold (default 0.2)\n"
          "  --models DIR    model tree (default $FACEAUTH_MODELS or ./models)\n"
          "Output: one JSON object per image and line; errors on stderr, exit 1.\n",
          f);
}

int cli_mesh_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"max-faces", required_argument, NULL, 'n'},
        {"min-score", required_argument, NULL, 's'},
        {"models", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *models = NULL;
    long max_faces = 1;
    float min_score = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            max_faces = strtol(optarg, NULL, 10);
            if (max_faces < 1 || max_faces > FACE_MAX_FACES) {
                fprintf(stderr, "faceauth: --max-faces must be 1..%d\n", FACE_MAX_FACES);
                return 2;
            }
            break;
        case 's':
            min_score = strtof(optarg, NULL);
            if (!(min_score > 0 && min_score < 1)) {
                fprintf(stderr, "faceauth: --min-score must be in (0,1)\n");
                return 2;
            }
            break;
        case 'm':
            models = optarg;
            break;
        case 'h':
            mesh_usage(stdout);
            return 0;
        default:
            mesh_usage(stderr);
            return 2;
        }
    }
    if (argc - optind < 1) {
        mesh_usage(stderr);
        return 2;
    }
    struct engine e = {0};
    char **paths = engine_open(&e, models, argv + optind, argc - optind);
    if (paths == NULL)
        return 1;
    static struct face_mesh faces[FACE_MAX_FACES];
    int status = 0;
    for (char **p = paths; *p != NULL; p++) {
        struct img *im = NULL;
        size_t n = 0;
        if (load(*p, &im) != 0) {
            status = 1;
            continue;
        }
        enum fa_status rc =
            face_mesh_detect(e.models, e.worker, im, min_score, faces, (size_t)max_faces, &n);
        if (rc != FA_OK) {
            fprintf(stderr, "faceauth: %s: %s\n", *p, fa_status_str(rc));
            status = 1;
        } else {
            print_mesh(*p, im, faces, n);
        }
        img_free(im);
    }
    fflush(stdout);
    cli_paths_free(paths);
    engine_close(&e);
    return status;
}

/* ---------------------------------------------------------------- eyes */

static void eyes_usage(FILE *f)
{
    fputs("usage: faceauth eyes FRAME|DIR... [options]\n"
          "The files, in sorted order, are one stream; per frame the eye state, then the\n"
          "blinks: {\"frames\":N,\"blinks\":[[first,last],...]} (frame numbers from 1).\n"
          "options:\n"
          "  --fps F           frame rate of the stream (default 10)\n"
          "  --threshold T     closed below T x the eye's baseline (default 0.85)\n"
          "  --window S        baseline window in seconds (default 2)\n"
          "  --no-track        run the detector on every frame (no tracking)\n"
          "  --stats           print frames and detector runs to stderr at the end\n"
          "  --models DIR      model tree (default $FACEAUTH_MODELS or ./models)\n",
          f);
}

static int parse_pos(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > lo && v < hi)) {
        fprintf(stderr, "faceauth: %s must be in (%g, %g)\n", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_eyes_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"fps", required_argument, NULL, 'f'},    {"threshold", required_argument, NULL, 't'},
        {"window", required_argument, NULL, 'w'}, {"no-track", no_argument, NULL, 'n'},
        {"stats", no_argument, NULL, 'S'},        {"models", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    static const char *const side_name[2] = {"right", "left"};
    const char *models = NULL;
    double fps = 10;
    int stats = 0;
    struct face_stream_params sp = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (parse_pos("--fps", optarg, 0, 1000, &fps) != 0)
                return 2;
            break;
        case 't':
            if (parse_pos("--threshold", optarg, 0, 10, &sp.eyes.closed_rel) != 0)
                return 2;
            break;
        case 'w':
            if (parse_pos("--window", optarg, 0, 3600, &sp.eyes.window_s) != 0)
                return 2;
            break;
        case 'n':
            sp.detect_every_frame = true;
            break;
        case 'S':
            stats = 1;
            break;
        case 'm':
            models = optarg;
            break;
        case 'h':
            eyes_usage(stdout);
            return 0;
        default:
            eyes_usage(stderr);
            return 2;
        }
    }
    if (argc - optind < 1) {
        eyes_usage(stderr);
        return 2;
    }
    struct engine e = {0};
    char **paths = engine_open(&e, models, argv + optind, argc - optind);
    if (paths == NULL)
        return 1;
    static struct face_stream stream;
    static struct face_stream_frame fr;
    static int64_t blinks[MAX_BLINKS][2];
    size_t nblinks = 0;
    long frame = 0, detector_runs = 0;
    int status = 0;
    face_stream_init(&stream, &sp);
    for (char **p = paths; *p != NULL; p++) {
        struct img *im = NULL;
        int64_t t_ms = (int64_t)((double)frame * 1000.0 / fps + 0.5);
        frame++;
        enum fa_status rc = FA_OK;
        if (load(*p, &im) != 0) {
            status = 1;
            rc = FA_ERR_IMG_CORRUPT;
        } else {
            rc = face_stream_update(e.models, e.worker, &stream, im, t_ms, &fr);
            if (rc != FA_OK) {
                fprintf(stderr, "faceauth: %s: %s\n", *p, fa_status_str(rc));
                status = 1;
            }
        }
        img_free(im);
        if (rc != FA_OK)
            face_stream_skip(&stream, t_ms, &fr); /* a frame without a face */
        detector_runs += fr.detected && rc == FA_OK;
        printf("{\"frame\":%ld,\"file\":", frame);
        json_str(*p);
        if (!fr.face) {
            printf(",\"face\":false}\n");
            continue;
        }
        printf(",\"face\":true");
        for (int s = 1; s >= 0; s--)
            printf(",\"%s\":{\"ratio\":%.9g,\"relative\":%.9g}", side_name[s], fr.eyes.ratio[s],
                   fr.eyes.relative[s]);
        printf(",\"closed\":%s}\n", fr.eyes.closed ? "true" : "false");
        if (fr.eyes.blink && nblinks < MAX_BLINKS) {
            blinks[nblinks][0] = fr.eyes.blink_first;
            blinks[nblinks][1] = fr.eyes.blink_last;
            nblinks++;
        }
    }
    printf("{\"frames\":%ld,\"blinks\":[", frame);
    for (size_t i = 0; i < nblinks; i++)
        printf("%s[%lld,%lld]", i ? "," : "", (long long)blinks[i][0], (long long)blinks[i][1]);
    printf("]}\n");
    fflush(stdout);
    if (stats)
        fprintf(stderr, "faceauth eyes: %ld frames, %ld detector runs\n", frame, detector_runs);
    cli_paths_free(paths);
    engine_close(&e);
    return status;
}
