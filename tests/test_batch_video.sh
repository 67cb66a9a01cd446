#!/bin/sh
# `nst batch` with a video job, end to end on a narrow generated network and a
# 12-frame clip made here with ffmpeg: the clip split into three overlapping
# stretches (--chunk-frames 4 --chunk-overlap 2) run as separate jobs on two
# devices (PoCL and rusticl when listed), joined into a video of every frame
# with the clip's audio; a kill -9 of the batch mid-way, then a rerun that
# keeps the finished stretches and joins; slices (--shard) of which only the
# last to finish joins; and the warping error (tools/nst-warp-error) at the
# borders of the stretches against the frames within them and against the
# same clip stylised in one piece.
set -u
cd "$(dirname "$0")/.."
NST=build/nst
WE=build/tools/nst-warp-error
T=build/tmp/batch_video
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
trap 'for p in $(jobs -p); do kill -9 $p 2>/dev/null; done' EXIT
if ! command -v ffmpeg > /dev/null 2>&1 || ! command -v ffprobe > /dev/null 2>&1; then
    echo "skip - ffmpeg/ffprobe not installed (tools/install-deps.sh installs them)"
    exit 0
fi
FF="ffmpeg -nostdin -v error -y"
probe() { ffprobe -v error -select_streams "$2" -show_entries "$3" -of csv=p=0 "$1" | head -n 1; }
nframes() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }

build/tools/nst-genweights --out "$T/w.safetensors" --width-mult 0.0625 --seed 5 > /dev/null ||
    no "generate weights"
build/tools/nst-mkimage --pattern stripes --size 48x48 --out "$T/paint.png"
DATA=${NST_SHARED_DATA:-../shared/data}
if [ -f "$DATA/images/tubingen.jpg" ]; then
    SRC="-loop 1 -i $DATA/images/tubingen.jpg"
else
    echo "note: $DATA/images/tubingen.jpg is absent: the clip pans over a generated pattern"
    SRC="-f lavfi -i testsrc2=s=512x384"
fi
# a pan over a picture with a moving square on it, and a tone
$FF $SRC -f lavfi -i "color=c=red:s=20x20" -f lavfi -i "sine=f=440:d=2" -filter_complex \
    "[0:v]scale=256:-2,crop=160:120:x='n*3':y='n*2'[bg];[bg][1:v]overlay=x='20+n*4':y=40:shortest=1,fps=10,format=yuv420p[v]" \
    -map "[v]" -map 2:a -frames:v 12 -c:v libx264 -c:a aac -shortest "$T/clip.mp4" ||
    no "make the test clip"
# vjob OUTPUT [MORE JSON]: a video line of a jobs file
vjob() {
    echo "{\"video\": true, \"content\": \"$T/clip.mp4\", \"style\": \"$T/paint.png\", \"output\": \"$T/$1\", \"weights\": \"$T/w.safetensors\", \"size\": 64, \"iterations\": 10, \"frame-iterations\": ${FIT:-5}, \"temporal-weight\": 2000${2:-}}"
}
C="--chunk-frames 4 --chunk-overlap 2"
DEVS=
if RUSTICL_ENABLE=llvmpipe $NST devices 2> /dev/null | grep -q llvmpipe; then
    export RUSTICL_ENABLE=llvmpipe
    DEVS="--devices pthread,llvmpipe"
else
    echo "note: rusticl (llvmpipe) is not listed with RUSTICL_ENABLE=llvmpipe: one device"
fi

# ---- a video job in three stretches over two devices ----
vjob out.mp4 > "$T/v.jsonl"
$NST batch "$T/v.jsonl" $C $DEVS --json > "$T/v.json" 2> "$T/v.err"
rc=$?
check "a video batch exits 0" "[ $rc -eq 0 ]"
check "three stretches, each a job" "[ \$(grep -c '\"event\":\"done\"' $T/v.json) -eq 3 ] && grep -q 'frames_000000-000004.mkv' $T/v.json && grep -q 'frames_000002-000008.mkv' $T/v.json && grep -q 'frames_000006-000012.mkv' $T/v.json"
if [ -n "$DEVS" ]; then
    check "the stretches ran on both devices" "grep -q '\"start\".*\"device\":0' $T/v.json && grep -q '\"start\".*\"device\":1' $T/v.json"
fi
check "joined once, after the stretches" "[ \$(grep -c '\"event\":\"joined\"' $T/v.json) -eq 1 ] && [ \"\$(grep '\"event\"' $T/v.json | grep -v iteration | tail -2 | head -1 | grep -c joined)\" = 1 ]"
check "the video has every frame, at 64x48, H.264" "[ \"\$(nframes $T/out.mp4)\" = 12 ] && [ \"\$(probe $T/out.mp4 v:0 stream=codec_name,width,height)\" = 'h264,64,48' ]"
check "the audio is copied" "[ \"\$(probe $T/out.mp4 a:0 stream=codec_name)\" = aac ]"
check "the stretches are removed once joined" "[ ! -e $T/out.mp4.nst-chunks ]"
$NST batch "$T/v.jsonl" $C --json > "$T/again.json" 2>&1
rc=$?
check "a rerun finds it done" "[ $rc -eq 0 ] && grep -q '\"summary\",\"jobs\":3,\"done\":0,\"skipped\":3' $T/again.json && ! grep -q '\"event\":\"joined\"' $T/again.json"

# ---- kill -9 mid-way, then a rerun: the finished stretches are kept ----
# (more iterations a frame: the batch must still be running when killed)
FIT=60 vjob killed.mkv ', "codec": "ffv1"' > "$T/k.jsonl"
$NST batch "$T/k.jsonl" $C --devices 0 --json > "$T/k1.json" 2> /dev/null &
bpid=$!
k=0
while [ $k -lt 1200 ] && [ "$(grep -c '"event":"done"' $T/k1.json)" -lt 1 ]; do sleep 0.05; k=$((k + 1)); done
kill -9 $bpid
wait $bpid 2> /dev/null
sleep 0.3
first=$(sed -n 's/.*"event":"done".*"output":"\([^"]*\)".*/\1/p' "$T/k1.json" | head -1)
check "the killed batch left a finished stretch and no video" "[ -n '$first' ] && [ -f '$first' ] && [ ! -e $T/killed.mkv ]"
sum1=$(md5sum "$first" | cut -d' ' -f1)
$NST batch "$T/k.jsonl" $C --json > "$T/k2.json" 2> "$T/k2.err"
rc=$?
check "the rerun exits 0 and joins" "[ $rc -eq 0 ] && grep -q '\"event\":\"joined\"' $T/k2.json && [ \"\$(nframes $T/killed.mkv)\" = 12 ]"
check "the rerun kept the finished stretch" "grep -q '\"event\":\"skip\".*$(basename "$first")' $T/k2.json && ! grep -q '\"start\".*$(basename "$first")' $T/k2.json"
check "no partial file is left" "! ls -A $T | grep -q -e nst-partial -e nst-chunks"
: "$sum1"

# ---- slices: each runs its stretches; the one that finds all done joins ----
vjob sliced.mkv ', "codec": "ffv1"' > "$T/s.jsonl"
$NST batch "$T/s.jsonl" $C --shard 0/2 --json > "$T/s0.json" 2> "$T/s0.err"
rc0=$?
check "the first slice runs its stretches and waits for the rest" "[ $rc0 -eq 0 ] && ! grep -q '\"event\":\"joined\"' $T/s0.json && [ ! -e $T/sliced.mkv ] && [ \$(grep -c '\"event\":\"done\"' $T/s0.json) -eq 2 ]"
$NST batch "$T/s.jsonl" $C --shard 1/2 --json > "$T/s1.json" 2> "$T/s1.err"
rc1=$?
check "the last slice to finish joins" "[ $rc1 -eq 0 ] && grep -q '\"event\":\"joined\"' $T/s1.json && [ \"\$(nframes $T/sliced.mkv)\" = 12 ]"

# ---- the warping error at the borders ----
# the same clip in one piece, and in stretches without overlap (a hard cut)
printf '%s\n' "$(vjob whole.mkv ', "codec": "ffv1"')" > "$T/w.jsonl"
$NST batch "$T/w.jsonl" --chunk-frames 12 --chunk-overlap 0 -q 2> /dev/null
printf '%s\n' "$(vjob cut.mkv ', "codec": "ffv1"')" > "$T/c.jsonl"
$NST batch "$T/c.jsonl" --chunk-frames 4 --chunk-overlap 0 -q 2> /dev/null
# pairs FILE FRAMES...: the mean warping error over the pairs ending at those frames (from 1)
pairs() {
    f=$1
    shift
    $WE --content "$T/clip.mp4" --stylised "$f" --json |
        awk -v want=" $* " -F'[:,}]' '/"pair"/ { if (index(want, " " $4 " ")) { s += $6; n++ } } END { printf "%.6f", s / n }'
}
# the frames whose pair with the previous one the stretches touch: the
# overlaps 3-4 and 7-8 (from 1), cross-faded, and the frames after them
B="3 4 5 7 8 9"
IN="2 6 10 11 12"
eb=$(pairs "$T/sliced.mkv" $B)
ei=$(pairs "$T/sliced.mkv" $IN)
ew=$(pairs "$T/whole.mkv" $B)
ec=$(pairs "$T/cut.mkv" 5 9)
ecw=$(pairs "$T/whole.mkv" 5 9)
echo "  warping error: borders $eb, within the stretches $ei; one piece at the borders $ew; hard cuts $ec (one piece there $ecw)"
# A pair in a cross-fade, blend_t = (1 - a_t) A_t + a_t B_t, differs from the
# warped blend_t-1 by at most (1 - a) |A_t - warp A_t-1| + a |B_t - warp B_t-1|
# + (a_t - a_t-1) |A_t-1 - B_t-1| (the warp is linear): the within-stretch
# error plus 1/(O + 1) of the difference D between the two stylisations,
# which a hard cut shows whole (its border error is about the within error
# plus D). So the borders stay under ei + (ec - ei) / (O + 1), O = 2.
check "the border error is near the within-stretch error (the cross-fade's bound)" "awk 'BEGIN { exit !($eb < $ei + ($ec - $ei) / 3) }'"
check "the overlap lowers the border error against hard cuts" "awk 'BEGIN { exit !($eb < $ec) }'"

# ---- nst video --start-frame: one stretch of the clip ----
$NST video --weights "$T/w.safetensors" -s "$T/paint.png" --size 64 -n 4 --frame-iterations 2 -q \
    -c "$T/clip.mp4" -o "$T/part.mkv" --start-frame 9 --frames 5
rc=$?
check "--start-frame 9 --frames 5: the clip's last 3 frames, no audio" "[ $rc -eq 0 ] && [ \"\$(nframes $T/part.mkv)\" = 3 ] && [ -z \"\$(probe $T/part.mkv a:0 stream=codec_name)\" ]"
$NST video --weights "$T/w.safetensors" -s "$T/paint.png" --size 64 -q -c "$T/clip.mp4" \
    -o "$T/none.mkv" --start-frame 12 2> "$T/sf.err"
rc=$?
check "--start-frame past the end: a message, exit 1, no output" "[ $rc -eq 1 ] && grep -q 'has 12 frames (0 to 11)' $T/sf.err && [ ! -e $T/none.mkv ]"

# ---- bad video lines fail alone ----
{
    echo "{\"video\": true, \"content\": \"$T/missing.mp4\", \"style\": \"$T/paint.png\", \"output\": \"$T/m.mp4\"}"
    vjob wd.mp4 ', "work-dir": "x"'
    vjob typo.mp4 ', "temporal-wieght": 3'
    vjob 'seq/%03d.png'
} > "$T/bad.jsonl"
$NST batch "$T/bad.jsonl" $C --json > "$T/bad.json" 2>&1
rc=$?
check "bad video lines fail, with their reasons" "[ $rc -eq 1 ] && grep -q '\"job\":1,.*missing.mp4' $T/bad.json && grep -q '\"job\":2,.*work-dir' $T/bad.json && grep -q '\"job\":3,.*did you mean --temporal-weight' $T/bad.json && grep -q '\"job\":4,.*a video job writes a video file' $T/bad.json && [ \$(grep -c '\"event\":\"failed\"' $T/bad.json) -eq 4 ]"
$NST batch "$T/v.jsonl" --chunk-frames 4 --chunk-overlap 4 > /dev/null 2> "$T/ov.err"
check "--chunk-overlap must be less than --chunk-frames" "[ \$? -eq 2 ] && grep -q 'less than --chunk-frames' $T/ov.err"

echo "test_batch_video: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
