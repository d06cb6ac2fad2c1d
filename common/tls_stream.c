/* SPDX-License-Identifier: MIT */
/*
 * TLS over a libuv TCP stream (see tls_stream.h). Ciphertext is read straight into the TLS
 * connection's input buffer (which is released whenever it runs empty, so an idle connection
 * holds no read buffer of ours), and the records the TLS layer queues are detached into
 * write requests that own them until their callback.
 *
 * One timer serves three purposes, never two at once: the handshake deadline, "kick" (work
 * deferred to the next loop iteration: starting the handshake, delivering plaintext that was
 * buffered while reading was stopped) and the shutdown deadline. timer_set() is the only
 * place that arms it (STYLE §5 rule 6).
 *
 * Data writes are corked until the end of the current round of callbacks: everything written
 * during it (a response head and its body, the frames of many streams on a tunnel) leaves in
 * one write request, one system call, instead of one each. A check handle flushes right
 * after the I/O callbacks of the poll phase, so their writes complete in the same order as
 * uncorked ones would; an idle handle flushes writes made before the poll (timers) and keeps
 * the poll from blocking while they wait. The write callbacks of the corked writes ride on
 * that request. Once CORK_MAX bytes are corked they leave at once. Handshake flights,
 * alerts, close_notify and close itself flush at once, corked data first.
 */
#include "common/tls_stream.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* How much a socket read asks for. Records are at most about 16.4 KiB; reading two at a
 * time halves the system calls of a bulk transfer. */
#define READ_SIZE (32 * 1024)
/* Plaintext is decrypted into a stack buffer that holds any record whole. */
#define PLAIN_SIZE (16 * 1024)

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 5000
/* Corked plaintext beyond this leaves at once: a bulk transfer gains nothing from waiting
 * (its records are full already) and would stop overlapping its reads with its writes. */
#define CORK_MAX (32 * 1024)
#define DEFAULT_HIGH_WATER (1024 * 1024)
#define DEFAULT_LOW_WATER (256 * 1024)

typedef enum state {
    ST_HANDSHAKE, /* reading the socket for the handshake */
    ST_OPEN,      /* established: plaintext both ways */
    ST_FAILED,    /* the handshake failed; waiting for close */
    ST_SHUTDOWN,  /* close_notify sent, waiting for writes and the socket shutdown */
} state_t;

typedef enum timer_use {
    TIMER_NONE,
    TIMER_HANDSHAKE,
    TIMER_KICK,
    TIMER_SHUTDOWN,
} timer_use_t;

/* A write callback waiting for its data to be handed to the kernel. */
typedef struct pending_cb {
    ptc_tls_stream_write_cb cb;
    void *arg;
} pending_cb_t;

struct ptc_tls_stream {
    uv_tcp_t *tcp; /* owned; freed in its close callback */
    uv_timer_t timer;
    uv_idle_t cork_idle;   /* active while corked data waits (flushes before the poll) */
    uv_check_t cork_check; /* active while corked data waits (flushes after the poll) */
    uv_shutdown_t shutdown_req;
    ptc_tls_t *tls;
    state_t state;
    timer_use_t timer_use;
    unsigned open_handles;
    bool closing;
    bool user_reading;   /* the owner wants plaintext */
    bool socket_reading; /* uv_read_start is in effect */
    bool read_done;      /* the read callback reported the end */
    bool need_drain;     /* the backlog reached the high-water mark */
    bool corked;         /* the cork handles are started */
    size_t corked_bytes; /* plaintext written since the last flush */
    pending_cb_t *cbs;   /* callbacks of corked writes, in order */
    size_t cbs_len;
    size_t cbs_cap;
    uint64_t handshake_deadline;
    uint64_t shutdown_timeout_ms;
    ptc_tls_stream_handshake_cb on_handshake;
    ptc_tls_stream_read_cb on_read;
    ptc_tls_stream_drain_cb on_drain;
    ptc_tls_stream_close_cb on_close;
    void *data;
};

/* A write request owns its chunks and the callbacks of the writes it carries until its
 * callback. */
typedef struct write_req {
    uv_write_t req;
    ptc_tls_stream_t *s;
    ptc_chunk_t *chunks;
    size_t len;
    pending_cb_t *cbs; /* owned */
    size_t cbs_len;
    uv_buf_t bufs[];
} write_req_t;

static void drive(ptc_tls_stream_t *s);
static void fail_handshake(ptc_tls_stream_t *s, int err);
static int flush(ptc_tls_stream_t *s);

/* The only place the state changes; every transition is checked (STYLE §6). */
static void set_state(ptc_tls_stream_t *s, state_t next)
{
    bool ok = false;
    switch (s->state) {
    case ST_HANDSHAKE:
        ok = next == ST_OPEN || next == ST_FAILED;
        break;
    case ST_OPEN:
        ok = next == ST_SHUTDOWN;
        break;
    case ST_FAILED:
    case ST_SHUTDOWN:
        ok = false;
        break;
    }
    assert(ok);
    (void)ok;
    s->state = next;
}

/* ---- timer ---- */

static void on_timer(uv_timer_t *timer);

/* The single place the connection's timer is armed or cleared. */
static void timer_set(ptc_tls_stream_t *s, timer_use_t use, uint64_t ms)
{
    if (s->closing) {
        return;
    }
    s->timer_use = use;
    if (use == TIMER_NONE) {
        uv_timer_stop(&s->timer);
    } else {
        uv_timer_start(&s->timer, on_timer, ms, 0);
    }
}

/* Re-arms the handshake deadline that a kick displaced. */
static void arm_handshake_deadline(ptc_tls_stream_t *s)
{
    uint64_t now = uv_now(s->timer.loop);
    timer_set(s, TIMER_HANDSHAKE, s->handshake_deadline > now ? s->handshake_deadline - now : 0);
}

/* ---- closing ---- */

static void release(ptc_tls_stream_t *s)
{
    if (s->on_close != NULL) {
        s->on_close(s);
    }
    ptc_tls_free(s->tls);
    free(s->cbs);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    ptc_tls_stream_t *s = h->data;
    if (--s->open_handles == 0) {
        release(s);
    }
}

static void on_tcp_closed(uv_handle_t *h)
{
    ptc_tls_stream_t *s = h->data;
    free(h);
    s->tcp = NULL;
    if (--s->open_handles == 0) {
        release(s);
    }
}

void ptc_tls_stream_close(ptc_tls_stream_t *s)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->timer_use = TIMER_NONE;
    s->socket_reading = false;
    /* Corked data goes out first, as if it had been written at once; libuv cancels what
     * the socket does not take now, and the callbacks run with UV_ECANCELED. */
    (void)flush(s);
    s->corked = false;
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->cork_idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->cork_check, on_handle_closed);
    uv_close((uv_handle_t *)s->tcp, on_tcp_closed);
}

bool ptc_tls_stream_is_closing(const ptc_tls_stream_t *s)
{
    return s->closing;
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    ptc_tls_stream_t *s = w->s;
    pending_cb_t *cbs = w->cbs;
    size_t cbs_len = w->cbs_len;
    ptc_chunkq_written(ptc_tls_output(s->tls), w->len);
    ptc_chunk_free_list(w->chunks);
    free(w);
    /* Every callback runs, even if one of them closes the stream (their contract). */
    for (size_t i = 0; i < cbs_len; i++) {
        cbs[i].cb(s, status, cbs[i].arg);
    }
    free(cbs);
    /* STYLE §5 rule 4: during close this runs with UV_ECANCELED; nothing more to do. */
    if (s->closing) {
        return;
    }
    if (status < 0) {
        /* The owner learns of a failed data write from its callback and from the read
         * side; a handshake cannot go on without its flight reaching the peer. */
        if (s->state == ST_HANDSHAKE) {
            fail_handshake(s, status);
        }
        return;
    }
    if (s->need_drain && ptc_chunkq_is_drained(ptc_tls_output(s->tls))) {
        s->need_drain = false;
        if (s->on_drain != NULL) {
            s->on_drain(s);
        }
    }
}

/* Sends everything the TLS layer queued as one write request, with the callbacks of the
 * corked writes. If libuv refuses the request, those callbacks run now with its error. */
static int flush(ptc_tls_stream_t *s)
{
    ptc_chunkq_t *q = ptc_tls_output(s->tls);
    size_t len = 0;
    ptc_chunk_t *list = ptc_chunkq_detach(q, &len);
    pending_cb_t *cbs = s->cbs;
    size_t cbs_len = s->cbs_len;
    s->corked_bytes = 0;
    s->cbs = NULL;
    s->cbs_len = 0;
    s->cbs_cap = 0;
    if (list == NULL) {
        /* Each corked write queued ciphertext, so no callback waits without data. */
        assert(cbs_len == 0);
        free(cbs);
        return 0;
    }
    size_t cnt = 0;
    for (ptc_chunk_t *c = list; c != NULL; c = c->next) {
        cnt++;
    }
    write_req_t *w = ptc_xmalloc(sizeof(*w) + cnt * sizeof(uv_buf_t));
    w->s = s;
    w->chunks = list;
    w->len = len;
    w->cbs = cbs;
    w->cbs_len = cbs_len;
    unsigned nbufs = 0;
    for (ptc_chunk_t *c = list; c != NULL; c = c->next) {
        if (c->len > c->off) {
            w->bufs[nbufs++] = uv_buf_init((char *)c->data + c->off, (unsigned)(c->len - c->off));
        }
    }
    int rc = uv_write(&w->req, (uv_stream_t *)s->tcp, w->bufs, nbufs, on_write);
    if (rc != 0) {
        ptc_chunkq_written(q, len);
        ptc_chunk_free_list(list);
        free(w);
        for (size_t i = 0; i < cbs_len; i++) {
            cbs[i].cb(s, rc, cbs[i].arg);
        }
        free(cbs);
    }
    return rc;
}

/* The end of a round of callbacks: the corked data leaves in one request. */
static void uncork(ptc_tls_stream_t *s)
{
    uv_idle_stop(&s->cork_idle);
    uv_check_stop(&s->cork_check);
    s->corked = false;
    /* A refused request already told the callbacks; the read side sees the failure too. */
    (void)flush(s);
}

static void on_cork_idle(uv_idle_t *h)
{
    uncork(h->data);
}

static void on_cork_check(uv_check_t *h)
{
    uncork(h->data);
}

static void cork(ptc_tls_stream_t *s)
{
    if (!s->corked) {
        s->corked = true;
        int rc = uv_idle_start(&s->cork_idle, on_cork_idle);
        assert(rc == 0);
        rc = uv_check_start(&s->cork_check, on_cork_check);
        assert(rc == 0);
        (void)rc;
    }
}

int ptc_tls_stream_write(ptc_tls_stream_t *s, const void *p, size_t len, ptc_tls_stream_write_cb cb,
                         void *arg)
{
    if (s->closing || s->state == ST_SHUTDOWN) {
        return PTC_ECLOSED;
    }
    if (s->state != ST_OPEN) {
        return PTC_ESTATE;
    }
    if (len == 0) {
        return UV_EINVAL;
    }
    int rc = ptc_tls_write(s->tls, p, len);
    if (rc != 0) {
        return rc;
    }
    if (cb != NULL) {
        if (s->cbs_len == s->cbs_cap) {
            s->cbs_cap = s->cbs_cap != 0 ? s->cbs_cap * 2 : 4;
            s->cbs = ptc_xrealloc(s->cbs, s->cbs_cap * sizeof(*s->cbs));
        }
        s->cbs[s->cbs_len++] = (pending_cb_t){cb, arg};
    }
    s->corked_bytes += len;
    if (s->corked_bytes >= CORK_MAX) {
        rc = flush(s);
        if (rc != 0) {
            /* The callbacks, this write's included, ran with the error. */
            return 0;
        }
    } else {
        cork(s);
    }
    if (ptc_chunkq_is_full(ptc_tls_output(s->tls))) {
        s->need_drain = true;
    }
    return 0;
}

size_t ptc_tls_stream_backlog(const ptc_tls_stream_t *s)
{
    return ptc_chunkq_backlog(ptc_tls_output(s->tls));
}

bool ptc_tls_stream_is_full(const ptc_tls_stream_t *s)
{
    return ptc_chunkq_is_full(ptc_tls_output(s->tls));
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ptc_tls_stream_t *s = h->data;
    size_t avail = 0;
    uint8_t *p = ptc_buf_try_reserve(ptc_tls_input(s->tls), READ_SIZE, &avail);
    /* A NULL base makes libuv report UV_ENOBUFS to on_read. */
    *buf = uv_buf_init((char *)p, p != NULL ? (unsigned)avail : 0);
}

/* An idle connection keeps no input buffer: release it whenever it runs empty. */
static void trim_input(ptc_tls_stream_t *s)
{
    ptc_buf_t *in = ptc_tls_input(s->tls);
    if (in->len == 0) {
        ptc_buf_dispose(in);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int socket_read_start(ptc_tls_stream_t *s)
{
    if (s->socket_reading || s->closing) {
        return 0;
    }
    int rc = uv_read_start((uv_stream_t *)s->tcp, on_alloc, on_read);
    if (rc == 0) {
        s->socket_reading = true;
    }
    return rc;
}

static void socket_read_stop(ptc_tls_stream_t *s)
{
    if (s->socket_reading && !s->closing) {
        uv_read_stop((uv_stream_t *)s->tcp);
    }
    s->socket_reading = false;
}

static void fail_handshake(ptc_tls_stream_t *s, int err)
{
    set_state(s, ST_FAILED);
    timer_set(s, TIMER_NONE, 0);
    socket_read_stop(s);
    /* Send the alert the TLS layer may have queued; the owner will close anyway. */
    (void)flush(s);
    s->on_handshake(s, err);
}

/* Ends reading: the read callback runs one last time with `status`. */
static void end_reading(ptc_tls_stream_t *s, int status)
{
    s->read_done = true;
    socket_read_stop(s);
    (void)flush(s); /* a fatal alert, if the TLS layer queued one */
    ptc_slice_t none = {NULL, 0};
    s->on_read(s, status, none);
}

/* Hands buffered plaintext to the owner while it wants it. */
static void deliver(ptc_tls_stream_t *s)
{
    uint8_t plain[PLAIN_SIZE];
    while (s->user_reading && !s->read_done && !s->closing && s->state == ST_OPEN) {
        ssize_t n = ptc_tls_read(s->tls, plain, sizeof(plain));
        if (n == PTC_EINCOMPLETE) {
            break;
        }
        if (n < 0) {
            end_reading(s, (int)n);
            return;
        }
        ptc_slice_t data = {plain, (size_t)n};
        s->on_read(s, 0, data);
        /* The loop condition re-checks `closing` and `user_reading` (STYLE §5 rule 3). */
    }
}

/* Advances the connection with whatever input is buffered. */
static void drive(ptc_tls_stream_t *s)
{
    if (s->state == ST_HANDSHAKE) {
        int rc = ptc_tls_handshake(s->tls);
        int wrc = flush(s);
        if (rc == PTC_EINCOMPLETE && wrc == 0) {
            return;
        }
        if (rc != 0 && rc != PTC_EINCOMPLETE) {
            fail_handshake(s, rc);
            return;
        }
        if (wrc != 0) {
            fail_handshake(s, wrc);
            return;
        }
        set_state(s, ST_OPEN);
        timer_set(s, TIMER_NONE, 0);
        if (!s->user_reading) {
            socket_read_stop(s);
        }
        s->on_handshake(s, 0);
        if (s->closing) {
            return;
        }
    }
    if (s->state == ST_OPEN) {
        deliver(s);
    }
    if (!s->closing) {
        trim_input(s);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    ptc_tls_stream_t *s = stream->data;
    if (nread > 0) {
        ptc_buf_commit(ptc_tls_input(s->tls), (size_t)nread);
        drive(s);
        return;
    }
    if (nread == 0) {
        trim_input(s);
        return;
    }
    int err = nread == UV_ENOBUFS ? PTC_ENOMEM : (int)nread;
    socket_read_stop(s);
    switch (s->state) {
    case ST_HANDSHAKE:
        fail_handshake(s, err);
        return;
    case ST_OPEN:
        /* Plaintext that arrived with the end goes first. */
        deliver(s);
        if (!s->closing && !s->read_done) {
            end_reading(s, err);
        }
        return;
    case ST_FAILED:
    case ST_SHUTDOWN:
        return;
    }
}

void ptc_tls_stream_read_stop(ptc_tls_stream_t *s)
{
    s->user_reading = false;
    if (s->state == ST_OPEN) {
        socket_read_stop(s);
    }
}

int ptc_tls_stream_read_start(ptc_tls_stream_t *s)
{
    if (s->closing) {
        return PTC_ECLOSED;
    }
    if (s->user_reading) {
        return 0;
    }
    s->user_reading = true;
    if (s->state != ST_OPEN || s->read_done) {
        return 0;
    }
    if (ptc_tls_has_pending(s->tls) && s->timer_use == TIMER_NONE) {
        /* Never call the read callback from here: the caller may be inside one. */
        timer_set(s, TIMER_KICK, 0);
    }
    return socket_read_start(s);
}

/* ---- shutdown ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    ptc_tls_stream_t *s = req->data;
    /* With UV_ECANCELED the stream is already closing. */
    ptc_tls_stream_close(s);
}

void ptc_tls_stream_shutdown(ptc_tls_stream_t *s)
{
    if (s->closing || s->state == ST_SHUTDOWN) {
        return;
    }
    if (s->state != ST_OPEN) {
        ptc_tls_stream_close(s);
        return;
    }
    set_state(s, ST_SHUTDOWN);
    socket_read_stop(s);
    int rc = ptc_tls_close_notify(s->tls);
    if (rc == 0) {
        rc = flush(s);
    }
    if (rc == 0) {
        /* libuv runs the shutdown after the queued writes, close_notify included. */
        s->shutdown_req.data = s;
        rc = uv_shutdown(&s->shutdown_req, (uv_stream_t *)s->tcp, on_shutdown);
    }
    if (rc != 0) {
        ptc_tls_stream_close(s);
        return;
    }
    timer_set(s, TIMER_SHUTDOWN, s->shutdown_timeout_ms);
}

/* ---- timer events ---- */

static void on_timer(uv_timer_t *timer)
{
    ptc_tls_stream_t *s = timer->data;
    timer_use_t use = s->timer_use;
    s->timer_use = TIMER_NONE;
    switch (use) {
    case TIMER_NONE:
        return;
    case TIMER_HANDSHAKE:
        if (s->state == ST_HANDSHAKE) {
            fail_handshake(s, PTC_ETIMEOUT);
        }
        return;
    case TIMER_KICK:
        drive(s);
        if (!s->closing && s->state == ST_HANDSHAKE && s->timer_use == TIMER_NONE) {
            arm_handshake_deadline(s);
        }
        return;
    case TIMER_SHUTDOWN:
        ptc_tls_stream_close(s);
        return;
    }
}

/* ---- creation and accessors ---- */

static void on_orphan_closed(uv_handle_t *h)
{
    free(h);
}

int ptc_tls_stream_new(uv_tcp_t *tcp, ptc_tls_config_t *cfg, const ptc_tls_stream_opts_t *opts,
                       ptc_tls_stream_t **out)
{
    *out = NULL;
    ptc_tls_stream_t *s = NULL;
    ptc_tls_t *tls = NULL;
    int rc = 0;
    if (opts->on_handshake == NULL || opts->on_read == NULL ||
        (opts->high_water != 0 && opts->low_water > opts->high_water)) {
        rc = UV_EINVAL;
        goto fail;
    }
    rc = ptc_tls_new(cfg, opts->server_name, &tls);
    if (rc != 0) {
        goto fail;
    }
    ptc_buf_t *in = ptc_tls_input(tls);
    if (opts->initial.len != 0) {
        rc = ptc_buf_try_append(in, opts->initial.ptr, opts->initial.len);
        if (rc != 0) {
            goto fail;
        }
    }
    ptc_chunkq_t *q = ptc_tls_output(tls);
    q->high_water = opts->high_water != 0 ? opts->high_water : DEFAULT_HIGH_WATER;
    q->low_water = opts->high_water != 0 ? opts->low_water : DEFAULT_LOW_WATER;

    s = ptc_xcalloc(1, sizeof(*s));
    rc = uv_timer_init(tcp->loop, &s->timer);
    if (rc != 0) {
        goto fail;
    }
    /* Cannot fail once the timer could be made (libuv only queues the handle). */
    rc = uv_idle_init(tcp->loop, &s->cork_idle);
    assert(rc == 0);
    rc = uv_check_init(tcp->loop, &s->cork_check);
    assert(rc == 0);
    s->tls = tls;
    tls = NULL;
    s->tcp = tcp;
    tcp->data = s;
    s->timer.data = s;
    s->cork_idle.data = s;
    s->cork_check.data = s;
    s->open_handles = 4;
    s->state = ST_HANDSHAKE;
    s->user_reading = true;
    s->shutdown_timeout_ms =
        opts->shutdown_timeout_ms != 0 ? opts->shutdown_timeout_ms : DEFAULT_SHUTDOWN_TIMEOUT_MS;
    s->handshake_deadline =
        uv_now(tcp->loop) + (opts->handshake_timeout_ms != 0 ? opts->handshake_timeout_ms
                                                             : DEFAULT_HANDSHAKE_TIMEOUT_MS);
    s->on_handshake = opts->on_handshake;
    s->on_read = opts->on_read;
    s->on_drain = opts->on_drain;
    s->on_close = opts->on_close;
    s->data = opts->data;
    (void)uv_tcp_nodelay(tcp, 1);
    rc = socket_read_start(s);
    if (rc != 0) {
        /* The handles are the stream's now: close it quietly (no owner callbacks). */
        s->on_close = NULL;
        ptc_tls_stream_close(s);
        return rc;
    }
    /* The handshake starts on the next iteration, so no callback can run before the caller
     * has the stream; the deadline is armed then. */
    timer_set(s, TIMER_KICK, 0);
    *out = s;
    return 0;

fail:
    ptc_tls_free(tls);
    free(s);
    uv_close((uv_handle_t *)tcp, on_orphan_closed);
    return rc;
}

void *ptc_tls_stream_data(const ptc_tls_stream_t *s)
{
    return s->data;
}

void ptc_tls_stream_set_data(ptc_tls_stream_t *s, void *data)
{
    s->data = data;
}

void ptc_tls_stream_set_callbacks(ptc_tls_stream_t *s, const ptc_tls_stream_opts_t *opts)
{
    assert(opts->on_read != NULL);
    s->on_read = opts->on_read;
    s->on_drain = opts->on_drain;
    s->on_close = opts->on_close;
    s->data = opts->data;
}

ptc_tls_t *ptc_tls_stream_tls(const ptc_tls_stream_t *s)
{
    return s->tls;
}

uv_tcp_t *ptc_tls_stream_tcp(const ptc_tls_stream_t *s)
{
    return s->tcp;
}
