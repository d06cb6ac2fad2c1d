/* SPDX-License-Identifier: MIT */
/*
 * edge.json: the node settings of portico-edge (docs/edge.md), loaded through common/config's
 * schema loader and then checked as a whole (host names, "host:port" forms, the liveness
 * timers' ranges of docs/protocol.md §11.5, admin TCP and token file together, the OpenID
 * Connect providers and the session durations). Every
 * refusal is one message naming the file, the key path and the reason, as the loader's own
 * messages do. The loaded struct owns its strings; ptc_edge_config_free() releases them.
 *
 * Loading reads each provider's client_secret_file (a secret: wiped on free, never put in a
 * message). Depends on common/config, common/net, common/url and common/log (level names);
 * never on libuv I/O.
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

/** idps[].token_endpoint_auth_method (RFC 6749 §2.3.1, OpenID Connect Core §9). */
typedef enum ptc_edge_idp_auth {
    PTC_EDGE_IDP_CLIENT_SECRET_BASIC = 0, /* HTTP Basic with the form-urlencoded id and secret */
    PTC_EDGE_IDP_CLIENT_SECRET_POST = 1,  /* client_id and client_secret in the form body */
} ptc_edge_idp_auth_t;

/** One OpenID Connect provider of idps[] (edge/oidc.c uses it). */
typedef struct ptc_edge_idp_cfg {
    char *name;   /* unique among the providers: 1..63 of [a-z0-9-] */
    char *issuer; /* as written: compared exactly with the discovery document's issuer */
    char *client_id;
    char *client_secret_file;
    int token_endpoint_auth_method; /* a ptc_edge_idp_auth_t */
    char **scopes;                  /* contains "openid"; default openid, email, profile */
    size_t scopes_cnt;
    char *groups_claim; /* the ID token claim holding the groups (default "groups") */
    char *ca_file;      /* PEM bundle the provider's TLS is validated against; NULL: system */
    /* The secret read from client_secret_file at load (one trailing line break removed).
     * Never logged; ptc_edge_config_free() wipes it. */
    char *client_secret;
} ptc_edge_idp_cfg_t;

/** session: the browser sessions of the OIDC pre-authentication, in seconds. */
typedef struct ptc_edge_session_cfg {
    char *lifetime_text;     /* as written ("8h") */
    char *key_rotation_text; /* as written ("7d") */
    int64_t lifetime_s;      /* a session cookie is valid this long after sign-in */
    int64_t key_rotation_s;  /* the session key is replaced when older than this */
} ptc_edge_session_cfg_t;

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
    /* OpenID Connect providers for apps with pre_auth "oidc" (may be empty). */
    ptc_edge_idp_cfg_t *idps;
    size_t idps_cnt;
    ptc_edge_session_cfg_t session;
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

/**
 * Looks up a provider of idps[] by name. Returns it (borrowed from cfg) or NULL when there
 * is none of that name.
 */
const ptc_edge_idp_cfg_t *ptc_edge_config_find_idp(const ptc_edge_config_t *cfg, const char *name);

/** Frees what the loader allocated (wiping client secrets) and zeroes *cfg. Safe on a zeroed
 * struct and twice. */
void ptc_edge_config_free(ptc_edge_config_t *cfg);

/**
 * True if `name` is a DNS host name Portico accepts for edge_host and default_domain: 1..253
 * bytes of labels of 1..63 letters, digits and '-' (not at either end) separated by dots.
 */
bool ptc_edge_config_is_hostname(const char *name);

/**
 * True if `host` (as ptc_url_parse() writes it: lower-case, IPv6 without brackets) is a
 * loopback address: 127.0.0.0/8, ::1 or the name localhost. Plain-http issuers are accepted
 * only there.
 */
bool ptc_edge_config_is_loopback_host(const char *host);

#endif
