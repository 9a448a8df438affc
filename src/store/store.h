/* Persistent storage behind a backend-neutral interface: clients, users with
 * their sealed face templates, sessions, an audit log. struct store is opaque;
 * store.c dispatches through a vtable to the backend (sqlite.c today, a
 * PostgreSQL backend later). Every query about users, sessions or audit
 * entries is scoped by client_id. The store holds bytes it is given (sealed
 * keys and templates, hashes); it never sees a secret in clear.
 *
 * Threading: a struct store is one connection, used by one thread at a time
 * (each worker opens its own). Several connections and processes may use the
 * same database at once (SQLite WAL). */
#ifndef FA_STORE_STORE_H
#define FA_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

#define STORE_ID_MAX 40      /* client ids, session ids (UUID) incl. NUL */
#define STORE_NAME_MAX 129   /* client name incl. NUL */
#define STORE_USER_MAX 129   /* user_id incl. NUL */
#define STORE_HASH_MAX 160   /* encoded argon2id hash incl. NUL */
#define STORE_SEALED_MAX 128 /* sealed per-client key */

struct store;

struct store_config {
    const char *path;    /* SQLite database file (created if absent) */
    int busy_timeout_ms; /* 0: 5000 */
    bool readonly;
};

/* Open a connection and bring the schema to the newest version (migrations in
 * a transaction, recorded in the schema_version table). Errors: FA_ERR_IO
 * (cannot open), FA_ERR_STORE (schema newer than this build, or corrupt),
 * FA_ERR_NOMEM; `info` says what. Runs on: the thread that will use it. */
enum fa_status store_open(const struct store_config *cfg, struct store **out,
                          struct fa_errinfo *info);
void store_close(struct store *st);
/* Schema version of the open database. */
int store_schema_version(struct store *st);
/* The journal mode in use ("wal" for SQLite), for tests. Borrowed static. */
const char *store_journal_mode(struct store *st);

/* Transactions (not nested). Everything between begin and commit is applied
 * at once or not at all; rollback after a failure. FA_ERR_STORE_BUSY if the
 * database stayed locked beyond the busy timeout. */
enum fa_status store_begin(struct store *st);
enum fa_status store_commit(struct store *st);
void store_rollback(struct store *st);

/* ---- Clients ----------------------------------------------------------------- */

struct store_client {
    char id[STORE_ID_MAX];
    char name[STORE_NAME_MAX];
    uint8_t api_key_hash[32];             /* SHA-256 of the api_key: the lookup key */
    char api_key_prefix[16];              /* first characters, for display */
    char secret_hash[STORE_HASH_MAX];     /* argon2id of the secret_key */
    uint8_t sealed_key[STORE_SEALED_MAX]; /* the R10 key, sealed under the master key */
    size_t sealed_key_len;
    int enc_method; /* enum crypto_method value (0 cbc, 1 gcm) */
    bool debug;
    bool revoked;
    int64_t created_ms;
};

/* FA_ERR_CONFLICT if the id or api_key_hash exists. */
enum fa_status store_client_insert(struct store *st, const struct store_client *c);
/* FA_ERR_NOT_FOUND. */
enum fa_status store_client_get(struct store *st, const char *id, struct store_client *out);
enum fa_status store_client_by_api_key(struct store *st, const uint8_t api_key_hash[32],
                                       struct store_client *out);
/* All clients, oldest first: *out an array of *n (fa_free), NULL if none. */
enum fa_status store_client_list(struct store *st, struct store_client **out, size_t *n);
/* FA_ERR_NOT_FOUND. */
enum fa_status store_client_set_revoked(struct store *st, const char *id, bool revoked);
enum fa_status store_client_set_method(struct store *st, const char *id, int enc_method);

/* ---- Users ------------------------------------------------------------------- */

struct store_user {
    char user_id[STORE_USER_MAX];
    int samples;
    int64_t created_ms, updated_ms;
};

/* Store a user's sealed template. replace=false: FA_ERR_CONFLICT if
 * (client_id, user_id) exists; replace=true: overwrite (created_ms kept).
 * FA_ERR_NOT_FOUND if the client does not exist. */
enum fa_status store_user_put(struct store *st, const char *client_id, const char *user_id,
                              struct fa_bytes sealed_template, int samples, bool replace,
                              int64_t now_ms);
/* Append the sealed template to `sealed` (may be NULL: existence check only);
 * *info (may be NULL) gets the metadata. FA_ERR_NOT_FOUND. */
enum fa_status store_user_get(struct store *st, const char *client_id, const char *user_id,
                              struct fa_buf *sealed, struct store_user *info);
/* FA_ERR_NOT_FOUND. */
enum fa_status store_user_delete(struct store *st, const char *client_id, const char *user_id);
/* Users of a client by user_id: *out array of *n (fa_free), NULL if none. */
enum fa_status store_user_list(struct store *st, const char *client_id, struct store_user **out,
                               size_t *n);
enum fa_status store_user_count(struct store *st, const char *client_id, uint64_t *n);
/* Call fn for each user of the client with its sealed template (borrowed for
 * the call). fn returning non-FA_OK stops the walk and is returned. */
typedef enum fa_status (*store_user_fn)(void *arg, const char *user_id,
                                        struct fa_bytes sealed_template);
enum fa_status store_user_each(struct store *st, const char *client_id, store_user_fn fn,
                               void *arg);

/* ---- Sessions ---------------------------------------------------------------- */

struct store_session {
    uint8_t token_hash[32]; /* SHA-256 of the session token: the key */
    char id[STORE_ID_MAX];  /* enrollment_id / authentication_id */
    char client_id[STORE_ID_MAX];
    int type;   /* enum app_session_type */
    int status; /* enum app_session_status */
    bool has_user_id;
    char user_id[STORE_USER_MAX];
    int target_samples, required_blinks;
    bool require_liveness, replace;
    int frames_processed;
    int64_t created_ms, expires_ms, finished_ms; /* finished 0: not finished */
    /* The result, once finished with a decision: */
    bool has_result;
    bool res_authenticated;
    bool res_has_user_id;
    char res_user_id[STORE_USER_MAX];
    double res_confidence;
    int res_method;    /* enum crypto_method */
    char *res_payload; /* base64 envelope; owned (fa_free) when read, borrowed on write */
};

/* FA_ERR_CONFLICT on a duplicate token hash or id. */
enum fa_status store_session_insert(struct store *st, const struct store_session *s);
/* By token hash, scoped by client_id (NULL: any client, for the server's
 * own reload). On FA_OK, out->res_payload is owned by the caller (fa_free).
 * FA_ERR_NOT_FOUND. */
enum fa_status store_session_get(struct store *st, const char *client_id,
                                 const uint8_t token_hash[32], struct store_session *out);
/* Write status, frames_processed, finished_ms and the result fields of `s`
 * (found by client_id + token_hash). A finished session (finished_ms != 0 in
 * the store) is final: it is never written again, so updates that commit out
 * of order (from different workers) cannot turn a finished or used session
 * back into a live one. FA_ERR_NOT_FOUND: no such session, or it is finished. */
enum fa_status store_session_update(struct store *st, const struct store_session *s);
/* Sessions still relevant at since_ms (server start-up reload): expiring
 * after since_ms, or finished after since_ms. *out array of *n; free each
 * res_payload and the array with store_sessions_free. */
enum fa_status store_session_list_recent(struct store *st, int64_t since_ms,
                                         struct store_session **out, size_t *n);
void store_sessions_free(struct store_session *a, size_t n);
/* Mark unfinished sessions whose expiry is <= now_ms as `expired_status`;
 * *n (may be NULL) gets the count. */
enum fa_status store_session_expire(struct store *st, int64_t now_ms, int expired_status,
                                    uint64_t *n);
/* Delete sessions of every client that finished or expired before
 * before_ms (retention). */
enum fa_status store_session_purge(struct store *st, int64_t before_ms, uint64_t *n);

/* ---- Audit log --------------------------------------------------------------- */

struct store_audit {
    int64_t id;
    int64_t at_ms;
    char client_id[STORE_ID_MAX];
    char event[32];                /* "enrollment_completed", "authentication_failed", ... */
    char user_id[STORE_USER_MAX];  /* "" if none */
    char session_id[STORE_ID_MAX]; /* "" if none */
    char detail[160];
};
enum fa_status store_audit_add(struct store *st, const struct store_audit *a);
/* Newest first, at most `max` entries of a client. *out array (fa_free). */
enum fa_status store_audit_list(struct store *st, const char *client_id, size_t max,
                                struct store_audit **out, size_t *n);

#endif
