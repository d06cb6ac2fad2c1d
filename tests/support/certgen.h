/* SPDX-License-Identifier: MIT */
/*
 * Certificates made by the tests at run time, with mbedTLS's X.509 writer: a CA, leaf
 * certificates it signs (DNS and IP subject alternative names, wildcards, an expired one),
 * and leaves of another CA that nobody trusts. Keys are EC P-256 by default (a few
 * milliseconds each); RSA 2048 is available for the one test that needs an RSA certificate.
 *
 * Every certificate comes back as PEM in memory and, when a directory is given, as two files
 * (<dir>/<name>.crt and <dir>/<name>.key). Failures end the current test case through
 * ptc_test_fail(): these helpers never return an error. Test support only; never linked
 * into the daemons.
 */
#ifndef PTC_TESTS_SUPPORT_CERTGEN_H
#define PTC_TESTS_SUPPORT_CERTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A generated certificate and its private key. Release with ptc_certgen_dispose(). */
typedef struct ptc_certgen_cert {
    char *cert_pem;          /* NUL-terminated PEM certificate (heap) */
    char *key_pem;           /* NUL-terminated PEM private key (heap) */
    char cert_path[512];     /* "" when no directory was given */
    char key_path[512];      /* "" when no directory was given */
    char subject[128];       /* the subject DN as written ("CN=...,O=Portico Test") */
    uint8_t sha256[32];      /* SHA-256 of the certificate's DER */
    uint8_t spki_sha256[32]; /* SHA-256 of the SubjectPublicKeyInfo DER (the pin) */
} ptc_certgen_cert_t;

/** Options for a leaf certificate. Zero-initialize, then set what matters. */
typedef struct ptc_certgen_opts {
    /* Subject CN; NULL: the first DNS name, else "leaf". */
    const char *cn;
    /* NULL-terminated list of "DNS:name" and "IP:address" (IPv4 or IPv6) entries; NULL for
     * a certificate without the extension. */
    const char *const *sans;
    /* The validity ended yesterday (it began 30 days ago). */
    bool expired;
    /* An RSA 2048 key instead of EC P-256 (slower: tens to hundreds of milliseconds). */
    bool rsa;
} ptc_certgen_opts_t;

/**
 * Makes a self-signed CA (EC P-256, basicConstraints CA:TRUE, valid from yesterday for ten
 * years) whose subject is "CN=<name>,O=Portico Test". `dir` may be NULL (memory only).
 */
void ptc_certgen_ca(const char *dir, const char *name, ptc_certgen_cert_t *out);

/**
 * Makes a leaf certificate signed by `ca` (a certificate from ptc_certgen_ca()), valid from
 * yesterday for 30 days unless opts->expired. `name` names the files; `dir` may be NULL.
 * The PEM in out->cert_pem holds the leaf only (the CA is the trust anchor).
 */
void ptc_certgen_leaf(const ptc_certgen_cert_t *ca, const char *dir, const char *name,
                      const ptc_certgen_opts_t *opts, ptc_certgen_cert_t *out);

/** Frees the PEM strings (the files stay). Tolerates a zeroed struct. */
void ptc_certgen_dispose(ptc_certgen_cert_t *c);

/**
 * Writes `len` bytes of `data` to <dir>/<name> and stores the path in `path` (for tests
 * that need an arbitrary PEM file, such as a chain file or a corrupt one).
 */
void ptc_certgen_write_file(const char *dir, const char *name, const void *data, size_t len,
                            char *path, size_t path_cap);

#endif
