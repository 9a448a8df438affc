/* JPEG decoding with the TurboJPEG API of libjpeg-turbo, default settings
 * (ISLOW IDCT, fancy upsampling: the pixels of djpeg and of the reference
 * tool's wasm libjpeg-turbo). TJFLAG_LIMITSCANS is set (a progressive-scan
 * DoS guard that never changes pixels). The header is read and checked
 * against the limits before any pixel is decoded.
 *
 * Warnings: libjpeg "recovers" from truncated or damaged data by filling
 * with grey; we refuse those (FA_ERR_IMG_CORRUPT) and accept only warnings
 * about harmless oddities (benign_warning()). TurboJPEG reports the first
 * warning only, so after a benign one we also check that an EOI marker
 * follows the last scan, which a truncated file cannot have.
 * CMYK/YCCK JPEGs are refused (FA_ERR_IMG_FORMAT): TurboJPEG cannot convert
 * them to RGB, and browsers and webcams never send them. */
#include "img/codec.h"

#include <stdbool.h>
#include <string.h>
#include <turbojpeg.h>

#include "base/alloc.h"

/* Zero width or height in the first SOF marker (libjpeg only says "Empty
 * JPEG image"), found by walking the marker segments. */
static bool sof_has_zero_dim(struct fa_bytes in)
{
    size_t i = 2;
    while (i + 4 <= in.n) {
        if (in.p[i] != 0xff)
            return false;
        uint8_t m = in.p[i + 1];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd8)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xd9 || m == 0xda)
            return false;
        size_t len = (size_t)in.p[i + 2] << 8 | in.p[i + 3];
        bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
        if (sof) {
            if (len < 7 || i + 2 + 7 > in.n)
                return false;
            const uint8_t *s = in.p + i + 4; /* precision, height, width */
            return (s[1] == 0 && s[2] == 0) || (s[3] == 0 && s[4] == 0);
        }
        if (len < 2)
            return false;
        i += 2 + len;
    }
    return false;
}

/* After the last SOS marker there must be an EOI marker (entropy-coded
 * data never contains FF D9). */
static bool eoi_after_last_scan(struct fa_bytes in)
{
    size_t sos = 0;
    bool found = false;
    for (size_t i = in.n; i >= 2; i--) {
        if (in.p[i - 2] == 0xff && in.p[i - 1] == 0xda) {
            sos = i;
            found = true;
            break;
        }
    }
    if (!found)
        return false;
    for (size_t i = sos; i + 1 < in.n; i++)
        if (in.p[i] == 0xff && in.p[i + 1] == 0xd9)
            return true;
    return false;
}

/* libjpeg warnings that do not mean lost or invented pixels. */
static bool benign_warning(const char *msg)
{
    static const char *const ok[] = {
        "Corrupt JPEG data: %u extraneous bytes before marker", /* junk between segments */
        "Warning: unknown JFIF revision number",
        "Warning: thumbnail image size does not match data length",
        "Unknown Adobe color transform code",
        "Invalid SOS parameters for sequential JPEG",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *pct = strstr(ok[i], "%u");
        if (pct != NULL) { /* "prefix %u suffix": match both parts */
            size_t pre = (size_t)(pct - ok[i]);
            if (strncmp(msg, ok[i], pre) == 0 && strstr(msg + pre, pct + 2) != NULL)
                return true;
        } else if (strncmp(msg, ok[i], strlen(ok[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* The DCT scaling denominator (1, 2, 4 or 8) for `shrink_to`. */
static int pick_denom(int w, int h, int32_t shrink_to)
{
    if (shrink_to <= 0)
        return 1;
    int s = w < h ? w : h;
    for (int d = 8; d >= 2; d /= 2) {
        tjscalingfactor sf = {1, d};
        if (TJSCALED(s, sf) >= shrink_to)
            return d;
    }
    return 1;
}

enum fa_status img_jpeg_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out)
{
    struct img *im = NULL;
    enum fa_status rc = FA_OK;
    int w = 0, h = 0, subsamp = 0, cs = 0;

    if (in.n > (size_t)0x7fffffff) /* TurboJPEG takes an unsigned long, but be safe */
        return FA_ERR_IMG_BYTES;
    tjhandle tj = tjInitDecompress();
    if (tj == NULL)
        return FA_ERR_NOMEM;
    /* The header can warn too (junk between segments): judged as below. */
    if (tjDecompressHeader3(tj, in.p, (unsigned long)in.n, &w, &h, &subsamp, &cs) != 0 &&
        !(tjGetErrorCode(tj) == TJERR_WARNING && benign_warning(tjGetErrorStr2(tj)))) {
        rc = sof_has_zero_dim(in) ? FA_ERR_IMG_TOO_SMALL : FA_ERR_IMG_CORRUPT;
        goto out;
    }
    if (w <= 0 || h <= 0) { /* the data ended before any frame header */
        rc = FA_ERR_IMG_CORRUPT;
        goto out;
    }
    if ((int64_t)w * h > lim->max_pixels) {
        rc = FA_ERR_IMG_TOO_LARGE;
        goto out;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        rc = FA_ERR_IMG_FORMAT;
        goto out;
    }
    int d = pick_denom(w, h, lim->shrink_to);
    tjscalingfactor sf = {1, d};
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    im = img_new(sw, sh);
    if (im == NULL) {
        rc = FA_ERR_NOMEM;
        goto out;
    }
    if (tjDecompress2(tj, in.p, (unsigned long)in.n, im->rgb, sw, 0, sh, TJPF_RGB,
                      TJFLAG_LIMITSCANS) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) == TJERR_WARNING && benign_warning(msg) && eoi_after_last_scan(in)) {
            rc = FA_OK;
        } else if (strstr(msg, "Insufficient memory") != NULL) {
            rc = FA_ERR_NOMEM;
            goto out;
        } else {
            rc = FA_ERR_IMG_CORRUPT;
            goto out;
        }
    }
    *out = im;
    im = NULL;
out:
    img_free(im);
    tjDestroy(tj);
    return rc;
}

enum fa_status img_encode_jpeg(const struct img *im, int quality, struct fa_buf *out)
{
    if (im == NULL || im->w <= 0 || im->h <= 0 || quality < 1 || quality > 100)
        return FA_ERR_ARG;
    tjhandle tj = tjInitCompress();
    if (tj == NULL)
        return FA_ERR_NOMEM;
    unsigned char *jbuf = NULL;
    unsigned long jsize = 0;
    enum fa_status rc = FA_OK;
    if (tjCompress2(tj, im->rgb, im->w, 0, im->h, TJPF_RGB, &jbuf, &jsize, TJSAMP_420, quality,
                    0) != 0)
        rc = strstr(tjGetErrorStr2(tj), "memory") != NULL ? FA_ERR_NOMEM : FA_ERR_INTERNAL;
    else
        rc = fa_buf_append(out, jbuf, jsize);
    tjFree(jbuf);
    tjDestroy(tj);
    return rc;
}
