/* face/eyes.c: the eye-state machine on synthetic ratio sequences at
 * 10 fps: baseline (causal running median, robust to blinks and winks),
 * relative openness, the both-eyes-closed flag and blink events (one closed
 * frame is a blink, a long closure is one blink, a wink is none, no blink
 * without a reopening, eyes that narrow and stay so are no blink). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "face/face.h"

#define OPEN 0.30
#define SHUT 0.08
#define MAX_EV 64

/* A sequence runner: frame i (0-based) at 100*i ms. */
struct run {
    struct face_eyes e;
    struct face_eyes_state last;
    int64_t blinks[MAX_EV][2];
    int nblinks;
    int closed_frames;
    int64_t t_ms;
};

static void run_init(struct run *r, const struct face_eyes_params *p)
{
    memset(r, 0, sizeof *r);
    face_eyes_init(&r->e, p);
}

/* Feed `n` frames with ratios (right, left); face == 0: no face. */
static void feed(struct run *r, int n, double right, double left, int face)
{
    for (int i = 0; i < n; i++) {
        double ratio[2] = {right, left};
        face_eyes_update(&r->e, r->t_ms, face ? ratio : NULL, &r->last);
        r->t_ms += 100;
        r->closed_frames += r->last.closed;
        if (r->last.blink) {
            assert_true(r->nblinks < MAX_EV);
            r->blinks[r->nblinks][0] = r->last.blink_first;
            r->blinks[r->nblinks][1] = r->last.blink_last;
            r->nblinks++;
        }
    }
}

static void test_single_frame_blink(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 20, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 0);
    assert_false(r.last.closed);
    assert_true(r.last.relative[0] > 0.99 && r.last.relative[0] < 1.01);
    feed(&r, 1, SHUT, SHUT, 1); /* frame 21 */
    assert_true(r.last.closed);
    assert_true(r.last.eye_closed[FACE_EYE_RIGHT] && r.last.eye_closed[FACE_EYE_LEFT]);
    assert_false(r.last.blink); /* not yet: no reopening */
    feed(&r, 1, OPEN, OPEN, 1); /* frame 22 reopens */
    assert_true(r.last.blink);
    assert_int_equal(r.nblinks, 1);
    assert_int_equal(r.blinks[0][0], 21);
    assert_int_equal(r.blinks[0][1], 21);
    feed(&r, 10, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 1);
}

static void test_runs_and_long_closure(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 15, OPEN, OPEN, 1);
    feed(&r, 3, SHUT, SHUT, 1); /* 16-18 */
    feed(&r, 1, OPEN, OPEN, 1);
    assert_true(r.last.blink);  /* confirmed by the reopening */
    feed(&r, 1, SHUT, SHUT, 1); /* 20: a second blink right after */
    feed(&r, 10, OPEN, OPEN, 1);
    feed(&r, 15, SHUT, SHUT, 1); /* 31-45: 1.5 s, one blink */
    feed(&r, 5, OPEN, OPEN, 1);
    /* two blinks with a half-open frame between them are two blinks */
    feed(&r, 1, SHUT, SHUT, 1);                 /* 51 */
    feed(&r, 1, OPEN * 0.865, OPEN * 0.865, 1); /* 52: not closed, not reopened */
    feed(&r, 1, SHUT, SHUT, 1);                 /* 53 */
    feed(&r, 5, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 5);
    int64_t want[5][2] = {{16, 18}, {20, 20}, {31, 45}, {51, 51}, {53, 53}};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.blinks[i][0], want[i][0]);
        assert_int_equal(r.blinks[i][1], want[i][1]);
    }
    /* a slow reopening (half open for 0.2 s, then open) still counts */
    feed(&r, 2, SHUT, SHUT, 1);               /* 59-60 */
    feed(&r, 2, OPEN * 0.86, OPEN * 0.86, 1); /* 61-62: half open */
    feed(&r, 1, OPEN, OPEN, 1);               /* 63 */
    assert_int_equal(r.nblinks, 6);
    assert_int_equal(r.blinks[5][0], 59);
    assert_int_equal(r.blinks[5][1], 60);
    /* a closure much longer than the baseline window (6 s): the eyes never
     * reopen to the old level within FACE_EYES_REOPEN_S of the end of the
     * closed run (the baseline has given up on it), so it is no blink and
     * never several; afterwards blinks are found again */
    feed(&r, 10, OPEN, OPEN, 1);
    feed(&r, 60, SHUT, SHUT, 1);
    feed(&r, 30, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 6);
    assert_false(r.last.closed);
    feed(&r, 1, SHUT, SHUT, 1);
    feed(&r, 1, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 7);
}

static void test_narrowing_is_not_blink(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 20, OPEN, OPEN, 1);
    /* a smile: both eyes drop to 0.78 of their level and stay there */
    feed(&r, 30, OPEN * 0.78, OPEN * 0.78, 1);
    feed(&r, 20, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 0);
    /* the baseline follows the narrowed eyes, so a real blink during a
     * long smile is still found */
    feed(&r, 40, OPEN * 0.78, OPEN * 0.78, 1);
    feed(&r, 1, SHUT, SHUT, 1);
    feed(&r, 1, OPEN * 0.78, OPEN * 0.78, 1);
    assert_int_equal(r.nblinks, 1);
}

static void test_wink_is_not_blink(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 20, OPEN, OPEN, 1);
    feed(&r, 6, SHUT, OPEN, 1); /* right eye only */
    /* a wink does not move the winking eye's baseline */
    assert_true(r.last.baseline[FACE_EYE_RIGHT] > 0.29 && r.last.baseline[FACE_EYE_RIGHT] < 0.31);
    assert_true(r.last.eye_closed[FACE_EYE_RIGHT]);
    assert_false(r.last.eye_closed[FACE_EYE_LEFT]);
    assert_false(r.last.closed);
    feed(&r, 10, OPEN, OPEN, 1);
    feed(&r, 8, OPEN, SHUT, 1); /* left eye only */
    feed(&r, 10, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 0);
    assert_int_equal(r.closed_frames, 0);
    /* a squint of both eyes that stays above the threshold is open */
    feed(&r, 3, OPEN * 0.9, OPEN * 0.9, 1);
    assert_int_equal(r.closed_frames, 0);
}

static void test_no_reopening_no_blink(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 20, OPEN, OPEN, 1);
    feed(&r, 2, SHUT, SHUT, 1);
    feed(&r, 1, 0, 0, 0); /* the face is lost while closed */
    assert_false(r.last.face);
    feed(&r, 5, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 0);
    /* the stream ends closed */
    feed(&r, 3, SHUT, SHUT, 1);
    assert_int_equal(r.nblinks, 0);
    /* frame numbers count frames without a face too */
    assert_int_equal(r.last.frame, 31);
}

static void test_baseline_robust_to_blinks(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 10, OPEN, OPEN, 1);
    /* a frequent blinker: one closed frame in every four, for 8 s */
    for (int k = 0; k < 20; k++) {
        feed(&r, 3, OPEN, OPEN, 1);
        feed(&r, 1, SHUT, SHUT, 1);
        assert_true(r.last.closed);
        assert_true(r.last.baseline[0] > 0.29 && r.last.baseline[0] < 0.31);
    }
    feed(&r, 1, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 20);
}

static void test_baseline_causal_and_adapts(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    /* the first frame is its own baseline */
    feed(&r, 1, 0.2, 0.25, 1);
    assert_true(r.last.baseline[0] == 0.2 && r.last.relative[0] == 1.0);
    assert_false(r.last.closed);
    /* later frames: the baseline comes from earlier frames only */
    feed(&r, 1, 0.3, 0.3, 1);
    assert_true(r.last.baseline[0] > 0.199 && r.last.baseline[0] < 0.201);
    /* a person whose eyes are narrower: after a reset (face changed) the
     * new level is open at once and the baseline is theirs within 1 s */
    feed(&r, 30, OPEN, OPEN, 1);
    face_eyes_reset(&r.e);
    feed(&r, 10, 0.2, 0.2, 1);
    assert_int_equal(r.closed_frames, 0);
    assert_true(r.last.baseline[0] > 0.199 && r.last.baseline[0] < 0.201);
    /* ... and a blink is found against it */
    feed(&r, 1, 0.05, 0.05, 1);
    assert_true(r.last.closed);
    feed(&r, 1, 0.2, 0.2, 1);
    assert_int_equal(r.nblinks, 1);
    /* the frame counter survives the reset */
    assert_int_equal(r.last.frame, 44);
}

static void test_window_forgets(void **state)
{
    (void)state;
    struct face_eyes_params p = {.closed_rel = 0.85, .window_s = 1.0};
    struct run r;
    run_init(&r, &p);
    feed(&r, 30, 0.40, 0.40, 1);
    /* eyes open a bit less (0.36 = 0.9 x): not closed, and after the 1 s
     * window the baseline is the new level */
    feed(&r, 12, 0.36, 0.36, 1);
    assert_int_equal(r.closed_frames, 0);
    assert_true(r.last.baseline[1] > 0.359 && r.last.baseline[1] < 0.361);
}

static void test_threshold_param(void **state)
{
    (void)state;
    struct face_eyes_params p = {.closed_rel = 0.5, .window_s = 2.0};
    struct run r;
    run_init(&r, &p);
    feed(&r, 20, OPEN, OPEN, 1);
    feed(&r, 1, OPEN * 0.6, OPEN * 0.6, 1);
    assert_false(r.last.closed);
    feed(&r, 1, OPEN * 0.4, OPEN * 0.4, 1);
    assert_true(r.last.closed);
    /* invalid parameters fall back to the defaults */
    struct face_eyes_params bad = {.closed_rel = -1, .window_s = 0};
    struct face_eyes e;
    face_eyes_init(&e, &bad);
    assert_true(e.p.closed_rel == FACE_EYES_CLOSED_REL);
    assert_true(e.p.window_s == FACE_EYES_WINDOW_S);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, NULL);
    feed(&r, 10, OPEN, OPEN, 1);
    feed(&r, 1, SHUT, SHUT, 1);
    /* a NaN or negative ratio is no face: the closure is abandoned */
    double nan_ratio[2] = {0.0 / 0.0, OPEN};
    face_eyes_update(&r.e, r.t_ms, nan_ratio, &r.last);
    r.t_ms += 100;
    assert_false(r.last.face);
    feed(&r, 1, -1, OPEN, 1);
    assert_false(r.last.face);
    feed(&r, 5, OPEN, OPEN, 1);
    assert_int_equal(r.nblinks, 0);
    /* time going backwards does not freeze or crash the baseline */
    r.t_ms -= 100000;
    feed(&r, 5, 0.2, 0.2, 1);
    assert_false(r.last.closed);
    assert_true(r.last.baseline[0] > 0.199 && r.last.baseline[0] < 0.201);
    /* a zero ratio (collapsed eye) on both eyes is closed, not a crash */
    feed(&r, 1, 0, 0, 1);
    assert_true(r.last.closed);
}

static void test_history_wraps(void **state)
{
    (void)state;
    /* 30 fps for 20 s with a 4 s window: more samples than the ring holds */
    struct face_eyes_params p = {.closed_rel = 0.85, .window_s = 4.0};
    struct face_eyes e;
    struct face_eyes_state st;
    face_eyes_init(&e, &p);
    int blinks = 0;
    for (int i = 0; i < 600; i++) {
        double v = (i % 90 == 45) ? SHUT : OPEN + 0.01 * (i % 3);
        double ratio[2] = {v, v};
        face_eyes_update(&e, (int64_t)i * 1000 / 30, ratio, &st);
        blinks += st.blink;
        assert_true(st.baseline[0] > 0.29 && st.baseline[0] < 0.33);
    }
    assert_int_equal(blinks, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_frame_blink),
        cmocka_unit_test(test_runs_and_long_closure),
        cmocka_unit_test(test_wink_is_not_blink),
        cmocka_unit_test(test_narrowing_is_not_blink),
        cmocka_unit_test(test_no_reopening_no_blink),
        cmocka_unit_test(test_baseline_robust_to_blinks),
        cmocka_unit_test(test_baseline_causal_and_adapts),
        cmocka_unit_test(test_window_forgets),
        cmocka_unit_test(test_threshold_param),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_history_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
