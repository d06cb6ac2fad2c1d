/* SPDX-License-Identifier: MIT */
/*
 * Error names and messages for Portico's codes and libuv's (which are negative errno
 * values). Depends on libuv for the latter only.
 */
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const struct {
    int code;
    const char *name;
    const char *msg;
} table[] = {
    {PTC_EINCOMPLETE, "PTC_EINCOMPLETE", "more input is needed"},
    {PTC_EPROTO, "PTC_EPROTO", "protocol violation"},
    {PTC_ETLS, "PTC_ETLS", "TLS failure"},
    {PTC_EHTTP, "PTC_EHTTP", "malformed HTTP message"},
    {PTC_ELIMIT, "PTC_ELIMIT", "limit exceeded"},
    {PTC_ECONFIG, "PTC_ECONFIG", "invalid configuration"},
    {PTC_ECERT, "PTC_ECERT", "certificate not trusted"},
    {PTC_ECERTNAME, "PTC_ECERTNAME", "certificate does not match the host name"},
    {PTC_EPIN, "PTC_EPIN", "public key does not match the pinned key"},
    {PTC_ETIMEOUT, "PTC_ETIMEOUT", "timed out"},
    {PTC_ECLOSED, "PTC_ECLOSED", "closed"},
    {PTC_EAUTH, "PTC_EAUTH", "authentication failed"},
    {PTC_ENOTFOUND, "PTC_ENOTFOUND", "not found"},
    {PTC_EEXIST, "PTC_EEXIST", "already exists"},
    {PTC_ESTATE, "PTC_ESTATE", "not allowed in the current state"},
    {PTC_EFORMAT, "PTC_EFORMAT", "malformed input"},
    {PTC_ECRYPTO, "PTC_ECRYPTO", "cryptographic failure"},
    {PTC_ENOMEM, "PTC_ENOMEM", "out of memory"},
    {PTC_EDNS, "PTC_EDNS", "name resolution failed"},
    {PTC_EOVERFLOW, "PTC_EOVERFLOW", "peer sent more than allowed"},
};

/* uv_err_name() and uv_strerror() allocate (and leak) a string for codes libuv does not
 * know, so they are asked only about codes it does; the _r variants tell which. */
static int uv_is_known(int err)
{
    char buf[64];
    uv_err_name_r(err, buf, sizeof(buf));
    return strncmp(buf, "Unknown system error", 20) != 0;
}

const char *ptc_errname(int err)
{
    if (err == 0) {
        return "OK";
    }
    if (err <= PTC_ERR_FIRST && err >= PTC_ERR_LAST) {
        return table[PTC_ERR_FIRST - err].name;
    }
    if (err < 0 && err > -10000) {
        if (uv_is_known(err)) {
            return uv_err_name(err);
        }
    }
    return "UNKNOWN";
}

const char *ptc_strerror(int err)
{
    if (err == 0) {
        return "success";
    }
    if (err <= PTC_ERR_FIRST && err >= PTC_ERR_LAST) {
        return table[PTC_ERR_FIRST - err].msg;
    }
    if (err < 0 && err > -10000) {
        if (uv_is_known(err)) {
            return uv_strerror(err);
        }
    }
    return "unknown error";
}

static _Noreturn void oom(size_t len)
{
    fprintf(stderr, "portico: out of memory allocating %zu bytes\n", len);
    abort();
}

void *ptc_xmalloc(size_t len)
{
    void *p = malloc(len != 0 ? len : 1);
    if (p == NULL) {
        oom(len);
    }
    return p;
}

void *ptc_xcalloc(size_t cnt, size_t len)
{
    void *p = calloc(cnt != 0 ? cnt : 1, len != 0 ? len : 1);
    if (p == NULL) {
        oom(cnt * len);
    }
    return p;
}

void *ptc_xrealloc(void *p, size_t len)
{
    void *q = realloc(p, len != 0 ? len : 1);
    if (q == NULL) {
        oom(len);
    }
    return q;
}

char *ptc_xstrdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t len = strlen(s) + 1;
    char *d = ptc_xmalloc(len);
    memcpy(d, s, len);
    return d;
}
