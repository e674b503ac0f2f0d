/* The podman bench's timing wrapper: `timer LOG PROGRAM ARGS...` runs PROGRAM with ARGS (stdin,
 * stdout and stderr passed through), appends "<nanoseconds> <verb>" to LOG, and exits with
 * PROGRAM's status. The verb is the first of setup/teardown/version/update among ARGS, else
 * "other". The clock runs from just before the spawn to just after the wait, so it counts
 * the program's own start and exit, as podman's call does, and not this wrapper's.
 * posix_spawn is a vfork-style clone (no copy of the caller's page tables), close to what Go's
 * os/exec does in podman; a bash wrapper's fork and wait added ~1 ms to every call. */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: timer LOG PROGRAM [ARGS...]\n");
        return 2;
    }
    const char *verb = "other";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "setup") || !strcmp(argv[i], "teardown") ||
            !strcmp(argv[i], "version") || !strcmp(argv[i], "update")) {
            verb = argv[i];
            break;
        }
    }
    struct timespec t0, t1;
    pid_t pid;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ);
    if (err != 0) {
        fprintf(stderr, "timer: spawn %s: %s\n", argv[2], strerror(err));
        return 127;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        perror("timer: wait");
        return 127;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    FILE *log = fopen(argv[1], "a");
    if (log) {
        fprintf(log, "%lld %s\n", ns, verb);
        fclose(log);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
