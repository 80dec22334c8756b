/* es-tool bench: the benchmark table of es-bench (tools/es-bench). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "estool.h"

extern const tool_command tool_cmd_bench;

static int run_bench(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return tool_help(&tool_cmd_bench);
    /* es_bench_main wants its own name first. */
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args == NULL)
        return es_cli_fail(ES_ERR_NOMEM, "es-tool bench");
    args[0] = "es-tool bench";
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    int rc = es_bench_main(argc + 1, args);
    free(args);
    return rc;
}

const tool_command tool_cmd_bench = {
    "bench",
    "the library-versus-raw-nats.c benchmark table",
    run_bench,
    "Usage: es-tool bench [--server URL] [--appends N] [--batches N] [--loads N]\n"
    "                     [--replay N] [--rounds N]\n\n"
    "Runs each workload through the library and through raw nats.c doing the same\n"
    "work in the same run — pipelined single appends, atomic batches of 100, loads\n"
    "of a 100-event entity, a replay — and prints events/s for both and their ratio\n"
    "(docs/performance.md). It creates and deletes stores named bench_*. The server\n"
    "is --server or $NATS_URL.\n\n"
    "Examples:\n"
    "  es-tool bench --server nats://127.0.0.1:4222\n"
    "  es-tool bench --appends 20000 --replay 100000 --rounds 1   # a quick look\n",
};
