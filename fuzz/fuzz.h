/* What the fuzz targets share (fuzz/README.md). Each target is one .c file
 * defining LLVMFuzzerTestOneInput; this header declares it (the project
 * builds with -Wmissing-prototypes) and the helpers below. */
#ifndef ES_FUZZ_H
#define ES_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <es/arena.h>
#include <es/value.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The arena bound of every target: far above what a valid input of
 * -max_len bytes needs, far below libFuzzer's RSS limit, so that an
 * allocation the decoders do not bound shows up as a crash (out of memory)
 * instead of hiding behind the arena's limit. */
#define FUZZ_ARENA_LIMIT ((size_t)64 << 20)

/* A property that must hold for every input: a failure is a bug, reported
 * as a crash so that libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: %s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'd copy of the input (never NULL, even for size 0), so that a
 * target can change it or hand it to code that keeps pointers into it, and
 * so that AddressSanitizer sees reads past its exact end. */
uint8_t *fuzz_copy(const uint8_t *data, size_t size);

/* Make the sha2-256 blocks of the CAR at buf[car_off, car_off + car_len)
 * hash to their CIDs again, replacing every occurrence of a block's old CID
 * anywhere in buf (links from other blocks, the frame's `commit` and op
 * CIDs) by its new one, children before parents, for a bounded number of
 * rounds. Mutated records and MST nodes then get past hash verification and
 * reach the code behind it. The length of buf never changes. Returns how many
 * CIDs were rewritten (0: nothing to do, or not a CAR). */
size_t fuzz_reseal_car(uint8_t *buf, size_t len, size_t car_off, size_t car_len);


/* A fresh arena bounded by FUZZ_ARENA_LIMIT; aborts when out of memory. */
es_arena *fuzz_arena(void);

#endif
