/* SPDX-License-Identifier: MIT */
/*
 * connector.json: the settings of portico-connector (docs/connector.md), loaded through
 * common/config's schema loader and then checked as a whole: the "host:port" form of edge
 * overrides, the proxy URL, and the default status file next to the credentials. Every
 * refusal is one message naming the file, the key path and the reason, as the loader's own
 * messages do. The loaded struct owns its strings; ptc_connector_config_free() releases them.
 * Loading does not open the files the keys name: `run` loads them at start (the backend trust
 * anchors through ptc_connector_config_backend_tls()), so `status` and `register` work for a
 * user who cannot read them.
 *
 * Depends on common/config, common/net, common/log (level names), common/tls (the backend
 * TLS configuration) and connector/proxy_connect (proxy URL syntax); performs no I/O beyond
 * reading the file and, in ptc_connector_config_backend_tls(), the CA bundle.
 */
#ifndef PTC_CONNECTOR_CONNECTOR_CONFIG_H
#define PTC_CONNECTOR_CONNECTOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/tls.h"

/** Where the connector looks for its configuration when --config is not given. */
#define PTC_CONNECTOR_DEFAULT_CONFIG "/etc/portico/connector.json"
/** The default credential file (docs/protocol.md §12.5). */
#define PTC_CONNECTOR_DEFAULT_CREDENTIALS "/var/lib/portico-connector/credentials.json"
/** The most tunnels a connector keeps to one edge address. */
#define PTC_CONNECTOR_MAX_TUNNELS_PER_EDGE 16
/** The most edge addresses a connector keeps tunnels to. */
#define PTC_CONNECTOR_MAX_EDGES 64

/** log: minimum level (a ptc_log_level_t) and an optional file (NULL: stdout). */
typedef struct ptc_connector_log_cfg {
    int level;
    char *file;
} ptc_connector_log_cfg_t;

/** The whole connector.json. Paths are absolute or relative to the file's directory. */
typedef struct ptc_connector_config {
    /* The credential file written by `register` and read by `run`. */
    char *credentials;
    /* Tunnel endpoints ("host:port") that replace the ones learnt at registration and from
     * the edge's welcome; empty: use those. */
    char **edges;
    size_t edges_cnt;
    /* PEM trust anchors for the edge (NULL: the credential file's ca_file, else the system
     * store). */
    char *ca_file;
    /* Tunnels kept to each edge address (1..16, default 2). */
    int64_t tunnels_per_edge;
    /* "http://[user:password@]host:port" of an HTTP CONNECT proxy; NULL: the https_proxy /
     * HTTPS_PROXY environment variables, else direct connections. */
    char *proxy;
    /* SIGTERM: how long in-flight streams may take to finish (default 30 s). */
    uint64_t drain_timeout_ms;
    /* A backend's answer deadline when the edge's REQUEST says 0 (default 85 s). */
    uint64_t backend_timeout_ms;
    /* PEM trust anchors for https backends of apps with validate_backend_tls, instead of
     * the system bundle (NULL: PTC_TLS_SYSTEM_CA_FILE). */
    char *backend_ca_file;
    ptc_connector_log_cfg_t log;
    /* The status file the running connector rewrites (default: status.json in the
     * credential file's directory). Never NULL after a successful load. */
    char *status_file;
} ptc_connector_config_t;

/**
 * Loads and checks the file at `path` into *out (zeroed first). Returns 0; PTC_ECONFIG with a
 * message "<path>: <key path>: <reason>" in err; or the negative errno of reading the file
 * (with the system's reason in err). Call ptc_connector_config_free() on success and failure
 * alike.
 */
PTC_MUST_CHECK int ptc_connector_config_load(const char *path, ptc_connector_config_t *out,
                                             char *err, size_t errlen);

/**
 * As ptc_connector_config_load() for a document in memory (borrowed, `len` bytes). `name` is
 * used in messages; relative paths are joined to `base_dir` (kept as written when NULL).
 * Returns 0 or PTC_ECONFIG.
 */
PTC_MUST_CHECK int ptc_connector_config_load_buffer(const char *name, const void *data, size_t len,
                                                    const char *base_dir,
                                                    ptc_connector_config_t *out, char *err,
                                                    size_t errlen);

/**
 * Finds and loads the configuration for a command: `path` when given (the file must exist);
 * otherwise PTC_CONNECTOR_DEFAULT_CONFIG when it exists, else the defaults of an empty
 * document. Same returns as ptc_connector_config_load().
 */
PTC_MUST_CHECK int ptc_connector_config_load_default(const char *path, ptc_connector_config_t *out,
                                                     char *err, size_t errlen);

/**
 * Makes the TLS client configuration that validates https backends, shared by the relay's
 * requests and the app-test probes of one process: trust anchors from cfg->backend_ca_file,
 * else the system bundle (PTC_TLS_SYSTEM_CA_FILE); ALPN http/1.1. Returns 0 and *out (one
 * reference; drop it with ptc_tls_config_unref()), or an error with a one-line message in
 * err that names the key and the file ("backend_ca_file: cannot open /etc/x.pem: No such
 * file or directory"; "system CA bundle: ..." without the key): UV_ENOENT, UV_EACCES and
 * the other errors of reading a file, PTC_ELIMIT (a file over 1 MiB), PTC_EFORMAT (no CA
 * certificate could be parsed), PTC_ECRYPTO, PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_connector_config_backend_tls(const ptc_connector_config_t *cfg,
                                                    ptc_tls_config_t **out, char *err,
                                                    size_t errlen);

/** Frees what the loader allocated and zeroes *cfg. Safe on a zeroed struct and twice. */
void ptc_connector_config_free(ptc_connector_config_t *cfg);

#endif
