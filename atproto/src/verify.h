/* What a verifying decoder checks beyond hashes (es_atp_options.identity):
 * the commit's signature against its repo's key, Sync 1.1 inversion, and a
 * rev not too far ahead. Each check returns ES_OK, or a refusal with *why
 * set to its es_atp_error kind (es_last_error() says more), or ES_ERR_NOMEM
 * with *why left ES_ATP_ERR_NONE (not a refusal). Internal. */
#ifndef ES_ATP_VERIFY_H
#define ES_ATP_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <es/atproto.h>
#include <es/car.h>

#include "atp_sig.h"
#include "invert.h"

/* The signing key of `did` (not NUL-terminated): a reference of the
 * caller's, released with esi_atp_key_destroy (identity.c; other threads
 * may drop the cache entry meanwhile). */
es_status esi_atp_identity_key(es_atp_identity *id, const char *did, size_t len,
                               esi_atp_key **key);

/* Fetch `did`'s document again after `failed` did not verify
 * (esi_atp_resolver_refresh). */
es_status esi_atp_identity_refresh(es_atp_identity *id, const char *did, size_t len,
                                   const esi_atp_key *failed);

/* A rev whose TID time is more than max_future_ms after the wall clock's
 * now: refused ES_ATP_ERR_FUTURE_REV. */
es_status esi_atp_check_rev_time(const char *rev, size_t len, int64_t max_future_ms,
                                 es_atp_error *why);

/* The commit block's `sig` against `did`'s current key; on a signature
 * that does not verify, the document is resolved once more (the key may
 * have rotated) before refusing ES_ATP_ERR_SIGNATURE (also when that
 * resolution fails: the key known does not verify). No document or no
 * usable key in the first place: ES_ATP_ERR_IDENTITY. Scratch from `arena`. */
es_status esi_atp_check_signature(es_atp_identity *id, const char *did, size_t did_len,
                                  const uint8_t *block, size_t len, es_arena *arena,
                                  es_atp_error *why);

/* esi_atp_invert, its refusals mapped to es_atp_error kinds. */
es_status esi_atp_check_inversion(const es_car *car, const uint8_t *data, size_t data_len,
                                  const uint8_t *prev_data, size_t prev_data_len,
                                  const esi_atp_op *ops, size_t count, es_atp_error *why);

#endif
