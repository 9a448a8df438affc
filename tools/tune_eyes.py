#!/usr/bin/env python3
"""Choose the eye-closure threshold and the baseline window of the blink
detector (src/face/eyes.c) on the labelled clips, and print what they give.

It runs `faceauth eyes` once per clip to get the per-eye lid ratios, then
replays the eye-state machine of eyes.c (running-median baseline, relative
openness, both-eyes-closed rule, blink runs) in Python over a grid of
thresholds and windows, which is exact up to float rounding. The chosen pair
is then run through the binary itself and its own output is scored (and must
agree with the replay). Printed: closed-frame recall, open-frame false rate,
blinks found, winks miscounted as blinks, false blinks; for the pair chosen
on all clips, for the threshold and window chosen leave-one-clip-out (each
clip scored with the pair chosen on the other clips), and with tracking off
(BlazeFace on every frame) to show what tracking saves and that it loses
nothing.

Labels: video/*/labels.json (MANIFEST.md): `blinks` frames are closed,
`half_closed` frames count neither way, `winks` frames are one eye closed
(not blinks); every other frame is open. A detected blink matches a labelled
blink when it overlaps it within one frame (the labels are +-1 frame).

usage: tools/tune_eyes.py [--faceauth build/faceauth] [--models DIR] [CLIP_DIR...]
"""
import argparse
import json
import os
import struct
import subprocess
import sys

HIST = 128               # FACE_EYES_HIST
REOPEN_REL = 0.88        # FACE_EYES_REOPEN_REL
REOPEN_MS = 300.0        # FACE_EYES_REOPEN_S
MAX_LOW_MS = 2000.0      # FACE_EYES_MAX_LOW_S
THRESHOLDS = [round(0.75 + 0.005 * i, 3) for i in range(37)]  # 0.75 .. 0.93
WINDOWS = [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0]
OPEN_FALSE_MAX = 0.01  # the bound on open frames called closed


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


# --------------------------------------------------------------- replay of eyes.c

def replay(ratios, threshold, window_s, fps):
    """face_eyes_update over a clip. ratios: per frame (right, left) or None.
    Returns (closed flag per frame, blinks as (first, last))."""
    hist = [[], []]  # per eye: (t_ms, float32 ratio), oldest first, at most HIST
    low = [None, None]  # time each eye went below its threshold
    run = None          # [first, last, baselines] of the closed run
    pend = None         # (first, last, baselines, t_end) awaiting reopening
    closed_flags, blinks = [], []
    win_ms = int(window_s * 1000.0)
    for i, r in enumerate(ratios):
        frame = i + 1
        t = int(i * 1000.0 / fps + 0.5)
        if r is None:
            run = pend = None
            low = [None, None]
            closed_flags.append(False)
            continue
        for k in range(2):
            if hist[k] and t < hist[k][-1][0]:
                hist[k] = []
        base, ec = [], []
        for k in range(2):
            if not hist[k]:
                b = r[k]
            else:
                v = []  # newest first, up to the first sample outside the window
                for h in reversed(hist[k]):
                    if h[0] <= t - win_ms:
                        break
                    v.append(h[1])
                if not v:
                    b = hist[k][-1][1]
                else:
                    v.sort()
                    n = len(v)
                    b = v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])
            base.append(b)
            ec.append((r[k] / b if b > 0 else 1.0) < threshold)
        closed = ec[0] and ec[1]
        closed_flags.append(closed)
        if closed:
            if pend is not None:
                blinks.append(pend[:2])
                pend = None
            if run is None:
                run = [frame, frame, base]
            run[1] = frame
        else:
            if run is not None:
                pend, run = (run[0], run[1], run[2], t), None
            if pend is not None:
                if r[0] >= REOPEN_REL * pend[2][0] and r[1] >= REOPEN_REL * pend[2][1]:
                    blinks.append(pend[:2])
                    pend = None
                elif t - pend[3] >= REOPEN_MS:
                    pend = None
        for k in range(2):
            if not ec[k]:
                low[k] = None
            elif low[k] is None:
                low[k] = t
            if low[k] is None or t - low[k] > MAX_LOW_MS:
                hist[k].append((t, f32(r[k])))
                if len(hist[k]) > HIST:
                    hist[k].pop(0)
    return closed_flags, [tuple(b) for b in blinks]


# ------------------------------------------------------------------- scoring

def expand(ranges):
    s = set()
    for a, b in ranges:
        s.update(range(a, b + 1))
    return s


def score(labels, nframes, closed_flags, blinks):
    closed = expand(labels.get("blinks", []))
    half = set(labels.get("half_closed", []))
    winks = expand(labels.get("winks", []))
    opened = set(range(1, nframes + 1)) - closed - half - winks
    det = {i + 1 for i, c in enumerate(closed_flags) if c}
    # one-to-one: a detected blink accounts for at most one labelled blink
    # (two blinks merged into one detection count one found, one missed);
    # greedy in time order is a maximum matching for intervals
    found, used = 0, set()
    for a, b in sorted(labels.get("blinks", [])):
        for j, (x, y) in enumerate(blinks):
            if j not in used and x <= b + 1 and y >= a - 1:
                used.add(j)
                found += 1
                break
    wink_blinks = false_blinks = 0
    for x, y in blinks:
        if any(x <= b + 1 and y >= a - 1 for a, b in labels.get("blinks", [])):
            continue
        frames = set(range(x, y + 1))
        if any(x <= b + 1 and y >= a - 1 for a, b in labels.get("winks", [])):
            wink_blinks += 1
        elif not frames & half:
            false_blinks += 1
    return {
        "closed": len(closed), "closed_found": len(det & closed),
        "open": len(opened), "open_false": len(det & opened),
        "wink_frames": len(winks), "wink_frames_closed": len(det & winks),
        "blinks": len(labels.get("blinks", [])), "blinks_found": found,
        "wink_blinks": wink_blinks, "false_blinks": false_blinks,
    }


def total(scores):
    t = {}
    for s in scores:
        for k, v in s.items():
            t[k] = t.get(k, 0) + v
    return t


def feasible(t):
    return (t["open_false"] <= OPEN_FALSE_MAX * t["open"] and t["wink_blinks"] == 0
            and t["false_blinks"] == 0)


def choose(clips, names):
    """The (threshold, window) that, on the clips `names`, finds the most
    closed frames and blinks within the bounds (open false <= 1%, no wink or
    false blink); among equals the window nearest 2 s and the threshold in
    the middle of the best run."""
    best_key, cands = None, []
    for w in WINDOWS:
        for th in THRESHOLDS:
            t = total(score(clips[n]["labels"], clips[n]["frames"],
                            *replay(clips[n]["ratios"], th, w, clips[n]["fps"])) for n in names)
            violation = (max(0, t["open_false"] - OPEN_FALSE_MAX * t["open"])
                         + 10 * (t["wink_blinks"] + t["false_blinks"]))
            key = (-violation, t["closed_found"] + t["blinks_found"])
            if best_key is None or key > best_key:
                best_key, cands = key, [(w, th)]
            elif key == best_key:
                cands.append((w, th))
    w = min({c[0] for c in cands}, key=lambda x: (abs(x - 2.0), x))
    ths = sorted(c[1] for c in cands if c[0] == w)
    return ths[len(ths) // 2], w


# ----------------------------------------------------------------- the binary

def run_eyes(faceauth, models, frames_dir, extra):
    cmd = [faceauth, "eyes", "--stats"] + extra + ([f"--models={models}"] if models else [])
    cmd.append(frames_dir)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stderr}")
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    last = lines.pop()
    runs = None
    for tok in p.stderr.split(","):
        if "detector runs" in tok:
            runs = int(tok.split()[0])
    ratios, closed = [], []
    for fr in lines:
        if fr["face"]:
            ratios.append((fr["right"]["ratio"], fr["left"]["ratio"]))
        else:
            ratios.append(None)
        closed.append(bool(fr.get("closed", False)))
    return {"ratios": ratios, "closed": closed, "blinks": [tuple(b) for b in last["blinks"]],
            "frames": last["frames"], "detector_runs": runs}


# ----------------------------------------------------------------- reporting

def pct(a, b):
    return f"{a}/{b} ({100.0 * a / b:.1f}%)" if b else "0/0"


HEADER = (f"{'clip':34s} {'closed found':>16s} {'open called closed':>18s} "
          f"{'blinks':>7s} {'winks->blink':>12s} {'false blinks':>12s}")


def row(name, s, extra=""):
    return (f"{name:34s} {pct(s['closed_found'], s['closed']):>16s} "
            f"{pct(s['open_false'], s['open']):>18s} "
            f"{s['blinks_found']:>3d}/{s['blinks']:<3d} {s['wink_blinks']:>12d} "
            f"{s['false_blinks']:>12d}{extra}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faceauth", default=os.environ.get("FACEAUTH",
                                                          os.path.join(root, "build/faceauth")))
    ap.add_argument("--models", default=None)
    ap.add_argument("--shared", default=os.environ.get("FA_SHARED_DIR",
                                                        os.path.join(root, "../shared")))
    ap.add_argument("clips", nargs="*", help="clip folders with labels.json and frames/")
    a = ap.parse_args()
    dirs = a.clips
    if not dirs:
        vid = os.path.join(a.shared, "data/faces/video")
        dirs = [os.path.join(vid, d) for d in sorted(os.listdir(vid))
                if os.path.isfile(os.path.join(vid, d, "labels.json"))]
    clips = {}
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        labels = json.load(open(os.path.join(d, "labels.json")))
        r = run_eyes(a.faceauth, a.models, os.path.join(d, "frames"), [])
        if r["frames"] != labels["frames"]:
            sys.exit(f"{name}: {r['frames']} frames, labels say {labels['frames']}")
        r.update(labels=labels, fps=float(labels.get("fps", 10)))
        clips[name] = r
        print(f"  {name}: {r['frames']} frames, "
              f"{sum(x is not None for x in r['ratios'])} with a face", file=sys.stderr)
    names = sorted(clips)

    th, w = choose(clips, names)
    print(f"Chosen on all {len(names)} clips: threshold {th:g} x baseline, "
          f"baseline window {w:g} s (defaults in face.h: FACE_EYES_CLOSED_REL, "
          f"FACE_EYES_WINDOW_S)\n")

    # the chosen pair through the binary itself, tracking on and off
    scores, scores_nt, runs, runs_nt, mismatch = [], [], 0, 0, 0
    extra = [f"--threshold={th}", f"--window={w}"]
    print(f"faceauth eyes {' '.join(extra)} (tracking on):")
    print(HEADER)
    for n in names:
        c = clips[n]
        r = run_eyes(a.faceauth, a.models, os.path.join(c_dir(dirs, n), "frames"), extra)
        s = score(c["labels"], r["frames"], r["closed"], r["blinks"])
        rep_closed, rep_blinks = replay(c["ratios"], th, w, c["fps"])
        if rep_closed != r["closed"] or rep_blinks != r["blinks"]:
            mismatch += 1
        blinks = " ".join(f"{x}-{y}" if x != y else f"{x}" for x, y in r["blinks"])
        print(row(n, s, f"   [{blinks}]"))
        scores.append(s)
        runs += r["detector_runs"] or 0
        rn = run_eyes(a.faceauth, a.models, os.path.join(c_dir(dirs, n), "frames"),
                      extra + ["--no-track"])
        scores_nt.append(score(c["labels"], rn["frames"], rn["closed"], rn["blinks"]))
        runs_nt += rn["detector_runs"] or 0
    t = total(scores)
    print(row("all clips", t))
    print(f"  wink frames called closed: {pct(t['wink_frames_closed'], t['wink_frames'])}")
    if mismatch:
        print(f"  WARNING: the Python replay differs from the binary on {mismatch} clip(s)")
    else:
        print("  (the Python replay of eyes.c gives the binary's flags and blinks exactly)")

    tn = total(scores_nt)
    nframes = sum(clips[n]["frames"] for n in names)
    print(f"\nTracking: BlazeFace ran on {runs} of {nframes} frames "
          f"(without tracking: {runs_nt}); saved {runs_nt - runs} detector runs.")
    print(row("all clips, tracking on", t))
    print(row("all clips, detector every frame", tn))

    # leave one clip out
    print("\nLeave one clip out (threshold and window chosen on the other clips):")
    print(HEADER)
    loo = []
    for n in names:
        others = [m for m in names if m != n]
        th_n, w_n = choose(clips, others)
        c = clips[n]
        s = score(c["labels"], c["frames"], *replay(c["ratios"], th_n, w_n, c["fps"]))
        loo.append(s)
        print(row(n, s, f"   (threshold {th_n:g}, window {w_n:g} s)"))
    print(row("all clips, leave one clip out", total(loo)))
    return 0


def c_dir(dirs, name):
    for d in dirs:
        if os.path.basename(os.path.normpath(d)) == name:
            return d
    raise KeyError(name)


if __name__ == "__main__":
    sys.exit(main())
