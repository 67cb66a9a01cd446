#!/bin/sh
# video-bench.sh: temporal consistency and speed of `nst video` on a clip with
# a known camera motion. Makes the clip with ffmpeg (a pan and zoom over
# IMAGE with a square moving across it), stylises it twice with the same
# options, independent frames (--temporal-weight 0) and with the temporal
# term (--temporal-weight W), and prints one Markdown table row per run: the
# warping error (tools/nst-warp-error, mean |O_t - warp(O_t-1)| over the
# pixels whose flow is consistent, in 8-bit levels) and the frames per second
# of the frames after the first (from the --json events; the first frame
# carries the kernel compiling and its own --iterations).
#
# usage: tools/video-bench.sh --image IMAGE --style PAINTING [--size N]
#            [--frames N] [--temporal-weight W] [--out DIR] [--clip-only | --clip FILE]
#            [-- NST-OPTIONS...]
# --clip-only makes the clip and stops (where the runs go elsewhere);
# --clip FILE runs on a clip made so (a machine without the ffmpeg command).
# e.g.   tools/video-bench.sh --image photo.jpg --style starry.jpg --size 512 \
#            --frames 30 -- -n 300 --frame-iterations 100 --device 0
set -eu
cd "$(dirname "$0")/.."
NST=${NST:-build/nst}
WE=${NST_WARP_ERROR:-build/tools/nst-warp-error}
IMAGE= STYLE= SIZE=512 FRAMES=12 TW=200 OUT=build/tmp/video-bench CLIP= CLIP_ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --image) IMAGE=$2; shift 2 ;;
        --style) STYLE=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --frames) FRAMES=$2; shift 2 ;;
        --temporal-weight) TW=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --clip) CLIP=$2; shift 2 ;;
        --clip-only) CLIP_ONLY=1; shift ;;
        --) shift; break ;;
        *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ -n "$STYLE" ] || [ -n "$CLIP_ONLY" ] || { echo "video-bench.sh: give --style" >&2; exit 2; }
[ -n "$IMAGE" ] || [ -n "$CLIP" ] || { echo "video-bench.sh: give --image (or --clip)" >&2; exit 2; }
mkdir -p "$OUT"
H=$((SIZE * 3 / 4 / 2 * 2))
if [ -z "$CLIP" ]; then
CLIP="$OUT/pan-${SIZE}.mp4"
# the camera pans 6 px and 2 px per frame and zooms in by 0.4% per frame at
# 1024 px, so about 3 px per frame at 512; a square crosses the view
ffmpeg -nostdin -v error -y -loop 1 -i "$IMAGE" -f lavfi -i "color=c=0xd04020:s=$((SIZE / 8))x$((SIZE / 8))" \
    -filter_complex "[0:v]scale=1024:-2,zoompan=z='1+0.004*on':x='iw/2-iw/zoom/2+on*6':y='ih/2-ih/zoom/2+on*2':d=1:s=${SIZE}x${H}:fps=10[bg];[bg][1:v]overlay=x='$((SIZE / 8))+n*$((SIZE / 64))':y='$((H / 2))-n*$((SIZE / 170 + 1))':shortest=1,format=yuv420p[v]" \
    -map "[v]" -frames:v "$FRAMES" -c:v libx264 -crf 12 "$CLIP"
fi
[ -z "$CLIP_ONLY" ] || { echo "$CLIP"; exit 0; }
device=""
echo "| run | size | frames | warping error (of 255) | consistent pixels | s per later frame | fps | device |"
echo "|---|---|---|---|---|---|---|---|"
for tw in 0 "$TW"; do
    out="$OUT/out-${SIZE}-tw${tw}.mkv"
    rm -rf "$out" "$out.nst-work"
    "$NST" video -c "$CLIP" -s "$STYLE" -o "$out" --size "$SIZE" --codec ffv1 \
        --temporal-weight "$tw" --json "$@" > "$OUT/tw${tw}.json"
    device=$(sed -n 's/.*"event":"start".*"device":"\([^"]*\)".*/\1/p' "$OUT/tw${tw}.json")
    later=$(grep '"event":"frame"' "$OUT/tw${tw}.json" | sed -n 's/.*"frame":\([0-9]*\),.*"seconds":\([0-9.]*\).*/\1 \2/p' |
        awk '$1 > 1 { s += $2; n++ } END { if (n) printf "%.3f", s / n; else print "?" }')
    we=$("$WE" --content "$CLIP" --stylised "$out" --json | grep '"event":"result"')
    err=$(echo "$we" | sed -n 's/.*"warping_error_8bit":\([0-9.]*\).*/\1/p')
    cons=$(echo "$we" | sed -n 's/.*"consistent":\([0-9.]*\).*/\1/p')
    fps=$(awk -v s="$later" 'BEGIN { if (s + 0 > 0) printf "%.3f", 1 / s; else print "?" }')
    name=$([ "$tw" = 0 ] && echo "independent frames" || echo "temporal term, W = $tw")
    echo "| $name | ${SIZE}x${H} | $FRAMES | $err | $cons | $later | $fps | $device |"
done
