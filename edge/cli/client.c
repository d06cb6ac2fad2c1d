/* SPDX-License-Identifier: MIT */
/*
 * The CLI's blocking admin-API client (see client.h). A command makes one request, so each
 * request opens its own connection and asks the edge to close it afterwards; the socket's
 * send and receive timeouts bound every step (on Linux SO_SNDTIMEO also bounds connect(2)).
 * The bearer token lives in the client struct only and is wiped by ptc_client_dispose().
 */
#include "edge/cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/keys.h"
#include "common/net.h"

#define DEFAULT_TIMEOUT_S 30
#define MAX_PATH_LEN 4096

static int fail(ptc_client_t *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ptc_client_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->_err, sizeof(c->_err), fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- setup ---- */

static int read_token(ptc_client_t *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(c, -e, "cannot read the token file %s: %s", path, strerror(e));
    }
    char buf[PTC_CLIENT_MAX_TOKEN + 64];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            ptc_keys_wipe(buf, sizeof(buf));
            return fail(c, -e, "cannot read the token file %s: %s", path, strerror(e));
        }
        if (n == 0 || len + (size_t)n == sizeof(buf) - 1) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    /* The token is the first line, without surrounding white space. */
    char *start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n') {
        start++;
    }
    size_t tlen = strcspn(start, "\r\n");
    while (tlen > 0 && (start[tlen - 1] == ' ' || start[tlen - 1] == '\t')) {
        tlen--;
    }
    int rc = 0;
    if (tlen == 0) {
        rc = fail(c, PTC_EAUTH, "the token file %s is empty", path);
    } else if (tlen > PTC_CLIENT_MAX_TOKEN) {
        rc = fail(c, PTC_EAUTH, "the token in %s is longer than %d bytes", path,
                  PTC_CLIENT_MAX_TOKEN);
    } else {
        for (size_t i = 0; i < tlen; i++) {
            unsigned char ch = (unsigned char)start[i];
            if (ch < 0x21 || ch > 0x7e) {
                rc = fail(c, PTC_EAUTH, "the token in %s holds characters a header cannot carry",
                          path);
                break;
            }
        }
    }
    if (rc == 0) {
        memcpy(c->_token, start, tlen);
        c->_token[tlen] = '\0';
    }
    ptc_keys_wipe(buf, sizeof(buf));
    return rc;
}

static int parse_url(ptc_client_t *c, const char *url)
{
    static const char scheme[] = "http://";
    if (strncasecmp(url, "https://", 8) == 0) {
        return fail(c, PTC_EFORMAT,
                    "--url %s: the admin API speaks plain HTTP on loopback; use http://", url);
    }
    if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0) {
        return fail(c, PTC_EFORMAT, "--url %s: expected http://HOST:PORT", url);
    }
    const char *hp = url + sizeof(scheme) - 1;
    size_t len = strcspn(hp, "/");
    if (hp[len] == '/' && hp[len + 1] != '\0') {
        return fail(c, PTC_EFORMAT, "--url %s: expected http://HOST:PORT without a path", url);
    }
    char spec[PTC_NET_HOST_MAX + 16];
    if (len == 0 || len >= sizeof(spec)) {
        return fail(c, PTC_EFORMAT, "--url %s: expected http://HOST:PORT", url);
    }
    memcpy(spec, hp, len);
    spec[len] = '\0';
    ptc_net_hostport_t parsed;
    if (ptc_net_parse_hostport(spec, &parsed) != 0 || parsed.host[0] == '\0' || parsed.port == 0 ||
        strlen(parsed.host) >= sizeof(c->_host)) {
        return fail(c, PTC_EFORMAT, "--url %s: expected http://HOST:PORT", url);
    }
    snprintf(c->_host, sizeof(c->_host), "%s", parsed.host);
    snprintf(c->_port, sizeof(c->_port), "%u", (unsigned)parsed.port);
    return 0;
}

int ptc_client_init(ptc_client_t *c, const char *socket_path, const char *url,
                    const char *token_file)
{
    memset(c, 0, sizeof(*c));
    c->socket_path = socket_path;
    c->url = url;
    c->timeout_s = DEFAULT_TIMEOUT_S;
    if (url == NULL) {
        return 0;
    }
    int rc = parse_url(c, url);
    if (rc != 0) {
        return rc;
    }
    if (token_file == NULL) {
        return fail(c, PTC_EFORMAT, "--url needs --token-file");
    }
    c->_token_file = token_file;
    return 0;
}

void ptc_client_dispose(ptc_client_t *c)
{
    ptc_keys_wipe(c->_token, sizeof(c->_token));
}

const char *ptc_client_error(const ptc_client_t *c)
{
    return c->_err;
}

void ptc_client_response_dispose(ptc_client_response_t *resp)
{
    free(resp->raw);
    resp->raw = NULL;
    resp->raw_len = 0;
    json_decref(resp->json);
    resp->json = NULL;
}

int ptc_client_path_append(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (o + need >= cap) {
            return PTC_ELIMIT;
        }
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 0xf];
        }
    }
    out[o] = '\0';
    return 0;
}

/* ---- connecting ---- */

static void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_unix(ptc_client_t *c, int *out)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(c->socket_path) >= sizeof(sa.sun_path)) {
        return fail(c, UV_ENAMETOOLONG, "the admin socket path %s is too long", c->socket_path);
    }
    memcpy(sa.sun_path, c->socket_path, strlen(c->socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        return fail(c, -e, "cannot create a socket: %s", strerror(e));
    }
    set_timeouts(fd, c->timeout_s);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        const char *hint = "is portico-edge running? --socket or PORTICO_ADMIN_SOCKET";
        if (e == EACCES || e == EPERM) {
            hint = "the socket is for its owner and group: run as a member of its group";
        } else if (e == EAGAIN) {
            hint = "the edge is not accepting connections";
        }
        return fail(c, -e, "cannot reach the edge's admin socket at %s: %s (%s)", c->socket_path,
                    strerror(e), hint);
    }
    *out = fd;
    return 0;
}

static int connect_tcp(ptc_client_t *c, int *out)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int g = getaddrinfo(c->_host, c->_port, &hints, &res);
    if (g != 0) {
        return fail(c, PTC_EDNS, "cannot reach the edge's admin API at %s: %s", c->url,
                    gai_strerror(g));
    }
    int e = ECONNREFUSED;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        set_timeouts(fd, c->timeout_s);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (e == EINPROGRESS || e == EAGAIN) {
            e = ETIMEDOUT;
        }
        return fail(c, -e,
                    "cannot reach the edge's admin API at %s: %s (is portico-edge running "
                    "with admin.tcp set? --url)",
                    c->url, strerror(e));
    }
    *out = fd;
    return 0;
}

/* ---- the exchange ---- */

static int send_all(ptc_client_t *c, int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                return fail(c, PTC_ETIMEOUT, "the edge did not take the request within %d s",
                            c->timeout_s);
            }
            return fail(c, -e, "sending the request to the edge failed: %s", strerror(e));
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_request(ptc_client_t *c, int fd, const char *method, const char *path,
                        const char *body, size_t body_len)
{
    char host[300];
    if (c->url != NULL) {
        bool v6 = strchr(c->_host, ':') != NULL;
        snprintf(host, sizeof(host), v6 ? "[%s]:%s" : "%s:%s", c->_host, c->_port);
    } else {
        snprintf(host, sizeof(host), "localhost");
    }
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", body_len);
    char auth[PTC_CLIENT_MAX_TOKEN + 16];
    snprintf(auth, sizeof(auth), "Bearer %s", c->_token);
    ptc_http_header_t hdrs[7];
    size_t cnt = 0;
    hdrs[cnt++] = (ptc_http_header_t){ptc_slice_str("Host"), ptc_slice_str(host)};
    hdrs[cnt++] =
        (ptc_http_header_t){ptc_slice_str("User-Agent"), ptc_slice_str("portico-cli/" PTC_VERSION)};
    hdrs[cnt++] = (ptc_http_header_t){ptc_slice_str("Accept"), ptc_slice_str("application/json")};
    hdrs[cnt++] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("close")};
    if (c->url != NULL) {
        hdrs[cnt++] = (ptc_http_header_t){ptc_slice_str("Authorization"), ptc_slice_str(auth)};
    }
    if (body != NULL) {
        hdrs[cnt++] =
            (ptc_http_header_t){ptc_slice_str("Content-Type"), ptc_slice_str("application/json")};
        hdrs[cnt++] = (ptc_http_header_t){ptc_slice_str("Content-Length"), ptc_slice_str(clen)};
    }
    uint8_t head[MAX_PATH_LEN + PTC_CLIENT_MAX_TOKEN + 1024];
    ssize_t n = ptc_http_format_request_head(head, sizeof(head), ptc_slice_str(method),
                                             ptc_slice_str(path), hdrs, cnt);
    ptc_keys_wipe(auth, sizeof(auth));
    if (n < 0) {
        ptc_keys_wipe(head, sizeof(head));
        return fail(c, (int)n, "cannot build the request for %s", path);
    }
    int rc = send_all(c, fd, head, (size_t)n);
    ptc_keys_wipe(head, (size_t)n);
    if (rc == 0 && body != NULL) {
        rc = send_all(c, fd, body, body_len);
    }
    return rc;
}

static int read_response(ptc_client_t *c, int fd, const char *method, ptc_client_response_t *resp)
{
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_RESPONSE, NULL);
    ptc_http_parser_set_request_method(p, ptc_slice_str(method));
    ptc_buf_t body;
    ptc_buf_init(&body);
    uint8_t in[16384];
    bool done = false;
    int rc = 0;
    while (!done && rc == 0) {
        ssize_t n = recv(fd, in, sizeof(in), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                rc = fail(c, PTC_ETIMEOUT, "the edge did not answer within %d s", c->timeout_s);
            } else {
                rc = fail(c, -e, "reading the edge's answer failed: %s", strerror(e));
            }
            break;
        }
        ptc_http_event_t ev;
        if (n == 0) {
            if (ptc_http_parser_finish(p, &ev) != 0 || ev.type != PTC_HTTP_EV_DONE) {
                rc = fail(c, PTC_EHTTP, "the edge closed the connection before answering");
            }
            done = true;
            break;
        }
        size_t off = 0;
        for (;;) {
            ssize_t used = ptc_http_parser_feed(p, in + off, (size_t)n - off, &ev);
            if (used < 0) {
                const ptc_http_error_t *err = ptc_http_parser_error(p);
                rc = fail(c, (int)used, "malformed answer from the edge: %s",
                          err != NULL ? err->reason : ptc_strerror((int)used));
                break;
            }
            off += (size_t)used;
            if (ev.type == PTC_HTTP_EV_NONE) {
                break;
            }
            if (ev.type == PTC_HTTP_EV_HEAD) {
                resp->status = ev.head->status;
            } else if (ev.type == PTC_HTTP_EV_BODY) {
                if (body.len + ev.body.len > PTC_CLIENT_MAX_BODY) {
                    rc = fail(c, PTC_ELIMIT, "the edge's answer is larger than %u bytes",
                              PTC_CLIENT_MAX_BODY);
                    break;
                }
                ptc_buf_append(&body, ev.body.ptr, ev.body.len);
            } else if (ev.type == PTC_HTTP_EV_DONE) {
                done = true;
                break;
            }
        }
    }
    if (rc == 0) {
        resp->raw = ptc_xmalloc(body.len + 1);
        if (body.len > 0) {
            memcpy(resp->raw, ptc_buf_data(&body), body.len);
        }
        resp->raw[body.len] = '\0';
        resp->raw_len = body.len;
        if (body.len > 0) {
            json_error_t jerr;
            resp->json = json_loadb(resp->raw, resp->raw_len, JSON_DECODE_ANY, &jerr);
            if (resp->json == NULL) {
                rc = fail(c, PTC_EFORMAT, "the edge's answer (HTTP %d) is not JSON: %s",
                          resp->status, jerr.text);
            }
        }
    }
    ptc_buf_dispose(&body);
    ptc_http_parser_free(p);
    return rc;
}

int ptc_client_request(ptc_client_t *c, const char *method, const char *path, json_t *body,
                       ptc_client_response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    c->_err[0] = '\0';
    if (strlen(path) > MAX_PATH_LEN) {
        return fail(c, PTC_ELIMIT, "the request path is too long");
    }
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL) {
            return fail(c, PTC_ENOMEM, "cannot encode the request body");
        }
    }
    int fd = -1;
    int rc = 0;
    if (c->url != NULL && c->_token[0] == '\0') {
        rc = read_token(c, c->_token_file);
    }
    if (rc == 0) {
        rc = c->url != NULL ? connect_tcp(c, &fd) : connect_unix(c, &fd);
    }
    if (rc == 0) {
        rc = send_request(c, fd, method, path, text, text != NULL ? strlen(text) : 0);
    }
    if (rc == 0) {
        rc = read_response(c, fd, method, resp);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (text != NULL) {
        /* A certificate's private key may be in the body. */
        ptc_keys_wipe(text, strlen(text));
        free(text);
    }
    return rc;
}
