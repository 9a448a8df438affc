/* tests/fuzz/fuzz_http_body.c: any bytes as a REST request body (bounded
 * JSON parse: size, depth, duplicate keys) and, NUL-terminated, as a request
 * path for the router: a status or a JSON object out, never a crash. */
#include <assert.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/priv.h"

static void no_respond(void *arg, uint64_t conn_id, struct http_resp *resp)
{
    (void)arg;
    (void)conn_id;
    fa_buf_fini(&resp->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_ctx *h;
    if (h == NULL) {
        struct http_config cfg = {.listen = "127.0.0.1:8000"};
        h = http_new(NULL, &cfg, no_respond, NULL); /* the body parser needs no app */
        assert(h != NULL);
    }
    json_t *o = NULL;
    struct fa_errinfo err = {{0}};
    enum fa_status rc = http_parse_body(h, (struct fa_bytes){data, size}, &o, &err);
    if (rc == FA_OK) {
        assert(json_is_object(o));
        json_decref(o);
    } else {
        assert(rc == FA_ERR_JSON || rc == FA_ERR_TOO_LARGE || rc == FA_ERR_NOMEM);
    }

    char *path = malloc(size + 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, size);
    path[size] = 0;
    char param[HTTP_PARAM_MAX];
    enum http_route_id id;
    bool ok;
    const char *allow;
    if (http_route_match(HTTP_METHOD_GET, path, &id, &ok, &allow, param))
        assert(id != HTTP_ROUTE_NONE && allow != NULL && strlen(param) < HTTP_PARAM_MAX);
    free(path);
    return 0;
}
