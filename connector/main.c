/* SPDX-License-Identifier: MIT */
/*
 * portico-connector: the command line. `register` obtains an identity from the edge,
 * `run` keeps the tunnels (the daemon), `status` prints what a running connector is
 * connected to, `version` prints the version. Errors are one line on stderr and exit 1;
 * usage errors exit 2.
 *
 * `run` owns the process: it loads connector.json, the backend trust anchors and the
 * credential file, makes the logger, the relay and the connector (connector/tunnel_cli.h) on
 * one libuv loop, and handles the signals: SIGTERM and SIGINT drain (a second one skips the
 * rest of the drain), SIGHUP and SIGUSR1 reopen the log file. It notifies systemd (READY=1,
 * STOPPING=1) when NOTIFY_SOCKET is set, and exits 0 after a drain once every handle is
 * closed.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/tls.h"
#include "connector/connector_config.h"
#include "connector/credentials.h"
#include "connector/proxy_connect.h"
#include "connector/register.h"
#include "connector/relay.h"
#include "connector/status.h"
#include "connector/tunnel_cli.h"

#ifndef PTC_VERSION
#define PTC_VERSION "0.0.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portico-connector <command> [options]\n"
            "\n"
            "commands:\n"
            "  register --edge https://HOST[:PORT] (--token TOKEN | --token-file FILE)\n"
            "           [--config FILE] [--credentials PATH] [--ca-file FILE] [--pin-sha256 PIN]\n"
            "      register this machine with the edge and write the credential file\n"
            "  run [--config FILE]\n"
            "      keep tunnels to the edge and serve its requests (the daemon)\n"
            "  status [--config FILE] [--json]\n"
            "      show the tunnels of the running connector\n"
            "  version\n"
            "\n"
            "The configuration defaults to %s when it exists.\n",
            PTC_CONNECTOR_DEFAULT_CONFIG);
}

/* Finds "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past the value. */
static bool opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, len) != 0) {
        return false;
    }
    if (a[len] == '=') {
        *out = a + len + 1;
        return true;
    }
    if (a[len] != '\0') {
        return false;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "portico-connector: %s needs a value\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return true;
}

static int load_config(const char *path, ptc_connector_config_t *cfg)
{
    char err[1024];
    int rc = ptc_connector_config_load_default(path, cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "portico-connector: %s\n", err);
    }
    return rc;
}

/* ---- systemd notification ---- */

/* sd_notify(3) without libsystemd: one datagram on $NOTIFY_SOCKET, if set. */
static void notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (name == NULL || name[0] == '\0') {
        return;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path)) {
        return;
    }
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

/* ---- register ---- */

static int read_token_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "portico-connector: cannot read the token file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    /* The first line, without surrounding white space. */
    out[strcspn(out, "\r\n")] = '\0';
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t')) {
        out[--len] = '\0';
    }
    return 0;
}

static int cmd_register(int argc, char **argv)
{
    const char *edge = NULL;
    const char *token = NULL;
    const char *token_file = NULL;
    const char *config = NULL;
    const char *creds_path = NULL;
    const char *ca_file = NULL;
    const char *pin = NULL;
    for (int i = 0; i < argc; i++) {
        if (opt_value(argc, argv, &i, "--edge", &edge) ||
            opt_value(argc, argv, &i, "--token", &token) ||
            opt_value(argc, argv, &i, "--token-file", &token_file) ||
            opt_value(argc, argv, &i, "--config", &config) ||
            opt_value(argc, argv, &i, "--credentials", &creds_path) ||
            opt_value(argc, argv, &i, "--ca-file", &ca_file) ||
            opt_value(argc, argv, &i, "--pin-sha256", &pin)) {
            continue;
        }
        fprintf(stderr, "portico-connector register: unknown argument %s\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (edge == NULL || (token == NULL) == (token_file == NULL)) {
        fprintf(stderr, "portico-connector register: --edge and one of --token or --token-file "
                        "are required\n");
        usage(stderr);
        return 2;
    }
    char token_buf[1024];
    if (token_file != NULL) {
        if (read_token_file(token_file, token_buf, sizeof(token_buf)) != 0) {
            return 1;
        }
        token = token_buf;
    }
    ptc_connector_config_t cfg;
    if (load_config(config, &cfg) != 0) {
        ptc_connector_config_free(&cfg);
        return 1;
    }
    ptc_logger_t *logger = NULL;
    int rc = ptc_logger_new(&logger, "connector", (ptc_log_level_t)cfg.log.level, cfg.log.file);
    if (rc != 0) {
        fprintf(stderr, "portico-connector: cannot open the log file %s: %s\n", cfg.log.file,
                ptc_strerror(rc));
        ptc_connector_config_free(&cfg);
        return 1;
    }
    ptc_register_opts_t o = {
        .edge_url = edge,
        .token = token,
        .credentials_path = creds_path != NULL ? creds_path : cfg.credentials,
        .ca_file = ca_file != NULL ? ca_file : cfg.ca_file,
        .pin_sha256 = pin,
        .proxy = cfg.proxy != NULL ? cfg.proxy : ptc_proxy_from_env(),
        .logger = logger,
    };
    ptc_register_result_t res;
    char msg[1024];
    rc = ptc_register_run(&o, &res, msg, sizeof(msg));
    ptc_keys_wipe(token_buf, sizeof(token_buf));
    if (rc != 0) {
        fprintf(stderr, "portico-connector: %s\n", msg);
    } else {
        if (res.replaced_id[0] != '\0' && strcmp(res.replaced_id, res.connector_id) != 0) {
            fprintf(stderr,
                    "portico-connector: note: this replaces the identity %s (delete it on the "
                    "edge: portico connector delete %s)\n",
                    res.replaced_id, res.replaced_id);
        }
        printf("registered as %s (group %s); credentials written to %s\n", res.connector_id,
               res.group, o.credentials_path);
    }
    ptc_logger_free(logger);
    ptc_connector_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}

/* ---- run ---- */

typedef struct daemon {
    uv_loop_t loop;
    ptc_logger_t *logger;
    ptc_log_ctx_t log;
    ptc_connector_t *connector;
    ptc_relay_t *relay;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_signal_t sig_usr1;
    bool stopping;
} daemon_t;

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    if (signum == SIGHUP || signum == SIGUSR1) {
        /* A failure is logged by the logger itself, which keeps the old file. */
        int rc = ptc_logger_reopen(d->logger);
        (void)rc;
        return;
    }
    if (!d->stopping) {
        d->stopping = true;
        PTC_LOG(&d->log, PTC_LOG_INFO, "connector_stopping",
                PTC_LOG_STR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"));
        notify("STOPPING=1");
    }
    if (d->connector != NULL) {
        /* A second signal skips what is left of the drain. */
        ptc_connector_drain(d->connector);
    }
}

static void on_connector_done(void *data)
{
    daemon_t *d = data;
    d->connector = NULL;
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->sig_usr1, NULL);
    ptc_relay_close(d->relay, NULL, NULL);
    d->relay = NULL;
}

static int cmd_run(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 0; i < argc; i++) {
        if (opt_value(argc, argv, &i, "--config", &config)) {
            continue;
        }
        fprintf(stderr, "portico-connector run: unknown argument %s\n", argv[i]);
        usage(stderr);
        return 2;
    }
    ptc_connector_config_t cfg;
    if (load_config(config, &cfg) != 0) {
        ptc_connector_config_free(&cfg);
        return 1;
    }
    daemon_t d;
    memset(&d, 0, sizeof(d));
    int rc = ptc_logger_new(&d.logger, "connector", (ptc_log_level_t)cfg.log.level, cfg.log.file);
    if (rc != 0) {
        fprintf(stderr, "portico-connector: cannot open the log file %s: %s\n", cfg.log.file,
                ptc_strerror(rc));
        ptc_connector_config_free(&cfg);
        return 1;
    }
    ptc_log_ctx_init(&d.log, d.logger);
    PTC_LOG(&d.log, PTC_LOG_INFO, "config_loaded",
            PTC_LOG_STR("path", config != NULL ? config : "(default)"));

    /* The trust anchors for https backends, loaded once and shared by the relay and the
     * app-test probes. A backend_ca_file that cannot be used stops the start. Without the
     * key, a missing system bundle concerns only backends that validate TLS: it is reported
     * here, and again by each such request. */
    char err[1024];
    ptc_tls_config_t *backend_tls = NULL;
    rc = ptc_connector_config_backend_tls(&cfg, &backend_tls, err, sizeof(err));
    if (rc != 0 && cfg.backend_ca_file != NULL) {
        PTC_LOG(&d.log, PTC_LOG_ERROR, "connector_start_failed", PTC_LOG_STR("reason", err),
                PTC_LOG_ERR(rc));
        fprintf(stderr, "portico-connector: %s\n", err);
        ptc_logger_free(d.logger);
        ptc_connector_config_free(&cfg);
        return 1;
    }
    if (rc != 0) {
        PTC_LOG(&d.log, PTC_LOG_WARN, "backend_ca_unavailable", PTC_LOG_STR("reason", err),
                PTC_LOG_ERR(rc));
    }

    ptc_credentials_t creds;
    rc = ptc_credentials_load(cfg.credentials, &creds, err, sizeof(err));
    if (rc != 0) {
        PTC_LOG(&d.log, PTC_LOG_ERROR, "credentials_invalid", PTC_LOG_STR("path", cfg.credentials),
                PTC_LOG_STR("reason", err), PTC_LOG_ERR(rc));
        fprintf(stderr, "portico-connector: %s\n", err);
        ptc_tls_config_unref(backend_tls);
        ptc_logger_free(d.logger);
        ptc_connector_config_free(&cfg);
        return 1;
    }

    int exit_code = 1;
    rc = uv_loop_init(&d.loop);
    if (rc != 0) {
        fprintf(stderr, "portico-connector: cannot start: %s\n", ptc_strerror(rc));
        goto out;
    }
    ptc_relay_opts_t ro = {
        .loop = &d.loop,
        .logger = d.logger,
        .backend_timeout_ms = cfg.backend_timeout_ms,
        .backend_tls = backend_tls,
    };
    rc = ptc_relay_new(&ro, &d.relay);
    if (rc != 0) {
        fprintf(stderr, "portico-connector: cannot start the relay: %s\n", ptc_strerror(rc));
        goto loop_out;
    }
    ptc_connector_opts_t co = {
        .loop = &d.loop,
        .logger = d.logger,
        .cfg = &cfg,
        .creds = &creds,
        .credentials_path = cfg.credentials,
        .relay = d.relay,
        .on_done = on_connector_done,
        .data = &d,
    };
    rc = ptc_connector_start(&co, &d.connector, err, sizeof(err));
    if (rc != 0) {
        PTC_LOG(&d.log, PTC_LOG_ERROR, "connector_start_failed", PTC_LOG_STR("reason", err),
                PTC_LOG_ERR(rc));
        fprintf(stderr, "portico-connector: %s\n", err);
        ptc_relay_close(d.relay, NULL, NULL);
        goto loop_out;
    }
    uv_signal_t *sigs[] = {&d.sig_term, &d.sig_int, &d.sig_hup, &d.sig_usr1};
    int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < 4; i++) {
        uv_signal_init(&d.loop, sigs[i]);
        sigs[i]->data = &d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    notify("READY=1");
    uv_run(&d.loop, UV_RUN_DEFAULT);
    exit_code = 0;

loop_out:
    /* STYLE §5 rule 8: everything is closed, so the loop closes cleanly. */
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d.loop) != 0) {
        PTC_LOG(&d.log, PTC_LOG_ERROR, "loop_not_empty", PTC_LOG_END);
        exit_code = 1;
    }
out:
    if (exit_code == 0) {
        PTC_LOG(&d.log, PTC_LOG_INFO, "connector_stopped", PTC_LOG_END);
    }
    ptc_credentials_dispose(&creds);
    ptc_tls_config_unref(backend_tls);
    ptc_logger_free(d.logger);
    ptc_connector_config_free(&cfg);
    return exit_code;
}

/* ---- status ---- */

static int cmd_status(int argc, char **argv)
{
    const char *config = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (opt_value(argc, argv, &i, "--config", &config)) {
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            continue;
        }
        fprintf(stderr, "portico-connector status: unknown argument %s\n", argv[i]);
        usage(stderr);
        return 2;
    }
    ptc_connector_config_t cfg;
    if (load_config(config, &cfg) != 0) {
        ptc_connector_config_free(&cfg);
        return 1;
    }
    char err[1024];
    int rc = ptc_status_print(cfg.status_file, json, stdout, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "portico-connector: %s\n", err);
    }
    ptc_connector_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* Writes to a closed connection must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if (ptc_keys_init() != 0) {
        fprintf(stderr, "portico-connector: cannot initialise libsodium\n");
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "register") == 0) {
        return cmd_register(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "run") == 0) {
        return cmd_run(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "status") == 0) {
        return cmd_status(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("portico-connector %s\n", PTC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "portico-connector: unknown command %s\n", cmd);
    usage(stderr);
    return 2;
}
