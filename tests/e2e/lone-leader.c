/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A process whose thread-group leader exits alone: the main thread ends with SYS_exit while
 * a second thread runs on, so /proc/PID/stat shows the leader as a zombie (Z) though the
 * process still runs. Prints "tid N" (the thread that runs on) and "started", then the
 * thread sleeps in a loop until killed. It gives up by itself after the seconds given as
 * its argument (default 60), so a miss cannot leave it running on the machine. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long lifetime = 60;

static void *run_on(void *arg) {
        time_t end = time(NULL) + lifetime;

        (void) arg;
        printf("tid %ld\nstarted\n", (long) syscall(SYS_gettid));
        fflush(stdout);
        while (time(NULL) < end)
                (void) nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000 * 1000 }, NULL);
        _exit(0);
}

int main(int argc, char **argv) {
        pthread_t thread;

        if (argc > 1)
                lifetime = strtol(argv[1], NULL, 10);
        if (pthread_create(&thread, NULL, run_on, NULL) != 0)
                return 1;
        /* Only the main thread ends; exit() or returning would end the whole group. */
        syscall(SYS_exit, 0);
        return 1;
}
