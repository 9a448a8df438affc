/* A worker pool: the loop pushes jobs onto `todo`, N threads run them, the
 * finished jobs come back on `done` for the loop to apply. The pool knows no
 * lws: after every finished job it calls a notify callback (the daemon sets it
 * to lws_cancel_service) and the loop drains `done` until it is empty, since
 * wake-ups coalesce. Each worker owns a context made on its own thread (face
 * worker, store connection, ...), never shared. */
#ifndef FA_JOBS_JOBS_H
#define FA_JOBS_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct job;

/* Runs on: a worker, with that worker's context. Returns the job's status
 * (stored in j->rc). */
typedef enum fa_status (*job_run_fn)(struct job *j, void *worker_ctx);
/* Frees the job and everything it owns. Runs on: whichever thread drops it. */
typedef void (*job_free_fn)(struct job *j);

/* Embed this as the first member of your job struct. The job owns its
 * inputs and outputs; it carries ids (conn_id), never a pointer to a
 * connection, since the connection may be gone when the job comes back. */
struct job {
    job_run_fn run;
    job_free_fn free; /* NULL: fa_free(j) */
    uint64_t conn_id; /* free for the submitter's use */
    void *user;       /* free for the submitter's use */
    enum fa_status rc;
    struct job *_next; /* queue link, private to jobs/ */
};

/* Called on a worker after each finished job (and by jobs_pool_free).
 * Must be thread-safe and cheap: lws_cancel_service is the intended one. */
typedef void (*jobs_notify_fn)(void *arg);
/* Make / release a worker's context, on that worker's thread. `idx` is
 * 0..threads-1. ctx_new returning an error makes jobs_pool_new fail. */
typedef enum fa_status (*jobs_ctx_new_fn)(void *arg, unsigned idx, void **ctx);
typedef void (*jobs_ctx_free_fn)(void *arg, void *ctx);

struct jobs_config {
    unsigned threads;          /* >= 1 */
    size_t max_todo;           /* 0: unlimited; else jobs_submit gives FA_ERR_BUSY */
    jobs_ctx_new_fn ctx_new;   /* optional */
    jobs_ctx_free_fn ctx_free; /* optional */
    void *ctx_arg;
    jobs_notify_fn notify; /* optional; may also be set later with jobs_set_notify */
    void *notify_arg;
};

struct jobs_pool;

/* Start the threads and make every worker context (waits until all are made).
 * FA_ERR_ARG (threads 0), FA_ERR_NOMEM, FA_ERR_INTERNAL (thread creation) or
 * the first ctx_new error. Runs on: the owner thread (start-up). */
enum fa_status jobs_pool_new(const struct jobs_config *cfg, struct jobs_pool **out);

/* Replace the notify callback. Call before jobs are submitted (the daemon
 * sets it right after creating the lws context). Runs on: owner/loop. */
void jobs_set_notify(struct jobs_pool *p, jobs_notify_fn fn, void *arg);

/* Queue a job; takes `j` on FA_OK only. FA_ERR_BUSY when max_todo jobs wait,
 * FA_ERR_SHUTDOWN after jobs_pool_shutdown. Runs on: any thread. */
enum fa_status jobs_submit(struct jobs_pool *p, struct job *j);
/* As jobs_submit, but never FA_ERR_BUSY: for small jobs that record state
 * and must not be dropped under load (session writes). */
enum fa_status jobs_submit_unbounded(struct jobs_pool *p, struct job *j);

/* Take one finished job (the caller owns it: apply, then free with
 * job_free), or NULL when none is ready. Runs on: the loop. */
struct job *jobs_done_pop(struct jobs_pool *p);

/* Wait up to timeout_ms (< 0: forever) until a finished job is ready;
 * true if one is. For tests and the CLI, never for the lws loop. */
bool jobs_done_wait(struct jobs_pool *p, int64_t timeout_ms);

/* Jobs submitted and not yet popped from `done` (queued, running, done). */
size_t jobs_in_flight(struct jobs_pool *p);

/* Stop accepting jobs. drain=true: workers finish every queued job first;
 * drain=false: queued jobs that have not started are moved to `done` with
 * rc FA_ERR_SHUTDOWN (never run). Blocks until the threads have exited.
 * Jobs left in `done` stay poppable. Runs on: owner. */
void jobs_pool_shutdown(struct jobs_pool *p, bool drain);

/* Shutdown (no drain) if still running, free every job left in the queues,
 * free the worker contexts (on their threads) and the pool. NULL is fine. */
void jobs_pool_free(struct jobs_pool *p);

/* j->free(j), or fa_free(j) if free is NULL. NULL is fine. */
void job_free(struct job *j);

/* Worker threads of the pool. */
unsigned jobs_threads(const struct jobs_pool *p);

#endif
