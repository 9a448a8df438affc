/* ws/msg.c and ws/throttle.c: client message parsing (every refusal with its
 * status and a reason naming the field), the server messages read back with
 * jansson field by field, the one class -> close code mapping, allocation
 * failure at every step (a clean refusal, no leak, output untouched), and
 * the frame throttle on a driven clock (10 fps with timer jitter passes,
 * faster senders keep 10 fps and are never closed, sustained flooding is). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/alloc.h"
#include "ws/ws.h"

static enum fa_status parse(const char *text, struct ws_msg *m, struct fa_errinfo *err)
{
    *m = (struct ws_msg){0};
    return ws_msg_parse(fa_bytes_of(text, strlen(text)), m, err);
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct ws_msg m;
    struct fa_errinfo err = {{0}};
    assert_int_equal(parse("{\"type\":\"ping\"}", &m, &err), FA_OK);
    assert_int_equal(m.type, WS_MSG_PING);
    ws_msg_fini(&m);
    assert_int_equal(parse(" {\"image\":\"data:image/jpeg;base64,/9j/\", \"type\":\"frame\","
                           "\"extra\":[1,2]} ",
                           &m, &err),
                     FA_OK);
    assert_int_equal(m.type, WS_MSG_FRAME);
    assert_string_equal((const char *)m.image.p, "data:image/jpeg;base64,/9j/");
    assert_int_equal(m.image.n, strlen("data:image/jpeg;base64,/9j/"));
    ws_msg_fini(&m);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum fa_status rc;
        const char *word;
    } cases[] = {
        {"", FA_ERR_JSON, "JSON"},
        {"{", FA_ERR_JSON, "JSON"},
        {"nonsense", FA_ERR_JSON, "JSON"},
        {"[{\"type\":\"ping\"}]", FA_ERR_JSON, "object"},
        {"{\"type\":\"ping\",\"type\":\"frame\"}", FA_ERR_JSON, "JSON"}, /* duplicate key */
        {"{\"a\":{\"b\":{\"c\":{\"d\":{}}}},\"type\":\"ping\"}", FA_ERR_JSON, "nests"},
        {"{}", FA_ERR_ARG, "'type'"},
        {"{\"type\":1}", FA_ERR_ARG, "'type'"},
        {"{\"type\":null}", FA_ERR_ARG, "'type'"},
        {"{\"type\":\"PING\"}", FA_ERR_ARG, "unknown"},
        {"{\"type\":\"ping\\u0000x\"}", FA_ERR_JSON, "JSON"}, /* NUL refused */
        {"{\"type\":\"frame\"}", FA_ERR_ARG, "'image'"},
        {"{\"type\":\"frame\",\"image\":\"\"}", FA_ERR_ARG, "'image'"},
        {"{\"type\":\"frame\",\"image\":7}", FA_ERR_ARG, "'image'"},
        {"{\"type\":\"frame\",\"image\":[\"x\"]}", FA_ERR_ARG, "'image'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ws_msg m;
        struct fa_errinfo err = {{0}};
        enum fa_status rc = parse(cases[i].in, &m, &err);
        if (rc != cases[i].rc || strstr(err.what, cases[i].word) == NULL)
            fail_msg("case %zu '%s': %s '%s'", i, cases[i].in, fa_status_name(rc), err.what);
    }
    /* brackets inside strings do not count toward the depth */
    struct ws_msg m;
    assert_int_equal(parse("{\"type\":\"frame\",\"image\":\"[[[[[[[[{{{{{{\"}", &m, NULL), FA_OK);
    ws_msg_fini(&m);
    /* not NUL-terminated input is read by length only */
    const char text[] = "{\"type\":\"ping\"}garbage";
    assert_int_equal(ws_msg_parse(fa_bytes_of(text, 15), &m, NULL), FA_OK);
}

static json_t *load(const struct fa_buf *b)
{
    json_error_t e;
    json_t *o = json_loadb((const char *)b->p, b->n, 0, &e);
    if (o == NULL)
        fail_msg("not JSON: %.*s (%s)", (int)b->n, (const char *)b->p, e.text);
    return o;
}

static void test_build(void **state)
{
    (void)state;
    struct fa_buf b = {0};
    struct ws_session_info si = {.session_token = "tok",
                                 .session_type = "enrollment",
                                 .status = "active",
                                 .expires_at = "2025-10-27T12:34:56.789Z",
                                 .target_samples = 3,
                                 .require_liveness = true};
    assert_int_equal(ws_msg_connection_established(&si, &b), FA_OK);
    json_t *o = load(&b);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "connection_established");
    assert_string_equal(json_string_value(json_object_get(o, "session_token")), "tok");
    assert_string_equal(json_string_value(json_object_get(o, "session_type")), "enrollment");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "active");
    assert_int_equal(json_integer_value(json_object_get(o, "target_samples")), 3);
    assert_string_equal(json_string_value(json_object_get(o, "expires_at")),
                        "2025-10-27T12:34:56.789Z");
    assert_true(json_is_true(json_object_get(o, "require_liveness")));
    json_decref(o);
    fa_buf_reset(&b);

    struct ws_frame_report r = {.success = false,
                                .frames_processed = 2,
                                .target_samples = 3,
                                .quality_score = 0.25,
                                .frames_dropped = 4,
                                .reason = "no_face",
                                .message = "No face found"};
    assert_int_equal(ws_msg_frame_processed(&r, &b), FA_OK);
    o = load(&b);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "frame_processed");
    assert_true(json_is_false(json_object_get(o, "success")));
    assert_true(json_is_false(json_object_get(o, "liveness_verified")));
    assert_int_equal(json_integer_value(json_object_get(o, "frames_processed")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "frames_dropped")), 4);
    assert_true(json_real_value(json_object_get(o, "quality_score")) == 0.25);
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "no_face");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "No face found");
    json_decref(o);
    fa_buf_reset(&b);
    r = (struct ws_frame_report){.success = true, .quality_score = 0.0 / 0.0}; /* NaN */
    assert_int_equal(ws_msg_frame_processed(&r, &b), FA_OK);
    o = load(&b);
    assert_null(json_object_get(o, "reason"));
    assert_null(json_object_get(o, "message"));
    assert_true(json_real_value(json_object_get(o, "quality_score")) == 0.0);
    json_decref(o);
    fa_buf_reset(&b);
    /* a counted frame may say what is still missing */
    r = (struct ws_frame_report){.success = true,
                                 .blinks_detected = 0,
                                 .blinks_required = 1,
                                 .motion_detected = true,
                                 .message = "Blink once"};
    assert_int_equal(ws_msg_frame_processed(&r, &b), FA_OK);
    o = load(&b);
    assert_null(json_object_get(o, "reason"));
    assert_string_equal(json_string_value(json_object_get(o, "message")), "Blink once");
    assert_int_equal(json_integer_value(json_object_get(o, "blinks_required")), 1);
    assert_true(json_is_true(json_object_get(o, "motion_detected")));
    json_decref(o);
    fa_buf_reset(&b);
    assert_int_equal(
        ws_msg_session_failed("This face is already enrolled", 4403, "duplicate_face", "bob", &b),
        FA_OK);
    o = load(&b);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "error");
    assert_int_equal(json_integer_value(json_object_get(o, "code")), 4403);
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "duplicate_face");
    assert_string_equal(json_string_value(json_object_get(o, "duplicate_of")), "bob");
    json_decref(o);
    fa_buf_reset(&b);

    assert_int_equal(ws_msg_enrollment_complete("enr-1", "UEFZ", "AES-256-CBC", &b), FA_OK);
    o = load(&b);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "enrollment_complete");
    assert_string_equal(json_string_value(json_object_get(o, "enrollment_id")), "enr-1");
    json_t *enc = json_object_get(o, "encrypted_data");
    assert_int_equal(json_object_size(enc), 3);
    assert_string_equal(json_string_value(json_object_get(enc, "encrypted_payload")), "UEFZ");
    assert_string_equal(json_string_value(json_object_get(enc, "encryption_method")),
                        "AES-256-CBC");
    assert_string_equal(json_string_value(json_object_get(enc, "instructions")),
                        "Decrypt with your secret_key to access the data");
    json_decref(o);
    fa_buf_reset(&b);

    assert_int_equal(
        ws_msg_authentication_complete(false, NULL, 0.123456789, "UEFZ", "AES-256-GCM", &b), FA_OK);
    o = load(&b);
    assert_int_equal(json_object_size(o), 5);
    assert_true(json_is_false(json_object_get(o, "authenticated")));
    assert_true(json_is_null(json_object_get(o, "user_id")));
    assert_true(json_real_value(json_object_get(o, "confidence")) == 0.1235); /* 4 decimals */
    json_decref(o);
    fa_buf_reset(&b);
    assert_int_equal(ws_msg_authentication_complete(true, "alice", 0.9, "P", "M", &b), FA_OK);
    o = load(&b);
    assert_string_equal(json_string_value(json_object_get(o, "user_id")), "alice");
    json_decref(o);
    fa_buf_reset(&b);

    assert_int_equal(ws_msg_error("bad \"thing\"\n", 4400, &b), FA_OK);
    assert_string_equal((const char *)b.p,
                        "{\"type\":\"error\",\"error\":\"bad \\\"thing\\\"\\n\",\"code\":4400}");
    fa_buf_reset(&b);
    assert_int_equal(ws_msg_pong(&b), FA_OK);
    assert_string_equal((const char *)b.p, "{\"type\":\"pong\"}");
    fa_buf_fini(&b);
}

static void test_close_codes(void **state)
{
    (void)state;
    assert_int_equal(ws_close_code(FA_OK), 1000);
    assert_int_equal(ws_close_code(FA_ERR_JSON), 4400);
    assert_int_equal(ws_close_code(FA_ERR_IMG_CORRUPT), 4400);
    assert_int_equal(ws_close_code(FA_ERR_TOO_LARGE), 4400);
    assert_int_equal(ws_close_code(FA_ERR_SESSION_EXPIRED), 4401);
    assert_int_equal(ws_close_code(FA_ERR_SESSION_USED), 4403);
    assert_int_equal(ws_close_code(FA_ERR_SESSION_NOT_FOUND), 4404);
    assert_int_equal(ws_close_code(FA_ERR_RATE_LIMIT), 4429);
    assert_int_equal(ws_close_code(FA_ERR_CONFLICT), 4000);
    assert_int_equal(ws_close_code(FA_ERR_NOMEM), 4500);
    assert_int_equal(ws_close_code(FA_ERR_BUSY), 4500);
    assert_int_equal(ws_close_code((enum fa_status) - 12345), 4500);
    assert_int_equal(ws_close_index(4429), 7);
    assert_int_equal(ws_close_index(1006), -1);
}

/* Every allocation of parse and build fails in turn: a clean refusal (or
 * success once past the last one), `out` untouched on failure, no leak
 * (the ASan build checks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *frame = "{\"type\":\"frame\",\"image\":\"data:image/png;base64,iVBORw0KGgo=\"}";
    for (long n = 0;; n++) {
        struct ws_msg m = {0};
        fa_alloc_fail_after(n);
        enum fa_status rc = ws_msg_parse(fa_bytes_of(frame, strlen(frame)), &m, NULL);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            ws_msg_fini(&m);
            assert_true(n > 0);
            break;
        }
        /* jansson's lexer reports most of its allocation failures as syntax
         * errors, so a refusal may say FA_ERR_JSON; never anything else */
        assert_true(rc == FA_ERR_NOMEM || rc == FA_ERR_JSON);
        assert_null(m.image.p);
    }
    for (long n = 0;; n++) {
        struct fa_buf b = {0};
        assert_int_equal(fa_buf_puts(&b, "x"), FA_OK);
        fa_alloc_fail_after(n);
        enum fa_status rc =
            ws_msg_authentication_complete(true, "alice", 0.5, "UEFZ", "AES-256-CBC", &b);
        fa_alloc_fail_reset();
        if (rc == FA_OK) {
            assert_true(b.n > 1);
            fa_buf_fini(&b);
            break;
        }
        assert_int_equal(rc, FA_ERR_NOMEM);
        assert_int_equal(b.n, 1);
        assert_string_equal((const char *)b.p, "x");
        fa_buf_fini(&b);
    }
}

static const struct ws_throttle_config cfg = {
    .min_interval_ms = 100, .jitter_ms = 25, .flood_burst = 20, .flood_refill_per_s = 15};
static const struct ws_throttle_config strict = {
    .min_interval_ms = 100, .jitter_ms = 0, .flood_burst = 20, .flood_refill_per_s = 15};

static void test_throttle_rate(void **state)
{
    (void)state;
    struct ws_throttle t;
    ws_throttle_init(&t, &cfg, 1000);
    /* exactly 10 fps for a minute: all accepted */
    for (int i = 0; i < 600; i++)
        assert_int_equal(ws_throttle_frame(&t, &cfg, 1000 + i * 100), WS_THROTTLE_ACCEPT);
    int64_t t0 = 1000 + 599 * 100; /* the last accepted; its successor's slot is t0 + 100 */
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 50), WS_THROTTLE_DROP);   /* too close */
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 74), WS_THROTTLE_DROP);   /* 26 ms early */
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 75), WS_THROTTLE_ACCEPT); /* 25 ms early */
    /* being early is not a credit: the next slot is t0 + 200 */
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 170), WS_THROTTLE_DROP);
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 175), WS_THROTTLE_ACCEPT);
    assert_int_equal(t.dropped, 3);
    /* late frames do not bank slots for a burst either */
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 5000), WS_THROTTLE_ACCEPT);
    assert_int_equal(ws_throttle_frame(&t, &cfg, t0 + 5050), WS_THROTTLE_DROP);
    /* jitter 0: the literal rule, 100 ms since the last accepted frame */
    ws_throttle_init(&t, &strict, 0);
    assert_int_equal(ws_throttle_frame(&t, &strict, 10), WS_THROTTLE_ACCEPT);
    assert_int_equal(ws_throttle_frame(&t, &strict, 109), WS_THROTTLE_DROP);
    assert_int_equal(ws_throttle_frame(&t, &strict, 110), WS_THROTTLE_ACCEPT);
}

/* One frame every period_us (+ jitter_us * a pseudo-random factor in
 * [-1, 1]) for `ms`: counts; fails on a close. */
static void run_rate(int64_t period_us, int64_t jitter_us, int64_t ms, int *accepted, int *dropped)
{
    struct ws_throttle t;
    ws_throttle_init(&t, &cfg, 0);
    *accepted = *dropped = 0;
    uint32_t seed = 12345;
    for (int64_t base = 0; base < ms * 1000; base += period_us) {
        seed = seed * 1103515245u + 12345u;
        int64_t j = jitter_us ? (int64_t)(seed >> 8) % (2 * jitter_us + 1) - jitter_us : 0;
        int64_t us = base + j < 0 ? 0 : base + j;
        enum ws_throttle_verdict v = ws_throttle_frame(&t, &cfg, us / 1000);
        if (v == WS_THROTTLE_CLOSE)
            fail_msg("closed at %lld ms (period %lld us)", (long long)(us / 1000),
                     (long long)period_us);
        if (v == WS_THROTTLE_ACCEPT)
            (*accepted)++;
        else
            (*dropped)++;
    }
}

static void test_throttle_faster_clients_never_close(void **state)
{
    (void)state;
    int a, d;
    /* 10 fps with +-12 ms timer jitter for five minutes: nothing dropped
     * (a late frame moves the schedule, so the tolerance must cover the
     * jitter's full swing, 24 ms < 25) */
    run_rate(100000, 12000, 300000, &a, &d);
    assert_int_equal(d, 0);
    assert_int_equal(a, 3000);
    /* +-20 ms: some are dropped, but most get through and it never closes */
    run_rate(100000, 20000, 300000, &a, &d);
    assert_true(d > 0 && a >= 2500);
    /* 11 fps and 14 fps: never closed, never more than 10 fps accepted, and
     * more than the literal rule's every other frame at 11 fps (5.5 fps) */
    run_rate(1000000 / 11, 0, 300000, &a, &d);
    assert_true(a >= 2400 && a <= 3001); /* 8.25 fps: 3 of 4 frames */
    assert_true(d > 0);
    run_rate(1000000 / 14, 0, 300000, &a, &d);
    assert_true(a >= 2000 && a <= 3001); /* 7 fps */
    assert_true(d > 0);
}

static void test_throttle_flood_closes(void **state)
{
    (void)state;
    /* 20 fps: the bucket (20, +15/s) runs dry after 20 / (20 - 15) = 4 s */
    struct ws_throttle t;
    ws_throttle_init(&t, &cfg, 0);
    int64_t now = 0;
    enum ws_throttle_verdict v = WS_THROTTLE_ACCEPT;
    for (; now < 60000 && v != WS_THROTTLE_CLOSE; now += 50)
        v = ws_throttle_frame(&t, &cfg, now);
    assert_int_equal(v, WS_THROTTLE_CLOSE);
    assert_true(now >= 3500 && now <= 4600);
    /* a burst at one instant: 1 accepted, 19 refused, then closed */
    ws_throttle_init(&t, &cfg, 0);
    assert_int_equal(ws_throttle_frame(&t, &cfg, 5), WS_THROTTLE_ACCEPT);
    for (int i = 0; i < 19; i++)
        assert_int_equal(ws_throttle_frame(&t, &cfg, 5), WS_THROTTLE_DROP);
    assert_int_equal(ws_throttle_frame(&t, &cfg, 5), WS_THROTTLE_CLOSE);
    /* strikes from invalid messages spend the same bucket, refilled by time */
    ws_throttle_init(&t, &cfg, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ws_throttle_strike(&t, &cfg, 0), WS_THROTTLE_DROP);
    assert_int_equal(ws_throttle_strike(&t, &cfg, 0), WS_THROTTLE_CLOSE);
    assert_int_equal(ws_throttle_strike(&t, &cfg, 67), WS_THROTTLE_DROP); /* +1 after 67 ms */
    assert_int_equal(ws_throttle_strike(&t, &cfg, 67), WS_THROTTLE_CLOSE);
    /* a huge gap refills to the burst, not beyond */
    for (int i = 0; i < 20; i++)
        assert_int_equal(ws_throttle_strike(&t, &cfg, INT64_MAX / 2), WS_THROTTLE_DROP);
    assert_int_equal(ws_throttle_strike(&t, &cfg, INT64_MAX / 2), WS_THROTTLE_CLOSE);
}

int main(void)
{
    json_set_alloc_funcs(fa_malloc, fa_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_throttle_rate),
        cmocka_unit_test(test_throttle_faster_clients_never_close),
        cmocka_unit_test(test_throttle_flood_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
