/* The R10 result envelope and base64. CBC is byte-for-byte what the seed's
 * Python decrypt_response expects: key = SHA-256(secret_key), payload =
 * base64(IV(16) || AES-256-CBC(PKCS7(json))). CBC has no integrity (a relay
 * can flip IV bits and so rewrite the first block), hence the GCM option:
 * base64(nonce(12) || ciphertext || tag(16)) under the same key, no AAD. */
#include "crypto/crypto.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "base/alloc.h"

#define CBC_IV 16
#define GCM_NONCE 12
#define GCM_TAG 16

const char *crypto_method_name(enum crypto_method m)
{
    return m == CRYPTO_AES_256_GCM ? "AES-256-GCM" : "AES-256-CBC";
}

enum fa_status crypto_method_parse(const char *s, enum crypto_method *out)
{
    if (s == NULL)
        return FA_ERR_ARG;
    if (strcasecmp(s, "cbc") == 0 || strcasecmp(s, "AES-256-CBC") == 0) {
        *out = CRYPTO_AES_256_CBC;
        return FA_OK;
    }
    if (strcasecmp(s, "gcm") == 0 || strcasecmp(s, "AES-256-GCM") == 0) {
        *out = CRYPTO_AES_256_GCM;
        return FA_OK;
    }
    return FA_ERR_ARG;
}

void crypto_result_key(const char *secret_key, uint8_t key[CRYPTO_KEY_BYTES])
{
    SHA256((const unsigned char *)secret_key, strlen(secret_key), key);
}

void crypto_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* ---- base64 ---------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

enum fa_status crypto_b64_encode(struct fa_bytes in, bool url, struct fa_buf *out)
{
    const char *tab = url ? B64URL : B64;
    size_t groups = in.n / 3 + (in.n % 3 != 0);
    size_t len;
    if (__builtin_mul_overflow(groups, 4, &len))
        return FA_ERR_NOMEM;
    enum fa_status rc = fa_buf_reserve(out, len);
    if (rc != FA_OK)
        return rc;
    char *o = (char *)out->p + out->n;
    size_t i = 0, k = 0;
    for (; i + 3 <= in.n; i += 3) {
        uint32_t v = (uint32_t)in.p[i] << 16 | (uint32_t)in.p[i + 1] << 8 | in.p[i + 2];
        o[k++] = tab[v >> 18 & 63];
        o[k++] = tab[v >> 12 & 63];
        o[k++] = tab[v >> 6 & 63];
        o[k++] = tab[v & 63];
    }
    if (in.n - i == 1) {
        uint32_t v = (uint32_t)in.p[i] << 16;
        o[k++] = tab[v >> 18 & 63];
        o[k++] = tab[v >> 12 & 63];
        if (!url) {
            o[k++] = '=';
            o[k++] = '=';
        }
    } else if (in.n - i == 2) {
        uint32_t v = (uint32_t)in.p[i] << 16 | (uint32_t)in.p[i + 1] << 8;
        o[k++] = tab[v >> 18 & 63];
        o[k++] = tab[v >> 12 & 63];
        o[k++] = tab[v >> 6 & 63];
        if (!url)
            o[k++] = '=';
    }
    out->n += k;
    out->p[out->n] = 0;
    return FA_OK;
}

static int b64_val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

enum fa_status crypto_b64_decode(struct fa_bytes in, struct fa_buf *out)
{
    size_t n = in.n;
    /* Up to two '=' of padding, only at the end, only to complete a quad. */
    size_t pad = 0;
    while (n > 0 && in.p[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad > 0 && (n + pad) % 4 != 0)
        return FA_ERR_B64;
    if (n % 4 == 1)
        return FA_ERR_B64;
    enum fa_status rc = fa_buf_reserve(out, n / 4 * 3 + 2);
    if (rc != FA_OK)
        return rc;
    uint8_t *o = out->p + out->n;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(in.p[i]);
        if (v < 0)
            return FA_ERR_B64;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-canonical trailing bits */
        return FA_ERR_B64;
    out->n += k;
    out->p[out->n] = 0;
    return FA_OK;
}

/* ---- AES ------------------------------------------------------------------- */

static enum fa_status seal_cbc(const uint8_t key[CRYPTO_KEY_BYTES], struct fa_bytes plain,
                               uint8_t *dst, size_t *dst_n)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    enum fa_status rc = FA_ERR_CRYPTO;
    int l1 = 0, l2 = 0;
    if (ctx == NULL)
        return FA_ERR_NOMEM;
    if (crypto_random(dst, CBC_IV) != FA_OK)
        goto out;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, dst) != 1) /* PKCS7 on */
        goto out;
    if (EVP_EncryptUpdate(ctx, dst + CBC_IV, &l1, plain.p, (int)plain.n) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, dst + CBC_IV + l1, &l2) != 1)
        goto out;
    *dst_n = CBC_IV + (size_t)l1 + (size_t)l2;
    rc = FA_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static enum fa_status seal_gcm(const uint8_t key[CRYPTO_KEY_BYTES], struct fa_bytes plain,
                               uint8_t *dst, size_t *dst_n)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    enum fa_status rc = FA_ERR_CRYPTO;
    int l1 = 0, l2 = 0;
    if (ctx == NULL)
        return FA_ERR_NOMEM;
    if (crypto_random(dst, GCM_NONCE) != FA_OK)
        goto out;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, dst) != 1)
        goto out;
    if (EVP_EncryptUpdate(ctx, dst + GCM_NONCE, &l1, plain.p, (int)plain.n) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, dst + GCM_NONCE + l1, &l2) != 1)
        goto out;
    size_t ct = (size_t)l1 + (size_t)l2;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, dst + GCM_NONCE + ct) != 1)
        goto out;
    *dst_n = GCM_NONCE + ct + GCM_TAG;
    rc = FA_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

enum fa_status crypto_envelope_seal(enum crypto_method m, const uint8_t key[CRYPTO_KEY_BYTES],
                                    struct fa_bytes plain, struct fa_buf *out)
{
    if (plain.n > (1u << 30))
        return FA_ERR_TOO_LARGE;
    size_t cap = plain.n + 64, n = 0;
    uint8_t *raw = fa_malloc(cap);
    if (raw == NULL)
        return FA_ERR_NOMEM;
    enum fa_status rc =
        m == CRYPTO_AES_256_GCM ? seal_gcm(key, plain, raw, &n) : seal_cbc(key, plain, raw, &n);
    if (rc == FA_OK)
        rc = crypto_b64_encode(fa_bytes_of(raw, n), false, out);
    fa_free(raw);
    return rc;
}

enum fa_status crypto_envelope_open(enum crypto_method m, const uint8_t key[CRYPTO_KEY_BYTES],
                                    struct fa_bytes b64, struct fa_buf *out)
{
    struct fa_buf raw = {0};
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *pt = NULL;
    size_t ptcap = 0;
    int l1 = 0, l2 = 0;
    enum fa_status rc = crypto_b64_decode(b64, &raw);
    if (rc != FA_OK) {
        rc = rc == FA_ERR_NOMEM ? rc : FA_ERR_DECRYPT;
        goto out;
    }
    rc = FA_ERR_DECRYPT;
    if (raw.n > (1u << 30))
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    ptcap = raw.n + 32;
    pt = fa_malloc(ptcap);
    if (ctx == NULL || pt == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    if (m == CRYPTO_AES_256_GCM) {
        if (raw.n < GCM_NONCE + GCM_TAG)
            goto out;
        size_t ct = raw.n - GCM_NONCE - GCM_TAG;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw.p) != 1 ||
            EVP_DecryptUpdate(ctx, pt, &l1, raw.p + GCM_NONCE, (int)ct) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, raw.p + GCM_NONCE + ct) != 1 ||
            EVP_DecryptFinal_ex(ctx, pt + l1, &l2) != 1)
            goto out;
    } else {
        if (raw.n < CBC_IV + 16 || (raw.n - CBC_IV) % 16 != 0)
            goto out;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, raw.p) != 1 ||
            EVP_DecryptUpdate(ctx, pt, &l1, raw.p + CBC_IV, (int)(raw.n - CBC_IV)) != 1 ||
            EVP_DecryptFinal_ex(ctx, pt + l1, &l2) != 1)
            goto out;
    }
    rc = fa_buf_append(out, pt, (size_t)l1 + (size_t)l2);
out:
    if (pt != NULL)
        crypto_wipe(pt, ptcap);
    fa_free(pt);
    EVP_CIPHER_CTX_free(ctx);
    fa_buf_fini(&raw);
    return rc;
}
