/* TF.js weights loader (nn/tfjs.c): the real face-api and Human manifests
 * against the appendix tables of faceapi-reference/ARCHITECTURE.md and an
 * independent decoding written here from the raw .bin bytes; every class of
 * malformed manifest; and allocation-failure injection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "nn/nn.h"
#include "testutil.h"

static char *model_path(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/%s", tu_models_dir(), rel);
    return buf;
}

static void read_all(const char *path, struct fa_buf *b)
{
    assert_int_equal(fa_read_file(path, 64u << 20, b), FA_OK);
}

/* Independent binary16 -> double (exact for finite halves). */
static double half_ref(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Text of the number after `"key":` at or after *pos in the manifest text;
 * returns its strtod value and advances *pos. */
static double next_number(const char *text, const char *key, const char **pos)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *hit = strstr(*pos, pat);
    assert_non_null(hit);
    size_t at = (size_t)(hit - text) + strlen(pat);
    while (text[at] == ' ')
        at++;
    char *end = NULL;
    double v = strtod(text + at, &end);
    assert_true(end > text + at);
    *pos = text + (end - text);
    return v;
}

/* Check every tensor of a loaded manifest value by value against a
 * decoding done here from the raw bytes and the JSON text, and return the
 * number of bytes the manifest covers. */
static size_t check_all_values(const char *json_text, const struct nn_weights *w,
                               const struct fa_buf *bin)
{
    json_error_t err;
    json_t *root = json_loads(json_text, 0, &err);
    assert_non_null(root);
    json_t *man = json_is_object(root) ? json_object_get(root, "weightsManifest") : root;
    size_t off = 0, k = 0;
    const char *scan = json_text;
    for (size_t g = 0; g < json_array_size(man); g++) {
        json_t *ws = json_object_get(json_array_get(man, g), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++, k++) {
            json_t *jw = json_array_get(ws, i);
            const struct nn_weight *t = &w->t[k];
            assert_string_equal(t->name, json_string_value(json_object_get(jw, "name")));
            bool is_int = strcmp(json_string_value(json_object_get(jw, "dtype")), "int32") == 0;
            assert_int_equal(t->is_int32, is_int);
            json_t *q = json_object_get(jw, "quantization");
            const char *qd = q ? json_string_value(json_object_get(q, "dtype")) : NULL;
            const uint8_t *p = bin->p + off;
            if (qd == NULL) {
                for (size_t j = 0; j < t->count; j++) {
                    if (is_int) {
                        int32_t v;
                        memcpy(&v, p + 4 * j, 4);
                        assert_true(t->data[j] == (float)v);
                    } else {
                        assert_memory_equal(&t->data[j], p + 4 * j, 4);
                    }
                }
                off += 4 * t->count;
            } else if (strcmp(qd, "float16") == 0) {
                for (size_t j = 0; j < t->count; j++) {
                    uint16_t h = (uint16_t)(p[2 * j] | p[2 * j + 1] << 8);
                    assert_true(t->data[j] == (float)half_ref(h));
                }
                off += 2 * t->count;
            } else {
                assert_string_equal(qd, "uint8");
                /* scale and min as strtod reads the JSON text: the same
                 * doubles jansson gave the loader */
                double s = next_number(json_text, "scale", &scan);
                double mn = next_number(json_text, "min", &scan);
                assert_true(s == json_number_value(json_object_get(q, "scale")));
                assert_true(mn == json_number_value(json_object_get(q, "min")));
                for (size_t j = 0; j < t->count; j++) {
                    double v = (double)p[j] * s;
                    v += mn;
                    if (is_int)
                        v = floor(v + 0.5);
                    assert_true(t->data[j] == (float)v);
                }
                off += t->count;
            }
        }
    }
    assert_int_equal(k, w->n);
    json_decref(root);
    return off;
}

struct model_case {
    const char *manifest, *bin;
    size_t tensors, bytes;
};

static void check_model(const struct model_case *mc)
{
    char path[1024];
    struct nn_weights w = {0};
    struct fa_errinfo info = {{0}};
    enum fa_status rc = nn_weights_load(model_path(path, sizeof path, mc->manifest), &w, &info);
    if (rc != FA_OK)
        fail_msg("%s: %s (%s)", mc->manifest, fa_status_name(rc), info.what);
    assert_int_equal(w.n, mc->tensors);

    struct fa_buf text = {0}, bin = {0};
    read_all(path, &text);
    read_all(model_path(path, sizeof path, mc->bin), &bin);
    assert_int_equal(bin.n, mc->bytes);
    assert_int_equal(check_all_values((const char *)text.p, &w, &bin), mc->bytes);
    fa_buf_fini(&text);
    fa_buf_fini(&bin);
    nn_weights_fini(&w);
    assert_null(w.t);
    assert_int_equal(w.n, 0);
}

/* Counts and totals from ARCHITECTURE.md's appendix and PIPELINE.md §4. */
static void test_real_models(void **state)
{
    (void)state;
    static const struct model_case cases[] = {
        {"face-api/tiny_face_detector_model-weights_manifest.json",
         "face-api/tiny_face_detector_model.bin", 19, 193321},
        {"face-api/ssd_mobilenetv1_model-weights_manifest.json",
         "face-api/ssd_mobilenetv1_model.bin", 151, 5616957},
        {"face-api/face_landmark_68_model-weights_manifest.json",
         "face-api/face_landmark_68_model.bin", 49, 356840},
        {"face-api/face_recognition_model-weights_manifest.json",
         "face-api/face_recognition_model.bin", 117, 6444032},
        {"human/blazeface.json", "human/blazeface.bin", 112, 538928},
        {"human/facemesh.json", "human/facemesh.bin", 120, 1477958},
        {"human/iris.json", "human/iris.bin", 191, 2599092},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_model(&cases[i]);
}

/* A few rows of the appendix, with the scale/min literals copied from it. */
static void test_appendix_rows(void **state)
{
    (void)state;
    char path[1024];
    struct nn_weights w = {0};
    struct fa_errinfo info = {{0}};
    struct fa_buf bin = {0};

    assert_int_equal(nn_weights_load(model_path(path, sizeof path,
                                                "face-api/tiny_face_detector_model-"
                                                "weights_manifest.json"),
                                     &w, &info),
                     FA_OK);
    read_all(model_path(path, sizeof path, "face-api/tiny_face_detector_model.bin"), &bin);
    const struct nn_weight *t =
        nn_weights_get(&w, "conv0/filters", 4, (int32_t[]){3, 3, 3, 16}, &info);
    assert_non_null(t);
    assert_int_equal(t->count, 432);
    for (size_t j = 0; j < 432; j++) {
        double v = (double)bin.p[j] * 0.009007044399485869;
        v += -1.2069439495311063;
        assert_true(t->data[j] == (float)v);
    }
    t = nn_weights_get(&w, "conv8/bias", 1, (int32_t[]){25}, &info);
    assert_non_null(t);
    for (size_t j = 0; j < 25; j++) {
        double v = (double)bin.p[193296 + j] * 0.002268134028303857;
        v += -0.41053225912299807;
        assert_true(t->data[j] == (float)v);
    }
    /* wrong shape, wildcard, missing */
    assert_null(nn_weights_get(&w, "conv8/bias", 1, (int32_t[]){24}, &info));
    assert_non_null(strstr(info.what, "[25]"));
    assert_non_null(strstr(info.what, "[24]"));
    assert_null(nn_weights_get(&w, "conv8/bias", 2, (int32_t[]){25, 1}, &info));
    assert_non_null(
        nn_weights_get(&w, "conv5/pointwise_filter", 4, (int32_t[]){1, 1, -1, 512}, &info));
    assert_null(nn_weights_get(&w, "conv9/bias", 1, (int32_t[]){25}, &info));
    assert_non_null(strstr(info.what, "conv9/bias"));
    nn_weights_fini(&w);
    fa_buf_fini(&bin);

    assert_int_equal(nn_weights_load(model_path(path, sizeof path,
                                                "face-api/ssd_mobilenetv1_model-"
                                                "weights_manifest.json"),
                                     &w, &info),
                     FA_OK);
    t = nn_weights_get(&w, "Postprocessor/stack/1", 0, NULL, &info);
    assert_non_null(t);
    assert_true(t->is_int32);
    assert_true(t->data[0] == 5118.0f);
    t = nn_weights_get(&w, "Output/extra_dim", 3, (int32_t[]){1, 5118, 4}, &info);
    assert_non_null(t);
    assert_false(t->is_int32);
    read_all(model_path(path, sizeof path, "face-api/ssd_mobilenetv1_model.bin"), &bin);
    assert_memory_equal(t->data, bin.p + 5535069, 81888);
    nn_weights_fini(&w);
    fa_buf_fini(&bin);

    assert_int_equal(nn_weights_load(model_path(path, sizeof path,
                                                "face-api/face_landmark_68_model-"
                                                "weights_manifest.json"),
                                     &w, &info),
                     FA_OK);
    assert_non_null(nn_weights_get(&w, "fc/weights", 2, (int32_t[]){256, 136}, &info));
    nn_weights_fini(&w);
    assert_int_equal(nn_weights_load(model_path(path, sizeof path,
                                                "face-api/face_recognition_model-"
                                                "weights_manifest.json"),
                                     &w, &info),
                     FA_OK);
    assert_non_null(
        nn_weights_get(&w, "conv32_down/conv/filters", 4, (int32_t[]){7, 7, 3, 32}, &info));
    nn_weights_fini(&w);
}

/* ------------------------------------------------------ malformed files */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fa_tfjs_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Write manifest `json` as m.json (and `binsize` bytes of 0x3c as w.bin when
 * binsize >= 0), load it, and return the status; *info gets the detail. */
static enum fa_status load_case(const char *json, long binsize, struct fa_errinfo *info)
{
    char path[512];
    write_file("m.json", json, strlen(json));
    snprintf(path, sizeof path, "%s/w.bin", tmpdir);
    unlink(path);
    if (binsize >= 0) {
        uint8_t *b = malloc((size_t)binsize + 1);
        memset(b, 0x3c, (size_t)binsize);
        write_file("w.bin", b, (size_t)binsize);
        free(b);
    }
    struct nn_weights w = {.t = (void *)&w, .n = 12345}; /* sentinel: untouched on failure */
    snprintf(path, sizeof path, "%s/m.json", tmpdir);
    info->what[0] = 0;
    enum fa_status rc = nn_weights_load(path, &w, info);
    if (rc == FA_OK) {
        nn_weights_fini(&w);
    } else {
        assert_ptr_equal(w.t, &w);
        assert_int_equal(w.n, 12345);
    }
    return rc;
}

#define ONE(w) "[{\"paths\":[\"w.bin\"],\"weights\":[" w "]}]"

static void expect(const char *json, long binsize, enum fa_status want, const char *in_info)
{
    struct fa_errinfo info;
    enum fa_status rc = load_case(json, binsize, &info);
    if (rc != want)
        fail_msg("%s: got %s (%s), want %s", json, fa_status_name(rc), info.what,
                 fa_status_name(want));
    if (in_info != NULL && strstr(info.what, in_info) == NULL)
        fail_msg("%s: info '%s' lacks '%s'", json, info.what, in_info);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *ok = ONE("{\"name\":\"a\",\"shape\":[2,3],\"dtype\":\"float32\"}");
    expect(ok, 24, FA_OK, NULL);
    /* model.json form */
    expect("{\"modelTopology\":{},\"weightsManifest\":" ONE(
               "{\"name\":\"a\",\"shape\":[2,3],\"dtype\":\"float32\"}") "}",
           24, FA_OK, NULL);
    expect("{\"modelTopology\":{}}", 24, FA_ERR_MODEL_FORMAT, NULL);

    /* missing files */
    char path[512];
    snprintf(path, sizeof path, "%s/nope.json", tmpdir);
    struct nn_weights w = {0};
    struct fa_errinfo info;
    assert_int_equal(nn_weights_load(path, &w, &info), FA_ERR_MODEL_MISSING);
    assert_non_null(strstr(info.what, "nope.json"));
    expect(ok, -1, FA_ERR_MODEL_MISSING, "w.bin");

    /* bad JSON, wrong structure */
    expect("[{\"paths\":[\"w.bin\"],\"weights\":[", 24, FA_ERR_MODEL_FORMAT, "JSON");
    expect("", 24, FA_ERR_MODEL_FORMAT, NULL);
    expect("{}", 24, FA_ERR_MODEL_FORMAT, NULL);
    expect("[]", 0, FA_ERR_MODEL_FORMAT, NULL);
    expect("[{\"weights\":[]}]", 0, FA_ERR_MODEL_FORMAT, NULL);
    expect("[{\"paths\":[3],\"weights\":[{\"name\":\"a\",\"shape\":[],\"dtype\":\"float32\"}]}]", 4,
           FA_ERR_MODEL_FORMAT, NULL);

    /* sizes */
    expect(ok, 23, FA_ERR_MODEL_FORMAT, "24");
    expect(ok, 25, FA_ERR_MODEL_FORMAT, "24");
    expect(ok, 0, FA_ERR_MODEL_FORMAT, NULL);

    /* shapes */
    expect(ONE("{\"name\":\"neg\",\"shape\":[2,-3],\"dtype\":\"float32\"}"), 24,
           FA_ERR_MODEL_FORMAT, "neg");
    expect(ONE("{\"name\":\"zero\",\"shape\":[0],\"dtype\":\"float32\"}"), 0, FA_ERR_MODEL_FORMAT,
           "zero");
    expect(ONE("{\"name\":\"flt\",\"shape\":[2.0],\"dtype\":\"float32\"}"), 8, FA_ERR_MODEL_FORMAT,
           "flt");
    expect(ONE("{\"name\":\"big\",\"shape\":[4294967296],\"dtype\":\"float32\"}"), 8,
           FA_ERR_MODEL_FORMAT, "big");
    expect(ONE("{\"name\":\"ovf\",\"shape\":[2147483647,2147483647,2147483647,2147483647],"
               "\"dtype\":\"float32\"}"),
           8, FA_ERR_MODEL_FORMAT, "ovf");
    expect(ONE("{\"name\":\"ovf4\",\"shape\":[2147483647,2147483647,1073741824],"
               "\"dtype\":\"float32\"}"),
           8, FA_ERR_MODEL_FORMAT, "ovf4");
    expect(ONE("{\"name\":\"r7\",\"shape\":[1,1,1,1,1,1,1],\"dtype\":\"float32\"}"), 4,
           FA_ERR_MODEL_FORMAT, "r7");
    expect(ONE("{\"name\":\"nosh\",\"dtype\":\"float32\"}"), 4, FA_ERR_MODEL_FORMAT, "nosh");
    /* a total that overflows only when summed */
    expect(ONE("{\"name\":\"h1\",\"shape\":[2147483647,2147483647,1073741823],\"dtype\":"
               "\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":1,\"min\":0}},"
               "{\"name\":\"h2\",\"shape\":[2147483647,2147483647,1073741823],\"dtype\":"
               "\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":1,\"min\":0}},"
               "{\"name\":\"h3\",\"shape\":[2147483647,2147483647,1073741823],\"dtype\":"
               "\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":1,\"min\":0}}"),
           8, FA_ERR_MODEL_FORMAT, NULL);

    /* dtypes */
    expect(ONE("{\"name\":\"s\",\"shape\":[1],\"dtype\":\"string\"}"), 4, FA_ERR_MODEL_FORMAT,
           "string");
    expect(ONE("{\"name\":\"nd\",\"shape\":[1]}"), 4, FA_ERR_MODEL_FORMAT, "nd");
    expect(ONE("{\"name\":\"q\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":"
               "\"int4\",\"scale\":1,\"min\":0}}"),
           1, FA_ERR_MODEL_FORMAT, "int4");
    expect(ONE("{\"name\":\"qs\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":"
               "\"uint8\",\"min\":0}}"),
           1, FA_ERR_MODEL_FORMAT, "qs");
    expect(ONE("{\"name\":\"qf\",\"shape\":[1],\"dtype\":\"int32\",\"quantization\":{\"dtype\":"
               "\"float16\"}}"),
           2, FA_ERR_MODEL_FORMAT, "qf");
    expect(ONE("{\"shape\":[1],\"dtype\":\"float32\"}"), 4, FA_ERR_MODEL_FORMAT, "name");
    expect(ONE("{\"name\":\"d\",\"shape\":[1],\"dtype\":\"float32\"},"
               "{\"name\":\"d\",\"shape\":[1],\"dtype\":\"float32\"}"),
           8, FA_ERR_MODEL_FORMAT, "twice");

    /* paths that leave the folder */
    static const char *bad_paths[] = {"../w.bin",  "/etc/passwd", "a/../../w.bin", "..",
                                      "./w.bin",   "w.bin/",      "a//w.bin",      "",
                                      "w\\\\.bin", "w.bin\\u0020"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "[{\"paths\":[\"%s\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":"
                 "\"float32\"}]}]",
                 bad_paths[i]);
        expect(json, 4, FA_ERR_MODEL_FORMAT, NULL);
    }
    /* a subfolder is fine */
    snprintf(path, sizeof path, "%s/sub", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("sub/x.bin", "\0\0\x80\x3f", 4);
    expect("[{\"paths\":[\"sub/x.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":"
           "\"float32\"}]}]",
           -1, FA_OK, NULL);
}

/* Two groups, two shards each: the shards concatenate in order. */
static void test_multi_shard(void **state)
{
    (void)state;
    float a[3] = {1.5f, -2.0f, 3.25f}, b[2] = {7.0f, 8.0f};
    uint8_t raw[20];
    memcpy(raw, a, 12);
    memcpy(raw + 12, b, 8);
    write_file("s1", raw, 5);
    write_file("s2", raw + 5, 9);
    write_file("s3", raw + 14, 6);
    const char *json = "[{\"paths\":[\"s1\",\"s2\"],\"weights\":[{\"name\":\"a\",\"shape\":[3],"
                       "\"dtype\":\"float32\"}]},{\"paths\":[\"s3\"],\"weights\":[{\"name\":"
                       "\"b\",\"shape\":[1,2],\"dtype\":\"float32\"}]}]";
    write_file("multi.json", json, strlen(json));
    char path[512];
    snprintf(path, sizeof path, "%s/multi.json", tmpdir);
    struct nn_weights w = {0};
    struct fa_errinfo info;
    assert_int_equal(nn_weights_load(path, &w, &info), FA_OK);
    assert_int_equal(w.n, 2);
    assert_memory_equal(w.t[0].data, a, 12);
    assert_memory_equal(w.t[1].data, b, 8);
    assert_int_equal(w.t[1].rank, 2);
    nn_weights_fini(&w);
}

/* In-memory parse: uint16, int32 rounding as Math.round, float16 edge codes. */
static void test_parse_kinds(void **state)
{
    (void)state;
    const char *json =
        "[{\"paths\":[],\"weights\":["
        "{\"name\":\"u16\",\"shape\":[2],\"dtype\":\"float32\",\"quantization\":{\"dtype\":"
        "\"uint16\",\"scale\":0.001,\"min\":-1.5}},"
        "{\"name\":\"i8\",\"shape\":[4],\"dtype\":\"int32\",\"quantization\":{\"dtype\":"
        "\"uint8\",\"scale\":0.5,\"min\":-2}},"
        "{\"name\":\"h\",\"shape\":[4],\"dtype\":\"float32\",\"quantization\":{\"dtype\":"
        "\"float16\",\"original_dtype\":\"float32\"}},"
        "{\"name\":\"i\",\"shape\":[],\"dtype\":\"int32\"}]}]";
    uint8_t bin[4 + 4 + 8 + 4] = {0x34, 0x12, 0xff, 0xff, /* u16: 0x1234, 0xffff */
                                  1,    3,    5,    7,    /* i8: -1.5 -0.5 0.5 1.5 -> -1 0 1 2 */
                                  0x01, 0x00, 0xff, 0x83,
                                  0x00, 0x3c, 0xff, 0xfb,  /* 2^-24, -(1023*2^-24), 1, -65504 */
                                  0xfe, 0xff, 0xff, 0xff}; /* int32 -2 */
    struct nn_weights w = {0};
    struct fa_errinfo info;
    assert_int_equal(nn_weights_parse(json, strlen(json), bin, sizeof bin, &w, &info), FA_OK);
    assert_int_equal(w.n, 4);
    assert_true(w.t[0].data[0] == (float)(0x1234 * 0.001 + -1.5));
    assert_true(w.t[0].data[1] == (float)(65535 * 0.001 + -1.5));
    assert_true(w.t[1].data[0] == -1.0f && w.t[1].data[1] == 0.0f);
    assert_true(w.t[1].data[2] == 1.0f && w.t[1].data[3] == 2.0f);
    assert_true(w.t[2].data[0] == ldexpf(1.0f, -24));
    assert_true(w.t[2].data[1] == -ldexpf(1023.0f, -24));
    assert_true(w.t[2].data[2] == 1.0f && w.t[2].data[3] == -65504.0f);
    assert_int_equal(w.t[3].rank, 0);
    assert_int_equal(w.t[3].count, 1);
    assert_true(w.t[3].data[0] == -2.0f);
    nn_weights_fini(&w);
    nn_weights_fini(&w); /* twice is harmless */

    /* float16 inf is refused */
    const char *jh = "[{\"paths\":[],\"weights\":[{\"name\":\"inf\",\"shape\":[1],\"dtype\":"
                     "\"float32\",\"quantization\":{\"dtype\":\"float16\"}}]}]";
    uint8_t inf[2] = {0x00, 0x7c};
    assert_int_equal(nn_weights_parse(jh, strlen(jh), inf, 2, &w, &info), FA_ERR_MODEL_FORMAT);
    assert_non_null(strstr(info.what, "inf"));
    /* int32 beyond 2^24 is refused */
    const char *ji = "[{\"paths\":[],\"weights\":[{\"name\":\"bigint\",\"shape\":[1],"
                     "\"dtype\":\"int32\"}]}]";
    uint8_t bi[4] = {0x01, 0x00, 0x00, 0x01};
    assert_int_equal(nn_weights_parse(ji, strlen(ji), bi, 4, &w, &info), FA_ERR_MODEL_FORMAT);
    assert_non_null(strstr(info.what, "bigint"));
    /* non-finite quantization parameters (jansson refuses 1e999 as JSON) */
    const char *jq = "[{\"paths\":[],\"weights\":[{\"name\":\"q\",\"shape\":[1],\"dtype\":"
                     "\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":1e999,"
                     "\"min\":0}}]}]";
    assert_int_equal(nn_weights_parse(jq, strlen(jq), inf, 1, &w, &info), FA_ERR_MODEL_FORMAT);
}

/* Every allocation failure gives FA_ERR_NOMEM, never a crash or a leak
 * (the ASan build's LeakSanitizer checks the latter). */
static void test_alloc_failures(void **state)
{
    (void)state;
    char path[1024];
    model_path(path, sizeof path, "face-api/tiny_face_detector_model-weights_manifest.json");
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        struct nn_weights w = {0};
        struct fa_errinfo info;
        fa_alloc_fail_after(k);
        enum fa_status rc = nn_weights_load(path, &w, &info);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            assert_int_equal(w.n, 19);
            nn_weights_fini(&w);
            ok = 1;
        } else {
            assert_int_equal(rc, FA_ERR_NOMEM);
            assert_null(w.t);
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_models),
        cmocka_unit_test(test_appendix_rows),
        cmocka_unit_test_setup_teardown(test_malformed, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_multi_shard, setup_dir, teardown_dir),
        cmocka_unit_test(test_parse_kinds),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
