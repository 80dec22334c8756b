/* The audit's parts shared between its files (not installed): the binary
 * form of a commit's audit metadata, and the rebuilt block's encoding. */
#ifndef ES_ATP_AUDIT_INTERNAL_H
#define ES_ATP_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/atproto_audit.h>
#include <es/arena.h>
#include <es/buf.h>

#include "atp_sig.h"

#define ESI_ATP_AUDIT_CID_MAX      64 /* a binary CID of the metadata (sha2-256 ones are 36) */
#define ESI_ATP_AUDIT_SIG_TEXT_MAX 96 /* base64url of 64 bytes is 86 characters */

/* The decoded fields; a length of 0 means absent. */
typedef struct esi_atp_audit_fields {
    uint8_t sig[ESI_ATP_SIG_LEN];
    uint8_t data[ESI_ATP_AUDIT_CID_MAX], prev[ESI_ATP_AUDIT_CID_MAX];
    uint8_t commit[ESI_ATP_AUDIT_CID_MAX], prevdata[ESI_ATP_AUDIT_CID_MAX];
    size_t data_len, prev_len, commit_len, prevdata_len;
} esi_atp_audit_fields;

/* Decodes the text fields of `c` (ES_ERR_INVALID when did, rev, data or sig
 * is NULL, ES_ERR_DECODE when one does not decode). */
es_status esi_atp_audit_parse(const es_atp_audit_commit *c, esi_atp_audit_fields *f);

/* Appends the canonical DAG-CBOR of the commit block to `out`: with `sig`
 * (the stored block, whose CID is the commit's) or without (the bytes the
 * signature covers). */
es_status esi_atp_audit_encode(const es_atp_audit_commit *c, const esi_atp_audit_fields *f,
                               bool with_sig, es_buf *out);

/* `len` bytes of signature as the metadata writes them (base64url, no
 * padding, NUL-terminated); ES_ERR_DECODE when they do not fit. */
es_status esi_atp_audit_sig_text(const uint8_t *sig, size_t len,
                                 char out[ESI_ATP_AUDIT_SIG_TEXT_MAX]);

/* The commit block of a #sync event's data (the frame body), pointing into
 * `body`; ES_ERR_DECODE when there is none, ES_ERR_NOMEM. */
es_status esi_atp_audit_sync_block(const uint8_t *body, size_t len, es_arena *arena,
                                   const uint8_t **block, size_t *block_len);

#endif
