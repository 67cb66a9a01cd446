#!/bin/sh
# End-to-end tests of the `nst` command on a narrow generated network:
# outputs, sizes, determinism, formats, intermediate saves, Ctrl-C, usage
# errors and exit codes, and that failures never leave or clobber outputs.
set -u
cd "$(dirname "$0")/.."
NST=build/nst
MK=build/tools/nst-mkimage
T=build/tmp/cli
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

build/tools/nst-genweights --out "$T/w.safetensors" --width-mult 0.0625 --seed 5 >/dev/null || no "generate weights"
$MK --pattern photo --size 48x36 --out "$T/photo.png"
$MK --pattern stripes --size 40x40 --out "$T/paint.jpg"
W="--weights $T/w.safetensors"
RUN="$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 -q"

$RUN -n 8 -o "$T/out.png"; rc=$?
check "main job exits 0" "[ $rc -eq 0 ]"
check "output has the requested size" "[ \"\$($MK --info $T/out.png)\" = '32 24' ]"

$RUN -n 4 --init random --seed 9 -o "$T/a.png" && $RUN -n 4 --init random --seed 9 -o "$T/b.png"
check "same seed, identical bytes" "cmp -s $T/a.png $T/b.png"
$RUN -n 4 --init random --seed 10 -o "$T/c.png"
check "another seed, other bytes" "! cmp -s $T/a.png $T/c.png"

$RUN -n 3 -o "$T/out.jpg" --jpeg-quality 80
check "JPEG output decodes" "[ \"\$($MK --info $T/out.jpg)\" = '32 24' ]"
$RUN -n 3 -o "$T/out16.png" --png16
check "16-bit PNG output decodes" "[ \"\$($MK --info $T/out16.png)\" = '32 24' ]"

$RUN -n 6 --save-every 2 -o "$T/s.png"
check "--save-every writes numbered images" "[ -f $T/s_0002.png ] && [ -f $T/s_0004.png ] && [ -f $T/s.png ]"

$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 -n 3 --json -o "$T/j.png" > "$T/j.out"
check "--json prints one object per iteration" "[ \$(grep -c '\"event\":\"iteration\"' $T/j.out) -eq 3 ] && grep -q '\"event\":\"done\"' $T/j.out"

# Ctrl-C: stop after the current iteration, write the image, exit 130.
$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 -n 100000 --json -o "$T/int.png" > "$T/int.out" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q iteration "$T/int.out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid; rc=$?
check "SIGINT exits 130" "[ $rc -eq 130 ]"
check "SIGINT leaves a valid image" "[ \"\$($MK --info $T/int.png)\" = '32 24' ]"

# Usage errors: exit 2, no output, existing output untouched.
cp "$T/out.png" "$T/keep.png"
cp "$T/out.png" "$T/keep.orig"
for args in "--size 0" "--size -3" "--iterations 0" "--style-weight abc" "--optimizer sgd" \
            "--style-layers relu1_1,relu9_1" "--style-blend 0.5,0.5" "--pooling median" \
            "--bogus-option 1" "--scales 0" "--average-decay 1" "--luminance-match best"; do
    $RUN $args -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "usage error ($args) exits 2 with a message" "[ $rc -eq 2 ] && [ -s $T/err ]"
done
$RUN -o "$T/out.gif" 2>"$T/err"; rc=$?
check "unknown output extension exits 2" "[ $rc -eq 2 ] && grep -q '.png' $T/err && [ ! -e $T/out.gif ]"
$NST $W --content "$T/missing.png" --style $T/paint.jpg -o "$T/keep.png" 2>"$T/err"; rc=$?
check "missing content exits 1 naming the file" "[ $rc -eq 1 ] && grep -q missing.png $T/err"
$NST $W --content $T/photo.png --style $T/paint.jpg --device no-such-device -o "$T/keep.png" 2>"$T/err"; rc=$?
check "unknown device exits 1 listing devices" "[ $rc -eq 1 ] && grep -q 'no-such-device' $T/err"
for bad in tests/bad/truncated.png tests/bad/bomb.png tests/bad/text.png tests/bad/empty.png; do
    $NST $W --content "$bad" --style $T/paint.jpg -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "hostile content image $bad exits 1 naming it" "[ $rc -eq 1 ] && grep -q \"$(basename $bad)\" $T/err"
done
for bad in tests/data/hostile-os-system.pth tests/fuzz/corpus_weights/bad-html.pth; do
    $NST --weights "$bad" --content $T/photo.png --style $T/paint.jpg -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "hostile weights $bad exit 1 with a message" "[ $rc -eq 1 ] && [ -s $T/err ]"
done
check "failed runs leave the existing output untouched" "cmp -s $T/keep.png $T/keep.orig"
check "no temporary files left behind" "[ -z \"\$(ls -a $T | grep -i -e tmp -e '~')\" ]"

# Colour, regions, scales, averaging.
$MK --pattern noise --size 48x36 --out "$T/mask.png"
$RUN -n 4 --preserve-colors -o "$T/pc.png"
check "--preserve-colors writes an image" "[ \"\$($MK --info $T/pc.png)\" = '32 24' ]"
$RUN -n 4 --luminance-only --luminance-match histogram -o "$T/lum.png"
check "--luminance-only writes an image" "[ \"\$($MK --info $T/lum.png)\" = '32 24' ]"
$NST $W --content $T/photo.png --style $T/paint.jpg,$T/photo.png --mask $T/mask.png,$T/mask.png \
    --size 32 -n 3 -q -o "$T/regions.png"
check "--mask with one mask per style" "[ -f $T/regions.png ]"
$NST $W --content $T/photo.png --style $T/paint.jpg --mask $T/mask.png,$T/mask.png \
    --size 32 -n 3 -q -o "$T/bad.png" 2>"$T/err"; rc=$?
check "--mask count must match the styles" "[ $rc -eq 2 ] && grep -q 'one per style' $T/err"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 64 --scales 2 -n 4 --scale-iterations 2 \
    --json -o "$T/scales.png" > "$T/scales.out"
check "--scales runs every scale up to --size" "grep -q '\"scale\":2,\"width\":64' $T/scales.out && [ \"\$($MK --info $T/scales.png)\" = '64 48' ]"
$RUN -n 4 --optimizer adam --average-decay 0.9 -o "$T/avg.png"
check "--average-decay writes an image" "[ -f $T/avg.png ]"
build/nst devices --check --tiny > "$T/check.out"; rc=$?
check "devices --check passes on the test device" "[ $rc -eq 0 ] && grep -q 'of 1 device passed' $T/check.out"

# A loss that overflows: the run stops with a message, exit 1, and the last
# finite image is written.
$RUN -n 5 --style-weight 1e38 -o "$T/nan.png" 2>"$T/err"; rc=$?
check "a non-finite loss stops the run, exit 1, last finite image kept" \
    "[ $rc -eq 1 ] && grep -q 'NaN or Inf' $T/err && [ \"\$($MK --info $T/nan.png)\" = '32 24' ]"

$NST --help >/dev/null; rc=$?
check "--help exits 0" "[ $rc -eq 0 ]"
$NST >/dev/null 2>&1; rc=$?
check "no arguments exits 2" "[ $rc -eq 2 ]"
$NST devices > "$T/dev.out"; rc=$?
check "devices lists a default device" "[ $rc -eq 0 ] && grep -q '^\*' $T/dev.out"

# The memory plan, tiles.
$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 --dry-run > "$T/plan.out"; rc=$?
check "--dry-run prints the plan and exits 0" "[ $rc -eq 0 ] && grep -q 'memory plan: 32x24' $T/plan.out && grep -q 'the whole image at once' $T/plan.out"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 --dry-run --json -o "$T/dry.png" > "$T/plan.json"; rc=$?
check "--dry-run --json prints one plan object, writes no image" "[ $rc -eq 0 ] && grep -q '\"event\":\"plan\".*\"fits\":true' $T/plan.json && [ ! -e $T/dry.png ]"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 800 --tile off --dry-run --max-memory 8M > "$T/plan2.out" 2>"$T/err"; rc=$?
check "--dry-run that cannot fit exits 1 with the largest size" "[ $rc -eq 1 ] && grep -q 'largest --size that fits is' $T/err"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 48 --max-memory 200K -n 2 -o "$T/big.png" 2>"$T/err"; rc=$?
check "a run that cannot fit exits 1 before starting" "[ $rc -eq 1 ] && grep -q 'does not fit' $T/err && [ ! -e $T/big.png ]"
$RUN --max-memory lots -o "$T/x.png" 2>"$T/err"; rc=$?
check "--max-memory with a bad size exits 2" "[ $rc -eq 2 ] && grep -q 'max-memory' $T/err"
TL="--content-layers relu2_2 --style-layers relu1_1,relu2_1"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 48 $TL --tile 24 --dry-run > "$T/plan3.out"; rc=$?
check "--tile plans tiles" "[ $rc -eq 0 ] && grep -q 'tiles of 24x' $T/plan3.out"
$NST $W --content $T/photo.png --style $T/paint.jpg --size 48 $TL --tile 24 -n 3 -q -o "$T/tiled.png"; rc=$?
check "a tiled run writes the image" "[ $rc -eq 0 ] && [ \"\$($MK --info $T/tiled.png)\" = '48 36' ]"

# A first run compiles the kernels: it says so at once (stderr, or events with
# --json), a second run with the same cache does not, and the speed it shows
# leaves the compiling out.
KC="$T/kcache"
rm -rf "$KC"
env -u NST_CACHE NST_CACHE_DIR="$KC" $NST $W --content $T/photo.png --style $T/paint.jpg --size 32 \
    -n 3 -o "$T/cold.png" 2>"$T/cold.err"; rc=$?
check "a cold cache says it is compiling kernels, once" \
    "[ $rc -eq 0 ] && grep -q 'compiling kernels for this device (once' $T/cold.err"
env -u NST_CACHE NST_CACHE_DIR="$KC" $NST $W --content $T/photo.png --style $T/paint.jpg --size 32 \
    -n 3 -o "$T/warm.png" 2>"$T/warm.err"; rc=$?
check "a warm cache compiles nothing and says nothing of it" \
    "[ $rc -eq 0 ] && ! grep -q compiling $T/warm.err && [ -s $T/warm.err ]"
rm -rf "$KC"
env -u NST_CACHE NST_CACHE_DIR="$KC" $NST $W --content $T/photo.png --style $T/paint.jpg --size 32 \
    -n 3 --json -o "$T/coldj.png" >"$T/cold.json"; rc=$?
check "--json reports compiling as events before the iterations" \
    "[ $rc -eq 0 ] && head -1 $T/cold.json | grep -q '\"event\":\"compile\",\"programs_done\":0' \
     && grep '\"event\":\"compile\"' $T/cold.json | tail -1 | grep -q '\"program\":\"' \
     && [ \$(grep -n compile $T/cold.json | tail -1 | cut -d: -f1) -lt \$(grep -n iteration $T/cold.json | head -1 | cut -d: -f1) ]"
check "the first iteration shows no speed (it carries the compiling), later ones do" \
    "grep -q '^iteration 1/3  loss [^ ]*  content [^ ]*  style [^ ]*  tv [^ ]*\$' $T/cold.err \
     && grep -q '^iteration 3/3 .* it/s\$' $T/cold.err"

# HOME not writable (running as nobody, say): PoCL cannot create its cache
# and lists no device; nst says why and what to set. A path below a regular
# file fails even for root.
if build/nst devices | grep -q 'Portable Computing Language'; then
    env -u POCL_CACHE_DIR -u XDG_CACHE_HOME HOME=/etc/passwd/home $NST devices >/dev/null 2>"$T/err"; rc=$?
    check "PoCL without a writable cache directory: exit 1 naming it and the fix" \
        "[ $rc -eq 1 ] && grep -q '/etc/passwd/home/.cache/pocl' $T/err && grep -q XDG_CACHE_HOME $T/err \
         && grep -q POCL_CACHE_DIR $T/err && ! grep -q 'none has a device' $T/err"
    env -u POCL_CACHE_DIR HOME=/etc/passwd/home XDG_CACHE_HOME=/etc/passwd/cache $NST devices \
        >/dev/null 2>"$T/err"; rc=$?
    check "... the same from XDG_CACHE_HOME" "[ $rc -eq 1 ] && grep -q '/etc/passwd/cache/pocl' $T/err"
fi
# PoCL's cache given, nst's not writable: the run works without nst's cache,
# with one warning that names the directory.
POCL_DIR=${POCL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pocl/kcache}
env -u NST_CACHE -u NST_CACHE_DIR POCL_CACHE_DIR="$POCL_DIR" HOME=/etc/passwd/home \
    XDG_CACHE_HOME=/etc/passwd/cache $RUN -n 2 -o "$T/nocache.png" 2>"$T/err"; rc=$?
check "nst's cache not writable: the run works, with exactly one warning" \
    "[ $rc -eq 0 ] && [ \$(grep -c warning $T/err) -eq 1 ] && grep -q '/etc/passwd/cache/nst' $T/err \
     && [ -f $T/nocache.png ]"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
