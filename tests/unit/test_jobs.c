/* jobs/: the pool runs jobs on several threads with per-thread contexts,
 * hands them back in `done`, notifies, bounds its queue and shuts down with
 * or without draining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "base/alloc.h"
#include "jobs/jobs.h"

struct wctx {
    pthread_t made_on;
    unsigned idx;
};

struct tjob {
    struct job base;
    int in;
    int out;
    unsigned ran_on_idx;
    bool ctx_thread_ok;
    int sleep_us;
};

static atomic_int ctx_made, ctx_freed, notified;

static enum fa_status ctx_new(void *arg, unsigned idx, void **ctx)
{
    (void)arg;
    struct wctx *w = fa_calloc(1, sizeof *w);
    if (w == NULL)
        return FA_ERR_NOMEM;
    w->made_on = pthread_self();
    w->idx = idx;
    *ctx = w;
    atomic_fetch_add(&ctx_made, 1);
    return FA_OK;
}

static void ctx_free(void *arg, void *ctx)
{
    (void)arg;
    struct wctx *w = ctx;
    assert_true(pthread_equal(w->made_on, pthread_self())); /* freed on its own thread */
    fa_free(w);
    atomic_fetch_add(&ctx_freed, 1);
}

static enum fa_status ctx_fail(void *arg, unsigned idx, void **ctx)
{
    (void)arg;
    (void)ctx;
    return idx == 1 ? FA_ERR_MODEL_MISSING : ctx_new(NULL, idx, ctx);
}

static void notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notified, 1);
}

static enum fa_status run(struct job *j, void *ctx)
{
    struct tjob *t = (struct tjob *)j;
    struct wctx *w = ctx;
    if (t->sleep_us > 0) {
        struct timespec ts = {0, t->sleep_us * 1000L};
        nanosleep(&ts, NULL);
    }
    t->out = t->in * t->in;
    t->ran_on_idx = w->idx;
    t->ctx_thread_ok = pthread_equal(w->made_on, pthread_self());
    return t->in % 7 == 0 ? FA_ERR_ARG : FA_OK;
}

static struct tjob *tjob(int in, int sleep_us)
{
    struct tjob *t = fa_calloc(1, sizeof *t);
    assert_non_null(t);
    t->base.run = run;
    t->in = in;
    t->sleep_us = sleep_us;
    return t;
}

static void reset(void)
{
    atomic_store(&ctx_made, 0);
    atomic_store(&ctx_freed, 0);
    atomic_store(&notified, 0);
}

static void test_runs_jobs_across_threads(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {
        .threads = 4, .ctx_new = ctx_new, .ctx_free = ctx_free, .notify = notify};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_OK);
    assert_int_equal(atomic_load(&ctx_made), 4);
    assert_int_equal(jobs_threads(p), 4);
    enum { N = 200 };
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs_submit(p, &tjob(i, 500)->base), FA_OK);
    int seen[N] = {0}, per_worker[4] = {0}, got = 0;
    while (got < N) {
        assert_true(jobs_done_wait(p, 10000));
        struct job *j;
        while ((j = jobs_done_pop(p)) != NULL) {
            struct tjob *t = (struct tjob *)j;
            assert_int_equal(t->out, t->in * t->in);
            assert_int_equal(j->rc, t->in % 7 == 0 ? FA_ERR_ARG : FA_OK);
            assert_true(t->ctx_thread_ok);
            seen[t->in]++;
            per_worker[t->ran_on_idx]++;
            got++;
            job_free(j);
        }
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    int busy_workers = 0;
    for (int w = 0; w < 4; w++)
        busy_workers += per_worker[w] > 0;
    assert_true(busy_workers >= 2); /* the work really was spread */
    assert_int_equal(jobs_in_flight(p), 0);
    assert_null(jobs_done_pop(p));
    assert_false(jobs_done_wait(p, 20)); /* timeout */
    jobs_pool_free(p);
    assert_int_equal(atomic_load(&ctx_freed), 4);
    /* one wake-up per finished job (sent after it is in `done`), one at shutdown */
    assert_int_equal(atomic_load(&notified), N + 1);
}

static void test_queue_limit(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {
        .threads = 1, .max_todo = 2, .ctx_new = ctx_new, .ctx_free = ctx_free};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_OK);
    /* One long job keeps the worker busy; then two queue, the third is refused. */
    assert_int_equal(jobs_submit(p, &tjob(1, 200000)->base), FA_OK);
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL); /* the worker has taken job 1 */
    assert_int_equal(jobs_submit(p, &tjob(2, 0)->base), FA_OK);
    assert_int_equal(jobs_submit(p, &tjob(3, 0)->base), FA_OK);
    struct tjob *extra = tjob(4, 0);
    assert_int_equal(jobs_submit(p, &extra->base), FA_ERR_BUSY);
    job_free(&extra->base); /* not taken on failure */
    /* A state-recording job is never refused for load. */
    assert_int_equal(jobs_submit_unbounded(p, &tjob(6, 0)->base), FA_OK);
    jobs_pool_shutdown(p, true); /* drain: all four run */
    int n = 0;
    struct job *j;
    while ((j = jobs_done_pop(p)) != NULL) {
        assert_int_equal(j->rc, FA_OK);
        n++;
        job_free(j);
    }
    assert_int_equal(n, 4);
    struct tjob *late = tjob(5, 0);
    assert_int_equal(jobs_submit(p, &late->base), FA_ERR_SHUTDOWN);
    assert_int_equal(jobs_submit_unbounded(p, &late->base), FA_ERR_SHUTDOWN);
    job_free(&late->base);
    jobs_pool_free(p);
    assert_int_equal(atomic_load(&ctx_freed), 1);
}

static void test_shutdown_without_drain(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {.threads = 1, .ctx_new = ctx_new, .ctx_free = ctx_free};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_OK);
    assert_int_equal(jobs_submit(p, &tjob(1, 100000)->base), FA_OK);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL); /* the worker is inside job 1 */
    for (int i = 2; i < 12; i++)
        assert_int_equal(jobs_submit(p, &tjob(i, 0)->base), FA_OK);
    jobs_pool_shutdown(p, false);
    int ran = 0, cancelled = 0;
    struct job *j;
    while ((j = jobs_done_pop(p)) != NULL) {
        struct tjob *t = (struct tjob *)j;
        if (j->rc == FA_ERR_SHUTDOWN) {
            assert_int_equal(t->out, 0); /* never ran */
            cancelled++;
        } else {
            ran++;
        }
        job_free(j);
    }
    assert_int_equal(ran, 1);
    assert_int_equal(cancelled, 10);
    jobs_pool_free(p);
}

static void test_free_with_jobs_left(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {.threads = 2, .ctx_new = ctx_new, .ctx_free = ctx_free};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(jobs_submit(p, &tjob(i, 100)->base), FA_OK);
    jobs_pool_free(p); /* frees what is left in both queues (ASan checks leaks) */
    assert_int_equal(atomic_load(&ctx_freed), 2);
}

static void test_ctx_failure(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {.threads = 3, .ctx_new = ctx_fail, .ctx_free = ctx_free};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_ERR_MODEL_MISSING);
    assert_null(p);
    assert_int_equal(atomic_load(&ctx_freed), 2); /* the two made are freed */
    struct jobs_config bad = {.threads = 0};
    assert_int_equal(jobs_pool_new(&bad, &p), FA_ERR_ARG);
}

static enum fa_status run_noctx(struct job *j, void *ctx)
{
    assert_null(ctx);
    ((struct tjob *)j)->out = 1;
    return FA_OK;
}

static void test_set_notify(void **state)
{
    (void)state;
    reset();
    struct jobs_config cfg = {.threads = 2};
    struct jobs_pool *p = NULL;
    assert_int_equal(jobs_pool_new(&cfg, &p), FA_OK);
    jobs_set_notify(p, notify, NULL);
    for (int i = 0; i < 5; i++) {
        struct tjob *t = tjob(i, 0);
        t->base.run = run_noctx;
        assert_int_equal(jobs_submit(p, &t->base), FA_OK);
    }
    jobs_pool_shutdown(p, true);
    assert_int_equal(atomic_load(&notified), 6);
    assert_int_equal(jobs_in_flight(p), 5); /* done, not yet popped */
    jobs_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_jobs_across_threads),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_shutdown_without_drain),
        cmocka_unit_test(test_free_with_jobs_left),
        cmocka_unit_test(test_ctx_failure),
        cmocka_unit_test(test_set_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
