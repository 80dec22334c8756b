/* The admin routes (admin.h). */
#define _POSIX_C_SOURCE 200809L
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/atproto_tracked.h>

#define ADD_PATH    "/add-repos"
#define REMOVE_PATH "/remove-repos"
#define REPOS_PATH  "/repos/"
#define DIDS_MAX    10000 /* DIDs in one request */

struct admin {
    es_store *st;
    char *token;
    es_atp_tracked *tracked; /* opened at the first request that needs it */
    es_atp_repos *repos;
};

es_status admin_open(es_store *st, const char *token, admin **out)
{
    admin *a = calloc(1, sizeof *a);
    if (a == NULL || (token && *token && (a->token = strdup(token)) == NULL)) {
        free(a);
        return es_error(ES_ERR_NOMEM, "admin: out of memory");
    }
    a->st = st;
    *out = a;
    return ES_OK;
}

void admin_close(admin *a)
{
    if (a == NULL)
        return;
    es_atp_tracked_destroy(a->tracked);
    es_atp_repos_destroy(a->repos);
    free(a->token);
    free(a);
}

bool admin_route(const char *path, bool post)
{
    if (post)
        return strcmp(path, ADD_PATH) == 0 || strcmp(path, REMOVE_PATH) == 0;
    return strncmp(path, REPOS_PATH, strlen(REPOS_PATH)) == 0;
}

bool admin_authorized(const admin *a, const char *authorization)
{
    if (a->token == NULL)
        return true;
    static const char bearer[] = "Bearer ";
    if (authorization == NULL || strncmp(authorization, bearer, sizeof bearer - 1) != 0)
        return false;
    /* compared whole, without stopping at the first difference */
    const char *given = authorization + sizeof bearer - 1;
    size_t n = strlen(a->token), m = strlen(given);
    unsigned diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(a->token[i] ^ (i < m ? given[i] : 0));
    return diff == 0;
}

static unsigned answer(char *out, size_t size, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    snprintf(out, size, "%s", text ? text : "{\"error\":\"out of memory\"}");
    free(text);
    return text ? status : 500;
}

static unsigned failure(char *out, size_t size, unsigned status, const char *what)
{
    return answer(out, size, status, json_pack("{s:s}", "error", what));
}

/* POST /add-repos, /remove-repos: {"dids": ["did:...", ...]}. */
static unsigned edit(admin *a, bool add, const char *body, size_t len, char *out, size_t size)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, 0, &err);
    json_t *dids = json_object_get(j, "dids");
    if (!json_is_array(dids) || json_array_size(dids) > DIDS_MAX) {
        json_decref(j);
        return failure(out, size, 400, "the body is {\"dids\": [DID, ...]} (10,000 at most)");
    }
    es_status s = a->tracked ? ES_OK : es_atp_tracked_open(a->st, &a->tracked);
    size_t done = 0, unchanged = 0;
    for (size_t i = 0; s == ES_OK && i < json_array_size(dids); i++) {
        const char *did = json_string_value(json_array_get(dids, i));
        if (did == NULL || !es_atp_valid_did(did, strlen(did))) {
            char why[300];
            snprintf(why, sizeof why, "dids[%zu] is not a DID", i);
            json_decref(j);
            return failure(out, size, 400, why);
        }
        s = add ? es_atp_tracked_add(a->tracked, did, strlen(did))
                : es_atp_tracked_remove(a->tracked, did, strlen(did));
        if (s == ES_ERR_NOT_FOUND && !add) { /* not tracked: nothing to remove */
            s = ES_OK;
            unchanged++;
        } else if (s == ES_OK) {
            done++;
        }
    }
    json_decref(j);
    if (s != ES_OK)
        return failure(out, size, s == ES_ERR_LIMIT || s == ES_ERR_INVALID ? 400 : 503,
                       es_last_error());
    return answer(out, size, 200,
                  json_pack("{s:I,s:I}", add ? "added" : "removed", (json_int_t)done,
                            "unchanged", (json_int_t)unchanged));
}

/* GET /repos/<did>: the chain state and whether it is tracked. */
static unsigned repo(admin *a, const char *did, char *out, size_t size)
{
    if (!es_atp_valid_did(did, strlen(did)))
        return failure(out, size, 400, "not a DID");
    es_status s = a->repos ? ES_OK : es_atp_repos_open(a->st, &a->repos);
    if (s == ES_OK && a->tracked == NULL)
        s = es_atp_tracked_open(a->st, &a->tracked);
    bool tracked = false;
    int64_t since = 0;
    if (s == ES_OK)
        s = es_atp_tracked_contains(a->tracked, did, strlen(did), &tracked, &since);
    es_atp_repo_state st;
    es_status g = s == ES_OK ? es_atp_repos_get(a->repos, did, strlen(did), &st) : s;
    if (s != ES_OK || (g != ES_OK && g != ES_ERR_NOT_FOUND))
        return failure(out, size, 503, es_last_error());
    if (g == ES_ERR_NOT_FOUND && !tracked)
        return failure(out, size, 404, "the store knows nothing of this repository");
    json_t *j = json_pack("{s:s,s:b}", "did", did, "tracked", tracked);
    if (j != NULL && g == ES_OK) {
        json_object_set_new(j, "rev", json_string(st.rev));
        json_object_set_new(j, "status", json_string(st.desynced ? "desynchronized" : st.status));
        json_object_set_new(j, "account_status", json_string(st.status));
        json_object_set_new(j, "desynced", json_boolean(st.desynced));
        if (st.desynced)
            json_object_set_new(j, "error", json_string(st.reason));
        json_object_set_new(j, "seq", json_integer((json_int_t)st.seq));
    }
    return answer(out, size, 200, j);
}

unsigned admin_handle(admin *a, const char *path, const char *body, size_t len, char *out,
                      size_t size)
{
    if (strcmp(path, ADD_PATH) == 0 || strcmp(path, REMOVE_PATH) == 0)
        return edit(a, strcmp(path, ADD_PATH) == 0, body, len, out, size);
    return repo(a, path + strlen(REPOS_PATH), out, size);
}
