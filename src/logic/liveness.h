/* Private to logic/: the liveness helpers that session.c calls. */
#ifndef FA_LOGIC_LIVENESS_H
#define FA_LOGIC_LIVENESS_H

#include "logic/logic.h"

#define LIVE_MIN_FRAMES 5 /* face frames before a range means anything */

/* Range of v[0..n) without the (n + 9) / 10 lowest and highest values;
 * 0 when n < LIVE_MIN_FRAMES. */
double live_trimmed_range(const double *v, int n);
/* max over features of (trimmed range of the evidence) / limit (>= 1:
 * motion); range[] gets each feature's trimmed range (may be NULL). */
double live_motion_score(const struct logic_session *s, double range[LOGIC_FEATURES]);
/* Append the frame's shape features to the track history (oldest dropped). */
void live_push_features(struct logic_session *s, const struct logic_frame *f);
/* true if h is among the last 8 frames' hashes; else remember it. */
bool live_seen_hash(struct logic_session *s, uint64_t h);

#endif
