/* SPDX-License-Identifier: MIT */
/*
 * The connector's status file: the running connector rewrites it (JSON, atomically, mode
 * 0644: it holds no secret) whenever a tunnel changes state, and `portico-connector status`
 * reads it back and prints one row per tunnel slot (edge, tunnel id, state, since, streams),
 * or the JSON itself. The file names the writer's pid and the pid's start time, so a file
 * left behind by a connector that died is recognised as stale even if the pid was reused.
 *
 * Depends on jansson and common/err; performs file I/O only (no libuv).
 */
#ifndef PTC_CONNECTOR_STATUS_H
#define PTC_CONNECTOR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

/** The format version written in the file. */
#define PTC_STATUS_VERSION 1

/** One tunnel slot: a tunnel the connector keeps to an edge address. */
typedef struct ptc_status_tunnel {
    char edge[300];       /* "host:port" */
    unsigned slot;        /* 0..tunnels_per_edge-1 */
    const char *state;    /* "connecting", "up", "draining", "backoff", "stopped" (static) */
    char tunnel_id[65];   /* from the welcome; "" before */
    char peer[64];        /* the address connected to; "" when unknown */
    int64_t since_ms;     /* wall clock (ms since the epoch) of the last state change */
    uint32_t streams;     /* streams in flight */
    int64_t retry_at_ms;  /* backoff: when the next attempt starts (wall clock), else 0 */
    char last_error[320]; /* why the last tunnel of this slot ended; "" when none */
} ptc_status_tunnel_t;

/** The whole file. */
typedef struct ptc_status {
    int pid;
    uint64_t pid_start; /* the process start time (/proc/<pid>/stat field 22), 0 if unknown */
    const char *connector_id;
    const char *group;
    const char *version; /* the connector's version */
    int64_t started_ms;  /* wall clock */
    int64_t updated_ms;  /* wall clock */
    bool draining;
    const ptc_status_tunnel_t *tunnels;
    size_t tunnels_cnt;
} ptc_status_t;

/** The start time of process `pid` in clock ticks since boot, or 0 when unknown. */
uint64_t ptc_status_pid_start(int pid);

/** Writes ms since the epoch as RFC 3339 UTC with seconds ("2026-11-26T15:04:05Z"). */
void ptc_status_format_time(int64_t ms, char *buf, size_t cap);

/** Serializes *s as one JSON line (heap, NUL-terminated; the caller frees). */
char *ptc_status_to_json(const ptc_status_t *s);

/**
 * Writes *s to `path` atomically (a temporary file in the same directory, then rename) with
 * mode 0644. Returns 0 or a libuv-style negative errno.
 */
PTC_MUST_CHECK int ptc_status_write(const char *path, const ptc_status_t *s);

/**
 * Reads the status file at `path` and prints it to `out`: a summary line and a table, or
 * (json) the document as it is, pretty-printed. Returns 0, or an error with a one-line
 * message in err: UV_ENOENT (no file: no connector running), UV_ESRCH (the process named in
 * the file is gone: the file is stale), PTC_EFORMAT (not a status file), other read errors.
 */
PTC_MUST_CHECK int ptc_status_print(const char *path, bool json, FILE *out, char *err,
                                    size_t errlen);

/** Removes the status file (at a clean exit). Errors are ignored. */
void ptc_status_remove(const char *path);

#endif
