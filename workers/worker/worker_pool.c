/*
 * worker_pool.c - a worker's threads for work that must not run on its
 * event loop (see worker_pool.h).
 *
 * Entry points: talas_pool_create, talas_pool_submit, talas_pool_queued,
 * talas_pool_running, talas_pool_destroy. Jobs wait in one queue (urgent
 * ones at its head); a finished job moves to the done list and a byte on a
 * pipe wakes the loop, whose read callback runs the DONE callbacks. The
 * pipe is the only thing the threads and the loop share besides the two
 * lists under one mutex. Logs only failures to start threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "worker/worker_pool.h"

struct job {
    struct job *next;
    talas_pool_work_fn work;
    talas_pool_done_fn done;
    void *arg;
};

struct talas_pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct job *queue_head, **queue_tail;
    struct job *done_head, **done_tail;
    size_t queued, running;
    int stopping;
    pthread_t *threads;
    unsigned thread_count;
    int wake[2];
    h2o_socket_t *wake_sock;
};

static void *thread_main(void *arg)
{
    struct talas_pool *pool = arg;

    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        struct job *job;

        while (pool->queue_head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->mutex);
        if (pool->stopping)
            break;
        job = pool->queue_head;
        if ((pool->queue_head = job->next) == NULL)
            pool->queue_tail = &pool->queue_head;
        pool->queued--;
        pool->running++;
        pthread_mutex_unlock(&pool->mutex);

        job->work(job->arg);

        pthread_mutex_lock(&pool->mutex);
        pool->running--;
        job->next = NULL;
        *pool->done_tail = job;
        pool->done_tail = &job->next;
        /* a full pipe already holds a wake-up */
        if (write(pool->wake[1], "", 1) == -1 && errno != EAGAIN)
            log_error("%s: write() to the loop failed: %s", __func__, strerror(errno));
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

static void run_done(struct talas_pool *pool)
{
    struct job *list;

    pthread_mutex_lock(&pool->mutex);
    list = pool->done_head;
    pool->done_head = NULL;
    pool->done_tail = &pool->done_head;
    pthread_mutex_unlock(&pool->mutex);
    while (list != NULL) {
        struct job *job = list;
        list = job->next;
        job->done(job->arg, 0);
        free(job);
    }
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    struct talas_pool *pool = sock->data;

    h2o_buffer_consume(&sock->input, sock->input->size);
    run_done(pool);
}

struct talas_pool *talas_pool_create(h2o_loop_t *loop, unsigned threads, char **error_r)
{
    struct talas_pool *pool = xcalloc(1, sizeof(*pool));
    sigset_t all, old;
    int rc;

    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->queue_tail = &pool->queue_head;
    pool->done_tail = &pool->done_head;
    if (pipe2(pool->wake, O_CLOEXEC | O_NONBLOCK) == -1) {
        *error_r = xasprintf("pipe2() failed: %s", strerror(errno));
        free(pool);
        return NULL;
    }
    pool->wake_sock = h2o_evloop_socket_create(loop, pool->wake[0], 0);
    pool->wake_sock->data = pool;
    h2o_socket_read_start(pool->wake_sock, on_wake);

    pool->threads = xcalloc(threads, sizeof(pthread_t));
    /* the threads inherit this mask: signals are for the loop's thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < threads; i++) {
        if ((rc = pthread_create(&pool->threads[i], NULL, thread_main, pool)) != 0) {
            log_error("%s: pthread_create() failed: %s", __func__, strerror(rc));
            break;
        }
        pool->thread_count++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->thread_count == 0) {
        *error_r = xstrdup("no pool thread could be started");
        talas_pool_destroy(pool);
        return NULL;
    }
    return pool;
}

void talas_pool_submit(struct talas_pool *pool, talas_pool_work_fn work, talas_pool_done_fn done, void *arg,
                       int urgent)
{
    struct job *job = xmalloc(sizeof(*job));

    job->work = work;
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&pool->mutex);
    if (urgent) {
        job->next = pool->queue_head;
        if (pool->queue_head == NULL)
            pool->queue_tail = &job->next;
        pool->queue_head = job;
    } else {
        job->next = NULL;
        *pool->queue_tail = job;
        pool->queue_tail = &job->next;
    }
    pool->queued++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
}

size_t talas_pool_queued(struct talas_pool *pool)
{
    size_t n;

    pthread_mutex_lock(&pool->mutex);
    n = pool->queued;
    pthread_mutex_unlock(&pool->mutex);
    return n;
}

size_t talas_pool_running(struct talas_pool *pool)
{
    size_t n;

    pthread_mutex_lock(&pool->mutex);
    n = pool->running;
    pthread_mutex_unlock(&pool->mutex);
    return n;
}

void talas_pool_destroy(struct talas_pool *pool)
{
    struct job *cancelled;

    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    cancelled = pool->queue_head;
    pool->queue_head = NULL;
    pool->queue_tail = &pool->queue_head;
    pool->queued = 0;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    for (unsigned i = 0; i < pool->thread_count; i++)
        pthread_join(pool->threads[i], NULL);
    /* finished jobs first, then those that never ran */
    run_done(pool);
    while (cancelled != NULL) {
        struct job *job = cancelled;
        cancelled = job->next;
        job->done(job->arg, 1);
        free(job);
    }
    h2o_socket_read_stop(pool->wake_sock);
    h2o_socket_close(pool->wake_sock);
    close(pool->wake[1]);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->threads);
    free(pool);
}
