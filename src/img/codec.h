/* Private to img/: the per-format decoders behind img_decode. Both take
 * resolved limits (no zero "default" fields) and the raw bytes, and follow
 * img_decode's contract (status, *out only on success). */
#ifndef FA_IMG_CODEC_H
#define FA_IMG_CODEC_H

#include "img/img.h"

enum fa_status img_jpeg_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out);
enum fa_status img_png_decode(struct fa_bytes in, const struct img_limits *lim, struct img **out);

#endif
