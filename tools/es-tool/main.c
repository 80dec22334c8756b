/* es-tool: look into and operate an event store from the command line.
 *   es-tool COMMAND [options]      (es-tool --help lists the commands)
 * Exit codes: 0 ok, 1 usage or bad input, 2 not found, 3 conflict,
 * 4 server or connection error, 7 not permitted (docs/es-tool.md). */
#include <stdio.h>
#include <string.h>

#include "estool.h"

const tool_command *const tool_commands[] = {
    &tool_cmd_replay,      &tool_cmd_info,        &tool_cmd_entities,   &tool_cmd_append,
    &tool_cmd_stores,      &tool_cmd_create,      &tool_cmd_delete,     &tool_cmd_export,
    &tool_cmd_import,      &tool_cmd_shred,       &tool_cmd_bench,      &tool_cmd_edit,
    &tool_cmd_projections, &tool_cmd_checkpoints, &tool_cmd_completion,
};
const size_t tool_command_count = sizeof tool_commands / sizeof tool_commands[0];

static void print_usage(FILE *out)
{
    fprintf(out, "es-tool: look into and operate an event store (NATS JetStream)\n\n"
                 "Usage: es-tool COMMAND [options]\n\nCommands:\n");
    for (size_t i = 0; i < tool_command_count; i++)
        fprintf(out, "  %-12s %s\n", tool_commands[i]->name, tool_commands[i]->summary);
    fprintf(out,
            "\n'es-tool COMMAND --help' (or 'es-tool help COMMAND') shows a command's\n"
            "options and examples. Every command takes the connection options:\n\n%s\n"
            "Exit codes: 0 ok, 1 usage or bad input, 2 not found, 3 conflict,\n"
            "4 server or connection error, 7 not permitted (a permissions violation).\n"
            "'es-tool --version' prints the versions.\n",
            es_cli_conn_help);
}

static const tool_command *find_command(const char *name)
{
    for (size_t i = 0; i < tool_command_count; i++)
        if (strcmp(tool_commands[i]->name, name) == 0)
            return tool_commands[i];
    return NULL;
}

static void print_version(void)
{
    printf("es-tool %s (nats.c %s)\n", es_version(), es_nats_client_version());
}

int main(int argc, char **argv)
{
    es_cli_set_prog("es-tool");
    tool_output_init();
    if (argc < 2) {
        print_usage(stderr);
        return ES_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return ES_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        print_version();
        return ES_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return ES_EXIT_OK;
        }
        const tool_command *cmd = find_command(argv[2]);
        if (cmd == NULL)
            return es_cli_usage("no command '%.40s'", argv[2]);
        return tool_help(cmd);
    }
    const tool_command *cmd = find_command(name);
    if (cmd == NULL) {
        if (name[0] == '-')
            return es_cli_usage("a command comes first, not the option '%.40s'", name);
        return es_cli_usage("no command '%.40s'", name);
    }
    char prog[64];
    snprintf(prog, sizeof prog, "es-tool %s", cmd->name);
    es_cli_set_prog(prog);
    return cmd->run(argc - 2, argv + 2);
}
