#!/usr/bin/env python3
"""Whole sessions on a real faceauthd with the face engine, on the shared
webcam frames, driven as a client would (REST login and session, frames
over a WebSocket at <= 10 fps):
- enrollment (R2, R6, R7) with require_liveness false completes, the result
  decrypts with the seed's decrypt_response taken verbatim from the seed;
  GET /api/auth/sessions/<token>/ returns the same result; the token cannot
  be reused (4403);
- verification 1:1 (match and no match) and identification 1:N (R3, R13);
- a static picture never completes a session that requires liveness;
- undecodable images: error 4400, the socket stays open;
- throttling: a frame within 100 ms of the last one gets error 4429 and is
  dropped, a flood is closed with 4429; frames sent faster than they are
  processed are answered or counted as dropped (newest wins);
- 409 for enrolling an existing user, replace: true; the same face under
  another user_id is refused (error duplicate_face, close 4403); cross-client isolation;
  an AES-256-GCM client; user deletion;
- a restart between enrollment and authentication loses nothing;
- SIGTERM during a session: the frame in flight is answered, the socket is
  closed with 1001, the server exits 0."""
import asyncio
import base64
import hashlib
import json
import re
import signal
import time

import sys  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import fa_integ as fi  # noqa: E402  (first: it re-runs the test under /usr/bin/python3 if needed)

import websockets  # noqa: E402

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
decrypt_response = fi.seed_decrypt_response()

ALICE = fi.clip_frames("studio_man_blink")
BOB = fi.clip_frames("older_woman_glasses_blink")
CAROL = fi.clip_frames("speech_woman_frequent_blinks")
DAVE = fi.clip_frames("webcam_man_glasses_headturn")
STRANGER = fi.clip_frames("interview_man_blink_headmotion")


def setup():
    s = fi.Server().start()
    a = s.create_client("Flow A")
    b = s.create_client("Flow B", method="gcm")
    return {"s": s, "a": a, "b": b, "ta": s.login(a), "tb": s.login(b), "results": {}}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def check_frame_processed(m, target):
    assert m["type"] == "frame_processed", m
    for k in ("success", "frames_processed", "target_samples", "liveness_verified",
              "quality_score", "frames_dropped"):
        assert k in m, (k, m)
    assert m["target_samples"] == target, m
    assert 0.0 <= m["quality_score"] <= 1.0, m
    if not m["success"]:
        assert isinstance(m["reason"], str) and m["reason"] and m["message"], m


async def enroll(c, token, user_id, frames, client, target=3, replace=None):
    s = c["s"]
    j = s.session(token, "enrollment", user_id, frames=target, replace=replace)
    est, msgs, code = await fi.run_session(j["websocket_url"], frames)
    assert est["type"] == "connection_established" and est["session_type"] == "enrollment", est
    assert code == 1000, (code, msgs[-3:])
    done = msgs[-1]
    assert done["type"] == "enrollment_complete", msgs[-3:]
    for m in msgs[:-1]:
        check_frame_processed(m, target)
    good = [m for m in msgs[:-1] if m["success"]]
    assert len(good) == target and good[-1]["frames_processed"] == target, msgs
    assert done["enrollment_id"] == j["enrollment_id"], (done, j)
    enc = done["encrypted_data"]
    assert set(enc) == {"encrypted_payload", "encryption_method", "instructions"}, enc
    assert enc["instructions"] == "Decrypt with your secret_key to access the data"
    return j, done


async def test_enrollment(c):
    s, a = c["s"], c["a"]
    j, done = await enroll(c, c["ta"], "alice", ALICE[:30], a)
    enc = done["encrypted_data"]
    assert enc["encryption_method"] == "AES-256-CBC"
    plain = decrypt_response(enc["encrypted_payload"], a["secret_key"])
    assert plain["id"] == j["enrollment_id"], plain
    assert plain["session_type"] == "enrollment" and plain["session_token"] == j["session_token"]
    assert ISO_MS.match(plain["timestamp"]), plain
    assert "confidence" not in plain, plain
    # the wrong secret does not open it
    try:
        decrypt_response(enc["encrypted_payload"], c["b"]["secret_key"])
        raise AssertionError("decrypted with another client's secret")
    except ValueError:
        pass
    # the owner's backend reads the same result over REST
    g = s.get("/api/auth/sessions/%s/" % j["session_token"], token=c["ta"]).json()
    assert g["status"] == "completed" and g["result"] == done, (g, done)
    assert ISO_MS.match(g["finished_at"]), g
    # the token is spent
    ws = await fi.connect(j["websocket_url"])
    code, msgs = await fi.until_closed(ws)
    assert code == 4403 and msgs[-1]["code"] == 4403, (code, msgs)
    await enroll(c, c["ta"], "bob", BOB[:30], a)


async def authenticate(c, token, user_id, frames, target=3):
    j = c["s"].session(token, "authentication", user_id, frames=target)
    est, msgs, code = await fi.run_session(j["websocket_url"], frames)
    assert est["session_type"] == "authentication", est
    assert code == 1000, (code, msgs[-3:])
    done = msgs[-1]
    assert done["type"] == "authentication_complete", msgs[-3:]
    assert set(done) == {"type", "authenticated", "user_id", "confidence", "encrypted_data"}, done
    assert 0.0 <= done["confidence"] <= 1.0, done
    return j, done


async def test_verification(c):
    a = c["a"]
    j, done = await authenticate(c, c["ta"], "alice", ALICE[40:])
    assert done["authenticated"] is True and done["user_id"] == "alice", done
    assert done["confidence"] > 0.5, done
    plain = decrypt_response(done["encrypted_data"]["encrypted_payload"], a["secret_key"])
    assert plain["id"] == "alice" and plain["session_type"] == "authentication", plain
    assert plain["session_token"] == j["session_token"], plain
    assert plain["confidence"] == done["confidence"], (plain, done)
    # bob's face is not alice
    j, done = await authenticate(c, c["ta"], "alice", BOB[30:])
    assert done["authenticated"] is False, done
    decrypt_response(done["encrypted_data"]["encrypted_payload"], a["secret_key"])


async def test_identification(c):
    j, done = await authenticate(c, c["ta"], None, ALICE[45:])
    assert done["authenticated"] is True and done["user_id"] == "alice", done
    j, done = await authenticate(c, c["ta"], None, BOB[35:])
    assert done["authenticated"] is True and done["user_id"] == "bob", done
    j, done = await authenticate(c, c["ta"], None, STRANGER[40:])
    assert done["authenticated"] is False and done["user_id"] is None, done
    plain = decrypt_response(done["encrypted_data"]["encrypted_payload"], c["a"]["secret_key"])
    assert "confidence" in plain, plain


async def test_enroll_conflict_and_replace(c):
    s, t = c["s"], c["ta"]
    r = s.post("/api/auth/enrollment/", {"user_id": "alice", "require_liveness": False}, token=t)
    assert r.status_code == 409 and r.json()["code"] == 409, r.text
    await enroll(c, t, "alice", ALICE[20:40], c["a"], replace=True)
    j, done = await authenticate(c, t, "alice", ALICE[50:])
    assert done["authenticated"] is True, done


async def test_duplicate_face_refused(c):
    """Enrolling alice's face again under another user_id of the same client:
    the session fails (an error with reason duplicate_face and duplicate_of,
    close 4403), nothing is stored."""
    s, t = c["s"], c["ta"]
    j = s.session(t, "enrollment", "alice-again", frames=3)
    est, msgs, code = await fi.run_session(j["websocket_url"], ALICE[12:40])
    assert code == 4403, (code, msgs[-2:])
    err = msgs[-1]
    assert err["type"] == "error" and err["code"] == 4403, err
    assert err["reason"] == "duplicate_face" and err["duplicate_of"] == "alice", err
    g = s.get("/api/auth/sessions/%s/" % j["session_token"], token=t).json()
    assert g["status"] == "failed" and g["result"] is None, g
    r = s.post("/api/auth/authentication/", {"user_id": "alice-again"}, token=t)
    assert r.status_code == 404, r.text


async def test_liveness_required_never_completes(c):
    """A static picture (one frame sent again and again) with
    require_liveness true: frames are processed, the session never
    completes and the socket stays open (R11)."""
    j = c["s"].session(c["ta"], "enrollment", "eve", liveness=True, frames=2, blinks=1)
    ws = await fi.connect(j["websocket_url"])
    est = await fi.recv_json(ws)
    assert est["require_liveness"] is True, est
    n = 8 if fi.SLOW > 1 else 15
    for _ in range(n):
        t0 = time.monotonic()
        await ws.send(fi.frame_msg(CAROL[10]))
        m = await fi.recv_json(ws, 60)
        assert m["type"] == "frame_processed", m
        assert m["liveness_verified"] is False, m
        await asyncio.sleep(max(0, 0.11 - (time.monotonic() - t0)))
    await ws.send(json.dumps({"type": "ping"}))
    assert await fi.recv_json(ws) == {"type": "pong"}  # still open, nothing else came
    await ws.close()
    g = c["s"].get("/api/auth/sessions/%s/" % j["session_token"], token=c["ta"]).json()
    assert g["status"] != "completed" and g["result"] is None, g


async def test_undecodable_image(c):
    j = c["s"].session(c["ta"], "enrollment", "frank", frames=3)
    ws = await fi.connect(j["websocket_url"])
    await fi.recv_json(ws)
    for image in ("data:image/jpeg;base64,AAAA", "!!!not base64!!!",
                  "data:text/plain;base64,aGVsbG8=",
                  base64.b64encode(b"\xff\xd8\xff\xe0 truncated jpeg").decode()):
        await ws.send(json.dumps({"type": "frame", "image": image}))
        m = await fi.recv_json(ws, 60)
        assert m["type"] == "error" and m["code"] == 4400, (image, m)
        await asyncio.sleep(0.15)
    # a good frame afterwards, as raw base64 without the data: prefix
    await ws.send(fi.frame_msg(CAROL[5], raw_base64=True))
    m = await fi.recv_json(ws, 60)
    check_frame_processed(m, 3)
    await ws.close()


async def test_throttling(c):
    j = c["s"].session(c["ta"], "enrollment", "grace", frames=20)
    ws = await fi.connect(j["websocket_url"])
    await fi.recv_json(ws)
    await ws.send(fi.frame_msg(CAROL[0]))
    await ws.send(fi.frame_msg(CAROL[1]))  # < 100 ms later: dropped
    got = [await fi.recv_json(ws, 60), await fi.recv_json(ws, 60)]
    errs = [m for m in got if m["type"] == "error"]
    assert len(errs) == 1 and errs[0]["code"] == 4429 and "rate" in errs[0]["error"], got
    assert any(m["type"] == "frame_processed" for m in got), got
    # sustained flooding closes the socket
    code = None
    try:
        for i in range(100):
            await ws.send(fi.frame_msg(CAROL[i % 50]))
    except websockets.exceptions.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd else None
    if code is None:
        code, msgs = await fi.until_closed(ws, 60)
    assert code == 4429, code
    m = c["s"].get("/metrics").text
    assert re.search(r"faceauth_ws_frames_throttled_total [1-9]", m), m


async def test_newest_wins_accounting(c):
    """Frames at 10 fps without waiting for replies: each accepted frame is
    either answered or counted in frames_dropped (newest wins)."""
    j = c["s"].session(c["ta"], "enrollment", "heidi", frames=20)
    ws = await fi.connect(j["websocket_url"])
    await fi.recv_json(ws)
    n = 12
    replies = []

    async def reader():
        while True:
            replies.append(await fi.recv_json(ws, 120))

    task = asyncio.ensure_future(reader())
    for path in DAVE[60:60 + n]:
        await ws.send(fi.frame_msg(path))
        await asyncio.sleep(0.105)
    # wait until all frames are answered or dropped
    deadline = time.monotonic() + 120 * fi.SLOW
    while time.monotonic() < deadline:
        fp = [m for m in replies if m["type"] == "frame_processed"]
        if fp and len(fp) + fp[-1]["frames_dropped"] >= n:
            break
        await asyncio.sleep(0.1)
    task.cancel()
    assert not [m for m in replies if m["type"] == "error"], replies
    fp = [m for m in replies if m["type"] == "frame_processed"]
    assert len(fp) + fp[-1]["frames_dropped"] == n, (len(fp), fp[-1])
    await ws.close()


async def test_cross_client(c):
    s, ta, tb = c["s"], c["ta"], c["tb"]
    r = s.post("/api/auth/authentication/", {"user_id": "alice", "require_liveness": False},
               token=tb)
    assert r.status_code == 404, r.text  # alice belongs to client A
    j = s.session(ta, "enrollment", "ivan", frames=3)
    assert s.get("/api/auth/sessions/%s/" % j["session_token"], token=tb).status_code == 404
    assert s.delete("/api/users/alice/", token=tb).status_code == 404
    # B's own gallery does not contain A's users
    r = s.post("/api/auth/authentication/", {"require_liveness": False,
                                             "metadata": {"min_frames_required": 3}}, token=tb)
    if r.status_code == 201:
        est, msgs, code = await fi.run_session(r.json()["websocket_url"], ALICE[45:])
        assert msgs[-1]["type"] == "authentication_complete", msgs[-2:]
        assert msgs[-1]["user_id"] != "alice", msgs[-1]


async def test_gcm_client(c):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.exceptions import InvalidTag
    b = c["b"]
    j, done = await enroll(c, c["tb"], "dave", DAVE[:40], b)
    enc = done["encrypted_data"]
    assert enc["encryption_method"] == "AES-256-GCM", enc
    raw = base64.b64decode(enc["encrypted_payload"])
    key = hashlib.sha256(b["secret_key"].encode()).digest()
    plain = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], None))
    assert plain["id"] == j["enrollment_id"] and plain["session_type"] == "enrollment", plain
    for i in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        bad = bytearray(raw)
        bad[i] ^= 1
        try:
            AESGCM(key).decrypt(bytes(bad[:12]), bytes(bad[12:]), None)
            raise AssertionError("tampered GCM payload accepted (byte %d)" % i)
        except InvalidTag:
            pass


async def test_user_delete(c):
    s, t = c["s"], c["ta"]
    r = s.delete("/api/users/bob/", token=t)
    assert r.status_code == 200 and r.json() == {"deleted": True, "user_id": "bob"}, r.text
    r = s.post("/api/auth/authentication/", {"user_id": "bob", "require_liveness": False},
               token=t)
    assert r.status_code == 404, r.text
    j, done = await authenticate(c, t, None, BOB[35:])
    assert done["user_id"] != "bob", done


async def restart_case():
    s = fi.Server(port=fi.free_port())  # the same port after the restart
    try:
        s.start()
        a = s.create_client("Restart")
        t = s.login(a)
        ctx = {"s": s}
        await enroll(ctx, t, "carol", CAROL[:30], a)
        pending = s.session(t, "authentication", "carol", frames=3)
        assert s.stop() == 0
        s.start()
        # the JWT, the enrolled template and the pending session survive
        est, msgs, code = await fi.run_session(pending["websocket_url"], CAROL[60:])
        assert est["type"] == "connection_established", est
        assert code == 1000 and msgs[-1]["authenticated"] is True, msgs[-2:]
        assert msgs[-1]["user_id"] == "carol", msgs[-1]
        j, done = await authenticate(ctx, t, "carol", CAROL[70:])
        assert done["authenticated"] is True, done
    finally:
        s.cleanup()


def test_restart_keeps_everything():
    asyncio.run(restart_case())


async def sigterm_case():
    s = fi.Server(port=fi.free_port())
    try:
        s.start()
        a = s.create_client("Term")
        t = s.login(a)
        j = s.session(t, "enrollment", "judy", frames=10)
        ws = await fi.connect(j["websocket_url"])
        await fi.recv_json(ws)
        await ws.send(fi.frame_msg(CAROL[3]))
        await asyncio.sleep(0.01)
        s.proc.send_signal(signal.SIGTERM)
        code, msgs = await fi.until_closed(ws, 60)
        assert code == 1001, (code, msgs)
        assert [m["type"] for m in msgs] == ["frame_processed"], msgs  # the frame in flight
        assert s.stop() == 0, s.log_text()
        log = s.log_text()
        assert "shutdown: work finished" in log and "faceauthd stopped" in log, log
        # the unfinished session cannot be resumed after the restart (4403;
        # seen once as 4404 under heavy machine load, see edge_requests.md)
        s.start()
        ws = await fi.connect(j["websocket_url"])
        code, msgs = await fi.until_closed(ws)
        assert code in (4403, 4404), (code, msgs)
    finally:
        s.cleanup()


def test_sigterm_during_session():
    asyncio.run(sigterm_case())



if __name__ == "__main__":
    fi.run_tests(shared=[test_enrollment, test_verification, test_identification,
                         test_enroll_conflict_and_replace, test_duplicate_face_refused,
                         test_liveness_required_never_completes,
                         test_undecodable_image, test_throttling, test_newest_wins_accounting,
                         test_cross_client, test_gcm_client, test_user_delete],
                 own=[test_restart_keeps_everything, test_sigterm_during_session],
                 setup=setup, teardown=teardown)
