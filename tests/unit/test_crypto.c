/* crypto/: the R10 envelope (decrypted here with OpenSSL directly, not with
 * our own open function), tamper behaviour of CBC and GCM, base64, tokens,
 * argon2id, JWT expiry/signature/algorithm, the master key file and sealing.
 *
 * Run with "--emit DIR" it writes envelopes for tests/integ/test_decrypt_seed.py
 * (the seed's Python decrypt_response) instead of running the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/ct_eq.h"
#include "crypto/crypto.h"

static const struct crypto_kdf_params FAST_KDF = {.t_cost = 1, .m_cost_kib = 64, .lanes = 1};

/* Independent base64 decoding (OpenSSL's), for checking our envelopes. */
static size_t ossl_b64_decode(const char *s, uint8_t *out)
{
    size_t n = strlen(s);
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    assert_true(len >= 0);
    size_t pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
    return (size_t)len - pad;
}

/* Decrypt R10 CBC exactly as the seed describes, with OpenSSL. Returns the
 * plaintext length or -1 when the padding is wrong. */
static int ossl_cbc_decrypt(const char *b64, const char *secret, uint8_t *pt)
{
    uint8_t raw[4096], key[32];
    size_t n = ossl_b64_decode(b64, raw);
    SHA256((const unsigned char *)secret, strlen(secret), key);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, raw), 1);
    assert_int_equal(EVP_DecryptUpdate(c, pt, &l1, raw + 16, (int)(n - 16)), 1);
    int ok = EVP_DecryptFinal_ex(c, pt + l1, &l2);
    EVP_CIPHER_CTX_free(c);
    return ok == 1 ? l1 + l2 : -1;
}

static int ossl_gcm_decrypt(const uint8_t *raw, size_t n, const uint8_t key[32], uint8_t *pt)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw), 1);
    assert_int_equal(EVP_DecryptUpdate(c, pt, &l1, raw + 12, (int)(n - 28)), 1);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(raw + n - 16));
    int ok = EVP_DecryptFinal_ex(c, pt + l1, &l2);
    EVP_CIPHER_CTX_free(c);
    return ok == 1 ? l1 + l2 : -1;
}

static const char *PLAIN = "{\"id\":\"3f1c2b7e-1111-4222-8333-444455556666\",\"timestamp\":"
                           "\"2025-10-27T12:34:56.789Z\",\"session_type\":\"enrollment\","
                           "\"session_token\":\"abc123\"}";

static void test_method_names(void **state)
{
    (void)state;
    enum crypto_method m;
    assert_string_equal(crypto_method_name(CRYPTO_AES_256_CBC), "AES-256-CBC");
    assert_string_equal(crypto_method_name(CRYPTO_AES_256_GCM), "AES-256-GCM");
    assert_int_equal(crypto_method_parse("gcm", &m), FA_OK);
    assert_int_equal(m, CRYPTO_AES_256_GCM);
    assert_int_equal(crypto_method_parse("AES-256-CBC", &m), FA_OK);
    assert_int_equal(m, CRYPTO_AES_256_CBC);
    assert_int_equal(crypto_method_parse("aes-128-cbc", &m), FA_ERR_ARG);
    assert_int_equal(crypto_method_parse(NULL, &m), FA_ERR_ARG);
}

static void test_result_key_is_sha256(void **state)
{
    (void)state;
    uint8_t k[32];
    char hex[65];
    crypto_result_key("abc", k);
    crypto_hex(k, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_cbc_decrypts_with_openssl(void **state)
{
    (void)state;
    const char *secret = "sk_test-secret-\xc3\xa9"; /* UTF-8 bytes hashed as they are */
    uint8_t key[32];
    crypto_result_key(secret, key);
    /* Lengths around block boundaries, including the empty plaintext. */
    for (size_t len = 0; len <= 48; len++) {
        struct fa_buf out = {0};
        assert_int_equal(
            crypto_envelope_seal(CRYPTO_AES_256_CBC, key, fa_bytes_of(PLAIN, len), &out), FA_OK);
        uint8_t raw[256];
        size_t n = ossl_b64_decode((const char *)out.p, raw);
        /* IV(16) || ciphertext padded to a whole number of blocks (PKCS7 adds 1-16) */
        assert_int_equal(n, 16 + (len / 16 + 1) * 16);
        uint8_t pt[256];
        int m = ossl_cbc_decrypt((const char *)out.p, secret, pt);
        assert_int_equal(m, (int)len);
        assert_memory_equal(pt, PLAIN, len);
        fa_buf_fini(&out);
    }
}

static void test_cbc_fresh_iv(void **state)
{
    (void)state;
    uint8_t key[32];
    struct fa_buf a = {0}, b = {0};
    crypto_result_key("k", key);
    assert_int_equal(crypto_envelope_seal(CRYPTO_AES_256_CBC, key, fa_bytes_of(PLAIN, 20), &a),
                     FA_OK);
    assert_int_equal(crypto_envelope_seal(CRYPTO_AES_256_CBC, key, fa_bytes_of(PLAIN, 20), &b),
                     FA_OK);
    assert_true(a.n == b.n && memcmp(a.p, b.p, a.n) != 0);
    fa_buf_fini(&a);
    fa_buf_fini(&b);
}

/* R10's known weakness: flipping IV bits rewrites the first plaintext block
 * (where "id" is) and the payload still decrypts without any error. */
static void test_cbc_iv_flip_changes_id(void **state)
{
    (void)state;
    const char *secret = "sk_flip";
    uint8_t key[32];
    crypto_result_key(secret, key);
    struct fa_buf env = {0}, raw = {0}, re = {0}, pt = {0};
    size_t plen = strlen(PLAIN);
    assert_int_equal(crypto_envelope_seal(CRYPTO_AES_256_CBC, key, fa_bytes_of(PLAIN, plen), &env),
                     FA_OK);
    assert_int_equal(crypto_b64_decode(fa_buf_bytes(&env), &raw), FA_OK);
    /* The id's first character is at plaintext offset 7 ('{"id":"' is 7 bytes);
     * XOR the IV byte with '3' ^ '9' to turn it into '9'. */
    raw.p[7] ^= (uint8_t)('3' ^ '9');
    assert_int_equal(crypto_b64_encode(fa_buf_bytes(&raw), false, &re), FA_OK);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_CBC, key, fa_buf_bytes(&re), &pt), FA_OK);
    assert_int_equal(pt.n, plen);
    assert_memory_not_equal(pt.p, PLAIN, plen);
    assert_int_equal(pt.p[7], '9');
    assert_memory_equal(pt.p + 8, PLAIN + 8, plen - 8); /* everything else intact */
    /* And OpenSSL agrees: the tampered payload decrypts cleanly. */
    uint8_t o[512];
    assert_int_equal(ossl_cbc_decrypt((const char *)re.p, secret, o), (int)plen);
    assert_memory_equal(o, pt.p, plen);
    fa_buf_fini(&env);
    fa_buf_fini(&raw);
    fa_buf_fini(&re);
    fa_buf_fini(&pt);
}

static void test_gcm_roundtrip_and_openssl(void **state)
{
    (void)state;
    uint8_t key[32];
    crypto_result_key("sk_gcm", key);
    struct fa_buf env = {0}, pt = {0};
    size_t plen = strlen(PLAIN);
    assert_int_equal(crypto_envelope_seal(CRYPTO_AES_256_GCM, key, fa_bytes_of(PLAIN, plen), &env),
                     FA_OK);
    uint8_t raw[512], o[512];
    size_t n = ossl_b64_decode((const char *)env.p, raw);
    assert_int_equal(n, 12 + plen + 16);
    assert_int_equal(ossl_gcm_decrypt(raw, n, key, o), (int)plen);
    assert_memory_equal(o, PLAIN, plen);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_GCM, key, fa_buf_bytes(&env), &pt), FA_OK);
    assert_int_equal(pt.n, plen);
    assert_memory_equal(pt.p, PLAIN, plen);
    fa_buf_fini(&env);
    fa_buf_fini(&pt);
}

/* GCM: every single flipped bit anywhere (nonce, ciphertext, tag) is refused. */
static void test_gcm_any_flip_rejected(void **state)
{
    (void)state;
    uint8_t key[32];
    crypto_result_key("sk_gcm", key);
    struct fa_buf env = {0}, raw = {0};
    size_t plen = strlen(PLAIN);
    assert_int_equal(crypto_envelope_seal(CRYPTO_AES_256_GCM, key, fa_bytes_of(PLAIN, plen), &env),
                     FA_OK);
    assert_int_equal(crypto_b64_decode(fa_buf_bytes(&env), &raw), FA_OK);
    for (size_t i = 0; i < raw.n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            struct fa_buf re = {0}, pt = {0};
            raw.p[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(crypto_b64_encode(fa_buf_bytes(&raw), false, &re), FA_OK);
            assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_GCM, key, fa_buf_bytes(&re), &pt),
                             FA_ERR_DECRYPT);
            assert_int_equal(pt.n, 0);
            raw.p[i] ^= (uint8_t)(1u << bit);
            fa_buf_fini(&re);
            fa_buf_fini(&pt);
        }
    }
    /* Truncated and wrong key. */
    struct fa_buf pt = {0}, cut = {0};
    assert_int_equal(crypto_b64_encode(fa_bytes_of(raw.p, raw.n - 1), false, &cut), FA_OK);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_GCM, key, fa_buf_bytes(&cut), &pt),
                     FA_ERR_DECRYPT);
    uint8_t other[32];
    crypto_result_key("sk_other", other);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_GCM, other, fa_buf_bytes(&env), &pt),
                     FA_ERR_DECRYPT);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_GCM, key, fa_bytes_of("!!!!", 4), &pt),
                     FA_ERR_DECRYPT);
    fa_buf_fini(&cut);
    fa_buf_fini(&pt);
    fa_buf_fini(&env);
    fa_buf_fini(&raw);
}

static void test_cbc_open_rejects_garbage(void **state)
{
    (void)state;
    uint8_t key[32];
    struct fa_buf pt = {0}, env = {0};
    crypto_result_key("k", key);
    /* Not base64, too short, not a whole block. */
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_CBC, key, fa_bytes_of("@@@@", 4), &pt),
                     FA_ERR_DECRYPT);
    assert_int_equal(crypto_envelope_open(CRYPTO_AES_256_CBC, key, fa_bytes_of("AAAA", 4), &pt),
                     FA_ERR_DECRYPT);
    /* Wrong key: PKCS7 padding check fails in (nearly) every case; try a few. */
    int refused = 0;
    for (int i = 0; i < 8; i++) {
        fa_buf_reset(&env);
        assert_int_equal(
            crypto_envelope_seal(CRYPTO_AES_256_CBC, key, fa_bytes_of(PLAIN, 30), &env), FA_OK);
        uint8_t other[32];
        crypto_result_key("other", other);
        fa_buf_reset(&pt);
        enum fa_status rc =
            crypto_envelope_open(CRYPTO_AES_256_CBC, other, fa_buf_bytes(&env), &pt);
        if (rc == FA_ERR_DECRYPT)
            refused++;
        else
            assert_memory_not_equal(pt.p, PLAIN, 16);
    }
    assert_true(refused >= 6);
    fa_buf_fini(&pt);
    fa_buf_fini(&env);
}

static void test_b64(void **state)
{
    (void)state;
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 7; i++) {
        struct fa_buf e = {0}, d = {0};
        assert_int_equal(crypto_b64_encode(fa_bytes_of(vec[i][0], strlen(vec[i][0])), false, &e),
                         FA_OK);
        assert_int_equal(e.n, strlen(vec[i][1]));
        if (e.n)
            assert_memory_equal(e.p, vec[i][1], e.n);
        assert_int_equal(crypto_b64_decode(fa_bytes_of(vec[i][1], strlen(vec[i][1])), &d), FA_OK);
        assert_int_equal(d.n, strlen(vec[i][0]));
        if (d.n)
            assert_memory_equal(d.p, vec[i][0], d.n);
        fa_buf_fini(&e);
        fa_buf_fini(&d);
    }
    struct fa_buf d = {0};
    uint8_t bin[3] = {0xfb, 0xff, 0xbf};
    assert_int_equal(crypto_b64_encode(fa_bytes_of(bin, 3), true, &d), FA_OK);
    assert_string_equal((char *)d.p, "-_-_");
    fa_buf_reset(&d);
    assert_int_equal(crypto_b64_decode(fa_bytes_of("-_-_", 4), &d), FA_OK);
    assert_memory_equal(d.p, bin, 3);
    fa_buf_reset(&d);
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Zg", 2), &d), FA_OK);        /* unpadded */
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Zh==", 4), &d), FA_ERR_B64); /* bits */
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Z", 1), &d), FA_ERR_B64);
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Zg=", 3), &d), FA_ERR_B64);
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Zm 9v", 5), &d), FA_ERR_B64);
    assert_int_equal(crypto_b64_decode(fa_bytes_of("Z=g=", 4), &d), FA_ERR_B64);
    fa_buf_fini(&d);
}

static void test_tokens(void **state)
{
    (void)state;
    char a[64], b[64], u[37];
    assert_int_equal(crypto_token(32, a, sizeof a), FA_OK);
    assert_int_equal(strlen(a), 43); /* 256 bits, base64url without padding */
    for (const char *p = a; *p; p++)
        assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    assert_int_equal(crypto_token(32, b, sizeof b), FA_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(crypto_token(16, a, sizeof a), FA_OK);
    assert_int_equal(strlen(a), 22); /* 128 bits minimum */
    assert_int_equal(crypto_token(15, a, sizeof a), FA_ERR_ARG);
    assert_int_equal(crypto_token(32, a, 40), FA_ERR_ARG);
    assert_int_equal(crypto_uuid(u), FA_OK);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[8], '-');
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
}

static void test_hmac_and_hex(void **state)
{
    (void)state;
    /* RFC 4231 test case 2 */
    uint8_t out[32];
    char hex[65];
    crypto_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, out);
    crypto_hex(out, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_pwhash(void **state)
{
    (void)state;
    char h[CRYPTO_PWHASH_MAX], h2[CRYPTO_PWHASH_MAX];
    assert_int_equal(crypto_pwhash("sk_secret", &FAST_KDF, h), FA_OK);
    assert_true(strncmp(h, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
    assert_int_equal(crypto_pwhash_verify(h, "sk_secret"), FA_OK);
    assert_int_equal(crypto_pwhash_verify(h, "sk_secreT"), FA_ERR_AUTH);
    assert_int_equal(crypto_pwhash_verify(h, ""), FA_ERR_AUTH);
    assert_int_equal(crypto_pwhash("sk_secret", &FAST_KDF, h2), FA_OK);
    assert_string_not_equal(h, h2); /* random salt */
    assert_int_equal(crypto_pwhash_verify("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"),
                     FA_ERR_ARG);
    assert_int_equal(crypto_pwhash_verify("$argon2id$garbage", "x"), FA_ERR_ARG);
    assert_int_equal(crypto_pwhash_verify("plain", "plain"), FA_ERR_ARG);
}

static const uint8_t JWT_KEY[32] = "0123456789abcdef0123456789abcdef";

/* A JWT with an arbitrary header, HMAC-SHA256 signed with `key` (to forge
 * algorithm confusion cases). */
static void forge(const char *header, const char *payload, const uint8_t *key, bool sign, char *out)
{
    struct fa_buf h = {0}, p = {0}, s = {0};
    crypto_b64_encode(fa_bytes_of(header, strlen(header)), true, &h);
    crypto_b64_encode(fa_bytes_of(payload, strlen(payload)), true, &p);
    char signing[1024];
    snprintf(signing, sizeof signing, "%s.%s", (char *)h.p, (char *)p.p);
    if (sign) {
        uint8_t mac[32];
        crypto_hmac_sha256(key, 32, signing, strlen(signing), mac);
        crypto_b64_encode(fa_bytes_of(mac, 32), true, &s);
        sprintf(out, "%s.%s", signing, (char *)s.p);
    } else {
        sprintf(out, "%s.", signing);
    }
    fa_buf_fini(&h);
    fa_buf_fini(&p);
    fa_buf_fini(&s);
}

static void test_jwt(void **state)
{
    (void)state;
    char tok[CRYPTO_JWT_MAX], cid[40];
    int64_t exp = 0, now = 1761568496;
    assert_int_equal(crypto_jwt_issue(JWT_KEY, 32, "cl_abc", now, 3600, tok, sizeof tok), FA_OK);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, tok, now + 10, cid, sizeof cid, &exp), FA_OK);
    assert_string_equal(cid, "cl_abc");
    assert_int_equal(exp, now + 3600);
    /* Expiry: valid until exp, refused from exp on. */
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, tok, now + 3599, cid, sizeof cid, NULL), FA_OK);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, tok, now + 3600, cid, sizeof cid, NULL),
                     FA_ERR_TOKEN_EXPIRED);
    /* Another key: bad signature. */
    uint8_t other[32];
    memcpy(other, JWT_KEY, 32);
    other[0] ^= 1;
    assert_int_equal(crypto_jwt_verify(other, 32, tok, now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    /* A flipped character in the payload or the signature. */
    char bad[CRYPTO_JWT_MAX];
    strcpy(bad, tok);
    char *dot = strchr(bad, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, bad, now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    strcpy(bad, tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, bad, now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    /* Garbage. */
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, "", now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, "a.b.c", now, cid, sizeof cid, NULL),
                     FA_ERR_AUTH);
    /* alg "none": unsigned token with a valid-looking payload. */
    char payload[128];
    snprintf(payload, sizeof payload, "{\"client_id\":\"cl_abc\",\"exp\":%lld}",
             (long long)now + 100);
    forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, JWT_KEY, false, bad);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, bad, now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    /* A correctly signed forged token is accepted (the forge is right)... */
    forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, JWT_KEY, true, bad);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, bad, now, cid, sizeof cid, NULL), FA_OK);
    /* ...without "exp" it is not. */
    forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"client_id\":\"cl_abc\"}", JWT_KEY, true, bad);
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, bad, now, cid, sizeof cid, NULL), FA_ERR_AUTH);
    /* client_id that does not fit the caller's buffer. */
    assert_int_equal(crypto_jwt_verify(JWT_KEY, 32, tok, now, cid, 4, NULL), FA_ERR_AUTH);
}

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fa_crypto_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    unsetenv("FACEAUTH_MASTER_KEY");
    return 0;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_keystore_file(void **state)
{
    (void)state;
    struct crypto_keystore *a = NULL, *b = NULL;
    struct fa_errinfo info = {{0}};
    assert_int_equal(crypto_keystore_open(tmpdir, NULL, &a, &info), FA_OK);
    char path[300];
    snprintf(path, sizeof path, "%s/master.key", tmpdir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    /* Reopening gives the same key: what a seals, b unseals. */
    struct fa_buf sealed = {0}, pt = {0};
    assert_int_equal(crypto_seal(a, fa_bytes_of("aad", 3), fa_bytes_of("secret", 6), &sealed),
                     FA_OK);
    assert_int_equal(sealed.n, 6 + CRYPTO_SEAL_OVERHEAD);
    assert_int_equal(crypto_keystore_open(tmpdir, NULL, &b, &info), FA_OK);
    assert_int_equal(crypto_unseal(b, fa_bytes_of("aad", 3), fa_buf_bytes(&sealed), &pt), FA_OK);
    assert_int_equal(pt.n, 6);
    assert_memory_equal(pt.p, "secret", 6);
    /* Wrong aad, flipped bytes: refused. */
    fa_buf_reset(&pt);
    assert_int_equal(crypto_unseal(b, fa_bytes_of("aae", 3), fa_buf_bytes(&sealed), &pt),
                     FA_ERR_DECRYPT);
    for (size_t i = 0; i < sealed.n; i++) {
        sealed.p[i] ^= 0x40;
        assert_int_equal(crypto_unseal(b, fa_bytes_of("aad", 3), fa_buf_bytes(&sealed), &pt),
                         FA_ERR_DECRYPT);
        sealed.p[i] ^= 0x40;
    }
    /* Derived keys differ by label and are stable. */
    uint8_t k1[32], k2[32], k3[32];
    crypto_keystore_derive(a, "jwt", k1);
    crypto_keystore_derive(b, "jwt", k2);
    crypto_keystore_derive(a, "other", k3);
    assert_memory_equal(k1, k2, 32);
    assert_memory_not_equal(k1, k3, 32);
    crypto_keystore_free(a);
    crypto_keystore_free(b);
    /* A group-readable key file is refused. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(crypto_keystore_open(tmpdir, NULL, &a, &info), FA_ERR_FORBIDDEN);
    assert_non_null(strstr(info.what, "master.key"));
    assert_int_equal(chmod(path, 0600), 0);
    fa_buf_fini(&sealed);
    fa_buf_fini(&pt);
}

static void test_keystore_text_and_env(void **state)
{
    (void)state;
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    struct crypto_keystore *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(crypto_keystore_open(NULL, hex, &a, NULL), FA_OK);
    assert_int_equal(crypto_keystore_open(NULL, b64, &b, NULL), FA_OK);
    setenv("FACEAUTH_MASTER_KEY", hex, 1);
    assert_int_equal(crypto_keystore_open(NULL, NULL, &c, NULL), FA_OK);
    unsetenv("FACEAUTH_MASTER_KEY");
    uint8_t k1[32], k2[32], k3[32];
    crypto_keystore_derive(a, "x", k1);
    crypto_keystore_derive(b, "x", k2);
    crypto_keystore_derive(c, "x", k3);
    assert_memory_equal(k1, k2, 32);
    assert_memory_equal(k1, k3, 32);
    crypto_keystore_free(a);
    crypto_keystore_free(b);
    crypto_keystore_free(c);
    struct fa_errinfo info = {{0}};
    assert_int_equal(crypto_keystore_open(NULL, "abcd", &a, &info), FA_ERR_ARG);
    assert_int_equal(crypto_keystore_open(NULL, "AAEC", &a, &info), FA_ERR_ARG); /* 3 bytes */
    setenv("FACEAUTH_MASTER_KEY", "not a key", 1);
    assert_int_equal(crypto_keystore_open(tmpdir, NULL, &a, &info), FA_ERR_ARG);
    assert_non_null(strstr(info.what, "FACEAUTH_MASTER_KEY"));
    unsetenv("FACEAUTH_MASTER_KEY");
}

static void test_ct_eq(void **state)
{
    (void)state;
    /* Token hashes are compared with fa_ct_eq (app/sessions.c). */
    uint8_t a[32] = {0}, b[32] = {0};
    assert_true(fa_ct_eq(a, b, 32));
    b[31] = 1;
    assert_false(fa_ct_eq(a, b, 32));
}

static void test_seal_nomem(void **state)
{
    (void)state;
    uint8_t key[32];
    crypto_result_key("k", key);
    /* Fault injection: every allocation failure gives FA_ERR_NOMEM, no leak. */
    for (long n = 0; n < 4; n++) {
        struct fa_buf out = {0};
        fa_alloc_fail_after(n);
        enum fa_status rc =
            crypto_envelope_seal(CRYPTO_AES_256_GCM, key, fa_bytes_of(PLAIN, 40), &out);
        fa_alloc_fail_reset();
        assert_true(rc == FA_OK || rc == FA_ERR_NOMEM);
        fa_buf_fini(&out);
        if (rc == FA_OK)
            break;
    }
}

/* --emit DIR: write envelopes for the Python test (one JSON line each). */
static int emit(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/envelopes.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    static const char *const secrets[] = {"sk_test", "sk_\xc3\xa9\xc3\xa8-unicode",
                                          "a-very-long-secret-key-0123456789-abcdefghijklmnop"};
    static const char *const plains[] = {
        "{}",
        "{\"id\":\"3f1c2b7e-1111-4222-8333-444455556666\",\"timestamp\":\"2025-10-27T12:34:56."
        "789Z\",\"session_type\":\"enrollment\",\"session_token\":\"abc123\"}",
        "{\"id\":\"user \\\"q\\\" \\\\ 1\",\"timestamp\":\"2025-10-27T12:34:56.789Z\","
        "\"session_type\":\"authentication\",\"session_token\":\"tok\",\"confidence\":0.9512}",
        "{\"id\":null,\"timestamp\":\"2025-10-27T12:34:56.789Z\",\"session_type\":"
        "\"authentication\",\"session_token\":\"0123456789abcdef\",\"confidence\":0.1000}",
    };
    for (size_t s = 0; s < 3; s++) {
        uint8_t key[32];
        crypto_result_key(secrets[s], key);
        for (size_t p = 0; p < 4; p++) {
            for (int m = 0; m < 2; m++) {
                struct fa_buf env = {0}, sj = {0}, pj = {0};
                crypto_envelope_seal((enum crypto_method)m, key,
                                     fa_bytes_of(plains[p], strlen(plains[p])), &env);
                /* secret and plaintext as base64 to keep the JSON line trivial */
                crypto_b64_encode(fa_bytes_of(secrets[s], strlen(secrets[s])), false, &sj);
                crypto_b64_encode(fa_bytes_of(plains[p], strlen(plains[p])), false, &pj);
                fprintf(f,
                        "{\"method\":\"%s\",\"secret_b64\":\"%s\",\"plain_b64\":\"%s\","
                        "\"payload\":\"%s\"}\n",
                        crypto_method_name((enum crypto_method)m), (char *)sj.p, (char *)pj.p,
                        (char *)env.p);
                fa_buf_fini(&env);
                fa_buf_fini(&sj);
                fa_buf_fini(&pj);
            }
        }
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--emit") == 0)
        return emit(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_result_key_is_sha256),
        cmocka_unit_test(test_cbc_decrypts_with_openssl),
        cmocka_unit_test(test_cbc_fresh_iv),
        cmocka_unit_test(test_cbc_iv_flip_changes_id),
        cmocka_unit_test(test_gcm_roundtrip_and_openssl),
        cmocka_unit_test(test_gcm_any_flip_rejected),
        cmocka_unit_test(test_cbc_open_rejects_garbage),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_hmac_and_hex),
        cmocka_unit_test(test_pwhash),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_keystore_file),
        cmocka_unit_test(test_keystore_text_and_env),
        cmocka_unit_test(test_ct_eq),
        cmocka_unit_test(test_seal_nomem),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
