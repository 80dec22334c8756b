/* es-atproto-gen: write a capture of synthetic firehose frames (real
 * DAG-CBOR commits with valid CIDs and CAR blocks), deterministic from a
 * seed. The README's demo ingests its output. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/atproto.h>
#include <es/version.h>

#include "atproto_gen.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: es-atproto-gen --out PATH [options]\n"
                 "Write a capture ([u32 LE length][frame] repeated) of synthetic\n"
                 "com.atproto.sync.subscribeRepos frames: #commit (creates, updates, deletes of\n"
                 "posts, likes, reposts, follows, profiles), #identity, #account and #sync.\n"
                 "The same options always produce the same bytes.\n\n"
                 "  --out PATH       the capture to write (required)\n"
                 "  --frames N       number of frames [1000]\n"
                 "  --repos N        number of accounts [50]\n"
                 "  --seed N         random seed [1]\n"
                 "  --first-seq N    seq of the first frame [1]\n"
                 "  --multi-op N     commits with 2-3 ops, per thousand (1-1000); without it\n"
                 "                   ~19%% of commits have several ops (the relay's traffic\n"
                 "                   has far fewer: about 7 per thousand)\n"
                 "  --zstd LEVEL     compress with zstd at LEVEL (1-19); 0 writes it plain [3]\n"
                 "  --help           this text\n"
                 "  --version        the program's and the library's version\n");
}

static int parse_number(const char *s, const char *flag, unsigned long long *out)
{
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || *s == '-') {
        fprintf(stderr, "es-atproto-gen: %s wants a non-negative integer, not '%s'\n", flag, s);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},       {"frames", required_argument, NULL, 'n'},
        {"repos", required_argument, NULL, 'r'},     {"seed", required_argument, NULL, 's'},
        {"first-seq", required_argument, NULL, 'q'}, {"zstd", required_argument, NULL, 'z'},
        {"multi-op", required_argument, NULL, 'm'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},         {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    unsigned long long frames = 1000, repos = 50, seed = 1, first_seq = 1, level = 3, multi_op = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': bad = parse_number(optarg, "--frames", &frames); break;
        case 'r': bad = parse_number(optarg, "--repos", &repos); break;
        case 's': bad = parse_number(optarg, "--seed", &seed); break;
        case 'q': bad = parse_number(optarg, "--first-seq", &first_seq); break;
        case 'z': bad = parse_number(optarg, "--zstd", &level); break;
        case 'm': bad = parse_number(optarg, "--multi-op", &multi_op); break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("es-atproto-gen %s\n", es_version()); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (out == NULL || optind != argc || repos == 0 || level > 19 || first_seq == 0 ||
        multi_op > 1000) {
        usage(stderr);
        return 2;
    }
    es_atp_gen *g = NULL;
    es_atp_capture_writer *w = NULL;
    es_atp_gen_options o = {.seed = seed,
                            .repos = (size_t)repos,
                            .first_seq = first_seq,
                            .multi_op_permille = (unsigned)multi_op};
    es_status s = es_atp_gen_create(&o, &g);
    if (s == ES_OK)
        s = es_atp_capture_create(out, (int)level, &w);
    es_buf frame = ES_BUF_INIT;
    for (unsigned long long i = 0; s == ES_OK && i < frames; i++) {
        es_buf_clear(&frame);
        s = es_atp_gen_next(g, &frame);
        if (s == ES_OK)
            s = es_atp_capture_write(w, frame.data, frame.len);
    }
    es_status fs = es_atp_capture_finish(w);
    if (s == ES_OK)
        s = fs;
    es_buf_free(&frame);
    if (s != ES_OK) {
        fprintf(stderr, "es-atproto-gen: %s: %s\n", es_status_text(s), es_last_error());
        es_atp_gen_destroy(g);
        return 1;
    }
    const es_atp_gen_counts *n = es_atp_gen_counts_of(g);
    printf("wrote %zu frames to %s: %zu commits (%zu creates, %zu updates, %zu deletes), "
           "%zu identity, %zu account, %zu sync\n",
           n->frames, out, n->commits, n->creates, n->updates, n->deletes, n->identity, n->account,
           n->sync);
    es_atp_gen_destroy(g);
    return 0;
}
