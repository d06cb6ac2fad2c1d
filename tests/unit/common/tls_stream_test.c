/* SPDX-License-Identifier: MIT */
/*
 * common/tls_stream on loopback with real sockets: handshake and echo, deadlines, resets,
 * closing in the middle of things, back-pressure, and TLS started on a connection that
 * already carried clear bytes. Every test counts its callbacks and ends with
 * uv_loop_close() == 0 (STYLE §5 rule 8). Raw (non-TLS) peers are plain libuv handles.
 */
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "tests/support/certgen.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

typedef struct fx fx_t;
typedef struct side side_t;

struct side {
    fx_t *fx;
    ptc_tls_stream_t *s;
    int hs_cnt;
    int hs_status;
    int read_cnt;
    int read_end_cnt;
    int read_end_status;
    ptc_buf_t rx;
    int wr_issued;
    int wr_ok;
    int wr_cancel;
    int wr_err;
    int drain_cnt;
    int close_cnt;
    bool is_full_seen;
    /* behaviour */
    bool echo;
    bool shutdown_on_end; /* on read end: shutdown (else close) */
    bool close_on_first_read;
    bool stop_on_first_read;
    size_t expect; /* shutdown once this many bytes arrived */
    void (*established)(side_t *sd);
};

typedef enum peer_kind {
    PEER_TLS,     /* a tls_stream */
    PEER_SILENT,  /* connects or accepts and sends nothing */
    PEER_RESET,   /* server: resets after the first bytes; client: sends 3 bytes, resets */
    PEER_GARBAGE, /* client: sends an HTTP request instead of a ClientHello */
    PEER_PREFACE, /* clear "PREFACE\n", then TLS on the same connection */
} peer_kind_t;

struct fx {
    uv_loop_t loop;
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_tls_config_t *scfg;
    ptc_tls_config_t *ccfg;
    uv_tcp_t *listener;
    side_t srv;
    side_t cli;
    ptc_tls_stream_opts_t srv_opts;
    ptc_tls_stream_opts_t cli_opts;
    peer_kind_t srv_kind;
    peer_kind_t cli_kind;
    int streams;        /* tls streams this test makes */
    int streams_closed; /* ... and how many have closed */
    uv_tcp_t *raw;      /* the raw peer, if any */
    ptc_buf_t raw_rx;
    int raw_close_cnt;
    int preface_write_cnt;
    bool small_buffers;
    int dial_cnt;
    int accept_cnt;
    uint64_t t0;
};

static const char *const alpn[] = {"portico/1", "http/1.1", NULL};

/* ---- fixture ---- */

static void on_handle_closed(uv_handle_t *h)
{
    fx_t *fx = h->loop->data;
    fx->raw_close_cnt++;
    free(h);
}

static void close_raw(fx_t *fx)
{
    if (fx->raw != NULL) {
        uv_close((uv_handle_t *)fx->raw, on_handle_closed);
        fx->raw = NULL;
    }
}

static void close_listener(fx_t *fx)
{
    if (fx->listener != NULL) {
        uv_close((uv_handle_t *)fx->listener, on_handle_closed);
        fx->listener = NULL;
    }
}

static void on_hs(ptc_tls_stream_t *s, int status)
{
    side_t *sd = ptc_tls_stream_data(s);
    CHECK(!ptc_tls_stream_is_closing(s));
    sd->hs_cnt++;
    sd->hs_status = status;
    if (status != 0) {
        ptc_tls_stream_close(s);
        return;
    }
    if (sd->established != NULL) {
        sd->established(sd);
    }
}

static void on_wr(ptc_tls_stream_t *s, int status, void *arg)
{
    side_t *sd = arg;
    CHECK(sd->s == s);
    if (status == 0) {
        sd->wr_ok++;
    } else if (status == UV_ECANCELED) {
        sd->wr_cancel++;
    } else {
        sd->wr_err++;
    }
}

static void write_or_fail(side_t *sd, const void *p, size_t len)
{
    CHECK_OK(ptc_tls_stream_write(sd->s, p, len, on_wr, sd));
    sd->wr_issued++;
    if (ptc_tls_stream_is_full(sd->s)) {
        sd->is_full_seen = true;
    }
}

static void on_rd(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    side_t *sd = ptc_tls_stream_data(s);
    CHECK_EQ(sd->read_end_cnt, 0); /* nothing after the end */
    CHECK(!ptc_tls_stream_is_closing(s));
    if (status != 0) {
        CHECK_EQ(data.len, 0);
        sd->read_end_cnt++;
        sd->read_end_status = status;
        if (sd->shutdown_on_end) {
            ptc_tls_stream_shutdown(s);
        } else {
            ptc_tls_stream_close(s);
        }
        return;
    }
    CHECK_GT(data.len, 0);
    sd->read_cnt++;
    ptc_buf_append(&sd->rx, data.ptr, data.len);
    if (sd->echo) {
        write_or_fail(sd, data.ptr, data.len);
    }
    if (sd->close_on_first_read) {
        /* The other records of the same socket read are still buffered. */
        CHECK(ptc_tls_has_pending(ptc_tls_stream_tls(s)));
        ptc_tls_stream_close(s);
        ptc_tls_stream_close(s); /* idempotent */
        return;
    }
    if (sd->stop_on_first_read && sd->read_cnt == 1) {
        ptc_tls_stream_read_stop(s);
    }
    if (sd->expect != 0 && sd->rx.len == sd->expect) {
        ptc_tls_stream_shutdown(s);
    }
}

static void on_drain(ptc_tls_stream_t *s)
{
    side_t *sd = ptc_tls_stream_data(s);
    sd->drain_cnt++;
    CHECK(!ptc_tls_stream_is_full(s));
}

static void on_cl(ptc_tls_stream_t *s)
{
    side_t *sd = ptc_tls_stream_data(s);
    CHECK(sd->s == s);
    sd->close_cnt++;
    /* Every write callback ran before the close callback. */
    CHECK_EQ(sd->wr_ok + sd->wr_cancel + sd->wr_err, sd->wr_issued);
    sd->s = NULL;
    fx_t *fx = sd->fx;
    if (++fx->streams_closed == fx->streams) {
        close_listener(fx);
        close_raw(fx);
    }
}

static void side_init(fx_t *fx, side_t *sd, ptc_tls_stream_opts_t *o)
{
    memset(sd, 0, sizeof(*sd));
    sd->fx = fx;
    ptc_buf_init(&sd->rx);
    memset(o, 0, sizeof(*o));
    o->on_handshake = on_hs;
    o->on_read = on_rd;
    o->on_drain = on_drain;
    o->on_close = on_cl;
    o->data = sd;
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    CHECK_OK(uv_loop_init(&fx->loop));
    fx->loop.data = fx;
    ptc_buf_init(&fx->raw_rx);
    static const char *const sans[] = {"DNS:edge.example.com", "IP:127.0.0.1", NULL};
    ptc_certgen_ca(NULL, "Stream CA", &fx->ca);
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_leaf(&fx->ca, NULL, "edge", &o, &fx->leaf);

    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    CHECK_OK(ptc_tls_certs_add_pem(certs, fx->leaf.cert_pem, strlen(fx->leaf.cert_pem),
                                   fx->leaf.key_pem, strlen(fx->leaf.key_pem), true, NULL));
    ptc_tls_server_opts_t so = {.certs = certs, .alpn = alpn};
    CHECK_OK(ptc_tls_server_config_new(&so, &fx->scfg, NULL));
    ptc_tls_certs_unref(certs);
    ptc_tls_client_opts_t co = {
        .alpn = alpn, .ca_pem = fx->ca.cert_pem, .ca_pem_len = strlen(fx->ca.cert_pem)};
    CHECK_OK(ptc_tls_client_config_new(&co, &fx->ccfg, NULL));

    side_init(fx, &fx->srv, &fx->srv_opts);
    side_init(fx, &fx->cli, &fx->cli_opts);
    fx->cli_opts.server_name = "edge.example.com";
    fx->t0 = uv_now(&fx->loop);
}

/* Tears down after the loop ran dry: the loop must close cleanly. */
static void fx_finish(fx_t *fx)
{
    ptc_test_loop_finish(&fx->loop);
    ptc_tls_config_unref(fx->scfg);
    ptc_tls_config_unref(fx->ccfg);
    ptc_buf_dispose(&fx->srv.rx);
    ptc_buf_dispose(&fx->cli.rx);
    ptc_buf_dispose(&fx->raw_rx);
    ptc_certgen_dispose(&fx->leaf);
    ptc_certgen_dispose(&fx->ca);
}

static void start_tls(fx_t *fx, side_t *sd, uv_tcp_t *tcp, bool server, ptc_slice_t initial)
{
    ptc_tls_stream_opts_t *o = server ? &fx->srv_opts : &fx->cli_opts;
    o->initial = initial;
    int rc = ptc_tls_stream_new(tcp, server ? fx->scfg : fx->ccfg, o, &sd->s);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "ptc_tls_stream_new: %s", ptc_errname(rc));
    }
    CHECK(ptc_tls_stream_data(sd->s) == sd);
    CHECK(ptc_tls_stream_tcp(sd->s) == tcp);
    CHECK_EQ(sd->hs_cnt, 0); /* the handshake callback never runs from new */
}

/* ---- raw peers ---- */

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    fx_t *fx = h->loop->data;
    size_t avail;
    char *p = (char *)ptc_buf_reserve(&fx->raw_rx, 4096, &avail);
    *buf = uv_buf_init(p, (unsigned)avail);
}

static void on_raw_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_raw_reset_closed(uv_handle_t *h)
{
    fx_t *fx = h->loop->data;
    fx->raw_close_cnt++;
    free(h);
}

static void on_raw_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    fx_t *fx = st->loop->data;
    if (nread > 0) {
        ptc_buf_commit(&fx->raw_rx, (size_t)nread);
    }
    if (nread < 0) {
        uv_read_stop(st);
        return;
    }
    if (fx->srv_kind == PEER_RESET && fx->raw_rx.len > 0 && fx->raw != NULL) {
        /* A ClientHello arrived: answer with RST. */
        CHECK_OK(uv_tcp_close_reset(fx->raw, on_raw_reset_closed));
        fx->raw = NULL;
    }
}

/* Server side of PEER_PREFACE: read the clear preface, hand the rest to TLS. */
static void on_preface_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    fx_t *fx = st->loop->data;
    CHECK_GT(nread, -1);
    ptc_buf_commit(&fx->raw_rx, (size_t)nread);
    ptc_slice_t have = ptc_buf_slice(&fx->raw_rx);
    if (have.len <= 8) {
        return;
    }
    CHECK_MEMEQ(have.ptr, "PREFACE\n", 8);
    uv_read_stop(st);
    uv_tcp_t *tcp = (uv_tcp_t *)st;
    fx->raw = NULL;
    ptc_slice_t rest = {have.ptr + 8, have.len - 8};
    start_tls(fx, &fx->srv, tcp, true, rest);
}

static void on_connection(uv_stream_t *server, int status)
{
    fx_t *fx = server->loop->data;
    CHECK_OK(status);
    uv_tcp_t *tcp = NULL;
    CHECK_OK(ptc_net_accept(server, &tcp));
    fx->accept_cnt++;
    if (fx->small_buffers) {
        int v = 16384;
        CHECK_OK(uv_recv_buffer_size((uv_handle_t *)tcp, &v));
        v = 16384;
        CHECK_OK(uv_send_buffer_size((uv_handle_t *)tcp, &v));
    }
    switch (fx->srv_kind) {
    case PEER_TLS:
        start_tls(fx, &fx->srv, tcp, true, (ptc_slice_t){NULL, 0});
        break;
    case PEER_SILENT:
        fx->raw = tcp;
        break;
    case PEER_RESET:
        fx->raw = tcp;
        CHECK_OK(uv_read_start((uv_stream_t *)tcp, raw_alloc, on_raw_read));
        break;
    case PEER_PREFACE:
        fx->raw = tcp;
        CHECK_OK(uv_read_start((uv_stream_t *)tcp, raw_alloc, on_preface_read));
        break;
    case PEER_GARBAGE:
        CHECK(false);
        break;
    }
    /* One connection per test. */
    close_listener(fx);
}

typedef struct raw_write {
    uv_write_t req;
    fx_t *fx;
    bool reset_after;
} raw_write_t;

static void on_raw_write(uv_write_t *req, int status)
{
    raw_write_t *w = (raw_write_t *)req;
    fx_t *fx = w->fx;
    fx->preface_write_cnt++;
    CHECK_OK(status);
    if (w->reset_after && fx->raw != NULL) {
        CHECK_OK(uv_tcp_close_reset(fx->raw, on_raw_reset_closed));
        fx->raw = NULL;
    }
    free(w);
}

static void raw_send(fx_t *fx, uv_tcp_t *tcp, const char *p, size_t len, bool reset_after)
{
    raw_write_t *w = calloc(1, sizeof(*w));
    w->fx = fx;
    w->reset_after = reset_after;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    CHECK_OK(uv_write(&w->req, (uv_stream_t *)tcp, &b, 1, on_raw_write));
}

static void on_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    fx_t *fx = ptc_net_dial_data(d);
    CHECK_OK(status);
    fx->dial_cnt++;
    if (fx->small_buffers) {
        int v = 16384;
        CHECK_OK(uv_send_buffer_size((uv_handle_t *)tcp, &v));
        v = 16384;
        CHECK_OK(uv_recv_buffer_size((uv_handle_t *)tcp, &v));
    }
    static const char garbage[] = "GET / HTTP/1.1\r\nHost: edge.example.com\r\n\r\n";
    static const char partial[] = {22, 3, 1};
    switch (fx->cli_kind) {
    case PEER_TLS:
        start_tls(fx, &fx->cli, tcp, false, (ptc_slice_t){NULL, 0});
        break;
    case PEER_SILENT:
        fx->raw = tcp;
        break;
    case PEER_RESET:
        fx->raw = tcp;
        raw_send(fx, tcp, partial, sizeof(partial), true);
        break;
    case PEER_GARBAGE:
        fx->raw = tcp;
        raw_send(fx, tcp, garbage, sizeof(garbage) - 1, false);
        CHECK_OK(uv_read_start((uv_stream_t *)tcp, raw_alloc, on_raw_read));
        break;
    case PEER_PREFACE:
        /* The clear bytes go out first; the ClientHello follows on the same socket. */
        raw_send(fx, tcp, "PREFACE\n", 8, false);
        start_tls(fx, &fx->cli, tcp, false, (ptc_slice_t){NULL, 0});
        break;
    }
}

static void fx_connect(fx_t *fx)
{
    CHECK_OK(ptc_net_listen_tcp(&fx->loop, "127.0.0.1:0", 8, on_connection, fx, &fx->listener));
    ptc_net_dial_t *d = NULL;
    CHECK_OK(ptc_net_dial(&fx->loop, "127.0.0.1", ptc_test_tcp_port(fx->listener), 5000, on_dial,
                          fx, &d));
}

/* ---- handshake and echo ---- */

#define ECHO_LEN (200 * 1024)

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 31 + (i >> 9));
    }
    return p;
}

static void echo_client_established(side_t *sd)
{
    fx_t *fx = sd->fx;
    ptc_tls_t *tls = ptc_tls_stream_tls(sd->s);
    CHECK_STREQ(ptc_tls_alpn(tls), "portico/1");
    uint8_t h[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(tls, h));
    CHECK_MEMEQ(h, fx->leaf.sha256, sizeof(h));
    uint8_t *data = pattern(ECHO_LEN);
    for (size_t off = 0; off < ECHO_LEN; off += ECHO_LEN / 4) {
        write_or_fail(sd, data + off, ECHO_LEN / 4);
    }
    free(data);
}

/* The server starts with a handler that must never see data, and switches to the echo
 * handler once the handshake is done (as ALPN dispatch does). */
static void on_rd_too_early(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    (void)s;
    (void)status;
    (void)data;
    CHECK(false);
}

static void echo_server_established(side_t *sd)
{
    ptc_tls_stream_opts_t o = sd->fx->srv_opts;
    o.on_read = on_rd;
    ptc_tls_stream_set_callbacks(sd->s, &o);
    ptc_tls_t *tls = ptc_tls_stream_tls(sd->s);
    CHECK_STREQ(ptc_tls_alpn(tls), "portico/1");
    CHECK_STREQ(ptc_tls_sni(tls), "edge.example.com");
    uint8_t h[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(tls, h));
    CHECK_MEMEQ(h, sd->fx->leaf.sha256, sizeof(h));
    /* Nothing may be written before the handshake, and nothing empty. */
    CHECK_EQ(ptc_tls_stream_write(sd->s, "", 0, on_wr, sd), UV_EINVAL);
}

static void test_handshake_and_echo(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.srv.echo = true;
    fx.srv.shutdown_on_end = true;
    fx.srv.established = echo_server_established;
    fx.srv_opts.on_read = on_rd_too_early;
    fx.cli.expect = ECHO_LEN;
    fx.cli.established = echo_client_established;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 10000, "echo");

    CHECK_EQ(fx.srv.hs_cnt, 1);
    CHECK_EQ(fx.cli.hs_cnt, 1);
    CHECK_OK(fx.srv.hs_status);
    CHECK_OK(fx.cli.hs_status);
    uint8_t *want = pattern(ECHO_LEN);
    CHECK_EQ(fx.srv.rx.len, ECHO_LEN);
    CHECK_MEMEQ(ptc_buf_data(&fx.srv.rx), want, ECHO_LEN);
    CHECK_EQ(fx.cli.rx.len, ECHO_LEN);
    CHECK_MEMEQ(ptc_buf_data(&fx.cli.rx), want, ECHO_LEN);
    free(want);
    CHECK_EQ(fx.cli.wr_ok, 4);
    CHECK_EQ(fx.srv.wr_ok, fx.srv.wr_issued);
    CHECK_EQ(fx.srv.wr_issued, fx.srv.read_cnt);
    /* The client's shutdown sent close_notify: the server read a clean end. */
    CHECK_EQ(fx.srv.read_end_cnt, 1);
    CHECK_EQ(fx.srv.read_end_status, UV_EOF);
    CHECK_EQ(fx.srv.close_cnt, 1);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.raw_close_cnt, 1); /* the listener */
    fx_finish(&fx);
}

/* ---- handshake failures ---- */

static void test_handshake_timeout_against_silent_peer(void)
{
    /* A client against a server that never answers. */
    fx_t fx;
    fx_init(&fx);
    fx.streams = 1;
    fx.srv_kind = PEER_SILENT;
    fx.cli_opts.handshake_timeout_ms = 200;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "client handshake timeout");
    CHECK_EQ(fx.cli.hs_cnt, 1);
    CHECK_EQ(fx.cli.hs_status, PTC_ETIMEOUT);
    CHECK_GE(uv_now(&fx.loop) - fx.t0, 200);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.cli.read_cnt, 0);
    CHECK_EQ(fx.raw_close_cnt, 2); /* listener and the silent peer */
    fx_finish(&fx);

    /* A server against a client that connects and says nothing. */
    fx_init(&fx);
    fx.streams = 1;
    fx.cli_kind = PEER_SILENT;
    fx.srv_opts.handshake_timeout_ms = 200;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "server handshake timeout");
    CHECK_EQ(fx.srv.hs_cnt, 1);
    CHECK_EQ(fx.srv.hs_status, PTC_ETIMEOUT);
    CHECK_GE(uv_now(&fx.loop) - fx.t0, 200);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

static void test_peer_reset_during_handshake(void)
{
    /* The server resets once the ClientHello arrives. */
    fx_t fx;
    fx_init(&fx);
    fx.streams = 1;
    fx.srv_kind = PEER_RESET;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "server resets");
    CHECK_EQ(fx.cli.hs_cnt, 1);
    CHECK_EQ(fx.cli.hs_status, UV_ECONNRESET);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_GT(fx.raw_rx.len, 0); /* the reset came after the ClientHello */
    CHECK_EQ(ptc_buf_data(&fx.raw_rx)[0], 22);
    fx_finish(&fx);

    /* The client sends part of a record header, then resets. */
    fx_init(&fx);
    fx.streams = 1;
    fx.cli_kind = PEER_RESET;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "client resets");
    CHECK_EQ(fx.srv.hs_cnt, 1);
    /* Linux reports a reset that follows unread data as the end of the stream. */
    CHECK(fx.srv.hs_status == UV_ECONNRESET || fx.srv.hs_status == UV_EOF);
    CHECK_EQ(fx.srv.close_cnt, 1);
    CHECK_EQ(fx.preface_write_cnt, 1);
    fx_finish(&fx);
}

static void test_garbage_client_and_bad_certificate(void)
{
    /* An HTTP request where a ClientHello belongs. */
    fx_t fx;
    fx_init(&fx);
    fx.streams = 1;
    fx.cli_kind = PEER_GARBAGE;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "garbage client");
    CHECK_EQ(fx.srv.hs_cnt, 1);
    CHECK_EQ(fx.srv.hs_status, PTC_ETLS);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);

    /* The client refuses the certificate's name; the server hears the alert. */
    fx_init(&fx);
    fx.streams = 2;
    fx.cli_opts.server_name = "wrong.example.com";
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "name mismatch");
    CHECK_EQ(fx.cli.hs_cnt, 1);
    CHECK_EQ(fx.cli.hs_status, PTC_ECERTNAME);
    CHECK_EQ(fx.srv.hs_cnt, 1);
    CHECK(fx.srv.hs_status == PTC_ETLS || fx.srv.hs_status == UV_EOF ||
          fx.srv.hs_status == UV_ECONNRESET);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

/* ---- closing ---- */

static void three_records(side_t *sd)
{
    write_or_fail(sd, "one", 3);
    write_or_fail(sd, "two", 3);
    write_or_fail(sd, "three", 5);
}

static void test_close_during_read(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.srv.established = three_records;
    fx.cli.close_on_first_read = true;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "close during read");
    /* Three records arrived together; the client closed inside the first callback and
     * never heard of the other two. */
    CHECK_EQ(fx.cli.read_cnt, 1);
    CHECK_EQ(fx.cli.rx.len, 3);
    CHECK_MEMEQ(ptc_buf_data(&fx.cli.rx), "one", 3);
    CHECK_EQ(fx.cli.read_end_cnt, 0);
    CHECK_EQ(fx.cli.close_cnt, 1);
    /* The server saw the connection end (EOF without close_notify, or a reset). */
    CHECK_EQ(fx.srv.read_end_cnt, 1);
    CHECK(fx.srv.read_end_status == UV_EOF || fx.srv.read_end_status == UV_ECONNRESET);
    CHECK_EQ(fx.srv.close_cnt, 1);
    CHECK_EQ(fx.srv.wr_ok, 3);
    fx_finish(&fx);
}

typedef struct resume_timer {
    uv_timer_t timer;
    side_t *sd;
    int reads_when_fired;
} resume_timer_t;

static void on_resume_timer(uv_timer_t *t)
{
    resume_timer_t *rt = t->data;
    rt->reads_when_fired = rt->sd->read_cnt;
    /* The two remaining records sit in the TLS input; no socket data will come. */
    CHECK_OK(ptc_tls_stream_read_start(rt->sd->s));
    CHECK_OK(ptc_tls_stream_read_start(rt->sd->s));   /* idempotent */
    CHECK_EQ(rt->sd->read_cnt, rt->reads_when_fired); /* never from inside read_start */
    uv_close((uv_handle_t *)t, NULL);
}

static resume_timer_t resume;

static void stop_then_resume(side_t *sd)
{
    resume.sd = sd;
    uv_timer_init(&sd->fx->loop, &resume.timer);
    resume.timer.data = &resume;
    uv_timer_start(&resume.timer, on_resume_timer, 100, 0);
}

static void test_read_stop_keeps_buffered_records(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.srv.established = three_records;
    fx.srv.shutdown_on_end = true;
    fx.cli.stop_on_first_read = true;
    fx.cli.expect = 11;
    fx.cli.established = stop_then_resume;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "read stop and resume");
    CHECK_EQ(resume.reads_when_fired, 1);
    CHECK_EQ(fx.cli.read_cnt, 3);
    CHECK_EQ(fx.cli.rx.len, 11);
    CHECK_MEMEQ(ptc_buf_data(&fx.cli.rx), "onetwothree", 11);
    CHECK_EQ(fx.srv.read_end_status, UV_EOF);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

static void stop_reading(side_t *sd)
{
    ptc_tls_stream_read_stop(sd->s);
    ptc_tls_stream_read_stop(sd->s); /* idempotent */
}

#define BIG_WRITES 20
#define BIG_WRITE_LEN (64 * 1024)

static void write_then_close(side_t *sd)
{
    uint8_t *data = pattern(BIG_WRITE_LEN);
    for (int i = 0; i < BIG_WRITES; i++) {
        write_or_fail(sd, data, BIG_WRITE_LEN);
    }
    free(data);
    ptc_tls_stream_close(sd->s);
    /* Closed: every entry point refuses without calling back. */
    CHECK_EQ(ptc_tls_stream_write(sd->s, "x", 1, on_wr, sd), PTC_ECLOSED);
    CHECK_EQ(ptc_tls_stream_read_start(sd->s), PTC_ECLOSED);
    ptc_tls_stream_shutdown(sd->s);
    CHECK(ptc_tls_stream_is_closing(sd->s));
    /* The server is not reading, so it would never notice: close it too. */
    ptc_tls_stream_close(sd->fx->srv.s);
}

static void test_close_with_writes_pending(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.small_buffers = true;
    fx.srv.established = stop_reading;
    fx.cli.established = write_then_close;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "close with writes pending");
    CHECK_EQ(fx.cli.wr_issued, BIG_WRITES);
    CHECK_EQ(fx.cli.wr_ok + fx.cli.wr_cancel, BIG_WRITES);
    CHECK_GT(fx.cli.wr_cancel, 0);
    CHECK_EQ(fx.cli.wr_err, 0);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.srv.read_cnt, 0);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

/* ---- back-pressure ---- */

typedef struct bp {
    uv_timer_t timer;
    fx_t *fx;
    size_t sent;
    size_t backlog_when_full;
    int drains_before_read;
    int server_reads_before;
} bp_t;

static bp_t bp;

static void on_bp_timer(uv_timer_t *t)
{
    bp.drains_before_read = bp.fx->cli.drain_cnt;
    bp.server_reads_before = bp.fx->srv.read_cnt;
    CHECK_OK(ptc_tls_stream_read_start(bp.fx->srv.s));
    uv_close((uv_handle_t *)t, NULL);
}

static void fill_until_full(side_t *sd)
{
    static uint8_t chunk[16 * 1024];
    memset(chunk, 'b', sizeof(chunk));
    while (!ptc_tls_stream_is_full(sd->s)) {
        write_or_fail(sd, chunk, sizeof(chunk));
        bp.sent += sizeof(chunk);
        CHECK_LT(bp.sent, 64 * 1024 * 1024);
    }
    bp.backlog_when_full = ptc_tls_stream_backlog(sd->s);
    sd->fx->srv.expect = bp.sent;
    uv_timer_init(&sd->fx->loop, &bp.timer);
    uv_timer_start(&bp.timer, on_bp_timer, 150, 0);
}

static void test_back_pressure(void)
{
    fx_t fx;
    fx_init(&fx);
    bp.fx = &fx;
    fx.streams = 2;
    fx.small_buffers = true;
    fx.cli_opts.high_water = 256 * 1024;
    fx.cli_opts.low_water = 64 * 1024;
    fx.srv.established = stop_reading;
    fx.cli.established = fill_until_full;
    fx.cli.shutdown_on_end = true;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 10000, "back-pressure");
    CHECK(fx.cli.is_full_seen);
    CHECK_GE(bp.backlog_when_full, 256 * 1024);
    /* While the server did not read, the backlog could not drain. */
    CHECK_EQ(bp.drains_before_read, 0);
    CHECK_EQ(bp.server_reads_before, 0);
    /* Once it read, the drain callback fired exactly once. */
    CHECK_EQ(fx.cli.drain_cnt, 1);
    CHECK_EQ(fx.srv.rx.len, bp.sent);
    CHECK_EQ(fx.cli.wr_ok, fx.cli.wr_issued);
    CHECK_EQ(fx.cli.read_end_status, UV_EOF);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

/* ---- TLS after clear bytes ---- */

static void hello_then_wait(side_t *sd)
{
    write_or_fail(sd, "hello over the preface", 22);
}

static void test_tls_after_clear_preface(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.srv_kind = PEER_PREFACE;
    fx.cli_kind = PEER_PREFACE;
    fx.srv.echo = true;
    fx.srv.shutdown_on_end = true;
    fx.cli.expect = 22;
    fx.cli.established = hello_then_wait;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "TLS after a clear preface");
    CHECK_EQ(fx.preface_write_cnt, 1);
    CHECK_OK(fx.srv.hs_status);
    CHECK_OK(fx.cli.hs_status);
    CHECK_EQ(fx.cli.rx.len, 22);
    CHECK_MEMEQ(ptc_buf_data(&fx.cli.rx), "hello over the preface", 22);
    CHECK_EQ(fx.srv.close_cnt, 1);
    CHECK_EQ(fx.cli.close_cnt, 1);
    fx_finish(&fx);
}

/* ---- corking ---- */

#define CORK_SMALL 100
#define CORK_BIG (40 * 1024)

/* Bytes waiting in the kernel for the server to read. */
static int server_unread(fx_t *fx)
{
    uv_os_fd_t fd;
    CHECK_OK(uv_fileno((uv_handle_t *)ptc_tls_stream_tcp(fx->srv.s), &fd));
    int n = -1;
    CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

static void small_writes_then_a_big_one(side_t *sd)
{
    fx_t *fx = sd->fx;
    CHECK_NOT_NULL(fx->srv.s);
    CHECK_EQ(server_unread(fx), 0);
    uint8_t *data = pattern(CORK_BIG);
    /* Small writes wait for the end of this round of callbacks: nothing has left yet. */
    for (int i = 0; i < 3; i++) {
        write_or_fail(sd, data, CORK_SMALL);
    }
    CHECK_EQ(server_unread(fx), 0);
    CHECK_EQ(sd->wr_ok, 0);
    /* Past the cork's limit everything leaves at once, the small writes first. */
    write_or_fail(sd, data, CORK_BIG);
    CHECK_GT(server_unread(fx), 3 * CORK_SMALL + CORK_BIG);
    free(data);
}

static void test_small_writes_leave_together(void)
{
    fx_t fx;
    fx_init(&fx);
    fx.streams = 2;
    fx.srv.expect = 3 * CORK_SMALL + CORK_BIG;
    fx.cli.established = small_writes_then_a_big_one;
    fx_connect(&fx);
    ptc_test_loop_run(&fx.loop, 5000, "corked writes");
    CHECK_EQ(fx.srv.rx.len, 3 * CORK_SMALL + CORK_BIG);
    uint8_t *want = pattern(CORK_BIG);
    const uint8_t *got = ptc_buf_data(&fx.srv.rx);
    for (int i = 0; i < 3; i++) {
        CHECK_MEMEQ(got + i * CORK_SMALL, want, CORK_SMALL);
    }
    CHECK_MEMEQ(got + 3 * CORK_SMALL, want, CORK_BIG);
    free(want);
    CHECK_EQ(fx.cli.wr_ok, 4);
    CHECK_EQ(fx.cli.close_cnt, 1);
    CHECK_EQ(fx.srv.close_cnt, 1);
    fx_finish(&fx);
}

static void test_new_rejects_bad_options(void)
{
    fx_t fx;
    fx_init(&fx);
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    CHECK_OK(uv_tcp_init(&fx.loop, tcp));
    ptc_tls_stream_opts_t o = {0};
    ptc_tls_stream_t *s = NULL;
    /* The handle is closed and freed by the failed call (no callback ever runs). */
    CHECK_EQ(ptc_tls_stream_new(tcp, fx.scfg, &o, &s), UV_EINVAL);
    CHECK_NULL(s);
    tcp = malloc(sizeof(*tcp));
    CHECK_OK(uv_tcp_init(&fx.loop, tcp));
    o = fx.cli_opts;
    o.server_name = NULL; /* a verifying client needs a name */
    CHECK_EQ(ptc_tls_stream_new(tcp, fx.ccfg, &o, &s), UV_EINVAL);
    fx_finish(&fx);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_handshake_and_echo),
    PTC_TEST(test_handshake_timeout_against_silent_peer),
    PTC_TEST(test_peer_reset_during_handshake),
    PTC_TEST(test_garbage_client_and_bad_certificate),
    PTC_TEST(test_close_during_read),
    PTC_TEST(test_read_stop_keeps_buffered_records),
    PTC_TEST(test_close_with_writes_pending),
    PTC_TEST(test_back_pressure),
    PTC_TEST(test_tls_after_clear_preface),
    PTC_TEST(test_small_writes_leave_together),
    PTC_TEST(test_new_rejects_bad_options),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
