/* Child processes for the tools' end-to-end tests: start a program with
 * its output in a log (stdout possibly through a pipe, to read what it
 * prints at start), wait for its exit with a timeout, and kill whatever a
 * failed test left running. Not cmocka-bound: errors are return values. */
#ifndef ES_TEST_CHILDREN_H
#define ES_TEST_CHILDREN_H

#include <sys/types.h>

/* Starts argv (NULL-terminated) with stdout and stderr appended to `log`;
 * with out_pipe, stdout goes to a pipe instead (*out_pipe: its read end).
 * The pid, or -1. Remembered until its exit is seen (children_kill_all). */
pid_t children_spawn(char *const argv[], const char *log, int *out_pipe);

/* The exit code (128 + signal when killed), or -1 when it has not ended
 * within timeout_ms (it keeps running; 0 only looks). */
int children_exit_code(pid_t pid, long timeout_ms);

/* SIGKILL to every child still running, and their exits collected. */
void children_kill_all(void);

/* The last lines of `log` on stdout (what a failing test shows). */
void children_show_log(const char *log);

/* A TCP port free on the loopback now, or -1. */
int children_free_port(void);

void children_sleep_ms(long ms);

#endif
