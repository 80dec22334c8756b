/* es-atproto-gen: write a capture of synthetic firehose frames (real
 * DAG-CBOR commits with valid CIDs and CAR blocks), deterministic from a
 * seed. The README's demo ingests its output. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
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
                 "Commits and #sync are signed with real keys (K-256 and P-256, RFC 6979\n"
                 "deterministic signatures, low-S), derived from the seed: the same options\n"
                 "always produce the same bytes.\n\n"
                 "  --out PATH       the capture to write (required)\n"
                 "  --frames N       number of frames [1000]\n"
                 "  --repos N        number of accounts [50]\n"
                 "  --seed N         random seed [1]\n"
                 "  --first-seq N    seq of the first frame [1]\n"
                 "  --multi-op N     commits with 2-3 ops, per thousand (1-1000); without it\n"
                 "                   ~19%% of commits have several ops (the relay's traffic\n"
                 "                   has far fewer: about 7 per thousand)\n"
                 "  --zstd LEVEL     compress with zstd at LEVEL (1-19); 0 writes it plain [3]\n"
                 "  --curve C        the accounts' signing keys: k256, p256 or mixed (accounts\n"
                 "                   alternate, K-256 first) [mixed]\n"
                 "  --did-docs-out FILE\n"
                 "                   write the accounts' DID documents as one JSON object\n"
                 "                   {did: document} (es-atproto-ingest --did-docs): the keys\n"
                 "                   every commit verifies with until its account's first\n"
                 "                   #identity\n"
                 "  --rotate-keys N  per thousand frames, an account gets a new key: an #identity\n"
                 "                   for it, then its commits are signed with the new key. Only\n"
                 "                   an account without an #identity so far rotates (once at\n"
                 "                   most); 0 for none [0]\n"
                 "  --rotated-docs-out FILE\n"
                 "                   write the DID documents after the last frame (what a PLC\n"
                 "                   directory serves after the #identity events): the keys of\n"
                 "                   each account's commits after its first #identity\n"
                 "  --repos-out DIR  after the last frame, write each account's repository as\n"
                 "                   com.atproto.sync.getRepo serves it: DIR/<did>.car (':'\n"
                 "                   replaced by '_'; root the account's newest signed commit,\n"
                 "                   the very one of the capture, then every MST node and\n"
                 "                   record) and DIR/<did>.tsv (collection/rkey<TAB>record CID,\n"
                 "                   in key order)\n"
                 "  --pds-url URL    the #atproto_pds serviceEndpoint of the DID documents\n"
                 "                   [https://pds.gen.example]\n"
                 "  --unsigned       64 random bytes instead of signatures (faster; the captures\n"
                 "                   of earlier versions); no key options with it\n"
                 "  --help           this text\n"
                 "  --version        the program's and the library's version\n");
}

/* Write `text` to `path` (replacing it). */
static int write_file(const char *path, const es_buf *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(text->data, 1, text->len, f) != text->len || fclose(f) != 0) {
        fprintf(stderr, "es-atproto-gen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* DIR/<did, ':' -> '_'><ext>. */
static void repo_path(const char *dir, const char *did, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s%s", dir, did, ext);
    for (char *p = out + strlen(dir) + 1; *p != '\0'; p++)
        if (*p == ':')
            *p = '_';
}

/* Each account's getRepo CAR and record list into `dir` (nothing when NULL). */
static es_status write_repos(es_atp_gen *g, const char *dir)
{
    es_buf car = ES_BUF_INIT, tsv = ES_BUF_INIT;
    es_status s = ES_OK;
    for (size_t i = 0; dir != NULL && s == ES_OK && i < es_atp_gen_repo_count(g); i++) {
        const char *did = NULL;
        char path[4096];
        es_buf_clear(&car);
        es_buf_clear(&tsv);
        s = es_atp_gen_repo_car(g, i, &car, &did);
        if (s == ES_OK)
            s = es_atp_gen_repo_tsv(g, i, &tsv);
        if (s == ES_OK) {
            repo_path(dir, did, ".car", path, sizeof path);
            s = write_file(path, &car) == 0 ? ES_OK : ES_ERR_IO;
        }
        if (s == ES_OK) {
            repo_path(dir, did, ".tsv", path, sizeof path);
            s = write_file(path, &tsv) == 0 ? ES_OK : ES_ERR_IO;
        }
    }
    es_buf_free(&car);
    es_buf_free(&tsv);
    return s;
}

/* The DID documents as they are now into `path` (nothing when NULL). */
static es_status write_docs(es_atp_gen *g, const char *path)
{
    if (path == NULL)
        return ES_OK;
    es_buf docs = ES_BUF_INIT;
    es_status s = es_atp_gen_did_docs(g, &docs);
    if (s == ES_OK && write_file(path, &docs) != 0)
        s = ES_ERR_IO;
    es_buf_free(&docs);
    return s;
}

static int parse_curve(const char *s, es_atp_gen_curves *out)
{
    if (strcmp(s, "k256") == 0)
        *out = ES_ATP_GEN_CURVES_K256;
    else if (strcmp(s, "p256") == 0)
        *out = ES_ATP_GEN_CURVES_P256;
    else if (strcmp(s, "mixed") == 0)
        *out = ES_ATP_GEN_CURVES_MIXED;
    else {
        fprintf(stderr, "es-atproto-gen: --curve is k256, p256 or mixed, not '%s'\n", s);
        return -1;
    }
    return 0;
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
        {"out", required_argument, NULL, 'o'},
        {"frames", required_argument, NULL, 'n'},
        {"repos", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"first-seq", required_argument, NULL, 'q'},
        {"zstd", required_argument, NULL, 'z'},
        {"multi-op", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {"curve", required_argument, NULL, 'c'},
        {"did-docs-out", required_argument, NULL, 'd'},
        {"rotate-keys", required_argument, NULL, 'k'},
        {"rotated-docs-out", required_argument, NULL, 'D'},
        {"unsigned", no_argument, NULL, 'u'},
        {"repos-out", required_argument, NULL, 'R'},
        {"pds-url", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *docs_out = NULL, *rotated_out = NULL, *repos_out = NULL;
    const char *pds_url = NULL;
    unsigned long long frames = 1000, repos = 50, seed = 1, first_seq = 1, level = 3, multi_op = 0;
    unsigned long long rotate = 0;
    es_atp_gen_curves curves = ES_ATP_GEN_CURVES_MIXED;
    bool unsigned_commits = false, curve_given = false;
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
        case 'c':
            bad = parse_curve(optarg, &curves);
            curve_given = true;
            break;
        case 'd': docs_out = optarg; break;
        case 'k': bad = parse_number(optarg, "--rotate-keys", &rotate); break;
        case 'D': rotated_out = optarg; break;
        case 'u': unsigned_commits = true; break;
        case 'R': repos_out = optarg; break;
        case 'p': pds_url = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("es-atproto-gen %s\n", es_version()); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (out == NULL || optind != argc || repos == 0 || level > 19 || first_seq == 0 ||
        multi_op > 1000 || rotate > 1000) {
        usage(stderr);
        return 2;
    }
    if (unsigned_commits && (curve_given || docs_out || rotated_out || pds_url)) {
        fprintf(stderr, "es-atproto-gen: --unsigned captures have no keys: no --curve, "
                        "--did-docs-out, --rotated-docs-out or --pds-url with it\n");
        return 2;
    }
    if (pds_url != NULL && strncmp(pds_url, "https://", 8) != 0 &&
        strncmp(pds_url, "http://", 7) != 0) {
        fprintf(stderr, "es-atproto-gen: --pds-url is an http(s):// URL, not '%s'\n", pds_url);
        return 2;
    }
    es_atp_gen *g = NULL;
    es_atp_capture_writer *w = NULL;
    es_atp_gen_options o = {.seed = seed,
                            .repos = (size_t)repos,
                            .first_seq = first_seq,
                            .multi_op_permille = (unsigned)multi_op,
                            .unsigned_commits = unsigned_commits,
                            .curves = curves,
                            .rotate_permille = (unsigned)rotate,
                            .pds_url = pds_url};
    es_status s = es_atp_gen_create(&o, &g);
    if (s == ES_OK)
        s = write_docs(g, docs_out); /* before the first frame: the initial keys */
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
    if (s == ES_OK)
        s = write_docs(g, rotated_out); /* after the last: every rotation done */
    if (s == ES_OK)
        s = write_repos(g, repos_out);
    es_buf_free(&frame);
    if (s != ES_OK) {
        fprintf(stderr, "es-atproto-gen: %s: %s\n", es_status_text(s), es_last_error());
        es_atp_gen_destroy(g);
        return 1;
    }
    const es_atp_gen_counts *n = es_atp_gen_counts_of(g);
    printf("wrote %zu frames to %s: %zu commits (%zu creates, %zu updates, %zu deletes), "
           "%zu identity (%zu key rotations), %zu account, %zu sync; %s\n",
           n->frames, out, n->commits, n->creates, n->updates, n->deletes, n->identity,
           n->rotations, n->account, n->sync, unsigned_commits ? "unsigned" : "signed");
    es_atp_gen_destroy(g);
    return 0;
}
