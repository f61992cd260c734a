/*
 * test_worker_pool.c - work runs off the loop, completions come back on it,
 * urgent jobs go first, and destroying the pool cancels what never ran.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/util.h"
#include "worker/worker_pool.h"

static pthread_t loop_thread;
/* One loop for the whole program: the pool's sockets are freed by the
 * loop's later passes, and every test runs it. */
static h2o_evloop_t *loop;

struct counter {
    int work_runs, done_runs, cancelled;
    int done_on_loop_thread;
    int order[8], order_len;
    pthread_mutex_t mutex;
};

struct job_arg {
    struct counter *c;
    int id;
    sem_t *gate; /* when set, work waits on it */
    unsigned sleep_ms;
};

static void work(void *p)
{
    struct job_arg *a = p;

    if (a->gate != NULL)
        sem_wait(a->gate);
    if (a->sleep_ms)
        usleep(a->sleep_ms * 1000);
    pthread_mutex_lock(&a->c->mutex);
    a->c->work_runs++;
    if (a->c->order_len < 8)
        a->c->order[a->c->order_len++] = a->id;
    pthread_mutex_unlock(&a->c->mutex);
}

static void done(void *p, int cancelled)
{
    struct job_arg *a = p;

    a->c->done_runs++;
    a->c->cancelled += cancelled;
    a->c->done_on_loop_thread += pthread_equal(pthread_self(), loop_thread) != 0;
}

static void run_until(h2o_evloop_t *l, struct counter *c, int done_runs)
{
    uint64_t deadline = talas_now_ms() + 10000;

    while (c->done_runs < done_runs && talas_now_ms() < deadline)
        h2o_evloop_run(l, 100);
}

static void test_completions_on_loop(void **state)
{
    struct counter c = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    struct job_arg args[100];
    char *error = NULL;
    struct talas_pool *pool = talas_pool_create(loop, 2, &error);

    assert_non_null(pool);
    for (int i = 0; i < 100; i++) {
        args[i] = (struct job_arg){&c, i, NULL, 0};
        talas_pool_submit(pool, work, done, &args[i], 0);
    }
    run_until(loop, &c, 100);
    assert_int_equal(c.work_runs, 100);
    assert_int_equal(c.done_runs, 100);
    assert_int_equal(c.done_on_loop_thread, 100);
    assert_int_equal(c.cancelled, 0);
    talas_pool_destroy(pool);
}

static void test_urgent_first(void **state)
{
    struct counter c = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    sem_t gate;
    struct job_arg blocker, a, b, urgent;
    char *error = NULL;
    struct talas_pool *pool = talas_pool_create(loop, 1, &error);

    sem_init(&gate, 0, 0);
    blocker = (struct job_arg){&c, 0, &gate, 0};
    a = (struct job_arg){&c, 1, NULL, 0};
    b = (struct job_arg){&c, 2, NULL, 0};
    urgent = (struct job_arg){&c, 3, NULL, 0};
    talas_pool_submit(pool, work, done, &blocker, 0);
    /* the single thread is now blocked inside the first job */
    while (talas_pool_running(pool) == 0)
        usleep(1000);
    talas_pool_submit(pool, work, done, &a, 0);
    talas_pool_submit(pool, work, done, &b, 0);
    talas_pool_submit(pool, work, done, &urgent, 1);
    assert_int_equal(talas_pool_queued(pool), 3);
    sem_post(&gate);
    run_until(loop, &c, 4);
    assert_int_equal(c.order_len, 4);
    assert_int_equal(c.order[0], 0);
    assert_int_equal(c.order[1], 3);
    assert_int_equal(c.order[2], 1);
    assert_int_equal(c.order[3], 2);
    talas_pool_destroy(pool);
    sem_destroy(&gate);
}

struct tick {
    h2o_timeout_entry_t entry;
    int fired;
    uint64_t at;
};

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct tick *t = H2O_STRUCT_FROM_MEMBER(struct tick, entry, entry);

    t->fired = 1;
    t->at = talas_now_ms();
}

static void test_loop_stays_responsive(void **state)
{
    struct counter c = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    struct job_arg slow = {&c, 0, NULL, 300};
    struct tick tick = {.fired = 0};
    h2o_timeout_t timeout;
    char *error = NULL;
    struct talas_pool *pool = talas_pool_create(loop, 1, &error);
    uint64_t start;

    h2o_timeout_init(loop, &timeout, 20);
    tick.entry.cb = on_tick;
    talas_pool_submit(pool, work, done, &slow, 0);
    start = talas_now_ms();
    h2o_timeout_link(loop, &timeout, &tick.entry);
    while (!tick.fired && talas_now_ms() - start < 2000)
        h2o_evloop_run(loop, 10);
    /* a 20 ms timer fires while a 300 ms job runs */
    assert_true(tick.fired);
    assert_true(tick.at - start < 150);
    assert_int_equal(c.done_runs, 0);
    run_until(loop, &c, 1);
    assert_int_equal(c.done_runs, 1);
    talas_pool_destroy(pool);
}

static void test_destroy_cancels_queued(void **state)
{
    struct counter c = {.mutex = PTHREAD_MUTEX_INITIALIZER};
    struct job_arg slow = {&c, 0, NULL, 100}, queued[5];
    char *error = NULL;
    struct talas_pool *pool = talas_pool_create(loop, 1, &error);

    talas_pool_submit(pool, work, done, &slow, 0);
    while (talas_pool_running(pool) == 0)
        usleep(1000);
    for (int i = 0; i < 5; i++) {
        queued[i] = (struct job_arg){&c, i + 1, NULL, 0};
        talas_pool_submit(pool, work, done, &queued[i], 0);
    }
    talas_pool_destroy(pool);
    /* the running job finished; the five queued ones never ran */
    assert_int_equal(c.work_runs, 1);
    assert_int_equal(c.done_runs, 6);
    assert_int_equal(c.cancelled, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completions_on_loop),
        cmocka_unit_test(test_urgent_first),
        cmocka_unit_test(test_loop_stays_responsive),
        cmocka_unit_test(test_destroy_cancels_queued),
    };
    loop_thread = pthread_self();
    loop = h2o_evloop_create();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
