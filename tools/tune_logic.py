#!/usr/bin/env python3
"""Choose the thresholds of the session logic (src/logic/logic.h, liveness.c)
from measurements on ../shared/data/faces with the repo's own engine, and
print the figures behind each choice.

It runs `eval_sessions --dump` (bench/eval_sessions.c: the server's engine
pass, app_observe, on every clip frame, every identity photo, the built
attacks and a ladder of degraded images) and then, in plain Python:

  quality   each image limit (blur, dark, bright, contrast, face size) is
            where the median drift of the face descriptor, from the same
            image undegraded, reaches DRIFT (1.4 x the spread of a live
            session's own frames); each pose limit (yaw, pitch) is the last
            5-degree band whose median drift from the clip's frontal frames
            stays within POSE_EXTRA of the frontal frames' own
  matching  the distance threshold for FMR <= 0.1% on every impostor pair of
            the identity photos (1:1) and for no impostor match in 1:N (each
            photo against the other people's templates); the logistic
            calibration of confidence (balanced classes)
  identity  the face-changed distance: midway between what any genuine clip
            reaches on two consecutive good frames (distance to the session's
            earlier frames) and the least another person reaches
  motion    each feature's limit: the largest value over the attacks (moved
            photos, repeated and re-encoded frames) x 1.25, of the trimmed
            range of the shape features' residuals after regression on the
            pose, and of yaw and pitch (as liveness.c computes them)

usage: tools/tune_logic.py [--eval BUILD/eval_sessions] [--dump FILE] [--cache DIR]
The printed values are the ones written in logic.h / liveness.c.
"""
import argparse
import json
import math
import os
import subprocess
import sys
from collections import defaultdict

DRIFT = 0.20          # median descriptor drift at an image quality limit (normalised):
                      # 1.4 x the spread of a live session's own frames (median 0.14)
POSE_EXTRA = 0.075    # drift a head turn may add to the frontal frames' own spread
FMR_MAX = 0.001       # target false-match rate
MARGIN = 1.25         # safety factor on attack maxima / genuine maxima
TRIM_DIV = 10         # trimmed range: (n + 9) // 10 dropped at each end (liveness.c)
MIN_FRAMES = 5
RESID_MIN_FRAMES = 15  # LOGIC_RESID_MIN_FRAMES
SWAP_FRAMES = 2        # LOGIC_SWAP_FRAMES
NSHAPE = 5
NAMES = ["nose_x", "nose_y", "mouth_open", "mouth_wide", "brow", "yaw", "pitch"]


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def normalize(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n > 0 else v


def mean_u(vs):
    m = [0.0] * len(vs[0])
    for v in vs:
        for i, x in enumerate(v):
            m[i] += x
    return normalize(m)


def trimmed_range(v):
    n = len(v)
    if n < MIN_FRAMES:
        return 0.0
    v = sorted(v)
    k = (n + TRIM_DIV - 1) // TRIM_DIV
    return v[n - 1 - k] - v[k]


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p * (len(v) - 1)))))] if v else float("nan")


def load(path):
    photos, seqs, degr = [], defaultdict(list), []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "photo" in r:
                photos.append(r)
            elif "seq" in r:
                seqs[r["seq"]].append(r)
            elif "degrade" in r:
                degr.append(r)
    return photos, seqs, degr


# ------------------------------------------------------------------ quality

def crossing(points, higher_better, label, unit=""):
    """points: (measure, drift; None when the detector lost the face).
    Walking from good to bad values, the measure where the running median
    drift of the 15 nearest points first exceeds DRIFT."""
    pts = sorted(((m, d if d is not None and d >= 0 else 9.0) for m, d in points),
                 key=lambda x: -x[0] if higher_better else x[0])
    w = 15
    lim = None
    for i in range(len(pts) - w + 1):
        win = pts[i:i + w]
        if q([d for _, d in win], 0.5) > DRIFT:
            lim = q([m for m, _ in win], 0.5)
            break
    print(f"  {label:12s} limit {lim:8.3f}{unit}  (median drift of the {w} nearest of "
          f"{len(pts)} degraded frames crosses {DRIFT})")
    return lim


def quality(degr, seqs):
    print("Quality limits (descriptor drift of degraded copies of 7 clip frames and 16 photos):")
    by = defaultdict(list)
    for r in degr:
        if r["level"] == 0:
            continue
        if r["face"] and r["drift"] >= 0:
            by[r["degrade"]].append(r)
    out = {}
    out["sharp"] = crossing([(r["sharp"], r["drift"]) for r in by["blur"]], True, "sharpness")
    out["luma_min"] = crossing([(r["luma"], r["drift"]) for r in by["dark"]], True, "dark luma")
    out["luma_max"] = crossing([(r["luma"], r["drift"]) for r in by["bright"]], False,
                               "bright luma")
    out["contrast"] = crossing([(r["contrast"], r["drift"]) for r in by["contrast"]], True,
                               "contrast")
    out["face_px"] = crossing([(r["w"], r["drift"]) for r in by["small"]], True, "face px")
    lost = defaultdict(int)
    for r in degr:
        if not r["face"]:
            lost[r["degrade"]] += 1
    print(f"  (faces lost by the detector at some level: {dict(lost)})")

    # pose: drift from the clip's frontal mean, by angle
    print("Pose limits (clip frames: drift from the clip's frontal mean, by angle):")
    rows = {"yaw": [], "pitch": []}
    offsets = []
    for name, fr in seqs.items():
        if fr[0]["kind"] != "clip":
            continue
        fr = [r for r in fr if r.get("face") and "u" in r]
        front = [r["u"] for r in fr if abs(r["yaw"]) < 10 and abs(r["pitch"]) < 10]
        offsets += [r["pitch"] for r in fr if abs(r["yaw"]) < 10]
        if len(front) < 3:
            continue
        m = mean_u(front)
        for r in fr:
            d = dist(r["u"], m)
            rows["yaw"].append((abs(r["yaw"]), d))
            rows["pitch"].append((abs(r["pitch"]), d))
    for k in ("yaw", "pitch"):
        print(f"  {k}: " + "  ".join(
            f"{a}-{a + 5}:{q([d for x, d in rows[k] if a <= x < a + 5], 0.5):.2f}"
            f"(n={sum(a <= x < a + 5 for x, _ in rows[k])})"
            for a in range(0, 60, 5) if any(a <= x < a + 5 for x, _ in rows[k])))
        base = q([d for x, d in rows[k] if x < 5], 0.5)
        lim = None
        for a in range(5, 90, 5):
            band = [d for x, d in rows[k] if a - 5 <= x < a]
            if len(band) < 3:
                continue
            if q(band, 0.5) > base + POSE_EXTRA:
                break
            lim = a
        print(f"  {k} limit {lim} deg (last band with >= 3 frames whose median drift <= "
              f"{base:.3f} (0-5 deg) + {POSE_EXTRA})")
        out[k] = lim
    print(f"  pitch of faces looking into the camera (|yaw| < 10): median {q(offsets, 0.5):+.1f} "
          f"deg after the offset in logic.h (add this to LOGIC_PITCH_OFFSET)")
    return out


# ------------------------------------------------------------------ matching

def matching(photos):
    ph = [p for p in photos if p["face"]]
    print(f"\nMatching ({len(photos)} identity photos, {len(ph)} with a descriptor):")
    gen, imp = [], []
    for i in range(len(ph)):
        for j in range(i + 1, len(ph)):
            d = dist(ph[i]["u"], ph[j]["u"])
            (gen if ph[i]["person"] == ph[j]["person"] else imp).append(d)
    npairs_gen = sum(1 for i in range(len(photos)) for j in range(i + 1, len(photos))
                     if photos[i]["person"] == photos[j]["person"])
    npairs_imp = len(photos) * (len(photos) - 1) // 2 - npairs_gen
    imp.sort()
    k = int(FMR_MAX * npairs_imp)
    t11 = imp[k] - 1e-9 if k < len(imp) else 2.0
    # 1:N: each photo against every other person's template (all their photos)
    people = sorted({p["person"] for p in ph})
    tpl = {pp: mean_u([p["u"] for p in ph if p["person"] == pp]) for pp in people}
    nearest_stranger = min(dist(p["u"], tpl[o]) for p in ph for o in people if o != p["person"])
    t1n = nearest_stranger - 1e-9
    thr = math.floor(min(t11, t1n) * 100) / 100
    far = sum(d <= thr for d in imp)
    frr = npairs_gen - sum(d <= thr for d in gen)
    print(f"  impostor pairs {npairs_imp}: FMR <= {FMR_MAX:.1%} allows {k}; "
          f"{k + 1}th smallest impostor distance {imp[k]:.4f}")
    print(f"  1:N: nearest other person's template to any photo at {nearest_stranger:.4f}")
    print(f"  LOGIC_MATCH_DIST = {thr:.2f}: FAR {far}/{npairs_imp} = {100 * far / npairs_imp:.3f}%,"
          f" FRR {frr}/{npairs_gen} = {100 * frr / npairs_gen:.2f}%")
    for t in (0.25, 0.28, 0.30, 0.32, 0.35, 0.38, 0.40, 0.45):
        fa = sum(d <= t for d in imp)
        fr = npairs_gen - sum(d <= t for d in gen)
        print(f"    at {t:.2f}: FAR {100 * fa / npairs_imp:6.3f}%  FRR {100 * fr / npairs_gen:5.1f}%")

    # logistic calibration, balanced classes (Newton's method on 2 parameters)
    w_g, w_i = 0.5 / len(gen), 0.5 / len(imp)
    data = [(d, 1.0, w_g) for d in gen] + [(d, 0.0, w_i) for d in imp]
    a, b = -10.0, 4.0  # p = 1 / (1 + exp(-(a d + b)))
    for _ in range(100):
        g0 = g1 = h00 = h01 = h11 = 0.0
        for d, y, w in data:
            z = a * d + b
            p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
            g0 += w * (p - y) * d
            g1 += w * (p - y)
            s = w * p * (1 - p)
            h00 += s * d * d
            h01 += s * d
            h11 += s
        det = h00 * h11 - h01 * h01
        if det <= 0:
            break
        da = (h11 * g0 - h01 * g1) / det
        db = (h00 * g1 - h01 * g0) / det
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    slope, mid = -a, -b / a
    print(f"  confidence = 1 / (1 + exp({slope:.1f} * (d - {mid:.3f})))  "
          f"(LOGIC_CONF_SLOPE, LOGIC_CONF_MID; equal priors); at the threshold: "
          f"{1 / (1 + math.exp(slope * (thr - mid))):.3f}")
    return {"match": thr, "slope": slope, "mid": mid, "gen": gen, "imp": imp}


# ------------------------------------------------------------------ sessions

def identity(seqs, match_thr):
    print("\nIdentity within a session (clip frames that pass quality; a swap is "
          f"{SWAP_FRAMES} consecutive good frames beyond the distance):")
    clips = {n: [r for r in fr if r.get("reason") == "ok" and "u" in r]
             for n, fr in seqs.items() if fr[0]["kind"] == "clip"}
    gmax, worst = 0.0, ""
    for n, fr in clips.items():
        acc, ds = None, []
        for r in fr:
            ds.append(dist(r["u"], normalize(acc)) if acc is not None else 0.0)
            acc = r["u"][:] if acc is None else [x + y for x, y in zip(acc, r["u"])]
        runs = [min(ds[i:i + SWAP_FRAMES]) for i in range(len(ds) - SWAP_FRAMES + 1)]
        if runs and max(runs) > gmax:
            gmax, worst = max(runs), n
    print(f"  largest distance genuine frames reach {SWAP_FRAMES} in a row: {gmax:.3f} ({worst})")
    cross = []
    for a in sorted(clips):
        if len(clips[a]) < 5:
            continue
        ref = mean_u([r["u"] for r in clips[a][:5]])
        for b in sorted(clips):
            if b == a or len(clips[b]) < SWAP_FRAMES:
                continue
            ds = [dist(r["u"], ref) for r in clips[b]]
            runs = [min(ds[i:i + SWAP_FRAMES]) for i in range(len(ds) - SWAP_FRAMES + 1)]
            cross.append((max(runs), a, b))
    cross.sort()
    print("  another person (clip b after clip a's first 5 frames), largest run: " +
          ", ".join(f"{d:.3f} ({a}->{b})" for d, a, b in cross[:3]))
    if cross and cross[0][0] > gmax:
        swap = math.floor((gmax + cross[0][0]) / 2 * 100) / 100
        print(f"  LOGIC_SWAP_DIST = LOGIC_ENROLL_DIST = {swap:.2f}: midway between the two "
              f"(margins {swap - gmax:.3f} and {cross[0][0] - swap:.3f}: thin; the descriptor "
              f"barely separates a person's worst frames from the closest other person)")
    else:
        swap = math.ceil(gmax * MARGIN * 100) / 100
        print(f"  the two overlap: LOGIC_SWAP_DIST = {swap:.2f} (genuine x{MARGIN})")
    miss = [c for c in cross if c[0] <= swap]
    print(f"  swaps that would go unseen: {len(miss)}/{len(cross)}")
    return swap


def solve(A, b):
    n = len(A)
    M = [A[i][:] + [b[i]] for i in range(n)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        if abs(M[p][c]) < 1e-12:
            return None
        M[c], M[p] = M[p], M[c]
        for r in range(c + 1, n):
            f = M[r][c] / M[c][c]
            for k in range(c, n + 1):
                M[r][k] -= f * M[c][k]
    x = [0.0] * n
    for c in range(n - 1, -1, -1):
        x[c] = (M[c][n] - sum(M[c][k] * x[k] for k in range(c + 1, n))) / M[c][c]
    return x


def regressors(f):
    y, p, o = f[5] / 30.0, f[6] / 30.0, f[7] / 30.0
    return [1.0, y, p, o, y * y, p * p, y * p]


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    u = a[2] * a[3] + b[2] * b[3] - inter
    return inter / u if u > 0 else 0.0


def tracks(fr):
    """The face tracks of session.c: frames with one subject (not no_face or
    multiple_faces), split where the box jumps (IoU < 0.3) or after 1 s."""
    out, cur, last = [], [], None
    for r in fr:
        if not r.get("face") or r["reason"] in ("no_face", "multiple_faces"):
            continue
        if last is None or iou(r["box"], last["box"]) < 0.3 or r["t"] - last["t"] > 1000:
            if cur:
                out.append(cur)
            cur = []
        cur.append(r)
        last = r
    if cur:
        out.append(cur)
    return out


def evidence(fr):
    """The motion evidence of liveness.c as a session sees it: motion latches
    as soon as it is seen, so the largest over every track and every prefix
    of a track (the frames so far)."""
    best = [0.0] * 7
    for t in tracks(fr):
        for n in range(MIN_FRAMES, len(t) + 1):
            ev = track_evidence(t[:n])
            best = [max(a, b) for a, b in zip(best, ev)]
    return best


def track_evidence(fr):
    feats = [r["feat"] for r in fr if r["det"] >= 0.5]
    n = len(feats)
    out = [0.0] * 7
    if n >= RESID_MIN_FRAMES:
        X = [regressors(f) for f in feats]
        A = [[sum(x[a] * x[b] for x in X) + (1e-6 if a == b else 0.0) for b in range(7)]
             for a in range(7)]
        for k in range(NSHAPE):
            c = solve(A, [sum(x[a] * f[k] for x, f in zip(X, feats)) for a in range(7)])
            if c is not None:
                out[k] = trimmed_range([f[k] - sum(ca * xa for ca, xa in zip(c, x))
                                        for x, f in zip(X, feats)])
    for k in (5, 6):
        out[k] = trimmed_range([f[k] for f in feats])
    return out


def motion(seqs):
    attacks = {n: fr for n, fr in seqs.items() if fr[0]["kind"] in ("warp", "repeat", "reencode")}
    genuine = {n: fr for n, fr in seqs.items() if fr[0]["kind"] == "clip"}
    spoof = {n: fr for n, fr in seqs.items() if fr[0]["kind"] == "spoof"}
    amax, who = [0.0] * 7, [""] * 7
    for n, fr in attacks.items():
        ev = evidence(fr)
        for k in range(7):
            if ev[k] > amax[k]:
                amax[k], who[k] = ev[k], n
    lim = [round(x * MARGIN, 4) if k < NSHAPE else 0.0 for k, x in enumerate(amax)]
    print("\nMotion evidence (shape residuals after regression on the pose). Yaw and pitch "
          "ranges are shown but are not evidence: the mesh reads a tilted picture as a turned "
          "head, so no range of them is out of a picture's reach:")
    print(f"  {'feature':12s} {'attack max':>10s} {'limit':>8s}  (attack)")
    for k in range(7):
        print(f"  {NAMES[k]:12s} {amax[k]:10.4f} {lim[k] if lim[k] else '-':>8}  ({who[k]})")
    print("  genuine clips and the spoof: max over features and prefixes of evidence / limit")
    for n, fr in list(genuine.items()) + list(spoof.items()):
        ev = evidence(fr)
        sc = [ev[k] / lim[k] if lim[k] > 0 else 0 for k in range(7)]
        k = max(range(7), key=lambda i: sc[i])
        extra = f"  yaw range {ev[5]:.1f}, pitch range {ev[6]:.1f}"
        print(f"    {n:40s} {sc[k]:5.2f} ({NAMES[k]}){extra}")
    return lim


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", default=os.path.join(root, "build/eval_sessions"))
    ap.add_argument("--dump", default=None, help="use this dump instead of running --eval")
    ap.add_argument("--cache", default=None, help="eval_sessions engine cache directory")
    a = ap.parse_args()
    path = a.dump
    if path is None or not os.path.exists(path):
        path = path or "/tmp/tune_logic_dump.jsonl"
        cmd = [a.eval, "--dump", path] + (["--cache", a.cache] if a.cache else [])
        print("running " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    photos, seqs, degr = load(path)
    quality(degr, seqs)
    m = matching(photos)
    identity(seqs, m["match"])
    motion(seqs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
