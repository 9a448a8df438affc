/* Private to store/: the backend vtable. A backend defines its own struct
 * whose first member is struct store, and fills a struct store_ops. */
#ifndef FA_STORE_STORE_IMPL_H
#define FA_STORE_STORE_IMPL_H

#include "store/store.h"

struct store_ops {
    const char *name;
    void (*close)(struct store *st);
    int (*schema_version)(struct store *st);
    const char *(*journal_mode)(struct store *st);
    enum fa_status (*begin)(struct store *st);
    enum fa_status (*commit)(struct store *st);
    void (*rollback)(struct store *st);

    enum fa_status (*client_insert)(struct store *st, const struct store_client *c);
    enum fa_status (*client_get)(struct store *st, const char *id, struct store_client *out);
    enum fa_status (*client_by_api_key)(struct store *st, const uint8_t h[32],
                                        struct store_client *out);
    enum fa_status (*client_list)(struct store *st, struct store_client **out, size_t *n);
    enum fa_status (*client_set_revoked)(struct store *st, const char *id, bool revoked);
    enum fa_status (*client_set_method)(struct store *st, const char *id, int m);

    enum fa_status (*user_put)(struct store *st, const char *client_id, const char *user_id,
                               struct fa_bytes tpl, int samples, bool replace, int64_t now_ms);
    enum fa_status (*user_get)(struct store *st, const char *client_id, const char *user_id,
                               struct fa_buf *sealed, struct store_user *info);
    enum fa_status (*user_delete)(struct store *st, const char *client_id, const char *user_id);
    enum fa_status (*user_list)(struct store *st, const char *client_id, struct store_user **out,
                                size_t *n);
    enum fa_status (*user_count)(struct store *st, const char *client_id, uint64_t *n);
    enum fa_status (*user_each)(struct store *st, const char *client_id, store_user_fn fn,
                                void *arg);

    enum fa_status (*session_insert)(struct store *st, const struct store_session *s);
    enum fa_status (*session_get)(struct store *st, const char *client_id, const uint8_t h[32],
                                  struct store_session *out);
    enum fa_status (*session_update)(struct store *st, const struct store_session *s);
    enum fa_status (*session_list_recent)(struct store *st, int64_t since_ms,
                                          struct store_session **out, size_t *n);
    enum fa_status (*session_expire)(struct store *st, int64_t now_ms, int status, uint64_t *n);
    enum fa_status (*session_purge)(struct store *st, int64_t before_ms, uint64_t *n);

    enum fa_status (*audit_add)(struct store *st, const struct store_audit *a);
    enum fa_status (*audit_list)(struct store *st, const char *client_id, size_t max,
                                 struct store_audit **out, size_t *n);
};

struct store {
    const struct store_ops *ops;
};

/* sqlite.c */
enum fa_status store_sqlite_open(const struct store_config *cfg, struct store **out,
                                 struct fa_errinfo *info);

#endif
