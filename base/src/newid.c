#include "base/newid.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>

#define PREFIX_LEN  12
#define COUNTER_LEN (ES_NEW_ID_LEN - PREFIX_LEN)

static const char digits62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static char prefix[PREFIX_LEN];
static _Atomic uint64_t counter;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_prefix(void)
{
    unsigned char r[PREFIX_LEN + 8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* No entropy source: fall back on addresses and time, still distinct per process. */
        uintptr_t a = (uintptr_t)&r ^ (uintptr_t)&counter;
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(a >> (i % 8 * 8)) ^ (unsigned char)(i * 131);
    }
    for (int i = 0; i < PREFIX_LEN; i++)
        prefix[i] = digits62[r[i] % 62];
    uint64_t start = 0;
    for (int i = 0; i < 8; i++)
        start = start << 8 | r[PREFIX_LEN + i];
    atomic_store(&counter, start >> 8); /* a random start keeps restarts apart too */
}

void esi_new_id(char out[ES_NEW_ID_LEN + 1])
{
    pthread_once(&once, init_prefix);
    uint64_t n = atomic_fetch_add(&counter, 1);
    for (int i = 0; i < PREFIX_LEN; i++)
        out[i] = prefix[i];
    for (int i = ES_NEW_ID_LEN - 1; i >= PREFIX_LEN; i--) {
        out[i] = digits62[n % 62];
        n /= 62;
    }
    out[ES_NEW_ID_LEN] = '\0';
}
