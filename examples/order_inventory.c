/* An order and the stock it takes, stored together or not at all: one
 * atomic batch spanning several entities (es_append_batch), each with its
 * own optimistic-concurrency expectation. The order entity must be new (an
 * order is placed once); each stock entity must still be at the sequence
 * the clerk read it at. If any expectation fails, no event of the batch is
 * stored: no order without its stock, no stock taken without its order.
 *
 *   order-inventory [--server URL] [--store NAME]
 *
 * Starts from an empty store NAME (default "shop"; it is deleted first: this
 * is demo data) with 5 apples and 2 pears in stock. Two clerks read the stock
 * at the same moment and each takes an order for 2 pears and 1 apple. The
 * first order is stored; the second, decided on stock that is gone, is
 * refused as a whole by the store (a conflict), and when decided again on
 * fresh stock it is refused by the rule (oversold). A third order takes 3
 * apples. Then every entity is read back and checked. Exits 1 when a check
 * fails. */
#include <es/es.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#define LINES_MAX 8

typedef struct order_line {
    const char *sku;
    long quantity;
} order_line;

/* One stock item as a clerk read it: what is available, and the sequence of
 * its last event (the expectation that the batch will carry). */
typedef struct stock_item {
    const char *sku;
    long available;
    uint64_t seq;
} stock_item;

static es_status fold_stock(const es_event *ev, void *closure)
{
    stock_item *item = closure;
    const char *type = es_event_event_type(ev);
    if (strcmp(type, "restocked") == 0)
        item->available += demo_number(ev);
    else if (strcmp(type, "reserved") == 0)
        item->available -= demo_number(ev);
    return ES_OK;
}

static es_filter entity(const char *type, const char *id)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = type;
    f.entity_id = id;
    return f;
}

/* Reads one stock item: its events folded, and its last sequence. */
static es_status read_stock(es_store *st, const char *sku, stock_item *item)
{
    *item = (stock_item){.sku = sku};
    es_filter f = entity("stock", sku);
    return es_load(st, &f, NULL, fold_stock, item, &item->seq);
}

static es_event_spec event(const char *type, const char *id, const char *event_type,
                           const char *data)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = type;
    e.entity_id = id;
    e.event_type = event_type;
    e.data = data;
    e.data_len = strlen(data);
    e.codec = "json";
    return e;
}

/* Places an order against stock as it was read (`seen`, one item per line).
 * ES_ERR_ABORTED: the rule refused it (not enough stock), nothing sent.
 * ES_ERR_CONFLICT: the store refused it (the order exists, or a stock item
 * changed since it was read), nothing stored. */
static es_status place_order(es_store *st, const char *order_id, const order_line *lines, size_t n,
                             const stock_item *seen)
{
    if (n == 0 || n >= LINES_MAX)
        return ES_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (lines[i].quantity > seen[i].available)
            return ES_ERR_ABORTED; /* oversold */
    char quantities[LINES_MAX][24], summary[128];
    snprintf(summary, sizeof summary, "{\"lines\":%zu}", n);
    es_event_spec batch[LINES_MAX];
    batch[0] = event("order", order_id, "placed", summary);
    batch[0].expect = ES_EXPECT_NEW; /* an order is placed once */
    for (size_t i = 0; i < n; i++) {
        snprintf(quantities[i], sizeof quantities[i], "%ld", lines[i].quantity);
        es_event_spec *e = &batch[1 + i];
        *e = event("stock", lines[i].sku, "reserved", quantities[i]);
        e->expect = ES_EXPECT_SEQ; /* nobody took stock since it was read */
        e->expect_seq = seen[i].seq;
    }
    es_append_result r;
    es_status s = es_append_batch(st, batch, n + 1, &r);
    if (s == ES_OK)
        printf("order %s stored: events #%llu..#%llu\n", order_id, (unsigned long long)r.first_seq,
               (unsigned long long)r.last_seq);
    return s;
}

static es_status read_lines(es_store *st, const order_line *lines, size_t n, stock_item *seen)
{
    es_status s = ES_OK;
    for (size_t i = 0; i < n && s == ES_OK; i++)
        s = read_stock(st, lines[i].sku, &seen[i]);
    return s;
}

static es_status count_events(const es_event *ev, void *closure)
{
    (void)ev;
    ++*(int *)closure;
    return ES_OK;
}

static int events_of(es_store *st, const char *type, const char *id)
{
    int n = 0;
    es_filter f = entity(type, id);
    if (es_load(st, &f, NULL, count_events, &n, NULL) != ES_OK)
        return -1;
    return n;
}

static int expect_status(const char *what, es_status got, es_status want)
{
    printf("%-48s %s\n", what, es_status_text(got));
    if (got == want)
        return 0;
    fprintf(stderr, "FAILED: %s: %s, expected %s (%s)\n", what, es_status_text(got),
            es_status_text(want), es_last_error());
    return 1;
}

static int expect_number(const char *what, long got, long want)
{
    printf("%-48s %ld\n", what, got);
    if (got == want)
        return 0;
    fprintf(stderr, "FAILED: %s: %ld, expected %ld\n", what, got, want);
    return 1;
}

static int run(es_store *st)
{
    int failures = 0;
    es_event_spec restock[] = {event("stock", "apple", "restocked", "5"),
                               event("stock", "pear", "restocked", "2")};
    failures +=
        expect_status("restock 5 apples and 2 pears", es_append_batch(st, restock, 2, NULL), ES_OK);

    /* Two clerks read the stock at the same moment... */
    const order_line basket[] = {{"pear", 2}, {"apple", 1}};
    stock_item clerk1[2], clerk2[2];
    if (read_lines(st, basket, 2, clerk1) != ES_OK || read_lines(st, basket, 2, clerk2) != ES_OK) {
        fprintf(stderr, "order-inventory: reading the stock: %s\n", es_last_error());
        return 1;
    }
    /* ...and both sell the two pears. The first is stored. */
    failures += expect_status("order-1 (2 pears, 1 apple)",
                              place_order(st, "order-1", basket, 2, clerk1), ES_OK);
    es_store_info before;
    es_store_info_get(st, &before);
    /* The second carries the pear's old sequence: the store refuses the
     * whole batch, so neither the order nor the apple reservation exists. */
    failures += expect_status("order-2 on stock read before order-1",
                              place_order(st, "order-2", basket, 2, clerk2), ES_ERR_CONFLICT);
    es_store_info after;
    es_store_info_get(st, &after);
    failures += expect_number("  events stored by the refused batch",
                              (long)(after.last_seq - before.last_seq), 0);
    failures += expect_number("  events of order-2", events_of(st, "order", "order-2"), 0);

    /* Decided again on fresh stock, the rule refuses it: no pear is left. */
    if (read_lines(st, basket, 2, clerk2) != ES_OK)
        return failures + 1;
    failures += expect_status("order-2 on fresh stock (oversold)",
                              place_order(st, "order-2", basket, 2, clerk2), ES_ERR_ABORTED);

    /* Apples are still there. */
    const order_line apples[] = {{"apple", 3}};
    stock_item seen[1];
    if (read_lines(st, apples, 1, seen) != ES_OK)
        return failures + 1;
    failures +=
        expect_status("order-3 (3 apples)", place_order(st, "order-3", apples, 1, seen), ES_OK);
    /* The same order id placed again (for the one apple left): the order
     * entity is not new any more, and the apple stays in stock. */
    const order_line one_apple[] = {{"apple", 1}};
    if (read_lines(st, one_apple, 1, seen) != ES_OK)
        return failures + 1;
    failures += expect_status("order-3 again (1 apple)",
                              place_order(st, "order-3", one_apple, 1, seen), ES_ERR_CONFLICT);

    /* Everything read back from the store. */
    stock_item apple, pear;
    read_stock(st, "apple", &apple);
    read_stock(st, "pear", &pear);
    failures += expect_number("apples available (5 - 1 - 3)", apple.available, 1);
    failures += expect_number("pears available (2 - 2)", pear.available, 0);
    failures += expect_number("events of order-1", events_of(st, "order", "order-1"), 1);
    failures += expect_number("events of order-2", events_of(st, "order", "order-2"), 0);
    failures += expect_number("events of order-3", events_of(st, "order", "order-3"), 1);
    es_store_info_get(st, &after);
    failures += expect_number("events in the store (2 + 3 + 2)", (long)after.events, 7);
    return failures;
}

int main(int argc, char **argv)
{
    demo d;
    if (!demo_open(argc, argv, "order-inventory", "shop", &d))
        return 1;
    int failures = run(d.st);
    demo_close(&d);
    printf("%s\n",
           failures == 0 ? "order-inventory: every check passed" : "order-inventory: FAILED");
    return failures == 0 ? 0 : 1;
}
