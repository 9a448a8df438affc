#!/usr/bin/env python3
"""The WebSocket protocol of faceauthd (R5, R8, R9, R15) on a real server
without the face engine (fast): connect validation (4404 unknown or
malformed token, 4403 token reuse, 4401 expired), connection_established,
ping/pong, error 4400 with the socket kept open for malformed JSON, unknown
types, missing images and binary messages, close 4400 for a message over the
size limit, close 4429 for a flood of invalid messages, close 4401 when the
session expires while connected (short --session-ttl), close 4500 when frame
processing fails inside the server, and SIGTERM: idle sockets get 1001 and
the server exits 0. Frame processing with the engine is in
test_server_flow.py."""
import asyncio
import json
import re
import signal
import time

import sys  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import fa_integ as fi  # noqa: E402  (first: it re-runs the test under /usr/bin/python3 if needed)

import websockets  # noqa: E402


def setup():
    s = fi.Server(engine=False).start()
    a = s.create_client("WS client")
    return {"s": s, "a": a, "t": s.login(a)}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def new_session(c, kind="enrollment", user_id="u", **kw):
    return c["s"].session(c["t"], kind, user_id, **kw)


async def expect_refused(url, code):
    ws = await fi.connect(url)
    got, msgs = await fi.until_closed(ws)
    assert got == code, (got, msgs)
    assert msgs and msgs[-1]["type"] == "error" and msgs[-1]["code"] == code, msgs
    return msgs


async def test_connect_codes(c):
    s = c["s"]
    base = "ws://127.0.0.1:%d" % s.port
    await expect_refused(base + "/ws/auth/process-image/NoSuchSession0123456789/", 4404)
    await expect_refused(base + "/ws/auth/process-image/bad%21token/", 4404)
    await expect_refused(base + "/ws/auth/process-image//", 4404)
    await expect_refused(base + "/ws/other/", 4404)
    j = new_session(c, "enrollment", "conn-user", frames=5)
    ws = await fi.connect(j["websocket_url"])
    m = await fi.recv_json(ws)
    assert m == {"type": "connection_established", "session_token": j["session_token"],
                 "session_type": "enrollment", "status": "active", "target_samples": 5,
                 "expires_at": j["expires_at"], "require_liveness": False}, m
    # a second socket for the same token while the first is open: 4403
    await expect_refused(j["websocket_url"], 4403)
    await ws.close()
    # and after it closed: the token cannot be reused
    await expect_refused(j["websocket_url"], 4403)
    # without the trailing slash works too
    j = new_session(c, "enrollment", "conn-user2")
    ws = await fi.connect(j["websocket_url"].rstrip("/"))
    assert (await fi.recv_json(ws))["type"] == "connection_established"
    await ws.close()
    # the status of a session whose socket went away unfinished
    g = s.get("/api/auth/sessions/%s/" % j["session_token"], token=c["t"]).json()
    assert g["status"] in ("failed", "active"), g


async def test_ping_and_bad_messages(c):
    j = new_session(c, "enrollment", "msg-user")
    ws = await fi.connect(j["websocket_url"])
    assert (await fi.recv_json(ws))["type"] == "connection_established"
    await ws.send(json.dumps({"type": "ping"}))
    assert await fi.recv_json(ws) == {"type": "pong"}
    bad = [
        ("{not json", "JSON"),
        ("[1,2,3]", "object"),
        ("\"frame\"", "json"),
        (json.dumps({"image": "x"}), "type"),
        (json.dumps({"type": 5}), "type"),
        (json.dumps({"type": "selfie"}), "type"),
        (json.dumps({"type": "frame"}), "image"),
        (json.dumps({"type": "frame", "image": ""}), "image"),
        (json.dumps({"type": "frame", "image": 42}), "image"),
        ("{" * 10 + "}" * 10, "nest"),
    ]
    for text, word in bad:
        await ws.send(text)
        m = await fi.recv_json(ws)
        assert m["type"] == "error" and m["code"] == 4400, (text, m)
        assert word.lower() in m["error"].lower(), (text, m)
        await asyncio.sleep(0.25)  # stay under the flood limit
    await ws.send(b"\x00\x01binary")
    m = await fi.recv_json(ws)
    assert m["type"] == "error" and m["code"] == 4400 and "binary" in m["error"], m
    # still open and serving
    await ws.send(json.dumps({"type": "ping"}))
    assert await fi.recv_json(ws) == {"type": "pong"}
    await ws.close()


async def test_oversized_message(c):
    j = new_session(c, "enrollment", "big-user")
    ws = await fi.connect(j["websocket_url"])
    assert (await fi.recv_json(ws))["type"] == "connection_established"
    # exactly at the limit is a (refused) message, one byte more closes
    body = json.dumps({"type": "nothing", "pad": ""})
    pad = 2 * 1024 * 1024 - len(body)
    await ws.send(body[:-2] + "x" * pad + "\"}")
    m = await fi.recv_json(ws)
    assert m["type"] == "error" and m["code"] == 4400, m
    await asyncio.sleep(0.2)
    await ws.send(body[:-2] + "x" * (pad + 1) + "\"}")
    code, msgs = await fi.until_closed(ws)
    assert code == 4400, (code, msgs)
    assert msgs and msgs[-1]["code"] == 4400 and "exceeds" in msgs[-1]["error"], msgs


async def test_invalid_flood_closes(c):
    j = new_session(c, "enrollment", "flood-user")
    ws = await fi.connect(j["websocket_url"])
    assert (await fi.recv_json(ws))["type"] == "connection_established"
    code = None
    try:
        for _ in range(200):
            await ws.send("nonsense")
    except websockets.exceptions.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd else None
    if code is None:
        code, msgs = await fi.until_closed(ws)
        errors = [m for m in msgs if m["type"] == "error"]
        # the replies read before the close: 4400 each, the last one 4429
        assert len(errors) <= 60, len(errors)
        if errors:
            assert errors[-1]["code"] == 4429, errors[-3:]
    assert code == 4429, code


async def test_frame_failure_is_4500(c):
    # without the engine a frame cannot be processed: internal failure 4500
    j = new_session(c, "enrollment", "frame-user")
    ws = await fi.connect(j["websocket_url"])
    assert (await fi.recv_json(ws))["type"] == "connection_established"
    await ws.send(fi.frame_msg(fi.clip_frames("studio_man_blink")[0]))
    code, msgs = await fi.until_closed(ws)
    assert code == 4500, (code, msgs)
    assert msgs[-1]["type"] == "error" and msgs[-1]["code"] == 4500, msgs


async def expiry_case():
    s = fi.Server(engine=False, args=["--session-ttl", "2"]).start()
    try:
        cl = s.create_client("TTL")
        t = s.login(cl)
        j1 = s.session(t, "enrollment", "ttl1")
        j2 = s.session(t, "enrollment", "ttl2")
        ws = await fi.connect(j1["websocket_url"])
        assert (await fi.recv_json(ws))["type"] == "connection_established"
        t0 = time.monotonic()
        code, msgs = await fi.until_closed(ws, timeout=10)
        assert code == 4401, (code, msgs)
        assert msgs[-1] == {"type": "error", "error": "session expired", "code": 4401}, msgs
        assert time.monotonic() - t0 < 5 * fi.SLOW
        # connecting after expiry: 4401 at once
        await expect_refused(j2["websocket_url"], 4401)
        g = s.get("/api/auth/sessions/%s/" % j2["session_token"], token=t).json()
        assert g["status"] == "expired", g
        m = s.get("/metrics").text
        assert re.search(r'faceauth_ws_closes_total\{code="4401"\} [1-9]', m), m
    finally:
        s.cleanup()


def test_expiry():
    asyncio.run(expiry_case())


async def sigterm_case():
    s = fi.Server(engine=False).start()
    try:
        cl = s.create_client("TERM")
        t = s.login(cl)
        socks = []
        for i in range(3):
            j = s.session(t, "enrollment", "term%d" % i)
            ws = await fi.connect(j["websocket_url"])
            assert (await fi.recv_json(ws))["type"] == "connection_established"
            socks.append(ws)
        s.proc.send_signal(signal.SIGTERM)
        for ws in socks:
            code, msgs = await fi.until_closed(ws, timeout=20)
            assert code == 1001, (code, msgs)
        rc = s.stop(timeout=30)
        assert rc == 0, (rc, s.log_text())
        log = s.log_text()
        assert "shutdown: signal received" in log and "faceauthd stopped" in log, log
    finally:
        s.cleanup()


def test_sigterm_closes_1001():
    asyncio.run(sigterm_case())


if __name__ == "__main__":
    fi.run_tests(shared=[test_connect_codes, test_ping_and_bad_messages, test_oversized_message,
                         test_invalid_flood_closes, test_frame_failure_is_4500],
                 own=[test_expiry, test_sigterm_closes_1001],
                 setup=setup, teardown=teardown)
