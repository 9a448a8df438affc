#!/usr/bin/env bash
# Fetch the networks the engine runs from the npm registry and verify every
# file against tools/models.sha256. The tree in DEST is replaced only when
# every file is present and verified, so a failure never leaves a half tree.
#   usage: tools/fetch_models.sh [DEST]   (default: ./models)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-models}
sums="$here/models.sha256"
faceapi_pkg="@vladmandic/face-api@1.7.15"
human_pkg="@vladmandic/human@3.3.6"

die() { echo "fetch_models: $*" >&2; exit 1; }

# Already fetched and intact: nothing to do.
if [ -d "$dest" ] && (cd "$dest" && sha256sum --quiet --strict -c "$sums") >/dev/null 2>&1; then
    echo "fetch_models: $dest is complete and verified"
    exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch the models (apt-get install npm)"
command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pack() {
    local spec=$1
    echo "fetch_models: npm pack $spec" >&2
    if ! (cd "$work" && timeout 600 npm pack --silent "$spec" >"$work/packname" 2>"$work/npm.log"); then
        cat "$work/npm.log" >&2 || true
        die "could not download $spec from the npm registry (network or registry unreachable?)"
    fi
    tail -n 1 "$work/packname"
}

fa_tgz=$(pack "$faceapi_pkg")
hu_tgz=$(pack "$human_pkg")

stage="$work/stage"
mkdir -p "$stage/face-api" "$stage/human" "$work/x1" "$work/x2"
tar -xzf "$work/$fa_tgz" -C "$work/x1" || die "corrupt archive $fa_tgz"
tar -xzf "$work/$hu_tgz" -C "$work/x2" || die "corrupt archive $hu_tgz"

while read -r _sum path; do
    name=${path#*/}
    case "$path" in
        face-api/*) src="$work/x1/package/model/$name" ;;
        human/*) src="$work/x2/package/models/$name" ;;
        *) die "bad line in $sums: $path" ;;
    esac
    [ -f "$src" ] || die "$path is missing from the package"
    cp "$src" "$stage/$path"
done <"$sums"

if ! (cd "$stage" && sha256sum --quiet --strict -c "$sums"); then
    die "checksum mismatch: refusing to install the models (see above)"
fi

# Swap the verified tree in; the old one (if any) goes only after the new one is in place.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"
mv "$stage" "$dest.new"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old"
echo "fetch_models: installed and verified $(wc -l <"$sums") files in $dest"
