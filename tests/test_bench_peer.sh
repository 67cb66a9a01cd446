#!/bin/sh
# test_bench_peer.sh: tools/torch_gatys.py, the PyTorch peer of `nst bench`
# (BENCHMARKS.md): bad arguments exit 2 with a message, a python without
# PyTorch gets one clear message and exit 1, and, where $PYTHON (default
# python3) has PyTorch, a small CPU evaluation runs and reports a finite loss.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
T=build/tmp/bench_peer
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

if ! command -v "$PY" > /dev/null 2>&1; then
    echo "skip - no $PY: tools/torch_gatys.py not checked"
    exit 0
fi
peer="$PY tools/torch_gatys.py"

for args in "--size 8" "--evals 0" "--device gpu" "--device cpu --tf32" "--threads -1" "--bogus"; do
    $peer $args > "$T/out" 2> "$T/err"
    rc=$?
    check "torch_gatys.py $args exits 2 with a message" "[ $rc -eq 2 ] && grep -q 'error:' $T/err"
done
$peer --help > "$T/out" 2>&1
check "torch_gatys.py --help exits 0" "[ \$? -eq 0 ] && grep -q -- '--threads' $T/out"

if "$PY" -c 'import torch' 2> /dev/null; then
    $peer --device cpu --size 32 --evals 2 --threads 1 --json > "$T/out" 2> "$T/err"
    rc=$?
    check "a 32x32 CPU evaluation reports its times and a finite loss" \
        "[ $rc -eq 0 ] && $PY -c 'import json, math, sys; r = json.load(open(sys.argv[1])); \
         assert r[\"size\"] == 32 and r[\"evals\"] == 2 and r[\"threads\"] == 1; \
         assert 0 < r[\"min_ms\"] <= r[\"median_ms\"] <= r[\"max_ms\"]; \
         assert math.isfinite(r[\"loss\"]) and r[\"loss\"] > 0' $T/out"
    [ $rc -eq 0 ] || cat "$T/err"
else
    # Without PyTorch: one message that says what to do, no traceback.
    $peer --size 32 > "$T/out" 2> "$T/err"
    rc=$?
    check "without PyTorch: exit 1 and a message naming the fix" \
        "[ $rc -eq 1 ] && grep -q 'pip install torch' $T/err && ! grep -q Traceback $T/err"
    echo "skip - $PY has no PyTorch (set PYTHON): no evaluation run"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
