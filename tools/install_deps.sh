#!/usr/bin/env bash
# Install the Debian packages the build and tests need, only those missing.
# Runs as root (or with sudo available). Debian 12.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format git ca-certificates
      libjpeg62-turbo-dev libturbojpeg0-dev libspng-dev libjansson-dev libssl-dev
      libsqlite3-dev libwebsockets-dev libjwt-dev libargon2-dev libcmocka-dev
      libdnnl-dev python3 python3-websockets python3-cryptography python3-requests
      valgrind time)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node (for the model download and the browser/doc tests): any node >= 18
# with npm will do, e.g. the machine's own; only when there is none, Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install_deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
