/* smc diagram FILE [--format dot|mermaid|svg] [-o FILE]: draw a machine. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/util.h"
#include "core/diagram.h"
#include "smc/machine.h"

static void diagram_usage(FILE *out) {
  fprintf(out, "usage: smc diagram FILE [--format dot|mermaid|svg] [-o FILE]\n"
               "  Compile the machine definition FILE and print its state diagram.\n"
               "  --format dot      Graphviz source (default)\n"
               "  --format mermaid  Mermaid stateDiagram-v2\n"
               "  --format svg      SVG, rendered by Graphviz `dot` (must be on PATH)\n"
               "  -o FILE           write to FILE instead of standard output\n");
}

/* 1 when an executable named prog is in a directory of $PATH. */
static int on_path(const char *prog) {
  const char *path = getenv("PATH");
  char dir[4096];
  if (!path)
    return 0;
  while (*path) {
    size_t n = strcspn(path, ":");
    if (n > 0 && n + strlen(prog) + 2 < sizeof(dir)) {
      snprintf(dir, sizeof(dir), "%.*s/%s", (int)n, path, prog);
      if (access(dir, X_OK) == 0)
        return 1;
    }
    path += n;
    if (*path == ':')
      path++;
  }
  return 0;
}

/*
 * Render dot source to SVG with Graphviz: the source goes to a temporary
 * file, `dot -Tsvg` writes to out_fd. Returns 0 when dot exited 0.
 */
static int render_svg(const char *dot_src, int out_fd) {
  char tmp[] = "/tmp/smc-diagram-XXXXXX";
  int fd = mkstemp(tmp), rc = -1, status = 0;
  size_t len = strlen(dot_src), off = 0;
  if (fd < 0) {
    fprintf(stderr, "smc diagram: temporary file: %s\n", strerror(errno));
    return -1;
  }
  while (off < len) {
    ssize_t w = write(fd, dot_src + off, len - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "smc diagram: temporary file: %s\n", strerror(errno));
      goto done;
    }
    off += (size_t)w;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "smc diagram: fork: %s\n", strerror(errno));
    goto done;
  }
  if (pid == 0) {
    if (out_fd != STDOUT_FILENO && dup2(out_fd, STDOUT_FILENO) < 0)
      _exit(127);
    execlp("dot", "dot", "-Tsvg", tmp, (char *)NULL);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      fprintf(stderr, "smc diagram: waitpid: %s\n", strerror(errno));
      goto done;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    rc = 0;
  else
    fprintf(stderr, "smc diagram: Graphviz dot failed (status %d)\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
done:
  close(fd);
  unlink(tmp);
  return rc;
}

static void print_diags(const char *file, const smc_diags_t *d) {
  for (size_t i = 0; i < d->count; i++) {
    const smc_error_t *e = &d->items[i].err;
    fprintf(stderr, "%s:%d:%d: %s: %s: %s\n", e->file[0] ? e->file : file, e->line, e->column,
            d->items[i].warning ? "warning" : "error", smc_code_name(e->code), e->message);
  }
}

static int run_diagram(int argc, char **argv) {
  const char *file = NULL, *format = "dot", *output = NULL;
  char *text = NULL, *rendered = NULL;
  smc_machine_t *m = NULL;
  smc_diags_t diags;
  smc_error_t err;
  size_t len = 0;
  int status = SMC_EXIT_FAILED, out_fd = STDOUT_FILENO;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      diagram_usage(stdout);
      return SMC_EXIT_OK;
    } else if (!strcmp(argv[i], "--format") || !strcmp(argv[i], "-f")) {
      if (++i >= argc)
        goto usage;
      format = argv[i];
    } else if (!strncmp(argv[i], "--format=", 9)) {
      format = argv[i] + 9;
    } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
      if (++i >= argc)
        goto usage;
      output = argv[i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "smc diagram: unknown option '%s'\n", argv[i]);
      goto usage;
    } else if (file) {
      fprintf(stderr, "smc diagram: one FILE only\n");
      goto usage;
    } else {
      file = argv[i];
    }
  }
  if (!file)
    goto usage;
  if (strcmp(format, "dot") && strcmp(format, "mermaid") && strcmp(format, "svg")) {
    fprintf(stderr, "smc diagram: unknown format '%s' (dot, mermaid or svg)\n", format);
    goto usage;
  }
  int svg = !strcmp(format, "svg");
  if (svg && !on_path("dot")) {
    fprintf(stderr, "smc diagram: --format svg needs Graphviz `dot` on PATH "
                    "(install graphviz, or use --format dot)\n");
    return SMC_EXIT_FAILED;
  }

  text = smc_read_file(file, &len);
  if (!text) {
    fprintf(stderr, "smc diagram: %s: %s\n", file, strerror(errno ? errno : EIO));
    return SMC_EXIT_FAILED;
  }
  smc_diags_init(&diags);
  if (smc_machine_compile(text, len, file, NULL, &m, &diags) != 0) {
    print_diags(file, &diags);
    fprintf(stderr, "smc diagram: %s: %zu error(s); no diagram\n", file, diags.errors);
    goto done;
  }
  smc_error_clear(&err);
  if (smc_diagram_render(m, svg ? "dot" : format, &rendered, &err) != 0) {
    fprintf(stderr, "smc diagram: %s: %s\n", smc_code_name(err.code), err.message);
    goto done;
  }
  if (output) {
    out_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      fprintf(stderr, "smc diagram: %s: %s\n", output, strerror(errno));
      out_fd = STDOUT_FILENO;
      goto done;
    }
  }
  if (svg) {
    if (render_svg(rendered, out_fd) != 0)
      goto done;
  } else {
    size_t n = strlen(rendered), off = 0;
    fflush(stdout);
    while (off < n) {
      ssize_t w = write(out_fd, rendered + off, n - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        fprintf(stderr, "smc diagram: write: %s\n", strerror(errno));
        goto done;
      }
      off += (size_t)w;
    }
  }
  status = SMC_EXIT_OK;
done:
  if (out_fd != STDOUT_FILENO && close(out_fd) != 0 && status == SMC_EXIT_OK) {
    fprintf(stderr, "smc diagram: %s: %s\n", output, strerror(errno));
    status = SMC_EXIT_FAILED;
  }
  free(rendered);
  smc_machine_destroy(m);
  smc_diags_close(&diags);
  free(text);
  return status;
usage:
  diagram_usage(stderr);
  return SMC_EXIT_USAGE;
}

const smc_command_t smc_cmd_diagram = {
    .name = "diagram",
    .summary = "draw a machine's states and transitions (dot, mermaid, svg)",
    .run = run_diagram,
};
