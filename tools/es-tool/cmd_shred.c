/* es-tool shred: crypto-shreds one entity of an encrypting store. Its data
 * key is erased: its events keep replaying with their metadata, but their
 * data reads as "shredded" from then on, and nothing more can be appended to
 * it. There is no undo. */
#include <string.h>

#include "estool.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"tenant", 0, true, OPT_TENANT},
    TOOL_OPT_MASTER_KEY,
    {NULL, 0, false, 0},
};

static int run(int argc, char **argv)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-tool shred");
    tool_filter f;
    tool_filter_init(&f);
    const char *pos[3] = {NULL};
    size_t npos = 0;
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    for (int id; (id = tool_next_option(&p, &conn, &f)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(&tool_cmd_shred);
        case ES_CLI_ARG:
            if (npos == 3)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            pos[npos++] = p.value;
            break;
        }
    }
    if (npos != 3)
        return es_cli_usage("es-tool shred STORE TYPE ID");
    f.filter.entity_type = pos[1];
    f.filter.entity_id = pos[2];
    if (!tool_store_name_valid(pos[0]) || !tool_filter_valid(&f))
        return ES_EXIT_USAGE;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    int rc = tool_open(&conn, pos[0], &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    es_status s = es_store_shred(st, f.filter.tenant, pos[1], pos[2], strlen(pos[2]));
    if (s == ES_OK)
        printf("shredded %s %s: its events' data is gone for good\n", pos[1], pos[2]);
    else
        rc = es_cli_fail(s, NULL);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_shred = {
    "shred",
    "crypto-shred an entity of an encrypting store (erase its data for good)",
    run,
    "Usage: es-tool shred STORE TYPE ID [--tenant TENANT] --master-key-file F\n"
    "\n"
    "Erases the data key of entity TYPE/ID in an encrypting store (created with\n"
    "--encrypt). Its events still replay with their metadata, but their data\n"
    "reads as \"data shredded\" from then on, and nothing more can be appended to\n"
    "the entity: the way to honour an erasure request without rewriting history.\n"
    "There is no undo. Shredding an entity twice is harmless.\n"
    "\n"
    "Options:\n"
    "      --tenant TENANT  the tenant (stores with tenancy)\n" TOOL_MASTER_KEY_HELP
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool shred people person did:plc:abc123 --master-key-file /run/secrets/es-master\n"
    "  ES_MASTER_KEY_FILE=/run/secrets/es-master es-tool shred people person 42\n",
};
