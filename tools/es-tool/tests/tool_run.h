/* Running the es-tool binary in tests: spawn it with arguments, an extra
 * environment variable and stdin, collect its exit code, stdout and stderr,
 * and check them (one line on stderr for a failure, JSON lines on stdout).
 * Shared by the end-to-end tests (test_estool.c, test_estool_conn.c). */
#ifndef TOOL_RUN_H
#define TOOL_RUN_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

extern const char *tool; /* the es-tool binary: set by main() */

typedef struct run_result {
    int code; /* exit code, or 128 + signal */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} run_result;

void run_free(run_result *r);
int64_t now_ms(void);

/* Starts the tool with argv (NULL-terminated, without the program) and the
 * environment plus `env` ("NAME=value" or NULL); fds for its stdin, stdout,
 * stderr come back. */
pid_t spawn(char *const *args, const char *env, int *in, int *out, int *err);

/* The exit code of `pid` (128 + signal), or -1 after killing it when it did
 * not end within timeout_ms. */
int wait_exit(pid_t pid, int64_t timeout_ms);

/* Runs the tool to its end with `input` on stdin; 30 s at most. */
void run_env(run_result *r, const char *env, const char *input, size_t input_len,
             char *const *args);

#define RUN(r, ...)                                                                                \
    do {                                                                                           \
        char *args_[] = {__VA_ARGS__, NULL};                                                       \
        run_env((r), NULL, NULL, 0, args_);                                                        \
    } while (0)
#define RUN_IN(r, input, ...)                                                                      \
    do {                                                                                           \
        char *args_[] = {__VA_ARGS__, NULL};                                                       \
        run_env((r), NULL, (input), strlen(input), args_);                                         \
    } while (0)

size_t count_lines(const char *s);

/* The command failed with `code` and said so in exactly one line on stderr. */
void assert_fails(const run_result *r, int code, const char *needle);
void assert_ok(const run_result *r);

/* Each line of r->out as JSON (an array). */
json_t *json_lines(const run_result *r);
json_int_t jint(json_t *o, const char *k);
const char *jstr(json_t *o, const char *k);

/* A URL whose port nobody listens on. */
void closed_url(char *out, size_t size);

/* Reads one line from fd within timeout_ms into buf. */
bool read_line(int fd, char *buf, size_t size, int64_t timeout_ms);

#endif
