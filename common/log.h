/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines logging (STYLE §7, docs/logging.md). A ptc_logger_t is created once per process
 * by main and handed to every owner; it holds the component name, the minimum level and the
 * destination (stdout, a file reopened on demand for log rotation, or a memory sink for
 * tests). Each owner (connection, tunnel, stream, request) embeds a ptc_log_ctx_t with its
 * ids, and every log call takes that context, so ids are added without the caller's help.
 *
 * A line is one JSON object: ts, level, event, component, the context's ids, then the call's
 * fields. It is built in memory by this module's own escaper and written with one write(2),
 * so lines never interleave. String values are escaped (control characters, quotes, invalid
 * UTF-8) and cut at 256 bytes; fields whose key names a secret (authorization, cookie,
 * token, ...) are written as "[redacted]" whatever their value.
 *
 * There is no mutable global state. Depends on libc, libuv (address formatting) and
 * common/err.
 */
#ifndef PTC_COMMON_LOG_H
#define PTC_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct sockaddr;

/** Severity, in increasing order. Lines below the logger's minimum level are not built. */
typedef enum ptc_log_level {
    PTC_LOG_DEBUG = 0,
    PTC_LOG_INFO = 1,
    PTC_LOG_WARN = 2,
    PTC_LOG_ERROR = 3,
} ptc_log_level_t;

/** Level names as written in the `level` key and accepted by config files, in enum order,
 * NULL-terminated: {"debug", "info", "warn", "error", NULL}. */
extern const char *const ptc_log_level_names[];

/** String values (STR and PEER fields, req, peer) are cut to this many bytes of input. */
#define PTC_LOG_MAX_VALUE 256
/** Capacity of the request-id buffer in a context (longer ids are cut). */
#define PTC_LOG_REQ_CAP 64
/** Capacity of the peer-address buffer in a context ("[v6 address]:port" fits). */
#define PTC_LOG_PEER_CAP 64

/** The process's logger (opaque): created by main, borrowed by every context. */
typedef struct ptc_logger ptc_logger_t;

/**
 * A memory sink: receives each complete line (including the trailing '\n', not
 * NUL-terminated) instead of a write(2). Called synchronously from the log call; `line` is
 * valid only during the call.
 */
typedef void (*ptc_log_sink_cb)(void *data, const char *line, size_t len);

/* ---- logger ---- */

/**
 * Creates a logger that writes to `path` (opened O_APPEND|O_CREAT, mode 0640), or to stdout
 * when `path` is NULL. `component` ("edge", "connector", "cli") is copied (at most 31
 * bytes). On success *out owns the logger: free it with ptc_logger_free(). Returns 0, or the
 * negative errno of open(2) (UV_EACCES, UV_ENOENT, ...), in which case *out is NULL.
 */
PTC_MUST_CHECK int ptc_logger_new(ptc_logger_t **out, const char *component,
                                  ptc_log_level_t min_level, const char *path);

/**
 * Creates a logger that hands each line to `cb` (for tests, or for forwarding). `data` is
 * passed back to the callback. Never fails (aborts on out-of-memory). Free with
 * ptc_logger_free().
 */
ptc_logger_t *ptc_logger_new_sink(const char *component, ptc_log_level_t min_level,
                                  ptc_log_sink_cb cb, void *data);

/** Closes the file (never stdout) and frees the logger. NULL is allowed. Contexts that
 * still point to it must not be used afterwards. */
void ptc_logger_free(ptc_logger_t *logger);

/**
 * Opens the log file path again (append, create, 0640) and switches to it, for rotation on
 * SIGHUP/SIGUSR1: the old descriptor is replaced atomically (dup3), so no line is lost or
 * split. Then logs `log_reopened` (info). A no-op returning 0 for stdout and sink loggers.
 * On failure the logger keeps writing to the old file, logs `log_reopen_failed` (error) and
 * returns the negative errno.
 */
PTC_MUST_CHECK int ptc_logger_reopen(ptc_logger_t *logger);

/** Changes the minimum level (for a configuration reload). */
void ptc_logger_set_level(ptc_logger_t *logger, ptc_log_level_t min_level);

/** The current minimum level. */
ptc_log_level_t ptc_logger_level(const ptc_logger_t *logger);

/** Lines dropped because write(2) failed or would block, or memory ran out. */
uint64_t ptc_logger_dropped(const ptc_logger_t *logger);

/** Parses a level name ("debug", "info", "warn", "error"). Returns 0 or PTC_ECONFIG. */
PTC_MUST_CHECK int ptc_log_level_parse(const char *name, ptc_log_level_t *out);

/** The name of a level ("info"); "unknown" for values outside the enum. Never NULL. */
const char *ptc_log_level_name(ptc_log_level_t level);

/* ---- context ---- */

/**
 * Logging context, embedded by each owner (connection, tunnel, stream, request). Ids that
 * are 0 and strings that are empty are not written. `action` is a borrowed static string
 * ("reading request head", "connecting to backend") that says what the owner is doing; it
 * is written as the `action` key when set. The fields may be set directly; req and peer are
 * copies (use the setters, which cut to the buffer size).
 */
typedef struct ptc_log_ctx {
    ptc_logger_t *logger; /* borrowed; NULL makes every log call a no-op */
    uint64_t conn;
    uint64_t tunnel;
    uint64_t stream;
    const char *action; /* borrowed, usually a string literal */
    char req[PTC_LOG_REQ_CAP];
    char peer[PTC_LOG_PEER_CAP];
} ptc_log_ctx_t;

/** Initializes an empty context bound to `logger` (which may be NULL). */
void ptc_log_ctx_init(ptc_log_ctx_t *ctx, ptc_logger_t *logger);

/** Initializes `child` as a copy of `parent` (logger, ids, peer, action), for a tunnel's
 * stream or a connection's request; the child then sets its own ids. */
void ptc_log_ctx_derive(ptc_log_ctx_t *child, const ptc_log_ctx_t *parent);

/** Copies the request id (cut to PTC_LOG_REQ_CAP - 1 bytes); NULL clears it. The bytes are
 * escaped when written, so a peer-supplied id is safe. */
void ptc_log_ctx_set_req(ptc_log_ctx_t *ctx, const char *req);

/** Copies the peer address text (cut to PTC_LOG_PEER_CAP - 1 bytes); NULL clears it. */
void ptc_log_ctx_set_peer(ptc_log_ctx_t *ctx, const char *peer);

/** Formats an AF_INET or AF_INET6 address as "1.2.3.4:5678" or "[::1]:443" into the peer
 * field. Returns 0, or UV_EAFNOSUPPORT for another family (the peer is cleared). */
PTC_MUST_CHECK int ptc_log_ctx_set_peer_addr(ptc_log_ctx_t *ctx, const struct sockaddr *sa);

/** True if a line at `level` would be written (ctx and its logger non-NULL, level at or
 * above the minimum). Use it to skip building costly fields. */
bool ptc_log_enabled(const ptc_log_ctx_t *ctx, ptc_log_level_t level);

/* ---- fields ---- */

/** The type of a log field's value (set by the PTC_LOG_* field macros). */
typedef enum ptc_log_ftype {
    PTC_LOG_F_END = 0,
    PTC_LOG_F_STR,
    PTC_LOG_F_INT,
    PTC_LOG_F_UINT,
    PTC_LOG_F_BOOL,
    PTC_LOG_F_DOUBLE,
    PTC_LOG_F_PEER,
    PTC_LOG_F_ERR,
} ptc_log_ftype_t;

/**
 * One typed field. Build them with the PTC_LOG_* macros below, never by hand. Keys are
 * string literals of our own code; values are borrowed for the duration of the call.
 */
typedef struct ptc_log_field {
    ptc_log_ftype_t type;
    const char *key;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        bool b;
        double d;
        int err;
        struct {
            const void *ptr;
            size_t len;
        } bytes;
    } v;
} ptc_log_field_t;

/** A NUL-terminated string (NULL is written as null). Escaped and cut to 256 bytes. */
#define PTC_LOG_STR(k, s_) ((ptc_log_field_t){.type = PTC_LOG_F_STR, .key = (k), .v.s = (s_)})
/** A signed integer. */
#define PTC_LOG_INT(k, i_)                                                                         \
    ((ptc_log_field_t){.type = PTC_LOG_F_INT, .key = (k), .v.i = (int64_t)(i_)})
/** An unsigned integer. */
#define PTC_LOG_UINT(k, u_)                                                                        \
    ((ptc_log_field_t){.type = PTC_LOG_F_UINT, .key = (k), .v.u = (uint64_t)(u_)})
/** true or false. */
#define PTC_LOG_BOOL(k, b_)                                                                        \
    ((ptc_log_field_t){.type = PTC_LOG_F_BOOL, .key = (k), .v.b = (b_) ? true : false})
/** A number (NaN and infinities are written as null). */
#define PTC_LOG_DOUBLE(k, d_)                                                                      \
    ((ptc_log_field_t){.type = PTC_LOG_F_DOUBLE, .key = (k), .v.d = (double)(d_)})
/** Peer-supplied bytes (not NUL-terminated): escaped, invalid UTF-8 replaced, cut to 256. */
#define PTC_LOG_PEER(k, p_, len_)                                                                  \
    ((ptc_log_field_t){                                                                            \
        .type = PTC_LOG_F_PEER, .key = (k), .v.bytes = {.ptr = (p_), .len = (size_t)(len_)}})
/** An error: adds `err` (ptc_errname) and `err_code` (the number). */
#define PTC_LOG_ERR(code_)                                                                         \
    ((ptc_log_field_t){.type = PTC_LOG_F_ERR, .key = "err", .v.err = (code_)})
/** Ends a field list. */
#define PTC_LOG_END ((ptc_log_field_t){.type = PTC_LOG_F_END, .key = NULL})

/**
 * Logs one line if `level` is enabled for `ctx`; otherwise the field arguments are not even
 * evaluated. `event` is a stable snake_case name listed in docs/logging.md. The fields end
 * with PTC_LOG_END (which may be the only one):
 *
 *     PTC_LOG(&c->log, PTC_LOG_INFO, "tunnel_up", PTC_LOG_STR("group", g), PTC_LOG_END);
 */
#define PTC_LOG(ctx, level, event, ...)                                                            \
    do {                                                                                           \
        const ptc_log_ctx_t *ptc_log_ctx_ = (ctx);                                                 \
        ptc_log_level_t ptc_log_level_ = (level);                                                  \
        if (ptc_log_enabled(ptc_log_ctx_, ptc_log_level_)) {                                       \
            ptc_log_write(ptc_log_ctx_, ptc_log_level_, (event),                                   \
                          (const ptc_log_field_t[]){__VA_ARGS__, PTC_LOG_END});                    \
        }                                                                                          \
    } while (0)

/**
 * Builds and writes one line. `fields` is an array ended by PTC_LOG_END, or NULL. Does
 * nothing if the level is filtered. A field whose key is one the line already holds (ts,
 * level, event, component, an id of the context, err, err_code) is written as
 * "field_<key>" so that keys stay unique. Never fails: a line that cannot be written is
 * counted in ptc_logger_dropped().
 */
void ptc_log_write(const ptc_log_ctx_t *ctx, ptc_log_level_t level, const char *event,
                   const ptc_log_field_t *fields);

/* ---- helpers shared with other modules ---- */

/**
 * True if a field named `key` must never be logged: its lowercase name, with '-' read as
 * '_', is or contains one of authorization, cookie, token, secret, password, passwd,
 * private_key, assertion, code_verifier, api_key, apikey, session_key (docs/logging.md).
 */
bool ptc_log_key_is_secret(const char *key);

/**
 * Writes p[0..len) as the inside of a JSON string (no quotes) into dst: '"', '\\' and
 * control characters escaped, DEL as \u007f, NUL and invalid UTF-8 bytes as U+FFFD. At most `max`
 * input bytes are used (cut at a character boundary), and "…" is appended when the input was
 * cut. Output never exceeds cap - 1 bytes (whole escapes only) and is NUL-terminated when
 * cap > 0. Returns the output length.
 */
size_t ptc_log_escape(char *dst, size_t cap, const void *p, size_t len, size_t max);

#endif
