/* Method + path routing of the REST API. One table: a path is either fixed
 * or a fixed prefix followed by one parameter (a session token, a user_id);
 * the trailing '/' that the Django original requires is optional here. A
 * path that matches with the wrong method is a 405 with Allow, not a 404. */
#include "http/http.h"

#include <string.h>

#include "http/priv.h"

struct route {
    enum http_route_id id;
    const char *name;
    enum http_method method;
    const char *allow;  /* the Allow header for a 405 */
    const char *path;   /* fixed path, or the prefix before the parameter */
    bool param;         /* a parameter follows the prefix */
    bool param_slashes; /* the parameter may contain '/' (user ids) */
};

static const struct route routes[] = {
    {HTTP_ROUTE_CLIENT_LOGIN, "client_login", HTTP_METHOD_POST, "POST", "/api/auth/client", false,
     false},
    {HTTP_ROUTE_ENROLLMENT, "enrollment", HTTP_METHOD_POST, "POST", "/api/auth/enrollment", false,
     false},
    {HTTP_ROUTE_AUTHENTICATION, "authentication", HTTP_METHOD_POST, "POST",
     "/api/auth/authentication", false, false},
    {HTTP_ROUTE_SESSION_GET, "session_get", HTTP_METHOD_GET, "GET", "/api/auth/sessions/", true,
     false},
    {HTTP_ROUTE_USER_DELETE, "user_delete", HTTP_METHOD_DELETE, "DELETE", "/api/users/", true,
     true},
    {HTTP_ROUTE_HEALTHZ, "healthz", HTTP_METHOD_GET, "GET", "/healthz", false, false},
    {HTTP_ROUTE_METRICS, "metrics", HTTP_METHOD_GET, "GET", "/metrics", false, false},
};

/* Does `path` match route r? Writes the parameter when r has one. */
static bool path_matches(const struct route *r, const char *path, char param[HTTP_PARAM_MAX])
{
    size_t plen = strlen(r->path);
    if (strncmp(path, r->path, plen) != 0)
        return false;
    const char *rest = path + plen;
    size_t n = strlen(rest);
    if (!r->param)
        return n == 0 || (n == 1 && rest[0] == '/');
    if (n > 0 && rest[n - 1] == '/')
        n--; /* the optional trailing slash */
    if (n == 0 || n >= HTTP_PARAM_MAX)
        return false;
    if (!r->param_slashes && memchr(rest, '/', n) != NULL)
        return false;
    memcpy(param, rest, n);
    param[n] = 0;
    return true;
}

bool http_route_match(enum http_method m, const char *path, enum http_route_id *id, bool *method_ok,
                      const char **allow, char param[HTTP_PARAM_MAX])
{
    if (path == NULL)
        return false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        if (!path_matches(r, path, param))
            continue;
        *id = r->id;
        *method_ok = r->method == m;
        *allow = r->allow;
        return true;
    }
    return false;
}

const char *http_route_name(enum http_method m, const char *path, bool *method_ok)
{
    char param[HTTP_PARAM_MAX];
    enum http_route_id id;
    const char *allow;
    bool ok = false;
    if (!http_route_match(m, path, &id, &ok, &allow, param))
        return NULL;
    if (method_ok != NULL)
        *method_ok = ok;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == id)
            return routes[i].name;
    return NULL;
}
