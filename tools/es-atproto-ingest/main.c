/* es-atproto-ingest: decode the ATProto firehose, verify it and map every
 * commit to one atomic batch of entity events (docs/atproto.md).
 *
 * This version reads captures and runs dry (decode + verify + map, no NATS):
 * the decode benchmark and a validator for captures. Appending to a store
 * arrives with the core engine's asynchronous batch append. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <es/atproto.h>

#include "pipeline.h"
#include "source.h"

enum exit_code {
    EXIT_OK = 0,          /* the source was read to its end (or a signal stopped it) */
    EXIT_FAILURE_RUN = 1, /* the source could not be opened or read, or is corrupt */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_ERROR_FRAME = 3, /* the stream ended with an error frame (op = -1) */
};

#define FRAME_ARENA_LIMIT ((size_t)32 << 20)
#define MEMORY_SOURCE_MAX ((size_t)1 << 30)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: es-atproto-ingest --from-file PATH --dry-run [options]\n"
                 "\n"
                 "Decode com.atproto.sync.subscribeRepos frames, verify every block used\n"
                 "against its CID (SHA-256), and map each frame to the batch of entity events\n"
                 "the store appends atomically: one event per record op on entity type\n"
                 "<collection with . as _> and id <repo DID>; #identity, #account and #sync\n"
                 "as events on entity type 'repo'. Damaged frames are logged with their seq,\n"
                 "counted by kind and skipped whole. See docs/atproto.md.\n"
                 "\n"
                 "Source:\n"
                 "  --from-file PATH    a capture: [u32 little-endian length][frame] repeated,\n"
                 "                      plain or zstd-compressed (detected)\n"
                 "  --exit-at-end       exit when the source ends; otherwise wait for\n"
                 "                      SIGINT/SIGTERM after the last frame\n"
                 "  --repeat N          load the capture into memory once and replay it N\n"
                 "                      times (benchmark: no I/O or decompression in the loop)\n"
                 "\n"
                 "Mode:\n"
                 "  --dry-run           decode, verify and map without connecting anywhere;\n"
                 "                      print frames/s, ops/s, MB/s and counts at exit.\n"
                 "                      Required in this version (appending to a NATS store\n"
                 "                      comes with the core engine's asynchronous append)\n"
                 "\n"
                 "Filters:\n"
                 "  --collections LIST  keep only these collections: NSIDs or prefixes at\n"
                 "                      segment boundaries, comma-separated\n"
                 "                      (e.g. app.bsky.feed.*,app.bsky.graph.follow)\n"
                 "  --dids LIST|FILE    keep only these repositories: DIDs separated by commas,\n"
                 "                      or the path of a file of DIDs (one or more per line,\n"
                 "                      # comments); repo events pass this filter only\n"
                 "\n"
                 "Verification:\n"
                 "  --verify-all-blocks hash every block of every CAR (MST nodes too), not only\n"
                 "                      the commit and the record blocks the events carry\n"
                 "\n"
                 "  --help              this text\n"
                 "\n"
                 "Exit status: 0 the source ended (or SIGINT/SIGTERM), 1 the source could not\n"
                 "be read or is corrupt, 2 bad usage, 3 the stream ended with an error frame.\n");
}

typedef struct config {
    const char *file;
    bool dry_run, exit_at_end, verify_all;
    unsigned long repeat; /* 0: stream the file */
    es_atp_filter *filter;
} config;

static int parse_args(int argc, char **argv, config *c)
{
    static const struct option longopts[] = {{"from-file", required_argument, NULL, 'f'},
                                             {"dry-run", no_argument, NULL, 'd'},
                                             {"exit-at-end", no_argument, NULL, 'e'},
                                             {"repeat", required_argument, NULL, 'r'},
                                             {"collections", required_argument, NULL, 'c'},
                                             {"dids", required_argument, NULL, 'i'},
                                             {"verify-all-blocks", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        es_status s = ES_OK;
        char *end;
        switch (opt) {
        case 'f': c->file = optarg; break;
        case 'd': c->dry_run = true; break;
        case 'e': c->exit_at_end = true; break;
        case 'v': c->verify_all = true; break;
        case 'r':
            errno = 0;
            c->repeat = strtoul(optarg, &end, 10);
            if (errno || *end || *optarg == '-' || c->repeat == 0) {
                fprintf(stderr, "es-atproto-ingest: --repeat wants a positive integer\n");
                return EXIT_USAGE;
            }
            break;
        case 'c': s = es_atp_filter_add_collections(c->filter, optarg); break;
        case 'i': s = es_atp_filter_add_dids_arg(c->filter, optarg); break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (s != ES_OK) {
            fprintf(stderr, "es-atproto-ingest: %s\n", es_last_error());
            return EXIT_USAGE;
        }
    }
    if (optind != argc || c->file == NULL) {
        fprintf(stderr, "es-atproto-ingest: %s\n",
                optind != argc ? "unexpected argument" : "--from-file PATH is required");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!c->dry_run) {
        fprintf(stderr, "es-atproto-ingest: this version only runs with --dry-run (decode, "
                        "verify and map); appending to a store is not available yet\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* After the source ends without --exit-at-end: stay up until a signal. */
static void wait_for_signal(void)
{
    while (!stop_requested)
        pause();
}

static int run(const config *c)
{
    es_atp_options o = {.filter = c->filter, .verify_all_blocks = c->verify_all};
    es_atp_limits_defaults(&o.limits);
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    ingest_source *src = NULL;
    es_status s = es_atp_decoder_create(&o, &dec);
    if (s == ES_OK)
        s = es_arena_create(FRAME_ARENA_LIMIT, &arena);
    if (s == ES_OK)
        s = c->repeat ? ingest_source_memory(c->file, o.limits.max_frame_bytes, c->repeat,
                                             MEMORY_SOURCE_MAX, &src)
                      : ingest_source_file(c->file, o.limits.max_frame_bytes, &src);
    if (s != ES_OK) {
        fprintf(stderr, "es-atproto-ingest: %s\n", es_last_error());
        es_arena_destroy(arena);
        es_atp_decoder_destroy(dec);
        return EXIT_FAILURE_RUN;
    }
    ingest_result r;
    s = ingest_run(src, dec, arena, ingest_sink_discard, NULL, &stop_requested, &r);
    int code = EXIT_OK;
    if (r.error_frame)
        code = EXIT_ERROR_FRAME;
    else if (s != ES_OK || (r.source_status != ES_OK && r.source_status != ES_ERR_NOT_FOUND)) {
        fprintf(stderr, "es-atproto-ingest: %s\n", es_last_error());
        code = EXIT_FAILURE_RUN;
    } else if (r.source_status == ES_ERR_NOT_FOUND && !c->exit_at_end) {
        wait_for_signal();
    }
    ingest_report(stdout, ingest_source_name(src), es_atp_decoder_stats(dec), &r);
    ingest_source_close(src);
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
    return code;
}

int main(int argc, char **argv)
{
    config c = {0};
    if (es_atp_filter_create(&c.filter) != ES_OK) {
        fprintf(stderr, "es-atproto-ingest: out of memory\n");
        return EXIT_FAILURE_RUN;
    }
    int code = parse_args(argc, argv, &c);
    if (code == EXIT_OK) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        code = run(&c);
    } else if (code < 0) {
        code = EXIT_OK; /* --help */
    }
    es_atp_filter_destroy(c.filter);
    return code;
}
