#!/bin/sh
# `nst batch` end to end on a narrow generated network and 32-48 px images:
# jobs from JSON Lines, a bad job failing alone, resuming, shards (by option
# and by Slurm's variables), two devices at once (PoCL and rusticl), a killed
# worker whose job is tried again on the other device, and a kill -9 of the
# whole batch mid-way, then a rerun: nothing finished lost or redone, no
# partial file.
set -u
cd "$(dirname "$0")/.."
NST=build/nst
MK=build/tools/nst-mkimage
T=build/tmp/batch
rm -rf "$T" && mkdir -p "$T/out"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
# the children of the batches this suite starts never outlive it
trap 'for p in $(jobs -p); do kill -9 $p 2>/dev/null; done' EXIT

build/tools/nst-genweights --out "$T/w.safetensors" --width-mult 0.0625 --seed 5 >/dev/null || no "generate weights"
$MK --pattern photo --size 48x36 --out "$T/photo.png"
$MK --pattern stripes --size 40x40 --out "$T/paint.jpg"
printf 'not an image' > "$T/broken.png"

# job NAME SIZE ITERATIONS [MORE JSON]: one line of a jobs file
job() {
    echo "{\"content\": \"$T/photo.png\", \"style\": [\"$T/paint.jpg\"], \"output\": \"$T/out/$1\", \"size\": $2, \"iterations\": $3, \"weights\": \"$T/w.safetensors\"${4:-}}"
}
# done_count FILE: the jobs a --json stream says were done
done_count() { grep -c '"event":"done"' "$1"; }
# the PNG ends with its IEND chunk: written whole
whole_png() { [ "$(tail -c 8 "$1" | head -c 4)" = IEND ]; }
# running PID: a process that is not a zombie (one whose parent died may
# wait for a reaper that a container does not have)
running() { [ -r /proc/$1/stat ] && ! sed 's/.*) //' /proc/$1/stat | grep -q '^Z'; }

# ---- a batch with bad jobs among good ones ----
{
    job a.png 32 4
    job b.png 48 4 ', "preserve-colors": true'
    job c.png 40 3 ', "style-weight": 20'
    echo "{\"content\": \"$T/missing.png\", \"style\": \"$T/paint.jpg\", \"output\": \"$T/out/bad1.png\"}"
    job bad2.png 32 3 ', "optimizer": "newton"'
    job bad3.png 32 3 ', "sise": 3'
    echo "{\"content\": \"$T/broken.png\", \"style\": \"$T/paint.jpg\", \"output\": \"$T/out/bad4.png\", \"size\": 32, \"iterations\": 3, \"weights\": \"$T/w.safetensors\"}"
    echo
    echo 'not json'
} > "$T/mixed.jsonl"
$NST batch "$T/mixed.jsonl" --json > "$T/mixed.json" 2> "$T/mixed.err"; rc=$?
check "a batch with failing jobs exits 1" "[ $rc -eq 1 ]"
check "the good jobs are done" "[ \"\$($MK --info $T/out/a.png)\" = '32 24' ] && [ \"\$($MK --info $T/out/b.png)\" = '48 36' ] && [ \"\$($MK --info $T/out/c.png)\" = '40 30' ]"
check "each bad job fails alone, with its reason" \
    "grep -q '\"job\":4,.*missing.png' $T/mixed.json && grep -q '\"job\":5,.*optimizer' $T/mixed.json && grep -q 'did you mean --size' $T/mixed.json && grep -q '\"job\":7,.*broken.png' $T/mixed.json && grep -q '\"job\":9,.*not JSON' $T/mixed.json"
check "no output and no partial file for a failed job" "! ls -A $T/out | grep -q -e bad -e nst-partial"
check "the summary counts them" "grep -q '\"event\":\"summary\",\"jobs\":8,\"done\":3,\"skipped\":0,\"failed\":5' $T/mixed.json"
check "largest job first" "[ \"\$(grep '\"event\":\"start\"' $T/mixed.json | head -1 | grep -c b.png)\" = 1 ]"
check "a job that failed with status 1 (maybe its device) is tried once more, then reported" \
    "grep -q '\"retry\",\"job\":7,' $T/mixed.json && grep -q '\"start\",\"job\":7,.*\"attempt\":2' $T/mixed.json && [ \$(grep -c '\"start\",\"job\":7,' $T/mixed.json) -eq 2 ]"
check "a job broken on its options is not tried twice" "[ \$(grep -c '\"start\",\"job\":5' $T/mixed.json) -eq 1 ]"

# the same batch again: the finished jobs are skipped, not redone
touch -d '2000-01-01' "$T/out/a.png"
$NST batch "$T/mixed.jsonl" --json > "$T/again.json" 2>/dev/null; rc=$?
check "a rerun skips the finished jobs" "[ \$(grep -c '\"event\":\"skip\"' $T/again.json) -eq 3 ] && [ \$(done_count $T/again.json) -eq 0 ] && [ $rc -eq 1 ]"
check "a skipped output is left alone" "[ \"\$(stat -c %Y $T/out/a.png)\" = \"\$(date -d 2000-01-01 +%s)\" ]"

$NST batch "$T/mixed.jsonl" > "$T/human.out" 2> "$T/human.err"
check "without --json: a summary naming each failure" "grep -q '0 done, 3 already done, 5 failed' $T/human.err && grep -q 'failed: line 4 .*missing.png' $T/human.err && [ ! -s $T/human.out ]"

# outputs in directories to be made; one whose directory is a file fails alone
{
    job new/deeper/n.png 32 2
    job ../broken.png/x.png 32 2
} > "$T/dirs.jsonl"
$NST batch "$T/dirs.jsonl" --json > "$T/dirs.json" 2>/dev/null; rc=$?
check "an output's directories are made" "[ $rc -eq 1 ] && [ \"\$($MK --info $T/out/new/deeper/n.png)\" = '32 24' ]"
check "an output under a file fails alone, not tried twice" "grep -q '\"failed\",\"job\":2,.*cannot create the directory' $T/dirs.json && ! grep -q '\"start\",\"job\":2,' $T/dirs.json"

# ---- usage ----
$NST batch 2> "$T/err"; rc=$?
check "no JOBS file exits 2" "[ $rc -eq 2 ] && grep -q JOBS $T/err"
$NST batch "$T/nothing.jsonl" 2> "$T/err"; rc=$?
check "a missing JOBS file exits 1 naming it" "[ $rc -eq 1 ] && grep -q nothing.jsonl $T/err"
{ job same.png 32 2; job same.png 40 2; } > "$T/dup.jsonl"
$NST batch "$T/dup.jsonl" 2> "$T/err"; rc=$?
check "two jobs writing one file exit 2" "[ $rc -eq 2 ] && grep -q 'lines 1 and 2' $T/err && [ ! -e $T/out/same.png ]"
$NST batch "$T/dup.jsonl" --shard 2/2 2> "$T/err"; rc=$?
check "--shard out of range exits 2" "[ $rc -eq 2 ] && grep -q shard $T/err"
$NST batch "$T/mixed.jsonl" --devices no-such-device 2> "$T/err"; rc=$?
check "--devices matching nothing exits 1 listing the devices" "[ $rc -eq 1 ] && grep -q 'no-such-device' $T/err && grep -q '0: ' $T/err"
echo "{\"content\": \"$T/photo.png\", \"style\": \"$T/paint.jpg\", \"output\": \"$T/out/d.png\", \"device\": \"0\"}" > "$T/dev.jsonl"
$NST batch "$T/dev.jsonl" --json > "$T/dev.json" 2>/dev/null
check "a job may not choose its device" "grep -q 'batch.s --devices' $T/dev.json"

# ---- shards: disjoint slices covering the whole ----
for i in 1 2 3 4 5; do job "s$i.png" $((28 + 4 * i)) 2; done > "$T/shards.jsonl"
$NST batch "$T/shards.jsonl" --shard 0/2 --json > "$T/s0.json" 2>/dev/null; rc0=$?
SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=6 SLURM_ARRAY_TASK_COUNT=2 \
    $NST batch "$T/shards.jsonl" --json > "$T/s1.json" 2>/dev/null; rc1=$?
check "two shards both succeed" "[ $rc0 -eq 0 ] && [ $rc1 -eq 0 ]"
check "Slurm's array task 7 of 6..7 is slice 1 of 2" "grep -q '\"shard\":1,\"shards\":2' $T/s1.json"
check "the shards split the jobs 3 + 2" "[ \$(done_count $T/s0.json) -eq 3 ] && [ \$(done_count $T/s1.json) -eq 2 ]"
check "together they did every job once" "[ \$(ls $T/out/s*.png | wc -l) -eq 5 ] && [ \$(cat $T/s0.json $T/s1.json | grep '\"event\":\"done\"' | sed 's/.*out.\(s[0-9]\).*/\1/' | sort -u | wc -l) -eq 5 ]"

# ---- kill -9 of the whole batch mid-way, then a rerun ----
for i in 1 2 3 4 5 6; do job "k$i.png" 32 6; done > "$T/kill.jsonl"
$NST batch "$T/kill.jsonl" --devices 0 --json > "$T/kill.json" 2> "$T/kill.err" &
bpid=$!
k=0
while [ $k -lt 1200 ] && [ "$(done_count $T/kill.json)" -lt 2 ]; do sleep 0.05; k=$((k + 1)); done
if [ "$(done_count $T/kill.json)" -lt 2 ]; then
    echo "# the batch did not finish 2 jobs in 60 s: its state, events and messages:"
    sed -n 's/^State:/# state:/p' /proc/$bpid/status 2> /dev/null
    grep -v '"iteration"' "$T/kill.json" | sed 's/^/# /'
    sed 's/^/# /' "$T/kill.err"
fi
kill -9 $bpid
wait $bpid 2>/dev/null
sleep 0.3
wpid=$(grep '"event":"start"' "$T/kill.json" | tail -1 | sed 's/.*"pid":\([0-9]*\).*/\1/')
check "the batch's worker dies with it" "[ -n \"$wpid\" ] && ! running $wpid"
ndone=$(done_count "$T/kill.json")
check "killed mid-way: some jobs done, not all" "[ $ndone -ge 2 ] && [ $ndone -lt 6 ]"
whole=1
for f in "$T"/out/k*.png; do whole_png "$f" || whole=0; done
check "every output there is whole" "[ $whole -eq 1 ] && [ \$(ls $T/out/k*.png | wc -l) -eq $ndone ]"
for f in "$T"/out/k*.png; do stat -c '%n %Y %i' "$f"; done > "$T/before"
# what a worker killed while writing leaves: the image writer's temporary file
for i in 1 2 3 4 5 6; do
    [ -e "$T/out/k$i.png" ] || : > "$T/out/..nst-partial.k$i.png.0badf00d.tmp"
done
$NST batch "$T/kill.jsonl" --devices 0 --json > "$T/rerun.json" 2>/dev/null; rc=$?
for f in $(cut -d' ' -f1 "$T/before"); do stat -c '%n %Y %i' "$f"; done > "$T/after"
check "the rerun finishes the rest" "[ $rc -eq 0 ] && [ \$(done_count $T/rerun.json) -eq $((6 - ndone)) ] && [ \$(ls $T/out/k*.png | wc -l) -eq 6 ]"
check "nothing finished was lost or redone" "[ \$(grep -c '\"event\":\"skip\"' $T/rerun.json) -eq $ndone ] && cmp -s $T/before $T/after"
check "no partial file is left" "! ls -A $T/out | grep -q -e nst-partial -e '\\.tmp\$'"

# ---- Ctrl-C: the running job stops and writes nothing ----
{ job i1.png 32 100000; job i2.png 32 2; } > "$T/int.jsonl"
$NST batch "$T/int.jsonl" --devices 0 --json > "$T/int.json" 2>/dev/null &
bpid=$!
k=0
while [ $k -lt 600 ] && ! grep -q '"event":"iteration"' "$T/int.json"; do sleep 0.05; k=$((k + 1)); done
kill -INT $bpid
wait $bpid; rc=$?
check "SIGINT stops the batch, exit 130" "[ $rc -eq 130 ] && grep -q '\"interrupted\":true' $T/int.json"
check "an interrupted job leaves no output" "[ ! -e $T/out/i1.png ] && ! ls -A $T/out | grep -q -e nst-partial -e '\\.tmp\$'"

# ---- two devices at once: PoCL and rusticl ----
if RUSTICL_ENABLE=llvmpipe $NST devices 2>/dev/null | grep -q llvmpipe; then
    export RUSTICL_ENABLE=llvmpipe
    for i in 1 2 3 4; do job "m$i.png" 32 4; done > "$T/multi.jsonl"
    $NST batch "$T/multi.jsonl" --devices all --json > "$T/multi.json" 2>/dev/null; rc=$?
    check "--devices all runs on PoCL and rusticl at once" \
        "[ $rc -eq 0 ] && [ \$(done_count $T/multi.json) -eq 4 ] && grep -q '\"start\".*\"device\":0' $T/multi.json && grep -q '\"start\".*\"device\":1' $T/multi.json && grep -q llvmpipe $T/multi.json"
    $NST batch "$T/multi.jsonl" --devices pthread,llvmpipe --json > "$T/names.json" 2>/dev/null
    check "devices chosen by name" "grep -q '\"devices\":\[{\"index\":0,.*{\"index\":1,' $T/names.json && [ \$(grep -c '\"event\":\"skip\"' $T/names.json) -eq 4 ]"

    # a worker killed on its device: its job is handed back and done on the other
    { job w1.png 40 60; job w2.png 32 3; job w3.png 32 3; } > "$T/worker.jsonl"
    $NST batch "$T/worker.jsonl" --devices all --json > "$T/worker.json" 2>/dev/null &
    bpid=$!
    k=0
    while [ $k -lt 600 ] && ! grep -q '"start","job":1,' "$T/worker.json"; do sleep 0.02; k=$((k + 1)); done
    wpid=$(grep '"start","job":1,' "$T/worker.json" | sed 's/.*"pid":\([0-9]*\).*/\1/')
    dev1=$(grep '"start","job":1,' "$T/worker.json" | sed 's/.*"device":\([0-9]*\).*/\1/')
    kill -9 "$wpid"
    wait $bpid; rc=$?
    check "a killed worker's job is retried once on the other device, and the batch succeeds" \
        "[ $rc -eq 0 ] && grep -q '\"retry\",\"job\":1,.*\"device\":$dev1,.*signal 9' $T/worker.json && grep -q '\"start\",\"job\":1,.*\"device\":$((1 - dev1)),\"attempt\":2' $T/worker.json && grep -q '\"done\",\"job\":1,' $T/worker.json"
    check "every job of it done" "[ \$(done_count $T/worker.json) -eq 3 ] && whole_png $T/out/w1.png"
    unset RUSTICL_ENABLE
else
    echo "SKIP: rusticl (llvmpipe) is not listed with RUSTICL_ENABLE=llvmpipe: no two-device tests"
fi

# ---- a job runs in the environment the batch was started with ----
# (OpenCL drivers change their own process's: PoCL sets HWLOC_PLUGINS_PATH;
# inherited, such a change hid the GPUs from the children's NVIDIA driver)
job env.png 40 200 > "$T/env.jsonl"
env -u HWLOC_PLUGINS_PATH NST_TEST_MARK=batch-env $NST batch "$T/env.jsonl" --json > "$T/env.json" 2>/dev/null &
bpid=$!
k=0
while [ $k -lt 600 ] && ! grep -q '"event":"start"' "$T/env.json"; do sleep 0.02; k=$((k + 1)); done
cpid=$(grep '"event":"start"' "$T/env.json" | sed 's/.*"pid":\([0-9]*\).*/\1/')
tr '\0' '\n' < /proc/$cpid/environ > "$T/child.env" 2>/dev/null
tr '\0' '\n' < /proc/$bpid/environ > "$T/batch.env" 2>/dev/null
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null
check "a job's environment is the batch's as it started (a driver's change not inherited)" \
    "grep -qx NST_TEST_MARK=batch-env $T/child.env && ! grep -q '^HWLOC_PLUGINS_PATH=' $T/child.env"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
