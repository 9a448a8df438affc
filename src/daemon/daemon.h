/* The daemon's parts, private to daemon/: the lws server (server.c) and the
 * signal handling (signals.c). */
#ifndef FA_DAEMON_DAEMON_H
#define FA_DAEMON_DAEMON_H

#include <stdbool.h>

#include "daemon/config.h"

struct app;
struct lws_context;
struct server;

/* Build the lws context (HTTP + WebSocket on one port, TLS when configured)
 * around a running app (borrowed; must outlive the server) and log the
 * address it listens on. NULL on failure (logged). Runs on: main = loop. */
struct server *server_new(const struct config *cfg, struct app *app);
/* Serve until a stop signal has been handled: stop accepting, let the app
 * finish its queued work and the replies go out, close every socket with
 * 1001, write what is queued. Returns 0 on a clean stop. Runs on: loop. */
int server_run(struct server *s);
/* Destroy the context (closing whatever is left). NULL is fine. */
void server_free(struct server *s);

/* Install SIGTERM/SIGINT handlers (stop) and ignore SIGPIPE. */
void signals_install(void);
/* Block / unblock SIGTERM and SIGINT in the calling thread. main blocks them
 * while the app starts its workers (which inherit the mask), then unblocks:
 * the signals then always land on the loop thread. */
void signals_block(void);
void signals_unblock(void);
/* The context to wake from the handler (NULL: none yet). */
void signals_set_context(struct lws_context *ctx);
/* True once SIGTERM or SIGINT has arrived. Runs on: any. */
bool signals_stop_requested(void);

#endif
