/* faceauthd's options: defaults, then FACEAUTH_* environment variables, then
 * the command line (later wins). Private to daemon/. */
#ifndef FA_DAEMON_CONFIG_H
#define FA_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
    const char *listen;     /* "127.0.0.1:8000" */
    char host[64];          /* from listen: "" = every interface */
    int port;               /* from listen: 0 = any free port (logged) */
    const char *data_dir;   /* "./data" */
    const char *public_url; /* NULL: from the Host header / listen */
    int64_t session_ttl_s;  /* 300 */
    int64_t workers;        /* 0: number of online CPUs */
    const char *tls_cert, *tls_key;
    const char *log_level;     /* "info" */
    const char *models;        /* NULL: the app's default */
    const char *detector;      /* NULL: the app's default (ssd) */
    int64_t max_message_bytes; /* 2 MiB */
    int64_t frame_interval_ms; /* 100 */
    int64_t frame_jitter_ms;   /* 25: a frame may come this early for its slot; 0 strict */
    int64_t jwt_ttl_s;         /* 0: the app's default (3600) */
    int64_t auth_fail_max, auth_fail_window_s;   /* 0: app defaults (5, 180) */
    int64_t login_fail_max, login_fail_window_s; /* 0: app defaults (5, 180) */
    int64_t kdf_m_cost_kib;                      /* 0: the app's default (64 MiB) */
    bool no_engine;                              /* load no models (REST-only tests) */
    bool demo; /* serve /demo/ and its backend for a built-in demo client */
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

/* Defaults, then the environment (getenv), then argv ("--name value" or
 * "--name=value"). Strings point into argv or the environment. CONFIG_ERROR
 * writes a message to err. Runs on: main, at start-up. */
enum config_result config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* Split "host:port", "[v6]:port", ":port" or "port". False if malformed. */
bool config_split_listen(const char *listen, char host[64], int *port);

/* The --help text. */
void config_usage(FILE *f);

#endif
