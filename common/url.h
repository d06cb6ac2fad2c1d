/* SPDX-License-Identifier: MIT */
/*
 * URLs on Debian's liburiparser (RFC 3986): parsing absolute URLs from configuration and the
 * admin API into their parts, resolving references against a base, normalising request paths
 * for routing, and the segment-wise "is this path under that prefix" test that confines
 * requests to an app's published path.
 *
 * Request-path normalisation is the security-relevant part: the edge routes on, and forwards,
 * the normalised path, so `/app/%2e%2e/admin` and `/app/../admin` both become `/admin` before
 * any prefix is compared, while `%2F` stays encoded (it is data, not a separator). Everything
 * here is pure (no I/O, no clock, no logging). Depends on liburiparser, common/err and
 * common/keys (wiping decoded passwords).
 */
#ifndef PTC_COMMON_URL_H
#define PTC_COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** Longest URL ptc_url_parse() accepts, in bytes. */
#define PTC_URL_MAX_LEN 8192
/** Longest host name (RFC 1035 §2.3.4, without a trailing dot). */
#define PTC_URL_HOST_MAX 253
/** Room for any host ptc_url_parse_authority() writes: a name, or an IPv6 text form. */
#define PTC_URL_HOST_CAP 256

typedef enum ptc_url_host_type {
    PTC_URL_HOST_NAME, /* a DNS name: labels of [a-z0-9_-], lower-cased */
    PTC_URL_HOST_IPV4, /* dotted quad */
    PTC_URL_HOST_IPV6, /* canonical text form (inet_ntop), without brackets */
} ptc_url_host_type_t;

/**
 * An absolute URL split into parts. Every string is owned by the struct (heap, NUL-terminated)
 * and released by ptc_url_dispose().
 */
typedef struct ptc_url {
    char *scheme;   /* lower-case: "http", "https", "ws" or "wss" */
    char *user;     /* percent-decoded; NULL unless PTC_URL_USERINFO and present */
    char *password; /* percent-decoded; NULL when absent (also with "user@") */
    char *host;     /* lower-case; IPv6 without brackets */
    ptc_url_host_type_t host_type;
    uint16_t port; /* the explicit port, or the scheme's default */
    bool has_port; /* the URL names a port explicitly */
    char *path;    /* as written (still percent-encoded); never empty: "/" at least */
    char *query;   /* without the '?'; NULL when the URL has none ("" for a bare '?') */
} ptc_url_t;

/** Flags for ptc_url_parse(). */
enum {
    /** Only http and https are accepted (otherwise also ws and wss). */
    PTC_URL_HTTP = 1u << 0,
    /** "user:password@" is accepted and decoded (otherwise refused: it leaks in logs). */
    PTC_URL_USERINFO = 1u << 1,
};

/**
 * Parses an absolute URL such as "https://Hr.Example.com:8443/app/?x=1". Refused with
 * PTC_EFORMAT and a message in err (without the "got ..." part, so the caller can name its
 * field): a relative reference, a scheme other than http, https, ws, wss (only http and https
 * with PTC_URL_HTTP), user information (unless PTC_URL_USERINFO), any fragment, a missing,
 * empty or invalid host (only DNS names of letters, digits, '-' and '_', IPv4 dotted quads and
 * IPv6 literals in brackets; no IPvFuture, no percent-encoding, no trailing dot), a port of
 * 0 or above 65535 (an empty port, "host:", means the default), and URLs longer than
 * PTC_URL_MAX_LEN (PTC_ELIMIT). On error *out is zeroed; on success the caller releases it
 * with ptc_url_dispose().
 */
PTC_MUST_CHECK int ptc_url_parse(const char *text, unsigned flags, ptc_url_t *out, char *err,
                                 size_t errlen);

/** Frees the strings of a parsed URL and zeroes it. Safe on a zeroed struct and twice. */
void ptc_url_dispose(ptc_url_t *u);

/** The default port of a scheme (http/ws 80, https/wss 443), or 0 when it has none. */
uint16_t ptc_url_default_port(const char *scheme);

/**
 * True if `host` (NUL-terminated, as written in a URL without brackets) is a valid DNS name
 * for Portico: 1..253 bytes, dot-separated labels of 1..63 letters, digits, '-' or '_', no
 * label starting or ending with '-', and a last label that is not all digits (that would
 * read as an IPv4 address). Upper-case letters are accepted (compare lower-cased).
 */
bool ptc_url_host_is_valid_name(const char *host);

/**
 * Parses an authority "host", "host:port", "[v6]" or "[v6]:port" (a Host header, a listen or
 * advertise address): len bytes, not NUL-terminated. Writes the host lower-cased (IPv6 in
 * canonical form, without brackets) into host[0..cap) and the port into *port (0 when
 * absent). Returns 0, or PTC_EFORMAT for an invalid host or port (as in ptc_url_parse) or a
 * host that does not fit.
 */
PTC_MUST_CHECK int ptc_url_parse_authority(const char *text, size_t len, char *host, size_t cap,
                                           uint16_t *port);

/**
 * Writes "host:port" into out, with brackets around an IPv6 host ("[::1]:443"). Returns 0 or
 * PTC_ELIMIT if it does not fit.
 */
PTC_MUST_CHECK int ptc_url_format_authority(const char *host, uint16_t port, char *out, size_t cap);

/**
 * Resolves the reference `ref` against the absolute URL `base` (RFC 3986 §5.2, strict mode:
 * "http:g" keeps its scheme) and removes dot segments. On success *out is a heap string the
 * caller frees. Returns 0, PTC_EFORMAT (base not absolute, either not a URI), or PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_url_resolve(const char *base, const char *ref, char **out);

/**
 * Normalises an origin-form request target ("/path" or "/path?query", len bytes, need not be
 * NUL-terminated) for routing and forwarding:
 *
 * 1. Bytes outside RFC 3986's pchar set (space, '"', '<', '>', '\\', '^', '`', '{', '|', '}',
 *    '[', ']' and every byte >= 0x80) are percent-encoded, as browsers do.
 * 2. Percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded and the other
 *    escapes are written in upper case (§6.2.2.1, §6.2.2.2), so "%2e" is '.' and "%2f" stays
 *    "%2F": an encoded slash never becomes a separator.
 * 3. Dot segments are removed (§5.2.4), after step 2, so "/app/%2e%2e/admin" and
 *    "/app/../admin" are both "/admin"; ".." never climbs above the root.
 * The query (everything after the first '?') is copied untouched.
 *
 * Refused with PTC_EFORMAT: a target that does not start with '/', a NUL or another control
 * byte, '#', a '%' not followed by two hex digits, and "%00". On success *out is a heap string
 * (the normalised path, then '?' and the query if the target had one) that the caller frees,
 * and *path_len (may be NULL) the length of the path part. PTC_ENOMEM if memory runs out.
 */
PTC_MUST_CHECK int ptc_url_normalize_target(const char *target, size_t len, char **out,
                                            size_t *path_len);

/**
 * True if the path `path` (path_len bytes; no query) lies under `prefix` (NUL-terminated,
 * starting with '/'), segment-wise: "/app/" and "/app" both cover "/app", "/app/" and
 * "/app/x", never "/apple". The prefix "/" covers every path. Byte comparison: paths are
 * case-sensitive; pass normalised paths (ptc_url_normalize_target).
 */
bool ptc_url_path_under(const char *path, size_t path_len, const char *prefix);

/** The value of a hex digit (either case), or -1 for any other character. */
int ptc_url_hex_value(int c);

#endif
