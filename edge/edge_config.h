/* SPDX-License-Identifier: MIT */
/*
 * edge.json: the node settings of portico-edge (docs/edge.md), loaded through common/config's
 * schema loader and then checked as a whole (host names, "host:port" forms, the liveness
 * timers' ranges of docs/protocol.md §11.5, admin TCP and token file together). Every
 * refusal is one message naming the file, the key path and the reason, as the loader's own
 * messages do. The loaded struct owns its strings; ptc_edge_config_free() releases them.
 *
 * Depends on common/config, common/net and common/log (level names); never on libuv I/O.
 */
#ifndef PTC_EDGE_EDGE_CONFIG_H
#define PTC_EDGE_EDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** tls: the default certificate (a chain, leaf first) and its key, as file paths. */
typedef struct ptc_edge_tls_cfg {
    char *cert;
    char *key;
} ptc_edge_tls_cfg_t;

/** admin: where the admin API listens (edge/admin.c reads these). */
typedef struct ptc_edge_admin_cfg {
    /* The unix socket path (default /run/portico/admin.sock). */
    char *socket;
    /* socket_mode as written ("0660"), and its value (0660). */
    char *socket_mode_text;
    unsigned socket_mode;
    /* Optional loopback TCP listener ("127.0.0.1:9443") and the file holding its bearer
     * token; both NULL or both set. */
    char *tcp;
    char *token_file;
} ptc_edge_admin_cfg_t;

/** log: minimum level (a ptc_log_level_t) and an optional file (NULL: stdout). */
typedef struct ptc_edge_log_cfg {
    int level;
    char *file;
} ptc_edge_log_cfg_t;

/** limits: every duration in milliseconds. */
typedef struct ptc_edge_limits_cfg {
    uint64_t handshake_timeout_ms; /* accept to TLS done, and accept to welcome (tunnels) */
    int64_t max_connections;       /* open public connections of any kind */
    int64_t max_tunnels;           /* authenticated tunnels */
    int64_t max_unauthenticated;   /* connections in the TLS or tunnel handshake */
    int64_t max_unauthenticated_per_address; /* the same, from one client address */
    uint64_t ping_interval_ms;               /* sent in welcome and used by the edge (§10) */
    uint64_t idle_timeout_ms;                /* sent in welcome and used by the edge (§10) */
    uint64_t drain_timeout_ms;               /* SIGTERM: how long in-flight work may finish */
    uint64_t http_head_timeout_ms;           /* a request head must arrive within this */
    uint64_t http_idle_timeout_ms; /* an idle keep-alive connection is closed after this */
    uint64_t max_head_bytes;       /* request line + headers (431 above) */
    int64_t max_headers;           /* header fields per request (431 above) */
    int64_t max_url_len;           /* request target (414 above) */
} ptc_edge_limits_cfg_t;

/** The whole edge.json. */
typedef struct ptc_edge_config {
    char **listen; /* "host:port" specs, at least one */
    size_t listen_cnt;
    char *edge_host;      /* lower-cased after loading */
    char *default_domain; /* lower-cased after loading */
    ptc_edge_tls_cfg_t tls;
    char **advertise; /* tunnel endpoints "host:port"; empty: edge_host:<first listen port> */
    size_t advertise_cnt;
    char *state_dir;
    ptc_edge_admin_cfg_t admin;
    ptc_edge_log_cfg_t log;
    ptc_edge_limits_cfg_t limits;
    /* Plain-HTTP listeners that answer every request with a 301 to https (may be empty). */
    char **http_listen;
    size_t http_listen_cnt;
    /* Add Server-Timing (edge and backend durations) to app responses. */
    bool server_timing;
} ptc_edge_config_t;

/**
 * Loads and checks the file at `path` into *out (zeroed first). Returns 0; PTC_ECONFIG with
 * a message "<path>: <key path>: <reason>" in err; or the negative errno of reading the file
 * (with the system's reason in err). Call ptc_edge_config_free() on success and failure alike.
 */
PTC_MUST_CHECK int ptc_edge_config_load(const char *path, ptc_edge_config_t *out, char *err,
                                        size_t errlen);

/**
 * As ptc_edge_config_load() for a document in memory (borrowed). `name` is used in messages;
 * relative paths are joined to `base_dir` (kept as written when NULL). Returns 0 or
 * PTC_ECONFIG.
 */
PTC_MUST_CHECK int ptc_edge_config_load_buffer(const char *name, const void *data, size_t len,
                                               const char *base_dir, ptc_edge_config_t *out,
                                               char *err, size_t errlen);

/** Frees what the loader allocated and zeroes *cfg. Safe on a zeroed struct and twice. */
void ptc_edge_config_free(ptc_edge_config_t *cfg);

/**
 * True if `name` is a DNS host name Portico accepts for edge_host and default_domain: 1..253
 * bytes of labels of 1..63 letters, digits and '-' (not at either end) separated by dots.
 */
bool ptc_edge_config_is_hostname(const char *name);

#endif
