/* Subcommands of the faceauth command-line tool. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status. */
#ifndef FA_CLI_CLI_H
#define FA_CLI_CLI_H

int cli_face_main(int argc, char **argv);    /* detect, landmarks, embed, compare */
int cli_mesh_main(int argc, char **argv);    /* mesh: BlazeFace + FaceMesh + Iris per image */
int cli_eyes_main(int argc, char **argv);    /* eyes: eye state and blinks of a frame stream */
int cli_client_main(int argc, char **argv);  /* client create|list|revoke|set-method */
int cli_user_main(int argc, char **argv);    /* user list|delete */
int cli_session_main(int argc, char **argv); /* enroll|authenticate: a session against faceauthd */

/* Expand files and directories (recursively, sorted) into image paths
 * (.jpg, .jpeg, .png). Returns a NULL-terminated array (free with
 * cli_paths_free) or NULL on OOM / unreadable directory (message printed). */
char **cli_expand_paths(char **args, int n);
void cli_paths_free(char **paths);

#endif
