/*
 * smc completion bash|zsh: a completion script generated from the command
 * table (main.c): every command with its summary, the verbs of the commands
 * that have them, and each command's (and verb's) flags as its --help lists
 * them, plus --log-format and --help, which every command takes. Generated
 * by the binary itself, so the script always matches it:
 *
 *   source <(smc completion bash)              # or put it in bash-completion's dir
 *   smc completion zsh > "${fpath[1]}/_smc"
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define MAX_FLAGS 96

typedef struct {
  char *v[MAX_FLAGS];
  size_t n;
} flags_t;

static void flags_add(flags_t *f, const char *s, size_t len) {
  for (size_t i = 0; i < f->n; i++)
    if (strlen(f->v[i]) == len && !strncmp(f->v[i], s, len))
      return;
  if (f->n < MAX_FLAGS && (f->v[f->n] = strndup(s, len)))
    f->n++;
}

static void flags_close(flags_t *f) {
  for (size_t i = 0; i < f->n; i++)
    free(f->v[i]);
  f->n = 0;
}

/* What argv (a command's --help) prints on stdout and stderr (malloc'd). */
static char *help_text(const smc_command_t *c, int argc, char **argv) {
  FILE *tmp = tmpfile();
  if (!tmp)
    return NULL;
  fflush(stdout);
  fflush(stderr);
  int out = dup(1), err = dup(2);
  dup2(fileno(tmp), 1);
  dup2(fileno(tmp), 2);
  optind = 0; /* a full getopt reset for the command's own parsing */
  c->run(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(out, 1);
  dup2(err, 2);
  close(out);
  close(err);
  long n = ftell(tmp);
  char *text = n >= 0 ? calloc(1, (size_t)n + 1) : NULL;
  rewind(tmp);
  if (text && fread(text, 1, (size_t)n, tmp) != (size_t)n) {
    free(text);
    text = NULL;
  }
  fclose(tmp);
  return text;
}

/* 1 when the word before p is a command of the table: "(smc keygen --out"
 * names keygen's flag, not this command's. */
static int names_other_command(const char *t, const char *p, const char *self) {
  const char *e = p;
  while (e > t && e[-1] == ' ')
    e--;
  const char *w = e;
  while (w > t && !strchr(" `(\n", w[-1]))
    w--;
  for (size_t i = 0; i < smc_cli_ncommands; i++)
    if ((size_t)(e - w) == strlen(smc_cli_commands[i]->name) &&
        !strncmp(w, smc_cli_commands[i]->name, (size_t)(e - w)))
      return strcmp(smc_cli_commands[i]->name, self) != 0;
  return 0;
}

/* The flags a help text names: --long-name, and -X style short flags. */
static void scan_flags(const char *t, const char *self, flags_t *f) {
  for (const char *p = t; p && *p; p++) {
    if (p != t && !strchr(" [(|,\n", p[-1]))
      continue;
    if (p[0] == '-' && names_other_command(t, p, self))
      continue;
    if (p[0] == '-' && p[1] == '-' && p[2] >= 'a' && p[2] <= 'z')
      flags_add(f, p, 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-"));
    else if (p[0] == '-' && ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')) &&
             strchr(" ]=\n", p[2]))
      flags_add(f, p, 2);
  }
}

/* Flags of command c, or of its verb (NULL: the command itself). */
static void command_flags(const smc_command_t *c, const char *verb, flags_t *f) {
  char *argv[4] = {(char *)c->name, (char *)"--help", NULL, NULL};
  if (verb)
    argv[1] = (char *)verb, argv[2] = (char *)"--help";
  char *t = help_text(c, verb ? 3 : 2, argv);
  scan_flags(t, c->name, f);
  free(t);
  flags_add(f, "--log-format", 12);
  flags_add(f, "--help", 6);
}

static void print_words(const flags_t *f) {
  for (size_t i = 0; i < f->n; i++)
    printf("%s%s", i ? " " : "", f->v[i]);
}

/* Each command's flags (and its verbs'), as a shell case statement body:
 * "    NAME) opts='...' ;;" lines; verbs as NAME:VERB. A flag right after
 * the name of another command ("(smc keygen --out") is that command's. */
static void print_cases(const char *indent, const char *sep) {
  for (size_t i = 0; i < smc_cli_ncommands; i++) {
    const smc_command_t *c = smc_cli_commands[i];
    flags_t f = {0};
    command_flags(c, NULL, &f);
    printf("%s%s) opts='", indent, c->name);
    print_words(&f);
    printf("' %s\n", sep);
    flags_close(&f);
    for (const char *v = smc_cli_verbs(c->name); v && *v;) {
      size_t n = strcspn(v, " ");
      char verb[32];
      snprintf(verb, sizeof verb, "%.*s", (int)n, v);
      command_flags(c, verb, &f);
      printf("%s%s:%s) opts='", indent, c->name, verb);
      print_words(&f);
      printf("' %s\n", sep);
      flags_close(&f);
      v += n + strspn(v + n, " ");
    }
  }
}

/* The case arms that set verbs for each command that has verbs, the list
 * between open and close (bash's quotes, zsh's parentheses). */
static void print_verb_cases(const char *open, const char *close) {
  for (size_t i = 0; i < smc_cli_ncommands; i++) {
    const char *verbs = smc_cli_verbs(smc_cli_commands[i]->name);
    if (verbs)
      printf("    %s) verbs=%s%s%s ;;\n", smc_cli_commands[i]->name, open, verbs, close);
  }
}

static void print_bash(void) {
  printf("# bash completion for smc, generated by `smc completion bash` (smc %s).\n"
         "# Load it with: source <(smc completion bash)\n"
         "_smc() {\n"
         "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
         "  local commands='help version",
         SMC_VERSION);
  for (size_t i = 0; i < smc_cli_ncommands; i++)
    printf(" %s", smc_cli_commands[i]->name);
  printf("'\n"
         "  if [[ $COMP_CWORD -eq 1 ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\"))\n"
         "    return\n"
         "  fi\n"
         "  local cmd=\"${COMP_WORDS[1]}\" verbs='' opts=''\n"
         "  case \"$cmd\" in\n");
  print_verb_cases("'", "'");
  printf(
      "    help) COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\")); return ;;\n"
      "  esac\n"
      "  if [[ -n $verbs && $COMP_CWORD -eq 2 ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$verbs\" -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  [[ -n $verbs && \" $verbs \" == *\" ${COMP_WORDS[2]} \"* ]] && "
      "cmd=\"$cmd:${COMP_WORDS[2]}\"\n"
      "  case \"$prev\" in\n"
      "    --log-format) COMPREPLY=($(compgen -W 'text logfmt json' -- \"$cur\")); return ;;\n"
      "    --log-level) COMPREPLY=($(compgen -W 'error warn info debug' -- \"$cur\")); return ;;\n"
      "    -o) COMPREPLY=($(compgen -W 'text json yaml' -- \"$cur\")); return ;;\n"
      "    --format) COMPREPLY=($(compgen -W 'dot mermaid svg' -- \"$cur\")); return ;;\n"
      "    --shell) COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\")); return ;;\n"
      "  esac\n"
      "  case \"$cmd\" in\n");
  print_cases("    ", ";;");
  printf("  esac\n"
         "  if [[ $cmd == completion && $COMP_CWORD -eq 2 ]]; then\n"
         "    COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\"))\n"
         "  elif [[ $cur == -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
         "  else\n"
         "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
         "  fi\n"
         "}\n"
         "complete -o filenames -F _smc smc\n");
}

static void print_zsh(void) {
  printf("#compdef smc\n"
         "# zsh completion for smc, generated by `smc completion zsh` (smc %s).\n"
         "# Install it as _smc in a directory of $fpath, e.g.\n"
         "#   smc completion zsh > ~/.zsh/completions/_smc\n"
         "_smc() {\n"
         "  local -a commands verbs\n"
         "  local opts cmd\n"
         "  commands=(\n"
         "    'help:describe smc or a command'\n"
         "    'version:print the version'\n",
         SMC_VERSION);
  for (size_t i = 0; i < smc_cli_ncommands; i++) {
    printf("    '%s:", smc_cli_commands[i]->name);
    for (const char *s = smc_cli_commands[i]->summary; *s; s++)
      printf(*s == '\'' ? "'\\''" : *s == ':' ? "\\:" : "%c", *s);
    printf("'\n");
  }
  printf("  )\n"
         "  if (( CURRENT == 2 )); then\n"
         "    _describe -t commands 'smc command' commands\n"
         "    return\n"
         "  fi\n"
         "  cmd=$words[2]\n"
         "  case $cmd in\n");
  print_verb_cases("(", ")");
  printf("    help) _describe -t commands 'smc command' commands; return ;;\n"
         "    completion) (( CURRENT == 3 )) && { compadd bash zsh; return }; ;;\n"
         "  esac\n"
         "  if (( ${#verbs} && CURRENT == 3 )); then\n"
         "    compadd -a verbs\n"
         "    return\n"
         "  fi\n"
         "  (( ${#verbs} )) && (( ${verbs[(Ie)$words[3]]} )) && cmd=$cmd:$words[3]\n"
         "  case $words[CURRENT-1] in\n"
         "    --log-format) compadd text logfmt json; return ;;\n"
         "    --log-level) compadd error warn info debug; return ;;\n"
         "    -o) compadd text json yaml; return ;;\n"
         "    --format) compadd dot mermaid svg; return ;;\n"
         "  esac\n"
         "  case $cmd in\n");
  print_cases("    ", ";;");
  printf("  esac\n"
         "  if [[ $PREFIX == -* ]]; then\n"
         "    compadd -- ${=opts}\n"
         "  else\n"
         "    _files\n"
         "  fi\n"
         "}\n"
         "_smc \"$@\"\n");
}

static int run(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "bash") || !strcmp(argv[1], "zsh"))) {
    if (!strcmp(argv[1], "bash"))
      print_bash();
    else
      print_zsh();
    return fflush(stdout) == 0 ? SMC_EXIT_OK : SMC_EXIT_FAILED;
  }
  FILE *out = argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr;
  fprintf(out, "usage: smc completion bash|zsh\n"
               "  Print a completion script for the shell, generated from smc's commands\n"
               "  and their flags:\n"
               "    source <(smc completion bash)\n"
               "    smc completion zsh > \"${fpath[1]}/_smc\"\n");
  return out == stdout ? SMC_EXIT_OK : SMC_EXIT_USAGE;
}

const smc_command_t smc_cmd_completion = {"completion", "print a bash or zsh completion script",
                                          run};
