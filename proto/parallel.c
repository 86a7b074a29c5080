#include "proto/parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct {
    atomic_size_t next;
    size_t n, chunk;
    void (*fn)(void *arg, size_t begin, size_t end);
    void *arg;
} sl_par_job;

static void *worker(void *p)
{
    sl_par_job *job = p;
    for (;;) {
        size_t begin = atomic_fetch_add(&job->next, job->chunk);
        if (begin >= job->n)
            break;
        size_t end = job->n - begin < job->chunk ? job->n : begin + job->chunk;
        job->fn(job->arg, begin, end);
    }
    return NULL;
}

void sl_parallel_for(size_t n, size_t chunk, unsigned max_threads,
                     void (*fn)(void *arg, size_t begin, size_t end), void *arg)
{
    enum { MAX_HELPERS = 15 };
    if (chunk == 0)
        chunk = 1;
    sl_par_job job = {.n = n, .chunk = chunk, .fn = fn, .arg = arg};
    atomic_init(&job.next, 0);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t chunks = n / chunk + (n % chunk != 0);
    size_t threads = max_threads ? max_threads : 1;
    if (cores > 0 && threads > (size_t)cores)
        threads = (size_t)cores;
    if (threads > chunks)
        threads = chunks;
    size_t helpers = threads > 1 ? threads - 1 : 0;
    if (helpers > MAX_HELPERS)
        helpers = MAX_HELPERS;

    pthread_t tid[MAX_HELPERS];
    size_t started = 0;
    for (; started < helpers; started++)
        if (pthread_create(&tid[started], NULL, worker, &job) != 0)
            break; /* the threads we have (at least this one) finish the work */
    worker(&job);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
}
