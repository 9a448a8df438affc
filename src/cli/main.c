/* faceauth: the command-line tool. Dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fputs("usage: faceauth <command> [args]\n"
          "face engine:\n"
          "  detect IMG|DIR...      faces (box, score)\n"
          "  landmarks IMG|DIR...   faces with 68 landmarks\n"
          "  embed IMG|DIR...       faces with landmarks and 128-d descriptors\n"
          "  compare IMG_A IMG_B    distance between the largest faces, same person or not\n"
          "  mesh IMG|DIR...        468-point mesh, eye contours, irises, eyelid ratios\n"
          "  eyes FRAMES...         eye state per frame of a 10 fps stream, then the blinks\n"
          "operator (server data):\n"
          "  client create|list|revoke|set-method --data-dir DIR ...\n"
          "  user list|delete --data-dir DIR ...\n"
          "client of a running faceauthd:\n"
          "  enroll USER_ID [--url URL --frames DIR ...]       enroll from JPEG frames\n"
          "  authenticate [USER_ID] [--url URL --frames DIR ...] verify (1:1) / identify (1:N)\n"
          "Run 'faceauth <command> --help' for a command's options.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "detect") == 0 || strcmp(cmd, "landmarks") == 0 || strcmp(cmd, "embed") == 0 ||
        strcmp(cmd, "compare") == 0)
        return cli_face_main(argc - 1, argv + 1);
    if (strcmp(cmd, "mesh") == 0)
        return cli_mesh_main(argc - 1, argv + 1);
    if (strcmp(cmd, "eyes") == 0)
        return cli_eyes_main(argc - 1, argv + 1);
    if (strcmp(cmd, "client") == 0)
        return cli_client_main(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return cli_user_main(argc - 1, argv + 1);
    if (strcmp(cmd, "enroll") == 0 || strcmp(cmd, "authenticate") == 0)
        return cli_session_main(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "faceauth: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
