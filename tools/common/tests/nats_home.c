#define _POSIX_C_SOURCE 200809L
#include "nats_home.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Every variable es_cli_conn_resolve reads. */
static const char *const nats_vars[] = {"NATS_URL",  "NATS_USER", "NATS_PASSWORD", "NATS_TOKEN",
                                        "NATS_CREDS", "NATS_NKEY", "NATS_CERT",     "NATS_KEY",
                                        "NATS_CA",    "NATS_TIMEOUT", "NATS_CONTEXT"};

static int make_dir(const char *home, const char *rel)
{
    char dir[512];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", home, rel) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdir(dir, 0700);
}

int nats_home_create(char *home, size_t size, const char *prefix)
{
    if ((size_t)snprintf(home, size, "/tmp/%s-XXXXXX", prefix) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdtemp(home) == NULL || make_dir(home, "nats") != 0 ||
        make_dir(home, "nats/context") != 0)
        return -1;
    for (size_t i = 0; i < sizeof nats_vars / sizeof nats_vars[0]; i++)
        unsetenv(nats_vars[i]);
    return setenv("XDG_CONFIG_HOME", home, 1);
}

int nats_home_write(const char *home, const char *rel, const char *text)
{
    char path[512];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", home, rel) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int failed = fputs(text, f) < 0;
    return fclose(f) != 0 || failed ? -1 : 0;
}

int nats_home_remove(const char *home)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    int rc = system(cmd) == 0 ? 0 : -1;
    unsetenv("XDG_CONFIG_HOME");
    for (size_t i = 0; i < sizeof nats_vars / sizeof nats_vars[0]; i++)
        unsetenv(nats_vars[i]);
    return rc;
}
