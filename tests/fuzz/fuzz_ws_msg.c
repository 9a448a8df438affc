/* tests/fuzz/fuzz_ws_msg.c: any bytes as a client WebSocket message: a
 * status or a parsed message out, never a crash; a frame always carries a
 * non-empty image of at most the input's length. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_msg m = {0};
    struct fa_errinfo err = {{0}};
    enum fa_status rc = ws_msg_parse((struct fa_bytes){data, size}, &m, &err);
    if (rc == FA_OK) {
        assert(m.type == WS_MSG_PING || m.type == WS_MSG_FRAME);
        if (m.type == WS_MSG_FRAME)
            assert(m.image.n > 0 && m.image.n <= size);
        ws_msg_fini(&m);
    } else {
        assert(rc == FA_ERR_JSON || rc == FA_ERR_ARG || rc == FA_ERR_NOMEM);
        assert(m.image.p == NULL);
    }
    return 0;
}
