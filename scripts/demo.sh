#!/usr/bin/env bash
# The main job on its embedded defaults, end to end: what `make demo` runs.
#   1-5  the mini course: handout build, verify, a student's check on stubs and on the reference, submit
#   6    grading a batch of sample submissions in the sandbox, with a gradebook and an HTML report
#   7    the basics unit: handout build and verify (reference passes, stubs fail, nothing leaks)
set -euo pipefail
cd "$(dirname "$0")/.."
LMC=${LMC:-$PWD/.venv/bin/lmcourse}
OUT=${DEMO_OUT:-$PWD/out/demo}
SANDBOX=${SANDBOX:-docker}
MINI=tests/minicourse
step() { printf '\n== %s\n' "$*"; }

rm -rf "$OUT"
step "1. build the toy unit's handout (folder, zip, manifest) and its staff tree"
$LMC --course $MINI handout build --out "$OUT"
$LMC --course $MINI handout build --solutions --out "$OUT"

step "2. verify: the reference passes every test, the stubs fail every public test, nothing leaks"
$LMC --course $MINI handout verify

step "3. a student's check on the fresh handout: every problem fails (exit status 1 expected)"
status=0; (cd "$OUT/toy" && $LMC check) || status=$?
[ "$status" -eq 1 ] || { echo "expected exit status 1, got $status"; exit 1; }

step "4. the same check on the reference: every problem passes"
(cd "$OUT/toy-solution" && $LMC check)

step "5. package a submission"
(cd "$OUT/toy-solution" && $LMC submit --no-check --out "$OUT/submissions/alice.zip")

step "6. grade a batch in the $SANDBOX sandbox: alice (reference), bob (stubs), carol (crashes at import)"
cp -r "$OUT/toy" "$OUT/submissions/bob"
cp -r "$OUT/toy-solution" "$OUT/submissions/carol"
printf 'import os\nos._exit(0)\n' > "$OUT/submissions/carol/tests/adapters.py"
$LMC --course $MINI grade "$OUT/submissions" --unit toy --sandbox "$SANDBOX" --out "$OUT/graded" --jobs 2
column -s, -t < "$OUT/graded/gradebook.csv"
cat "$OUT/graded/alice/summary.txt"
echo "report: $OUT/graded/report.html"

step "7. the basics unit: build and verify its handout"
$LMC handout build basics --out "$OUT"
$LMC handout verify basics
