/* Backend-neutral front of the store: argument checks, then dispatch through
 * the backend's vtable. Only SQLite exists today; a PostgreSQL backend adds a
 * store_ops and a branch in store_open. */
#include "store/store.h"

#include "base/alloc.h"
#include "store/store_impl.h"

enum fa_status store_open(const struct store_config *cfg, struct store **out,
                          struct fa_errinfo *info)
{
    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == 0 || out == NULL) {
        fa_errinfo_set(info, "store: no database path");
        return FA_ERR_ARG;
    }
    return store_sqlite_open(cfg, out, info);
}

void store_close(struct store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

int store_schema_version(struct store *st)
{
    return st->ops->schema_version(st);
}

const char *store_journal_mode(struct store *st)
{
    return st->ops->journal_mode(st);
}

enum fa_status store_begin(struct store *st)
{
    return st->ops->begin(st);
}

enum fa_status store_commit(struct store *st)
{
    return st->ops->commit(st);
}

void store_rollback(struct store *st)
{
    st->ops->rollback(st);
}

enum fa_status store_client_insert(struct store *st, const struct store_client *c)
{
    if (c == NULL || c->id[0] == 0 || c->sealed_key_len > STORE_SEALED_MAX)
        return FA_ERR_ARG;
    return st->ops->client_insert(st, c);
}

enum fa_status store_client_get(struct store *st, const char *id, struct store_client *out)
{
    if (id == NULL || out == NULL)
        return FA_ERR_ARG;
    return st->ops->client_get(st, id, out);
}

enum fa_status store_client_by_api_key(struct store *st, const uint8_t api_key_hash[32],
                                       struct store_client *out)
{
    if (api_key_hash == NULL || out == NULL)
        return FA_ERR_ARG;
    return st->ops->client_by_api_key(st, api_key_hash, out);
}

enum fa_status store_client_list(struct store *st, struct store_client **out, size_t *n)
{
    return st->ops->client_list(st, out, n);
}

enum fa_status store_client_set_revoked(struct store *st, const char *id, bool revoked)
{
    if (id == NULL)
        return FA_ERR_ARG;
    return st->ops->client_set_revoked(st, id, revoked);
}

enum fa_status store_client_set_method(struct store *st, const char *id, int enc_method)
{
    if (id == NULL || enc_method < 0 || enc_method > 1)
        return FA_ERR_ARG;
    return st->ops->client_set_method(st, id, enc_method);
}

enum fa_status store_user_put(struct store *st, const char *client_id, const char *user_id,
                              struct fa_bytes sealed_template, int samples, bool replace,
                              int64_t now_ms)
{
    if (client_id == NULL || user_id == NULL || user_id[0] == 0 || sealed_template.n == 0)
        return FA_ERR_ARG;
    return st->ops->user_put(st, client_id, user_id, sealed_template, samples, replace, now_ms);
}

enum fa_status store_user_get(struct store *st, const char *client_id, const char *user_id,
                              struct fa_buf *sealed, struct store_user *info)
{
    if (client_id == NULL || user_id == NULL)
        return FA_ERR_ARG;
    return st->ops->user_get(st, client_id, user_id, sealed, info);
}

enum fa_status store_user_delete(struct store *st, const char *client_id, const char *user_id)
{
    if (client_id == NULL || user_id == NULL)
        return FA_ERR_ARG;
    return st->ops->user_delete(st, client_id, user_id);
}

enum fa_status store_user_list(struct store *st, const char *client_id, struct store_user **out,
                               size_t *n)
{
    if (client_id == NULL)
        return FA_ERR_ARG;
    return st->ops->user_list(st, client_id, out, n);
}

enum fa_status store_user_count(struct store *st, const char *client_id, uint64_t *n)
{
    if (client_id == NULL)
        return FA_ERR_ARG;
    return st->ops->user_count(st, client_id, n);
}

enum fa_status store_user_each(struct store *st, const char *client_id, store_user_fn fn, void *arg)
{
    if (client_id == NULL || fn == NULL)
        return FA_ERR_ARG;
    return st->ops->user_each(st, client_id, fn, arg);
}

enum fa_status store_session_insert(struct store *st, const struct store_session *s)
{
    if (s == NULL || s->id[0] == 0 || s->client_id[0] == 0)
        return FA_ERR_ARG;
    return st->ops->session_insert(st, s);
}

enum fa_status store_session_get(struct store *st, const char *client_id,
                                 const uint8_t token_hash[32], struct store_session *out)
{
    if (token_hash == NULL || out == NULL)
        return FA_ERR_ARG;
    return st->ops->session_get(st, client_id, token_hash, out);
}

enum fa_status store_session_update(struct store *st, const struct store_session *s)
{
    if (s == NULL || s->client_id[0] == 0)
        return FA_ERR_ARG;
    return st->ops->session_update(st, s);
}

enum fa_status store_session_list_recent(struct store *st, int64_t since_ms,
                                         struct store_session **out, size_t *n)
{
    return st->ops->session_list_recent(st, since_ms, out, n);
}

void store_sessions_free(struct store_session *a, size_t n)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        fa_free(a[i].res_payload);
    fa_free(a);
}

enum fa_status store_session_expire(struct store *st, int64_t now_ms, int expired_status,
                                    uint64_t *n)
{
    return st->ops->session_expire(st, now_ms, expired_status, n);
}

enum fa_status store_session_purge(struct store *st, int64_t before_ms, uint64_t *n)
{
    return st->ops->session_purge(st, before_ms, n);
}

enum fa_status store_audit_add(struct store *st, const struct store_audit *a)
{
    if (a == NULL)
        return FA_ERR_ARG;
    return st->ops->audit_add(st, a);
}

enum fa_status store_audit_list(struct store *st, const char *client_id, size_t max,
                                struct store_audit **out, size_t *n)
{
    if (client_id == NULL)
        return FA_ERR_ARG;
    return st->ops->audit_list(st, client_id, max, out, n);
}
