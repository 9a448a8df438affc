/* Private to cli/: options shared by the operator commands (client, user). */
#ifndef FA_CLI_CMD_ADMIN_H
#define FA_CLI_CMD_ADMIN_H

#include <stdio.h>

#include "app/app.h"

struct admin_opts {
    const char *data_dir;  /* --data-dir, $FACEAUTH_DATA_DIR, ./data */
    const char *name;      /* --name */
    const char *method;    /* --method cbc|gcm */
    const char *client_id; /* --client-id or the first positional argument */
    const char *user_id;   /* --user-id or the next positional argument */
    int npos;
    const char *pos[4];
};

/* Parse argv (argv[0] is the action). Returns 0, 2 after printing a usage
 * error, or -1 after printing the help (--help). */
int admin_parse(int argc, char **argv, struct admin_opts *o, void (*usage)(FILE *));
/* Open the admin handle for o->data_dir; prints the error and returns NULL on
 * failure. */
struct app_admin *admin_open(const struct admin_opts *o);
/* Print a JSON string (quoted, escaped). */
void admin_json_str(FILE *f, const char *s);
/* Print "faceauth: <what>: <status message>" to stderr; returns 1. */
int admin_fail(const char *what, enum fa_status rc);

#endif
