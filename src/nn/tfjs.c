/* TF.js weights manifests: `*-weights_manifest.json` (a JSON array of groups)
 * or the "weightsManifest" of a graph model.json, plus the .bin shards that
 * hold the tensors back to back in manifest order. Two passes: plan()
 * validates every tensor (dtype, quantization, shape, byte range) and sums
 * the sizes without touching the data; only when the manifest total equals
 * the shard bytes is anything allocated and decoded. Decoding follows
 * tfjs-core io_utils.decodeWeight bit for bit. jansson is used here only
 * (its allocations do not go through fa_malloc). */
#include "nn/nn.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "nn/tfjs_json.h"

#define MAX_MANIFEST_BYTES (16u << 20)  /* a manifest or model.json */
#define MAX_SHARD_BYTES (1024ull << 20) /* all shards of one model */
#define MAX_PATH_LEN 1024

enum qkind {
    Q_NONE,    /* float32 or int32 as stored, 4 bytes */
    Q_UINT8,   /* q * scale + min */
    Q_UINT16,  /* same, 2 bytes */
    Q_FLOAT16, /* IEEE binary16, widened */
};

/* One validated tensor of the plan; `name` is borrowed from the JSON tree. */
struct spec {
    const char *name;
    int32_t shape[6];
    int32_t rank;
    size_t count;
    size_t offset; /* into the concatenated shards */
    size_t bytes;
    bool is_int;
    enum qkind q;
    double scale, min;
};

struct plan {
    struct spec *s;
    size_t n;
    size_t total; /* bytes of all tensors */
};

static void plan_fini(struct plan *p)
{
    fa_free(p->s);
    p->s = NULL;
    p->n = 0;
}

/* A JSON number as the double TF.js would see (jansson parses reals with
 * strtod, as JavaScript's correctly rounded parse does; integers are exact
 * up to 2^53). */
static bool json_to_double(const json_t *v, double *out)
{
    if (json_is_real(v))
        *out = json_real_value(v);
    else if (json_is_integer(v))
        *out = (double)json_integer_value(v);
    else
        return false;
    return isfinite(*out);
}

static enum fa_status parse_quant(const json_t *q, struct spec *s, struct fa_errinfo *info)
{
    if (!json_is_object(q)) {
        fa_errinfo_set(info, "tensor '%s': quantization is not an object", s->name);
        return FA_ERR_MODEL_FORMAT;
    }
    const char *qd = json_string_value(json_object_get(q, "dtype"));
    if (qd == NULL) {
        fa_errinfo_set(info, "tensor '%s': quantization without dtype", s->name);
        return FA_ERR_MODEL_FORMAT;
    }
    if (strcmp(qd, "float16") == 0) {
        if (s->is_int) {
            fa_errinfo_set(info, "tensor '%s': float16 quantization of int32", s->name);
            return FA_ERR_MODEL_FORMAT;
        }
        s->q = Q_FLOAT16;
        return FA_OK;
    }
    if (strcmp(qd, "uint8") == 0)
        s->q = Q_UINT8;
    else if (strcmp(qd, "uint16") == 0)
        s->q = Q_UINT16;
    else {
        fa_errinfo_set(info, "tensor '%s': unknown quantization dtype '%.40s'", s->name, qd);
        return FA_ERR_MODEL_FORMAT;
    }
    if (!json_to_double(json_object_get(q, "scale"), &s->scale) ||
        !json_to_double(json_object_get(q, "min"), &s->min)) {
        fa_errinfo_set(info, "tensor '%s': quantization scale/min missing or not finite", s->name);
        return FA_ERR_MODEL_FORMAT;
    }
    return FA_OK;
}

static enum fa_status parse_weight(const json_t *w, struct spec *s, struct fa_errinfo *info)
{
    if (!json_is_object(w)) {
        fa_errinfo_set(info, "weights entry is not an object");
        return FA_ERR_MODEL_FORMAT;
    }
    s->name = json_string_value(json_object_get(w, "name"));
    if (s->name == NULL || s->name[0] == '\0') {
        fa_errinfo_set(info, "weights entry without a name");
        return FA_ERR_MODEL_FORMAT;
    }
    const char *dt = json_string_value(json_object_get(w, "dtype"));
    if (dt != NULL && strcmp(dt, "float32") == 0)
        s->is_int = false;
    else if (dt != NULL && strcmp(dt, "int32") == 0)
        s->is_int = true;
    else {
        fa_errinfo_set(info, "tensor '%s': unsupported dtype '%.40s'", s->name,
                       dt != NULL ? dt : "(none)");
        return FA_ERR_MODEL_FORMAT;
    }

    const json_t *shape = json_object_get(w, "shape");
    if (!json_is_array(shape) || json_array_size(shape) > 6) {
        fa_errinfo_set(info, "tensor '%s': shape missing or of rank > 6", s->name);
        return FA_ERR_MODEL_FORMAT;
    }
    s->rank = (int32_t)json_array_size(shape);
    size_t count = 1;
    for (int32_t i = 0; i < s->rank; i++) {
        const json_t *d = json_array_get(shape, (size_t)i);
        json_int_t v = json_is_integer(d) ? json_integer_value(d) : 0;
        if (v <= 0 || v > INT32_MAX) {
            fa_errinfo_set(info, "tensor '%s': dimension %d is not a positive int32", s->name,
                           (int)i);
            return FA_ERR_MODEL_FORMAT;
        }
        s->shape[i] = (int32_t)v;
        if (__builtin_mul_overflow(count, (size_t)v, &count)) {
            fa_errinfo_set(info, "tensor '%s': element count overflows", s->name);
            return FA_ERR_MODEL_FORMAT;
        }
    }
    s->count = count;

    s->q = Q_NONE;
    const json_t *q = json_object_get(w, "quantization");
    if (q != NULL) {
        enum fa_status rc = parse_quant(q, s, info);
        if (rc != FA_OK)
            return rc;
    }
    size_t esize = s->q == Q_NONE ? 4 : s->q == Q_UINT8 ? 1 : 2;
    if (__builtin_mul_overflow(count, esize, &s->bytes)) {
        fa_errinfo_set(info, "tensor '%s': byte size overflows", s->name);
        return FA_ERR_MODEL_FORMAT;
    }
    return FA_OK;
}

static int cmp_spec_names(const void *a, const void *b)
{
    return strcmp((*(const struct spec *const *)a)->name, (*(const struct spec *const *)b)->name);
}

/* Duplicate names would make nn_weights_get ambiguous: reject them. */
static enum fa_status check_unique(const struct plan *p, struct fa_errinfo *info)
{
    if (p->n < 2)
        return FA_OK;
    const struct spec **v = fa_malloc(p->n * sizeof *v);
    if (v == NULL)
        return FA_ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++)
        v[i] = &p->s[i];
    qsort(v, p->n, sizeof *v, cmp_spec_names);
    enum fa_status rc = FA_OK;
    for (size_t i = 1; i < p->n; i++) {
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            fa_errinfo_set(info, "tensor '%.120s' appears twice", v[i]->name);
            rc = FA_ERR_MODEL_FORMAT;
            break;
        }
    }
    fa_free(v);
    return rc;
}

/* Validate the whole manifest (a JSON array of groups) into a plan. */
static enum fa_status make_plan(const json_t *manifest, struct plan *out, struct fa_errinfo *info)
{
    struct plan p = {0};
    enum fa_status rc = FA_OK;

    if (!json_is_array(manifest)) {
        fa_errinfo_set(info, "weights manifest is not an array");
        return FA_ERR_MODEL_FORMAT;
    }
    size_t n = 0;
    for (size_t g = 0; g < json_array_size(manifest); g++) {
        const json_t *grp = json_array_get(manifest, g);
        const json_t *paths = json_object_get(grp, "paths");
        const json_t *ws = json_object_get(grp, "weights");
        if (!json_is_object(grp) || !json_is_array(paths) || !json_is_array(ws)) {
            fa_errinfo_set(info, "manifest group %zu lacks \"paths\" or \"weights\" arrays", g);
            return FA_ERR_MODEL_FORMAT;
        }
        for (size_t i = 0; i < json_array_size(paths); i++) {
            if (!json_is_string(json_array_get(paths, i))) {
                fa_errinfo_set(info, "manifest group %zu: a path is not a string", g);
                return FA_ERR_MODEL_FORMAT;
            }
        }
        n += json_array_size(ws);
    }
    if (n == 0) {
        fa_errinfo_set(info, "weights manifest lists no tensor");
        return FA_ERR_MODEL_FORMAT;
    }
    p.s = fa_calloc(n, sizeof *p.s);
    if (p.s == NULL)
        return FA_ERR_NOMEM;

    for (size_t g = 0; g < json_array_size(manifest); g++) {
        const json_t *ws = json_object_get(json_array_get(manifest, g), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++) {
            struct spec *s = &p.s[p.n];
            rc = parse_weight(json_array_get(ws, i), s, info);
            if (rc != FA_OK)
                goto out;
            s->offset = p.total;
            if (__builtin_add_overflow(p.total, s->bytes, &p.total)) {
                fa_errinfo_set(info, "tensor '%s': manifest total overflows", s->name);
                rc = FA_ERR_MODEL_FORMAT;
                goto out;
            }
            p.n++;
        }
    }
    rc = check_unique(&p, info);
    if (rc != FA_OK)
        goto out;
    *out = p;
    p.s = NULL;
out:
    plan_fini(&p);
    return rc;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            e = 113;
            while ((m & 0x400u) == 0) {
                m <<= 1;
                e--;
            }
            m &= 0x3ffu;
            bits = sign | (e << 23) | (m << 13);
        }
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* JavaScript Math.round: halves go up (toward +inf). */
static double js_round(double x)
{
    double r = floor(x);
    return (x - r >= 0.5) ? r + 1.0 : r;
}

/* Decode one tensor from its bytes; FA_ERR_MODEL_FORMAT for values TF.js
 * would decode differently from IEEE (float16 inf/NaN) or int32 values a
 * float cannot hold exactly. */
static enum fa_status decode(const struct spec *s, const uint8_t *src, float *dst,
                             struct fa_errinfo *info)
{
    for (size_t i = 0; i < s->count; i++) {
        double v;
        switch (s->q) {
        case Q_NONE: {
            uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                         (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
            if (!s->is_int) {
                memcpy(&dst[i], &u, sizeof u);
                continue;
            }
            v = (double)(int32_t)u;
            break;
        }
        case Q_FLOAT16: {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            if ((h & 0x7c00u) == 0x7c00u) {
                fa_errinfo_set(info, "tensor '%s': float16 inf/NaN at %zu", s->name, i);
                return FA_ERR_MODEL_FORMAT;
            }
            dst[i] = half_to_float(h);
            continue;
        }
        case Q_UINT8:
        case Q_UINT16:
        default: {
            unsigned q = s->q == Q_UINT8 ? src[i] : (unsigned)(src[2 * i] | src[2 * i + 1] << 8);
            /* Two statements so that no compiler fuses them into an FMA:
             * TF.js rounds the product to double, then the sum. */
            double prod = (double)q * s->scale;
            v = prod + s->min;
            if (s->is_int)
                v = js_round(v);
            break;
        }
        }
        if (s->is_int && !(v >= -16777216.0 && v <= 16777216.0)) {
            fa_errinfo_set(info, "tensor '%s': int32 value %.0f not exact as float", s->name, v);
            return FA_ERR_MODEL_FORMAT;
        }
        dst[i] = (float)v;
    }
    return FA_OK;
}

/* Decode every tensor of a checked plan from `bin` (exactly plan->total
 * bytes) into *out. */
static enum fa_status build(const struct plan *p, const uint8_t *bin, struct nn_weights *out,
                            struct fa_errinfo *info)
{
    struct nn_weights w = {0};
    enum fa_status rc = FA_OK;

    w.t = fa_calloc(p->n, sizeof *w.t);
    if (w.t == NULL)
        return FA_ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++) {
        const struct spec *s = &p->s[i];
        struct nn_weight *t = &w.t[i];
        w.n = i + 1; /* so that fini frees what is set */
        t->name = fa_strdup(s->name);
        t->data = fa_malloc(s->count * sizeof(float));
        if (t->name == NULL || t->data == NULL) {
            rc = FA_ERR_NOMEM;
            goto out;
        }
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->rank = s->rank;
        t->count = s->count;
        t->is_int32 = s->is_int;
        rc = decode(s, bin + s->offset, t->data, info);
        if (rc != FA_OK)
            goto out;
    }
    *out = w;
    w.t = NULL;
    w.n = 0;
out:
    nn_weights_fini(&w);
    return rc;
}

/* The manifest array of parsed JSON: the document itself, or the
 * "weightsManifest" member of a graph model.json. */
static const json_t *manifest_of(const json_t *root)
{
    if (json_is_object(root))
        return json_object_get(root, "weightsManifest");
    return root;
}

static enum fa_status load_json(const char *json, size_t len, json_t **out, struct fa_errinfo *info)
{
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    if (root == NULL) {
        fa_errinfo_set(info, "manifest JSON, line %d: %.100s", err.line, err.text);
        return FA_ERR_MODEL_FORMAT;
    }
    *out = root;
    return FA_OK;
}

enum fa_status nn_weights_from_json(const json_t *manifest, const uint8_t *bin, size_t bin_len,
                                    struct nn_weights *out, struct fa_errinfo *info)
{
    struct plan p = {0};
    enum fa_status rc = make_plan(manifest, &p, info);
    if (rc != FA_OK)
        return rc;
    if (p.total != bin_len) {
        fa_errinfo_set(info, "manifest needs %zu bytes of weights, shards hold %zu", p.total,
                       bin_len);
        rc = FA_ERR_MODEL_FORMAT;
        goto out;
    }
    rc = build(&p, bin, out, info);
out:
    plan_fini(&p);
    return rc;
}

enum fa_status nn_weights_parse(const char *json, size_t json_len, const uint8_t *bin,
                                size_t bin_len, struct nn_weights *out, struct fa_errinfo *info)
{
    json_t *root = NULL;
    enum fa_status rc = load_json(json, json_len, &root, info);
    if (rc != FA_OK)
        return rc;
    rc = nn_weights_from_json(manifest_of(root), bin, bin_len, out, info);
    json_decref(root);
    return rc;
}

/* A shard path must stay inside the manifest's folder: relative, made of
 * [A-Za-z0-9._-] components separated by single '/', none "." or "..". */
static bool safe_rel_path(const char *p)
{
    size_t len = strlen(p);
    if (len == 0 || len > 255 || p[0] == '/')
        return false;
    const char *c = p;
    while (*c != '\0') {
        const char *e = c;
        while (*e != '\0' && *e != '/') {
            char ch = *e;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
            if (!ok)
                return false;
            e++;
        }
        size_t n = (size_t)(e - c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c = *e == '/' ? e + 1 : e;
        if (*e == '/' && *c == '\0')
            return false; /* trailing slash */
    }
    return true;
}

static enum fa_status read_fd_fully(int fd, uint8_t *dst, size_t n)
{
    while (n > 0) {
        ssize_t got = read(fd, dst, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return FA_ERR_IO; /* error, or the file shrank under us */
        dst += got;
        n -= (size_t)got;
    }
    return FA_OK;
}

/* Read every shard of the manifest into one buffer of exactly `total`
 * bytes. Sizes are checked (fstat) before anything is read. */
static enum fa_status read_shards(const json_t *manifest, const char *dir, size_t total,
                                  uint8_t **out, struct fa_errinfo *info)
{
    size_t nfiles = 0;
    for (size_t g = 0; g < json_array_size(manifest); g++)
        nfiles += json_array_size(json_object_get(json_array_get(manifest, g), "paths"));
    int *fds = fa_malloc((nfiles ? nfiles : 1) * sizeof *fds);
    size_t *sizes = fa_malloc((nfiles ? nfiles : 1) * sizeof *sizes);
    uint8_t *bin = NULL;
    size_t opened = 0, sum = 0;
    enum fa_status rc = FA_OK;
    char path[MAX_PATH_LEN];

    if (fds == NULL || sizes == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    for (size_t g = 0; g < json_array_size(manifest); g++) {
        const json_t *paths = json_object_get(json_array_get(manifest, g), "paths");
        for (size_t i = 0; i < json_array_size(paths); i++) {
            const char *rel = json_string_value(json_array_get(paths, i));
            if (!safe_rel_path(rel)) {
                fa_errinfo_set(info, "shard path '%.100s' leaves the model folder", rel);
                rc = FA_ERR_MODEL_FORMAT;
                goto out;
            }
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path) {
                fa_errinfo_set(info, "shard path too long: %.100s", rel);
                rc = FA_ERR_MODEL_FORMAT;
                goto out;
            }
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                fa_errinfo_set(info, "shard %.140s: %s", path, strerror(e));
                rc = e == ENOENT ? FA_ERR_MODEL_MISSING : FA_ERR_IO;
                goto out;
            }
            fds[opened++] = fd;
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                fa_errinfo_set(info, "shard %.140s is not a regular file", path);
                rc = FA_ERR_MODEL_FORMAT;
                goto out;
            }
            sizes[opened - 1] = (size_t)st.st_size;
            sum += (size_t)st.st_size;
            if ((uint64_t)sum > MAX_SHARD_BYTES) {
                fa_errinfo_set(info, "shards exceed %llu bytes at %.100s", MAX_SHARD_BYTES, path);
                rc = FA_ERR_MODEL_FORMAT;
                goto out;
            }
        }
    }
    if (sum != total) {
        fa_errinfo_set(info, "manifest needs %zu bytes of weights, shards in %.80s hold %zu", total,
                       dir, sum);
        rc = FA_ERR_MODEL_FORMAT;
        goto out;
    }
    bin = fa_malloc(total ? total : 1);
    if (bin == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    size_t off = 0;
    for (size_t i = 0; i < opened; i++) {
        rc = read_fd_fully(fds[i], bin + off, sizes[i]);
        if (rc != FA_OK) {
            fa_errinfo_set(info, "reading shard %zu of %.120s failed", i, dir);
            goto out;
        }
        off += sizes[i];
    }
    *out = bin;
    bin = NULL;
out:
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    fa_free(fds);
    fa_free(sizes);
    fa_free(bin);
    return rc;
}

enum fa_status nn_weights_load_json(const json_t *manifest, const char *dir, struct nn_weights *out,
                                    struct fa_errinfo *info)
{
    struct plan p = {0};
    uint8_t *bin = NULL;
    enum fa_status rc = make_plan(manifest, &p, info);
    if (rc != FA_OK)
        return rc;
    rc = read_shards(manifest, dir, p.total, &bin, info);
    if (rc != FA_OK)
        goto out;
    rc = build(&p, bin, out, info);
out:
    fa_free(bin);
    plan_fini(&p);
    return rc;
}

enum fa_status nn_weights_load(const char *manifest_path, struct nn_weights *out,
                               struct fa_errinfo *info)
{
    struct fa_buf text = {0};
    json_t *root = NULL;
    char dir[MAX_PATH_LEN];
    enum fa_status rc = fa_read_file(manifest_path, MAX_MANIFEST_BYTES, &text);
    if (rc != FA_OK) {
        fa_errinfo_set(info, "manifest %.140s: %s", manifest_path, fa_status_str(rc));
        if (rc == FA_ERR_NOT_FOUND)
            rc = FA_ERR_MODEL_MISSING;
        else if (rc == FA_ERR_TOO_LARGE)
            rc = FA_ERR_MODEL_FORMAT;
        goto out;
    }
    const char *slash = strrchr(manifest_path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - manifest_path);
        if (n >= sizeof dir) {
            fa_errinfo_set(info, "manifest path too long");
            rc = FA_ERR_MODEL_MISSING;
            goto out;
        }
        memcpy(dir, manifest_path, n);
        dir[n] = '\0';
        if (n == 0)
            strcpy(dir, "/");
    }
    rc = load_json((const char *)text.p, text.n, &root, info);
    if (rc != FA_OK) {
        fa_errinfo_set(info, "manifest %.140s is not valid JSON", manifest_path);
        goto out;
    }
    rc = nn_weights_load_json(manifest_of(root), dir, out, info);
out:
    json_decref(root);
    fa_buf_fini(&text);
    return rc;
}

void nn_weights_fini(struct nn_weights *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++) {
        fa_free(w->t[i].name);
        fa_free(w->t[i].data);
    }
    fa_free(w->t);
    w->t = NULL;
    w->n = 0;
}

static void fmt_shape(char *buf, size_t n, int32_t rank, const int32_t *shape)
{
    size_t used = 0;
    int w = snprintf(buf, n, "[");
    used = w > 0 ? (size_t)w : 0;
    for (int32_t i = 0; i < rank && used < n; i++) {
        w = snprintf(buf + used, n - used, i ? ",%d" : "%d", (int)shape[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < n)
        snprintf(buf + used, n - used, "]");
}

const struct nn_weight *nn_weights_get(const struct nn_weights *w, const char *name, int32_t rank,
                                       const int32_t *shape, struct fa_errinfo *info)
{
    for (size_t i = 0; i < w->n; i++) {
        const struct nn_weight *t = &w->t[i];
        if (strcmp(t->name, name) != 0)
            continue;
        bool ok = t->rank == rank;
        for (int32_t k = 0; ok && k < rank; k++)
            ok = shape[k] == -1 || shape[k] == t->shape[k];
        if (ok)
            return t;
        char have[64], want[64];
        fmt_shape(have, sizeof have, t->rank, t->shape);
        fmt_shape(want, sizeof want, rank < 0 ? 0 : rank > 6 ? 6 : rank, shape);
        fa_errinfo_set(info, "tensor '%.60s' has shape %s, expected %s", name, have, want);
        return NULL;
    }
    fa_errinfo_set(info, "tensor '%.100s' missing", name);
    return NULL;
}
