/* faceauthd: parse the options, open the app (store, keys, models, workers),
 * serve HTTP and WebSocket until SIGTERM/SIGINT, then stop in order: no new
 * connections, queued work finished (every finished enrollment is durable),
 * sockets closed with 1001, exit 0. */
#include <jansson.h>
#include <stdio.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/log.h"
#include "daemon/daemon.h"
#include "nn/nn.h"

int main(int argc, char **argv)
{
    struct config cfg;
    char err[256];
    switch (config_parse(&cfg, argc, argv, err, sizeof err)) {
    case CONFIG_HELP:
        config_usage(stdout);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "faceauthd: %s\n", err);
        return 2;
    case CONFIG_OK:
        break;
    }
    fa_log_set_level((enum fa_log_level)fa_log_parse_level(cfg.log_level));
    json_set_alloc_funcs(fa_malloc, fa_free);
    signals_install();

    struct app_config ac = {
        .data_dir = cfg.data_dir,
        .models_dir = cfg.models,
        .no_engine = cfg.no_engine,
        .detector = cfg.detector,
        .workers = (unsigned)cfg.workers,
        .session_ttl_s = cfg.session_ttl_s,
        .jwt_ttl_s = cfg.jwt_ttl_s,
        .auth_fail_max = (int)cfg.auth_fail_max,
        .auth_fail_window_s = cfg.auth_fail_window_s,
        .login_fail_max = (int)cfg.login_fail_max,
        .login_fail_window_s = cfg.login_fail_window_s,
        .kdf_m_cost_kib = (uint32_t)cfg.kdf_m_cost_kib,
        .max_image_bytes = (size_t)cfg.max_message_bytes,
    };
    struct nn_backend *be = NULL;
    struct app *app = NULL;
    struct fa_errinfo info = {{0}};
    enum fa_status rc = FA_OK;
    if (!cfg.no_engine) {
        rc = nn_backend_new(NN_BACKEND_FAST, &be);
        if (rc != FA_OK) {
            fa_error("faceauthd: cannot start the neural backend: %s", fa_status_str(rc));
            return 1;
        }
        ac.nn_backend = be;
    }
    signals_block(); /* the app's workers inherit the mask: signals go to the loop */
    rc = app_new(&ac, &app, &info);
    signals_unblock();
    if (rc != FA_OK) {
        fa_error("faceauthd: cannot start: %s%s%s", fa_status_str(rc), info.what[0] ? ": " : "",
                 info.what);
        nn_backend_free(be);
        return 1;
    }
    int code = 1;
    struct server *s = server_new(&cfg, app);
    if (s != NULL) {
        fa_info("operator: create a client with: faceauth client create --data-dir %s --name NAME",
                cfg.data_dir);
        code = server_run(s);
        server_free(s);
    }
    app_free(app);
    nn_backend_free(be);
    fa_info("faceauthd stopped");
    return code;
}
