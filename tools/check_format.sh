#!/usr/bin/env bash
# Every C source and header is laid out as .clang-format says (STYLE.md).
set -u
root=${1:-.}
cd "$root" || exit 2
command -v clang-format >/dev/null || { echo "check_format: clang-format not found (tools/install_deps.sh installs it)"; exit 1; }
mapfile -t files < <(find src tests bench tools -name '*.[ch]' | sort)
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/check_format.$$; then
  grep -E "error:" /tmp/check_format.$$ | cut -d: -f1 | sort -u | sed 's/^/check_format: not formatted: /'
  echo "check_format: run clang-format -i on them"
  rm -f /tmp/check_format.$$
  exit 1
fi
rm -f /tmp/check_format.$$
echo "check_format: ${#files[@]} files formatted"
