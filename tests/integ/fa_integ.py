"""Shared helpers of the server integration tests (tests/integ/test_server_*.py).

They drive a real faceauthd as a client would: start it on a free loopback
port (--listen 127.0.0.1:0, the port is read from its log) with a temp data
dir, create clients with the operator CLI (`faceauth client create`), log in
over REST, stream the shared webcam frames over a real WebSocket. Binaries
come from $FA_BUILD_DIR, data from $FA_SHARED_DIR (ctest sets both).

Needs Debian's python3-websockets, python3-cryptography and python3-requests.
When the python3 found first (e.g. a pyenv one) lacks them, the test re-runs
itself under /usr/bin/python3.
"""
import os
import sys


def _ensure_deps():
    try:
        import websockets  # noqa: F401
        import cryptography  # noqa: F401
        import requests  # noqa: F401
    except ImportError:
        sysp = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(sysp) and os.path.exists(sysp) \
                and not os.environ.get("FA_INTEG_REEXEC"):
            os.environ["FA_INTEG_REEXEC"] = "1"
            os.execv(sysp, [sysp] + sys.argv)
        raise


_ensure_deps()

import asyncio  # noqa: E402
import base64  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import requests  # noqa: E402
import websockets  # noqa: E402


def build_dir():
    d = os.environ.get("FA_BUILD_DIR")
    if not d:
        print("FA_BUILD_DIR is not set (run through ctest)", file=sys.stderr)
        sys.exit(1)
    return d


def shared_dir():
    d = os.environ.get("FA_SHARED_DIR")
    if not d:
        d = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
    return os.path.abspath(d)


def asan_build():
    """True for a sanitizer build (slower: fewer frames, longer timeouts)."""
    cache = os.path.join(build_dir(), "CMakeCache.txt")
    try:
        with open(cache) as f:
            return "FA_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


SLOW = 4.0 if asan_build() else 1.0  # timeout multiplier


def seed_decrypt_response():
    """The seed's decrypt_response, taken verbatim from the seed document at
    run time (the python block that defines it, executed unchanged). The
    seed's snippet uses json without importing it, so json is provided."""
    seed = os.path.join(shared_dir(), "seed", "WEBSOCKET_IMPLEMENTATION.md")
    with open(seed, encoding="utf-8") as f:
        text = f.read()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "def decrypt_response" in block:
            ns = {"json": json}
            exec(compile(block, seed, "exec"), ns)
            return ns["decrypt_response"]
    raise RuntimeError("decrypt_response not found in the seed")


# ---- frames -----------------------------------------------------------------

def clip_frames(clip):
    """Sorted JPEG paths of a shared clip, e.g. 'studio_man_blink'."""
    files = sorted(glob.glob(os.path.join(shared_dir(), "data", "faces", "video", clip,
                                          "frames", "*.jpg")))
    if not files:
        raise RuntimeError("no frames for clip %s under %s" % (clip, shared_dir()))
    return files


def data_url(path):
    with open(path, "rb") as f:
        return "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()


def frame_msg(path, raw_base64=False):
    with open(path, "rb") as f:
        b = base64.b64encode(f.read()).decode()
    return json.dumps({"type": "frame", "image": b if raw_base64 else
                       "data:image/jpeg;base64," + b})


# ---- the server ---------------------------------------------------------------

def free_port():
    """A loopback port that was free a moment ago (for restarts on one port)."""
    import socket
    with socket.socket() as k:
        k.bind(("127.0.0.1", 0))
        return k.getsockname()[1]


class Server:
    """A faceauthd child process on a free loopback port."""

    def __init__(self, args=(), data_dir=None, engine=True, env=None, port=0):
        self.tmp = None
        if data_dir is None:
            self.tmp = tempfile.mkdtemp(prefix="fa_integ_")
            data_dir = os.path.join(self.tmp, "data")
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.args = list(args)
        self.engine = engine
        self.env = env
        self.proc = None
        self.listen_port = port  # 0: any free port, read from the log
        self.port = None
        self.log_path = None
        self.starts = 0

    def start(self, timeout=60):
        self.starts += 1
        self.log_path = os.path.join(os.path.dirname(self.data_dir) if self.tmp else
                                     tempfile.gettempdir(),
                                     "faceauthd.%d.%d.log" % (os.getpid(), self.starts))
        cmd = [os.path.join(build_dir(), "faceauthd"), "--listen", "127.0.0.1:%d" % self.listen_port,
               "--data-dir", self.data_dir, "--log-level", "debug"] + self.args
        if not self.engine:
            cmd.append("--no-engine")
        env = dict(os.environ)
        env.setdefault("FACEAUTH_MODELS", os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "models"))
        env.update(self.env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            m = re.search(r"listening on https?://[^ ]*:(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("faceauthd exited %d:\n%s" % (self.proc.returncode,
                                                                   self.log_text()))
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise RuntimeError("faceauthd did not start:\n" + self.log_text())

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def url(self):
        scheme = "https" if "--tls-cert" in self.args else "http"
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Send sig and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("faceauthd did not stop on signal %d:\n%s" % (sig,
                                                                               self.log_text()))
        self.proc = None
        self.log.close()
        return rc

    def sanitizer_report(self):
        """The sanitizer's complaint in the log, or None."""
        log = self.log_text()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = log.find(mark)
            if i >= 0:
                return log[max(0, i - 200):i + 4000]
        return None

    def cleanup(self):
        """Stop with SIGTERM (a clean exit 0, no sanitizer report, or raise)
        and remove the temp dir."""
        problem = None
        if self.proc is not None:
            try:
                rc = self.stop(signal.SIGTERM)
                if rc != 0:
                    problem = "faceauthd exited %s on SIGTERM" % rc
            except Exception as e:
                problem = str(e)
                if self.proc is not None:
                    self.proc.kill()
                    self.proc.wait()
                    self.proc = None
        report = self.sanitizer_report() if self.log_path else None
        if report:
            problem = (problem + "\n" if problem else "") + report
        if problem:
            tail = self.log_text()[-3000:]
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            raise RuntimeError(problem + "\n--- log tail ---\n" + tail)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- operator CLI ----
    def create_client(self, name, method=None):
        cmd = [os.path.join(build_dir(), "faceauth"), "client", "create", "--data-dir",
               self.data_dir, "--name", name]
        if method:
            cmd += ["--method", method]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW)
        if out.returncode != 0:
            raise RuntimeError("faceauth client create failed (%d): %s" % (out.returncode,
                                                                          out.stderr))
        return json.loads(out.stdout)

    # ---- REST ----
    def post(self, path, body=None, token=None, raw=None, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else b"")
        return requests.post(self.url + path, data=data, headers=h, timeout=60 * SLOW,
                             verify=False)

    def get(self, path, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        return requests.get(self.url + path, headers=h, timeout=60 * SLOW, verify=False)

    def delete(self, path, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        return requests.delete(self.url + path, headers=h, timeout=60 * SLOW, verify=False)

    def login(self, client):
        r = self.post("/api/auth/client/", {"api_key": client["api_key"],
                                             "secret_key": client["secret_key"]})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["token"]

    def session(self, token, kind, user_id=None, liveness=False, frames=3, blinks=0,
                replace=None, expect=201):
        body = {"require_liveness": liveness,
                "metadata": {"min_frames_required": frames, "required_blinks": blinks}}
        if user_id is not None:
            body["user_id"] = user_id
        if replace is not None:
            body["replace"] = replace
        r = self.post("/api/auth/%s/" % kind, body, token=token)
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()


# ---- WebSocket ------------------------------------------------------------------

async def connect(url, **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 20 * SLOW)
    kw.setdefault("close_timeout", 10 * SLOW)
    return await websockets.connect(url, **kw)


async def recv_json(ws, timeout=30):
    msg = await asyncio.wait_for(ws.recv(), timeout * SLOW)
    return json.loads(msg)


async def until_closed(ws, timeout=30):
    """Read until the server closes; returns (close code, [messages])."""
    msgs = []
    try:
        while True:
            msgs.append(json.loads(await asyncio.wait_for(ws.recv(), timeout * SLOW)))
    except websockets.exceptions.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
        return code, msgs


async def run_session(ws_url, frames, interval=0.11, max_frames=None, timeout=60):
    """Connect, stream `frames` one at a time (each after the previous reply,
    at most one per `interval` s) until the server finishes the session.
    Returns (established, [messages after it], close code); the close code is
    None when the frames ran out first (the client then closes)."""
    ws = await connect(ws_url)
    est = await recv_json(ws)
    msgs = []
    code = None
    done = False
    try:
        for path in frames[:max_frames]:
            t0 = time.monotonic()
            await ws.send(frame_msg(path))
            while True:
                m = await recv_json(ws, timeout)
                msgs.append(m)
                if m["type"] in ("frame_processed", "error"):
                    break
            last = msgs[-1]
            if last["type"] == "frame_processed" and \
                    last["frames_processed"] >= last["target_samples"] and \
                    (not est.get("require_liveness") or last["liveness_verified"]):
                done = True  # the completion (or the failure) follows, then the close
                break
            dt = time.monotonic() - t0
            if dt < interval:
                await asyncio.sleep(interval - dt)
        if done:
            code, rest = await until_closed(ws, timeout)
            msgs += rest
    except websockets.exceptions.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
    finally:
        await ws.close()
    return est, msgs, code


# ---- a tiny runner ------------------------------------------------------------

def run_tests(shared=(), own=(), setup=None, teardown=None):
    """Run the tests, report each, exit 1 on any failure. `shared` tests take
    the context that setup() returns (one server for all of them); `own`
    tests take no argument (they start their own server). Coroutine results
    run through asyncio.run. teardown(ctx) always runs."""
    failed = []
    ctx = None
    total = len(shared) + len(own)
    try:
        if shared and setup is not None:
            ctx = setup()
        for t in list(shared) + list(own):
            t0 = time.monotonic()
            try:
                r = t(ctx) if t in shared else t()
                if asyncio.iscoroutine(r):
                    asyncio.run(r)
                print("PASS %s (%.1f s)" % (t.__name__, time.monotonic() - t0), flush=True)
            except Exception:
                failed.append(t.__name__)
                print("FAIL %s (%.1f s)" % (t.__name__, time.monotonic() - t0), flush=True)
                traceback.print_exc()
    finally:
        if teardown is not None:
            try:
                teardown(ctx)
            except Exception:
                failed.append("teardown")
                print("FAIL teardown", flush=True)
                traceback.print_exc()
    print("%d passed, %d failed%s" % (total - len([f for f in failed if f != "teardown"]),
                                      len(failed),
                                      (": " + ", ".join(failed)) if failed else ""))
    sys.exit(1 if failed else 0)
