/* SPDX-License-Identifier: MIT */
/*
 * JSON-lines logger (see log.h and docs/logging.md). Lines are built in a stack buffer that
 * moves to the heap only when a line outgrows it, with a small escaper of our own rather
 * than jansson: it needs no allocation per field, cuts strings at a UTF-8 boundary and
 * replaces invalid bytes, which jansson would refuse outright. Each finished line goes out
 * in one write(2) (or to the memory sink). The module owns no global mutable state.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

const char *const ptc_log_level_names[] = {"debug", "info", "warn", "error", NULL};

struct ptc_logger {
    char component[32];
    ptc_log_level_t min_level;
    int fd;       /* -1 for a sink logger */
    bool owns_fd; /* false for stdout */
    char *path;   /* NULL for stdout and sinks */
    ptc_log_sink_cb sink;
    void *sink_data;
    uint64_t dropped;
};

/* ---- line buffer ---- */

/* Lines start in a stack buffer this big; larger lines move to the heap. */
#define LINE_STACK 2048
/* A line never grows past this; further fields are dropped and the line stays valid. */
#define LINE_MAX_LEN (64 * 1024)

typedef struct line {
    char *p;
    size_t len;
    size_t cap;
    size_t limit;  /* len never grows past this */
    bool is_heap;  /* p was malloc'ed by line_reserve */
    bool is_fixed; /* p is the caller's buffer: never grow */
    bool is_full;  /* a reserve failed; later appends are refused */
} line_t;

static bool line_reserve(line_t *l, size_t n)
{
    if (l->is_full) {
        return false;
    }
    if (l->len + n <= l->cap) {
        return true;
    }
    if (l->is_fixed || l->len + n > l->limit) {
        l->is_full = true;
        return false;
    }
    size_t cap = l->cap * 2;
    while (cap < l->len + n) {
        cap *= 2;
    }
    if (cap > l->limit) {
        cap = l->limit;
    }
    char *np = l->is_heap ? realloc(l->p, cap) : malloc(cap);
    if (np == NULL) {
        l->is_full = true;
        return false;
    }
    if (!l->is_heap) {
        memcpy(np, l->p, l->len);
    }
    l->p = np;
    l->cap = cap;
    l->is_heap = true;
    return true;
}

static bool line_put(line_t *l, const void *p, size_t n)
{
    if (!line_reserve(l, n)) {
        return false;
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
    return true;
}

static bool line_puts(line_t *l, const char *s)
{
    return line_put(l, s, strlen(s));
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one
 * (overlong forms, surrogates, values above U+10FFFF and cut sequences are invalid: RFC 3629
 * section 4). */
static size_t utf8_seq_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if (avail < n) {
        return 0;
    }
    if (p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

/* Appends the escaped form of p[0..len), at most `max` input bytes, plus "…" if cut.
 * Stops at the first unit that does not fit (the line is then marked full). */
static void escape_into(line_t *l, const uint8_t *p, size_t len, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    bool is_cut = false;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n = utf8_seq_len(p + i, len - i);
        size_t in = n != 0 ? n : 1;
        if (i + in > max) {
            is_cut = true;
            break;
        }
        char esc[6];
        const char *out = esc;
        size_t olen;
        if (n == 0 || c == 0) {
            /* U+FFFD REPLACEMENT CHARACTER. NUL is replaced too: "\u0000" is valid JSON, but
             * jansson refuses it by default and C readers would cut the string there. */
            out = "\xef\xbf\xbd";
            olen = 3;
        } else if (n > 1) {
            out = (const char *)p + i;
            olen = n;
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            olen = 2;
        } else if (c == '\n') {
            out = "\\n";
            olen = 2;
        } else if (c == '\r') {
            out = "\\r";
            olen = 2;
        } else if (c == '\t') {
            out = "\\t";
            olen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            olen = 6;
        } else {
            esc[0] = (char)c;
            olen = 1;
        }
        if (!line_put(l, out, olen)) {
            return;
        }
        i += in;
    }
    if (is_cut) {
        line_puts(l, "\xe2\x80\xa6"); /* U+2026 HORIZONTAL ELLIPSIS */
    }
}

size_t ptc_log_escape(char *dst, size_t cap, const void *p, size_t len, size_t max)
{
    if (cap == 0) {
        return 0;
    }
    line_t l = {.p = dst, .len = 0, .cap = cap - 1, .limit = cap - 1, .is_fixed = true};
    escape_into(&l, p, len, max);
    dst[l.len] = '\0';
    return l.len;
}

static void put_jstr(line_t *l, const void *p, size_t len)
{
    line_puts(l, "\"");
    escape_into(l, p, len, PTC_LOG_MAX_VALUE);
    line_puts(l, "\"");
}

/* Keys are our own literals, but they are escaped anyway (and never cut) so that a bad key
 * cannot break the line. */
static void put_key(line_t *l, const char *prefix, const char *key)
{
    line_puts(l, ",\"");
    line_puts(l, prefix);
    escape_into(l, (const uint8_t *)key, strlen(key), SIZE_MAX);
    line_puts(l, "\":");
}

/* Values above INT64_MAX are written as strings: many JSON readers (jansson among them)
 * cannot hold a larger integer. */
static void put_u64(line_t *l, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    bool is_big = v > (uint64_t)INT64_MAX;
    if (is_big) {
        line_puts(l, "\"");
    }
    line_put(l, tmp, (size_t)n);
    if (is_big) {
        line_puts(l, "\"");
    }
}

static void put_i64(line_t *l, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    line_put(l, tmp, (size_t)n);
}

static void put_double(line_t *l, double d)
{
    if (!isfinite(d)) {
        line_puts(l, "null");
        return;
    }
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.15g", d);
    line_put(l, tmp, (size_t)n);
}

/* ---- redaction ---- */

/* Lowercase substrings that mark a key as secret ('-' is compared as '_'). "token" covers
 * access_token, id_token, refresh_token; "cookie" covers set-cookie; "secret" covers
 * client_secret. */
static const char *const secret_words[] = {
    "authorization", "cookie",    "token",         "secret",  "password", "passwd",
    "private_key",   "assertion", "code_verifier", "api_key", "apikey",   "session_key",
};

bool ptc_log_key_is_secret(const char *key)
{
    char low[128];
    size_t n = 0;
    for (; key[n] != '\0' && n < sizeof(low) - 1; n++) {
        char c = key[n];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        } else if (c == '-') {
            c = '_';
        }
        low[n] = c;
    }
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++) {
        if (strstr(low, secret_words[i]) != NULL) {
            return true;
        }
    }
    /* A key longer than the buffer is judged on its first 127 bytes; none of ours is. */
    return false;
}

/* ---- logger ---- */

static ptc_logger_t *logger_alloc(const char *component, ptc_log_level_t min_level)
{
    ptc_logger_t *lg = ptc_xcalloc(1, sizeof(*lg));
    snprintf(lg->component, sizeof(lg->component), "%s", component != NULL ? component : "");
    lg->min_level = min_level;
    lg->fd = -1;
    return lg;
}

static int open_log_file(const char *path)
{
    int fd;
    do {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int ptc_logger_new(ptc_logger_t **out, const char *component, ptc_log_level_t min_level,
                   const char *path)
{
    *out = NULL;
    ptc_logger_t *lg = logger_alloc(component, min_level);
    if (path == NULL) {
        lg->fd = STDOUT_FILENO;
        lg->owns_fd = false;
    } else {
        int fd = open_log_file(path);
        if (fd < 0) {
            free(lg);
            return fd;
        }
        lg->fd = fd;
        lg->owns_fd = true;
        lg->path = ptc_xstrdup(path);
    }
    *out = lg;
    return 0;
}

ptc_logger_t *ptc_logger_new_sink(const char *component, ptc_log_level_t min_level,
                                  ptc_log_sink_cb cb, void *data)
{
    ptc_logger_t *lg = logger_alloc(component, min_level);
    lg->sink = cb;
    lg->sink_data = data;
    return lg;
}

void ptc_logger_free(ptc_logger_t *logger)
{
    if (logger == NULL) {
        return;
    }
    if (logger->owns_fd && logger->fd >= 0) {
        close(logger->fd);
    }
    free(logger->path);
    free(logger);
}

int ptc_logger_reopen(ptc_logger_t *logger)
{
    if (logger->path == NULL) {
        return 0;
    }
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, logger);
    int fd = open_log_file(logger->path);
    if (fd < 0) {
        PTC_LOG(&ctx, PTC_LOG_ERROR, "log_reopen_failed", PTC_LOG_STR("path", logger->path),
                PTC_LOG_ERR(fd), PTC_LOG_END);
        return fd;
    }
    /* dup3 swaps the file under the same descriptor number in one step, so a write from
     * another thread lands either in the old file or in the new one, never on a closed fd. */
    int rc;
    do {
        rc = dup3(fd, logger->fd, O_CLOEXEC);
    } while (rc < 0 && errno == EINTR);
    int err = rc < 0 ? -errno : 0;
    close(fd);
    if (err != 0) {
        PTC_LOG(&ctx, PTC_LOG_ERROR, "log_reopen_failed", PTC_LOG_STR("path", logger->path),
                PTC_LOG_ERR(err), PTC_LOG_END);
        return err;
    }
    PTC_LOG(&ctx, PTC_LOG_INFO, "log_reopened", PTC_LOG_STR("path", logger->path), PTC_LOG_END);
    return 0;
}

void ptc_logger_set_level(ptc_logger_t *logger, ptc_log_level_t min_level)
{
    logger->min_level = min_level;
}

ptc_log_level_t ptc_logger_level(const ptc_logger_t *logger)
{
    return logger->min_level;
}

uint64_t ptc_logger_dropped(const ptc_logger_t *logger)
{
    return logger->dropped;
}

int ptc_log_level_parse(const char *name, ptc_log_level_t *out)
{
    for (int i = 0; ptc_log_level_names[i] != NULL; i++) {
        if (name != NULL && strcmp(name, ptc_log_level_names[i]) == 0) {
            *out = (ptc_log_level_t)i;
            return 0;
        }
    }
    return PTC_ECONFIG;
}

const char *ptc_log_level_name(ptc_log_level_t level)
{
    if ((int)level < (int)PTC_LOG_DEBUG || (int)level > (int)PTC_LOG_ERROR) {
        return "unknown";
    }
    return ptc_log_level_names[level];
}

/* ---- context ---- */

void ptc_log_ctx_init(ptc_log_ctx_t *ctx, ptc_logger_t *logger)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->logger = logger;
}

void ptc_log_ctx_derive(ptc_log_ctx_t *child, const ptc_log_ctx_t *parent)
{
    if (child != parent) {
        memcpy(child, parent, sizeof(*child));
    }
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strnlen(src, cap - 1) : 0;
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

void ptc_log_ctx_set_req(ptc_log_ctx_t *ctx, const char *req)
{
    copy_cut(ctx->req, sizeof(ctx->req), req);
}

void ptc_log_ctx_set_peer(ptc_log_ctx_t *ctx, const char *peer)
{
    copy_cut(ctx->peer, sizeof(ctx->peer), peer);
}

int ptc_log_ctx_set_peer_addr(ptc_log_ctx_t *ctx, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN]; /* "[" host "]:65535" then fits the 64-byte peer field */
    ctx->peer[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (uv_ip4_name(in, host, sizeof(host)) != 0) {
            return UV_EINVAL;
        }
        snprintf(ctx->peer, sizeof(ctx->peer), "%s:%u", host, (unsigned)ntohs(in->sin_port));
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (uv_ip6_name(in6, host, sizeof(host)) != 0) {
            return UV_EINVAL;
        }
        snprintf(ctx->peer, sizeof(ctx->peer), "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
        return 0;
    }
    return UV_EAFNOSUPPORT;
}

bool ptc_log_enabled(const ptc_log_ctx_t *ctx, ptc_log_level_t level)
{
    return ctx != NULL && ctx->logger != NULL && level >= ctx->logger->min_level;
}

/* ---- writing ---- */

/* Keys the line may already hold; a caller field with one of these names is renamed. */
enum {
    K_CONN = 1u << 0,
    K_TUNNEL = 1u << 1,
    K_STREAM = 1u << 2,
    K_REQ = 1u << 3,
    K_PEER = 1u << 4,
    K_ACTION = 1u << 5,
    K_ERR = 1u << 6,
};

static bool key_taken(const char *key, unsigned have)
{
    static const struct {
        const char *key;
        unsigned bit; /* 0: always present */
    } keys[] = {
        {"ts", 0},        {"level", 0},         {"event", 0},         {"component", 0},
        {"conn", K_CONN}, {"tunnel", K_TUNNEL}, {"stream", K_STREAM}, {"req", K_REQ},
        {"peer", K_PEER}, {"action", K_ACTION}, {"err", K_ERR},       {"err_code", K_ERR},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if ((keys[i].bit == 0 || (have & keys[i].bit) != 0) && strcmp(key, keys[i].key) == 0) {
            return true;
        }
    }
    return false;
}

static void put_ts(line_t *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(ts.tv_nsec / 1000000));
    line_put(l, tmp, (size_t)n);
}

static void put_field(line_t *l, const ptc_log_field_t *f, unsigned *have)
{
    if (f->type == PTC_LOG_F_ERR) {
        /* err and err_code are reserved for this field; a second one is renamed. */
        const char *prefix = (*have & K_ERR) != 0 ? "field_" : "";
        *have |= K_ERR;
        put_key(l, prefix, "err");
        line_puts(l, "\"");
        line_puts(l, ptc_errname(f->v.err));
        line_puts(l, "\"");
        put_key(l, prefix, "err_code");
        put_i64(l, f->v.err);
        return;
    }
    const char *key = f->key != NULL ? f->key : "";
    put_key(l, key_taken(key, *have) ? "field_" : "", key);
    if (ptc_log_key_is_secret(key)) {
        line_puts(l, "\"[redacted]\"");
        return;
    }
    switch (f->type) {
    case PTC_LOG_F_STR:
        if (f->v.s == NULL) {
            line_puts(l, "null");
        } else {
            put_jstr(l, f->v.s, strlen(f->v.s));
        }
        break;
    case PTC_LOG_F_PEER:
        if (f->v.bytes.ptr == NULL) {
            line_puts(l, "null");
        } else {
            put_jstr(l, f->v.bytes.ptr, f->v.bytes.len);
        }
        break;
    case PTC_LOG_F_INT:
        put_i64(l, f->v.i);
        break;
    case PTC_LOG_F_UINT:
        put_u64(l, f->v.u);
        break;
    case PTC_LOG_F_BOOL:
        line_puts(l, f->v.b ? "true" : "false");
        break;
    case PTC_LOG_F_DOUBLE:
        put_double(l, f->v.d);
        break;
    case PTC_LOG_F_END:
    case PTC_LOG_F_ERR:
        /* Handled by the caller and above. */
        line_puts(l, "null");
        break;
    }
}

/* Sends the finished line with one write(2). A short write (a pipe with more than PIPE_BUF
 * bytes queued, a full disk) is finished with further writes rather than left as a broken
 * line; EAGAIN on a non-blocking stdout drops the line instead of blocking the loop. */
static void emit(ptc_logger_t *lg, const char *p, size_t len)
{
    if (lg->sink != NULL) {
        lg->sink(lg->sink_data, p, len);
        return;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(lg->fd, p + off, len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            lg->dropped++;
            return;
        }
        off += (size_t)n;
    }
}

void ptc_log_write(const ptc_log_ctx_t *ctx, ptc_log_level_t level, const char *event,
                   const ptc_log_field_t *fields)
{
    if (!ptc_log_enabled(ctx, level)) {
        return;
    }
    ptc_logger_t *lg = ctx->logger;
    char stack[LINE_STACK];
    /* Two bytes stay in reserve for the closing "}\n". */
    line_t l = {.p = stack, .len = 0, .cap = sizeof(stack), .limit = LINE_MAX_LEN - 2};
    unsigned have = 0;

    put_ts(&l);
    line_puts(&l, ",\"level\":\"");
    line_puts(&l, ptc_log_level_name(level));
    line_puts(&l, "\",\"event\":");
    put_jstr(&l, event != NULL ? event : "", event != NULL ? strlen(event) : 0);
    line_puts(&l, ",\"component\":");
    put_jstr(&l, lg->component, strlen(lg->component));
    if (ctx->conn != 0) {
        put_key(&l, "", "conn");
        put_u64(&l, ctx->conn);
        have |= K_CONN;
    }
    if (ctx->tunnel != 0) {
        put_key(&l, "", "tunnel");
        put_u64(&l, ctx->tunnel);
        have |= K_TUNNEL;
    }
    if (ctx->stream != 0) {
        put_key(&l, "", "stream");
        put_u64(&l, ctx->stream);
        have |= K_STREAM;
    }
    if (ctx->req[0] != '\0') {
        put_key(&l, "", "req");
        put_jstr(&l, ctx->req, strnlen(ctx->req, sizeof(ctx->req)));
        have |= K_REQ;
    }
    if (ctx->peer[0] != '\0') {
        put_key(&l, "", "peer");
        put_jstr(&l, ctx->peer, strnlen(ctx->peer, sizeof(ctx->peer)));
        have |= K_PEER;
    }
    if (ctx->action != NULL) {
        put_key(&l, "", "action");
        put_jstr(&l, ctx->action, strlen(ctx->action));
        have |= K_ACTION;
    }

    if (l.is_full) {
        /* Only an allocation failure gets here: the context part is far below the limit. */
        lg->dropped++;
        goto out;
    }
    /* Each field is appended whole or not at all: on overflow the line is cut back to the
     * last complete field, so it stays valid JSON. */
    for (const ptc_log_field_t *f = fields; f != NULL && f->type != PTC_LOG_F_END; f++) {
        size_t before = l.len;
        put_field(&l, f, &have);
        if (l.is_full) {
            l.len = before;
            break;
        }
    }
    l.is_full = false;
    l.limit += 2;
    if (!line_puts(&l, "}\n")) {
        lg->dropped++;
        goto out;
    }
    emit(lg, l.p, l.len);
out:
    if (l.is_heap) {
        free(l.p);
    }
}
