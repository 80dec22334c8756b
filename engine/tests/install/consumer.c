/* Uses only installed headers: escape an id, print a status text, and check
 * an event for an import (no server needed). */
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
    printf("%s %s nats.c %s\n", token, es_status_text(ES_ERR_CONFLICT), es_nats_client_version());
    return strcmp(token, "did:web:example%2Ecom") != 0 || es_import_check(&ev, false) != ES_OK ||
           co.timeout_ms != 5000;
}
