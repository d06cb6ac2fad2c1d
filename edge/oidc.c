/* SPDX-License-Identifier: MIT */
/*
 * The OpenID Connect relying party's provider side (see oidc.h). Each provider runs a small
 * fetch machine: discovery, then the JWKS; a failure schedules a retry on the provider's
 * timer with a doubling delay; once both are loaded the provider is ready and only an ID
 * token naming an unknown key refetches the JWKS (rate-limited). Exchanges waiting for such
 * a refetch sit on the provider's waiter list and are validated again when it ends.
 *
 * Every HTTP request goes through one fetch_t (embedded in its provider or exchange) that
 * collects the status and a capped body. The object is freed once the HTTP client, the
 * timers and every request callback have finished (STYLE §5).
 */
#include "edge/oidc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_client.h"
#include "common/jose.h"
#include "common/tls.h"
#include "common/url.h"

/* The retry delay of a failed discovery or JWKS fetch: 1 s, doubling to 2 min. */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 120000
/* ptc_oidc_ready() starts a fetch itself only when the last attempt is this old. */
#define READY_KICK_MS 5000
/* A provider that does not answer within this is failed (the user is waiting). */
#define HEAD_TIMEOUT_MS 15000
#define IDLE_TIMEOUT_MS 15000
/* An identity with more groups than this is refused. */
#define MAX_GROUPS 1024
/* OpenID Connect Core §2: sub is at most 255 ASCII characters. */
#define MAX_SUB 255
/* Reasons (logs, pages) are cut to this. */
#define REASON_CAP 256

/* ---- strings ---- */

typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        /* The buffers may hold secrets: grow by copying so the old block can be wiped. */
        char *p = ptc_xmalloc(cap);
        if (b->p != NULL) {
            memcpy(p, b->p, b->len);
            sodium_memzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_adds(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Percent-encodes s, keeping RFC 3986's unreserved characters. `form`: the
 * application/x-www-form-urlencoded variant (RFC 6749 Appendix B), where a space is '+'. */
static void sb_escape(sbuf_t *b, const char *s, bool form)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool is_unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (is_unreserved) {
            sb_add(b, s, 1);
        } else if (c == ' ' && form) {
            sb_add(b, "+", 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

/* "&name=value", the value escaped. */
static void sb_param(sbuf_t *b, const char *name, const char *value, bool form)
{
    sb_add(b, "&", 1);
    sb_adds(b, name);
    sb_add(b, "=", 1);
    sb_escape(b, value, form);
}

static void sb_wipe(sbuf_t *b)
{
    if (b->p != NULL) {
        sodium_memzero(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

static void free_secret(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

/* Copies a provider-supplied text into a reason: printable ASCII only, cut. */
static void clean_text(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src != '\0' && o + 1 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[o] = '\0';
}

/* ---- types ---- */

typedef struct fetch fetch_t;
/* A fetch ended: err 0 and f->status / f->body, or an error with a reason. */
typedef void (*fetch_done_fn)(fetch_t *f, int err, const char *reason);

struct fetch {
    ptc_oidc_t *o;
    void *owner;
    fetch_done_fn done;
    ptc_http_client_req_t *req; /* while in flight */
    int status;
    sbuf_t body;
    bool is_too_large;
};

typedef enum fetch_kind {
    FETCH_NONE,
    FETCH_DISCOVERY,
    FETCH_JWKS,
} fetch_kind_t;

struct ptc_oidc_provider {
    ptc_oidc_t *o;
    char *name;
    char *issuer;
    char *client_id;
    char *client_secret; /* wiped on free */
    int auth_method;     /* ptc_edge_idp_auth_t */
    char *scope;         /* the scopes joined by spaces */
    char *groups_claim;
    bool allow_http;       /* the issuer is plain http on a loopback address */
    ptc_tls_config_t *tls; /* from ca_file; NULL: the client's (system CAs) */
    char *discovery_url;

    /* From the discovery document (NULL until it is loaded). */
    char *authorization_endpoint;
    char *token_endpoint;
    char *jwks_uri;
    char *end_session_endpoint; /* optional */
    ptc_jwks_t *jwks;

    fetch_t fetch;
    fetch_kind_t fetching;
    uv_timer_t retry;
    uint64_t backoff_ms;
    uint64_t last_attempt_ms;
    bool has_attempted;
    uint64_t last_refetch_ms; /* the last JWKS refetch for an unknown kid */
    bool has_refetched;
    ptc_oidc_exchange_t *waiters; /* exchanges waiting for a JWKS refetch */
};

struct ptc_oidc {
    uv_loop_t *loop;
    ptc_log_ctx_t log;
    ptc_http_client_t *client;
    ptc_oidc_provider_t **providers;
    size_t cnt;
    unsigned open_handles; /* retry timers and the HTTP client */
    size_t live_reqs;      /* requests whose final callback has not run */
    bool closing;
    bool finished;
    void (*done)(void *);
    void *done_data;
};

struct ptc_oidc_exchange {
    ptc_oidc_provider_t *p;
    fetch_t fetch;
    ptc_oidc_done_cb cb;
    void *data;
    char *nonce;
    char *id_token; /* wiped on free */
    bool is_cancelled;
    bool is_waiting;  /* on p->waiters */
    bool has_refetch; /* the JWKS was refetched for this token already */
    ptc_oidc_exchange_t *next;
};

static void maybe_finish(ptc_oidc_t *o);
static void provider_fetch(ptc_oidc_provider_t *p);
static void on_retry(uv_timer_t *t);
static void exchange_verify(ptc_oidc_exchange_t *x);
static void exchange_finish(ptc_oidc_exchange_t *x, int status, const ptc_oidc_identity_t *id,
                            const char *reason);

/* ---- fetches ---- */

static void on_fetch_head(ptc_http_client_req_t *r, const ptc_http_head_t *head)
{
    fetch_t *f = ptc_http_client_req_data(r);
    f->status = head->status;
    if (head->body == PTC_HTTP_BODY_LENGTH && head->content_length > PTC_OIDC_MAX_BODY) {
        f->is_too_large = true;
        ptc_http_client_req_cancel(r);
    }
}

static void on_fetch_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    fetch_t *f = ptc_http_client_req_data(r);
    if (f->is_too_large) {
        return;
    }
    if (f->body.len + data.len > PTC_OIDC_MAX_BODY) {
        f->is_too_large = true;
        ptc_http_client_req_cancel(r);
        return;
    }
    sb_add(&f->body, data.ptr, data.len);
}

static void on_fetch_done(ptc_http_client_req_t *r)
{
    fetch_t *f = ptc_http_client_req_data(r);
    ptc_oidc_t *o = f->o;
    f->req = NULL;
    o->live_reqs--;
    if (f->is_too_large) {
        /* The cancel came after the response had already ended. */
        char reason[REASON_CAP];
        snprintf(reason, sizeof(reason), "response larger than %d bytes", PTC_OIDC_MAX_BODY);
        sb_wipe(&f->body);
        f->done(f, PTC_ELIMIT, reason);
        maybe_finish(o);
        return;
    }
    if (f->body.p == NULL) {
        sb_add(&f->body, "", 0);
    }
    f->done(f, 0, NULL);
    maybe_finish(o);
}

static void on_fetch_error(ptc_http_client_req_t *r, int err)
{
    fetch_t *f = ptc_http_client_req_data(r);
    ptc_oidc_t *o = f->o;
    char reason[REASON_CAP];
    if (f->is_too_large) {
        err = PTC_ELIMIT;
        snprintf(reason, sizeof(reason), "response larger than %d bytes", PTC_OIDC_MAX_BODY);
    } else {
        const char *detail = ptc_http_client_req_error_detail(r);
        snprintf(reason, sizeof(reason), "%s", detail[0] != '\0' ? detail : ptc_strerror(err));
    }
    f->req = NULL;
    o->live_reqs--;
    sb_wipe(&f->body);
    f->done(f, err, reason);
    maybe_finish(o);
}

/* Starts a request to `url` (GET without a body, else a form POST). `auth` is an
 * Authorization value or NULL. Returns 0 or an error with a reason (no callback). */
static int fetch_start(fetch_t *f, ptc_oidc_provider_t *p, const char *url, const sbuf_t *form,
                       const char *auth, char *reason, size_t reasonlen)
{
    ptc_oidc_t *o = p->o;
    ptc_url_t u;
    char why[128];
    int rc = ptc_url_parse(url, PTC_URL_HTTP, &u, why, sizeof(why));
    if (rc != 0) {
        snprintf(reason, reasonlen, "invalid URL: %s", why);
        return rc;
    }
    sbuf_t target = {0};
    sb_adds(&target, u.path);
    if (u.query != NULL) {
        sb_add(&target, "?", 1);
        sb_adds(&target, u.query);
    }
    ptc_http_header_t hdrs[4];
    size_t n = 0;
    hdrs[n++] = (ptc_http_header_t){{(const uint8_t *)"Accept", 6},
                                    {(const uint8_t *)"application/json", 16}};
    hdrs[n++] = (ptc_http_header_t){{(const uint8_t *)"User-Agent", 10},
                                    {(const uint8_t *)"portico-edge", 12}};
    if (form != NULL) {
        static const char ct[] = "application/x-www-form-urlencoded";
        hdrs[n++] = (ptc_http_header_t){{(const uint8_t *)"Content-Type", 12},
                                        {(const uint8_t *)ct, sizeof(ct) - 1}};
    }
    if (auth != NULL) {
        hdrs[n++] = (ptc_http_header_t){{(const uint8_t *)"Authorization", 13},
                                        {(const uint8_t *)auth, strlen(auth)}};
    }
    bool is_post = form != NULL;
    ptc_http_client_req_opts_t ro = {
        .https = strcmp(u.scheme, "https") == 0,
        .host = u.host,
        .port = u.port,
        .tls = p->tls,
        .method = is_post ? (ptc_slice_t){(const uint8_t *)"POST", 4}
                          : (ptc_slice_t){(const uint8_t *)"GET", 3},
        .target = {(const uint8_t *)target.p, target.len},
        .headers = hdrs,
        .header_cnt = n,
        .body =
            is_post ? (ptc_slice_t){(const uint8_t *)form->p, form->len} : (ptc_slice_t){NULL, 0},
        .on_head = on_fetch_head,
        .on_body = on_fetch_body,
        .on_done = on_fetch_done,
        .on_error = on_fetch_error,
        .data = f,
    };
    f->o = o;
    f->status = 0;
    f->is_too_large = false;
    sb_wipe(&f->body);
    rc = ptc_http_client_request(o->client, &ro, &f->req);
    sb_wipe(&target);
    ptc_url_dispose(&u);
    if (rc != 0) {
        f->req = NULL;
        snprintf(reason, reasonlen, "request not sent: %s", ptc_strerror(rc));
        return rc;
    }
    o->live_reqs++;
    return 0;
}

/* ---- discovery and JWKS ---- */

/* An endpoint from the discovery document: an absolute https URL, or http when the issuer
 * itself is plain http on loopback and so is the endpoint. */
static bool endpoint_ok(const ptc_oidc_provider_t *p, const char *url)
{
    ptc_url_t u;
    char why[128];
    if (ptc_url_parse(url, PTC_URL_HTTP, &u, why, sizeof(why)) != 0) {
        return false;
    }
    bool is_ok = strcmp(u.scheme, "https") == 0 ||
                 (p->allow_http && ptc_edge_config_is_loopback_host(u.host));
    ptc_url_dispose(&u);
    return is_ok;
}

/* Runs the exchanges waiting for a JWKS refetch: each is validated again (it does not wait
 * twice). One at a time from the list head, so a callback may cancel another waiter. */
static void notify_waiters(ptc_oidc_provider_t *p)
{
    ptc_oidc_exchange_t *x;
    while ((x = p->waiters) != NULL) {
        p->waiters = x->next;
        x->next = NULL;
        x->is_waiting = false;
        exchange_verify(x);
    }
}

static void provider_failed(ptc_oidc_provider_t *p, const char *stage, int err, const char *reason)
{
    ptc_oidc_t *o = p->o;
    bool is_ready = p->authorization_endpoint != NULL && p->jwks != NULL;
    uint64_t retry_ms = 0;
    if (!is_ready && !o->closing) {
        retry_ms = p->backoff_ms;
        p->backoff_ms = p->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->backoff_ms * 2;
        uv_timer_start(&p->retry, on_retry, retry_ms, 0);
    }
    PTC_LOG(&o->log, PTC_LOG_WARN, "idp_discovery_failed", PTC_LOG_STR("idp", p->name),
            PTC_LOG_STR("stage", stage), PTC_LOG_STR("reason", reason), PTC_LOG_ERR(err),
            PTC_LOG_UINT("retry_in_ms", retry_ms));
    notify_waiters(p);
}

/*
 * The common start of a fetch's callback: false (the fetch's body wiped, the provider told of
 * the failure where there is one) unless it answered 200 while the RP is open. `stage` names
 * the fetch in the log, `what` the URL in the reason.
 */
static bool fetch_answered(ptc_oidc_provider_t *p, fetch_t *f, int err, const char *reason,
                           const char *stage, const char *what)
{
    p->fetching = FETCH_NONE;
    if (p->o->closing) {
        sb_wipe(&f->body);
        return false;
    }
    if (err != 0) {
        provider_failed(p, stage, err, reason);
        return false;
    }
    if (f->status != 200) {
        char why[REASON_CAP];
        snprintf(why, sizeof(why), "%s answered HTTP %d", what, f->status);
        sb_wipe(&f->body);
        provider_failed(p, stage, PTC_EPROTO, why);
        return false;
    }
    return true;
}

static void on_jwks(fetch_t *f, int err, const char *reason)
{
    ptc_oidc_provider_t *p = f->owner;
    if (!fetch_answered(p, f, err, reason, "jwks", "jwks_uri")) {
        return;
    }
    char why[REASON_CAP];
    ptc_jwks_t *set = NULL;
    char jerr[160] = "";
    int rc = ptc_jwks_parse(f->body.p, f->body.len, &set, jerr, sizeof(jerr));
    sb_wipe(&f->body);
    if (rc != 0) {
        snprintf(why, sizeof(why), "invalid key set: %s", jerr);
        provider_failed(p, "jwks", rc, why);
        return;
    }
    if (ptc_jwks_count(set) == 0) {
        snprintf(why, sizeof(why), "the key set has no usable key%s%s", jerr[0] != '\0' ? ": " : "",
                 jerr);
        ptc_jwks_free(set);
        provider_failed(p, "jwks", PTC_EFORMAT, why);
        return;
    }
    ptc_jwks_free(p->jwks);
    p->jwks = set;
    p->backoff_ms = RETRY_FIRST_MS;
    PTC_LOG(&p->o->log, PTC_LOG_INFO, "idp_jwks_refreshed", PTC_LOG_STR("idp", p->name),
            PTC_LOG_UINT("keys", ptc_jwks_count(set)));
    notify_waiters(p);
}

/* Copies a string member of the discovery document; NULL when absent or not a string. */
static char *doc_string(const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);
    return json_is_string(v) ? ptc_xstrdup(json_string_value(v)) : NULL;
}

static void on_discovery(fetch_t *f, int err, const char *reason)
{
    ptc_oidc_provider_t *p = f->owner;
    if (!fetch_answered(p, f, err, reason, "discovery", "discovery")) {
        return;
    }
    char why[REASON_CAP];
    json_error_t jerr;
    json_t *doc = json_loadb(f->body.p, f->body.len, JSON_REJECT_DUPLICATES, &jerr);
    sb_wipe(&f->body);
    if (!json_is_object(doc)) {
        json_decref(doc);
        provider_failed(p, "discovery", PTC_EFORMAT, "the discovery document is not a JSON object");
        return;
    }
    /* OpenID Connect Discovery §4.3: the issuer in the document must be identical to the
     * configured one (no normalisation), or tokens could be accepted from a mix-up. */
    const json_t *iss = json_object_get(doc, "issuer");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0) {
        char got[128];
        clean_text(got, sizeof(got), json_is_string(iss) ? json_string_value(iss) : "(none)");
        snprintf(why, sizeof(why), "the document's issuer \"%s\" is not the configured issuer",
                 got);
        json_decref(doc);
        provider_failed(p, "discovery", PTC_EPROTO, why);
        return;
    }
    static const char *const required[] = {"authorization_endpoint", "token_endpoint", "jwks_uri"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(doc, required[i]);
        if (!json_is_string(v) || !endpoint_ok(p, json_string_value(v))) {
            snprintf(why, sizeof(why), "%s is missing or not an %s URL", required[i],
                     p->allow_http ? "http(s)" : "https");
            json_decref(doc);
            provider_failed(p, "discovery", PTC_EPROTO, why);
            return;
        }
    }
    const json_t *es = json_object_get(doc, "end_session_endpoint");
    if (es != NULL && (!json_is_string(es) || !endpoint_ok(p, json_string_value(es)))) {
        snprintf(why, sizeof(why), "end_session_endpoint is not an %s URL",
                 p->allow_http ? "http(s)" : "https");
        json_decref(doc);
        provider_failed(p, "discovery", PTC_EPROTO, why);
        return;
    }
    p->authorization_endpoint = doc_string(doc, "authorization_endpoint");
    p->token_endpoint = doc_string(doc, "token_endpoint");
    p->jwks_uri = doc_string(doc, "jwks_uri");
    p->end_session_endpoint = doc_string(doc, "end_session_endpoint");
    json_decref(doc);
    PTC_LOG(&p->o->log, PTC_LOG_INFO, "idp_discovery_ok", PTC_LOG_STR("idp", p->name),
            PTC_LOG_STR("issuer", p->issuer),
            PTC_LOG_BOOL("end_session", p->end_session_endpoint != NULL));
    provider_fetch(p);
}

/* Starts the next fetch the provider needs: discovery, else the JWKS. */
static void provider_fetch(ptc_oidc_provider_t *p)
{
    ptc_oidc_t *o = p->o;
    if (o->closing || p->fetching != FETCH_NONE) {
        return;
    }
    uv_timer_stop(&p->retry);
    p->last_attempt_ms = uv_now(o->loop);
    p->has_attempted = true;
    bool is_discovery = p->authorization_endpoint == NULL;
    p->fetch.owner = p;
    p->fetch.done = is_discovery ? on_discovery : on_jwks;
    char reason[REASON_CAP];
    int rc = fetch_start(&p->fetch, p, is_discovery ? p->discovery_url : p->jwks_uri, NULL, NULL,
                         reason, sizeof(reason));
    if (rc != 0) {
        provider_failed(p, is_discovery ? "discovery" : "jwks", rc, reason);
        return;
    }
    p->fetching = is_discovery ? FETCH_DISCOVERY : FETCH_JWKS;
}

static void on_retry(uv_timer_t *t)
{
    provider_fetch(t->data);
}

/* ---- providers ---- */

static void provider_free(ptc_oidc_provider_t *p)
{
    free(p->name);
    free(p->issuer);
    free(p->client_id);
    free_secret(p->client_secret);
    free(p->scope);
    free(p->groups_claim);
    ptc_tls_config_unref(p->tls);
    free(p->discovery_url);
    free(p->authorization_endpoint);
    free(p->token_endpoint);
    free(p->jwks_uri);
    free(p->end_session_endpoint);
    ptc_jwks_free(p->jwks);
    sb_wipe(&p->fetch.body);
    free(p);
}

static int provider_new(ptc_oidc_t *o, const ptc_edge_idp_cfg_t *c, ptc_oidc_provider_t **out)
{
    ptc_oidc_provider_t *p = ptc_xcalloc(1, sizeof(*p));
    p->o = o;
    p->name = ptc_xstrdup(c->name);
    p->issuer = ptc_xstrdup(c->issuer);
    p->client_id = ptc_xstrdup(c->client_id);
    p->client_secret = ptc_xstrdup(c->client_secret != NULL ? c->client_secret : "");
    p->auth_method = c->token_endpoint_auth_method;
    p->groups_claim = ptc_xstrdup(c->groups_claim != NULL ? c->groups_claim : "groups");
    sbuf_t scope = {0};
    for (size_t i = 0; i < c->scopes_cnt; i++) {
        if (i > 0) {
            sb_add(&scope, " ", 1);
        }
        sb_adds(&scope, c->scopes[i]);
    }
    p->scope = scope.p != NULL ? scope.p : ptc_xstrdup("openid");
    p->backoff_ms = RETRY_FIRST_MS;

    /* edge_config has checked the issuer: https, or http on a loopback address. */
    ptc_url_t u;
    char why[128];
    if (ptc_url_parse(c->issuer, PTC_URL_HTTP, &u, why, sizeof(why)) == 0) {
        p->allow_http = strcmp(u.scheme, "http") == 0 && ptc_edge_config_is_loopback_host(u.host);
        ptc_url_dispose(&u);
    }

    /* OpenID Connect Discovery §4.1: a terminating '/' of the issuer is removed before
     * appending the well-known path. */
    size_t il = strlen(c->issuer);
    while (il > 0 && c->issuer[il - 1] == '/') {
        il--;
    }
    sbuf_t d = {0};
    sb_add(&d, c->issuer, il);
    sb_adds(&d, "/.well-known/openid-configuration");
    p->discovery_url = d.p;

    if (c->ca_file != NULL) {
        ptc_tls_client_opts_t to = {.ca_file = c->ca_file};
        ptc_tls_err_t terr = {0};
        int rc = ptc_tls_client_config_new(&to, &p->tls, &terr);
        if (rc != 0) {
            PTC_LOG(&o->log, PTC_LOG_ERROR, "idp_tls_failed", PTC_LOG_STR("idp", p->name),
                    PTC_LOG_STR("ca_file", c->ca_file), PTC_LOG_STR("reason", terr.reason),
                    PTC_LOG_ERR(rc));
            provider_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

/* ---- lifecycle ---- */

int ptc_oidc_start(uv_loop_t *loop, ptc_logger_t *logger, const ptc_edge_config_t *cfg,
                   ptc_oidc_t **out)
{
    ptc_oidc_t *o = ptc_xcalloc(1, sizeof(*o));
    o->loop = loop;
    ptc_log_ctx_init(&o->log, logger);
    o->providers = ptc_xcalloc(cfg->idps_cnt > 0 ? cfg->idps_cnt : 1, sizeof(*o->providers));
    int rc = 0;
    for (size_t i = 0; i < cfg->idps_cnt; i++) {
        rc = provider_new(o, &cfg->idps[i], &o->providers[i]);
        if (rc != 0) {
            goto fail;
        }
        o->cnt++;
    }
    ptc_http_client_opts_t co = {
        .head_timeout_ms = HEAD_TIMEOUT_MS,
        .idle_timeout_ms = IDLE_TIMEOUT_MS,
        .max_idle_per_origin = 2,
    };
    rc = ptc_http_client_new(loop, &co, &o->client);
    if (rc != 0) {
        goto fail;
    }
    o->open_handles = 1;
    for (size_t i = 0; i < o->cnt; i++) {
        ptc_oidc_provider_t *p = o->providers[i];
        uv_timer_init(loop, &p->retry);
        p->retry.data = p;
        o->open_handles++;
    }
    for (size_t i = 0; i < o->cnt; i++) {
        provider_fetch(o->providers[i]);
    }
    *out = o;
    return 0;
fail:
    for (size_t i = 0; i < o->cnt; i++) {
        provider_free(o->providers[i]);
    }
    free(o->providers);
    free(o);
    return rc;
}

static void maybe_finish(ptc_oidc_t *o)
{
    if (!o->closing || o->finished || o->open_handles > 0 || o->live_reqs > 0) {
        return;
    }
    o->finished = true;
    for (size_t i = 0; i < o->cnt; i++) {
        ptc_oidc_provider_t *p = o->providers[i];
        ptc_oidc_exchange_t *x;
        while ((x = p->waiters) != NULL) {
            p->waiters = x->next;
            x->is_waiting = false;
            exchange_finish(x, PTC_ECLOSED, NULL, "the edge is stopping");
        }
    }
    for (size_t i = 0; i < o->cnt; i++) {
        provider_free(o->providers[i]);
    }
    free(o->providers);
    void (*done)(void *) = o->done;
    void *data = o->done_data;
    free(o);
    if (done != NULL) {
        done(data);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_oidc_provider_t *p = h->data;
    ptc_oidc_t *o = p->o;
    o->open_handles--;
    maybe_finish(o);
}

static void on_client_closed(void *data)
{
    ptc_oidc_t *o = data;
    o->client = NULL;
    o->open_handles--;
    maybe_finish(o);
}

void ptc_oidc_close(ptc_oidc_t *o, void (*done)(void *), void *data)
{
    if (o == NULL || o->closing) {
        return;
    }
    o->closing = true;
    o->done = done;
    o->done_data = data;
    for (size_t i = 0; i < o->cnt; i++) {
        uv_timer_stop(&o->providers[i]->retry);
        uv_close((uv_handle_t *)&o->providers[i]->retry, on_timer_closed);
    }
    /* Requests in flight end with PTC_ECLOSED on later iterations; the client's close
     * callback comes after them. */
    ptc_http_client_close(o->client, on_client_closed, o);
}

ptc_oidc_provider_t *ptc_oidc_find(ptc_oidc_t *o, const char *name)
{
    for (size_t i = 0; i < o->cnt; i++) {
        if (strcmp(o->providers[i]->name, name) == 0) {
            return o->providers[i];
        }
    }
    return NULL;
}

const char *ptc_oidc_provider_name(const ptc_oidc_provider_t *p)
{
    return p->name;
}

bool ptc_oidc_ready(ptc_oidc_provider_t *p)
{
    if (p->authorization_endpoint != NULL && p->jwks != NULL) {
        return true;
    }
    ptc_oidc_t *o = p->o;
    if (!o->closing && p->fetching == FETCH_NONE &&
        (!p->has_attempted || uv_now(o->loop) - p->last_attempt_ms >= READY_KICK_MS)) {
        provider_fetch(p);
    }
    return false;
}

/* ---- URLs ---- */

static void sb_endpoint(sbuf_t *b, const char *endpoint)
{
    sb_adds(b, endpoint);
    /* RFC 6749 §3.1: the endpoint may carry a query, which must be kept. */
    sb_adds(b, strchr(endpoint, '?') != NULL ? "&" : "?");
}

char *ptc_oidc_authorize_url(ptc_oidc_provider_t *p, const char *redirect_uri,
                             const ptc_login_state_t *ls)
{
    if (p->authorization_endpoint == NULL) {
        return NULL;
    }
    char challenge[44];
    ptc_pkce_challenge(ls->verifier, challenge);
    sbuf_t b = {0};
    sb_endpoint(&b, p->authorization_endpoint);
    sb_adds(&b, "response_type=code");
    sb_param(&b, "client_id", p->client_id, false);
    sb_param(&b, "redirect_uri", redirect_uri, false);
    sb_param(&b, "scope", p->scope, false);
    sb_param(&b, "state", ls->state, false);
    sb_param(&b, "nonce", ls->nonce, false);
    sb_param(&b, "code_challenge", challenge, false);
    sb_adds(&b, "&code_challenge_method=S256&response_mode=query");
    return b.p;
}

char *ptc_oidc_logout_url(ptc_oidc_provider_t *p, const char *post_logout_redirect_uri)
{
    if (p->end_session_endpoint == NULL) {
        return NULL;
    }
    sbuf_t b = {0};
    sb_endpoint(&b, p->end_session_endpoint);
    sb_adds(&b, "client_id=");
    sb_escape(&b, p->client_id, false);
    sb_param(&b, "post_logout_redirect_uri", post_logout_redirect_uri, false);
    return b.p;
}

char *ptc_oidc_basic_auth(const char *client_id, const char *secret)
{
    sbuf_t plain = {0};
    sb_escape(&plain, client_id, true);
    sb_add(&plain, ":", 1);
    sb_escape(&plain, secret, true);
    size_t blen = sodium_base64_encoded_len(plain.len, sodium_base64_VARIANT_ORIGINAL);
    char *out = ptc_xmalloc(6 + blen);
    memcpy(out, "Basic ", 6);
    sodium_bin2base64(out + 6, blen, (const unsigned char *)plain.p, plain.len,
                      sodium_base64_VARIANT_ORIGINAL);
    sb_wipe(&plain);
    return out;
}

/* ---- claims ---- */

static int why_fail(char *why, size_t whylen, const char *text)
{
    snprintf(why, whylen, "%s", text);
    return PTC_EAUTH;
}

int ptc_oidc_check_claims(const json_t *claims, const char *issuer, const char *client_id,
                          const char *nonce, int64_t now_s, int64_t skew_s, char *why,
                          size_t whylen)
{
    if (!json_is_object(claims)) {
        return why_fail(why, whylen, "the claims are not a JSON object");
    }
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss)) {
        return why_fail(why, whylen, "iss is missing or not a string");
    }
    if (strcmp(json_string_value(iss), issuer) != 0) {
        return why_fail(why, whylen, "iss is not the provider's issuer");
    }
    const json_t *aud = json_object_get(claims, "aud");
    size_t aud_cnt = 0;
    bool has_client = false;
    if (json_is_string(aud)) {
        aud_cnt = 1;
        has_client = strcmp(json_string_value(aud), client_id) == 0;
    } else if (json_is_array(aud)) {
        size_t i;
        const json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a)) {
                return why_fail(why, whylen, "aud holds a value that is not a string");
            }
            has_client = has_client || strcmp(json_string_value(a), client_id) == 0;
        }
        aud_cnt = json_array_size(aud);
    } else {
        return why_fail(why, whylen, "aud is missing or not a string or an array");
    }
    if (!has_client) {
        return why_fail(why, whylen, "aud does not contain the client_id");
    }
    const json_t *azp = json_object_get(claims, "azp");
    if (azp == NULL && aud_cnt > 1) {
        return why_fail(why, whylen, "azp is missing while aud has several values");
    }
    if (azp != NULL && (!json_is_string(azp) || strcmp(json_string_value(azp), client_id) != 0)) {
        return why_fail(why, whylen, "azp is not the client_id");
    }
    const json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp)) {
        return why_fail(why, whylen, "exp is missing or not a number");
    }
    if (json_number_value(exp) <= (double)(now_s - skew_s)) {
        return why_fail(why, whylen, "the token has expired (exp)");
    }
    const json_t *iat = json_object_get(claims, "iat");
    if (!json_is_number(iat)) {
        return why_fail(why, whylen, "iat is missing or not a number");
    }
    if (json_number_value(iat) > (double)(now_s + skew_s)) {
        return why_fail(why, whylen, "the token was issued in the future (iat)");
    }
    const json_t *nbf = json_object_get(claims, "nbf");
    if (nbf != NULL &&
        (!json_is_number(nbf) || json_number_value(nbf) > (double)(now_s + skew_s))) {
        return why_fail(why, whylen, "the token is not valid yet (nbf)");
    }
    const json_t *n = json_object_get(claims, "nonce");
    if (!json_is_string(n)) {
        return why_fail(why, whylen, "nonce is missing or not a string");
    }
    if (nonce == NULL || strcmp(json_string_value(n), nonce) != 0) {
        return why_fail(why, whylen, "nonce does not match the sign-in");
    }
    const json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0 || json_string_length(sub) > MAX_SUB) {
        return why_fail(why, whylen, "sub is missing, empty or longer than 255 bytes");
    }
    if (why != NULL && whylen > 0) {
        why[0] = '\0';
    }
    return 0;
}

void ptc_oidc_identity_dispose(ptc_oidc_identity_t *id)
{
    free(id->sub);
    free(id->email);
    free(id->name);
    for (size_t i = 0; i < id->groups_cnt; i++) {
        free(id->groups[i]);
    }
    free(id->groups);
    memset(id, 0, sizeof(*id));
}

/*
 * Whether the token's email may stand for the user. A provider that says the address was not
 * verified (OpenID Connect Core §5.1 "email_verified") lets anyone type anyone's address, so
 * such an email must not admit by assignment, reach a backend or ride in the session: only
 * an absent email_verified (many providers only send verified addresses and omit it) or a
 * true one lets it through. Some providers send the flag as a string; "true" counts as true,
 * any other value (false, "false", a number, null) as not verified.
 */
static bool email_may_be_used(const json_t *claims)
{
    const json_t *v = json_object_get(claims, "email_verified");
    if (v == NULL) {
        return true;
    }
    if (json_is_string(v)) {
        return strcmp(json_string_value(v), "true") == 0;
    }
    return json_is_true(v);
}

/* Fills *id from validated claims. Returns 0 or PTC_EAUTH with a reason. */
static int identity_from(const json_t *claims, const char *groups_claim, ptc_oidc_identity_t *id,
                         char *why, size_t whylen)
{
    memset(id, 0, sizeof(*id));
    id->sub = ptc_xstrdup(json_string_value(json_object_get(claims, "sub")));
    const json_t *email = json_object_get(claims, "email");
    if (json_is_string(email) && email_may_be_used(claims)) {
        id->email = ptc_xstrdup(json_string_value(email));
    }
    const json_t *name = json_object_get(claims, "name");
    id->name = json_is_string(name) ? ptc_xstrdup(json_string_value(name)) : NULL;
    /* exp was checked to be a number in the future; clamp before converting. */
    double exp = json_number_value(json_object_get(claims, "exp"));
    id->exp = exp >= 9.0e18 ? INT64_MAX : (int64_t)exp;
    const json_t *g = json_object_get(claims, groups_claim);
    if (g == NULL || json_is_null(g)) {
        return 0;
    }
    /* A single group written as a string (some providers do) counts as one. */
    if (json_is_string(g)) {
        id->groups = ptc_xcalloc(1, sizeof(char *));
        id->groups[0] = ptc_xstrdup(json_string_value(g));
        id->groups_cnt = 1;
        return 0;
    }
    if (!json_is_array(g)) {
        snprintf(why, whylen, "the %s claim is not an array of strings", groups_claim);
        return PTC_EAUTH;
    }
    if (json_array_size(g) > MAX_GROUPS) {
        snprintf(why, whylen, "the %s claim lists more than %d groups", groups_claim, MAX_GROUPS);
        return PTC_EAUTH;
    }
    id->groups = ptc_xcalloc(json_array_size(g) + 1, sizeof(char *));
    size_t i;
    const json_t *e;
    json_array_foreach(g, i, e)
    {
        if (!json_is_string(e)) {
            snprintf(why, whylen, "the %s claim is not an array of strings", groups_claim);
            return PTC_EAUTH;
        }
        id->groups[id->groups_cnt++] = ptc_xstrdup(json_string_value(e));
    }
    return 0;
}

/* ---- exchanges ---- */

static void exchange_free(ptc_oidc_exchange_t *x)
{
    free_secret(x->nonce);
    free_secret(x->id_token);
    sb_wipe(&x->fetch.body);
    free(x);
}

static void exchange_finish(ptc_oidc_exchange_t *x, int status, const ptc_oidc_identity_t *id,
                            const char *reason)
{
    ptc_oidc_provider_t *p = x->p;
    if (status != 0 && status != PTC_ECLOSED && !x->is_cancelled) {
        PTC_LOG(&p->o->log, PTC_LOG_WARN, "idp_token_exchange_failed", PTC_LOG_STR("idp", p->name),
                PTC_LOG_STR("reason", reason), PTC_LOG_ERR(status));
    }
    ptc_oidc_done_cb cb = x->is_cancelled ? NULL : x->cb;
    void *data = x->data;
    exchange_free(x);
    if (cb != NULL) {
        cb(data, status, status == 0 ? id : NULL, status == 0 ? NULL : reason);
    }
}

static void exchange_verify(ptc_oidc_exchange_t *x)
{
    ptc_oidc_provider_t *p = x->p;
    ptc_oidc_t *o = p->o;
    if (o->closing) {
        exchange_finish(x, PTC_ECLOSED, NULL, "the edge is stopping");
        return;
    }
    ptc_jwt_t jwt = {0};
    char err[160] = "no key set loaded";
    int rc = PTC_ENOTFOUND;
    if (p->jwks != NULL) {
        rc = ptc_jwt_verify(x->id_token, strlen(x->id_token), p->jwks, PTC_OIDC_ALGS, &jwt, err,
                            sizeof(err));
    }
    char why[REASON_CAP];
    if (rc == PTC_ENOTFOUND && !x->has_refetch) {
        /* The provider may have rotated its keys: refetch the JWKS once for this token, and
         * at most every PTC_OIDC_JWKS_REFETCH_MS for unknown keys overall, so forged kids
         * cannot make the edge hammer the provider. */
        x->has_refetch = true;
        uint64_t now = uv_now(o->loop);
        bool may_fetch = !p->has_refetched || now - p->last_refetch_ms >= PTC_OIDC_JWKS_REFETCH_MS;
        if (p->fetching == FETCH_JWKS || may_fetch) {
            x->is_waiting = true;
            x->next = p->waiters;
            p->waiters = x;
            if (p->fetching == FETCH_NONE) {
                p->has_refetched = true;
                p->last_refetch_ms = now;
                provider_fetch(p);
            }
            return;
        }
        snprintf(why, sizeof(why),
                 "ID token: %s (the key set was fetched again less than %d s ago)", err,
                 PTC_OIDC_JWKS_REFETCH_MS / 1000);
        exchange_finish(x, PTC_EAUTH, NULL, why);
        return;
    }
    if (rc != 0) {
        snprintf(why, sizeof(why), "ID token: %s", err);
        exchange_finish(x, rc == PTC_ENOMEM ? rc : PTC_EAUTH, NULL, why);
        return;
    }
    char cwhy[160];
    rc = ptc_oidc_check_claims(jwt.claims, p->issuer, p->client_id, x->nonce, (int64_t)time(NULL),
                               PTC_OIDC_SKEW_S, cwhy, sizeof(cwhy));
    if (rc != 0) {
        ptc_jwt_dispose(&jwt);
        snprintf(why, sizeof(why), "ID token: %s", cwhy);
        exchange_finish(x, PTC_EAUTH, NULL, why);
        return;
    }
    ptc_oidc_identity_t id;
    rc = identity_from(jwt.claims, p->groups_claim, &id, cwhy, sizeof(cwhy));
    ptc_jwt_dispose(&jwt);
    if (rc != 0) {
        ptc_oidc_identity_dispose(&id);
        snprintf(why, sizeof(why), "ID token: %s", cwhy);
        exchange_finish(x, PTC_EAUTH, NULL, why);
        return;
    }
    exchange_finish(x, 0, &id, NULL);
    ptc_oidc_identity_dispose(&id);
}

static void on_token(fetch_t *f, int err, const char *reason)
{
    ptc_oidc_exchange_t *x = f->owner;
    char why[REASON_CAP];
    if (x->is_cancelled) {
        exchange_free(x);
        return;
    }
    if (err != 0) {
        snprintf(why, sizeof(why), "token endpoint: %s", reason);
        exchange_finish(x, err, NULL, why);
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(f->body.p, f->body.len, JSON_REJECT_DUPLICATES, &jerr);
    sb_wipe(&f->body);
    int status = f->status;
    if (status != 200) {
        /* RFC 6749 §5.2: a 4xx carries {"error", "error_description"}. */
        const json_t *e = json_object_get(doc, "error");
        if (status >= 400 && status < 500 && json_is_string(e)) {
            char code[64];
            char desc[128] = "";
            clean_text(code, sizeof(code), json_string_value(e));
            const json_t *d = json_object_get(doc, "error_description");
            if (json_is_string(d)) {
                clean_text(desc, sizeof(desc), json_string_value(d));
            }
            snprintf(why, sizeof(why), "token endpoint refused the code (HTTP %d): %s%s%s", status,
                     code, desc[0] != '\0' ? ": " : "", desc);
            json_decref(doc);
            exchange_finish(x, PTC_EAUTH, NULL, why);
            return;
        }
        snprintf(why, sizeof(why), "token endpoint answered HTTP %d", status);
        json_decref(doc);
        exchange_finish(x, PTC_EPROTO, NULL, why);
        return;
    }
    const json_t *tok = json_object_get(doc, "id_token");
    if (!json_is_object(doc) || !json_is_string(tok) || json_string_length(tok) == 0) {
        json_decref(doc);
        exchange_finish(x, PTC_EPROTO, NULL, "token response without an id_token");
        return;
    }
    x->id_token = ptc_xstrdup(json_string_value(tok));
    json_decref(doc);
    exchange_verify(x);
}

int ptc_oidc_exchange(ptc_oidc_provider_t *p, const char *code, const char *redirect_uri,
                      const char *verifier, const char *nonce, ptc_oidc_done_cb cb, void *data,
                      ptc_oidc_exchange_t **out)
{
    if (p == NULL || code == NULL || redirect_uri == NULL || verifier == NULL || nonce == NULL ||
        cb == NULL) {
        return UV_EINVAL;
    }
    ptc_oidc_t *o = p->o;
    if (o->closing) {
        return PTC_ECLOSED;
    }
    if (p->token_endpoint == NULL) {
        (void)ptc_oidc_ready(p);
        return PTC_ESTATE;
    }
    ptc_oidc_exchange_t *x = ptc_xcalloc(1, sizeof(*x));
    x->p = p;
    x->cb = cb;
    x->data = data;
    x->nonce = ptc_xstrdup(nonce);
    x->fetch.owner = x;
    x->fetch.done = on_token;

    /* RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5). */
    sbuf_t form = {0};
    sb_adds(&form, "grant_type=authorization_code");
    sb_param(&form, "code", code, true);
    sb_param(&form, "redirect_uri", redirect_uri, true);
    sb_param(&form, "code_verifier", verifier, true);
    char *auth = NULL;
    if (p->auth_method == PTC_EDGE_IDP_CLIENT_SECRET_POST) {
        sb_param(&form, "client_id", p->client_id, true);
        sb_param(&form, "client_secret", p->client_secret, true);
    } else {
        auth = ptc_oidc_basic_auth(p->client_id, p->client_secret);
    }
    char reason[REASON_CAP];
    int rc = fetch_start(&x->fetch, p, p->token_endpoint, &form, auth, reason, sizeof(reason));
    sb_wipe(&form);
    free_secret(auth);
    if (rc != 0) {
        exchange_free(x);
        return rc;
    }
    if (out != NULL) {
        *out = x;
    }
    return 0;
}

void ptc_oidc_exchange_cancel(ptc_oidc_exchange_t *x)
{
    if (x == NULL || x->is_cancelled) {
        return;
    }
    x->is_cancelled = true;
    x->cb = NULL;
    if (x->fetch.req != NULL) {
        /* on_token frees it when the request's final callback runs. */
        ptc_http_client_req_cancel(x->fetch.req);
        return;
    }
    if (x->is_waiting) {
        ptc_oidc_provider_t *p = x->p;
        for (ptc_oidc_exchange_t **pp = &p->waiters; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        }
    }
    exchange_free(x);
}
