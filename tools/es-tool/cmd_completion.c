/* es-tool completion: shell completion scripts for bash and zsh, made from
 * the command table and each command's --help (so they never fall behind
 * the options), and the store names they offer, listed on demand. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "estool.h"

#define WORDS_MAX 96
#define WORD_MAX  40

/* The long options a help text names, and which of them take a value (the
 * help writes those with a placeholder in capitals: "--limit N"). */
typedef struct option_words {
    char word[WORDS_MAX][WORD_MAX];
    bool takes_value[WORDS_MAX];
    size_t n;
} option_words;

static void add_word(option_words *w, const char *start, size_t len, bool takes_value)
{
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->word[i]) == len && memcmp(w->word[i], start, len) == 0) {
            w->takes_value[i] |= takes_value;
            return;
        }
    if (w->n == WORDS_MAX || len >= WORD_MAX)
        return;
    memcpy(w->word[w->n], start, len);
    w->word[w->n][len] = '\0';
    w->takes_value[w->n++] = takes_value;
}

/* True when the "--" at p starts an option in a help text: first on an
 * indented line ("  --json"), after a letter's alias ("-t, --type") or in a
 * usage synopsis ("[--limit N]", "| --data-file F"); not one named in prose
 * or in an example. */
static bool option_position(const char *help, const char *p)
{
    const char *q = p;
    while (q > help && q[-1] == ' ')
        q--;
    bool indented = q < p;
    if (q == help)
        return indented;
    return (indented && q[-1] == '\n') || q[-1] == ',' || q[-1] == '[' || q[-1] == '|';
}

static void scan_help(option_words *w, const char *help)
{
    for (const char *p = strstr(help, "--"); p != NULL; p = strstr(p + 2, "--")) {
        if (!option_position(help, p))
            continue;
        size_t len = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (len == 2 || !islower((unsigned char)p[2]))
            continue;
        bool value = (p[len] == ' ' || p[len] == '=') && isupper((unsigned char)p[len + 1]);
        add_word(w, p, len, value);
    }
}

static void command_words(const tool_command *cmd, option_words *w)
{
    memset(w, 0, sizeof *w);
    scan_help(w, cmd->help);
    scan_help(w, es_cli_conn_help);
}

/* ---- bash -------------------------------------------------------------------- */

static void print_words(const option_words *w, bool values_only)
{
    for (size_t i = 0, n = 0; i < w->n; i++)
        if (!values_only || w->takes_value[i])
            printf("%s%s", n++ ? " " : "", w->word[i]);
}

static void print_bash_cases(void)
{
    for (size_t i = 0; i < tool_command_count; i++) {
        const tool_command *cmd = tool_commands[i];
        if (cmd == &tool_cmd_completion) {
            printf("    %s) COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\")); return 0 ;;\n",
                   cmd->name);
            continue;
        }
        option_words w;
        command_words(cmd, &w);
        printf("    %s) opts=\"", cmd->name);
        print_words(&w, false);
        printf("\" valopts=\"");
        print_words(&w, true);
        printf("\" stores=%d ;;\n", strstr(cmd->help, " STORE") != NULL);
    }
}

static void print_bash(void)
{
    printf("# es-tool completion for bash: source it from ~/.bashrc, or save it as\n"
           "# /etc/bash_completion.d/es-tool (es-tool completion bash > ...).\n"
           "_es_tool() {\n"
           "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "  local commands=\"");
    for (size_t i = 0; i < tool_command_count; i++)
        printf("%s ", tool_commands[i]->name);
    printf("help\"\n"
           "  COMPREPLY=()\n"
           "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
           "    COMPREPLY=($(compgen -W \"$commands --help --version\" -- \"$cur\"))\n"
           "    return 0\n"
           "  fi\n"
           "  local opts=\"\" valopts=\"\" stores=0\n"
           "  case ${COMP_WORDS[1]} in\n");
    print_bash_cases();
    printf("    help) COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")); return 0 ;;\n"
           "  esac\n"
           "  case $prev in\n"
           "    --format) COMPREPLY=($(compgen -W \"jsonl pretty raw\" -- \"$cur\")); return 0 ;;\n"
           "    --codec) COMPREPLY=($(compgen -W \"json dag-cbor cbor msgpack binary\" -- "
           "\"$cur\")); return 0 ;;\n"
           "    --creds|--nkey|--tlscert|--tlskey|--tlsca|--master-key-file|--data-file|--input|"
           "--batch)\n"
           "      COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n"
           "    --context)\n"
           "      local dir=${XDG_CONFIG_HOME:-$HOME/.config}/nats/context f names=\"\"\n"
           "      for f in \"$dir\"/*.json; do [ -e \"$f\" ] && f=${f##*/} && "
           "names=\"$names ${f%%.json}\"; done\n"
           "      COMPREPLY=($(compgen -W \"$names\" -- \"$cur\")); return 0 ;;\n"
           "  esac\n"
           "  local w\n"
           "  for w in $valopts; do [ \"$prev\" = \"$w\" ] && return 0; done\n"
           "  if [[ $cur == -* ]]; then\n"
           "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); return 0\n"
           "  fi\n"
           "  # the first argument after the command is the store\n"
           "  local i n=0 skip=0\n"
           "  for ((i = 2; i < COMP_CWORD; i++)); do\n"
           "    w=${COMP_WORDS[i]}\n"
           "    if [ $skip = 1 ]; then skip=0; continue; fi\n"
           "    case \" $valopts \" in *\" $w \"*) skip=1; continue ;; esac\n"
           "    [[ $w == -* ]] || n=$((n + 1))\n"
           "  done\n"
           "  if [ $stores = 1 ] && [ $n = 0 ]; then\n"
           "    COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" completion stores 2>/dev/null)\" "
           "-- \"$cur\"))\n"
           "  fi\n"
           "  return 0\n"
           "}\n"
           "complete -F _es_tool es-tool\n");
}

/* zsh runs the bash function through its bash completion layer. */
static void print_zsh(void)
{
    printf("#compdef es-tool\n"
           "# es-tool completion for zsh: source it from ~/.zshrc (es-tool completion zsh\n"
           "# > ~/.es-tool.zsh; source ~/.es-tool.zsh).\n"
           "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }\n"
           "autoload -U +X bashcompinit && bashcompinit\n");
    print_bash();
}

/* ---- store names ------------------------------------------------------------- */

static es_status print_store_name(const char *name, const es_store_info *info, void *closure)
{
    (void)info;
    (void)closure;
    return tool_write(name, strlen(name)) && tool_write("\n", 1) ? ES_OK : ES_ERR_IO;
}

/* The store names, one a line, for the scripts: quiet and quick, with the
 * connection the environment and the nats CLI context give. */
static int print_stores(es_cli_conn *conn)
{
    natsConnection *nc = NULL;
    if (es_cli_conn_resolve(conn) != ES_OK || es_cli_connect(conn, &nc) != ES_OK) {
        es_cli_disconnect(NULL);
        return ES_EXIT_SERVER;
    }
    es_store_options o;
    es_cli_store_options(conn, &o);
    es_status s = es_store_list(nc, &o, print_store_name, NULL);
    tool_flush();
    es_cli_disconnect(nc);
    return s == ES_OK ? ES_EXIT_OK : ES_EXIT_SERVER;
}

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {NULL, 0, false, 0},
};

static int run(int argc, char **argv)
{
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-tool completion");
    conn.timeout_ms = 2000; /* a shell waits for the store names; NATS_TIMEOUT still counts */
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    const char *what = NULL;
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
        if (id == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        if (id == OPT_HELP)
            return tool_help(&tool_cmd_completion);
        if (id == ES_CLI_ARG && what != NULL)
            return es_cli_usage("unexpected argument '%.40s'", p.value);
        if (id == ES_CLI_ARG)
            what = p.value;
        else if (es_cli_conn_set(&conn, id, p.value) == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
    }
    if (what != NULL && strcmp(what, "bash") == 0)
        print_bash();
    else if (what != NULL && strcmp(what, "zsh") == 0)
        print_zsh();
    else if (what != NULL && strcmp(what, "stores") == 0)
        return print_stores(&conn);
    else
        return es_cli_usage("which shell? es-tool completion bash|zsh");
    return tool_flush() || tool_output_closed() ? ES_EXIT_OK : ES_EXIT_SERVER;
}

const tool_command tool_cmd_completion = {
    "completion",
    "print a shell completion script (bash or zsh)",
    run,
    "Usage: es-tool completion bash|zsh\n"
    "\n"
    "Prints a completion script: commands, each command's options, the values\n"
    "of --format, --codec and --context, file names, and the server's store\n"
    "names (listed when asked for, with the connection the environment and the\n"
    "selected nats CLI context give; 'es-tool completion stores' prints them).\n"
    "\n"
    "Examples:\n"
    "  source <(es-tool completion bash)              # in ~/.bashrc\n"
    "  es-tool completion bash > /etc/bash_completion.d/es-tool\n"
    "  source <(es-tool completion zsh)               # in ~/.zshrc\n",
};
