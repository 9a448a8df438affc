/* argon2id hashes of the clients' secret keys (libargon2), PHC-encoded so the
 * parameters travel with the hash and can be raised later without breaking
 * old records. Verification compares in constant time inside libargon2. */
#include "crypto/crypto.h"

#include <string.h>

#include <argon2.h>

#define SALT_BYTES 16
#define HASH_BYTES 32

enum fa_status crypto_pwhash(const char *secret, const struct crypto_kdf_params *params,
                             char out[CRYPTO_PWHASH_MAX])
{
    uint32_t t = 3, m = 65536, lanes = 1;
    if (params != NULL) {
        if (params->t_cost)
            t = params->t_cost;
        if (params->m_cost_kib)
            m = params->m_cost_kib;
        if (params->lanes)
            lanes = params->lanes;
    }
    if (secret == NULL || m < 8 * lanes)
        return FA_ERR_ARG;
    uint8_t salt[SALT_BYTES];
    enum fa_status rc = crypto_random(salt, sizeof salt);
    if (rc != FA_OK)
        return rc;
    size_t need = argon2_encodedlen(t, m, lanes, SALT_BYTES, HASH_BYTES, Argon2_id);
    if (need > CRYPTO_PWHASH_MAX)
        return FA_ERR_ARG;
    int r = argon2id_hash_encoded(t, m, lanes, secret, strlen(secret), salt, sizeof salt,
                                  HASH_BYTES, out, CRYPTO_PWHASH_MAX);
    if (r == ARGON2_MEMORY_ALLOCATION_ERROR)
        return FA_ERR_NOMEM;
    return r == ARGON2_OK ? FA_OK : FA_ERR_CRYPTO;
}

enum fa_status crypto_pwhash_verify(const char *encoded, const char *secret)
{
    if (encoded == NULL || secret == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
        return FA_ERR_ARG;
    int r = argon2id_verify(encoded, secret, strlen(secret));
    switch (r) {
    case ARGON2_OK:
        return FA_OK;
    case ARGON2_VERIFY_MISMATCH:
        return FA_ERR_AUTH;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        return FA_ERR_NOMEM;
    case ARGON2_DECODING_FAIL:
    case ARGON2_INCORRECT_TYPE:
        return FA_ERR_ARG;
    default:
        return FA_ERR_AUTH;
    }
}
