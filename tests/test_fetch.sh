#!/bin/sh
# test_fetch.sh: tools/fetch-weights.sh against a local server on 127.0.0.1
# (tools/test_server.py) serving generated files: a plain download, a
# transfer dropped half-way and resumed, a wrong size, an HTML error page, a
# 404, a torchvision-style .pth whose name carries its SHA-256 prefix, no
# network at all, and a local file:// URL.
# Needs python3, curl and build/tools/nst-genweights; no internet.
set -u
cd "$(dirname "$0")/.."
gen=${NST_GENWEIGHTS:-build/tools/nst-genweights}
T=build/tmp/fetch
rm -rf "$T"
mkdir -p "$T/srv"
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

[ -x "$gen" ] || { echo "FAIL $gen missing (make build/tools/nst-genweights)"; exit 1; }
"$gen" --out "$T/srv/model.safetensors" --seed 3 --width-mult 0.25 --convs 14 2> /dev/null
size=$(wc -c < "$T/srv/model.safetensors" | tr -d ' ')
pth=tests/data/tiny-vgg-legacy.pth
sum8=$(sha256sum "$pth" | cut -c1-8)
cp "$pth" "$T/srv/tiny-$sum8.pth"
cp "$pth" "$T/srv/tiny-deadbeef.pth"

python3 tools/test_server.py --dir "$T/srv" --port-file "$T/port" --log "$T/log" \
    --timeout 30 &
server=$!
trap 'kill $server 2> /dev/null' EXIT
i=0
while [ ! -f "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -f "$T/port" ] || { echo "FAIL the test server did not start"; exit 1; }
base=http://127.0.0.1:$(cat "$T/port")

# fetch NAME URL SIZE: runs the script into $T/NAME, output in $T/NAME.out
fetch() {
    NST_WEIGHTS_URL=$2 NST_WEIGHTS_SIZE=$3 NST_WEIGHTS_DIR=$T/$1 NST_GENWEIGHTS=$gen \
        NST_FETCH_TRIES=3 tools/fetch-weights.sh > "$T/$1.out" 2>&1
}

# 1. a plain download, converted and trimmed to conv5_1, checksum recorded
if fetch plain "$base/model.safetensors" "$size" &&
   (cd "$T/plain" && sha256sum -c --quiet vgg19-conv.safetensors.sha256) &&
   "$gen" --info "$T/plain/vgg19-conv.safetensors" | grep -q '^26 tensors' &&
   [ ! -f "$T/plain/vgg19.tv_in1k.safetensors" ]; then
    ok "download, convert, trim, checksum"
else bad "download, convert, trim, checksum"; cat "$T/plain.out"; fi

# 2. the first transfer is dropped half-way; the next attempt resumes with a range
if fetch resumed "$base/drop/model.safetensors" "$size" &&
   cmp -s "$T/plain/vgg19-conv.safetensors" "$T/resumed/vgg19-conv.safetensors" &&
   grep -q "^/drop/model.safetensors range=bytes=[1-9]" "$T/log"; then
    ok "interrupted transfer resumed"
else bad "interrupted transfer resumed"; cat "$T/resumed.out"; fi

# 3. a wrong size is refused, nothing is written
if ! fetch size "$base/model.safetensors" $((size + 1)) &&
   grep -q "not the expected $((size + 1))" "$T/size.out" &&
   [ ! -f "$T/size/vgg19-conv.safetensors" ]; then
    ok "wrong size refused"
else bad "wrong size refused"; cat "$T/size.out"; fi

# 4. an HTML error page (status 200) is refused and removed
if ! fetch html "$base/error.html" "" && grep -q "HTML page" "$T/html.out" &&
   [ -z "$(ls "$T/html")" ]; then
    ok "HTML page refused"
else bad "HTML page refused"; cat "$T/html.out"; fi

# 5. a 404 fails at once
if ! fetch missing "$base/nothing.safetensors" "" && grep -q "HTTP error" "$T/missing.out"; then
    ok "HTTP error refused"
else bad "HTTP error refused"; cat "$T/missing.out"; fi

# 6. a torchvision-style name: the SHA-256 prefix is checked, the .pth converted
if fetch pth "$base/tiny-$sum8.pth" "" &&
   "$gen" --info "$T/pth/vgg19-conv.safetensors" | grep -q '^26 tensors' &&
   ! fetch pthbad "$base/tiny-deadbeef.pth" "" && grep -q "does not start with deadbeef" \
       "$T/pthbad.out"; then
    ok "SHA-256 prefix of a .pth checked, checkpoint converted"
else bad "SHA-256 prefix of a .pth checked"; cat "$T/pth.out" "$T/pthbad.out"; fi

# 7. a second run finds the result and downloads nothing
lines=$(wc -l < "$T/log")
if fetch plain "$base/model.safetensors" "$size" && grep -q "already here" "$T/plain.out" &&
   [ "$(wc -l < "$T/log")" = "$lines" ]; then
    ok "second run is a no-op"
else bad "second run is a no-op"; cat "$T/plain.out"; fi

# 8. offline: a name that does not resolve, a port nobody listens on. One
# attempt, and the message gives the routes that need no internet.
for u in http://nonexistent.invalid/vgg19-dcbb9e9d.pth http://127.0.0.1:1/vgg19-dcbb9e9d.pth; do
    if ! NO_PROXY='*' no_proxy='*' fetch offline "$u" "" &&
       grep -q "cannot reach .*is this machine offline" "$T/offline.out" &&
       grep -q -- "--weights /path/to/vgg19-dcbb9e9d.pth" "$T/offline.out" &&
       grep -q "nst-genweights --out" "$T/offline.out" &&
       ! grep -q "attempt 2" "$T/offline.out" && ! grep -q "run it again" "$T/offline.out"; then
        ok "offline ($u): says so and how to do without"
    else bad "offline ($u): says so and how to do without"; cat "$T/offline.out"; fi
done

# 9. the offline route it gives: a local file:// URL is converted
if fetch local "file://$PWD/$T/srv/tiny-$sum8.pth" "" &&
   "$gen" --info "$T/local/vgg19-conv.safetensors" | grep -q '^26 tensors'; then
    ok "a file:// URL is converted"
else bad "a file:// URL is converted"; cat "$T/local.out"; fi

# 10. VGG-16: by argument or NST_NETWORK, its own file name, trimmed at its
# conv5_1 (features.24: 11 convolutions, 22 tensors); a VGG-19 file for it is
# refused saying why; --list names both torchvision files.
"$gen" --network vgg16 --out "$T/srv/model16.safetensors" --seed 4 --width-mult 0.25 2> /dev/null
size16=$(wc -c < "$T/srv/model16.safetensors" | tr -d ' ')
if NST_WEIGHTS_URL=$base/model16.safetensors NST_WEIGHTS_SIZE=$size16 NST_WEIGHTS_DIR=$T/v16 \
       NST_GENWEIGHTS=$gen tools/fetch-weights.sh vgg16 > "$T/v16.out" 2>&1 &&
   "$gen" --info "$T/v16/vgg16-conv.safetensors" > "$T/v16.info" &&
   grep -q '^22 tensors' "$T/v16.info" && grep -q '^network: vgg16, 11 of its 13' "$T/v16.info" &&
   (cd "$T/v16" && sha256sum -c --quiet vgg16-conv.safetensors.sha256) &&
   [ ! -f "$T/v16/vgg19-conv.safetensors" ]; then
    ok "VGG-16 by argument: vgg16-conv.safetensors, trimmed at its conv5_1"
else bad "VGG-16 by argument"; cat "$T/v16.out" "$T/v16.info"; fi
if ! NST_NETWORK=vgg16 fetch v16bad "$base/model.safetensors" "$size" &&
   grep -q "features.16 of VGG-16 is pool3" "$T/v16bad.out" &&
   grep -q "does not hold vgg16's weights" "$T/v16bad.out" &&
   [ ! -f "$T/v16bad/vgg16-conv.safetensors" ]; then
    ok "NST_NETWORK=vgg16 refuses VGG-19 weights, saying why"
else bad "NST_NETWORK=vgg16 refuses VGG-19 weights"; cat "$T/v16bad.out"; fi
if tools/fetch-weights.sh --list > "$T/list.out" && grep -q "vgg16-397923af.pth (553433881 bytes)" "$T/list.out" &&
   grep -q "vgg19-dcbb9e9d.pth (574673361 bytes)" "$T/list.out" &&
   ! NST_NETWORK=vgg11 tools/fetch-weights.sh > "$T/v11.out" 2>&1 && grep -q "choose vgg19 or vgg16" "$T/v11.out"; then
    ok "--list names both networks' files; an unknown network is refused"
else bad "--list, unknown network"; cat "$T/list.out" "$T/v11.out"; fi
if ! NST_NETWORK=vgg16 NO_PROXY='*' no_proxy='*' fetch off16 http://127.0.0.1:1/vgg16-397923af.pth "" &&
   grep -q -- "--weights /path/to/vgg16-397923af.pth" "$T/off16.out" &&
   grep -q -- "--out build/test.safetensors --network vgg16" "$T/off16.out"; then
    ok "offline, VGG-16: the routes name its file"
else bad "offline, VGG-16"; cat "$T/off16.out"; fi

# the WCT models: a local tree in the published layout (stand-in checkpoints:
# the script checks that they read; nst checks their layers when loading)
mkdir -p "$T/wsrc/vgg19_1" "$T/wsrc/vgg19_4"
for f in vgg_normalised_conv4_1.pth feature_invertor_conv4_1.pth; do cp "$pth" "$T/wsrc/vgg19_4/$f"; done
cp "$pth" "$T/wsrc/vgg19_1/vgg_normalised_conv1_1.pth"
printf '<html>not found</html>' > "$T/wsrc/vgg19_1/feature_invertor_conv1_1.pth"
wct() { NST_WCT_URL="file://$(pwd)/$T/wsrc/" NST_WEIGHTS_DIR=$T/$1 NST_GENWEIGHTS=$gen \
        NST_FETCH_TRIES=2 NST_WCT_LEVELS=$2 tools/fetch-weights.sh wct > "$T/$1.out" 2>&1; }
if wct wct4 4 && [ -f "$T/wct4/wct/vgg_normalised_conv4_1.pth" ] &&
   [ -f "$T/wct4/wct/feature_invertor_conv4_1.pth" ] && wct wct4 4 &&
   grep -q "feature_invertor_conv4_1.pth is already here" "$T/wct4.out"; then
    ok "wct: level 4's pair into weights/wct/, not fetched twice"
else bad "wct: level 4"; cat "$T/wct4.out"; fi
if ! wct wct1 1 && grep -q "expected 8031" "$T/wct1.out" &&
   [ ! -f "$T/wct1/wct/vgg_normalised_conv1_1.pth" ]; then
    ok "wct: a level 1 file of the wrong size is refused"
else bad "wct: wrong size"; cat "$T/wct1.out"; fi
if ! wct wct9 9 && grep -q "the levels are 1..5" "$T/wct9.out" &&
   tools/fetch-weights.sh --list | grep -q "feature_invertor_convL_1.pth"; then
    ok "wct: an unknown level is refused; --list names the WCT models' source"
else bad "wct: unknown level, --list"; cat "$T/wct9.out"; fi

[ $fails -eq 0 ] && echo "fetch: all passed" || echo "fetch: $fails FAILED"
[ $fails -eq 0 ]
