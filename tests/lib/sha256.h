/* A small SHA-256 (FIPS 180-4) for tests only, so that checking decoded
 * pixels against the reference hashes needs no OpenSSL in fa_img's tests. */
#ifndef FA_TESTS_SHA256_H
#define FA_TESTS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct tu_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
};

void tu_sha256_init(struct tu_sha256 *s);
void tu_sha256_update(struct tu_sha256 *s, const void *p, size_t n);
void tu_sha256_final(struct tu_sha256 *s, uint8_t out[32]);
/* One-shot digest as 64 lower-case hex characters plus NUL. */
void tu_sha256_hex(const void *p, size_t n, char out[65]);

#endif
