/* Paths for the tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

const char *tu_shared_dir(void)
{
    const char *e = getenv("FA_SHARED_DIR");
    return e != NULL && *e ? e : FA_SHARED_DIR_DEFAULT;
}

const char *tu_models_dir(void)
{
    const char *e = getenv("FACEAUTH_MODELS");
    return e != NULL && *e ? e : FA_MODELS_DIR_DEFAULT;
}

const char *tu_shared_path(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/%s", tu_shared_dir(), rel);
    return buf;
}
