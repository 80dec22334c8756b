/* NATS NKeys, as much as a client needs: the public key of a user seed, so
 * that --nkey takes a seed file alone as the NATS CLI does (nats.c wants the
 * public key too). Format: base32 (RFC 4648, upper case, unpadded) of a
 * prefix, the key and a CRC-16/XMODEM, little-endian. */
#ifndef ES_CLI_NKEY_H
#define ES_CLI_NKEY_H

#include <stddef.h>
#include <stdint.h>

#include <es/status.h>

#define ES_NKEY_SEED_LEN   58 /* characters of an encoded seed ("SU...") */
#define ES_NKEY_PUBLIC_LEN 56 /* characters of an encoded public key ("U...") */

/* The user public key ("U...", NUL-terminated) of an encoded user seed.
 * ES_ERR_INVALID for anything else (wrong prefix, bad checksum). */
es_status es_nkey_public_from_seed(const char *seed, size_t len, char out[ES_NKEY_PUBLIC_LEN + 1]);

/* The same from a seed file: the first line that starts with "SU" (so a
 * plain seed file and a .nk file both work). ES_ERR_IO when unreadable.
 * The seed is wiped from memory afterwards. */
es_status es_nkey_public_from_seed_file(const char *path, char out[ES_NKEY_PUBLIC_LEN + 1]);

/* Encodes a 32-byte Ed25519 seed as a user seed ("SU...", NUL-terminated):
 * for tests and tools that make keys. */
es_status es_nkey_encode_user_seed(const uint8_t raw[32], char out[ES_NKEY_SEED_LEN + 1]);

#endif
