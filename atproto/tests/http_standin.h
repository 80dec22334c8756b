/* A tiny HTTP/1.1 server on loopback for the resolver's and the XRPC
 * client's tests: a PLC directory, a did:web host, a PDS or relay stand-in.
 * It answers GET <path?query> (matched exactly) from a table of routes, one
 * connection at a time, on its own thread, and counts the requests it
 * served. A route's answer (standin_answer) can be binary, wait before its
 * head (a stalled server), carry extra headers (Retry-After), announce a
 * Content-Length other than the body's (a body cut short: fewer bytes, then
 * close) or none (the body ends at close), and fail every Nth request with a
 * 500. POSTs (a webhook receiver) go to a handler of the test's, which sees
 * the head and the body and returns the status; their connections are kept
 * alive. Several worker threads may accept at once (standin_start_workers),
 * so requests in flight together are seen together. Test-only; not
 * hardened. */
#ifndef ES_ATP_TEST_HTTP_STANDIN_H
#define ES_ATP_TEST_HTTP_STANDIN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STANDIN_ROUTES_MAX  512
#define STANDIN_WORKERS_MAX 64
#define STANDIN_HEAD_MAX    8192
#define STANDIN_BODY_MAX    (1u << 20)

/* A POST's handler: its request head (NUL-terminated, the request line
 * included) and body; returns the status to answer (the body is empty). It
 * runs on the worker that read the request, so it may sleep to be slow. */
typedef int (*standin_post_fn)(void *ctx, const char *head, const void *body, size_t len);

/* What a route answers. */
typedef struct standin_answer {
    int status;
    const void *body; /* copied */
    size_t len;
    int delay_ms;        /* before the head is sent */
    const char *headers; /* extra header lines, each ending "\r\n" (copied), or NULL */
    /* STANDIN_LENGTH_TRUE: the body's; STANDIN_LENGTH_NONE: no Content-Length
     * (the body ends when the connection closes); else the length announced */
    long long announce;
    unsigned fail_every; /* the Nth, 2Nth... request of this route answers 500; 0: never */
} standin_answer;
#define STANDIN_LENGTH_TRUE (-1)
#define STANDIN_LENGTH_NONE (-2)

typedef struct standin_route {
    char *path;
    standin_answer a; /* body and headers owned by the route */
    unsigned hits;
} standin_route;

typedef struct standin {
    int fd;
    int port;
    int stop; /* read and written with __atomic: the server thread polls it */
    pthread_t threads[STANDIN_WORKERS_MAX];
    unsigned nthreads;
    standin_post_fn post; /* set before the start; NULL: POSTs get 405 */
    void *post_ctx;
    pthread_mutex_t lock;
    standin_route routes[STANDIN_ROUTES_MAX];
    size_t nroutes;
    unsigned requests;
    char post_headers[256]; /* extra header lines of every POST's answer (standin_post_headers) */
} standin;

/* Extra header lines (each ending "\r\n"; "" for none) for the answers to
 * POSTs from now on: a receiver's Retry-After, say. */
static inline void standin_post_headers(standin *s, const char *lines)
{
    pthread_mutex_lock(&s->lock);
    snprintf(s->post_headers, sizeof s->post_headers, "%s", lines);
    pthread_mutex_unlock(&s->lock);
}

static inline void standin_answer_free(standin_answer *a)
{
    free((void *)a->body);
    free((void *)a->headers);
}

/* Adds or replaces the answer to GET `path` (everything copied). */
static inline void standin_route_answer(standin *s, const char *path, const standin_answer *a)
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
        standin_answer_free(&r->a);
    }
    if (r != NULL) {
        r->a = *a;
        r->a.body = malloc(a->len + 1);
        memcpy((void *)r->a.body, a->body, a->len);
        r->a.headers = a->headers != NULL ? strdup(a->headers) : NULL;
        r->hits = 0;
    }
    pthread_mutex_unlock(&s->lock);
}

/* A JSON or text answer with its true length. */
static inline void standin_route_set(standin *s, const char *path, int status, const char *body,
                                     int delay_ms)
{
    standin_answer a = {status, body, strlen(body), delay_ms, NULL, STANDIN_LENGTH_TRUE, 0};
    standin_route_answer(s, path, &a);
}

/* The path a getRepo of `did` asks for, its DID percent-encoded as RFC 3986
 * wants a query value ("did%3Aplc%3A..."), into out[cap]. */
static inline void standin_get_repo_path(const char *did, char *out, size_t cap)
{
    int n = snprintf(out, cap, "/xrpc/com.atproto.sync.getRepo?did=");
    for (const char *p = did; *p != '\0' && n > 0 && (size_t)n + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        n += snprintf(out + n, cap - (size_t)n, plain ? "%c" : "%%%02X", c);
    }
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

static inline void standin_send_all(int c, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t sent = send(c, b, n, MSG_NOSIGNAL);
        if (sent <= 0) /* the client gave up (a bound, a timeout) */
            return;
        b += sent;
        n -= (size_t)sent;
    }
}

/* The answer to `path` (a copy, the caller frees it), counting the request. */
static inline standin_answer standin_lookup(standin *s, const char *path)
{
    static const char none[] = "{\"message\":\"DID not registered\"}";
    standin_answer a = {404, none, sizeof none - 1, 0, NULL, STANDIN_LENGTH_TRUE, 0};
    pthread_mutex_lock(&s->lock);
    s->requests++;
    for (size_t i = 0; i < s->nroutes; i++) {
        standin_route *r = &s->routes[i];
        if (strcmp(r->path, path) != 0)
            continue;
        a = r->a;
        if (a.fail_every > 0 && ++r->hits % a.fail_every == 0) {
            static const char failed[] = "{\"error\":\"InternalServerError\"}";
            a = (standin_answer){500, failed, sizeof failed - 1, 0, NULL, STANDIN_LENGTH_TRUE, 0};
        }
    }
    void *body = malloc(a.len + 1);
    memcpy(body, a.body, a.len);
    a.body = body;
    a.headers = a.headers != NULL ? strdup(a.headers) : NULL;
    pthread_mutex_unlock(&s->lock);
    return a;
}

/* Waits up to 50 ms at a time for bytes from `c` until stop; recv's result
 * (0: closed, or stopped). */
static inline ssize_t standin_recv(standin *s, int c, char *buf, size_t cap)
{
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 50) > 0)
            return recv(c, buf, cap, 0);
    }
    return 0;
}

/* Reads one request head into req[STANDIN_HEAD_MAX] (NUL-terminated);
 * *n gets the bytes read, which may run past the head into the body.
 * Returns the head's length, 0 when the connection ends first. */
static inline size_t standin_read_head(standin *s, int c, char *req, size_t *n)
{
    *n = 0;
    while (*n < STANDIN_HEAD_MAX - 1) {
        ssize_t got = standin_recv(s, c, req + *n, STANDIN_HEAD_MAX - 1 - *n);
        if (got <= 0)
            return 0;
        *n += (size_t)got;
        req[*n] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (end != NULL)
            return (size_t)(end + 4 - req);
    }
    return 0;
}

/* The Content-Length of a request head, 0 when absent. */
static inline size_t standin_content_length(const char *head)
{
    static const char name[] = "\r\ncontent-length:";
    for (const char *p = head; (p = strchr(p, '\r')) != NULL; p++)
        if (strncasecmp(p, name, sizeof name - 1) == 0)
            return (size_t)strtoull(p + sizeof name - 1, NULL, 10);
    return 0;
}

/* Answers the POSTs of one kept-alive connection (`req` holds the first
 * head, `n` bytes read so far) until the client closes or the stand-in
 * stops. */
static inline void standin_serve_posts(standin *s, int c, char *req, size_t head_len, size_t n)
{
    while (head_len > 0) {
        size_t len = standin_content_length(req);
        if (len > STANDIN_BODY_MAX)
            return;
        char *body = malloc(len + 1);
        size_t have = n - head_len < len ? n - head_len : len;
        memcpy(body, req + head_len, have);
        while (have < len) {
            ssize_t got = standin_recv(s, c, body + have, len - have);
            if (got <= 0)
                break;
            have += (size_t)got;
        }
        req[head_len] = '\0';
        pthread_mutex_lock(&s->lock);
        s->requests++;
        pthread_mutex_unlock(&s->lock);
        int status = have < len ? 0 : s->post != NULL ? s->post(s->post_ctx, req, body, len) : 405;
        free(body);
        if (status == 0) /* the handler hangs up, or the body never came */
            return;
        char head[512];
        pthread_mutex_lock(&s->lock);
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n%s\r\n",
                          status, s->post_headers);
        pthread_mutex_unlock(&s->lock);
        standin_send_all(c, head, (size_t)hn);
        head_len = standin_read_head(s, c, req, &n);
    }
}

/* Reads the request head, answers it, closes (a GET), or answers POSTs
 * while the client keeps the connection. */
static inline void standin_serve(standin *s, int c)
{
    char req[STANDIN_HEAD_MAX];
    size_t n;
    size_t head_len = standin_read_head(s, c, req, &n);
    if (head_len > 0 && strncmp(req, "POST ", 5) == 0) {
        standin_serve_posts(s, c, req, head_len, n);
        return;
    }
    req[n] = '\0';
    char path[4096] = "";
    if (sscanf(req, "GET %4095s ", path) != 1)
        return;
    standin_answer a = standin_lookup(s, path);
    standin_sleep_ms(a.delay_ms);
    char head[1024], length[64] = "";
    if (a.announce != STANDIN_LENGTH_NONE)
        snprintf(length, sizeof length, "Content-Length: %lld\r\n",
                 a.announce == STANDIN_LENGTH_TRUE ? (long long)a.len : a.announce);
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s%s"
                      "Location: http://127.0.0.1:1/elsewhere\r\nConnection: close\r\n\r\n",
                      a.status, length, a.headers != NULL ? a.headers : "");
    standin_send_all(c, head, (size_t)hn);
    standin_send_all(c, a.body, a.len);
    standin_answer_free(&a);
}

static inline void *standin_main(void *arg)
{
    standin *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL); /* non-blocking: another worker may take it first */
        if (c < 0)
            continue;
        standin_serve(s, c);
        close(c);
    }
    return NULL;
}

/* Starts a stand-in on 127.0.0.1, an ephemeral port, with `workers`
 * threads (1 to STANDIN_WORKERS_MAX) accepting connections, and `post`
 * (with `post_ctx`) answering POSTs (NULL: 405). 0 on success. */
static inline int standin_start_workers(standin *s, unsigned workers, standin_post_fn post,
                                        void *post_ctx)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->post = post;
    s->post_ctx = post_ctx;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (workers < 1 || workers > STANDIN_WORKERS_MAX || s->fd < 0 ||
        bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 128) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    for (; s->nthreads < workers; s->nthreads++)
        if (pthread_create(&s->threads[s->nthreads], NULL, standin_main, s) != 0)
            return -1;
    return 0;
}

/* Starts a stand-in on 127.0.0.1, an ephemeral port, one connection at a
 * time; 0 on success. */
static inline int standin_start(standin *s)
{
    return standin_start_workers(s, 1, NULL, NULL);
}

static inline void standin_stop(standin *s)
{
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    close(s->fd);
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].path);
        standin_answer_free(&s->routes[i].a);
    }
    pthread_mutex_destroy(&s->lock);
}

#endif
