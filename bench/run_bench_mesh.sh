#!/usr/bin/env bash
# BlazeFace / FaceMesh / Iris: the C pipeline and the JavaScript oracle
# (../shared/tools/facemesh-reference on TF.js wasm, one thread) on the same
# frames of the labelled clips, in the same run; then JS/C per stage against
# the targets (every stage >= 4x faster than the oracle, a tracked frame
# <= 2 ms median).
#   usage: bench/run_bench_mesh.sh [N_FRAMES]   (default 60 frames for the
#          side-by-side; the C figures are on every frame of the clips)
#   env:   BUILD=build dir with bench_mesh (default build/), FA_SHARED_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FA_SHARED_DIR:-$root/../shared}
build=${BUILD:-$root/build}
out=$root/bench/out
n_js=${1:-60}
mkdir -p "$out"

clips=()
for d in "$shared"/data/faces/video/*/; do
    [ -f "$d/labels.json" ] && clips+=("${d}frames")
done
mapfile -t all < <(for c in "${clips[@]}"; do ls "$c"/*.jpg; done)
step=$(( (${#all[@]} + n_js - 1) / n_js ))
subset=()
for ((i = 0; i < ${#all[@]}; i += step)); do subset+=("${all[$i]}"); done

echo "== C, every frame of the ${#clips[@]} labelled clips (${#all[@]} frames)"
"$build/bench_mesh" --runs 3 --json "$out/mesh_c_all.json" "${clips[@]}"

ref="$out/facemesh-reference"
if [ ! -d "$ref/node_modules" ]; then
    echo "== installing the JavaScript oracle (npm ci)"
    mkdir -p "$ref"
    cp -r "$shared/tools/facemesh-reference/." "$ref/"
    chmod -R u+w "$ref"
    (cd "$ref" && npm ci --silent --no-audit --no-fund)
fi

echo
echo "== same run, ${#subset[@]} frames (every ${step}th): C"
"$build/bench_mesh" --runs 5 --json "$out/mesh_c_subset.json" "${subset[@]}" | tail -n +3
echo
echo "== same run, the same ${#subset[@]} frames: JavaScript oracle (wasm backend, 5 runs each)"
node "$ref/run.mjs" --backend wasm --runs 5 --warmup 1 --compact \
    --root "$shared/data/faces" --out "$out/mesh_js.json" "${subset[@]}" 2>"$out/mesh_js.log"
tail -n 1 "$out/mesh_js.log"

python3 - "$out/mesh_c_subset.json" "$out/mesh_js.json" "$out/mesh_c_all.json" <<'PY'
import json, statistics, sys
c = json.load(open(sys.argv[1]))
js = json.load(open(sys.argv[2]))
call = json.load(open(sys.argv[3]))
t = [r["timings_ms"] for r in js.values() if r.get("timings_ms") and r.get("faces")]
def med(k):
    return statistics.median(x[k] for x in t)
j = {"blazeface": med("blazeface"), "facemesh": med("facemesh"), "iris": med("iris")}
j["tracked_frame"] = statistics.median(x["facemesh"] + x["iris"] for x in t)
print()
print(f"{'stage (median ms)':22s} {'JS wasm':>8s} {'C':>8s} {'C p95':>8s} {'JS/C':>6s}  target")
for k, target in [("blazeface", ">= 4x"), ("facemesh", ">= 4x"), ("iris", ">= 4x"),
                  ("tracked_frame", ">= 4x, C <= 2 ms")]:
    cm, cp = c[k]["median"], c[k]["p95"]
    r = j[k] / cm if cm else float("nan")
    ok = r >= 4 and (k != "tracked_frame" or cm <= 2.0)
    print(f"{k:22s} {j[k]:8.2f} {cm:8.2f} {cp:8.2f} {r:6.1f}  {target}: {'met' if ok else 'NOT met'}")
print("(JS tracked_frame = its FaceMesh + Iris per frame: the oracle detects on every frame;"
      " iris = both eyes)")
print(f"C on all {call['frames']} frames: " + ", ".join(
    f"{k} {call[k]['median']:.2f} / p95 {call[k]['p95']:.2f} ms"
    for k in ["blazeface", "facemesh", "iris", "tracked_frame"]))
PY
