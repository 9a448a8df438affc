/* Agreement of BlazeFace, FaceMesh and Iris (face/blazeface.c, mesh.c,
 * iris.c) with the JavaScript oracle (shared/tools/facemesh-reference):
 *  1. network by network on the tensor dump of frame 10 of
 *     stock_woman_wink_blink (tensors/facemesh, cpu backend): decoded pixels,
 *     every pre-processed input (BlazeFace resize, FaceMesh crop, both Iris
 *     crops with the mirroring; each by both paths, AVX-512 and plain C)
 *     bit for bit, anchors, decoded boxes and
 *     scores, and each network's output tensors within a relative tolerance;
 *  2. on every image of facemesh.photos.cpu.json (cpu) and every frame of the
 *     labelled clips in facemesh.video.wasm.json (wasm): BlazeFace box IoU >=
 *     0.98 and score within 0.01, the integer face and eye boxes, mesh points
 *     mean error <= 0.5 px, Iris-model points (71 contour + 5 iris) mean
 *     error <= 0.3 px per eye, lid ratios within 0.01;
 *  3. the composed pipeline equals the stages and allocates nothing; bad or
 *     mismatched model files are refused with a message;
 *  4. BlazeFace as the face finder for recognition (face_detect with
 *     FACE_DET_BLAZEFACE, then face-api's 68 landmarks and descriptor): a
 *     face in each of the 77 identity photos, none in noface/ but the two
 *     animal faces FaceMesh itself takes for human (explained below), and on
 *     all pairs of the 37 colour identity photos at distance 0.62 at least
 *     72 of the 76 same-person pairs accepted and 588 of the 590
 *     different-person pairs rejected (the JavaScript models' figures).
 * The eye orientation: we mirror only the subject's left eye (263/362), as
 * MediaPipe does, where Human 3.3.6 as shipped mirrors both. The reference
 * files were made with the oracle's default `--eye-flip mediapipe`, which is
 * exactly our orientation, so both eyes are compared directly with them; the
 * test checks that the reference says so (parameters.iris.eye_flip and each
 * eye's `mirrored`), and on the dump frame it also runs the subject's right
 * eye the way Human ships it (crop mirrored, output not mirrored back) to
 * show that this orientation is measurably different, i.e. that the
 * comparison would catch a port that copied Human's behaviour.
 * FA_TEST_QUICK=1 (sanitizer builds) checks the photos, 10 video frames and
 * a quarter of the identity photos (no pair counts). */
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
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "face/blazeface.h"
#include "face/face.h"
#include "face/iris.h"
#include "face/mesh.h"
#include "img/img.h"
#include "nn/nn.h"
#include "refdata.h"
#include "testutil.h"

#define DUMP "data/reference/tensors/facemesh"
#define DUMP_IMAGE "video/stock_woman_wink_blink/frames/0010.jpg"

/* Network outputs: max |ours - reference| <= OUT_TOL * max(1, max |reference|).
 * TF.js's cpu and wasm backends differ by up to 3.4e-5 on BlazeFace's
 * regressors (magnitude ~100) and 4e-4 px on the mesh (facemesh-reference
 * README); a different summation order stays within a few times that. */
#define OUT_TOL 2e-5

#define IOU_MIN 0.98
#define SCORE_TOL 0.01
#define MESH_ERR_MAX 0.5
#define IRIS_ERR_MAX 0.3
#define RATIO_TOL 0.01

struct fixture {
    struct nn_backend *be;
    struct nn_ctx *ctx;
    struct bf_net *bf;
    struct mesh_net *mesh;
    struct iris_net *iris;
    struct mesh_nets nets;
    struct fa_arena arena;
    bool quick;
};

static struct fixture F;

/* ------------------------------------------------------------------ helpers */

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* A float32 tensor of the dump; asserts its element count. */
static float *dump_f32(const char *name, size_t want)
{
    char rel[256], path[1024];
    size_t len = 0;
    snprintf(rel, sizeof rel, DUMP "/%s.f32.bin", name);
    float *p = tu_read_file(tu_shared_path(path, sizeof path, rel), &len);
    assert_non_null(p);
    assert_int_equal(len, want * sizeof(float));
    return p;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* max |a - b| / max(1, max |b|) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m / fmax(1.0, max_abs(b, n));
}

static json_t *load_json(const char *rel)
{
    char path[1024];
    json_error_t err;
    json_t *j = json_load_file(tu_shared_path(path, sizeof path, rel), 0, &err);
    if (j == NULL)
        fprintf(stderr, "%s: %s (line %d)\n", rel, err.text, err.line);
    assert_non_null(j);
    return j;
}

static double jnum(const json_t *j)
{
    assert_true(json_is_number(j));
    return json_number_value(j);
}

/* obj[key] as an [x, y] (or longer) array; element k. */
static double jat(const json_t *arr, size_t k)
{
    return jnum(json_array_get(arr, k));
}

static void jbox(const json_t *box, int32_t out[4])
{
    const json_t *s = json_object_get(box, "start"), *e = json_object_get(box, "end");
    assert_non_null(s);
    assert_non_null(e);
    out[0] = (int32_t)jat(s, 0);
    out[1] = (int32_t)jat(s, 1);
    out[2] = (int32_t)jat(e, 0);
    out[3] = (int32_t)jat(e, 1);
}

static struct img *load_image(const char *key)
{
    char rel[512], path[1024];
    struct img *im = NULL;
    const struct img_limits lim = {0};
    snprintf(rel, sizeof rel, "data/faces/%s", key);
    enum fa_status rc = img_load_file(tu_shared_path(path, sizeof path, rel), &lim, &im);
    if (rc != FA_OK)
        fprintf(stderr, "%s: %s\n", key, fa_status_str(rc));
    assert_int_equal(rc, FA_OK);
    return im;
}

/* Mean Euclidean (x, y) distance between n points and a JSON [[x, y, z]...]. */
static double mean_err(const float (*p)[3], const json_t *ref, size_t n)
{
    assert_int_equal(json_array_size(ref), n);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *q = json_array_get(ref, i);
        s += hypot((double)p[i][0] - jat(q, 0), (double)p[i][1] - jat(q, 1));
    }
    return s / (double)n;
}

/* ------------------------------------------------------------------ fixture */

static int setup(void **state)
{
    (void)state;
    struct fa_errinfo info = {{0}};
    char dir[1024];
    const char *q = getenv("FA_TEST_QUICK");
    F.quick = q != NULL && *q && strcmp(q, "0") != 0;
    snprintf(dir, sizeof dir, "%s/human", tu_models_dir());
    if (nn_backend_new(NN_BACKEND_FAST, &F.be) != FA_OK || nn_ctx_new(F.be, &F.ctx) != FA_OK)
        return -1;
    if (bf_load(dir, F.be, &F.bf, &info) != FA_OK ||
        mesh_load(dir, F.be, &F.mesh, &info) != FA_OK ||
        iris_load(dir, F.be, &F.iris, &info) != FA_OK) {
        fprintf(stderr, "loading models from %s: %s\n", dir, info.what);
        return -1;
    }
    F.nets = (struct mesh_nets){F.bf, F.mesh, F.iris};
    size_t bytes = mesh_detect_arena_bytes(&F.nets);
    bytes = bytes > bf_arena_bytes(F.bf) ? bytes : bf_arena_bytes(F.bf);
    if (fa_arena_init(&F.arena, bytes) != FA_OK)
        return -1;
    fprintf(stderr, "backend %s, %s\n", nn_backend_name(F.be), F.quick ? "quick" : "full");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bf_free(F.bf);
    mesh_free(F.mesh);
    iris_free(F.iris);
    fa_arena_fini(&F.arena);
    nn_ctx_free(F.ctx);
    nn_backend_free(F.be);
    return 0;
}

/* Run graph g on `input`; compare each output named in `names` with batch
 * element b of the dump file "<prefix>.output.<name>" (`batches` of them). */
static void check_outputs(const struct nn_graph *g, const float *input, const char *prefix,
                          const char *const *names, size_t nnames, size_t batches, size_t b)
{
    float *outs[8];
    size_t mark = fa_arena_mark(&F.arena);
    assert_true(nn_graph_output_count(g) <= 8);
    assert_int_equal(nn_graph_run(g, F.ctx, &F.arena, input, outs), FA_OK);
    for (size_t i = 0; i < nnames; i++) {
        char dname[128];
        int k = nn_graph_output_find(g, names[i]);
        assert_true(k >= 0);
        size_t n = nn_graph_output_len(g, (size_t)k);
        snprintf(dname, sizeof dname, "%s.output.%s", prefix, names[i]);
        float *ref = dump_f32(dname, n * batches);
        double d = rel_diff(outs[k], ref + b * n, n);
        fprintf(stderr, "  %-32s max rel diff %.3g\n", dname, d);
        assert_true(d <= OUT_TOL);
        free(ref);
    }
    fa_arena_release(&F.arena, mark);
}

/* ---------------------------------------------------- 1. the tensor dump */

static void test_tensor_dump(void **state)
{
    (void)state;
    struct img *im = load_image(DUMP_IMAGE);
    char path[1024];
    size_t len = 0;

    /* decoded pixels */
    uint8_t *rgb = tu_read_file(tu_shared_path(path, sizeof path, DUMP "/image.rgb.u8.bin"), &len);
    assert_non_null(rgb);
    assert_int_equal(len, (size_t)im->w * (size_t)im->h * 3);
    assert_memory_equal(rgb, im->rgb, len);
    free(rgb);

    /* BlazeFace: input, outputs, table, anchors, boxes, scores */
    const size_t nin = (size_t)BF_INPUT * BF_INPUT * 3;
    float *bf_in = malloc(nin * sizeof(float));
    float *ref_in = dump_f32("blazeface.input", nin);
    float *bf_pad[2] = {malloc(nin * sizeof(float)), malloc(nin * sizeof(float))};
    for (int plain = 0; plain < 2; plain++) {
        if (plain)
            setenv("FACEAUTH_NO_AVX512", "1", 1);
        memset(bf_in, 0, nin * sizeof(float));
        bf_input(im, bf_in);
        /* the framed pass (not in the reference): both paths agree */
        bf_input_padded(im, im->w / 4, im->h / 5, bf_pad[plain]);
        unsetenv("FACEAUTH_NO_AVX512");
        assert_memory_equal(bf_in, ref_in, nin * sizeof(float));
    }
    assert_memory_equal(bf_pad[0], bf_pad[1], nin * sizeof(float));
    free(bf_pad[0]);
    free(bf_pad[1]);
    static const char *const bf_out[] = {"Identity", "Identity_1", "Identity_2", "Identity_3"};
    check_outputs(bf_graph(F.bf), ref_in, "blazeface", bf_out, 4, 1, 0);

    float *l512 = dump_f32("blazeface.output.Identity", 512);
    float *l384 = dump_f32("blazeface.output.Identity_1", 384);
    float *r512 = dump_f32("blazeface.output.Identity_2", 512 * 16);
    float *r384 = dump_f32("blazeface.output.Identity_3", 384 * 16);
    float *table = malloc(sizeof(float) * BF_ANCHORS * BF_COLS);
    bf_table(l512, l384, r512, r384, table);
    float *ref_table = dump_f32("blazeface.regressors", BF_ANCHORS * BF_COLS);
    assert_memory_equal(table, ref_table, sizeof(float) * BF_ANCHORS * BF_COLS);
    float *ref_anchors = dump_f32("blazeface.anchors", BF_ANCHORS * 2);
    for (int32_t a = 0; a < BF_ANCHORS; a++) {
        float ax, ay;
        bf_anchor(a, &ax, &ay);
        assert_true(ax == ref_anchors[2 * a] && ay == ref_anchors[2 * a + 1]);
    }
    static float boxes[BF_ANCHORS][4], scores[BF_ANCHORS];
    bf_boxes(table, boxes, scores);
    float *ref_boxes = dump_f32("blazeface.boxes", BF_ANCHORS * 4);
    float *ref_scores = dump_f32("blazeface.scores", BF_ANCHORS);
    assert_memory_equal(boxes, ref_boxes, sizeof boxes);
    for (int32_t a = 0; a < BF_ANCHORS; a++)
        assert_true(fabsf(scores[a] - ref_scores[a]) <= 1e-7f);

    /* decoding + NMS + face box from the reference table: the notes */
    json_t *tj = load_json(DUMP "/tensors.json");
    const json_t *notes = json_object_get(tj, "notes");
    const json_t *rdet =
        json_array_get(json_object_get(json_object_get(notes, "blazeface"), "detections"), 0);
    void *scratch = malloc(bf_decode_scratch_bytes());
    struct bf_det det;
    assert_int_equal(bf_decode(table, im->w, im->h, 0, scratch, &det, 1), 1);
    assert_int_equal(det.anchor, (int)jnum(json_object_get(rdet, "anchor_index")));
    assert_true(det.score == (float)jnum(json_object_get(rdet, "score")));
    const json_t *sq = json_object_get(rdet, "square_box");
    const json_t *sp = json_object_get(sq, "startPoint"), *ep = json_object_get(sq, "endPoint");
    int32_t want_box[4] = {(int32_t)jat(sp, 0), (int32_t)jat(sp, 1), (int32_t)jat(ep, 0),
                           (int32_t)jat(ep, 1)};
    assert_memory_equal(det.face_box, want_box, sizeof want_box);

    /* FaceMesh: input from the image and the face box, outputs */
    const size_t nmesh = (size_t)MESH_INPUT * MESH_INPUT * 3;
    float *mesh_in = malloc(nmesh * sizeof(float));
    float *ref_mesh_in = dump_f32("facemesh.input", nmesh);
    /* both crop paths (AVX-512 and plain C), bit for bit */
    for (int plain = 0; plain < 2; plain++) {
        if (plain)
            setenv("FACEAUTH_NO_AVX512", "1", 1);
        memset(mesh_in, 0, nmesh * sizeof(float));
        mesh_input(im, det.face_box, mesh_in);
        unsetenv("FACEAUTH_NO_AVX512");
        assert_memory_equal(mesh_in, ref_mesh_in, nmesh * sizeof(float));
    }
    static const char *const mesh_out[] = {"Identity_2", "Identity_1", "Identity"};
    check_outputs(mesh_graph(F.mesh), ref_mesh_in, "facemesh", mesh_out, 3, 1, 0);

    /* Iris: both eye boxes from the reference mesh, crops (batch 0 = the
     * subject's left eye, mirrored; 1 = right eye), outputs */
    float *ref_raw = dump_f32("facemesh.output.Identity_2", FACE_MESH_POINTS * 3);
    float *ref_iris_in = dump_f32("iris.input", 2 * 64 * 64 * 3);
    const json_t *ni = json_object_get(notes, "iris");
    static const char *const side_key[2] = {"right", "left"};
    float eye_in[64 * 64 * 3];
    for (int side = 0; side < 2; side++) {
        const json_t *e = json_object_get(ni, side_key[side]);
        size_t b = (size_t)jnum(json_object_get(e, "batch_index"));
        assert_int_equal(b, side == FACE_EYE_LEFT ? 0 : 1);
        assert_int_equal(json_is_true(json_object_get(e, "mirrored")),
                         iris_mirrored((enum face_eye_side)side));
        const json_t *eb = json_object_get(e, "box_crop");
        const json_t *s0 = json_object_get(eb, "startPoint"), *e0 = json_object_get(eb, "endPoint");
        int32_t want[4] = {(int32_t)jat(s0, 0), (int32_t)jat(s0, 1), (int32_t)jat(e0, 0),
                           (int32_t)jat(e0, 1)};
        int32_t box[4];
        iris_eye_box(ref_raw, (enum face_eye_side)side, box);
        assert_memory_equal(box, want, sizeof box);
        for (int plain = 0; plain < 2; plain++) {
            if (plain)
                setenv("FACEAUTH_NO_AVX512", "1", 1);
            memset(eye_in, 0, sizeof eye_in);
            iris_input(ref_mesh_in, box, iris_mirrored((enum face_eye_side)side), eye_in);
            unsetenv("FACEAUTH_NO_AVX512");
            assert_memory_equal(eye_in, ref_iris_in + b * 64 * 64 * 3, sizeof eye_in);
        }
        static const char *const iris_out[] = {"Identity"};
        check_outputs(iris_graph(F.iris), eye_in, "iris", iris_out, 1, 2, b);
    }

    /* Human's orientation for the subject's right eye (crop mirrored,
     * output left as is) against the reference right eye: measurably
     * different, so the per-image comparison below tells the two apart. */
    {
        json_t *photos = load_json("data/reference/facemesh.photos.cpu.json");
        const json_t *r = json_object_get(photos, DUMP_IMAGE);
        const json_t *face = json_array_get(json_object_get(r, "faces"), 0);
        const json_t *reye = json_object_get(json_object_get(face, "eyes"), "right");
        int32_t box[4];
        float raw[IRIS_POINTS * 3];
        struct face_eye ours, human;
        iris_eye_box(ref_raw, FACE_EYE_RIGHT, box);
        iris_input(ref_mesh_in, box, false, eye_in);
        assert_int_equal(iris_infer(F.iris, F.ctx, &F.arena, eye_in, raw), FA_OK);
        iris_to_image(det.face_box, box, false, raw, &ours);
        iris_input(ref_mesh_in, box, true, eye_in);
        assert_int_equal(iris_infer(F.iris, F.ctx, &F.arena, eye_in, raw), FA_OK);
        iris_to_image(det.face_box, box, false, raw, &human);
        double e_ours = mean_err((const float(*)[3])ours.contour, json_object_get(reye, "contour"),
                                 FACE_EYE_CONTOUR);
        double e_human = mean_err((const float(*)[3])human.contour,
                                  json_object_get(reye, "contour"), FACE_EYE_CONTOUR);
        fprintf(stderr,
                "  right eye vs reference: MediaPipe orientation %.4f px, Human's %.2f px "
                "(ratio %.4f / %.4f, reference %.4f)\n",
                e_ours, e_human, ours.ratio, human.ratio,
                jnum(json_object_get(json_object_get(reye, "lid"), "ratio")));
        assert_true(e_ours <= IRIS_ERR_MAX);
        assert_true(e_human > IRIS_ERR_MAX);
        json_decref(photos);
    }

    json_decref(tj);
    free(ref_raw);
    free(ref_iris_in);
    free(mesh_in);
    free(ref_mesh_in);
    free(scratch);
    free(ref_boxes);
    free(ref_scores);
    free(ref_anchors);
    free(ref_table);
    free(table);
    free(l512);
    free(l384);
    free(r512);
    free(r384);
    free(ref_in);
    free(bf_in);
    img_free(im);
}

/* ------------------------------------------ 2. every reference image */

struct stats {
    int images, faces, eyes;
    double min_iou, max_score_d, max_mesh_score_d;
    double max_mesh_err, sum_mesh_err, max_iris_err, sum_iris_err, max_ratio_d;
    int face_box_diff, eye_box_diff;
};

static void stats_init(struct stats *s)
{
    memset(s, 0, sizeof *s);
    s->min_iou = 1.0;
}

static double iou4(const double a[4], const double b[4])
{
    double iw = fmax(0, fmin(a[2], b[2]) - fmax(a[0], b[0]));
    double ih = fmax(0, fmin(a[3], b[3]) - fmax(a[1], b[1]));
    double inter = iw * ih;
    double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return u > 0 ? inter / u : 0;
}

/* One image against its reference entry, stage by stage. Where an integer
 * box differs (a rounding flipped by a tiny difference, PIPELINE.md 9) the
 * reference box is fed to the next stage, and the difference is counted. */
static void check_image(const char *key, const json_t *ref, struct stats *st)
{
    static const char *const side_key[2] = {"right", "left"};
    struct img *im = load_image(key);
    assert_int_equal(im->w, (int)jnum(json_object_get(ref, "width")));
    assert_int_equal(im->h, (int)jnum(json_object_get(ref, "height")));
    const json_t *rdets = json_object_get(ref, "detections");
    const json_t *rfaces = json_object_get(ref, "faces");
    struct bf_det det;
    size_t n = 0;
    assert_int_equal(bf_detect(F.bf, F.ctx, &F.arena, im, 0, &det, 1, &n), FA_OK);
    if (n != json_array_size(rdets))
        fprintf(stderr, "%s: %zu detections, reference %zu\n", key, n, json_array_size(rdets));
    assert_int_equal(n, json_array_size(rdets));
    st->images++;
    if (n == 0) {
        img_free(im);
        return;
    }
    const json_t *rd = json_array_get(rdets, 0);
    const json_t *rbox = json_object_get(rd, "box");
    double rb[4] = {jat(rbox, 0), jat(rbox, 1), jat(rbox, 2), jat(rbox, 3)};
    double iou = iou4(det.box, rb);
    double sd = fabs((double)det.score - jnum(json_object_get(rd, "score")));
    st->min_iou = fmin(st->min_iou, iou);
    st->max_score_d = fmax(st->max_score_d, sd);
    if (iou < IOU_MIN || sd > SCORE_TOL)
        fprintf(stderr, "%s: BlazeFace IoU %.4f, score diff %.4f\n", key, iou, sd);
    assert_true(iou >= IOU_MIN);
    assert_true(sd <= SCORE_TOL);

    const json_t *rf = json_array_get(rfaces, 0);
    int32_t fbox[4];
    jbox(json_object_get(rf, "face_box"), fbox);
    if (memcmp(fbox, det.face_box, sizeof fbox) != 0) {
        st->face_box_diff++;
        fprintf(stderr, "%s: face box %d %d %d %d, reference %d %d %d %d (reference used)\n", key,
                det.face_box[0], det.face_box[1], det.face_box[2], det.face_box[3], fbox[0],
                fbox[1], fbox[2], fbox[3]);
    }

    /* FaceMesh */
    static float input[MESH_INPUT * MESH_INPUT * 3], raw[FACE_MESH_POINTS * 3];
    static struct face_mesh f;
    float score;
    mesh_input(im, fbox, input);
    assert_int_equal(mesh_infer(F.mesh, F.ctx, &F.arena, input, raw, &score), FA_OK);
    const json_t *rmesh = json_object_get(rf, "mesh");
    double msd = fabs((double)score - jnum(json_object_get(rmesh, "score")));
    st->max_mesh_score_d = fmax(st->max_mesh_score_d, msd);
    assert_true(msd <= SCORE_TOL);
    assert_int_equal(mesh_kept(score), json_is_true(json_object_get(rmesh, "kept")));
    for (int i = 0; i < FACE_MESH_POINTS; i++) {
        double x, y;
        mesh_to_image(fbox, raw[3 * i], raw[3 * i + 1], &x, &y);
        f.pts[i][0] = (float)x;
        f.pts[i][1] = (float)y;
        f.pts[i][2] = raw[3 * i + 2];
    }
    double me =
        mean_err((const float(*)[3])f.pts, json_object_get(rmesh, "points"), FACE_MESH_POINTS);
    st->faces++;
    st->sum_mesh_err += me;
    st->max_mesh_err = fmax(st->max_mesh_err, me);
    if (me > MESH_ERR_MAX || me > 0.05)
        fprintf(stderr, "%s: mesh mean error %.3f px\n", key, me);
    assert_true(me <= MESH_ERR_MAX);
    if (!mesh_kept(score)) {
        img_free(im);
        return;
    }

    /* Iris, both eyes */
    const json_t *reyes = json_object_get(rf, "eyes");
    const json_t *rparams = json_object_get(json_object_get(ref, "parameters"), "iris");
    assert_string_equal(json_string_value(json_object_get(rparams, "eye_flip")), "mediapipe");
    for (int side = 0; side < 2; side++) {
        const json_t *re = json_object_get(reyes, side_key[side]);
        bool mirrored = iris_mirrored((enum face_eye_side)side);
        assert_int_equal(json_is_true(json_object_get(re, "mirrored")), mirrored);
        assert_int_equal(json_is_true(json_object_get(re, "unmirrored_output")), mirrored);
        int32_t ebox[4], rebox[4];
        iris_eye_box(raw, (enum face_eye_side)side, ebox);
        jbox(json_object_get(re, "box_crop"), rebox);
        if (memcmp(ebox, rebox, sizeof ebox) != 0) {
            st->eye_box_diff++;
            fprintf(stderr, "%s: %s eye box differs (reference used)\n", key, side_key[side]);
        }
        static float eye_in[IRIS_INPUT * IRIS_INPUT * 3];
        float eraw[IRIS_POINTS * 3];
        struct face_eye eye;
        iris_input(input, rebox, mirrored, eye_in);
        assert_int_equal(iris_infer(F.iris, F.ctx, &F.arena, eye_in, eraw), FA_OK);
        iris_to_image(fbox, rebox, mirrored, eraw, &eye);
        double ec = mean_err((const float(*)[3])eye.contour, json_object_get(re, "contour"),
                             FACE_EYE_CONTOUR);
        double ei =
            mean_err((const float(*)[3])eye.iris, json_object_get(re, "iris"), FACE_IRIS_POINTS);
        double e = (ec * FACE_EYE_CONTOUR + ei * FACE_IRIS_POINTS) / IRIS_POINTS;
        double rd_ = fabs(eye.ratio - jnum(json_object_get(json_object_get(re, "lid"), "ratio")));
        st->eyes++;
        st->sum_iris_err += e;
        st->max_iris_err = fmax(st->max_iris_err, e);
        st->max_ratio_d = fmax(st->max_ratio_d, rd_);
        if (e > IRIS_ERR_MAX || rd_ > RATIO_TOL)
            fprintf(stderr, "%s: %s eye: mean error %.3f px, ratio diff %.4f\n", key,
                    side_key[side], e, rd_);
        assert_true(e <= IRIS_ERR_MAX);
        assert_true(rd_ <= RATIO_TOL);
    }
    img_free(im);
}

static void print_stats(const char *what, const struct stats *s)
{
    fprintf(stderr,
            "%s: %d images, %d faces, %d eyes: BlazeFace IoU >= %.5f, score diff <= %.2g; "
            "face boxes differing %d, eye boxes differing %d; mesh score diff <= %.2g, mesh "
            "mean error %.4f px (worst image %.4f); iris-model points mean error %.4f px "
            "(worst eye %.4f); ratio diff <= %.2g\n",
            what, s->images, s->faces, s->eyes, s->min_iou, s->max_score_d, s->face_box_diff,
            s->eye_box_diff, s->max_mesh_score_d, s->faces ? s->sum_mesh_err / s->faces : 0,
            s->max_mesh_err, s->eyes ? s->sum_iris_err / s->eyes : 0, s->max_iris_err,
            s->max_ratio_d);
}

static void test_photos_cpu(void **state)
{
    (void)state;
    json_t *ref = load_json("data/reference/facemesh.photos.cpu.json");
    struct stats st;
    stats_init(&st);
    const char *key;
    json_t *v;
    json_object_foreach(ref, key, v)
    {
        check_image(key, v, &st);
    }
    print_stats("photos (cpu reference)", &st);
    assert_int_equal(st.images, 11);
    /* integer boxes may flip on a rounding; a few would mean a real error */
    assert_true(st.face_box_diff <= 1 && st.eye_box_diff <= 2);
    json_decref(ref);
}

static void test_video_wasm(void **state)
{
    (void)state;
    json_t *ref = load_json("data/reference/facemesh.video.wasm.json");
    struct stats st;
    stats_init(&st);
    const char *key;
    json_t *v;
    size_t i = 0, total = json_object_size(ref);
    json_object_foreach(ref, key, v)
    {
        if (!F.quick || i++ % 57 == 0)
            check_image(key, v, &st);
    }
    print_stats("video frames (wasm reference)", &st);
    assert_int_equal(total, 570);
    assert_int_equal(st.images, F.quick ? 10 : 570);
    /* at most 1% of the integer boxes flipped */
    assert_true(st.face_box_diff * 100 <= st.images && st.eye_box_diff * 100 <= st.eyes);
    json_decref(ref);
}

/* ------------------------------------------ 3. pipeline, loader errors */

/* The composed pipeline (what face_mesh_detect and the tracker run) gives
 * the same points as the stages, and allocates nothing per frame. */
static void test_pipeline(void **state)
{
    (void)state;
    json_t *ref = load_json("data/reference/facemesh.photos.cpu.json");
    const char *key;
    json_t *v;
    json_object_foreach(ref, key, v)
    {
        struct img *im = load_image(key);
        static struct face_mesh out[4];
        size_t n = 9;
        (void)mesh_detect_all(&F.nets, F.ctx, &F.arena, im, 0, out, 4, &n); /* warm-up */
        fa_alloc_fail_reset();
        long before = fa_alloc_count();
        size_t used = fa_arena_mark(&F.arena);
        assert_int_equal(mesh_detect_all(&F.nets, F.ctx, &F.arena, im, 0, out, 1, &n), FA_OK);
        assert_int_equal(fa_alloc_count(), before);
        assert_int_equal(fa_arena_mark(&F.arena), used);
        const json_t *rf = json_array_get(json_object_get(v, "faces"), 0);
        assert_int_equal(n, rf != NULL);
        if (n == 1) {
            double me =
                mean_err((const float(*)[3])out[0].pts,
                         json_object_get(json_object_get(rf, "mesh"), "points"), FACE_MESH_POINTS);
            assert_true(me <= MESH_ERR_MAX);
            const json_t *rl = json_object_get(json_object_get(rf, "eyes"), "left");
            double rd_ = fabs(out[0].eye[FACE_EYE_LEFT].ratio -
                              jnum(json_object_get(json_object_get(rl, "lid"), "ratio")));
            assert_true(rd_ <= RATIO_TOL);
            /* the recognition box: the mesh's bounding box */
            assert_true(out[0].box.w > 0 && out[0].box.h > 0);
            for (int i = 0; i < FACE_MESH_POINTS; i++)
                assert_true(out[0].pts[i][0] >= out[0].box.x &&
                            out[0].pts[i][0] <= out[0].box.x + out[0].box.w &&
                            out[0].pts[i][1] >= out[0].box.y &&
                            out[0].pts[i][1] <= out[0].box.y + out[0].box.h);
            assert_true(out[0].det.score > BF_MIN_SCORE);
        }
        /* the recognition finder agrees with it */
        struct face_box boxes[4];
        size_t nb = 9;
        assert_int_equal(mesh_detect_boxes(&F.nets, F.ctx, &F.arena, im, 0, boxes, 4, &nb), FA_OK);
        assert_true(nb >= n);
        /* an arena too small is refused, not overrun */
        struct fa_arena small;
        assert_int_equal(fa_arena_init(&small, 4096), FA_OK);
        assert_int_equal(mesh_detect_all(&F.nets, F.ctx, &small, im, 0, out, 1, &n), FA_ERR_NOMEM);
        fa_arena_fini(&small);
        img_free(im);
    }
    json_decref(ref);
}

/* Tracking without the detector (face_track_next, the server's path): on a
 * clip the track holds from frame to frame, its mesh agrees with a fresh
 * detection's, and it lets go of a face that is not where it was. */
static void test_track(void **state)
{
    (void)state;
    static struct face_mesh det[4], f;
    struct face_track t = {0};
    size_t n = 0;
    bool ok = true;
    int tracked = 0, frames = 0;
    double worst = 0;
    for (int i = 1; i <= 30; i++) {
        char key[128];
        snprintf(key, sizeof key, "video/studio_man_blink/frames/%04d.jpg", i);
        struct img *im = load_image(key);
        assert_int_equal(mesh_detect_all(&F.nets, F.ctx, &F.arena, im, 0, det, 4, &n), FA_OK);
        assert_int_equal(n, 1);
        if (t.on) {
            frames++;
            assert_int_equal(track_face_next(&F.nets, F.ctx, &F.arena, &t, im, 0, &f, &ok), FA_OK);
            assert_int_equal(t.on, ok);
            if (ok) {
                tracked++;
                double e = 0;
                for (int k = 0; k < FACE_MESH_POINTS; k++)
                    e += hypot(f.pts[k][0] - det[0].pts[k][0], f.pts[k][1] - det[0].pts[k][1]);
                e /= FACE_MESH_POINTS * (double)det[0].box.w; /* share of the face's width */
                worst = e > worst ? e : worst;
                assert_true(f.score >= 0.5f);
                assert_true(f.det.score == 0.0f); /* placed by the track, not the detector */
            }
        }
        if (!t.on)
            face_track_start(&t, &det[0]);
        img_free(im);
    }
    printf(
        "track: %d of %d frames tracked, worst mean distance to detection %.3f of the face width\n",
        tracked, frames, worst);
    assert_true(tracked * 10 >= frames * 8);
    assert_true(worst <= 0.05);

    /* a frame without that face: the track is let go */
    struct img *cat = load_image("noface/cat.jpg");
    assert_true(t.on);
    assert_int_equal(track_face_next(&F.nets, F.ctx, &F.arena, &t, cat, 0, &f, &ok), FA_OK);
    assert_false(ok);
    assert_false(t.on);
    /* off: nothing to follow, nothing run */
    assert_int_equal(track_face_next(&F.nets, F.ctx, &F.arena, &t, cat, 0, &f, &ok), FA_OK);
    assert_false(ok);
    /* bad arguments change nothing */
    t.on = true;
    const struct mesh_nets none = {F.nets.bf, NULL, F.nets.iris};
    assert_int_equal(track_face_next(&none, F.ctx, &F.arena, &t, cat, 0, &f, &ok), FA_ERR_ARG);
    assert_true(t.on);
    img_free(cat);
}

/* The faces beside a tracked subject (mesh_detect_others): on the group
 * photos, every face face_mesh_detect finds but the largest; none on a
 * portrait. */
static void test_others(void **state)
{
    (void)state;
    static const char *photos[] = {"group/bbt1.jpg", "group/couple.jpg",
                                   "group/longoria_cooper.jpg", "group/multiface.jpg",
                                   "video/studio_man_blink/frames/0001.jpg"};
    static struct face_mesh all[16];
    for (size_t p = 0; p < sizeof photos / sizeof photos[0]; p++) {
        struct img *im = load_image(photos[p]);
        size_t n = 0;
        assert_int_equal(mesh_detect_all(&F.nets, F.ctx, &F.arena, im, 0, all, 16, &n), FA_OK);
        assert_true(n >= 1);
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (all[i].box.w > all[best].box.w)
                best = i;
        float want_w = 0;
        for (size_t i = 0; i < n; i++)
            if (i != best && all[i].box.w > want_w)
                want_w = all[i].box.w;
        int32_t others = -1;
        float w = -1;
        assert_int_equal(
            mesh_detect_others(&F.nets, F.ctx, &F.arena, im, &all[best].box, &others, &w), FA_OK);
        printf("others: %s: %zu faces, %d beside the largest (widest %.1f px)\n", photos[p], n,
               (int)others, (double)w);
        assert_int_equal(others, (int32_t)n - 1);
        assert_true(fabsf(w - want_w) < 0.5f);
        img_free(im);
    }
}

static int copy_file(const char *from, const char *to)
{
    size_t n = 0;
    void *p = tu_read_file(from, &n);
    if (p == NULL)
        return -1;
    int rc = write_file(to, p, n);
    free(p);
    return rc;
}

static void test_bad_models(void **state)
{
    (void)state;
    struct fa_errinfo info = {{0}};
    struct bf_net *bf = NULL;
    struct mesh_net *mesh = NULL;
    struct iris_net *iris = NULL;
    char src[1024], dir[] = "/tmp/fa_test_mesh_XXXXXX", path[1200];

    assert_int_equal(bf_load("/nonexistent/dir", F.be, &bf, &info), FA_ERR_MODEL_MISSING);
    assert_true(info.what[0] != '\0');
    assert_null(bf);
    assert_non_null(mkdtemp(dir));

    /* facemesh.json with its face-flag output renamed: refused, named */
    size_t n = 0;
    snprintf(src, sizeof src, "%s/human/facemesh.json", tu_models_dir());
    char *json = tu_read_file(src, &n);
    assert_non_null(json);
    json = realloc(json, n + 1);
    json[n] = '\0';
    for (char *p = json; (p = strstr(p, "\"Identity_1")) != NULL; p += 11)
        p[10] = '7';
    snprintf(path, sizeof path, "%s/facemesh.json", dir);
    assert_int_equal(write_file(path, json, n), 0);
    snprintf(src, sizeof src, "%s/human/facemesh.bin", tu_models_dir());
    snprintf(path, sizeof path, "%s/facemesh.bin", dir);
    assert_int_equal(copy_file(src, path), 0);
    memset(&info, 0, sizeof info);
    enum fa_status rc = mesh_load(dir, F.be, &mesh, &info);
    fprintf(stderr, "  renamed output: %s: %s\n", fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_ERR_MODEL_TENSOR);
    assert_non_null(strstr(info.what, "Identity_1"));
    assert_null(mesh);

    /* a truncated weight file */
    snprintf(src, sizeof src, "%s/human/iris.json", tu_models_dir());
    snprintf(path, sizeof path, "%s/iris.json", dir);
    assert_int_equal(copy_file(src, path), 0);
    snprintf(src, sizeof src, "%s/human/iris.bin", tu_models_dir());
    char *bin = tu_read_file(src, &n);
    assert_non_null(bin);
    snprintf(path, sizeof path, "%s/iris.bin", dir);
    assert_int_equal(write_file(path, bin, n / 2), 0);
    free(bin);
    memset(&info, 0, sizeof info);
    rc = iris_load(dir, F.be, &iris, &info);
    fprintf(stderr, "  truncated weights: %s: %s\n", fa_status_name(rc), info.what);
    assert_int_not_equal(rc, FA_OK);
    assert_true(info.what[0] != '\0');
    assert_null(iris);

    /* garbage JSON */
    snprintf(path, sizeof path, "%s/blazeface.json", dir);
    static const char garbage[] = "{\"format\": \"graph-model\", \"modelTop";
    assert_int_equal(write_file(path, garbage, strlen(garbage)), 0);
    memset(&info, 0, sizeof info);
    rc = bf_load(dir, F.be, &bf, &info);
    fprintf(stderr, "  malformed JSON: %s: %s\n", fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_ERR_MODEL_FORMAT);
    assert_null(bf);

    /* the wrong model under the right name (iris.json as blazeface.json) */
    snprintf(src, sizeof src, "%s/human/iris.json", tu_models_dir());
    assert_int_equal(copy_file(src, path), 0);
    snprintf(src, sizeof src, "%s/human/iris.bin", tu_models_dir());
    snprintf(path, sizeof path, "%s/iris.bin", dir);
    assert_int_equal(copy_file(src, path), 0);
    memset(&info, 0, sizeof info);
    rc = bf_load(dir, F.be, &bf, &info);
    fprintf(stderr, "  wrong model: %s: %s\n", fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_ERR_MODEL_TENSOR);
    assert_null(bf);

    static const char *const files[] = {"facemesh.json", "facemesh.bin", "iris.json", "iris.bin",
                                        "blazeface.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    free(json);
}

/* ------------------------------------------ 4. recognition face finder */

#define MAX_PHOTOS 128

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory (not starting with '.'); returns count. */
static int list_dir(const char *dir, char **out, int max)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max)
        if (de->d_name[0] != '.')
            out[n++] = strdup(de->d_name);
    closedir(d);
    qsort(out, (size_t)n, sizeof out[0], cmp_str);
    return n;
}

/* The Big Bang Theory cast: grayscale 150 px crops, not in the pair test
 * (the JavaScript figures are on the other 37 photos). */
static bool is_bbt(const char *person)
{
    static const char *const cast[] = {"amy",   "bernadette", "howard",  "leonard",
                                       "penny", "raj",        "sheldon", "stuart"};
    for (size_t i = 0; i < sizeof cast / sizeof cast[0]; i++)
        if (strcmp(person, cast[i]) == 0)
            return true;
    return false;
}

static void test_recognition(void **state)
{
    (void)state;
    struct fa_errinfo info = {{0}};
    struct face_models *m = NULL;
    struct face_worker *w = NULL;
    char dir[1024], path[1400];
    assert_int_equal(face_models_load(tu_models_dir(), F.be,
                                      FACE_NET_BLAZEFACE | FACE_NET_MESH | FACE_NET_LANDMARKS |
                                          FACE_NET_DESCRIPTOR,
                                      &m, &info),
                     FA_OK);
    assert_int_equal(face_worker_new(m, &w), FA_OK);

    static float desc[MAX_PHOTOS][FACE_DESCRIPTOR];
    static char person[MAX_PHOTOS][64];
    int n = 0, found = 0, k = 0;
    char *people[64];
    int np = list_dir(tu_shared_path(dir, sizeof dir, "data/faces/identities"), people, 64);
    for (int i = 0; i < np; i++) {
        char *files[32];
        snprintf(path, sizeof path, "%s/%s", dir, people[i]);
        int nf = list_dir(path, files, 32);
        for (int j = 0; j < nf; j++, k++) {
            if (!(F.quick && k % 4 != 0 && strcmp(people[i], "leonard") != 0)) {
                char rel[512];
                snprintf(rel, sizeof rel, "identities/%s/%s", people[i], files[j]);
                struct img *im = load_image(rel);
                struct face_box boxes[8];
                size_t nb = 0;
                assert_int_equal(face_detect(m, w, im, FACE_DET_BLAZEFACE, 0, boxes, 8, &nb),
                                 FA_OK);
                if (nb == 0)
                    fprintf(stderr, "  no face: %s\n", rel);
                for (size_t b = 1; b < nb; b++) /* largest first */
                    assert_true(boxes[b].w * boxes[b].h <= boxes[0].w * boxes[0].h);
                if (nb > 0) {
                    float pts[FACE_LANDMARKS][2];
                    assert_true(n < MAX_PHOTOS);
                    assert_int_equal(face_landmarks(m, w, im, &boxes[0], pts), FA_OK);
                    assert_int_equal(face_descriptor(m, w, im, pts, desc[n]), FA_OK);
                    snprintf(person[n], sizeof person[n], "%s", people[i]);
                    n++;
                    found++;
                }
                img_free(im);
            }
            free(files[j]);
        }
        free(people[i]);
    }
    fprintf(stderr, "identity photos with a face: %d of %d\n", found, F.quick ? found : k);
    if (!F.quick) {
        assert_int_equal(k, 77);
        assert_int_equal(found, 77);
        int same = 0, same_ok = 0, diff = 0, diff_ok = 0;
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                if (is_bbt(person[a]) || is_bbt(person[b]))
                    continue;
                float d = face_distance(desc[a], desc[b]);
                if (strcmp(person[a], person[b]) == 0) {
                    same++;
                    same_ok += d < 0.62f;
                } else {
                    diff++;
                    diff_ok += d >= 0.62f;
                }
            }
        fprintf(stderr,
                "pairs at distance 0.62: same person accepted %d of %d, different people "
                "rejected %d of %d\n",
                same_ok, same, diff_ok, diff);
        assert_int_equal(same, 76);
        assert_int_equal(diff, 590);
        assert_true(same_ok >= 72);
        assert_true(diff_ok >= 588);
    } else {
        assert_int_equal(found, F.quick ? found : k);
    }

    /* noface/: no face, except two animal faces that FaceMesh itself scores
     * as human: a kitten in cats.jpg (mesh score 0.47 at the original
     * framing, 0.98 framed smaller; the JavaScript oracle gives the same
     * 0.4687 and Human keeps it) and a dog in dogs.jpg (mesh score 0.995; the
     * oracle with --max-faces 8 gives 0.9948). No threshold on these
     * networks' outputs separates them from real faces. */
    char *nf[16];
    int nn = list_dir(tu_shared_path(dir, sizeof dir, "data/faces/noface"), nf, 16);
    assert_int_equal(nn, 8);
    for (int i = 0; i < nn; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "noface/%s", nf[i]);
        struct img *im = load_image(rel);
        struct face_box boxes[8];
        size_t nb = 9;
        assert_int_equal(face_detect(m, w, im, FACE_DET_BLAZEFACE, 0, boxes, 8, &nb), FA_OK);
        bool animal = strcmp(nf[i], "cats.jpg") == 0 || strcmp(nf[i], "dogs.jpg") == 0;
        fprintf(stderr, "  %s: %zu face(s)%s\n", rel, nb, animal ? " (animal, see above)" : "");
        assert_int_equal(nb, animal ? 1 : 0);
        img_free(im);
        free(nf[i]);
    }
    face_worker_free(w);
    face_models_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_dump), cmocka_unit_test(test_photos_cpu),
        cmocka_unit_test(test_video_wasm),  cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_bad_models),  cmocka_unit_test(test_recognition),
        cmocka_unit_test(test_track),       cmocka_unit_test(test_others),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
