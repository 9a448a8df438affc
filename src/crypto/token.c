/* CSPRNG bytes, url-safe tokens, UUIDs and hashing helpers. Tokens are
 * base64url of RAND_bytes output (>= 128 bits), so they are safe in URLs
 * (the WebSocket path) without escaping. */
#include "crypto/crypto.h"

#include <stdio.h>
#include <string.h>

#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

enum fa_status crypto_random(void *p, size_t n)
{
    if (n == 0)
        return FA_OK;
    if (n > (size_t)1 << 30)
        return FA_ERR_ARG;
    return RAND_bytes(p, (int)n) == 1 ? FA_OK : FA_ERR_CRYPTO;
}

enum fa_status crypto_token(size_t nbytes, char *out, size_t outsz)
{
    uint8_t raw[48];
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (nbytes < 16 || nbytes > sizeof raw || outsz < (nbytes * 4 + 2) / 3 + 1)
        return FA_ERR_ARG;
    enum fa_status rc = crypto_random(raw, nbytes);
    if (rc != FA_OK)
        return rc;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < nbytes; i++) {
        acc = acc << 8 | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[k++] = tab[acc >> bits & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[k++] = tab[(acc << (6 - bits)) & 63];
    out[k] = 0;
    crypto_wipe(raw, sizeof raw);
    return FA_OK;
}

enum fa_status crypto_uuid(char out[37])
{
    uint8_t b[16];
    enum fa_status rc = crypto_random(b, sizeof b);
    if (rc != FA_OK)
        return rc;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return FA_OK;
}

void crypto_sha256(const void *p, size_t n, uint8_t out[32])
{
    SHA256(p, n, out);
}

void crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)keylen, p, n, out, &len);
}

void crypto_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = 0;
}
