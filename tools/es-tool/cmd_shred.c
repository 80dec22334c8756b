/* es-tool shred: crypto-shreds one entity of an encrypting store. Its data
 * key is erased: its events keep replaying with their metadata, but their
 * data reads as "shredded" from then on, and nothing more can be appended to
 * it. There is no undo. */
#include <inttypes.h>
#include <string.h>

#include "estool.h"
#include "idtext.h"
#include "render.h"

enum { OPT_FORCE = 100 };

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"tenant", 0, true, OPT_TENANT},
    {"raw-id", 0, false, OPT_RAW_ID},
    {"force", 0, false, OPT_FORCE},
    {"json", 0, false, OPT_JSON},
    TOOL_OPT_MASTER_KEY,
    {NULL, 0, false, 0},
};

typedef struct shred_args {
    es_cli_conn conn;
    tool_filter f; /* tenant, type and id */
    const char *store;
    bool force, as_json;
} shred_args;

/* ES_EXIT_OK, or the exit code to return now (-1: --help, done). */
static int parse(int argc, char **argv, shred_args *a)
{
    es_cli_conn_init(&a->conn, "es-tool shred");
    tool_filter_init(&a->f);
    const char *pos[3] = {NULL};
    size_t npos = 0;
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    for (int id; (id = tool_next_option(&p, &a->conn, &a->f)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(&tool_cmd_shred) - 1;
        case OPT_FORCE: a->force = true; break;
        case OPT_JSON: a->as_json = true; break;
        case ES_CLI_ARG:
            if (npos == 3)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            pos[npos++] = p.value;
            break;
        }
    }
    if (npos != 3)
        return es_cli_usage("es-tool shred STORE TYPE ID");
    a->store = pos[0];
    a->f.filter.entity_type = pos[1];
    a->f.filter.entity_id = pos[2];
    int rc = tool_id_check(pos[2], "ID", a->f.raw_id, true);
    if (rc == ES_EXIT_OK && (!tool_store_name_valid(pos[0]) || !tool_filter_valid(&a->f)))
        rc = ES_EXIT_USAGE;
    return rc;
}

static es_status count_events(const es_entity_info *e, void *closure)
{
    *(uint64_t *)closure += e->events;
    return ES_OK;
}

/* The entity's events, from the stream's subject state (no event is read).
 * *encrypts: false for a store that does not encrypt, which es_store_shred
 * refuses anyway (its refusal says more than "no events"). */
static es_status entity_events(es_store *st, const es_filter *f, uint64_t *events, bool *encrypts)
{
    *events = 0;
    es_store_info info;
    es_status s = es_store_info_get(st, &info);
    *encrypts = s == ES_OK && info.config.encrypt;
    if (s == ES_OK && *encrypts)
        s = es_store_entities(st, f, count_events, events);
    return s;
}

static void report(const shred_args *a, uint64_t events)
{
    const es_filter *f = &a->f.filter;
    es_buf b = ES_BUF_INIT;
    if (a->as_json) {
        es_buf_append_str(&b, "{\"store\":");
        tool_json_append_text(&b, a->store, strlen(a->store));
        if (f->tenant != NULL) {
            es_buf_append_str(&b, ",\"tenant\":");
            tool_json_append_text(&b, f->tenant, strlen(f->tenant));
        }
        es_buf_append_str(&b, ",\"type\":");
        tool_json_append_text(&b, f->entity_type, strlen(f->entity_type));
        es_buf_append_str(&b, ",\"id\":");
        tool_json_append_text(&b, f->entity_id, strlen(f->entity_id));
        printf("%.*s,\"events\":%" PRIu64 ",\"shredded\":true}\n", (int)b.len, (const char *)b.data,
               events);
    } else {
        tool_append_display_id(&b, f->entity_id, strlen(f->entity_id));
        printf("shredded %s %.*s (%" PRIu64 " event%s): its data is gone for good\n",
               f->entity_type, (int)b.len, (const char *)b.data, events, events == 1 ? "" : "s");
    }
    es_buf_free(&b);
}

static int run(int argc, char **argv)
{
    shred_args a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc != ES_EXIT_OK)
        return rc < 0 ? ES_EXIT_OK : rc;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&a.conn, a.store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    const es_filter *f = &a.f.filter;
    uint64_t events = 0;
    bool encrypts = false;
    es_status s = entity_events(st, f, &events, &encrypts);
    if (s == ES_OK && encrypts && events == 0 && !a.force) {
        es_buf id = ES_BUF_INIT;
        tool_append_display_id(&id, f->entity_id, strlen(f->entity_id));
        es_cli_error("%s %.*s has no events in store %s: shredding it would keep the id from "
                     "ever being used (a typo?); add --force to shred it anyway",
                     f->entity_type, (int)id.len, (const char *)id.data, a.store);
        es_buf_free(&id);
        tool_close(nc, st);
        return ES_EXIT_NOT_FOUND;
    }
    if (s == ES_OK)
        s = es_store_shred(st, f->tenant, f->entity_type, f->entity_id, strlen(f->entity_id));
    if (s == ES_OK)
        report(&a, events);
    return tool_finish(s, rc, nc, st);
}

const tool_command tool_cmd_shred = {
    "shred",
    "crypto-shred an entity of an encrypting store (erase its data for good)",
    run,
    "Usage: es-tool shred STORE TYPE ID [--tenant TENANT] [--force] [--json]\n"
    "                     --master-key-file F\n"
    "\n"
    "Erases the data key of entity TYPE/ID in an encrypting store (created with\n"
    "--encrypt). Its events still replay with their metadata, but their data\n"
    "reads as \"data shredded\" from then on, and nothing more can be appended to\n"
    "the entity: the way to honour an erasure request without rewriting history.\n"
    "There is no undo. Shredding an entity twice is harmless.\n"
    "\n"
    "An entity without events is refused (exit code 2): shredding an id keeps it\n"
    "from ever being used, so a typo would be permanent. ID is the raw id, as\n"
    "entities and replay print it; one that looks escaped as in a subject\n"
    "(acc%2043) is refused unless --raw-id.\n"
    "\n"
    "Options:\n"
    "      --tenant TENANT  the tenant (stores with tenancy)\n"
    "      --force          shred even an entity that has no events (yet)\n"
    "      --raw-id         take an ID that looks escaped (%XX) as it is\n"
    "      --json           print "
    "{\"store\",\"type\",\"id\",\"events\",\"shredded\":true}\n" TOOL_MASTER_KEY_HELP
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool shred people person did:plc:abc123 --master-key-file /run/secrets/es-master\n"
    "  ES_MASTER_KEY_FILE=/run/secrets/es-master es-tool shred people person 42\n",
};
