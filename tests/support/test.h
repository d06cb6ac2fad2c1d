/* SPDX-License-Identifier: MIT */
/*
 * The unit-test harness. Each test executable holds a table of cases and hands it to
 * ptc_test_main(). Every case runs in its own child process (as libuv's runner does), so a
 * crash, an abort or a sanitizer report fails that case only and the others still run. The
 * output is TAP 13 ("ok N - name" / "not ok N - name"), which meson parses with
 * `protocol: 'tap'`, and the line counts are what `make check` adds up.
 *
 * A failed CHECK prints the expression, both values and the location to stderr, then ends
 * the case's process with status 1. It depends on nothing of ours.
 *
 * Usage:
 *     static void test_adds(void) { CHECK_EQ(1 + 1, 2); }
 *     static const ptc_test_case_t cases[] = { PTC_TEST(test_adds) };
 *     int main(int argc, char **argv) { return PTC_TEST_MAIN(cases, argc, argv); }
 *
 * Arguments: a case name runs that case alone. PTC_TEST_NOFORK=1 runs cases in-process (for
 * a debugger). PTC_TEST_TIMEOUT=<seconds> (default 60) bounds each case.
 */
#ifndef PTC_TESTS_SUPPORT_TEST_H
#define PTC_TESTS_SUPPORT_TEST_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*ptc_test_fn)(void);

typedef struct ptc_test_case {
    const char *name;
    ptc_test_fn fn;
} ptc_test_case_t;

#define PTC_TEST(fn)                                                                               \
    {                                                                                              \
#fn, fn                                                                                    \
    }
#define PTC_TEST_MAIN(cases, argc, argv)                                                           \
    ptc_test_main((cases), sizeof(cases) / sizeof((cases)[0]), (argc), (argv))

/** Runs the cases (all, or those named in argv) and prints TAP. Returns the exit status. */
int ptc_test_main(const ptc_test_case_t *cases, size_t cnt, int argc, char **argv);

/** Reports a failed check and ends the current case (never returns). */
_Noreturn void ptc_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Prints a diagnostic line ("# ...") that TAP readers show but do not count. */
void ptc_test_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Returns the directory named by PTC_SRCDIR (the source tree), or "." when unset. */
const char *ptc_test_srcdir(void);

/** Creates a fresh temporary directory for this case; the path stays valid until exit. */
const char *ptc_test_tmpdir(void);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ptc_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                          \
        }                                                                                          \
    } while (0)

#define PTC_CHECK_CMP_(a, b, op, type, fmt)                                                        \
    do {                                                                                           \
        type ptc_a_ = (type)(a);                                                                   \
        type ptc_b_ = (type)(b);                                                                   \
        if (!(ptc_a_ op ptc_b_)) {                                                                 \
            ptc_test_fail(__FILE__, __LINE__, "CHECK(%s %s %s) failed: %" fmt " vs %" fmt, #a,     \
                          #op, #b, ptc_a_, ptc_b_);                                                \
        }                                                                                          \
    } while (0)

/* Signed integer comparisons (values are widened to intmax_t). */
#define CHECK_EQ(a, b) PTC_CHECK_CMP_(a, b, ==, intmax_t, PRIdMAX)
#define CHECK_NE(a, b) PTC_CHECK_CMP_(a, b, !=, intmax_t, PRIdMAX)
#define CHECK_LT(a, b) PTC_CHECK_CMP_(a, b, <, intmax_t, PRIdMAX)
#define CHECK_LE(a, b) PTC_CHECK_CMP_(a, b, <=, intmax_t, PRIdMAX)
#define CHECK_GT(a, b) PTC_CHECK_CMP_(a, b, >, intmax_t, PRIdMAX)
#define CHECK_GE(a, b) PTC_CHECK_CMP_(a, b, >=, intmax_t, PRIdMAX)
/* Unsigned comparisons (values are widened to uintmax_t), e.g. for uint64_t. */
#define CHECK_UEQ(a, b) PTC_CHECK_CMP_(a, b, ==, uintmax_t, PRIuMAX)

/* 0 means success in Portico (STYLE §3): prints the code when it is not. */
#define CHECK_OK(expr) PTC_CHECK_CMP_(expr, 0, ==, intmax_t, PRIdMAX)

#define CHECK_NULL(p) CHECK((p) == NULL)
#define CHECK_NOT_NULL(p) CHECK((p) != NULL)

/* C strings; NULL is printed as (null) and equals only NULL. */
#define CHECK_STREQ(a, b) ptc_test_check_streq_(__FILE__, __LINE__, #a, #b, (a), (b), 1)
#define CHECK_STRNE(a, b) ptc_test_check_streq_(__FILE__, __LINE__, #a, #b, (a), (b), 0)
/* Does haystack contain needle? */
#define CHECK_CONTAINS(hay, needle)                                                                \
    ptc_test_check_contains_(__FILE__, __LINE__, #hay, (hay), (needle))
/* Byte ranges; on mismatch prints the first differing offset and a hex window of each. */
#define CHECK_MEMEQ(a, b, len)                                                                     \
    ptc_test_check_memeq_(__FILE__, __LINE__, #a, #b, (const void *)(a), (const void *)(b),        \
                          (size_t)(len))

void ptc_test_check_streq_(const char *file, int line, const char *ea, const char *eb,
                           const char *a, const char *b, int want_equal);
void ptc_test_check_contains_(const char *file, int line, const char *eh, const char *hay,
                              const char *needle);
void ptc_test_check_memeq_(const char *file, int line, const char *ea, const char *eb,
                           const void *a, const void *b, size_t len);

#endif
