/* Running the es-tool binary in tests (tool_run.h). */
#include "tool_run.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tool;

void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts the tool with argv (NULL-terminated, without the program) and the
 * environment plus `env` ("NAME=value" or NULL); fds for its stdin, stdout,
 * stderr come back. */
pid_t spawn(char *const *args, const char *env, int *in, int *out, int *err)
{
    int pin[2], pout[2], perr[2];
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    assert_int_equal(pipe(perr), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        for (int fd = 3; fd < 256; fd++)
            close(fd);
        if (env)
            putenv((char *)env);
        char *argv[64];
        int n = 0;
        argv[n++] = (char *)tool;
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(tool, argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    *in = pin[1];
    *out = pout[0];
    *err = perr[0];
    return pid;
}

static void append_fd(int fd, char **buf, size_t *len, bool *open)
{
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) {
        *open = false;
        return;
    }
    *buf = realloc(*buf, *len + (size_t)n + 1);
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

int wait_exit(pid_t pid, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1; /* timed out */
        }
        usleep(5000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the tool to its end with `input` on stdin; 30 s at most. */
void run_env(run_result *r, const char *env, const char *input, size_t input_len, char *const *args)
{
    memset(r, 0, sizeof *r);
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    int in, out, err;
    pid_t pid = spawn(args, env, &in, &out, &err);
    signal(SIGPIPE, SIG_IGN);
    if (input_len > 0)
        assert_int_equal(write(in, input, input_len), (ssize_t)input_len);
    close(in);
    bool out_open = true, err_open = true;
    int64_t end = now_ms() + 30000;
    while ((out_open || err_open) && now_ms() < end) {
        struct pollfd p[2] = {{out_open ? out : -1, POLLIN, 0}, {err_open ? err : -1, POLLIN, 0}};
        if (poll(p, 2, 100) <= 0)
            continue;
        if (p[0].revents)
            append_fd(out, &r->out, &r->out_len, &out_open);
        if (p[1].revents)
            append_fd(err, &r->err, &r->err_len, &err_open);
    }
    close(out);
    close(err);
    r->code = wait_exit(pid, 5000);
}

size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The command failed with `code` and said so in exactly one line on stderr. */
void assert_fails(const run_result *r, int code, const char *needle)
{
    if (r->code != code || count_lines(r->err) != 1 || (needle && !strstr(r->err, needle)))
        fail_msg("expected exit %d and one line with '%s'; got exit %d, stderr: %s", code,
                 needle ? needle : "", r->code, r->err);
}

void assert_ok(const run_result *r)
{
    if (r->code != 0)
        fail_msg("expected success; exit %d, stderr: %s", r->code, r->err);
}

/* Each line of r->out as JSON (an array). */
json_t *json_lines(const run_result *r)
{
    json_t *arr = json_array();
    const char *p = r->out;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t e;
        json_t *j = json_loadb(p, len, 0, &e);
        if (j == NULL)
            fail_msg("not JSON: %.*s (%s)", (int)len, p, e.text);
        json_array_append_new(arr, j);
        p += len + (nl ? 1 : 0);
    }
    return arr;
}

json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}
const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A URL whose port nobody listens on. */
void closed_url(char *out, size_t size)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    snprintf(out, size, "nats://127.0.0.1:%d", ntohs(a.sin_port));
    close(s);
}

/* Reads one line from fd within timeout_ms into buf. */
bool read_line(int fd, char *buf, size_t size, int64_t timeout_ms)
{
    size_t len = 0;
    int64_t end = now_ms() + timeout_ms;
    while (len + 1 < size && now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        if (read(fd, buf + len, 1) != 1)
            return false;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return true;
        }
        len++;
    }
    return false;
}
