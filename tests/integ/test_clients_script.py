#!/usr/bin/env python3
"""tools/test_websocket_auth.py (R19) against a real faceauthd, exactly as a
user runs it: `API_KEY SECRET_KEY BASE_URL enrollment USER_ID`, then
`authentication USER_ID` (1:1) and `authentication` (1:N) with frames of the
shared webcam clips; another person's clip is refused; the same face under a second user_id of
the same client is refused (duplicate_face, duplicate_of names the first
user, nothing stored); a GCM client's result is decrypted with the GCM rule;
a wrong secret and bad usage give the documented exit statuses; a session
that requires liveness completes with liveness verified on a clip with real
blinks. Each enrollment of the studio_man_blink face other than the
duplicate check uses a client of its own (all created in setup). The script runs as a child process
and its printed output is checked, so the test sees what a user sees."""
import json
import os
import re
import subprocess
import sys

import fa_integ as fi  # first: it re-runs the test under /usr/bin/python3 if needed

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "test_websocket_auth.py")


def clip(name):
    return os.path.join(fi.shared_dir(), "data", "faces", "video", name, "frames")


def run(args, timeout=120):
    p = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True,
                       timeout=timeout * fi.SLOW)
    out = p.stdout + p.stderr
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return p.returncode, out, result


def setup():
    """One server; client c enrolls user123 (and is refused the duplicate),
    g is a GCM client; env, twice and live are clients of their own for
    the tests that enroll the studio_man_blink face again (one face per
    client: a second user_id with it is refused)."""
    s = fi.Server().start()
    ctx = {"s": s, "c": s.create_client("script client"),
           "g": s.create_client("script gcm client", method="gcm")}
    for which in ("env", "twice", "live"):
        ctx[which] = s.create_client("script %s client" % which)
    return ctx


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def keys(ctx, which="c"):
    """Arguments API_KEY SECRET_KEY BASE_URL of the client ctx[which]."""
    return [ctx[which]["api_key"], ctx[which]["secret_key"], ctx["s"].url]


def test_enroll_verify_identify_refuse(ctx):
    man = clip("studio_man_blink")
    rc, out, res = run(keys(ctx) + ["enrollment", "user123", "--no-liveness", "--json",
                                    "--frames", man])
    assert rc == 0, out
    assert res["enrolled"] and res["status"] == "completed", out
    assert res["decrypted"]["id"] == res["enrollment_id"], out
    assert res["decrypted"]["session_type"] == "enrollment", out
    assert "AES-256-CBC" in out and "[5/5] enrollment_complete" in out, out
    # the script keeps below the server's frame rate: no frame is throttled
    assert "4429" not in out, out

    # verification with later frames of the same clip (1:1)
    rc, out, res = run(keys(ctx) + ["authentication", "user123", "--no-liveness", "--json",
                                    "--frames", man, "--skip", "40"])
    assert rc == 0, out
    assert res["authenticated"] is True and res["user_id"] == "user123", out
    assert res["decrypted"]["id"] == "user123" and 0.5 < res["decrypted"]["confidence"] <= 1, out
    assert "authenticated: true" in out and "server record: status completed" in out, out

    # identification (1:N) without USER_ID finds the same person
    rc, out, res = run(keys(ctx) + ["authentication", "--no-liveness", "--json",
                                    "--frames", man, "--skip", "55"])
    assert rc == 0, out
    assert res["authenticated"] is True and res["user_id"] == "user123", out

    # another person: verification refused, exit status 3
    rc, out, res = run(keys(ctx) + ["authentication", "user123", "--no-liveness", "--json",
                                    "--frames", clip("stock_woman_wink_blink")])
    assert rc == 3, out
    assert res["authenticated"] is False and res["decrypted"]["id"] is None, out
    assert "authenticated: false" in out and "server record: status failed" in out, out


def test_duplicate_face_refused(ctx):
    """user123's face (enrolled by the test above) under another user_id of
    the same client: the enrollment is refused, the error names user123 and
    no user is stored."""
    rc, out, res = run(keys(ctx) + ["enrollment", "user123-again", "--no-liveness", "--json",
                                    "--frames", clip("studio_man_blink"), "--skip", "20"])
    assert rc == 1 and res is None, out
    assert "[duplicate_face]" in out, out
    assert "server error 4403:" in out and "duplicate_of user123" in out, out
    assert "socket closed with code 4403" in out, out
    rc, out, _ = run(keys(ctx) + ["authentication", "user123-again", "--no-liveness"])
    assert rc == 1 and "HTTP 404" in out, out
    # user123 itself is untouched: still verified
    rc, out, res = run(keys(ctx) + ["authentication", "user123", "--no-liveness", "--json",
                                    "--frames", clip("studio_man_blink"), "--skip", "40"])
    assert rc == 0 and res["authenticated"] and res["user_id"] == "user123", out


def test_gcm_client(ctx):
    rc, out, res = run(keys(ctx, "g") + ["enrollment", "gcm-user", "--no-liveness", "--json",
                                         "--frames", clip("webcam_man_beard_headturn")])
    assert rc == 0, out
    assert "result encrypted with AES-256-GCM" in out, out
    assert res["decrypted"]["id"] == res["enrollment_id"], out


def test_secrets_from_environment(ctx):
    e = "env"  # a client of its own: user123 of c has this face
    env_keys = ["env:FA_T_API", "env:FA_T_SECRET", ctx["s"].url]
    os.environ["FA_T_API"] = ctx[e]["api_key"]
    os.environ["FA_T_SECRET"] = ctx[e]["secret_key"]
    try:
        rc, out, res = run(env_keys + ["enrollment", "env-user", "--no-liveness", "--json",
                                       "--frames", clip("studio_man_blink"), "--max-frames", "8"])
    finally:
        del os.environ["FA_T_API"], os.environ["FA_T_SECRET"]
    assert rc == 0, out
    assert res["enrolled"], out


def test_wrong_secret_and_usage(ctx):
    rc, out, _ = run([ctx["c"]["api_key"], "sk_wrong", ctx["s"].url, "authentication"])
    assert rc == 1 and "HTTP 401" in out, out
    # no server there
    rc, out, _ = run([ctx["c"]["api_key"], ctx["c"]["secret_key"], "http://127.0.0.1:1",
                      "authentication"])
    assert rc == 1 and "cannot reach the server" in out, out
    rc, out, _ = run(keys(ctx) + ["enrollment"])
    assert rc == 2 and "enrollment needs a USER_ID" in out, out
    rc, out, _ = run(keys(ctx) + ["authentication", "--fps", "20"])
    assert rc == 2 and "--fps" in out, out
    # a user that was never enrolled: 404 from the server, named in the output
    rc, out, _ = run(keys(ctx) + ["authentication", "nobody", "--no-liveness"])
    assert rc == 1 and "HTTP 404" in out, out
    # enrolling an existing user without --replace: 409; with it: replaced
    # (the same face replacing its own user is no duplicate)
    man = clip("studio_man_blink")
    t = "twice"  # a client of its own: user123 of c has this face
    rc, out, _ = run(keys(ctx, t) + ["enrollment", "twice", "--no-liveness", "--frames", man])
    assert rc == 0, out
    rc, out, _ = run(keys(ctx, t) + ["enrollment", "twice", "--no-liveness", "--frames", man])
    assert rc == 1 and "HTTP 409" in out, out
    rc, out, _ = run(keys(ctx, t) + ["enrollment", "twice", "--no-liveness", "--replace",
                                     "--frames", man])
    assert rc == 0 and "duplicate" not in out, out


def test_liveness_required(ctx):
    """The seed's default body (require_liveness true, 1 blink) on a clip
    with real blinks (frames 32-33 and 63) and a moving head: the server
    sees them, reports liveness verified and the enrollment completes
    (exit 0). Never the old liveness_unavailable refusal."""
    lv = "live"  # a client of its own: user123 of c has this face
    rc, out, res = run(keys(ctx, lv) + ["enrollment", "live-user", "--json", "--wait", "3",
                                        "--max-frames", "45",
                                        "--frames", clip("studio_man_blink")])
    assert "[liveness_unavailable]" not in out, out
    assert "liveness required" in out, out
    assert rc == 0 and res["enrolled"] and res["status"] == "completed", out
    assert "liveness verified" in out and "[5/5] enrollment_complete" in out, out
    # liveness came with a blink: the first frame that reports it verified
    # has counted one
    first = next(ln for ln in out.splitlines() if "frame: " in ln and "liveness verified" in ln)
    assert int(re.search(r" blinks (\d+)", first).group(1)) >= 1, out


if __name__ == "__main__":
    fi.run_tests(shared=[test_enroll_verify_identify_refuse, test_duplicate_face_refused,
                         test_gcm_client,
                         test_secrets_from_environment, test_wrong_secret_and_usage,
                         test_liveness_required],
                 setup=setup, teardown=teardown)
