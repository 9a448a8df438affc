/* Byte views and owned byte buffers. Untrusted bytes travel as struct
 * fa_bytes (never assumed NUL-terminated); what is kept is copied into an
 * owned struct fa_buf. */
#ifndef FA_BASE_BUF_H
#define FA_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* A borrowed view of bytes. */
struct fa_bytes {
    const uint8_t *p;
    size_t n;
};

/* An owned, growable buffer. Zero-initialised ({0}) is a valid empty buffer.
 * `p` is kept NUL-terminated (one spare byte) so text can be used in place. */
struct fa_buf {
    uint8_t *p;
    size_t n;
    size_t cap;
};

static inline struct fa_bytes fa_bytes_of(const void *p, size_t n)
{
    return (struct fa_bytes){(const uint8_t *)p, n};
}

static inline struct fa_bytes fa_buf_bytes(const struct fa_buf *b)
{
    return (struct fa_bytes){b->p, b->n};
}

/* Make room for `extra` more bytes (plus the NUL). FA_ERR_NOMEM on failure,
 * with the buffer unchanged. */
enum fa_status fa_buf_reserve(struct fa_buf *b, size_t extra);
/* Append bytes / a string; FA_ERR_NOMEM leaves the buffer unchanged. */
enum fa_status fa_buf_append(struct fa_buf *b, const void *p, size_t n);
enum fa_status fa_buf_puts(struct fa_buf *b, const char *s);
enum fa_status fa_buf_printf(struct fa_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empty the buffer, keeping its memory. */
void fa_buf_reset(struct fa_buf *b);
/* Release the memory; the buffer is empty and reusable afterwards. */
void fa_buf_fini(struct fa_buf *b);

/* Read a whole file into `out` (appended). FA_ERR_NOT_FOUND if it does not
 * exist, FA_ERR_TOO_LARGE over max_bytes, FA_ERR_IO otherwise. */
enum fa_status fa_read_file(const char *path, size_t max_bytes, struct fa_buf *out);

#endif
