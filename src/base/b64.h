/* Strict standard base64 (RFC 4648 section 4, alphabet A-Z a-z 0-9 + /) and
 * the data: URLs that browsers send webcam frames in. Runs on every frame
 * (~100 KB), so decoding is table driven, 4 characters a step. */
#ifndef FA_BASE_B64_H
#define FA_BASE_B64_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/status.h"

/* Decode base64 text and append the bytes to `out`. Accepted: the standard
 * alphabet, with or without '=' padding (padding, when present, must be
 * complete: "QQ==" or "QQ", never "QQ="); ASCII whitespace (space, tab, CR,
 * LF) anywhere is skipped, so MIME-wrapped lines decode. Refused with
 * FA_ERR_B64: any other character ("-", "_", NUL, non-ASCII), '=' before
 * the end or followed by data, a final group of one character, and
 * non-zero bits in the unused low bits of the last group (so each byte
 * string has exactly one accepted encoding, whitespace aside).
 * FA_ERR_TOO_LARGE when the decoded size would exceed max_out (checked
 * before allocating), FA_ERR_NOMEM. On failure `out` is unchanged.
 * Runs on: any thread. */
enum fa_status fa_b64_decode(struct fa_bytes in, size_t max_out, struct fa_buf *out);

/* Append the padded base64 encoding of `in` to `out` (no line breaks).
 * FA_ERR_NOMEM (out unchanged). Runs on: any thread. */
enum fa_status fa_b64_encode(struct fa_bytes in, struct fa_buf *out);

enum fa_media {
    FA_MEDIA_JPEG, /* image/jpeg (also the common misspelling image/jpg) */
    FA_MEDIA_PNG,  /* image/png */
};

/* Split "data:<media type>[;param=value]*;base64,<payload>". The scheme and
 * media type are case-insensitive; leading whitespace is skipped. Only
 * image/jpeg, image/jpg and image/png are accepted. On FA_OK *payload points
 * into `in` (borrowed) and *media says which type was declared.
 * FA_ERR_DATAURL: not a data: URL, another media type, no ";base64,".
 * Runs on: any thread. */
enum fa_status fa_dataurl_split(struct fa_bytes in, enum fa_media *media, struct fa_bytes *payload);

/* True when `in` (after leading whitespace) starts with "data:" in any case. */
bool fa_is_dataurl(struct fa_bytes in);

/* Decode either a data: URL (as fa_dataurl_split) or plain base64 text into
 * `out` (appended). Errors as the two functions above. */
enum fa_status fa_b64_decode_text(struct fa_bytes in, size_t max_out, struct fa_buf *out);

#endif
