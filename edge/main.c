/* SPDX-License-Identifier: MIT */
/*
 * portico-edge: the process. `portico-edge --config edge.json [--check]` loads and checks
 * the configuration, opens the logger, initialises libsodium, loads the state (refusing to
 * start on a corrupt file), the session key ring and the assertion key (both made on first
 * start), starts the identity providers' discovery, the public listeners, the tunnel server
 * and the admin API, tells systemd it is ready, and runs the loop. The session key ring is
 * rotated every session.key_rotation while the edge runs.
 *
 * Signals: SIGTERM and SIGINT drain (stop accepting, GOAWAY(NO_ERROR) on every tunnel, let
 * in-flight work finish within limits.drain_timeout, then close the rest) and exit 0; a
 * second one stops at once. SIGHUP and SIGUSR1 reopen the log file. Shutdown closes every
 * handle and checks that uv_loop_close() succeeds (STYLE §5 rule 8).
 *
 * Exit status: 0 after a drain, 1 when the configuration, the state, a certificate or a
 * listener cannot be used (the reason on stderr and, once the logger exists, in the log),
 * 2 for a usage error.
 */
#include <assert.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls.h"
#include "edge/admin.h"
#include "edge/auth.h"
#include "edge/edge.h"
#include "edge/edge_config.h"
#include "edge/listener.h"
#include "edge/notify.h"
#include "edge/oidc.h"
#include "edge/proxy.h"
#include "edge/register.h"
#include "edge/registry.h"
#include "edge/session.h"
#include "edge/state.h"
#include "edge/store.h"
#include "edge/tunnel_srv.h"

#ifndef PTC_VERSION
#define PTC_VERSION "0.1.0"
#endif
#define ERR_CAP 2048

static void usage(FILE *f)
{
    fprintf(f, "usage: portico-edge --config FILE [--check]\n"
               "       portico-edge --version\n"
               "\n"
               "  --config FILE  the edge's configuration (edge.json)\n"
               "  --check        validate the configuration and the certificate, then exit\n");
}

/* ---- shutdown ---- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Everything is drained or aborted: close what keeps the loop alive. */
static void finish(ptc_edge_t *edge)
{
    if (uv_is_closing((uv_handle_t *)&edge->drain_timer)) {
        return;
    }
    PTC_LOG(&edge->log, PTC_LOG_DEBUG, "edge_finishing", PTC_LOG_END);
    ptc_listener_stop(edge);
    ptc_tunnel_srv_stop(edge);
    ptc_admin_stop(edge);
    if (edge->oidc != NULL) {
        /* Every request is gone by now, so no exchange is pending. */
        ptc_oidc_close(edge->oidc, NULL, NULL);
        edge->oidc = NULL;
    }
    uv_close((uv_handle_t *)&edge->session_timer, on_handle_closed);
    uv_close((uv_handle_t *)&edge->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&edge->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&edge->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&edge->sig_hup, on_handle_closed);
    uv_close((uv_handle_t *)&edge->sig_usr1, on_handle_closed);
}

static void on_drained(ptc_edge_t *edge)
{
    finish(edge);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    ptc_edge_t *edge = timer->data;
    PTC_LOG(&edge->log, PTC_LOG_WARN, "drain_timeout",
            PTC_LOG_UINT("connections", edge->counters.conns),
            PTC_LOG_UINT("tunnels", ptc_registry_tunnel_count(edge->registry)),
            PTC_LOG_UINT("streams", ptc_registry_stream_count(edge->registry)));
    ptc_edge_conns_abort(edge);
    if (edge->conns == NULL) {
        finish(edge);
    }
}

static void begin_drain(ptc_edge_t *edge, const char *signame)
{
    if (edge->draining) {
        /* A second signal: stop now. */
        PTC_LOG(&edge->log, PTC_LOG_WARN, "edge_stopping_now", PTC_LOG_STR("signal", signame));
        ptc_edge_conns_abort(edge);
        if (edge->conns == NULL) {
            finish(edge);
        }
        return;
    }
    edge->draining = true;
    PTC_LOG(&edge->log, PTC_LOG_INFO, "edge_stopping", PTC_LOG_STR("signal", signame),
            PTC_LOG_UINT("connections", edge->counters.conns),
            PTC_LOG_UINT("tunnels", ptc_registry_tunnel_count(edge->registry)),
            PTC_LOG_UINT("drain_timeout_ms", edge->cfg.limits.drain_timeout_ms));
    int rc = ptc_notify("STOPPING=1");
    if (rc != 0) {
        PTC_LOG(&edge->log, PTC_LOG_WARN, "notify_failed", PTC_LOG_ERR(rc));
    }
    ptc_listener_stop(edge);
    ptc_edge_conns_drain(edge);
    if (edge->conns == NULL) {
        finish(edge);
        return;
    }
    uv_timer_start(&edge->drain_timer, on_drain_timeout, edge->cfg.limits.drain_timeout_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    ptc_edge_t *edge = h->data;
    switch (signum) {
    case SIGTERM:
        begin_drain(edge, "SIGTERM");
        break;
    case SIGINT:
        begin_drain(edge, "SIGINT");
        break;
    case SIGHUP:
    case SIGUSR1:
        if (ptc_logger_reopen(edge->logger) != 0) {
            /* Logged by ptc_logger_reopen(); the old file stays in use. */
            break;
        }
        break;
    default:
        break;
    }
}

static int start_signal(ptc_edge_t *edge, uv_signal_t *h, int signum)
{
    int rc = uv_signal_init(edge->loop, h);
    if (rc != 0) {
        return rc;
    }
    h->data = edge;
    return uv_signal_start(h, on_signal, signum);
}

/* ---- start ---- */

/* The longest timer period used for key rotation (about 24 days): a longer
 * session.key_rotation is cut to it while the edge runs (ptc_session_keys_load applies the
 * full period at each start). */
#define ROTATION_TICK_MAX_MS ((uint64_t)INT32_MAX)

static void on_session_timer(uv_timer_t *t)
{
    ptc_edge_t *edge = t->data;
    int rc = ptc_session_keys_rotate(edge->session_keys, (int64_t)(ptc_edge_now_ms() / 1000u));
    if (rc != 0) {
        PTC_LOG(&edge->log, PTC_LOG_ERROR, "session_keys_rotate_failed", PTC_LOG_ERR(rc));
        return;
    }
    PTC_LOG(&edge->log, PTC_LOG_INFO, "session_keys_rotated", PTC_LOG_END);
}

/*
 * The OIDC pieces: the session key ring (rotated at load when due), the assertion key, the
 * providers' names for app defaults, and the providers themselves (discovery starts now).
 */
static int start_auth(ptc_edge_t *edge, char *err, size_t errlen)
{
    int64_t now = (int64_t)(ptc_edge_now_ms() / 1000u);
    int rc = ptc_session_keys_load(edge->cfg.state_dir, now, edge->cfg.session.key_rotation_s,
                                   &edge->session_keys, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = ptc_auth_key_load(edge->cfg.state_dir, &edge->assertion_key, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = ptc_oidc_start(edge->loop, edge->logger, &edge->cfg, &edge->oidc);
    if (rc != 0) {
        snprintf(err, errlen, "identity providers: %s", ptc_strerror(rc));
        edge->oidc = NULL;
        return rc;
    }
    if (edge->cfg.session.key_rotation_s > 0) {
        uint64_t ms = (uint64_t)edge->cfg.session.key_rotation_s * 1000u;
        if (ms > ROTATION_TICK_MAX_MS) {
            ms = ROTATION_TICK_MAX_MS;
        }
        rc = uv_timer_start(&edge->session_timer, on_session_timer, ms, ms);
        assert(rc == 0);
    }
    return 0;
}

/* The configured providers' names, in order (borrowed from cfg), for app defaults. */
static void set_idp_names(ptc_edge_t *edge)
{
    if (edge->cfg.idps_cnt == 0) {
        return;
    }
    const char **names = ptc_xcalloc(edge->cfg.idps_cnt, sizeof(*names));
    for (size_t i = 0; i < edge->cfg.idps_cnt; i++) {
        names[i] = edge->cfg.idps[i].name;
    }
    edge->app_ctx.idps = names;
    edge->app_ctx.idp_cnt = edge->cfg.idps_cnt;
}

/* The tunnel endpoints: advertise as configured, else edge_host:<first listener's port>. */
static void set_advertise(ptc_edge_t *edge)
{
    if (edge->cfg.advertise_cnt > 0) {
        edge->advertise = edge->cfg.advertise;
        edge->advertise_cnt = edge->cfg.advertise_cnt;
        return;
    }
    char buf[PTC_NET_HOST_MAX + 8];
    snprintf(buf, sizeof(buf), "%s:%u", edge->cfg.edge_host, (unsigned)ptc_listener_port(edge, 0));
    edge->advertise = ptc_xmalloc(sizeof(char *));
    edge->advertise[0] = ptc_xstrdup(buf);
    edge->advertise_cnt = 1;
}

static void free_advertise(ptc_edge_t *edge)
{
    if (edge->advertise != NULL && edge->advertise != edge->cfg.advertise) {
        for (size_t i = 0; i < edge->advertise_cnt; i++) {
            free(edge->advertise[i]);
        }
        free(edge->advertise);
    }
    edge->advertise = NULL;
    edge->advertise_cnt = 0;
}

/* --check: the configuration was loaded; the default certificate must load too. */
static int check_only(ptc_edge_t *edge)
{
    if (ptc_keys_init() != 0) {
        fprintf(stderr, "portico-edge: cannot initialise libsodium\n");
        return 1;
    }
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t terr = {0};
    int rc = ptc_tls_certs_add_files(certs, edge->cfg.tls.cert, edge->cfg.tls.key, true, &terr);
    ptc_tls_certs_unref(certs);
    if (rc != 0) {
        fprintf(stderr, "portico-edge: %s: tls: %s\n", edge->config_path,
                terr.reason[0] != '\0' ? terr.reason : ptc_strerror(rc));
        return 1;
    }
    fprintf(stderr, "portico-edge: %s: configuration OK\n", edge->config_path);
    return 0;
}

/* Logs and prints a reason not to start. */
static void startup_failed(ptc_edge_t *edge, const char *event, const char *msg, int rc)
{
    PTC_LOG(&edge->log, PTC_LOG_ERROR, event, PTC_LOG_STR("reason", msg), PTC_LOG_ERR(rc));
    fprintf(stderr, "portico-edge: %s\n", msg);
}

static int run(ptc_edge_t *edge)
{
    char err[ERR_CAP] = "";
    int rc = ptc_keys_init();
    if (rc != 0) {
        startup_failed(edge, "startup_failed", "cannot initialise libsodium", rc);
        return 1;
    }
    rc = ptc_store_jsondir_open(edge->cfg.state_dir, &edge->store, err, sizeof(err));
    if (rc != 0) {
        startup_failed(edge, "state_load_failed", err, rc);
        return 1;
    }
    edge->app_ctx.default_domain = edge->cfg.default_domain;
    edge->app_ctx.lenient_idp = true;
    set_idp_names(edge);
    rc = ptc_state_open(edge->store, &edge->app_ctx, ptc_edge_now_ms(), &edge->state, err,
                        sizeof(err));
    if (rc != 0) {
        startup_failed(edge, "state_load_failed", err, rc);
        return 1;
    }
    PTC_LOG(&edge->log, PTC_LOG_INFO, "state_loaded", PTC_LOG_STR("dir", edge->cfg.state_dir),
            PTC_LOG_UINT("groups", ptc_state_group_count(edge->state)),
            PTC_LOG_UINT("connectors", ptc_state_connector_count(edge->state)),
            PTC_LOG_UINT("apps", ptc_state_app_count(edge->state)),
            PTC_LOG_UINT("certs", ptc_state_cert_count(edge->state)));
    edge->registry = ptc_registry_new();

    rc = uv_timer_init(edge->loop, &edge->drain_timer);
    edge->drain_timer.data = edge;
    if (rc == 0) {
        rc = uv_timer_init(edge->loop, &edge->session_timer);
        edge->session_timer.data = edge;
    }
    if (rc == 0) {
        rc = start_signal(edge, &edge->sig_term, SIGTERM);
    }
    if (rc == 0) {
        rc = start_signal(edge, &edge->sig_int, SIGINT);
    }
    if (rc == 0) {
        rc = start_signal(edge, &edge->sig_hup, SIGHUP);
    }
    if (rc == 0) {
        rc = start_signal(edge, &edge->sig_usr1, SIGUSR1);
    }
    if (rc != 0) {
        /* uv_loop_init succeeded, so these cannot fail short of memory exhaustion. */
        startup_failed(edge, "startup_failed", "cannot set up signal handling", rc);
        abort();
    }

    int status = 0;
    rc = start_auth(edge, err, sizeof(err));
    if (rc != 0) {
        startup_failed(edge, "auth_start_failed", err, rc);
        status = 1;
        goto stop;
    }
    rc = ptc_listener_start(edge, err, sizeof(err));
    if (rc != 0) {
        startup_failed(edge, "listen_failed", err, rc);
        status = 1;
        goto stop;
    }
    set_advertise(edge);
    ptc_tunnel_srv_start(edge);
    ptc_proxy_install(edge);
    edge->host_route = ptc_portal_route;
    edge->host_route_data = edge;
    rc = ptc_admin_start(edge, err, sizeof(err));
    if (rc != 0) {
        startup_failed(edge, "admin_start_failed", err, rc);
        status = 1;
        goto stop;
    }
    edge->on_drained = on_drained;
    PTC_LOG(&edge->log, PTC_LOG_INFO, "edge_started", PTC_LOG_STR("version", PTC_VERSION),
            PTC_LOG_STR("edge_host", edge->cfg.edge_host),
            PTC_LOG_STR("advertise", edge->advertise[0]), PTC_LOG_INT("pid", getpid()));
    rc = ptc_notify("READY=1\nSTATUS=serving");
    if (rc != 0) {
        PTC_LOG(&edge->log, PTC_LOG_WARN, "notify_failed", PTC_LOG_ERR(rc));
    }
    uv_run(edge->loop, UV_RUN_DEFAULT);
    PTC_LOG(&edge->log, PTC_LOG_INFO, "edge_stopped",
            PTC_LOG_UINT("uptime_ms", uv_now(edge->loop) - edge->started_loop_ms));
    return 0;

stop:
    edge->draining = true;
    ptc_edge_conns_abort(edge);
    finish(edge);
    uv_run(edge->loop, UV_RUN_DEFAULT);
    return status;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("portico-edge %s\n", PTC_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "portico-edge: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (config == NULL) {
        usage(stderr);
        return 2;
    }
    /* Writes to a closed connection return EPIPE instead of killing the process. */
    signal(SIGPIPE, SIG_IGN);

    ptc_edge_t edge;
    memset(&edge, 0, sizeof(edge));
    edge.config_path = config;
    char err[ERR_CAP] = "";
    int rc = ptc_edge_config_load(config, &edge.cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "portico-edge: %s\n", err);
        if (!check) {
            /* The configured logger is unknown: the journal (stdout) gets the event. */
            ptc_logger_t *lg = NULL;
            if (ptc_logger_new(&lg, "edge", PTC_LOG_INFO, NULL) == 0) {
                ptc_log_ctx_t ctx;
                ptc_log_ctx_init(&ctx, lg);
                PTC_LOG(&ctx, PTC_LOG_ERROR, "config_invalid", PTC_LOG_STR("path", config),
                        PTC_LOG_STR("reason", err), PTC_LOG_ERR(rc));
                ptc_logger_free(lg);
            }
        }
        ptc_edge_config_free(&edge.cfg);
        return 1;
    }
    if (check) {
        int status = check_only(&edge);
        ptc_edge_config_free(&edge.cfg);
        return status;
    }
    rc = ptc_logger_new(&edge.logger, "edge", (ptc_log_level_t)edge.cfg.log.level,
                        edge.cfg.log.file);
    if (rc != 0) {
        fprintf(stderr, "portico-edge: %s: log.file %s: %s\n", config, edge.cfg.log.file,
                ptc_strerror(rc));
        ptc_edge_config_free(&edge.cfg);
        return 1;
    }
    ptc_log_ctx_init(&edge.log, edge.logger);
    PTC_LOG(&edge.log, PTC_LOG_INFO, "config_loaded", PTC_LOG_STR("path", config));

    uv_loop_t loop;
    rc = uv_loop_init(&loop);
    if (rc != 0) {
        startup_failed(&edge, "startup_failed", "cannot create the event loop", rc);
        ptc_logger_free(edge.logger);
        ptc_edge_config_free(&edge.cfg);
        return 1;
    }
    edge.loop = &loop;
    edge.started_ms = ptc_edge_now_ms();
    edge.started_loop_ms = uv_now(&loop);

    int status = run(&edge);

    /* Every handle is closed once uv_run returned (STYLE §5 rule 8). */
    bool has_handles = edge.drain_timer.loop != NULL;
    if (has_handles) {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    rc = uv_loop_close(&loop);
    if (rc != 0) {
        PTC_LOG(&edge.log, PTC_LOG_ERROR, "loop_close_failed", PTC_LOG_ERR(rc));
        status = status == 0 ? 1 : status;
    }
    ptc_listener_free(&edge);
    free_advertise(&edge);
    ptc_register_free(&edge);
    ptc_registry_free(edge.registry);
    ptc_state_free(edge.state);
    ptc_session_keys_free(edge.session_keys);
    ptc_auth_key_free(edge.assertion_key);
    free((void *)edge.app_ctx.idps);
    ptc_store_free(edge.store);
    ptc_logger_free(edge.logger);
    ptc_edge_config_free(&edge.cfg);
    return status;
}
