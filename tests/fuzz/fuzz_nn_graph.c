/* Fuzz target of the TF.js graph loader (nn_graph_parse): any bytes as
 * model.json. So that mutations reach the graph code instead of stopping at
 * a weights-size mismatch, the weights blob is made here to the size the
 * manifest asks for (capped): small finite values (float32 ~ +-0.0078,
 * float16 +-1), or the values a corpus file lists. A model that
 * loads is run once when it is small, and its outputs must lie in the
 * arena block. Never a crash, a leak or an abort. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/arena.h"
#include "nn/nn.h"

#define MAX_BIN (1u << 20)
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Fill `bin` for the manifest of `data` as the weights loader reads it and
 * return its size (0 when the text is not JSON; capped at MAX_BIN): each
 * tensor gets the background pattern, or the values of its "fuzz_values"
 * list (a field the loader ignores), so that a corpus file can give its
 * shape and padding constants meaningful values. */
static size_t make_blob(const uint8_t *data, size_t size, uint8_t *bin)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    size_t total = 0;
    const json_t *man = json_object_get(root, "weightsManifest");
    for (size_t g = 0; g < json_array_size(man); g++) {
        const json_t *ws = json_object_get(json_array_get(man, g), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++) {
            const json_t *w = json_array_get(ws, i);
            const json_t *shape = json_object_get(w, "shape");
            size_t n = 1;
            for (size_t k = 0; k < json_array_size(shape) && n <= MAX_BIN; k++) {
                json_int_t d = json_integer_value(json_array_get(shape, k));
                n *= d > 0 && d <= MAX_BIN ? (size_t)d : MAX_BIN + 1;
            }
            const char *q =
                json_string_value(json_object_get(json_object_get(w, "quantization"), "dtype"));
            size_t per = q == NULL ? 4 : strcmp(q, "uint8") == 0 ? 1 : 2;
            if (n > MAX_BIN || n * per > MAX_BIN - total) {
                total = MAX_BIN;
                goto out;
            }
            const json_t *vals = json_object_get(w, "fuzz_values");
            const char *dt = json_string_value(json_object_get(w, "dtype"));
            bool is_int = dt != NULL && strcmp(dt, "int32") == 0;
            if (q == NULL && json_array_size(vals) > 0) {
                for (size_t k = 0; k < n; k++) {
                    double v = json_number_value(json_array_get(vals, k % json_array_size(vals)));
                    uint32_t bits;
                    if (is_int) {
                        int32_t iv = (int32_t)v;
                        memcpy(&bits, &iv, 4);
                    } else {
                        float fv = (float)v;
                        memcpy(&bits, &fv, 4);
                    }
                    for (int b = 0; b < 4; b++)
                        bin[total + 4 * k + b] = (uint8_t)(bits >> (8 * b));
                }
            } else {
                for (size_t k = 0; k < n * per; k++)
                    bin[total + k] =
                        (uint8_t)((total + k) % 4 == 1   ? 0x3c
                                  : (total + k) % 4 == 3 ? ((total + k) / 4 % 3 == 0 ? 0xbc : 0x3c)
                                                         : 0x00);
            }
            total += n * per;
        }
    }
out:
    json_decref(root);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct nn_backend *be;
    static struct nn_ctx *ctx;
    static uint8_t *bin;
    if (be == NULL) {
        if (nn_backend_new(NN_BACKEND_REF, &be) != FA_OK || nn_ctx_new(be, &ctx) != FA_OK)
            abort();
        bin = malloc(MAX_BIN);
        if (bin == NULL)
            abort();
    }
    size_t bin_len = make_blob(data, size, bin);
    struct nn_graph *g = NULL;
    struct fa_errinfo info;
    enum fa_status rc = nn_graph_parse((const char *)data, size, bin, bin_len, be, NULL, &g, &info);
    if (rc != FA_OK) {
        CHECK(g == NULL);
        return 0;
    }
    size_t n_out = nn_graph_output_count(g);
    CHECK(n_out >= 1);
    int32_t hwc[3];
    nn_graph_input_shape(g, hwc);
    size_t in_len = (size_t)hwc[0] * hwc[1] * hwc[2];
    if (nn_graph_arena_bytes(g) <= (16u << 20) && nn_graph_macs(g) <= 20000000u &&
        in_len <= (1u << 20)) {
        struct fa_arena arena;
        float *input = calloc(in_len, sizeof(float));
        float **outs = calloc(n_out, sizeof *outs);
        if (input != NULL && outs != NULL &&
            fa_arena_init(&arena, nn_graph_arena_bytes(g)) == FA_OK) {
            for (size_t i = 0; i < in_len; i++)
                input[i] = (float)(i % 7) - 3.0f;
            rc = nn_graph_run(g, ctx, &arena, input, outs);
            CHECK(rc == FA_OK);
            for (size_t j = 0; j < n_out; j++) {
                int32_t shape[NN_GRAPH_MAX_RANK];
                int32_t rank = nn_graph_output_shape(g, j, shape);
                CHECK(rank >= 0 && rank <= NN_GRAPH_MAX_RANK);
                size_t len = nn_graph_output_len(g, j);
                CHECK((unsigned char *)outs[j] >= arena.base &&
                      (unsigned char *)(outs[j] + len) <= arena.base + arena.cap);
            }
            fa_arena_fini(&arena);
        }
        free(input);
        free(outs);
    }
    nn_graph_free(g);
    return 0;
}
