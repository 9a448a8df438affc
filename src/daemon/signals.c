/* SIGTERM / SIGINT: the handler only sets a flag and wakes the lws loop with
 * lws_cancel_service (an eventfd write, async-signal-safe); the loop sees the
 * flag on LWS_CALLBACK_EVENT_WAIT_CANCELLED and shuts down in order. Every
 * worker blocks them (signals_block before the app starts), so the loop
 * thread takes them. SIGPIPE is ignored: a vanished peer is an error
 * return, not a death. */
#include "daemon/daemon.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_bool stop_requested;
static _Atomic(struct lws_context *) wake_ctx;

static void on_stop(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, true);
    struct lws_context *ctx = atomic_load(&wake_ctx);
    if (ctx != NULL)
        lws_cancel_service(ctx);
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

void signals_set_context(struct lws_context *ctx)
{
    atomic_store(&wake_ctx, ctx);
}

bool signals_stop_requested(void)
{
    return atomic_load(&stop_requested);
}

static void set_mask(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(how, &set, NULL);
}

void signals_block(void)
{
    set_mask(SIG_BLOCK);
}

void signals_unblock(void)
{
    set_mask(SIG_UNBLOCK);
}
