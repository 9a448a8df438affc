/* Base64 and data: URLs. The decoder's fast path takes four alphabet
 * characters at a time through one 256-entry table; anything else
 * (whitespace, padding, a bad byte) drops to a one-character slow path that
 * applies the strict rules of b64.h, then returns to the fast path. */
#include "base/b64.h"

#include <string.h>

#define B_WS 0x40u  /* skipped */
#define B_PAD 0x41u /* '=' */
#define B_BAD 0xffu /* refused */

/* 0-63: the value of an alphabet character; >= 0x40: see above. */
/* clang-format off */
#define R16 B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, \
            B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD
static const uint8_t dec_table[256] = {
    /* 0x00 */ B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x08 */ B_BAD,  B_WS,  B_WS, B_BAD, B_BAD,  B_WS, B_BAD, B_BAD,
    /* 0x10 */ B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x18 */ B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x20 */  B_WS, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x28 */ B_BAD, B_BAD, B_BAD,    62, B_BAD, B_BAD, B_BAD,    63,
    /* 0x30 */    52,    53,    54,    55,    56,    57,    58,    59,
    /* 0x38 */    60,    61, B_BAD, B_BAD, B_BAD, B_PAD, B_BAD, B_BAD,
    /* 0x40 */ B_BAD,     0,     1,     2,     3,     4,     5,     6,
    /* 0x48 */     7,     8,     9,    10,    11,    12,    13,    14,
    /* 0x50 */    15,    16,    17,    18,    19,    20,    21,    22,
    /* 0x58 */    23,    24,    25, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x60 */ B_BAD,    26,    27,    28,    29,    30,    31,    32,
    /* 0x68 */    33,    34,    35,    36,    37,    38,    39,    40,
    /* 0x70 */    41,    42,    43,    44,    45,    46,    47,    48,
    /* 0x78 */    49,    50,    51, B_BAD, B_BAD, B_BAD, B_BAD, B_BAD,
    /* 0x80-0xff: B_BAD */ R16, R16, R16, R16, R16, R16, R16, R16,
};
#undef R16
/* clang-format on */

static const char enc_table[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Exact decoded size, counting alphabet characters only (used when the
 * quick upper bound exceeds the limit). */
static size_t exact_decoded_size(struct fa_bytes in)
{
    size_t c = 0;
    for (size_t i = 0; i < in.n; i++)
        c += dec_table[in.p[i]] < 64;
    return c / 4 * 3 + (c % 4 ? c % 4 - 1 : 0);
}

enum fa_status fa_b64_decode(struct fa_bytes in, size_t max_out, struct fa_buf *out)
{
    /* Upper bound: every 4 input bytes give at most 3 output bytes. */
    size_t cap = in.n / 4 * 3 + 3;
    if (cap > max_out) {
        size_t exact = exact_decoded_size(in);
        if (exact > max_out)
            return FA_ERR_TOO_LARGE;
        cap = exact;
    }
    enum fa_status rc = fa_buf_reserve(out, cap);
    if (rc != FA_OK)
        return rc;

    const uint8_t *s = in.p, *end = in.p + in.n;
    uint8_t *d = out->p + out->n;
    uint8_t *dend = out->p + out->n + cap;
    uint32_t acc = 0;
    unsigned q = 0; /* characters in acc */

    for (;;) {
        if (q == 0) {
            while (end - s >= 4 && dend - d >= 3) {
                uint32_t a = dec_table[s[0]], b = dec_table[s[1]], c = dec_table[s[2]],
                         e = dec_table[s[3]];
                if ((a | b | c | e) >= 64)
                    break;
                uint32_t v = a << 18 | b << 12 | c << 6 | e;
                d[0] = (uint8_t)(v >> 16);
                d[1] = (uint8_t)(v >> 8);
                d[2] = (uint8_t)v;
                d += 3;
                s += 4;
            }
        }
        if (s == end)
            break;
        uint8_t v = dec_table[*s++];
        if (v == B_WS)
            continue;
        if (v == B_PAD) {
            /* Padding: the group must have 2 or 3 characters and the
             * padding must complete it; then only '=' or whitespace. */
            unsigned pads = 1;
            while (s < end) {
                uint8_t t = dec_table[*s++];
                if (t == B_PAD)
                    pads++;
                else if (t != B_WS)
                    goto bad;
            }
            if (q < 2 || q + pads != 4)
                goto bad;
            break;
        }
        if (v == B_BAD)
            goto bad;
        acc = acc << 6 | v;
        if (++q == 4) {
            if (dend - d < 3)
                goto bad; /* cannot happen: cap counts every group */
            d[0] = (uint8_t)(acc >> 16);
            d[1] = (uint8_t)(acc >> 8);
            d[2] = (uint8_t)acc;
            d += 3;
            acc = 0;
            q = 0;
        }
    }
    /* The final partial group: 2 characters = 1 byte (4 unused bits),
     * 3 characters = 2 bytes (2 unused bits). */
    if (q == 1)
        goto bad;
    if (q == 2) {
        if ((acc & 0xf) != 0 || dend - d < 1)
            goto bad;
        *d++ = (uint8_t)(acc >> 4);
    } else if (q == 3) {
        if ((acc & 0x3) != 0 || dend - d < 2)
            goto bad;
        *d++ = (uint8_t)(acc >> 10);
        *d++ = (uint8_t)(acc >> 2);
    }
    out->n = (size_t)(d - out->p);
    out->p[out->n] = 0;
    return FA_OK;
bad:
    out->p[out->n] = 0; /* bytes past n may have been written: restore the NUL */
    return FA_ERR_B64;
}

enum fa_status fa_b64_encode(struct fa_bytes in, struct fa_buf *out)
{
    size_t groups = in.n / 3 + (in.n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return FA_ERR_NOMEM;
    enum fa_status rc = fa_buf_reserve(out, groups * 4);
    if (rc != FA_OK)
        return rc;
    char *d = (char *)out->p + out->n;
    size_t i = 0;
    for (; i + 3 <= in.n; i += 3) {
        uint32_t v = (uint32_t)in.p[i] << 16 | (uint32_t)in.p[i + 1] << 8 | in.p[i + 2];
        d[0] = enc_table[v >> 18];
        d[1] = enc_table[(v >> 12) & 63];
        d[2] = enc_table[(v >> 6) & 63];
        d[3] = enc_table[v & 63];
        d += 4;
    }
    if (in.n - i == 1) {
        uint32_t v = (uint32_t)in.p[i] << 16;
        d[0] = enc_table[v >> 18];
        d[1] = enc_table[(v >> 12) & 63];
        d[2] = '=';
        d[3] = '=';
        d += 4;
    } else if (in.n - i == 2) {
        uint32_t v = (uint32_t)in.p[i] << 16 | (uint32_t)in.p[i + 1] << 8;
        d[0] = enc_table[v >> 18];
        d[1] = enc_table[(v >> 12) & 63];
        d[2] = enc_table[(v >> 6) & 63];
        d[3] = '=';
        d += 4;
    }
    out->n = (size_t)((uint8_t *)d - out->p);
    out->p[out->n] = 0;
    return FA_OK;
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Case-insensitive: does p[0..n) start with the lower-case `lit`? */
static bool starts_ci(const uint8_t *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (lower(p[i]) != (uint8_t)lit[i])
            return false;
    return true;
}

bool fa_is_dataurl(struct fa_bytes in)
{
    size_t i = 0;
    while (i < in.n && is_ws(in.p[i]))
        i++;
    return starts_ci(in.p + i, in.n - i, "data:");
}

/* RFC 2045 token characters (for parameter names and values). */
static bool is_token(uint8_t c)
{
    if (c <= 32 || c >= 127)
        return false;
    return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

enum fa_status fa_dataurl_split(struct fa_bytes in, enum fa_media *media, struct fa_bytes *payload)
{
    const uint8_t *p = in.p;
    size_t n = in.n, i = 0;
    while (i < n && is_ws(p[i]))
        i++;
    if (!starts_ci(p + i, n - i, "data:"))
        return FA_ERR_DATAURL;
    i += 5;
    static const struct {
        const char *name;
        enum fa_media m;
    } types[] = {
        {"image/jpeg", FA_MEDIA_JPEG}, {"image/jpg", FA_MEDIA_JPEG}, {"image/png", FA_MEDIA_PNG}};
    size_t t;
    for (t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t k = strlen(types[t].name);
        /* the type must end at ';' (parameters / base64) */
        if (starts_ci(p + i, n - i, types[t].name) && i + k < n && p[i + k] == ';') {
            i += k;
            break;
        }
    }
    if (t == sizeof types / sizeof types[0])
        return FA_ERR_DATAURL;
    /* ;name=value parameters, then ;base64, */
    for (;;) {
        if (i >= n || p[i] != ';')
            return FA_ERR_DATAURL;
        i++;
        if (starts_ci(p + i, n - i, "base64,")) {
            i += 7;
            break;
        }
        size_t k = i;
        while (k < n && is_token(p[k]))
            k++;
        if (k == i || k >= n || p[k] != '=')
            return FA_ERR_DATAURL;
        k++;
        size_t v = k;
        while (k < n && is_token(p[k]))
            k++;
        if (k == v)
            return FA_ERR_DATAURL;
        i = k;
    }
    *media = types[t].m;
    *payload = (struct fa_bytes){p + i, n - i};
    return FA_OK;
}

enum fa_status fa_b64_decode_text(struct fa_bytes in, size_t max_out, struct fa_buf *out)
{
    if (fa_is_dataurl(in)) {
        enum fa_media m;
        struct fa_bytes pl;
        enum fa_status rc = fa_dataurl_split(in, &m, &pl);
        if (rc != FA_OK)
            return rc;
        return fa_b64_decode(pl, max_out, out);
    }
    return fa_b64_decode(in, max_out, out);
}
