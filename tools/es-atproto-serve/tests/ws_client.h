/* A minimal WebSocket and HTTP client for the serve tests, over a plain
 * loopback socket: the upgrade request, unmasked frames from the server
 * (text, binary, close, ping), masked text frames to it. Independent of
 * libwebsockets, so the server is checked by another implementation.
 * Include it with _GNU_SOURCE defined (memmem, strcasestr). */
#ifndef SERVE_TEST_WS_CLIENT_H
#define SERVE_TEST_WS_CLIENT_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct ws_client {
    int fd;
    unsigned char *buf; /* bytes received and not yet parsed */
    size_t len, cap;
    int close_code; /* set when the server closed, with close_reason */
    char close_reason[128];
} ws_client;

static inline int ws_tcp_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int ws_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Receives more bytes into the buffer: 1, 0 at the end of the stream, -1 on
 * a timeout or an error. */
static inline int ws_fill(ws_client *w, int timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    if (w->cap - w->len < 65536) {
        w->cap = w->cap * 2 + 65536;
        w->buf = realloc(w->buf, w->cap);
    }
    ssize_t r = recv(w->fd, w->buf + w->len, w->cap - w->len, 0);
    if (r < 0)
        return -1;
    w->len += (size_t)r;
    return r > 0;
}

static inline void ws_consume(ws_client *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
}

/* Connects and upgrades `target` ("/subscribe?cursor=1"), with more
 * request headers (each line ending in \r\n; "" for none); rcvbuf > 0
 * shrinks the socket's receive buffer (a slow reader). The HTTP status
 * (101 when upgraded), or -1. */
static inline int ws_open_with(ws_client *w, int port, const char *target, int rcvbuf,
                               const char *headers)
{
    memset(w, 0, sizeof *w);
    w->fd = ws_tcp_connect(port, rcvbuf);
    if (w->fd < 0)
        return -1;
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     target, port, headers);
    if (n <= 0 || (size_t)n >= sizeof req || ws_send_all(w->fd, req, (size_t)n) != 0)
        return -1;
    for (;;) {
        if (w->len > 0) {
            unsigned char *end = memmem(w->buf, w->len, "\r\n\r\n", 4);
            if (end != NULL) {
                int status = -1;
                if (sscanf((const char *)w->buf, "HTTP/1.1 %d", &status) != 1)
                    return -1;
                ws_consume(w, (size_t)(end + 4 - w->buf));
                return status;
            }
        }
        if (ws_fill(w, 5000) != 1)
            return -1;
    }
}

static inline int ws_open(ws_client *w, int port, const char *target, int rcvbuf)
{
    return ws_open_with(w, port, target, rcvbuf, "");
}

/* The next message, text or binary (*binary; binary ones passed over
 * unless with_binary), of *len bytes (malloc'd, NUL-terminated: the caller
 * frees it): 1; 0 when the server closed (close_code, close_reason) or
 * the stream ended; -1 when nothing came within timeout_ms. */
static inline int ws_read_frame(ws_client *w, int timeout_ms, char **out, size_t *len,
                                bool *binary, bool with_binary)
{
    *len = 0;
    *binary = false;
    for (;;) {
        if (w->len >= 2) {
            int opcode = w->buf[0] & 0x0f;
            uint64_t plen = w->buf[1] & 0x7f;
            size_t hdr = 2;
            if (plen == 126 && w->len >= 4) {
                plen = (uint64_t)w->buf[2] << 8 | w->buf[3];
                hdr = 4;
            } else if (plen == 127 && w->len >= 10) {
                plen = 0;
                for (int i = 0; i < 8; i++)
                    plen = plen << 8 | w->buf[2 + i];
                hdr = 10;
            } else if (plen >= 126) {
                hdr = 0; /* the length is not all here yet */
            }
            if (hdr != 0 && w->len >= hdr + plen) {
                unsigned char *p = w->buf + hdr;
                if (opcode == 0x8) {
                    w->close_code = plen >= 2 ? (p[0] << 8 | p[1]) : 1005;
                    size_t rl = plen > 2 ? (size_t)plen - 2 : 0;
                    rl = rl < sizeof w->close_reason ? rl : sizeof w->close_reason - 1;
                    memcpy(w->close_reason, p + 2, rl);
                    w->close_reason[rl] = '\0';
                    ws_consume(w, hdr + (size_t)plen);
                    return 0;
                }
                if (opcode == 0x1 || (opcode == 0x2 && with_binary)) {
                    char *m = malloc((size_t)plen + 1);
                    memcpy(m, p, (size_t)plen);
                    m[plen] = '\0';
                    *out = m;
                    *len = (size_t)plen;
                    *binary = opcode == 0x2;
                    ws_consume(w, hdr + (size_t)plen);
                    return 1;
                }
                ws_consume(w, hdr + (size_t)plen); /* ping, pong, unwanted binary: passed over */
                continue;
            }
        }
        int r = ws_fill(w, timeout_ms);
        if (r <= 0)
            return r == 0 ? 0 : -1;
    }
}

/* The next message, text or binary: ws_read_frame. */
static inline int ws_read_message(ws_client *w, int timeout_ms, char **out, size_t *len,
                                  bool *binary)
{
    return ws_read_frame(w, timeout_ms, out, len, binary, true);
}

/* The next text message (malloc'd, NUL-terminated: the caller frees it),
 * binary ones passed over: as ws_read_frame. */
static inline int ws_read(ws_client *w, int timeout_ms, char **out)
{
    size_t len;
    bool binary;
    return ws_read_frame(w, timeout_ms, out, &len, &binary, false);
}

/* One masked text frame. 0, or -1. */
static inline int ws_send_text(ws_client *w, const char *text)
{
    size_t n = strlen(text);
    unsigned char hdr[14] = {0x81};
    size_t h = 2;
    if (n < 126) {
        hdr[1] = (unsigned char)(0x80 | n);
    } else {
        hdr[1] = 0x80 | 126;
        hdr[2] = (unsigned char)(n >> 8);
        hdr[3] = (unsigned char)n;
        h = 4;
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(hdr + h, mask, 4);
    h += 4;
    unsigned char *frame = malloc(h + n);
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < n; i++)
        frame[h + i] = (unsigned char)text[i] ^ mask[i % 4];
    int r = ws_send_all(w->fd, frame, h + n);
    free(frame);
    return r;
}

static inline void ws_close(ws_client *w)
{
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    memset(w, 0, sizeof *w);
    w->fd = -1;
}

/* GET `path` over HTTP/1.1: the status, the body in body[size]; -1 on
 * failure. */
static inline int http_get(int port, const char *path, char *body, size_t size)
{
    int fd = ws_tcp_connect(port, 0);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     path);
    ws_client w = {.fd = fd};
    int status = -1;
    if (ws_send_all(fd, req, (size_t)n) == 0) {
        /* the headers, then Content-Length bytes (or the end of the stream) */
        char *end = NULL;
        long want = -1;
        while (ws_fill(&w, 5000) == 1) {
            end = memmem(w.buf, w.len, "\r\n\r\n", 4);
            if (end == NULL)
                continue;
            *end = '\0';
            const char *cl = strcasestr((const char *)w.buf, "content-length:");
            want = cl ? strtol(cl + 15, NULL, 10) : -1;
            *end = '\r';
            if (want >= 0 && w.len - (size_t)(end + 4 - (char *)w.buf) >= (size_t)want)
                break;
        }
        if (end != NULL && sscanf((const char *)w.buf, "HTTP/1.1 %d", &status) == 1) {
            size_t bl = w.len - (size_t)(end + 4 - (char *)w.buf);
            bl = bl < size ? bl : size - 1;
            memcpy(body, end + 4, bl);
            body[bl] = '\0';
        }
    }
    ws_close(&w);
    return status;
}

#endif
