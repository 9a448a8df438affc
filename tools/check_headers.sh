#!/usr/bin/env bash
# Every header under src/ must compile on its own (self-contained).
set -u
src=${1:-src}; cc=${2:-cc}
bad=0; n=0
inc="-I$src $(pkg-config --cflags jansson libwebsockets 2>/dev/null) -I/usr/include"
for h in "$src"/*/*.h; do
  n=$((n+1))
  if ! echo "#include \"$(realpath "$h")\"" | $cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
      -Wall -Wextra -Werror $inc -fsyntax-only -x c - 2>/tmp/check_headers.$$; then
    echo "check_headers: $h is not self-contained:"; cat /tmp/check_headers.$$; bad=1
  fi
done
rm -f /tmp/check_headers.$$
[ $bad -eq 0 ] && echo "check_headers: $n headers compile alone"
exit $bad
