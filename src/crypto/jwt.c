/* HS256 bearer tokens on libjwt 1.10. Only HS256 is accepted on verify: the
 * algorithm in the token header is checked after decoding, so "none" or an
 * RS/ES token signed with something else never passes; the signature is
 * also checked here with a constant-time comparison before libjwt parses the
 * token. libjwt does not check "exp" itself; we do, against the caller's
 * clock. */
#include "crypto/crypto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "base/ct_eq.h"

enum fa_status crypto_jwt_issue(const uint8_t *key, size_t keylen, const char *client_id,
                                int64_t now_s, int64_t ttl_s, char *out, size_t outsz)
{
    jwt_t *jwt = NULL;
    char *s = NULL;
    enum fa_status rc = FA_ERR_CRYPTO;
    if (key == NULL || keylen < 16 || client_id == NULL || ttl_s <= 0)
        return FA_ERR_ARG;
    if (jwt_new(&jwt) != 0)
        return FA_ERR_NOMEM;
    if (jwt_add_grant(jwt, "iss", "faceauth") != 0 ||
        jwt_add_grant(jwt, "client_id", client_id) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0)
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) != 0)
        goto out;
    s = jwt_encode_str(jwt);
    if (s == NULL)
        goto out;
    if (strlen(s) + 1 > outsz) {
        rc = FA_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(out, s, strlen(s) + 1);
    rc = FA_OK;
out:
    free(s);
    jwt_free(jwt);
    return rc;
}

enum fa_status crypto_jwt_verify(const uint8_t *key, size_t keylen, const char *token,
                                 int64_t now_s, char *client_id, size_t client_id_sz,
                                 int64_t *exp_s)
{
    jwt_t *jwt = NULL;
    enum fa_status rc = FA_ERR_AUTH;
    if (key == NULL || keylen < 16 || token == NULL || token[0] == 0 || strlen(token) > 4096)
        return FA_ERR_AUTH;
    /* Our own HS256 check first, compared in constant time, so the outcome
     * never depends on how libjwt compares signatures. */
    const char *dot = strrchr(token, '.');
    if (dot == NULL || dot == token)
        goto out;
    struct fa_buf sig = {0};
    uint8_t mac[32];
    bool sig_ok = crypto_b64_decode(fa_bytes_of(dot + 1, strlen(dot + 1)), &sig) == FA_OK &&
                  sig.n == sizeof mac;
    crypto_hmac_sha256(key, keylen, token, (size_t)(dot - token), mac);
    sig_ok = sig_ok && fa_ct_eq(sig.p, mac, sizeof mac);
    fa_buf_fini(&sig);
    if (!sig_ok)
        goto out;
    if (jwt_decode(&jwt, token, key, (int)keylen) != 0 || jwt == NULL)
        goto out;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto out;
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0)
        goto out;
    const char *cid = jwt_get_grant(jwt, "client_id");
    if (cid == NULL || cid[0] == 0 || strlen(cid) + 1 > client_id_sz)
        goto out;
    if ((int64_t)exp <= now_s) {
        rc = FA_ERR_TOKEN_EXPIRED;
        goto out;
    }
    memcpy(client_id, cid, strlen(cid) + 1);
    if (exp_s != NULL)
        *exp_s = exp;
    rc = FA_OK;
out:
    jwt_free(jwt);
    return rc;
}
