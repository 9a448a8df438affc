/* faceauth detect | landmarks | embed | compare: the engine on image files,
 * JSON on stdout (one object per image, one per line), errors on stderr and a
 * non-zero exit. Several images (or directories) run in one process, so a
 * whole clip costs one model load. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "face/face.h"
#include "img/img.h"
#include "nn/nn.h"

enum cmd { CMD_DETECT, CMD_LANDMARKS, CMD_EMBED, CMD_COMPARE };

struct opts {
    enum cmd cmd;
    enum face_detector det;
    float min_score;
    const char *models;
    int have_box;
    struct face_box box;
};

struct face_out {
    struct face_box box;
    float pts[FACE_LANDMARKS][2];
    float desc[FACE_DESCRIPTOR];
};

struct engine {
    struct nn_backend *be;
    struct face_models *models;
    struct face_worker *worker;
};

static void usage(FILE *f)
{
    fputs("usage: faceauth detect|landmarks|embed IMG|DIR... [options]\n"
          "       faceauth compare IMG_A IMG_B [options]\n"
          "options:\n"
          "  --detector blazeface|ssd|tiny  face finder (default blazeface: BlazeFace's box\n"
          "                        as FaceMesh refines it)\n"
          "  --min-score S         detection threshold (default 0.2 blazeface, 0.5 ssd/tiny)\n"
          "  --box x,y,w,h         skip detection: landmarks/descriptor for this box\n"
          "  --models DIR          model tree (default $FACEAUTH_MODELS or ./models)\n"
          "Output: one JSON object per image and line; errors on stderr, exit 1.\n",
          f);
}

static int parse_detector(const char *s, enum face_detector *out)
{
    if (strcmp(s, "ssd") == 0)
        *out = FACE_DET_SSD;
    else if (strcmp(s, "tiny") == 0)
        *out = FACE_DET_TINY;
    else if (strcmp(s, "blazeface") == 0)
        *out = FACE_DET_BLAZEFACE;
    else
        return -1;
    return 0;
}

static int parse_box(const char *s, struct face_box *b)
{
    char extra;
    if (sscanf(s, "%lf,%lf,%lf,%lf%c", &b->x, &b->y, &b->w, &b->h, &extra) != 4)
        return -1;
    if (!(b->w > 0 && b->h > 0))
        return -1;
    b->score = 1.0f;
    return 0;
}

static unsigned nets_for(const struct opts *o)
{
    unsigned nets = 0;
    if (!o->have_box)
        nets |= o->det == FACE_DET_TINY  ? FACE_NET_TINY
                : o->det == FACE_DET_SSD ? FACE_NET_SSD
                                         : FACE_NET_BLAZEFACE | FACE_NET_MESH;
    if (o->cmd != CMD_DETECT)
        nets |= FACE_NET_LANDMARKS;
    if (o->cmd == CMD_EMBED || o->cmd == CMD_COMPARE)
        nets |= FACE_NET_DESCRIPTOR;
    return nets;
}

static int engine_open(struct engine *e, const struct opts *o)
{
    struct fa_errinfo info = {{0}};
    enum fa_status rc = nn_backend_new(NN_BACKEND_FAST, &e->be);
    if (rc == FA_OK)
        rc = face_models_load(o->models, e->be, nets_for(o), &e->models, &info);
    if (rc == FA_OK)
        rc = face_worker_new(e->models, &e->worker);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: loading models from %s: %s%s%s\n",
                o->models ? o->models : face_models_default_dir(), fa_status_str(rc),
                info.what[0] ? ": " : "", info.what);
        return -1;
    }
    return 0;
}

static void engine_close(struct engine *e)
{
    face_worker_free(e->worker);
    face_models_free(e->models);
    nn_backend_free(e->be);
}

/* Run the pipeline on one image. Writes up to FACE_MAX_FACES faces. */
static enum fa_status run_image(struct engine *e, const struct opts *o, const struct img *im,
                                struct face_out *faces, size_t *nfaces)
{
    struct face_box boxes[FACE_MAX_FACES];
    size_t n = 0;
    enum fa_status rc = FA_OK;
    if (o->have_box) {
        boxes[0] = o->box;
        n = 1;
    } else {
        rc = face_detect(e->models, e->worker, im, o->det, o->min_score, boxes, FACE_MAX_FACES, &n);
        if (rc != FA_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        faces[i].box = boxes[i];
        if (o->cmd == CMD_DETECT)
            continue;
        rc = face_landmarks(e->models, e->worker, im, &boxes[i], faces[i].pts);
        if (rc != FA_OK)
            return rc;
        if (o->cmd == CMD_LANDMARKS)
            continue;
        rc = face_descriptor_box(e->models, e->worker, im, &boxes[i], faces[i].pts, faces[i].desc);
        if (rc != FA_OK)
            return rc;
    }
    *nfaces = n;
    return FA_OK;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_image(const struct opts *o, const char *path, const struct img *im,
                        const struct face_out *faces, size_t n)
{
    printf("{\"file\":");
    json_str(stdout, path);
    printf(",\"width\":%d,\"height\":%d,\"faces\":[", im->w, im->h);
    for (size_t i = 0; i < n; i++) {
        const struct face_out *f = &faces[i];
        printf("%s{\"box\":[%.10g,%.10g,%.10g,%.10g],\"score\":%.9g", i ? "," : "", f->box.x,
               f->box.y, f->box.w, f->box.h, (double)f->box.score);
        if (o->cmd != CMD_DETECT) {
            printf(",\"landmarks\":[");
            for (int k = 0; k < FACE_LANDMARKS; k++)
                printf("%s[%.9g,%.9g]", k ? "," : "", (double)f->pts[k][0], (double)f->pts[k][1]);
            printf("]");
        }
        if (o->cmd == CMD_EMBED) {
            printf(",\"descriptor\":[");
            for (int k = 0; k < FACE_DESCRIPTOR; k++)
                printf("%s%.9g", k ? "," : "", (double)f->desc[k]);
            printf("]");
        }
        printf("}");
    }
    printf("]}\n");
}

static size_t largest(const struct face_out *faces, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (faces[i].box.w * faces[i].box.h > faces[best].box.w * faces[best].box.h)
            best = i;
    return best;
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

static int cmd_compare(struct engine *e, const struct opts *o, char **files)
{
    static struct face_out faces[2][FACE_MAX_FACES];
    float *desc[2];
    for (int k = 0; k < 2; k++) {
        struct img *im = NULL;
        size_t n = 0;
        if (load(files[k], &im) != 0)
            return 1;
        enum fa_status rc = run_image(e, o, im, faces[k], &n);
        img_free(im);
        if (rc != FA_OK) {
            fprintf(stderr, "faceauth: %s: %s\n", files[k], fa_status_str(rc));
            return 1;
        }
        if (n == 0) {
            fprintf(stderr, "faceauth: %s: no face found\n", files[k]);
            return 1;
        }
        desc[k] = faces[k][largest(faces[k], n)].desc;
    }
    float d = face_distance(desc[0], desc[1]);
    printf("{\"distance\":%.9g,\"threshold\":%.9g,\"same\":%s}\n", (double)d,
           (double)FACE_SAME_THRESHOLD, d < FACE_SAME_THRESHOLD ? "true" : "false");
    return 0;
}

int cli_face_main(int argc, char **argv)
{
    struct opts o = {.det = FACE_DET_BLAZEFACE};
    const char *cmd = argv[0];
    if (strcmp(cmd, "detect") == 0)
        o.cmd = CMD_DETECT;
    else if (strcmp(cmd, "landmarks") == 0)
        o.cmd = CMD_LANDMARKS;
    else if (strcmp(cmd, "embed") == 0)
        o.cmd = CMD_EMBED;
    else
        o.cmd = CMD_COMPARE;

    static const struct option longopts[] = {
        {"detector", required_argument, NULL, 'd'}, {"min-score", required_argument, NULL, 's'},
        {"box", required_argument, NULL, 'b'},      {"models", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (parse_detector(optarg, &o.det) != 0) {
                fprintf(stderr, "faceauth: --detector: unknown detector '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            o.min_score = strtof(optarg, NULL);
            if (!(o.min_score > 0 && o.min_score < 1)) {
                fprintf(stderr, "faceauth: --min-score must be in (0,1)\n");
                return 2;
            }
            break;
        case 'b':
            if (parse_box(optarg, &o.box) != 0) {
                fprintf(stderr, "faceauth: --box wants x,y,w,h with w,h > 0\n");
                return 2;
            }
            o.have_box = 1;
            break;
        case 'm':
            o.models = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.cmd == CMD_DETECT && o.have_box) {
        fprintf(stderr, "faceauth: --box makes no sense with detect\n");
        return 2;
    }
    int nargs = argc - optind;
    if (nargs < 1 || (o.cmd == CMD_COMPARE && nargs != 2)) {
        usage(stderr);
        return 2;
    }

    struct engine e = {0};
    if (engine_open(&e, &o) != 0) {
        engine_close(&e);
        return 1;
    }
    int status = 0;
    if (o.cmd == CMD_COMPARE) {
        status = cmd_compare(&e, &o, argv + optind);
        engine_close(&e);
        return status;
    }
    char **paths = cli_expand_paths(argv + optind, nargs);
    if (paths == NULL) {
        engine_close(&e);
        return 1;
    }
    static struct face_out faces[FACE_MAX_FACES];
    for (char **p = paths; *p != NULL; p++) {
        struct img *im = NULL;
        size_t n = 0;
        if (load(*p, &im) != 0) {
            status = 1;
            continue;
        }
        enum fa_status rc = run_image(&e, &o, im, faces, &n);
        if (rc != FA_OK) {
            fprintf(stderr, "faceauth: %s: %s\n", *p, fa_status_str(rc));
            status = 1;
        } else {
            print_image(&o, *p, im, faces, n);
        }
        img_free(im);
    }
    fflush(stdout);
    cli_paths_free(paths);
    engine_close(&e);
    return status;
}
