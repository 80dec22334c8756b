/* es-tool append: one event, or a JSONL file of events as one atomic batch.
 * Everything is read, parsed, encoded and checked before anything is sent,
 * so bad input never leaves half a batch behind. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <es/codec.h>
#include <es/json.h>

#include "estool.h"
#include "idtext.h"

#define META_MAX    64
#define FILE_MAX    ((size_t)64 << 20)
#define ARENA_LIMIT ((size_t)512 << 20)

enum {
    OPT_DATA = 100,
    OPT_DATA_FILE,
    OPT_CODEC,
    OPT_EXPECT_SEQ,
    OPT_EXPECT_NEW,
    OPT_META,
    OPT_EVENT_ID,
    OPT_BATCH,
    OPT_SCHEMA,
};

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"data", 'd', true, OPT_DATA},
    {"data-file", 0, true, OPT_DATA_FILE},
    {"codec", 'c', true, OPT_CODEC},
    {"expect-seq", 0, true, OPT_EXPECT_SEQ},
    {"expect-new", 0, false, OPT_EXPECT_NEW},
    {"meta", 'm', true, OPT_META},
    {"event-id", 0, true, OPT_EVENT_ID},
    {"tenant", 0, true, OPT_TENANT},
    {"batch", 'b', true, OPT_BATCH},
    {"schema", 0, true, OPT_SCHEMA},
    {"raw-id", 0, false, OPT_RAW_ID},
    TOOL_OPT_MASTER_KEY,
    {NULL, 0, false, 0},
};

/* What one append needs beyond the specs: the encoded payloads and the
 * parsed values the specs point into. */
typedef struct append_job {
    es_event_spec specs[ES_BATCH_MAX];
    es_buf payloads[ES_BATCH_MAX];
    es_meta meta[META_MAX]; /* for the single event */
    es_meta *batch_meta[ES_BATCH_MAX];
    size_t n;
    size_t lines[ES_BATCH_MAX]; /* the batch file's line of each event */
    es_arena *arena;
    char *file; /* a file read whole (data or batch) */
} append_job;

static void job_free(append_job *j)
{
    for (size_t i = 0; i < ES_BATCH_MAX; i++) {
        es_buf_free(&j->payloads[i]);
        free(j->batch_meta[i]);
    }
    es_arena_destroy(j->arena);
    free(j->file);
    free(j);
}

/* Reads a whole file ("-": stdin) of at most FILE_MAX bytes. */
static es_status read_file(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return es_error(ES_ERR_IO, "cannot open '%.200s': %s", path, strerror(errno));
    es_buf b = ES_BUF_INIT;
    es_status s = ES_OK;
    char chunk[65536];
    size_t n;
    while (s == ES_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > FILE_MAX)
            s = es_error(ES_ERR_TOO_LARGE, "'%.200s' is over %zu MiB", path, FILE_MAX >> 20);
        else
            s = es_buf_append(&b, chunk, n);
    }
    if (s == ES_OK && ferror(f))
        s = es_error(ES_ERR_IO, "cannot read '%.200s'", path);
    if (f != stdin)
        fclose(f);
    if (s == ES_OK)
        s = es_buf_append_byte(&b, '\0');
    if (s != ES_OK) {
        es_buf_free(&b);
        return s;
    }
    *out = (char *)b.data;
    *len = b.len - 1;
    return ES_OK;
}

/* The payload of `value` in `codec`; `line`: the batch file's (0: the
 * single event, which has no number). */
static es_status encode(const char *codec, const es_value *value, es_buf *out, size_t line)
{
    es_status s = es_codec_encode(codec, value, out);
    if (s != ES_OK && line > 0)
        return tool_error_chain(s, "line %zu: data cannot be written as %s", line, codec);
    if (s != ES_OK)
        return tool_error_chain(s, "data cannot be written as %s", codec);
    return ES_OK;
}

/* ---- one event from the command line --------------------------------------- */

typedef struct single_args {
    const char *type, *id, *event, *tenant, *event_id, *codec;
    const char *data, *data_file;
    es_expect expect;
    uint64_t expect_seq, schema;
    const char *meta[META_MAX];
    size_t nmeta;
    bool raw_id; /* --raw-id: take an id that looks escaped as it is */
} single_args;

static es_status build_single(append_job *j, const single_args *a)
{
    es_event_spec *e = &j->specs[0];
    es_event_spec_init(e);
    e->tenant = a->tenant;
    e->entity_type = a->type;
    e->entity_id = a->id;
    e->event_type = a->event;
    e->event_id = a->event_id;
    e->expect = a->expect;
    e->expect_seq = a->expect_seq;
    e->schema = (uint32_t)a->schema;
    e->codec = a->codec ? a->codec : (a->data || a->data_file) ? "json" : "binary";
    for (size_t i = 0; i < a->nmeta; i++) {
        const char *eq = strchr(a->meta[i], '=');
        char *key = eq ? es_arena_strndup(j->arena, a->meta[i], (size_t)(eq - a->meta[i])) : NULL;
        if (key == NULL)
            return es_error(ES_ERR_INVALID, "--meta takes KEY=VALUE, not '%.60s'", a->meta[i]);
        j->meta[i] = (es_meta){key, eq + 1};
    }
    e->meta = j->meta;
    e->meta_count = a->nmeta;
    es_status s = ES_OK;
    if (a->data != NULL) {
        es_value *v = NULL;
        s = es_json_decode(a->data, strlen(a->data), NULL, j->arena, &v);
        if (s != ES_OK)
            return tool_error_chain(s, "--data is not valid JSON");
        s = encode(e->codec, v, &j->payloads[0], 0);
    } else if (a->data_file != NULL) {
        size_t len = 0;
        s = read_file(a->data_file, &j->file, &len);
        es_value *v = NULL;
        /* The file is the payload as it is: it must read in its codec. */
        if (s == ES_OK &&
            es_codec_decode(e->codec, (const uint8_t *)j->file, len, j->arena, &v) != ES_OK)
            s = tool_error_chain(ES_ERR_DECODE, "'%.200s' is not valid %s", a->data_file, e->codec);
        if (s == ES_OK)
            s = es_buf_append(&j->payloads[0], j->file, len);
    } else if (es_codec_find(e->codec) == NULL) {
        s = es_error(ES_ERR_NO_CODEC, "no codec '%.64s'", e->codec);
    } else if (strcmp(e->codec, "binary") != 0) {
        s = es_error(ES_ERR_INVALID, "no data given: use --data or --data-file with codec %s",
                     e->codec);
    }
    e->data = j->payloads[0].data;
    e->data_len = j->payloads[0].len;
    j->n = 1;
    return s;
}

/* ---- a batch file ------------------------------------------------------------ */

static const char *text_of(const es_value *v)
{
    return v && v->kind == ES_VALUE_STRING ? v->u.str.ptr : NULL;
}

static es_status line_error(size_t line, const char *what)
{
    return es_error(ES_ERR_INVALID, "line %zu: %s", line, what);
}

static es_status batch_meta(append_job *j, es_event_spec *e, const es_value *m, size_t line)
{
    if (m == NULL)
        return ES_OK;
    if (m->kind != ES_VALUE_MAP || m->u.map.count > META_MAX)
        return line_error(line, "\"meta\" must be an object of at most 64 strings");
    es_meta *meta = calloc(m->u.map.count ? m->u.map.count : 1, sizeof *meta);
    if (meta == NULL)
        return ES_ERR_NOMEM;
    j->batch_meta[j->n] = meta;
    for (size_t i = 0; i < m->u.map.count; i++) {
        const es_value_entry *en = &m->u.map.entries[i];
        if (text_of(&en->value) == NULL)
            return line_error(line, "\"meta\" values must be strings");
        meta[i] = (es_meta){en->key, text_of(&en->value)};
    }
    e->meta = meta;
    e->meta_count = m->u.map.count;
    return ES_OK;
}

static es_status batch_expect(es_event_spec *e, const es_value *x, size_t line)
{
    if (x == NULL)
        return ES_OK;
    if (es_value_is_string(x, "new")) {
        e->expect = ES_EXPECT_NEW;
        return ES_OK;
    }
    if (x->kind == ES_VALUE_INT && x->u.i > 0) {
        e->expect = ES_EXPECT_SEQ;
        e->expect_seq = (uint64_t)x->u.i;
        return ES_OK;
    }
    return line_error(line, "\"expect\" is \"new\" or a sequence number > 0");
}

static bool known_key(const char *k)
{
    static const char *const keys[] = {"type",     "id",   "event",  "data",   "codec",
                                       "event_id", "meta", "expect", "tenant", "schema"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static es_status batch_event(append_job *j, const es_value *o, size_t line, bool raw_id)
{
    if (o->kind != ES_VALUE_MAP)
        return line_error(line, "each line is one JSON object");
    for (size_t i = 0; i < o->u.map.count; i++)
        if (!known_key(o->u.map.entries[i].key))
            return es_error(ES_ERR_INVALID, "line %zu: unknown field \"%.40s\"", line,
                            o->u.map.entries[i].key);
    es_event_spec *e = &j->specs[j->n];
    es_event_spec_init(e);
    const es_value *id = es_value_get(o, "id");
    e->entity_type = text_of(es_value_get(o, "type"));
    e->event_type = text_of(es_value_get(o, "event"));
    e->tenant = text_of(es_value_get(o, "tenant"));
    e->event_id = text_of(es_value_get(o, "event_id"));
    const es_value *codec = es_value_get(o, "codec");
    /* as for one event: json when there is data, else binary (no data is no JSON document) */
    e->codec = codec ? text_of(codec) : es_value_get(o, "data") ? "json" : "binary";
    if (e->entity_type == NULL || e->event_type == NULL || text_of(id) == NULL || e->codec == NULL)
        return line_error(line, "\"type\", \"id\" and \"event\" are required strings");
    e->entity_id = id->u.str.ptr;
    e->entity_id_len = id->u.str.len;
    if (e->entity_id_len == 0)
        return line_error(line, "\"id\" must not be empty");
    if (!raw_id && tool_id_looks_escaped(e->entity_id))
        return line_error(line, "\"id\" looks escaped as in a subject (%XX): ids are given raw; "
                                "if it really is this text, add --raw-id");
    es_status s = batch_meta(j, e, es_value_get(o, "meta"), line);
    if (s == ES_OK)
        s = batch_expect(e, es_value_get(o, "expect"), line);
    const es_value *schema = es_value_get(o, "schema");
    if (s == ES_OK && schema != NULL) {
        if (schema->kind != ES_VALUE_INT || schema->u.i < 1 || schema->u.i > UINT32_MAX)
            s = line_error(line, "\"schema\" is a version from 1 to 4294967295");
        else
            e->schema = (uint32_t)schema->u.i;
    }
    const es_value *data = es_value_get(o, "data");
    j->lines[j->n] = line;
    if (s == ES_OK && data != NULL)
        s = encode(e->codec, data, &j->payloads[j->n], line);
    else if (s == ES_OK && es_codec_find(e->codec) == NULL)
        s = es_error(ES_ERR_NO_CODEC, "line %zu: no codec '%.64s'", line, e->codec);
    e->data = j->payloads[j->n].data;
    e->data_len = j->payloads[j->n].len;
    j->n++;
    return s;
}

static es_status build_batch(append_job *j, const char *path, bool raw_id)
{
    size_t len = 0;
    es_status s = read_file(path, &j->file, &len);
    size_t line = 0;
    for (char *p = j->file, *end = j->file + len; s == ES_OK && p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *text = p;
        p += n + 1;
        if (strspn(text, " \t\r") >= n)
            continue; /* blank line */
        if (j->n == ES_BATCH_MAX)
            return es_error(ES_ERR_TOO_LARGE, "a batch holds at most %d events (it is never split)",
                            ES_BATCH_MAX);
        es_value *v = NULL;
        s = es_json_decode(text, n, NULL, j->arena, &v);
        if (s != ES_OK)
            return tool_error_chain(s, "line %zu is not valid JSON", line + 1);
        s = batch_event(j, v, line + 1, raw_id);
    }
    if (s == ES_OK && j->n == 0)
        s = es_error(ES_ERR_INVALID, "'%.200s' holds no events", path);
    return s;
}

/* ---- the command ------------------------------------------------------------- */

static int parse(int argc, char **argv, es_cli_conn *conn, const char **store, single_args *a,
                 const char **batch)
{
    const char *pos[4] = {NULL};
    size_t npos = 0;
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    for (int id; (id = tool_next_option(&p, conn, NULL)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(&tool_cmd_append) - 1; /* -1: done, exit 0 */
        case OPT_DATA: a->data = p.value; break;
        case OPT_DATA_FILE: a->data_file = p.value; break;
        case OPT_CODEC: a->codec = p.value; break;
        case OPT_EVENT_ID: a->event_id = p.value; break;
        case OPT_TENANT: a->tenant = p.value; break;
        case OPT_BATCH: *batch = p.value; break;
        case OPT_EXPECT_NEW: a->expect = ES_EXPECT_NEW; break;
        case OPT_RAW_ID: a->raw_id = true; break;
        case OPT_SCHEMA:
            if (!es_cli_parse_u64(p.value, "--schema", &a->schema))
                return ES_EXIT_USAGE;
            if (a->schema == 0 || a->schema > UINT32_MAX)
                return es_cli_usage("--schema is a version from 1 to %u", UINT32_MAX);
            break;
        case OPT_EXPECT_SEQ:
            if (!es_cli_parse_u64(p.value, "--expect-seq", &a->expect_seq))
                return ES_EXIT_USAGE;
            if (a->expect_seq == 0)
                return es_cli_usage(
                    "--expect-seq takes a sequence > 0 (use --expect-new for none)");
            a->expect = ES_EXPECT_SEQ;
            break;
        case OPT_META:
            if (a->nmeta == META_MAX)
                return es_cli_usage("at most %d --meta entries", META_MAX);
            a->meta[a->nmeta++] = p.value;
            break;
        case ES_CLI_ARG:
            if (npos == 4)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            pos[npos++] = p.value;
            break;
        }
    }
    if (a->data && a->data_file)
        return es_cli_usage("--data and --data-file exclude each other");
    if (a->expect_seq && a->expect == ES_EXPECT_NEW)
        return es_cli_usage("--expect-seq and --expect-new exclude each other");
    *store = pos[0];
    if (*batch != NULL) {
        if (npos != 1 || a->data || a->data_file || a->codec || a->expect != ES_EXPECT_ANY ||
            a->nmeta || a->event_id || a->tenant || a->schema)
            return es_cli_usage("with --batch, give the store only: every event's fields are in "
                                "the file");
        return ES_EXIT_OK;
    }
    if (npos != 4)
        return es_cli_usage("es-tool append STORE TYPE ID EVENT (or STORE --batch FILE)");
    a->type = pos[1];
    a->id = pos[2];
    a->event = pos[3];
    return tool_id_check(a->id, "ID", a->raw_id, true);
}

/* Reports a refused append; a shredded entity in the CLI's words. */
/* The library numbers a batch's events from 0 ("event 2: …"); es-tool
 * speaks of the batch file's lines ("line 3: …"), and of one event without
 * a number: the error text is said again so. */
static void renumber_error(const append_job *j, bool batch, es_status s)
{
    const char *e = es_last_error();
    char text[1024];
    size_t o = 0;
    while (*e != '\0' && o + 1 < sizeof text) {
        unsigned long k = 0;
        int used = 0;
        if (strncmp(e, "event ", 6) == 0 && sscanf(e, "event %lu%n", &k, &used) == 1 && k < j->n &&
            (e[used] == ':' || e[used] == '\'')) {
            if (batch)
                o += (size_t)snprintf(text + o, sizeof text - o, "line %zu", j->lines[k]);
            else if (e[used] == ':' && e[used + 1] == ' ')
                used += 2; /* "event 0: " of the single event: dropped */
            e += used;
            if (o >= sizeof text)
                o = sizeof text - 1;
            continue;
        }
        text[o++] = *e++;
    }
    text[o] = '\0';
    es_error_code(s, es_last_error_code(), "%s", text);
}

static int append_failed(es_status s, const single_args *a, const append_job *j, bool batch)
{
    renumber_error(j, batch, s);
    if (s != ES_ERR_SHREDDED)
        return es_cli_fail(s, NULL);
    if (batch)
        return es_cli_fail(tool_error_chain(s, "an entity of the batch was shredded (es-tool "
                                               "shred): nothing more can be appended to it"),
                           NULL);
    es_buf id = ES_BUF_INIT;
    tool_append_display_id(&id, a->id, strlen(a->id));
    es_cli_error("%s %.*s was shredded (es-tool shred): nothing more can be appended to it",
                 a->type, (int)id.len, (const char *)id.data);
    es_buf_free(&id);
    return es_cli_exit_code(s);
}

static int run(int argc, char **argv)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-tool append");
    single_args a;
    memset(&a, 0, sizeof a);
    const char *store = NULL, *batch = NULL;
    int rc = parse(argc, argv, &conn, &store, &a, &batch);
    if (rc != ES_EXIT_OK)
        return rc < 0 ? ES_EXIT_OK : rc;
    if (!tool_store_name_valid(store))
        return ES_EXIT_USAGE;
    append_job *j = calloc(1, sizeof *j);
    es_status s = j ? es_arena_create(ARENA_LIMIT, &j->arena) : ES_ERR_NOMEM;
    if (s == ES_OK)
        s = batch ? build_batch(j, batch, a.raw_id) : build_single(j, &a);
    if (s != ES_OK) {
        rc = es_cli_fail(s, NULL);
        if (j)
            job_free(j);
        return rc;
    }
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&conn, store, &nc, &st);
    if (rc == ES_EXIT_OK) {
        es_append_result res;
        s = es_append_batch(st, j->specs, j->n, &res);
        if (s == ES_OK)
            printf("{\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"count\":%zu,"
                   "\"duplicate\":%s}\n",
                   res.first_seq, res.last_seq, res.count, res.duplicate ? "true" : "false");
        else
            rc = append_failed(s, &a, j, batch != NULL);
        tool_close(nc, st);
    }
    job_free(j);
    return rc;
}

const tool_command tool_cmd_append = {
    "append",
    "append one event, or a JSONL file of events as one atomic batch",
    run,
    "Usage: es-tool append STORE TYPE ID EVENT [options]\n"
    "       es-tool append STORE --batch FILE\n"
    "\n"
    "Appends one event to entity TYPE/ID and prints where it was stored:\n"
    "{\"first_seq\":N,\"last_seq\":N,\"count\":1,\"duplicate\":false}.\n"
    "\n"
    "Options:\n"
    "  -d, --data JSON        the event's data as JSON (atproto form: {\"$bytes\": ...}\n"
    "                         and {\"$link\": ...} are bytes and CIDs), written in\n"
    "                         the codec (default json)\n"
    "      --data-file FILE   the payload bytes as they are, already in the codec\n"
    "                         ('-': standard input); checked by decoding it\n"
    "  -c, --codec CODEC      json (default with data), dag-cbor, cbor, msgpack or\n"
    "                         binary (default without data: an empty payload)\n"
    "      --expect-seq N     only if the entity's last event is at sequence N\n"
    "      --expect-new       only if the entity has no events yet\n"
    "  -m, --meta KEY=VALUE   metadata (Rita-Meta-KEY), repeatable\n"
    "      --event-id ID      the event id (Nats-Msg-Id): appending the same id again\n"
    "                         within the duplicate window stores nothing new\n"
    "      --tenant TENANT    the tenant (stores with tenancy)\n"
    "      --schema N         the data's schema version (Es-Schema, for upcasters)\n"
    "      --raw-id           take an ID (or a --batch file's id) that looks escaped\n"
    "                         (%XX, as in a subject) as it is; without it such an\n"
    "                         id is refused\n"
    "      --master-key-file F  the master key of an encrypting store (env\n"
    "                         ES_MASTER_KEY_FILE): required to append to one\n"
    "  -b, --batch FILE       append every event of FILE ('-': standard input) as ONE\n"
    "                         atomic batch (all or nothing, at most 1000 events)\n"
    "  -h, --help             this help\n"
    "\n"
    "A batch file has one JSON object a line with the fields type, id, event\n"
    "(required), data, codec (json with data, else binary), event_id, meta (an object of\n"
    "strings), expect (\"new\" or a sequence), tenant and schema.\n"
    "\n"
    "ID is the raw id, as replay and entities print it (quoted for the shell when\n"
    "it needs it), never the escaped token of a subject.\n"
    "\n"
    "Exit code 3 when an expectation fails (the error names the entity's actual\n"
    "last sequence) or the entity was shredded.\n"
    "\n"
    "Examples:\n"
    "  es-tool append bank account acc-42 Opened --data '{\"owner\":\"ada\"}' --expect-new\n"
    "  es-tool append bank account acc-42 Deposited --data '{\"amount\":10}' --expect-seq 7\n"
    "  es-tool append posts post p1 Created --codec dag-cbor --data '{\"text\":\"hi\"}'\n"
    "  es-tool append files doc d1 Uploaded --codec binary --data-file report.pdf\n"
    "  es-tool append bank --batch transfers.jsonl\n",
};
