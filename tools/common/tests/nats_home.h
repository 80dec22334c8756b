/* Tests of the tools' connection settings: a temporary XDG_CONFIG_HOME with
 * an empty nats/context folder (where the nats CLI keeps its contexts) and
 * none of the NATS_* variables, so that what a test writes is all the tool
 * sees. One copy, for tools/common's tests and es-tool's. */
#ifndef ES_TEST_NATS_HOME_H
#define ES_TEST_NATS_HOME_H

#include <stddef.h>

/* Creates the folder (mkdtemp of "/tmp/<prefix>-XXXXXX") into `home`,
 * points XDG_CONFIG_HOME at it and unsets every NATS_* variable the tools
 * read. Returns 0, or -1 with errno set. */
int nats_home_create(char *home, size_t size, const char *prefix);

/* Writes `text` to <home>/<rel>. Returns 0, or -1 with errno set. */
int nats_home_write(const char *home, const char *rel, const char *text);

/* Removes the folder and unsets what nats_home_create set. Returns 0, or -1
 * when the folder could not be removed. */
int nats_home_remove(const char *home);

#endif
