/* es-atproto-ingest: the ATProto firehose into an event store. Frames from a
 * relay (WebSocket) or a capture file are decoded, verified and mapped to one
 * atomic batch of entity events each (docs/atproto.md), handed to the
 * engine's sink (per-repository order, retries, bounded memory), and the
 * relay cursor follows the sink's watermark into the store's checkpoint
 * bucket. --dry-run decodes and maps
 * without connecting anywhere (the decode benchmark). */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <es/atproto.h>
#include <es/connect.h>
#include <es/version.h>

#include "cli.h"
#include "identity.h"
#include "ingest.h"
#include "log.h"
#include "pipeline.h"
#include "relay.h"
#include "repos_cmd.h"
#include "source.h"
#include "tracked.h"

#define MEMORY_SOURCE_MAX ((size_t)1 << 30)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: es-atproto-ingest (--relay URL | --from-file PATH) [options]\n"
            "       es-atproto-ingest --backfill DID[,DID...] [options]\n"
            "       es-atproto-ingest repos list|status ... (the repositories' states;\n"
            "       es-atproto-ingest repos --help)\n"
            "\n"
            "Keeps the ATProto firehose (com.atproto.sync.subscribeRepos) in an event store.\n"
            "Every frame is decoded and every block it uses verified against its CID\n"
            "(SHA-256); a commit becomes ONE atomic batch of events, one per record op, on\n"
            "entity type <collection with . as _> and id <repo DID>; #identity, #account and\n"
            "#sync become events on entity type 'repo'. Damaged frames are logged with their\n"
            "seq, counted by kind and skipped whole. Per repository, the rev, MST root\n"
            "and account status of what is stored are kept in ES_<store>_repos: commits\n"
            "stored before, of inactive accounts or of desynchronized repositories are\n"
            "skipped, one that does not follow the stored one is refused and its repository\n"
            "marked desynchronized. See docs/atproto.md.\n"
            "\n"
            "Source (one):\n"
            "  --relay URL          a relay or PDS: ws:// or wss:// (TLS verified); the path\n"
            "                       /xrpc/com.atproto.sync.subscribeRepos is added when the URL\n"
            "                       has none, and ?cursor= from the stored cursor. Reconnects\n"
            "                       with exponential backoff and jitter\n"
            "  --relay-ca FILE      CA certificates for wss:// (default: the system's)\n"
            "  --from-file PATH     a capture: [u32 little-endian length][frame] repeated,\n"
            "                       plain or zstd-compressed (detected); frames at or below\n"
            "                       the stored cursor are skipped\n"
            "  --exit-at-end        exit when the capture ends; otherwise wait for SIGINT or\n"
            "                       SIGTERM after the last frame\n"
            "  --from-start         ignore the stored cursor (the ids still keep each op once\n"
            "                       within the store's duplicate window)\n"
            "\n"
            "Store:\n"
            "  --store NAME         the event store (default atproto; created when missing)\n"
            "  --name NAME          this ingester's name: the key of its cursor in the\n"
            "                       checkpoint bucket ES_<store>_checkpoints\n"
            "                       (default atproto-ingest); <name>.repos there is the\n"
            "                       point the start-up scan of repository states reads from\n"
            "  --duplicate-window DUR  the store's idempotency window when this creates it\n"
            "                       (default 2m); it must exceed the worst replay distance\n"
            "  --max-age DUR        when this creates the store: drop events older than DUR\n"
            "                       (default 0: keep forever)\n"
            "  --max-bytes SIZE     when this creates the store: keep at most SIZE bytes,\n"
            "                       the oldest events dropped (default 0: unlimited)\n"
            "  --replicas N         when this creates the store: JetStream replicas, 1 to 5\n"
            "                       (default 1; its KV buckets get as many)\n"
            "  --compression none|s2  when this creates the store: the server's S2\n"
            "                       compression of its blocks (about half the bytes;\n"
            "                       default none). Only at creation\n"
            "                       An existing store is never changed: when it has other\n"
            "                       values than these four flags give, the run stops (exit\n"
            "                       3) naming them; change it with es-tool edit (not\n"
            "                       --compression: copy into a new store)\n"
            "  --nats-wait DUR      at start-up, how long to keep trying an unreachable NATS\n"
            "                       server, or a JetStream that does not answer (a cluster\n"
            "                       electing), with the relay's backoff, each attempt logged\n"
            "                       (default 30s; 0: one attempt)\n"
            "\n"
            "Flow (memory is bounded by these; see docs/atproto.md):\n"
            "  --max-inflight N     appends in flight at once (default 256)\n"
            "  --max-batches N      of which multi-op atomic batches (default 32, at most 40:\n"
            "                       nats-server allows 50 per stream)\n"
            "  --max-held SIZE      bytes of events kept until acknowledged (default 8M);\n"
            "                       reading stops while this is reached\n"
            "  --max-frames N       frames kept until settled (default 4096)\n"
            "  --max-repos-cached N repository chain states kept in memory, least recently\n"
            "                       used evicted (default 100000; the others are read from\n"
            "                       the store's bucket ES_<store>_repos when they come back)\n"
            "  --drain-timeout DUR  at shutdown, how long to wait for acknowledgements\n"
            "                       (default 30s)\n"
            "  --reconnect-max DUR  longest pause between relay reconnections (default 1m)\n"
            "\n"
            "Backfill (docs/atproto.md, \"Backfill\"):\n"
            "  --backfill DID[,DID...]  fetch these repositories from their PDS\n"
            "                       (com.atproto.sync.getRepo; the PDS from the DID document),\n"
            "                       verify each whole (signature, every block, the MST) and\n"
            "                       store the events that make the store equal to it (not\n"
            "                       live: metadata live=false); the chain state moves to its\n"
            "                       rev. Alone, or beside --relay/--from-file (history\n"
            "                       first, then live); with --exit-at-end the program exits\n"
            "                       when every repository is done (exit 6 when some could\n"
            "                       not be, without a live source)\n"
            "  --backfill-file FILE the DIDs of a file (one or more per line, # comments)\n"
            "  --backfill-all       every repository --backfill-host lists\n"
            "                       (com.atproto.sync.listRepos, paged; those whose rev the\n"
            "                       store has are skipped, inactive ones recorded)\n"
            "  --collection-signal NSID  the repositories with at least one record in this\n"
            "                       collection (com.atproto.sync.listReposByCollection)\n"
            "  --backfill-host URL  the relay or PDS those two list (https)\n"
            "  --resync-desynced    every repository the store marks desynchronized (a\n"
            "                       refused commit, a chain break, a backfill given up):\n"
            "                       fetched and applied whatever its rev, which clears the mark\n"
            "  --backfill-parallelism N  repositories fetched at once (default 4)\n"
            "  --repo-fetch-timeout DUR  one getRepo, whole (default 5m)\n"
            "  --backfill-retry-min DUR  a failure that may pass (429, 5xx, timeout) is tried\n"
            "                       again after this, doubling (default 1m) ...\n"
            "  --backfill-retry-max DUR  ... up to this (default 1h)\n"
            "  --backfill-attempts N attempts per repository in this run (default 0: no\n"
            "                       limit); a repository given up is marked desynchronized\n"
            "\n"
            "Resync (docs/atproto.md, \"Resync\"), with a live source:\n"
            "  a repository found desynchronized (a refused commit, a chain break, a #sync\n"
            "  that disagrees; those marked so when the run starts) is fetched from its PDS\n"
            "  and applied as --backfill does; its live frames are held meanwhile and\n"
            "  stored after its snapshot when newer. --backfill DIDs combine with a live\n"
            "  source the same way (history first, then live).\n"
            "  --no-resync          leave desynchronized repositories so (their commits are\n"
            "                       skipped until a --resync-desynced run)\n"
            "  --require-backfill   a repository the store knows nothing of is backfilled\n"
            "                       (its frames held) before any of its frames is stored\n"
            "  --max-held-repos N   repositories whose frames are held at once (default\n"
            "                       10000; past it, frames of more go on unheld)\n"
            "  --max-held-frames N  frames held per repository (default 1000; past it they\n"
            "                       are dropped and the repository is fetched again after)\n"
            "  --max-held-bytes SIZE  frame copies held in all (default 32M; same)\n"
            "\n"
            "Tracked repositories (docs/atproto.md, \"Tracked repositories\"):\n"
            "  --tracked-only       store the commits of tracked repositories only: the set\n"
            "                       in ES_<store>_tracked (es-atproto-ingest repos add|remove),\n"
            "                       followed while running (no restart)\n"
            "  --max-tracked N      tracked repositories held in memory (default 100000);\n"
            "                       past it, DIDs added are left out (counted)\n"
            "\n"
            "Metrics:\n"
            "  --metrics-listen HOST:PORT  serve Prometheus metrics at /metrics (frames by\n"
            "                       kind and refusal reason, appends, lag, held frames,\n"
            "                       skips, desynchronized repositories, resyncs)\n"
            "\n"
            "Filters:\n"
            "  --collections LIST   keep only these collections: NSIDs or prefixes at\n"
            "                       segment boundaries, comma-separated\n"
            "                       (e.g. app.bsky.feed.*,app.bsky.graph.follow)\n"
            "  --dids LIST|FILE     keep only these repositories: DIDs separated by commas,\n"
            "                       or the path of a file of DIDs (one or more per line,\n"
            "                       # comments); repo events pass this filter only\n"
            "  --verify-all-blocks  hash every block of every CAR (MST nodes too), not only\n"
            "                       the commit and the record blocks the events carry\n"
            "\n"
            "Verification (on by default; docs/atproto.md, \"Verification\"):\n"
            "  --did-docs FILE      seed the DID document cache from a JSON object\n"
            "                       {did: document} (zstd-compressed or not); seeded documents\n"
            "                       do not expire: the way to run offline and in tests\n"
            "  --plc URL            the PLC directory for did:plc (default https://plc.directory;\n"
            "                       https only); did:web is fetched from\n"
            "                       https://<host>/.well-known/did.json, public addresses only\n"
            "  --identity-ttl SECONDS  how long a resolved document is trusted (default 86400)\n"
            "  --offline            resolve nothing over the network: --did-docs is the only\n"
            "                       source; commits of other DIDs are refused (identity), and\n"
            "                       an #identity keeps the document (no key rotation learned)\n"
            "  --no-verify          UNSAFE: store commits without checking their signature,\n"
            "                       Sync 1.1 inversion or rev: a relay can then store anything\n"
            "                       it forges. Refused frames are logged (did, seq, reason)\n"
            "                       and counted by reason either way\n"
            "  --verify-threads N   decode, verify and map frames on N threads (default: the\n"
            "                       online CPUs); frames are still taken in source order,\n"
            "                       16 per thread at most in flight (counted in --max-frames\n"
            "                       and --max-held); 0: on the reading thread, no threads\n"
            "\n"
            "Observability:\n"
            "  --stats-interval DUR a stats line every DUR (default 10s; 0: none): frames/s,\n"
            "                       ops/s, bytes/s, lag, errors by kind, in flight, cursor\n"
            "  --log-format FMT     text (default) or json, on stderr (fatal errors too)\n"
            "  --quiet              only warnings and errors\n"
            "\n"
            "Dry run:\n"
            "  --dry-run            decode, verify and map without connecting anywhere; print\n"
            "                       frames/s, ops/s, MB/s, counts and refusals by reason at\n"
            "                       exit (--from-file only)\n"
            "  --repeat N           with --dry-run: load the capture into memory once and\n"
            "                       replay it N times (no I/O or decompression in the loop)\n"
            "\n"
            "%s"
            "\n"
            "  -h, --help           this text\n"
            "  --version            the program's, the library's and nats.c's versions\n"
            "\n"
            "SIGINT/SIGTERM: stop reading, wait for what is in flight, save the cursor, exit 0.\n"
            "Exit status: 0 done (the capture ended, or a signal), 1 bad usage or an unreadable,\n"
            "corrupt or junk capture (refused before any store is created), 2 the capture does\n"
            "not exist, 3 the store exists with other --max-age, --max-bytes, --replicas or\n"
            "--compression, 4\n"
            "the server is unreachable (after --nats-wait) or refused the store, or\n"
            "frames stayed unacknowledged after --drain-timeout (the next run sends them\n"
            "again), 5 the stream ended with an error frame (a capture's, or a relay's\n"
            "FutureCursor), 6 repositories of a backfill without a live source were given\n"
            "up, 7 the server refused an append for the user's permissions.\n",
            es_cli_conn_help);
}

enum {
    OPT_FILE = 1,
    OPT_RELAY,
    OPT_RELAY_CA,
    OPT_EXIT_AT_END,
    OPT_FROM_START,
    OPT_STORE,
    OPT_NAME,
    OPT_DUP_WINDOW,
    OPT_NATS_WAIT,
    OPT_MAX_AGE,
    OPT_MAX_BYTES,
    OPT_REPLICAS,
    OPT_COMPRESSION,
    OPT_MAX_INFLIGHT,
    OPT_MAX_BATCHES,
    OPT_MAX_HELD,
    OPT_MAX_FRAMES,
    OPT_MAX_REPOS_CACHED,
    OPT_DRAIN_TIMEOUT,
    OPT_RECONNECT_MAX,
    OPT_COLLECTIONS,
    OPT_DIDS,
    OPT_VERIFY_ALL,
    OPT_NO_VERIFY,
    OPT_VERIFY_THREADS,
    OPT_DID_DOCS,
    OPT_PLC,
    OPT_OFFLINE,
    OPT_IDENTITY_TTL,
    OPT_STATS_INTERVAL,
    OPT_LOG_FORMAT,
    OPT_QUIET,
    OPT_DRY_RUN,
    OPT_REPEAT,
    OPT_BACKFILL,
    OPT_BACKFILL_FILE,
    OPT_BACKFILL_PARALLELISM,
    OPT_BACKFILL_ATTEMPTS,
    OPT_BACKFILL_RETRY_MIN,
    OPT_BACKFILL_RETRY_MAX,
    OPT_REPO_FETCH_TIMEOUT,
    OPT_BACKFILL_ALL,
    OPT_COLLECTION_SIGNAL,
    OPT_BACKFILL_HOST,
    OPT_RESYNC_DESYNCED,
    OPT_NO_RESYNC,
    OPT_METRICS_LISTEN,
    OPT_REQUIRE_BACKFILL,
    OPT_MAX_HELD_REPOS,
    OPT_MAX_HELD_FRAMES,
    OPT_MAX_HELD_BYTES,
    OPT_TRACKED_ONLY,
    OPT_MAX_TRACKED,
    OPT_HELP,
    OPT_VERSION,
};

static const es_cli_option options[] = {
    {"from-file", 0, true, OPT_FILE},
    {"relay", 0, true, OPT_RELAY},
    {"relay-ca", 0, true, OPT_RELAY_CA},
    {"exit-at-end", 0, false, OPT_EXIT_AT_END},
    {"from-start", 0, false, OPT_FROM_START},
    {"store", 0, true, OPT_STORE},
    {"name", 0, true, OPT_NAME},
    {"duplicate-window", 0, true, OPT_DUP_WINDOW},
    {"nats-wait", 0, true, OPT_NATS_WAIT},
    {"max-age", 0, true, OPT_MAX_AGE},
    {"max-bytes", 0, true, OPT_MAX_BYTES},
    {"replicas", 0, true, OPT_REPLICAS},
    {"compression", 0, true, OPT_COMPRESSION},
    {"max-inflight", 0, true, OPT_MAX_INFLIGHT},
    {"max-batches", 0, true, OPT_MAX_BATCHES},
    {"max-held", 0, true, OPT_MAX_HELD},
    {"max-frames", 0, true, OPT_MAX_FRAMES},
    {"max-repos-cached", 0, true, OPT_MAX_REPOS_CACHED},
    {"drain-timeout", 0, true, OPT_DRAIN_TIMEOUT},
    {"reconnect-max", 0, true, OPT_RECONNECT_MAX},
    {"collections", 0, true, OPT_COLLECTIONS},
    {"dids", 0, true, OPT_DIDS},
    {"verify-all-blocks", 0, false, OPT_VERIFY_ALL},
    {"no-verify", 0, false, OPT_NO_VERIFY},
    {"verify-threads", 0, true, OPT_VERIFY_THREADS},
    {"did-docs", 0, true, OPT_DID_DOCS},
    {"plc", 0, true, OPT_PLC},
    {"offline", 0, false, OPT_OFFLINE},
    {"identity-ttl", 0, true, OPT_IDENTITY_TTL},
    {"stats-interval", 0, true, OPT_STATS_INTERVAL},
    {"log-format", 0, true, OPT_LOG_FORMAT},
    {"quiet", 0, false, OPT_QUIET},
    {"dry-run", 0, false, OPT_DRY_RUN},
    {"repeat", 0, true, OPT_REPEAT},
    {"backfill", 0, true, OPT_BACKFILL},
    {"backfill-file", 0, true, OPT_BACKFILL_FILE},
    {"backfill-parallelism", 0, true, OPT_BACKFILL_PARALLELISM},
    {"backfill-attempts", 0, true, OPT_BACKFILL_ATTEMPTS},
    {"backfill-retry-min", 0, true, OPT_BACKFILL_RETRY_MIN},
    {"backfill-retry-max", 0, true, OPT_BACKFILL_RETRY_MAX},
    {"repo-fetch-timeout", 0, true, OPT_REPO_FETCH_TIMEOUT},
    {"backfill-all", 0, false, OPT_BACKFILL_ALL},
    {"collection-signal", 0, true, OPT_COLLECTION_SIGNAL},
    {"backfill-host", 0, true, OPT_BACKFILL_HOST},
    {"resync-desynced", 0, false, OPT_RESYNC_DESYNCED},
    {"no-resync", 0, false, OPT_NO_RESYNC},
    {"metrics-listen", 0, true, OPT_METRICS_LISTEN},
    {"require-backfill", 0, false, OPT_REQUIRE_BACKFILL},
    {"max-held-repos", 0, true, OPT_MAX_HELD_REPOS},
    {"max-held-frames", 0, true, OPT_MAX_HELD_FRAMES},
    {"max-held-bytes", 0, true, OPT_MAX_HELD_BYTES},
    {"tracked-only", 0, false, OPT_TRACKED_ONLY},
    {"max-tracked", 0, true, OPT_MAX_TRACKED},
    {"help", 'h', false, OPT_HELP},
    {"version", 0, false, OPT_VERSION},
    {NULL, 0, false, 0},
};

static bool count_in(const char *text, const char *what, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!es_cli_parse_u64(text, what, out))
        return false;
    if (*out < lo || *out > hi) {
        es_cli_usage("%s must be between %llu and %llu", what, (unsigned long long)lo,
                     (unsigned long long)hi);
        return false;
    }
    return true;
}

static bool duration_ms(const char *text, const char *what, bool zero_ok, int64_t *out)
{
    int64_t ns;
    if (!es_cli_parse_duration(text, what, &ns))
        return false;
    if (ns < 0 || (!zero_ok && ns < 1000000)) {
        es_cli_usage("%s must be at least 1ms", what);
        return false;
    }
    *out = ns / 1000000;
    return true;
}

/* One option; false on a usage error (reported). */
static bool apply(ingest_config *c, int id, const char *v)
{
    uint64_t n;
    int64_t size;
    es_status s = ES_OK;
    switch (id) {
    case OPT_FILE: c->file = v; return true;
    case OPT_RELAY: c->relay = v; return true;
    case OPT_RELAY_CA: c->relay_ca = v; return true;
    case OPT_EXIT_AT_END: c->exit_at_end = true; return true;
    case OPT_FROM_START: c->from_start = true; return true;
    case OPT_STORE: c->store = v; return true;
    case OPT_NAME: c->name = v; return true;
    case OPT_DUP_WINDOW:
        return es_cli_parse_duration(v, "--duplicate-window", &c->duplicate_window_ns);
    case OPT_NATS_WAIT: return duration_ms(v, "--nats-wait", true, &c->nats_wait_ms);
    case OPT_MAX_AGE:
        if (!es_cli_parse_duration(v, "--max-age", &c->max_age_ns))
            return false;
        if (c->max_age_ns < 0) {
            es_cli_usage("--max-age must not be negative");
            return false;
        }
        c->max_age_arg = v;
        return true;
    case OPT_MAX_BYTES:
        if (!es_cli_parse_size(v, "--max-bytes", &c->max_bytes))
            return false;
        if (c->max_bytes < 0) {
            es_cli_usage("--max-bytes must not be negative");
            return false;
        }
        c->max_bytes_arg = v;
        return true;
    case OPT_REPLICAS:
        if (!count_in(v, "--replicas", 1, 5, &n))
            return false;
        c->replicas = (int)n;
        return true;
    case OPT_COMPRESSION:
        if (es_storage_compression_parse(v, &c->compression) != ES_OK) {
            es_cli_usage("--compression is none or s2, not '%.32s'", v);
            return false;
        }
        c->compression_arg = v;
        return true;
    case OPT_MAX_INFLIGHT:
        if (!count_in(v, "--max-inflight", 1, 4096, &n))
            return false;
        c->max_inflight = (size_t)n;
        return true;
    case OPT_MAX_BATCHES:
        if (!count_in(v, "--max-batches", 1, 40, &n))
            return false;
        c->max_batches = (size_t)n;
        return true;
    case OPT_MAX_HELD:
        if (!es_cli_parse_size(v, "--max-held", &size))
            return false;
        if (size < 1) {
            es_cli_usage("--max-held must be positive");
            return false;
        }
        c->max_held = (size_t)size;
        return true;
    case OPT_MAX_FRAMES:
        if (!count_in(v, "--max-frames", 2, 1 << 20, &n))
            return false;
        c->max_frames = (size_t)n;
        return true;
    case OPT_MAX_REPOS_CACHED:
        if (!count_in(v, "--max-repos-cached", 1, 1 << 24, &n))
            return false;
        c->max_repos_cached = (size_t)n;
        return true;
    case OPT_DRAIN_TIMEOUT: return duration_ms(v, "--drain-timeout", true, &c->drain_timeout_ms);
    case OPT_RECONNECT_MAX: return duration_ms(v, "--reconnect-max", false, &c->reconnect_max_ms);
    case OPT_COLLECTIONS: s = es_atp_filter_add_collections(c->filter, v); break;
    case OPT_DIDS: s = es_atp_filter_add_dids_arg(c->filter, v); break;
    case OPT_VERIFY_ALL: c->verify_all = true; return true;
    case OPT_NO_VERIFY: c->no_verify = true; return true;
    case OPT_VERIFY_THREADS:
        if (!count_in(v, "--verify-threads", 0, INGEST_MAX_VERIFY_THREADS, &n))
            return false;
        c->verify_threads = (size_t)n;
        return true;
    case OPT_DID_DOCS: c->did_docs = v; return true;
    case OPT_PLC: c->plc_url = v; return true;
    case OPT_OFFLINE: c->offline = true; return true;
    case OPT_IDENTITY_TTL:
        if (!count_in(v, "--identity-ttl", 1, 10ULL * 365 * 24 * 3600, &n))
            return false;
        c->identity_ttl_ms = (int64_t)n * 1000;
        return true;
    case OPT_STATS_INTERVAL: return duration_ms(v, "--stats-interval", true, &c->stats_interval_ms);
    case OPT_LOG_FORMAT:
        if (ingest_log_set_format(v))
            return true;
        es_cli_usage("--log-format is text or json");
        return false;
    case OPT_QUIET: ingest_log_set_quiet(true); return true;
    case OPT_DRY_RUN: c->dry_run = true; return true;
    case OPT_REPEAT:
        if (!count_in(v, "--repeat", 1, UINT32_MAX, &n))
            return false;
        c->repeat = (unsigned long)n;
        return true;
    case OPT_BACKFILL: c->backfill = v; return true;
    case OPT_BACKFILL_FILE: c->backfill_file = v; return true;
    case OPT_BACKFILL_ALL: c->backfill_all = true; return true;
    case OPT_COLLECTION_SIGNAL:
        if (!es_atp_valid_nsid(v, strlen(v))) {
            es_cli_usage("--collection-signal: '%s' is not an NSID", v);
            return false;
        }
        c->collection_signal = v;
        return true;
    case OPT_BACKFILL_HOST: c->backfill_host = v; return true;
    case OPT_RESYNC_DESYNCED: c->resync_desynced = true; return true;
    case OPT_NO_RESYNC: c->no_resync = true; return true;
    case OPT_METRICS_LISTEN: c->metrics_listen = v; return true;
    case OPT_REQUIRE_BACKFILL: c->require_backfill = true; return true;
    case OPT_MAX_HELD_REPOS:
        if (!count_in(v, "--max-held-repos", 1, 1 << 24, &n))
            return false;
        c->max_held_repos = (size_t)n;
        return true;
    case OPT_MAX_HELD_BYTES:
        if (!es_cli_parse_size(v, "--max-held-bytes", &size))
            return false;
        if (size < 1) {
            es_cli_usage("--max-held-bytes must be positive");
            return false;
        }
        c->max_held_bytes = (size_t)size;
        return true;
    case OPT_MAX_HELD_FRAMES:
        if (!count_in(v, "--max-held-frames", 1, 1 << 20, &n))
            return false;
        c->max_held_frames = (size_t)n;
        return true;
    case OPT_TRACKED_ONLY: c->tracked_only = true; return true;
    case OPT_MAX_TRACKED:
        if (!count_in(v, "--max-tracked", 1, TRACKED_MAX_LIMIT, &n))
            return false;
        c->max_tracked = (size_t)n;
        return true;
    case OPT_BACKFILL_PARALLELISM:
        if (!count_in(v, "--backfill-parallelism", 1, 64, &n))
            return false;
        c->backfill_parallelism = (size_t)n;
        return true;
    case OPT_BACKFILL_ATTEMPTS:
        if (!count_in(v, "--backfill-attempts", 0, UINT32_MAX, &n))
            return false;
        c->backfill_attempts = (unsigned)n;
        return true;
    case OPT_BACKFILL_RETRY_MIN:
        return duration_ms(v, "--backfill-retry-min", false, &c->backfill_retry_min_ms);
    case OPT_BACKFILL_RETRY_MAX:
        return duration_ms(v, "--backfill-retry-max", false, &c->backfill_retry_max_ms);
    case OPT_REPO_FETCH_TIMEOUT:
        return duration_ms(v, "--repo-fetch-timeout", false, &c->repo_fetch_timeout_ms);
    default: return false;
    }
    if (s != ES_OK) {
        es_cli_usage("%s", es_last_error());
        return false;
    }
    return true;
}

/* An option from the environment (ES_FROM_FILE, ES_MAX_HELD, ...). */
static int env_option(int id, const char *value, void *closure)
{
    ingest_config *c = closure;
    int r = es_cli_conn_set(&c->conn, id, value);
    if (r == ES_CLI_ERROR || (r == 0 && !apply(c, id, value)))
        return ES_CLI_ERROR;
    return 1;
}

/* Parses the environment's options, then the command line (which wins):
 * ES_EXIT_OK, ES_EXIT_USAGE, or -1 after --help or --version. */
static int parse_args(int argc, char **argv, ingest_config *c)
{
    if (es_cli_env_apply_options(options, env_option, c) == ES_CLI_ERROR)
        return ES_EXIT_USAGE;
    es_cli_parser p;
    es_cli_parser_init(&p, argc - 1, argv + 1, options);
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
        if (id == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        if (id == ES_CLI_ARG)
            return es_cli_usage("unexpected argument '%s'", p.value);
        if (id == OPT_HELP) {
            usage(stdout);
            return -1;
        }
        if (id == OPT_VERSION) {
            printf("es-atproto-ingest %s (nats.c %s)\n", es_version(), es_nats_client_version());
            return -1;
        }
        int r = es_cli_conn_set(&c->conn, id, p.value);
        if (r == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        if (r == 0 && !apply(c, id, p.value))
            return ES_EXIT_USAGE;
    }
    bool listing = c->backfill_all || c->collection_signal != NULL;
    bool backfill =
        c->backfill != NULL || c->backfill_file != NULL || listing || c->resync_desynced;
    if (listing && c->backfill_host == NULL)
        return es_cli_usage("--backfill-all and --collection-signal list the repositories of "
                            "--backfill-host URL (a relay or a PDS)");
    if (c->backfill_all && c->collection_signal != NULL)
        return es_cli_usage("--backfill-all or --collection-signal, not both");
    if (c->file != NULL && c->relay != NULL)
        return es_cli_usage("give one source: --relay URL or --from-file PATH");
    if (!ingest_config_live(c) && !backfill)
        return es_cli_usage("give a source (--relay URL or --from-file PATH) or --backfill");
    if ((backfill || c->require_backfill) && c->no_resync)
        return es_cli_usage("--backfill and --require-backfill resync: not with --no-resync");
    if ((c->tracked_only || c->require_backfill) && !ingest_config_live(c))
        return es_cli_usage("--tracked-only and --require-backfill are for a live source "
                            "(--relay or --from-file)");
    if (c->tracked_only && c->dry_run)
        return es_cli_usage("--tracked-only reads the store's tracked set: not with --dry-run");
    if (c->require_backfill && (c->no_verify || c->dry_run))
        return es_cli_usage("--require-backfill stores what it verifies: not with --dry-run or "
                            "--no-verify");
    if (backfill && (c->dry_run || c->no_verify))
        return es_cli_usage("--backfill stores what it verifies: not with --dry-run or "
                            "--no-verify");
    if (c->max_age_ns > 0 && c->max_age_ns < c->duplicate_window_ns)
        return es_cli_usage("--max-age must be at least --duplicate-window (the ids of events "
                            "that old are still recognised)");
    if (c->dry_run && (c->max_age_arg || c->max_bytes_arg || c->replicas || c->compression_arg))
        return es_cli_usage("--max-age, --max-bytes, --replicas and --compression are for the "
                            "store: not with --dry-run");
    if (c->backfill_retry_max_ms < c->backfill_retry_min_ms)
        return es_cli_usage("--backfill-retry-max must be at least --backfill-retry-min");
    if (c->dry_run && c->relay != NULL)
        return es_cli_usage("--dry-run reads captures only (--from-file)");
    if (c->repeat && !c->dry_run)
        return es_cli_usage("--repeat is for --dry-run (the decode benchmark)");
    if (c->max_batches > c->max_inflight)
        c->max_batches = c->max_inflight;
    if (c->max_frames < c->max_inflight)
        return es_cli_usage("--max-frames must be at least --max-inflight");
    return ES_EXIT_OK;
}

/* After the source ends without --exit-at-end: stay up until a signal. */
static void wait_for_signal(void)
{
    while (!stop_requested)
        pause();
}

static int dry_run(const ingest_config *c)
{
    es_atp_identity *id = NULL;
    ingest_source *src = NULL;
    es_status s = ingest_identity_open(c, &id);
    if (s != ES_OK)
        return es_cli_fail(s, "setting up identities");
    ingest_workers_options o;
    ingest_decoding_options(c, id, &o);
    s = c->repeat ? ingest_source_memory(c->file, o.decode.limits.max_frame_bytes, c->repeat,
                                         MEMORY_SOURCE_MAX, &src)
                  : ingest_source_file(c->file, o.decode.limits.max_frame_bytes, &src);
    if (s != ES_OK) {
        int code = es_cli_fail(s, "opening the capture");
        es_atp_identity_destroy(id);
        return code;
    }
    ingest_result r;
    s = ingest_run(src, &o, ingest_sink_discard, NULL, &stop_requested, &r);
    int code = ES_EXIT_OK;
    if (r.error_frame)
        code = INGEST_EXIT_ERROR_FRAME;
    else if (s != ES_OK || (r.source_status != ES_OK && r.source_status != ES_ERR_NOT_FOUND))
        code = es_cli_fail(s != ES_OK ? s : r.source_status, "reading the capture");
    else if (r.source_status == ES_ERR_NOT_FOUND && !c->exit_at_end)
        wait_for_signal();
    ingest_report(stdout, ingest_source_name(src), &r.stats, &r);
    ingest_identity_report(stdout, id);
    ingest_source_close(src);
    es_atp_identity_destroy(id);
    return code;
}

/* Every error line, fatal ones included, is a log line in the chosen format. */
static void log_error(const char *text)
{
    ingest_log_msg(LOG_ERROR, text, NULL);
}

/* --log-format, looked for before the arguments are parsed, so that an error
 * in an argument before it is written in its format too. A bad value is left
 * for the parser to report. */
static void early_log_format(int argc, char **argv)
{
    const char *flag = "--log-format";
    size_t n = strlen(flag);
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], flag) == 0 && i + 1 < argc)
            ingest_log_set_format(argv[i + 1]);
        else if (strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=')
            ingest_log_set_format(argv[i] + n + 1);
    }
}

int main(int argc, char **argv)
{
    es_cli_set_prog("es-atproto-ingest");
    early_log_format(argc, argv);
    es_cli_set_error_writer(log_error);
    if (argc > 1 && strcmp(argv[1], "repos") == 0)
        return ingest_repos_main(argc - 2, argv + 2);
    ingest_config c;
    ingest_config_init(&c);
    if (es_atp_filter_create(&c.filter) != ES_OK) {
        es_cli_error("out of memory");
        return ES_EXIT_SERVER;
    }
    int code = parse_args(argc, argv, &c);
    if (code == ES_EXIT_OK) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (c.dry_run)
            code = dry_run(&c);
        else if (c.file != NULL)
            code = ingest_file(&c, &stop_requested);
        else if (c.relay == NULL)
            code = ingest_backfill(&c, &stop_requested);
        else
            code = ingest_relay(&c, &stop_requested);
    } else if (code < 0) {
        code = ES_EXIT_OK; /* --help, --version */
    }
    es_atp_filter_destroy(c.filter);
    return code;
}
