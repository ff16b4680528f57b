#!/usr/bin/env bash
# A file of code that must not compile: compiles it and checks that the compiler refuses it with the
# message on its first line ("// expect: ..."), and with no more than a screenful of errors.
#   check.sh <compiler> <include dir> <file>
set -uo pipefail
compiler=$1 include=$2 file=$3
expected=$(sed -n '1s|^// expect: ||p' "$file")
[[ -n "$expected" ]] || { echo "$file: no '// expect:' line"; exit 1; }
if output=$("$compiler" -std=c++20 -fsyntax-only -I"$include" "$file" 2>&1); then
  echo "$file compiled, and must not"; exit 1
fi
if ! grep -qF -- "$expected" <<<"$output"; then
  echo "$file was refused, but without \"$expected\":"; echo "$output" | head -40; exit 1
fi
errors=$(grep -c "error:" <<<"$output")
if (( errors > 5 )); then
  echo "$file: $errors errors; a readable refusal has a few:"; echo "$output" | grep "error:" | head -20; exit 1
fi
echo "$file refused: $expected ($errors errors)"
