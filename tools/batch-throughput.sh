#!/bin/sh
# batch-throughput.sh: the throughput of `nst batch` on one device against
# every device of the machine, on the same batch of generated jobs.
#
#   tools/batch-throughput.sh [--jobs N] [--size S] [--iterations I]
#                             [--devices SEL] [--weights FILE] [--nst PROGRAM]
#
# Writes N photos of S x 3S/4 pixels and one painting (build/tools/nst-mkimage),
# a JSON Lines file of N jobs (--size S, -n I), then runs the batch twice
# after a warm-up that fills the kernel cache of every device: on the first
# of the devices alone, then on all of them (--devices SEL; default: nst
# batch's own, every GPU), and prints jobs per minute of each and the
# speed-up. Defaults: 16 jobs, 512 pixels, 300 iterations, the weights nst
# finds itself (NST_WEIGHTS, weights/, ~/.local/share/nst). Everything is
# written under a temporary directory, removed at the end.
set -eu
cd "$(dirname "$0")/.."
NST=build/nst
MK=build/tools/nst-mkimage
JOBS=16
SIZE=512
ITER=300
DEVICES=
WEIGHTS=
while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) JOBS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --iterations) ITER=$2; shift 2 ;;
        --devices) DEVICES=$2; shift 2 ;;
        --weights) WEIGHTS=$(realpath "$2"); shift 2 ;;
        --nst) NST=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "batch-throughput.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
NST=$(realpath "$NST")
D=$(mktemp -d "${TMPDIR:-/tmp}/nst-throughput.XXXXXX")
trap 'rm -rf "$D"' EXIT
H=$((SIZE * 3 / 4))
$MK --pattern stripes --size "${SIZE}x${SIZE}" --out "$D/paint.png"
W=""
[ -z "$WEIGHTS" ] || W=", \"weights\": \"$WEIGHTS\""
i=0
: > "$D/jobs.jsonl"
while [ $i -lt "$JOBS" ]; do
    $MK --pattern photo --size "${SIZE}x${H}" --seed $i --out "$D/p$i.png"
    echo "{\"content\": \"$D/p$i.png\", \"style\": \"$D/paint.png\", \"output\": \"$D/out/o$i.png\", \"size\": $SIZE, \"iterations\": $ITER$W}" >> "$D/jobs.jsonl"
    i=$((i + 1))
done
mkdir -p "$D/out" "$D/warm"
# the devices: --devices SEL's, else the batch's default
SEL=${DEVICES:+--devices=$DEVICES}
list=$("$NST" batch /dev/null $SEL --json | sed -n 's/.*"event":"batch".*"devices":\[\(.*\)\]}/\1/p' |
    grep -o '"index":[0-9]*' | cut -d: -f2)
[ -n "$list" ] || { echo "batch-throughput.sh: no device" >&2; exit 1; }
ndev=$(echo "$list" | wc -l)
first=$(echo "$list" | head -1)
all=$(echo "$list" | paste -sd, -)
# the warm-up: one short job per device, so no kernel compiling is timed
i=0
: > "$D/warm.jsonl"
while [ $i -lt "$ndev" ]; do
    echo "{\"content\": \"$D/p0.png\", \"style\": \"$D/paint.png\", \"output\": \"$D/warm/w$i.png\", \"size\": $SIZE, \"iterations\": 2$W}" >> "$D/warm.jsonl"
    i=$((i + 1))
done
"$NST" batch "$D/warm.jsonl" --devices "$all" -q
# seconds of a batch run, from its summary event
timed() {
    rm -f "$D"/out/*
    "$NST" batch "$D/jobs.jsonl" --devices "$1" --json > "$D/run.json"
    grep '"event":"done"' "$D/run.json" | sed 's/.*"device":\([0-9]*\).*/\1/' | sort | uniq -c |
        awk '{printf "    device %s: %s jobs\n", $2, $1}' >&2
    sed -n 's/.*"event":"summary".*"seconds":\([0-9.]*\).*/\1/p' "$D/run.json"
}
echo "batch of $JOBS jobs, ${SIZE}x$H, $ITER iterations each" >&2
echo "--devices $first:" >&2
t1=$(timed "$first")
echo "--devices $all:" >&2
tn=$(timed "$all")
awk -v j="$JOBS" -v a="$t1" -v b="$tn" -v f="$first" -v d="$all" 'BEGIN {
    printf "--devices %s: %.1f s, %.2f jobs/min\n", f, a, 60 * j / a;
    printf "--devices %s: %.1f s, %.2f jobs/min (%.2fx)\n", d, b, 60 * j / b, a / b }'
