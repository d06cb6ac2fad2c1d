/* SPDX-License-Identifier: MIT */
/*
 * URL translation for apps with translate_headers / translate_body (DESIGN §1 step 8, §4): a
 * translator built from an app's internal and external URLs rewrites internal URLs into
 * external ones, with the path prefix mapped (internal http://hr.corp.local:8080/app/x becomes
 * external https://apps.example.com/hr/x). Two uses:
 *
 * - Response headers: Location, Content-Location, the URL of Refresh, and the Domain and Path
 *   attributes of Set-Cookie, one value at a time.
 * - Response bodies: a streaming rewriter for HTML, CSS and JavaScript text that replaces every
 *   occurrence of the internal base URL (absolute, scheme-relative, and JSON-escaped forms)
 *   while chunks pass through, matches split across chunks included. It holds back only a
 *   bounded tail (shorter than the longest pattern), never the whole body.
 *
 * Pure: no I/O, no libuv, no clock, no logging. Depends on common/buf, common/url and
 * common/http (field-value checks).
 */
#ifndef PTC_EDGE_TRANSLATE_H
#define PTC_EDGE_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/** A translator for one (internal URL, external URL) pair: immutable, reference-counted. */
typedef struct ptc_translate ptc_translate_t;

/** The state of one body being rewritten (one response). */
typedef struct ptc_translate_body ptc_translate_body_t;

/**
 * Builds a translator from an app's internal_url and external_url (absolute http or https
 * URLs; NUL-terminated, borrowed for the call). A path that does not end in '/' is taken as
 * a prefix all the same ("/app" is "/app/"). Returns 0 and *out (one reference, released with
 * ptc_translate_unref), or PTC_EFORMAT for a URL that is not an absolute http(s) URL without
 * query or fragment (or whose path holds bytes other than visible ASCII), PTC_ELIMIT for a
 * URL longer than PTC_URL_MAX_LEN. On error *out is NULL.
 */
PTC_MUST_CHECK int ptc_translate_new(const char *internal_url, const char *external_url,
                                     ptc_translate_t **out);

/** Takes a reference (the count is not atomic: one loop). Returns `t`. */
ptc_translate_t *ptc_translate_ref(ptc_translate_t *t);

/** Drops a reference; the last one frees the translator. NULL is ignored. */
void ptc_translate_unref(ptc_translate_t *t);

/* ---- headers ---- */

/**
 * True if responses' header `name` is one the translator rewrites (ASCII case-insensitive):
 * Location, Content-Location, Refresh, Set-Cookie.
 */
bool ptc_translate_header_applies(ptc_slice_t name);

/**
 * Translates the value of response header `name` (both borrowed) and appends the result to
 * `out` (the translated value, or an exact copy when nothing applies; nothing else is
 * appended, so the caller may append several values to one buffer and note offsets).
 * *changed (may be NULL) tells whether the value was rewritten.
 *
 * What is rewritten (anything else is copied unchanged):
 * - Location and Content-Location: the whole value as a URL reference; Refresh: the URL after
 *   the delay ("5; url=...", "5;URL='...'", "0, url=...", "0; ..." without "url=").
 *   A URL is rewritten when it is absolute with the internal origin (scheme, case-insensitive
 *   host, port written or the scheme's default), scheme-relative ("//host:port/...") with the
 *   internal host and port, or an absolute path; and in each case its path lies under the
 *   internal path prefix, segment-wise. URLs with user information, relative paths, and URLs
 *   outside the published path are left alone. A rewritten path that would start with "//"
 *   or "/\" (read by browsers as another host) is written as an absolute external URL.
 * - Set-Cookie: a Domain attribute equal to the internal host, or a parent domain of it
 *   (".corp.local" for hr.corp.local), becomes the external host; a Path under the internal
 *   prefix is mapped to the external prefix, and a Path above it ("/" for "/app/") becomes
 *   the external prefix (without its trailing '/', so that it also covers "/hr"). Attribute
 *   names are matched case-insensitively in any order; the cookie pair itself and all other
 *   bytes are kept exactly.
 *
 * The output is always a valid field value (RFC 9110 §5.5): only the input's bytes and the
 * configured URLs' visible ASCII. Returns 0, PTC_EHTTP when `value` is not a valid field
 * value (CR, LF, NUL or another control byte: nothing is appended), or PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_translate_header(const ptc_translate_t *t, ptc_slice_t name,
                                        ptc_slice_t value, ptc_buf_t *out, bool *changed);

/* ---- bodies ---- */

/**
 * True if a Content-Type value (borrowed; parameters such as charset are ignored, the media
 * type is compared case-insensitively) names a text body the rewriter handles: text/html,
 * application/xhtml+xml, text/css, text/javascript, application/javascript,
 * application/x-javascript.
 */
bool ptc_translate_is_text(ptc_slice_t content_type);

/**
 * True if a response body should go through the rewriter: its Content-Type is text
 * (ptc_translate_is_text) and its Content-Encoding is absent (an empty slice) or "identity".
 * A compressed body is passed through untranslated. The proxy removes Content-Length from a
 * translated response (the length changes: chunked toward the client) and Accept-Encoding
 * from requests of apps with translate_body.
 */
bool ptc_translate_body_wanted(ptc_slice_t content_type, ptc_slice_t content_encoding);

/**
 * Starts rewriting one body. The state takes a reference on `t` (released by
 * ptc_translate_body_free). Its memory is O(longest pattern), allocated here; aborts if
 * memory runs out (fixed-size bookkeeping).
 *
 * Rewritten forms of the internal base URL B = scheme://host[:port]/prefix/ (host compared
 * case-insensitively, the path case-sensitively):
 * - absolute: "http://host:port/prefix" with the port written, or also without it when it
 *   is the scheme's default; the same with ws:// (wss:// for https) for WebSocket URLs;
 * - scheme-relative: "//host:port/prefix", unless preceded by ':' or a URL character;
 * - JSON-escaped: each of the above with every '/' written "\/".
 * A match must be followed by a delimiter ('/', '?', '#', a quote, whitespace, one of
 * "()<>[]{}\\,;&|", or the end of the body), so "/apple" or "host.evil" never match, and an
 * absolute form must not be preceded by a scheme character. The replacement is the external
 * base URL in the same form (https:// or wss://, its own port when not the default, its
 * prefix), so ".../app/x" becomes ".../hr/x". Bare paths ("/app/x") are left alone in bodies
 * (too ambiguous in text), as are percent-encoded and HTML-entity forms of the URL.
 */
ptc_translate_body_t *ptc_translate_body_new(ptc_translate_t *t);

/**
 * Feeds the next len bytes of the body (borrowed for the call) and appends what can be
 * decided to `out`. Up to ptc_translate_max_held() bytes that may begin a split match are
 * held back until the next feed or the finish. The output does not depend on how the body is
 * split. Returns 0, PTC_ENOMEM (from the queue; the state is then unusable), or PTC_ESTATE
 * after ptc_translate_body_finish.
 */
PTC_MUST_CHECK int ptc_translate_body_feed(ptc_translate_body_t *s, const uint8_t *p, size_t len,
                                           ptc_chunkq_t *out);

/**
 * Ends the body: appends the held-back tail (rewritten if it is a match at the very end).
 * Returns 0, PTC_ENOMEM, or PTC_ESTATE when called twice.
 */
PTC_MUST_CHECK int ptc_translate_body_finish(ptc_translate_body_t *s, ptc_chunkq_t *out);

/** Bytes currently held back (at most ptc_translate_max_held()). */
size_t ptc_translate_body_held(const ptc_translate_body_t *s);

/**
 * The most bytes a body state ever holds back: the length of the longest pattern, which is
 * the longest pattern with its delimiter byte minus one (a match is decided only once the
 * byte after it, or the end of the body, is seen).
 */
size_t ptc_translate_max_held(const ptc_translate_t *t);

/** Frees a body state (finished or not) and drops its reference on the translator. */
void ptc_translate_body_free(ptc_translate_body_t *s);

#endif
