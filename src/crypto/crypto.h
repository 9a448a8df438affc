/* Cryptography of the service, on OpenSSL, libjwt and libargon2 (only here):
 * - the R10 result envelope: AES-256-CBC exactly as the seed's client code
 *   decrypts it, and an AES-256-GCM option with integrity;
 * - argon2id hashes of the clients' secret keys;
 * - CSPRNG tokens and ids;
 * - HS256 JWTs for the REST bearer;
 * - the server master key and sealing (AES-256-GCM) of data at rest.
 * Every function is thread-safe and runs on any thread. Key material is wiped
 * with OPENSSL_cleanse before it is freed. */
#ifndef FA_CRYPTO_CRYPTO_H
#define FA_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

#define CRYPTO_KEY_BYTES 32

/* ---- R10 envelope ------------------------------------------------------- */

enum crypto_method {
    CRYPTO_AES_256_CBC = 0, /* base64(IV(16) || AES-256-CBC(PKCS7(plain))): the seed */
    CRYPTO_AES_256_GCM = 1, /* base64(nonce(12) || ciphertext || tag(16)), no AAD */
};
/* "AES-256-CBC" / "AES-256-GCM" (static). */
const char *crypto_method_name(enum crypto_method m);
/* Accepts "cbc", "gcm", "AES-256-CBC", "AES-256-GCM" (case-insensitive).
 * FA_ERR_ARG otherwise. */
enum fa_status crypto_method_parse(const char *s, enum crypto_method *out);

/* The result key of R10: SHA-256 of the secret_key's bytes (UTF-8). */
void crypto_result_key(const char *secret_key, uint8_t key[CRYPTO_KEY_BYTES]);

/* Encrypt `plain` with a fresh random IV/nonce and append the base64 text
 * (standard alphabet, padded, no newlines) to `out`. FA_ERR_CRYPTO, FA_ERR_NOMEM. */
enum fa_status crypto_envelope_seal(enum crypto_method m, const uint8_t key[CRYPTO_KEY_BYTES],
                                    struct fa_bytes plain, struct fa_buf *out);
/* The inverse (tests, the CLI): append the plaintext to `out`. FA_ERR_DECRYPT
 * for bad base64, a bad length, bad padding (CBC) or a bad tag (GCM). */
enum fa_status crypto_envelope_open(enum crypto_method m, const uint8_t key[CRYPTO_KEY_BYTES],
                                    struct fa_bytes b64, struct fa_buf *out);

/* ---- Random ------------------------------------------------------------- */

/* n bytes from the CSPRNG (RAND_bytes). FA_ERR_CRYPTO if it fails. */
enum fa_status crypto_random(void *p, size_t n);
/* A url-safe token (base64url, no padding) of `nbytes` random bytes
 * (16 <= nbytes <= 48), NUL-terminated into out (>= 4*nbytes/3 + 2 bytes).
 * FA_ERR_ARG on bad sizes, FA_ERR_CRYPTO. */
enum fa_status crypto_token(size_t nbytes, char *out, size_t outsz);
/* A random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") into out[37]. */
enum fa_status crypto_uuid(char out[37]);

/* ---- Hashing -------------------------------------------------------------- */

void crypto_sha256(const void *p, size_t n, uint8_t out[32]);
/* HMAC-SHA256. */
void crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *p, size_t n,
                        uint8_t out[32]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void crypto_hex(const uint8_t *p, size_t n, char *out);

/* ---- Password hashing (argon2id) -------------------------------------------- */

struct crypto_kdf_params {
    uint32_t t_cost;     /* passes; 0: 3 */
    uint32_t m_cost_kib; /* memory; 0: 65536 */
    uint32_t lanes;      /* 0: 1 */
};
#define CRYPTO_PWHASH_MAX 160 /* encoded "$argon2id$v=19$m=...,t=...,p=...$salt$hash" */

/* Hash `secret` with a random 16-byte salt into the PHC-encoded string `out`.
 * params NULL: defaults. FA_ERR_ARG, FA_ERR_NOMEM, FA_ERR_CRYPTO. Slow by
 * design: run on a worker. */
enum fa_status crypto_pwhash(const char *secret, const struct crypto_kdf_params *params,
                             char out[CRYPTO_PWHASH_MAX]);
/* FA_OK if `secret` matches `encoded` (comparison in constant time inside
 * libargon2), FA_ERR_AUTH if not, FA_ERR_ARG for a malformed encoding. */
enum fa_status crypto_pwhash_verify(const char *encoded, const char *secret);

/* ---- JWT (HS256, libjwt) ---------------------------------------------------- */

#define CRYPTO_JWT_MAX 512
/* Issue {"client_id", "iat", "exp" = now_s + ttl_s, "iss": "faceauth"} signed
 * with `key`. FA_ERR_NOMEM, FA_ERR_CRYPTO, FA_ERR_TOO_LARGE (out too small). */
enum fa_status crypto_jwt_issue(const uint8_t *key, size_t keylen, const char *client_id,
                                int64_t now_s, int64_t ttl_s, char *out, size_t outsz);
/* Verify signature (HS256 only; "none" and other algorithms are refused) and
 * expiry against now_s. On FA_OK writes the client_id claim (NUL-terminated,
 * FA_ERR_AUTH if it does not fit) and *exp_s (may be NULL). Errors:
 * FA_ERR_AUTH (malformed, bad signature, wrong algorithm, missing claim),
 * FA_ERR_TOKEN_EXPIRED. */
enum fa_status crypto_jwt_verify(const uint8_t *key, size_t keylen, const char *token,
                                 int64_t now_s, char *client_id, size_t client_id_sz,
                                 int64_t *exp_s);

/* ---- Master key and sealing ------------------------------------------------- */

struct crypto_keystore;

/* The server master key: `key_text` if not NULL (64 hex chars or base64 of 32
 * bytes), else $FACEAUTH_MASTER_KEY, else the file data_dir/master.key (32
 * raw bytes, created with mode 0600 from the CSPRNG when absent; refused if
 * it is readable by group or others, or not 32 bytes). Errors: FA_ERR_ARG
 * (bad key text, `info` says which source), FA_ERR_IO, FA_ERR_FORBIDDEN
 * (file mode), FA_ERR_CRYPTO, FA_ERR_NOMEM. */
enum fa_status crypto_keystore_open(const char *data_dir, const char *key_text,
                                    struct crypto_keystore **out, struct fa_errinfo *info);
/* A keystore from raw key bytes (tests). */
enum fa_status crypto_keystore_from_key(const uint8_t key[CRYPTO_KEY_BYTES],
                                        struct crypto_keystore **out);
/* Wipes the key. NULL is fine. */
void crypto_keystore_free(struct crypto_keystore *ks);

/* A 32-byte subkey for a purpose (HMAC-SHA256(master, "faceauth/" label)),
 * e.g. "jwt". */
void crypto_keystore_derive(const struct crypto_keystore *ks, const char *label,
                            uint8_t out[CRYPTO_KEY_BYTES]);

/* Seal: 0x01 || nonce(12) || AES-256-GCM(plain) || tag(16), appended to out,
 * with `aad` authenticated (bind the record: e.g. "user:<client>:<user_id>").
 * FA_ERR_CRYPTO, FA_ERR_NOMEM. */
#define CRYPTO_SEAL_OVERHEAD 29
enum fa_status crypto_seal(const struct crypto_keystore *ks, struct fa_bytes aad,
                           struct fa_bytes plain, struct fa_buf *out);
/* Unseal into out (appended). FA_ERR_DECRYPT if tampered, wrong key or aad. */
enum fa_status crypto_unseal(const struct crypto_keystore *ks, struct fa_bytes aad,
                             struct fa_bytes sealed, struct fa_buf *out);

/* ---- Misc ------------------------------------------------------------------- */

/* Standard base64 (padded) of `in`, appended to out (tests, keys). */
enum fa_status crypto_b64_encode(struct fa_bytes in, bool url, struct fa_buf *out);
/* Decode standard or url-safe base64 (padding optional). FA_ERR_B64. */
enum fa_status crypto_b64_decode(struct fa_bytes in, struct fa_buf *out);
/* OPENSSL_cleanse. */
void crypto_wipe(void *p, size_t n);

#endif
