#ifndef CP_CERTS_H
#define CP_CERTS_H

#include <stddef.h>

/* `sluice-cp certs generate --out DIR [--days N]`: writes the cluster certificate and key that
 * shared-mode mutual TLS uses (both sides present the same certificate and pin its digest).
 * EC P-384 key, self-signed, CN sluice_cluster, valid 1095 days by default (as Kong's
 * `hybrid gen_cert`). cluster.key is created with mode 0600 and cluster.crt 0644; an existing
 * file is never overwritten. */

#define CP_CERTS_CN "sluice_cluster"
#define CP_CERTS_DAYS 1095

/* The `certs` command; argv[0] is "certs". Prints what it wrote on stdout, errors on stderr.
 * Returns the exit status: 0 written (or --help), 1 on any error (nothing left half-written). */
int cp_certs_main(int argc, char **argv);

/* Writes DIR/cluster.crt and DIR/cluster.key valid for days, creating DIR (and its parents)
 * when missing. Refuses, writing nothing, when either file exists. Returns 0, or -1 with err
 * naming the file or directory that failed. On success fingerprint (when not NULL, at least
 * 96 bytes) gets the certificate's SHA-256 digest as colon-separated hex. */
int cp_certs_generate(const char *dir, int days, char *fingerprint, char *err, size_t errlen);

#endif
