/* Operations endpoints: GET /healthz (200, or 503 while draining) and
 * GET /metrics, R18's figures in the Prometheus text format (counters end
 * in _total; an average session duration is _sum / _count; rates are the
 * scraper's rate() of the counters). */
#include "http/http.h"

#include <stdio.h>

#include "http/priv.h"

void http_h_healthz(struct http_ctx *h, const struct http_req *req)
{
    json_t *o = json_object();
    if (json_object_set_new(o, "status", json_string(h->draining ? "draining" : "ok")) != 0) {
        json_decref(o);
        o = NULL;
    }
    http_reply_json(h, req->conn_id, h->draining ? 503 : 200, o);
}

static void metric_head(struct fa_buf *b, const char *name, const char *type, const char *help)
{
    (void)fa_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_u64(struct fa_buf *b, const char *name, const char *labels, uint64_t v)
{
    (void)fa_buf_printf(b, "%s%s %llu\n", name, labels != NULL ? labels : "",
                        (unsigned long long)v);
}

static void metric_f(struct fa_buf *b, const char *name, double v)
{
    (void)fa_buf_printf(b, "%s %.6f\n", name, v);
}

/* A counter split by session type. */
static void by_type(struct fa_buf *b, const char *name, const char *help, const uint64_t v[2])
{
    metric_head(b, name, "counter", help);
    metric_u64(b, name, "{type=\"enrollment\"}", v[APP_SESSION_ENROLLMENT]);
    metric_u64(b, name, "{type=\"authentication\"}", v[APP_SESSION_AUTHENTICATION]);
}

static const char *const class_names[APP_CLASSES] = {
    "ok", "input", "auth", "forbidden", "not_found", "conflict", "limit", "internal", "unavailable",
};

void http_h_metrics(struct http_ctx *h, const struct http_req *req)
{
    const struct app_metrics *m = app_metrics(h->app);
    struct fa_buf b = {0};
    char labels[96];

    metric_head(&b, "faceauth_ws_connections", "gauge", "WebSocket connections open now");
    metric_u64(&b, "faceauth_ws_connections", NULL, m->ws_open);
    metric_head(&b, "faceauth_ws_connections_total", "counter", "WebSocket connections accepted");
    metric_u64(&b, "faceauth_ws_connections_total", NULL, m->ws_total);

    metric_head(&b, "faceauth_frames_processed_total", "counter", "Frames processed by a worker");
    metric_u64(&b, "faceauth_frames_processed_total", NULL, m->frames_total);
    metric_head(&b, "faceauth_frames_good_total", "counter",
                "Frames counted toward target_samples");
    metric_u64(&b, "faceauth_frames_good_total", NULL, m->frames_good);
    metric_head(&b, "faceauth_frames_dropped_total", "counter",
                "Frames replaced while waiting for a worker (newest wins)");
    metric_u64(&b, "faceauth_frames_dropped_total", NULL, m->frames_dropped);
    metric_head(&b, "faceauth_frames_rejected_total", "counter",
                "Processed frames that did not count, by reason");
    for (int i = 0; i < APP_REASONS; i++) {
        const char *name = app_metrics_reason_name(i);
        if (name == NULL)
            break;
        snprintf(labels, sizeof labels, "{reason=\"%s\"}", name);
        metric_u64(&b, "faceauth_frames_rejected_total", labels, m->frames_rejected[i]);
    }
    metric_head(&b, "faceauth_frame_processing_seconds", "summary",
                "Worker time per processed frame");
    metric_f(&b, "faceauth_frame_processing_seconds_sum", m->frame_seconds_sum);
    metric_u64(&b, "faceauth_frame_processing_seconds_count", NULL, m->frames_total);

    by_type(&b, "faceauth_sessions_created_total", "Sessions created", m->sessions_created);
    by_type(&b, "faceauth_sessions_completed_total", "Sessions completed successfully",
            m->sessions_completed);
    by_type(&b, "faceauth_sessions_failed_total",
            "Sessions failed (not matched, socket lost, internal error)", m->sessions_failed);
    by_type(&b, "faceauth_sessions_expired_total", "Sessions expired", m->sessions_expired);
    metric_head(&b, "faceauth_session_duration_seconds", "summary",
                "Creation to finish of finished sessions");
    metric_f(&b, "faceauth_session_duration_seconds_sum", m->session_seconds_sum);
    metric_u64(&b, "faceauth_session_duration_seconds_count", NULL, m->session_seconds_count);

    metric_head(&b, "faceauth_logins_total", "counter", "Client logins by result");
    metric_u64(&b, "faceauth_logins_total", "{result=\"ok\"}", m->logins_ok);
    metric_u64(&b, "faceauth_logins_total", "{result=\"failed\"}", m->logins_failed);
    metric_head(&b, "faceauth_rate_limited_total", "counter", "Requests refused by a rate limit");
    metric_u64(&b, "faceauth_rate_limited_total", NULL, m->rate_limited);
    metric_head(&b, "faceauth_errors_total", "counter", "Error replies by class");
    for (int c = 1; c < APP_CLASSES; c++) {
        snprintf(labels, sizeof labels, "{class=\"%s\"}", class_names[c]);
        metric_u64(&b, "faceauth_errors_total", labels, m->errors[c]);
    }
    metric_head(&b, "faceauth_http_responses_total", "counter", "HTTP responses by status class");
    for (int c = 1; c <= 5; c++) {
        snprintf(labels, sizeof labels, "{code=\"%dxx\"}", c);
        metric_u64(&b, "faceauth_http_responses_total", labels, h->responses[c]);
    }
    if (h->metrics_fn != NULL)
        h->metrics_fn(h->metrics_arg, &b);
    if (b.p == NULL) {
        http_reply_error(h, req->conn_id, FA_ERR_NOMEM, NULL, NULL, 0);
        return;
    }
    http_reply_text(h, req->conn_id, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
