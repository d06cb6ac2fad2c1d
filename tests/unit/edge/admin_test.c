/* SPDX-License-Identifier: MIT */
/*
 * Tests of the admin API server (edge/admin.c) over real sockets: the unix socket (its
 * directory, mode, stale-file handling, SO_PEERCRED in the admin_change log), the loopback
 * TCP listener with its bearer token and the configurations it refuses, answers' framing
 * (Content-Length, application/json, keep-alive and pipelining), body limits, malformed
 * input, and stopping with connections open.
 *
 * The server runs on the test's loop in the main thread; a client thread speaks raw HTTP
 * with blocking sockets and, when done, wakes the loop with a uv_async_t that stops the
 * server. Every case ends with the loop closed cleanly (STYLE §5 rule 8).
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "common/keys.h"
#include "common/log.h"
#include "edge/admin.h"
#include "edge/edge.h"
#include "edge/registry.h"
#include "edge/state.h"
#include "edge/store.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#define NOW 1700000000000ull
#define TOKEN "s3cret-admin-token-0123456789"

typedef struct srv srv_t;
typedef void (*client_fn)(srv_t *s);

struct srv {
    uv_loop_t loop;
    ptc_edge_t edge;
    ptc_store_t *store;
    ptc_app_ctx_t ctx;
    uv_async_t done;
    uv_thread_t thread;
    client_fn client;
    char dir[512];
    char sock[600];
    char token_file[600];
    char tcp[64];
    uint16_t port;
    char log[65536];
    size_t log_len;
};

static void on_log_line(void *data, const char *line, size_t len)
{
    srv_t *s = data;
    if (s->log_len + len < sizeof(s->log)) {
        memcpy(s->log + s->log_len, line, len);
        s->log_len += len;
        s->log[s->log_len] = '\0';
    }
}

static void setup(srv_t *s)
{
    memset(s, 0, sizeof(*s));
    /* As in the daemon: a peer that went away is a write error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    CHECK_OK(ptc_keys_init());
    CHECK_OK(uv_loop_init(&s->loop));
    snprintf(s->dir, sizeof(s->dir), "%s", ptc_test_tmpdir());
    snprintf(s->sock, sizeof(s->sock), "%s/run/portico/admin.sock", s->dir);
    char err[256];
    char state_dir[600];
    snprintf(state_dir, sizeof(state_dir), "%s/state", s->dir);
    CHECK_OK(ptc_store_jsondir_open(state_dir, &s->store, err, sizeof(err)));
    s->ctx.default_domain = "apps.example.com";
    s->edge.loop = &s->loop;
    s->edge.logger = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_log_line, s);
    ptc_log_ctx_init(&s->edge.log, s->edge.logger);
    CHECK_OK(ptc_state_open(s->store, &s->ctx, NOW, &s->edge.state, err, sizeof(err)));
    s->edge.registry = ptc_registry_new();
    s->edge.started_ms = ptc_edge_now_ms();
    s->edge.cfg.admin.socket = s->sock;
}

static void teardown(srv_t *s)
{
    ptc_test_loop_finish(&s->loop);
    ptc_registry_free(s->edge.registry);
    ptc_state_free(s->edge.state);
    ptc_store_free(s->store);
    ptc_logger_free(s->edge.logger);
}

static void write_token_file(srv_t *s, const char *content, mode_t mode)
{
    snprintf(s->token_file, sizeof(s->token_file), "%s/admin.token", s->dir);
    int fd = open(s->token_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK_GE(fd, 0);
    CHECK_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    CHECK_OK(chmod(s->token_file, mode));
}

static void use_tcp(srv_t *s)
{
    s->port = ptc_test_closed_port();
    snprintf(s->tcp, sizeof(s->tcp), "127.0.0.1:%u", (unsigned)s->port);
    s->edge.cfg.admin.tcp = s->tcp;
    s->edge.cfg.admin.token_file = s->token_file;
}

static void on_done(uv_async_t *a)
{
    srv_t *s = a->data;
    ptc_admin_stop(&s->edge);
    ptc_admin_stop(&s->edge); /* idempotent */
    uv_close((uv_handle_t *)&s->done, NULL);
}

static void client_main(void *arg)
{
    srv_t *s = arg;
    s->client(s);
    uv_async_send(&s->done);
}

/* Starts the server, runs `fn` in a client thread while the loop serves, then stops. */
static void run(srv_t *s, client_fn fn)
{
    char err[256];
    int rc = ptc_admin_start(&s->edge, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "ptc_admin_start: %s", err);
    }
    CHECK_NOT_NULL(s->edge.admin);
    CHECK_OK(uv_async_init(&s->loop, &s->done, on_done));
    s->done.data = s;
    s->client = fn;
    CHECK_OK(uv_thread_create(&s->thread, client_main, s));
    ptc_test_loop_run(&s->loop, 20000, "the admin client");
    CHECK_OK(uv_thread_join(&s->thread));
    CHECK_NULL(s->edge.admin);
}

/* ---- a raw blocking client ---- */

static void set_sun_path(struct sockaddr_un *sa, const char *path)
{
    CHECK_LT(strlen(path), sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int dial(const srv_t *s, bool tcp)
{
    int fd;
    if (tcp) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK_GE(fd, 0);
        CHECK_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    } else {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        set_sun_path(&sa, s->sock);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK_GE(fd, 0);
        CHECK_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        CHECK_GT(n, 0);
        b += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes (or `cap` - 1 bytes); returns the NUL-terminated text. */
static size_t read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == ECONNRESET) {
            break; /* the server closed with our unread bytes in its buffer */
        }
        if (n < 0) {
            ptc_test_fail(__FILE__, __LINE__, "recv: %s (after %zu bytes: %.200s)", strerror(errno),
                          len, out);
        }
        if (n == 0 || len + (size_t)n == cap - 1) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    out[len] = '\0';
    return len;
}

/* One request on a fresh connection that the server closes after answering. */
static void exchange(const srv_t *s, bool tcp, const char *request, char *out, size_t cap)
{
    int fd = dial(s, tcp);
    send_all(fd, request, strlen(request));
    read_all(fd, out, cap);
    close(fd);
}

static int status_of(const char *resp)
{
    int status = 0;
    CHECK_EQ(sscanf(resp, "HTTP/1.1 %d ", &status), 1);
    return status;
}

/* ---- unix socket ---- */

static char g_resp[8][8192];

static void client_basic(srv_t *s)
{
    exchange(s, false, "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g_resp[0],
             sizeof(g_resp[0]));
    static const char body[] = "{\"name\":\"lab\"}";
    char req[512];
    snprintf(req, sizeof(req),
             "POST /v1/groups HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(body), body);
    exchange(s, false, req, g_resp[1], sizeof(g_resp[1]));
    exchange(s, false, "DELETE /v1/groups/lab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             g_resp[2], sizeof(g_resp[2]));
    exchange(s, false, "GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g_resp[3],
             sizeof(g_resp[3]));
    exchange(s, false, "PUT /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g_resp[4],
             sizeof(g_resp[4]));
    /* An answer to HEAD has no body, so the next answer on the connection starts right after
     * its head. */
    exchange(s, false,
             "HEAD /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             g_resp[5], sizeof(g_resp[5]));
}

static void test_unix_socket_serves_and_logs_changes(void)
{
    srv_t s;
    setup(&s);
    run(&s, client_basic);
    CHECK_EQ(status_of(g_resp[0]), 200);
    CHECK_CONTAINS(g_resp[0], "Content-Type: application/json\r\n");
    CHECK_CONTAINS(g_resp[0], "Content-Length: ");
    CHECK_CONTAINS(g_resp[0], "Connection: close\r\n");
    CHECK_CONTAINS(g_resp[0], "\"uptime_s\":");
    CHECK_EQ(status_of(g_resp[1]), 201);
    CHECK_CONTAINS(g_resp[1], "\"name\":\"lab\"");
    CHECK_EQ(status_of(g_resp[2]), 204);
    CHECK(strstr(g_resp[2], "Content-Length") == NULL);
    CHECK_EQ(status_of(g_resp[3]), 404);
    CHECK_CONTAINS(g_resp[3], "{\"error\":\"not_found\",\"message\":");
    CHECK_EQ(status_of(g_resp[4]), 405);
    CHECK_CONTAINS(g_resp[4], "Allow: GET\r\n");
    CHECK_EQ(status_of(g_resp[5]), 405);
    const char *next = strstr(g_resp[5], "\r\n\r\n");
    CHECK_NOT_NULL(next);
    CHECK_EQ(strncmp(next + 4, "HTTP/1.1 200 OK\r\n", 17), 0);

    /* The Content-Length matches the body. */
    const char *b = strstr(g_resp[0], "\r\n\r\n");
    CHECK_NOT_NULL(b);
    unsigned long clen = strtoul(strstr(g_resp[0], "Content-Length: ") + 16, NULL, 10);
    CHECK_EQ(strlen(b + 4), clen);

    /* The socket was created with its directory, and removed by stop. */
    struct stat st;
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/run/portico", s.dir);
    CHECK_OK(stat(dir, &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(lstat(s.sock, &st), -1);

    /* Changes are logged with the peer's uid; reads are not. */
    char expect[128];
    snprintf(expect, sizeof(expect), "\"event\":\"admin_change\"");
    CHECK_CONTAINS(s.log, expect);
    snprintf(expect, sizeof(expect),
             "\"admin_uid\":%ld,\"method\":\"POST\",\"path\":\"/v1/groups\"", (long)getuid());
    CHECK_CONTAINS(s.log, expect);
    CHECK_CONTAINS(s.log, "\"resource\":\"group\",\"id\":\"lab\",\"status\":201");
    CHECK_CONTAINS(s.log, "\"method\":\"DELETE\",\"path\":\"/v1/groups/lab\"");
    CHECK_CONTAINS(s.log, "\"method\":\"PUT\",\"path\":\"/v1/status\"");
    CHECK(strstr(s.log, "{\\\"name\\\"") == NULL); /* never a body */
    size_t changes = 0;
    for (const char *p = s.log; (p = strstr(p, "admin_change")) != NULL; p++) {
        changes++;
    }
    CHECK_EQ(changes, 3);
    teardown(&s);
}

static void client_stat_mode(srv_t *s)
{
    struct stat st;
    CHECK_OK(stat(s->sock, &st));
    CHECK(S_ISSOCK(st.st_mode));
    snprintf(g_resp[0], sizeof(g_resp[0]), "%o", (unsigned)(st.st_mode & 0777));
}

static void test_socket_mode(void)
{
    srv_t s;
    setup(&s);
    run(&s, client_stat_mode);
    CHECK_STREQ(g_resp[0], "660");
    teardown(&s);

    setup(&s);
    s.edge.cfg.admin.socket_mode = 0600;
    run(&s, client_stat_mode);
    CHECK_STREQ(g_resp[0], "600");
    teardown(&s);
}

static void test_stale_socket_is_replaced_live_one_refused(void)
{
    srv_t s;
    setup(&s);
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/run", s.dir);
    CHECK_OK(mkdir(dir, 0700));
    snprintf(dir, sizeof(dir), "%s/run/portico", s.dir);
    CHECK_OK(mkdir(dir, 0700));
    /* A socket file left behind by a process that died. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_sun_path(&sa, s.sock);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
    close(fd);

    char err[256];
    CHECK_OK(ptc_admin_start(&s.edge, err, sizeof(err)));
    CHECK_EQ(ptc_admin_start(&s.edge, err, sizeof(err)), UV_EALREADY);
    /* A second edge on the same path while the first listens. */
    ptc_edge_t other = s.edge;
    other.admin = NULL;
    CHECK_EQ(ptc_admin_start(&other, err, sizeof(err)), UV_EADDRINUSE);
    CHECK_CONTAINS(err, "another process");
    CHECK_NULL(other.admin);
    ptc_admin_stop(&s.edge);
    teardown(&s);

    /* A regular file is never removed. */
    setup(&s);
    fd = open(s.sock, O_WRONLY | O_CREAT, 0600);
    CHECK_GE(fd, 0);
    close(fd);
    CHECK_EQ(ptc_admin_start(&s.edge, err, sizeof(err)), UV_EEXIST);
    CHECK_CONTAINS(err, "not a socket");
    struct stat st;
    CHECK_OK(stat(s.sock, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_NULL(s.edge.admin);
    teardown(&s);
}

/* ---- TCP with a bearer token ---- */

static void client_tcp(srv_t *s)
{
    exchange(s, true, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", g_resp[0], sizeof(g_resp[0]));
    exchange(s, true, "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n",
             g_resp[1], sizeof(g_resp[1]));
    exchange(s, true,
             "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
             "\r\nConnection: close\r\n\r\n",
             g_resp[2], sizeof(g_resp[2]));
    exchange(s, true,
             "GET /v1/status HTTP/1.1\r\nHost: x\r\nauthorization: bearer " TOKEN
             "\r\nConnection: close\r\n\r\n",
             g_resp[3], sizeof(g_resp[3]));
    exchange(s, true,
             "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " TOKEN "\r\n\r\n",
             g_resp[4], sizeof(g_resp[4]));
    /* The unix socket needs no token. */
    exchange(s, false, "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g_resp[5],
             sizeof(g_resp[5]));
}

static void test_tcp_requires_the_bearer_token(void)
{
    srv_t s;
    setup(&s);
    write_token_file(&s, TOKEN "\n", 0600);
    use_tcp(&s);
    run(&s, client_tcp);
    CHECK_EQ(status_of(g_resp[0]), 401);
    CHECK_CONTAINS(g_resp[0], "WWW-Authenticate: Bearer");
    CHECK_CONTAINS(g_resp[0], "\"error\":\"unauthorized\"");
    CHECK_EQ(status_of(g_resp[1]), 401);
    CHECK_EQ(status_of(g_resp[2]), 200);
    CHECK_EQ(status_of(g_resp[3]), 200);
    CHECK_EQ(status_of(g_resp[4]), 401);
    CHECK_EQ(status_of(g_resp[5]), 200);
    CHECK_CONTAINS(s.log, "\"event\":\"admin_unauthorized\"");
    CHECK(strstr(s.log, TOKEN) == NULL);
    CHECK(strstr(s.log, "wrong") == NULL);
    teardown(&s);
}

static void test_tcp_refusals(void)
{
    static const struct {
        const char *tcp;
        const char *token; /* NULL: no file */
        mode_t mode;
        const char *msg;
    } cases[] = {
        {"127.0.0.1", TOKEN, 0640, "mode 0640"},    {"127.0.0.1", TOKEN, 0604, "mode 0604"},
        {"127.0.0.1", "\n  \n", 0600, "no token"},  {"127.0.0.1", NULL, 0600, "No such file"},
        {"0.0.0.0", TOKEN, 0600, "not a loopback"}, {"10.1.2.3", TOKEN, 0600, "not a loopback"},
        {"[::]", TOKEN, 0600, "not a loopback"},    {"example.com", TOKEN, 0600, "not a loopback"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srv_t s;
        setup(&s);
        if (cases[i].token != NULL) {
            write_token_file(&s, cases[i].token, cases[i].mode);
        } else {
            snprintf(s.token_file, sizeof(s.token_file), "%s/missing.token", s.dir);
        }
        use_tcp(&s);
        snprintf(s.tcp, sizeof(s.tcp), "%s:%u", cases[i].tcp, (unsigned)s.port);
        char err[256];
        CHECK_EQ(ptc_admin_start(&s.edge, err, sizeof(err)), PTC_ECONFIG);
        CHECK_CONTAINS(err, cases[i].msg);
        CHECK_NULL(s.edge.admin);
        /* Nothing was left behind: no socket file either. */
        struct stat st;
        CHECK_EQ(lstat(s.sock, &st), -1);
        teardown(&s);
    }
    /* tcp without token_file. */
    srv_t s;
    setup(&s);
    s.edge.cfg.admin.tcp = "127.0.0.1:1";
    char err[256];
    CHECK_EQ(ptc_admin_start(&s.edge, err, sizeof(err)), PTC_ECONFIG);
    CHECK_CONTAINS(err, "together");
    teardown(&s);
}

static void test_tcp_port_in_use_closes_everything(void)
{
    srv_t s;
    setup(&s);
    write_token_file(&s, TOKEN, 0600);
    use_tcp(&s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
    CHECK_OK(listen(fd, 1));
    char err[256];
    CHECK_EQ(ptc_admin_start(&s.edge, err, sizeof(err)), UV_EADDRINUSE);
    CHECK_NULL(s.edge.admin);
    struct stat st;
    CHECK_EQ(lstat(s.sock, &st), -1); /* the unix socket opened first is gone again */
    close(fd);
    teardown(&s);
}

/* ---- framing and limits ---- */

static void client_framing(srv_t *s)
{
    /* Two pipelined requests answered in order, the second closing. */
    exchange(s, false,
             "GET /v1/groups HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             g_resp[0], sizeof(g_resp[0]));
    /* Too large a body is refused from its Content-Length, before it is sent. */
    exchange(s, false, "POST /v1/groups HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
             g_resp[1], sizeof(g_resp[1]));
    /* A chunked body that grows past the limit. */
    int fd = dial(s, false);
    static const char head[] =
        "POST /v1/apps HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, sizeof(head) - 1);
    char *chunk = malloc(70000);
    memset(chunk, 'a', 70000);
    for (int i = 0; i < 17; i++) {
        char size[16];
        snprintf(size, sizeof(size), "%x\r\n", 65536);
        if (send(fd, size, strlen(size), MSG_NOSIGNAL) <= 0 ||
            send(fd, chunk, 65536, MSG_NOSIGNAL) <= 0 || send(fd, "\r\n", 2, MSG_NOSIGNAL) <= 0) {
            break; /* the server may already have answered and closed */
        }
    }
    free(chunk);
    read_all(fd, g_resp[2], sizeof(g_resp[2]));
    close(fd);
    /* Bodies that are not JSON. */
    exchange(s, false,
             "POST /v1/groups HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n"
             "\r\n{nope",
             g_resp[3], sizeof(g_resp[3]));
    /* Malformed HTTP. */
    exchange(s, false, "GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", g_resp[4],
             sizeof(g_resp[4]));
    exchange(
        s, false,
        "POST /v1/groups HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        g_resp[5], sizeof(g_resp[5]));
    /* Expect: 100-continue gets its interim answer. */
    exchange(s, false,
             "POST /v1/groups HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 14\r\n"
             "Connection: close\r\n\r\n{\"name\":\"ops\"}",
             g_resp[6], sizeof(g_resp[6]));
    /* An upgrade request. */
    exchange(
        s, false,
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        g_resp[7], sizeof(g_resp[7]));
}

static void test_framing_and_limits(void)
{
    srv_t s;
    setup(&s);
    run(&s, client_framing);
    CHECK_EQ(status_of(g_resp[0]), 200);
    CHECK_CONTAINS(g_resp[0], "\"groups\":[");
    const char *second = strstr(g_resp[0] + 1, "HTTP/1.1 200");
    CHECK_NOT_NULL(second);
    CHECK_CONTAINS(second, "\"uptime_s\"");
    CHECK(strstr(g_resp[0], "\"uptime_s\"") > strstr(g_resp[0], "\"groups\""));
    CHECK_EQ(status_of(g_resp[1]), 413);
    CHECK_CONTAINS(g_resp[1], "\"error\":\"payload_too_large\"");
    CHECK_EQ(status_of(g_resp[2]), 413);
    CHECK_EQ(status_of(g_resp[3]), 400);
    CHECK_CONTAINS(g_resp[3], "body: invalid JSON");
    CHECK_EQ(status_of(g_resp[4]), 400);
    CHECK_CONTAINS(g_resp[4], "malformed request");
    CHECK_EQ(status_of(g_resp[5]), 400);
    CHECK_EQ(strncmp(g_resp[6], "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 ", 38), 0);
    CHECK_EQ(status_of(g_resp[7]), 400);
    CHECK_CONTAINS(g_resp[7], "upgrade");
    teardown(&s);
}

/* ---- back-pressure ---- */

#define PIPELINED 24
static char g_big[4 * 1024 * 1024];

static void client_pipeline(srv_t *s)
{
    /* Ask for a large answer many times without reading: the server must stop reading and
     * parsing once its queue is full, then resume as the answers are taken. */
    static char req[PIPELINED * 64];
    size_t len = 0;
    for (int i = 0; i < PIPELINED; i++) {
        len += (size_t)snprintf(req + len, sizeof(req) - len,
                                "GET /v1/apps HTTP/1.1\r\nHost: x\r\n%s\r\n",
                                i == PIPELINED - 1 ? "Connection: close\r\n" : "");
    }
    int fd = dial(s, false);
    send_all(fd, req, len);
    usleep(200 * 1000);
    read_all(fd, g_big, sizeof(g_big));
    close(fd);
}

static void test_pipelined_answers_apply_back_pressure(void)
{
    srv_t s;
    setup(&s);
    for (int i = 0; i < 60; i++) {
        char doc[256];
        snprintf(doc, sizeof(doc),
                 "{\"name\":\"app-%02d\",\"internal_url\":\"http://10.0.0.%d:8080/some/path/\","
                 "\"sso_headers\":{\"email\":\"X-Email\",\"name\":\"X-Name\"}}",
                 i, i + 1);
        json_t *j = json_loads(doc, 0, NULL);
        char err[256];
        CHECK_OK(ptc_state_app_add(s.edge.state, j, NULL, err, sizeof(err)));
        json_decref(j);
    }
    run(&s, client_pipeline);
    size_t answers = 0;
    size_t first_len = 0;
    for (const char *p = g_big; (p = strstr(p, "HTTP/1.1 200 OK\r\n")) != NULL; p++) {
        answers++;
        if (first_len == 0) {
            first_len = strtoul(strstr(p, "Content-Length: ") + 16, NULL, 10);
        }
    }
    CHECK_EQ(answers, PIPELINED);
    /* The queue really passed the high-water mark (256 KiB). */
    CHECK_GT(first_len * PIPELINED, 256 * 1024);
    CHECK_CONTAINS(s.log, "\"from\":\"request\",\"to\":\"finishing\"");
    teardown(&s);
}

/* ---- stopping with connections open ---- */

static int g_fds[3];

static void client_leave_open(srv_t *s)
{
    /* One idle, one mid-head, one mid-body: stop must close them all. */
    g_fds[0] = dial(s, false);
    g_fds[1] = dial(s, false);
    send_all(g_fds[1], "GET /v1/sta", 11);
    g_fds[2] = dial(s, false);
    static const char partial[] =
        "POST /v1/groups HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{";
    send_all(g_fds[2], partial, sizeof(partial) - 1);
    /* Let the server read what was sent before it is stopped. */
    exchange(s, false, "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g_resp[0],
             sizeof(g_resp[0]));
}

static void test_stop_closes_open_connections(void)
{
    srv_t s;
    setup(&s);
    run(&s, client_leave_open);
    CHECK_EQ(status_of(g_resp[0]), 200);
    for (int i = 0; i < 3; i++) {
        char buf[64];
        CHECK_EQ(read_all(g_fds[i], buf, sizeof(buf)), 0); /* closed without an answer */
        close(g_fds[i]);
    }
    teardown(&s);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_unix_socket_serves_and_logs_changes),
    PTC_TEST(test_socket_mode),
    PTC_TEST(test_stale_socket_is_replaced_live_one_refused),
    PTC_TEST(test_tcp_requires_the_bearer_token),
    PTC_TEST(test_tcp_refusals),
    PTC_TEST(test_tcp_port_in_use_closes_everything),
    PTC_TEST(test_framing_and_limits),
    PTC_TEST(test_pipelined_answers_apply_back_pressure),
    PTC_TEST(test_stop_closes_open_connections),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
