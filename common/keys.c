/* SPDX-License-Identifier: MIT */
/*
 * Keys and encodings (see keys.h), all on libsodium, whose base64 codec already implements
 * RFC 4648's URL-safe alphabet and whose comparisons run in constant time.
 */
#include "common/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ptc_keys_init(void)
{
    return sodium_init() < 0 ? PTC_ECRYPTO : 0;
}

void ptc_ed25519_generate(ptc_ed25519_key_t *key)
{
    crypto_sign_keypair(key->pk, key->sk);
}

void ptc_ed25519_from_seed(ptc_ed25519_key_t *key, const uint8_t seed[32])
{
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
}

void ptc_ed25519_sign(const ptc_ed25519_key_t *key, const uint8_t *msg, size_t len,
                      uint8_t sig[PTC_ED25519_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, msg, len, key->sk);
}

int ptc_ed25519_verify(const uint8_t pk[PTC_ED25519_PK_LEN], const uint8_t *msg, size_t len,
                       const uint8_t sig[PTC_ED25519_SIG_LEN])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : PTC_ECRYPTO;
}

void ptc_sha256(const void *p, size_t len, uint8_t out[PTC_SHA256_LEN])
{
    crypto_hash_sha256(out, p, len);
}

void ptc_random_bytes(void *p, size_t len)
{
    randombytes_buf(p, len);
}

int ptc_random_token(const char *prefix, size_t nbytes, char *out, size_t cap)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    if (nbytes > 128 || cap < plen + ptc_b64url_len(nbytes) + 1) {
        return PTC_ELIMIT;
    }
    uint8_t raw[128];
    randombytes_buf(raw, nbytes);
    memcpy(out, prefix != NULL ? prefix : "", plen);
    int rc = ptc_b64url_encode(raw, nbytes, out + plen, cap - plen);
    sodium_memzero(raw, sizeof(raw));
    return rc < 0 ? rc : 0;
}

bool ptc_consttime_eq(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void ptc_keys_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}

size_t ptc_b64url_len(size_t len)
{
    return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

int ptc_b64url_encode(const void *p, size_t len, char *out, size_t cap)
{
    size_t need = ptc_b64url_len(len);
    if (cap < need + 1) {
        return PTC_ELIMIT;
    }
    /* For the unpadded variant libsodium's size is exactly need + 1. */
    sodium_bin2base64(out, cap, p, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return (int)need;
}

int ptc_b64url_decode(const char *text, size_t text_len, uint8_t *out, size_t cap, size_t *out_len)
{
    /* Accept optional trailing '=' padding by stripping it; the no-padding variant then
     * refuses anything else that is not in the alphabet. */
    while (text_len > 0 && text[text_len - 1] == '=') {
        text_len--;
    }
    if (text_len % 4 == 1) {
        return PTC_EFORMAT;
    }
    size_t need = text_len / 4 * 3 + (text_len % 4 == 0 ? 0 : text_len % 4 - 1);
    if (need > cap) {
        return PTC_ELIMIT;
    }
    const char *end = NULL;
    size_t n = 0;
    if (sodium_base642bin(out, cap, text, text_len, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text + text_len) {
        return PTC_EFORMAT;
    }
    *out_len = n;
    return 0;
}

int ptc_hex_encode(const void *p, size_t len, char *out, size_t cap)
{
    if (cap < len * 2 + 1) {
        return PTC_ELIMIT;
    }
    sodium_bin2hex(out, cap, p, len);
    return 0;
}

int ptc_keys_write_secret_file(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    if (fchmod(fd, 0600) != 0) {
        rc = -errno;
        goto fail;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return rc;
}
