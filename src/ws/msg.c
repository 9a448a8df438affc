/* WebSocket messages (R5-R9): parsing what a client sends and building what
 * the server sends, with jansson. Parsing is bounded before jansson sees the
 * bytes (nesting depth scanned first, duplicate keys rejected); building uses
 * the reference-stealing setters and serialises straight into an fa_buf.
 * The one mapping from a status class to a close code lives here. */
#include "ws/ws.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"

#define WS_MAX_DEPTH 4 /* {"type":..,"image":..} needs 1; leave room, refuse abuse */

int ws_close_code(enum fa_status s)
{
    switch (fa_status_class(s)) {
    case FA_CLASS_OK:
        return WS_CLOSE_NORMAL;
    case FA_CLASS_INPUT:
        return WS_CLOSE_BAD_REQUEST;
    case FA_CLASS_AUTH:
        return WS_CLOSE_EXPIRED;
    case FA_CLASS_FORBIDDEN:
        return WS_CLOSE_FORBIDDEN;
    case FA_CLASS_NOT_FOUND:
        return WS_CLOSE_NOT_FOUND;
    case FA_CLASS_CONFLICT:
        return WS_CLOSE_GENERIC;
    case FA_CLASS_LIMIT:
        /* a size limit is a bad request; only rates are 4429 */
        return s == FA_ERR_TOO_LARGE ? WS_CLOSE_BAD_REQUEST : WS_CLOSE_RATE;
    case FA_CLASS_INTERNAL:
    case FA_CLASS_UNAVAILABLE:
        return WS_CLOSE_INTERNAL;
    }
    return WS_CLOSE_INTERNAL;
}

/* Deepest nesting of objects/arrays in `in`, ignoring brackets inside strings.
 * Stops counting once `limit` is exceeded. Malformed input is jansson's to
 * reject; this only bounds its work. */
static int json_depth(struct fa_bytes in, int limit)
{
    int depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < in.n; i++) {
        uint8_t c = in.p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
            if (max > limit)
                return max;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

enum fa_status ws_msg_parse(struct fa_bytes in, struct ws_msg *out, struct fa_errinfo *err)
{
    enum fa_status rc = FA_ERR_JSON;
    json_t *root = NULL;
    json_error_t jerr;

    if (json_depth(in, WS_MAX_DEPTH) > WS_MAX_DEPTH) {
        fa_errinfo_set(err, "message nests deeper than %d levels", WS_MAX_DEPTH);
        goto out;
    }
    root = json_loadb((const char *)in.p, in.n, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            rc = FA_ERR_NOMEM;
        fa_errinfo_set(err, "malformed JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        fa_errinfo_set(err, "message must be a JSON object");
        goto out;
    }
    rc = FA_ERR_ARG;
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        fa_errinfo_set(err, "field 'type' is missing or not a string");
        goto out;
    }
    const char *t = json_string_value(type);
    if (strcmp(t, "ping") == 0) {
        *out = (struct ws_msg){.type = WS_MSG_PING};
        rc = FA_OK;
        goto out;
    }
    if (strcmp(t, "frame") != 0) {
        fa_errinfo_set(err, "unknown message type (expected 'frame' or 'ping')");
        goto out;
    }
    json_t *image = json_object_get(root, "image");
    if (!json_is_string(image) || json_string_length(image) == 0) {
        fa_errinfo_set(err, "field 'image' is missing or not a non-empty string");
        goto out;
    }
    struct fa_buf buf = {0};
    rc = fa_buf_append(&buf, json_string_value(image), json_string_length(image));
    if (rc != FA_OK)
        goto out;
    *out = (struct ws_msg){.type = WS_MSG_FRAME, .image = buf};
out:
    json_decref(root);
    return rc;
}

void ws_msg_fini(struct ws_msg *m)
{
    fa_buf_fini(&m->image);
}

static int dump_cb(const char *p, size_t n, void *arg)
{
    return fa_buf_append(arg, p, n) == FA_OK ? 0 : -1;
}

/* Serialise and release `obj` (NULL: an allocation failed while building).
 * Appends to `out` only on FA_OK. */
static enum fa_status finish(json_t *obj, struct fa_buf *out)
{
    if (obj == NULL)
        return FA_ERR_NOMEM;
    size_t n0 = out->n;
    enum fa_status rc = FA_OK;
    if (json_dump_callback(obj, dump_cb, out, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0) {
        out->n = n0;
        if (out->p != NULL)
            out->p[n0] = 0;
        rc = FA_ERR_NOMEM;
    }
    json_decref(obj);
    return rc;
}

/* Builders. json_object_set_new steals its value even when it fails (also
 * for a NULL object or value), so a tree is built without leaks by setting
 * every field and checking once. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (json_object_set_new(o, key, v) != 0)
        *ok = false;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static double finite_or_zero(double x)
{
    return isfinite(x) ? x : 0.0;
}

/* Confidence as the encrypted payload carries it (4 decimals), so the two
 * agree exactly. */
static double confidence4(double x)
{
    return round(finite_or_zero(x) * 1e4) / 1e4;
}

/* Serialise and release `o` when every field went in. */
static enum fa_status done(json_t *o, bool ok, struct fa_buf *out)
{
    if (o == NULL || !ok) {
        json_decref(o);
        return FA_ERR_NOMEM;
    }
    return finish(o, out);
}

enum fa_status ws_msg_connection_established(const struct ws_session_info *si, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("connection_established"), &ok);
    put(o, "session_token", str_or_null(si->session_token), &ok);
    put(o, "session_type", str_or_null(si->session_type), &ok);
    put(o, "status", str_or_null(si->status), &ok);
    put(o, "target_samples", json_integer(si->target_samples), &ok);
    put(o, "expires_at", str_or_null(si->expires_at), &ok);
    put(o, "require_liveness", json_boolean(si->require_liveness), &ok);
    return done(o, ok, out);
}

enum fa_status ws_msg_frame_processed(const struct ws_frame_report *r, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("frame_processed"), &ok);
    put(o, "success", json_boolean(r->success), &ok);
    put(o, "frames_processed", json_integer(r->frames_processed), &ok);
    put(o, "target_samples", json_integer(r->target_samples), &ok);
    put(o, "liveness_verified", json_boolean(r->liveness_verified), &ok);
    put(o, "quality_score", json_real(finite_or_zero(r->quality_score)), &ok);
    put(o, "blinks_detected", json_integer(r->blinks_detected), &ok);
    put(o, "blinks_required", json_integer(r->blinks_required), &ok);
    put(o, "motion_detected", json_boolean(r->motion_detected), &ok);
    put(o, "frames_dropped", json_integer(r->frames_dropped), &ok);
    if (r->reason != NULL)
        put(o, "reason", json_string(r->reason), &ok);
    if (r->message != NULL || r->reason != NULL)
        put(o, "message", json_string(r->message != NULL ? r->message : r->reason), &ok);
    return done(o, ok, out);
}

static json_t *encrypted_data(const char *payload_b64, const char *method)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "encrypted_payload", str_or_null(payload_b64), &ok);
    put(o, "encryption_method", str_or_null(method), &ok);
    put(o, "instructions", json_string("Decrypt with your secret_key to access the data"), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

enum fa_status ws_msg_enrollment_complete(const char *enrollment_id, const char *payload_b64,
                                          const char *method, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("enrollment_complete"), &ok);
    put(o, "enrollment_id", str_or_null(enrollment_id), &ok);
    put(o, "encrypted_data", encrypted_data(payload_b64, method), &ok);
    return done(o, ok, out);
}

enum fa_status ws_msg_authentication_complete(bool authenticated, const char *user_id,
                                              double confidence, const char *payload_b64,
                                              const char *method, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("authentication_complete"), &ok);
    put(o, "authenticated", json_boolean(authenticated), &ok);
    put(o, "user_id", str_or_null(user_id), &ok);
    put(o, "confidence", json_real(confidence4(confidence)), &ok);
    put(o, "encrypted_data", encrypted_data(payload_b64, method), &ok);
    return done(o, ok, out);
}

enum fa_status ws_msg_error(const char *text, int code, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("error"), &ok);
    put(o, "error", json_string(text != NULL ? text : "error"), &ok);
    put(o, "code", json_integer(code), &ok);
    return done(o, ok, out);
}

enum fa_status ws_msg_session_failed(const char *text, int code, const char *reason,
                                     const char *duplicate_of, struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("error"), &ok);
    put(o, "error", json_string(text != NULL ? text : "session failed"), &ok);
    put(o, "code", json_integer(code), &ok);
    put(o, "reason", json_string(reason != NULL ? reason : "session_failed"), &ok);
    if (duplicate_of != NULL)
        put(o, "duplicate_of", json_string(duplicate_of), &ok);
    return done(o, ok, out);
}

enum fa_status ws_msg_pong(struct fa_buf *out)
{
    bool ok = true;
    json_t *o = json_object();
    put(o, "type", json_string("pong"), &ok);
    return done(o, ok, out);
}
