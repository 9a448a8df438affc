/* faceauth client create|list|revoke|set-method: the operator's handling of
 * tenants, through app's synchronous admin functions (safe while faceauthd
 * runs on the same data dir). `create` prints the secret_key once: only its
 * argon2id hash and the sealed result key are stored. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "cli/cmd_admin.h"
#include "crypto/crypto.h"

static void usage(FILE *f)
{
    fputs("usage: faceauth client create --name NAME [--method cbc|gcm] [--data-dir DIR]\n"
          "       faceauth client list [--data-dir DIR]\n"
          "       faceauth client revoke CLIENT_ID [--data-dir DIR]\n"
          "       faceauth client set-method CLIENT_ID cbc|gcm [--data-dir DIR]\n"
          "The data dir defaults to $FACEAUTH_DATA_DIR, else ./data; the master key is\n"
          "$FACEAUTH_MASTER_KEY or DIR/master.key (created on first use).\n"
          "create prints {\"client_id\",\"api_key\",\"secret_key\"}: the secret is shown only\n"
          "once. list prints one JSON object per client and line.\n",
          f);
}

int admin_parse(int argc, char **argv, struct admin_opts *o, void (*use)(FILE *))
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"method", required_argument, NULL, 'm'},
        {"client-id", required_argument, NULL, 'c'},
        {"user-id", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    const char *env = getenv("FACEAUTH_DATA_DIR");
    o->data_dir = env != NULL && env[0] != 0 ? env : "./data";
    optind = 1;
    opterr = 0;
    int c;
    /* GNU getopt permutes: options may come before or after the positionals */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data_dir = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'm':
            o->method = optarg;
            break;
        case 'c':
            o->client_id = optarg;
            break;
        case 'u':
            o->user_id = optarg;
            break;
        case 'h':
            use(stdout);
            return -1;
        default:
            fprintf(stderr, "faceauth: unknown or incomplete option '%s'\n", argv[optind - 1]);
            use(stderr);
            return 2;
        }
    }
    while (optind < argc) {
        if (o->npos < 4)
            o->pos[o->npos++] = argv[optind];
        optind++;
    }
    return 0;
}

struct app_admin *admin_open(const struct admin_opts *o)
{
    struct app_config cfg = {.data_dir = o->data_dir};
    struct app_admin *ad = NULL;
    struct fa_errinfo info = {{0}};
    enum fa_status rc = app_admin_open(&cfg, &ad, &info);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: data dir %s: %s%s%s\n", o->data_dir, fa_status_str(rc),
                info.what[0] ? ": " : "", info.what);
        return NULL;
    }
    return ad;
}

void admin_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int admin_fail(const char *what, enum fa_status rc)
{
    fprintf(stderr, "faceauth: %s: %s\n", what, fa_status_str(rc));
    return 1;
}

static int create(const struct admin_opts *o)
{
    const char *name = o->name != NULL ? o->name : (o->npos > 0 ? o->pos[0] : NULL);
    if (name == NULL) {
        fprintf(stderr, "faceauth: client create needs --name NAME\n");
        usage(stderr);
        return 2;
    }
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    struct app_client_secret s;
    enum fa_status rc = app_admin_client_create(ad, name, o->method, &s);
    app_admin_close(ad);
    if (rc == FA_ERR_ARG) {
        fprintf(stderr, "faceauth: client create: --name must be 1-128 printable ASCII "
                        "characters and --method cbc or gcm\n");
        return 2;
    }
    if (rc != FA_OK)
        return admin_fail("client create", rc);
    printf("{\"client_id\":");
    admin_json_str(stdout, s.client_id);
    printf(",\"api_key\":");
    admin_json_str(stdout, s.api_key);
    printf(",\"secret_key\":");
    admin_json_str(stdout, s.secret_key);
    printf("}\n");
    fflush(stdout);
    memset(&s, 0, sizeof s);
    return 0;
}

static int list(const struct admin_opts *o)
{
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    struct app_client_info *v = NULL;
    size_t n = 0;
    enum fa_status rc = app_admin_client_list(ad, &v, &n);
    app_admin_close(ad);
    if (rc != FA_OK)
        return admin_fail("client list", rc);
    for (size_t i = 0; i < n; i++) {
        char ts[32];
        fa_iso8601_ms(v[i].created_at_ms, ts);
        printf("{\"client_id\":");
        admin_json_str(stdout, v[i].client_id);
        printf(",\"name\":");
        admin_json_str(stdout, v[i].name);
        printf(",\"api_key_prefix\":");
        admin_json_str(stdout, v[i].api_key_prefix);
        printf(
            ",\"encryption_method\":\"%s\",\"revoked\":%s,\"users\":%llu,\"created_at\":\"%s\"}\n",
            v[i].encryption_method, v[i].revoked ? "true" : "false", (unsigned long long)v[i].users,
            ts);
    }
    fa_free(v);
    return 0;
}

static int revoke(const struct admin_opts *o)
{
    const char *id = o->client_id != NULL ? o->client_id : (o->npos > 0 ? o->pos[0] : NULL);
    if (id == NULL) {
        fprintf(stderr, "faceauth: client revoke needs CLIENT_ID\n");
        return 2;
    }
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    enum fa_status rc = app_admin_client_revoke(ad, id);
    app_admin_close(ad);
    if (rc == FA_ERR_NOT_FOUND) {
        fprintf(stderr, "faceauth: client revoke: no client %s\n", id);
        return 1;
    }
    if (rc != FA_OK)
        return admin_fail("client revoke", rc);
    printf("{\"client_id\":");
    admin_json_str(stdout, id);
    printf(",\"revoked\":true}\n");
    return 0;
}

static int set_method(const struct admin_opts *o)
{
    int k = 0;
    const char *id = o->client_id != NULL ? o->client_id : (k < o->npos ? o->pos[k++] : NULL);
    const char *m = o->method != NULL ? o->method : (k < o->npos ? o->pos[k++] : NULL);
    if (id == NULL || m == NULL) {
        fprintf(stderr, "faceauth: client set-method needs CLIENT_ID and cbc|gcm\n");
        return 2;
    }
    struct app_admin *ad = admin_open(o);
    if (ad == NULL)
        return 1;
    enum fa_status rc = app_admin_client_set_method(ad, id, m);
    app_admin_close(ad);
    if (rc == FA_ERR_ARG) {
        fprintf(stderr, "faceauth: client set-method: method must be cbc or gcm\n");
        return 2;
    }
    if (rc == FA_ERR_NOT_FOUND) {
        fprintf(stderr, "faceauth: client set-method: no client %s\n", id);
        return 1;
    }
    if (rc != FA_OK)
        return admin_fail("client set-method", rc);
    printf("{\"client_id\":");
    admin_json_str(stdout, id);
    enum crypto_method cm = CRYPTO_AES_256_CBC;
    crypto_method_parse(m, &cm);
    printf(",\"encryption_method\":\"%s\"}\n", crypto_method_name(cm));
    return 0;
}

int cli_client_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *action = argv[1];
    struct admin_opts o;
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0 || strcmp(action, "help") == 0) {
        usage(stdout);
        return 0;
    }
    int rc = admin_parse(argc - 1, argv + 1, &o, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (strcmp(action, "create") == 0)
        return create(&o);
    if (strcmp(action, "list") == 0)
        return list(&o);
    if (strcmp(action, "revoke") == 0)
        return revoke(&o);
    if (strcmp(action, "set-method") == 0)
        return set_method(&o);
    fprintf(stderr, "faceauth: client: unknown action '%s'\n", action);
    usage(stderr);
    return 2;
}
