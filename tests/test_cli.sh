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
$NST $W --content $T/photo.png --style $T/paint.jpg --size 32 -n 100000 --json -o "$T/int.png" > "$T/int.out" 2>"$T/int.err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q iteration "$T/int.out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid; rc=$?
check "SIGINT exits 130" "[ $rc -eq 130 ]"
check "SIGINT leaves a valid image" "[ \"\$($MK --info $T/int.png)\" = '32 24' ]"
last=$(sed -n 's/.*"iteration":\([0-9]*\),"iterations".*/\1/p' "$T/int.out" | tail -n 1)
check "SIGINT says where it stopped and where the image is" \
    "grep -q 'interrupted at iteration $last of 100000; image so far written to $T/int.png' $T/int.err"

# Usage errors: exit 2, no output, existing output untouched.
cp "$T/out.png" "$T/keep.png"
cp "$T/out.png" "$T/keep.orig"
for args in "--size 0" "--size -3" "--iterations 0" "--style-weight abc" "--optimizer sgd" \
            "--style-layers relu1_1,relu9_1" "--style-blend 0.5,0.5" "--pooling median" \
            "--bogus-option 1" "--scales 0" "--average-decay 1" "--luminance-match best"; do
    $RUN $args -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "usage error ($args) exits 2 with a message" "[ $rc -eq 2 ] && [ -s $T/err ]"
done
# Ranges are the library's (nst_params_check): the command reports its
# message, the same one an API caller gets.
for case in "--scales 0|scales 0 is not in 1..12" \
            "--tile -5|tile -5 is not 0 (automatic), -1 (never) or a size in 16..65536 pixels" \
            "--tile 70000|tile 70000 is not" \
            "--learning-rate -1|learning rate -1 is not a finite number >= 0" \
            "--style-weight -2|style weight -2 is not a finite number >= 0" \
            "--style-layer-weights 1,2|2 style layer weights for 5 style layers"; do
    args=${case%%|*}
    $RUN $args -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "$args: exit 2 with the library's message" "[ $rc -eq 2 ] && grep -qF -- '${case#*|}' $T/err"
done
$RUN --style-loss sinkhorn -o "$T/keep.png" 2>"$T/err"; rc=$?
check "--style-loss names its choices" \
    "[ $rc -eq 2 ] && grep -qF -- \"--style-loss 'sinkhorn': choose gram, w2 or hist\" $T/err"
for sl in w2 hist; do
    $RUN -n 3 --style-loss $sl --mask "$T/photo.png" -o "$T/sl_$sl.png" 2>"$T/err"; rc=$?
    check "--style-loss $sl runs with a region mask" "[ $rc -eq 0 ] && [ -s $T/sl_$sl.png ]"
done
$RUN --con x -o "$T/keep.png" 2>"$T/err"; rc=$?
check "an ambiguous abbreviation names the options it could be" \
    "[ $rc -eq 2 ] && grep -q \"option '--con' is ambiguous: --content, --content-weight\" $T/err"
$RUN --png16=yes -o "$T/keep.png" 2>"$T/err"; rc=$?
check "a flag given a value says it takes none" "[ $rc -eq 2 ] && grep -q 'option --png16 takes no value' $T/err"
$RUN -n 2 --iter 3 --style-layer-weights 1,1 --style-layers relu1_1,relu2_1 -o "$T/abbr.png"; rc=$?
check "a unique abbreviation and matching layer weights run" "[ $rc -eq 0 ] && [ -f $T/abbr.png ]"
NST_CONV=fft $RUN -n 2 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "a bad NST_CONV is refused naming it" "[ $rc -eq 2 ] && grep -q \"NST_CONV='fft'\" $T/err"

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

# --init FILE: the image is the starting point; a name that is neither a
# keyword nor a file is a usage error that says so.
$RUN -n 3 --init content -o "$T/ic.png" && $RUN -n 3 --init "$T/photo.png" -o "$T/if.png" &&
    $RUN -n 3 --init "$T/paint.jpg" -o "$T/ip.png"; rc=$?
check "--init FILE starts from the file (the photo itself: same bytes as --init content)" \
    "[ $rc -eq 0 ] && cmp -s $T/ic.png $T/if.png && ! cmp -s $T/ic.png $T/ip.png"
$RUN -n 3 --init randon -o "$T/typo.png" 2>"$T/err"; rc=$?
check "--init with a missing file names it and the choices" \
    "[ $rc -eq 2 ] && grep -q \"'randon': no such file; give content, random, wct or an image file\" $T/err"

# The output is checked before the first iteration: a missing directory, a
# path through a file, a read-only directory; exit 1, no iteration run.
touch "$T/afile"
for out in "$T/no/such/dir/a.png" "$T/afile/a.png"; do
    $RUN -n 3 --json -o "$out" >"$T/o.out" 2>"$T/err"; rc=$?
    check "unwritable output $out refused before the run" \
        "[ $rc -eq 1 ] && grep -q 'cannot create a file in directory' $T/err && ! grep -q iteration $T/o.out"
done
# root writes anywhere, so the read-only case runs as nobody when possible
mkdir -p "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then AS=""; elif command -v setpriv >/dev/null &&
    setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
else AS=none; fi
if [ "$AS" = none ]; then
    echo "skip - read-only output directory (running as root without setpriv)"
else
    $AS $RUN -n 3 --json -o "$T/ro/a.png" >"$T/o.out" 2>"$T/err"; rc=$?
    check "read-only output directory refused before the run" \
        "[ $rc -eq 1 ] && grep -q 'Permission denied' $T/err && ! grep -q iteration $T/o.out && [ ! -e $T/ro/a.png ]"
fi
# The directory disappears during the run: the image is kept in the cache
# directory and the message says where; exit 1.
mkdir -p "$T/gone" "$T/keepcache"
NST_CACHE_DIR="$T/keepcache" $NST $W --content $T/photo.png --style $T/paint.jpg --size 32 -n 100000 \
    --json -o "$T/gone/r.png" > "$T/gone.out" 2>"$T/gone.err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q iteration "$T/gone.out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
rm -rf "$T/gone"
kill -INT $pid
wait $pid; rc=$?
kept=$(sed -n "s|.*image so far written to \(.*\) instead\$|\1|p" "$T/gone.err")
check "an output that cannot be written at the end is kept elsewhere, and said where" \
    "[ $rc -eq 1 ] && grep -q 'cannot write' $T/gone.err && [ \"\${kept%/*}\" = $T/keepcache ] && [ \"\$($MK --info \"$kept\")\" = '32 24' ]"

# Options: an unknown one last on the line is unknown, not missing a value;
# every option --help lists with a value is known to need one.
$NST devices --chek 2>"$T/err"; rc=$?
check "devices --chek: unknown option, with the near one" \
    "[ $rc -eq 2 ] && grep -q \"unknown option '--chek'; did you mean --check?\" $T/err && grep -q -- --help $T/err"
$RUN -o "$T/x.png" --iteratoins 2>"$T/err"; rc=$?
check "an unknown last option is unknown" "[ $rc -eq 2 ] && grep -q \"unknown option '--iteratoins'\" $T/err"
bad=""
for opt in $($NST --help | sed -n 's/^  \(-[a-z], \|    \)\(--[a-z0-9-]*\) [^ ].*/\2/p'); do
    $RUN -o "$T/x.png" "$opt" 2>"$T/err"
    grep -q "option $opt needs a value" "$T/err" || bad="$bad $opt"
done
check "every option --help gives a value says it needs one${bad:+ (not:$bad)}" "[ -z \"$bad\" ]"

# A repeated --style or --mask adds to the list, as a comma does.
S1="$NST $W -c $T/photo.png --size 32 -n 3 -q"
$S1 -s "$T/photo.png" -o "$T/s1.png" && $S1 -s "$T/paint.jpg" -s "$T/photo.png" -o "$T/s2.png" &&
    $S1 -s "$T/paint.jpg,$T/photo.png" -o "$T/s3.png"; rc=$?
check "-s A -s B is the list A,B" "[ $rc -eq 0 ] && cmp -s $T/s2.png $T/s3.png && ! cmp -s $T/s1.png $T/s3.png"
$NST $W -c $T/photo.png -s "$T/paint.jpg,$T/photo.png" --mask "$T/mask.png" --mask "$T/mask.png" \
    --size 32 -n 3 -q -o "$T/rm.png"; rc=$?
check "--mask A --mask B is the list A,B" "[ $rc -eq 0 ] && cmp -s $T/rm.png $T/regions.png"

# The live line fits the terminal (TIOCGWINSZ, else COLUMNS) instead of
# wrapping into one line per iteration.
ptyrun() { # COLUMNS_OF_THE_PTY COLUMNS_ENV OUT CMD...: runs CMD with stderr on a pty
    python3 - "$@" <<'EOF'
import fcntl, os, struct, subprocess, sys, termios
cols, env_cols, out, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
m, s = os.openpty()
if cols:
    fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
env = dict(os.environ)
env.pop("COLUMNS", None)
if env_cols:
    env["COLUMNS"] = env_cols
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=s, env=env)
os.close(s)
data = b""
while True:
    try:
        b = os.read(m, 65536)
    except OSError:
        break
    if not b:
        break
    data += b
open(out, "wb").write(data)
sys.exit(p.wait())
EOF
}
longest() { tr '\r' '\n' < "$1" | sed 's/\x1b\[K//g' | grep 'iteration [0-9]' |
    awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }'; }
if command -v python3 >/dev/null; then
    LIVE="$NST $W --content $T/photo.png --style $T/paint.jpg --size 48 -n 4 --scales 2 -o $T/live.png"
    ptyrun 200 "" "$T/wide.tty" $LIVE; rc1=$?
    ptyrun 40 "" "$T/narrow.tty" $LIVE; rc2=$?
    ptyrun 0 50 "$T/env.tty" $LIVE; rc3=$?
    check "the live line fits 40 columns (and is longer on a wide terminal)" \
        "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ \$(longest $T/wide.tty) -gt 40 ] && [ \$(longest $T/narrow.tty) -gt 0 ] && [ \$(longest $T/narrow.tty) -le 39 ] && grep -q 'ETA' $T/narrow.tty"
    check "without a terminal size, the live line fits \$COLUMNS" \
        "[ $rc3 -eq 0 ] && [ \$(longest $T/env.tty) -gt 0 ] && [ \$(longest $T/env.tty) -le 49 ]"
else
    echo "skip - the live line's width (needs python3 for a pseudo-terminal)"
fi

# Documentation that says what is true.
$RUN -n 4 --save-every 2 -o "$T/se.jpg"
check "--save-every writes the output's format; README and --help say so" \
    "[ -f $T/se_0002.jpg ] && grep -- '--save-every' README.md | grep -q \"output's format\" && $NST --help | grep -A1 -- '--save-every' | grep -q \"output's format\""
check "README's quick start does not need sudo (install-deps.sh uses it when not root)" \
    "! sed -n '/^## Quick start/,/^## /p' README.md | grep -q '^sudo'"

# ---- Sizes and tiles too small for the layers --------------------------------
# The default layers reach relu5_1 after 4 poolings, so each side needs 16
# pixels; the 4:3 photo at --size s is s x floor(0.75 s + 0.5), 16 high from
# s = 21. A tile must hold twice the receptive field's halo.
$RUN --size 20 -n 1 -o "$T/small.png" 2>"$T/err"; rc=$?
check "--size too small for the layers names the smallest size" \
    "[ $rc -eq 1 ] && grep -q 'at least 16 pixels a side' $T/err && grep -q 'smallest --size that works is 21' $T/err && ! grep -q MiB $T/err && [ ! -e $T/small.png ]"
$RUN --size 21 -n 1 -o "$T/small.png"; rc=$?
check "--size 21 runs at 21x16" "[ $rc -eq 0 ] && [ \"\$($MK --info $T/small.png)\" = '21 16' ]"
for args in "--size 256 --tile 128" "--size 512 --tile 64"; do
    $NST $W --content $T/photo.png --style $T/paint.jpg $args -n 1 -q -o "$T/tile.png" 2>"$T/err"; rc=$?
    check "tiles too small ($args) are refused with the minimum tile" \
        "[ $rc -eq 1 ] && grep -q 'a tile needs at least' $T/err && ! grep -q '0x0' $T/err && [ ! -e $T/tile.png ]"
done
least=$(sed -n 's/.*a tile needs at least \([0-9]*\).*/\1/p' "$T/err")
$NST $W --content $T/photo.png --style $T/paint.jpg --size 256 --tile "$least" --dry-run > "$T/plan4.out"; rc=$?
check "the minimum tile it names plans tiles" "[ $rc -eq 0 ] && grep -q 'tiles of' $T/plan4.out"

# --precision: tf32 runs only on tensor cores; elsewhere one message, exit 1,
# nothing written; a value that is not a precision is a usage error.
$RUN -n 3 --precision tf64 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "--precision tf64 is a usage error naming the choices" \
    "[ $rc -eq 2 ] && grep -q \"precision 'tf64': give fp32\" $T/err && cmp -s $T/keep.png $T/keep.orig"
if $NST devices --json | grep -q '"tf32":true'; then
    echo "skip - --precision tf32 refused: this machine has tensor cores"
else
    $RUN -n 3 --precision tf32 -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "--precision tf32 without tensor cores exits 1 saying why, the file untouched" \
        "[ $rc -eq 1 ] && grep -q 'needs tensor cores' $T/err && cmp -s $T/keep.png $T/keep.orig"
    $NST devices --check --tiny --precision tf32 > "$T/out" 2>"$T/err"; rc=$?
    check "devices --check --precision tf32 without tensor cores fails saying why" \
        "[ $rc -eq 1 ] && grep -q 'needs tensor cores' $T/err"
fi
$RUN -n 2 -q --precision fp32 -o "$T/fp32.png"; rc=$?
check "--precision fp32 runs" "[ $rc -eq 0 ] && [ -f $T/fp32.png ]"

# VGG-16: a generated network of its layout runs end to end, detected from
# the file or named with --network; weights of the other network are
# refused naming the file and the tensor; its tiles follow its own halo.
G=build/tools/nst-genweights
$G --network vgg16 --out "$T/w16.safetensors" --width-mult 0.0625 --seed 6 2>/dev/null || no "generate VGG-16 weights"
check "nst-genweights --info names the network" \
    "$G --info $T/w16.safetensors | grep -q '^network: vgg16, 13 of its 13 convolutions'"
R16="$NST --weights $T/w16.safetensors --content $T/photo.png --style $T/paint.jpg --size 32"
$R16 -n 4 -o "$T/v16.png" 2>"$T/v16.err"; rc=$?
check "VGG-16 weights run end to end, the network detected" \
    "[ $rc -eq 0 ] && [ \"\$($MK --info $T/v16.png)\" = '32 24' ] && grep -q '(vgg16)' $T/v16.err"
$R16 -n 3 -q --network vgg16 --content-layers conv5_3 --style-layers relu1_1,relu3_3,relu5_3 -o "$T/v16b.png"; rc=$?
check "--network vgg16 with layers only VGG-16 numbers so (conv5_3 is features.28)" \
    "[ $rc -eq 0 ] && [ -f $T/v16b.png ]"
$R16 -n 3 --network vgg19 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "--network vgg19 on VGG-16 weights exits 1 naming the file and the tensor" \
    "[ $rc -eq 1 ] && grep -q 'w16.safetensors: tensor features.17.weight' $T/err && cmp -s $T/keep.png $T/keep.orig"
$RUN -n 3 --network vgg16 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "--network vgg16 on VGG-19 weights exits 1 saying what the file looks like" \
    "[ $rc -eq 1 ] && grep -q 'features.16 of VGG-16 is pool3' $T/err && grep -q 'network vgg19' $T/err"
$R16 -n 3 --style-layers relu1_1,relu3_4 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "a VGG-19 layer VGG-16 lacks exits 1 listing VGG-16's layers" \
    "[ $rc -eq 1 ] && grep -q \"unknown layer 'relu3_4'; valid layers of VGG-16 are\" $T/err"
$RUN --network vgg11 -o "$T/keep.png" 2>"$T/err"; rc=$?
check "--network vgg11 is a usage error" "[ $rc -eq 2 ] && grep -q 'choose vgg19, vgg16' $T/err"
# relu5_1's halo: VGG-19 80 pixels (minimum tile 191), VGG-16 64 (159)
$RUN --size 256 --tile 170 --dry-run > /dev/null 2>"$T/err"; rc=$?
check "VGG-19 refuses 170-pixel tiles for relu5_1" "[ $rc -ne 0 ] && grep -q 'at least 191' $T/err"
$R16 --size 256 --tile 170 --dry-run > "$T/plan16.out"; rc=$?
check "VGG-16's smaller halo plans 170-pixel tiles" \
    "[ $rc -eq 0 ] && grep -q 'tiles of' $T/plan16.out && grep -q 'halo 64' $T/plan16.out"

# Whole runs timed: nst bench --run.
$NST bench --run 3 --size 32 $W --lbfgs-history 2,5 --json -- --tv-weight 2 > "$T/brun.json"; rc=$?
check "bench --run times each history's run" "[ $rc -eq 0 ] && [ \$(grep -c '\"event\":\"run\".*\"width\":32,\"height\":24,\"iterations\":3,.*\"exit\":0' $T/brun.json) -eq 2 ] && grep -q '\"lbfgs_history\":5' $T/brun.json"
$NST bench --run 0 $W 2>"$T/err"; rc=$?
check "bench --run 0 exits 2" "[ $rc -eq 2 ] && grep -q 'run' $T/err"
$NST bench --run 2 --size 32 $W -- --optimizer sgd >/dev/null 2>"$T/err"; rc=$?
check "bench --run reports a failing run, exit 1" "[ $rc -eq 1 ] && grep -q 'optimizer' $T/err"

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

# --method wct, --init wct: usage errors, missing models, and a real run when
# the models are here (NST_SHARED_DATA, default ../shared/data)
for args in "--method paint" "--alpha 1.5" "--alpha x" "--wct-levels 0" "--wct-levels 6" \
            "--wct-levels 1,x" "--method wct --dry-run"; do
    $RUN $args -o "$T/keep.png" 2>"$T/err"; rc=$?
    check "usage error ($args) exits 2 with a message" "[ $rc -eq 2 ] && [ -s $T/err ]"
done
mkdir -p "$T/nowct"
$RUN --method wct --wct-models "$T/nowct" -o "$T/w1.png" 2>"$T/err"; rc=$?
check "--method wct without models: exit 1, says where to get them, no output" \
    "[ $rc -eq 1 ] && grep -q 'holds no WCT model' $T/err && grep -q 'fetch-weights.sh wct' $T/err && [ ! -f $T/w1.png ]"
$RUN --init wct --wct-models "$T/nowct" -n 2 -o "$T/w2.png" 2>"$T/err"; rc=$?
check "--init wct without models: exit 1, '--init wct needs the WCT models'" \
    "[ $rc -eq 1 ] && grep -q -- '--init wct needs the WCT models' $T/err && [ ! -f $T/w2.png ]"
data=${NST_SHARED_DATA:-../shared/data}
if [ -f "$data/wct/vgg_normalised_conv1_1.pth" ] && [ -f "$data/wct/feature_invertor_conv1_1.pth" ]; then
    $NST --method wct --wct-models "$data/wct" --wct-levels 1 --content $T/photo.png \
        --style $T/paint.jpg --size 40 --json -o "$T/w3.png" > "$T/w3.out" 2>"$T/err"; rc=$?
    check "--method wct with the real models: the image, a wct event with its time" \
        "[ $rc -eq 0 ] && [ \"\$($MK --info $T/w3.png)\" = '40 30' ] && grep -q '\"event\":\"wct\",\"ms\":' $T/w3.out"
    $NST $W --init wct --wct-models "$data/wct" --wct-levels 1 --content $T/photo.png \
        --style $T/paint.jpg --size 32 -n 2 -q -o "$T/w4.png" 2>"$T/err"; rc=$?
    check "--init wct with the real models runs the optimisation from it" \
        "[ $rc -eq 0 ] && [ \"\$($MK --info $T/w4.png)\" = '32 24' ]"
else
    echo "skip - --method wct end to end: no WCT models in $data/wct (set NST_SHARED_DATA)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
