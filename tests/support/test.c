/* SPDX-License-Identifier: MIT */
/*
 * The unit-test harness (see test.h): runs each case in a child process with a time limit
 * and reports TAP. Depends only on libc and POSIX.
 */
#include "tests/support/test.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_in_process(const ptc_test_case_t *tc)
{
    tc->fn();
    return 0;
}

static int run_forked(const ptc_test_case_t *tc, unsigned timeout_s)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "# fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        alarm(timeout_s);
        tc->fn();
        fflush(stdout);
        /* exit(), not _exit(): LeakSanitizer runs its check at exit. */
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "# waitpid: %s\n", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) != 0) {
            fprintf(stderr, "# %s: exit status %d\n", tc->name, WEXITSTATUS(status));
        }
        return WEXITSTATUS(status) == 0 ? 0 : -1;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        fprintf(stderr, "# %s: killed by signal %d (%s)%s\n", tc->name, sig, strsignal(sig),
                sig == SIGALRM ? ": timed out" : "");
    }
    return -1;
}

int ptc_test_main(const ptc_test_case_t *cases, size_t cnt, int argc, char **argv)
{
    const char *nofork = getenv("PTC_TEST_NOFORK");
    const char *tmo = getenv("PTC_TEST_TIMEOUT");
    unsigned timeout_s = tmo != NULL ? (unsigned)strtoul(tmo, NULL, 10) : 60;
    if (timeout_s == 0) {
        timeout_s = 60;
    }
    /* A peer that closes early must give EPIPE, not kill the case. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    size_t selected = 0;
    for (size_t i = 0; i < cnt; i++) {
        int want = argc <= 1;
        for (int a = 1; a < argc; a++) {
            want |= strcmp(argv[a], cases[i].name) == 0;
        }
        selected += want ? 1 : 0;
    }
    if (selected == 0) {
        fprintf(stderr, "no test case matches\n");
        return 2;
    }
    printf("TAP version 13\n1..%zu\n", selected);
    size_t n = 0;
    size_t failed = 0;
    for (size_t i = 0; i < cnt; i++) {
        int want = argc <= 1;
        for (int a = 1; a < argc; a++) {
            want |= strcmp(argv[a], cases[i].name) == 0;
        }
        if (!want) {
            continue;
        }
        n++;
        int rc = nofork != NULL && nofork[0] == '1' ? run_in_process(&cases[i])
                                                    : run_forked(&cases[i], timeout_s);
        printf("%s %zu - %s\n", rc == 0 ? "ok" : "not ok", n, cases[i].name);
        failed += rc == 0 ? 0 : 1;
    }
    return failed == 0 ? 0 : 1;
}

void ptc_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "# %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    fflush(stdout);
    /* _exit: a failed case's half-built state is not a leak worth a report. */
    _exit(1);
}

void ptc_test_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

const char *ptc_test_srcdir(void)
{
    const char *d = getenv("PTC_SRCDIR");
    return d != NULL ? d : ".";
}

const char *ptc_test_tmpdir(void)
{
    static char path[256];
    if (path[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/ptc-test-XXXXXX", base != NULL ? base : "/tmp");
        if (mkdtemp(path) == NULL) {
            ptc_test_fail(__FILE__, __LINE__, "mkdtemp(%s): %s", path, strerror(errno));
        }
    }
    return path;
}

void ptc_test_check_streq_(const char *file, int line, const char *ea, const char *eb,
                           const char *a, const char *b, int want_equal)
{
    int equal = (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
    if (equal != want_equal) {
        ptc_test_fail(file, line, "CHECK_%s(%s, %s) failed: \"%s\" vs \"%s\"",
                      want_equal ? "STREQ" : "STRNE", ea, eb, a != NULL ? a : "(null)",
                      b != NULL ? b : "(null)");
    }
}

void ptc_test_check_contains_(const char *file, int line, const char *eh, const char *hay,
                              const char *needle)
{
    if (hay == NULL || needle == NULL || strstr(hay, needle) == NULL) {
        ptc_test_fail(file, line, "CHECK_CONTAINS(%s, \"%s\") failed: \"%s\"", eh,
                      needle != NULL ? needle : "(null)", hay != NULL ? hay : "(null)");
    }
}

static void hex_window(const unsigned char *p, size_t len, size_t at, char *out, size_t cap)
{
    size_t start = at > 8 ? at - 8 : 0;
    size_t end = at + 8 < len ? at + 8 : len;
    size_t o = 0;
    for (size_t i = start; i < end && o + 4 < cap; i++) {
        o += (size_t)snprintf(out + o, cap - o, i == at ? "[%02x]" : "%02x ", p[i]);
    }
    out[o] = '\0';
}

void ptc_test_check_memeq_(const char *file, int line, const char *ea, const char *eb,
                           const void *a, const void *b, size_t len)
{
    const unsigned char *pa = a;
    const unsigned char *pb = b;
    for (size_t i = 0; i < len; i++) {
        if (pa[i] != pb[i]) {
            char wa[80];
            char wb[80];
            hex_window(pa, len, i, wa, sizeof(wa));
            hex_window(pb, len, i, wb, sizeof(wb));
            ptc_test_fail(file, line, "CHECK_MEMEQ(%s, %s, %zu) failed at offset %zu: %s vs %s", ea,
                          eb, len, i, wa, wb);
        }
    }
}
