/* Owned byte buffers and whole-file reads. */
#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

enum fa_status fa_buf_reserve(struct fa_buf *b, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(b->n, extra, &need) || __builtin_add_overflow(need, 1, &need))
        return FA_ERR_NOMEM;
    if (need <= b->cap)
        return FA_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (__builtin_mul_overflow(cap, 2, &cap))
            return FA_ERR_NOMEM;
    }
    uint8_t *p = fa_realloc(b->p, cap);
    if (p == NULL)
        return FA_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return FA_OK;
}

enum fa_status fa_buf_append(struct fa_buf *b, const void *p, size_t n)
{
    enum fa_status rc = fa_buf_reserve(b, n);
    if (rc != FA_OK)
        return rc;
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return FA_OK;
}

enum fa_status fa_buf_puts(struct fa_buf *b, const char *s)
{
    return fa_buf_append(b, s, strlen(s));
}

enum fa_status fa_buf_printf(struct fa_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return FA_ERR_INTERNAL;
    enum fa_status rc = fa_buf_reserve(b, (size_t)len);
    if (rc != FA_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
    return FA_OK;
}

void fa_buf_reset(struct fa_buf *b)
{
    b->n = 0;
    if (b->p != NULL)
        b->p[0] = 0;
}

void fa_buf_fini(struct fa_buf *b)
{
    fa_free(b->p);
    *b = (struct fa_buf){0};
}

enum fa_status fa_read_file(const char *path, size_t max_bytes, struct fa_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? FA_ERR_NOT_FOUND : FA_ERR_IO;
    enum fa_status rc = FA_OK;
    size_t start = out->n;
    uint8_t chunk[65536];
    for (;;) {
        size_t got = fread(chunk, 1, sizeof chunk, f);
        if (got == 0)
            break;
        if (out->n - start + got > max_bytes) {
            rc = FA_ERR_TOO_LARGE;
            break;
        }
        rc = fa_buf_append(out, chunk, got);
        if (rc != FA_OK)
            break;
    }
    if (rc == FA_OK && ferror(f))
        rc = FA_ERR_IO;
    fclose(f);
    if (rc != FA_OK) {
        out->n = start;
        if (out->p != NULL)
            out->p[start] = 0;
    }
    return rc;
}
