/* The benchmark table (es-bench, and `es-tool bench`): each workload run
 * through this library and through raw nats.c doing the same work, in the
 * same run, against one server, so the ratio is what matters. */
#ifndef ES_BENCH_H
#define ES_BENCH_H

/* argv[0] is the command name. Returns a process exit code. */
int es_bench_main(int argc, char **argv);

#endif
