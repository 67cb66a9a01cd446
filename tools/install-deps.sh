#!/bin/sh
# Installs the Debian/Ubuntu packages nst needs to build, test and run:
# the OpenCL ICD loader and headers, PoCL (the CPU device), CLBlast, libpng,
# libjpeg-turbo, jansson (the weights header), cmocka (tests), curl (weights),
# Mesa's OpenCL (rusticl: a second implementation for cross-vendor checks)
# and python3 (the local HTTP server of the weight-fetch test).
# usage: tools/install-deps.sh   (as root, or with sudo available)
set -eu
PKGS="build-essential pkg-config ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
clinfo libclblast-dev libpng-dev libjpeg-dev libjansson-dev libcmocka-dev curl ca-certificates
mesa-opencl-icd python3"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
