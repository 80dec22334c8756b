/* Counters by name (entity types, event types) for info: a hash table with
 * a bound on distinct names; what comes past it is counted as overflow. */
#ifndef ESTOOL_COUNTS_H
#define ESTOOL_COUNTS_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

#define TOOL_COUNTS_MAX 100000

typedef struct tool_count {
    char *name;
    uint64_t a, b; /* two counters (events, entities...) */
} tool_count;

typedef struct tool_counts {
    tool_count *slots; /* open addressing; name NULL when free */
    size_t cap, n;
    uint64_t overflow_a, overflow_b; /* counts of names past TOOL_COUNTS_MAX */
    size_t overflow_names;
} tool_counts;

#define TOOL_COUNTS_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0, 0, 0, 0                                                                        \
    }

es_status tool_counts_add(tool_counts *c, const char *name, size_t len, uint64_t a, uint64_t b);
/* The entries sorted by name, in a new array of c->n (free() it); NULL when empty. */
tool_count *tool_counts_sorted(const tool_counts *c);
void tool_counts_free(tool_counts *c);

#endif
