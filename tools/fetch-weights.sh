#!/bin/sh
# fetch-weights.sh: downloads a network's weights and converts them into
# weights/<network>-conv.safetensors (conv1_1..conv5_1, F16: about 26 MB for
# VGG-19, 15 MB for VGG-16), the file nst looks for. `make weights` runs it.
#
#   tools/fetch-weights.sh [vgg19|vgg16]   the network (default $NST_NETWORK,
#                                          else vgg19)
#   tools/fetch-weights.sh --list          the networks and their sources
#   tools/fetch-weights.sh wct             the universal style transfer models
#                                          of --method wct (tools/fetch-wct.sh)
#
# The download resumes where it stopped (curl -C -) and is retried; its size
# and its first bytes are checked (an HTML error page is refused), and a
# torchvision file's name carries the start of its SHA-256, which is checked.
# Settings (environment):
#   NST_NETWORK         vgg19 (default) or vgg16, when no argument names it
#   NST_WEIGHTS_URL     source (default: torchvision's file of the network,
#                       vgg19-dcbb9e9d.pth or vgg16-397923af.pth; timm's
#                       safetensors also works, see weights/README.md)
#   NST_WEIGHTS_SIZE    expected size in bytes (known for the default URL)
#   NST_WEIGHTS_SHA256  expected SHA-256 of the download (optional)
#   NST_WEIGHTS_DIR     where to write (default: weights/ in the source tree)
#   NST_WEIGHTS_DTYPE   F16 (default), BF16 or F32
#   NST_GENWEIGHTS      the converter (default: build/tools/nst-genweights)
#   NST_FETCH_TRIES     download attempts (default 5)
#   NST_KEEP_DOWNLOAD   1: keep the downloaded original beside the result
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "fetch-weights: $*" >&2; exit 1; }
[ "${1:-${NST_NETWORK:-}}" != wct ] || exec "$root/tools/fetch-wct.sh"

# The networks: torchvision's release of each (its name carries the start
# of its SHA-256) and its size in bytes.
sources() {
    case $1 in
        vgg19) echo "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth 574673361" ;;
        vgg16) echo "https://download.pytorch.org/models/vgg16-397923af.pth 553433881" ;;
        *) return 1 ;;
    esac
}
if [ "${1:-}" = --list ]; then
    echo "networks (tools/fetch-weights.sh NETWORK, or NST_NETWORK=NETWORK make weights):"
    for n in vgg19 vgg16; do
        set -- $(sources $n)
        echo "  $n  $1 ($2 bytes) -> weights/$n-conv.safetensors"
        echo "         or https://huggingface.co/timm/$n.tv_in1k/resolve/main/model.safetensors"
    done
    echo "  wct    https://github.com/pietrocarbo/deep-transfer/raw/master/models/autoencoder_vgg19/"
    echo "         vgg19_L/vgg_normalised_convL_1.pth and feature_invertor_convL_1.pth, L = 1..5"
    echo "         -> weights/wct/ (the models of nst --method wct; tools/fetch-wct.sh)"
    exit 0
fi
network=${1:-${NST_NETWORK:-vgg19}}
[ $# -le 1 ] || die "usage: tools/fetch-weights.sh [vgg19|vgg16|wct|--list]"
src=$(sources "$network") ||
    die "unknown network '$network': choose vgg19 or vgg16 (or wct: tools/fetch-weights.sh --list)"
TORCHVISION_URL=${src% *}
TORCHVISION_SIZE=${src#* }
TORCHVISION_FILE=$(basename "$TORCHVISION_URL")

url=${NST_WEIGHTS_URL:-$TORCHVISION_URL}
case $url in
    "$TORCHVISION_URL") known_size=$TORCHVISION_SIZE ;;
    *) known_size= ;;
esac
size=${NST_WEIGHTS_SIZE:-$known_size}
dir=${NST_WEIGHTS_DIR:-$root/weights}
dtype=${NST_WEIGHTS_DTYPE:-F16}
gen=${NST_GENWEIGHTS:-$root/build/tools/nst-genweights}
tries=${NST_FETCH_TRIES:-5}

# What to do without the internet.
offline_help() {
    cat >&2 <<EOF
Without the internet:
  - nst reads torchvision's $TORCHVISION_FILE directly: copy it from a PyTorch
    cache (~/.cache/torch/hub/checkpoints/ on a machine that has it) into the
    same folder here, where nst finds it, or anywhere and run
    nst --weights /path/to/$TORCHVISION_FILE ..., or convert it into weights/ with
    NST_WEIGHTS_URL=file:///path/to/$TORCHVISION_FILE NST_NETWORK=$network make weights
  - to check that everything works (the result is not artistic), generate a
    network of the same shape:
    $gen --out build/test.safetensors --network $network --width-mult 0.125
    and run nst --weights build/test.safetensors ...
EOF
}
filesize() { if [ -f "$1" ]; then wc -c < "$1" | tr -d ' '; else echo 0; fi; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

command -v curl > /dev/null || die "curl is needed (apt-get install curl)"
[ -x "$gen" ] || die "$gen is missing: run make build/tools/nst-genweights first"
mkdir -p "$dir"

name=$(basename "${url%%\?*}")
[ "$name" = model.safetensors ] && name=$network.tv_in1k.safetensors
dl=$dir/$name
part=$dl.part
out=$dir/$network-conv.safetensors

if [ -f "$out" ] && [ -f "$out.sha256" ] &&
   [ "$(sha256 "$out")" = "$(cut -d' ' -f1 "$out.sha256")" ]; then
    echo "fetch-weights: $out is already here (SHA-256 matches)"
    exit 0
fi

# ---- download (resumable) ----
if [ ! -f "$dl" ]; then
    n=0
    while :; do
        n=$((n + 1))
        have=$(filesize "$part")
        if [ -n "$size" ] && [ "$have" -ge "$size" ]; then break; fi
        echo "fetch-weights: downloading $url (attempt $n of $tries, have $have bytes)"
        if curl -fL --connect-timeout 20 --speed-limit 1024 --speed-time 60 \
                -C - -o "$part" "$url"; then
            break
        else
            rc=$?
        fi
        case $rc in
            33) rm -f "$part" ;; # the server cannot resume: start over
            22) die "the server answered $url with an HTTP error (wrong URL?)" ;;
            5|6|7) # no name resolution, no connection: offline, or a firewall
                host=$(echo "$url" | sed 's|^[a-z]*://\([^/]*\).*|\1|')
                case $rc in
                    5) why="the proxy's name could not be resolved" ;;
                    6) why="the name $host could not be resolved" ;;
                    *) why="no connection to $host" ;;
                esac
                echo "fetch-weights: cannot reach $host (curl exit $rc: $why); is this machine offline?" >&2
                [ "$have" -eq 0 ] || echo "fetch-weights: $have bytes are kept in $part: run it again to resume once online" >&2
                offline_help
                exit 1 ;;
        esac
        if [ "$n" -ge "$tries" ]; then
            echo "fetch-weights: download failed after $tries attempts (curl exit $rc); run it again to resume" >&2
            offline_help
            exit 1
        fi
        sleep 1
    done
    magic=$(od -An -tx1 -N16 "$part" | tr -d ' \n')
    case $magic in
        504b0304*) kind="PyTorch zip checkpoint" ;;
        80028a0a*) kind="PyTorch legacy checkpoint" ;;
        ????????????????7b*) kind="safetensors" ;;
        3c*|0a3c*|203c*|0d0a3c*)
            rm -f "$part"
            die "$url sent an HTML page, not weights (an error or login page); check the URL" ;;
        *)  rm -f "$part"
            die "$url sent something that is neither safetensors nor a PyTorch checkpoint" ;;
    esac
    got=$(filesize "$part")
    if [ -n "$size" ] && [ "$got" != "$size" ]; then
        [ "$got" -gt "$size" ] && rm -f "$part"
        die "downloaded size $got bytes is not the expected $size (set NST_WEIGHTS_SIZE if the source changed)"
    fi
    sum=$(sha256 "$part")
    if [ -n "${NST_WEIGHTS_SHA256:-}" ] && [ "$sum" != "$NST_WEIGHTS_SHA256" ]; then
        rm -f "$part"
        die "SHA-256 of the download is $sum, not the expected $NST_WEIGHTS_SHA256"
    fi
    # torchvision names files NAME-<first hex digits of the SHA-256>.pth
    prefix=$(echo "$name" | sed -n 's/^.*-\([0-9a-f]\{8,\}\)\.pth$/\1/p')
    if [ -n "$prefix" ]; then
        case $sum in
            "$prefix"*) ;;
            *) rm -f "$part"; die "SHA-256 of $name is $sum, which does not start with $prefix" ;;
        esac
    fi
    mv "$part" "$dl"
    echo "$sum  $name" > "$dl.sha256"
    echo "fetch-weights: got $name ($kind, $(filesize "$dl") bytes, SHA-256 $sum)"
fi

# ---- convert: conv1_1..conv5_1 as safetensors, checked against the network ----
"$gen" --convert "$dl" --network "$network" --out "$out" --dtype "$dtype" --trim ||
    die "$name does not hold $network's weights (see the message above); the download is kept in $dl"
(cd "$dir" && sha256sum "$network-conv.safetensors" > "$network-conv.safetensors.sha256")
[ "${NST_KEEP_DOWNLOAD:-0}" = 1 ] || rm -f "$dl"
echo "fetch-weights: wrote $out ($(filesize "$out") bytes, SHA-256 $(sha256 "$out"))"
