/* The cmocka group fixture of the nn kernel tests: a REF backend and, when
 * built with oneDNN, a FAST one, each with a context, in globals the tests
 * read, and the random values they fill tensors with. FACEAUTH_NN_BACKEND
 * is cleared so both backends really are what they say. */
#ifndef FA_TESTS_NN_FIXTURE_H
#define FA_TESTS_NN_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "nn/nn.h"

static struct nn_backend *g_ref, *g_fast;

/* Deterministic test data: xorshift32, values in [-1, 1). */
static uint32_t g_rng = 12345;
static float rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return (float)(g_rng >> 8) / 8388608.0f - 1.0f;
}

static struct nn_ctx *g_ref_ctx, *g_fast_ctx;

static int nn_fixture_setup(void **state)
{
    (void)state;
    unsetenv("FACEAUTH_NN_BACKEND");
    if (nn_backend_new(NN_BACKEND_REF, &g_ref) != FA_OK || nn_ctx_new(g_ref, &g_ref_ctx) != FA_OK)
        return -1;
    if (nn_fast_available()) {
        if (nn_backend_new(NN_BACKEND_FAST, &g_fast) != FA_OK ||
            nn_ctx_new(g_fast, &g_fast_ctx) != FA_OK)
            return -1;
    }
    return 0;
}

static int nn_fixture_teardown(void **state)
{
    (void)state;
    nn_ctx_free(g_fast_ctx);
    nn_ctx_free(g_ref_ctx);
    nn_backend_free(g_fast);
    nn_backend_free(g_ref);
    return 0;
}

#endif
