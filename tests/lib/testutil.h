/* Helpers shared by the tests: where the shared data and the models are. */
#ifndef FA_TESTS_TESTUTIL_H
#define FA_TESTS_TESTUTIL_H

#include <stddef.h>

/* $FA_SHARED_DIR, else the build's default (../shared beside the repo). */
const char *tu_shared_dir(void);
/* $FACEAUTH_MODELS, else the build's default (./models). */
const char *tu_models_dir(void);
/* snprintf(buf, n, "%s/%s", tu_shared_dir(), rel); returns buf. */
const char *tu_shared_path(char *buf, size_t n, const char *rel);

#endif
