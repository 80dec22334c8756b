/* The raw nats.c baseline of es-bench: each workload done with nats.c
 * directly, the same work the library does (same headers, same requests), so
 * that the ratio library/raw measures the library's own cost. The one file of
 * the tools that calls nats.c, by design (tools/check-layers knows it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "workloads.h"

/* The headers the library writes, for raw messages doing the same work. */
static natsMsg *raw_event(const char *subject, const char *reply, long i)
{
    natsMsg *m = NULL;
    char id[32];
    snprintf(id, sizeof id, "raw-%ld-%d", i, (int)getpid());
    natsMsg_Create(&m, subject, reply, bench_payload, BENCH_PAYLOAD);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    natsMsgHeader_Set(m, "Nats-Expected-Stream", "ES_bench_raw");
    natsMsgHeader_Set(m, "Rita-Entity", "account.a1");
    natsMsgHeader_Set(m, "Rita-Type", "deposited");
    natsMsgHeader_Set(m, "Rita-Time", "2026-01-01T00:00:00.000000000Z");
    natsMsgHeader_Set(m, "Rita-Codec", "binary");
    return m;
}

double raw_appends(natsConnection *nc, long n)
{
    es_store *st = bench_fresh_store(nc, "bench_raw");
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.StallWait = 30000; /* wait for room, as the library does */
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, nc, &jo);
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++) {
        natsMsg *m = raw_event("$ES.bench_raw.account.a1.deposited", NULL, i);
        natsStatus ns = js_PublishMsgAsync(js, &m, NULL);
        if (ns != NATS_OK) {
            fprintf(stderr, "es-bench: raw publish: %s\n", nats_GetLastError(NULL));
            exit(ES_BENCH_EXIT_SERVER);
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK)
        bench_die("raw complete");
    double t = bench_now_s() - t0;
    jsCtx_Destroy(js);
    es_store_destroy(st);
    return (double)n / t;
}

double raw_batches(natsConnection *nc, long n)
{
    es_store *st = bench_fresh_store(nc, "bench_raw");
    double t0 = bench_now_s();
    for (long k = 0; k < n; k++) {
        char batch[32];
        snprintf(batch, sizeof batch, "rawbatch-%ld-%d", k, (int)getpid());
        for (int i = 0; i < 100; i++) {
            natsMsg *m = raw_event("$ES.bench_raw.account.a1.deposited", NULL, k * 100 + i);
            char seq[8];
            snprintf(seq, sizeof seq, "%d", i + 1);
            natsMsgHeader_Set(m, "Nats-Batch-Id", batch);
            natsMsgHeader_Set(m, "Nats-Batch-Sequence", seq);
            natsMsg *reply = NULL;
            if (i == 99)
                natsMsgHeader_Set(m, "Nats-Batch-Commit", "1");
            if (i == 0 || i == 99) {
                if (natsConnection_RequestMsg(&reply, nc, m, 30000) != NATS_OK)
                    bench_die("raw batch request");
                if (i == 99 && strstr(natsMsg_GetData(reply), "\"error\"") != NULL)
                    bench_die("raw batch refused");
                natsMsg_Destroy(reply);
            } else if (natsConnection_PublishMsg(nc, m) != NATS_OK) {
                bench_die("raw batch publish");
            }
            natsMsg_Destroy(m);
        }
    }
    double t = bench_now_s() - t0;
    es_store_destroy(st);
    return (double)n * 100 / t;
}

double raw_loads(natsConnection *nc, long n)
{
    es_store *st = bench_store_with_entity(nc, "bench_raw");
    size_t sink = 0;
    const char *req =
        "{\"seq\":1,\"next_by_subj\":\"$ES.bench_raw.account.target.*\",\"batch\":256}";
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++) {
        char inbox[64];
        snprintf(inbox, sizeof inbox, "_INBOX.rawload.%ld", i);
        natsSubscription *sub = NULL;
        natsConnection_SubscribeSync(&sub, nc, inbox);
        natsConnection_PublishRequestString(nc, "$JS.API.DIRECT.GET.ES_bench_raw", inbox, req);
        for (;;) {
            natsMsg *m = NULL;
            if (natsSubscription_NextMsg(&m, sub, 5000) != NATS_OK)
                bench_die("raw load");
            const char *status = NULL, *type = NULL;
            bool eob = natsMsgHeader_Get(m, "Status", &status) == NATS_OK;
            if (!eob) {
                natsMsgHeader_Get(m, "Rita-Type", &type);
                sink += (size_t)natsMsg_GetDataLength(m) + (size_t)(type ? type[0] : 0);
            }
            natsMsg_Destroy(m);
            if (eob)
                break;
        }
        natsSubscription_Destroy(sub);
    }
    double t = bench_now_s() - t0;
    if (sink != (size_t)n * 100 * (BENCH_PAYLOAD + 'd'))
        bench_die("raw load saw the wrong events");
    es_store_destroy(st);
    return (double)n * 100 / t;
}

double raw_replay(natsConnection *nc, const char *name, long n)
{
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, nc, NULL);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    char stream[64], filter[64];
    snprintf(stream, sizeof stream, "ES_%s", name);
    snprintf(filter, sizeof filter, "$ES.%s.>", name);
    so.Stream = stream;
    natsSubscription *sub = NULL;
    size_t sink = 0;
    double t0 = bench_now_s();
    if (js_SubscribeSync(&sub, js, filter, NULL, &so, NULL) != NATS_OK)
        bench_die("raw subscribe");
    natsSubscription_SetPendingLimits(sub, 1 << 20, 1 << 30);
    for (long i = 0; i < n;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK)
            bench_die("raw replay");
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {             /* a delivery, not a status */
            const char *type = strrchr(natsMsg_GetSubject(m), '.'); /* the event type */
            sink += (size_t)natsMsg_GetDataLength(m) + (size_t)(type ? type[1] : 0);
            i = (long)meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        natsMsg_Destroy(m);
    }
    double t = bench_now_s() - t0;
    /* Heartbeats may still be on their way: unsubscribe and let a round trip
     * pass before freeing (nats.c 3.4 races otherwise, see es_sub_close). */
    natsSubscription_Unsubscribe(sub);
    natsConnection_Flush(nc);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (sink < (size_t)n * BENCH_PAYLOAD) /* the payloads were read, as the library's are */
        bench_die("raw replay saw the wrong events");
    return (double)n / t;
}
