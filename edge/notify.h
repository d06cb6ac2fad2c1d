/* SPDX-License-Identifier: MIT */
/*
 * systemd readiness notification without libsystemd (sd_notify(3) protocol): one datagram
 * such as "READY=1" sent on the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract socket when it starts with '@'). When the variable is unset the calls do nothing,
 * so the daemon behaves the same outside systemd.
 *
 * Depends on libc only.
 */
#ifndef PTC_EDGE_NOTIFY_H
#define PTC_EDGE_NOTIFY_H

#include "common/err.h"

/**
 * Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", several separated by '\n') to the
 * socket named by $NOTIFY_SOCKET. Returns 0 (also when the variable is unset or empty),
 * UV_EINVAL for a socket path that is not absolute, not abstract or too long, or the
 * negative errno of socket(2)/sendto(2).
 */
PTC_MUST_CHECK int ptc_notify(const char *state);

/** As ptc_notify(), with an explicit socket name instead of $NOTIFY_SOCKET (NULL: none). */
PTC_MUST_CHECK int ptc_notify_to(const char *socket_name, const char *state);

#endif
