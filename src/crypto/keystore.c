/* The server master key and sealing of data at rest. The key comes from the
 * caller, $FACEAUTH_MASTER_KEY or data_dir/master.key (32 raw bytes, mode
 * 0600, made on first start). Sealed records are 0x01 || nonce(12) ||
 * AES-256-GCM ciphertext || tag(16) with caller-chosen AAD that binds a record
 * to its owner, so a sealed template moved to another row fails to open. */
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/alloc.h"

#define SEAL_VERSION 0x01
#define NONCE 12
#define TAG 16

struct crypto_keystore {
    uint8_t key[CRYPTO_KEY_BYTES];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 64 hex chars or base64 (either alphabet) of exactly 32 bytes. */
static enum fa_status parse_key_text(const char *s, uint8_t key[CRYPTO_KEY_BYTES])
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n == 64) {
        bool ok = true;
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                ok = false;
                break;
            }
            key[i] = (uint8_t)(hi << 4 | lo);
        }
        if (ok)
            return FA_OK;
    }
    struct fa_buf raw = {0};
    enum fa_status rc = crypto_b64_decode(fa_bytes_of(s, n), &raw);
    if (rc == FA_OK && raw.n != CRYPTO_KEY_BYTES)
        rc = FA_ERR_ARG;
    if (rc == FA_OK)
        memcpy(key, raw.p, CRYPTO_KEY_BYTES);
    else if (rc != FA_ERR_NOMEM)
        rc = FA_ERR_ARG;
    crypto_wipe(raw.p, raw.cap);
    fa_buf_fini(&raw);
    return rc;
}

static enum fa_status read_key_file(const char *path, uint8_t key[CRYPTO_KEY_BYTES],
                                    struct fa_errinfo *info)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return FA_ERR_NOT_FOUND;
        fa_errinfo_set(info, "%s: %s", path, strerror(errno));
        return FA_ERR_IO;
    }
    struct stat st;
    enum fa_status rc = FA_ERR_IO;
    if (fstat(fd, &st) != 0) {
        fa_errinfo_set(info, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        fa_errinfo_set(info, "%s: readable by group or others (chmod 600 it)", path);
        rc = FA_ERR_FORBIDDEN;
        goto out;
    }
    if (st.st_size != CRYPTO_KEY_BYTES) {
        fa_errinfo_set(info, "%s: not %d bytes", path, CRYPTO_KEY_BYTES);
        rc = FA_ERR_ARG;
        goto out;
    }
    ssize_t got = read(fd, key, CRYPTO_KEY_BYTES);
    if (got != CRYPTO_KEY_BYTES) {
        fa_errinfo_set(info, "%s: short read", path);
        goto out;
    }
    rc = FA_OK;
out:
    close(fd);
    return rc;
}

static enum fa_status create_key_file(const char *path, uint8_t key[CRYPTO_KEY_BYTES],
                                      struct fa_errinfo *info)
{
    enum fa_status rc = crypto_random(key, CRYPTO_KEY_BYTES);
    if (rc != FA_OK)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST) /* lost a race with another process: use its key */
            return read_key_file(path, key, info);
        fa_errinfo_set(info, "%s: %s", path, strerror(errno));
        return FA_ERR_IO;
    }
    rc = FA_OK;
    if (write(fd, key, CRYPTO_KEY_BYTES) != CRYPTO_KEY_BYTES || fsync(fd) != 0) {
        fa_errinfo_set(info, "%s: %s", path, strerror(errno));
        rc = FA_ERR_IO;
    }
    close(fd);
    if (rc != FA_OK)
        unlink(path);
    return rc;
}

enum fa_status crypto_keystore_from_key(const uint8_t key[CRYPTO_KEY_BYTES],
                                        struct crypto_keystore **out)
{
    struct crypto_keystore *ks = fa_malloc(sizeof *ks);
    if (ks == NULL)
        return FA_ERR_NOMEM;
    memcpy(ks->key, key, CRYPTO_KEY_BYTES);
    *out = ks;
    return FA_OK;
}

enum fa_status crypto_keystore_open(const char *data_dir, const char *key_text,
                                    struct crypto_keystore **out, struct fa_errinfo *info)
{
    uint8_t key[CRYPTO_KEY_BYTES];
    enum fa_status rc;
    const char *env = getenv("FACEAUTH_MASTER_KEY");
    if (key_text != NULL) {
        rc = parse_key_text(key_text, key);
        if (rc == FA_ERR_ARG)
            fa_errinfo_set(info, "master key: not 64 hex chars or base64 of 32 bytes");
    } else if (env != NULL && env[0] != 0) {
        rc = parse_key_text(env, key);
        if (rc == FA_ERR_ARG)
            fa_errinfo_set(info, "FACEAUTH_MASTER_KEY: not 64 hex chars or base64 of 32 bytes");
    } else {
        if (data_dir == NULL) {
            fa_errinfo_set(info, "no data dir for master.key");
            return FA_ERR_ARG;
        }
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/master.key", data_dir) >= sizeof path) {
            fa_errinfo_set(info, "data dir path too long");
            return FA_ERR_ARG;
        }
        rc = read_key_file(path, key, info);
        if (rc == FA_ERR_NOT_FOUND)
            rc = create_key_file(path, key, info);
    }
    if (rc == FA_OK)
        rc = crypto_keystore_from_key(key, out);
    crypto_wipe(key, sizeof key);
    return rc;
}

void crypto_keystore_free(struct crypto_keystore *ks)
{
    if (ks == NULL)
        return;
    crypto_wipe(ks->key, sizeof ks->key);
    fa_free(ks);
}

void crypto_keystore_derive(const struct crypto_keystore *ks, const char *label,
                            uint8_t out[CRYPTO_KEY_BYTES])
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "faceauth/%s", label);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1;
    crypto_hmac_sha256(ks->key, sizeof ks->key, msg, (size_t)n, out);
}

enum fa_status crypto_seal(const struct crypto_keystore *ks, struct fa_bytes aad,
                           struct fa_bytes plain, struct fa_buf *out)
{
    if (plain.n > (1u << 30) || aad.n > (1u << 20))
        return FA_ERR_TOO_LARGE;
    enum fa_status rc = fa_buf_reserve(out, plain.n + CRYPTO_SEAL_OVERHEAD);
    if (rc != FA_OK)
        return rc;
    uint8_t *d = out->p + out->n;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, la = 0;
    if (ctx == NULL)
        return FA_ERR_NOMEM;
    rc = FA_ERR_CRYPTO;
    d[0] = SEAL_VERSION;
    if (crypto_random(d + 1, NONCE) != FA_OK)
        goto out;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, ks->key, d + 1) != 1)
        goto out;
    if (aad.n > 0 && EVP_EncryptUpdate(ctx, NULL, &la, aad.p, (int)aad.n) != 1)
        goto out;
    if (EVP_EncryptUpdate(ctx, d + 1 + NONCE, &l1, plain.p, (int)plain.n) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, d + 1 + NONCE + l1, &l2) != 1)
        goto out;
    size_t ct = (size_t)l1 + (size_t)l2;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, d + 1 + NONCE + ct) != 1)
        goto out;
    out->n += 1 + NONCE + ct + TAG;
    out->p[out->n] = 0;
    rc = FA_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

enum fa_status crypto_unseal(const struct crypto_keystore *ks, struct fa_bytes aad,
                             struct fa_bytes sealed, struct fa_buf *out)
{
    if (sealed.n < CRYPTO_SEAL_OVERHEAD || sealed.p[0] != SEAL_VERSION || sealed.n > (1u << 30) ||
        aad.n > (1u << 20))
        return FA_ERR_DECRYPT;
    size_t ct = sealed.n - CRYPTO_SEAL_OVERHEAD;
    enum fa_status rc = fa_buf_reserve(out, ct + 16);
    if (rc != FA_OK)
        return rc;
    uint8_t *d = out->p + out->n;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, la = 0;
    if (ctx == NULL)
        return FA_ERR_NOMEM;
    rc = FA_ERR_DECRYPT;
    const uint8_t *nonce = sealed.p + 1, *c = sealed.p + 1 + NONCE;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, ks->key, nonce) != 1)
        goto out;
    if (aad.n > 0 && EVP_DecryptUpdate(ctx, NULL, &la, aad.p, (int)aad.n) != 1)
        goto out;
    if (EVP_DecryptUpdate(ctx, d, &l1, c, (int)ct) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(c + ct)) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(ctx, d + l1, &l2) != 1) {
        crypto_wipe(d, ct);
        goto out;
    }
    out->n += (size_t)l1 + (size_t)l2;
    out->p[out->n] = 0;
    rc = FA_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}
