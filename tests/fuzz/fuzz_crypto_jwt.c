/* Untrusted Bearer tokens and base64 reach crypto_jwt_verify and
 * crypto_b64_decode: any bytes in, a status out, never a crash; a token that
 * verifies must carry the claim we check. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "crypto/crypto.h"

static const uint8_t KEY[32] = "fuzz-key-fuzz-key-fuzz-key-0123";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *tok = malloc(size + 1);
    if (tok == NULL)
        return 0;
    memcpy(tok, data, size);
    tok[size] = 0;
    char cid[64];
    int64_t exp = 0;
    enum fa_status rc = crypto_jwt_verify(KEY, sizeof KEY, tok, 1700000000, cid, sizeof cid, &exp);
    assert(rc == FA_OK || rc == FA_ERR_AUTH || rc == FA_ERR_TOKEN_EXPIRED);
    if (rc == FA_OK)
        assert(cid[0] != 0 && exp > 1700000000);
    struct fa_buf out = {0};
    rc = crypto_b64_decode((struct fa_bytes){data, size}, &out);
    assert(rc == FA_OK || rc == FA_ERR_B64 || rc == FA_ERR_NOMEM);
    if (rc == FA_OK)
        assert(out.n <= size);
    fa_buf_fini(&out);
    out = (struct fa_buf){0};
    uint8_t key[32];
    crypto_result_key("k", key);
    rc = crypto_envelope_open(CRYPTO_AES_256_GCM, key, (struct fa_bytes){data, size}, &out);
    assert(rc == FA_ERR_DECRYPT || rc == FA_ERR_NOMEM);
    fa_buf_fini(&out);
    free(tok);
    return 0;
}
