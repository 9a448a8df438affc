/* The files faceauthd serves as they are (the demo page, the browser SDK,
 * the OpenAPI document), embedded at build time by cmake/web_assets.cmake:
 * the generated table lives in the build directory. Private to daemon/. */
#ifndef FA_DAEMON_WEB_ASSETS_H
#define FA_DAEMON_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path; /* URL path, e.g. "/sdk/faceauth.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

#endif
