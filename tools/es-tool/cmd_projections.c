/* es-tool projections and checkpoints: what reads a store and how far it got.
 * Projections are the store's durable consumers (es/projection.h: their
 * settings and lag, per partition); checkpoints the named positions in its
 * KV bucket ES_<store>_checkpoints (es/checkpoint.h). Both only read: the
 * checkpoint bucket is not created when it is missing. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "estool.h"
#include "render.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

/* STORE [NAME] [--json] and the connection options. */
typedef struct inspect_args {
    es_cli_conn conn;
    char conn_name[64];
    const char *store, *name;
    bool as_json;
} inspect_args;

/* Parses the command line; TOOL_PROCEED, or the exit code to return now. */
static int parse(const tool_command *cmd, int argc, char **argv, inspect_args *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->conn_name, sizeof a->conn_name, "es-tool %s", cmd->name);
    es_cli_conn_init(&a->conn, a->conn_name);
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    for (int id; (id = tool_next_option(&p, &a->conn, NULL)) != ES_CLI_END;) {
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(cmd);
        case OPT_JSON: a->as_json = true; break;
        case ES_CLI_ARG:
            if (a->name != NULL)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            *(a->store == NULL ? &a->store : &a->name) = p.value;
            break;
        default: return es_cli_usage("unexpected option");
        }
    }
    if (a->store == NULL)
        return es_cli_usage("which store? es-tool %s STORE [NAME]", cmd->name);
    return tool_store_name_valid(a->store) ? TOOL_PROCEED : ES_EXIT_USAGE;
}

/* Parses and opens the store: TOOL_PROCEED with *nc and *st the caller's
 * (tool_close), or the exit code to return now. */
static int parse_and_open(const tool_command *cmd, int argc, char **argv, inspect_args *a,
                          natsConnection **nc, es_store **st)
{
    int rc = parse(cmd, argc, argv, a);
    if (rc != TOOL_PROCEED) /* --help, or a usage error */
        return rc;
    rc = tool_open(&a->conn, a->store, nc, st);
    return rc == ES_EXIT_OK ? TOOL_PROCEED : rc;
}

/* The exit code of a listing that ended with `s` (a closed stdout is a
 * normal end). */
static int finish(es_status s, size_t count, bool as_json, const char *none)
{
    if (s == ES_OK && !tool_flush())
        s = ES_ERR_IO;
    if (s == ES_ERR_IO && tool_output_closed())
        return ES_EXIT_OK;
    if (s != ES_OK)
        return es_cli_fail(s, NULL);
    if (count == 0 && !as_json && none != NULL)
        fprintf(stderr, "%s\n", none);
    return ES_EXIT_OK;
}

/* ---- projections -------------------------------------------------------------- */

static const char *start_text(es_projection_start_at start)
{
    switch (start) {
    case ES_PROJECTION_AFTER_SEQ: return "after_seq";
    case ES_PROJECTION_NEW_ONLY: return "new_only";
    default: return "from_start";
    }
}

static json_t *partition_json(int index, const es_projection_partition *p)
{
    return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:b}", "partition", index, "pending",
                     (json_int_t)p->pending, "ack_pending", (json_int_t)p->ack_pending,
                     "redelivered", (json_int_t)p->redelivered, "delivered_seq",
                     (json_int_t)p->delivered_seq, "ack_floor_seq", (json_int_t)p->ack_floor_seq,
                     "waiting", p->waiting, "pinned", p->pinned);
}

static json_t *projection_json(const es_projection_info *in, bool with_partitions)
{
    json_t *j = json_pack(
        "{s:s, s:b, s:i, s:I, s:s, s:I, s:I, s:i, s:i, s:I, s:I, s:I, s:I}", "name", in->name,
        "ordered", in->ordered, "partitions", in->partitions, "filters",
        (json_int_t)in->filter_count, "start", start_text(in->start), "after_seq",
        (json_int_t)in->after_seq, "ack_wait_ms", (json_int_t)in->ack_wait_ms, "max_deliver",
        in->max_deliver, "max_ack_pending", in->max_ack_pending, "pin_timeout_ms",
        (json_int_t)in->pin_timeout_ms, "pending", (json_int_t)in->pending, "ack_pending",
        (json_int_t)in->ack_pending, "ack_floor_seq", (json_int_t)in->ack_floor_seq);
    if (j == NULL || !with_partitions)
        return j;
    json_t *parts = json_array();
    for (int i = 0; i < in->partitions && i < ES_PROJECTION_MAX_PARTITIONS; i++)
        json_array_append_new(parts, partition_json(i, &in->partition[i]));
    json_object_set_new(j, "partition", parts);
    return j;
}

typedef struct listing {
    bool as_json;
    size_t count;
} listing;

static es_status print_projection(const es_projection_info *in, void *closure)
{
    listing *l = closure;
    if (l->as_json) {
        es_status s = tool_print_json(projection_json(in, false));
        l->count += s == ES_OK;
        return s;
    }
    if (l->count++ == 0)
        printf("%-24s %-9s %10s %12s %12s %13s\n", "PROJECTION", "ORDERED", "PARTITIONS", "PENDING",
               "ACK PENDING", "ACK FLOOR SEQ");
    printf("%-24s %-9s %10d %12" PRIu64 " %12" PRIu64 " %13" PRIu64 "\n", in->name,
           in->ordered ? "yes" : "no", in->partitions, in->pending, in->ack_pending,
           in->ack_floor_seq);
    return ES_OK; /* a closed stdout shows at the flush */
}

static void print_projection_text(const char *store, const es_projection_info *in)
{
    char wait[32], pin[32];
    tool_duration_text(in->ack_wait_ms * 1000000, wait);
    tool_duration_text(in->pin_timeout_ms * 1000000, pin);
    printf("Projection %s of store %s\n\n", in->name, store);
    printf("  ordered:          %s (%d partition%s)\n", in->ordered ? "yes" : "no", in->partitions,
           in->partitions == 1 ? "" : "s");
    printf("  filters:          %zu%s\n", in->filter_count,
           in->filter_count == 0 ? " (every event)" : "");
    printf("  start:            %s", start_text(in->start));
    if (in->start == ES_PROJECTION_AFTER_SEQ)
        printf(" %" PRIu64, in->after_seq);
    printf("\n  ack wait:         %s\n", wait);
    printf("  max deliver:      %d\n  max ack pending:  %d\n", in->max_deliver,
           in->max_ack_pending);
    if (in->ordered)
        printf("  pin timeout:      %s\n", pin);
    printf("  pending:          %" PRIu64 "\n  ack pending:      %" PRIu64 "\n", in->pending,
           in->ack_pending);
    printf("  ack floor seq:    %" PRIu64 "\n\n", in->ack_floor_seq);
    printf("  %-9s %10s %12s %11s %13s %13s %7s %6s\n", "PARTITION", "PENDING", "ACK PENDING",
           "REDELIVERED", "DELIVERED SEQ", "ACK FLOOR SEQ", "WAITING", "PINNED");
    for (int i = 0; i < in->partitions && i < ES_PROJECTION_MAX_PARTITIONS; i++) {
        const es_projection_partition *p = &in->partition[i];
        printf("  %-9d %10" PRIu64 " %12" PRIu64 " %11" PRIu64 " %13" PRIu64 " %13" PRIu64
               " %7d %6s\n",
               i, p->pending, p->ack_pending, p->redelivered, p->delivered_seq, p->ack_floor_seq,
               p->waiting, p->pinned ? "yes" : "no");
    }
}

static es_status show_projection(es_store *st, const inspect_args *a)
{
    es_projection_info in;
    es_status s = es_projection_info_get(st, a->name, &in);
    if (s == ES_ERR_NOT_FOUND)
        return es_error(s, "no projection '%.64s' in store %s", a->name, a->store);
    if (s != ES_OK)
        return s;
    if (a->as_json)
        return tool_print_json(projection_json(&in, true));
    print_projection_text(a->store, &in);
    return ES_OK;
}

static int run_projections(int argc, char **argv)
{
    inspect_args a;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    int rc = parse_and_open(&tool_cmd_projections, argc, argv, &a, &nc, &st);
    if (rc != TOOL_PROCEED)
        return rc;
    listing l = {a.as_json, 0};
    es_status s =
        a.name != NULL ? show_projection(st, &a) : es_projection_list(st, print_projection, &l);
    rc = finish(s, a.name != NULL ? 1 : l.count, a.as_json, "no projections");
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_projections = {
    "projections",
    "list a store's projections with their lag, or show one",
    run_projections,
    "Usage: es-tool projections STORE [NAME] [--json]\n"
    "\n"
    "Without NAME, lists the store's projections (its durable consumers, see\n"
    "docs/projections.md) in name order: ordered or not, partitions, events\n"
    "pending delivery, delivered and not acknowledged, and the sequence up to\n"
    "which every event is done. With NAME, shows that projection's settings and\n"
    "each partition's lag. Nothing is changed.\n"
    "\n"
    "Options:\n"
    "      --json           one JSON object a line: name, ordered, partitions,\n"
    "                       filters, start, after_seq, ack_wait_ms, max_deliver,\n"
    "                       max_ack_pending, pin_timeout_ms, pending, ack_pending,\n"
    "                       ack_floor_seq (and with NAME, partition: an array)\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool projections bank\n"
    "  es-tool projections bank balances\n"
    "  es-tool projections bank --json | jq 'select(.pending > 1000) | .name'\n",
};

/* ---- checkpoints -------------------------------------------------------------- */

static es_status find_checkpoints(const es_bucket_info *b, void *closure)
{
    if (strcmp(b->kind, "checkpoints") == 0)
        *(bool *)closure = true;
    return ES_OK;
}

/* Opens the checkpoint bucket when it exists (*cps NULL when not): a look
 * must not create it. */
static es_status open_checkpoints(es_store *st, es_checkpoints **cps)
{
    *cps = NULL;
    bool exists = false;
    es_status s = es_store_buckets(st, find_checkpoints, &exists);
    if (s == ES_OK && exists)
        s = es_checkpoints_open(st, cps);
    return s;
}

static json_t *checkpoint_json(const char *name, const es_checkpoint *cp)
{
    char time[ES_TIME_MAX] = "";
    if (cp->time_ns != 0)
        es_time_format(cp->time_ns, time);
    json_t *j =
        json_pack("{s:s, s:I, s:s, s:I}", "name", name, "position", (json_int_t)cp->position,
                  "time", time, "revision", (json_int_t)cp->revision);
    if (j != NULL && cp->data != NULL) {
        json_t *data = json_loadb(cp->data, cp->data_len, JSON_DECODE_ANY, NULL);
        json_object_set_new(j, "data", data ? data : json_stringn(cp->data, cp->data_len));
    }
    return j;
}

/* The data column: the JSON blob, cut to `width` characters. */
static void data_excerpt(const es_checkpoint *cp, char *out, size_t width)
{
    if (cp->data == NULL) {
        snprintf(out, width + 1, "-");
        return;
    }
    size_t n = cp->data_len < width ? cp->data_len : width;
    memcpy(out, cp->data, n);
    out[n] = '\0';
    if (cp->data_len > width)
        memcpy(out + width - 3, "...", 3);
    for (char *c = out; *c; c++) /* compact JSON has no control bytes; be sure */
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

static es_status print_checkpoint(const char *name, const es_checkpoint *cp, void *closure)
{
    listing *l = closure;
    if (l->as_json) {
        es_status s = tool_print_json(checkpoint_json(name, cp));
        l->count += s == ES_OK;
        return s;
    }
    char time[64], data[41];
    tool_time_text(cp->time_ns, time);
    data_excerpt(cp, data, 40);
    if (l->count++ == 0)
        printf("%-32s %20s %-30s %9s  %s\n", "CHECKPOINT", "POSITION", "TIME", "REVISION", "DATA");
    printf("%-32s %20" PRIu64 " %-30s %9" PRIu64 "  %s\n", name, cp->position, time, cp->revision,
           data);
    return ES_OK; /* a closed stdout shows at the flush */
}

static es_status show_checkpoint(es_checkpoints *cps, const inspect_args *a)
{
    es_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    es_status s = cps ? es_checkpoint_get(cps, a->name, &cp) : ES_ERR_NOT_FOUND;
    if (s == ES_ERR_NOT_FOUND)
        return es_error(s, "no checkpoint '%.64s' in store %s", a->name, a->store);
    if (s != ES_OK)
        return s;
    if (a->as_json) {
        s = tool_print_json(checkpoint_json(a->name, &cp));
    } else {
        char time[64];
        tool_time_text(cp.time_ns, time);
        printf("Checkpoint %s of store %s\n\n  position:  %" PRIu64 "\n  time:      %s\n"
               "  revision:  %" PRIu64 "\n  data:      ",
               a->name, a->store, cp.position, time, cp.revision);
        es_buf b = ES_BUF_INIT;
        if (cp.data != NULL && tool_json_indent(cp.data, cp.data_len, 13, false, &b) == ES_OK)
            tool_write(b.data, b.len);
        else
            tool_write("-", 1);
        tool_write("\n", 1);
        es_buf_free(&b);
    }
    es_checkpoint_clear(&cp);
    return s;
}

static int run_checkpoints(int argc, char **argv)
{
    inspect_args a;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    int rc = parse_and_open(&tool_cmd_checkpoints, argc, argv, &a, &nc, &st);
    if (rc != TOOL_PROCEED)
        return rc;
    es_checkpoints *cps = NULL;
    listing l = {a.as_json, 0};
    es_status s = open_checkpoints(st, &cps);
    if (s == ES_OK && a.name != NULL)
        s = show_checkpoint(cps, &a);
    else if (s == ES_OK && cps != NULL)
        s = es_checkpoint_list(cps, print_checkpoint, &l);
    rc = finish(s, a.name != NULL ? 1 : l.count, a.as_json, "no checkpoints");
    es_checkpoints_destroy(cps);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_checkpoints = {
    "checkpoints",
    "list a store's checkpoints, or show one",
    run_checkpoints,
    "Usage: es-tool checkpoints STORE [NAME] [--json]\n"
    "\n"
    "Without NAME, lists the checkpoints kept in the store's KV bucket\n"
    "ES_<store>_checkpoints (named positions: where an indexer or an ingester's\n"
    "relay cursor got to), in no particular order, with their position, the\n"
    "time they were set, their KV revision and their JSON data. With NAME,\n"
    "shows that one. Nothing is changed; a store without the bucket has none.\n"
    "\n"
    "Options:\n"
    "      --json           one JSON object a line: name, position, time,\n"
    "                       revision and data (when set)\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool checkpoints bsky\n"
    "  es-tool checkpoints bsky relay --json | jq .position\n",
};
