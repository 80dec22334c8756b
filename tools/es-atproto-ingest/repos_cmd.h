/* `es-atproto-ingest repos ...`: the per-repository chain states and the
 * tracked set, for operators (repos_cmd.c). */
#ifndef ES_INGEST_REPOS_CMD_H
#define ES_INGEST_REPOS_CMD_H

/* argv[0] is "repos"; the arguments after it are parsed. Returns the exit
 * code (cli.h), errors already reported. */
int ingest_repos_main(int argc, char **argv);

#endif
