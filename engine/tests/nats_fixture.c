#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "envelope_kv.h"
#include "nats_fixture.h"
#include "store_impl.h"

natsConnection *fixture_connect(void)
{
    const char *url = getenv("NATS_URL");
    if (url == NULL || url[0] == '\0')
        return NULL;
    natsConnection *nc = NULL;
    natsStatus ns = natsConnection_ConnectTo(&nc, url);
    if (ns != NATS_OK)
        fail_msg("cannot connect to NATS_URL=%s: %s", url, natsStatus_GetText(ns));
    return nc;
}

void fixture_disconnect(natsConnection *nc)
{
    if (nc != NULL)
        natsConnection_Destroy(nc);
}

void fixture_store_name(char out[33])
{
    static unsigned counter;
    snprintf(out, 33, "t%ld_%u", (long)getpid(), ++counter);
}

void fixture_drop_store(const esi_js *js, const char *store)
{
    if (js != NULL)
        assert_int_equal(esi_store_delete_buckets(js, store), ES_OK);
}

void fixture_end_store(natsConnection *nc, const char *store, es_store *st)
{
    es_store_destroy(st);
    if (nc != NULL)
        es_store_delete(nc, store, NULL);
    fixture_disconnect(nc);
}

int fixture_live_setup(void **state)
{
    fixture_live *l = calloc(1, sizeof *l);
    assert_non_null(l);
    l->nc = fixture_connect();
    fixture_store_name(l->name);
    if (l->nc != NULL)
        assert_int_equal(es_store_create(l->nc, l->name, NULL, NULL, &l->st), ES_OK);
    *state = l;
    return 0;
}

int fixture_live_teardown(void **state)
{
    fixture_live *l = *state;
    fixture_end_store(l->nc, l->name, l->st);
    free(l);
    return 0;
}
