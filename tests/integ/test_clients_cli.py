#!/usr/bin/env python3
"""`faceauth enroll|authenticate` (the C client on libwebsockets) against a
real faceauthd: enrollment, verification (1:1) and identification (1:N) of
the same person from the shared webcam frames, refusal of another person,
refusal of the same face under a second user_id of the same client
(duplicate_face; the server's log names the first user as duplicate_of),
a GCM client, keys from the environment, the documented exit statuses for
usage errors, a wrong secret and an unknown user, and a session that
requires liveness completing with liveness verified on a clip with real
blinks (a client of its own: one face per client). The same scenarios as
test_clients_script.py, so the two clients cannot drift apart."""
import json
import os
import re
import subprocess

import fa_integ as fi  # first: it re-runs the test under /usr/bin/python3 if needed


def clip(name):
    return os.path.join(fi.shared_dir(), "data", "faces", "video", name, "frames")


def run(ctx, args, which="c", env_keys=True, timeout=120):
    env = dict(os.environ)
    env.pop("FACEAUTH_API_KEY", None)
    env.pop("FACEAUTH_SECRET_KEY", None)
    if env_keys:
        env["FACEAUTH_API_KEY"] = ctx[which]["api_key"]
        env["FACEAUTH_SECRET_KEY"] = ctx[which]["secret_key"]
    env["FACEAUTH_URL"] = ctx["s"].url
    p = subprocess.run([os.path.join(fi.build_dir(), "faceauth")] + args, capture_output=True,
                       text=True, timeout=timeout * fi.SLOW, env=env)
    out = p.stdout + p.stderr
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return p.returncode, out, result


def setup():
    s = fi.Server().start()
    # live: a client of its own for the liveness test (cli-user of c has
    # the same face, and a client refuses a second user_id with it)
    return {"s": s, "c": s.create_client("cli client"),
            "g": s.create_client("cli gcm client", method="gcm"),
            "live": s.create_client("cli live client")}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def test_enroll_verify_identify_refuse(ctx):
    man = clip("studio_man_blink")
    rc, out, res = run(ctx, ["enroll", "cli-user", "--no-liveness", "--json", "--frames", man])
    assert rc == 0, out
    assert res["enrolled"] and res["status"] == "completed", out
    assert res["decrypted"]["id"] == res["enrollment_id"], out
    assert "4429" not in out, out  # never faster than the server accepts

    rc, out, res = run(ctx, ["authenticate", "cli-user", "--no-liveness", "--json",
                             "--frames", man, "--skip", "40"])
    assert rc == 0, out
    assert res["authenticated"] is True and res["user_id"] == "cli-user", out
    assert res["decrypted"]["id"] == "cli-user", out
    assert "server record: status completed, result matches" in out, out

    rc, out, res = run(ctx, ["authenticate", "--no-liveness", "--json", "--frames", man,
                             "--skip", "55"])
    assert rc == 0 and res["user_id"] == "cli-user", out

    rc, out, res = run(ctx, ["authenticate", "cli-user", "--no-liveness", "--json",
                             "--frames", clip("stock_woman_wink_blink")])
    assert rc == 3, out
    assert res["authenticated"] is False and res["decrypted"]["id"] is None, out


def test_duplicate_face_refused(ctx):
    """cli-user's face under another user_id of the same client: refused
    (reason duplicate_face, close 4403, exit 1), duplicate_of cli-user, and
    nothing stored."""
    rc, out, res = run(ctx, ["enroll", "cli-dup", "--no-liveness", "--json", "--frames",
                             clip("studio_man_blink"), "--skip", "20"])
    assert rc == 1 and res is None, out
    assert "[duplicate_face]" in out and "server error 4403:" in out, out
    assert re.search(r"duplicate_of cli-user\b", out), out
    log = ctx["s"].log_text()
    assert re.search(r"session failed .*type=enrollment reason=duplicate_face "
                     r"duplicate_of=cli-user\b", log), log[-3000:]
    rc, out, _ = run(ctx, ["authenticate", "cli-dup", "--no-liveness"])
    assert rc == 1 and "HTTP 404" in out, out
    rc, out, res = run(ctx, ["authenticate", "cli-user", "--no-liveness", "--json",
                             "--frames", clip("studio_man_blink"), "--skip", "40"])
    assert rc == 0 and res["authenticated"] and res["user_id"] == "cli-user", out


def test_gcm_and_options(ctx):
    # keys as options instead of the environment; GCM result
    rc, out, res = run(ctx, ["enroll", "cli-gcm", "--no-liveness", "--json",
                             "--api-key", ctx["g"]["api_key"],
                             "--secret-key", ctx["g"]["secret_key"],
                             "--url", ctx["s"].url + "/",
                             "--frames", clip("webcam_man_beard_headturn")], env_keys=False)
    assert rc == 0, out
    assert "result encrypted with AES-256-GCM" in out, out
    assert res["decrypted"]["id"] == res["enrollment_id"], out


def test_errors(ctx):
    rc, out, _ = run(ctx, ["enroll", "--no-liveness"])
    assert rc == 2 and "USER_ID is required" in out, out
    rc, out, _ = run(ctx, ["authenticate", "--fps", "12"])
    assert rc == 2 and "--fps" in out, out
    rc, out, _ = run(ctx, ["authenticate"], env_keys=False)
    assert rc == 2 and "secret key are required" in out, out
    rc, out, _ = run(ctx, ["authenticate", "--secret-key", "sk_wrong"])
    assert rc == 1 and "HTTP 401" in out, out
    rc, out, _ = run(ctx, ["authenticate", "ghost", "--no-liveness"])
    assert rc == 1 and "HTTP 404" in out, out
    rc, out, _ = run(ctx, ["authenticate", "--url", "http://127.0.0.1:1"])
    assert rc == 1 and "cannot" in out, out
    rc, out, _ = run(ctx, ["authenticate", "--frames", "/nonexistent-dir"])
    assert rc != 0, out


def test_liveness_required(ctx):
    """Default body (require_liveness true, 1 blink) on a clip with real
    blinks and a moving head: liveness verified, the enrollment completes."""
    rc, out, res = run(ctx, ["enroll", "cli-live", "--json", "--wait", "3", "--max-frames", "45",
                             "--frames", clip("studio_man_blink")], which="live")
    assert "[liveness_unavailable]" not in out, out
    assert rc == 0 and res["enrolled"] and res["status"] == "completed", out
    first = next(ln for ln in out.splitlines() if "frame: " in ln and "liveness verified" in ln)
    assert int(re.search(r" blinks (\d+)", first).group(1)) >= 1, out


if __name__ == "__main__":
    fi.run_tests(shared=[test_enroll_verify_identify_refuse, test_duplicate_face_refused,
                         test_gcm_and_options, test_errors,
                         test_liveness_required],
                 setup=setup, teardown=teardown)
