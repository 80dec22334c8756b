/* The ingester's identity set-up: the es_atp_identity a verifying decoder
 * borrows, from --plc, --identity-ttl and --did-docs; none with --no-verify. */
#ifndef ES_INGEST_IDENTITY_H
#define ES_INGEST_IDENTITY_H

#include <stdbool.h>
#include <stdio.h>

#include <es/atproto.h>
#include <es/atproto_xrpc.h>

#include "ingest.h"

/* The environment variable that lets the tests point --plc at an http
 * stand-in on loopback (es_atp_identity_options.allow_insecure). Tests only:
 * not in --help. */
#define INGEST_TEST_INSECURE_ENV "ES_ATPROTO_TEST_INSECURE_IDENTITY"

/* *out: the identity (the caller's, es_atp_identity_destroy), or NULL with
 * --no-verify (logged as a warning: nothing is verified). Logs how many
 * documents --did-docs seeded. */
es_status ingest_identity_open(const ingest_config *c, es_atp_identity **out);

/* Whether INGEST_TEST_INSECURE_ENV is "1" (tests only: plain-http loopback
 * stand-ins allowed, for DID documents and for PDSes alike). */
bool ingest_test_insecure(void);

/* The XRPC options of a run's fetches and listings: --repo-fetch-timeout,
 * and ingest_test_insecure(). */
void ingest_xrpc_options(const ingest_config *c, es_atp_xrpc_options *o);

/* One line for the dry-run report: the identity's cache counters. */
void ingest_identity_report(FILE *out, const es_atp_identity *id);

#endif
