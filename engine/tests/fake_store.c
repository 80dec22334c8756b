/* A store over the scripted server (fake_store.h). */
#include "fake_store.h"

#include <string.h>

#include "store_impl.h"
#include "wire.h"

es_status fake_store_open(fake_store *fs, const char *name, int64_t timeout_ms)
{
    memset(fs, 0, sizeof *fs);
    char stream[ES_STREAM_NAME_MAX], subjects[ES_STORE_SUBJECTS_MAX];
    esi_wire_stream_name(name, stream);
    esi_wire_store_subjects(name, subjects);
    fs->f = fake_conn_create();
    fs->fj = fake_js_create(fs->f, stream, subjects);
    esi_conn conn;
    fake_conn_table(fs->f, &conn);
    esi_js_options jo = {.timeout_ms = timeout_ms};
    es_store_options o;
    es_store_options_init(&o);
    o.timeout_ms = timeout_ms;
    esi_js *js = NULL;
    es_status s = esi_js_create(&conn, &jo, &js);
    return s == ES_OK ? esi_store_open_js(js, name, &o, &fs->st) : s;
}

void fake_store_close(fake_store *fs)
{
    es_store_destroy(fs->st);
    fake_js_destroy(fs->fj);
    fake_conn_destroy(fs->f);
    memset(fs, 0, sizeof *fs);
}

es_event_spec fake_order_event(const char *entity_id, const char *event_type, const char *event_id)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = "order";
    e.entity_id = entity_id;
    e.event_type = event_type;
    e.event_id = event_id;
    e.data = "{}";
    e.data_len = 2;
    e.codec = "json";
    return e;
}
