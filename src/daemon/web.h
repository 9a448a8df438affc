/* What faceauthd serves besides the REST API (web.c): the embedded files
 * (/sdk/faceauth.js, /api/openapi.yaml, and /demo/ with --demo) and, with
 * --demo, the demo backend (/demo/api/...), where the server plays the
 * backend of a built-in demo client so that the demo page holds no secret.
 * Private to daemon/. Runs on: loop, everything. */
#ifndef FA_DAEMON_WEB_H
#define FA_DAEMON_WEB_H

#include <stdbool.h>

#include "daemon/config.h"
#include "http/http.h"

struct app;
struct web;

/* `app` and `cfg` are borrowed and outlive the web. With cfg->demo, opens
 * or creates the demo client (its keys in data_dir/demo-client.json, mode
 * 0600) through the app's admin functions: call before the loop runs.
 * NULL on failure (logged). */
struct web *web_new(struct app *app, const struct config *cfg, http_respond_fn respond,
                    void *respond_arg);
void web_free(struct web *w);

/* Take the request if it is ours: then `respond` is called exactly once for
 * req->conn_id, now or later from app_poll, and true is returned. */
bool web_handle(struct web *w, const struct http_req *req);

/* A static route name for the access log ("static", "demo_api"), NULL when
 * the path is not ours. */
const char *web_route_name(const struct web *w, const char *path);

#endif
