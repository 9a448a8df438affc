/* logic/ on synthetic inputs: each quality reason and the score's meaning
 * (0.5 at a limit), image statistics, pose, matching (normalisation,
 * calibrated confidence, open-set and ambiguous 1:N against a brute-force
 * scan), and the session state machine: counting, repeated frames, blinks
 * and winks, motion that a moved picture cannot make, a face swapped
 * mid-session, a new face track, the liveness budget. The real-data figures
 * are in tests/ref/test_app_eval.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "logic/logic.h"

/* ---- a synthetic face ------------------------------------------------------ */

struct synth {
    double cx, cy, size; /* face centre and height (px) */
    double yaw_deg;      /* turn of the whole (3D) face */
    double mouth_open;   /* inner-lip gap / face height */
    double eye[2];       /* lid ratios */
    const float *desc;   /* the person */
    uint64_t hash;
    int64_t t_ms;
    double luma, contrast, sharpness;
};

static void set_pt(struct logic_frame *f, int i, const struct synth *s, double x, double y,
                   double z)
{
    /* face-local (x, y, z) in units of the face size, turned by yaw */
    double a = s->yaw_deg * M_PI / 180.0;
    double xr = x * cos(a) + z * sin(a), zr = -x * sin(a) + z * cos(a);
    f->mesh[i][0] = (float)(s->cx + xr * s->size);
    f->mesh[i][1] = (float)(s->cy + y * s->size);
    f->mesh[i][2] = (float)(zr * s->size);
}

static void make(struct logic_frame *f, const struct synth *s)
{
    memset(f, 0, sizeof *f);
    f->t_ms = s->t_ms;
    f->img_w = 640;
    f->img_h = 480;
    f->pixel_hash = s->hash;
    f->faces = 1;
    f->face = true;
    f->box = (struct face_box){s->cx - s->size / 2, s->cy - s->size / 2, s->size, s->size, 0.99f};
    f->score = 0.99f;
    for (int i = 0; i < FACE_MESH_POINTS; i++)
        set_pt(f, i, s, 0, 0, 0);
    double tilt = tan(LOGIC_PITCH_OFFSET * M_PI / 180.0); /* pitch 0 after the offset */
    set_pt(f, 10, s, 0, -0.5, -0.5 * tilt);
    set_pt(f, 152, s, 0, 0.5, 0.5 * tilt);
    set_pt(f, 33, s, -0.3, -0.1, 0);
    set_pt(f, 133, s, -0.1, -0.1, 0);
    set_pt(f, 263, s, 0.3, -0.1, 0);
    set_pt(f, 362, s, 0.1, -0.1, 0);
    set_pt(f, 1, s, 0, 0.05, -0.3);
    set_pt(f, 61, s, -0.2, 0.25, 0);
    set_pt(f, 291, s, 0.2, 0.25, 0);
    set_pt(f, 13, s, 0, 0.25 - s->mouth_open / 2, 0);
    set_pt(f, 14, s, 0, 0.25 + s->mouth_open / 2, 0);
    set_pt(f, 105, s, -0.2, -0.25, 0);
    set_pt(f, 334, s, 0.2, -0.25, 0);
    f->eye_ratio[0] = s->eye[0];
    f->eye_ratio[1] = s->eye[1];
    f->stats.luma_mean = s->luma;
    f->stats.luma_std = s->contrast;
    f->stats.sharpness = s->sharpness;
    if (s->desc != NULL) {
        f->has_desc = true;
        memcpy(f->desc, s->desc, sizeof f->desc);
    }
}

static float PERSON_A[FACE_DESCRIPTOR], PERSON_B[FACE_DESCRIPTOR];

static uint64_t rng_state = 88172645463325252ull;
static double rnd(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static void random_unit(float v[FACE_DESCRIPTOR])
{
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        v[k] = (float)rnd();
    logic_normalize(v, v);
}

static struct synth good(void)
{
    struct synth s = {.cx = 320,
                      .cy = 240,
                      .size = 200,
                      .eye = {0.3, 0.3},
                      .desc = PERSON_A,
                      .luma = 120,
                      .contrast = 40,
                      .sharpness = 0.5};
    return s;
}

static int setup(void **state)
{
    (void)state;
    random_unit(PERSON_A);
    random_unit(PERSON_B);
    return 0;
}

/* ---- reasons and quality ---------------------------------------------------- */

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(logic_reason_name(LOGIC_OK), "ok");
    assert_null(logic_reason_message(LOGIC_OK));
    for (int i = 1; i < LOGIC_REASON_COUNT; i++) {
        assert_non_null(logic_reason_name((enum logic_reason)i));
        assert_non_null(logic_reason_message((enum logic_reason)i));
        for (int j = 1; j < i; j++) /* unique names */
            assert_string_not_equal(logic_reason_name((enum logic_reason)i),
                                    logic_reason_name((enum logic_reason)j));
    }
    assert_null(logic_reason_name(LOGIC_REASON_COUNT));
    assert_null(logic_reason_name((enum logic_reason) - 1));
    assert_string_equal(logic_feature_name(LOGIC_F_MOUTH_OPEN), "mouth_open");
    assert_null(logic_feature_name(LOGIC_FEATURES));
}

static enum logic_reason judge(const struct synth *s, void (*tweak)(struct logic_frame *),
                               double *score)
{
    struct logic_frame f;
    struct logic_quality q;
    make(&f, s);
    if (tweak != NULL)
        tweak(&f);
    logic_quality_eval(&f, NULL, &q);
    if (score != NULL)
        *score = q.score;
    return q.reason;
}

static void no_face(struct logic_frame *f)
{
    f->face = false;
    f->faces = 0;
}
static void big_second(struct logic_frame *f)
{
    f->faces = 2;
    f->second_w = 0.6 * f->box.w;
}
static void small_second(struct logic_frame *f)
{
    f->faces = 2;
    f->second_w = 0.3 * f->box.w;
}
static void low_score(struct logic_frame *f)
{
    f->score = 0.3f;
}

static void test_quality_reasons(void **state)
{
    (void)state;
    double score;
    struct synth s = good();
    assert_int_equal(judge(&s, NULL, &score), LOGIC_OK);
    assert_true(score > 0.9);
    assert_int_equal(judge(&s, no_face, &score), LOGIC_NO_FACE);
    assert_true(score == 0);
    assert_int_equal(judge(&s, big_second, &score), LOGIC_MULTIPLE_FACES);
    assert_true(score < 0.5);
    assert_int_equal(judge(&s, small_second, &score), LOGIC_OK); /* a far bystander */
    assert_int_equal(judge(&s, low_score, NULL), LOGIC_LOW_SCORE);

    struct synth t = s;
    t.size = LOGIC_MIN_FACE_PX - 10;
    assert_int_equal(judge(&t, NULL, &score), LOGIC_FACE_TOO_SMALL);
    assert_true(score < 0.5);
    t = s;
    t.cx = 620; /* half the face outside the picture */
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_NOT_CENTERED);
    t = s;
    t.luma = LOGIC_MIN_LUMA - 5;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_TOO_DARK);
    t = s;
    t.luma = LOGIC_MAX_LUMA + 5;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_TOO_BRIGHT);
    t = s;
    t.contrast = LOGIC_MIN_CONTRAST - 3;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_LOW_CONTRAST);
    t = s;
    t.sharpness = LOGIC_MIN_SHARPNESS * 0.6;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_BLURRY);
    t = s;
    t.yaw_deg = LOGIC_MAX_YAW + 8;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_NOT_FRONTAL);
    t.yaw_deg = -(LOGIC_MAX_YAW + 8);
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_NOT_FRONTAL);
    /* two problems: the first in enum order is named */
    t = s;
    t.size = 30;
    t.luma = 10;
    assert_int_equal(judge(&t, NULL, NULL), LOGIC_FACE_TOO_SMALL);
}

/* quality_score means: >= 0.5 exactly when the frame may count. */
static void test_quality_score_at_limits(void **state)
{
    (void)state;
    double score;
    struct synth s = good();
    s.size = LOGIC_MIN_FACE_PX;
    assert_int_equal(judge(&s, NULL, &score), LOGIC_OK);
    assert_true(fabs(score - 0.5) < 1e-9);
    s = good();
    s.luma = LOGIC_MIN_LUMA;
    assert_int_equal(judge(&s, NULL, &score), LOGIC_OK);
    assert_true(fabs(score - 0.5) < 1e-9);
    s.luma = LOGIC_MIN_LUMA - 0.01;
    assert_int_equal(judge(&s, NULL, &score), LOGIC_TOO_DARK);
    assert_true(score < 0.5);
    /* the worse, the lower */
    double prev = 1;
    for (double sh = 2 * LOGIC_MIN_SHARPNESS; sh > 0; sh -= 0.02) {
        s = good();
        s.sharpness = sh;
        judge(&s, NULL, &score);
        assert_true(score <= prev + 1e-12);
        prev = score;
    }
    /* the configured minimum face size overrides the default */
    struct logic_frame f;
    struct logic_quality q;
    s = good();
    s.size = 100;
    make(&f, &s);
    const struct logic_quality_params p = {.min_face_px = 120};
    logic_quality_eval(&f, &p, &q);
    assert_int_equal(q.reason, LOGIC_FACE_TOO_SMALL);
}

static void test_pose(void **state)
{
    (void)state;
    struct logic_frame f;
    struct logic_pose p;
    struct synth s = good();
    make(&f, &s);
    logic_pose_of(&f, &p);
    assert_true(fabs(p.yaw) < 1e-3 && fabs(p.pitch) < 1e-3 && fabs(p.roll) < 1e-3);
    s.yaw_deg = 20;
    make(&f, &s);
    logic_pose_of(&f, &p);
    assert_true(fabs(fabs(p.yaw) - 20) < 0.5);
    /* a degenerate mesh gives zeros, not NaN */
    memset(f.mesh, 0, sizeof f.mesh);
    logic_pose_of(&f, &p);
    assert_true(p.yaw == 0 && p.pitch == 0 && p.roll == 0);
    double x[LOGIC_FEATURES];
    logic_features_of(&f, x);
    for (int k = 0; k < LOGIC_FEATURES; k++)
        assert_true(x[k] == 0);
}

/* ---- image statistics ---------------------------------------------------------- */

static uint8_t *image(int w, int h, int kind)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = kind == 0   ? 100
                    : kind == 1 ? (((x / 8) + (y / 8)) % 2 ? 200 : 50)
                                : 50 + 150 * x / w; /* 2: smooth ramp */
            uint8_t *o = p + 3 * ((size_t)y * w + x);
            o[0] = o[1] = o[2] = (uint8_t)v;
        }
    return p;
}

static void test_face_stats(void **state)
{
    (void)state;
    struct logic_image_stats st;
    const struct face_box box = {100, 100, 200, 200, 1};
    uint8_t *flat = image(400, 400, 0), *checker = image(400, 400, 1), *ramp = image(400, 400, 2);
    logic_face_stats(flat, 400, 400, &box, &st);
    assert_true(fabs(st.luma_mean - 100) < 1.0);
    assert_true(st.luma_std < 0.5);
    assert_true(st.sharpness < 0.01);
    logic_face_stats(checker, 400, 400, &box, &st);
    assert_true(st.luma_std > 50);
    double sharp_checker = st.sharpness;
    logic_face_stats(ramp, 400, 400, &box, &st);
    assert_true(st.luma_std > 10);
    assert_true(st.sharpness < 0.05 * sharp_checker); /* contrast without detail */
    /* a box outside the picture: zeros */
    const struct face_box out = {500, 500, 50, 50, 1};
    logic_face_stats(checker, 400, 400, &out, &st);
    assert_true(st.luma_mean == 0 && st.sharpness == 0);
    logic_face_stats(NULL, 400, 400, &box, &st);
    assert_true(st.luma_mean == 0);
    /* a tiny box at the border does not read outside the image */
    const struct face_box edge = {398, 398, 10, 10, 1};
    logic_face_stats(checker, 400, 400, &edge, &st);
    free(flat);
    free(checker);
    free(ramp);
}

/* ---- matching -------------------------------------------------------------- */

static void test_match_basics(void **state)
{
    (void)state;
    float v[FACE_DESCRIPTOR], u[FACE_DESCRIPTOR], z[FACE_DESCRIPTOR] = {0};
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        v[k] = (float)(3 * rnd());
    logic_normalize(v, u);
    double n = 0;
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        n += (double)u[k] * u[k];
    assert_true(fabs(n - 1) < 1e-5);
    logic_normalize(z, z); /* zeros stay zeros */
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        assert_true(z[k] == 0);
    assert_true(logic_distance(u, u) == 0);
    float neg[FACE_DESCRIPTOR];
    for (int k = 0; k < FACE_DESCRIPTOR; k++)
        neg[k] = -u[k];
    assert_true(fabs(logic_distance(u, neg) - 2) < 1e-5);
    /* the mean of a vector and a scaled copy is that vector */
    float d[2][FACE_DESCRIPTOR], m[FACE_DESCRIPTOR];
    for (int k = 0; k < FACE_DESCRIPTOR; k++) {
        d[0][k] = v[k];
        d[1][k] = 5 * v[k];
    }
    logic_mean((const float(*)[FACE_DESCRIPTOR])d, 2, m);
    assert_true(logic_distance(m, u) < 1e-5);
    assert_true(logic_samples_consistent((const float(*)[FACE_DESCRIPTOR])d, 2));
    memcpy(d[1], PERSON_B, sizeof d[1]);
    memcpy(d[0], PERSON_A, sizeof d[0]);
    assert_false(logic_samples_consistent((const float(*)[FACE_DESCRIPTOR])d, 2));
    assert_false(logic_samples_consistent((const float(*)[FACE_DESCRIPTOR])d, 0));
}

static void test_confidence(void **state)
{
    (void)state;
    assert_true(fabs(logic_confidence(LOGIC_CONF_MID) - 0.5) < 1e-12);
    double prev = 2;
    for (double d = 0; d <= 2.0; d += 0.01) {
        double c = logic_confidence(d);
        assert_true(c >= 0 && c <= 1);
        assert_true(c <= prev);
        prev = c;
    }
    assert_true(logic_confidence(INFINITY) == 0);
    assert_true(logic_confidence(NAN) == 0);
    assert_true(logic_confidence(LOGIC_MATCH_DIST) > 0.9); /* the operating point is strict */
}

/* The gallery scan against a brute-force one, and its open-set rules. */
static void test_identify(void **state)
{
    (void)state;
    enum { N = 37 };
    float *g = aligned_alloc(64, N * FACE_DESCRIPTOR * sizeof(float));
    for (int i = 0; i < N; i++)
        random_unit(g + i * FACE_DESCRIPTOR);
    for (int trial = 0; trial < 20; trial++) {
        float probe[FACE_DESCRIPTOR];
        int target = trial % N;
        for (int k = 0; k < FACE_DESCRIPTOR; k++)
            probe[k] = g[target * FACE_DESCRIPTOR + k] + (float)(0.02 * rnd() * trial);
        logic_normalize(probe, probe);
        struct logic_ident id;
        logic_identify(g, N, probe, -1, 0, &id);
        int best = -1;
        double bd = INFINITY;
        for (int i = 0; i < N; i++) {
            double d = logic_distance(g + i * FACE_DESCRIPTOR, probe);
            if (d < bd) {
                bd = d;
                best = i;
            }
        }
        assert_int_equal(id.best, best);
        assert_true(fabs(id.d_best - bd) < 2e-3); /* sqrt(2 - 2 dot) in float */
        assert_true(id.d_second >= id.d_best);
        assert_int_equal(id.match, bd <= LOGIC_MATCH_DIST);
        /* leaving the best row out */
        logic_identify(g, N, probe, best, 0, &id);
        assert_true(id.best != best);
    }
    /* open set: a stranger is nobody */
    float stranger[FACE_DESCRIPTOR];
    random_unit(stranger);
    struct logic_ident id;
    logic_identify(g, N, stranger, -1, 0, &id);
    assert_false(id.match);
    assert_false(id.ambiguous);
    assert_true(id.best >= 0);
    /* a configured threshold replaces the default */
    struct logic_ident loose;
    logic_identify(g, N, stranger, -1, id.d_best + 0.01, &loose);
    assert_true(loose.match);
    assert_int_equal(loose.best, id.best);
    /* two users too close to tell apart: refused */
    memcpy(g + FACE_DESCRIPTOR, g, FACE_DESCRIPTOR * sizeof(float));
    g[FACE_DESCRIPTOR] += 0.01f;
    logic_normalize(g + FACE_DESCRIPTOR, g + FACE_DESCRIPTOR);
    logic_identify(g, N, g, -1, 0, &id);
    assert_true(id.ambiguous);
    assert_false(id.match);
    /* empty gallery */
    logic_identify(g, 0, g, -1, 0, &id);
    assert_int_equal(id.best, -1);
    assert_false(id.match);
    free(g);
}

/* ---- sessions ----------------------------------------------------------------- */

struct run {
    struct logic_session s;
    struct synth sy;
    struct logic_frame f;
    struct logic_frame_result r;
};

static void feed(struct run *x)
{
    x->sy.t_ms += 100;
    x->sy.hash++;
    make(&x->f, &x->sy);
    logic_session_frame(&x->s, &x->f, &x->r);
}

static void start(struct run *x, bool liveness, int blinks, int target)
{
    const struct logic_session_params p = {
        .target_samples = target, .require_liveness = liveness, .required_blinks = blinks};
    memset(x, 0, sizeof *x);
    logic_session_init(&x->s, &p);
    x->sy = good();
    x->sy.hash = 1000;
}

static void test_session_counting(void **state)
{
    (void)state;
    static struct run x;
    start(&x, false, 0, 3);
    for (int i = 1; i <= 3; i++) {
        feed(&x);
        assert_true(x.r.counted);
        assert_int_equal(x.r.counted_total, i);
        assert_true(x.r.liveness_verified); /* not required */
        assert_int_equal(x.r.ready, i == 3);
    }
    /* the same pixels again: refused */
    x.sy.hash--;
    x.sy.t_ms += 100;
    make(&x.f, &x.sy);
    logic_session_frame(&x.s, &x.f, &x.r);
    assert_true(x.r.duplicate);
    assert_false(x.r.counted);
    assert_int_equal(x.r.reason, LOGIC_DUPLICATE_FRAME);
    /* a bad frame does not count and says why */
    x.sy.hash += 10;
    x.sy.luma = 10;
    feed(&x);
    assert_false(x.r.counted);
    assert_int_equal(x.r.reason, LOGIC_TOO_DARK);
    assert_int_equal(x.r.counted_total, 3);
    /* the best samples come first */
    float out[LOGIC_MAX_SAMPLES][FACE_DESCRIPTOR];
    assert_int_equal(logic_session_samples(&x.s, out, 2), 2);
    float probe[FACE_DESCRIPTOR];
    assert_true(logic_session_probe(&x.s, probe));
    assert_true(logic_distance(probe, PERSON_A) < 1e-5);
    /* clamped parameters */
    const struct logic_session_params p = {.target_samples = 99, .required_blinks = -3};
    logic_session_init(&x.s, &p);
    assert_int_equal(x.s.p.target_samples, LOGIC_MAX_SAMPLES);
    assert_int_equal(x.s.p.required_blinks, 0);
    assert_false(logic_session_probe(&x.s, probe));
}

/* A blink (both eyes) counts once the baseline is known; a wink never. */
static void test_session_blinks(void **state)
{
    (void)state;
    static struct run x;
    start(&x, true, 2, 1);
    /* a closure right at the start has no baseline to count against */
    x.sy.eye[0] = x.sy.eye[1] = 0.1;
    feed(&x);
    x.sy.eye[0] = x.sy.eye[1] = 0.3;
    feed(&x);
    assert_false(x.r.blink);
    for (int i = 0; i < 5; i++)
        feed(&x);
    /* a wink: one eye closed for 3 frames */
    x.sy.eye[0] = 0.1;
    for (int i = 0; i < 3; i++)
        feed(&x);
    x.sy.eye[0] = 0.3;
    feed(&x);
    assert_false(x.r.blink);
    assert_int_equal(x.r.blinks, 0);
    /* a one-frame blink */
    x.sy.eye[0] = x.sy.eye[1] = 0.12;
    feed(&x);
    assert_true(x.r.eyes_closed);
    x.sy.eye[0] = x.sy.eye[1] = 0.3;
    feed(&x);
    assert_true(x.r.blink);
    assert_int_equal(x.r.blinks, 1);
    assert_int_equal(x.r.blinks_required, 2);
    assert_false(x.r.liveness_verified); /* 1 of 2 blinks, and no motion */
    /* a long deliberate closure counts once */
    for (int i = 0; i < 5; i++)
        feed(&x);
    x.sy.eye[0] = x.sy.eye[1] = 0.1;
    for (int i = 0; i < 8; i++) {
        feed(&x);
        assert_false(x.r.blink);
    }
    x.sy.eye[0] = x.sy.eye[1] = 0.3;
    feed(&x);
    assert_true(x.r.blink);
    assert_int_equal(x.r.blinks, 2);
    /* a closure interrupted by a frame without a face is not a blink */
    for (int i = 0; i < 5; i++)
        feed(&x);
    x.sy.eye[0] = x.sy.eye[1] = 0.1;
    feed(&x);
    x.sy.t_ms += 100;
    x.sy.hash++;
    make(&x.f, &x.sy);
    x.f.face = false;
    x.f.faces = 0;
    logic_session_frame(&x.s, &x.f, &x.r);
    x.sy.eye[0] = x.sy.eye[1] = 0.3;
    feed(&x);
    assert_false(x.r.blink);
    assert_int_equal(x.r.blinks, 2);
}

/* A picture moved around (shape a function of the pose only) is no motion;
 * a still face that talks (mouth moving at a constant pose) is. */
static void test_session_motion(void **state)
{
    (void)state;
    static struct run x;
    start(&x, true, 0, 1);
    for (int i = 0; i < 60; i++) {
        x.sy.yaw_deg = 14 * sin(i * 0.3);
        x.sy.cx = 320 + 30 * sin(i * 0.2);
        x.sy.size = 200 + 20 * sin(i * 0.25);
        feed(&x);
        assert_false(x.r.motion);
    }
    assert_false(x.r.liveness_verified);
    assert_false(x.r.ready);

    start(&x, true, 0, 1);
    for (int i = 0; i < 14; i++) { /* too few frames to judge */
        x.sy.mouth_open = 0.05 + 0.05 * sin(i * 0.9);
        x.sy.yaw_deg = 2 * sin(i * 0.4);
        feed(&x);
        assert_false(x.r.motion);
    }
    for (int i = 14; i < 40 && !x.r.motion; i++) {
        x.sy.mouth_open = 0.05 + 0.05 * sin(i * 0.9);
        x.sy.yaw_deg = 2 * sin(i * 0.4);
        feed(&x);
    }
    assert_true(x.r.motion);
    assert_true(x.r.motion_score >= 1);
    assert_true(x.r.liveness_verified);
    assert_true(x.r.ready);
}

/* Another face: one odd frame is tolerated (not counted), two in a row end
 * the session, and every later frame is refused. */
static void test_session_face_swap(void **state)
{
    (void)state;
    static struct run x;
    start(&x, false, 0, 10);
    for (int i = 0; i < 3; i++)
        feed(&x);
    x.sy.desc = PERSON_B;
    feed(&x);
    assert_false(x.r.counted);
    assert_false(x.r.failed);
    assert_false(x.r.ready);
    assert_true(x.r.swap_distance > LOGIC_SWAP_DIST);
    x.sy.desc = PERSON_A;
    feed(&x);
    assert_true(x.r.counted);
    x.sy.desc = PERSON_B;
    feed(&x);
    feed(&x);
    assert_true(x.r.failed);
    assert_int_equal(x.r.reason, LOGIC_FACE_CHANGED);
    x.sy.desc = PERSON_A;
    feed(&x);
    assert_true(x.r.failed);
    assert_false(x.r.counted);
    assert_false(x.r.ready);
}

/* With liveness, a new face track (the face re-found elsewhere) starts the
 * evidence again. */
static void test_session_new_track(void **state)
{
    (void)state;
    static struct run x;
    start(&x, true, 1, 5);
    for (int i = 0; i < 3; i++)
        feed(&x);
    assert_int_equal(x.r.counted_total, 3);
    x.sy.cx = 100; /* jumps: no overlap with the last box */
    feed(&x);
    assert_int_equal(x.r.counted_total, 1);
    assert_int_equal(x.s.tracks, 2);
    /* a gap of over a second: new track too */
    x.sy.t_ms += LOGIC_TRACK_GAP_MS;
    feed(&x);
    assert_int_equal(x.r.counted_total, 1);
    /* without liveness, counts add up over tracks */
    start(&x, false, 0, 5);
    feed(&x);
    x.sy.cx = 100;
    feed(&x);
    assert_int_equal(x.r.counted_total, 2);
}

/* A frame as the server's worker gives it: its descriptor only when the
 * logic wants one (logic_session_wants_desc). */
static void feed_as_server(struct run *x)
{
    x->sy.t_ms += 100;
    x->sy.hash++;
    make(&x->f, &x->sy);
    if (!logic_session_wants_desc(&x->s)) {
        x->f.has_desc = false;
        x->f.desc_skipped = true;
    }
    logic_session_frame(&x->s, &x->f, &x->r);
}

/* A good frame whose descriptor the worker skipped. */
static void feed_skipped(struct run *x)
{
    x->sy.t_ms += 100;
    x->sy.hash++;
    make(&x->f, &x->sy);
    x->f.has_desc = false;
    x->f.desc_skipped = true;
    logic_session_frame(&x->s, &x->f, &x->r);
}

/* Descriptors while samples are wanted, then one every LOGIC_DESC_EVERY
 * good frames and right after a far one; frames between count without
 * adding samples, and a session never completes on one of them. */
static void test_session_desc_economy(void **state)
{
    (void)state;
    static struct run x;
    start(&x, true, 1, 3);
    for (int i = 1; i <= 3; i++) {
        assert_true(logic_session_wants_desc(&x.s));
        feed_as_server(&x);
        assert_true(x.r.counted);
        assert_false(x.r.no_desc);
    }
    int with = 0, without = 0;
    for (int i = 0; i < 3 * LOGIC_DESC_EVERY; i++) {
        feed_as_server(&x);
        assert_true(x.r.counted);
        if (x.r.no_desc)
            without++;
        else
            with++;
    }
    assert_int_equal(with, 3);
    assert_int_equal(without, 3 * (LOGIC_DESC_EVERY - 1));
    assert_int_equal(x.r.counted_total, 3 + 3 * LOGIC_DESC_EVERY);
    assert_int_equal(x.s.nsamples, 3 + with);
    /* a far descriptor is checked again on the very next frame */
    while (logic_session_wants_desc(&x.s))
        feed_as_server(&x);
    feed_as_server(&x);
    x.sy.desc = PERSON_B;
    while (!logic_session_wants_desc(&x.s))
        feed_as_server(&x);
    feed_as_server(&x);
    assert_true(x.r.swap_distance > LOGIC_SWAP_DIST);
    assert_true(logic_session_wants_desc(&x.s));
    feed_as_server(&x);
    assert_true(x.r.failed);
    assert_int_equal(x.r.reason, LOGIC_FACE_CHANGED);
    /* live and enough samples: only a frame with its descriptor completes */
    start(&x, false, 0, 1);
    feed_as_server(&x);
    assert_true(x.r.ready);
    assert_true(logic_session_wants_desc(&x.s));
    feed_skipped(&x);
    assert_true(x.r.counted && x.r.no_desc);
    assert_false(x.r.ready);
    /* a frame that fails quality never counts, skipped descriptor or not */
    x.sy.luma = 10;
    feed_skipped(&x);
    assert_false(x.r.counted);
    assert_int_equal(x.r.reason, LOGIC_TOO_DARK);
}

/* No liveness within the budget: the session fails, whatever comes next. */
static void test_session_liveness_budget(void **state)
{
    (void)state;
    static struct run x;
    start(&x, true, 1, 1);
    for (int i = 0; i < LOGIC_LIVENESS_FRAMES; i++) {
        feed(&x);
        assert_false(x.r.failed);
        assert_false(x.r.ready);
    }
    feed(&x);
    assert_true(x.r.failed);
    assert_int_equal(x.r.reason, LOGIC_LIVENESS_FAILED);
    logic_session_skip(&x.s, x.sy.t_ms + 100);
    feed(&x);
    assert_true(x.r.failed);
    /* undecodable frames count toward the budget too */
    start(&x, true, 1, 1);
    for (int i = 0; i <= LOGIC_LIVENESS_FRAMES; i++)
        logic_session_skip(&x.s, 100 * i);
    feed(&x);
    assert_true(x.r.failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_quality_reasons),
        cmocka_unit_test(test_quality_score_at_limits),
        cmocka_unit_test(test_pose),
        cmocka_unit_test(test_face_stats),
        cmocka_unit_test(test_match_basics),
        cmocka_unit_test(test_confidence),
        cmocka_unit_test(test_identify),
        cmocka_unit_test(test_session_counting),
        cmocka_unit_test(test_session_blinks),
        cmocka_unit_test(test_session_motion),
        cmocka_unit_test(test_session_face_swap),
        cmocka_unit_test(test_session_new_track),
        cmocka_unit_test(test_session_liveness_budget),
        cmocka_unit_test(test_session_desc_economy),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
