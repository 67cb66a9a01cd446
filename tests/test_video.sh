#!/bin/sh
# End-to-end tests of `nst video` on a narrow generated network and short
# clips made here with ffmpeg: a stylised clip with its audio, image
# sequences in and out, --json events per frame, the temporal term against
# independent frames (the warping error, tools/nst-warp-error), an
# interrupted run continued to the same frames, and bad input (not a video,
# no video stream, no frames, odd, elongated and huge frames, truncated
# files): a message, exit 1, and nothing clobbered.
set -u
cd "$(dirname "$0")/.."
NST=build/nst
WE=build/tools/nst-warp-error
T=build/tmp/video
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
if ! command -v ffmpeg > /dev/null 2>&1 || ! command -v ffprobe > /dev/null 2>&1; then
    echo "skip - ffmpeg/ffprobe not installed (tools/install-deps.sh installs them)"
    exit 0
fi
FF="ffmpeg -nostdin -v error -y"
probe() { ffprobe -v error -select_streams "$2" -show_entries "$3" -of csv=p=0 "$1" | head -n 1; }

build/tools/nst-genweights --out "$T/w.safetensors" --width-mult 0.0625 --seed 5 > /dev/null ||
    no "generate weights"
build/tools/nst-mkimage --pattern stripes --size 48x48 --out "$T/paint.png"
# a pan over a picture (the shared photograph when present) with a moving
# square on it, and a tone
DATA=${NST_SHARED_DATA:-../shared/data}
if [ -f "$DATA/images/tubingen.jpg" ]; then
    SRC="-loop 1 -i $DATA/images/tubingen.jpg"
else
    SRC="-f lavfi -i testsrc2=s=512x384"
fi
$FF $SRC -f lavfi -i "color=c=red:s=20x20" -f lavfi -i "sine=f=440:d=1" -filter_complex \
    "[0:v]scale=256:-2,crop=160:120:x='n*4':y='n*2'[bg];[bg][1:v]overlay=x='20+n*5':y=40:shortest=1,fps=10,format=yuv420p[v]" \
    -map "[v]" -map 2:a -frames:v 8 -c:v libx264 -c:a aac -shortest "$T/clip.mp4" ||
    no "make the test clip"
W="--weights $T/w.safetensors"
V="$NST video $W -s $T/paint.png --size 64 -n 6 --frame-iterations 3 -q"

# ---- a clip to a stylised clip ----
$V -c "$T/clip.mp4" -o "$T/out.mp4"
rc=$?
check "nst video exits 0" "[ $rc -eq 0 ]"
check "the output is H.264 at 64x48" "[ \"\$(probe $T/out.mp4 v:0 stream=codec_name,width,height)\" = 'h264,64,48' ]"
check "every frame is there" "[ \"\$(probe $T/out.mp4 v:0 stream=nb_frames)\" = 8 ]"
check "the frame rate is the clip's" "[ \"\$(probe $T/out.mp4 v:0 stream=r_frame_rate)\" = '10/1' ]"
check "the audio is copied" "[ \"\$(probe $T/out.mp4 a:0 stream=codec_name)\" = aac ]"
check "the work directory is removed when done" "[ ! -e $T/out.mp4.nst-work ]"

# ---- image sequences, FFV1, --json ----
mkdir -p "$T/in" "$T/seq"
$FF -i "$T/clip.mp4" -frames:v 4 "$T/in/%04d.png"
$V -c "$T/in/%04d.png" -o "$T/seq/%03d.png" --json > "$T/seq.json"
rc=$?
check "a sequence in and out exits 0" "[ $rc -eq 0 ] && [ -f $T/seq/001.png ] && [ -f $T/seq/004.png ] && [ ! -e $T/seq/005.png ]"
check "--json: one frame event per frame, warped after the first" \
    "[ \$(grep -c '\"event\":\"frame\"' $T/seq.json) -eq 4 ] && grep -q '\"frame\":1,.*\"warped\":false' $T/seq.json && grep -q '\"frame\":2,.*\"warped\":true' $T/seq.json"
check "--json: start and done events" "grep -q '\"event\":\"start\"' $T/seq.json && grep -q '\"event\":\"done\"' $T/seq.json"
$V -c "$T/clip.mp4" -o "$T/lossless.mkv" --codec ffv1 --frames 3
check "--codec ffv1 --frames 3" "[ \"\$(probe $T/lossless.mkv v:0 stream=codec_name)\" = ffv1 ] && [ \$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 $T/lossless.mkv) -eq 3 ]"

# ---- the temporal term against independent frames ----
$V -c "$T/clip.mp4" -o "$T/indep.mkv" --codec ffv1 --temporal-weight 0
$V -c "$T/clip.mp4" -o "$T/temporal.mkv" --codec ffv1 --temporal-weight 2000
e0=$($WE --content "$T/clip.mp4" --stylised "$T/indep.mkv" --json | sed -n 's/.*"warping_error":\([0-9.]*\).*/\1/p')
e1=$($WE --content "$T/clip.mp4" --stylised "$T/temporal.mkv" --json | sed -n 's/.*"warping_error":\([0-9.]*\).*/\1/p')
echo "  warping error: independent $e0, temporal $e1"
check "the temporal term lowers the warping error (independent $e0, temporal $e1)" \
    "awk 'BEGIN { exit !($e1 < $e0) }'"

# ---- long-term consistency: each pixel held to the nearest consistent frame of
# t-1, t-2, t-4 covers at least what t-1 alone does, frame by frame ----
cov() { grep '"event":"frame"' "$1" | sed -n 's/.*"consistent":\([0-9.]*\).*/\1/p' | tr '\n' ' '; }
$V -c "$T/clip.mp4" -o "$T/short.mkv" --codec ffv1 --json > "$T/short.json"
$V -c "$T/clip.mp4" -o "$T/long.mkv" --codec ffv1 --json --long-term 1,2,4 > "$T/long.json"
rc=$?
s=$(cov "$T/short.json") l=$(cov "$T/long.json")
echo "  consistent pixels: t-1 only: $s; t-1, t-2, t-4: $l"
check "--long-term 1,2,4 holds at least the pixels of t-1 alone, more in some frame" \
    "[ $rc -eq 0 ] && echo '$s|$l' | awk -F'|' '{ n = split(\$1, a, \" \"); split(\$2, b, \" \"); more = 0; for (i = 1; i <= n; i++) { if (b[i] + 0 < a[i] - 1e-9) exit 1; if (b[i] > a[i]) more = 1 } exit !more }'"
$NST video $W -c "$T/clip.mp4" -s "$T/paint.png" -o "$T/x.mp4" --long-term 4,2 2> "$T/u.err"
rc=$?
check "--long-term must ascend" "[ $rc -eq 2 ] && grep -q 'ascending' $T/u.err"

# ---- multi-pass: a backward pass then a forward one after the first ----
$V -c "$T/clip.mp4" -o "$T/passes.mkv" --codec ffv1 --json --passes 3 > "$T/passes.json"
rc=$?
check "--passes 3: every frame in passes 2 and 3, pass 2 backward from the last frame" \
    "[ $rc -eq 0 ] && [ \$(grep -c '\"pass\":2,' $T/passes.json) -eq 8 ] && [ \$(grep -c '\"pass\":3,' $T/passes.json) -eq 8 ] && grep '\"pass\":2,' $T/passes.json | head -n 1 | grep -q '\"frame\":8,' && [ \$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 $T/passes.mkv) -eq 8 ]"

# ---- interrupted, then continued to the same frames ----
$V -c "$T/clip.mp4" -o "$T/straight.mkv" --codec ffv1 --keep-frames -n 30 --frame-iterations 20
$V -c "$T/clip.mp4" -o "$T/resumed.mkv" --codec ffv1 --keep-frames -n 30 --frame-iterations 20 &
pid=$!
i=0
while [ ! -f "$T/resumed.mkv.nst-work/frame_000002.png" ] && [ $i -lt 600 ]; do
    sleep 0.05
    i=$((i + 1))
done
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C exits 130" "[ $rc -eq 130 ]"
check "the frames done are kept, no video written" \
    "[ -f $T/resumed.mkv.nst-work/frame_000001.png ] && [ ! -e $T/resumed.mkv ]"
$V -c "$T/clip.mp4" -o "$T/resumed.mkv" --codec ffv1 --keep-frames -n 30 --frame-iterations 20 --json > "$T/resume.json"
rc=$?
check "the rerun continues and finishes" "[ $rc -eq 0 ] && grep -q '\"resumed\":true' $T/resume.json && [ -f $T/resumed.mkv ]"
same=1
for f in "$T"/straight.mkv.nst-work/frame_*.png; do
    cmp -s "$f" "$T/resumed.mkv.nst-work/$(basename "$f")" || same=0
done
check "the continued run's frames equal a straight run's" "[ $same -eq 1 ]"
$V -c "$T/clip.mp4" -o "$T/resumed.mkv" --codec ffv1 --keep-frames -n 31 > /dev/null 2> "$T/other.err"
rc=$?
check "a work directory of other options is refused" "[ $rc -eq 1 ] && grep -q 'different run' $T/other.err"

# ---- bad input: a message, exit 1, the output untouched, no work directory ----
echo keep > "$T/keep.mp4"
bad() { # NAME FILE PATTERN [extra options]
    name=$1 file=$2 pat=$3
    shift 3
    $V -c "$file" -o "$T/keep.mp4" "$@" > /dev/null 2> "$T/bad.err"
    rc=$?
    check "$name: exit 1 and a message ($(head -c 150 $T/bad.err | tr '\n' ' '))" \
        "[ $rc -eq 1 ] && grep -qi '$pat' $T/bad.err && [ \"\$(cat $T/keep.mp4)\" = keep ] && [ ! -e $T/keep.mp4.nst-work ]"
}
echo "not a video at all" > "$T/text.mp4"
bad "not a video" "$T/text.mp4" "not a video"
bad "a missing file" "$T/none.mp4" "no such file"
: > "$T/empty.mp4"
bad "an empty file" "$T/empty.mp4" "empty"
$FF -f lavfi -i "sine=d=0.5" "$T/audio.wav"
bad "no video stream" "$T/audio.wav" "no video stream"
# an AVI with its video stream's header and no frame
$FF -f lavfi -i "testsrc2=s=64x48:d=1" -frames:v 0 -c:v ffv1 "$T/zero.avi" 2> /dev/null
bad "no frames" "$T/zero.avi" "no video frames"
$FF -f lavfi -i "color=s=16384x16:d=0.1" -frames:v 1 -c:v ffv1 "$T/huge.mkv"
$FF -f lavfi -i "color=s=16400x16:d=0.1" -frames:v 1 -c:v ffv1 "$T/huger.mkv"
bad "huge frames" "$T/huger.mkv" "too large"
bad "elongated frames" "$T/huge.mkv" "below the network"
size=$(wc -c < "$T/clip.mp4")
head -c $((size / 2)) "$T/clip.mp4" > "$T/cut.mp4"
bad "a truncated file (index at the end)" "$T/cut.mp4" "truncated"
$FF -i "$T/clip.mp4" -c copy -movflags +faststart "$T/fast.mp4"
size=$(wc -c < "$T/fast.mp4")
head -c $((size * 2 / 3)) "$T/fast.mp4" > "$T/cutfast.mp4"
bad "a truncated file (index first)" "$T/cutfast.mp4" "truncated"
bad "an output container nst cannot tell" "$T/clip.mp4" "container" -o "$T/keep.xyz"

# odd frame sizes work: 4:2:0 drops the odd row and column
$FF -f lavfi -i "testsrc2=s=67x33:r=5:d=0.6" -c:v ffv1 "$T/odd.mkv"
$V -c "$T/odd.mkv" -o "$T/odd.mp4" --size 67
rc=$?
check "odd frame sizes: 67x33 becomes H.264 66x32" \
    "[ $rc -eq 0 ] && [ \"\$(probe $T/odd.mp4 v:0 stream=width,height)\" = '66,32' ]"

$NST video --help > "$T/help" 2>&1
check "nst video --help names the video options" \
    "grep -q -- --temporal-weight $T/help && grep -q -- --frame-iterations $T/help"
$NST video $W -c "$T/clip.mp4" -s "$T/paint.png" -o "$T/x.mp4" --temporal-weight -1 2> "$T/u.err"
rc=$?
check "a negative temporal weight is a usage error" "[ $rc -eq 2 ] && grep -q 'temporal weight' $T/u.err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
