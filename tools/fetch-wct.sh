#!/bin/sh
# fetch-wct.sh: downloads the universal style transfer models (Li et al.
# 2017, "Universal Style Transfer via Feature Transforms") that
# `nst --method wct` and `nst --init wct` use, into weights/wct/, where nst
# finds them. `tools/fetch-weights.sh wct` and `NST_NETWORK=wct make weights`
# run it.
#
# The files are the PyTorch conversion of the authors' Torch models published
# by pietrocarbo/deep-transfer (Apache-2.0), level L = 1..5 a pair:
#   models/autoencoder_vgg19/vgg19_L/vgg_normalised_convL_1.pth   (encoder)
#   models/autoencoder_vgg19/vgg19_L/feature_invertor_convL_1.pth (decoder)
# at https://github.com/pietrocarbo/deep-transfer/raw/master/ (plain state
# dicts in torch's legacy format; nst reads them directly). Levels 1-3 are
# small (2 MB at most); levels 4 and 5 add the 512-channel layers.
#
# Settings (environment):
#   NST_WCT_LEVELS   the levels to fetch (default "1 2 3 4 5")
#   NST_WCT_URL      the base URL (default the repository's raw files above);
#                    file:///path/to/deep-transfer/models/autoencoder_vgg19/
#                    works with a local copy
#   NST_WEIGHTS_DIR  where to write (default weights/ in the source tree); the
#                    files go to its wct/ folder
#   NST_GENWEIGHTS   the checker (default build/tools/nst-genweights)
#   NST_FETCH_TRIES  download attempts per file (default 5)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "fetch-wct: $*" >&2; exit 1; }
base=${NST_WCT_URL:-https://github.com/pietrocarbo/deep-transfer/raw/master/models/autoencoder_vgg19/}
case $base in */) ;; *) base=$base/ ;; esac
levels=${NST_WCT_LEVELS:-1 2 3 4 5}
dir=${NST_WEIGHTS_DIR:-$root/weights}/wct
gen=${NST_GENWEIGHTS:-$root/build/tools/nst-genweights}
tries=${NST_FETCH_TRIES:-5}

command -v curl > /dev/null || die "curl is needed (apt-get install curl)"
[ -x "$gen" ] || die "$gen is missing: run make build/tools/nst-genweights first"
mkdir -p "$dir"
filesize() { if [ -f "$1" ]; then wc -c < "$1" | tr -d ' '; else echo 0; fi; }

# The sizes of the published files of levels 1-3 (checked when known).
known_size() {
    case $1 in
        vgg_normalised_conv1_1.pth) echo 8031 ;;
        feature_invertor_conv1_1.pth) echo 7488 ;;
        vgg_normalised_conv2_1.pth) echo 451726 ;;
        feature_invertor_conv2_1.pth) echo 450926 ;;
        vgg_normalised_conv3_1.pth) echo 2223308 ;;
        feature_invertor_conv3_1.pth) echo 2221993 ;;
        *) echo "" ;;
    esac
}

fetch_one() { # level file
    out=$dir/$2
    part=$out.part
    url=${base}vgg19_$1/$2
    if [ -f "$out" ] && "$gen" --info "$out" > /dev/null 2>&1; then
        echo "fetch-wct: $2 is already here"
        return 0
    fi
    size=$(known_size "$2")
    n=0
    while :; do
        n=$((n + 1))
        have=$(filesize "$part")
        if [ -n "$size" ] && [ "$have" -ge "$size" ]; then break; fi
        echo "fetch-wct: downloading $url (attempt $n of $tries, have $have bytes)"
        if curl -fL --connect-timeout 20 --speed-limit 1024 --speed-time 60 -C - -o "$part" \
                "$url"; then
            break
        else
            rc=$?
        fi
        case $rc in
            33) rm -f "$part" ;;
            22) die "the server answered $url with an HTTP error (wrong URL or level?)" ;;
            5|6|7)
                echo "fetch-wct: cannot reach the server of $url (curl exit $rc); is this machine offline?" >&2
                echo "Without the internet: copy the files (from a clone of pietrocarbo/deep-transfer," >&2
                echo "models/autoencoder_vgg19/vgg19_L/) into $dir, or give nst --wct-models DIR." >&2
                exit 1 ;;
        esac
        [ "$n" -lt "$tries" ] || die "download of $url failed after $tries attempts; run it again to resume"
        sleep 1
    done
    magic=$(od -An -tx1 -N4 "$part" | tr -d ' \n')
    case $magic in
        80028a0a|504b0304) ;;
        3c*|0a3c*|203c*) rm -f "$part"; die "$url sent an HTML page, not a model (a failed download?)" ;;
        *) rm -f "$part"; die "$url sent something that is not a PyTorch checkpoint" ;;
    esac
    got=$(filesize "$part")
    if [ -n "$size" ] && [ "$got" != "$size" ]; then
        rm -f "$part"
        die "$2: downloaded $got bytes, expected $size"
    fi
    "$gen" --info "$part" > /dev/null 2>&1 || { rm -f "$part"; die "$url is not a readable checkpoint"; }
    mv "$part" "$out"
    echo "fetch-wct: got $2 ($got bytes)"
}

for L in $levels; do
    case $L in 1|2|3|4|5) ;; *) die "level '$L': the levels are 1..5" ;; esac
    fetch_one "$L" "vgg_normalised_conv${L}_1.pth"
    fetch_one "$L" "feature_invertor_conv${L}_1.pth"
done
echo "fetch-wct: the models of levels $levels are in $dir (nst --method wct finds them there)"
