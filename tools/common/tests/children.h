/* Child processes for the tools' end-to-end tests: start a program with
 * its output in a log (stdout possibly through a pipe, to read what it
 * prints at start), wait for its exit with a timeout, and kill whatever a
 * failed test left running. Not cmocka-bound: errors are return values. */
#ifndef ES_TEST_CHILDREN_H
#define ES_TEST_CHILDREN_H

#include <stddef.h>
#include <sys/types.h>

/* Starts argv (NULL-terminated) with stdout and stderr appended to `log`;
 * with out_pipe, stdout goes to a pipe instead (*out_pipe: its read end).
 * The pid, or -1. Remembered until its exit is seen (children_kill_all). */
pid_t children_spawn(char *const argv[], const char *log, int *out_pipe);

/* children_spawn of a server that prints "listening on HOST:PORT" as its
 * first line on stdout (es-atproto-serve with --listen HOST:0): *port is
 * that port. The pid, or -1 (the log shown) when the line does not come. */
pid_t children_spawn_listening(char *const argv[], const char *log, int *port);

/* The exit code (128 + signal when killed), or -1 when it has not ended
 * within timeout_ms (it keeps running; 0 only looks). */
int children_exit_code(pid_t pid, long timeout_ms);

/* SIGKILL to every child still running, and their exits collected. */
void children_kill_all(void);

/* children_kill_all in the shape of a cmocka teardown (state unused). */
int children_teardown(void **state);

/* The last lines of `log` on stdout (what a failing test shows). */
void children_show_log(const char *log);

/* A TCP port free on the loopback now, or -1. */
int children_free_port(void);

void children_sleep_ms(long ms);

/* A fresh folder for a test's files, "/tmp/<prefix>-XXXXXX", into
 * out[cap]; SIGPIPE is ignored from then on (a child's closed pipe must not
 * end the test). 0, or -1 when it cannot be made. */
int children_tmpdir(const char *prefix, char *out, size_t cap);

/* Removes that folder and what it holds, unless ES_E2E_KEEP is set (to
 * look at the logs). 0, or -1 when rm fails. */
int children_tmpdir_remove(const char *dir);

#endif
