/* Per-session frame throttle (R14: at most one frame per 100 ms), as a
 * generic cell rate algorithm: each accepted frame books the next slot
 * (TAT, the theoretical arrival time) one interval later; a frame is
 * accepted when it comes no earlier than jitter_ms before its slot. So
 * frames closer than interval - jitter to the last accepted one are always
 * dropped (error 4429), the long-run rate never exceeds one per interval, and
 * a client that sends at 10 fps with timer jitter (a browser, a loaded
 * machine) is not punished for being a few ms early; jitter_ms 0 is the
 * literal "100 ms since the last accepted frame". Every arriving frame and
 * every refused message also spends a token of a flood bucket (refilled at
 * flood_refill_per_s up to flood_burst); an empty bucket means sustained
 * flooding and the caller closes with 4429. Pure arithmetic on the caller's
 * monotonic clock, so tests drive time. */
#include "ws/ws.h"

#define MILLI 1000 /* tokens are kept in thousandths */

void ws_throttle_init(struct ws_throttle *t, const struct ws_throttle_config *cfg, int64_t now_ms)
{
    t->tat_ms = now_ms;
    t->tokens_milli = (int64_t)cfg->flood_burst * MILLI;
    t->refill_ms = now_ms;
    t->dropped = 0;
}

static void refill(struct ws_throttle *t, const struct ws_throttle_config *cfg, int64_t now_ms)
{
    int64_t elapsed = now_ms - t->refill_ms;
    if (elapsed <= 0)
        return;
    int64_t cap = (int64_t)cfg->flood_burst * MILLI;
    /* refill_per_s tokens per second = refill_per_s milli-tokens per ms */
    int64_t add;
    if (__builtin_mul_overflow(elapsed, (int64_t)cfg->flood_refill_per_s, &add) ||
        add > cap - t->tokens_milli)
        t->tokens_milli = cap;
    else
        t->tokens_milli += add;
    t->refill_ms = now_ms;
}

enum ws_throttle_verdict ws_throttle_strike(struct ws_throttle *t,
                                            const struct ws_throttle_config *cfg, int64_t now_ms)
{
    refill(t, cfg, now_ms);
    if (t->tokens_milli < MILLI)
        return WS_THROTTLE_CLOSE;
    t->tokens_milli -= MILLI;
    return WS_THROTTLE_DROP;
}

enum ws_throttle_verdict ws_throttle_frame(struct ws_throttle *t,
                                           const struct ws_throttle_config *cfg, int64_t now_ms)
{
    if (ws_throttle_strike(t, cfg, now_ms) == WS_THROTTLE_CLOSE)
        return WS_THROTTLE_CLOSE;
    if (now_ms < t->tat_ms - cfg->jitter_ms) {
        t->dropped++;
        return WS_THROTTLE_DROP;
    }
    t->tat_ms = (now_ms > t->tat_ms ? now_ms : t->tat_ms) + cfg->min_interval_ms;
    return WS_THROTTLE_ACCEPT;
}
