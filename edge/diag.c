/* SPDX-License-Identifier: MIT */
/*
 * App tests (see diag.h): the check builders, then the run that gathers their inputs, sends
 * the probes and waits for the answers.
 *
 * Hints are chosen from the failing step and its stable error code (docs/protocol.md
 * §4.8.1), never from the connector's free text, so that they stay right when a connector of
 * another version words its details differently. A run lives in edge->diag_runs from start
 * until it answers or is cancelled; its timer is the deadline, and is restarted at zero once
 * every probe has answered, so that the answer never goes out from within the tunnel's
 * event dispatch.
 */
#include "edge/diag.h"

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/url.h"
#include "edge/registry.h"
#include "edge/state.h"
#include "edge/tunnel_srv.h"

/* Longest detail or hint written into a check. */
#define TEXT_CAP 768
/* Longest step detail copied from a connector (docs/protocol.md §4.8.1). */
#define STEP_DETAIL_MAX 512
/* Steps copied from one probe_result (a probe has four at most). */
#define STEPS_MAX 8
/* Connectors named in the connectors check. */
#define NAMED_MAX 5
/* A certificate that expires sooner than this is noted. */
#define EXPIRY_NOTE_MS (14ull * 24 * 3600 * 1000)
/* "pr_" + 16 hex digits. */
#define PROBE_ID_CAP 24

/* ---- small helpers ---- */

static json_t *check_new(const char *name, bool ok)
{
    json_t *c = json_object();
    json_object_set_new(c, "check", json_string(name));
    json_object_set_new(c, "ok", json_boolean(ok));
    return c;
}

static void set_text(json_t *check, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets check[key] to the formatted text; bytes that are not valid UTF-8 (quoted from a
 * peer) make jansson refuse the string, so those fall back to a plain ASCII copy. */
static void set_text(json_t *check, const char *key, const char *fmt, ...)
{
    char buf[TEXT_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_t *s = json_string(buf);
    if (s == NULL) {
        for (char *p = buf; *p != '\0'; p++) {
            if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) {
                *p = '?';
            }
        }
        s = json_string(buf);
    }
    json_object_set_new(check, key, s);
}

/* "host:port" with brackets around an IPv6 host. */
static void host_port(const char *host, uint16_t port, char *out, size_t cap)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* The date part of an RFC 3339 time ("2024-05-01"). */
static void date_text(uint64_t ms, char out[PTC_STATE_TIME_CAP])
{
    ptc_state_time_format(ms, out);
    char *t = strchr(out, 'T');
    if (t != NULL) {
        *t = '\0';
    }
}

/* ---- configuration ---- */

json_t *ptc_diag_check_configuration(const ptc_app_t *app, const ptc_app_ctx_t *ctx,
                                     bool group_exists)
{
    json_t *doc = ptc_app_to_json(app);
    ptc_app_ctx_t strict = *ctx;
    strict.lenient_idp = false;
    ptc_app_t *again = NULL;
    char err[512] = "";
    int rc = ptc_app_parse(doc, &strict, &again, err, sizeof(err));
    json_decref(doc);
    ptc_app_unref(again);
    json_t *c;
    if (rc != 0) {
        c = check_new("configuration", false);
        set_text(c, "detail", "the stored settings no longer validate: %s", err);
        set_text(c, "hint",
                 "correct that setting with `portico app set %s KEY=VALUE` (for example, an "
                 "identity provider removed from edge.json needs another idp)",
                 app->name);
        return c;
    }
    if (!group_exists) {
        c = check_new("configuration", false);
        set_text(c, "detail", "connector group \"%s\" does not exist", app->connector_group);
        set_text(c, "hint",
                 "create it (`portico group add \"%s\"`) or use an existing group (`portico app "
                 "set %s connector_group=GROUP`)",
                 app->connector_group, app->name);
        return c;
    }
    c = check_new("configuration", true);
    set_text(c, "detail", "settings valid (pre_auth %s, connector_group %s, backend_timeout %s)",
             app->pre_auth == PTC_APP_PRE_AUTH_PASSTHROUGH ? "passthrough" : "oidc",
             app->connector_group,
             app->backend_timeout == PTC_APP_BACKEND_TIMEOUT_LONG ? "long" : "default");
    if (app->maintenance_mode) {
        set_text(c, "note",
                 "maintenance_mode is on: every user gets the maintenance page (503) until "
                 "`portico app set %s maintenance_mode=false`",
                 app->name);
    } else if (app->int_https && !app->validate_backend_tls) {
        set_text(c, "note",
                 "validate_backend_tls is false: the backend's certificate is not "
                 "checked, so the connector cannot tell the backend from an impostor");
    }
    return c;
}

/* ---- certificate ---- */

bool ptc_diag_cert_name_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, host) == 0) {
        return true;
    }
    if (pattern[0] != '*' || pattern[1] != '.') {
        return false;
    }
    const char *dot = strchr(host, '.');
    if (dot == NULL || dot == host || dot[1] == '\0') {
        return false;
    }
    return strcmp(pattern + 1, dot) == 0;
}

/* The certificate served for host: exact names first, then wildcards (common/tls). */
static const ptc_diag_cert_t *cert_for(const ptc_diag_cert_t *certs, size_t cnt, const char *host,
                                       const char **name)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cnt; i++) {
            for (size_t k = 0; k < certs[i].names_cnt; k++) {
                const char *n = certs[i].names[k];
                bool hit = pass == 0 ? strcmp(n, host) == 0
                                     : n[0] == '*' && ptc_diag_cert_name_matches(n, host);
                if (hit) {
                    *name = n;
                    return &certs[i];
                }
            }
        }
    }
    return NULL;
}

/* True if host is one label under domain ("hr" + "." + "apps.example.com"). */
static bool one_label_under(const char *host, const char *domain)
{
    const char *dot = strchr(host, '.');
    return domain != NULL && dot != NULL && dot != host && strcmp(dot + 1, domain) == 0;
}

json_t *ptc_diag_check_certificate(const ptc_app_t *app, const ptc_diag_cert_t *certs, size_t cnt,
                                   const char *default_domain, uint64_t now)
{
    json_t *c;
    if (!app->ext_https) {
        c = check_new("certificate", true);
        set_text(c, "detail", "external_url uses http: no certificate is involved");
        return c;
    }
    const char *host = app->ext_host;
    const char *name = NULL;
    const ptc_diag_cert_t *crt = cert_for(certs, cnt, host, &name);
    if (crt == NULL) {
        c = check_new("certificate", false);
        set_text(c, "detail", "no certificate of the edge covers %s", host);
        if (one_label_under(host, default_domain)) {
            set_text(c, "hint",
                     "the edge's default certificate (tls.cert in edge.json) should name "
                     "*.%s: reissue it with that subjectAltName and restart the edge, or add a "
                     "certificate for %s (`portico cert add --cert FILE --key FILE`)",
                     default_domain, host);
        } else if (default_domain != NULL) {
            set_text(c, "hint",
                     "add a certificate whose subjectAltName names %s (`portico cert add "
                     "--cert FILE --key FILE`), or publish the app under the default domain "
                     "(https://%s.%s/)",
                     host, app->name, default_domain);
        } else {
            set_text(c, "hint",
                     "add a certificate whose subjectAltName names %s (`portico cert add "
                     "--cert FILE --key FILE`)",
                     host);
        }
        return c;
    }
    char which[96];
    if (crt->id != NULL) {
        snprintf(which, sizeof(which), "certificate %s", crt->id);
    } else {
        snprintf(which, sizeof(which), "the default certificate");
    }
    char until[PTC_STATE_TIME_CAP];
    date_text(crt->not_after, until);
    bool too_early = crt->not_before != 0 && now < crt->not_before;
    bool expired = crt->not_after != 0 && now > crt->not_after;
    if (too_early || expired) {
        char when[PTC_STATE_TIME_CAP];
        date_text(too_early ? crt->not_before : crt->not_after, when);
        c = check_new("certificate", false);
        set_text(c, "detail", "%s (%s) for %s %s %s", which, name, host,
                 too_early ? "is not valid before" : "expired on", when);
        if (crt->id != NULL) {
            set_text(c, "hint",
                     "upload a valid certificate for %s (`portico cert add --cert FILE --key "
                     "FILE`), then delete the old one (`portico cert delete %s`)",
                     host, crt->id);
        } else {
            set_text(c, "hint",
                     "renew the edge's default certificate (tls.cert and tls.key in edge.json) "
                     "and restart the edge");
        }
        return c;
    }
    c = check_new("certificate", true);
    set_text(c, "detail", "%s covers %s (%s)%s%s", which, host, name,
             crt->not_after != 0 ? ", valid until " : "", crt->not_after != 0 ? until : "");
    if (crt->not_after != 0 && crt->not_after - now < EXPIRY_NOTE_MS) {
        set_text(c, "note", "the certificate expires on %s: renew it soon", until);
    }
    return c;
}

/* ---- connectors ---- */

/* Appends up to NAMED_MAX ids, comma-separated, and "..." for the rest. */
static void name_list(const char *const *ids, size_t cnt, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cnt && i < NAMED_MAX && used < cap; i++) {
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i > 0 ? ", " : "", ids[i]);
    }
    if (cnt > NAMED_MAX && used < cap) {
        snprintf(out + used, cap - used, ", ...");
    }
}

json_t *ptc_diag_check_connectors(const char *group, size_t live, const char *const *idle,
                                  size_t idle_cnt)
{
    char names[256];
    name_list(idle, idle_cnt, names, sizeof(names));
    json_t *c;
    if (live == 0) {
        c = check_new("connectors", false);
        if (idle_cnt == 0) {
            set_text(c, "detail", "group %s has no connector", group);
            set_text(c, "hint",
                     "no connector of group %s is connected: register one on a host that "
                     "reaches the backend (`portico token create --group \"%s\"`, then "
                     "`portico-connector register` and `portico-connector run` there), or move "
                     "one into the group (`portico connector move ID --group \"%s\"`)",
                     group, group, group);
        } else {
            set_text(c, "detail", "no live connector in group %s (%zu registered, inactive: %s)",
                     group, idle_cnt, names);
            set_text(c, "hint",
                     "no connector of group %s is connected: start portico-connector on the "
                     "host of %s (`portico-connector status` there says why it is not "
                     "connected), or move a live connector into the group (`portico connector "
                     "move ID --group \"%s\"`)",
                     group, names, group);
        }
        return c;
    }
    c = check_new("connectors", true);
    set_text(c, "detail", "%zu live connector%s in group %s", live, live == 1 ? "" : "s", group);
    if (idle_cnt > 0) {
        set_text(c, "note", "%zu registered connector%s of the group %s inactive: %s", idle_cnt,
                 idle_cnt == 1 ? "" : "s", idle_cnt == 1 ? "is" : "are", names);
    }
    return c;
}

/* ---- probes ---- */

bool ptc_diag_status_ok(int status)
{
    return (status >= 100 && status < 400) || status == 401 || status == 403;
}

/* Writes the hint for a failed step (or a refused status) into out. */
static void step_hint(const ptc_app_t *app, const char *step, const char *error, int status,
                      char *out, size_t cap)
{
    char hp[PTC_URL_HOST_CAP + 16];
    host_port(app->int_host, app->int_port, hp, sizeof(hp));
    const char *host = app->int_host;
    if (strcmp(step, "dns") == 0) {
        if (strcmp(error, "not_found") == 0) {
            snprintf(out, cap,
                     "the connector's host cannot resolve %s: check the host name in "
                     "internal_url, and that the connector's host uses DNS servers (or "
                     "/etc/hosts entries) that know it",
                     host);
        } else if (strcmp(error, "timeout") == 0) {
            snprintf(out, cap,
                     "resolving %s timed out on the connector's host: check its DNS servers "
                     "(/etc/resolv.conf)",
                     host);
        } else {
            snprintf(out, cap,
                     "name resolution failed on the connector's host: check its DNS "
                     "configuration (/etc/resolv.conf)");
        }
    } else if (strcmp(step, "tcp") == 0) {
        if (strcmp(error, "refused") == 0) {
            snprintf(out, cap,
                     "the backend refused the connection: is the app running on %s, and does "
                     "the connector's host reach it?",
                     hp);
        } else if (strcmp(error, "unreachable") == 0) {
            snprintf(out, cap,
                     "no route from the connector's host to %s: check its network "
                     "configuration and the firewalls in between",
                     hp);
        } else if (strcmp(error, "timeout") == 0) {
            snprintf(out, cap,
                     "%s did not accept the connection in time: a firewall may drop the "
                     "connection, or the backend is down or overloaded",
                     hp);
        } else {
            snprintf(out, cap,
                     "connecting to %s failed: check the backend and the network path from "
                     "the connector's host",
                     hp);
        }
    } else if (strcmp(step, "tls") == 0) {
        if (strcmp(error, "untrusted") == 0) {
            snprintf(out, cap,
                     "the certificate of the backend is not trusted by the connector: install "
                     "its CA in the trust store of the connector's host (the PEM bundle named "
                     "by backend_ca_file in connector.json, else %s, e.g. with "
                     "update-ca-certificates), or set validate_backend_tls to false",
                     PTC_TLS_SYSTEM_CA_FILE);
        } else if (strcmp(error, "expired") == 0) {
            snprintf(out, cap,
                     "the backend's certificate is outside its validity period: renew it (and "
                     "check the clocks of the backend and of the connector's host), or set "
                     "validate_backend_tls to false");
        } else if (strcmp(error, "name_mismatch") == 0) {
            snprintf(out, cap,
                     "the backend's certificate does not name %s: use a host name the "
                     "certificate names in internal_url, reissue the certificate with %s in "
                     "its subjectAltName, or set validate_backend_tls to false",
                     host, host);
        } else if (strcmp(error, "local") == 0) {
            snprintf(out, cap,
                     "the connector cannot load its trust anchors for backends: check the CA "
                     "bundle of the connector's host (%s), or name one with backend_ca_file "
                     "in connector.json",
                     PTC_TLS_SYSTEM_CA_FILE);
        } else if (strcmp(error, "timeout") == 0) {
            snprintf(out, cap,
                     "the TLS handshake with %s did not finish in time: does the backend speak "
                     "https on this port?",
                     hp);
        } else {
            snprintf(out, cap,
                     "the TLS handshake with %s failed: does the backend speak https on this "
                     "port? If it serves plain http, use an http:// internal_url",
                     hp);
        }
    } else if (strcmp(step, "http") == 0) {
        if (status != 0) {
            const char *reason = ptc_http_reason_phrase(status);
            if (status == 404) {
                snprintf(out, cap,
                         "the backend answered 404 Not Found for %s: check the path of "
                         "internal_url",
                         app->int_path);
            } else if (status >= 500) {
                snprintf(out, cap,
                         "the backend answered %d %s: it is reachable but failing; check its "
                         "logs",
                         status, reason);
            } else {
                snprintf(out, cap,
                         "the backend answered %d %s to GET %s: check the path of internal_url "
                         "and what the backend expects (for example its Host name: "
                         "translate_headers)",
                         status, reason, app->int_path);
            }
        } else if (strcmp(error, "closed") == 0) {
            snprintf(out, cap,
                     app->int_https ? "the backend closed the connection without an HTTP "
                                      "answer: check its logs"
                                    : "the backend closed the connection without an HTTP "
                                      "answer: if it expects TLS on this port, use an https:// "
                                      "internal_url; otherwise check its logs");
        } else if (strcmp(error, "malformed") == 0) {
            snprintf(out, cap,
                     "the answer from %s is not HTTP/1.1: check that internal_url names an "
                     "HTTP service%s",
                     hp, app->int_https ? "" : " (an https backend needs an https:// URL)");
        } else if (strcmp(error, "timeout") == 0) {
            snprintf(out, cap,
                     "the backend accepted the connection but sent no answer in time: it may "
                     "be overloaded or stuck; check its logs (requests wait for it up to "
                     "backend_timeout, %s)",
                     app->backend_timeout == PTC_APP_BACKEND_TIMEOUT_LONG ? "long: 180 s"
                                                                          : "default: 85 s");
        } else {
            snprintf(out, cap, "the exchange with %s failed: check the backend's logs", hp);
        }
    } else {
        snprintf(out, cap,
                 "see the connector's log (event probe_done) for details, and update the "
                 "connector if it is older than the edge");
    }
}

/* Copies one step object, keeping the known members of the right types. NULL if malformed. */
static json_t *copy_step(const json_t *s)
{
    json_t *step = json_object_get(s, "step");
    json_t *ok = json_object_get(s, "ok");
    if (!json_is_object(s) || !json_is_string(step) || !json_is_boolean(ok)) {
        return NULL;
    }
    json_t *c = json_object();
    json_object_set_new(c, "step", json_copy(step));
    json_object_set_new(c, "ok", json_copy(ok));
    json_t *ms = json_object_get(s, "ms");
    if (json_is_number(ms) && json_number_value(ms) >= 0) {
        json_object_set_new(c, "ms", json_copy(ms));
    }
    json_t *error = json_object_get(s, "error");
    if (json_is_string(error) && json_string_length(error) <= 64) {
        json_object_set_new(c, "error", json_copy(error));
    }
    json_t *status = json_object_get(s, "status");
    if (json_is_integer(status) && json_integer_value(status) >= 100 &&
        json_integer_value(status) <= 599) {
        json_object_set_new(c, "status", json_copy(status));
    }
    json_t *detail = json_object_get(s, "detail");
    if (json_is_string(detail)) {
        size_t n = json_string_length(detail);
        if (n > STEP_DETAIL_MAX) {
            /* Cut on a character boundary: never inside a UTF-8 sequence. */
            const char *d = json_string_value(detail);
            n = STEP_DETAIL_MAX;
            while (n > 0 && ((unsigned char)d[n] & 0xc0) == 0x80) {
                n--;
            }
            json_object_set_new(c, "detail", json_stringn(d, n));
        } else {
            json_object_set_new(c, "detail", json_copy(detail));
        }
    }
    return c;
}

json_t *ptc_diag_check_probe(const ptc_app_t *app, const char *connector_id, const json_t *result)
{
    json_t *c = check_new("probe", false);
    json_object_set_new(c, "connector", json_string(connector_id));
    json_t *steps = json_array();
    json_object_set_new(c, "steps", steps);
    char hint[TEXT_CAP];
    const char *error = json_string_value(json_object_get(result, "error"));
    if (error != NULL) {
        set_text(c, "detail", "the connector did not run the probe: %.256s", error);
        set_text(c, "hint",
                 strncmp(error, "busy", 4) == 0
                     ? "the connector is running other tests: try again in a moment"
                     : "see the connector's log (event probe_refused), and update the "
                       "connector if it is older than the edge");
        return c;
    }
    json_t *in = json_object_get(result, "steps");
    bool malformed =
        !json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > STEPS_MAX;
    size_t i;
    json_t *s;
    const json_t *failed = NULL;
    const json_t *last = NULL;
    if (!malformed) {
        json_array_foreach(in, i, s)
        {
            json_t *copy = copy_step(s);
            if (copy == NULL) {
                malformed = true;
                break;
            }
            json_array_append_new(steps, copy);
            last = copy;
            if (failed == NULL && !json_is_true(json_object_get(copy, "ok"))) {
                failed = copy;
            }
        }
    }
    if (malformed) {
        json_array_clear(steps);
        set_text(c, "detail", "the connector's probe_result is malformed");
        set_text(c, "hint", "update the connector and the edge to the same version");
        return c;
    }
    if (failed != NULL) {
        const char *step = json_string_value(json_object_get(failed, "step"));
        const char *err = json_string_value(json_object_get(failed, "error"));
        const char *detail = json_string_value(json_object_get(failed, "detail"));
        set_text(c, "detail", "%s: %s", step,
                 detail != NULL ? detail
                 : err != NULL  ? err
                                : "failed");
        step_hint(app, step, err != NULL ? err : "failed", 0, hint, sizeof(hint));
        set_text(c, "hint", "%s", hint);
        return c;
    }
    double total = 0;
    json_array_foreach(steps, i, s)
    {
        total += json_number_value(json_object_get(s, "ms"));
    }
    const char *step = json_string_value(json_object_get(last, "step"));
    json_t *st = json_object_get(last, "status");
    if (strcmp(step, "http") != 0 || !json_is_integer(st)) {
        set_text(c, "detail", "the probe stopped after the %s step without an HTTP answer", step);
        set_text(c, "hint", "update the connector and the edge to the same version");
        return c;
    }
    int status = (int)json_integer_value(st);
    const char *line = json_string_value(json_object_get(last, "detail"));
    char status_line[160];
    if (line == NULL) {
        snprintf(status_line, sizeof(status_line), "%d %s", status, ptc_http_reason_phrase(status));
        line = status_line;
    }
    set_text(c, "detail", "GET %s answered %s in %.1f ms", app->internal_url, line, total);
    if (!ptc_diag_status_ok(status)) {
        step_hint(app, "http", "status", status, hint, sizeof(hint));
        set_text(c, "hint", "%s", hint);
        return c;
    }
    json_object_set_new(c, "ok", json_true());
    return c;
}

json_t *ptc_diag_check_no_answer(const char *connector_id, const char *why)
{
    json_t *c = check_new("probe", false);
    json_object_set_new(c, "connector", json_string(connector_id));
    json_object_set_new(c, "steps", json_array());
    if (why == NULL) {
        set_text(c, "detail", "no answer within %d s", PTC_DIAG_DEADLINE_MS / 1000);
        set_text(c, "hint",
                 "connector %s did not answer the probe: it may run an older "
                 "portico-connector without app tests (update it), or its tunnel is "
                 "congested; try again",
                 connector_id);
    } else {
        set_text(c, "detail", "%s", why);
        set_text(c, "hint", "the connector's tunnel was not usable at that moment: try again");
    }
    return c;
}

json_t *ptc_diag_report(const ptc_app_t *app, json_t *checks, uint64_t dur_ms)
{
    bool ok = json_array_size(checks) > 0;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (!json_is_true(json_object_get(c, "ok"))) {
            ok = false;
        }
    }
    json_t *r = json_object();
    json_object_set_new(r, "app", json_string(app->name));
    json_object_set_new(r, "external_url", json_string(app->external_url));
    json_object_set_new(r, "internal_url", json_string(app->internal_url));
    json_object_set_new(r, "connector_group", json_string(app->connector_group));
    json_object_set_new(r, "ok", json_boolean(ok));
    json_object_set_new(r, "dur_ms", json_integer((json_int_t)dur_ms));
    json_object_set_new(r, "checks", checks);
    return r;
}

/* ---- the default certificate ---- */

static uint64_t x509_ms(const mbedtls_x509_time *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = t->year - 1900;
    tm.tm_mon = t->mon - 1;
    tm.tm_mday = t->day;
    tm.tm_hour = t->hour;
    tm.tm_min = t->min;
    tm.tm_sec = t->sec;
    time_t s = timegm(&tm);
    return s > 0 ? (uint64_t)s * 1000u : 0;
}

static char *lower_dup(const unsigned char *p, size_t len)
{
    char *s = ptc_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char ch = (char)p[i];
        s[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    s[len] = '\0';
    return s;
}

int ptc_diag_load_cert(const char *path, ptc_diag_cert_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = mbedtls_x509_crt_parse_file(&crt, path);
    if (ret != 0 && crt.raw.p == NULL) {
        snprintf(err, errlen, "%s: cannot read a PEM certificate (mbedTLS error -0x%04x)", path,
                 ret < 0 ? (unsigned)-ret : 0u);
        mbedtls_x509_crt_free(&crt);
        return PTC_EFORMAT;
    }
    size_t cap = 1;
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL; s = s->next) {
        cap++;
    }
    char **names = ptc_xcalloc(cap, sizeof(*names));
    size_t n = 0;
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL; s = s->next) {
        if (s->buf.p != NULL &&
            s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME) &&
            s->buf.len > 0 && memchr(s->buf.p, '\0', s->buf.len) == NULL) {
            names[n++] = lower_dup(s->buf.p, s->buf.len);
        }
    }
    if (n == 0) {
        /* Without DNS names the listener serves the certificate under its subject CN. */
        for (const mbedtls_x509_name *a = &crt.subject; a != NULL; a = a->next) {
            if (a->val.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0) {
                names[n++] = lower_dup(a->val.p, a->val.len);
                break;
            }
        }
    }
    out->names = names;
    out->names_cnt = n;
    out->not_before = x509_ms(&crt.valid_from);
    out->not_after = x509_ms(&crt.valid_to);
    mbedtls_x509_crt_free(&crt);
    return 0;
}

void ptc_diag_cert_dispose(ptc_diag_cert_t *c)
{
    for (size_t i = 0; i < c->names_cnt; i++) {
        free(c->names[i]);
    }
    free((void *)c->names);
    memset(c, 0, sizeof(*c));
}

/* ---- runs ---- */

typedef struct probe_slot {
    char connector[PTC_REGISTRY_ID_MAX + 1];
    char id[PROBE_ID_CAP];
    json_t *check; /* NULL until answered */
} probe_slot_t;

struct ptc_diag_run {
    ptc_diag_run_t *prev;
    ptc_diag_run_t *next;
    ptc_edge_t *edge;
    const ptc_app_t *app; /* a reference; NULL when the app does not exist */
    char name[PTC_APP_NAME_MAX + 1];
    json_t *checks;
    probe_slot_t *probes;
    size_t probe_cnt;
    size_t answered;
    uv_timer_t timer;
    uint64_t started_loop_ms;
    ptc_diag_done_cb cb;
    void *data;
    bool linked;
};

static void run_free(uv_handle_t *h)
{
    ptc_diag_run_t *r = h->data;
    for (size_t i = 0; i < r->probe_cnt; i++) {
        json_decref(r->probes[i].check);
    }
    free(r->probes);
    json_decref(r->checks);
    ptc_app_unref(r->app);
    free(r);
}

static void run_unlink(ptc_diag_run_t *r)
{
    if (!r->linked) {
        return;
    }
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        r->edge->diag_runs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
    r->linked = false;
}

static void on_run_timer(uv_timer_t *t)
{
    ptc_diag_run_t *r = t->data;
    ptc_edge_t *edge = r->edge;
    run_unlink(r);
    uint64_t dur = uv_now(edge->loop) - r->started_loop_ms;
    int status = 200;
    json_t *answer;
    if (r->app == NULL) {
        status = 404;
        char msg[160];
        snprintf(msg, sizeof(msg), "no app named \"%s\"", r->name);
        answer = json_pack("{s:s, s:s}", "error", "not_found", "message", msg);
    } else {
        for (size_t i = 0; i < r->probe_cnt; i++) {
            probe_slot_t *s = &r->probes[i];
            json_array_append_new(r->checks, s->check != NULL
                                                 ? s->check
                                                 : ptc_diag_check_no_answer(s->connector, NULL));
            s->check = NULL;
        }
        answer = ptc_diag_report(r->app, r->checks, dur);
        r->checks = NULL;
        size_t failed = 0;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(answer, "checks"), i, c)
        {
            if (!json_is_true(json_object_get(c, "ok"))) {
                failed++;
            }
        }
        PTC_LOG(&edge->log, PTC_LOG_INFO, "app_test_done", PTC_LOG_STR("app", r->app->name),
                PTC_LOG_BOOL("ok", failed == 0), PTC_LOG_UINT("failed", failed),
                PTC_LOG_UINT("probes", r->probe_cnt), PTC_LOG_UINT("answered", r->answered),
                PTC_LOG_UINT("dur_ms", dur));
    }
    ptc_diag_done_cb cb = r->cb;
    void *data = r->data;
    uv_close((uv_handle_t *)&r->timer, run_free);
    cb(data, status, answer);
}

/* Gathers the certificates the listener serves: uploaded ones, then the default. */
static json_t *certificate_check(ptc_edge_t *edge, const ptc_app_t *app)
{
    size_t n = ptc_state_cert_count(edge->state);
    ptc_diag_cert_t *certs = ptc_xcalloc(n + 1, sizeof(*certs));
    for (size_t i = 0; i < n; i++) {
        const ptc_cert_t *c = ptc_state_cert_at(edge->state, i);
        certs[i] = (ptc_diag_cert_t){c->id, c->names, c->names_cnt, c->not_before, c->not_after};
    }
    size_t cnt = n;
    ptc_diag_cert_t def;
    memset(&def, 0, sizeof(def));
    char err[512] = "";
    if (edge->cfg.tls.cert != NULL) {
        if (ptc_diag_load_cert(edge->cfg.tls.cert, &def, err, sizeof(err)) == 0) {
            certs[cnt++] = def;
        } else {
            PTC_LOG(&edge->log, PTC_LOG_WARN, "app_test_cert_unreadable",
                    PTC_LOG_STR("reason", err));
        }
    }
    json_t *check =
        ptc_diag_check_certificate(app, certs, cnt, edge->cfg.default_domain, ptc_edge_now_ms());
    ptc_diag_cert_dispose(&def);
    free(certs);
    return check;
}

/* The connectors check, and the tunnels to probe (*tunnels: heap, *cnt entries). */
static json_t *connectors_check(ptc_edge_t *edge, const ptc_app_t *app, ptc_tunnel_t ***tunnels,
                                size_t *cnt)
{
    const char *group = app->connector_group;
    size_t live = ptc_tunnel_group_connectors(edge, group, NULL, 0);
    ptc_tunnel_t **t = live > 0 ? ptc_xcalloc(live, sizeof(*t)) : NULL;
    live = ptc_tunnel_group_connectors(edge, group, t, live);
    size_t total = ptc_state_connector_count(edge->state);
    const char **idle = ptc_xcalloc(total + 1, sizeof(*idle));
    size_t idle_cnt = 0;
    for (size_t i = 0; i < total; i++) {
        const ptc_connector_t *c = ptc_state_connector_at(edge->state, i);
        if (strcmp(c->group, group) != 0) {
            continue;
        }
        bool is_live = false;
        for (size_t k = 0; k < live && !is_live; k++) {
            is_live = strcmp(ptc_tunnel_connector(t[k]), c->id) == 0;
        }
        if (!is_live) {
            idle[idle_cnt++] = c->id;
        }
    }
    json_t *check = ptc_diag_check_connectors(group, live, idle, idle_cnt);
    free(idle);
    *tunnels = t;
    *cnt = live;
    return check;
}

/* Sends the probe of slot s on tunnel t; a failure is the slot's answer at once. */
static void send_probe(ptc_diag_run_t *r, probe_slot_t *s, ptc_tunnel_t *t)
{
    uint8_t rnd[8];
    ptc_random_bytes(rnd, sizeof(rnd));
    char hex[17];
    if (ptc_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)) < 0) {
        hex[0] = '\0';
    }
    snprintf(s->id, sizeof(s->id), "pr_%s", hex);
    snprintf(s->connector, sizeof(s->connector), "%s", ptc_tunnel_connector(t));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:b, s:i}", "type", "probe", "id", s->id, "url",
                            r->app->internal_url, "validate_tls", r->app->validate_backend_tls,
                            "timeout_ms", PTC_DIAG_PROBE_TIMEOUT_MS);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    int rc = text != NULL ? ptc_tunnel_send_control(t, text, strlen(text)) : PTC_ENOMEM;
    free(text);
    if (rc != 0) {
        char why[160];
        snprintf(why, sizeof(why), "the probe could not be sent on tunnel %s: %s", ptc_tunnel_id(t),
                 ptc_strerror(rc));
        s->check = ptc_diag_check_no_answer(s->connector, why);
        r->answered++;
    }
}

int ptc_diag_start(ptc_edge_t *edge, const char *name, ptc_diag_done_cb cb, void *data,
                   ptc_diag_run_t **out)
{
    ptc_diag_run_t *r = ptc_xcalloc(1, sizeof(*r));
    int rc = uv_timer_init(edge->loop, &r->timer);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->timer.data = r;
    r->edge = edge;
    r->cb = cb;
    r->data = data;
    r->started_loop_ms = uv_now(edge->loop);
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->next = edge->diag_runs;
    if (r->next != NULL) {
        r->next->prev = r;
    }
    edge->diag_runs = r;
    r->linked = true;
    *out = r;
    const ptc_app_t *app = ptc_state_app_find(edge->state, name);
    if (app == NULL) {
        uv_timer_start(&r->timer, on_run_timer, 0, 0);
        return 0;
    }
    r->app = ptc_app_ref(app);
    r->checks = json_array();
    bool group_exists = ptc_state_group_find(edge->state, app->connector_group) != NULL;
    json_array_append_new(r->checks,
                          ptc_diag_check_configuration(app, &edge->app_ctx, group_exists));
    json_array_append_new(r->checks, certificate_check(edge, app));
    ptc_tunnel_t **tunnels = NULL;
    size_t cnt = 0;
    json_array_append_new(r->checks, connectors_check(edge, app, &tunnels, &cnt));
    r->probes = cnt > 0 ? ptc_xcalloc(cnt, sizeof(*r->probes)) : NULL;
    r->probe_cnt = cnt;
    for (size_t i = 0; i < cnt; i++) {
        send_probe(r, &r->probes[i], tunnels[i]);
    }
    free(tunnels);
    PTC_LOG(&edge->log, PTC_LOG_DEBUG, "app_test_started", PTC_LOG_STR("app", app->name),
            PTC_LOG_UINT("probes", cnt));
    uv_timer_start(&r->timer, on_run_timer, r->answered == r->probe_cnt ? 0 : PTC_DIAG_DEADLINE_MS,
                   0);
    return 0;
}

void ptc_diag_cancel(ptc_diag_run_t *r)
{
    run_unlink(r);
    uv_close((uv_handle_t *)&r->timer, run_free);
}

void ptc_diag_on_probe_result(ptc_edge_t *edge, const char *connector_id, const json_t *doc)
{
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (id != NULL) {
        for (ptc_diag_run_t *r = edge->diag_runs; r != NULL; r = r->next) {
            for (size_t i = 0; i < r->probe_cnt; i++) {
                probe_slot_t *s = &r->probes[i];
                if (s->check != NULL || strcmp(s->id, id) != 0 ||
                    strcmp(s->connector, connector_id) != 0) {
                    continue;
                }
                s->check = ptc_diag_check_probe(r->app, connector_id, doc);
                r->answered++;
                if (r->answered == r->probe_cnt) {
                    /* Answer from the timer: never within the tunnel's dispatch. */
                    uv_timer_start(&r->timer, on_run_timer, 0, 0);
                }
                return;
            }
        }
    }
    PTC_LOG(&edge->log, PTC_LOG_DEBUG, "probe_result_ignored",
            PTC_LOG_STR("connector", connector_id), PTC_LOG_STR("probe", id));
}
