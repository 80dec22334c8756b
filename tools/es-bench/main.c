#include <stdio.h>
#include <string.h>

#include <es/connect.h>
#include <es/version.h>

#include "bench.h"

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("es-bench %s (nats.c %s)\n", es_version(), es_nats_client_version());
        return 0;
    }
    return es_bench_main(argc, argv);
}
