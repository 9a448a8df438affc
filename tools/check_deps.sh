#!/usr/bin/env bash
# Enforces the module dependency rule: a file in src/<m>/ may include
# "<m>/..." (its own folder) and only the public header "<d>/<d>.h" of the
# modules <d> listed for <m> below. Prints every violation; exit 1 if any.
set -u
src=${1:-src}
declare -A allow=(
  [base]=""
  [img]="base"
  [nn]="base"
  [crypto]="base"
  [jobs]="base"
  [store]="base"
  [face]="nn img base"
  [logic]="face base"
  [app]="logic face img store crypto jobs base"
  [http]="app jobs base"
  [ws]="app jobs base"
  [daemon]="http ws app logic face img nn store crypto jobs base"
  [cli]="http ws app logic face img nn store crypto jobs base"
)
bad=0
for dir in "$src"/*/; do
  m=$(basename "$dir")
  [ -n "${allow[$m]+x}" ] || { echo "check_deps: unknown module $m"; bad=1; continue; }
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' <<<"${line#*:}")
    [ -n "$inc" ] || continue
    case "$inc" in */*) ;; *) continue ;; esac   # same-folder private header
    d=${inc%%/*}
    if [ "$d" = "$m" ]; then continue; fi
    ok=0
    for a in ${allow[$m]}; do
      # base exposes each of its headers; other modules only <d>/<d>.h
      [ "$d" = "$a" ] && { [ "$inc" = "$a/$a.h" ] || [ "$a" = base ]; } && ok=1
    done
    if [ $ok -eq 0 ]; then
      echo "check_deps: $file includes \"$inc\": $m may not depend on it"
      bad=1
    fi
  done < <(grep -Hn '#[[:space:]]*include[[:space:]]*"' "$dir"*.c "$dir"*.h 2>/dev/null | sed 's/:[0-9]*:/:/')
done
[ $bad -eq 0 ] && echo "check_deps: every include follows the module rule"
exit $bad
