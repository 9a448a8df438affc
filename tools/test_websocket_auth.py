#!/usr/bin/env python3
"""Run one whole faceauth session end to end, as a client application would.

    python3 tools/test_websocket_auth.py API_KEY SECRET_KEY BASE_URL enrollment USER_ID
    python3 tools/test_websocket_auth.py API_KEY SECRET_KEY BASE_URL authentication USER_ID
    python3 tools/test_websocket_auth.py API_KEY SECRET_KEY BASE_URL authentication

The three forms of the original design (enrollment, verification 1:1,
identification 1:N). The script logs in (POST /api/auth/client/), creates
the session (POST /api/auth/enrollment/ or /authentication/), streams JPEG
frames from --frames DIR over the session's WebSocket at no more than
10 frames per second, prints the server's progress and guidance, decrypts
the encrypted result with the secret key (AES-256-CBC as R10, or AES-256-GCM
when the server says so) and prints it, then checks the outcome against the
server's own record (GET /api/auth/sessions/<token>/).

Depends only on Python's standard library plus Debian's python3-websockets
and python3-cryptography (apt-get install python3-websockets
python3-cryptography). API_KEY or SECRET_KEY may be given as "env:NAME" to
read them from the environment instead of the command line.

By default the session requires liveness ("require_liveness": true, one
blink): the server completes it only after it has seen the required blinks
and head motion, so the frames must show a live person (the sample clip
does); --no-liveness turns the check off for still or synthetic frames.

Exit status: 0 enrolled / authenticated, 3 the session completed but the
person was not authenticated, 4 the server said it cannot verify liveness
(reason liveness_unavailable, from a server without liveness detection; rerun
with --no-liveness), 1 any other failure (among them an enrollment the server
refused, e.g. reason duplicate_face: the face is already enrolled as another
user of this client, named by duplicate_of), 2 bad usage.
"""
import argparse
import asyncio
import base64
import glob
import hashlib
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

try:
    import websockets
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as e:  # pragma: no cover - depends on the machine
    sysp = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(sysp) and os.path.exists(sysp) \
            and not os.environ.get("FA_SCRIPT_REEXEC"):
        # a python3 first on PATH (e.g. pyenv) without Debian's packages
        os.environ["FA_SCRIPT_REEXEC"] = "1"
        os.execv(sysp, [sysp] + sys.argv)
    sys.exit("test_websocket_auth.py: missing module (%s); install Debian's packages:\n"
             "  apt-get install python3-websockets python3-cryptography" % e.name)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_AUTHENTICATED, EXIT_NO_LIVENESS = 0, 1, 2, 3, 4
HERE = os.path.dirname(os.path.abspath(__file__))
# The sample clip the README names: a man who blinks twice with his head still.
DEFAULT_FRAMES = os.path.normpath(os.path.join(
    HERE, "..", "..", "shared", "data", "faces", "video", "studio_man_blink", "frames"))
MAX_FPS = 10.0


# ---- decryption (R10) ---------------------------------------------------------

def decrypt_response(encrypted_payload: str, secret_key: str) -> dict:
    """AES-256-CBC: base64(IV(16) || AES-256-CBC(PKCS7(json))), key = SHA-256(secret_key)."""
    data = base64.b64decode(encrypted_payload)
    iv, ciphertext = data[:16], data[16:]
    key = hashlib.sha256(secret_key.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()
    return json.loads(plain.decode("utf-8"))


def decrypt_response_gcm(encrypted_payload: str, secret_key: str) -> dict:
    """AES-256-GCM: base64(nonce(12) || ciphertext || tag(16)), same key.
    Raises cryptography.exceptions.InvalidTag if a single bit was changed."""
    data = base64.b64decode(encrypted_payload)
    key = hashlib.sha256(secret_key.encode("utf-8")).digest()
    plain = AESGCM(key).decrypt(data[:12], data[12:], None)
    return json.loads(plain.decode("utf-8"))


def decrypt_result(encrypted_data: dict, secret_key: str) -> dict:
    method = encrypted_data.get("encryption_method", "AES-256-CBC")
    payload = encrypted_data["encrypted_payload"]
    if method == "AES-256-CBC":
        return decrypt_response(payload, secret_key)
    if method == "AES-256-GCM":
        return decrypt_response_gcm(payload, secret_key)
    raise ValueError("unknown encryption_method %r" % method)


# ---- output -------------------------------------------------------------------

T0 = time.monotonic()


def say(msg):
    print("[%6.2fs] %s" % (time.monotonic() - T0, msg), flush=True)


# ---- REST -----------------------------------------------------------------------

class ApiError(Exception):
    pass


def rest(base, method, path, body=None, token=None, ctx=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            j = json.loads(text)
            detail = j.get("error", text)
            if j.get("field"):
                detail += " (field %s)" % j["field"]
        except ValueError:
            detail = text.strip() or e.reason
        retry = e.headers.get("Retry-After")
        raise ApiError("%s %s: HTTP %d: %s%s" % (method, path, e.code, detail,
                                                 ("; retry after %s s" % retry) if retry
                                                 else ""))
    except urllib.error.URLError as e:
        raise ApiError("%s %s: cannot reach the server: %s" % (method, base + path, e.reason))


# ---- the session -----------------------------------------------------------------

def frame_files(d):
    files = sorted(f for ext in ("*.jpg", "*.jpeg", "*.JPG", "*.JPEG", "*.png")
                   for f in glob.glob(os.path.join(d, ext)))
    if not files:
        raise SystemExit("test_websocket_auth.py: no JPEG frames in %s (see --frames)" % d)
    return files


def data_url(path):
    with open(path, "rb") as f:
        raw = f.read()
    mime = "image/png" if path.lower().endswith(".png") else "image/jpeg"
    return "data:%s;base64,%s" % (mime, base64.b64encode(raw).decode())


def describe_frame(m):
    line = "frame: %s %d/%d quality %.2f liveness %s" % (
        "counted" if m.get("success") else "not counted",
        m.get("frames_processed", 0), m.get("target_samples", 0),
        float(m.get("quality_score", 0)),
        "verified" if m.get("liveness_verified") else "pending")
    if "blinks_detected" in m:
        line += " blinks %d" % m["blinks_detected"]
    if m.get("reason"):
        line += " [%s] %s" % (m["reason"], m.get("message", ""))
    return line


async def stream(args, session, secret_key, ssl_ctx):
    """Connect, stream frames, return (completion message or None, close code,
    saw liveness_unavailable)."""
    files = frame_files(args.frames)[args.skip:]
    if args.max_frames:
        files = files[:args.max_frames]
    interval = 1.0 / min(args.fps, MAX_FPS)
    url = session["websocket_url"]
    kw = {"max_size": 4 * 1024 * 1024, "ping_interval": None, "open_timeout": 20,
          "close_timeout": 10}
    if url.startswith("wss://"):
        kw["ssl"] = ssl_ctx
    done = asyncio.Event()
    state = {"result": None, "code": None, "no_liveness": False, "replies": 0}

    async with websockets.connect(url, **kw) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if hello.get("type") != "connection_established":
            raise ApiError("unexpected first message: %s" % hello)
        say("[3/5] WebSocket connected: session %s, status %s, %d good frames needed, "
            "expires %s" % (hello.get("session_type"), hello.get("status"),
                            hello.get("target_samples", 0), hello.get("expires_at")))

        async def receiver():
            try:
                async for raw in ws:
                    m = json.loads(raw)
                    t = m.get("type")
                    if t == "frame_processed":
                        state["replies"] += 1
                        if m.get("reason") == "liveness_unavailable":
                            state["no_liveness"] = True
                        say("      " + describe_frame(m))
                    elif t in ("enrollment_complete", "authentication_complete"):
                        state["result"] = m
                        done.set()
                    elif t == "error":
                        line = "      server error %s: %s" % (m.get("code"), m.get("error"))
                        if m.get("reason"):
                            line += " [%s]" % m["reason"]
                        if m.get("duplicate_of"):
                            line += " duplicate_of %s" % m["duplicate_of"]
                        say(line)
                    elif t == "pong":
                        pass
                    else:
                        say("      unexpected message: %s" % m)
            except websockets.exceptions.ConnectionClosed:
                pass
            state["code"] = ws.close_code
            done.set()

        rx = asyncio.ensure_future(receiver())
        say("[4/5] streaming %d frames from %s at %.0f fps" % (len(files), args.frames,
                                                               1 / interval))
        for path in files:
            if done.is_set():
                break
            msg = json.dumps({"type": "frame", "image": data_url(path)})
            # the next frame a little over one interval after this one is sent, so
            # that network jitter never brings two frames closer than the server's
            # 100 ms minimum (a late send never makes the next one early)
            next_t = time.monotonic() + interval * 1.08
            try:
                await ws.send(msg)
            except websockets.exceptions.ConnectionClosed:
                break
            delay = next_t - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(done.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        if not done.is_set():
            say("      all frames sent; waiting for the server")
            try:
                await asyncio.wait_for(done.wait(), args.wait)
            except asyncio.TimeoutError:
                pass
        if state["result"] is not None:
            # the server closes with 1000 right after the completion
            try:
                await asyncio.wait_for(rx, 10)
            except asyncio.TimeoutError:
                pass
        else:
            await ws.close()
            try:
                await asyncio.wait_for(rx, 10)
            except asyncio.TimeoutError:
                rx.cancel()
        if state["code"] is None:
            state["code"] = ws.close_code
    return state["result"], state["code"], state["no_liveness"]


def secret_arg(v, name):
    if v.startswith("env:"):
        val = os.environ.get(v[4:])
        if not val:
            raise SystemExit("test_websocket_auth.py: %s: environment variable %s is not set"
                             % (name, v[4:]))
        return val
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run one faceauth enrollment or authentication session end to end.",
        epilog="Exit status: 0 success, 3 not authenticated, 4 the server said it cannot "
               "verify liveness (liveness_unavailable), 1 other failure (e.g. an enrollment "
               "refused as duplicate_face), 2 usage.")
    p.add_argument("api_key", metavar="API_KEY")
    p.add_argument("secret_key", metavar="SECRET_KEY")
    p.add_argument("base_url", metavar="BASE_URL", help="e.g. http://localhost:8000")
    p.add_argument("session_type", metavar="enrollment|authentication",
                   choices=["enrollment", "authentication"])
    p.add_argument("user_id", metavar="USER_ID", nargs="?",
                   help="required for enrollment; for authentication: verification (1:1) "
                        "with it, identification (1:N) without it")
    p.add_argument("--frames", default=DEFAULT_FRAMES,
                   help="directory of JPEG frames, sent in name order (default: %(default)s)")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second, at most 10")
    p.add_argument("--skip", type=int, default=0, help="skip the first N frames")
    p.add_argument("--max-frames", type=int, default=0, help="send at most N frames")
    p.add_argument("--min-frames", type=int, default=3,
                   help="metadata.min_frames_required (default 3)")
    p.add_argument("--blinks", type=int, default=1, help="metadata.required_blinks (default 1)")
    p.add_argument("--no-liveness", action="store_true",
                   help='send "require_liveness": false (default: true, and the session '
                        'completes only once the frames show the required blinks and head '
                        'motion)')
    p.add_argument("--replace", action="store_true",
                   help="enrollment: replace the face data of an enrolled USER_ID")
    p.add_argument("--wait", type=float, default=15.0,
                   help="seconds to wait for the result after the last frame (default 15)")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the server's TLS certificate (self-signed test setups)")
    p.add_argument("--json", action="store_true",
                   help="also print the outcome as one JSON line prefixed 'RESULT '")
    a = p.parse_args(argv)
    if a.session_type == "enrollment" and not a.user_id:
        p.error("enrollment needs a USER_ID")
    if not 0 < a.fps <= MAX_FPS:
        p.error("--fps must be in (0, 10]: the server accepts at most 10 frames per second")
    a.api_key = secret_arg(a.api_key, "API_KEY")
    a.secret_key = secret_arg(a.secret_key, "SECRET_KEY")
    a.base_url = a.base_url.rstrip("/")
    return a


def main(argv):
    args = parse_args(argv)
    ssl_ctx = ssl.create_default_context()
    if args.insecure:
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
    try:
        login = rest(args.base_url, "POST", "/api/auth/client/",
                     {"api_key": args.api_key, "secret_key": args.secret_key}, ctx=ssl_ctx)
        token = login["token"]
        say("[1/5] client %s authenticated; token expires %s" % (login.get("client_id"),
                                                                   login.get("expires_at")))
        body = {"require_liveness": not args.no_liveness,
                "metadata": {"min_frames_required": args.min_frames,
                             "required_blinks": args.blinks}}
        if args.user_id:
            body["user_id"] = args.user_id
        if args.replace:
            body["replace"] = True
        session = rest(args.base_url, "POST", "/api/auth/%s/" % args.session_type, body,
                       token=token, ctx=ssl_ctx)
        sid = session.get("enrollment_id") or session.get("authentication_id")
        mode = "enrollment" if args.session_type == "enrollment" else (
            "verification of %s" % args.user_id if args.user_id else "identification (1:N)")
        say("[2/5] %s session %s created; %d good frames needed, liveness %s, expires %s"
            % (mode, sid, session.get("target_samples", 0),
               "required" if body["require_liveness"] else "off", session.get("expires_at")))
        result, code, no_liveness = asyncio.run(stream(args, session, args.secret_key, ssl_ctx))
    except ApiError as e:
        say("error: %s" % e)
        return EXIT_FAIL
    except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as e:
        say("error: connection failed: %r" % e)
        return EXIT_FAIL

    if result is None:
        say("the session did not complete (socket closed with code %s)" % code)
        if no_liveness:
            say("hint: this server cannot verify liveness, so a session with "
                '"require_liveness": true never completes; rerun with --no-liveness')
            return EXIT_NO_LIVENESS
        return EXIT_FAIL

    enc = result["encrypted_data"]
    say("[5/5] %s (socket closed with code %s), result encrypted with %s"
        % (result["type"], code, enc.get("encryption_method")))
    try:
        plain = decrypt_result(enc, args.secret_key)
    except Exception as e:  # wrong key, tampered payload (GCM), bad padding (CBC)
        say("error: cannot decrypt the result with this secret key: %r" % e)
        return EXIT_FAIL
    say("      decrypted: " + json.dumps(plain, sort_keys=True))
    ok = True
    if plain.get("session_token") != session["session_token"]:
        say("error: the decrypted session_token is not this session's")
        ok = False
    if result["type"] == "enrollment_complete":
        outcome = {"type": "enrollment", "enrolled": True, "user_id": args.user_id,
                   "enrollment_id": result.get("enrollment_id")}
        if plain.get("id") != result.get("enrollment_id"):
            say("error: decrypted id differs from enrollment_id")
            ok = False
        say("      enrolled %s (enrollment_id %s)" % (args.user_id, result.get("enrollment_id")))
    else:
        outcome = {"type": "authentication", "authenticated": bool(result.get("authenticated")),
                   "user_id": result.get("user_id"), "confidence": result.get("confidence")}
        if result.get("authenticated") and plain.get("id") != result.get("user_id"):
            say("error: decrypted id differs from user_id")
            ok = False
        say("      authenticated: %s, user_id: %s, confidence: %.3f"
            % (str(bool(result.get("authenticated"))).lower(), result.get("user_id"),
               float(result.get("confidence") or 0)))
    # A backend takes the outcome from the server, not from what a browser forwards.
    try:
        rec = rest(args.base_url, "GET", "/api/auth/sessions/%s/" % session["session_token"],
                   token=token, ctx=ssl_ctx)
        same = rec.get("result") is not None and \
            rec["result"]["encrypted_data"]["encrypted_payload"] == enc["encrypted_payload"]
        say("      server record: status %s, result %s" % (
            rec.get("status"), "matches the socket's" if same else "DIFFERS"))
        ok = ok and same
        outcome["status"] = rec.get("status")
    except ApiError as e:
        say("error: %s" % e)
        ok = False
    outcome["decrypted"] = plain
    if args.json:
        print("RESULT " + json.dumps(outcome, sort_keys=True), flush=True)
    if not ok:
        return EXIT_FAIL
    if outcome["type"] == "authentication" and not outcome["authenticated"]:
        return EXIT_NOT_AUTHENTICATED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
