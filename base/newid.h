/* Unique ids for events and batches (private). */
#ifndef ES_NEWID_H
#define ES_NEWID_H

#define ES_NEW_ID_LEN 22

/* 22 base62 characters: a random per-process prefix and a counter, so ids are
 * unique across processes and cheap (no system call per id). Thread-safe. */
void esi_new_id(char out[ES_NEW_ID_LEN + 1]);

#endif
