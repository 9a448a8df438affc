/* Time: a monotonic clock for intervals and deadlines, the wall clock for
 * timestamps, both in milliseconds. */
#ifndef FA_BASE_CLOCK_H
#define FA_BASE_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds / nanoseconds since an arbitrary origin. */
int64_t fa_mono_ms(void);
int64_t fa_mono_ns(void);
/* Milliseconds since the Unix epoch (UTC). */
int64_t fa_wall_ms(void);
/* "2025-10-27T12:34:56.789Z" into out (at least 32 bytes). */
void fa_iso8601_ms(int64_t wall_ms, char out[32]);

#endif
