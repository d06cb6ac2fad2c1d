/* SPDX-License-Identifier: MIT */
/*
 * Helpers for tests that run a libuv loop on loopback: a clean-teardown check (STYLE §5
 * rule 8), ports where nothing listens or where connects hang, and a watchdog that stops a
 * loop that would otherwise wait forever. Failures end the test case through
 * ptc_test_fail(). Test support only.
 */
#ifndef PTC_TESTS_SUPPORT_LOOP_H
#define PTC_TESTS_SUPPORT_LOOP_H

#include <stdint.h>
#include <uv.h>

/**
 * Runs `loop` until it has nothing left to do, then checks that uv_loop_close() returns 0;
 * if it does not, the handles still open are printed and the case fails.
 */
void ptc_test_loop_finish(uv_loop_t *loop);

/**
 * Runs `loop` until it stops by itself or `ms` milliseconds pass; in the latter case the
 * case fails with `what` (a deadlock guard for tests whose callbacks must end the work).
 */
void ptc_test_loop_run(uv_loop_t *loop, uint64_t ms, const char *what);

/** Returns a TCP port on 127.0.0.1 where nothing listens (bound once, then released). */
uint16_t ptc_test_closed_port(void);

/**
 * Makes a listening socket on 127.0.0.1 whose accept queue is already full, so that a new
 * connect to the returned port stays in SYN-SENT (the kernel drops the SYN). Returns the
 * listener's fd; *filler gets the fd of the connection that fills the queue. The caller
 * closes both.
 */
int ptc_test_blackhole(uint16_t *port, int *filler);

/** The port a bound TCP handle listens on. */
uint16_t ptc_test_tcp_port(const uv_tcp_t *tcp);

#endif
