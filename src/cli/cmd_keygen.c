/*
 * smc keygen --out PREFIX: make an Ed25519 key pair for a signed voter.
 * Writes PREFIX.key (PEM private key, mode 0600, for `smc vote --key` and
 * `smc worker --vote-key`) and PREFIX.pub (PEM public key), and prints the
 * base64 of the raw public key: the value for the machine's `votes.keys`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/vote_sig.h"

static void usage(FILE *out) {
  fprintf(out, "usage: smc keygen --out PREFIX [--force]\n"
               "  Make an Ed25519 key pair for a voter that signs its votes. Writes\n"
               "  PREFIX.key (PEM private key, mode 0600: give it to `smc vote --key` or\n"
               "  `smc worker --vote-key`) and PREFIX.pub (PEM public key), and prints the\n"
               "  base64 public key to put under the machine's votes.keys.\n"
               "  --force    overwrite existing files (default: refuse)\n");
}

/* Open path for writing with mode; O_EXCL unless force. */
static FILE *open_out(const char *path, int mode, int force) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (force ? 0 : O_EXCL), mode);
  if (fd < 0) {
    fprintf(stderr, "smc keygen: %s: %s%s\n", path, strerror(errno),
            errno == EEXIST ? " (use --force to overwrite)" : "");
    return NULL;
  }
  FILE *f = fdopen(fd, "w");
  if (!f)
    close(fd);
  return f;
}

static int run_keygen(int argc, char **argv) {
  static const struct option longopts[] = {{"out", required_argument, NULL, 'o'},
                                           {"force", no_argument, NULL, 'f'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *prefix = NULL;
  int force = 0, opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (opt == 'h') {
      usage(stdout);
      return SMC_EXIT_OK;
    } else if (opt == 'o') {
      prefix = optarg;
    } else if (opt == 'f') {
      force = 1;
    } else {
      usage(stderr);
      return SMC_EXIT_USAGE;
    }
  }
  if (!prefix || !*prefix || optind != argc) {
    if (!prefix || !*prefix)
      fprintf(stderr, "smc keygen: --out PREFIX is required\n");
    usage(stderr);
    return SMC_EXIT_USAGE;
  }
  int rc = SMC_EXIT_FAILED;
  size_t n = strlen(prefix) + 5;
  char *kpath = malloc(n), *ppath = malloc(n);
  EVP_PKEY *key = NULL;
  FILE *kf = NULL, *pf = NULL;
  char b64[45];
  smc_error_t err;
  smc_error_clear(&err);
  if (!kpath || !ppath) {
    fprintf(stderr, "smc keygen: out of memory\n");
    goto fail;
  }
  snprintf(kpath, n, "%s.key", prefix);
  snprintf(ppath, n, "%s.pub", prefix);
  if (!(key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) ||
      smc_vote_sig_public_b64(key, b64, &err)) {
    fprintf(stderr, "smc keygen: cannot make an Ed25519 key\n");
    goto fail;
  }
  if (!(kf = open_out(kpath, 0600, force)))
    goto fail;
  if (!PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) || fclose(kf)) {
    kf = NULL;
    fprintf(stderr, "smc keygen: cannot write %s\n", kpath);
    goto fail;
  }
  kf = NULL;
  if (!(pf = open_out(ppath, 0644, force)))
    goto fail;
  if (!PEM_write_PUBKEY(pf, key) || fclose(pf)) {
    pf = NULL;
    fprintf(stderr, "smc keygen: cannot write %s\n", ppath);
    goto fail;
  }
  pf = NULL;
  printf("%s\n", b64);
  fprintf(stderr, "smc keygen: wrote %s (private) and %s (public)\n", kpath, ppath);
  rc = SMC_EXIT_OK;
fail:
  if (kf)
    fclose(kf);
  if (pf)
    fclose(pf);
  EVP_PKEY_free(key);
  free(kpath);
  free(ppath);
  return rc;
}

const smc_command_t smc_cmd_keygen = {"keygen", "make an Ed25519 key pair for signed votes",
                                      run_keygen};
