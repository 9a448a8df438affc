#!/usr/bin/env python3
"""faceauthd's REST API on a real server without the face engine (fast):
R1 login, R2/R3 session creation with every field validated (400 naming the
field), bearer checks, session status for the owner only (cross-client: 404),
user deletion, 404/405/411/413, malformed and deeply nested bodies, login
rate limits (429 + Retry-After), /healthz, /metrics, --public-url, and TLS
(https + wss://) with a self-signed certificate."""
import asyncio
import datetime
import json
import os
import re
import socket
import ssl
import tempfile

import sys  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import fa_integ as fi  # noqa: E402  (first: it re-runs the test under /usr/bin/python3 if needed)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def setup():
    s = fi.Server(engine=False).start()
    a = s.create_client("Client A")
    b = s.create_client("Client B")
    return {"s": s, "a": a, "b": b, "ta": s.login(a), "tb": s.login(b)}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def err(r, status, field=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    j = r.json()
    assert j["code"] == status and isinstance(j["error"], str) and j["error"], j
    if field is not None:
        assert j.get("field") == field, (field, j)
    return j


def test_healthz_and_metrics(c):
    s = c["s"]
    r = s.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = s.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    for name in ("faceauth_ws_connections ", "faceauth_frames_processed_total ",
                 "faceauth_sessions_created_total{type=\"enrollment\"}",
                 "faceauth_session_duration_seconds_sum", "faceauth_errors_total{class=",
                 "faceauth_logins_total{result=\"ok\"} ", "faceauth_ws_closes_total{code=\"4404\"}"):
        assert name in r.text, name
    # every sample line is "name{labels} value"
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-z_]+(\{[a-z_]+=\"[^\"]*\"\})? -?[0-9.e+]+$", line), line
    assert re.search(r"faceauth_logins_total\{result=\"ok\"\} [1-9]", r.text)


def test_routing_errors(c):
    s = c["s"]
    j = err(s.get("/api/nothing/"), 404)
    assert j["reason"] == "not_found"
    r = s.get("/api/auth/client/")
    err(r, 405)
    assert r.headers["allow"] == "POST"
    r = s.delete("/healthz")
    err(r, 405)
    # trailing slash optional
    assert s.get("/healthz/").status_code == 200


def raw_request(s, data):
    """Send bytes, read the answer until the server closes (a reset ends it)."""
    out = b""
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as k:
        try:
            k.sendall(data)
        except OSError:
            return ""
        while True:
            try:
                b = k.recv(65536)
            except OSError:  # reset, or the timeout of a server that keeps it open
                break
            if not b:
                break
            out += b
    return out.decode("utf-8", "replace")


def test_body_limits(c):
    s = c["s"]
    # no Content-Length on a POST: 411
    out = raw_request(s, b"POST /api/auth/client/ HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith("HTTP/1.1 411"), out[:200]
    # over 64 KiB: 413
    big = json.dumps({"api_key": "a" * 70000, "secret_key": "b"})
    err(s.post("/api/auth/client/", raw=big), 413)
    j = err(s.post("/api/auth/client/", raw="{not json"), 400)
    assert j["reason"] == "json", j
    err(s.post("/api/auth/client/", raw="[1,2]"), 400)
    err(s.post("/api/auth/client/", raw="[" * 50 + "]" * 50), 400)
    deep = '{"api_key":"a","secret_key":"b","x":' + '{"y":' * 20 + "1" + "}" * 20 + "}"
    err(s.post("/api/auth/client/", raw=deep), 400)
    err(s.post("/api/auth/client/", raw='{"api_key":"a","api_key":"b","secret_key":"c"}'), 400)


def test_login(c):
    s, a = c["s"], c["a"]
    err(s.post("/api/auth/client/", {"secret_key": "x"}), 400, "api_key")
    err(s.post("/api/auth/client/", {"api_key": "x"}), 400, "secret_key")
    err(s.post("/api/auth/client/", {"api_key": 5, "secret_key": "x"}), 400, "api_key")
    err(s.post("/api/auth/client/", {"api_key": a["api_key"], "secret_key": "sk_wrong"}), 401)
    r = s.post("/api/auth/client/", {"api_key": a["api_key"], "secret_key": a["secret_key"]})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["client_id"] == a["client_id"]
    assert j["token"].count(".") == 2  # a JWT
    assert ISO_MS.match(j["expires_at"]), j
    exp = datetime.datetime.strptime(j["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    left = (exp - datetime.datetime.utcnow()).total_seconds()
    assert 3500 < left <= 3601, left


def test_session_create_validation(c):
    s, t = c["s"], c["ta"]
    err(s.post("/api/auth/enrollment/", {"user_id": "u1"}), 401)
    err(s.post("/api/auth/enrollment/", {"user_id": "u1"}, token="nope.nope.nope"), 401)
    tampered = t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1]
    err(s.post("/api/auth/enrollment/", {"user_id": "u1"}, token=tampered), 401)
    cases = [
        ({"user_id": 7}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 129}, "user_id"),
        ({"user_id": "tab\there"}, "user_id"),
        ({"user_id": "u1", "require_liveness": "yes"}, "require_liveness"),
        ({"user_id": "u1", "replace": 1}, "replace"),
        ({"user_id": "u1", "metadata": []}, "metadata"),
        ({"user_id": "u1", "metadata": {"min_frames_required": 0}}, "metadata.min_frames_required"),
        ({"user_id": "u1", "metadata": {"min_frames_required": 21}},
         "metadata.min_frames_required"),
        ({"user_id": "u1", "metadata": {"min_frames_required": "3"}},
         "metadata.min_frames_required"),
        ({"user_id": "u1", "metadata": {"min_frames_required": 2.5}},
         "metadata.min_frames_required"),
        ({"user_id": "u1", "metadata": {"min_frames_required": 10 ** 12}},
         "metadata.min_frames_required"),
        ({"user_id": "u1", "metadata": {"required_blinks": 6}}, "metadata.required_blinks"),
        ({"user_id": "u1", "metadata": {"required_blinks": -1}}, "metadata.required_blinks"),
        ({}, "user_id"),  # enrollment needs a user_id (the app names it)
    ]
    for body, field in cases:
        j = err(s.post("/api/auth/enrollment/", body, token=t), 400, field)
        assert field.split(".")[-1] in j["error"], j
    # verification of a user this client has not enrolled
    err(s.post("/api/auth/authentication/", {"user_id": "ghost"}, token=t), 404)


def test_session_create_and_get(c):
    s, t, tb = c["s"], c["ta"], c["tb"]
    j = s.session(t, "enrollment", "alice", liveness=True, frames=4, blinks=2)
    for k in ("session_token", "enrollment_id", "status", "target_samples", "expires_at",
              "websocket_url", "message"):
        assert k in j, (k, j)
    assert j["status"] == "pending" and j["target_samples"] == 4
    assert j["session_type"] == "enrollment" and j["require_liveness"] is True
    assert ISO_MS.match(j["expires_at"])
    tok = j["session_token"]
    assert len(tok) >= 22 and re.match(r"^[A-Za-z0-9_-]+$", tok), tok
    assert j["websocket_url"] == "ws://127.0.0.1:%d/ws/auth/process-image/%s/" % (s.port, tok)
    # defaults: require_liveness true, 3 frames, 1 blink
    d = s.session(t, "enrollment", "bob", liveness=None)
    r = s.post("/api/auth/enrollment/", {"user_id": "carol"}, token=t)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["require_liveness"] is True and d["target_samples"] == 3 and \
        d["required_blinks"] == 1, d
    # identification (no user_id) is an authentication session
    r = s.post("/api/auth/authentication/", {"require_liveness": False}, token=t)
    assert r.status_code in (201, 404), r.text
    if r.status_code == 201:
        assert r.json()["mode"] == "identification" and "authentication_id" in r.json()
    # status for the owner
    g = s.get("/api/auth/sessions/%s/" % tok, token=t)
    assert g.status_code == 200, g.text
    g = g.json()
    assert g["status"] == "pending" and g["frames_processed"] == 0 and g["result"] is None
    assert g["enrollment_id"] == j["enrollment_id"] and g["user_id"] == "alice"
    assert g["finished_at"] is None and ISO_MS.match(g["created_at"])
    # another client sees nothing, nobody without a token sees anything
    err(s.get("/api/auth/sessions/%s/" % tok, token=tb), 404)
    err(s.get("/api/auth/sessions/%s/" % tok), 401)
    err(s.get("/api/auth/sessions/NoSuchToken123/", token=t), 404)


def test_user_delete(c):
    s, t = c["s"], c["ta"]
    err(s.delete("/api/users/alice/"), 401)
    err(s.delete("/api/users/nobody/", token=t), 404)
    err(s.delete("/api/users/" + "x" * 200 + "/", token=t), 400, "user_id")


def test_public_url():
    s = fi.Server(engine=False, args=["--public-url", "https://auth.example.com/"]).start()
    try:
        cl = s.create_client("P")
        j = s.session(s.login(cl), "enrollment", "u")
        assert j["websocket_url"] == \
            "wss://auth.example.com/ws/auth/process-image/%s/" % j["session_token"], j
    finally:
        s.cleanup()


def test_login_rate_limit():
    s = fi.Server(engine=False, args=["--login-fail-max", "3", "--login-fail-window",
                                      "120"]).start()
    try:
        cl = s.create_client("R")
        for _ in range(3):
            err(s.post("/api/auth/client/", {"api_key": cl["api_key"], "secret_key": "bad"}), 401)
        r = s.post("/api/auth/client/", {"api_key": cl["api_key"], "secret_key": "bad"})
        j = err(r, 429)
        assert j["reason"] == "rate_limit", j
        ra = int(r.headers["retry-after"])
        assert 0 < ra <= 120, ra
        # even the right secret waits until the window has passed
        err(s.post("/api/auth/client/", {"api_key": cl["api_key"],
                                         "secret_key": cl["secret_key"]}), 429)
        m = s.get("/metrics").text
        assert re.search(r"faceauth_rate_limited_total [1-9]", m), m
    finally:
        s.cleanup()


def make_cert(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cp, kp = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cp, kp


def test_tls():
    import urllib3
    urllib3.disable_warnings()
    d = tempfile.mkdtemp(prefix="fa_tls_")
    cp, kp = make_cert(d)
    s = fi.Server(engine=False, args=["--tls-cert", cp, "--tls-key", kp]).start()
    try:
        r = s.get("/healthz")
        assert r.status_code == 200 and r.url.startswith("https://")
        cl = s.create_client("T")
        j = s.session(s.login(cl), "enrollment", "u")
        url = j["websocket_url"]
        assert url.startswith("wss://127.0.0.1:%d/" % s.port), url

        async def go():
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ws = await fi.connect(url, ssl=ctx)
            m = await fi.recv_json(ws)
            assert m["type"] == "connection_established", m
            await ws.close()
        asyncio.run(go())
        # plain HTTP on the TLS port does not get an answer in clear text
        out = raw_request(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert '"status":"ok"' not in out
    finally:
        s.cleanup()


def run_daemon(args, env=None):
    import subprocess
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([os.path.join(fi.build_dir(), "faceauthd")] + args, capture_output=True,
                          text=True, timeout=60 * fi.SLOW, env=e)


def ttl_of(session):
    c = datetime.datetime.strptime(session["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    e = datetime.datetime.strptime(session["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return round((e - c).total_seconds())


def test_options():
    r = run_daemon(["--help"])
    assert r.returncode == 0 and "--listen HOST:PORT" in r.stdout and "FACEAUTH_DATA_DIR" in \
        r.stdout, r
    for args, word in ((["--bogus"], "unknown option"),
                       (["--session-ttl", "0"], "from 1 to"),
                       (["--session-ttl"], "needs a value"),
                       (["--workers=many"], "integer"),
                       (["--listen", "localhost"], "--listen"),
                       (["--listen", "1.2.3.4:99999"], "--listen"),
                       (["--log-level", "loud"], "unknown level"),
                       (["--tls-cert", "/x.pem"], "go together"),
                       (["--public-url", "ftp://x"], "--public-url"),
                       (["--frame-jitter", "100"], "below --frame-interval"),
                       (["stray"], "unexpected argument")):
        r = run_daemon(args)
        assert r.returncode == 2 and word in r.stderr, (args, r.returncode, r.stderr)
    r = run_daemon([], env={"FACEAUTH_SESSION_TTL": "abc"})
    assert r.returncode == 2 and "FACEAUTH_SESSION_TTL" in r.stderr, r.stderr
    # the environment sets an option, the command line overrides it
    s = fi.Server(engine=False, env={"FACEAUTH_SESSION_TTL": "7"}).start()
    try:
        t = s.login(s.create_client("E"))
        j = s.session(t, "enrollment", "u")
        g = s.get("/api/auth/sessions/%s/" % j["session_token"], token=t).json()
        assert ttl_of(g) == 7, g
        # the port is taken: a second server on it fails to start, exit 1
        r = run_daemon(["--listen", "127.0.0.1:%d" % s.port, "--data-dir",
                        os.path.join(s.tmp, "other"), "--no-engine"])
        assert r.returncode == 1 and "cannot serve" in r.stderr, (r.returncode, r.stderr)
    finally:
        s.cleanup()
    s = fi.Server(engine=False, env={"FACEAUTH_SESSION_TTL": "7"},
                  args=["--session-ttl", "9"]).start()
    try:
        t = s.login(s.create_client("E"))
        j = s.session(t, "enrollment", "u")
        g = s.get("/api/auth/sessions/%s/" % j["session_token"], token=t).json()
        assert ttl_of(g) == 9, g
        assert "faceauth client create --data-dir" in s.log_text()
    finally:
        s.cleanup()


if __name__ == "__main__":
    fi.run_tests(shared=[test_healthz_and_metrics, test_routing_errors, test_body_limits,
                         test_login, test_session_create_validation, test_session_create_and_get,
                         test_user_delete],
                 own=[test_public_url, test_login_rate_limit, test_tls, test_options],
                 setup=setup, teardown=teardown)
