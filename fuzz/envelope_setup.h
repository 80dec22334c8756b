/* The world of the `envelope` target, shared with the seed tool so that the
 * seeds it seals open in the target: one event, a fixed master key, a
 * keyring whose only record comes from the input, a zstd dictionary trained
 * from fixed samples, and two upcasters.
 *
 * An input is laid out as
 *   [flags: u8]
 *   [len: u8][value] for each header whose FUZZ_ENV_HEADER bit is set, in
 *                    the order of es_envelope_header_names
 *   [len: u8][record]  the entity's data key record in the keyring's backend
 *                      (len 0: none)
 *   [payload]          the rest
 * A truncated input reads as empty fields. */
#ifndef ES_FUZZ_ENVELOPE_SETUP_H
#define ES_FUZZ_ENVELOPE_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include <es/buf.h>
#include <es/envelope.h>
#include <es/keyring.h>
#include <es/upcast.h>

enum {
    FUZZ_ENV_ENCRYPT = 1 << 0,      /* the store encrypts */
    FUZZ_ENV_ACCEPT_PLAIN = 1 << 1, /* ... and reads unencrypted events */
    FUZZ_ENV_KEYRING = 1 << 2,      /* a master key is configured */
    FUZZ_ENV_SMALL = 1 << 3,        /* max_payload FUZZ_ENV_SMALL_MAX instead of _MAX */
    FUZZ_ENV_HEADER = 1 << 4,       /* bits 4-7: header k is present */
};

/* Well above any payload of -max_len bytes, low enough that a frame
 * declaring max_payload bytes does not dominate the time of an input. */
#define FUZZ_ENV_MAX_PAYLOAD ((size_t)256 << 10)
#define FUZZ_ENV_SMALL_MAX   ((size_t)4096)

typedef struct fuzz_env_input {
    uint8_t flags;
    char *headers[ES_ENVELOPE_HEADER_COUNT]; /* NUL-terminated copies, or NULL */
    const uint8_t *record;
    size_t record_len;
    const uint8_t *payload;
    size_t payload_len;
} fuzz_env_input;

/* Split an input (pointers into `data`, headers copied); free with
 * fuzz_env_input_free. */
void fuzz_env_input_parse(const uint8_t *data, size_t size, fuzz_env_input *in);
void fuzz_env_input_free(fuzz_env_input *in);

/* Append an input with these parts to `out` (what fuzz_env_input_parse reads). */
void fuzz_env_input_write(es_buf *out, uint8_t flags, const es_header *headers, size_t n_headers,
                          const uint8_t *record, size_t record_len, const uint8_t *payload,
                          size_t len);

/* The event every input belongs to, and its id. */
extern const es_envelope_event fuzz_env_event;
#define FUZZ_ENV_EVENT_ID "fz-1"

/* An envelope configured by `flags`, with its keyring, upcasters and the
 * backend holding `record` (kept in the world: a seal that creates a key
 * stores it there, see fuzz_env_record). */
typedef struct fuzz_env fuzz_env;
fuzz_env *fuzz_env_create(uint8_t flags, const uint8_t *record, size_t record_len, bool compress,
                          bool use_dict);
es_envelope *fuzz_env_envelope(fuzz_env *w);
/* The record the backend holds now (after a seal created the entity's key). */
const uint8_t *fuzz_env_record(fuzz_env *w, size_t *len);
void fuzz_env_destroy(fuzz_env *w);

/* The dictionary id the envelope's source knows (0 before the first
 * fuzz_env_create). */
uint32_t fuzz_env_dict_id(void);

#endif
