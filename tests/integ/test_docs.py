#!/usr/bin/env python3
"""The documentation cannot drift from the server (issue 9):

- every code block of the guides (WEBSOCKET_GUIDE.md, docs/*.md) in Python or
  JavaScript is a file of docs/examples/ included verbatim (marker
  `<!-- include: docs/examples/X -->` before the block), and each of those
  files runs here against a real faceauthd: rest_flow.sh creates a session,
  stream_session.py streams real webcam frames, decrypt_result.py and
  decrypt_result.mjs decrypt the real result (CBC and GCM clients) to the same
  plaintext as the seed's own decrypt_response, verify_session.py checks it
  on the server's record;
- the guide's claims about CBC and GCM hold: a flipped IV byte rewrites the
  decrypted id of a CBC result, a flipped byte of a GCM result is rejected by
  both decryptors;
- the guide's `test_websocket_auth.py` command lines run as written;
- JSON blocks parse; names of FaceAuth.* used in HTML samples exist in the SDK;
- docs/openapi.yaml passes the Redocly linter (npm ci into the build dir),
  is what the server serves at /api/openapi.yaml, and the real REST answers
  match its schemas (every required field present, no undocumented field).
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys

import fa_integ as fi  # first: it re-runs the test under /usr/bin/python3 if needed

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GUIDES = ["WEBSOCKET_GUIDE.md", "docs/API_INTEGRATION_GUIDE.md", "docs/TECHNICAL_DOCUMENTATION.md"]
EXAMPLES = os.path.join(ROOT, "docs", "examples")
RUN_LANGS = {"python", "py", "javascript", "js", "mjs"}
FENCE = re.compile(r"(<!-- include: (\S+) -->\n)?```(\w*)[^\n]*\n(.*?)```", re.S)


def frames_dir(clip="studio_man_blink"):
    return os.path.join(fi.shared_dir(), "data", "faces", "video", clip, "frames")


def run(cmd, env=None, stdin=None, timeout=120, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=e, cwd=cwd,
                          timeout=timeout * fi.SLOW)


def blocks():
    for g in GUIDES:
        with open(os.path.join(ROOT, g), encoding="utf-8") as f:
            text = f.read()
        for m in FENCE.finditer(text):
            yield g, m.group(2), m.group(3), m.group(4)


# ---- the guides' blocks ----------------------------------------------------------

def test_blocks_are_included_files(ctx):
    included = set()
    for guide, inc, lang, body in blocks():
        if inc:
            with open(os.path.join(ROOT, inc), encoding="utf-8") as f:
                want = f.read()
            assert body == want, "%s: the block of %s differs from the file" % (guide, inc)
            included.add(os.path.relpath(os.path.join(ROOT, inc), EXAMPLES))
        elif lang in RUN_LANGS:
            raise AssertionError("%s: a %s block that is not an included example:\n%s"
                                 % (guide, lang, body[:300]))
        elif lang == "json":
            try:
                json.loads(body)
            except ValueError as e:
                raise AssertionError("%s: JSON block does not parse (%s):\n%s" % (guide, e, body))
    missing = set(os.listdir(EXAMPLES)) - included
    assert not missing, "examples no guide includes: %s" % sorted(missing)


def test_html_samples_use_the_sdk(ctx):
    with open(os.path.join(ROOT, "web", "sdk", "faceauth.js")) as f:
        sdk = f.read()
    exported = set(re.findall(r"^    (\w+): \w+,?$", sdk, re.M))
    assert {"openCamera", "run", "start", "stopCamera"} <= exported, exported
    n = 0
    for guide, _, lang, body in blocks():
        if lang == "html":
            for name in re.findall(r"FaceAuth\.(\w+)", body):
                n += 1
                assert name in exported, "%s uses FaceAuth.%s, which the SDK lacks" % (guide, name)
    assert n > 0


# ---- the examples against a real server -----------------------------------------------

def flow(ctx, client, user):
    """rest_flow.sh -> stream_session.py; returns (session, completion)."""
    env = {"BASE_URL": ctx["s"].url, "API_KEY": client["api_key"],
           "SECRET_KEY": client["secret_key"], "USER_ID": user}
    r = run(["sh", os.path.join(EXAMPLES, "rest_flow.sh")], env=env)
    assert r.returncode == 0, r.stderr
    session = json.loads(r.stdout)
    assert session["status"] == "pending" and session["user_id"] == user, session
    r = run([sys.executable, os.path.join(EXAMPLES, "stream_session.py"),
             session["websocket_url"], frames_dir()])
    assert r.returncode == 0, r.stderr
    assert "closed with code 1000" in r.stderr, r.stderr
    completion = json.loads(r.stdout)
    assert completion["type"] == "enrollment_complete", completion
    return session, completion


def decrypt_both(completion, secret):
    """decrypt_result.py and decrypt_result.mjs on the same completion."""
    env = {"SECRET_KEY": secret}
    py = run([sys.executable, os.path.join(EXAMPLES, "decrypt_result.py")], env=env,
             stdin=json.dumps(completion))
    js = run(["node", os.path.join(EXAMPLES, "decrypt_result.mjs")], env=env,
             stdin=json.dumps(completion))
    return py, js


def check_examples(ctx, client, user, method):
    session, completion = flow(ctx, client, user)
    assert completion["encrypted_data"]["encryption_method"] == method, completion
    py, js = decrypt_both(completion, client["secret_key"])
    assert py.returncode == 0 and js.returncode == 0, (py.stderr, js.stderr)
    a, b = json.loads(py.stdout), json.loads(js.stdout)
    assert a == b, (a, b)
    assert a["id"] == completion["enrollment_id"], a
    assert a["session_token"] == session["session_token"], a
    assert a["session_type"] == "enrollment" and a["timestamp"].endswith("Z"), a
    if method == "AES-256-CBC":  # the seed's function, unchanged, agrees
        seed = fi.seed_decrypt_response()
        assert seed(completion["encrypted_data"]["encrypted_payload"], client["secret_key"]) == a
    env = {"BASE_URL": ctx["s"].url, "API_KEY": client["api_key"],
           "SECRET_KEY": client["secret_key"]}
    r = run([sys.executable, os.path.join(EXAMPLES, "verify_session.py"),
             session["session_token"]], env=env, cwd=EXAMPLES)
    assert r.returncode == 0, r.stdout + r.stderr
    v = json.loads(r.stdout)
    assert v["status"] == "completed" and v["decrypted"] == a, v
    return completion, a


def test_examples_cbc(ctx):
    completion, plain = check_examples(ctx, ctx["cbc"], "docs-cbc-user", "AES-256-CBC")
    # the guide's warning: a flipped IV rewrites the first block ({"id":"...)
    raw = bytearray(base64.b64decode(completion["encrypted_data"]["encrypted_payload"]))
    old = plain["id"][:9].encode()
    new = b"AAAAAAAAA"
    for i in range(9):  # bytes 7..15 of block 0 are the id's first 9 characters
        raw[7 + i] ^= old[i] ^ new[i]
    forged = dict(completion, encrypted_data=dict(
        completion["encrypted_data"], encrypted_payload=base64.b64encode(bytes(raw)).decode()))
    py, js = decrypt_both(forged, ctx["cbc"]["secret_key"])
    assert py.returncode == 0 and js.returncode == 0, (py.stderr, js.stderr)
    changed = json.loads(py.stdout)
    assert changed["id"] == "AAAAAAAAA" + plain["id"][9:], changed
    assert json.loads(js.stdout) == changed


def test_examples_gcm(ctx):
    completion, _ = check_examples(ctx, ctx["gcm"], "docs-gcm-user", "AES-256-GCM")
    for pos in (0, 20, -1):  # nonce, ciphertext, tag
        raw = bytearray(base64.b64decode(completion["encrypted_data"]["encrypted_payload"]))
        raw[pos] ^= 0x01
        forged = dict(completion, encrypted_data=dict(
            completion["encrypted_data"], encrypted_payload=base64.b64encode(bytes(raw)).decode()))
        py, js = decrypt_both(forged, ctx["gcm"]["secret_key"])
        assert py.returncode != 0 and "InvalidTag" in py.stderr, py.stderr
        assert js.returncode != 0, js.stdout


def test_guide_commands(ctx):
    """The guide's test_websocket_auth.py lines, with real keys and URL (a
    client of its own: the sample clip's face is enrolled under other
    user_ids of the cbc client already, and a client refuses a face that
    another of its users has)."""
    c = ctx["guide"]
    n = 0
    for guide, _, lang, body in blocks():
        if lang not in ("sh", "bash") or "test_websocket_auth.py" not in body:
            continue
        for line in body.splitlines():
            if not line.startswith("python3 tools/test_websocket_auth.py"):
                continue
            args = line.split()[2:]
            args = [c["api_key"] if a == "API_KEY" else c["secret_key"]
                    if a == "SECRET_KEY" else ctx["s"].url if a == "http://localhost:8000"
                    else a for a in args]
            r = run([sys.executable, os.path.join(ROOT, "tools", "test_websocket_auth.py")] + args)
            assert r.returncode == 0, "%s: %s\n%s" % (guide, line, r.stdout + r.stderr)
            n += 1
    assert n >= 3, n


# ---- OpenAPI ---------------------------------------------------------------------------

def redocly(ctx):
    if ctx.get("redocly"):
        return ctx["redocly"]
    if shutil.which("npm") is None:
        raise AssertionError("npm is missing (tools/install_deps.sh installs it)")
    src = os.path.join(ROOT, "tests", "docs")
    dest = os.path.join(fi.build_dir(), "tests", "docs")
    os.makedirs(dest, exist_ok=True)
    cli = os.path.join(dest, "node_modules", "@redocly", "cli", "bin", "cli.js")
    stamp = os.path.join(dest, "node_modules", ".fa-lock")
    lock = open(os.path.join(src, "package-lock.json")).read()
    if not (os.path.exists(cli) and os.path.exists(stamp) and open(stamp).read() == lock):
        for n in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(src, n), os.path.join(dest, n))
        r = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dest,
                timeout=600)
        assert r.returncode == 0, "npm ci failed: " + r.stderr[-2000:]
        with open(stamp, "w") as f:
            f.write(lock)
    ctx["redocly"] = cli
    return cli


def test_openapi_lint(ctx):
    cli = redocly(ctx)
    env = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "CI": "true"}
    r = run(["node", cli, "lint", os.path.join(ROOT, "docs", "openapi.yaml"), "--config",
             os.path.join(ROOT, "tests", "docs", "redocly.yaml"), "--format=stylish"], env=env)
    print(r.stdout[-1500:])
    assert r.returncode == 0, r.stdout + r.stderr
    # and the linter can fail: a broken copy is refused
    bad = os.path.join(fi.build_dir(), "tests", "docs", "broken.yaml")
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text.replace("$ref: '#/components/schemas/LoginResponse'",
                             "$ref: '#/components/schemas/NoSuchSchema'"))
    r = run(["node", cli, "lint", bad, "--config",
             os.path.join(ROOT, "tests", "docs", "redocly.yaml")], env=env)
    assert r.returncode != 0, "the linter accepted a broken document"


def test_openapi_served(ctx):
    r = ctx["s"].get("/api/openapi.yaml")
    helptext = run([os.path.join(fi.build_dir(), "faceauthd"), "--help"]).stdout
    if r.status_code == 404 and "--demo" not in helptext:
        print("NOTE: this faceauthd does not embed the web files yet (daemon/web.c not wired); "
              "/api/openapi.yaml not checked")
        return
    assert r.status_code == 200, r.status_code
    with open(os.path.join(ROOT, "docs", "openapi.yaml"), encoding="utf-8") as f:
        assert r.text == f.read()
    assert r.headers["content-type"].startswith("application/yaml")


def openapi_json(ctx):
    cli = redocly(ctx)
    out = os.path.join(fi.build_dir(), "tests", "docs", "openapi.json")
    r = run(["node", cli, "bundle", os.path.join(ROOT, "docs", "openapi.yaml"), "--ext", "json",
             "-o", out], env={"REDOCLY_TELEMETRY": "off"})
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out) as f:
        return json.load(f)


def conforms(doc, schema, value, where):
    """A small checker for the subset of JSON Schema openapi.yaml uses."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return conforms(doc, doc["components"]["schemas"][name], value, where)
    if "oneOf" in schema:
        errs = []
        for s in schema["oneOf"]:
            try:
                conforms(doc, s, value, where)
                return
            except AssertionError as e:
                errs.append(str(e))
        raise AssertionError("%s: matches no alternative: %s" % (where, errs))
    if "allOf" in schema:
        props, req = {}, set()
        for s in schema["allOf"]:
            s = doc["components"]["schemas"][s["$ref"].split("/")[-1]] if "$ref" in s else s
            props.update(s.get("properties", {}))
            req |= set(s.get("required", []))
        schema = {"type": "object", "properties": props, "required": sorted(req),
                  "additionalProperties": False}
    t = schema.get("type")
    if t == "null":
        assert value is None, where
    elif t == "object" or "properties" in schema:
        assert isinstance(value, dict), "%s: not an object" % where
        missing = set(schema.get("required", [])) - set(value)
        assert not missing, "%s: missing %s" % (where, sorted(missing))
        props = schema.get("properties", {})
        if props or schema.get("additionalProperties") is False:
            extra = set(value) - set(props)
            assert not extra, "%s: undocumented %s" % (where, sorted(extra))
        for k, v in value.items():
            if k in props:
                conforms(doc, props[k], v, where + "." + k)
    elif t == "string":
        assert isinstance(value, str), "%s: not a string" % where
        if "enum" in schema:
            assert value in schema["enum"], "%s: %r not in %s" % (where, value, schema["enum"])
    elif t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif t == "number":
        assert isinstance(value, (int, float)), where
    elif t == "boolean":
        assert isinstance(value, bool), where


def test_rest_matches_openapi(ctx):
    doc = openapi_json(ctx)
    s = ctx["s"]
    c = ctx["openapi"]  # its own: one face per client

    def check(method, path, resp, status):
        op = doc["paths"][path][method]
        assert str(resp.status_code) in op["responses"], (path, resp.status_code)
        assert resp.status_code == status, (path, resp.status_code, resp.text)
        r = op["responses"][str(resp.status_code)]
        if "$ref" in r:
            r = doc["components"]["responses"][r["$ref"].split("/")[-1]]
        schema = r["content"]["application/json"]["schema"]
        conforms(doc, schema, resp.json(), "%s %s %d" % (method, path, resp.status_code))

    r = s.post("/api/auth/client/", {"api_key": c["api_key"], "secret_key": c["secret_key"]})
    check("post", "/api/auth/client/", r, 200)
    token = r.json()["token"]
    check("post", "/api/auth/client/", s.post("/api/auth/client/", {"api_key": "x"}), 400)
    r = s.post("/api/auth/enrollment/", {"user_id": "oa-user", "require_liveness": False,
                                          "metadata": {"min_frames_required": 3}}, token=token)
    check("post", "/api/auth/enrollment/", r, 201)
    check("post", "/api/auth/enrollment/",
          s.post("/api/auth/enrollment/", {"user_id": "oa", "metadata":
                                           {"min_frames_required": 99}}, token=token), 400)
    ws_url = r.json()["websocket_url"]
    tok = r.json()["session_token"]
    check("get", "/api/auth/sessions/{session_token}/",
          s.get("/api/auth/sessions/%s/" % tok, token=token), 200)
    import asyncio
    est, msgs, code = asyncio.run(fi.run_session(ws_url, fi.clip_frames("studio_man_blink")))
    assert code == 1000, (code, msgs)
    g = s.get("/api/auth/sessions/%s/" % tok, token=token)
    check("get", "/api/auth/sessions/{session_token}/", g, 200)
    assert g.json()["result"]["type"] == "enrollment_complete", g.json()
    r = s.post("/api/auth/authentication/", {"user_id": "oa-user", "require_liveness": False},
               token=token)
    check("post", "/api/auth/authentication/", r, 201)
    r = s.post("/api/auth/authentication/", {"require_liveness": False}, token=token)
    check("post", "/api/auth/authentication/", r, 201)
    check("post", "/api/auth/authentication/",
          s.post("/api/auth/authentication/", {"user_id": "nobody"}, token=token), 404)
    check("post", "/api/auth/enrollment/",
          s.post("/api/auth/enrollment/", {"user_id": "oa-user"}, token=token), 409)
    check("post", "/api/auth/enrollment/", s.post("/api/auth/enrollment/", {"user_id": "u"}),
          401)
    check("get", "/api/auth/sessions/{session_token}/",
          s.get("/api/auth/sessions/NoSuchToken000000000000/", token=token), 404)
    check("delete", "/api/users/{user_id}/", s.delete("/api/users/oa-user/", token=token), 200)
    check("delete", "/api/users/{user_id}/", s.delete("/api/users/oa-user/", token=token), 404)
    # the deleted user's face is free again: another user_id of the same
    # client may enroll it (before the delete it would be a duplicate_face)
    r = s.post("/api/auth/enrollment/", {"user_id": "oa-user2", "require_liveness": False,
                                          "metadata": {"min_frames_required": 3}}, token=token)
    check("post", "/api/auth/enrollment/", r, 201)
    est, msgs, code = asyncio.run(fi.run_session(r.json()["websocket_url"],
                                                 fi.clip_frames("studio_man_blink")[20:]))
    assert code == 1000 and msgs[-1]["type"] == "enrollment_complete", (code, msgs[-3:])
    check("get", "/healthz", s.get("/healthz"), 200)


def setup():
    s = fi.Server().start()
    # guide and openapi enroll the studio_man_blink face again: clients of
    # their own (a client refuses a face that another of its users has)
    return {"s": s, "cbc": s.create_client("docs cbc"),
            "gcm": s.create_client("docs gcm", method="gcm"),
            "guide": s.create_client("docs guide"), "openapi": s.create_client("docs openapi")}


def teardown(ctx):
    if ctx:
        ctx["s"].cleanup()


if __name__ == "__main__":
    fi.run_tests(shared=[test_blocks_are_included_files, test_html_samples_use_the_sdk,
                         test_examples_cbc, test_examples_gcm, test_guide_commands,
                         test_openapi_lint, test_openapi_served, test_rest_matches_openapi],
                 setup=setup, teardown=teardown)
