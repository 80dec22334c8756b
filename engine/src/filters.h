/* Filters (private): an es_filter becomes a subject filter of its store, and
 * a list of them the subject filters of one consumer. read.c, watch.c,
 * inspect.c and the projections all get their subjects here. */
#ifndef ES_FILTERS_IMPL_H
#define ES_FILTERS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <es/read.h>

#include "wire.h"

/* The subject filters of a list of filters, reduced to a set. */
typedef struct esi_filter_set {
    size_t n;                                 /* 1..ES_FILTERS_MAX */
    const char *subjects[ES_FILTERS_MAX];     /* point into text */
    char text[ES_FILTERS_MAX][ES_SUBJECT_MAX];
} esi_filter_set;

/* Checks and turns filters[0..n) of `st` into subjects (none: the one filter
 * of every event, so a set is never empty), and drops every filter that
 * another covers (a duplicate, or one within a wider one: JetStream refuses
 * such lists, and they would ask for no event more). What is left is what
 * one consumer is given: it delivers each event once, in stream order.
 * ES_ERR_INVALID names the filter at fault; more than ES_FILTERS_MAX is
 * ES_ERR_INVALID too. The caller owns *out (esi_filter_set_free; ~56 KiB,
 * not for the stack). */
es_status esi_filter_set_make(const es_store *st, const es_filter *filters, size_t n,
                              esi_filter_set **out);

/* Accepts NULL. */
void esi_filter_set_free(esi_filter_set *fs);

/* The set of `a`'s and `b`'s subjects, reduced as esi_filter_set_make
 * reduces (ES_ERR_LIMIT past ES_FILTERS_MAX). The caller owns *out. */
es_status esi_filter_set_union(const esi_filter_set *a, const esi_filter_set *b,
                               esi_filter_set **out);

/* True when every subject `sub` asks for, `fs` asks for already. */
bool esi_filter_set_covers(const esi_filter_set *fs, const esi_filter_set *sub);

/* True when a (literal) event subject is one the set asks for. */
bool esi_filter_set_matches(const esi_filter_set *fs, const char *subject);

/* True when every subject `a` matches is matched by `b` too (NATS
 * wildcards: '*' one token, '>' one or more at the end). */
bool esi_subject_within(const char *a, const char *b);

#endif
