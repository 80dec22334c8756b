/* Entity ids printed so that they can be typed back (idtext.h). */
#include "idtext.h"

#include <stdio.h>
#include <string.h>

#include <es/subject.h>

#include "cli.h"

/* Bytes a POSIX shell takes literally anywhere in a word. */
static bool shell_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("_-+=.,:/@%^", c) != NULL);
}

/* The length of the valid UTF-8 sequence at p (1 to 4), 0 when there is
 * none (stray or truncated continuation, overlong form, surrogate, beyond
 * U+10FFFF); *cp gets the code point. */
static size_t utf8_seq(const unsigned char *p, size_t n, unsigned *cp)
{
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = p[0] < 0x80                   ? 1
                 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2
                 : (p[0] & 0xf0) == 0xe0       ? 3
                 : p[0] >= 0xf0 && p[0] < 0xf5 ? 4
                                               : 0;
    if (len == 0 || len > n)
        return 0;
    unsigned v = len == 1 ? p[0] : (unsigned)(p[0] & (0x7fu >> len));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3fu);
    }
    if (v < min[len] || (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff)
        return 0;
    *cp = v;
    return len;
}

static bool is_control(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

typedef enum quoting { AS_IS, SINGLE, ANSI_C } quoting;

static quoting quoting_of(const unsigned char *id, size_t len)
{
    quoting q = len > 0 ? AS_IS : SINGLE;
    for (size_t i = 0; i < len;) {
        unsigned cp = 0;
        size_t n = utf8_seq(id + i, len - i, &cp);
        if (n == 0 || is_control(cp))
            return ANSI_C;
        if (n > 1 || !shell_plain(id[i]))
            q = SINGLE;
        i += n;
    }
    return q;
}

static void append_single_quoted(es_buf *out, const char *id, size_t len)
{
    es_buf_append_byte(out, '\'');
    for (size_t i = 0; i < len; i++) {
        if (id[i] == '\'')
            es_buf_append_str(out, "'\\''");
        else
            es_buf_append_byte(out, (uint8_t)id[i]);
    }
    es_buf_append_byte(out, '\'');
}

static void append_ansi_c(es_buf *out, const unsigned char *id, size_t len)
{
    es_buf_append_str(out, "$'");
    for (size_t i = 0; i < len;) {
        unsigned cp = 0;
        size_t n = utf8_seq(id + i, len - i, &cp);
        char esc[8];
        if (n > 0 && !is_control(cp)) {
            if (id[i] == '\\' || id[i] == '\'')
                es_buf_append_byte(out, '\\');
            es_buf_append(out, id + i, n);
            i += n;
            continue;
        }
        switch (id[i]) {
        case '\n': es_buf_append_str(out, "\\n"); break;
        case '\t': es_buf_append_str(out, "\\t"); break;
        case '\r': es_buf_append_str(out, "\\r"); break;
        default: snprintf(esc, sizeof esc, "\\x%02X", id[i]); es_buf_append_str(out, esc);
        }
        i++; /* a byte at a time: a control character, or a byte that is not UTF-8 */
    }
    es_buf_append_byte(out, '\'');
}

void tool_append_display_id(es_buf *out, const char *id, size_t len)
{
    const unsigned char *u = (const unsigned char *)id;
    switch (quoting_of(u, len)) {
    case AS_IS: es_buf_append(out, id, len); break;
    case SINGLE: append_single_quoted(out, id, len); break;
    case ANSI_C: append_ansi_c(out, u, len); break;
    }
}

size_t tool_display_width(const es_buf *out, size_t from)
{
    size_t w = 0;
    for (size_t i = from; i < out->len; i++)
        w += (out->data[i] & 0xc0) != 0x80;
    return w;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool tool_id_looks_escaped(const char *id)
{
    for (const char *p = strchr(id, '%'); p != NULL; p = strchr(p + 1, '%')) {
        int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
        if (lo < 0)
            continue;
        int byte = hi << 4 | lo;
        if (byte <= 0x20 || byte >= 0x7f || strchr("%.*>", byte) != NULL)
            return true;
    }
    return false;
}

/* "; did you mean ID?" when the whole id unescapes, else "". */
static void suggestion(const char *id, char *out, size_t size)
{
    char raw[ES_ID_MAX + 1];
    size_t len = 0;
    es_buf b = ES_BUF_INIT;
    out[0] = '\0';
    if (es_id_unescape(id, strlen(id), raw, sizeof raw, &len) != ES_OK)
        return;
    tool_append_display_id(&b, raw, len);
    if (b.len > 0 && b.len < 512)
        snprintf(out, size, "; the raw id would be %.*s", (int)b.len, (const char *)b.data);
    es_buf_free(&b);
}

int tool_id_check(const char *id, const char *option, bool raw_id, bool refuse)
{
    if (id == NULL || raw_id || !tool_id_looks_escaped(id))
        return ES_EXIT_OK;
    char hint[600];
    suggestion(id, hint, sizeof hint);
    if (refuse)
        return es_cli_usage("%s '%.200s' looks escaped as in a subject (%%XX): ids are given "
                            "raw%s. If the id really is this text, add --raw-id",
                            option, id, hint);
    es_cli_error("warning: %s '%.200s' looks escaped as in a subject (%%XX): ids are given raw%s "
                 "(--raw-id: no warning)",
                 option, id, hint);
    return ES_EXIT_OK;
}
