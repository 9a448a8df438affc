/* ws/proto.c, one connection's protocol, against a real app (no face
 * engine, temp data dir, fake clocks) and a recording ws_io in place of the
 * daemon: connect validation (4404 unknown and malformed tokens, 4403 a
 * token used twice, 4401 expired), connection_established, ping/pong,
 * fragment reassembly, error 4400 with the socket kept open for bad
 * messages, close 4400 over the size limit, throttling (error 4429, then
 * close 4429), frame failure inside the server (close 4500), expiry while
 * connected (close 4401), shutdown (1001), a peer that does not read its
 * replies (4429), and a frame reply arriving after the socket closed
 * (dropped, nothing touched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdatomic.h>

#include "app/app.h"
#include "base/alloc.h"
#include "ws/ws.h"

#define T0 1761568496000LL
#define MASTER "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static _Atomic int64_t wall_now = T0;
static int64_t mono_now = 1000;
static char data_dir[64];
static struct app_client_secret client;

static int64_t wall_fn(void *arg)
{
    (void)arg;
    return atomic_load(&wall_now);
}

static int64_t mono_fn(void)
{
    return mono_now;
}

/* ---- the recording io ---- */

#define MAX_EV 256
struct ev {
    uint64_t conn;
    bool close;
    int code;
    char text[512];
};
static struct ev evs[MAX_EV];
static int nev;
static struct {
    uint64_t id;
    struct ws_conn *c;
} live[16];
static bool refuse_sends; /* simulate a peer that does not read */

static enum fa_status io_send(void *arg, uint64_t conn_id, struct fa_buf *text)
{
    (void)arg;
    if (refuse_sends)
        return FA_ERR_RATE_LIMIT;
    assert_true(nev < MAX_EV);
    evs[nev] = (struct ev){.conn = conn_id};
    snprintf(evs[nev].text, sizeof evs[nev].text, "%.*s", (int)text->n, (const char *)text->p);
    nev++;
    fa_buf_fini(text);
    return FA_OK;
}

static void io_close(void *arg, uint64_t conn_id, int code, const char *reason)
{
    (void)arg;
    assert_true(nev < MAX_EV);
    evs[nev] = (struct ev){.conn = conn_id, .close = true, .code = code};
    snprintf(evs[nev].text, sizeof evs[nev].text, "%s", reason);
    nev++;
}

static struct ws_conn *io_find(void *arg, uint64_t conn_id)
{
    (void)arg;
    for (int i = 0; i < 16; i++)
        if (live[i].c != NULL && live[i].id == conn_id)
            return live[i].c;
    return NULL;
}

static struct ws_conn *open_conn(struct ws_ctx *ws, uint64_t id, const char *path)
{
    struct ws_conn *c = ws_open(ws, id, path, "10.0.0.9");
    assert_non_null(c);
    for (int i = 0; i < 16; i++) {
        if (live[i].c == NULL) {
            live[i].id = id;
            live[i].c = c;
            return c;
        }
    }
    fail_msg("too many connections");
    return NULL;
}

static void close_conn(struct ws_conn *c)
{
    for (int i = 0; i < 16; i++)
        if (live[i].c == c)
            live[i].c = NULL;
    ws_closed(c, 0);
}

static void send_text(struct ws_conn *c, const char *text)
{
    ws_rx(c, text, strlen(text), true, true, false);
}

/* The last event of conn: its JSON "type" and "code" when it is a message. */
static json_t *last_json(uint64_t conn)
{
    for (int i = nev - 1; i >= 0; i--) {
        if (evs[i].conn == conn && !evs[i].close) {
            json_t *o = json_loads(evs[i].text, 0, NULL);
            assert_non_null(o);
            return o;
        }
    }
    fail_msg("no message for conn %llu", (unsigned long long)conn);
    return NULL;
}

static void expect_error(uint64_t conn, int code, const char *word)
{
    json_t *o = last_json(conn);
    if (strcmp(json_string_value(json_object_get(o, "type")), "error") != 0 ||
        json_integer_value(json_object_get(o, "code")) != code ||
        strstr(json_string_value(json_object_get(o, "error")), word) == NULL)
        fail_msg("expected error %d '%s', got %s", code, word, json_dumps(o, 0));
    json_decref(o);
}

static int close_code(uint64_t conn)
{
    for (int i = nev - 1; i >= 0; i--)
        if (evs[i].conn == conn && evs[i].close)
            return evs[i].code;
    return 0;
}

static int count(uint64_t conn, bool closes)
{
    int n = 0;
    for (int i = 0; i < nev; i++)
        n += evs[i].conn == conn && evs[i].close == closes;
    return n;
}

/* ---- the app ---- */

struct cap {
    int n;
    struct app_reply r;
};

static void capture(void *arg, const struct app_reply *r)
{
    struct cap *c = arg;
    c->n++;
    c->r = *r;
}

static struct app_config app_cfg(void)
{
    return (struct app_config){.data_dir = data_dir,
                               .master_key = MASTER,
                               .no_engine = true,
                               .workers = 1,
                               .kdf_t_cost = 1,
                               .kdf_m_cost_kib = 64,
                               .session_ttl_s = 60,
                               .now_ms = wall_fn};
}

static void pump(struct app *app, int *counter, int want)
{
    for (int i = 0; i < 300 && *counter < want; i++)
        app_wait(app, 100);
    assert_int_equal(*counter, want);
}

/* A new session of `type`; writes "/ws/auth/process-image/<token>/". */
static void new_session(struct app *app, enum app_session_type type, const char *user,
                        char path[128])
{
    struct cap c = {0};
    struct app_session_req req = {.type = type,
                                  .user_id = user,
                                  .require_liveness = false,
                                  .min_frames_required = 3,
                                  .required_blinks = APP_DEFAULT};
    assert_int_equal(app_session_create(app, client.client_id, &req, 1, capture, &c), FA_OK);
    pump(app, &c.n, 1);
    assert_int_equal(c.r.rc, FA_OK);
    snprintf(path, 128, WS_PATH_PREFIX "%s/", c.r.u.session.session_token);
}

struct fix {
    struct app *app;
    struct ws_ctx *ws;
};

static int setup(void **state)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/fa_wsproto_XXXXXX");
    if (mkdtemp(data_dir) == NULL)
        return -1;
    struct app_config cfg = app_cfg();
    struct app_admin *ad = NULL;
    if (app_admin_open(&cfg, &ad, NULL) != FA_OK)
        return -1;
    enum fa_status rc = app_admin_client_create(ad, "proto", NULL, &client);
    app_admin_close(ad);
    if (rc != FA_OK)
        return -1;
    struct fix *f = calloc(1, sizeof *f);
    struct fa_errinfo info = {{0}};
    if (app_new(&cfg, &f->app, &info) != FA_OK)
        return -1;
    struct ws_config wc = {.max_message_bytes = 4096, .mono_ms = mono_fn};
    struct ws_io io = {.send = io_send, .close = io_close, .find = io_find};
    f->ws = ws_new(f->app, &wc, &io);
    *state = f;
    return f->ws != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    for (int i = 0; i < 16; i++)
        if (live[i].c != NULL)
            close_conn(live[i].c);
    ws_free(f->ws);
    app_free(f->app);
    free(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_connect(void **state)
{
    struct fix *f = *state;
    static const char *const bad[] = {"/ws/auth/process-image/NoSuchToken0123456789/",
                                      "/ws/auth/process-image/",
                                      "/ws/auth/process-image/a%20b/",
                                      "/ws/auth/process-image/../x/",
                                      "/",
                                      "",
                                      NULL};
    uint64_t id = 100;
    for (int i = 0; bad[i] != NULL; i++, id++) {
        struct ws_conn *c = open_conn(f->ws, id, bad[i]);
        expect_error(id, 4404, "not found");
        assert_int_equal(close_code(id), 4404);
        assert_true(ws_closing(c));
        send_text(c, "{\"type\":\"ping\"}"); /* ignored once closing */
        assert_int_equal(count(id, false), 1);
        close_conn(c);
    }
    char path[128];
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-connect", path);
    struct ws_conn *c = open_conn(f->ws, 1, path);
    json_t *o = last_json(1);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "connection_established");
    assert_string_equal(json_string_value(json_object_get(o, "session_type")), "enrollment");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "active");
    assert_int_equal(json_integer_value(json_object_get(o, "target_samples")), 3);
    assert_non_null(strstr(path, json_string_value(json_object_get(o, "session_token"))));
    assert_string_equal(json_string_value(json_object_get(o, "expires_at")),
                        "2025-10-27T12:35:56.000Z"); /* T0 + 60 s */
    json_decref(o);
    assert_int_equal(close_code(1), 0);
    /* the same token again, while open and after close: 4403 */
    struct ws_conn *c2 = open_conn(f->ws, 2, path);
    assert_int_equal(close_code(2), 4403);
    close_conn(c2);
    close_conn(c);
    /* no trailing slash is fine, but the token is spent */
    path[strlen(path) - 1] = 0;
    c = open_conn(f->ws, 3, path);
    assert_int_equal(close_code(3), 4403);
    close_conn(c);
}

static void test_messages(void **state)
{
    struct fix *f = *state;
    char path[128];
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-msg", path);
    struct ws_conn *c = open_conn(f->ws, 10, path);
    send_text(c, "{\"type\":\"ping\"}");
    json_t *o = last_json(10);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "pong");
    json_decref(o);
    /* one message in three fragments */
    ws_rx(c, "{\"ty", 4, true, false, false);
    ws_rx(c, "pe\":\"pi", 7, false, false, false);
    ws_rx(c, "ng\"}", 4, false, true, false);
    o = last_json(10);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "pong");
    json_decref(o);
    mono_now += 1000;
    send_text(c, "{oops");
    expect_error(10, 4400, "JSON");
    send_text(c, "{\"type\":\"video\"}");
    expect_error(10, 4400, "unknown message type");
    send_text(c, "{\"type\":\"frame\"}");
    expect_error(10, 4400, "'image'");
    ws_rx(c, "\x01\x02", 2, true, true, true);
    expect_error(10, 4400, "binary");
    assert_int_equal(close_code(10), 0); /* still open */
    /* at the limit (4096) is a message; one byte more closes 4400 */
    char *big = malloc(4200);
    memset(big, ' ', 4200);
    memcpy(big, "{\"type\":\"ping\"}", 15);
    ws_rx(c, big, 2000, true, false, false);
    ws_rx(c, big + 2000, 2096, false, true, false);
    o = last_json(10);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "pong");
    json_decref(o);
    ws_rx(c, big, 4096, true, false, false);
    ws_rx(c, big, 1, false, false, false);
    free(big);
    expect_error(10, 4400, "exceeds 4096");
    assert_int_equal(close_code(10), 4400);
    close_conn(c);
    assert_true(ws_stats(f->ws)->oversized >= 1);
    assert_true(ws_stats(f->ws)->invalid >= 4);
}

static void test_frames_throttle_and_failure(void **state)
{
    struct fix *f = *state;
    char path[128];
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-frame", path);
    struct ws_conn *c = open_conn(f->ws, 20, path);
    const char *frame = "{\"type\":\"frame\",\"image\":\"data:image/jpeg;base64,/9j/4AAQ\"}";
    mono_now += 1000;
    send_text(c, frame); /* accepted: goes to the app */
    int before = count(20, false);
    mono_now += 50;
    send_text(c, frame); /* 50 ms later: dropped */
    expect_error(20, 4429, "rate limit");
    assert_int_equal(count(20, false), before + 1);
    assert_int_equal(close_code(20), 0);
    /* the first frame fails inside the server (no engine): close 4500 */
    int n0 = nev;
    for (int i = 0; i < 100 && close_code(20) == 0; i++)
        app_wait(f->app, 100);
    assert_true(nev > n0);
    assert_int_equal(close_code(20), 4500);
    expect_error(20, 4500, "engine");
    close_conn(c);

    /* a flood: closes 4429 after the burst */
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-flood", path);
    c = open_conn(f->ws, 21, path);
    for (int i = 0; i < 40 && close_code(21) == 0; i++)
        send_text(c, frame);
    assert_int_equal(close_code(21), 4429);
    expect_error(21, 4429, "flooding");
    close_conn(c);
    assert_true(ws_stats(f->ws)->frames_throttled >= 19);
}

static void test_late_reply_is_dropped(void **state)
{
    struct fix *f = *state;
    char path[128];
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-late", path);
    struct ws_conn *c = open_conn(f->ws, 30, path);
    mono_now += 1000;
    send_text(c, "{\"type\":\"frame\",\"image\":\"AAAA\"}");
    int n0 = nev;
    close_conn(c); /* gone before the worker answers */
    for (int i = 0; i < 5; i++)
        app_wait(f->app, 50);
    assert_int_equal(nev, n0); /* nothing sent, nothing closed, no crash */
}

static void test_expiry_shutdown_and_unread(void **state)
{
    struct fix *f = *state;
    char p1[128], p2[128], p3[128];
    new_session(f->app, APP_SESSION_AUTHENTICATION, NULL, p1);
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-exp", p2);
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-unread", p3);
    struct ws_conn *c1 = open_conn(f->ws, 40, p1);
    json_t *o = last_json(40);
    assert_string_equal(json_string_value(json_object_get(o, "session_type")), "authentication");
    json_decref(o);
    ws_tick(c1);
    assert_int_equal(close_code(40), 0);
    /* a peer that does not read its replies is closed 4429 */
    struct ws_conn *c3 = open_conn(f->ws, 42, p3);
    refuse_sends = true;
    send_text(c3, "{\"type\":\"ping\"}");
    refuse_sends = false;
    assert_int_equal(close_code(42), 4429);
    close_conn(c3);
    /* shutdown: 1001 */
    ws_shutdown(c1);
    assert_int_equal(close_code(40), 1001);
    ws_shutdown(c1); /* once only */
    assert_int_equal(count(40, true), 1);
    close_conn(c1);
    /* expiry: on the tick while connected, and at connect */
    struct ws_conn *c2 = open_conn(f->ws, 41, p2);
    atomic_fetch_add(&wall_now, 61 * 1000);
    ws_tick(c2);
    assert_int_equal(close_code(41), 4401);
    expect_error(41, 4401, "expired");
    close_conn(c2);
    char p4[128];
    new_session(f->app, APP_SESSION_ENROLLMENT, "u-exp2", p4);
    atomic_fetch_add(&wall_now, 61 * 1000);
    struct ws_conn *c4 = open_conn(f->ws, 43, p4);
    assert_int_equal(close_code(43), 4401);
    close_conn(c4);
}

int main(void)
{
    json_set_alloc_funcs(fa_malloc, fa_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_frames_throttle_and_failure),
        cmocka_unit_test(test_late_reply_is_dropped),
        cmocka_unit_test(test_expiry_shutdown_and_unread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
