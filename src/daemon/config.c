/* faceauthd's options from one table: each row names the option, its
 * FACEAUTH_* variable, its type and range, and where it lands in struct
 * config, so --help, the environment and the command line cannot drift. */
#include "daemon/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

enum opt_type { OPT_STR, OPT_INT, OPT_FLAG, OPT_LEVEL };

struct opt {
    const char *name; /* without "--" */
    const char *env;
    enum opt_type type;
    size_t off;
    int64_t min, max;
    const char *arg, *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct opt opts[] = {
    {"listen", "FACEAUTH_LISTEN", OPT_STR, OFF(listen), 0, 0, "HOST:PORT",
     "address to serve HTTP and WebSocket on (default 127.0.0.1:8000; port 0: any free port)"},
    {"data-dir", "FACEAUTH_DATA_DIR", OPT_STR, OFF(data_dir), 0, 0, "DIR",
     "database, master key and JWT key (default ./data)"},
    {"public-url", "FACEAUTH_PUBLIC_URL", OPT_STR, OFF(public_url), 0, 0, "URL",
     "base of websocket_url, e.g. https://auth.example.com (default: the request's Host)"},
    {"session-ttl", "FACEAUTH_SESSION_TTL", OPT_INT, OFF(session_ttl_s), 1, 86400, "SECONDS",
     "session lifetime (default 300)"},
    {"workers", "FACEAUTH_WORKERS", OPT_INT, OFF(workers), 0, 256, "N",
     "worker threads for frames, logins and storage (default: number of cores)"},
    {"tls-cert", "FACEAUTH_TLS_CERT", OPT_STR, OFF(tls_cert), 0, 0, "FILE",
     "PEM certificate: serve HTTPS and wss://"},
    {"tls-key", "FACEAUTH_TLS_KEY", OPT_STR, OFF(tls_key), 0, 0, "FILE",
     "PEM private key of --tls-cert"},
    {"log-level", "FACEAUTH_LOG_LEVEL", OPT_LEVEL, OFF(log_level), 0, 0, "LEVEL",
     "debug, info (default), warn, error or off"},
    {"models", "FACEAUTH_MODELS", OPT_STR, OFF(models), 0, 0, "DIR",
     "model directory (default: ./models)"},
    {"detector", "FACEAUTH_DETECTOR", OPT_STR, OFF(detector), 0, 0, "NAME",
     "face detector: ssd (default), tiny or blazeface"},
    {"max-message", "FACEAUTH_MAX_MESSAGE", OPT_INT, OFF(max_message_bytes), 1024, 64 * 1024 * 1024,
     "BYTES", "largest WebSocket message; larger closes 4400 (default 2097152)"},
    {"frame-interval", "FACEAUTH_FRAME_INTERVAL", OPT_INT, OFF(frame_interval_ms), 1, 10000, "MS",
     "minimum interval between frames of a session (default 100: 10 fps)"},
    {"frame-jitter", "FACEAUTH_FRAME_JITTER", OPT_INT, OFF(frame_jitter_ms), 0, 1000, "MS",
     "how early a frame may come for its slot (default 25; 0: strictly the interval)"},
    {"jwt-ttl", "FACEAUTH_JWT_TTL", OPT_INT, OFF(jwt_ttl_s), 1, 30 * 86400, "SECONDS",
     "lifetime of client JWTs (default 3600)"},
    {"auth-fail-max", "FACEAUTH_AUTH_FAIL_MAX", OPT_INT, OFF(auth_fail_max), 1, 1000, "N",
     "failed authentications of a user_id that block new sessions (default 5)"},
    {"auth-fail-window", "FACEAUTH_AUTH_FAIL_WINDOW", OPT_INT, OFF(auth_fail_window_s), 1, 86400,
     "SECONDS", "... within this window (default 180)"},
    {"login-fail-max", "FACEAUTH_LOGIN_FAIL_MAX", OPT_INT, OFF(login_fail_max), 1, 1000, "N",
     "failed client logins per IP and per api_key before 429 (default 5)"},
    {"login-fail-window", "FACEAUTH_LOGIN_FAIL_WINDOW", OPT_INT, OFF(login_fail_window_s), 1, 86400,
     "SECONDS", "... within this window (default 180)"},
    {"kdf-memory", "FACEAUTH_KDF_MEMORY", OPT_INT, OFF(kdf_m_cost_kib), 8, 4 * 1024 * 1024, "KIB",
     "argon2id memory for new key hashes (default 65536)"},
    {"no-engine", "FACEAUTH_NO_ENGINE", OPT_FLAG, OFF(no_engine), 0, 0, NULL,
     "load no face models (REST only; frames fail with 4500)"},
    {"demo", "FACEAUTH_DEMO", OPT_FLAG, OFF(demo), 0, 0, NULL,
     "serve the demo page at /demo/ with a built-in demo client (not for production)"},
};

void config_usage(FILE *f)
{
    fputs("usage: faceauthd [options]\n"
          "Face enrollment and authentication server: REST and WebSocket on one port.\n"
          "Every option can also be set by its environment variable; the command line wins.\n\n",
          f);
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        const struct opt *o = &opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-28s %s\n  %-28s [%s]\n", left, o->help, "", o->env);
    }
    fputs("  --help                       this text\n", f);
}

bool config_split_listen(const char *listen, char host[64], int *port)
{
    const char *p;
    size_t hl;
    if (listen == NULL || listen[0] == 0)
        return false;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return false;
        hl = (size_t)(close - listen - 1);
        if (hl == 0 || hl >= 64)
            return false;
        memcpy(host, listen + 1, hl);
        host[hl] = 0;
        p = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL) {
            host[0] = 0;
            p = listen;
        } else {
            hl = (size_t)(colon - listen);
            if (hl >= 64 || memchr(listen, ':', hl) != NULL)
                return false;
            memcpy(host, listen, hl);
            host[hl] = 0;
            p = colon + 1;
        }
    }
    if (*p == 0)
        return false;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno != 0 || *end != 0 || v < 0 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

static bool set_value(struct config *c, const struct opt *o, const char *v, const char *origin,
                      char *err, size_t errlen)
{
    char *field = (char *)c + o->off;
    switch (o->type) {
    case OPT_STR:
        if (v[0] == 0) {
            snprintf(err, errlen, "%s: --%s needs a value", origin, o->name);
            return false;
        }
        *(const char **)field = v;
        return true;
    case OPT_LEVEL:
        if (fa_log_parse_level(v) < 0) {
            snprintf(err, errlen, "%s: --%s: unknown level '%s'", origin, o->name, v);
            return false;
        }
        *(const char **)field = v;
        return true;
    case OPT_FLAG:
        if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
            *(bool *)field = true;
        } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s: --%s: expected 1/0, true/false or yes/no", origin, o->name);
            return false;
        }
        return true;
    case OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != 0 || x < o->min || x > o->max) {
            snprintf(err, errlen, "%s: --%s: expected an integer from %lld to %lld, got '%s'",
                     origin, o->name, (long long)o->min, (long long)o->max, v);
            return false;
        }
        *(int64_t *)field = x;
        return true;
    }
    }
    return false;
}

enum config_result config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    *c = (struct config){
        .listen = "127.0.0.1:8000",
        .data_dir = "./data",
        .session_ttl_s = 300,
        .log_level = "info",
        .max_message_bytes = 2 * 1024 * 1024,
        .frame_interval_ms = 100,
        .frame_jitter_ms = 25,
    };
    const size_t n = sizeof opts / sizeof opts[0];
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(opts[i].env);
        if (v != NULL && v[0] != 0 && !set_value(c, &opts[i], v, opts[i].env, err, errlen))
            return CONFIG_ERROR;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CONFIG_HELP;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return CONFIG_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t i = 0; i < n; i++)
            if (strlen(opts[i].name) == nl && strncmp(opts[i].name, name, nl) == 0)
                o = &opts[i];
        if (o == NULL) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
            return CONFIG_ERROR;
        }
        const char *v;
        if (eq != NULL)
            v = eq + 1;
        else if (o->type == OPT_FLAG)
            v = "1";
        else if (a + 1 < argc)
            v = argv[++a];
        else {
            snprintf(err, errlen, "option --%s needs a value", o->name);
            return CONFIG_ERROR;
        }
        if (!set_value(c, o, v, "command line", err, errlen))
            return CONFIG_ERROR;
    }
    if (!config_split_listen(c->listen, c->host, &c->port)) {
        snprintf(err, errlen, "--listen: expected HOST:PORT, [V6]:PORT or PORT, got '%s'",
                 c->listen);
        return CONFIG_ERROR;
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return CONFIG_ERROR;
    }
    if (c->frame_jitter_ms >= c->frame_interval_ms) {
        snprintf(err, errlen, "--frame-jitter must be below --frame-interval");
        return CONFIG_ERROR;
    }
    if (c->public_url != NULL && strncmp(c->public_url, "http://", 7) != 0 &&
        strncmp(c->public_url, "https://", 8) != 0 && strncmp(c->public_url, "ws://", 5) != 0 &&
        strncmp(c->public_url, "wss://", 6) != 0) {
        snprintf(err, errlen, "--public-url must start with http://, https://, ws:// or wss://");
        return CONFIG_ERROR;
    }
    return CONFIG_OK;
}
