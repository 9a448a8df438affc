/* app/ with the face engine on real photos and clips (shared/data/faces):
 * enrollment, verification 1:1 and identification 1:N (open set),
 * duplicate_of, frame rejection reasons, liveness on real clip frames at
 * 10 fps (a live session completes; a repeated photo and a face swapped
 * mid-session do not), encrypted results (CBC and GCM), conflicts,
 * brute-force limit, cross-client isolation, newest-frame-wins, a restart
 * between enrollment and authentication, a user erased while the server
 * runs, and a socket closing while the completing frame is in flight.
 *
 * Run with "--emit DIR" it writes real completions (with the secret keys) to
 * DIR/completions.jsonl for tests/integ/test_decrypt_seed.py. */
#include "test_app_common.h"

#include "base/log.h"
#include "logic/logic.h"
#include "nn/nn.h"
#include "testutil.h"

static struct nn_backend *be;
static struct app_client_secret A, B;
static struct app *app;
static FILE *emit_f;

/* Index of a reason in metrics.frames_rejected. */
static int reason_slot(const char *name)
{
    for (int i = 0; i < APP_REASONS; i++) {
        const char *n = app_metrics_reason_name(i);
        if (n == NULL)
            break;
        if (strcmp(n, name) == 0)
            return i;
    }
    fail_msg("no metrics slot for reason %s", name);
    return 0;
}

static char *data_url(const char *rel)
{
    char path[512];
    tu_shared_path(path, sizeof path, rel);
    struct fa_buf raw = {0}, txt = {0};
    assert_int_equal(fa_read_file(path, 16u << 20, &raw), FA_OK);
    assert_int_equal(fa_buf_puts(&txt, "data:image/jpeg;base64,"), FA_OK);
    assert_int_equal(crypto_b64_encode(fa_buf_bytes(&raw), false, &txt), FA_OK);
    fa_buf_fini(&raw);
    return (char *)txt.p; /* owned: fa_free */
}

static struct app_config engine_config(void)
{
    struct app_config c = base_config();
    c.no_engine = false;
    c.nn_backend = be;
    c.models_dir = tu_models_dir();
    return c;
}

/* Attach to a new session's token. */
static struct app_session *attach(const struct cap *created, uint64_t conn)
{
    struct app_session *h = NULL;
    assert_int_equal(created->r.rc, FA_OK);
    assert_int_equal(app_ws_attach(app, created->r.u.session.session_token, conn, &h, NULL), FA_OK);
    return h;
}

/* Send one photo and wait for its reply. */
static struct cap frame(struct app_session *h, const char *rel)
{
    struct cap c = {0};
    char *img = data_url(rel);
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c), FA_OK);
    fa_free(img);
    wait_for(app, &c, 1);
    return c;
}

/* Parse the few fields of the decrypted payload (a flat JSON object we
 * built): value text of "key" (string without quotes, or raw token). */
static bool json_field(const char *json, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    size_t k = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"' && k + 1 < n)
            out[k++] = *p++;
    } else {
        while (*p && *p != ',' && *p != '}' && k + 1 < n)
            out[k++] = *p++;
    }
    out[k] = 0;
    return true;
}

static void emit(const struct app_client_secret *cs, const struct cap *c, const char *token,
                 const char *expect_id)
{
    if (emit_f == NULL)
        return;
    fprintf(emit_f,
            "{\"secret_key\":\"%s\",\"encryption_method\":\"%s\",\"encrypted_payload\":\"%s\","
            "\"session_type\":\"%s\",\"session_token\":\"%s\",\"id\":%s%s%s,\"confidence\":%.6f}\n",
            cs->secret_key, c->res.encryption_method, c->res.encrypted_payload,
            app_session_type_name(c->res.type), token, expect_id ? "\"" : "",
            expect_id ? expect_id : "null", expect_id ? "\"" : "", c->res.confidence);
}

/* Enroll user_id of client cs with the given photos (all must count). */
static void enroll(const struct app_client_secret *cs, const char *user_id, const char **photos,
                   int n, bool replace)
{
    struct cap s =
        create_session(app, cs->client_id, APP_SESSION_ENROLLMENT, user_id, false, n, 0, replace);
    assert_int_equal(s.r.rc, FA_OK);
    struct app_session *h = attach(&s, 100);
    struct cap f = {0};
    for (int i = 0; i < n; i++) {
        f = frame(h, photos[i]);
        if (f.r.rc != FA_OK || !f.r.u.frame.success)
            fprintf(stderr, "%s: rc %s reason %s\n", photos[i], fa_status_name(f.r.rc),
                    f.r.u.frame.reason ? f.r.u.frame.reason : "-");
        assert_int_equal(f.r.rc, FA_OK);
        assert_true(f.r.u.frame.success);
        assert_int_equal(f.r.u.frame.frames_processed, i + 1);
        assert_int_equal(f.r.u.frame.target_samples, n);
        assert_true(f.r.u.frame.quality_score > 0.5);
        assert_int_equal(f.r.u.frame.faces, 1);
        assert_int_equal(f.r.u.frame.completed, i == n - 1);
    }
    assert_true(f.has_result);
    assert_int_equal(f.res.type, APP_SESSION_ENROLLMENT);
    assert_string_equal(f.res.session_id, s.r.u.session.session_id);
    /* The payload decrypts with the client's secret to R10's plaintext. */
    struct fa_buf plain = {0};
    open_payload(cs, &f.res, &plain);
    char v[128], ts[32];
    const char *json = (const char *)plain.p;
    assert_true(json_field(json, "id", v, sizeof v));
    assert_string_equal(v, s.r.u.session.session_id);
    assert_true(json_field(json, "session_type", v, sizeof v));
    assert_string_equal(v, "enrollment");
    assert_true(json_field(json, "session_token", v, sizeof v));
    assert_string_equal(v, s.r.u.session.session_token);
    assert_true(json_field(json, "timestamp", v, sizeof v));
    fa_iso8601_ms(atomic_load(&fake_now), ts);
    assert_string_equal(v, ts);
    assert_false(json_field(json, "confidence", v, sizeof v));
    emit(cs, &f, s.r.u.session.session_token, s.r.u.session.session_id);
    fa_buf_fini(&plain);
    assert_int_equal(app_ws_check(app, h), FA_ERR_SESSION_USED); /* finished */
    app_ws_detach(app, h);
}

/* One-frame authentication; returns the completion. */
static struct cap authenticate(const struct app_client_secret *cs, const char *user_id,
                               const char *photo)
{
    struct cap s =
        create_session(app, cs->client_id, APP_SESSION_AUTHENTICATION, user_id, false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_OK);
    struct app_session *h = attach(&s, 200);
    struct cap f = frame(h, photo);
    assert_int_equal(f.r.rc, FA_OK);
    assert_true(f.r.u.frame.completed);
    assert_true(f.has_result);
    assert_int_equal(f.res.type, APP_SESSION_AUTHENTICATION);
    assert_true(f.res.confidence >= 0 && f.res.confidence <= 1);
    /* authenticated exactly when the distance is within the threshold, i.e.
     * when the calibrated confidence reaches its value there */
    double c_op = logic_confidence(LOGIC_MATCH_DIST);
    if (f.res.authenticated)
        assert_true(f.res.confidence >= c_op - 1e-9);
    else if (user_id != NULL)
        assert_true(f.res.confidence < c_op + 1e-9);
    /* Decrypt: id is the matched user or null, confidence as reported. */
    struct fa_buf plain = {0};
    open_payload(cs, &f.res, &plain);
    char v[160];
    const char *json = (const char *)plain.p;
    assert_true(json_field(json, "id", v, sizeof v));
    if (f.res.authenticated)
        assert_string_equal(v, f.res.user_id);
    else
        assert_string_equal(v, "null");
    assert_true(json_field(json, "session_type", v, sizeof v));
    assert_string_equal(v, "authentication");
    assert_true(json_field(json, "confidence", v, sizeof v));
    assert_true(fabs(atof(v) - f.res.confidence) < 1e-3);
    emit(cs, &f, s.r.u.session.session_token, f.res.authenticated ? f.res.user_id : NULL);
    fa_buf_fini(&plain);
    app_ws_detach(app, h);
    return f;
}

/* Photos that pass quality (frontal within 15 degrees, sharp, large enough:
 * tools/tune_logic.py); the others are refused as samples. */
static const char *AMY[] = {"data/faces/identities/amy/02.jpg", "data/faces/identities/amy/03.jpg",
                            "data/faces/identities/amy/04.jpg"};
static const char *RAJ[] = {"data/faces/identities/raj/01.jpg", "data/faces/identities/raj/02.jpg",
                            "data/faces/identities/raj/03.jpg"};
static const char *JERRY[] = {"data/faces/identities/jerry_seinfeld/01.jpg",
                              "data/faces/identities/jerry_seinfeld/03.jpg",
                              "data/faces/identities/jerry_seinfeld/04.jpg"};
#define AMY_PROBE "data/faces/identities/amy/05.jpg"
#define RAJ_PROBE "data/faces/identities/raj/05.jpg"
#define JERRY_PROBE "data/faces/identities/jerry_seinfeld/05.jpg"

static int setup(void **state)
{
    (void)state;
    if (make_data_dir() != 0)
        return -1;
    if (nn_backend_new(NN_BACKEND_FAST, &be) != FA_OK)
        return -1;
    struct app_config cfg = base_config();
    struct app_admin *ad = NULL;
    if (app_admin_open(&cfg, &ad, NULL) != FA_OK)
        return -1;
    enum fa_status rc = app_admin_client_create(ad, "Client A", NULL, &A);
    if (rc == FA_OK)
        rc = app_admin_client_create(ad, "Client B", "gcm", &B);
    app_admin_close(ad);
    if (rc != FA_OK)
        return -1;
    cfg = engine_config();
    struct fa_errinfo info = {{0}};
    rc = app_new(&cfg, &app, &info);
    if (rc != FA_OK) {
        fprintf(stderr, "app_new: %s %s\n", fa_status_name(rc), info.what);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const struct app_metrics *m = app_metrics(app);
    if (m->frames_total > 0)
        fprintf(stderr, "frames since the last start: %llu, mean worker time %.1f ms\n",
                (unsigned long long)m->frames_total,
                1000.0 * m->frame_seconds_sum / (double)m->frames_total);
    app_free(app);
    nn_backend_free(be);
    return remove_data_dir();
}

static void test_enroll(void **state)
{
    (void)state;
    enroll(&A, "amy", AMY, 3, false);
    enroll(&A, "raj", RAJ, 3, false);
    enroll(&A, "jerry", JERRY, 3, false);
    struct app_config cfg = base_config();
    struct app_admin *ad = NULL;
    struct app_user_info *users = NULL;
    size_t n = 0;
    assert_int_equal(app_admin_open(&cfg, &ad, NULL), FA_OK);
    assert_int_equal(app_admin_user_list(ad, A.client_id, &users, &n), FA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(users[0].user_id, "amy");
    assert_int_equal(users[0].samples, 3);
    fa_free(users);
    app_admin_close(ad);
    const struct app_metrics *m = app_metrics(app);
    assert_int_equal(m->sessions_completed[0], 3);
    assert_int_equal(m->frames_good, 9);
}

static void test_enroll_conflict_and_replace(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "amy", false, 3, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_CONFLICT);
    s = create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "amy", false, 3, 0, true);
    assert_int_equal(s.r.rc, FA_OK);
    struct app_session *h = attach(&s, 5);
    app_ws_detach(app, h); /* abandoned: the old template stays */
}

static void test_verify(void **state)
{
    (void)state;
    struct cap f = authenticate(&A, "amy", AMY_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "amy");
    assert_true(f.res.confidence > 0.9);
    /* Another person claiming to be amy. */
    f = authenticate(&A, "amy", RAJ_PROBE);
    assert_false(f.res.authenticated);
    assert_true(f.res.has_user_id); /* the claimed user, not authenticated */
    assert_true(f.res.confidence < 0.5);
    assert_int_equal(app_metrics(app)->sessions_failed[1], 1);
}

static void test_identify(void **state)
{
    (void)state;
    struct cap f = authenticate(&A, NULL, JERRY_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "jerry");
    f = authenticate(&A, NULL, RAJ_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "raj");
    /* Open set: someone never enrolled is nobody. */
    f = authenticate(&A, NULL, "data/faces/identities/mindy_kaling/01.jpg");
    assert_false(f.res.authenticated);
    assert_false(f.res.has_user_id);
}

static void test_cross_client(void **state)
{
    (void)state;
    /* B sees none of A's users: 1:1 is not found, 1:N finds nobody. */
    struct cap s =
        create_session(app, B.client_id, APP_SESSION_AUTHENTICATION, "amy", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_USER_NOT_FOUND);
    struct cap f = authenticate(&B, NULL, AMY_PROBE);
    assert_false(f.res.authenticated);
    assert_false(f.res.has_user_id);
    assert_string_equal(f.res.encryption_method, "AES-256-GCM");
    /* B's own enrollment of the same person under the same user_id is its own. */
    enroll(&B, "amy", AMY, 2, false);
    f = authenticate(&B, "amy", AMY_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.encryption_method, "AES-256-GCM");
}

static void test_frame_reasons(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "newbie", false, 2, 0, false);
    struct app_session *h = attach(&s, 300);
    struct cap f = frame(h, "data/faces/noface/park.jpg");
    assert_int_equal(f.r.rc, FA_OK);
    assert_false(f.r.u.frame.success);
    assert_string_equal(f.r.u.frame.reason, APP_REASON_NO_FACE);
    assert_non_null(f.r.u.frame.message);
    assert_int_equal(f.r.u.frame.frames_processed, 0);
    assert_true(f.r.u.frame.quality_score == 0);
    f = frame(h, "data/faces/group/two_people.jpg");
    assert_int_equal(f.r.rc, FA_OK);
    assert_false(f.r.u.frame.success);
    assert_string_equal(f.r.u.frame.reason, APP_REASON_MULTIPLE_FACES);
    assert_true(f.r.u.frame.faces >= 2);
    /* Undecodable: an input error, the session goes on. */
    struct cap g = {0};
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of("!!not base64!!", 14), capture, &g), FA_OK);
    wait_for(app, &g, 1);
    assert_int_equal(fa_status_class(g.r.rc), FA_CLASS_INPUT);
    g = (struct cap){0};
    assert_int_equal(
        app_ws_frame(app, h, fa_bytes_of("data:image/jpeg;base64,AAAA", 27), capture, &g), FA_OK);
    wait_for(app, &g, 1);
    assert_int_equal(fa_status_class(g.r.rc), FA_CLASS_INPUT);
    assert_int_equal(app_ws_check(app, h), FA_OK);
    f = frame(h, "data/faces/identities/ben_affleck/01.jpg");
    assert_true(f.r.u.frame.success);
    assert_int_equal(f.r.u.frame.frames_processed, 1);
    assert_false(f.r.u.frame.completed);
    app_ws_detach(app, h);
    const struct app_metrics *m = app_metrics(app);
    assert_true(m->frames_rejected[reason_slot("no_face")] >= 1);
    assert_true(m->frames_rejected[reason_slot("multiple_faces")] >= 1);
    assert_true(m->frames_rejected[reason_slot("decode_failed")] >= 2);
}

/* require_liveness with a photo sent again and again: the first copy counts
 * as a sample, the repeats are refused, and liveness never comes. */
static void test_liveness_photo_repeated(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "amy", true, 1, 1, false);
    struct app_session *h = attach(&s, 400);
    for (int i = 0; i < 4; i++) {
        advance_ms(100);
        struct cap f = frame(h, AMY_PROBE);
        assert_int_equal(f.r.rc, FA_OK);
        assert_false(f.r.u.frame.liveness_verified);
        assert_false(f.r.u.frame.completed);
        assert_int_equal(f.r.u.frame.blinks, 0);
        assert_int_equal(f.r.u.frame.blinks_required, 1);
        assert_false(f.r.u.frame.motion_detected);
        assert_int_equal(f.r.u.frame.frames_processed, 1);
        if (i == 0) {
            assert_true(f.r.u.frame.success);
            assert_null(f.r.u.frame.reason);
            assert_non_null(f.r.u.frame.message); /* what is missing: a blink */
        } else {
            assert_false(f.r.u.frame.success);
            assert_string_equal(f.r.u.frame.reason, "duplicate_frame");
        }
        assert_int_equal(app_ws_check(app, h), FA_OK);
    }
    app_ws_detach(app, h);
}

/* Frame n (1-based) of a shared clip. */
static const char *clip_frame(const char *clip, int n)
{
    static char rel[256];
    snprintf(rel, sizeof rel, "data/faces/video/%s/frames/%04d.jpg", clip, n);
    return rel;
}

/* Run frames [first, last] of clip at 10 fps; returns the last reply (the
 * completing one, or the failing one, or the last frame's). */
static struct cap run_clip(struct app_session *h, const char *clip, int first, int last,
                           int *frames_sent)
{
    struct cap f = {0};
    for (int n = first; n <= last; n++) {
        advance_ms(100);
        f = frame(h, clip_frame(clip, n));
        assert_int_equal(f.r.rc, FA_OK);
        (*frames_sent)++;
        if (f.r.u.frame.completed || f.r.u.frame.failed)
            break;
    }
    return f;
}

/* A live person on a real clip: enrollment with liveness completes once a
 * blink and motion were seen; verification and identification on the same
 * person's live frames succeed. */
static void test_liveness_clip(void **state)
{
    (void)state;
    const char *clip = "studio_man_blink";
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "studio", true, 3, 1, false);
    struct app_session *h = attach(&s, 700);
    int sent = 0;
    struct cap f = run_clip(h, clip, 1, 72, &sent);
    assert_true(f.r.u.frame.completed);
    assert_true(f.r.u.frame.liveness_verified);
    assert_true(f.r.u.frame.blinks >= 1);
    assert_true(f.r.u.frame.motion_detected);
    assert_true(f.r.u.frame.frames_processed >= 3);
    assert_true(f.r.u.frame.debug.valid);
    assert_int_equal(f.res.type, APP_SESSION_ENROLLMENT);
    /* the first blink is at frames 32-33: not before it */
    assert_true(sent >= 33);
    app_ws_detach(app, h);

    s = create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "studio", true, 3, 1, false);
    h = attach(&s, 701);
    sent = 0;
    f = run_clip(h, clip, 1, 72, &sent);
    assert_true(f.r.u.frame.completed);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "studio");
    assert_true(f.r.u.frame.debug.match_distance >= 0 &&
                f.r.u.frame.debug.match_distance <= LOGIC_MATCH_DIST);
    app_ws_detach(app, h);

    s = create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, NULL, true, 3, 1, false);
    h = attach(&s, 702);
    sent = 0;
    f = run_clip(h, clip, 1, 72, &sent);
    assert_true(f.r.u.frame.completed);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "studio");
    app_ws_detach(app, h);
}

/* A face swapped mid-session: studio_man_blink's first frames (no blink
 * yet), then another man's live clip in the same framing. The enrollment is
 * refused as soon as the new face is seen twice. */
static void test_face_swapped(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "swapper", true, 3, 1, false);
    struct app_session *h = attach(&s, 800);
    int sent = 0;
    struct cap f = run_clip(h, "studio_man_blink", 1, 12, &sent);
    assert_false(f.r.u.frame.completed);
    assert_false(f.r.u.frame.failed);
    f = run_clip(h, "studio_man_glasses_winks", 1, 30, &sent);
    assert_true(f.r.u.frame.failed);
    assert_false(f.r.u.frame.completed);
    assert_string_equal(f.r.u.frame.reason, "face_changed");
    assert_true(sent <= 12 + 4);
    assert_int_equal(app_ws_check(app, h), FA_ERR_SESSION_USED);
    struct cap g = {0};
    char *img = data_url(clip_frame("studio_man_glasses_winks", 31));
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &g),
                     FA_ERR_SESSION_USED);
    fa_free(img);
    app_ws_detach(app, h);
    struct cap c = {0};
    assert_int_equal(app_user_delete(app, A.client_id, "swapper", 1, capture, &c), FA_OK);
    wait_for(app, &c, 1);
    assert_int_equal(c.r.rc, FA_ERR_USER_NOT_FOUND); /* nothing was stored */
}

/* Enrolling a face that another user of the client already has. */
static void test_duplicate_of(void **state)
{
    (void)state;
    static const char *RAJ_AGAIN[] = {"data/faces/identities/raj/04.jpg", RAJ_PROBE};
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "raj_again", false, 2, 0, false);
    struct app_session *h = attach(&s, 900);
    struct cap f = frame(h, RAJ_AGAIN[0]);
    assert_true(f.r.u.frame.success);
    f = frame(h, RAJ_AGAIN[1]);
    assert_false(f.r.u.frame.completed);
    assert_true(f.r.u.frame.failed);
    assert_string_equal(f.r.u.frame.reason, "duplicate_face");
    assert_true(f.r.u.frame.has_duplicate_of);
    assert_string_equal(f.r.u.frame.duplicate_of, "raj");
    app_ws_detach(app, h);
    /* another client's users are not duplicates */
    enroll(&B, "raj", RAJ_AGAIN, 2, false);
}

/* The 1:N gallery follows users erased and enrolled while the app runs,
 * including an erase by the operator CLI (another store connection). */
static void test_gallery_follows_changes(void **state)
{
    (void)state;
    struct cap f = authenticate(&A, NULL, JERRY_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "jerry");
    struct cap c = {0};
    assert_int_equal(app_user_delete(app, A.client_id, "jerry", 1, capture, &c), FA_OK);
    wait_for(app, &c, 1);
    assert_int_equal(c.r.rc, FA_OK);
    f = authenticate(&A, NULL, JERRY_PROBE);
    assert_false(f.res.authenticated);
    assert_false(f.res.has_user_id);
    enroll(&A, "jerry", JERRY, 3, false);
    f = authenticate(&A, NULL, JERRY_PROBE);
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "jerry");
    /* erased behind the app's back: the store is re-read before a match */
    struct app_config cfg = base_config();
    struct app_admin *ad = NULL;
    assert_int_equal(app_admin_open(&cfg, &ad, NULL), FA_OK);
    assert_int_equal(app_admin_user_delete(ad, A.client_id, "jerry"), FA_OK);
    app_admin_close(ad);
    f = authenticate(&A, NULL, JERRY_PROBE);
    assert_false(f.res.authenticated && strcmp(f.res.user_id, "jerry") == 0);
    enroll(&A, "jerry", JERRY, 3, false);
}

/* While a frame is processed, only the newest waiting frame is kept. */
static void test_newest_frame_wins(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "burst", false, 5, 0, false);
    struct app_session *h = attach(&s, 500);
    /* two different photos: a repeated one would not count twice */
    char *img = data_url("data/faces/identities/ben_affleck/02.jpg");
    char *img2 = data_url("data/faces/identities/ben_affleck/01.jpg");
    struct cap c1 = {0}, c2 = {0}, c3 = {0};
    uint64_t dropped0 = app_metrics(app)->frames_dropped;
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c1), FA_OK);
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c2), FA_OK);
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img2, strlen(img2)), capture, &c3), FA_OK);
    fa_free(img);
    fa_free(img2);
    wait_for(app, &c1, 1);
    wait_for(app, &c3, 1);
    for (int i = 0; i < 5; i++)
        app_wait(app, 20);
    assert_int_equal(c2.n, 0); /* replaced while waiting: never replied */
    assert_int_equal(c3.r.u.frame.frames_processed, 2);
    assert_int_equal(c3.r.u.frame.dropped, 1);
    assert_int_equal(app_metrics(app)->frames_dropped, dropped0 + 1);
    app_ws_detach(app, h);
}

/* The socket closes while the completing frame is in flight: no reply, but
 * the enrollment is durable and the status query shows it. */
static void test_detach_during_completion(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "ben", false, 1, 0, false);
    struct app_session *h = attach(&s, 600);
    char *img = data_url("data/faces/identities/ben_affleck/01.jpg");
    struct cap c = {0};
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c), FA_OK);
    fa_free(img);
    app_ws_detach(app, h);
    for (int i = 0; i < 100 && !app_idle(app); i++)
        app_wait(app, 100);
    assert_int_equal(c.n, 0);
    struct cap g = {0};
    assert_int_equal(app_session_get(app, A.client_id, s.r.u.session.session_token, 1, capture, &g),
                     FA_OK);
    wait_for(app, &g, 1);
    assert_int_equal(g.r.rc, FA_OK);
    assert_int_equal(g.r.u.session.status, APP_STATUS_COMPLETED);
    assert_true(g.has_result);
    assert_true(strlen(g.payload) > 40);
}

static void test_brute_force_limit(void **state)
{
    (void)state;
    /* jerry has 0 failures so far; raj's face fails 5 times. */
    for (int i = 0; i < 5; i++) {
        struct cap f = authenticate(&A, "jerry", RAJ_PROBE);
        assert_false(f.res.authenticated);
    }
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "jerry", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_RATE_LIMIT);
    assert_true(s.r.retry_after_s > 0 && s.r.retry_after_s <= 180);
    /* Other users and identification are not blocked. */
    s = create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "raj", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_OK);
    advance_s(181);
    struct cap f = authenticate(&A, "jerry", JERRY_PROBE);
    assert_true(f.res.authenticated);
}

/* Nothing lost across a restart; a deleted user is gone for good. */
static void test_restart_and_delete(void **state)
{
    (void)state;
    app_free(app);
    struct app_config cfg = engine_config();
    app = new_app(&cfg);
    struct cap f = authenticate(&A, "amy", AMY_PROBE);
    assert_true(f.res.authenticated);
    struct cap c = {0};
    assert_int_equal(app_user_delete(app, A.client_id, "amy", 1, capture, &c), FA_OK);
    wait_for(app, &c, 1);
    assert_int_equal(c.r.rc, FA_OK);
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "amy", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_USER_NOT_FOUND);
    f = authenticate(&A, NULL, AMY_PROBE);
    assert_false(f.res.authenticated && strcmp(f.res.user_id, "amy") == 0);
}

int main(int argc, char **argv)
{
    fa_log_set_level(FA_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "--emit") == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/completions.jsonl", argv[2]);
        emit_f = fopen(path, "w");
        if (emit_f == NULL)
            return 1;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_enroll),
            cmocka_unit_test(test_verify),
            cmocka_unit_test(test_identify),
            cmocka_unit_test(test_cross_client),
        };
        int rc = cmocka_run_group_tests(tests, setup, teardown);
        fclose(emit_f);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll),
        cmocka_unit_test(test_enroll_conflict_and_replace),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_identify),
        cmocka_unit_test(test_cross_client),
        cmocka_unit_test(test_frame_reasons),
        cmocka_unit_test(test_liveness_photo_repeated),
        cmocka_unit_test(test_liveness_clip),
        cmocka_unit_test(test_face_swapped),
        cmocka_unit_test(test_duplicate_of),
        cmocka_unit_test(test_gallery_follows_changes),
        cmocka_unit_test(test_newest_frame_wins),
        cmocka_unit_test(test_detach_during_completion),
        cmocka_unit_test(test_brute_force_limit),
        cmocka_unit_test(test_restart_and_delete),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
