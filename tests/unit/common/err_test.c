/* SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void test_names_of_own_codes(void)
{
    CHECK_STREQ(ptc_errname(0), "OK");
    CHECK_STREQ(ptc_errname(PTC_EHTTP), "PTC_EHTTP");
    CHECK_STREQ(ptc_errname(PTC_EINCOMPLETE), "PTC_EINCOMPLETE");
    CHECK_STREQ(ptc_errname(PTC_ERR_LAST), "PTC_EOVERFLOW");
    CHECK_STREQ(ptc_strerror(PTC_ECERTNAME), "certificate does not match the host name");
}

static void test_every_own_code_has_a_name(void)
{
    for (int e = PTC_ERR_FIRST; e >= PTC_ERR_LAST; e--) {
        CHECK(strncmp(ptc_errname(e), "PTC_E", 5) == 0);
        CHECK_STRNE(ptc_strerror(e), "unknown error");
    }
}

static void test_libuv_codes_pass_through(void)
{
    CHECK_STREQ(ptc_errname(UV_ECONNREFUSED), "ECONNREFUSED");
    CHECK_STREQ(ptc_errname(UV_EOF), "EOF");
    CHECK_STREQ(ptc_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
}

static void test_unknown_codes(void)
{
    CHECK_STREQ(ptc_errname(-9999), "UNKNOWN");
    CHECK_STREQ(ptc_errname(-20000), "UNKNOWN");
    CHECK_STREQ(ptc_strerror(42), "unknown error");
}

static void test_xstrdup(void)
{
    char *s = ptc_xstrdup("portico");
    CHECK_STREQ(s, "portico");
    free(s);
    CHECK_NULL(ptc_xstrdup(NULL));
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_names_of_own_codes),
    PTC_TEST(test_every_own_code_has_a_name),
    PTC_TEST(test_libuv_codes_pass_through),
    PTC_TEST(test_unknown_codes),
    PTC_TEST(test_xstrdup),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
