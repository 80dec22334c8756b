/* Exit codes, messages and the option parser of the command-line tools. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char prog_name[64] = "es";
static es_cli_error_writer error_writer;

void es_cli_set_prog(const char *prog)
{
    snprintf(prog_name, sizeof prog_name, "%s", prog);
}
const char *es_cli_prog(void)
{
    return prog_name;
}

int es_cli_exit_code(es_status s)
{
    switch (s) {
    case ES_OK: return ES_EXIT_OK;
    case ES_ERR_NOT_FOUND: return ES_EXIT_NOT_FOUND;
    case ES_ERR_EXISTS:
    case ES_ERR_CONFLICT:
    case ES_ERR_SHREDDED: /* the entity exists, and its state refuses the write */
    case ES_ERR_DUPLICATE: return ES_EXIT_CONFLICT;
    case ES_ERR_INVALID:
    case ES_ERR_TOO_LARGE:
    case ES_ERR_DECODE:
    case ES_ERR_ENCODE:
    case ES_ERR_NO_CODEC:
    case ES_ERR_NO_KEY:
    case ES_ERR_CRYPTO:
    case ES_ERR_LIMIT:
    case ES_ERR_IO: return ES_EXIT_USAGE;
    case ES_ERR_PERMISSION: return ES_EXIT_PERMISSION;
    default: return ES_EXIT_SERVER; /* server, timeout, connection, protocol, memory... */
    }
}

void es_cli_set_error_writer(es_cli_error_writer writer)
{
    error_writer = writer;
}

void es_cli_error(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* One line, whatever the text holds: a server's description may not. */
    for (char *c = text; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    if (error_writer != NULL)
        error_writer(text);
    else
        fprintf(stderr, "%s: %s\n", prog_name, text);
}

int es_cli_fail(es_status s, const char *what)
{
    const char *detail = es_last_error();
    if (detail == NULL || *detail == '\0')
        detail = es_status_text(s);
    if (what != NULL && *what != '\0')
        es_cli_error("%s: %s", what, detail);
    else
        es_cli_error("%s", detail);
    return es_cli_exit_code(s);
}

int es_cli_usage(const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    es_cli_error("%s (see %s --help)", text, prog_name);
    return ES_EXIT_USAGE;
}

/* ---- option parser ----------------------------------------------------------- */

void es_cli_parser_init(es_cli_parser *p, int argc, char **argv, const es_cli_option *options)
{
    memset(p, 0, sizeof *p);
    p->argc_ = argc;
    p->argv_ = argv;
    p->tables_[0] = options;
    p->tables_[1] = es_cli_conn_options;
}

static const es_cli_option *find_long(const es_cli_parser *p, const char *name, size_t len)
{
    for (int t = 0; t < 2; t++)
        for (const es_cli_option *o = p->tables_[t]; o && o->name; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static const es_cli_option *find_letter(const es_cli_parser *p, char c)
{
    for (int t = 0; t < 2; t++)
        for (const es_cli_option *o = p->tables_[t]; o && o->name; o++)
            if (o->letter != 0 && o->letter == c)
                return o;
    return NULL;
}

/* The value of option `o` written as `flag`: inline ("--x=v") or the next argument. */
static int take_value(es_cli_parser *p, const es_cli_option *o, const char *inline_value)
{
    if (!o->has_value) {
        if (inline_value != NULL) {
            es_cli_usage("option %s takes no value", p->name);
            return ES_CLI_ERROR;
        }
        p->value = NULL;
        return o->id;
    }
    if (inline_value != NULL) {
        p->value = inline_value;
        return o->id;
    }
    if (p->index_ >= p->argc_) {
        es_cli_usage("option %s needs a value", p->name);
        return ES_CLI_ERROR;
    }
    p->value = p->argv_[p->index_++];
    return o->id;
}

int es_cli_next(es_cli_parser *p)
{
    p->value = NULL;
    p->name = NULL;
    if (p->index_ >= p->argc_)
        return ES_CLI_END;
    const char *arg = p->argv_[p->index_++];
    if (p->args_only_ || arg[0] != '-' || arg[1] == '\0') { /* "-" is an argument (stdin) */
        p->value = arg;
        return ES_CLI_ARG;
    }
    if (strcmp(arg, "--") == 0) {
        p->args_only_ = true;
        return es_cli_next(p);
    }
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        snprintf(p->flag_, sizeof p->flag_, "--%.*s", (int)len, name);
        p->name = p->flag_;
        const es_cli_option *o = find_long(p, name, len);
        if (o == NULL) {
            es_cli_usage("unknown option %s", p->flag_);
            return ES_CLI_ERROR;
        }
        return take_value(p, o, eq ? eq + 1 : NULL);
    }
    /* "-x" or "-xVALUE"; a negative number is not an option. */
    snprintf(p->flag_, sizeof p->flag_, "-%c", arg[1]);
    p->name = p->flag_;
    const es_cli_option *o = find_letter(p, arg[1]);
    if (o == NULL) {
        es_cli_usage("unknown option %s", p->flag_);
        return ES_CLI_ERROR;
    }
    return take_value(p, o, arg[2] != '\0' ? arg + 2 : NULL);
}

/* ---- numbers ----------------------------------------------------------------- */

bool es_cli_parse_u64(const char *text, const char *what, uint64_t *out)
{
    if (text == NULL || *text < '0' || *text > '9') {
        es_cli_usage("%s must be a non-negative integer, not '%.40s'", what, text ? text : "");
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        es_cli_usage("%s must be a non-negative integer, not '%.40s'", what, text);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* One leading integer of `s`, at most 18 digits (no overflow when scaled below). */
static bool leading_int(const char **s, int64_t *v)
{
    const char *c = *s;
    int64_t n = 0;
    int digits = 0;
    for (; *c >= '0' && *c <= '9'; c++, digits++) {
        if (digits == 18)
            return false;
        n = n * 10 + (*c - '0');
    }
    *s = c;
    *v = n;
    return digits > 0;
}

static bool scaled_add(int64_t *total, int64_t v, int64_t unit)
{
    if (v > (INT64_MAX - *total) / unit)
        return false;
    *total += v * unit;
    return true;
}

/* One number of a duration at *s: digits with an optional fraction, as Go
 * writes them ("90", "1.5", ".5"); at most 18 digits before the point, and
 * the fraction's first 9 digits count (nanoseconds). */
static bool duration_number(const char **s, int64_t *whole, int64_t *frac, int64_t *frac_scale)
{
    const char *c = *s;
    size_t digits = strspn(c, "0123456789");
    bool ok = digits == 0 ? (*whole = 0, true) : leading_int(&c, whole);
    *frac = 0;
    *frac_scale = 1;
    if (ok && *c == '.') {
        size_t fraction = strspn(++c, "0123456789");
        for (size_t i = 0; i < fraction && i < 9; i++) {
            *frac = *frac * 10 + (c[i] - '0');
            *frac_scale *= 10;
        }
        c += fraction;
        digits += fraction;
    }
    *s = c;
    return ok && digits > 0;
}

bool es_cli_duration_value(const char *text, int64_t *ns)
{
    static const struct {
        const char *suffix;
        int64_t unit;
    } units[] = {{"ns", 1},
                 {"us", 1000},
                 {"\xc2\xb5s", 1000}, /* Go's µs, in UTF-8 */
                 {"ms", 1000000},
                 {"s", 1000000000LL},
                 {"m", 60LL * 1000000000LL},
                 {"h", 3600LL * 1000000000LL},
                 {"d", 86400LL * 1000000000LL}};
    const char *s = text ? text : "";
    int64_t total = 0, v;
    bool ok = *s != '\0';
    if (ok && strspn(s, "0123456789") == strlen(s)) /* a bare number: seconds */
        ok = leading_int(&s, &v) && scaled_add(&total, v, 1000000000LL);
    else
        while (ok && *s != '\0') {
            size_t best = 0;
            int64_t unit = 0, frac, frac_scale;
            ok = duration_number(&s, &v, &frac, &frac_scale);
            for (size_t i = 0; ok && i < sizeof units / sizeof units[0]; i++) {
                size_t n = strlen(units[i].suffix);
                if (n > best && strncmp(s, units[i].suffix, n) == 0) {
                    best = n;
                    unit = units[i].unit;
                }
            }
            /* every unit at or above a fraction's scale is a multiple of it; a
             * finer fraction of a coarse unit is below a nanosecond */
            ok = ok && best > 0 && scaled_add(&total, v, unit) &&
                 (unit < frac_scale || scaled_add(&total, frac, unit / frac_scale));
            s += best;
        }
    if (ok)
        *ns = total;
    return ok;
}

bool es_cli_parse_duration(const char *text, const char *what, int64_t *ns)
{
    if (es_cli_duration_value(text, ns))
        return true;
    es_cli_usage("%s must be a duration such as 90s, 1.5s, 12h or 7d, not '%.40s'", what,
                 text ? text : "");
    return false;
}

bool es_cli_parse_size(const char *text, const char *what, int64_t *bytes)
{
    const char *s = text ? text : "";
    int64_t v = 0, unit = 1;
    bool ok = leading_int(&s, &v);
    if (ok && *s != '\0') {
        switch (*s) {
        case 'K':
        case 'k': unit = 1024; break;
        case 'M':
        case 'm': unit = 1024 * 1024; break;
        case 'G':
        case 'g': unit = 1024 * 1024 * 1024; break;
        default: ok = false;
        }
        s++;
        if (*s == 'B' || *s == 'b' || (*s == 'i' && (s[1] == 'B' || s[1] == 'b')))
            s += *s == 'i' ? 2 : 1;
        ok = ok && *s == '\0';
    }
    int64_t total = 0;
    if (!ok || !scaled_add(&total, v, unit)) {
        es_cli_usage("%s must be a size such as 4096, 64K or 8M, not '%.40s'", what,
                     text ? text : "");
        return false;
    }
    *bytes = total;
    return true;
}

void es_cli_buf_printf(es_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        es_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

#define ENV_NAME_MAX 64

/* "ES_MAX_HELD" for "max-held"; false when too long. */
static bool env_name(const char *option, char *out, size_t size)
{
    int n = snprintf(out, size, "ES_%s", option);
    if (n < 0 || (size_t)n >= size)
        return false;
    for (char *c = out; *c; c++)
        *c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    return true;
}

static int env_flag(const char *name, const char *value, bool *on)
{
    if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes"))
        return *on = true, 0;
    if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no"))
        return *on = false, 0;
    es_cli_usage("%s: '%.40s' is neither 1/true/yes nor 0/false/no", name, value);
    return ES_CLI_ERROR;
}

int es_cli_env_apply_options(const es_cli_option *opts, es_cli_env_set set, void *closure)
{
    for (const es_cli_option *o = opts; o->name != NULL; o++) {
        char name[ENV_NAME_MAX];
        if (!strcmp(o->name, "help") || !strcmp(o->name, "version") ||
            !env_name(o->name, name, sizeof name))
            continue;
        const char *value = getenv(name);
        if (value == NULL || value[0] == '\0')
            continue;
        bool on = true;
        if (!o->has_value && env_flag(name, value, &on) == ES_CLI_ERROR)
            return ES_CLI_ERROR;
        if (on && set(o->id, o->has_value ? value : NULL, closure) == ES_CLI_ERROR)
            return ES_CLI_ERROR;
    }
    return 0;
}

int es_cli_env_apply(const es_cli_env *table, es_cli_env_set set, void *closure)
{
    for (const es_cli_env *e = table; e->name != NULL; e++) {
        const char *value = getenv(e->name);
        if (value != NULL && value[0] != '\0' && set(e->id, value, closure) == ES_CLI_ERROR)
            return ES_CLI_ERROR;
    }
    return 0;
}
