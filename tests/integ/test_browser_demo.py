#!/usr/bin/env python3
"""The demo page end to end in a real browser (issue 9): faceauthd --demo,
Debian's chromium driven by playwright-core (tests/browser/demo_e2e.mjs),
and a fake camera playing real webcam clips of ../shared/data/faces/video,
converted to y4m with ffmpeg here. Enrollment through the page completes,
verification and identification of the same person succeed, and another
person's clip is refused. Screenshots go to <build dir>/tests/out/browser/.

Installs what is missing: chromium and ffmpeg with apt-get (root only),
playwright-core with `npm ci` into the build dir. Skips with a message only
when one of them cannot be installed."""
import os
import shutil
import subprocess
import sys

import fa_integ as fi  # first: it re-runs the test under /usr/bin/python3 if needed

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "..", "browser")

# (clip, start s, length s): the frontal part of each clip; chromium loops it
SAME = ("webcam_man_beard_headturn", 0.0, 2.5)  # frontal in frames 1-25
OTHER = ("stock_woman_wink_blink", 4.0, 3.0)    # facing the camera, moving closer


def skip(why):
    print("SKIP: " + why)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def ensure_debian(pkgs):
    missing = [p for p, exe in pkgs if shutil.which(exe) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        skip("needs %s and cannot install them (not root): apt-get install %s"
             % (", ".join(missing), " ".join(missing)))
    print("installing %s with apt-get" % " ".join(missing), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env)
    if r.returncode != 0:
        run(["apt-get", "update", "-qq"], env=env)
        r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env)
    if r.returncode != 0 or any(shutil.which(exe) is None for _, exe in pkgs):
        skip("apt-get install %s failed:\n%s" % (" ".join(missing), r.stderr[-2000:]))


def node_major():
    r = run(["node", "--version"]) if shutil.which("node") else None
    if r is None or r.returncode != 0:
        return 0
    return int(r.stdout.strip().lstrip("v").split(".")[0])


def npm_ci(src_dir, dest_dir, package):
    """npm ci of src_dir's package.json + lock into dest_dir (once per lock)."""
    os.makedirs(dest_dir, exist_ok=True)
    lock = os.path.join(src_dir, "package-lock.json")
    stamp = os.path.join(dest_dir, "node_modules", ".fa-lock")
    with open(lock) as f:
        want = f.read()
    if os.path.exists(stamp) and open(stamp).read() == want and \
            os.path.isdir(os.path.join(dest_dir, "node_modules", package)):
        return os.path.join(dest_dir, "node_modules")
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(src_dir, name), os.path.join(dest_dir, name))
    r = run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dest_dir,
            timeout=600)
    if r.returncode != 0:
        skip("npm ci failed (is the npm registry reachable?):\n" + r.stderr[-2000:])
    with open(stamp, "w") as f:
        f.write(want)
    return os.path.join(dest_dir, "node_modules")


def to_y4m(clip, start, length, out):
    d = os.path.join(fi.shared_dir(), "data", "faces", "video", clip)
    src = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("clip.")][0]
    r = run(["ffmpeg", "-y", "-loglevel", "error", "-ss", str(start), "-i", src, "-t",
             str(length), "-vf", "scale=640:360,fps=15", "-pix_fmt", "yuv420p", out])
    assert r.returncode == 0 and os.path.getsize(out) > 0, r.stderr
    return out


def main():
    ensure_debian([("chromium", "chromium"), ("ffmpeg", "ffmpeg")])
    if node_major() < 20 or shutil.which("npm") is None:
        skip("needs Node.js >= 20 with npm for playwright-core (found %d)" % node_major())
    work = os.path.join(fi.build_dir(), "tests", "browser")
    out = os.path.join(fi.build_dir(), "tests", "out", "browser")
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".png"):
            os.remove(os.path.join(out, f))
    modules = npm_ci(BROWSER_DIR, work, "playwright-core")
    same = to_y4m(*SAME, os.path.join(work, "same.y4m"))
    other = to_y4m(*OTHER, os.path.join(work, "other.y4m"))

    s = fi.Server(args=["--demo"])
    failed = 0
    try:
        s.start()
        env = dict(os.environ, FA_URL=s.url, FA_CLIP_SAME=same, FA_CLIP_OTHER=other, FA_OUT=out,
                   FA_NODE_MODULES=modules, FA_CHROMIUM=shutil.which("chromium"),
                   FA_TIMEOUT_MS=str(int(60000 * fi.SLOW)))
        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "demo_e2e.mjs")], env=env,
                           timeout=600 * fi.SLOW, capture_output=True, text=True)
        print(r.stdout, end="")
        print(r.stderr, end="", file=sys.stderr)
        shots = sorted(f for f in os.listdir(out) if f.endswith(".png"))
        print("screenshots in %s: %s" % (out, ", ".join(shots)))
        if r.returncode != 0:
            failed = 1
            print("FAIL demo_e2e (server log follows)")
            print(s.log_text()[-6000:])
        else:
            assert len(shots) == 4, shots
            print("PASS demo_e2e")
    finally:
        s.cleanup()
    print("%d passed, %d failed" % (1 - failed, failed))
    sys.exit(failed)


if __name__ == "__main__":
    main()
