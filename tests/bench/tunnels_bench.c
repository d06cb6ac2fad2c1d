/* SPDX-License-Identifier: MIT */
/*
 * A load benchmark of the edge's tunnel server, not a test: one process simulates N
 * connectors against a running portico-edge and reports how fast the edge completes tunnel
 * handshakes and how much memory each live tunnel costs it. It asserts nothing and is never
 * registered with meson test; tests/bench/tunnels_bench.sh starts the edge and runs it.
 *
 * Each simulated connector first registers through the real endpoint (POST
 * /.portico/v1/register with a shared multi-use token and its own fresh Ed25519 key pair,
 * docs/protocol.md §12), then opens one tunnel (or --tunnels-per-connector of them): TCP,
 * TLS with ALPN portico/1 and the edge's name as SNI, the handshake of §11 (the auth
 * signature covers the exact bytes of §11.6 with the SHA-256 of the leaf certificate DER as
 * received), then a connector-role mux that answers PINGs and sends its own, until the end
 * of the run. At most `concurrency` tunnel handshakes are in flight at once.
 *
 * The edge's memory and CPU come from /proc/<pid>/status (VmRSS, RssAnon) and
 * /proc/<pid>/stat (utime + stime), sampled before the first tunnel, when the N-th tunnel is
 * up, and after an idle period. It uses libuv, common/ (tls, tls_stream, net, keys, http
 * parser) and proto/mux; it never links edge/ or connector/ code, so the handshake is an
 * independent reading of the specification.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "common/keys.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "proto/mux.h"
#include "proto/proto.h"

#define DEFAULT_N 1000
#define DEFAULT_CONCURRENCY 64
#define DEFAULT_REG_CONCURRENCY 8
#define DEFAULT_IDLE_S 5
#define MAX_N 100000
/* Dial and TLS deadlines, and the §11.7 deadline from connect to welcome. */
#define CONNECT_TIMEOUT_MS 10000
#define HANDSHAKE_DEADLINE_MS 10000
/* The periodic timer: mux liveness ticks and handshake deadlines. */
#define TICK_MS 200
/* Pause between the last registration and the "before" sample. */
#define SETTLE_MS 1000
#define ID_MAX 64
#define NONCE_LEN 32
#define REG_BODY_MAX 8192
#define AUTH_CONTEXT "portico tunnel auth v1"
#define AGENT "portico-tunnels-bench/" PTC_VERSION

typedef struct bench bench_t;

/* One simulated connector. */
typedef enum sim_phase {
    SIM_IDLE,        /* nothing started */
    SIM_REGISTERING, /* the registration request is in flight */
    SIM_REGISTERED,  /* it has a connector id and no tunnel yet */
    SIM_CONNECTING,  /* TCP and TLS */
    SIM_HANDSHAKE,   /* TLS is up; waiting for the challenge, then the welcome */
    SIM_UP,          /* the welcome arrived: the tunnel runs */
    SIM_FAILED,      /* registration or handshake failed */
    SIM_DOWN,        /* the tunnel was up and ended before the run did */
} sim_phase_t;

typedef struct sim {
    bench_t *b;
    size_t idx;
    sim_phase_t phase;
    /* The connector whose identity this tunnel uses: itself, or with several tunnels per
     * connector the entry (idx % connectors). Only that entry registers. */
    struct sim *ident;
    ptc_ed25519_key_t key;
    char id[ID_MAX + 1];
    ptc_net_dial_t *dial;     /* while dialing */
    ptc_tls_stream_t *stream; /* until its close callback */
    ptc_http_parser_t *http;  /* registration: the response parser */
    ptc_buf_t body;           /* registration: the response body */
    int http_status;
    ptc_mux_t *mux; /* tunnel: from the TLS handshake on */
    bool got_challenge;
    uint64_t start_ns;   /* tunnel: the TCP connect began */
    uint64_t welcome_ns; /* tunnel: the welcome arrived */
    /* Frames received and sent when the last tunnel came up, for the idle traffic. */
    uint64_t frames_in_up;
    uint64_t frames_out_up;
} sim_t;

typedef enum bench_phase {
    PH_REGISTER,
    PH_SETTLE,
    PH_TUNNELS,
    PH_IDLE,
    PH_CLOSING,
} bench_phase_t;

/* What /proc says about a process at one moment. */
typedef struct proc_sample {
    bool ok;
    long rss_kib;
    long anon_kib;
    double cpu_s; /* utime + stime */
} proc_sample_t;

struct bench {
    uv_loop_t loop;
    uv_timer_t tick;
    bool tick_open;
    /* Options. */
    const char *host; /* address to dial */
    uint16_t port;
    const char *server_name; /* SNI and certificate name */
    const char *ca_file;
    const char *token_file;
    char token[128];
    long edge_pid;
    size_t n_conn;   /* simulated connectors (registrations) */
    size_t per_conn; /* tunnels per connector */
    size_t n;        /* tunnels: n_conn * per_conn */
    size_t concurrency;
    size_t reg_concurrency;
    unsigned idle_s;
    ptc_tls_config_t *reg_tls;
    ptc_tls_config_t *tun_tls;
    sim_t *sims;
    /* The current phase's progress. */
    bench_phase_t phase;
    size_t next;
    size_t in_flight;
    size_t ok;
    size_t failed;
    uint64_t phase_start_ns;
    uint64_t first_connect_ns;
    uint64_t last_welcome_ns;
    uint64_t deadline_ns; /* end of SETTLE or IDLE */
    char first_error[256];
    /* Samples of the edge. */
    proc_sample_t before;
    proc_sample_t up;
    proc_sample_t idle;
    double reg_s;
    double bench_cpu_tunnels_s;
    int exit_code;
};

static void pump(bench_t *b);
static void tunnels_done(bench_t *b);
static void close_all(bench_t *b);

/* ---- helpers ---- */

static double cpu_self_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Reads VmRSS and RssAnon (KiB) from /proc/<pid>/status and utime + stime from
 * /proc/<pid>/stat. pid 0 means this process. */
static proc_sample_t proc_sample(long pid)
{
    proc_sample_t s = {.ok = false, .rss_kib = -1, .anon_kib = -1, .cpu_s = -1};
    char path[64];
    char line[512];
    if (pid > 0) {
        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    } else {
        snprintf(path, sizeof(path), "/proc/self/status");
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return s;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        long v;
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1) {
            s.rss_kib = v;
        } else if (sscanf(line, "RssAnon: %ld kB", &v) == 1) {
            s.anon_kib = v;
        }
    }
    fclose(f);
    if (pid > 0) {
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    } else {
        snprintf(path, sizeof(path), "/proc/self/stat");
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return s;
    }
    size_t len = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[len] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'.
     * After it come state (3), ppid (4) ... utime (14) and stime (15), see proc(5). */
    char *p = strrchr(line, ')');
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2) {
        return s;
    }
    long hz = sysconf(_SC_CLK_TCK);
    s.cpu_s = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
    s.ok = s.rss_kib >= 0;
    return s;
}

/* Keeps the first failure's text: "#i: what (detail)", i the connector or tunnel index. */
static void note_error(bench_t *b, const sim_t *s, const char *what, const char *detail)
{
    if (b->first_error[0] != '\0') {
        return;
    }
    if (detail != NULL) {
        snprintf(b->first_error, sizeof(b->first_error), "#%zu: %s (%s)", s->idx, what, detail);
    } else {
        snprintf(b->first_error, sizeof(b->first_error), "#%zu: %s", s->idx, what);
    }
}

static void sim_close_stream(sim_t *s)
{
    if (s->dial != NULL) {
        ptc_net_dial_cancel(s->dial);
    }
    if (s->stream != NULL) {
        ptc_tls_stream_close(s->stream);
    }
}

/* The stream's last callback: the mux goes with it. */
static void on_stream_close(ptc_tls_stream_t *st)
{
    sim_t *s = ptc_tls_stream_data(st);
    s->stream = NULL;
    ptc_mux_free(s->mux);
    s->mux = NULL;
}

/* Ends the current phase's work on one connector and starts the next connector. */
static void sim_finish(sim_t *s, bool ok, const char *what, const char *detail)
{
    bench_t *b = s->b;
    if (!ok) {
        note_error(b, s, what, detail);
        s->phase = SIM_FAILED;
        sim_close_stream(s);
        b->failed++;
    } else {
        b->ok++;
    }
    b->in_flight--;
    pump(b);
}

/* ---- registration (docs/protocol.md §12) ---- */

static void on_reg_read(ptc_tls_stream_t *st, int status, ptc_slice_t data);

/* The 201 answer's connector_id, or a failure. */
static void reg_answer(sim_t *s)
{
    if (s->http_status != 201) {
        /* The answer's JSON error, without its line end, cut to 80 bytes. */
        const char *text = (const char *)ptc_buf_data(&s->body);
        size_t len = s->body.len > 80 ? 80 : s->body.len;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
            len--;
        }
        char detail[128];
        snprintf(detail, sizeof(detail), "%d %.*s", s->http_status, (int)len, text);
        sim_finish(s, false, "registration refused", detail);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)ptc_buf_data(&s->body), s->body.len, 0, &jerr);
    json_t *id = json_is_object(doc) ? json_object_get(doc, "connector_id") : NULL;
    if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > ID_MAX) {
        json_decref(doc);
        sim_finish(s, false, "registration answer without a connector_id", NULL);
        return;
    }
    snprintf(s->id, sizeof(s->id), "%s", json_string_value(id));
    json_decref(doc);
    s->phase = SIM_REGISTERED;
    sim_close_stream(s);
    /* The parser is not needed any more (no callback follows the close). */
    ptc_http_parser_free(s->http);
    s->http = NULL;
    ptc_buf_dispose(&s->body);
    sim_finish(s, true, NULL, NULL);
}

static void on_reg_read(ptc_tls_stream_t *st, int status, ptc_slice_t data)
{
    sim_t *s = ptc_tls_stream_data(st);
    if (s->phase != SIM_REGISTERING) {
        return;
    }
    if (status != 0) {
        sim_finish(s, false, "registration connection ended early", ptc_errname(status));
        return;
    }
    const uint8_t *p = data.ptr;
    size_t left = data.len;
    for (;;) {
        ptc_http_event_t ev;
        ssize_t used = ptc_http_parser_feed(s->http, p, left, &ev);
        if (used < 0) {
            sim_finish(s, false, "registration answer unreadable", ptc_errname((int)used));
            return;
        }
        p += used;
        left -= (size_t)used;
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            return;
        case PTC_HTTP_EV_HEAD:
            s->http_status = ev.head->status;
            break;
        case PTC_HTTP_EV_BODY:
            if (s->body.len + ev.body.len > REG_BODY_MAX) {
                sim_finish(s, false, "registration answer too large", NULL);
                return;
            }
            ptc_buf_append(&s->body, ev.body.ptr, ev.body.len);
            break;
        case PTC_HTTP_EV_DONE:
            reg_answer(s);
            return;
        case PTC_HTTP_EV_INTERIM:
            break;
        case PTC_HTTP_EV_UPGRADE:
        case PTC_HTTP_EV_ERROR:
            sim_finish(s, false, "registration answer unexpected", NULL);
            return;
        }
    }
}

static void on_reg_handshake(ptc_tls_stream_t *st, int status)
{
    sim_t *s = ptc_tls_stream_data(st);
    bench_t *b = s->b;
    if (status != 0) {
        sim_finish(s, false, "registration TLS failed", ptc_errname(status));
        return;
    }
    char pk[64];
    if (ptc_b64url_encode(s->key.pk, sizeof(s->key.pk), pk, sizeof(pk)) < 0) {
        sim_finish(s, false, "base64url failed", NULL);
        return;
    }
    char hostname[32];
    snprintf(hostname, sizeof(hostname), "bench-%zu", s->idx);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "token", b->token, "public_key", pk, "hostname",
                            hostname, "agent", AGENT);
    char *body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL) {
        sim_finish(s, false, "could not build the registration body", NULL);
        return;
    }
    size_t body_len = strlen(body);
    size_t cap = body_len + 512;
    char *req = ptc_xmalloc(cap);
    int len = snprintf(req, cap,
                       "POST /.portico/v1/register HTTP/1.1\r\n"
                       "Host: %s\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: %zu\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "%s",
                       b->server_name, body_len, body);
    /* The body holds the token: wipe both copies. */
    ptc_keys_wipe(body, body_len);
    free(body);
    int rc = len > 0 && (size_t)len < cap ? ptc_tls_stream_write(st, req, (size_t)len, NULL, NULL)
                                          : PTC_ELIMIT;
    ptc_keys_wipe(req, cap);
    free(req);
    if (rc != 0) {
        sim_finish(s, false, "registration write failed", ptc_errname(rc));
    }
}

static void on_reg_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    sim_t *s = ptc_net_dial_data(d);
    s->dial = NULL;
    if (s->phase == SIM_FAILED || s->b->phase == PH_CLOSING) {
        /* Cancelled (a deadline, or the end of the run): already counted. */
        if (tcp != NULL) {
            uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        }
        return;
    }
    if (status != 0) {
        sim_finish(s, false, "registration connect failed", ptc_errname(status));
        return;
    }
    ptc_tls_stream_opts_t o = {
        .server_name = s->b->server_name,
        .handshake_timeout_ms = CONNECT_TIMEOUT_MS,
        .on_handshake = on_reg_handshake,
        .on_read = on_reg_read,
        .on_close = on_stream_close,
        .data = s,
    };
    int rc = ptc_tls_stream_new(tcp, s->b->reg_tls, &o, &s->stream);
    if (rc != 0) {
        s->stream = NULL;
        sim_finish(s, false, "TLS setup failed", ptc_errname(rc));
    }
}

static void start_register(sim_t *s)
{
    bench_t *b = s->b;
    s->phase = SIM_REGISTERING;
    ptc_ed25519_generate(&s->key);
    s->http = ptc_http_parser_new(PTC_HTTP_RESPONSE, NULL);
    ptc_buf_init(&s->body);
    s->http_status = 0;
    int rc = ptc_net_dial(&b->loop, b->host, b->port, CONNECT_TIMEOUT_MS, on_reg_dial, s, &s->dial);
    if (rc != 0) {
        s->dial = NULL;
        sim_finish(s, false, "connect failed", ptc_errname(rc));
    }
}

/* ---- tunnels (docs/protocol.md §11) ---- */

/* Writes whatever the mux queued. Returns false (and fails the connector) on error. */
static bool flush_mux(sim_t *s)
{
    for (;;) {
        size_t n = 0;
        const uint8_t *p = ptc_mux_output(s->mux, &n);
        if (n == 0) {
            return true;
        }
        int rc = ptc_tls_stream_write(s->stream, p, n, NULL, NULL);
        if (rc != 0) {
            return false;
        }
        ptc_mux_output_consume(s->mux, n);
    }
}

/* The tunnel failed during the handshake, or ended after it. */
static void tunnel_lost(sim_t *s, const char *what, const char *detail)
{
    if (s->phase == SIM_UP) {
        note_error(s->b, s, what, detail);
        s->phase = SIM_DOWN;
        sim_close_stream(s);
        return;
    }
    if (s->phase == SIM_CONNECTING || s->phase == SIM_HANDSHAKE) {
        sim_finish(s, false, what, detail);
    }
}

/* §11.3: answers the challenge with auth, signing the §11.6 message. */
static bool on_challenge(sim_t *s, json_t *doc)
{
    json_t *jn = json_object_get(doc, "nonce");
    json_t *versions = json_object_get(doc, "versions");
    uint8_t nonce[NONCE_LEN];
    size_t nlen = 0;
    if (!json_is_string(jn) || !json_is_array(versions) ||
        ptc_b64url_decode(json_string_value(jn), json_string_length(jn), nonce, sizeof(nonce),
                          &nlen) != 0 ||
        nlen != NONCE_LEN) {
        return false;
    }
    bool offered = false;
    for (size_t i = 0; i < json_array_size(versions); i++) {
        json_t *v = json_array_get(versions, i);
        offered = offered || (json_is_integer(v) && json_integer_value(v) == PTC_PROTO_VERSION);
    }
    if (!offered) {
        return false;
    }
    uint8_t cert_hash[PTC_TLS_SHA256_LEN];
    if (ptc_tls_server_cert_sha256(ptc_tls_stream_tls(s->stream), cert_hash) != 0) {
        return false;
    }
    /* context (with its NUL) || nonce || cert_hash || u16 id_length || connector_id */
    const sim_t *me = s->ident;
    size_t id_len = strlen(me->id);
    uint8_t msg[sizeof(AUTH_CONTEXT) + NONCE_LEN + PTC_TLS_SHA256_LEN + 2 + ID_MAX];
    size_t m = 0;
    memcpy(msg + m, AUTH_CONTEXT, sizeof(AUTH_CONTEXT));
    m += sizeof(AUTH_CONTEXT);
    memcpy(msg + m, nonce, NONCE_LEN);
    m += NONCE_LEN;
    memcpy(msg + m, cert_hash, sizeof(cert_hash));
    m += sizeof(cert_hash);
    msg[m++] = (uint8_t)(id_len >> 8);
    msg[m++] = (uint8_t)id_len;
    memcpy(msg + m, me->id, id_len);
    m += id_len;
    uint8_t sig[PTC_ED25519_SIG_LEN];
    ptc_ed25519_sign(&me->key, msg, m, sig);
    char sig_text[96];
    char hostname[32];
    if (ptc_b64url_encode(sig, sizeof(sig), sig_text, sizeof(sig_text)) < 0) {
        return false;
    }
    snprintf(hostname, sizeof(hostname), "bench-%zu", me->idx);
    const ptc_mux_limits_t *lim = ptc_mux_local_limits(s->mux);
    json_t *auth = json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "type", "auth",
        "version", PTC_PROTO_VERSION, "connector_id", me->id, "agent", AGENT, "hostname", hostname,
        "signature", sig_text, "limits", "max_frame_size", (json_int_t)lim->max_frame_size,
        "max_header_block", (json_int_t)lim->max_header_block, "max_control_size",
        (json_int_t)lim->max_control_size, "max_streams", (json_int_t)lim->max_streams,
        "initial_stream_window", (json_int_t)lim->initial_stream_window, "initial_tunnel_window",
        (json_int_t)lim->initial_tunnel_window);
    char *text = auth != NULL ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(auth);
    if (text == NULL) {
        return false;
    }
    int rc = ptc_mux_send_control(s->mux, (const uint8_t *)text, strlen(text));
    free(text);
    s->got_challenge = true;
    return rc == 0;
}

/* §11.5: the tunnel runs; take the liveness timers and the edge's limits. */
static bool on_welcome(sim_t *s, json_t *doc)
{
    json_t *tid = json_object_get(doc, "tunnel_id");
    json_t *ping = json_object_get(doc, "ping_interval_ms");
    json_t *idle = json_object_get(doc, "idle_timeout_ms");
    if (!json_is_string(tid) || !json_is_integer(ping) || !json_is_integer(idle) ||
        json_integer_value(ping) < 1000 || json_integer_value(idle) <= json_integer_value(ping) ||
        json_integer_value(idle) > 3600000) {
        return false;
    }
    ptc_mux_limits_t peer = PTC_MUX_LIMITS_DEFAULT;
    json_t *lim = json_object_get(doc, "limits");
    if (json_is_object(lim)) {
        static const struct {
            const char *key;
            size_t off;
        } members[] = {
            {"max_frame_size", offsetof(ptc_mux_limits_t, max_frame_size)},
            {"max_header_block", offsetof(ptc_mux_limits_t, max_header_block)},
            {"max_control_size", offsetof(ptc_mux_limits_t, max_control_size)},
            {"max_streams", offsetof(ptc_mux_limits_t, max_streams)},
            {"initial_stream_window", offsetof(ptc_mux_limits_t, initial_stream_window)},
            {"initial_tunnel_window", offsetof(ptc_mux_limits_t, initial_tunnel_window)},
        };
        for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
            json_t *v = json_object_get(lim, members[i].key);
            if (v == NULL) {
                continue;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > 0x7FFFFFFF) {
                return false;
            }
            uint32_t x = (uint32_t)json_integer_value(v);
            memcpy((uint8_t *)&peer + members[i].off, &x, sizeof(x));
        }
    }
    if (ptc_mux_set_peer_limits(s->mux, &peer) != 0) {
        return false;
    }
    ptc_mux_set_liveness(s->mux, (uint32_t)json_integer_value(ping),
                         (uint32_t)json_integer_value(idle));
    return true;
}

/*
 * One CONTROL document. Returns NULL, or the §11.8 GOAWAY text when the tunnel must end
 * (the connector's side of the table: a bad challenge or welcome, an unexpected document).
 */
static const char *on_control(sim_t *s, const uint8_t *p, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *type = json_is_object(doc) ? json_object_get(doc, "type") : NULL;
    const char *name = json_is_string(type) ? json_string_value(type) : "";
    const char *why = NULL;
    if (s->phase == SIM_HANDSHAKE && !s->got_challenge && strcmp(name, "challenge") == 0) {
        if (!on_challenge(s, doc)) {
            why = "malformed challenge";
            note_error(s->b, s, "bad challenge", NULL);
        }
    } else if (s->phase == SIM_HANDSHAKE && s->got_challenge && strcmp(name, "welcome") == 0) {
        if (on_welcome(s, doc)) {
            bench_t *b = s->b;
            s->phase = SIM_UP;
            s->welcome_ns = uv_hrtime();
            b->last_welcome_ns = s->welcome_ns;
            sim_finish(s, true, NULL, NULL);
        } else {
            why = "malformed welcome";
            note_error(s->b, s, "bad welcome", NULL);
        }
    } else if (s->phase == SIM_HANDSHAKE) {
        why = "unexpected frame";
        note_error(s->b, s, "unexpected document", name);
    }
    /* After the welcome, unknown documents are ignored (§13). */
    json_decref(doc);
    return why;
}

static void on_tun_read(ptc_tls_stream_t *st, int status, ptc_slice_t data)
{
    sim_t *s = ptc_tls_stream_data(st);
    if (s->mux == NULL) {
        return;
    }
    if (status != 0) {
        tunnel_lost(s, "tunnel closed by the edge", ptc_errname(status));
        return;
    }
    int rc = ptc_mux_feed(s->mux, data.ptr, data.len, uv_now(&s->b->loop));
    ptc_mux_event_t ev;
    while (s->mux != NULL && ptc_mux_next_event(s->mux, &ev)) {
        switch (ev.type) {
        case PTC_MUX_EV_CONTROL: {
            const char *why = on_control(s, ev.data, ev.len);
            if (why != NULL) {
                (void)ptc_mux_goaway(s->mux, PTC_WIRE_PROTOCOL_ERROR, (const uint8_t *)why,
                                     strlen(why));
                (void)flush_mux(s);
                tunnel_lost(s, "handshake refused", why);
                return;
            }
            break;
        }
        case PTC_MUX_EV_REQUEST:
            /* The edge never routes to these connectors; refuse rather than hang. */
            (void)ptc_mux_reset(s->mux, ev.stream_id, PTC_WIRE_REFUSED_STREAM);
            break;
        case PTC_MUX_EV_GOAWAY: {
            char text[128];
            snprintf(text, sizeof(text), "code %u, \"%.*s\"", ev.code,
                     (int)(ev.len > 80 ? 80 : ev.len), (const char *)ev.data);
            tunnel_lost(s, "GOAWAY from the edge", text);
            return;
        }
        case PTC_MUX_EV_ERROR:
            (void)flush_mux(s);
            tunnel_lost(s, "tunnel protocol error", "mux");
            return;
        case PTC_MUX_EV_RESPONSE:
        case PTC_MUX_EV_DATA:
        case PTC_MUX_EV_RESET:
        case PTC_MUX_EV_REFUSED:
        case PTC_MUX_EV_WRITABLE:
        case PTC_MUX_EV_PING_ACK:
            break;
        }
    }
    if (s->mux == NULL || s->stream == NULL || ptc_tls_stream_is_closing(s->stream)) {
        return;
    }
    if (!flush_mux(s) || rc != 0) {
        tunnel_lost(s, "tunnel write failed", NULL);
    }
}

static void on_tun_handshake(ptc_tls_stream_t *st, int status)
{
    sim_t *s = ptc_tls_stream_data(st);
    if (status != 0) {
        sim_finish(s, false, "tunnel TLS failed", ptc_errname(status));
        return;
    }
    /* §2 rule 3: without portico/1 the connector closes without sending a frame. */
    const char *alpn = ptc_tls_alpn(ptc_tls_stream_tls(st));
    if (alpn == NULL || strcmp(alpn, PTC_PROTO_ALPN) != 0) {
        sim_finish(s, false, "the edge did not select ALPN portico/1", NULL);
        return;
    }
    s->mux = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, uv_now(&s->b->loop));
    if (s->mux == NULL) {
        sim_finish(s, false, "out of memory", NULL);
        return;
    }
    s->phase = SIM_HANDSHAKE;
}

static void on_tun_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    sim_t *s = ptc_net_dial_data(d);
    s->dial = NULL;
    if (s->phase == SIM_FAILED || s->b->phase == PH_CLOSING) {
        /* Cancelled (a deadline, or the end of the run): already counted. */
        if (tcp != NULL) {
            uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        }
        return;
    }
    if (status != 0) {
        sim_finish(s, false, "tunnel connect failed", ptc_errname(status));
        return;
    }
    ptc_tls_stream_opts_t o = {
        .server_name = s->b->server_name,
        .handshake_timeout_ms = HANDSHAKE_DEADLINE_MS,
        .on_handshake = on_tun_handshake,
        .on_read = on_tun_read,
        .on_close = on_stream_close,
        .data = s,
    };
    int rc = ptc_tls_stream_new(tcp, s->b->tun_tls, &o, &s->stream);
    if (rc != 0) {
        s->stream = NULL;
        sim_finish(s, false, "TLS setup failed", ptc_errname(rc));
    }
}

static void start_tunnel(sim_t *s)
{
    bench_t *b = s->b;
    s->phase = SIM_CONNECTING;
    s->got_challenge = false;
    s->start_ns = uv_hrtime();
    if (b->first_connect_ns == 0) {
        b->first_connect_ns = s->start_ns;
    }
    int rc = ptc_net_dial(&b->loop, b->host, b->port, CONNECT_TIMEOUT_MS, on_tun_dial, s, &s->dial);
    if (rc != 0) {
        s->dial = NULL;
        sim_finish(s, false, "connect failed", ptc_errname(rc));
    }
}

/* ---- phases ---- */

static void start_tunnels(bench_t *b)
{
    b->before = proc_sample(b->edge_pid);
    b->bench_cpu_tunnels_s = cpu_self_s();
    b->phase = PH_TUNNELS;
    b->next = 0;
    b->ok = 0;
    b->failed = 0;
    b->phase_start_ns = uv_hrtime();
    pump(b);
}

/* Starts connectors while the phase's concurrency allows; ends the phase when all are done. */
static void pump(bench_t *b)
{
    if (b->phase != PH_REGISTER && b->phase != PH_TUNNELS) {
        return;
    }
    size_t limit = b->phase == PH_REGISTER ? b->reg_concurrency : b->concurrency;
    size_t total = b->phase == PH_REGISTER ? b->n_conn : b->n;
    while (b->in_flight < limit && b->next < total) {
        sim_t *s = &b->sims[b->next++];
        b->in_flight++;
        if (b->phase == PH_REGISTER) {
            start_register(s);
        } else {
            start_tunnel(s);
        }
    }
    if (b->in_flight > 0 || b->next < total) {
        return;
    }
    if (b->phase == PH_REGISTER) {
        b->reg_s = (double)(uv_hrtime() - b->phase_start_ns) / 1e9;
        printf("registered:            %zu of %zu in %.2f s (%.0f per second)\n", b->ok, b->n_conn,
               b->reg_s, b->reg_s > 0 ? (double)b->ok / b->reg_s : 0.0);
        if (b->failed > 0) {
            fprintf(stderr, "tunnels_bench: %zu registrations failed; first: %s\n", b->failed,
                    b->first_error);
            b->exit_code = 1;
            close_all(b);
            return;
        }
        b->phase = PH_SETTLE;
        b->deadline_ns = uv_hrtime() + (uint64_t)SETTLE_MS * 1000000u;
        return;
    }
    tunnels_done(b);
}

/*
 * With `mark`, records each running tunnel's frame counters; without, sums what the tunnels
 * still running received and sent since they were marked.
 */
static void count_frames(bench_t *b, bool mark, uint64_t *in, uint64_t *out)
{
    *in = 0;
    *out = 0;
    for (size_t i = 0; i < b->n; i++) {
        sim_t *s = &b->sims[i];
        if (s->phase != SIM_UP || s->mux == NULL) {
            continue;
        }
        ptc_mux_stats_t st;
        ptc_mux_stats(s->mux, &st);
        if (mark) {
            s->frames_in_up = st.frames_in;
            s->frames_out_up = st.frames_out;
        } else {
            *in += st.frames_in - s->frames_in_up;
            *out += st.frames_out - s->frames_out_up;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values, in milliseconds. */
static double pct_ms(const uint64_t *v, size_t cnt, unsigned pct)
{
    if (cnt == 0) {
        return 0;
    }
    size_t rank = (cnt * pct + 99) / 100;
    return (double)v[rank > 0 ? rank - 1 : 0] / 1e6;
}

static void tunnels_done(bench_t *b)
{
    b->up = proc_sample(b->edge_pid);
    b->bench_cpu_tunnels_s = cpu_self_s() - b->bench_cpu_tunnels_s;
    uint64_t in = 0;
    uint64_t out = 0;
    count_frames(b, true, &in, &out);
    uint64_t *lat = ptc_xcalloc(b->n, sizeof(*lat));
    size_t cnt = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->sims[i].welcome_ns != 0) {
            lat[cnt++] = b->sims[i].welcome_ns - b->sims[i].start_ns;
        }
    }
    qsort(lat, cnt, sizeof(*lat), cmp_u64);
    double span = b->ok > 0 ? (double)(b->last_welcome_ns - b->first_connect_ns) / 1e9 : 0;
    printf("tunnels up:            %zu of %zu (%zu failed)\n", b->ok, b->n, b->failed);
    if (b->failed > 0) {
        printf("first failure:         %s\n", b->first_error);
        b->exit_code = 1;
    }
    printf("handshake span:        %.3f s (first TCP connect to the last welcome)\n", span);
    printf("handshakes per second: %.0f\n", span > 0 ? (double)b->ok / span : 0.0);
    printf("handshake latency:     p50 %.1f ms, p99 %.1f ms, max %.1f ms "
           "(connect to welcome, %zu in flight at most)\n",
           pct_ms(lat, cnt, 50), pct_ms(lat, cnt, 99), cnt > 0 ? (double)lat[cnt - 1] / 1e6 : 0.0,
           b->concurrency);
    free(lat);
    b->phase = PH_IDLE;
    b->deadline_ns = uv_hrtime() + (uint64_t)b->idle_s * 1000000000u;
}

static void print_report(bench_t *b)
{
    size_t alive = 0;
    for (size_t i = 0; i < b->n; i++) {
        alive += b->sims[i].phase == SIM_UP;
    }
    uint64_t in = 0;
    uint64_t out = 0;
    count_frames(b, false, &in, &out);
    printf("still up after idle:   %zu of %zu (%u s idle; %llu frames in, %llu out meanwhile: "
           "PINGs and answers)\n",
           alive, b->ok, b->idle_s, (unsigned long long)in, (unsigned long long)out);
    if (alive != b->ok) {
        printf("first failure:         %s\n", b->first_error);
        b->exit_code = 1;
    }
    if (!b->before.ok || !b->up.ok || !b->idle.ok) {
        printf("edge process:          no /proc figures (pid %ld)\n", b->edge_pid);
        return;
    }
    double n = b->ok > 0 ? (double)b->ok : 1.0;
    printf("edge VmRSS:            before %ld KiB, all up %ld KiB, after idle %ld KiB\n",
           b->before.rss_kib, b->up.rss_kib, b->idle.rss_kib);
    printf("edge RssAnon:          before %ld KiB, all up %ld KiB, after idle %ld KiB\n",
           b->before.anon_kib, b->up.anon_kib, b->idle.anon_kib);
    printf("edge RSS per tunnel:   %.1f KiB all up, %.1f KiB after idle ((after - before) / %zu)\n",
           (double)(b->up.rss_kib - b->before.rss_kib) / n,
           (double)(b->idle.rss_kib - b->before.rss_kib) / n, b->ok);
    if (b->per_conn > 1) {
        printf("edge RSS per connector: %.1f KiB after idle (%zu tunnels each)\n",
               (double)(b->idle.rss_kib - b->before.rss_kib) / (double)b->n_conn, b->per_conn);
    }
    printf("edge RSS total:        %.1f MiB with %zu tunnels (after idle)\n",
           (double)b->idle.rss_kib / 1024.0, b->ok);
    double cpu = b->up.cpu_s - b->before.cpu_s;
    printf("edge CPU, handshakes:  %.2f s (%.2f ms per handshake)\n", cpu, cpu * 1000.0 / n);
    printf("edge CPU, idle:        %.2f s over %u s\n", b->idle.cpu_s - b->up.cpu_s, b->idle_s);
    proc_sample_t self = proc_sample(0);
    printf("simulator:             VmRSS %ld KiB, CPU %.2f s during the handshakes\n", self.rss_kib,
           b->bench_cpu_tunnels_s);
}

/* Closes every tunnel and the timer; the loop then runs dry. */
static void close_all(bench_t *b)
{
    b->phase = PH_CLOSING;
    for (size_t i = 0; i < b->n; i++) {
        sim_t *s = &b->sims[i];
        if (s->dial != NULL) {
            ptc_net_dial_cancel(s->dial);
        }
        if (s->stream != NULL) {
            ptc_tls_stream_shutdown(s->stream);
        }
    }
    if (b->tick_open) {
        uv_close((uv_handle_t *)&b->tick, NULL);
        b->tick_open = false;
    }
}

/* Runs the mux timers (PINGs, idle deadline), the §11.7 deadline and the phase clocks. */
static void on_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    uint64_t now_ms = uv_now(&b->loop);
    uint64_t now_ns = uv_hrtime();
    if (b->phase == PH_TUNNELS || b->phase == PH_IDLE) {
        for (size_t i = 0; i < b->n; i++) {
            sim_t *s = &b->sims[i];
            if ((s->phase == SIM_CONNECTING || s->phase == SIM_HANDSHAKE) &&
                now_ns - s->start_ns > (uint64_t)HANDSHAKE_DEADLINE_MS * 1000000u) {
                tunnel_lost(s, "no welcome within 10 s", NULL);
                continue;
            }
            if (s->phase != SIM_UP || s->mux == NULL || s->stream == NULL) {
                continue;
            }
            int rc = ptc_mux_tick(s->mux, now_ms);
            if (!flush_mux(s) || (rc != 0 && rc != PTC_PROTO_ECLOSED)) {
                tunnel_lost(s, "tunnel idle timeout or write failure", NULL);
            }
        }
    }
    if (b->phase == PH_SETTLE && now_ns >= b->deadline_ns) {
        start_tunnels(b);
    } else if (b->phase == PH_IDLE && now_ns >= b->deadline_ns) {
        b->idle = proc_sample(b->edge_pid);
        print_report(b);
        close_all(b);
    } else if (b->phase == PH_CLOSING) {
        close_all(b);
    }
}

/* ---- setup ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tunnels_bench --port PORT --ca FILE --token-file FILE [options]\n"
            "  --host ADDR          address to dial (default 127.0.0.1)\n"
            "  --port PORT          the edge's TLS port\n"
            "  --server-name NAME   SNI and certificate name (default edge.test)\n"
            "  --ca FILE            the CA that signed the edge's certificate\n"
            "  --token-file FILE    holds a registration token with at least N uses\n"
            "  --edge-pid PID       the edge process, for /proc figures\n"
            "  -n N                 simulated connectors (default %d)\n"
            "  --concurrency C      tunnel handshakes in flight at most (default %d)\n"
            "  --reg-concurrency C  registrations in flight at most (default %d)\n"
            "  --idle S             seconds to hold the tunnels after the last is up "
            "(default %d)\n"
            "  --tunnels-per-connector K  tunnels each connector opens (default 2, as the\n"
            "                       connector's tunnels_per_edge)\n",
            DEFAULT_N, DEFAULT_CONCURRENCY, DEFAULT_REG_CONCURRENCY, DEFAULT_IDLE_S);
}

static bool parse_count(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(bench_t *b, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"server-name", required_argument, NULL, 's'},
        {"ca", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 't'},
        {"edge-pid", required_argument, NULL, 'P'},
        {"concurrency", required_argument, NULL, 'c'},
        {"reg-concurrency", required_argument, NULL, 'r'},
        {"idle", required_argument, NULL, 'i'},
        {"tunnels-per-connector", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 'H':
            b->host = optarg;
            break;
        case 'p':
            ok = parse_count(optarg, 1, 65535, &v);
            b->port = (uint16_t)v;
            break;
        case 's':
            b->server_name = optarg;
            break;
        case 'a':
            b->ca_file = optarg;
            break;
        case 't':
            b->token_file = optarg;
            break;
        case 'P':
            ok = parse_count(optarg, 1, 1L << 30, &v);
            b->edge_pid = v;
            break;
        case 'n':
            ok = parse_count(optarg, 1, MAX_N, &v);
            b->n_conn = (size_t)v;
            break;
        case 'c':
            ok = parse_count(optarg, 1, MAX_N, &v);
            b->concurrency = (size_t)v;
            break;
        case 'r':
            ok = parse_count(optarg, 1, 1000, &v);
            b->reg_concurrency = (size_t)v;
            break;
        case 'i':
            ok = parse_count(optarg, 0, 3600, &v);
            b->idle_s = (unsigned)v;
            break;
        case 'k':
            ok = parse_count(optarg, 1, 16, &v);
            b->per_conn = (size_t)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "tunnels_bench: bad value for an option: %s\n", optarg);
            return 2;
        }
    }
    if (optind != argc || b->port == 0 || b->ca_file == NULL || b->token_file == NULL) {
        usage(stderr);
        return 2;
    }
    b->n = b->n_conn * b->per_conn;
    if (b->n > MAX_N) {
        fprintf(stderr, "tunnels_bench: at most %d tunnels in all\n", MAX_N);
        return 2;
    }
    return 0;
}

/* Reads the token (one line) from its file: tokens stay out of the command line. */
static int read_token(bench_t *b)
{
    FILE *f = fopen(b->token_file, "r");
    if (f == NULL) {
        fprintf(stderr, "tunnels_bench: %s: %s\n", b->token_file, strerror(errno));
        return 1;
    }
    size_t len = fread(b->token, 1, sizeof(b->token) - 1, f);
    fclose(f);
    b->token[len] = '\0';
    b->token[strcspn(b->token, "\r\n")] = '\0';
    if (b->token[0] == '\0') {
        fprintf(stderr, "tunnels_bench: %s: no token\n", b->token_file);
        return 1;
    }
    return 0;
}

/* Each tunnel needs one descriptor: take the hard limit as the soft one. */
static void raise_fd_limit(size_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t want = rl.rlim_max;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n + 64) {
        fprintf(stderr, "tunnels_bench: warning: the descriptor limit (%llu) is below N + 64\n",
                (unsigned long long)rl.rlim_cur);
    }
}

static int make_tls(bench_t *b)
{
    static const char *const http_alpn[] = {"http/1.1", NULL};
    static const char *const tun_alpn[] = {PTC_PROTO_ALPN, NULL};
    ptc_tls_err_t err = {0};
    ptc_tls_client_opts_t o = {.ca_file = b->ca_file, .alpn = http_alpn};
    int rc = ptc_tls_client_config_new(&o, &b->reg_tls, &err);
    if (rc == 0) {
        o.alpn = tun_alpn;
        rc = ptc_tls_client_config_new(&o, &b->tun_tls, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "tunnels_bench: TLS configuration: %s (%s)\n", ptc_strerror(rc),
                err.reason);
    }
    return rc;
}

int main(int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    b->host = "127.0.0.1";
    b->server_name = "edge.test";
    b->n_conn = DEFAULT_N;
    b->per_conn = 2;
    b->concurrency = DEFAULT_CONCURRENCY;
    b->reg_concurrency = DEFAULT_REG_CONCURRENCY;
    b->idle_s = DEFAULT_IDLE_S;
    int rc = parse_args(b, argc, argv);
    if (rc != 0) {
        return rc;
    }
    raise_fd_limit(b->n);
    if (read_token(b) != 0 || ptc_keys_init() != 0 || make_tls(b) != 0) {
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("tunnels_bench: %zu connectors, %zu tunnel(s) each, to %s:%u (SNI %s); "
           "%zu handshakes in flight at most; %u s idle\n",
           b->n_conn, b->per_conn, b->host, b->port, b->server_name, b->concurrency, b->idle_s);
    b->sims = ptc_xcalloc(b->n, sizeof(*b->sims));
    for (size_t i = 0; i < b->n; i++) {
        b->sims[i].b = b;
        b->sims[i].idx = i;
        b->sims[i].ident = &b->sims[i % b->n_conn];
    }
    rc = uv_loop_init(&b->loop);
    if (rc != 0) {
        fprintf(stderr, "tunnels_bench: uv_loop_init: %s\n", uv_strerror(rc));
        return 1;
    }
    (void)uv_timer_init(&b->loop, &b->tick);
    b->tick.data = b;
    b->tick_open = true;
    (void)uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    b->phase = PH_REGISTER;
    b->phase_start_ns = uv_hrtime();
    pump(b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&b->loop);
    if (rc != 0) {
        fprintf(stderr, "tunnels_bench: the loop still has handles (%s)\n", uv_strerror(rc));
        b->exit_code = 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        ptc_http_parser_free(b->sims[i].http);
        ptc_buf_dispose(&b->sims[i].body);
        ptc_keys_wipe(&b->sims[i].key, sizeof(b->sims[i].key));
    }
    free(b->sims);
    ptc_tls_config_unref(b->reg_tls);
    ptc_tls_config_unref(b->tun_tls);
    ptc_keys_wipe(b->token, sizeof(b->token));
    return b->exit_code;
}
