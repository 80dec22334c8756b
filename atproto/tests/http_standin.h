/* A tiny HTTP/1.1 server on loopback for the resolver's tests: a PLC
 * directory or a did:web host stand-in. It answers GET <path> from a table of
 * routes (status, body, delay), one connection at a time, on its own thread,
 * and counts the requests it served. Test-only; not hardened. */
#ifndef ES_ATP_TEST_HTTP_STANDIN_H
#define ES_ATP_TEST_HTTP_STANDIN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STANDIN_ROUTES_MAX 512

typedef struct standin_route {
    char *path;
    int status;
    char *body;
    int delay_ms;
} standin_route;

typedef struct standin {
    int fd;
    int port;
    volatile int stop;
    pthread_t thread;
    pthread_mutex_t lock;
    standin_route routes[STANDIN_ROUTES_MAX];
    size_t nroutes;
    unsigned requests;
} standin;

/* Adds or replaces the answer to GET `path` (copied). */
static inline void standin_route_set(standin *s, const char *path, int status, const char *body,
                                     int delay_ms)
{
    pthread_mutex_lock(&s->lock);
    standin_route *r = NULL;
    for (size_t i = 0; i < s->nroutes && r == NULL; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            r = &s->routes[i];
    if (r == NULL && s->nroutes < STANDIN_ROUTES_MAX) {
        r = &s->routes[s->nroutes++];
        r->path = strdup(path);
    } else if (r != NULL) {
        free(r->body);
    }
    if (r != NULL) {
        r->status = status;
        r->body = strdup(body);
        r->delay_ms = delay_ms;
    }
    pthread_mutex_unlock(&s->lock);
}

static inline unsigned standin_requests(standin *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static inline void standin_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads the request head, answers it, closes. */
static inline void standin_serve(standin *s, int c)
{
    char req[8192];
    size_t n = 0;
    while (n < sizeof req - 1) {
        ssize_t got = recv(c, req + n, sizeof req - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[n] = '\0';
    char path[4096] = "";
    if (sscanf(req, "GET %4095s ", path) != 1)
        return;
    int status = 404, delay = 0;
    char *body = strdup("{\"message\":\"DID not registered\"}");
    pthread_mutex_lock(&s->lock);
    s->requests++;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (strcmp(s->routes[i].path, path) == 0) {
            status = s->routes[i].status;
            free(body);
            body = strdup(s->routes[i].body);
            delay = s->routes[i].delay_ms;
        }
    }
    pthread_mutex_unlock(&s->lock);
    standin_sleep_ms(delay);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Location: http://127.0.0.1:1/elsewhere\r\nConnection: close\r\n\r\n",
                      status, strlen(body));
    send(c, head, (size_t)hn, MSG_NOSIGNAL);
    send(c, body, strlen(body), MSG_NOSIGNAL);
    free(body);
}

static inline void *standin_main(void *arg)
{
    standin *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        standin_serve(s, c);
        close(c);
    }
    return NULL;
}

/* Starts a stand-in on 127.0.0.1, an ephemeral port; 0 on success. */
static inline int standin_start(standin *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, standin_main, s);
}

static inline void standin_stop(standin *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].path);
        free(s->routes[i].body);
    }
    pthread_mutex_destroy(&s->lock);
}

#endif
