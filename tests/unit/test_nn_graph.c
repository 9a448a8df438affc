/* TF.js graph runtime (nn/graph*.c) on small graphs built here as model.json
 * text plus a weights blob: every supported op against a slow reference
 * written in this file (double accumulation), on both backends, with odd
 * shapes, strides and paddings; fusion, constant folding and buffer reuse
 * (visible in nn_graph_step_count / nn_graph_arena_bytes, and the values
 * still right); weights stored as float16 and uint8; the run contract; every
 * class of malformed model refused at load with the node named; loading
 * from files; and allocation-failure injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/arena.h"
#include "base/buf.h"
#include "nn/nn.h"
#include "testutil.h"

/* ------------------------------------------------------ model.json builder */

struct mb {
    struct fa_buf nodes, weights, bin;
};

static void ok(enum fa_status rc)
{
    assert_int_equal(rc, FA_OK);
}

static const char *b64(const char *s, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static void sep(struct fa_buf *b)
{
    if (b->n > 0)
        ok(fa_buf_puts(b, ","));
}

static void shape_json(struct fa_buf *b, const int *shape, int rank)
{
    ok(fa_buf_puts(b, "["));
    for (int i = 0; i < rank; i++)
        ok(fa_buf_printf(b, i ? ",%d" : "%d", shape[i]));
    ok(fa_buf_puts(b, "]"));
}

/* A weight of the manifest, stored as given (`quant`: JSON object or NULL). */
static void mb_weight(struct mb *m, const char *name, const char *dtype, const int *shape, int rank,
                      const void *bytes, size_t n, const char *quant)
{
    sep(&m->weights);
    ok(fa_buf_printf(&m->weights, "{\"name\":\"%s\",\"dtype\":\"%s\",\"shape\":", name, dtype));
    shape_json(&m->weights, shape, rank);
    if (quant != NULL)
        ok(fa_buf_printf(&m->weights, ",\"quantization\":%s", quant));
    ok(fa_buf_puts(&m->weights, "}"));
    ok(fa_buf_append(&m->bin, bytes, n));
}

static void mb_node(struct mb *m, const char *name, const char *op, const char *attrs, ...)
{
    va_list ap;
    sep(&m->nodes);
    ok(fa_buf_printf(&m->nodes, "{\"name\":\"%s\",\"op\":\"%s\",\"input\":[", name, op));
    va_start(ap, attrs);
    const char *in;
    int k = 0;
    while ((in = va_arg(ap, const char *)) != NULL)
        ok(fa_buf_printf(&m->nodes, k++ ? ",\"%s\"" : "\"%s\"", in));
    va_end(ap);
    ok(fa_buf_printf(&m->nodes, "],\"attr\":{%s}}", attrs != NULL ? attrs : ""));
}

static int count(const int *shape, int rank)
{
    int n = 1;
    for (int i = 0; i < rank; i++)
        n *= shape[i];
    return n;
}

static void mb_const(struct mb *m, const char *name, const int *shape, int rank, const float *data)
{
    mb_weight(m, name, "float32", shape, rank, data, (size_t)count(shape, rank) * 4, NULL);
    mb_node(m, name, "Const", "\"dtype\":{\"type\":\"DT_FLOAT\"}", NULL);
}

static void mb_const_i(struct mb *m, const char *name, const int *shape, int rank,
                       const int32_t *data)
{
    mb_weight(m, name, "int32", shape, rank, data, (size_t)count(shape, rank) * 4, NULL);
    mb_node(m, name, "Const", "\"dtype\":{\"type\":\"DT_INT32\"}", NULL);
}

static void mb_input(struct mb *m, const char *name, int h, int w, int c)
{
    char a[256];
    snprintf(a, sizeof a,
             "\"dtype\":{\"type\":\"DT_FLOAT\"},\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},"
             "{\"size\":\"%d\"},{\"size\":\"%d\"},{\"size\":\"%d\"}]}}",
             h, w, c);
    mb_node(m, name, "Placeholder", a, NULL);
}

/* The model.json text; `outputs`: node names separated by spaces (the
 * signature), or NULL for none. Caller frees. */
static char *mb_json(struct mb *m, const char *outputs)
{
    struct fa_buf j = {0};
    ok(fa_buf_printf(&j, "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[%s]}",
                     m->nodes.n ? (const char *)m->nodes.p : ""));
    if (outputs != NULL) {
        ok(fa_buf_puts(&j, ",\"signature\":{\"outputs\":{"));
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", outputs);
        int k = 0;
        for (char *t = strtok(tmp, " "); t != NULL; t = strtok(NULL, " "))
            ok(fa_buf_printf(&j, "%s\"key_%s\":{\"name\":\"%s:0\"}", k++ ? "," : "", t, t));
        ok(fa_buf_puts(&j, "}}"));
    }
    ok(fa_buf_printf(&j, ",\"weightsManifest\":[{\"paths\":[\"m.bin\"],\"weights\":[%s]}]}",
                     m->weights.n ? (const char *)m->weights.p : ""));
    return (char *)j.p;
}

static void mb_fini(struct mb *m)
{
    fa_buf_fini(&m->nodes);
    fa_buf_fini(&m->weights);
    fa_buf_fini(&m->bin);
}

/* attribute snippets */
static char *a_strides(char *b, int s)
{
    sprintf(b, "\"strides\":{\"list\":{\"i\":[\"1\",\"%d\",\"%d\",\"1\"]}}", s, s);
    return b;
}

static char *a_s(char *b, const char *key, const char *val)
{
    char e[64];
    sprintf(b, "\"%s\":{\"s\":\"%s\"}", key, b64(val, e));
    return b;
}

/* conv attributes: strides, padding, optional fused ops ("BiasAdd,Relu") */
static char *a_conv(char *b, int s, const char *pad, const char *fused, int num_args)
{
    char t1[128], t2[128];
    int n = sprintf(b,
                    "%s,%s,\"data_format\":{\"s\":\"TkhXQw==\"},"
                    "\"dilations\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}}",
                    a_strides(t1, s), a_s(t2, "padding", pad));
    if (fused != NULL) {
        n += sprintf(b + n, ",\"num_args\":{\"i\":\"%d\"},\"fused_ops\":{\"list\":{\"s\":[",
                     num_args);
        char tmp[64], e[64];
        snprintf(tmp, sizeof tmp, "%s", fused);
        int k = 0;
        for (char *t = strtok(tmp, ","); t != NULL; t = strtok(NULL, ","))
            n += sprintf(b + n, "%s\"%s\"", k++ ? "," : "", b64(t, e));
        n += sprintf(b + n, "]}},\"epsilon\":{\"f\":0}");
    }
    return b;
}

/* ------------------------------------------------------------- running */

static uint32_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
}

static const enum nn_backend_kind KINDS[] = {NN_BACKEND_REF, NN_BACKEND_FAST};

struct result {
    enum fa_status rc;
    struct fa_errinfo info;
    size_t n_out, steps, arena;
    float *out[8];
    size_t len[8];
};

static void result_fini(struct result *r)
{
    for (size_t i = 0; i < 8; i++)
        free(r->out[i]);
    memset(r, 0, sizeof *r);
}

/* Load `json` + bin on backend `kind` and run it on `input` (if loaded). */
static struct result run_json(const char *json, const struct fa_buf *bin, enum nn_backend_kind kind,
                              const struct nn_graph_opts *opts, const float *input)
{
    struct result r = {0};
    struct nn_backend *be = NULL;
    struct nn_ctx *ctx = NULL;
    struct nn_graph *g = NULL;
    ok(nn_backend_new(kind, &be));
    ok(nn_ctx_new(be, &ctx));
    r.rc = nn_graph_parse(json, strlen(json), bin->p, bin->n, be, opts, &g, &r.info);
    if (r.rc == FA_OK) {
        r.n_out = nn_graph_output_count(g);
        r.steps = nn_graph_step_count(g);
        r.arena = nn_graph_arena_bytes(g);
        assert_true(r.n_out <= 8);
        struct fa_arena arena;
        ok(fa_arena_init(&arena, r.arena + 64));
        float *o[8];
        ok(nn_graph_run(g, ctx, &arena, input, o));
        for (size_t i = 0; i < r.n_out; i++) {
            r.len[i] = nn_graph_output_len(g, i);
            /* outputs point into the arena block */
            assert_true((unsigned char *)o[i] >= arena.base &&
                        (unsigned char *)(o[i] + r.len[i]) <= arena.base + r.arena);
            r.out[i] = malloc(r.len[i] * sizeof(float));
            assert_non_null(r.out[i]);
            memcpy(r.out[i], o[i], r.len[i] * sizeof(float));
        }
        fa_arena_fini(&arena);
        nn_graph_free(g);
    }
    nn_ctx_free(ctx);
    nn_backend_free(be);
    return r;
}

/* max |got - want| <= tol * max(1, max |want|) */
static void expect_close(const float *got, const float *want, size_t n, double tol,
                         const char *what)
{
    double md = 0, mw = 1;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md)) {
            md = d;
            at = i;
        }
        mw = fmax(mw, fabs(want[i]));
    }
    if (!(md <= tol * mw))
        fail_msg("%s: max error %.3g at %zu (got %.9g, want %.9g), tolerance %.3g", what, md, at,
                 got[at], want[at], tol * mw);
}

/* convolutions: float32 accumulation in another order than the reference */
#define TOL_CONV 2e-6
/* element-wise and data movement: exact */
#define TOL_EXACT 0.0

/* --------------------------------------------------------- slow reference */

enum act { A_NONE, A_RELU, A_RELU6, A_PRELU, A_LEAKY, A_SIGMOID };

static double act1(double x, enum act a, double alpha, double slope)
{
    switch (a) {
    case A_NONE:
        return x;
    case A_RELU:
        return x > 0 ? x : 0;
    case A_RELU6:
        return x > 0 ? (x < 6 ? x : 6) : 0;
    case A_PRELU:
        return x > 0 ? x : slope * x;
    case A_LEAKY:
        return x > 0 ? x : alpha * x;
    case A_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    }
    return x;
}

struct convp {
    int h, w, c, kh, kw, cout, s;
    bool dw;
    int pt, pb, pl, pr; /* padding */
    int oh, ow;
};

/* TF SAME/VALID geometry */
static void geometry(struct convp *p, const char *pad)
{
    if (strcmp(pad, "VALID") == 0) {
        p->pt = p->pb = p->pl = p->pr = 0;
        p->oh = (p->h - p->kh) / p->s + 1;
        p->ow = (p->w - p->kw) / p->s + 1;
    } else if (strcmp(pad, "SAME") == 0) {
        p->oh = (p->h + p->s - 1) / p->s;
        p->ow = (p->w + p->s - 1) / p->s;
        int th = (p->oh - 1) * p->s + p->kh - p->h, tw = (p->ow - 1) * p->s + p->kw - p->w;
        th = th < 0 ? 0 : th;
        tw = tw < 0 ? 0 : tw;
        p->pt = th / 2;
        p->pb = th - p->pt;
        p->pl = tw / 2;
        p->pr = tw - p->pl;
    } else { /* explicit, already set */
        p->oh = (p->h + p->pt + p->pb - p->kh) / p->s + 1;
        p->ow = (p->w + p->pl + p->pr - p->kw) / p->s + 1;
    }
}

static void slow_conv(const struct convp *p, const float *in, const float *f, const float *bias,
                      enum act a, double alpha, const float *slopes, float *out)
{
    for (int oy = 0; oy < p->oh; oy++)
        for (int ox = 0; ox < p->ow; ox++)
            for (int o = 0; o < p->cout; o++) {
                double acc = 0;
                for (int i = 0; i < p->kh; i++)
                    for (int j = 0; j < p->kw; j++) {
                        int y = oy * p->s + i - p->pt, x = ox * p->s + j - p->pl;
                        if (y < 0 || y >= p->h || x < 0 || x >= p->w)
                            continue;
                        const float *px = in + ((size_t)y * p->w + x) * p->c;
                        if (p->dw)
                            acc += (double)px[o] * f[(i * p->kw + j) * p->c + o];
                        else
                            for (int c = 0; c < p->c; c++)
                                acc +=
                                    (double)px[c] * f[((i * p->kw + j) * p->c + c) * p->cout + o];
                    }
                if (bias != NULL)
                    acc = (float)acc + bias[o];
                out[((size_t)oy * p->ow + ox) * p->cout + o] =
                    (float)act1((float)acc, a, alpha, slopes ? slopes[o] : 0);
            }
}

/* ------------------------------------------------------------ op tests */

static const char *ACT_NAMES[] = {NULL, "Relu", "Relu6", "Prelu", "LeakyRelu", "Sigmoid"};

/* One convolution node in every form, compared with slow_conv. */
static void conv_case(bool dw, const char *op, int h, int w, int c, int k, int cout, int s,
                      const char *pad, const int *expl, enum act a)
{
    struct convp p = {
        .h = h, .w = w, .c = c, .kh = k, .kw = k, .cout = dw ? c : cout, .s = s, .dw = dw};
    if (expl != NULL) {
        p.pt = expl[0];
        p.pb = expl[1];
        p.pl = expl[2];
        p.pr = expl[3];
    }
    geometry(&p, pad);
    const bool fused = op[0] == '_' || op[0] == 'F';
    const size_t in_n = (size_t)h * w * c, f_n = (size_t)k * k * c * (dw ? 1 : cout);
    float *in = malloc(in_n * 4), *f = malloc(f_n * 4), *bias = malloc(p.cout * 4);
    float *slopes = malloc(p.cout * 4), *want = malloc((size_t)p.oh * p.ow * p.cout * 4);
    fill(in, in_n);
    fill(f, f_n);
    fill(bias, (size_t)p.cout);
    fill(slopes, (size_t)p.cout);
    const double alpha = 0.15;

    struct mb m = {0};
    char attrs[1024], fops[64] = "BiasAdd";
    mb_input(&m, "x", h, w, c);
    int fs[4] = {k, k, c, dw ? 1 : cout};
    mb_const(&m, "W", fs, 4, f);
    int bs[1] = {p.cout}, ss[3] = {1, 1, p.cout};
    mb_const(&m, "B", bs, 1, bias);
    mb_const(&m, "S", ss, 3, slopes);
    if (a != A_NONE) {
        strcat(fops, ",");
        strcat(fops, ACT_NAMES[a]);
    }
    a_conv(attrs, s, pad, fused ? fops : NULL, a == A_PRELU ? 2 : 1);
    if (a == A_LEAKY)
        strcat(attrs, ",\"leakyrelu_alpha\":{\"f\":0.15}");
    if (expl != NULL) {
        char e[256];
        sprintf(e,
                ",\"explicit_paddings\":{\"list\":{\"i\":[\"0\",\"0\",\"%d\",\"%d\",\"%d\",\"%d\","
                "\"0\",\"0\"]}}",
                expl[0], expl[1], expl[2], expl[3]);
        strcat(attrs, e);
    }
    if (!fused)
        mb_node(&m, "conv", op, attrs, "x", "W", NULL);
    else if (a == A_PRELU)
        mb_node(&m, "conv", op, attrs, "x", "W", "B", "S", NULL);
    else
        mb_node(&m, "conv", op, attrs, "x", "W", "B", NULL);
    char *json = mb_json(&m, "conv");
    slow_conv(&p, in, f, fused ? bias : NULL, fused ? a : A_NONE, alpha, slopes, want);

    char what[160];
    for (size_t b = 0; b < 2; b++) {
        struct result r = run_json(json, &m.bin, KINDS[b], NULL, in);
        if (r.rc != FA_OK)
            fail_msg("%s: %s", fa_status_name(r.rc), r.info.what);
        assert_int_equal(r.len[0], (size_t)p.oh * p.ow * p.cout);
        assert_int_equal(r.steps, 1);
        snprintf(what, sizeof what, "%s %dx%dx%d k%d s%d %s act %d backend %zu", op, h, w, c, k, s,
                 pad, (int)a, b);
        expect_close(r.out[0], want, r.len[0], TOL_CONV, what);
        result_fini(&r);
    }
    free(json);
    mb_fini(&m);
    free(in);
    free(f);
    free(bias);
    free(slopes);
    free(want);
}

static void test_conv(void **state)
{
    (void)state;
    static const int expl[4] = {1, 0, 2, 1};
    for (int s = 1; s <= 2; s++) {
        conv_case(false, "Conv2D", 7, 9, 5, 3, 6, s, "SAME", NULL, A_NONE);
        conv_case(false, "Conv2D", 7, 9, 5, 3, 6, s, "VALID", NULL, A_NONE);
        conv_case(false, "Conv2D", 8, 8, 3, 5, 4, s, "SAME", NULL, A_NONE);
        conv_case(false, "Conv2D", 7, 6, 4, 3, 5, s, "EXPLICIT", expl, A_NONE);
        conv_case(true, "DepthwiseConv2dNative", 7, 9, 5, 3, 0, s, "SAME", NULL, A_NONE);
        conv_case(true, "DepthwiseConv2dNative", 8, 6, 4, 3, 0, s, "VALID", NULL, A_NONE);
        conv_case(true, "DepthwiseConv2dNative", 7, 6, 4, 3, 0, s, "EXPLICIT", expl, A_NONE);
    }
    /* 1x1, 2x2/2 VALID, 3x3/3 VALID (the FaceMesh and Iris heads) */
    conv_case(false, "_FusedConv2D", 6, 6, 8, 1, 7, 1, "VALID", NULL, A_NONE);
    conv_case(false, "_FusedConv2D", 4, 4, 8, 2, 5, 2, "VALID", NULL, A_PRELU);
    conv_case(false, "_FusedConv2D", 3, 3, 4, 3, 9, 3, "VALID", NULL, A_NONE);
    for (int a = A_NONE; a <= A_SIGMOID; a++) {
        conv_case(false, "_FusedConv2D", 9, 7, 3, 3, 5, 2, "SAME", NULL, (enum act)a);
        conv_case(true, "FusedDepthwiseConv2dNative", 9, 7, 6, 3, 0, 1, "SAME", NULL, (enum act)a);
    }
}

/* x -> (elementwise op) -> out, with an optional second input. */
/* Shapes: 7 channels (scalar loops), 8 channels (four lanes), 6 values
 * (one block of four and a tail). */
static void elementwise_case(int h, int w, int c)
{
    const size_t n = (size_t)h * w * c;
    float x[128], y[128], v[8], want[128], scalar = 0.25f;
    assert_true(n <= 128 && c <= 8);
    fill(x, n);
    fill(y, n);
    fill(v, (size_t)c);
    x[0] = 7.5f; /* above relu6's cap */
    x[1] = -7.5f;
    x[n - 1] = 6.5f;
    struct {
        const char *op;
        int second; /* 0 none, 1 tensor y, 2 const vector v, 3 const scalar, 4 alpha attr */
    } cases[] = {
        {"Relu", 0},  {"Relu6", 0}, {"Sigmoid", 0}, {"LeakyRelu", 4}, {"Prelu", 2},
        {"AddV2", 1}, {"Add", 2},   {"AddV2", 3},   {"BiasAdd", 2},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const char *op = cases[t].op;
        struct mb m = {0};
        int vs[1] = {c}, ys[4] = {1, h, w, c};
        mb_input(&m, "x", h, w, c);
        /* y: a second activation, from x by an op the test knows exactly */
        const char *attrs = cases[t].second == 4 ? "\"alpha\":{\"f\":0.3}" : "";
        switch (cases[t].second) {
        case 0:
        case 4:
            mb_node(&m, "op", op, attrs, "x", NULL);
            break;
        case 1:
            mb_const(&m, "Y", ys, 4, y);
            /* an Identity of a constant is folded: a same-shaped constant */
            mb_node(&m, "y", "Identity", "", "Y", NULL);
            mb_node(&m, "op", op, "", "x", "y", NULL);
            break;
        case 2:
            mb_const(&m, "V", vs, 1, v);
            mb_node(&m, "op", op, "", "x", "V", NULL);
            break;
        case 3:
            mb_const(&m, "V", vs, 0, &scalar);
            mb_node(&m, "op", op, "", "V", "x", NULL);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            float a = x[i];
            if (strcmp(op, "Relu") == 0)
                want[i] = a > 0 ? a : 0;
            else if (strcmp(op, "Relu6") == 0)
                want[i] = a > 0 ? (a < 6 ? a : 6) : 0;
            else if (strcmp(op, "Sigmoid") == 0)
                want[i] = (float)(1.0 / (1.0 + exp(-(double)a)));
            else if (strcmp(op, "LeakyRelu") == 0)
                want[i] = a > 0 ? a : 0.3f * a;
            else if (strcmp(op, "Prelu") == 0)
                want[i] = a > 0 ? a : v[i % c] * a;
            else if (cases[t].second == 1)
                want[i] = a + y[i];
            else if (cases[t].second == 2)
                want[i] = a + v[i % c];
            else
                want[i] = scalar + a;
        }
        char *json = mb_json(&m, "op");
        for (size_t b = 0; b < 2; b++) {
            struct result r = run_json(json, &m.bin, KINDS[b], NULL, x);
            if (r.rc != FA_OK)
                fail_msg("%s: %s %s", op, fa_status_name(r.rc), r.info.what);
            assert_int_equal(r.len[0], n);
            expect_close(r.out[0], want, n, strcmp(op, "Sigmoid") == 0 ? 1e-7 : TOL_EXACT, op);
            result_fini(&r);
        }
        free(json);
        mb_fini(&m);
    }
}

static void test_elementwise(void **state)
{
    (void)state;
    elementwise_case(5, 3, 7);
    elementwise_case(3, 3, 8);
    elementwise_case(1, 3, 2);
}

static void test_maxpool(void **state)
{
    (void)state;
    struct {
        int h, w, k, s;
        const char *pad;
    } cases[] = {{8, 6, 2, 2, "VALID"}, {8, 6, 2, 2, "SAME"}, {7, 5, 2, 2, "SAME"},
                 {7, 9, 3, 2, "VALID"}, {7, 9, 3, 2, "SAME"}, {5, 5, 3, 1, "SAME"}};
    const int c = 3;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct convp p = {.h = cases[t].h,
                          .w = cases[t].w,
                          .c = c,
                          .kh = cases[t].k,
                          .kw = cases[t].k,
                          .s = cases[t].s};
        geometry(&p, cases[t].pad);
        size_t n = (size_t)p.h * p.w * c, on = (size_t)p.oh * p.ow * c;
        float *x = malloc(n * 4), *want = malloc(on * 4);
        fill(x, n);
        for (int oy = 0; oy < p.oh; oy++)
            for (int ox = 0; ox < p.ow; ox++)
                for (int ch = 0; ch < c; ch++) {
                    float best = -INFINITY;
                    for (int i = 0; i < p.kh; i++)
                        for (int j = 0; j < p.kw; j++) {
                            int y = oy * p.s + i - p.pt, xx = ox * p.s + j - p.pl;
                            if (y >= 0 && y < p.h && xx >= 0 && xx < p.w)
                                best = fmaxf(best, x[((size_t)y * p.w + xx) * c + ch]);
                        }
                    want[((size_t)oy * p.ow + ox) * c + ch] = best;
                }
        struct mb m = {0};
        char attrs[512], t1[128], t2[128];
        mb_input(&m, "x", p.h, p.w, c);
        sprintf(attrs, "\"ksize\":{\"list\":{\"i\":[\"1\",\"%d\",\"%d\",\"1\"]}},%s,%s", p.kh, p.kw,
                a_strides(t1, p.s), a_s(t2, "padding", cases[t].pad));
        mb_node(&m, "pool", "MaxPool", attrs, "x", NULL);
        char *json = mb_json(&m, "pool");
        for (size_t b = 0; b < 2; b++) {
            struct result r = run_json(json, &m.bin, KINDS[b], NULL, x);
            if (r.rc != FA_OK)
                fail_msg("%s", r.info.what);
            assert_int_equal(r.len[0], on);
            expect_close(r.out[0], want, on, TOL_EXACT, "MaxPool");
            result_fini(&r);
        }
        free(json);
        mb_fini(&m);
        free(x);
        free(want);
    }
}

/* Pad / PadV2 of any dimension, Reshape, ConcatV2 on any axis, Identity. */
static void test_data_movement(void **state)
{
    (void)state;
    const int h = 3, w = 4, c = 5;
    const size_t n = (size_t)h * w * c;
    float x[60];
    fill(x, n);

    /* Pad: channels (the residual shortcut), then PadV2 of rows/cols */
    for (int v2 = 0; v2 <= 1; v2++) {
        struct mb m = {0};
        int ps[2] = {4, 2}, vs[1] = {1};
        int32_t pads[8] = {0, 0, 1, 2, v2 ? 0 : 2, v2 ? 3 : 0, 0, v2 ? 0 : 3};
        float value = v2 ? -1.5f : 0.0f;
        mb_input(&m, "x", h, w, c);
        mb_const_i(&m, "P", ps, 2, pads);
        if (v2) {
            mb_const(&m, "V", vs, 0, &value);
            mb_node(&m, "pad", "PadV2", "", "x", "P", "V", NULL);
        } else {
            mb_node(&m, "pad", "Pad", "", "x", "P", NULL);
        }
        const int oh = h + pads[2] + pads[3], ow = w + pads[4] + pads[5], oc = c + pads[7];
        float want[16 * 16 * 16];
        for (int y = 0; y < oh; y++)
            for (int xx = 0; xx < ow; xx++)
                for (int ch = 0; ch < oc; ch++) {
                    int iy = y - pads[2], ix = xx - pads[4];
                    bool in = iy >= 0 && iy < h && ix >= 0 && ix < w && ch < c;
                    want[((size_t)y * ow + xx) * oc + ch] =
                        in ? x[((size_t)iy * w + ix) * c + ch] : value;
                }
        char *json = mb_json(&m, "pad");
        for (size_t b = 0; b < 2; b++) {
            struct result r = run_json(json, &m.bin, KINDS[b], NULL, x);
            if (r.rc != FA_OK)
                fail_msg("%s", r.info.what);
            assert_int_equal(r.len[0], (size_t)oh * ow * oc);
            expect_close(r.out[0], want, r.len[0], TOL_EXACT, v2 ? "PadV2" : "Pad");
            result_fini(&r);
        }
        free(json);
        mb_fini(&m);
    }

    /* Reshape [-1, 12, 5] and [-1, 60]; Concat of x with itself/relu(x) on
     * axis 3 (two inputs: the kernel-layer path), axis 1 and -2 with three
     * inputs (the general path); Identity of the input (a copy). */
    struct mb m = {0};
    int s3[1] = {3}, s2[1] = {2}, ax[1] = {1};
    int32_t shp3[3] = {-1, 12, 5}, shp2[2] = {-1, 60}, axis3 = 3, axis1 = 1, axism2 = -2;
    mb_input(&m, "x", h, w, c);
    mb_const_i(&m, "S3", s3, 1, shp3);
    mb_const_i(&m, "S2", s2, 1, shp2);
    mb_const_i(&m, "A3", ax, 0, &axis3);
    mb_const_i(&m, "A1", ax, 0, &axis1);
    mb_const_i(&m, "Am2", ax, 0, &axism2);
    mb_node(&m, "r", "Relu", "", "x", NULL);
    mb_node(&m, "rs3", "Reshape", "", "r", "S3", NULL);
    mb_node(&m, "rs2", "Reshape", "", "x", "S2", NULL);
    mb_node(&m, "cat3", "ConcatV2", "\"N\":{\"i\":\"2\"}", "x", "r", "A3", NULL);
    mb_node(&m, "cat1", "ConcatV2", "\"N\":{\"i\":\"3\"}", "r", "x", "r", "A1", NULL);
    mb_node(&m, "catm2", "ConcatV2", "", "rs3", "rs3", "A1", NULL);
    mb_node(&m, "catm2b", "ConcatV2", "", "x", "r", "x", "Am2", NULL);
    mb_node(&m, "id", "Identity", "", "x", NULL);
    char *json = mb_json(&m, "rs3 rs2 cat3 cat1 catm2 catm2b id");
    float r[60], cat3[120], cat1[180], catm2[120], catm2b[180];
    for (size_t i = 0; i < n; i++)
        r[i] = x[i] > 0 ? x[i] : 0;
    for (size_t p = 0; p < (size_t)h * w; p++) /* [h, w, 2c] */
        for (int ch = 0; ch < 2 * c; ch++)
            cat3[p * 2 * c + ch] = ch < c ? x[p * c + ch] : r[p * c + ch - c];
    for (int k = 0; k < 3; k++) /* [3h, w, c]: r, x, r */
        memcpy(cat1 + k * n, k == 1 ? x : r, n * 4);
    for (int k = 0; k < 2; k++) /* [1, 24, 5] from [1, 12, 5] twice on axis 1 */
        memcpy(catm2 + k * n, r, n * 4);
    for (int y = 0; y < h; y++) /* axis -2 = w: [h, 3w, c] */
        for (int k = 0; k < 3; k++)
            memcpy(catm2b + ((size_t)y * 3 * w + (size_t)k * w) * c,
                   (k == 1 ? r : x) + (size_t)y * w * c, (size_t)w * c * 4);
    for (size_t b = 0; b < 2; b++) {
        struct result res = run_json(json, &m.bin, KINDS[b], NULL, x);
        if (res.rc != FA_OK)
            fail_msg("%s", res.info.what);
        assert_int_equal(res.n_out, 7);
        expect_close(res.out[0], r, n, TOL_EXACT, "Reshape");
        expect_close(res.out[1], x, n, TOL_EXACT, "Reshape of the input");
        expect_close(res.out[2], cat3, 2 * n, TOL_EXACT, "ConcatV2 axis 3");
        expect_close(res.out[3], cat1, 3 * n, TOL_EXACT, "ConcatV2 axis 1");
        expect_close(res.out[4], catm2, 2 * n, TOL_EXACT, "ConcatV2 rank 3");
        expect_close(res.out[5], catm2b, 3 * n, TOL_EXACT, "ConcatV2 axis -2");
        expect_close(res.out[6], x, n, TOL_EXACT, "Identity");
        result_fini(&res);
    }
    /* output shapes */
    struct nn_backend *be;
    struct nn_graph *g;
    ok(nn_backend_new(NN_BACKEND_REF, &be));
    ok(nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, NULL));
    int32_t sh[NN_GRAPH_MAX_RANK];
    assert_int_equal(nn_graph_output_shape(g, 0, sh), 3);
    assert_true(sh[0] == 1 && sh[1] == 12 && sh[2] == 5);
    assert_int_equal(nn_graph_output_shape(g, 1, sh), 2);
    assert_true(sh[0] == 1 && sh[1] == 60);
    assert_int_equal(nn_graph_output_shape(g, 5, sh), 4);
    assert_true(sh[0] == 1 && sh[1] == 3 && sh[2] == 12 && sh[3] == 5);
    assert_string_equal(nn_graph_output_name(g, 2), "cat3");
    assert_string_equal(nn_graph_output_key(g, 2), "key_cat3");
    assert_int_equal(nn_graph_output_find(g, "cat1"), 3);
    assert_int_equal(nn_graph_output_find(g, "key_id"), 6);
    assert_int_equal(nn_graph_output_find(g, "nope"), -1);
    int32_t hwc[3];
    nn_graph_input_shape(g, hwc);
    assert_true(hwc[0] == h && hwc[1] == w && hwc[2] == c);
    nn_graph_free(g);
    nn_backend_free(be);
    free(json);
    mb_fini(&m);
}

/* A residual block as in the three models: dw 3x3 -> 1x1 conv -> BiasAdd
 * -> Add shortcut -> Prelu, plus Conv2D -> BiasAdd -> Relu. */
static void build_block(struct mb *m, const float *dwf, const float *pw, const float *bias,
                        const float *slopes, int c)
{
    char attrs[1024];
    int dws[4] = {3, 3, c, 1}, pws[4] = {1, 1, c, c}, bs[1] = {c};
    mb_input(m, "x", 6, 5, c);
    mb_const(m, "DW", dws, 4, dwf);
    mb_const(m, "PW", pws, 4, pw);
    mb_const(m, "B", bs, 1, bias);
    mb_const(m, "S", bs, 1, slopes);
    mb_node(m, "dw", "DepthwiseConv2dNative", a_conv(attrs, 1, "SAME", NULL, 0), "x", "DW", NULL);
    mb_node(m, "pw", "Conv2D", a_conv(attrs, 1, "VALID", NULL, 0), "dw", "PW", NULL);
    mb_node(m, "bias", "BiasAdd", "", "pw", "B", NULL);
    mb_node(m, "add", "AddV2", "", "x", "bias", NULL);
    mb_node(m, "act", "Prelu", "", "add", "S", NULL);
    mb_node(m, "c2", "Conv2D", a_conv(attrs, 2, "SAME", NULL, 0), "act", "PW", NULL);
    mb_node(m, "b2", "BiasAdd", "", "c2", "B", NULL);
    mb_node(m, "out", "Relu", "", "b2", NULL);
}

static void test_fusion(void **state)
{
    (void)state;
    const int c = 4;
    float x[6 * 5 * 4], dwf[36], pw[16], bias[4], slopes[4];
    fill(x, sizeof x / 4);
    fill(dwf, 36);
    fill(pw, 16);
    fill(bias, 4);
    fill(slopes, 4);
    /* slow reference of every stage */
    struct convp pd = {.h = 6, .w = 5, .c = c, .kh = 3, .kw = 3, .cout = c, .s = 1, .dw = true};
    geometry(&pd, "SAME");
    struct convp pp = {.h = 6, .w = 5, .c = c, .kh = 1, .kw = 1, .cout = c, .s = 1};
    geometry(&pp, "VALID");
    struct convp p2 = {.h = 6, .w = 5, .c = c, .kh = 1, .kw = 1, .cout = c, .s = 2};
    geometry(&p2, "SAME");
    float dw[120], bsd[120], act[120], out[3 * 3 * 4];
    slow_conv(&pd, x, dwf, NULL, A_NONE, 0, NULL, dw);
    slow_conv(&pp, dw, pw, bias, A_NONE, 0, NULL, bsd);
    for (int i = 0; i < 120; i++) {
        float a = x[i] + bsd[i];
        act[i] = a > 0 ? a : slopes[i % c] * a;
    }
    slow_conv(&p2, act, pw, bias, A_RELU, 0, NULL, out);

    struct mb m = {0};
    build_block(&m, dwf, pw, bias, slopes, c);
    char *json = mb_json(&m, "out");
    const char *inner[] = {"bias", "add", "out"};
    struct nn_graph_opts keep = {.outputs = inner, .n_outputs = 3};
    for (size_t b = 0; b < 2; b++) {
        /* fused: dw, pw+bias, add+prelu, c2+bias+relu; on the fast backend
         * of an AVX-512 CPU the first three are one residual block */
        struct result r = run_json(json, &m.bin, KINDS[b], NULL, x);
        ok(r.rc);
        const bool blocks = KINDS[b] == NN_BACKEND_FAST && fa_cpu_avx512();
        assert_int_equal(r.steps, blocks ? 2 : 4);
        expect_close(r.out[0], out, 36, TOL_CONV, "fused block");
        result_fini(&r);
        /* FACEAUTH_NN_FUSE=0 keeps the steps apart */
        setenv("FACEAUTH_NN_FUSE", "0", 1);
        r = run_json(json, &m.bin, KINDS[b], NULL, x);
        unsetenv("FACEAUTH_NN_FUSE");
        ok(r.rc);
        assert_int_equal(r.steps, 4);
        expect_close(r.out[0], out, 36, TOL_CONV, "unfused block");
        result_fini(&r);
        /* inner nodes asked for: they are kept, and right */
        r = run_json(json, &m.bin, KINDS[b], &keep, x);
        ok(r.rc);
        assert_int_equal(r.steps, 5); /* the add's Prelu stays separate */
        expect_close(r.out[0], bsd, 120, TOL_CONV, "bias kept");
        float add[120];
        for (int i = 0; i < 120; i++)
            add[i] = x[i] + bsd[i];
        expect_close(r.out[1], add, 120, TOL_CONV, "add kept");
        expect_close(r.out[2], out, 36, TOL_CONV, "output");
        result_fini(&r);
    }
    free(json);
    mb_fini(&m);
}

/* Constant sub-graphs run at load: a filter that is Relu(Reshape(Const))
 * and a bias that is AddV2(Const, Const) cost no kernel call. */
static void test_folding(void **state)
{
    (void)state;
    const int c = 3, co = 2;
    float x[4 * 4 * 3], fraw[3 * 3 * 3 * 2], b1[2], b2[2], f[54], bias[2], want[32];
    fill(x, 48);
    fill(fraw, 54);
    fill(b1, 2);
    fill(b2, 2);
    for (int i = 0; i < 54; i++)
        f[i] = fraw[i] > 0 ? fraw[i] : 0;
    for (int i = 0; i < 2; i++)
        bias[i] = b1[i] + b2[i];
    struct convp p = {.h = 4, .w = 4, .c = c, .kh = 3, .kw = 3, .cout = co, .s = 1};
    geometry(&p, "SAME");
    slow_conv(&p, x, f, bias, A_NONE, 0, NULL, want);

    struct mb m = {0};
    char attrs[1024];
    int fl[1] = {54}, s4[1] = {4}, bs[1] = {2};
    int32_t shape[4] = {3, 3, 3, 2};
    mb_input(&m, "x", 4, 4, c);
    mb_const(&m, "Fflat", fl, 1, fraw);
    mb_const_i(&m, "Fshape", s4, 1, shape);
    mb_const(&m, "B1", bs, 1, b1);
    mb_const(&m, "B2", bs, 1, b2);
    mb_node(&m, "f4", "Reshape", "", "Fflat", "Fshape", NULL);
    mb_node(&m, "frelu", "Relu", "", "f4", NULL);
    mb_node(&m, "b", "AddV2", "", "B1", "B2", NULL);
    mb_node(&m, "conv", "_FusedConv2D", a_conv(attrs, 1, "SAME", "BiasAdd", 1), "x", "frelu", "b",
            NULL);
    char *json = mb_json(&m, "conv");
    for (size_t k = 0; k < 2; k++) {
        struct result r = run_json(json, &m.bin, KINDS[k], NULL, x);
        ok(r.rc);
        assert_int_equal(r.steps, 1);
        expect_close(r.out[0], want, 32, TOL_CONV, "folded filter and bias");
        result_fini(&r);
    }
    free(json);
    mb_fini(&m);

    /* an output that is a constant expression: copied into the arena */
    struct mb m2 = {0};
    mb_input(&m2, "x", 2, 2, 1);
    mb_const(&m2, "B1", bs, 1, b1);
    mb_node(&m2, "neg", "Relu", "", "B1", NULL);
    mb_node(&m2, "xi", "Relu", "", "x", NULL);
    json = mb_json(&m2, "neg xi");
    float relu_b1[2] = {b1[0] > 0 ? b1[0] : 0, b1[1] > 0 ? b1[1] : 0};
    struct result r = run_json(json, &m2.bin, NN_BACKEND_REF, NULL, x);
    ok(r.rc);
    assert_int_equal(r.steps, 1);
    expect_close(r.out[0], relu_b1, 2, TOL_EXACT, "constant output");
    result_fini(&r);
    free(json);
    mb_fini(&m2);
}

/* A chain of 8 same-sized convolutions needs two buffers, not eight;
 * element-wise ops work in place. */
static void test_buffer_reuse(void **state)
{
    (void)state;
    const int h = 16, w = 16, c = 8, depth = 8;
    const size_t n = (size_t)h * w * c, bytes = n * sizeof(float);
    float *x = malloc(bytes), *want = malloc(bytes), *tmp = malloc(bytes), f[9 * 8];
    fill(x, n);
    fill(f, 72);
    for (int i = 0; i < 72; i++)
        f[i] *= 0.5f;
    struct convp p = {.h = h, .w = w, .c = c, .kh = 3, .kw = 3, .cout = c, .s = 1, .dw = true};
    geometry(&p, "SAME");
    memcpy(want, x, bytes);
    struct mb m = {0};
    char attrs[1024], name[16], prev[16] = "x";
    int fs[4] = {3, 3, c, 1};
    mb_input(&m, "x", h, w, c);
    mb_const(&m, "F", fs, 4, f);
    a_conv(attrs, 1, "SAME", NULL, 0);
    for (int k = 0; k < depth; k++) {
        snprintf(name, sizeof name, "d%d", k);
        mb_node(&m, name, "DepthwiseConv2dNative", attrs, prev, "F", NULL);
        snprintf(prev, sizeof prev, "r%d", k);
        mb_node(&m, prev, "Relu", "", name, NULL); /* fused into the conv */
        slow_conv(&p, want, f, NULL, A_RELU, 0, NULL, tmp);
        memcpy(want, tmp, bytes);
    }
    /* then element-wise ops on the last value: in place */
    mb_node(&m, "s", "Sigmoid", "", prev, NULL);
    mb_node(&m, "s2", "Relu6", "", "s", NULL);
    char *json = mb_json(&m, "s2");
    for (size_t i = 0; i < n; i++)
        want[i] = (float)(1.0 / (1.0 + exp(-(double)want[i])));
    for (size_t k = 0; k < 2; k++) {
        struct result r = run_json(json, &m.bin, KINDS[k], NULL, x);
        ok(r.rc);
        assert_int_equal(r.steps, depth + 2);
        assert_true(r.arena <= 2 * bytes);
        expect_close(r.out[0], want, n, TOL_CONV, "chain");
        result_fini(&r);
    }
    free(json);
    mb_fini(&m);

    /* a value read again after an element-wise op is not overwritten by it:
     * out = sigmoid(d) + d, d also feeding a pool */
    struct mb m2 = {0};
    char t1[128], t2[128], pool[512];
    mb_input(&m2, "x", h, w, c);
    mb_const(&m2, "F", fs, 4, f);
    mb_node(&m2, "d", "DepthwiseConv2dNative", attrs, "x", "F", NULL);
    mb_node(&m2, "s", "Sigmoid", "", "d", NULL);
    mb_node(&m2, "add", "AddV2", "", "s", "d", NULL);
    sprintf(pool, "\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},%s,%s", a_strides(t1, 2),
            a_s(t2, "padding", "VALID"));
    mb_node(&m2, "pool", "MaxPool", pool, "d", NULL);
    json = mb_json(&m2, "add pool");
    float *d = malloc(bytes);
    slow_conv(&p, x, f, NULL, A_NONE, 0, NULL, d);
    for (size_t i = 0; i < n; i++)
        want[i] = (float)(1.0 / (1.0 + exp(-(double)d[i]))) + d[i];
    for (size_t k = 0; k < 2; k++) {
        struct result r = run_json(json, &m2.bin, KINDS[k], NULL, x);
        ok(r.rc);
        expect_close(r.out[0], want, n, TOL_CONV, "value read after an element-wise op");
        for (int ch = 0; ch < c; ch++) { /* the first pooled pixel */
            float mx = fmaxf(fmaxf(d[ch], d[c + ch]),
                             fmaxf(d[(size_t)w * c + ch], d[(size_t)(w + 1) * c + ch]));
            expect_close(&r.out[1][ch], &mx, 1, TOL_CONV, "pool of the same value");
        }
        result_fini(&r);
    }
    free(json);
    mb_fini(&m2);
    free(d);
    free(x);
    free(want);
    free(tmp);
}

/* Weights stored as float16 and uint8 decode as TF.js does. */
static void test_quantized(void **state)
{
    (void)state;
    /* 1x1 conv from 2 to 2 channels: filter float16, bias uint8 */
    const uint16_t half[4] = {0x3c00, 0xc000, 0x3555, 0x0001}; /* 1, -2, 0.33325, 2^-24 */
    const uint8_t q[2] = {0, 200};
    const double scale = 0.0123, mn = -1.1;
    float filt[4] = {1.0f, -2.0f, 0.333251953125f, 5.9604644775390625e-08f};
    float bias[2] = {(float)(0 * scale + mn), (float)(200 * scale + mn)};
    float x[3 * 2] = {0.5f, -1.25f, 2.0f, 3.0f, -0.75f, 0.125f}, want[6];
    struct convp p = {.h = 1, .w = 3, .c = 2, .kh = 1, .kw = 1, .cout = 2, .s = 1};
    geometry(&p, "VALID");
    slow_conv(&p, x, filt, bias, A_NONE, 0, NULL, want);
    struct mb m = {0};
    int fs[4] = {1, 1, 2, 2}, bs[1] = {2};
    char attrs[1024], quant[128];
    mb_input(&m, "x", 1, 3, 2);
    mb_weight(&m, "F", "float32", fs, 4, half, sizeof half,
              "{\"dtype\":\"float16\",\"original_dtype\":\"float32\"}");
    mb_node(&m, "F", "Const", "", NULL);
    snprintf(quant, sizeof quant, "{\"dtype\":\"uint8\",\"scale\":%.17g,\"min\":%.17g}", scale, mn);
    mb_weight(&m, "B", "float32", bs, 1, q, sizeof q, quant);
    mb_node(&m, "B", "Const", "", NULL);
    mb_node(&m, "conv", "_FusedConv2D", a_conv(attrs, 1, "VALID", "BiasAdd", 1), "x", "F", "B",
            NULL);
    char *json = mb_json(&m, "conv");
    for (size_t k = 0; k < 2; k++) {
        struct result r = run_json(json, &m.bin, KINDS[k], NULL, x);
        ok(r.rc);
        expect_close(r.out[0], want, 6, 1e-7, "float16 / uint8 weights");
        result_fini(&r);
    }
    free(json);
    mb_fini(&m);
}

/* ------------------------------------------------------------ contracts */

static char *simple_model(struct mb *m)
{
    static float f[3 * 3 * 2 * 3], b[3];
    char attrs[1024];
    int fs[4] = {3, 3, 2, 3}, bs[1] = {3};
    fill(f, 54);
    fill(b, 3);
    mb_input(m, "x", 4, 4, 2);
    mb_const(m, "W", fs, 4, f);
    mb_const(m, "B", bs, 1, b);
    mb_node(m, "c1", "_FusedConv2D", a_conv(attrs, 1, "SAME", "BiasAdd", 1), "x", "W", "B", NULL);
    mb_node(m, "r", "Relu", "", "c1", NULL);
    mb_node(m, "out", "Identity", "", "r", NULL);
    return mb_json(m, "out");
}

static void test_run_contract(void **state)
{
    (void)state;
    struct mb m = {0};
    char *json = simple_model(&m);
    struct nn_backend *be, *be2;
    struct nn_ctx *ctx, *ctx2;
    struct nn_graph *g;
    ok(nn_backend_new(NN_BACKEND_FAST, &be));
    ok(nn_backend_new(NN_BACKEND_REF, &be2));
    ok(nn_ctx_new(be, &ctx));
    ok(nn_ctx_new(be2, &ctx2));
    ok(nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, NULL));
    assert_true(nn_graph_macs(g) == 4 * 4 * 3 * 3 * 3 * 2);
    float x[32], *o[1], first[48];
    fill(x, 32);
    struct fa_arena a;
    size_t need = nn_graph_arena_bytes(g);
    ok(fa_arena_init(&a, need + 128));
    /* too little room: refused, nothing taken */
    a.used = 128 + 64;
    assert_int_equal(nn_graph_run(g, ctx, &a, x, o), FA_ERR_NOMEM);
    assert_int_equal(a.used, 128 + 64);
    /* a context of another backend */
    fa_arena_reset(&a);
    assert_int_equal(nn_graph_run(g, ctx2, &a, x, o), FA_ERR_ARG);
    assert_int_equal(a.used, 0);
    /* runs are repeatable, and allocate nothing */
    ok(nn_graph_run(g, ctx, &a, x, o));
    memcpy(first, o[0], sizeof first);
    for (int k = 0; k < 3; k++) {
        fa_arena_reset(&a);
        fa_alloc_fail_after(0);
        enum fa_status rc = nn_graph_run(g, ctx, &a, x, o);
        long made = fa_alloc_count();
        fa_alloc_fail_reset();
        ok(rc);
        assert_int_equal(made, 0);
        assert_memory_equal(first, o[0], sizeof first);
    }
    assert_int_equal(nn_graph_run(NULL, ctx, &a, x, o), FA_ERR_ARG);
    assert_int_equal(nn_graph_run(g, ctx, &a, NULL, o), FA_ERR_ARG);
    fa_arena_fini(&a);
    nn_graph_free(g);
    nn_graph_free(NULL);

    /* the input size: fixed by the model; input_hwc may only agree */
    int32_t same[3] = {4, 4, 2}, other[3] = {5, 4, 2};
    struct nn_graph_opts o1 = {.input_hwc = same}, o2 = {.input_hwc = other};
    struct fa_errinfo info;
    ok(nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, &o1, &g, &info));
    nn_graph_free(g);
    assert_int_equal(nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, &o2, &g, &info),
                     FA_ERR_ARG);
    assert_non_null(strstr(info.what, "'x'"));
    free(json);

    /* a model that leaves the size open takes it from input_hwc */
    struct mb m2 = {0};
    mb_node(&m2, "x", "Placeholder",
            "\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},{\"size\":\"-1\"},{\"size\":\"-1\"},"
            "{\"size\":\"3\"}]}}",
            NULL);
    mb_node(&m2, "r", "Relu", "", "x", NULL);
    json = mb_json(&m2, "r");
    assert_int_equal(nn_graph_parse(json, strlen(json), NULL, 0, be, NULL, &g, &info), FA_ERR_ARG);
    int32_t hwc[3] = {7, 5, 3}, bad_c[3] = {7, 5, 4};
    o1.input_hwc = hwc;
    ok(nn_graph_parse(json, strlen(json), NULL, 0, be, &o1, &g, &info));
    assert_int_equal(nn_graph_output_len(g, 0), 105);
    nn_graph_free(g);
    o1.input_hwc = bad_c;
    assert_int_equal(nn_graph_parse(json, strlen(json), NULL, 0, be, &o1, &g, &info), FA_ERR_ARG);
    /* outputs asked for by name: unknown names refused */
    const char *bad_out[] = {"nope"};
    struct nn_graph_opts o3 = {.input_hwc = hwc, .outputs = bad_out, .n_outputs = 1};
    assert_int_equal(nn_graph_parse(json, strlen(json), NULL, 0, be, &o3, &g, &info), FA_ERR_ARG);
    assert_non_null(strstr(info.what, "nope"));
    free(json);
    mb_fini(&m2);
    mb_fini(&m);
    nn_ctx_free(ctx);
    nn_ctx_free(ctx2);
    nn_backend_free(be);
    nn_backend_free(be2);
}

/* ------------------------------------------------------------ malformed */

struct bad {
    const char *what;
    const char *from, *to; /* text substitution in the simple model */
    enum fa_status want;
    const char *named; /* must appear in info */
};

static void replace_text(char **json, const char *from, const char *to)
{
    char *p = strstr(*json, from);
    if (p == NULL)
        fail_msg("pattern '%s' not in the model", from);
    size_t n = strlen(*json), a = strlen(from), b = strlen(to);
    char *out = malloc(n - a + b + 1);
    memcpy(out, *json, (size_t)(p - *json));
    memcpy(out + (p - *json), to, b);
    strcpy(out + (p - *json) + b, p + a);
    free(*json);
    *json = out;
}

static void test_malformed(void **state)
{
    (void)state;
    char e1[64], e2[64];
    char pad_foo[80], pad_same[80], dt_nchw[80], dt_nhwc[80];
    snprintf(pad_same, sizeof pad_same, "\"padding\":{\"s\":\"%s\"}", b64("SAME", e1));
    snprintf(pad_foo, sizeof pad_foo, "\"padding\":{\"s\":\"%s\"}", b64("FOO", e2));
    snprintf(dt_nhwc, sizeof dt_nhwc, "\"data_format\":{\"s\":\"%s\"}", b64("NHWC", e1));
    snprintf(dt_nchw, sizeof dt_nchw, "\"data_format\":{\"s\":\"%s\"}", b64("NCHW", e2));
    char relu_only[128], bias_b64[64];
    b64("BiasAdd", bias_b64);
    snprintf(relu_only, sizeof relu_only, "\"s\":[\"%s\"]", b64("Relu", e1));
    char bias_only[128];
    snprintf(bias_only, sizeof bias_only, "\"s\":[\"%s\"]", bias_b64);
    const struct bad cases[] = {
        {"unknown op", "\"op\":\"Relu\"", "\"op\":\"Frobnicate\"", FA_ERR_MODEL_OP, "'r'"},
        {"missing weight", "{\"name\":\"W\",\"dtype\"", "{\"name\":\"W9\",\"dtype\"",
         FA_ERR_MODEL_TENSOR, "'W'"},
        {"filter mis-shaped", "\"shape\":[3,3,2,3]", "\"shape\":[3,3,1,6]", FA_ERR_MODEL_TENSOR,
         "'c1'"},
        {"bias mis-shaped", "\"shape\":[3]", "\"shape\":[1,3,1]", FA_ERR_MODEL_TENSOR, "'c1'"},
        {"truncated JSON", "]}}", "]}", FA_ERR_MODEL_FORMAT, "line"},
        {"cycle", "\"input\":[\"c1\"]", "\"input\":[\"out\"]", FA_ERR_MODEL_FORMAT, "cycle"},
        {"unknown input", "\"input\":[\"c1\"]", "\"input\":[\"nope\"]", FA_ERR_MODEL_FORMAT,
         "nope"},
        {"duplicate name", "\"name\":\"r\"", "\"name\":\"c1\"", FA_ERR_MODEL_FORMAT, "'c1'"},
        {"second output", "\"input\":[\"c1\"]", "\"input\":[\"c1:1\"]", FA_ERR_MODEL_OP, "'r'"},
        {"filter not constant", "\"input\":[\"x\",\"W\",\"B\"]", "\"input\":[\"x\",\"x\",\"B\"]",
         FA_ERR_MODEL_OP, "'c1'"},
        {"dilation", "\"dilations\":{\"list\":{\"i\":[\"1\",\"1\",",
         "\"dilations\":{\"list\":{\"i\":[\"1\",\"2\",", FA_ERR_MODEL_OP, "'c1'"},
        {"NCHW", dt_nhwc, dt_nchw, FA_ERR_MODEL_OP, "'c1'"},
        {"bad padding", pad_same, pad_foo, FA_ERR_MODEL_OP, "'c1'"},
        {"anisotropic stride", "\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}}",
         "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"1\",\"1\"]}}", FA_ERR_MODEL_OP, "'c1'"},
        {"strides missing", "\"strides\":", "\"strides_\":", FA_ERR_MODEL_FORMAT, "'c1'"},
        {"strides malformed", "\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}}",
         "\"strides\":{\"i\":\"x\"}", FA_ERR_MODEL_FORMAT, "'c1'"},
        {"activation without BiasAdd", bias_only, relu_only, FA_ERR_MODEL_OP, "'c1'"},
        {"num_args", "\"num_args\":{\"i\":\"1\"}", "\"num_args\":{\"i\":\"2\"}",
         FA_ERR_MODEL_FORMAT, "'c1'"},
        {"no Placeholder", "\"op\":\"Placeholder\"", "\"op\":\"Const\"", FA_ERR_MODEL_TENSOR,
         "'x'"},
        {"input rank 3", "{\"size\":\"-1\"},", "", FA_ERR_MODEL_OP, "'x'"},
        {"unknown signature output", "\"name\":\"out:0\"", "\"name\":\"gone:0\"",
         FA_ERR_MODEL_FORMAT, "gone"},
        {"no topology", "\"modelTopology\"", "\"topology\"", FA_ERR_MODEL_FORMAT, "node"},
        {"not an object", "{\"format\"", "[{\"format\"", FA_ERR_MODEL_FORMAT, ""},
        {"attr not an object", "\"attr\":{}", "\"attr\":[]", FA_ERR_MODEL_FORMAT, "'r'"},
    };
    struct nn_backend *be;
    ok(nn_backend_new(NN_BACKEND_REF, &be));
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct mb m = {0};
        char *json = simple_model(&m);
        replace_text(&json, cases[t].from, cases[t].to);
        if (strcmp(cases[t].what, "not an object") == 0) {
            json = realloc(json, strlen(json) + 2);
            assert_non_null(json);
            strcat(json, "]"); /* still valid JSON, an array */
        }
        struct nn_graph *g = NULL;
        struct fa_errinfo info;
        memset(&info, 'x', sizeof info);
        enum fa_status rc =
            nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, &info);
        if (rc != cases[t].want || strstr(info.what, cases[t].named) == NULL)
            fail_msg("%s: got %s '%s', want %s naming %s", cases[t].what, fa_status_name(rc),
                     info.what, fa_status_name(cases[t].want), cases[t].named);
        assert_null(g);
        free(json);
        mb_fini(&m);
    }

    /* graph-level cases built from scratch */
    struct {
        const char *what;
        enum fa_status want;
        const char *named;
    } more[] = {
        {"two inputs", FA_ERR_MODEL_OP, "'y'"},
        {"add broadcast", FA_ERR_MODEL_OP, "'add'"},
        {"reshape count", FA_ERR_MODEL_TENSOR, "'rs'"},
        {"concat dims", FA_ERR_MODEL_TENSOR, "'cat'"},
        {"depthwise multiplier", FA_ERR_MODEL_OP, "'dw'"},
        {"window larger than input", FA_ERR_MODEL_TENSOR, "'pool'"},
        {"weights shorter than manifest", FA_ERR_MODEL_FORMAT, ""},
        {"prelu alpha mis-shaped", FA_ERR_MODEL_TENSOR, "'p'"},
    };
    for (size_t t = 0; t < sizeof more / sizeof more[0]; t++) {
        struct mb m = {0};
        float z[64] = {0};
        int s2[1] = {2}, s4[4] = {3, 3, 2, 2}, s5[1] = {5};
        int32_t shape[2] = {-1, 7}, axis = 3;
        char attrs[512];
        mb_input(&m, "x", 4, 4, 2);
        const char *out = "";
        switch (t) {
        case 0:
            mb_input(&m, "y", 4, 4, 2);
            mb_node(&m, "add", "AddV2", "", "x", "y", NULL);
            out = "add";
            break;
        case 1:
            mb_node(&m, "pool", "MaxPool",
                    "\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
                    "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
                    "\"padding\":{\"s\":\"VkFMSUQ=\"}",
                    "x", NULL);
            mb_node(&m, "add", "AddV2", "", "x", "pool", NULL);
            out = "add";
            break;
        case 2:
            mb_const_i(&m, "S", s2, 1, shape);
            mb_node(&m, "rs", "Reshape", "", "x", "S", NULL);
            out = "rs";
            break;
        case 3:
            mb_const_i(&m, "A", s2, 0, &axis);
            mb_node(&m, "pool", "MaxPool",
                    "\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
                    "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}},"
                    "\"padding\":{\"s\":\"VkFMSUQ=\"}",
                    "x", NULL);
            mb_node(&m, "cat", "ConcatV2", "", "x", "pool", "A", NULL);
            out = "cat";
            break;
        case 4:
            mb_const(&m, "F", s4, 4, z);
            mb_node(&m, "dw", "DepthwiseConv2dNative", a_conv(attrs, 1, "SAME", NULL, 0), "x", "F",
                    NULL);
            out = "dw";
            break;
        case 5:
            mb_node(&m, "pool", "MaxPool",
                    "\"ksize\":{\"list\":{\"i\":[\"1\",\"5\",\"5\",\"1\"]}},"
                    "\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}},"
                    "\"padding\":{\"s\":\"VkFMSUQ=\"}",
                    "x", NULL);
            out = "pool";
            break;
        case 6:
            mb_const(&m, "F", s4, 4, z);
            mb_node(&m, "c", "Conv2D", a_conv(attrs, 1, "SAME", NULL, 0), "x", "F", NULL);
            m.bin.n -= 4;
            out = "c";
            break;
        case 7:
            mb_const(&m, "A", s5, 1, z);
            mb_node(&m, "p", "Prelu", "", "x", "A", NULL);
            out = "p";
            break;
        }
        char *json = mb_json(&m, out);
        struct nn_graph *g = NULL;
        struct fa_errinfo info = {{0}};
        enum fa_status rc =
            nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, &info);
        if (rc != more[t].want || strstr(info.what, more[t].named) == NULL)
            fail_msg("%s: got %s '%s', want %s naming %s", more[t].what, fa_status_name(rc),
                     info.what, fa_status_name(more[t].want), more[t].named);
        assert_null(g);
        free(json);
        mb_fini(&m);
    }
    /* arguments */
    struct nn_graph *g = NULL;
    assert_int_equal(nn_graph_parse(NULL, 0, NULL, 0, be, NULL, &g, NULL), FA_ERR_ARG);
    assert_int_equal(nn_graph_parse("{}", 2, NULL, 0, be, NULL, &g, NULL), FA_ERR_MODEL_FORMAT);
    nn_backend_free(be);
}

/* ------------------------------------------------------------------ files */

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_nn_graph.XXXXXX", path[256], bin[256];
    assert_non_null(mkdtemp(dir));
    struct mb m = {0};
    char *json = simple_model(&m);
    snprintf(path, sizeof path, "%s/model.json", dir);
    snprintf(bin, sizeof bin, "%s/m.bin", dir);
    write_file(path, json, strlen(json));
    struct nn_backend *be;
    struct nn_graph *g = NULL;
    struct fa_errinfo info;
    ok(nn_backend_new(NN_BACKEND_REF, &be));
    /* shard missing, then present */
    assert_int_equal(nn_graph_load(path, be, NULL, &g, &info), FA_ERR_MODEL_MISSING);
    write_file(bin, m.bin.p, m.bin.n);
    ok(nn_graph_load(path, be, NULL, &g, &info));
    nn_graph_free(g);
    /* model missing */
    snprintf(path, sizeof path, "%s/none.json", dir);
    assert_int_equal(nn_graph_load(path, be, NULL, &g, &info), FA_ERR_MODEL_MISSING);
    /* a shard path leaving the folder */
    replace_text(&json, "\"m.bin\"", "\"../m.bin\"");
    snprintf(path, sizeof path, "%s/evil.json", dir);
    write_file(path, json, strlen(json));
    g = NULL;
    assert_int_not_equal(nn_graph_load(path, be, NULL, &g, &info), FA_OK);
    assert_null(g);
    unlink(path);
    unlink(bin);
    snprintf(path, sizeof path, "%s/model.json", dir);
    unlink(path);
    rmdir(dir);
    free(json);
    mb_fini(&m);
    nn_backend_free(be);
}

/* ------------------------------------------------------- fault injection */

static void test_alloc_failures(void **state)
{
    (void)state;
    const int c = 4;
    float dwf[36], pw[16], bias[4], slopes[4], x[120];
    fill(dwf, 36);
    fill(pw, 16);
    fill(bias, 4);
    fill(slopes, 4);
    fill(x, 120);
    struct mb m = {0};
    build_block(&m, dwf, pw, bias, slopes, c);
    int s1[1] = {4};
    float b1[4] = {1, 2, 3, 4};
    mb_const(&m, "C1", s1, 1, b1);
    mb_node(&m, "folded", "Relu", "", "C1", NULL); /* a folded node */
    mb_node(&m, "last", "AddV2", "", "out", "folded", NULL);
    char *json = mb_json(&m, "last act");
    struct nn_backend *be;
    struct nn_ctx *ctx;
    ok(nn_backend_new(NN_BACKEND_REF, &be));
    ok(nn_ctx_new(be, &ctx));
    struct nn_graph *g = NULL;
    ok(nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, NULL));
    struct fa_arena a;
    ok(fa_arena_init(&a, nn_graph_arena_bytes(g)));
    float *o[2], want0[36];
    ok(nn_graph_run(g, ctx, &a, x, o));
    memcpy(want0, o[0], sizeof want0);
    nn_graph_free(g);
    for (long n = 0;; n++) {
        struct fa_errinfo info;
        g = NULL;
        fa_alloc_fail_after(n);
        enum fa_status rc =
            nn_graph_parse(json, strlen(json), m.bin.p, m.bin.n, be, NULL, &g, &info);
        long made = fa_alloc_count();
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            /* a graph that loaded under pressure still runs right (fusion
             * may have been skipped) */
            fa_arena_fini(&a);
            ok(fa_arena_init(&a, nn_graph_arena_bytes(g)));
            ok(nn_graph_run(g, ctx, &a, x, o));
            expect_close(o[0], want0, 36, TOL_CONV, "after allocation failure");
            nn_graph_free(g);
            if (made <= n)
                break; /* no allocation failed: every one was tried */
            continue;
        }
        if (rc != FA_ERR_NOMEM)
            fail_msg("allocation %ld failing: %s (%s)", n, fa_status_name(rc), info.what);
        assert_null(g);
        assert_true(n < 5000);
    }
    fa_arena_fini(&a);
    free(json);
    mb_fini(&m);
    nn_ctx_free(ctx);
    nn_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),         cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_maxpool),      cmocka_unit_test(test_data_movement),
        cmocka_unit_test(test_fusion),       cmocka_unit_test(test_folding),
        cmocka_unit_test(test_buffer_reuse), cmocka_unit_test(test_quantized),
        cmocka_unit_test(test_run_contract), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_files),        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
