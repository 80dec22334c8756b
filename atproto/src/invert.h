/* Editable Merkle Search Trees and Sync 1.1 commit inversion. Internal to
 * libes-atproto (a verifying decoder calls it: verify.h); not installed.
 *
 * An esi_mst is a repository MST held partly in memory: nodes are loaded
 * from a CAR on demand (each hash-checked against its CID) and subtrees
 * never touched stay as their CID. Keys can be inserted, updated and
 * deleted with the spec's layering rule, and the root CID of the result is
 * computed by re-encoding the touched nodes as canonical DAG-CBOR.
 *
 * Bounds on hostile input: keys of at most ESI_MST_KEY_MAX bytes, trees of
 * at most ESI_MST_MAX_HEIGHT layers, at most ESI_MST_MAX_NODES nodes held in
 * memory, ESI_MST_MEMORY bytes of memory, ESI_INVERT_MAX_OPS ops; CIDs of at
 * most ESI_MST_CID_MAX bytes; node bytes decoded at most the CAR's (each
 * block once, as a valid tree needs). Beyond them: ES_ERR_LIMIT. */
#ifndef ES_ATP_INVERT_H
#define ES_ATP_INVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/car.h>
#include <es/cid.h>
#include <es/status.h>

#define ESI_MST_KEY_MAX    1024 /* collection (317) + '/' + rkey (512), with room */
#define ESI_MST_MAX_HEIGHT 64   /* 2-bit layers: a legitimate key is near 0..16 */
#define ESI_MST_MAX_NODES  100000
#define ESI_MST_MEMORY     ((size_t)32 << 20)
#define ESI_MST_CID_MAX    64
#define ESI_INVERT_MAX_OPS 10000

/* The layer of a key: leading zero bits of SHA-256(key), counted in pairs. */
int esi_mst_key_height(const char *key, size_t len);

/* The bytes `a` and `b` share at their start (the prefix a node's entry
 * elides against the previous key). */
size_t esi_mst_common_prefix(const char *a, size_t alen, const char *b, size_t blen);

typedef struct esi_mst esi_mst;

/* Why the last failing esi_mst_* call failed, beyond its es_status. */
typedef enum esi_mst_fault {
    ESI_MST_FAULT_NONE = 0,
    ESI_MST_FAULT_MISSING_BLOCK, /* a node needed is absent from the CAR */
    ESI_MST_FAULT_BAD_NODE,      /* hash mismatch, not an MST node, keys out of layer/order */
    ESI_MST_FAULT_LIMIT,         /* one of the bounds above */
    ESI_MST_FAULT_KEY,           /* insert of a present key, delete/update of an absent one */
} esi_mst_fault;

/* A tree whose root is `root` (binary CID), its nodes read from `car`
 * (which must outlive the tree); root NULL: the empty tree, car may be NULL.
 * Nothing is loaded until an operation needs it. Free with esi_mst_destroy. */
es_status esi_mst_open(const es_car *car, const uint8_t *root, size_t root_len, esi_mst **out);
/* Accepts NULL. */
void esi_mst_destroy(esi_mst *t);
esi_mst_fault esi_mst_last_fault(const esi_mst *t);

/* The value (binary CID) under `key`: ES_OK with *found; the pointer stays
 * valid until the tree changes. */
es_status esi_mst_get(esi_mst *t, const char *key, size_t len, const uint8_t **cid, size_t *cid_len,
                      bool *found);
/* Insert a key that is absent (ES_ERR_EXISTS, fault KEY, when present). */
es_status esi_mst_insert(esi_mst *t, const char *key, size_t len, const uint8_t *cid,
                         size_t cid_len);
/* Replace the value of a present key (ES_ERR_NOT_FOUND when absent). */
es_status esi_mst_update(esi_mst *t, const char *key, size_t len, const uint8_t *cid,
                         size_t cid_len);
/* Remove a present key (ES_ERR_NOT_FOUND when absent). */
es_status esi_mst_delete(esi_mst *t, const char *key, size_t len);

/* Called with every node re-encoded by esi_mst_root (binary CID, bytes). */
typedef es_status (*esi_mst_node_fn)(const uint8_t *cid, size_t cid_len, const uint8_t *data,
                                     size_t len, void *user);
/* The root CID of the tree as it is now (ES_CID_SHA256_LEN bytes into
 * `out`). `fn` may be NULL. */
es_status esi_mst_root(esi_mst *t, esi_mst_node_fn fn, void *user, uint8_t out[ES_CID_SHA256_LEN]);

/* ---- Sync 1.1 inversion -------------------------------------------------- */

typedef enum esi_atp_action {
    ESI_ATP_CREATE,
    ESI_ATP_UPDATE,
    ESI_ATP_DELETE,
} esi_atp_action;

/* One op of a #commit: path "<collection>/<rkey>", cid the record after
 * the op (NULL for a delete), prev the record before it (NULL for a
 * create). Pointers may point into the frame. */
typedef struct esi_atp_op {
    esi_atp_action action;
    const char *path;
    size_t path_len;
    const uint8_t *cid;
    size_t cid_len;
    const uint8_t *prev;
    size_t prev_len;
} esi_atp_op;

/* Why a commit does not invert; counted by reason (esi_atp_refusal_name). */
typedef enum esi_atp_refusal {
    ESI_ATP_REFUSAL_NONE = 0,
    ESI_ATP_REFUSAL_NO_PREV_DATA,  /* the commit carries no prevData */
    ESI_ATP_REFUSAL_OP_PREV,       /* a create with prev, an update/delete without */
    ESI_ATP_REFUSAL_BAD_OP,        /* no cid where one is needed, a cid on a delete, bad path */
    ESI_ATP_REFUSAL_OP_MISMATCH,   /* the tree does not hold what an op says */
    ESI_ATP_REFUSAL_MISSING_BLOCK, /* an MST node the inversion needs is absent */
    ESI_ATP_REFUSAL_BAD_NODE,      /* an MST node fails its hash or is malformed */
    ESI_ATP_REFUSAL_LIMIT,         /* a bound of this header was exceeded */
    ESI_ATP_REFUSAL_PREV_DATA,     /* the inverted root is not prevData */
    ESI_ATP_REFUSAL_COUNT
} esi_atp_refusal;

const char *esi_atp_refusal_name(esi_atp_refusal r);

/* Check a commit by inversion: open the tree `data` (the commit's new MST
 * root) over the frame's `blocks`, undo the ops from last to first, and
 * require the root to be `prev_data` (NULL: refused NO_PREV_DATA). ES_OK
 * when it is; ES_ERR_DECODE or ES_ERR_LIMIT with *why set when refused
 * (es_last_error() says more); ES_ERR_NOMEM with *why NONE when memory ran
 * out (not a refusal). */
es_status esi_atp_invert(const es_car *blocks, const uint8_t *data, size_t data_len,
                         const uint8_t *prev_data, size_t prev_data_len, const esi_atp_op *ops,
                         size_t count, esi_atp_refusal *why);

#endif
