#!/usr/bin/env python3
"""tools/test_websocket_auth.py (R19) against a real faceauthd, exactly as a
user runs it: `API_KEY SECRET_KEY BASE_URL enrollment USER_ID`, then
`authentication USER_ID` (1:1) and `authentication` (1:N) with frames of the
shared webcam clips; another person's clip is refused; a GCM client's result
is decrypted with the GCM rule; a wrong secret, bad usage and a session that
requires liveness give the documented exit statuses. The script runs as a
child process and its printed output is checked, so the test sees what a
user sees."""
import json
import os
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
    s = fi.Server().start()
    c = s.create_client("script client")
    g = s.create_client("script gcm client", method="gcm")
    return {"s": s, "c": c, "g": g}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


def keys(ctx, which="c"):
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


def test_gcm_client(ctx):
    rc, out, res = run(keys(ctx, "g") + ["enrollment", "gcm-user", "--no-liveness", "--json",
                                         "--frames", clip("webcam_man_beard_headturn")])
    assert rc == 0, out
    assert "result encrypted with AES-256-GCM" in out, out
    assert res["decrypted"]["id"] == res["enrollment_id"], out


def test_secrets_from_environment(ctx):
    env_keys = ["env:FA_T_API", "env:FA_T_SECRET", ctx["s"].url]
    os.environ["FA_T_API"] = ctx["c"]["api_key"]
    os.environ["FA_T_SECRET"] = ctx["c"]["secret_key"]
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
    man = clip("studio_man_blink")
    run(keys(ctx) + ["enrollment", "twice", "--no-liveness", "--frames", man])
    rc, out, _ = run(keys(ctx) + ["enrollment", "twice", "--no-liveness", "--frames", man])
    assert rc == 1 and "HTTP 409" in out, out
    rc, out, _ = run(keys(ctx) + ["enrollment", "twice", "--no-liveness", "--replace",
                                  "--frames", man])
    assert rc == 0, out


def test_liveness_required(ctx):
    """The seed's default body (require_liveness true, 1 blink) on a clip
    with two real blinks: either the server verifies liveness and the
    enrollment completes, or it says it cannot (reason liveness_unavailable)
    and the script stops with status 4 and the hint; never a completion
    without liveness_verified."""
    rc, out, res = run(keys(ctx) + ["enrollment", "live-user", "--json", "--wait", "3",
                                    "--max-frames", "45",
                                    "--frames", clip("studio_man_blink")])
    if "[liveness_unavailable]" in out:
        assert rc == 4 and "--no-liveness" in out and res is None, out
    else:
        assert rc == 0 and res["enrolled"], out
        assert "liveness verified" in out, out


if __name__ == "__main__":
    fi.run_tests(shared=[test_enroll_verify_identify_refuse, test_gcm_client,
                         test_secrets_from_environment, test_wrong_secret_and_usage,
                         test_liveness_required],
                 setup=setup, teardown=teardown)
