/* tests/fuzz/fuzz_nn_tfjs.c: a TF.js weights manifest and its shard bytes.
 * Input layout: 2 bytes little-endian JSON length L, L bytes of JSON, then
 * the concatenated shard bytes. A status or valid tensors out, never a
 * crash. */
#include <stdint.h>
#include <stdlib.h>

#include "nn/nn.h"

/* abort() rather than CHECK(): checked in release builds too. */
#define CHECK(c) ((c) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8;
    if (len > size - 2)
        len = size - 2;
    const char *json = (const char *)data + 2;
    const uint8_t *bin = data + 2 + len;
    size_t bin_len = size - 2 - len;

    struct nn_weights w = {0};
    struct fa_errinfo info;
    if (nn_weights_parse(json, len, bin, bin_len, &w, &info) == FA_OK) {
        CHECK(w.n > 0);
        for (size_t i = 0; i < w.n; i++) {
            const struct nn_weight *t = &w.t[i];
            size_t count = 1;
            CHECK(t->rank >= 0 && t->rank <= 6);
            for (int32_t k = 0; k < t->rank; k++) {
                CHECK(t->shape[k] > 0);
                count *= (size_t)t->shape[k];
            }
            CHECK(count == t->count && count <= bin_len);
            volatile float sink = t->data[count - 1]; /* touch the last element */
            (void)sink;
            CHECK(nn_weights_get(&w, t->name, t->rank, t->shape, NULL) != NULL);
        }
        nn_weights_fini(&w);
    }
    return 0;
}
