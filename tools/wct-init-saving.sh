#!/bin/sh
# wct-init-saving.sh: what `--init wct` buys. Runs the optimisation twice on
# the same images, network and layers: from the content (the default) for
# EVALS loss evaluations, then from the WCT stylisation; reports the loss the
# first run reached, and the evaluations and seconds the second needed to
# reach it (its WCT time included), as a line for people and one JSON object.
#
#   tools/wct-init-saving.sh --weights FILE --wct-models DIR --content PHOTO \
#       --style PAINTING [--size N] [--evals N] [--device SEL] [-- NST OPTIONS...]
#
# Anything after -- goes to both runs (layers, weights of the terms, ...).
# NST names the command (default build/nst).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
NST=${NST:-$root/build/nst}
die() { echo "wct-init-saving: $*" >&2; exit 2; }
weights= models= content= style= size=256 evals=500 device=
while [ $# -gt 0 ]; do
    case $1 in
        --weights) weights=$2; shift 2 ;;
        --wct-models) models=$2; shift 2 ;;
        --content) content=$2; shift 2 ;;
        --style) style=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --evals) evals=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ -n "$weights" ] && [ -n "$models" ] && [ -n "$content" ] && [ -n "$style" ] ||
    die "give --weights, --wct-models, --content and --style (see --help)"
[ -x "$NST" ] || die "$NST is missing: run make"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dev=
[ -z "$device" ] || dev="--device $device"

# one run: its JSON lines into $tmp/$1.json
run() {
    name=$1
    shift
    # shellcheck disable=SC2086
    "$NST" --weights "$weights" --content "$content" --style "$style" --size "$size" \
        -n "$evals" --json $dev -o "$tmp/$name.png" "$@" > "$tmp/$name.json" ||
        die "the $name run failed"
}
field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }

run content "$@"
# the loss after EVALS evaluations (or the last iteration's)
line=$(grep '"event":"iteration"' "$tmp/content.json" |
       awk -v n="$evals" -F'"evaluations":' '{split($2, a, ","); if (a[1] + 0 <= n) last = $0} END {print last}')
target=$(echo "$line" | field loss)
t_content=$(echo "$line" | field elapsed)
e_content=$(echo "$line" | field evaluations)
[ -n "$target" ] || die "the content run printed no iteration"

run wct --init wct --wct-models "$models" "$@"
wct_ms=$(grep '"event":"wct"' "$tmp/wct.json" | field ms)
hit=$(grep '"event":"iteration"' "$tmp/wct.json" |
      awk -v t="$target" -F'"loss":' '{split($2, a, ","); if (a[1] + 0 <= t + 0) {print; exit}}')
final=$(grep '"event":"iteration"' "$tmp/wct.json" | tail -n 1 | field loss)
if [ -n "$hit" ]; then
    e_wct=$(echo "$hit" | field evaluations)
    t_wct=$(echo "$hit" | field elapsed)
    s_wct=$(awk -v a="$t_wct" -v b="$wct_ms" 'BEGIN {printf "%.2f", a + b / 1000}')
    echo "from the content: loss $target after $e_content evaluations, $t_content s"
    echo "from WCT ($wct_ms ms): the same loss after $e_wct evaluations, $s_wct s" \
         "(saving $((e_content - e_wct)) evaluations; its final loss after $evals: $final)"
    printf '{"size":%s,"evals":%s,"target_loss":%s,"content_evals":%s,"content_s":%s,' \
        "$size" "$evals" "$target" "$e_content" "$t_content"
    printf '"wct_ms":%s,"wct_evals_to_target":%s,"wct_s_to_target":%s,"wct_final_loss":%s}\n' \
        "$wct_ms" "$e_wct" "$s_wct" "$final"
else
    echo "from the content: loss $target after $e_content evaluations, $t_content s"
    echo "from WCT ($wct_ms ms): not reached in $evals evaluations (final loss $final)"
    printf '{"size":%s,"evals":%s,"target_loss":%s,"content_evals":%s,"content_s":%s,' \
        "$size" "$evals" "$target" "$e_content" "$t_content"
    printf '"wct_ms":%s,"wct_evals_to_target":null,"wct_final_loss":%s}\n' "$wct_ms" "$final"
fi
