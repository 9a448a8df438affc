/* Shared fixture of the app tests: a temp data dir, a fake clock, reply
 * capture, and helpers that drive the app like the loop does. Included by
 * test_app.c and test_app_engine.c (not a test itself). */
#ifndef FA_TEST_APP_COMMON_H
#define FA_TEST_APP_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>
#include <stdatomic.h>

#include "app/app.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "crypto/crypto.h"

#define T0 1761568496000LL /* 2025-10-27T12:34:56Z */
#define MASTER "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static _Atomic int64_t fake_now = T0;
static char data_dir[256];

static int64_t now_fn(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

__attribute__((unused)) static void advance_s(int64_t s)
{
    atomic_fetch_add(&fake_now, s * 1000);
}

__attribute__((unused)) static void advance_ms(int64_t ms)
{
    atomic_fetch_add(&fake_now, ms);
}

static struct app_config base_config(void)
{
    struct app_config c = {
        .data_dir = data_dir,
        .master_key = MASTER,
        .no_engine = true,
        .workers = 2,
        .kdf_t_cost = 1,
        .kdf_m_cost_kib = 64,
        .now_ms = now_fn,
    };
    return c;
}

static int make_data_dir(void)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/fa_app_XXXXXX");
    return mkdtemp(data_dir) != NULL ? 0 : -1;
}

static int remove_data_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A copy of one reply, with the borrowed strings copied. */
struct cap {
    int n;
    struct app_reply r;
    bool has_result;
    struct app_result res;
    char payload[8192];
};

static void capture(void *arg, const struct app_reply *r)
{
    struct cap *c = arg;
    c->n++;
    c->r = *r;
    c->has_result = false;
    const struct app_result *res = NULL;
    if (r->op == APP_OP_FRAME && r->rc == FA_OK && r->u.frame.completed)
        res = r->u.frame.result;
    else if ((r->op == APP_OP_SESSION_GET) && r->rc == FA_OK && r->u.session.has_result)
        res = &r->u.session.result;
    if (res != NULL) {
        c->has_result = true;
        c->res = *res;
        snprintf(c->payload, sizeof c->payload, "%s", res->encrypted_payload);
        c->res.encrypted_payload = c->payload;
    }
    if (r->op == APP_OP_FRAME)
        c->r.u.frame.result = c->has_result ? &c->res : NULL;
}

/* Pump the app until c has `want` replies (or fail after 60 s). */
static void wait_for(struct app *app, struct cap *c, int want)
{
    for (int i = 0; i < 600 && c->n < want; i++)
        app_wait(app, 100);
    assert_int_equal(c->n, want);
}

static struct app *new_app(const struct app_config *cfg)
{
    struct app *app = NULL;
    struct fa_errinfo info = {{0}};
    enum fa_status rc = app_new(cfg, &app, &info);
    if (rc != FA_OK)
        fprintf(stderr, "app_new: %s %s\n", fa_status_name(rc), info.what);
    assert_int_equal(rc, FA_OK);
    return app;
}

__attribute__((unused)) static void make_client(const struct app_config *cfg, const char *name,
                                                const char *method, struct app_client_secret *out)
{
    struct app_admin *ad = NULL;
    assert_int_equal(app_admin_open(cfg, &ad, NULL), FA_OK);
    assert_int_equal(app_admin_client_create(ad, name, method, out), FA_OK);
    app_admin_close(ad);
}

/* Log in and return the client's JWT in tok. */
__attribute__((unused)) static void login(struct app *app, const struct app_client_secret *cs,
                                          char *tok, size_t n)
{
    struct cap c = {0};
    assert_int_equal(app_client_login(app, cs->api_key, cs->secret_key, "10.0.0.1", 1, capture, &c),
                     FA_OK);
    wait_for(app, &c, 1);
    assert_int_equal(c.r.rc, FA_OK);
    snprintf(tok, n, "%s", c.r.u.login.token);
}

/* Create a session; returns the reply (rc may be an error). */
static struct cap create_session(struct app *app, const char *client_id, enum app_session_type type,
                                 const char *user_id, bool liveness, int frames, int blinks,
                                 bool replace)
{
    struct cap c = {0};
    struct app_session_req req = {.type = type,
                                  .user_id = user_id,
                                  .require_liveness = liveness,
                                  .min_frames_required = frames,
                                  .required_blinks = blinks,
                                  .replace = replace};
    assert_int_equal(app_session_create(app, client_id, &req, 7, capture, &c), FA_OK);
    wait_for(app, &c, 1);
    return c;
}

/* Decrypt a result payload with the client's secret key. */
__attribute__((unused)) static void open_payload(const struct app_client_secret *cs,
                                                 const struct app_result *r, struct fa_buf *plain)
{
    uint8_t key[32];
    enum crypto_method m;
    crypto_result_key(cs->secret_key, key);
    assert_int_equal(crypto_method_parse(r->encryption_method, &m), FA_OK);
    assert_int_equal(
        crypto_envelope_open(
            m, key, fa_bytes_of(r->encrypted_payload, strlen(r->encrypted_payload)), plain),
        FA_OK);
}

#endif
