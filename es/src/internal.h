/* Private helpers shared by the library's modules. Not installed. */
#ifndef ES_INTERNAL_H
#define ES_INTERNAL_H

#include <es/status.h>

#define ES_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Record the calling thread's last error text and return `s`, so a failure
 * reads `return es_error(ES_ERR_INVALID, "store name '%s' ...", name);`. */
es_status es_error(es_status s, const char *fmt, ...) ES_PRINTF(2, 3);
/* The same with the server's JetStream err_code kept for es_last_error_code(). */
es_status es_error_code(es_status s, int err_code, const char *fmt, ...) ES_PRINTF(3, 4);
void es_error_clear(void);

#define ES_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
