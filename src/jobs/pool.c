/* The worker pool: one mutex guards both FIFO queues (todo, done); workers
 * sleep on todo_cv, tests and the CLI on done_cv, the lws loop is woken by the
 * notify callback instead. Each worker makes its context on its own thread at
 * start and frees it there at exit, so thread-affine state (a sqlite3*, an
 * arena) never crosses threads. Queues are intrusive lists (job._next): no
 * allocation per job inside the pool. */
#include "jobs/jobs.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"

struct jobq {
    struct job *head, *tail;
    size_t n;
};

struct worker {
    struct jobs_pool *pool;
    unsigned idx;
    pthread_t thread;
    bool started;
    void *ctx;
};

struct jobs_pool {
    pthread_mutex_t mu;
    pthread_cond_t todo_cv; /* {mu} todo non-empty or stopping */
    pthread_cond_t done_cv; /* {mu} done non-empty */
    pthread_cond_t init_cv; /* {mu} a worker finished making its context */
    struct jobq todo;       /* {mu} */
    struct jobq done;       /* {mu} */
    size_t running;         /* {mu} jobs taken by workers, not yet in done */
    bool stopping;          /* {mu} */
    bool joined;
    unsigned inited;        /* {mu} workers past ctx_new */
    enum fa_status init_rc; /* {mu} first ctx_new failure */
    jobs_notify_fn notify;  /* {mu} */
    void *notify_arg;       /* {mu} */
    struct jobs_config cfg;
    unsigned nthreads;
    struct worker *w;
};

static void q_push(struct jobq *q, struct job *j)
{
    j->_next = NULL;
    if (q->tail != NULL)
        q->tail->_next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
}

static struct job *q_pop(struct jobq *q)
{
    struct job *j = q->head;
    if (j == NULL)
        return NULL;
    q->head = j->_next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    j->_next = NULL;
    return j;
}

void job_free(struct job *j)
{
    if (j == NULL)
        return;
    if (j->free != NULL)
        j->free(j);
    else
        fa_free(j);
}

static void notify_loop(struct jobs_pool *p)
{
    pthread_mutex_lock(&p->mu);
    jobs_notify_fn fn = p->notify;
    void *arg = p->notify_arg;
    pthread_mutex_unlock(&p->mu);
    if (fn != NULL)
        fn(arg);
}

/* Runs on: worker. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct jobs_pool *p = w->pool;
    enum fa_status rc = FA_OK;
    if (p->cfg.ctx_new != NULL)
        rc = p->cfg.ctx_new(p->cfg.ctx_arg, w->idx, &w->ctx);
    pthread_mutex_lock(&p->mu);
    p->inited++;
    if (rc != FA_OK && p->init_rc == FA_OK)
        p->init_rc = rc;
    pthread_cond_broadcast(&p->init_cv);
    for (;;) {
        while (p->todo.n == 0 && !p->stopping)
            pthread_cond_wait(&p->todo_cv, &p->mu);
        struct job *j = q_pop(&p->todo);
        if (j == NULL) /* stopping and nothing left */
            break;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->rc = j->run(j, w->ctx);
        pthread_mutex_lock(&p->mu);
        p->running--;
        q_push(&p->done, j);
        pthread_cond_broadcast(&p->done_cv);
        jobs_notify_fn fn = p->notify;
        void *narg = p->notify_arg;
        pthread_mutex_unlock(&p->mu);
        if (fn != NULL)
            fn(narg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (p->cfg.ctx_free != NULL && w->ctx != NULL)
        p->cfg.ctx_free(p->cfg.ctx_arg, w->ctx);
    w->ctx = NULL;
    return NULL;
}

enum fa_status jobs_pool_new(const struct jobs_config *cfg, struct jobs_pool **out)
{
    if (cfg == NULL || cfg->threads == 0 || cfg->threads > 1024)
        return FA_ERR_ARG;
    struct jobs_pool *p = fa_calloc(1, sizeof *p);
    if (p == NULL)
        return FA_ERR_NOMEM;
    p->w = fa_calloc(cfg->threads, sizeof *p->w);
    if (p->w == NULL) {
        fa_free(p);
        return FA_ERR_NOMEM;
    }
    p->cfg = *cfg;
    p->notify = cfg->notify;
    p->notify_arg = cfg->notify_arg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->todo_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    pthread_cond_init(&p->init_cv, NULL);
    enum fa_status rc = FA_OK;
    for (unsigned i = 0; i < cfg->threads; i++) {
        p->w[i].pool = p;
        p->w[i].idx = i;
        if (pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]) != 0) {
            rc = FA_ERR_INTERNAL;
            break;
        }
        p->w[i].started = true;
        p->nthreads++;
    }
    pthread_mutex_lock(&p->mu);
    while (p->inited < p->nthreads)
        pthread_cond_wait(&p->init_cv, &p->mu);
    if (rc == FA_OK)
        rc = p->init_rc;
    pthread_mutex_unlock(&p->mu);
    if (rc != FA_OK) {
        jobs_pool_free(p);
        return rc;
    }
    *out = p;
    return FA_OK;
}

void jobs_set_notify(struct jobs_pool *p, jobs_notify_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    p->notify = fn;
    p->notify_arg = arg;
    pthread_mutex_unlock(&p->mu);
}

static enum fa_status submit(struct jobs_pool *p, struct job *j, bool bounded)
{
    if (p == NULL || j == NULL || j->run == NULL)
        return FA_ERR_ARG;
    pthread_mutex_lock(&p->mu);
    enum fa_status rc = FA_OK;
    if (p->stopping)
        rc = FA_ERR_SHUTDOWN;
    else if (bounded && p->cfg.max_todo != 0 && p->todo.n >= p->cfg.max_todo)
        rc = FA_ERR_BUSY;
    else {
        j->rc = FA_OK;
        q_push(&p->todo, j);
        pthread_cond_signal(&p->todo_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

enum fa_status jobs_submit(struct jobs_pool *p, struct job *j)
{
    return submit(p, j, true);
}

enum fa_status jobs_submit_unbounded(struct jobs_pool *p, struct job *j)
{
    return submit(p, j, false);
}

struct job *jobs_done_pop(struct jobs_pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct job *j = q_pop(&p->done);
    pthread_mutex_unlock(&p->mu);
    return j;
}

bool jobs_done_wait(struct jobs_pool *p, int64_t timeout_ms)
{
    int64_t deadline = fa_wall_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&p->mu);
    while (p->done.n == 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&p->done_cv, &p->mu);
            continue;
        }
        int64_t now = fa_wall_ms();
        if (now >= deadline)
            break;
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000};
        pthread_cond_timedwait(&p->done_cv, &p->mu, &ts);
    }
    bool ready = p->done.n > 0;
    pthread_mutex_unlock(&p->mu);
    return ready;
}

size_t jobs_in_flight(struct jobs_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->todo.n + p->running + p->done.n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void jobs_pool_shutdown(struct jobs_pool *p, bool drain)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    if (!drain) {
        struct job *j;
        while ((j = q_pop(&p->todo)) != NULL) {
            j->rc = FA_ERR_SHUTDOWN;
            q_push(&p->done, j);
        }
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_cond_broadcast(&p->todo_cv);
    bool join = !p->joined;
    p->joined = true;
    pthread_mutex_unlock(&p->mu);
    if (join) {
        for (unsigned i = 0; i < p->cfg.threads; i++)
            if (p->w[i].started)
                pthread_join(p->w[i].thread, NULL);
    }
    notify_loop(p);
}

void jobs_pool_free(struct jobs_pool *p)
{
    if (p == NULL)
        return;
    jobs_pool_shutdown(p, false);
    struct job *j;
    while ((j = q_pop(&p->done)) != NULL)
        job_free(j);
    while ((j = q_pop(&p->todo)) != NULL)
        job_free(j);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->todo_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->init_cv);
    fa_free(p->w);
    fa_free(p);
}

unsigned jobs_threads(const struct jobs_pool *p)
{
    return p->nthreads;
}
