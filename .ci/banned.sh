#!/bin/sh
# .ci/banned.sh [FILE...] - fails when C code calls a banned function (`make lint` runs it on
# every C source, header and .def table the Makefile knows; without arguments it checks every
# *.c, *.h and *.def outside the build directories).
#
# Banned, with what to use instead (docs/HACKING.md, "Memory"):
#   sprintf vsprintf strcpy strcat stpcpy strncpy strncat gets   unbounded or unterminated
#       writes: snprintf with its result checked, a capped buf (buf_printf, buf_append)
#   atoi atol atoll atof   no error reporting: strtol/strtoll/strtod with end pointer and errno
#   strtok gmtime localtime ctime asctime ctime_r asctime_r tmpnam tempnam mktemp rand
#       static state (the program is threaded) or races: strtok_r, gmtime_r, localtime_r,
#       strftime, mkstemp, a private generator
#   alloca   unbounded stack use (-Wvla bans the other kind)
#
# Comments and string literals are skipped. A line that really needs one of them says why:
#     n = atoi(s);   /* banned-ok: REASON */
# Prints FILE:LINE: NAME(...) and exits 1 when anything was found; 0 otherwise; 2 on bad usage.
set -u
cd "$(dirname "$0")/.." || exit 2
if [ "$#" -eq 0 ]; then
  # shellcheck disable=SC2046
  set -- $(find . \( -name 'build*' -o -name node_modules -o -name .git \) -prune -o \
    \( -name '*.c' -o -name '*.h' -o -name '*.def' \) -type f -print | sed 's|^\./||' | sort)
fi
for f in "$@"; do
  [ -f "$f" ] || { echo "banned: no such file: $f" >&2; exit 2; }
done
awk '
BEGIN {
  n = split("sprintf vsprintf strcpy strcat stpcpy strncpy strncat gets " \
            "atoi atol atoll atof " \
            "strtok gmtime localtime ctime asctime ctime_r asctime_r tmpnam tempnam mktemp rand " \
            "alloca", names, " ")
  for (i = 1; i <= n; i++) banned[names[i]] = 1
  hits = 0
}
FNR == 1 { incomment = 0 }
{
  raw = $0
  # Blank out comments, string and character literals, keeping the code between them.
  code = ""; s = raw; len = length(s); i = 1
  while (i <= len) {
    c = substr(s, i, 1); c2 = substr(s, i, 2)
    if (incomment) {
      if (c2 == "*/") { incomment = 0; i += 2 } else i++
      continue
    }
    if (c2 == "/*") { incomment = 1; code = code " "; i += 2; continue }
    if (c2 == "//") break
    if (c == "\"" || c == "\047") {
      q = c; i++
      while (i <= len) {
        d = substr(s, i, 1)
        if (d == "\\") { i += 2; continue }
        i++
        if (d == q) break
      }
      code = code q q
      continue
    }
    code = code c; i++
  }
  if (raw ~ /\/\* *banned-ok: *[^ *]/) next
  rest = code
  while (match(rest, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
    word = substr(rest, RSTART, RLENGTH)
    before = substr(rest, 1, RSTART - 1)
    rest = substr(rest, RSTART + RLENGTH)
    sub(/[ \t]*\($/, "", word)
    if (!(word in banned)) continue
    if (before ~ /(\.|->)[ \t]*$/) continue   # a member of that name, not the function
    printf "%s:%d: %s() is banned\n", FILENAME, FNR, word
    hits++
  }
}
END {
  if (hits) {
    printf "banned: %d call(s) of banned functions (.ci/banned.sh says what to use)\n", hits
    exit 1
  }
}' "$@"
