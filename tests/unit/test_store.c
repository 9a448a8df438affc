/* store/: the SQLite backend on real files in a temp dir: schema and WAL,
 * clients, users, sessions, audit, isolation between clients, persistence
 * across reopen, atomic transactions, concurrent connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/alloc.h"
#include "store/store.h"

static char dir[256], db[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fa_store_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/faceauth.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct store *open_db(void)
{
    struct store *st = NULL;
    struct store_config c = {.path = db};
    struct fa_errinfo info = {{0}};
    enum fa_status rc = store_open(&c, &st, &info);
    if (rc != FA_OK)
        fprintf(stderr, "store_open: %s %s\n", fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_OK);
    return st;
}

static void make_client(struct store_client *c, const char *id, uint8_t tag)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->name, sizeof c->name, "name of %s", id);
    memset(c->api_key_hash, tag, 32);
    snprintf(c->api_key_prefix, sizeof c->api_key_prefix, "ak_%02x", tag);
    snprintf(c->secret_hash, sizeof c->secret_hash, "$argon2id$fake%02x", tag);
    memset(c->sealed_key, tag, 61);
    c->sealed_key_len = 61;
    c->created_ms = 1000 + tag;
}

static void make_session(struct store_session *s, const char *client, uint8_t tag, int64_t created,
                         int64_t expires)
{
    memset(s, 0, sizeof *s);
    memset(s->token_hash, tag, 32);
    snprintf(s->id, sizeof s->id, "sess-%02x", tag);
    snprintf(s->client_id, sizeof s->client_id, "%s", client);
    s->type = 1;
    s->status = 0;
    s->has_user_id = true;
    snprintf(s->user_id, sizeof s->user_id, "user-%02x", tag);
    s->target_samples = 3;
    s->required_blinks = 1;
    s->require_liveness = true;
    s->created_ms = created;
    s->expires_ms = expires;
}

static void test_open_schema_wal(void **state)
{
    (void)state;
    struct store *st = open_db();
    assert_int_equal(store_schema_version(st), 1);
    assert_string_equal(store_journal_mode(st), "wal");
    store_close(st);
    /* Reopen: no migration runs twice. */
    st = open_db();
    assert_int_equal(store_schema_version(st), 1);
    store_close(st);
}

static void test_schema_too_new(void **state)
{
    (void)state;
    char p[320];
    snprintf(p, sizeof p, "%s/new.db", dir);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(p, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TABLE schema_version (version INTEGER, applied_ms "
                                  "INTEGER); INSERT INTO schema_version VALUES (99, 0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    struct store *st = NULL;
    struct store_config c = {.path = p};
    struct fa_errinfo info = {{0}};
    assert_int_equal(store_open(&c, &st, &info), FA_ERR_STORE);
    assert_non_null(strstr(info.what, "99"));
    /* Unopenable path. */
    c.path = "/nonexistent-dir/x/y.db";
    assert_int_equal(store_open(&c, &st, &info), FA_ERR_IO);
}

static void test_clients(void **state)
{
    (void)state;
    struct store *st = open_db();
    struct store_client a, b, got;
    make_client(&a, "cl_a", 0xa1);
    make_client(&b, "cl_b", 0xb2);
    assert_int_equal(store_client_insert(st, &a), FA_OK);
    assert_int_equal(store_client_insert(st, &b), FA_OK);
    assert_int_equal(store_client_insert(st, &a), FA_ERR_CONFLICT);
    struct store_client dup;
    make_client(&dup, "cl_c", 0xa1); /* same api_key hash as a */
    assert_int_equal(store_client_insert(st, &dup), FA_ERR_CONFLICT);

    assert_int_equal(store_client_get(st, "cl_a", &got), FA_OK);
    assert_string_equal(got.name, "name of cl_a");
    assert_int_equal(got.sealed_key_len, 61);
    assert_memory_equal(got.sealed_key, a.sealed_key, 61);
    assert_string_equal(got.secret_hash, a.secret_hash);
    assert_false(got.revoked);
    uint8_t h[32];
    memset(h, 0xb2, 32);
    assert_int_equal(store_client_by_api_key(st, h, &got), FA_OK);
    assert_string_equal(got.id, "cl_b");
    memset(h, 0x00, 32);
    assert_int_equal(store_client_by_api_key(st, h, &got), FA_ERR_NOT_FOUND);
    assert_int_equal(store_client_get(st, "cl_zz", &got), FA_ERR_NOT_FOUND);

    assert_int_equal(store_client_set_revoked(st, "cl_a", true), FA_OK);
    assert_int_equal(store_client_set_method(st, "cl_b", 1), FA_OK);
    assert_int_equal(store_client_set_method(st, "cl_b", 2), FA_ERR_ARG);
    assert_int_equal(store_client_set_revoked(st, "cl_zz", true), FA_ERR_NOT_FOUND);
    struct store_client *list = NULL;
    size_t n = 0;
    assert_int_equal(store_client_list(st, &list, &n), FA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "cl_a"); /* oldest first */
    assert_true(list[0].revoked);
    assert_int_equal(list[1].enc_method, 1);
    fa_free(list);
    store_close(st);
}

static void test_users_and_isolation(void **state)
{
    (void)state;
    struct store *st = open_db();
    const uint8_t t1[] = "template-one", t2[] = "template-two-longer";
    assert_int_equal(store_user_put(st, "cl_a", "alice", fa_bytes_of(t1, sizeof t1), 3, false, 10),
                     FA_OK);
    assert_int_equal(store_user_put(st, "cl_b", "alice", fa_bytes_of(t2, sizeof t2), 5, false, 11),
                     FA_OK); /* same user_id, other client: independent */
    assert_int_equal(store_user_put(st, "cl_a", "alice", fa_bytes_of(t2, sizeof t2), 5, false, 12),
                     FA_ERR_CONFLICT);
    assert_int_equal(store_user_put(st, "cl_nope", "x", fa_bytes_of(t1, sizeof t1), 1, false, 12),
                     FA_ERR_NOT_FOUND);
    assert_int_equal(store_user_put(st, "cl_a", "bob", fa_bytes_of(t2, sizeof t2), 2, false, 13),
                     FA_OK);

    struct fa_buf b = {0};
    struct store_user u;
    assert_int_equal(store_user_get(st, "cl_a", "alice", &b, &u), FA_OK);
    assert_int_equal(b.n, sizeof t1);
    assert_memory_equal(b.p, t1, sizeof t1);
    assert_int_equal(u.samples, 3);
    fa_buf_reset(&b);
    assert_int_equal(store_user_get(st, "cl_b", "alice", &b, NULL), FA_OK);
    assert_memory_equal(b.p, t2, sizeof t2);
    assert_int_equal(store_user_get(st, "cl_b", "bob", NULL, NULL), FA_ERR_NOT_FOUND);

    /* replace keeps created, bumps updated */
    assert_int_equal(store_user_put(st, "cl_a", "alice", fa_bytes_of(t2, sizeof t2), 7, true, 50),
                     FA_OK);
    fa_buf_reset(&b);
    assert_int_equal(store_user_get(st, "cl_a", "alice", &b, &u), FA_OK);
    assert_memory_equal(b.p, t2, sizeof t2);
    assert_int_equal(u.samples, 7);
    assert_int_equal(u.created_ms, 10);
    assert_int_equal(u.updated_ms, 50);

    uint64_t cnt = 0;
    assert_int_equal(store_user_count(st, "cl_a", &cnt), FA_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_user_count(st, "cl_b", &cnt), FA_OK);
    assert_int_equal(cnt, 1);
    struct store_user *list = NULL;
    size_t n = 0;
    assert_int_equal(store_user_list(st, "cl_a", &list, &n), FA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].user_id, "alice");
    assert_string_equal(list[1].user_id, "bob");
    fa_free(list);

    /* Deleting another client's user does nothing. */
    assert_int_equal(store_user_delete(st, "cl_b", "bob"), FA_ERR_NOT_FOUND);
    assert_int_equal(store_user_delete(st, "cl_b", "alice"), FA_OK);
    assert_int_equal(store_user_get(st, "cl_a", "alice", NULL, NULL), FA_OK);
    assert_int_equal(store_user_get(st, "cl_b", "alice", NULL, NULL), FA_ERR_NOT_FOUND);
    assert_int_equal(store_user_delete(st, "cl_b", "alice"), FA_ERR_NOT_FOUND);
    fa_buf_fini(&b);
    store_close(st);
}

struct each_acc {
    int n;
    char ids[4][16];
};

static enum fa_status each_cb(void *arg, const char *user_id, struct fa_bytes tpl)
{
    struct each_acc *a = arg;
    assert_true(tpl.n > 0);
    snprintf(a->ids[a->n++], 16, "%s", user_id);
    return FA_OK;
}

static enum fa_status stop_cb(void *arg, const char *user_id, struct fa_bytes tpl)
{
    (void)arg;
    (void)user_id;
    (void)tpl;
    return FA_ERR_INTERNAL;
}

static void test_user_each(void **state)
{
    (void)state;
    struct store *st = open_db();
    struct each_acc acc = {0};
    assert_int_equal(store_user_each(st, "cl_a", each_cb, &acc), FA_OK);
    assert_int_equal(acc.n, 2); /* alice, bob of cl_a only */
    assert_string_equal(acc.ids[0], "alice");
    assert_string_equal(acc.ids[1], "bob");
    acc.n = 0;
    assert_int_equal(store_user_each(st, "cl_b", each_cb, &acc), FA_OK);
    assert_int_equal(acc.n, 0);
    assert_int_equal(store_user_each(st, "cl_a", stop_cb, NULL), FA_ERR_INTERNAL);
    store_close(st);
}

static void test_sessions(void **state)
{
    (void)state;
    struct store *st = open_db();
    struct store_session s1, s2, s3, got;
    make_session(&s1, "cl_a", 1, 1000, 5000);
    make_session(&s2, "cl_b", 2, 1000, 5000);
    make_session(&s3, "cl_a", 3, 1000, 2000);
    s3.has_user_id = false;
    assert_int_equal(store_session_insert(st, &s1), FA_OK);
    assert_int_equal(store_session_insert(st, &s2), FA_OK);
    assert_int_equal(store_session_insert(st, &s3), FA_OK);
    assert_int_equal(store_session_insert(st, &s1), FA_ERR_CONFLICT);

    /* Scoped by client: cl_b cannot see cl_a's session. */
    assert_int_equal(store_session_get(st, "cl_a", s1.token_hash, &got), FA_OK);
    assert_string_equal(got.id, "sess-01");
    assert_true(got.require_liveness);
    assert_false(got.has_result);
    assert_null(got.res_payload);
    assert_int_equal(store_session_get(st, "cl_b", s1.token_hash, &got), FA_ERR_NOT_FOUND);
    assert_int_equal(store_session_get(st, NULL, s1.token_hash, &got), FA_OK);
    assert_int_equal(store_session_get(st, "cl_a", s3.token_hash, &got), FA_OK);
    assert_false(got.has_user_id);

    /* Finish s1 with a result. */
    s1.status = 2;
    s1.frames_processed = 3;
    s1.finished_ms = 1500;
    s1.has_result = true;
    s1.res_authenticated = true;
    s1.res_has_user_id = true;
    snprintf(s1.res_user_id, sizeof s1.res_user_id, "user-01");
    s1.res_confidence = 0.875;
    s1.res_method = 1;
    s1.res_payload = "cGF5bG9hZA==";
    assert_int_equal(store_session_update(st, &s1), FA_OK);
    struct store_session wrong = s1;
    snprintf(wrong.client_id, sizeof wrong.client_id, "cl_b");
    assert_int_equal(store_session_update(st, &wrong), FA_ERR_NOT_FOUND);
    /* A finished session is final: an older "active" write that commits late
     * (another worker's job) changes nothing, the result stays. */
    struct store_session stale = s1;
    stale.status = 1;
    stale.frames_processed = 0;
    stale.finished_ms = 0;
    stale.has_result = false;
    stale.res_payload = NULL;
    assert_int_equal(store_session_update(st, &stale), FA_ERR_NOT_FOUND);
    s1.status = 3; /* nor a second final write */
    assert_int_equal(store_session_update(st, &s1), FA_ERR_NOT_FOUND);
    s1.status = 2;
    assert_int_equal(store_session_get(st, "cl_a", s1.token_hash, &got), FA_OK);
    assert_int_equal(got.status, 2);
    assert_int_equal(got.frames_processed, 3);
    assert_true(got.has_result && got.res_authenticated && got.res_has_user_id);
    assert_string_equal(got.res_user_id, "user-01");
    assert_true(got.res_confidence > 0.874 && got.res_confidence < 0.876);
    assert_int_equal(got.res_method, 1);
    assert_string_equal(got.res_payload, "cGF5bG9hZA==");
    fa_free(got.res_payload);

    /* Sessions still relevant at t: expiring after t or finished after t. */
    struct store_session *live = NULL;
    size_t n = 0;
    assert_int_equal(store_session_list_recent(st, 1800, &live, &n), FA_OK);
    assert_int_equal(n, 3);
    store_sessions_free(live, n);
    assert_int_equal(store_session_list_recent(st, 2000, &live, &n), FA_OK);
    assert_int_equal(n, 2); /* s3 expired at 2000 */
    assert_string_equal(live[0].id, "sess-01");
    assert_string_equal(live[0].res_payload, "cGF5bG9hZA==");
    store_sessions_free(live, n);
    assert_int_equal(store_session_list_recent(st, 5000, &live, &n), FA_OK);
    assert_int_equal(n, 0);
    store_sessions_free(live, n);
    uint64_t k = 0;
    assert_int_equal(store_session_expire(st, 2000, 4, &k), FA_OK);
    assert_int_equal(k, 1); /* s3 */
    assert_int_equal(store_session_get(st, "cl_a", s3.token_hash, &got), FA_OK);
    assert_int_equal(got.status, 4);
    assert_int_equal(got.finished_ms, 2000);
    /* Purge what finished before 1900: s1 (1500) only. */
    assert_int_equal(store_session_purge(st, 1900, &k), FA_OK);
    assert_int_equal(k, 1);
    assert_int_equal(store_session_get(st, NULL, s1.token_hash, &got), FA_ERR_NOT_FOUND);
    store_close(st);
}

static void test_audit(void **state)
{
    (void)state;
    struct store *st = open_db();
    for (int i = 0; i < 3; i++) {
        struct store_audit a = {.at_ms = 100 + i};
        snprintf(a.client_id, sizeof a.client_id, "%s", i == 1 ? "cl_b" : "cl_a");
        snprintf(a.event, sizeof a.event, "event_%d", i);
        assert_int_equal(store_audit_add(st, &a), FA_OK);
    }
    struct store_audit *list = NULL;
    size_t n = 0;
    assert_int_equal(store_audit_list(st, "cl_a", 10, &list, &n), FA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].event, "event_2"); /* newest first */
    assert_string_equal(list[1].event, "event_0");
    fa_free(list);
    assert_int_equal(store_audit_list(st, "cl_a", 1, &list, &n), FA_OK);
    assert_int_equal(n, 1);
    fa_free(list);
    store_close(st);
}

/* Nothing of a failed transaction remains, in this connection or another. */
static void test_transaction_atomic(void **state)
{
    (void)state;
    struct store *st = open_db();
    const uint8_t t[] = "tpl";
    assert_int_equal(store_begin(st), FA_OK);
    assert_int_equal(store_begin(st), FA_ERR_ARG); /* not nested */
    assert_int_equal(store_user_put(st, "cl_a", "carol", fa_bytes_of(t, 3), 1, false, 1), FA_OK);
    struct store_session dup;
    make_session(&dup, "cl_a", 2, 1, 2); /* the token hash of s2: conflict */
    assert_int_equal(store_session_insert(st, &dup), FA_ERR_CONFLICT);
    store_rollback(st);
    assert_int_equal(store_user_get(st, "cl_a", "carol", NULL, NULL), FA_ERR_NOT_FOUND);

    /* Uncommitted work is invisible to another connection and lost on close. */
    assert_int_equal(store_begin(st), FA_OK);
    assert_int_equal(store_user_put(st, "cl_a", "dave", fa_bytes_of(t, 3), 1, false, 1), FA_OK);
    struct store *other = open_db(); /* WAL: a reader does not wait for the writer */
    assert_int_equal(store_user_get(other, "cl_a", "dave", NULL, NULL), FA_ERR_NOT_FOUND);
    assert_int_equal(store_user_get(other, "cl_a", "alice", NULL, NULL), FA_OK);
    store_close(st); /* without commit */
    st = open_db();
    assert_int_equal(store_user_get(st, "cl_a", "dave", NULL, NULL), FA_ERR_NOT_FOUND);

    /* Committed work is visible to the other connection. */
    assert_int_equal(store_begin(st), FA_OK);
    assert_int_equal(store_user_put(st, "cl_a", "erin", fa_bytes_of(t, 3), 1, false, 1), FA_OK);
    assert_int_equal(store_commit(st), FA_OK);
    assert_int_equal(store_user_get(other, "cl_a", "erin", NULL, NULL), FA_OK);
    assert_int_equal(store_commit(st), FA_ERR_ARG); /* no transaction open */
    store_close(other);
    store_close(st);
}

/* A second writer waits for the first (busy timeout) instead of failing. */
static void test_two_writers(void **state)
{
    (void)state;
    struct store *a = open_db();
    struct store_config c = {.path = db, .busy_timeout_ms = 50};
    struct store *b = NULL;
    assert_int_equal(store_open(&c, &b, NULL), FA_OK);
    assert_int_equal(store_begin(a), FA_OK);
    assert_int_equal(store_begin(b), FA_ERR_STORE_BUSY); /* a holds the write lock */
    store_commit(a);
    assert_int_equal(store_begin(b), FA_OK);
    store_rollback(b);
    store_close(a);
    store_close(b);
}

static void test_persistence(void **state)
{
    (void)state;
    /* Everything written above by earlier connections is still there. */
    struct store *st = open_db();
    struct store_client c;
    assert_int_equal(store_client_get(st, "cl_b", &c), FA_OK);
    assert_int_equal(c.enc_method, 1);
    assert_int_equal(store_user_get(st, "cl_a", "bob", NULL, NULL), FA_OK);
    struct store_audit *list = NULL;
    size_t n = 0;
    assert_int_equal(store_audit_list(st, "cl_b", 10, &list, &n), FA_OK);
    assert_int_equal(n, 1);
    fa_free(list);
    store_close(st);
}

static void test_nomem(void **state)
{
    (void)state;
    struct store *st = open_db();
    /* Lists allocate with fa_malloc: a failure is FA_ERR_NOMEM, no leak. */
    struct store_client *list = NULL;
    size_t n = 0;
    fa_alloc_fail_after(0);
    enum fa_status rc = store_client_list(st, &list, &n);
    fa_alloc_fail_reset();
    assert_int_equal(rc, FA_ERR_NOMEM);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_schema_wal), cmocka_unit_test(test_schema_too_new),
        cmocka_unit_test(test_clients),         cmocka_unit_test(test_users_and_isolation),
        cmocka_unit_test(test_user_each),       cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_audit),           cmocka_unit_test(test_transaction_atomic),
        cmocka_unit_test(test_two_writers),     cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
