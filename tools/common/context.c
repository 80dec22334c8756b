/* The nats CLI's context files, read-only (context.h). */
#include "context.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#define PATH_MAX_LEN   4096
#define NAME_MAX_LEN   255
#define FILE_MAX_BYTES (1 << 20) /* a context is a few hundred bytes */

/* The loaded context, kept for the process (its strings are handed out). */
static json_t *loaded;

/* $XDG_CONFIG_HOME/nats, else ~/.config/nats, as the nats CLI finds it. */
static es_status config_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (xdg != NULL && *xdg != '\0')
        n = snprintf(out, size, "%s/nats", xdg);
    else if (home != NULL && *home != '\0')
        n = snprintf(out, size, "%s/.config/nats", home);
    else
        return es_error(ES_ERR_INVALID, "nats contexts: neither XDG_CONFIG_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= size)
        return es_error(ES_ERR_INVALID, "nats contexts: the configuration path is too long");
    return ES_OK;
}

/* The name in context.txt into `out` ("" when none is selected). */
static es_status selected_name(const char *dir, char out[NAME_MAX_LEN + 1])
{
    char path[PATH_MAX_LEN];
    out[0] = '\0';
    int written = snprintf(path, sizeof path, "%s/context.txt", dir);
    if (written < 0 || (size_t)written >= sizeof path)
        return es_error(ES_ERR_INVALID, "nats contexts: the configuration path is too long");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ES_OK;
    size_t n = fread(out, 1, NAME_MAX_LEN, f);
    fclose(f);
    out[n] = '\0';
    /* the nats CLI trims white space around the name */
    size_t start = strspn(out, " \t\r\n");
    memmove(out, out + start, n - start + 1);
    for (size_t len = strlen(out); len > 0 && strchr(" \t\r\n", out[len - 1]); len--)
        out[len - 1] = '\0';
    return ES_OK;
}

/* The nats CLI's rule: not empty, no "..", no '/'. */
static bool valid_name(const char *name)
{
    return *name != '\0' && strlen(name) <= NAME_MAX_LEN && strstr(name, "..") == NULL &&
           strchr(name, '/') == NULL;
}

static es_status read_file(const char *path, const char *name, json_t **out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return es_error(ES_ERR_INVALID, "unknown nats context '%s' (no %s)", name, path);
    if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX_BYTES)
        return es_error(ES_ERR_INVALID, "nats context '%s': %s is not a context file", name, path);
    json_error_t e;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (*out == NULL)
        return es_error(ES_ERR_INVALID, "nats context '%s': %s, line %d: %s", name, path, e.line,
                        e.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        return es_error(ES_ERR_INVALID, "nats context '%s': %s is not a JSON object", name, path);
    }
    return ES_OK;
}

/* ---- fields ------------------------------------------------------------------- */

/* The fields taken, by their names in the file and where they go. */
#define FIELD(json_name, member)                                                                   \
    {                                                                                              \
        json_name, offsetof(es_cli_context, member)                                                \
    }
static const struct {
    const char *name;
    size_t offset;
} taken[] = {
    FIELD("url", url),
    FIELD("user", user),
    FIELD("password", password),
    FIELD("token", token),
    FIELD("creds", creds),
    FIELD("nkey", nkey),
    FIELD("cert", cert),
    FIELD("key", key),
    FIELD("ca", ca),
    FIELD("jetstream_domain", js_domain),
    FIELD("jetstream_api_prefix", js_api_prefix),
};

/* Fields that do not change how es connects: a label, the CLI's colours,
 * where JetStream advisories are (es reads none). */
static const char *const ignored[] = {"name", "description", "color_scheme",
                                      "jetstream_event_prefix"};

/* Why es cannot honour a field the nats CLI knows. */
static const struct {
    const char *name, *why;
} refused[] = {
    {"socks_proxy", "SOCKS proxies are not supported"},
    {"inbox_prefix", "custom inbox prefixes are not supported"},
    {"nsc", "nsc lookups are not supported: give the credentials file (creds)"},
    {"user_jwt", "an inline user JWT is not supported: use a credentials file (creds)"},
    {"user_seed", "an inline user seed is not supported: use a credentials file (creds)"},
    {"tls_first", "a TLS handshake before the server's INFO is not supported"},
    {"windows_cert_store", "Windows certificate stores are not supported"},
    {"windows_cert_match_by", "Windows certificate stores are not supported"},
    {"windows_cert_match", "Windows certificate stores are not supported"},
    {"windows_ca_certs_match", "Windows certificate stores are not supported"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* False, null, "", [] and {} set nothing: the nats CLI writes every field. */
static bool is_unset(const json_t *v)
{
    return json_is_null(v) || json_is_false(v) ||
           (json_is_string(v) && json_string_length(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}

static es_status take_string(const char *ctx, const char *key, const json_t *v, size_t offset,
                             es_cli_context *out)
{
    if (!json_is_string(v))
        return es_error(ES_ERR_INVALID, "nats context '%s': '%s' must be a string", ctx, key);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return es_error(ES_ERR_INVALID, "nats context '%s': '%s' holds a NUL byte", ctx, key);
    /* jsm.go resolves creds through schemes (nsc://, op://, env://...) */
    if (strcmp(key, "creds") == 0 && strstr(s, "://") != NULL)
        return es_error(ES_ERR_INVALID,
                        "nats context '%s': creds '%.100s': credential lookups are not "
                        "supported: give the credentials file",
                        ctx, s);
    *(const char **)((char *)out + offset) = s;
    return ES_OK;
}

static es_status take_field(const char *ctx, const char *key, const json_t *v, es_cli_context *out)
{
    for (size_t i = 0; i < COUNT(taken); i++)
        if (strcmp(key, taken[i].name) == 0)
            return is_unset(v) ? ES_OK : take_string(ctx, key, v, taken[i].offset, out);
    for (size_t i = 0; i < COUNT(ignored); i++)
        if (strcmp(key, ignored[i]) == 0)
            return ES_OK;
    if (is_unset(v))
        return ES_OK;
    for (size_t i = 0; i < COUNT(refused); i++)
        if (strcmp(key, refused[i].name) == 0)
            return es_error(ES_ERR_INVALID, "nats context '%s': '%s' is set: %s", ctx, key,
                            refused[i].why);
    return es_error(ES_ERR_INVALID,
                    "nats context '%s': unknown setting '%.64s' (es-tool does not know what it "
                    "would change)",
                    ctx, key);
}

static es_status take_fields(const char *ctx, json_t *doc, es_cli_context *out)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        es_status s = take_field(ctx, key, v, out);
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

es_status es_cli_context_load(const char *name, es_cli_context *out, bool *found)
{
    memset(out, 0, sizeof *out);
    *found = false;
    char dir[PATH_MAX_LEN], selected[NAME_MAX_LEN + 1];
    es_status s = config_dir(dir, sizeof dir);
    if (s != ES_OK)
        return name != NULL && *name != '\0' ? s : ES_OK;
    if (name == NULL || *name == '\0') {
        s = selected_name(dir, selected);
        if (s != ES_OK || selected[0] == '\0')
            return s;
        name = selected;
    }
    if (!valid_name(name))
        return es_error(ES_ERR_INVALID, "invalid nats context name '%.64s'", name);
    char path[PATH_MAX_LEN + NAME_MAX_LEN + 16];
    snprintf(path, sizeof path, "%s/context/%s.json", dir, name);
    json_t *doc = NULL;
    s = read_file(path, name, &doc);
    if (s != ES_OK)
        return s;
    s = take_fields(name, doc, out);
    /* the name is kept with the document, so that it outlives `selected` */
    if (s == ES_OK && json_object_set_new(doc, "\x01name", json_string(name)) != 0)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s != ES_OK) {
        json_decref(doc);
        memset(out, 0, sizeof *out);
        return s;
    }
    json_decref(loaded);
    loaded = doc;
    out->name = json_string_value(json_object_get(doc, "\x01name"));
    *found = true;
    return ES_OK;
}
