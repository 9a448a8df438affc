/* The eye-state machine (face.h, face_eyes_*): per-eye open baseline,
 * relative openness, the both-eyes-closed flag and blinks. Pure and causal:
 * a frame's flags use only that frame and earlier ones, so the same code
 * serves a live session and the offline evaluation (tools/tune_eyes.py
 * replays it). The baseline is a running median of each eye's open frames,
 * which the few frames of a blink or a wink cannot move. A blink must end in
 * a reopening to the level from before it, which is what tells a blink from
 * the eyes narrowing and staying so (a smile): on the labelled clips that is
 * the difference between no false blink and one. */
#include "face/face.h"

#include <math.h>
#include <string.h>

void face_eyes_init(struct face_eyes *e, const struct face_eyes_params *p)
{
    memset(e, 0, sizeof *e);
    if (p != NULL)
        e->p = *p;
    if (!(e->p.closed_rel > 0 && e->p.closed_rel < 10))
        e->p.closed_rel = FACE_EYES_CLOSED_REL;
    if (!(e->p.window_s > 0 && e->p.window_s < 3600))
        e->p.window_s = FACE_EYES_WINDOW_S;
}

void face_eyes_reset(struct face_eyes *e)
{
    struct face_eyes_params p = e->p;
    int64_t frame = e->frame;
    face_eyes_init(e, &p);
    e->frame = frame;
}

/* Median of v[0..n) (n >= 1), reordering v. */
static double median(float *v, int32_t n)
{
    for (int32_t i = 1; i < n; i++) {
        float x = v[i];
        int32_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    if (n % 2)
        return v[n / 2];
    return 0.5 * ((double)v[n / 2 - 1] + (double)v[n / 2]);
}

static int32_t newest(const struct face_eyes *e, int k)
{
    return (e->head[k] - 1 + FACE_EYES_HIST) % FACE_EYES_HIST;
}

/* Baseline of eye k at t_ms: median of its samples newer than the window;
 * with none in the window, the newest; with no history, `fallback`. */
static double baseline(const struct face_eyes *e, int k, int64_t t_ms, double fallback)
{
    float v[FACE_EYES_HIST];
    int32_t n = 0;
    int64_t oldest = t_ms - (int64_t)(e->p.window_s * 1000.0);
    if (e->n[k] == 0)
        return fallback;
    for (int32_t i = 0; i < e->n[k]; i++) {
        int32_t at = (e->head[k] - 1 - i + FACE_EYES_HIST) % FACE_EYES_HIST; /* newest first */
        if (e->hist_ms[k][at] <= oldest)
            break;
        v[n++] = e->hist[k][at];
    }
    if (n == 0)
        return e->hist[k][newest(e, k)];
    return median(v, n);
}

static void push(struct face_eyes *e, int k, int64_t t_ms, double ratio)
{
    e->hist_ms[k][e->head[k]] = t_ms;
    e->hist[k][e->head[k]] = (float)ratio;
    e->head[k] = (e->head[k] + 1) % FACE_EYES_HIST;
    if (e->n[k] < FACE_EYES_HIST)
        e->n[k]++;
}

static void emit(struct face_eyes_state *out, int64_t first, int64_t last)
{
    out->blink = true;
    out->blink_first = first;
    out->blink_last = last;
}

void face_eyes_update(struct face_eyes *e, int64_t t_ms, const double *ratio,
                      struct face_eyes_state *out)
{
    memset(out, 0, sizeof *out);
    out->frame = ++e->frame;
    if (ratio != NULL &&
        !(isfinite(ratio[0]) && isfinite(ratio[1]) && ratio[0] >= 0 && ratio[1] >= 0))
        ratio = NULL; /* a degenerate eye counts as no face */
    if (ratio == NULL) {
        /* no reopening can be seen: no blink */
        e->in_run = e->pending = false;
        e->low[0] = e->low[1] = false;
        return;
    }
    /* time going backwards (a caller's clock bug) must not freeze the
     * baselines: drop the history */
    for (int k = 0; k < 2; k++)
        if (e->n[k] > 0 && t_ms < e->hist_ms[k][newest(e, k)])
            e->n[k] = 0;

    out->face = true;
    for (int k = 0; k < 2; k++) {
        out->ratio[k] = ratio[k];
        out->baseline[k] = baseline(e, k, t_ms, ratio[k]);
        out->relative[k] = out->baseline[k] > 0 ? ratio[k] / out->baseline[k] : 1.0;
        out->eye_closed[k] = out->relative[k] < e->p.closed_rel;
    }
    out->closed = out->eye_closed[0] && out->eye_closed[1];

    if (out->closed) {
        if (e->pending) { /* partly reopened, closing again: that was a blink */
            emit(out, e->pend_first, e->pend_last);
            e->pending = false;
        }
        if (!e->in_run) {
            e->in_run = true;
            e->run_first = out->frame;
            e->run_base[0] = out->baseline[0];
            e->run_base[1] = out->baseline[1];
        }
        e->run_last = out->frame;
    } else {
        if (e->in_run) {
            e->in_run = false;
            e->pending = true;
            e->pend_first = e->run_first;
            e->pend_last = e->run_last;
            e->pend_ms = t_ms;
            e->pend_base[0] = e->run_base[0];
            e->pend_base[1] = e->run_base[1];
        }
        if (e->pending) {
            if (ratio[0] >= FACE_EYES_REOPEN_REL * e->pend_base[0] &&
                ratio[1] >= FACE_EYES_REOPEN_REL * e->pend_base[1]) {
                emit(out, e->pend_first, e->pend_last);
                e->pending = false;
            } else if ((double)(t_ms - e->pend_ms) >= FACE_EYES_REOPEN_S * 1000.0) {
                e->pending = false; /* stayed narrowed: not a blink */
            }
        }
    }

    for (int k = 0; k < 2; k++) {
        if (!out->eye_closed[k]) {
            e->low[k] = false;
        } else if (!e->low[k]) {
            e->low[k] = true;
            e->low_ms[k] = t_ms;
        }
        if (!e->low[k] || (double)(t_ms - e->low_ms[k]) > FACE_EYES_MAX_LOW_S * 1000.0)
            push(e, k, t_ms, ratio[k]);
    }
}
