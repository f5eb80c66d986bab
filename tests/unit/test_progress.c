/* test_progress.c - the refresh progress line: drawn by one thread (the jobs writer) while
 * another (the command's) sets the job's total, as `bookrank refresh` does. Under `make tsan`
 * this is the data-race check of the progress path; here it also checks what is drawn. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cli/internal.h"
#include "../lib/check.h"

#define STEPS 2000

static void *stepper(void *arg)
{
    progress *p = arg;
    for (int i = 0; i < STEPS - 1; i++)
        progress_step(p);
    /* The last step waits for the total (set concurrently with the steps above), so the last
     * line drawn is the full one whichever thread got there first. */
    while (atomic_load(&p->total) == 0)
        usleep(100);
    progress_step(p);
    return NULL;
}

int main(void)
{
    char path[] = "/tmp/bookrank-progress-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temporary file for stderr");
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);

    progress p;
    progress_init(&p, 1);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, stepper, &p) == 0, "drawing thread starts");
    /* No lock and no join before this: the writer may already be drawing. */
    progress_set_total(&p, STEPS);
    pthread_join(t, NULL);
    progress_clear(&p);

    dup2(saved, STDERR_FILENO);
    close(saved);
    CHECK_INT(atomic_load(&p.seen), STEPS, "every step counted");

    char tail[4096] = "";
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof tail - 1 ? size - (off_t)sizeof tail + 1 : 0;
    ssize_t n = pread(fd, tail, sizeof tail - 1, from);
    tail[n > 0 ? n : 0] = '\0';
    CHECK(strstr(tail, "[##############################] 2000/2000") != NULL,
          "the last line is full");
    CHECK(n >= 4 && memcmp(tail + n - 4, "\r\033[K", 4) == 0, "the line is erased at the end");
    close(fd);
    unlink(path);

    progress quiet;
    progress_init(&quiet, 0);
    progress_step(&quiet);
    CHECK_INT(atomic_load(&quiet.seen), 1, "a disabled line still counts");
    return check_done();
}
