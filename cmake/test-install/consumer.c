/* Uses only installed headers of libes: escape an id, print a status text,
 * check an event for an import (no server needed), and check that the
 * library it runs with is the one it was built against. */
#include <es/es.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    char token[64];
    if (es_id_escape("did:web:example.com", 19, token, sizeof token, NULL) != ES_OK)
        return 1;
    es_raw_event ev = {.subject = "account.a1.Opened"};
    es_connect_options co;
    es_connect_options_init(&co);
    printf("libes %s (built against %s, nats.c %s): %s %s\n", es_version(), ES_VERSION_STRING,
           es_nats_client_version(), token, es_status_text(ES_ERR_CONFLICT));
    if (strcmp(es_version(), ES_VERSION_STRING) != 0)
        return 1;
    return strcmp(token, "did:web:example%2Ecom") != 0 || es_import_check(&ev, false) != ES_OK ||
           co.timeout_ms != 5000;
}
