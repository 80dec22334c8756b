#define _POSIX_C_SOURCE 200809L
#include "children.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILDREN_MAX 32
static pid_t running[CHILDREN_MAX];

static void forget(pid_t pid)
{
    for (int i = 0; i < CHILDREN_MAX; i++)
        if (running[i] == pid)
            running[i] = 0;
}

void children_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t children_spawn(char *const argv[], const char *log, int *out_pipe)
{
    int fds[2] = {-1, -1}, slot = -1;
    for (int i = 0; i < CHILDREN_MAX && slot < 0; i++)
        if (running[i] == 0)
            slot = i;
    if (slot < 0 || (out_pipe && pipe(fds) != 0))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(out_pipe ? fds[1] : fd, 1);
        dup2(fd, 2);
        if (out_pipe)
            close(fds[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    if (out_pipe) {
        close(fds[1]);
        *out_pipe = fds[0];
    }
    if (pid > 0)
        running[slot] = pid;
    return pid;
}

int children_exit_code(pid_t pid, long timeout_ms)
{
    int status;
    for (long waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 || waited >= timeout_ms)
            return -1;
        children_sleep_ms(20);
    }
    forget(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void children_kill_all(void)
{
    for (int i = 0; i < CHILDREN_MAX; i++)
        if (running[i] != 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
}

int children_teardown(void **state)
{
    (void)state;
    children_kill_all();
    return 0;
}

void children_show_log(const char *log)
{
    FILE *f = fopen(log, "r");
    if (f == NULL) {
        printf("(no log %s)\n", log);
        return;
    }
    /* the last 30 lines, kept in a ring while reading */
    char line[1024];
    static char ring[30][1024];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        snprintf(ring[n++ % 30], sizeof ring[0], "%s", line);
    fclose(f);
    for (size_t i = n > 30 ? n - 30 : 0; i < n; i++)
        fputs(ring[i % 30], stdout);
}

int children_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

int children_tmpdir(const char *prefix, char *out, size_t cap)
{
    if (snprintf(out, cap, "/tmp/%s-XXXXXX", prefix) >= (int)cap || mkdtemp(out) == NULL)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int children_tmpdir_remove(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return getenv("ES_E2E_KEEP") != NULL || system(cmd) == 0 ? 0 : -1;
}

pid_t children_spawn_listening(char *const argv[], const char *log, int *port)
{
    int out;
    pid_t pid = children_spawn(argv, log, &out);
    if (pid <= 0)
        return -1;
    FILE *f = fdopen(out, "r");
    char line[160] = "";
    const char *colon = NULL;
    if (f == NULL || fgets(line, sizeof line, f) == NULL ||
        strncmp(line, "listening on ", 13) != 0 || (colon = strrchr(line, ':')) == NULL ||
        sscanf(colon + 1, "%d", port) != 1) {
        children_show_log(log);
        pid = -1;
    }
    if (f != NULL)
        fclose(f);
    else
        close(out);
    return pid;
}
