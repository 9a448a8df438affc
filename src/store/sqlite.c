/* The SQLite backend: one sqlite3* per struct store (per worker thread), WAL
 * journal so readers never block the writer and several processes (daemon,
 * CLI) share the file, synchronous=FULL so a committed enrollment survives a
 * crash or power loss. Schema changes are numbered migrations applied in one
 * IMMEDIATE transaction and recorded in schema_version. Statements are
 * prepared per call: the workload is a few queries per session, and it keeps
 * the connection free of cached state. */
#include "store/store_impl.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/alloc.h"
#include "base/log.h"

struct sq {
    struct store base; /* first: struct store * <-> struct sq * */
    sqlite3 *db;
    int version;
    bool in_tx;
};

static struct sq *SQ(struct store *st)
{
    return (struct sq *)st;
}

/* ---- Migrations --------------------------------------------------------- */

static const char *const MIGRATIONS[] = {
    /* 1: the initial schema */
    "CREATE TABLE clients ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  api_key_hash BLOB NOT NULL UNIQUE,"
    "  api_key_prefix TEXT NOT NULL,"
    "  secret_hash TEXT NOT NULL,"
    "  sealed_key BLOB NOT NULL,"
    "  enc_method INTEGER NOT NULL DEFAULT 0 CHECK (enc_method IN (0, 1)),"
    "  debug INTEGER NOT NULL DEFAULT 0,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE users ("
    "  client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL,"
    "  template BLOB NOT NULL,"
    "  samples INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (client_id, user_id));"
    "CREATE TABLE sessions ("
    "  token_hash BLOB PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
    "  type INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  user_id TEXT,"
    "  target_samples INTEGER NOT NULL,"
    "  required_blinks INTEGER NOT NULL,"
    "  require_liveness INTEGER NOT NULL,"
    "  replace_user INTEGER NOT NULL,"
    "  frames_processed INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  res_authenticated INTEGER,"
    "  res_user_id TEXT,"
    "  res_confidence REAL,"
    "  res_method INTEGER,"
    "  res_payload TEXT);"
    "CREATE INDEX sessions_client ON sessions(client_id);"
    "CREATE INDEX sessions_live ON sessions(finished_ms, expires_ms);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at_ms INTEGER NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  user_id TEXT NOT NULL DEFAULT '',"
    "  session_id TEXT NOT NULL DEFAULT '',"
    "  detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX audit_client ON audit(client_id, id);",
};
#define NMIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

static enum fa_status db_err(struct sq *s, int rc)
{
    if (rc != SQLITE_CONSTRAINT && (rc & 0xff) != SQLITE_CONSTRAINT)
        fa_warn("sqlite: %s (code %d)", sqlite3_errmsg(s->db), sqlite3_extended_errcode(s->db));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return FA_ERR_STORE_BUSY;
    if (rc == SQLITE_NOMEM)
        return FA_ERR_NOMEM;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return FA_ERR_CONFLICT;
    return FA_ERR_STORE;
}

static enum fa_status exec(struct sq *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FA_OK : db_err(s, rc);
}

static enum fa_status prep(struct sq *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? FA_OK : db_err(s, rc);
}

/* Step a statement that returns no rows; finalize it. */
static enum fa_status step_done(struct sq *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? FA_OK : db_err(s, rc);
}

/* The schema version without taking the write lock; 0 if no table yet. */
static int read_version(struct sq *s)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static enum fa_status migrate(struct sq *s, struct fa_errinfo *info)
{
    /* Up to date (the common case): no write lock, so opening a connection
     * never waits for another connection's transaction. */
    int cur = read_version(s);
    if (cur == NMIGRATIONS) {
        s->version = cur;
        return FA_OK;
    }
    enum fa_status rc = exec(s, "BEGIN IMMEDIATE");
    if (rc != FA_OK) {
        fa_errinfo_set(info, "store: cannot lock for migration: %s", sqlite3_errmsg(s->db));
        return rc;
    }
    rc = exec(s, "CREATE TABLE IF NOT EXISTS schema_version ("
                 "version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)");
    if (rc != FA_OK)
        goto fail;
    sqlite3_stmt *st = NULL;
    rc = prep(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &st);
    if (rc != FA_OK)
        goto fail;
    int v = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (v > NMIGRATIONS) {
        fa_errinfo_set(info, "store: schema version %d is newer than this build (%d)", v,
                       NMIGRATIONS);
        rc = FA_ERR_STORE;
        goto fail;
    }
    for (; v < NMIGRATIONS; v++) {
        rc = exec(s, MIGRATIONS[v]);
        if (rc != FA_OK) {
            fa_errinfo_set(info, "store: migration %d: %s", v + 1, sqlite3_errmsg(s->db));
            goto fail;
        }
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_version VALUES (%d, "
                 "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                 v + 1);
        rc = exec(s, sql);
        if (rc != FA_OK)
            goto fail;
    }
    rc = exec(s, "COMMIT");
    if (rc != FA_OK)
        goto fail;
    s->version = v;
    return FA_OK;
fail:
    exec(s, "ROLLBACK");
    return rc;
}

/* ---- Connection --------------------------------------------------------- */

static void sq_close(struct store *st)
{
    struct sq *s = SQ(st);
    sqlite3_close_v2(s->db);
    fa_free(s);
}

static int sq_schema_version(struct store *st)
{
    return SQ(st)->version;
}

static const char *sq_journal_mode(struct store *st)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    const char *mode = "unknown";
    if (prep(s, "PRAGMA journal_mode", &q) != FA_OK)
        return mode;
    if (sqlite3_step(q) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(q, 0);
        if (m != NULL && strcmp(m, "wal") == 0)
            mode = "wal";
        else if (m != NULL && strcmp(m, "delete") == 0)
            mode = "delete";
        else if (m != NULL && strcmp(m, "memory") == 0)
            mode = "memory";
    }
    sqlite3_finalize(q);
    return mode;
}

static enum fa_status sq_begin(struct store *st)
{
    struct sq *s = SQ(st);
    if (s->in_tx)
        return FA_ERR_ARG;
    enum fa_status rc = exec(s, "BEGIN IMMEDIATE");
    if (rc == FA_OK)
        s->in_tx = true;
    return rc;
}

static enum fa_status sq_commit(struct store *st)
{
    struct sq *s = SQ(st);
    if (!s->in_tx)
        return FA_ERR_ARG;
    enum fa_status rc = exec(s, "COMMIT");
    if (rc != FA_OK) {
        exec(s, "ROLLBACK");
    }
    s->in_tx = false;
    return rc;
}

static void sq_rollback(struct store *st)
{
    struct sq *s = SQ(st);
    if (s->in_tx)
        exec(s, "ROLLBACK");
    s->in_tx = false;
}

/* ---- Helpers ------------------------------------------------------------ */

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (t == NULL) {
        dst[0] = 0;
        return;
    }
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, t, n);
    dst[n] = 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *t)
{
    if (t == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT);
}

/* Grow *arr (of elem bytes) to hold at least n+1 elements. */
static enum fa_status grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return FA_OK;
    size_t nc = *cap ? *cap * 2 : 16, bytes;
    if (__builtin_mul_overflow(nc, elem, &bytes))
        return FA_ERR_NOMEM;
    void *p = fa_realloc(*arr, bytes);
    if (p == NULL)
        return FA_ERR_NOMEM;
    *arr = p;
    *cap = nc;
    return FA_OK;
}

/* ---- Clients ------------------------------------------------------------ */

#define CLIENT_COLS                                                                                \
    "id, name, api_key_hash, api_key_prefix, secret_hash, sealed_key, enc_method, debug, "         \
    "revoked, created_ms"

static void read_client(sqlite3_stmt *st, struct store_client *c)
{
    memset(c, 0, sizeof *c);
    copy_text(c->id, sizeof c->id, st, 0);
    copy_text(c->name, sizeof c->name, st, 1);
    if (sqlite3_column_bytes(st, 2) == 32)
        memcpy(c->api_key_hash, sqlite3_column_blob(st, 2), 32);
    copy_text(c->api_key_prefix, sizeof c->api_key_prefix, st, 3);
    copy_text(c->secret_hash, sizeof c->secret_hash, st, 4);
    size_t n = (size_t)sqlite3_column_bytes(st, 5);
    if (n <= STORE_SEALED_MAX) {
        memcpy(c->sealed_key, sqlite3_column_blob(st, 5), n);
        c->sealed_key_len = n;
    }
    c->enc_method = sqlite3_column_int(st, 6);
    c->debug = sqlite3_column_int(st, 7) != 0;
    c->revoked = sqlite3_column_int(st, 8) != 0;
    c->created_ms = sqlite3_column_int64(st, 9);
}

static enum fa_status sq_client_insert(struct store *st, const struct store_client *c)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc =
        prep(s, "INSERT INTO clients (" CLIENT_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?)", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, c->id);
    bind_text(q, 2, c->name);
    sqlite3_bind_blob(q, 3, c->api_key_hash, 32, SQLITE_TRANSIENT);
    bind_text(q, 4, c->api_key_prefix);
    bind_text(q, 5, c->secret_hash);
    sqlite3_bind_blob(q, 6, c->sealed_key, (int)c->sealed_key_len, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 7, c->enc_method);
    sqlite3_bind_int(q, 8, c->debug);
    sqlite3_bind_int(q, 9, c->revoked);
    sqlite3_bind_int64(q, 10, c->created_ms);
    return step_done(s, q);
}

static enum fa_status client_one(struct sq *s, sqlite3_stmt *q, struct store_client *out)
{
    int r = sqlite3_step(q);
    enum fa_status rc;
    if (r == SQLITE_ROW) {
        read_client(q, out);
        rc = FA_OK;
    } else if (r == SQLITE_DONE) {
        rc = FA_ERR_NOT_FOUND;
    } else {
        rc = db_err(s, r);
    }
    sqlite3_finalize(q);
    return rc;
}

static enum fa_status sq_client_get(struct store *st, const char *id, struct store_client *out)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "SELECT " CLIENT_COLS " FROM clients WHERE id = ?", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, id);
    return client_one(s, q, out);
}

static enum fa_status sq_client_by_api_key(struct store *st, const uint8_t h[32],
                                           struct store_client *out)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "SELECT " CLIENT_COLS " FROM clients WHERE api_key_hash = ?", &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_blob(q, 1, h, 32, SQLITE_TRANSIENT);
    return client_one(s, q, out);
}

static enum fa_status sq_client_list(struct store *st, struct store_client **out, size_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    struct store_client *arr = NULL;
    size_t cap = 0, k = 0;
    enum fa_status rc =
        prep(s, "SELECT " CLIENT_COLS " FROM clients ORDER BY created_ms, rowid", &q);
    if (rc != FA_OK)
        return rc;
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, k, sizeof *arr);
        if (rc != FA_OK)
            goto out;
        read_client(q, &arr[k++]);
    }
    if (r != SQLITE_DONE) {
        rc = db_err(s, r);
        goto out;
    }
    *out = arr;
    *n = k;
    arr = NULL;
    rc = FA_OK;
out:
    sqlite3_finalize(q);
    fa_free(arr);
    return rc;
}

static enum fa_status changed_one(struct sq *s, enum fa_status rc)
{
    if (rc == FA_OK && sqlite3_changes(s->db) == 0)
        return FA_ERR_NOT_FOUND;
    return rc;
}

static enum fa_status sq_client_set_revoked(struct store *st, const char *id, bool revoked)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "UPDATE clients SET revoked = ? WHERE id = ?", &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int(q, 1, revoked);
    bind_text(q, 2, id);
    return changed_one(s, step_done(s, q));
}

static enum fa_status sq_client_set_method(struct store *st, const char *id, int m)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "UPDATE clients SET enc_method = ? WHERE id = ?", &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int(q, 1, m);
    bind_text(q, 2, id);
    return changed_one(s, step_done(s, q));
}

/* ---- Users -------------------------------------------------------------- */

static enum fa_status sq_user_put(struct store *st, const char *client_id, const char *user_id,
                                  struct fa_bytes tpl, int samples, bool replace, int64_t now_ms)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    /* The client must exist: foreign_keys is on, so a missing client fails the
     * insert with a constraint error; check first to report NOT_FOUND. */
    enum fa_status rc = prep(s, "SELECT 1 FROM clients WHERE id = ?", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    int r = sqlite3_step(q);
    sqlite3_finalize(q);
    if (r == SQLITE_DONE)
        return FA_ERR_NOT_FOUND;
    if (r != SQLITE_ROW)
        return db_err(s, r);
    const char *sql =
        replace ? "INSERT INTO users (client_id, user_id, template, samples, created_ms, "
                  "updated_ms) VALUES (?1,?2,?3,?4,?5,?5) ON CONFLICT (client_id, user_id) DO "
                  "UPDATE SET template = excluded.template, samples = excluded.samples, "
                  "updated_ms = excluded.updated_ms"
                : "INSERT INTO users (client_id, user_id, template, samples, created_ms, "
                  "updated_ms) VALUES (?1,?2,?3,?4,?5,?5)";
    rc = prep(s, sql, &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    bind_text(q, 2, user_id);
    sqlite3_bind_blob(q, 3, tpl.p, (int)tpl.n, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, samples);
    sqlite3_bind_int64(q, 5, now_ms);
    return step_done(s, q);
}

static enum fa_status sq_user_get(struct store *st, const char *client_id, const char *user_id,
                                  struct fa_buf *sealed, struct store_user *info)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s,
                             "SELECT template, samples, created_ms, updated_ms FROM users "
                             "WHERE client_id = ? AND user_id = ?",
                             &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    bind_text(q, 2, user_id);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        rc = FA_OK;
        if (sealed != NULL)
            rc = fa_buf_append(sealed, sqlite3_column_blob(q, 0),
                               (size_t)sqlite3_column_bytes(q, 0));
        if (rc == FA_OK && info != NULL) {
            memset(info, 0, sizeof *info);
            snprintf(info->user_id, sizeof info->user_id, "%s", user_id);
            info->samples = sqlite3_column_int(q, 1);
            info->created_ms = sqlite3_column_int64(q, 2);
            info->updated_ms = sqlite3_column_int64(q, 3);
        }
    } else if (r == SQLITE_DONE) {
        rc = FA_ERR_NOT_FOUND;
    } else {
        rc = db_err(s, r);
    }
    sqlite3_finalize(q);
    return rc;
}

static enum fa_status sq_user_delete(struct store *st, const char *client_id, const char *user_id)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "DELETE FROM users WHERE client_id = ? AND user_id = ?", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    bind_text(q, 2, user_id);
    return changed_one(s, step_done(s, q));
}

static enum fa_status sq_user_list(struct store *st, const char *client_id, struct store_user **out,
                                   size_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    struct store_user *arr = NULL;
    size_t cap = 0, k = 0;
    enum fa_status rc = prep(s,
                             "SELECT user_id, samples, created_ms, updated_ms FROM users "
                             "WHERE client_id = ? ORDER BY user_id",
                             &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, k, sizeof *arr);
        if (rc != FA_OK)
            goto out;
        struct store_user *u = &arr[k++];
        memset(u, 0, sizeof *u);
        copy_text(u->user_id, sizeof u->user_id, q, 0);
        u->samples = sqlite3_column_int(q, 1);
        u->created_ms = sqlite3_column_int64(q, 2);
        u->updated_ms = sqlite3_column_int64(q, 3);
    }
    if (r != SQLITE_DONE) {
        rc = db_err(s, r);
        goto out;
    }
    *out = arr;
    *n = k;
    arr = NULL;
    rc = FA_OK;
out:
    sqlite3_finalize(q);
    fa_free(arr);
    return rc;
}

static enum fa_status sq_user_count(struct store *st, const char *client_id, uint64_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s, "SELECT COUNT(*) FROM users WHERE client_id = ?", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(q, 0);
    else
        rc = db_err(s, r);
    sqlite3_finalize(q);
    return rc;
}

static enum fa_status sq_user_each(struct store *st, const char *client_id, store_user_fn fn,
                                   void *arg)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc =
        prep(s, "SELECT user_id, template FROM users WHERE client_id = ? ORDER BY user_id", &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        const char *uid = (const char *)sqlite3_column_text(q, 0);
        struct fa_bytes tpl = {sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1)};
        rc = fn(arg, uid != NULL ? uid : "", tpl);
        if (rc != FA_OK)
            break;
    }
    if (rc == FA_OK && r != SQLITE_DONE)
        rc = db_err(s, r);
    sqlite3_finalize(q);
    return rc;
}

/* ---- Sessions ----------------------------------------------------------- */

#define SESSION_COLS                                                                               \
    "token_hash, id, client_id, type, status, user_id, target_samples, required_blinks, "          \
    "require_liveness, replace_user, frames_processed, created_ms, expires_ms, finished_ms, "      \
    "res_authenticated, res_user_id, res_confidence, res_method, res_payload"

static enum fa_status read_session(sqlite3_stmt *q, struct store_session *o)
{
    memset(o, 0, sizeof *o);
    if (sqlite3_column_bytes(q, 0) == 32)
        memcpy(o->token_hash, sqlite3_column_blob(q, 0), 32);
    copy_text(o->id, sizeof o->id, q, 1);
    copy_text(o->client_id, sizeof o->client_id, q, 2);
    o->type = sqlite3_column_int(q, 3);
    o->status = sqlite3_column_int(q, 4);
    o->has_user_id = sqlite3_column_type(q, 5) != SQLITE_NULL;
    copy_text(o->user_id, sizeof o->user_id, q, 5);
    o->target_samples = sqlite3_column_int(q, 6);
    o->required_blinks = sqlite3_column_int(q, 7);
    o->require_liveness = sqlite3_column_int(q, 8) != 0;
    o->replace = sqlite3_column_int(q, 9) != 0;
    o->frames_processed = sqlite3_column_int(q, 10);
    o->created_ms = sqlite3_column_int64(q, 11);
    o->expires_ms = sqlite3_column_int64(q, 12);
    o->finished_ms = sqlite3_column_int64(q, 13);
    o->has_result = sqlite3_column_type(q, 14) != SQLITE_NULL;
    if (o->has_result) {
        o->res_authenticated = sqlite3_column_int(q, 14) != 0;
        o->res_has_user_id = sqlite3_column_type(q, 15) != SQLITE_NULL;
        copy_text(o->res_user_id, sizeof o->res_user_id, q, 15);
        o->res_confidence = sqlite3_column_double(q, 16);
        o->res_method = sqlite3_column_int(q, 17);
        const char *p = (const char *)sqlite3_column_text(q, 18);
        if (p != NULL) {
            o->res_payload = fa_strdup(p);
            if (o->res_payload == NULL)
                return FA_ERR_NOMEM;
        }
    }
    return FA_OK;
}

static void bind_result(sqlite3_stmt *q, int i, const struct store_session *s)
{
    if (!s->has_result) {
        for (int k = 0; k < 5; k++)
            sqlite3_bind_null(q, i + k);
        return;
    }
    sqlite3_bind_int(q, i, s->res_authenticated);
    bind_text(q, i + 1, s->res_has_user_id ? s->res_user_id : NULL);
    sqlite3_bind_double(q, i + 2, s->res_confidence);
    sqlite3_bind_int(q, i + 3, s->res_method);
    bind_text(q, i + 4, s->res_payload);
}

static enum fa_status sq_session_insert(struct store *st, const struct store_session *ss)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(
        s, "INSERT INTO sessions (" SESSION_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_blob(q, 1, ss->token_hash, 32, SQLITE_TRANSIENT);
    bind_text(q, 2, ss->id);
    bind_text(q, 3, ss->client_id);
    sqlite3_bind_int(q, 4, ss->type);
    sqlite3_bind_int(q, 5, ss->status);
    bind_text(q, 6, ss->has_user_id ? ss->user_id : NULL);
    sqlite3_bind_int(q, 7, ss->target_samples);
    sqlite3_bind_int(q, 8, ss->required_blinks);
    sqlite3_bind_int(q, 9, ss->require_liveness);
    sqlite3_bind_int(q, 10, ss->replace);
    sqlite3_bind_int(q, 11, ss->frames_processed);
    sqlite3_bind_int64(q, 12, ss->created_ms);
    sqlite3_bind_int64(q, 13, ss->expires_ms);
    sqlite3_bind_int64(q, 14, ss->finished_ms);
    bind_result(q, 15, ss);
    return step_done(s, q);
}

static enum fa_status sq_session_get(struct store *st, const char *client_id, const uint8_t h[32],
                                     struct store_session *out)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s,
                             "SELECT " SESSION_COLS " FROM sessions WHERE token_hash = ?1 "
                             "AND (?2 IS NULL OR client_id = ?2)",
                             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_blob(q, 1, h, 32, SQLITE_TRANSIENT);
    bind_text(q, 2, client_id);
    int r = sqlite3_step(q);
    if (r == SQLITE_ROW)
        rc = read_session(q, out);
    else if (r == SQLITE_DONE)
        rc = FA_ERR_NOT_FOUND;
    else
        rc = db_err(s, r);
    sqlite3_finalize(q);
    return rc;
}

/* Only an unfinished row changes (finished_ms = 0): a finished session is
 * final, so a stale write that lands after the final one (two workers'
 * writes can commit out of order) is a no-op, never a resurrection. */
static enum fa_status sq_session_update(struct store *st, const struct store_session *ss)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc =
        prep(s,
             "UPDATE sessions SET status = ?, frames_processed = ?, finished_ms = ?, "
             "res_authenticated = ?, res_user_id = ?, res_confidence = ?, res_method = ?, "
             "res_payload = ? WHERE token_hash = ? AND client_id = ? AND finished_ms = 0",
             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int(q, 1, ss->status);
    sqlite3_bind_int(q, 2, ss->frames_processed);
    sqlite3_bind_int64(q, 3, ss->finished_ms);
    bind_result(q, 4, ss);
    sqlite3_bind_blob(q, 9, ss->token_hash, 32, SQLITE_TRANSIENT);
    bind_text(q, 10, ss->client_id);
    return changed_one(s, step_done(s, q));
}

static enum fa_status sq_session_list_recent(struct store *st, int64_t since_ms,
                                             struct store_session **out, size_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    struct store_session *arr = NULL;
    size_t cap = 0, k = 0;
    enum fa_status rc = prep(s,
                             "SELECT " SESSION_COLS " FROM sessions WHERE expires_ms > ?1 "
                             "OR finished_ms > ?1 ORDER BY created_ms",
                             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int64(q, 1, since_ms);
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, k, sizeof *arr);
        if (rc != FA_OK)
            goto out;
        rc = read_session(q, &arr[k++]);
        if (rc != FA_OK)
            goto out;
    }
    if (r != SQLITE_DONE) {
        rc = db_err(s, r);
        goto out;
    }
    *out = arr;
    *n = k;
    arr = NULL;
    k = 0;
    rc = FA_OK;
out:
    sqlite3_finalize(q);
    store_sessions_free(arr, k);
    return rc;
}

static enum fa_status sq_session_expire(struct store *st, int64_t now_ms, int status, uint64_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s,
                             "UPDATE sessions SET status = ?1, finished_ms = ?2 "
                             "WHERE finished_ms = 0 AND expires_ms <= ?2",
                             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int(q, 1, status);
    sqlite3_bind_int64(q, 2, now_ms);
    rc = step_done(s, q);
    if (rc == FA_OK && n != NULL)
        *n = (uint64_t)sqlite3_changes(s->db);
    return rc;
}

static enum fa_status sq_session_purge(struct store *st, int64_t before_ms, uint64_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s,
                             "DELETE FROM sessions WHERE (finished_ms != 0 AND finished_ms < ?1) "
                             "OR expires_ms < ?1",
                             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int64(q, 1, before_ms);
    rc = step_done(s, q);
    if (rc == FA_OK && n != NULL)
        *n = (uint64_t)sqlite3_changes(s->db);
    return rc;
}

/* ---- Audit -------------------------------------------------------------- */

static enum fa_status sq_audit_add(struct store *st, const struct store_audit *a)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    enum fa_status rc = prep(s,
                             "INSERT INTO audit (at_ms, client_id, event, user_id, session_id, "
                             "detail) VALUES (?,?,?,?,?,?)",
                             &q);
    if (rc != FA_OK)
        return rc;
    sqlite3_bind_int64(q, 1, a->at_ms);
    bind_text(q, 2, a->client_id);
    bind_text(q, 3, a->event);
    bind_text(q, 4, a->user_id);
    bind_text(q, 5, a->session_id);
    bind_text(q, 6, a->detail);
    return step_done(s, q);
}

static enum fa_status sq_audit_list(struct store *st, const char *client_id, size_t max,
                                    struct store_audit **out, size_t *n)
{
    struct sq *s = SQ(st);
    sqlite3_stmt *q = NULL;
    struct store_audit *arr = NULL;
    size_t cap = 0, k = 0;
    enum fa_status rc = prep(s,
                             "SELECT id, at_ms, client_id, event, user_id, session_id, detail "
                             "FROM audit WHERE client_id = ? ORDER BY id DESC LIMIT ?",
                             &q);
    if (rc != FA_OK)
        return rc;
    bind_text(q, 1, client_id);
    sqlite3_bind_int64(q, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, k, sizeof *arr);
        if (rc != FA_OK)
            goto out;
        struct store_audit *a = &arr[k++];
        memset(a, 0, sizeof *a);
        a->id = sqlite3_column_int64(q, 0);
        a->at_ms = sqlite3_column_int64(q, 1);
        copy_text(a->client_id, sizeof a->client_id, q, 2);
        copy_text(a->event, sizeof a->event, q, 3);
        copy_text(a->user_id, sizeof a->user_id, q, 4);
        copy_text(a->session_id, sizeof a->session_id, q, 5);
        copy_text(a->detail, sizeof a->detail, q, 6);
    }
    if (r != SQLITE_DONE) {
        rc = db_err(s, r);
        goto out;
    }
    *out = arr;
    *n = k;
    arr = NULL;
    rc = FA_OK;
out:
    sqlite3_finalize(q);
    fa_free(arr);
    return rc;
}

static const struct store_ops SQLITE_OPS = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .journal_mode = sq_journal_mode,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .client_insert = sq_client_insert,
    .client_get = sq_client_get,
    .client_by_api_key = sq_client_by_api_key,
    .client_list = sq_client_list,
    .client_set_revoked = sq_client_set_revoked,
    .client_set_method = sq_client_set_method,
    .user_put = sq_user_put,
    .user_get = sq_user_get,
    .user_delete = sq_user_delete,
    .user_list = sq_user_list,
    .user_count = sq_user_count,
    .user_each = sq_user_each,
    .session_insert = sq_session_insert,
    .session_get = sq_session_get,
    .session_update = sq_session_update,
    .session_list_recent = sq_session_list_recent,
    .session_expire = sq_session_expire,
    .session_purge = sq_session_purge,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
};

enum fa_status store_sqlite_open(const struct store_config *cfg, struct store **out,
                                 struct fa_errinfo *info)
{
    struct sq *s = fa_calloc(1, sizeof *s);
    if (s == NULL)
        return FA_ERR_NOMEM;
    s->base.ops = &SQLITE_OPS;
    int flags = cfg->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one thread per connection */
    if (!cfg->readonly) {
        /* Create the file owner-only: it holds hashes and sealed data. SQLite
         * gives the -wal and -shm files the same mode. Only when it does not
         * exist yet: closing a descriptor of a file drops every POSIX lock
         * this process holds on it, including those of SQLite connections
         * already open (workers), which corrupts the database. */
        int fd = open(cfg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    int r = sqlite3_open_v2(cfg->path, &s->db, flags, NULL);
    enum fa_status rc;
    if (r != SQLITE_OK) {
        fa_errinfo_set(info, "store: %s: %s", cfg->path,
                       s->db ? sqlite3_errmsg(s->db) : "cannot open");
        rc = r == SQLITE_NOMEM ? FA_ERR_NOMEM : FA_ERR_IO;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
    sqlite3_extended_result_codes(s->db, 1);
    if (!cfg->readonly) {
        rc = exec(s, "PRAGMA journal_mode = WAL");
        if (rc == FA_OK)
            rc = exec(s, "PRAGMA synchronous = FULL");
    } else {
        rc = FA_OK;
    }
    if (rc == FA_OK)
        rc = exec(s, "PRAGMA foreign_keys = ON");
    if (rc != FA_OK) {
        fa_errinfo_set(info, "store: %s: %s", cfg->path, sqlite3_errmsg(s->db));
        if (rc == FA_ERR_STORE)
            rc = FA_ERR_IO;
        goto fail;
    }
    if (cfg->readonly) {
        s->version = read_version(s);
    } else {
        rc = migrate(s, info);
        if (rc != FA_OK)
            goto fail;
    }
    *out = &s->base;
    return FA_OK;
fail:
    sqlite3_close_v2(s->db);
    fa_free(s);
    return rc;
}
