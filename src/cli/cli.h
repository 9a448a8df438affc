/* Subcommands of the faceauth command-line tool. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef FA_CLI_CLI_H
#define FA_CLI_CLI_H

int cli_face_main(int argc, char **argv);   /* detect, landmarks, embed, compare */

/* Expand files and directories (recursively, sorted) into image paths
 * (.jpg, .jpeg, .png). Returns a NULL-terminated array (free with
 * cli_paths_free) or NULL on OOM / unreadable directory (message printed). */
char **cli_expand_paths(char **args, int n);
void cli_paths_free(char **paths);

#endif
