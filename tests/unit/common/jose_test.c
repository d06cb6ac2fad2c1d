/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/jose: base64url (RFC 4648 §10 vectors in the url alphabet, and refused
 * texts), JWKS parsing (supported, skipped and refused keys), compact JWS verification with
 * the RFC 7515 A.2/A.3 and RFC 8037 A.4 examples and with fixed tokens made by Node's crypto
 * module (valid, tampered, refused algorithms, key selection by kid), and Ed25519 signing.
 *
 * The fixtures below were generated once with `node -e` (crypto.generateKeyPairSync and
 * crypto.sign, ES256 in ieee-p1363 form) and are committed as strings: JWKS lists rsa1
 * (RS256), ec1 (P-256), ed1 (Ed25519), rsa384 (an RSA key whose own alg is RS384) and five
 * keys that must be skipped (oct, P-384, use "enc", X25519, a 1024-bit RSA key).
 */
#include "common/jose.h"
#include "tests/support/test.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures (Node 20 crypto) ---- */

static const char JWKS[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":"
    "\"t76IRuTkt9CEl_GmTFHUP2"
    "U36EhRPwajyb7_CHZQMd6tHCeEkHcXkWfvVUqEjmEQ6yDoBOcDsKtElSjlsMbG_xPpcL9kCjGuE6xnvpi49rK4MG"
    "KsI-GVjVb3JcBfdPEujSAzNBqOmbK0HFo71n4Ezqd4uEF7lM8vKtlhjJiIdN7-iSoMKfvM421RiXyB1enlBBashE"
    "1e98wWUPab68yzKdWrKDOtOQ9tjpDnH3Mn3w6Aiu_NujuDG1qDD0X0qJkgckEWIn_h7M9p0NbpXGdWvW6RgV_wbo"
    "u7nCqAlgzZTywzjefElyd7juVVHxM1tPU0wcURNl5mozCnqktcanSWNQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\","
    "\"kid\":"
    "\"ec1\",\"crv\":\"P-256\",\"x\":\"j5P7nWwuieIO36fXZvLhyFuqU3UbN_Y71Kxx3M2eAQk\",\"y\":"
    "\"z7DafEbt4c9yC"
    "FRfomlxlJCy88D28JzhrzRzOcYwL1o\"},{\"kty\":\"OKP\",\"kid\":\"ed1\",\"crv\":\"Ed25519\",\"x\":"
    "\"CobIBq--i"
    "jl3gxR0eyL2e-tqJjZ_5-z3Y0gSi13-ub8\",\"use\":\"sig\"},{\"kty\":\"RSA\",\"kid\":\"rsa384\","
    "\"alg\":\"RS38"
    "4\",\"n\":\"y8_xjCdjKdKRmNGFq6gxQ2WRvhHOzXYgcXsSG_wF6CTllC-8mY7BTWC69AsARs9S8P4DW2mRcHwHuHqF"
    "wOV4DRzmXGzBivIU6loT8fw78OBMgxKMzI5njC246PZYhEBLJqWRdOUXDpqZelOqsxvK7xxyA4kNxj1uP6FjUhG2"
    "8ArqVLfa8z1y5XV6D7mLGjJXS7esGg_qfcJ0Y9n2mWPyB7l-EmFFU1s_ULRGA1Me58b1-W4KVD0I-QOXeSQv3Yqg"
    "U_7axwQaTt588ALUlCquim08H7ZDEJQXfSvshgkbAk2PiBTrH3pUaiRr5ZLbZO_xheiWDdN5tqOEuiNcMstJhw\","
    "\"e\":\"AQAB\"},{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"hcc0jovUjNRiKGTacYs_"
    "dyiuIZ87OpoZION5YIOj3RI\"}"
    ",{\"kty\":\"EC\",\"kid\":\"ec384\",\"crv\":\"P-384\",\"x\":\"V0H27XaVIpf-Z7O5OTxnBX_"
    "qxwQEodwA0pTjWQWnew"
    "XL4q85uiKGENcbN03UtCVE\",\"y\":\"HfqPMcBwp7WrlnZvFcX6m9nTLlgfLxESZWdgM2zWhhlXnBA1wJ9lgWeYrk2"
    "aOi6i\"},{\"kty\":\"RSA\",\"kid\":\"rsaenc\",\"use\":\"enc\",\"n\":\"y8_"
    "xjCdjKdKRmNGFq6gxQ2WRvhHOzXYgcXs"
    "SG_wF6CTllC-8mY7BTWC69AsARs9S8P4DW2mRcHwHuHqFwOV4DRzmXGzBivIU6loT8fw78OBMgxKMzI5njC246PZ"
    "YhEBLJqWRdOUXDpqZelOqsxvK7xxyA4kNxj1uP6FjUhG28ArqVLfa8z1y5XV6D7mLGjJXS7esGg_qfcJ0Y9n2mWP"
    "yB7l-EmFFU1s_ULRGA1Me58b1-W4KVD0I-QOXeSQv3YqgU_7axwQaTt588ALUlCquim08H7ZDEJQXfSvshgkbAk2"
    "PiBTrH3pUaiRr5ZLbZO_xheiWDdN5tqOEuiNcMstJhw\",\"e\":\"AQAB\"},{\"kty\":\"OKP\",\"kid\":\"x1\","
    "\"crv\":\""
    "X25519\",\"x\":\"oOPO1TfZ8rJ-IofvjM-kvz_m5Sr4707uX72QmcUPJQE\"},{\"kty\":\"RSA\",\"kid\":"
    "\"weak\",\"n\""
    ":\"qnkOQTOGoEGc-8cunf11ifaw0Knd-BnA45QtiKpkTLWXIWVD99zTXcOulufVVpMVxWPRXYKz9uuUfPKm0qoOnZ"
    "gldD1wr3YtaMaRvf20BQCwrXXcyqyCWc6marfK3PopRIaVDa7qCT-98bh1q1r9vrLj23phNdROzINokWLXRgk\",\""
    "e\":\"AQAB\"}]}";

static const char TOK_RS256[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtc"
    "GxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwM"
    "DAsIm5vbmNlIjoibi0xIn0.i7OCrxjhuGobEhMLdZ-cUgxyPv9zZnOOlmPp8xvo0QfSDcumeFiKMkP-ZaWo5QgTO"
    "DzbnUhyPWkCrGZLoEkVP6YmTu-hx8xfuwThqOPGltPDwig6Y2gHewJj8MNX_qJeIPTeqRK4RHwVJ5dX91pkUPNiV"
    "zmR8j6VyMfM8FYRttzOxqCrG8HNWDpVmbU6GEp_RWb-_uY-NliWlF0k2s17SfTBmEzqYWYOu0dGc2Z5ORn4MDs5x"
    "dgpYd9DTfBupytcQcuYEiwzby5CEa05ZrO3hJYPnUdThbQLwu8Sg8Sa7iN7zmY1OIPwzyH9SKGSdMV8tPxv4odlT"
    "lWHV6neFWg19g";

static const char TOK_ES256[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.JFTA0LS0603xIzarDSPtHDJpY0v3OzQ9hw1clJS_KsnHBzxQXNd8w_2WCJGrG6ohrCvCTn0cdObxW_x28ty"
    "fiw";

static const char TOK_EDDSA[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.qk4jHprsUQFXnxj47R1uql72Dw_AxJ9k7aU-y1TE5UlICaNfckaS8GDWo-EcrP7IqLlWi0R0q0Zoe3wio0a"
    "oDA";

static const char TOK_RS256_BAD_PAYLOAD[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtc"
    "GxlIiwic3ViIjoibWFsbG9yeSIsImF1ZCI6InBvcnRpY28iLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTcwMDAwM"
    "DAwMCwibm9uY2UiOiJuLTEifQ.i7OCrxjhuGobEhMLdZ-cUgxyPv9zZnOOlmPp8xvo0QfSDcumeFiKMkP-ZaWo5Q"
    "gTODzbnUhyPWkCrGZLoEkVP6YmTu-hx8xfuwThqOPGltPDwig6Y2gHewJj8MNX_qJeIPTeqRK4RHwVJ5dX91pkUP"
    "NiVzmR8j6VyMfM8FYRttzOxqCrG8HNWDpVmbU6GEp_RWb-_uY-NliWlF0k2s17SfTBmEzqYWYOu0dGc2Z5ORn4MD"
    "s5xdgpYd9DTfBupytcQcuYEiwzby5CEa05ZrO3hJYPnUdThbQLwu8Sg8Sa7iN7zmY1OIPwzyH9SKGSdMV8tPxv4o"
    "dlTlWHV6neFWg19g";

static const char TOK_ES256_BAD_PAYLOAD[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoibWF"
    "sbG9yeSIsImF1ZCI6InBvcnRpY28iLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwibm9uY2UiOiJ"
    "uLTEifQ.JFTA0LS0603xIzarDSPtHDJpY0v3OzQ9hw1clJS_KsnHBzxQXNd8w_2WCJGrG6ohrCvCTn0cdObxW_x2"
    "8tyfiw";

static const char TOK_EDDSA_BAD_PAYLOAD[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoibWF"
    "sbG9yeSIsImF1ZCI6InBvcnRpY28iLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwibm9uY2UiOiJ"
    "uLTEifQ.qk4jHprsUQFXnxj47R1uql72Dw_AxJ9k7aU-y1TE5UlICaNfckaS8GDWo-EcrP7IqLlWi0R0q0Zoe3wi"
    "o0aoDA";

static const char TOK_RS256_BAD_SIG[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtc"
    "GxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwM"
    "DAsIm5vbmNlIjoibi0xIn0.i7OCrxjhuGobEhILdZ-cUgxyPv9zZnOOlmPp8xvo0QfSDcumeFiKMkP-ZaWo5QgTO"
    "DzbnUhyPWkCrGZLoEkVP6YmTu-hx8xfuwThqOPGltPDwig6Y2gHewJj8MNX_qJeIPTeqRK4RHwVJ5dX91pkUPNiV"
    "zmR8j6VyMfM8FYRttzOxqCrG8HNWDpVmbU6GEp_RWb-_uY-NliWlF0k2s17SfTBmEzqYWYOu0dGc2Z5ORn4MDs5x"
    "dgpYd9DTfBupytcQcuYEiwzby5CEa05ZrO3hJYPnUdThbQLwu8Sg8Sa7iN7zmY1OIPwzyH9SKGSdMV8tPxv4odlT"
    "lWHV6neFWg19g";

static const char TOK_ES256_BAD_SIG[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.JFTA0LS0603xIzerDSPtHDJpY0v3OzQ9hw1clJS_KsnHBzxQXNd8w_2WCJGrG6ohrCvCTn0cdObxW_x28ty"
    "fiw";

static const char TOK_EDDSA_BAD_SIG[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.qk4jHprsUQFXnxn47R1uql72Dw_AxJ9k7aU-y1TE5UlICaNfckaS8GDWo-EcrP7IqLlWi0R0q0Zoe3wio0a"
    "oDA";

static const char TOK_NONE[] =
    "eyJhbGciOiJub25lIiwia2lkIjoicnNhMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.";

static const char TOK_HS256[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6InJzYTEifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiY"
    "WxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoib"
    "i0xIn0.GPD_oU7G7ueTWtVmwAo2iJr459ll_tblluq6Cqo4cB0";

static const char TOK_RS256_EC_KID[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImVjMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.OGx0kzsv1GWAxX2bRm8wbGOub7zGwhTwlHjVsE3HiDddhG3ikOsS_i8Q8gpVCKUgdZJptO1Wly_NHl7VpKg"
    "TfhFqT2H1Gfeeld-38jxJuTfwFsCg1_4A-DCiJi-tY8QokTG0F5CT9oKY1CKeb0qcAo4azfGDTIcykOAabcFxhDx"
    "KuUll5d05L7PWSKzytxKVCusI2GjJiGFghFcWrUvbA5wNKVxWkB0qlOvH3UBtJAuTs4-JEVkZpI_WyznzZfc9r-2"
    "7FoyZGvkdpZksbSwMri7fAK4b9N-vxZeU3aY1PVa7c8ykxb6mbg9_YizFajCPjNVRPFCZYZo4gfaDx0Ro9w";

static const char TOK_UNKNOWN_KID[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTkifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiY"
    "WxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoib"
    "i0xIn0.Uu8PVWJDgX5uyvkTAPmYwYkF5XTVc4dMVEGeKSw3R6HRjd4H14J81-kJNO4gWO68edL8RGsyqUu2sUBic"
    "TiY_fELIwEyMHqHCY9qeQjq0_vcpZJMDca2rqooRMzAo6i05jM5vATz_sp48_AAp7540nZ9hIq_zYi5TcRGitU1C"
    "kup51RXFBKQ6qiG7eY_d7A8axbcZClB_h6AdIOLuPIKMXuENkkNPTTbpURd_AGm77RpM5Ral_cHrXUsd7BbOfEem"
    "7b4EfNYyKSx3ysb1uMqZs1lAbVT-HRrITzqRs1JyCx-1g9E4GK5cejb5ZCXuUNyRNrORQ1XVNUl1vY4FlKc2g";

static const char TOK_ES256_NOKID[] =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJ"
    "wb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0.vRZ2Qw8Ssb1"
    "hDD6lzeZyeY60zvS4D6VWTBpvrxGneAXRb_r6QqxwxSiY-TIdoape0c66pKd2rykpXafWLBeDUQ";

static const char TOK_RS256_NOKID[] =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJ"
    "wb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0.m4WRFx-SFFx"
    "t0ZAs8iHdBF3JD2izOujDdeOuKKSFvoKihOpNHMG3Ubk-K7UK4dryYPgDbLliDFCf4Rox-SxLmCPRJlapzHlOXrM"
    "xycKHAVwxgglPNKLtwFrebgVvaHw00l8y7u7xmSmlVXMLS1cTRCEWyzQneBN2jhti6RP0gr8ugLcstnruJcvoXiN"
    "fcnmQtNk3p2vMOV_7SsTDfBdvBr8HauNEHGEjHnrX_jdVOjgPHMeVviyLyrw16AAlZxCxqvF3BqLb7F4vOisoTOb"
    "y-zRj_9-MoPEPgJvQu9zTnM4VQX0nlOJleTlKVr1uI8MIMXX7MY5pImVwEjMGymwR2Q";

static const char TOK_KEY_ALG_MISMATCH[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTM4NCJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjo"
    "iYWxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjo"
    "ibi0xIn0.EY1HvH04gcWS2HEAW7oyG4tcqIXIrD2VByco0JM4dUc4e1CNQeGRF8gcKeYdSuC-l7a54-j-LB3gQzV"
    "TtkYeMqxxyNPyecH-hWBxKPGCpWzrtKCdFWNfcAIGXZoGcWFSzda_HkW6I8BJF2CK2uCjT4FbMchJDNBEnxkhF6c"
    "_uteT-9Jm3ZKBSVkyoMvdhMQzfdxh-GSCzwZxGtfwAN0TMQxdgbzYgNuK5e3McUXM-uQPDc6-0clDT2dwJaHOMRr"
    "Cf1ajpXhRbaCMLySQKWeH3L8u0FkiTmS0OBJeG_m_D1DsYdmdWAhSsE4QkO1ysxF1fJ7MWYFW4UzsNddAjdwDiw";

static const char TOK_WEAK[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IndlYWsifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiY"
    "WxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoib"
    "i0xIn0.BWYnyPfKR3XQvsQqH3oQ-dYds_NwkouxXP-RhHxvAbBTRXlKMIer-svTH6piZXCwSru6qSeWk9oSXXEqe"
    "yEakpZln6c0nGmv7YQCpRAOzzpFdRxv5TQYp3TplkrsTPbtKtKh70GpXgfOGLWCZ8eOXmyKHa8-YLi5QnimfClQJ"
    "Kc";

static const char TOK_CRIT[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSIsImNyaXQiOlsiZXhwIl0sImV4cCI6MX0.eyJpc3MiOiJodHRwczov"
    "L2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQi"
    "OjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0.lbH259r8yMjLs4LSRiz_10ftmOf6AxGMud0w-Er4gMrFU1Amxn_d"
    "Db9na8L0hRNP9hpUgiRMmnsXLU5RC2ENDw";

static const char TOK_ES256_DER[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWx"
    "pY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0"
    "xIn0.MEYCIQCVu75ZZVvQTjRpHIVVQKFFrCFqInqs7ClySD8hU883ywIhAM-9bFrq9Ufs6yFVt1TYu2zu9AimL6y"
    "0vGNqjqOMeyKS";

static const char TOK_PAYLOAD_ARRAY[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.WzEsMl0.OIaQ9qZBf45lIRGsai3pnQ4xYLtVOfsNTflf9kA_owF"
    "6YzydZ8qL-WZZ6Es1oUXrWrTo_rk7U4HuEqK1SmeOAA";

static const char TOK_HEADER_DUP[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSIsImFsZyI6IkVkRFNBIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFt"
    "cGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAw"
    "MDAsIm5vbmNlIjoibi0xIn0.4_5I0Bh4FLbKDNu7PDqLSODAvlp4jpu-Dt5FdLeI4YXqyUV6Fw3kNxsHW9PxtB4R"
    "rihDWtRvnf4hhuEYIBXDBA";

static const char TOK_PAYLOAD_DUP[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJzdWIiOiJhbGljZSIsInN1YiI6ImFkbWluIn0.PGhBidIb2HX"
    "sDCNeDNfkCmJEAv-fGvC3udRgCLuAT6OXbQ6wOIQCSGv-ATezlKxcboCKix9XcMzCBXoxDwH3BQ";

static const char TOK_PAYLOAD_TRAILING[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMSJ9.eyJzdWIiOiJhbGljZSJ9IHt9.LA_nlpA2eJT7VYso6X2RAwrK1f"
    "5VkA9-jpEPqiAM4-QBwYk79Ds6dB8sbluHGxfykuuSgfgorMe2hpUwLBwODg";

static const char TOK_HEADER_STRING[] =
    "IkVkRFNBIg.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJwb3J0aWNvI"
    "iwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0.jvzEeCrx1ur_hs0XGScCL"
    "GTvX54MjfSFwgRPQgxbIKSYXv4Ms_hDT8snesZy-sms2Fud7EMZaEyzieOQmN9GDg";

static const char TOK_ALG_NUMBER[] =
    "eyJhbGciOjEsImtpZCI6ImVkMSJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJ"
    "hdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0.51h"
    "hthtNteBnRyzSBAZSqWqpY5N1747wm4nxecw5qvPuJqUvk2rsEmcexUF10FTX-B8YUdFllJf_38XHS6d4Ag";

static const char TOK_RS384[] =
    "eyJhbGciOiJSUzM4NCIsImtpZCI6InJzYTEifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiY"
    "WxpY2UiLCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoib"
    "i0xIn0.K8tMWaASWHx6W9FrKCk-EZ0tCfjUei11L6r1Nyw6BaQCtUhu5k66kkF1PQ3N7yt5SpB4cTdGHRVmQymWb"
    "R8RwbiOWIIIARkzit0SMnA-q958nzlzvjKOiiMvQ7K_PtZZPtH1sbPPoPHbw-eNNDHQzbibQ8Zu3-9-MZHPNsPDX"
    "5rOziDFo_roSJzUTl4cPFNLL6HnNMzops_5_gp36jKRuD7CMH63twZ5qi_Z1dC3DbdCSAVYbuCtOiwLNFqHlLA2V"
    "55KUeO8xQDXNAnnVtOhogi2MBgIauqTeEzuyKoevZKKpB4piG5orTpohBIboeFXMuofJDfXlq6EFG0P6q7F2g";

static const char TOK_KID_NUMBER[] =
    "eyJhbGciOiJFZERTQSIsImtpZCI6N30.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2Ui"
    "LCJhdWQiOiJwb3J0aWNvIiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm5vbmNlIjoibi0xIn0."
    "X_bezaICKuRZasAYXhEGVFkut0HS8NO1Pajua889eyWf01Z8GL5vlgKdyVuc-uSvgSc8GuXBPfH5IBFBDToaAw";

static const char JWKS_TWO_RSA[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"t76IRuTkt9CEl_GmTFHUP2U36EhRPwajyb7_"
    "CHZQMd6tHCeEkHcXkWfvVUqEj"
    "mEQ6yDoBOcDsKtElSjlsMbG_xPpcL9kCjGuE6xnvpi49rK4MGKsI-GVjVb3JcBfdPEujSAzNBqOmbK0HFo71n4Ez"
    "qd4uEF7lM8vKtlhjJiIdN7-iSoMKfvM421RiXyB1enlBBashE1e98wWUPab68yzKdWrKDOtOQ9tjpDnH3Mn3w6Ai"
    "u_NujuDG1qDD0X0qJkgckEWIn_h7M9p0NbpXGdWvW6RgV_wbou7nCqAlgzZTywzjefElyd7juVVHxM1tPU0wcURN"
    "l5mozCnqktcanSWNQ\",\"e\":\"AQAB\"},{\"kty\":\"RSA\",\"n\":\"y8_"
    "xjCdjKdKRmNGFq6gxQ2WRvhHOzXYgcXsSG_w"
    "F6CTllC-8mY7BTWC69AsARs9S8P4DW2mRcHwHuHqFwOV4DRzmXGzBivIU6loT8fw78OBMgxKMzI5njC246PZYhEB"
    "LJqWRdOUXDpqZelOqsxvK7xxyA4kNxj1uP6FjUhG28ArqVLfa8z1y5XV6D7mLGjJXS7esGg_qfcJ0Y9n2mWPyB7l"
    "-EmFFU1s_ULRGA1Me58b1-W4KVD0I-QOXeSQv3YqgU_7axwQaTt588ALUlCquim08H7ZDEJQXfSvshgkbAk2PiBT"
    "rH3pUaiRr5ZLbZO_xheiWDdN5tqOEuiNcMstJhw\",\"e\":\"AQAB\"}]}";

static const char JWKS_EC_OFF_CURVE[] =
    "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"ec1\",\"crv\":\"P-256\",\"x\":"
    "\"j5P7nWwuieIO36fXZvLhyFuqU3UbN_Y71Kxx"
    "3M2eAQk\",\"y\":\"z7DafEbt4c9yCFRfomlxlJCy88D28JzhrzRzOcYwL1s\"}]}";

static const char JWKS_WEAK[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"weak\",\"alg\":\"RS256\",\"n\":\"qnkOQTOGoEGc-"
    "8cunf11ifaw0Knd-BnA45"
    "QtiKpkTLWXIWVD99zTXcOulufVVpMVxWPRXYKz9uuUfPKm0qoOnZgldD1wr3YtaMaRvf20BQCwrXXcyqyCWc6mar"
    "fK3PopRIaVDa7qCT-98bh1q1r9vrLj23phNdROzINokWLXRgk\",\"e\":\"AQAB\"}]}";

static const char TOK_SIGN_EXPECTED[] =
    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsIm4iOjF9.4x1DO5p"
    "ljR5fS0AXpLzbeEz-wYiPJxnkvu7Kkd0JD5iJhse0AfolFRX82Ob9siBHaI5TIHvaKzIvdztbTUnzCA";

static const char RFC8037_X[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

/* ---- RFC examples ---- */

/* RFC 7515 Appendix A.2: RS256. */
static const char RFC7515_A2_JWKS[] = "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":"
                                      "\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0"
                                      "l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-"
                                      "SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47"
                                      "soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-"
                                      "KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4u"
                                      "DZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_"
                                      "h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FR"
                                      "WyuXpoQ\"}]}";
static const char RFC7515_A2_TOKEN[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
    "c19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-"
    "0Qc_l"
    "F5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSj"
    "tQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QO"
    "YEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/* RFC 7515 Appendix A.3: ES256. */
static const char RFC7515_A3_JWKS[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                                      "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                      "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char RFC7515_A3_TOKEN[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
    "c19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-"
    "F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
    "Kg6NU1Q";

/* RFC 8037 Appendix A.1 (private key), A.2 (public key) and A.4/A.5 (signing, validation). */
static const char RFC8037_D[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char RFC8037_JWKS[] = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                                   "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
static const char RFC8037_TOKEN[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                                    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR"
                                    "6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

#define ALL_ALGS (PTC_JOSE_RS256 | PTC_JOSE_ES256 | PTC_JOSE_EDDSA)

static void init(void)
{
    CHECK(sodium_init() >= 0);
}

static ptc_jwks_t *load(const char *json)
{
    ptc_jwks_t *set = NULL;
    char err[128];
    CHECK_OK(ptc_jwks_parse(json, strlen(json), &set, err, sizeof(err)));
    CHECK_NOT_NULL(set);
    return set;
}

/* Verifies tok against set and returns the code; on success checks and disposes the result. */
static int verify(const ptc_jwks_t *set, const char *tok, unsigned algs, char *err, size_t errlen)
{
    ptc_jwt_t jwt;
    int rc = ptc_jwt_verify(tok, strlen(tok), set, algs, &jwt, err, errlen);
    if (rc == 0) {
        CHECK(json_is_object(jwt.header));
        CHECK(json_is_object(jwt.claims));
        ptc_jwt_dispose(&jwt);
        CHECK_NULL(jwt.header);
    } else {
        CHECK_NULL(jwt.header);
        CHECK_NULL(jwt.claims);
    }
    return rc;
}

/* ---- base64url ---- */

static void test_b64url_rfc4648_vectors(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const text[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t n = strlen(plain[i]);
        CHECK_EQ(ptc_jose_b64url_encoded_len(n), strlen(text[i]));
        CHECK_EQ(ptc_jose_b64url_encode(plain[i], n, out), strlen(text[i]));
        CHECK_STREQ(out, text[i]);
        uint8_t back[16];
        size_t len = 99;
        CHECK_OK(ptc_jose_b64url_decode(text[i], strlen(text[i]), back, sizeof(back), &len));
        CHECK_EQ(len, n);
        CHECK_MEMEQ(back, plain[i], n);
    }
}

static void test_b64url_url_alphabet(void)
{
    /* 0xfb 0xff is "+/8" in standard base64 and "-_8" in base64url. */
    static const uint8_t raw[] = {0xfb, 0xff};
    char out[8];
    CHECK_EQ(ptc_jose_b64url_encode(raw, 2, out), 3);
    CHECK_STREQ(out, "-_8");
    uint8_t back[4];
    size_t len;
    CHECK_OK(ptc_jose_b64url_decode("-_8", 3, back, sizeof(back), &len));
    CHECK_EQ(len, 2);
    CHECK_MEMEQ(back, raw, 2);
    uint8_t all[256];
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)i;
    }
    char text[400];
    size_t tlen = ptc_jose_b64url_encode(all, sizeof(all), text);
    CHECK_EQ(tlen, 342);
    uint8_t again[256];
    CHECK_OK(ptc_jose_b64url_decode(text, tlen, again, sizeof(again), &len));
    CHECK_EQ(len, 256);
    CHECK_MEMEQ(again, all, 256);
}

static void test_b64url_refuses_invalid(void)
{
    static const char *const bad[] = {
        "Zg==",  /* padding */
        "Zm8=",  /* padding */
        "Zh",    /* non-canonical: low bits set */
        "Zm9",   /* non-canonical */
        "Z",     /* 4k+1 characters */
        "Zm9vY", /* 4k+1 characters */
        "Zm+v",  /* standard alphabet */
        "Zm/v",  /* standard alphabet */
        "Zm9v\n", " Zg", "Zm 9v", "Zm9v.", "Z\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[16];
        size_t len = 99;
        CHECK_EQ(ptc_jose_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len),
                 PTC_EFORMAT);
        CHECK_EQ(len, 0);
    }
    /* An embedded NUL is outside the alphabet too. */
    uint8_t out[8];
    size_t len;
    CHECK_EQ(ptc_jose_b64url_decode("Zm\0v", 4, out, sizeof(out), &len), PTC_EFORMAT);
    /* Too small a buffer. */
    CHECK_EQ(ptc_jose_b64url_decode("Zm9vYmFy", 8, out, 5, &len), PTC_ELIMIT);
    CHECK_OK(ptc_jose_b64url_decode("Zm9vYmFy", 8, out, 6, &len));
    CHECK_EQ(len, 6);
}

/* ---- key sets ---- */

static void test_jwks_parse_skips_unsupported(void)
{
    init();
    ptc_jwks_t *set = NULL;
    char err[128];
    CHECK_OK(ptc_jwks_parse(JWKS, strlen(JWKS), &set, err, sizeof(err)));
    /* rsa1, ec1, ed1, rsa384; not oct, P-384, use "enc", X25519, 1024-bit RSA. */
    CHECK_EQ(ptc_jwks_count(set), 4);
    CHECK_CONTAINS(err, "skipped");
    ptc_jwks_free(set);
    CHECK_EQ(ptc_jwks_count(NULL), 0);
    ptc_jwks_free(NULL);
}

static void test_jwks_parse_refuses_malformed(void)
{
    init();
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[1]}",
        "{\"keys\":[]} x",
        "{\"keys\":[],\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ptc_jwks_t *set = (ptc_jwks_t *)1;
        char err[128] = "";
        CHECK_EQ(ptc_jwks_parse(bad[i], strlen(bad[i]), &set, err, sizeof(err)), PTC_EFORMAT);
        CHECK_NULL(set);
        CHECK(err[0] != '\0');
    }
    /* An empty list is a valid (useless) set. */
    ptc_jwks_t *set = load("{\"keys\":[]}");
    CHECK_EQ(ptc_jwks_count(set), 0);
    ptc_jwks_free(set);
}

static void test_jwks_limits(void)
{
    init();
    size_t cap = PTC_JOSE_MAX_JWKS + 64;
    char *big = malloc(cap);
    CHECK_NOT_NULL(big);
    memset(big, ' ', cap);
    memcpy(big, "{\"keys\":[]}", 11);
    ptc_jwks_t *set = NULL;
    CHECK_EQ(ptc_jwks_parse(big, PTC_JOSE_MAX_JWKS + 1, &set, NULL, 0), PTC_ELIMIT);
    CHECK_NULL(set);
    free(big);

    json_t *keys = json_array();
    for (int i = 0; i <= PTC_JOSE_MAX_KEYS; i++) {
        json_array_append_new(keys, json_pack("{s:s}", "kty", "oct"));
    }
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, JSON_COMPACT);
    CHECK_EQ(ptc_jwks_parse(text, strlen(text), &set, NULL, 0), PTC_ELIMIT);
    free(text);
    json_decref(doc);
}

static void test_jwks_refuses_weak_rsa(void)
{
    init();
    char err[128];
    ptc_jwks_t *set = NULL;
    CHECK_OK(ptc_jwks_parse(JWKS_WEAK, strlen(JWKS_WEAK), &set, err, sizeof(err)));
    CHECK_EQ(ptc_jwks_count(set), 0);
    CHECK_CONTAINS(err, "1024 bits");
    /* The token signed by the weak key finds no key, in the weak set or in the main one. */
    CHECK_EQ(verify(set, TOK_WEAK, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
    set = load(JWKS);
    CHECK_EQ(verify(set, TOK_WEAK, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
}

/* Writes a one-key RSA JWKS into out: the RFC 7515 A.2 key, with n or e spoiled as `which`
 * says (0 leaves it intact). Returns the length. */
static size_t rsa_variant(int which, char *out, size_t cap)
{
    json_t *doc = json_loads(RFC7515_A2_JWKS, 0, NULL);
    CHECK_NOT_NULL(doc);
    json_t *k = json_array_get(json_object_get(doc, "keys"), 0);
    const char *n64 = json_string_value(json_object_get(k, "n"));
    uint8_t n[520];
    size_t nlen;
    CHECK_OK(ptc_jose_b64url_decode(n64, strlen(n64), n + 1, sizeof(n) - 1, &nlen));
    uint8_t *np = n + 1;
    uint8_t e[4] = {0x01, 0x00, 0x01};
    size_t elen = 3;
    switch (which) {
    case 0: /* unchanged */
        break;
    case 1: /* even modulus */
        np[nlen - 1] &= 0xfe;
        break;
    case 2: /* leading zero octet */
        np = n;
        np[0] = 0;
        nlen++;
        break;
    case 3: /* exponent 1 */
        e[0] = 1;
        elen = 1;
        break;
    case 4: /* even exponent */
        e[2] = 0;
        break;
    case 5: /* exponent with a leading zero */
        e[0] = 0;
        e[1] = 1;
        e[2] = 0;
        e[3] = 1;
        elen = 4;
        break;
    case 6: /* 2040-bit modulus: one byte short */
        nlen--;
        np[nlen - 1] |= 1;
        break;
    }
    char n_text[700];
    char e_text[8];
    ptc_jose_b64url_encode(np, nlen, n_text);
    ptc_jose_b64url_encode(e, elen, e_text);
    json_object_set_new(k, "n", json_string(n_text));
    json_object_set_new(k, "e", json_string(e_text));
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t len = strlen(text);
    CHECK_LT(len, cap);
    memcpy(out, text, len + 1);
    free(text);
    json_decref(doc);
    return len;
}

static void test_jwks_rsa_sanity(void)
{
    init();
    char doc[1024];
    for (int which = 0; which <= 6; which++) {
        size_t len = rsa_variant(which, doc, sizeof(doc));
        ptc_jwks_t *set = NULL;
        char err[128];
        CHECK_OK(ptc_jwks_parse(doc, len, &set, err, sizeof(err)));
        CHECK_EQ(ptc_jwks_count(set), which == 0 ? 1 : 0);
        CHECK_EQ(verify(set, RFC7515_A2_TOKEN, ALL_ALGS, err, sizeof(err)),
                 which == 0 ? 0 : PTC_ENOTFOUND);
        ptc_jwks_free(set);
    }
}

static void test_jwks_ec_point_off_curve(void)
{
    init();
    char err[128];
    ptc_jwks_t *set = NULL;
    CHECK_OK(ptc_jwks_parse(JWKS_EC_OFF_CURVE, strlen(JWKS_EC_OFF_CURVE), &set, err, sizeof(err)));
    CHECK_EQ(ptc_jwks_count(set), 0);
    CHECK_CONTAINS(err, "not on P-256");
    CHECK_EQ(verify(set, TOK_ES256, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
    /* Short coordinates are refused too (RFC 7518 §6.2.1.2: full length). */
    static const char short_x[] =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":"
        "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
    set = load(short_x);
    CHECK_EQ(ptc_jwks_count(set), 0);
    ptc_jwks_free(set);
}

static void test_jwks_skips_odd_keys(void)
{
    init();
    static const char *const skipped[] = {
        /* private key material */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
        "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\"}]}",
        /* key_ops without verify */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
        "\"key_ops\":[\"encrypt\"]}]}",
        /* kid not a string */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
        "\"kid\":5}]}",
        /* Ed25519 key of 31 bytes */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHUQ\"}]}",
        /* Ed25519 small-order point (the identity) */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
        /* no kty */
        "{\"keys\":[{\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
        /* padded base64 */
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",
    };
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++) {
        ptc_jwks_t *set = load(skipped[i]);
        CHECK_EQ(ptc_jwks_count(set), 0);
        ptc_jwks_free(set);
    }
    /* A second key with a kid already taken is skipped: the first one stays. */
    ptc_jwks_t *set =
        load("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":"
             "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},{\"kty\":\"OKP\",\"crv\":"
             "\"Ed25519\",\"kid\":\"a\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}");
    CHECK_EQ(ptc_jwks_count(set), 1);
    ptc_jwks_free(set);
}

/* ---- verification: RFC examples ---- */

static void test_verify_rfc7515_a2_rs256(void)
{
    init();
    ptc_jwks_t *set = load(RFC7515_A2_JWKS);
    ptc_jwt_t jwt;
    char err[128];
    CHECK_OK(ptc_jwt_verify(RFC7515_A2_TOKEN, strlen(RFC7515_A2_TOKEN), set, PTC_JOSE_RS256, &jwt,
                            err, sizeof(err)));
    CHECK_EQ(jwt.alg, PTC_JOSE_RS256);
    CHECK_STREQ(json_string_value(json_object_get(jwt.claims, "iss")), "joe");
    CHECK_EQ(json_integer_value(json_object_get(jwt.claims, "exp")), 1300819380);
    CHECK(json_is_true(json_object_get(jwt.claims, "http://example.com/is_root")));
    ptc_jwt_dispose(&jwt);
    /* Not in the mask: refused. */
    CHECK_EQ(verify(set, RFC7515_A2_TOKEN, PTC_JOSE_ES256 | PTC_JOSE_EDDSA, err, sizeof(err)),
             PTC_EAUTH);
    ptc_jwks_free(set);
}

static void test_verify_rfc7515_a3_es256(void)
{
    init();
    ptc_jwks_t *set = load(RFC7515_A3_JWKS);
    ptc_jwt_t jwt;
    char err[128];
    CHECK_OK(ptc_jwt_verify(RFC7515_A3_TOKEN, strlen(RFC7515_A3_TOKEN), set, PTC_JOSE_ES256, &jwt,
                            err, sizeof(err)));
    CHECK_EQ(jwt.alg, PTC_JOSE_ES256);
    CHECK_STREQ(json_string_value(json_object_get(jwt.claims, "iss")), "joe");
    ptc_jwt_dispose(&jwt);
    /* The A.2 token names RS256, and the only key is EC: nothing fits. */
    CHECK_EQ(verify(set, RFC7515_A2_TOKEN, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
}

static void test_verify_rfc8037_ed25519(void)
{
    init();
    /* A.1/A.2: the public key derived from d is x. */
    uint8_t seed[32];
    size_t len;
    CHECK_OK(ptc_jose_b64url_decode(RFC8037_D, strlen(RFC8037_D), seed, sizeof(seed), &len));
    CHECK_EQ(len, 32);
    uint8_t pk[32];
    uint8_t sk[64];
    CHECK_EQ(crypto_sign_seed_keypair(pk, sk, seed), 0);
    json_t *jwk = ptc_jwk_ed25519(pk, NULL);
    CHECK_STREQ(json_string_value(json_object_get(jwk, "x")), RFC8037_X);
    CHECK_STREQ(json_string_value(json_object_get(jwk, "x")),
                "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    CHECK_NULL(json_object_get(jwk, "kid"));
    json_decref(jwk);

    /* A.4: the signature over the RFC's signing input is reproduced exactly. */
    const char *dot2 = strrchr(RFC8037_TOKEN, '.');
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)RFC8037_TOKEN, (size_t)(dot2 - RFC8037_TOKEN),
                         sk);
    char sig_text[90];
    ptc_jose_b64url_encode(sig, sizeof(sig), sig_text);
    CHECK_STREQ(sig_text, dot2 + 1);

    /* A.5: validation. The payload is the text "Example of Ed25519 signing", not a JSON
     * object, so after the signature verifies the token is refused as malformed; a changed
     * signature is refused as not authentic first. */
    ptc_jwks_t *set = load(RFC8037_JWKS);
    char err[128];
    CHECK_EQ(verify(set, RFC8037_TOKEN, PTC_JOSE_EDDSA, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "payload");
    char bad[sizeof(RFC8037_TOKEN)];
    memcpy(bad, RFC8037_TOKEN, sizeof(bad));
    size_t at = (size_t)(dot2 - RFC8037_TOKEN) + 5;
    bad[at] = bad[at] == 'A' ? 'B' : 'A';
    CHECK_EQ(verify(set, bad, PTC_JOSE_EDDSA, err, sizeof(err)), PTC_EAUTH);
    ptc_jwks_free(set);
    sodium_memzero(sk, sizeof(sk));
}

/* ---- verification: generated tokens ---- */

static void test_verify_valid_each_alg(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    static const struct {
        const char *tok;
        int alg;
        const char *kid;
    } cases[] = {
        {TOK_RS256, PTC_JOSE_RS256, "rsa1"},
        {TOK_ES256, PTC_JOSE_ES256, "ec1"},
        {TOK_EDDSA, PTC_JOSE_EDDSA, "ed1"},
    };
    for (size_t i = 0; i < 3; i++) {
        ptc_jwt_t jwt;
        char err[128];
        CHECK_OK(ptc_jwt_verify(cases[i].tok, strlen(cases[i].tok), set, ALL_ALGS, &jwt, err,
                                sizeof(err)));
        CHECK_STREQ(err, "");
        CHECK_EQ(jwt.alg, cases[i].alg);
        CHECK_STREQ(json_string_value(json_object_get(jwt.header, "kid")), cases[i].kid);
        CHECK_STREQ(json_string_value(json_object_get(jwt.claims, "sub")), "alice");
        CHECK_STREQ(json_string_value(json_object_get(jwt.claims, "nonce")), "n-1");
        CHECK_EQ(json_integer_value(json_object_get(jwt.claims, "exp")), 2000000000);
        ptc_jwt_dispose(&jwt);
        CHECK_NULL(jwt.claims);
        /* The same token with only its own algorithm in the mask, and without it. */
        CHECK_OK(verify(set, cases[i].tok, (unsigned)cases[i].alg, err, sizeof(err)));
        CHECK_EQ(verify(set, cases[i].tok, ALL_ALGS & ~(unsigned)cases[i].alg, err, sizeof(err)),
                 PTC_EAUTH);
        CHECK_CONTAINS(err, "alg refused");
    }
    ptc_jwks_free(set);
}

static void test_verify_tampered(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    static const char *const toks[] = {
        TOK_RS256_BAD_PAYLOAD, TOK_ES256_BAD_PAYLOAD, TOK_EDDSA_BAD_PAYLOAD,
        TOK_RS256_BAD_SIG,     TOK_ES256_BAD_SIG,     TOK_EDDSA_BAD_SIG,
    };
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        char err[128];
        CHECK_EQ(verify(set, toks[i], ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
        CHECK_STREQ(err, "bad signature");
    }
    ptc_jwks_free(set);
}

static void test_verify_refuses_none_and_hmac(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    char err[128];
    CHECK_EQ(verify(set, TOK_NONE, ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
    CHECK_CONTAINS(err, "alg refused");
    /* Even with every bit of the mask set. */
    CHECK_EQ(verify(set, TOK_NONE, ~0u, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(verify(set, TOK_HS256, ~0u, err, sizeof(err)), PTC_EAUTH);
    CHECK_CONTAINS(err, "alg refused");
    CHECK_EQ(verify(set, TOK_RS384, ~0u, err, sizeof(err)), PTC_EAUTH);
    /* "none" with a signature appended is refused the same way. */
    char with_sig[sizeof(TOK_NONE) + 8];
    snprintf(with_sig, sizeof(with_sig), "%sAAAA", TOK_NONE);
    CHECK_EQ(verify(set, with_sig, ~0u, err, sizeof(err)), PTC_EAUTH);
    ptc_jwks_free(set);
}

static void test_verify_key_type_mismatch(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    char err[128];
    /* RS256 header naming the EC key. */
    CHECK_EQ(verify(set, TOK_RS256_EC_KID, ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
    CHECK_CONTAINS(err, "key type");
    ptc_jwks_free(set);
}

static void test_verify_unknown_kid(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    char err[128];
    CHECK_EQ(verify(set, TOK_UNKNOWN_KID, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "kid");
    ptc_jwks_free(set);
    /* An empty set (a provider between rotations) answers ENOTFOUND too. */
    set = load("{\"keys\":[]}");
    CHECK_EQ(verify(set, TOK_RS256, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
}

static void test_verify_without_kid(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    char err[128];
    /* One EC key: it is the one. */
    CHECK_OK(verify(set, TOK_ES256_NOKID, ALL_ALGS, err, sizeof(err)));
    /* Two RSA keys, but rsa384's own alg is RS384, so only rsa1 fits RS256. */
    CHECK_OK(verify(set, TOK_RS256_NOKID, ALL_ALGS, err, sizeof(err)));
    ptc_jwks_free(set);
    /* Two RSA keys without alg: ambiguous, refused. */
    set = load(JWKS_TWO_RSA);
    CHECK_EQ(ptc_jwks_count(set), 2);
    CHECK_EQ(verify(set, TOK_RS256_NOKID, ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
    CHECK_CONTAINS(err, "several keys");
    ptc_jwks_free(set);
    /* No EC key at all. */
    set = load(RFC7515_A2_JWKS);
    CHECK_EQ(verify(set, TOK_ES256_NOKID, ALL_ALGS, err, sizeof(err)), PTC_ENOTFOUND);
    ptc_jwks_free(set);
}

static void test_verify_key_alg_disagrees(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    char err[128];
    /* Correctly signed by rsa384's key, but that key says RS384. */
    CHECK_EQ(verify(set, TOK_KEY_ALG_MISMATCH, ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
    CHECK_CONTAINS(err, "alg differs");
    ptc_jwks_free(set);
}

static void test_verify_refuses_malformed(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    static const struct {
        const char *tok;
        int rc;
    } cases[] = {
        {TOK_CRIT, PTC_EFORMAT},
        {TOK_ES256_DER, PTC_EAUTH},
        {TOK_PAYLOAD_ARRAY, PTC_EFORMAT},
        {TOK_HEADER_DUP, PTC_EFORMAT},
        {TOK_PAYLOAD_DUP, PTC_EFORMAT},
        {TOK_PAYLOAD_TRAILING, PTC_EFORMAT},
        {TOK_HEADER_STRING, PTC_EFORMAT},
        {TOK_ALG_NUMBER, PTC_EFORMAT},
        {TOK_KID_NUMBER, PTC_EFORMAT},
        {"", PTC_EFORMAT},
        {"..", PTC_EFORMAT},
        {"a.b", PTC_EFORMAT},
        {"a.b.c.d", PTC_EFORMAT},
        {"eyJhbGciOiJFZERTQSJ9..AAAA", PTC_EFORMAT},
        {"eyJhbGciOiJFZERTQSJ9.e30.", PTC_EFORMAT},
        {"eyJhbGciOiJFZERTQSJ9.e30=.AAAA", PTC_EFORMAT},
        {"eyJhbGciOiJFZERTQSJ9 .e30.AAAA", PTC_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[128];
        int rc = verify(set, cases[i].tok, ALL_ALGS, err, sizeof(err));
        if (rc != cases[i].rc) {
            ptc_test_diag("case %zu: %d (%s)", i, rc, err);
        }
        CHECK_EQ(rc, cases[i].rc);
    }
    /* Trailing bytes after a valid token. */
    static const char *const tails[] = {".", "=", " ", "\n", ".e30", "\0"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        char buf[2048];
        size_t n = strlen(TOK_EDDSA);
        memcpy(buf, TOK_EDDSA, n);
        size_t tl = tails[i][0] == '\0' ? 1 : strlen(tails[i]);
        memcpy(buf + n, tails[i], tl);
        ptc_jwt_t jwt;
        CHECK_EQ(ptc_jwt_verify(buf, n + tl, set, ALL_ALGS, &jwt, NULL, 0), PTC_EFORMAT);
    }
    /* An ES256 signature of 63 or 65 bytes. */
    const char *dot2 = strrchr(TOK_ES256, '.');
    size_t head = (size_t)(dot2 - TOK_ES256) + 1;
    uint8_t sig[80];
    size_t sig_len;
    CHECK_OK(ptc_jose_b64url_decode(dot2 + 1, strlen(dot2 + 1), sig, sizeof(sig), &sig_len));
    CHECK_EQ(sig_len, 64);
    for (size_t len = 63; len <= 65; len += 2) {
        char buf[1024];
        memcpy(buf, TOK_ES256, head);
        sig[64] = 0;
        ptc_jose_b64url_encode(sig, len, buf + head);
        char err[128];
        CHECK_EQ(verify(set, buf, ALL_ALGS, err, sizeof(err)), PTC_EAUTH);
    }
    ptc_jwks_free(set);
}

static void test_verify_oversized(void)
{
    init();
    ptc_jwks_t *set = load(JWKS);
    size_t len = PTC_JOSE_MAX_TOKEN + 1;
    char *tok = malloc(len);
    CHECK_NOT_NULL(tok);
    memset(tok, 'A', len);
    tok[10] = '.';
    tok[20] = '.';
    ptc_jwt_t jwt;
    char err[128];
    CHECK_EQ(ptc_jwt_verify(tok, len, set, ALL_ALGS, &jwt, err, sizeof(err)), PTC_ELIMIT);
    CHECK_NULL(jwt.header);
    free(tok);
    ptc_jwks_free(set);
}

/* ---- signing ---- */

static void test_sign_matches_node(void)
{
    init();
    uint8_t seed[32];
    size_t len;
    CHECK_OK(ptc_jose_b64url_decode(RFC8037_D, strlen(RFC8037_D), seed, sizeof(seed), &len));
    uint8_t pk[32];
    uint8_t sk[64];
    CHECK_EQ(crypto_sign_seed_keypair(pk, sk, seed), 0);
    json_t *claims = json_pack("{s:s, s:i}", "sub", "alice", "n", 1);
    char *tok = NULL;
    CHECK_OK(ptc_jwt_sign_eddsa(claims, "k1", sk, &tok));
    /* Ed25519 is deterministic: the same bytes as Node's crypto.sign. */
    CHECK_STREQ(tok, TOK_SIGN_EXPECTED);
    free(tok);
    json_decref(claims);
    /* Claims must be an object. */
    json_t *arr = json_array();
    tok = (char *)1;
    CHECK_EQ(ptc_jwt_sign_eddsa(arr, "k1", sk, &tok), PTC_EFORMAT);
    CHECK_NULL(tok);
    json_decref(arr);
    sodium_memzero(sk, sizeof(sk));
}

static void test_sign_verify_round_trip(void)
{
    init();
    uint8_t pk[32];
    uint8_t sk[64];
    crypto_sign_keypair(pk, sk);
    json_t *jwk = ptc_jwk_ed25519(pk, "edge-1");
    CHECK_NOT_NULL(jwk);
    CHECK_STREQ(json_string_value(json_object_get(jwk, "kty")), "OKP");
    CHECK_STREQ(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
    CHECK_STREQ(json_string_value(json_object_get(jwk, "kid")), "edge-1");
    CHECK_STREQ(json_string_value(json_object_get(jwk, "alg")), "EdDSA");
    CHECK_STREQ(json_string_value(json_object_get(jwk, "use")), "sig");
    CHECK_EQ(json_object_size(jwk), 6);
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ptc_jwks_t *set = load(text);
    free(text);
    CHECK_EQ(ptc_jwks_count(set), 1);

    json_t *claims = json_pack("{s:s, s:s, s:s, s:[s,s], s:I, s:I}", "iss", "https://edge.example",
                               "aud", "wiki", "sub", "alice", "groups", "eng", "ops", "iat",
                               (json_int_t)1700000000, "exp", (json_int_t)1700000060);
    char *tok = NULL;
    CHECK_OK(ptc_jwt_sign_eddsa(claims, "edge-1", sk, &tok));
    ptc_jwt_t jwt;
    char err[128];
    CHECK_OK(ptc_jwt_verify(tok, strlen(tok), set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)));
    CHECK_EQ(jwt.alg, PTC_JOSE_EDDSA);
    CHECK(json_equal(jwt.claims, claims));
    CHECK_STREQ(json_string_value(json_object_get(jwt.header, "typ")), "JWT");
    CHECK_STREQ(json_string_value(json_object_get(jwt.header, "kid")), "edge-1");
    ptc_jwt_dispose(&jwt);
    /* Only EdDSA accepted by the caller: still fine; RS256 only: refused. */
    CHECK_EQ(ptc_jwt_verify(tok, strlen(tok), set, PTC_JOSE_RS256, &jwt, err, sizeof(err)),
             PTC_EAUTH);
    free(tok);

    /* Without a kid the header has none, and the single Ed25519 key is picked. */
    CHECK_OK(ptc_jwt_sign_eddsa(claims, NULL, sk, &tok));
    CHECK_OK(ptc_jwt_verify(tok, strlen(tok), set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)));
    CHECK_NULL(json_object_get(jwt.header, "kid"));
    ptc_jwt_dispose(&jwt);
    free(tok);

    /* Another key pair's signature does not verify. */
    uint8_t pk2[32];
    uint8_t sk2[64];
    crypto_sign_keypair(pk2, sk2);
    CHECK_OK(ptc_jwt_sign_eddsa(claims, "edge-1", sk2, &tok));
    CHECK_EQ(ptc_jwt_verify(tok, strlen(tok), set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)),
             PTC_EAUTH);
    free(tok);

    /* Claims too large for a token. */
    json_t *big = json_object();
    char *blob = malloc(PTC_JOSE_MAX_TOKEN);
    CHECK_NOT_NULL(blob);
    memset(blob, 'x', PTC_JOSE_MAX_TOKEN - 1);
    blob[PTC_JOSE_MAX_TOKEN - 1] = '\0';
    json_object_set_new(big, "pad", json_string(blob));
    free(blob);
    tok = NULL;
    CHECK_EQ(ptc_jwt_sign_eddsa(big, "edge-1", sk, &tok), PTC_ELIMIT);
    CHECK_NULL(tok);
    json_decref(big);

    json_decref(claims);
    ptc_jwks_free(set);
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(sk2, sizeof(sk2));
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_b64url_rfc4648_vectors),
    PTC_TEST(test_b64url_url_alphabet),
    PTC_TEST(test_b64url_refuses_invalid),
    PTC_TEST(test_jwks_parse_skips_unsupported),
    PTC_TEST(test_jwks_parse_refuses_malformed),
    PTC_TEST(test_jwks_limits),
    PTC_TEST(test_jwks_refuses_weak_rsa),
    PTC_TEST(test_jwks_rsa_sanity),
    PTC_TEST(test_jwks_ec_point_off_curve),
    PTC_TEST(test_jwks_skips_odd_keys),
    PTC_TEST(test_verify_rfc7515_a2_rs256),
    PTC_TEST(test_verify_rfc7515_a3_es256),
    PTC_TEST(test_verify_rfc8037_ed25519),
    PTC_TEST(test_verify_valid_each_alg),
    PTC_TEST(test_verify_tampered),
    PTC_TEST(test_verify_refuses_none_and_hmac),
    PTC_TEST(test_verify_key_type_mismatch),
    PTC_TEST(test_verify_unknown_kid),
    PTC_TEST(test_verify_without_kid),
    PTC_TEST(test_verify_key_alg_disagrees),
    PTC_TEST(test_verify_refuses_malformed),
    PTC_TEST(test_verify_oversized),
    PTC_TEST(test_sign_matches_node),
    PTC_TEST(test_sign_verify_round_trip),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
