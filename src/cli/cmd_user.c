/* faceauth user list|delete: the operator's view of a client's enrolled
 * users. Deleting erases the user's face template (the audit log keeps that
 * it happened, not the face). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "cli/cmd_admin.h"

static void usage(FILE *f)
{
    fputs("usage: faceauth user list CLIENT_ID [--data-dir DIR]\n"
          "       faceauth user delete CLIENT_ID USER_ID [--data-dir DIR]\n"
          "(also --client-id ID, --user-id ID). list prints one JSON object per user and\n"
          "line; delete erases the user's face data.\n",
          f);
}

static int list(const struct admin_opts *o)
{
    const char *cid = o->client_id != NULL ? o->client_id : (o->npos > 0 ? o->pos[0] : NULL);
    if (cid == NULL) {
        fprintf(stderr, "faceauth: user list needs CLIENT_ID\n");
        return 2;
    }
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    struct app_user_info *v = NULL;
    size_t n = 0;
    enum fa_status rc = app_admin_user_list(ad, cid, &v, &n);
    app_admin_close(ad);
    if (rc == FA_ERR_NOT_FOUND) {
        fprintf(stderr, "faceauth: user list: no client %s\n", cid);
        return 1;
    }
    if (rc != FA_OK)
        return admin_fail("user list", rc);
    for (size_t i = 0; i < n; i++) {
        char c[32], u[32];
        fa_iso8601_ms(v[i].created_at_ms, c);
        fa_iso8601_ms(v[i].updated_at_ms, u);
        printf("{\"user_id\":");
        admin_json_str(stdout, v[i].user_id);
        printf(",\"samples\":%d,\"created_at\":\"%s\",\"updated_at\":\"%s\"}\n", v[i].samples, c,
               u);
    }
    fa_free(v);
    return 0;
}

static int del(const struct admin_opts *o)
{
    int k = 0;
    const char *cid = o->client_id != NULL ? o->client_id : (k < o->npos ? o->pos[k++] : NULL);
    const char *uid = o->user_id != NULL ? o->user_id : (k < o->npos ? o->pos[k++] : NULL);
    if (cid == NULL || uid == NULL) {
        fprintf(stderr, "faceauth: user delete needs CLIENT_ID and USER_ID\n");
        return 2;
    }
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    enum fa_status rc = app_admin_user_delete(ad, cid, uid);
    app_admin_close(ad);
    if (rc == FA_ERR_USER_NOT_FOUND) {
        fprintf(stderr, "faceauth: user delete: client %s has no user ", cid);
        admin_json_str(stderr, uid);
        fputc('\n', stderr);
        return 1;
    }
    if (rc == FA_ERR_ARG) {
        fprintf(stderr, "faceauth: user delete: USER_ID must be 1-128 printable characters\n");
        return 2;
    }
    if (rc != FA_OK)
        return admin_fail("user delete", rc);
    printf("{\"user_id\":");
    admin_json_str(stdout, uid);
    printf(",\"deleted\":true}\n");
    return 0;
}

int cli_user_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *action = argv[1];
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0 || strcmp(action, "help") == 0) {
        usage(stdout);
        return 0;
    }
    struct admin_opts o;
    int rc = admin_parse(argc - 1, argv + 1, &o, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (strcmp(action, "list") == 0)
        return list(&o);
    if (strcmp(action, "delete") == 0)
        return del(&o);
    fprintf(stderr, "faceauth: user: unknown action '%s'\n", action);
    usage(stderr);
    return 2;
}
