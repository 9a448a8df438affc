/* Private to face/: the two face-api crops (ARCHITECTURE.md 8.1 and 8.2).
 * Everything is computed in double as face-api does in JavaScript, and every
 * input is checked (non-finite, outside the image, degenerate) before any
 * conversion to an integer, so a hostile box or point set gives FA_ERR_ARG. */
#ifndef FA_FACE_ALIGN_H
#define FA_FACE_ALIGN_H

#include <stdint.h>

#include "base/status.h"
#include "face/face.h"
#include "face/prep.h"

/* face-api's Box.clipAtImageBorders: (x, y, w, h) clipped to an img_w x
 * img_h image, then x, y, w, h each floored. FA_ERR_ARG when a value is not
 * finite, the image is empty, or the floored width or height is below 1
 * (face-api silently drops such a face). Runs on: any thread. */
enum fa_status align_clip(double x, double y, double w, double h, int32_t img_w, int32_t img_h,
                          struct prep_rect *out);

/* face-api's FaceLandmarks.alignDlib: the square chosen from the eye and
 * mouth centres of 68 image-pixel landmarks, before clipping to the image:
 * size = floor(mean eye-to-mouth distance / 0.45), x = floor(max(0, ref.x -
 * 0.5 size)), y = floor(max(0, ref.y - 0.43 size)), w = min(size, crop_w + x),
 * h = min(size, crop_h + y). crop_w, crop_h: size of the landmark crop the
 * points came from (face-api caps the square with it, which matters for faces
 * at the left/top border); pass INFINITY for the plain square. FA_ERR_ARG for
 * non-finite points or size < 1. Runs on: any thread. */
enum fa_status align_dlib(const float pts[FACE_LANDMARKS][2], double crop_w, double crop_h,
                          struct face_box *out);

#endif
