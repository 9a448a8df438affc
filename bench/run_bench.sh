#!/usr/bin/env bash
# The engine benchmark of the README: C engine and the JavaScript reference
# (face-api.js on TF.js wasm, the oracle of ../shared/tools/faceapi-reference)
# on the same 640x480 JPEG q80 frames, in the same run, one thread each; then
# JS/C per stage and the peak memory of `faceauth embed` on one photo.
#   usage: bench/run_bench.sh [JS_IMAGES]   (default 16 images for the JS side)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FA_SHARED_DIR:-$root/../shared}
out=$root/bench/out
n_js=${1:-16}
mkdir -p "$out/inputs"
rm -f "$out"/inputs/*

echo "== C engine, all photos of identities/ and group/"
"$root/build/bench_engine" --runs 5 --write-inputs "$out/inputs" --json "$out/c_all.json" \
    "$shared/data/faces/identities" "$shared/data/faces/group"

mapfile -t all < <(ls "$out"/inputs/*.jpg | sort)
step=$(( (${#all[@]} + n_js - 1) / n_js ))
subset=()
for ((i = 0; i < ${#all[@]}; i += step)); do subset+=("${all[$i]}"); done

ref="$out/faceapi-reference"
if [ ! -d "$ref/node_modules" ]; then
    echo "== installing the JavaScript reference (npm ci)"
    mkdir -p "$ref"
    cp -r "$shared/tools/faceapi-reference/." "$ref/"
    chmod -R u+w "$ref"
    (cd "$ref" && npm ci --silent --no-audit --no-fund)
fi

echo
echo "== same run, the ${#subset[@]}-image subset: C engine"
"$root/build/bench_engine" --runs 5 --json "$out/c_subset.json" "${subset[@]}"
echo
echo "== same run, the ${#subset[@]}-image subset: JavaScript reference (wasm backend)"
node "$ref/run.mjs" --backend wasm --runs 5 --warmup 1 --root "$out/inputs" --out "$out/js.json" \
    "${subset[@]}" 2>"$out/js.log"

python3 - "$out/c_subset.json" "$out/js.json" <<'PY'
import json, statistics, sys
c = json.load(open(sys.argv[1]))
js = json.load(open(sys.argv[2]))
def med(key, sub=None):
    v = []
    for r in js.values():
        t = r.get("timings_ms")
        if not t or key not in t:
            continue
        x = t[key]
        if isinstance(x, dict):
            if not x.get("faces"):
                continue
            x = x["per_face"]
        v.append(x)
    return statistics.median(v) if v else float("nan")
j = {"decode": med("decode"), "tiny_face_detector": med("tiny_face_detector"),
     "ssd_mobilenetv1": med("ssd_mobilenetv1"), "landmarks": med("face_landmark_68"),
     "descriptor": med("face_recognition")}
j["frame"] = j["decode"] + j["tiny_face_detector"] + j["landmarks"] + j["descriptor"]
print()
print("%-20s %10s %10s %8s" % ("stage (median ms)", "JS wasm", "C", "JS/C"))
for k in ["decode", "tiny_face_detector", "ssd_mobilenetv1", "landmarks", "descriptor", "frame"]:
    cm = c[k]["median"]
    print("%-20s %10.2f %10.2f %8.1f" % (k, j[k], cm, j[k] / cm if cm else float("nan")))
print("(JS frame = sum of its stage medians; C frame timed as one piece)")
PY

echo
sample="$shared/data/faces/identities/kit_harington/02.jpg"
if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$root/build/faceauth" embed "$sample" >/dev/null 2>"$out/time.log" || true
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.log")
    echo "peak memory of 'faceauth embed' on one photo: $((rss / 1024)) MB (target <= 64 MB)"
else
    echo "peak memory: /usr/bin/time missing (apt-get install time)"
fi
