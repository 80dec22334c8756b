/* The admin routes (docs/serve.md, "Admin routes"): POST /add-repos and
 * POST /remove-repos edit the store's tracked-repository set
 * (es/atproto_tracked.h: what es-atproto-ingest follows), GET /repos/<did>
 * says what the store knows of a repository (es/atproto_repos.h). With a
 * token configured (--admin-token), each needs "Authorization: Bearer
 * <token>". Handled on the server's loop thread: each is a KV request or a
 * few, like /health's. */
#ifndef SERVE_ADMIN_H
#define SERVE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <es/es.h>

#define ADMIN_BODY_MAX ((size_t)1 << 20) /* a request's JSON, at most */

typedef struct admin admin;

/* The store outlives the handle; token NULL or "": the routes are open. */
es_status admin_open(es_store *st, const char *token, admin **out);
void admin_close(admin *a); /* accepts NULL */

/* Whether `path` is an admin route for `post` (POST, else GET). */
bool admin_route(const char *path, bool post);

/* Whether the request's Authorization header value (NULL: none) is allowed. */
bool admin_authorized(const admin *a, const char *authorization);

/* Handles a request; its JSON answer in out[size]. Returns the HTTP status. */
unsigned admin_handle(admin *a, const char *path, const char *body, size_t len, char *out,
                      size_t size);

#endif
