/* app/ with the face engine on real photos (shared/data/faces): enrollment,
 * verification 1:1 and identification 1:N (open set), frame rejection
 * reasons, liveness refusal, encrypted results (CBC and GCM), conflicts,
 * brute-force limit, cross-client isolation, newest-frame-wins, a restart
 * between enrollment and authentication, and a socket closing while the
 * completing frame is in flight.
 *
 * Run with "--emit DIR" it writes real completions (with the secret keys) to
 * DIR/completions.jsonl for tests/integ/test_decrypt_seed.py. */
#include "test_app_common.h"

#include "base/log.h"
#include "nn/nn.h"
#include "testutil.h"

static struct nn_backend *be;
static struct app_client_secret A, B;
static struct app *app;
static FILE *emit_f;

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
    assert_true(f.res.authenticated == (f.res.confidence > 0.5));
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

static const char *OBAMA[] = {"data/faces/identities/barack_obama/01.jpg",
                              "data/faces/identities/barack_obama/02.jpg",
                              "data/faces/identities/barack_obama/03.jpg"};
static const char *ELTON[] = {"data/faces/identities/elton_john/01.jpg",
                              "data/faces/identities/elton_john/03.jpg",
                              "data/faces/identities/elton_john/05.jpg"};
static const char *JERRY[] = {"data/faces/identities/jerry_seinfeld/01.jpg",
                              "data/faces/identities/jerry_seinfeld/02.jpg",
                              "data/faces/identities/jerry_seinfeld/03.jpg"};

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
    enroll(&A, "obama", OBAMA, 3, false);
    enroll(&A, "elton", ELTON, 3, false);
    enroll(&A, "jerry", JERRY, 3, false);
    struct app_config cfg = base_config();
    struct app_admin *ad = NULL;
    struct app_user_info *users = NULL;
    size_t n = 0;
    assert_int_equal(app_admin_open(&cfg, &ad, NULL), FA_OK);
    assert_int_equal(app_admin_user_list(ad, A.client_id, &users, &n), FA_OK);
    assert_int_equal(n, 3);
    assert_string_equal(users[0].user_id, "elton");
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
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "obama", false, 3, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_CONFLICT);
    s = create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "obama", false, 3, 0, true);
    assert_int_equal(s.r.rc, FA_OK);
    struct app_session *h = attach(&s, 5);
    app_ws_detach(app, h); /* abandoned: the old template stays */
}

static void test_verify(void **state)
{
    (void)state;
    struct cap f = authenticate(&A, "obama", "data/faces/identities/barack_obama/04.jpg");
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "obama");
    assert_true(f.res.confidence > 0.5);
    /* Another person claiming to be obama. */
    f = authenticate(&A, "obama", "data/faces/identities/elton_john/04.jpg");
    assert_false(f.res.authenticated);
    assert_true(f.res.has_user_id); /* the claimed user, not authenticated */
    assert_true(f.res.confidence < 0.5);
    assert_int_equal(app_metrics(app)->sessions_failed[1], 1);
}

static void test_identify(void **state)
{
    (void)state;
    struct cap f = authenticate(&A, NULL, "data/faces/identities/jerry_seinfeld/04.jpg");
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "jerry");
    f = authenticate(&A, NULL, "data/faces/identities/elton_john/04.jpg");
    assert_true(f.res.authenticated);
    assert_string_equal(f.res.user_id, "elton");
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
        create_session(app, B.client_id, APP_SESSION_AUTHENTICATION, "obama", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_USER_NOT_FOUND);
    struct cap f = authenticate(&B, NULL, "data/faces/identities/barack_obama/04.jpg");
    assert_false(f.res.authenticated);
    assert_false(f.res.has_user_id);
    assert_string_equal(f.res.encryption_method, "AES-256-GCM");
    /* B's own enrollment of the same person under the same user_id is its own. */
    enroll(&B, "obama", OBAMA, 2, false);
    f = authenticate(&B, "obama", "data/faces/identities/barack_obama/04.jpg");
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
    assert_true(m->frames_rejected[0] >= 1); /* no_face */
    assert_true(m->frames_rejected[1] >= 1); /* multiple_faces */
    assert_true(m->frames_rejected[5] >= 2); /* decode_failed */
}

/* require_liveness: every good frame counts but the session never completes. */
static void test_liveness_refused(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "obama", true, 1, 1, false);
    struct app_session *h = attach(&s, 400);
    for (int i = 0; i < 3; i++) {
        struct cap f = frame(h, "data/faces/identities/barack_obama/04.jpg");
        assert_int_equal(f.r.rc, FA_OK);
        assert_true(f.r.u.frame.success);
        assert_false(f.r.u.frame.liveness_verified);
        assert_string_equal(f.r.u.frame.reason, APP_REASON_LIVENESS_UNAVAILABLE);
        assert_false(f.r.u.frame.completed);
        assert_int_equal(f.r.u.frame.frames_processed, i + 1);
        assert_int_equal(app_ws_check(app, h), FA_OK);
    }
    app_ws_detach(app, h);
}

/* While a frame is processed, only the newest waiting frame is kept. */
static void test_newest_frame_wins(void **state)
{
    (void)state;
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_ENROLLMENT, "burst", false, 5, 0, false);
    struct app_session *h = attach(&s, 500);
    char *img = data_url("data/faces/identities/ben_affleck/02.jpg");
    struct cap c1 = {0}, c2 = {0}, c3 = {0};
    uint64_t dropped0 = app_metrics(app)->frames_dropped;
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c1), FA_OK);
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c2), FA_OK);
    assert_int_equal(app_ws_frame(app, h, fa_bytes_of(img, strlen(img)), capture, &c3), FA_OK);
    fa_free(img);
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
    char *img = data_url("data/faces/identities/ben_affleck/03.jpg");
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
    /* jerry has 0 failures so far; elton's face fails 5 times. */
    for (int i = 0; i < 5; i++) {
        struct cap f = authenticate(&A, "jerry", "data/faces/identities/elton_john/04.jpg");
        assert_false(f.res.authenticated);
    }
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "jerry", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_RATE_LIMIT);
    assert_true(s.r.retry_after_s > 0 && s.r.retry_after_s <= 180);
    /* Other users and identification are not blocked. */
    s = create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "elton", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_OK);
    advance_s(181);
    struct cap f = authenticate(&A, "jerry", "data/faces/identities/jerry_seinfeld/05.jpg");
    assert_true(f.res.authenticated);
}

/* Nothing lost across a restart; a deleted user is gone for good. */
static void test_restart_and_delete(void **state)
{
    (void)state;
    app_free(app);
    struct app_config cfg = engine_config();
    app = new_app(&cfg);
    struct cap f = authenticate(&A, "obama", "data/faces/identities/barack_obama/04.jpg");
    assert_true(f.res.authenticated);
    struct cap c = {0};
    assert_int_equal(app_user_delete(app, A.client_id, "obama", 1, capture, &c), FA_OK);
    wait_for(app, &c, 1);
    assert_int_equal(c.r.rc, FA_OK);
    struct cap s =
        create_session(app, A.client_id, APP_SESSION_AUTHENTICATION, "obama", false, 1, 0, false);
    assert_int_equal(s.r.rc, FA_ERR_USER_NOT_FOUND);
    f = authenticate(&A, NULL, "data/faces/identities/barack_obama/04.jpg");
    assert_false(f.res.authenticated && strcmp(f.res.user_id, "obama") == 0);
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
        cmocka_unit_test(test_liveness_refused),
        cmocka_unit_test(test_newest_frame_wins),
        cmocka_unit_test(test_detach_during_completion),
        cmocka_unit_test(test_brute_force_limit),
        cmocka_unit_test(test_restart_and_delete),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
