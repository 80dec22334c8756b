/* es-tool stores, create and delete: the stores of a server and their
 * lifecycle. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "estool.h"

/* ---- stores -------------------------------------------------------------------- */

static const es_cli_option list_options[] = {
    TOOL_OPT_HELP,
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

typedef struct listing {
    bool as_json;
    size_t count;
} listing;

static es_status print_store(const char *name, const es_store_info *info, void *closure)
{
    listing *l = closure;
    char last[ES_TIME_MAX] = "";
    if (info->events > 0 && info->last_time_ns != 0)
        es_time_format(info->last_time_ns, last);
    if (l->as_json) {
        json_t *j = json_pack(
            "{s:s, s:I, s:I, s:I, s:b, s:o}", "store", name, "events", (json_int_t)info->events,
            "bytes", (json_int_t)info->bytes, "last_seq", (json_int_t)info->last_seq, "tenancy",
            info->config.tenancy, "last_time", last[0] ? json_string(last) : json_null());
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        bool ok = text && tool_write(text, strlen(text)) && tool_write("\n", 1);
        free(text);
        if (!ok)
            return ES_ERR_IO;
    } else {
        char size[32];
        tool_size_text(info->bytes, size);
        if (l->count == 0)
            printf("%-32s %12s %12s %-8s %s\n", "STORE", "EVENTS", "BYTES", "TENANCY",
                   "LAST EVENT");
        printf("%-32s %12" PRIu64 " %12s %-8s %s\n", name, info->events, size,
               info->config.tenancy ? "yes" : "no", last[0] ? last : "-");
    }
    l->count++;
    return ES_OK;
}

static int run_stores(int argc, char **argv)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-tool stores");
    listing l = {false, 0};
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, list_options);
    for (int id; (id = tool_next_option(&p, &conn, NULL)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(&tool_cmd_stores);
        case OPT_JSON: l.as_json = true; break;
        case ES_CLI_ARG: return es_cli_usage("unexpected argument '%.40s'", p.value);
        }
    }
    natsConnection *nc = NULL;
    int rc = tool_connect(&conn, &nc);
    if (rc != ES_EXIT_OK)
        return rc;
    es_store_options opts;
    es_cli_store_options(&conn, &opts);
    es_status s = es_store_list(nc, &opts, print_store, &l);
    if (s == ES_ERR_IO && tool_output_closed())
        s = ES_OK;
    if (s != ES_OK)
        rc = es_cli_fail(s, "listing stores");
    else if (l.count == 0 && !l.as_json)
        fprintf(stderr, "no stores\n");
    tool_close(nc, NULL);
    return rc;
}

const tool_command tool_cmd_stores = {
    "stores",
    "list the event stores on the server",
    run_stores,
    "Usage: es-tool stores [--json]\n"
    "\n"
    "Lists the server's event stores (streams ES_<name> over $ES.<name>.>) with\n"
    "their event count, size, tenancy and the time of their last event.\n"
    "\n"
    "Options:\n"
    "      --json           one JSON object a line instead of a table\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool stores\n"
    "  es-tool stores --server nats://nats.internal:4222 --creds ops.creds\n",
};

/* ---- create -------------------------------------------------------------------- */

enum {
    OPT_REPLICAS = 100,
    OPT_MAX_AGE,
    OPT_MAX_BYTES,
    OPT_MAX_EVENTS,
    OPT_MAX_EVENT_SIZE,
    OPT_DUPLICATE_WINDOW,
    OPT_TENANCY,
    OPT_MEMORY,
    OPT_ENCRYPT,
    OPT_COMPRESS_THRESHOLD,
    OPT_COMPRESSION,
};

static const es_cli_option create_options[] = {
    TOOL_OPT_HELP,
    {"replicas", 0, true, OPT_REPLICAS},
    {"max-age", 0, true, OPT_MAX_AGE},
    {"max-bytes", 0, true, OPT_MAX_BYTES},
    {"max-events", 0, true, OPT_MAX_EVENTS},
    {"max-event-size", 0, true, OPT_MAX_EVENT_SIZE},
    {"duplicate-window", 0, true, OPT_DUPLICATE_WINDOW},
    {"tenancy", 0, false, OPT_TENANCY},
    {"memory", 0, false, OPT_MEMORY},
    {"encrypt", 0, false, OPT_ENCRYPT},
    {"compress-threshold", 0, true, OPT_COMPRESS_THRESHOLD},
    {"compression", 0, true, OPT_COMPRESSION},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

/* Applies one create or edit option to cfg; false on a bad value
 * (reported). `editing`: a threshold of 0 turns compression off. */
static bool store_option(es_store_config *cfg, int id, const char *value, bool editing)
{
    uint64_t u = 0;
    int64_t v = 0;
    switch (id) {
    case OPT_REPLICAS:
        if (!es_cli_parse_u64(value, "--replicas", &u))
            return false;
        if (u < 1 || u > 5) {
            es_cli_usage("--replicas is 1 to 5");
            return false;
        }
        cfg->replicas = (int)u;
        return true;
    case OPT_MAX_AGE: return es_cli_parse_duration(value, "--max-age", &cfg->max_age_ns);
    case OPT_MAX_BYTES: return es_cli_parse_size(value, "--max-bytes", &cfg->max_bytes);
    case OPT_MAX_EVENTS:
        if (!es_cli_parse_u64(value, "--max-events", &u) || u > INT64_MAX)
            return false;
        cfg->max_events = (int64_t)u;
        return true;
    case OPT_MAX_EVENT_SIZE:
        if (!es_cli_parse_size(value, "--max-event-size", &v))
            return false;
        if (v > INT32_MAX) {
            es_cli_usage("--max-event-size is at most 2G");
            return false;
        }
        cfg->max_event_size = (int32_t)v;
        return true;
    case OPT_DUPLICATE_WINDOW:
        if (!es_cli_parse_duration(value, "--duplicate-window", &cfg->duplicate_window_ns))
            return false;
        if (cfg->duplicate_window_ns <= 0) {
            es_cli_usage("--duplicate-window must be positive");
            return false;
        }
        return true;
    case OPT_TENANCY: cfg->tenancy = true; return true;
    case OPT_MEMORY: cfg->memory_storage = true; return true;
    case OPT_ENCRYPT: cfg->encrypt = true; return true;
    case OPT_COMPRESS_THRESHOLD:
        if (!es_cli_parse_size(value, "--compress-threshold", &v))
            return false;
        if (v == 0 && !editing) {
            es_cli_usage(
                "--compress-threshold must be at least 1 byte (leave it out: no compression)");
            return false;
        }
        cfg->compress_threshold = (size_t)v;
        return true;
    case OPT_COMPRESSION:
        if (es_storage_compression_parse(value, &cfg->storage_compression) != ES_OK) {
            es_cli_usage("--compression is none or s2, not '%.32s'", value);
            return false;
        }
        return true;
    default: return true;
    }
}

/* create --json: {"store":..., "created":bool, "config":{...}} as the server has it. */
static es_status print_created(es_store *st, bool created)
{
    es_store_info info;
    es_status s = es_store_info_get(st, &info);
    if (s != ES_OK)
        return s;
    return tool_print_json(json_pack("{s:s, s:b, s:o}", "store", es_store_name(st), "created",
                                     created, "config", tool_config_json(&info.config)));
}

static int run_create(int argc, char **argv)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-tool create");
    es_store_config cfg;
    es_store_config_init(&cfg);
    const char *store = NULL;
    bool as_json = false;
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, create_options);
    for (int id; (id = tool_next_option(&p, &conn, NULL)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(&tool_cmd_create);
        case ES_CLI_ARG:
            if (store != NULL)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            store = p.value;
            break;
        case OPT_JSON: as_json = true; break;
        default:
            if (!store_option(&cfg, id, p.value, false))
                return ES_EXIT_USAGE;
        }
    }
    if (store == NULL)
        return es_cli_usage("which store? es-tool create STORE");
    if (!tool_store_name_valid(store))
        return ES_EXIT_USAGE;
    if (cfg.max_age_ns > 0 && cfg.duplicate_window_ns > cfg.max_age_ns)
        cfg.duplicate_window_ns = cfg.max_age_ns; /* the server's rule, applied for the user */
    natsConnection *nc = NULL;
    int rc = tool_connect(&conn, &nc);
    if (rc != ES_EXIT_OK)
        return rc;
    es_store_options opts;
    es_cli_store_options(&conn, &opts);
    es_store *st = NULL;
    bool existed = es_store_open(nc, store, &opts, &st) == ES_OK;
    es_store_destroy(st);
    st = NULL;
    es_status s = es_store_create(nc, store, &cfg, &opts, &st);
    if (s == ES_OK && as_json)
        s = print_created(st, !existed);
    else if (s == ES_OK)
        printf(existed ? "store %s exists already with this configuration\n" : "created store %s\n",
               store);
    if (s == ES_ERR_EXISTS) /* the library's text names its own calls */
        s = es_error(s,
                     "store %s exists with a different configuration: see it with 'es-tool "
                     "info %s', change it with 'es-tool edit %s'",
                     store, store, store);
    return tool_finish(s, rc, nc, st);
}

const tool_command tool_cmd_create = {
    "create",
    "create a store (or check that it exists with this configuration)",
    run_create,
    "Usage: es-tool create STORE [options]\n"
    "\n"
    "Creates the store: a JetStream stream ES_<STORE> over $ES.<STORE>.>, with\n"
    "file storage, direct gets, atomic batches and deletes denied. Creating a\n"
    "store that exists with the same configuration succeeds and changes nothing;\n"
    "with another configuration it fails (exit code 3).\n"
    "\n"
    "Options:\n"
    "      --replicas N            JetStream replicas, 1 to 5 (default 1)\n"
    "      --max-age DURATION      drop events older than this (90s, 12h, 30d)\n"
    "      --max-bytes SIZE        keep at most this many bytes (64M, 2G)\n"
    "      --max-events N          keep at most N events\n"
    "      --max-event-size SIZE   refuse larger events, headers included\n"
    "      --duplicate-window DUR  idempotency window for event ids (default 2m)\n"
    "      --tenancy               subjects carry a tenant:\n"
    "                              $ES.<store>.<tenant>.<type>.<id>.<event>\n"
    "      --memory                memory storage instead of files (tests, caches)\n"
    "      --compress-threshold SIZE  zstd-compress payloads of at least SIZE bytes\n"
    "                              (1K is a good start; default: no compression)\n"
    "      --compression none|s2   the server's S2 compression of the stream's\n"
    "                              blocks, headers included (about half the\n"
    "                              bytes of an ATProto event); only at creation\n"
    "      --encrypt               encrypt every event's data with a key of its entity\n"
    "                              (XChaCha20-Poly1305), so that `es-tool shred` can\n"
    "                              erase an entity; writing and reading data then\n"
    "                              need the master key (--master-key-file)\n"
    "      --json                  print {\"store\",\"created\",\"config\"} (created is\n"
    "                              false when it existed with this configuration)\n"
    "  -h, --help                  this help\n"
    "\n"
    "Examples:\n"
    "  es-tool create bank\n"
    "  es-tool create audit --replicas 3 --max-age 365d\n"
    "  es-tool create saas --tenancy\n"
    "  es-tool create people --encrypt --compress-threshold 1K\n"
    "  es-tool create firehose --replicas 3 --compression s2\n",
};

/* ---- delete -------------------------------------------------------------------- */

enum { OPT_FORCE = 100 };

static const es_cli_option delete_options[] = {
    TOOL_OPT_HELP,
    {"force", 0, false, OPT_FORCE},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

typedef struct delete_opts {
    bool force, as_json;
} delete_opts;

static int delete_option(int id, const char *value, void *ctx)
{
    (void)value;
    delete_opts *o = ctx;
    if (id == OPT_FORCE)
        o->force = true;
    else if (id == OPT_JSON)
        o->as_json = true;
    return ES_EXIT_OK;
}

static int run_delete(int argc, char **argv)
{
    tool_args a;
    delete_opts o = {false, false};
    int rc = tool_parse_store_args(&tool_cmd_delete, argc, argv, delete_options, false,
                                   "es-tool delete STORE --force", delete_option, &o, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    const es_cli_conn conn = a.conn;
    const char *store = a.store;
    if (!o.force)
        return es_cli_usage("deleting store %s destroys every event in it: add --force", store);
    natsConnection *nc = NULL;
    rc = tool_connect(&conn, &nc);
    if (rc != ES_EXIT_OK)
        return rc;
    es_store_options opts;
    es_cli_store_options(&conn, &opts);
    es_status s = es_store_delete(nc, store, &opts);
    if (s == ES_OK && o.as_json)
        s = tool_print_json(json_pack("{s:s, s:b}", "store", store, "deleted", true));
    else if (s == ES_OK)
        printf("deleted store %s\n", store);
    return tool_finish(s, rc, nc, NULL);
}

const tool_command tool_cmd_delete = {
    "delete",
    "delete a store with all its events and KV buckets",
    run_delete,
    "Usage: es-tool delete STORE --force\n"
    "\n"
    "Deletes the store's stream and its KV buckets, with every event in them.\n"
    "There is no undo: --force is required. Exit code 2 when there is no such\n"
    "store.\n"
    "\n"
    "Options:\n"
    "      --force          really delete\n"
    "      --json           print {\"store\":\"NAME\",\"deleted\":true}\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool delete scratch --force\n",
};

/* ---- edit ---------------------------------------------------------------------- */

static const es_cli_option edit_options[] = {
    TOOL_OPT_HELP,
    {"replicas", 0, true, OPT_REPLICAS},
    {"max-age", 0, true, OPT_MAX_AGE},
    {"max-bytes", 0, true, OPT_MAX_BYTES},
    {"max-events", 0, true, OPT_MAX_EVENTS},
    {"max-event-size", 0, true, OPT_MAX_EVENT_SIZE},
    {"duplicate-window", 0, true, OPT_DUPLICATE_WINDOW},
    {"compress-threshold", 0, true, OPT_COMPRESS_THRESHOLD},
    {"compression", 0, true, OPT_COMPRESSION}, /* the same only: the library says why */
    {"tenancy", 0, false, OPT_TENANCY},        /* refused, with the reason */
    {"memory", 0, false, OPT_MEMORY},
    {"encrypt", 0, false, OPT_ENCRYPT},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

#define EDIT_OPTIONS (OPT_COMPRESSION - OPT_REPLICAS + 1)

typedef struct edit_opts {
    const char *given[EDIT_OPTIONS]; /* each option's value, by id - OPT_REPLICAS */
    bool any, as_json;
} edit_opts;

static int edit_option(int id, const char *value, void *ctx)
{
    edit_opts *o = ctx;
    if (id == OPT_JSON) {
        o->as_json = true;
        return ES_EXIT_OK;
    }
    if (id == OPT_TENANCY || id == OPT_MEMORY || id == OPT_ENCRYPT)
        return es_cli_usage("%s cannot change: a store's tenancy, storage and encryption are "
                            "fixed when it is created (copy it into a new store instead: "
                            "es-tool export OLD | es-tool import NEW --create)",
                            id == OPT_TENANCY  ? "--tenancy"
                            : id == OPT_MEMORY ? "--memory"
                                               : "--encrypt");
    es_store_config scratch; /* the value is checked now, before connecting */
    es_store_config_init(&scratch);
    if (!store_option(&scratch, id, value, true))
        return ES_EXIT_USAGE;
    o->given[id - OPT_REPLICAS] = value;
    o->any = true;
    return ES_EXIT_OK;
}

static bool config_changes(const es_store_config *a, const es_store_config *b)
{
    for (tool_config_field f = 0; f < CONFIG_FIELDS; f++)
        if (!tool_config_same(a, b, f))
            return true;
    return false;
}

/* The configuration `o` makes of `cfg`. */
static void apply_edits(const edit_opts *o, es_store_config *cfg)
{
    for (int i = 0; i < EDIT_OPTIONS; i++)
        if (o->given[i] != NULL)
            store_option(cfg, OPT_REPLICAS + i, o->given[i], true);
    /* a shorter max age takes the duplicate window down with it, as create does */
    if (o->given[OPT_DUPLICATE_WINDOW - OPT_REPLICAS] == NULL && cfg->max_age_ns > 0 &&
        cfg->duplicate_window_ns > cfg->max_age_ns)
        cfg->duplicate_window_ns = cfg->max_age_ns;
}

/* Prints before -> after, field by field (text) or as one object (JSON). */
static es_status print_edit(const char *store, const es_store_config *before,
                            const es_store_config *after, bool as_json)
{
    json_t *changed = json_array();
    if (!as_json)
        printf("store %s\n", store);
    for (tool_config_field f = 0; f < CONFIG_FIELDS; f++) {
        if (tool_config_same(before, after, f))
            continue;
        char was[48], now[48];
        tool_config_text(before, f, was);
        tool_config_text(after, f, now);
        json_array_append_new(changed, json_string(tool_config_key(f)));
        if (!as_json)
            printf("  %-18s %s \u2192 %s\n", tool_config_label(f), was, now);
    }
    if (!as_json) {
        if (json_array_size(changed) == 0)
            printf("  nothing changes\n");
        json_decref(changed);
        return tool_flush() || tool_output_closed() ? ES_OK : ES_ERR_IO;
    }
    return tool_print_json(json_pack("{s:s, s:o, s:o, s:o}", "store", store, "before",
                                     tool_config_json(before), "after", tool_config_json(after),
                                     "changed", changed));
}

static es_status edit_store(es_store *st, const edit_opts *o, es_store_info *before,
                            es_store_info *after)
{
    es_status s = es_store_info_get(st, before);
    if (s != ES_OK)
        return s;
    es_store_config cfg = before->config;
    apply_edits(o, &cfg);
    if (!config_changes(&cfg, &before->config)) {
        *after = *before; /* nothing to ask the server */
        return ES_OK;
    }
    s = es_store_update(st, &cfg);
    if (s == ES_OK)
        s = es_store_info_get(st, after); /* what the server made of it */
    return s;
}

static int run_edit(int argc, char **argv)
{
    tool_args a;
    edit_opts o;
    memset(&o, 0, sizeof o);
    int rc = tool_parse_store_args(&tool_cmd_edit, argc, argv, edit_options, false,
                                   "es-tool edit STORE [options]", edit_option, &o, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    if (!o.any)
        return es_cli_usage("nothing to change: give --max-age, --max-bytes, --max-events, "
                            "--max-event-size, --duplicate-window, --replicas or "
                            "--compress-threshold");
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&a.conn, a.store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    es_store_info before, after;
    es_status s = edit_store(st, &o, &before, &after);
    if (s == ES_OK)
        s = print_edit(a.store, &before.config, &after.config, o.as_json);
    return tool_finish(s, rc, nc, st);
}

const tool_command tool_cmd_edit = {
    "edit",
    "change a store's limits, replicas or compression",
    run_edit,
    "Usage: es-tool edit STORE [options]\n"
    "\n"
    "Changes what JetStream lets change in a store's configuration, and shows\n"
    "each changed field as before \u2192 after. Tenancy, storage (--memory),\n"
    "encryption and the server's compression (--compression) are fixed when a\n"
    "store is created: asking to change them is refused (exit code 1). A limit\n"
    "of 0 means unlimited. Lowering --max-age below the duplicate window lowers\n"
    "the window with it. Limits apply at once: lowering --max-age, --max-bytes\n"
    "or --max-events drops the events beyond them.\n"
    "\n"
    "Options:\n"
    "      --replicas N            JetStream replicas, 1 to 5 (a cluster is needed\n"
    "                              for more than 1)\n"
    "      --max-age DURATION      drop events older than this (0: keep forever)\n"
    "      --max-bytes SIZE        keep at most this many bytes (0: unlimited)\n"
    "      --max-events N          keep at most N events (0: unlimited)\n"
    "      --max-event-size SIZE   refuse larger events (0: the server's limit)\n"
    "      --duplicate-window DUR  idempotency window for event ids\n"
    "      --compress-threshold SIZE  zstd-compress new payloads of at least SIZE\n"
    "                              bytes (0: off; stored events stay as they are)\n"
    "      --compression none|s2   refused unless it is the store's already: S2 is\n"
    "                              set at creation only (the server would accept\n"
    "                              it and keep writing uncompressed blocks)\n"
    "      --json                  print {\"store\",\"before\",\"after\",\"changed\"}:\n"
    "                              configurations as info --json has them, and the\n"
    "                              keys that changed\n"
    "  -h, --help                  this help\n"
    "\n"
    "Examples:\n"
    "  es-tool edit audit --max-age 730d\n"
    "  es-tool edit bank --max-bytes 10G --duplicate-window 10m\n"
    "  es-tool edit bank --max-age 0 --json | jq .changed\n",
};
