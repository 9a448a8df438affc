/* http/router.c and the status mapping of http/reply.c: every route with and
 * without its trailing slash, parameters (empty, too long, with '/'), wrong
 * methods (405 with Allow), unknown paths, and the one class -> HTTP status
 * table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/priv.h"

static void expect_route(enum http_method m, const char *path, enum http_route_id want,
                         bool method_ok, const char *param)
{
    char p[HTTP_PARAM_MAX] = "";
    enum http_route_id id = HTTP_ROUTE_NONE;
    bool ok = false;
    const char *allow = NULL;
    if (!http_route_match(m, path, &id, &ok, &allow, p))
        fail_msg("%s: no route", path);
    if (id != want || ok != method_ok)
        fail_msg("%s: route %d ok %d, want %d %d", path, id, ok, want, method_ok);
    assert_non_null(allow);
    if (param != NULL)
        assert_string_equal(p, param);
}

static void expect_none(enum http_method m, const char *path)
{
    char p[HTTP_PARAM_MAX];
    enum http_route_id id;
    bool ok;
    const char *allow;
    if (http_route_match(m, path, &id, &ok, &allow, p))
        fail_msg("%s: matched route %d", path != NULL ? path : "(null)", id);
}

static void test_routes(void **state)
{
    (void)state;
    expect_route(HTTP_METHOD_POST, "/api/auth/client/", HTTP_ROUTE_CLIENT_LOGIN, true, NULL);
    expect_route(HTTP_METHOD_POST, "/api/auth/client", HTTP_ROUTE_CLIENT_LOGIN, true, NULL);
    expect_route(HTTP_METHOD_POST, "/api/auth/enrollment/", HTTP_ROUTE_ENROLLMENT, true, NULL);
    expect_route(HTTP_METHOD_POST, "/api/auth/authentication/", HTTP_ROUTE_AUTHENTICATION, true,
                 NULL);
    expect_route(HTTP_METHOD_GET, "/api/auth/sessions/abc_DEF-123/", HTTP_ROUTE_SESSION_GET, true,
                 "abc_DEF-123");
    expect_route(HTTP_METHOD_GET, "/api/auth/sessions/abc", HTTP_ROUTE_SESSION_GET, true, "abc");
    expect_route(HTTP_METHOD_DELETE, "/api/users/alice/", HTTP_ROUTE_USER_DELETE, true, "alice");
    expect_route(HTTP_METHOD_DELETE, "/api/users/a/b c/", HTTP_ROUTE_USER_DELETE, true, "a/b c");
    expect_route(HTTP_METHOD_GET, "/healthz", HTTP_ROUTE_HEALTHZ, true, NULL);
    expect_route(HTTP_METHOD_GET, "/metrics/", HTTP_ROUTE_METRICS, true, NULL);
    /* the path matches, the method does not */
    expect_route(HTTP_METHOD_GET, "/api/auth/client/", HTTP_ROUTE_CLIENT_LOGIN, false, NULL);
    expect_route(HTTP_METHOD_POST, "/api/users/x/", HTTP_ROUTE_USER_DELETE, false, NULL);
    expect_route(HTTP_METHOD_OTHER, "/healthz", HTTP_ROUTE_HEALTHZ, false, NULL);
    bool ok = true;
    assert_string_equal(http_route_name(HTTP_METHOD_GET, "/api/auth/enrollment/", &ok),
                        "enrollment");
    assert_false(ok);
    assert_null(http_route_name(HTTP_METHOD_GET, "/nope", &ok));
}

static void test_no_route(void **state)
{
    (void)state;
    expect_none(HTTP_METHOD_GET, "/");
    expect_none(HTTP_METHOD_GET, "");
    expect_none(HTTP_METHOD_POST, "/api/auth/client//");
    expect_none(HTTP_METHOD_POST, "/api/auth/clientX");
    expect_none(HTTP_METHOD_POST, "/api/auth/client/extra");
    expect_none(HTTP_METHOD_GET, "/api/auth/sessions/");
    expect_none(HTTP_METHOD_GET, "/api/auth/sessions//");
    expect_none(HTTP_METHOD_GET, "/api/auth/sessions/a/b/");
    expect_none(HTTP_METHOD_DELETE, "/api/users/");
    expect_none(HTTP_METHOD_GET, "/API/AUTH/CLIENT/");
    expect_none(HTTP_METHOD_GET, NULL);
    char longp[HTTP_PARAM_MAX + 64];
    strcpy(longp, "/api/users/");
    memset(longp + 11, 'x', HTTP_PARAM_MAX);
    longp[11 + HTTP_PARAM_MAX] = 0;
    expect_none(HTTP_METHOD_DELETE, longp);
    longp[11 + HTTP_PARAM_MAX - 1] = 0; /* HTTP_PARAM_MAX - 1 characters fit */
    expect_route(HTTP_METHOD_DELETE, longp, HTTP_ROUTE_USER_DELETE, true, NULL);
}

static void test_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(http_status_of(FA_OK), 200);
    assert_int_equal(http_status_of(FA_ERR_ARG), 400);
    assert_int_equal(http_status_of(FA_ERR_JSON), 400);
    assert_int_equal(http_status_of(FA_ERR_AUTH), 401);
    assert_int_equal(http_status_of(FA_ERR_TOKEN_EXPIRED), 401);
    assert_int_equal(http_status_of(FA_ERR_FORBIDDEN), 403);
    assert_int_equal(http_status_of(FA_ERR_SESSION_NOT_FOUND), 404);
    assert_int_equal(http_status_of(FA_ERR_USER_NOT_FOUND), 404);
    assert_int_equal(http_status_of(FA_ERR_CONFLICT), 409);
    assert_int_equal(http_status_of(FA_ERR_TOO_LARGE), 413);
    assert_int_equal(http_status_of(FA_ERR_RATE_LIMIT), 429);
    assert_int_equal(http_status_of(FA_ERR_NOMEM), 500);
    assert_int_equal(http_status_of(FA_ERR_STORE), 500);
    assert_int_equal(http_status_of(FA_ERR_BUSY), 503);
    assert_int_equal(http_status_of(FA_ERR_SHUTDOWN), 503);
    assert_int_equal(http_status_of((enum fa_status) - 9999), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_no_route),
        cmocka_unit_test(test_status_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
