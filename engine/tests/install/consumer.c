/* Uses only installed headers: escape an id and print a status text. */
#include <es/es.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    char token[64];
    if (es_id_escape("did:web:example.com", 19, token, sizeof token, NULL) != ES_OK)
        return 1;
    printf("%s %s\n", token, es_status_text(ES_ERR_CONFLICT));
    return strcmp(token, "did:web:example%2Ecom") != 0;
}
