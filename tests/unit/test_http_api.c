/* The REST front (http/) against a real app (no face engine, temp data dir):
 * requests go in through http_handle as the daemon hands them over, responses
 * are caught from the respond callback (synchronous ones at once, the app's
 * after app_wait). Covers R1 login (400 naming the field, 401, 200 with a
 * JWT), R2/R3 creation (401 without/with a bad bearer, 400 naming every bad
 * field, 404 for verifying an unknown user, 201 with websocket_url from the
 * Host header, --public-url, an odd Host), status for the owner only, user
 * deletion, 404/405/413, malformed and deep bodies, /healthz (503 while
 * draining), /metrics with the daemon's hook, and allocation failures on the
 * synchronous paths (a clean 500 or the right answer, no leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "app/app.h"
#include "base/alloc.h"
#include "http/http.h"

#define MASTER "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static char data_dir[64];
static struct app_client_secret ca, cb;
static struct app *app;
static char bearer_a[APP_JWT_MAX + 16], bearer_b[APP_JWT_MAX + 16];

/* ---- the respond callback ---- */

static int nresp;
static struct {
    uint64_t conn;
    int status;
    int64_t retry_after;
    const char *allow, *ctype;
    char body[16384];
} last;

static void respond(void *arg, uint64_t conn_id, struct http_resp *r)
{
    (void)arg;
    nresp++;
    last.conn = conn_id;
    last.status = r->status;
    last.retry_after = r->retry_after_s;
    last.allow = r->allow;
    last.ctype = r->content_type;
    snprintf(last.body, sizeof last.body, "%.*s", (int)r->body.n, (const char *)r->body.p);
    fa_buf_fini(&r->body);
}

static void hook(void *arg, struct fa_buf *out)
{
    (void)arg;
    fa_buf_puts(out, "faceauth_test_hook 1\n");
}

/* Send one request and wait for its response; returns the parsed body
 * (NULL for a non-JSON body). */
static json_t *req(struct http_ctx *h, enum http_method m, const char *path, const char *auth,
                   const char *body, const char *host)
{
    static uint64_t conn = 1000;
    int before = nresp;
    struct http_req r = {.conn_id = ++conn,
                         .method = m,
                         .path = path,
                         .authorization = auth,
                         .host = host,
                         .peer_ip = "10.9.8.7",
                         .body = fa_bytes_of(body ? body : "", body ? strlen(body) : 0)};
    http_handle(h, &r);
    for (int i = 0; i < 300 && nresp == before; i++)
        app_wait(app, 100);
    assert_int_equal(nresp, before + 1);
    assert_int_equal(last.conn, conn);
    if (last.ctype == NULL || strncmp(last.ctype, "application/json", 16) != 0)
        return NULL;
    json_t *o = json_loads(last.body, 0, NULL);
    if (o == NULL)
        fail_msg("not JSON: %s", last.body);
    return o;
}

static void expect_err(json_t *o, int status, const char *field)
{
    if (last.status != status)
        fail_msg("status %d, want %d: %s", last.status, status, last.body);
    assert_int_equal(json_integer_value(json_object_get(o, "code")), status);
    assert_true(json_string_length(json_object_get(o, "error")) > 0);
    assert_true(json_string_length(json_object_get(o, "reason")) > 0);
    if (field != NULL) {
        json_t *f = json_object_get(o, "field");
        if (!json_is_string(f) || strcmp(json_string_value(f), field) != 0)
            fail_msg("field: want %s: %s", field, last.body);
    }
    json_decref(o);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- fixture ---- */

static struct app_config cfg(void)
{
    return (struct app_config){.data_dir = data_dir,
                               .master_key = MASTER,
                               .no_engine = true,
                               .workers = 1,
                               .kdf_t_cost = 1,
                               .kdf_m_cost_kib = 64};
}

static struct http_ctx *new_ctx(const char *public_url)
{
    struct http_config hc = {.public_url = public_url, .listen = "127.0.0.1:8000"};
    struct http_ctx *h = http_new(app, &hc, respond, NULL);
    assert_non_null(h);
    return h;
}

static void login(struct http_ctx *h, const struct app_client_secret *cs, char *out, size_t n)
{
    char body[256];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\",\"secret_key\":\"%s\"}", cs->api_key,
             cs->secret_key);
    json_t *o = req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, body, NULL);
    assert_int_equal(last.status, 200);
    assert_string_equal(str(o, "client_id"), cs->client_id);
    assert_string_equal(str(o, "token_type"), "Bearer");
    assert_int_equal(strlen(str(o, "expires_at")), 24); /* 2025-10-27T12:34:56.789Z */
    snprintf(out, n, "Bearer %s", str(o, "token"));
    json_decref(o);
}

static int setup(void **state)
{
    (void)state;
    snprintf(data_dir, sizeof data_dir, "/tmp/fa_httpapi_XXXXXX");
    if (mkdtemp(data_dir) == NULL)
        return -1;
    struct app_config c = cfg();
    struct app_admin *ad = NULL;
    if (app_admin_open(&c, &ad, NULL) != FA_OK)
        return -1;
    enum fa_status rc = app_admin_client_create(ad, "A", NULL, &ca);
    if (rc == FA_OK)
        rc = app_admin_client_create(ad, "B", NULL, &cb);
    app_admin_close(ad);
    if (rc != FA_OK || app_new(&c, &app, NULL) != FA_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    app_free(app);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void test_routing_and_ops(void **state)
{
    (void)state;
    struct http_ctx *h = new_ctx(NULL);
    expect_err(req(h, HTTP_METHOD_GET, "/nope", NULL, NULL, NULL), 404, NULL);
    expect_err(req(h, HTTP_METHOD_GET, "/api/auth/client/", NULL, NULL, NULL), 405, NULL);
    assert_string_equal(last.allow, "POST");
    json_t *o = req(h, HTTP_METHOD_GET, "/healthz", NULL, NULL, NULL);
    assert_int_equal(last.status, 200);
    assert_string_equal(str(o, "status"), "ok");
    json_decref(o);
    http_set_draining(h, true);
    o = req(h, HTTP_METHOD_GET, "/healthz", NULL, NULL, NULL);
    assert_int_equal(last.status, 503);
    json_decref(o);
    http_set_draining(h, false);
    http_set_metrics_hook(h, hook, NULL);
    assert_null(req(h, HTTP_METHOD_GET, "/metrics", NULL, NULL, NULL));
    assert_int_equal(last.status, 200);
    assert_non_null(strstr(last.ctype, "text/plain"));
    assert_non_null(strstr(last.body, "# TYPE faceauth_frames_processed_total counter\n"));
    assert_non_null(strstr(last.body, "faceauth_sessions_created_total{type=\"enrollment\"} "));
    assert_non_null(strstr(last.body, "faceauth_http_responses_total{code=\"4xx\"} 2\n"));
    assert_non_null(strstr(last.body, "faceauth_test_hook 1\n"));
    http_free(h);
}

static void test_bodies(void **state)
{
    (void)state;
    struct http_ctx *h = new_ctx(NULL);
    json_t *o = req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, "{bad", NULL);
    assert_string_equal(str(o, "reason"), "json");
    expect_err(o, 400, NULL);
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, "42", NULL), 400, NULL);
    expect_err(
        req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", NULL),
        400, NULL);
    char *big = malloc(HTTP_MAX_BODY_DEFAULT + 2);
    memset(big, ' ', HTTP_MAX_BODY_DEFAULT + 1);
    big[HTTP_MAX_BODY_DEFAULT + 1] = 0;
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, big, NULL), 413, NULL);
    free(big);
    struct http_resp r;
    assert_int_equal(http_error_response(411, "length required", &r), FA_OK);
    assert_int_equal(r.status, 411);
    assert_non_null(strstr((const char *)r.body.p, "\"error\":\"length required\""));
    fa_buf_fini(&r.body);
    http_free(h);
}

static void test_login(void **state)
{
    (void)state;
    struct http_ctx *h = new_ctx(NULL);
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, "{}", NULL), 400, "api_key");
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL, "{\"api_key\":\"x\"}", NULL),
               400, "secret_key");
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL,
                   "{\"api_key\":\"x\\u0000y\",\"secret_key\":\"s\"}", NULL),
               400, NULL);
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/client/", NULL,
                   "{\"api_key\":\"ak_nobody\",\"secret_key\":\"sk_x\"}", NULL),
               401, NULL);
    login(h, &ca, bearer_a, sizeof bearer_a);
    login(h, &cb, bearer_b, sizeof bearer_b);
    http_free(h);
}

static void test_session_create(void **state)
{
    (void)state;
    struct http_ctx *h = new_ctx(NULL);
    const char *E = "/api/auth/enrollment/";
    expect_err(req(h, HTTP_METHOD_POST, E, NULL, "{\"user_id\":\"u\"}", NULL), 401, NULL);
    expect_err(req(h, HTTP_METHOD_POST, E, "Bearer x.y.z", "{\"user_id\":\"u\"}", NULL), 401, NULL);
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"user_id\":1}", "user_id"},
        {"{\"user_id\":\"\"}", "user_id"},
        {"{\"user_id\":\"a\\nb\"}", "user_id"},
        {"{\"user_id\":\"u\",\"require_liveness\":1}", "require_liveness"},
        {"{\"user_id\":\"u\",\"replace\":\"yes\"}", "replace"},
        {"{\"user_id\":\"u\",\"metadata\":5}", "metadata"},
        {"{\"user_id\":\"u\",\"metadata\":{\"min_frames_required\":0}}",
         "metadata.min_frames_required"},
        {"{\"user_id\":\"u\",\"metadata\":{\"min_frames_required\":99999999999}}",
         "metadata.min_frames_required"},
        {"{\"user_id\":\"u\",\"metadata\":{\"min_frames_required\":true}}",
         "metadata.min_frames_required"},
        {"{\"user_id\":\"u\",\"metadata\":{\"required_blinks\":6}}", "metadata.required_blinks"},
        {"{\"user_id\":\"u\",\"metadata\":{\"required_blinks\":1.0}}", "metadata.required_blinks"},
        {"{}", "user_id"},
        {"", "user_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_err(req(h, HTTP_METHOD_POST, E, bearer_a, bad[i].body, NULL), 400, bad[i].field);
    expect_err(req(h, HTTP_METHOD_POST, "/api/auth/authentication/", bearer_a,
                   "{\"user_id\":\"ghost\"}", NULL),
               404, NULL);

    json_t *o = req(h, HTTP_METHOD_POST, E, bearer_a,
                    "{\"user_id\":\"alice\",\"require_liveness\":false,"
                    "\"metadata\":{\"min_frames_required\":5,\"required_blinks\":0},"
                    "\"unknown\":\"ignored\"}",
                    "auth.example.org:8443");
    assert_int_equal(last.status, 201);
    char url[256];
    snprintf(url, sizeof url, "ws://auth.example.org:8443/ws/auth/process-image/%s/",
             str(o, "session_token"));
    assert_string_equal(str(o, "websocket_url"), url);
    assert_string_equal(str(o, "status"), "pending");
    assert_string_equal(str(o, "session_type"), "enrollment");
    assert_int_equal(json_integer_value(json_object_get(o, "target_samples")), 5);
    assert_true(json_is_false(json_object_get(o, "require_liveness")));
    assert_int_equal(strlen(str(o, "enrollment_id")), 36);
    assert_non_null(strstr(str(o, "message"), "Enrollment session created"));
    char token[APP_TOKEN_MAX];
    snprintf(token, sizeof token, "%s", str(o, "session_token"));
    json_decref(o);

    /* a Host header that is not a host falls back to the listen address */
    o = req(h, HTTP_METHOD_POST, "/api/auth/authentication/", bearer_a, "{}", "evil/\r\nx");
    assert_int_equal(last.status, 201);
    assert_int_equal(strncmp(str(o, "websocket_url"), "ws://127.0.0.1:8000/ws/", 23), 0);
    assert_string_equal(str(o, "mode"), "identification");
    assert_true(json_is_null(json_object_get(o, "user_id")));
    json_decref(o);

    /* status: the owner sees it, another client does not */
    char path[160];
    snprintf(path, sizeof path, "/api/auth/sessions/%s/", token);
    o = req(h, HTTP_METHOD_GET, path, bearer_a, NULL, NULL);
    assert_int_equal(last.status, 200);
    assert_string_equal(str(o, "session_token"), token);
    assert_string_equal(str(o, "user_id"), "alice");
    assert_true(json_is_null(json_object_get(o, "result")));
    assert_true(json_is_null(json_object_get(o, "finished_at")));
    assert_int_equal(json_integer_value(json_object_get(o, "frames_processed")), 0);
    json_decref(o);
    expect_err(req(h, HTTP_METHOD_GET, path, bearer_b, NULL, NULL), 404, NULL);
    expect_err(req(h, HTTP_METHOD_GET, path, NULL, NULL, NULL), 401, NULL);
    http_free(h);

    h = new_ctx("https://auth.example.com/");
    o = req(h, HTTP_METHOD_POST, E, bearer_a, "{\"user_id\":\"bob\",\"require_liveness\":false}",
            "ignored:1");
    assert_int_equal(strncmp(str(o, "websocket_url"), "wss://auth.example.com/ws/auth/", 31), 0);
    json_decref(o);
    http_free(h);
    struct http_config bad_url = {.public_url = "ftp://x"};
    assert_null(http_new(app, &bad_url, respond, NULL));
}

/* A sample's value in GET /metrics. */
static long metric(struct http_ctx *h, const char *sample)
{
    assert_null(req(h, HTTP_METHOD_GET, "/metrics", NULL, NULL, NULL));
    const char *p = strstr(last.body, sample);
    assert_non_null(p);
    return strtol(p + strlen(sample), NULL, 10);
}

static void test_user_delete(void **state)
{
    (void)state;
    struct http_ctx *h = new_ctx(NULL);
    /* errors found by the edge and by the app are both counted, once */
    long input0 = metric(h, "faceauth_errors_total{class=\"input\"} ");
    long nf0 = metric(h, "faceauth_errors_total{class=\"not_found\"} ");
    expect_err(req(h, HTTP_METHOD_DELETE, "/api/users/alice/", NULL, NULL, NULL), 401, NULL);
    expect_err(req(h, HTTP_METHOD_DELETE, "/api/users/alice/", bearer_a, NULL, NULL), 404, NULL);
    expect_err(req(h, HTTP_METHOD_DELETE, "/api/users/tab\there/", bearer_a, NULL, NULL), 400,
               "user_id");
    assert_int_equal(metric(h, "faceauth_errors_total{class=\"input\"} "), input0 + 1);
    assert_int_equal(metric(h, "faceauth_errors_total{class=\"not_found\"} "), nf0 + 1);
    http_free(h);
}

/* Allocation failures on the synchronous paths: each request still gets
 * exactly one response (the right one, or a 500), and nothing leaks. */
static void test_alloc_failures(void **state)
{
    (void)state;
    static const struct {
        enum http_method m;
        const char *path, *body;
        bool auth;
        int status;
    } reqs[] = {
        {HTTP_METHOD_GET, "/healthz", NULL, false, 200},
        {HTTP_METHOD_GET, "/nothing", NULL, false, 404},
        {HTTP_METHOD_POST, "/api/auth/client/", "{\"api_key\":1}", false, 400},
        {HTTP_METHOD_POST, "/api/auth/enrollment/", "{\"user_id\":\"u\",\"metadata\":[]}", true,
         400},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        for (long n = 0;; n++) {
            struct http_ctx *h = new_ctx(NULL);
            int before = nresp;
            struct http_req r = {.conn_id = 7,
                                 .method = reqs[i].m,
                                 .path = reqs[i].path,
                                 .authorization = reqs[i].auth ? bearer_a : NULL,
                                 .body = fa_bytes_of(reqs[i].body ? reqs[i].body : "",
                                                     reqs[i].body ? strlen(reqs[i].body) : 0)};
            fa_alloc_fail_after(n);
            http_handle(h, &r);
            fa_alloc_fail_reset();
            http_free(h);
            assert_int_equal(nresp, before + 1);
            if (last.status == reqs[i].status)
                break;
            if (last.status != 500 && last.status != 400)
                fail_msg("%s with %ld allocations: %d %s", reqs[i].path, n, last.status, last.body);
            assert_true(n < 1000);
        }
    }
}

int main(void)
{
    json_set_alloc_funcs(fa_malloc, fa_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_ops), cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_login),           cmocka_unit_test(test_session_create),
        cmocka_unit_test(test_user_delete),     cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
