/* One error vocabulary for the whole project. Each row: name, value, class,
 * message. Append only: values are part of logs and tests. 0 is FA_OK,
 * errors are negative. The class maps a status to HTTP and WebSocket codes in
 * exactly one place each (http/reply.c, ws/msg.c). */
#ifndef FA_BASE_STATUS_H
#define FA_BASE_STATUS_H

enum fa_class {
    FA_CLASS_OK = 0,
    FA_CLASS_INPUT,       /* the caller sent something wrong: 400 / 4400 */
    FA_CLASS_AUTH,        /* not authenticated: 401 / 4401 */
    FA_CLASS_FORBIDDEN,   /* authenticated but not allowed: 403 / 4403 */
    FA_CLASS_NOT_FOUND,   /* 404 / 4404 */
    FA_CLASS_CONFLICT,    /* 409 */
    FA_CLASS_LIMIT,       /* rate or size limit: 429 / 4429 (size: 413 / 4400) */
    FA_CLASS_INTERNAL,    /* our fault: 500 / 4500 */
    FA_CLASS_UNAVAILABLE, /* a dependency is missing or down: 503 / 4500 */
};

#define FA_STATUS_TABLE(X)                                                                         \
    X(FA_OK, 0, FA_CLASS_OK, "ok")                                                                 \
    X(FA_ERR_NOMEM, -1, FA_CLASS_INTERNAL, "out of memory")                                        \
    X(FA_ERR_INTERNAL, -2, FA_CLASS_INTERNAL, "internal error")                                    \
    X(FA_ERR_IO, -3, FA_CLASS_INTERNAL, "input/output error")                                      \
    X(FA_ERR_ARG, -4, FA_CLASS_INPUT, "invalid argument")                                          \
    X(FA_ERR_TOO_LARGE, -5, FA_CLASS_LIMIT, "input exceeds the size limit")                        \
    X(FA_ERR_NOT_FOUND, -6, FA_CLASS_NOT_FOUND, "not found")                                       \
    X(FA_ERR_IMG_EMPTY, -20, FA_CLASS_INPUT, "image data is empty")                                \
    X(FA_ERR_IMG_FORMAT, -21, FA_CLASS_INPUT, "image format not supported (JPEG or PNG only)")     \
    X(FA_ERR_IMG_CORRUPT, -22, FA_CLASS_INPUT, "image data is corrupt or truncated")               \
    X(FA_ERR_IMG_TOO_LARGE, -23, FA_CLASS_INPUT, "image exceeds the pixel limit")                  \
    X(FA_ERR_IMG_TOO_SMALL, -24, FA_CLASS_INPUT, "image has zero width or height")                 \
    X(FA_ERR_B64, -25, FA_CLASS_INPUT, "invalid base64")                                           \
    X(FA_ERR_DATAURL, -26, FA_CLASS_INPUT, "invalid data URL")                                     \
    X(FA_ERR_IMG_BYTES, -27, FA_CLASS_INPUT, "image exceeds the byte limit")                       \
    X(FA_ERR_MODEL_MISSING, -40, FA_CLASS_UNAVAILABLE, "model file missing")                       \
    X(FA_ERR_MODEL_FORMAT, -41, FA_CLASS_INTERNAL, "model file malformed")                         \
    X(FA_ERR_MODEL_TENSOR, -42, FA_CLASS_INTERNAL, "model tensor missing or mis-shaped")           \
    X(FA_ERR_MODEL_OP, -43, FA_CLASS_INTERNAL, "model uses an unsupported op")                     \
    X(FA_ERR_NN_BACKEND, -44, FA_CLASS_INTERNAL, "neural backend failure")                         \
    X(FA_ERR_NO_FACE, -60, FA_CLASS_INPUT, "no face found")                                        \
    X(FA_ERR_AUTH, -100, FA_CLASS_AUTH, "invalid credentials")                                     \
    X(FA_ERR_TOKEN_EXPIRED, -101, FA_CLASS_AUTH, "token expired")                                  \
    X(FA_ERR_FORBIDDEN, -102, FA_CLASS_FORBIDDEN, "forbidden")                                     \
    X(FA_ERR_CONFLICT, -103, FA_CLASS_CONFLICT, "already exists")                                  \
    X(FA_ERR_RATE_LIMIT, -104, FA_CLASS_LIMIT, "rate limit exceeded")                              \
    X(FA_ERR_SESSION_NOT_FOUND, -105, FA_CLASS_NOT_FOUND, "session not found")                     \
    X(FA_ERR_SESSION_EXPIRED, -106, FA_CLASS_AUTH, "session expired")                              \
    X(FA_ERR_SESSION_USED, -107, FA_CLASS_FORBIDDEN, "session already used or finished")           \
    X(FA_ERR_USER_NOT_FOUND, -108, FA_CLASS_NOT_FOUND, "user not enrolled")                        \
    X(FA_ERR_CRYPTO, -109, FA_CLASS_INTERNAL, "cryptographic failure")                             \
    X(FA_ERR_DECRYPT, -110, FA_CLASS_INPUT, "decryption failed: wrong key or tampered data")       \
    X(FA_ERR_STORE, -111, FA_CLASS_INTERNAL, "storage failure")                                    \
    X(FA_ERR_STORE_BUSY, -112, FA_CLASS_UNAVAILABLE, "storage busy")                               \
    X(FA_ERR_BUSY, -113, FA_CLASS_UNAVAILABLE, "server busy, try again")                           \
    X(FA_ERR_SHUTDOWN, -114, FA_CLASS_UNAVAILABLE, "server shutting down")                         \
    X(FA_ERR_JSON, -200, FA_CLASS_INPUT, "malformed JSON")

enum fa_status {
#define FA_STATUS_ENUM(name, value, cls, msg) name = value,
    FA_STATUS_TABLE(FA_STATUS_ENUM)
#undef FA_STATUS_ENUM
};

/* Stable name ("FA_ERR_IMG_CORRUPT"), human message and class of a status.
 * Unknown values give "FA_UNKNOWN", "unknown error", FA_CLASS_INTERNAL.
 * Runs on: any thread. */
const char *fa_status_name(enum fa_status s);
const char *fa_status_str(enum fa_status s);
enum fa_class fa_status_class(enum fa_status s);

/* Optional detail of a failure: which field or tensor, in words. */
struct fa_errinfo {
    char what[160];
};

/* printf into info->what when info is not NULL. */
void fa_errinfo_set(struct fa_errinfo *info, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
