#!/bin/sh
# Installs the Debian/Ubuntu packages nst needs to build, test and run:
# the OpenCL ICD loader and headers, PoCL (the CPU device), CLBlast, OpenBLAS
# (pthreads; the matrix products of CPU devices run on it), libpng,
# libjpeg-turbo, jansson (the weights header), LAPACKE (the symmetric eigensolver
# of --method wct), cmocka (tests), curl (weights),
# python3 (the weight-fetch test's local server), FFmpeg's libraries, OpenCV's
# video module and the ffmpeg command (nst video and its tests), and Mesa's OpenCL (rusticl, a
# second implementation for the cross-vendor checks). With --dev, also what the reliability targets need (docs/RELIABILITY.md):
# clang and its sanitizer/libFuzzer runtimes (make fuzz), valgrind (make
# check-valgrind), groff (tests/test_man.sh renders the man page), slurm-wlm
# and munge (tests/test_slurm.sh); gcc's ASan/UBSan/TSan runtimes come with
# build-essential.
# usage: tools/install-deps.sh [--dev]   (as root, or with sudo available)
set -eu
PKGS="build-essential pkg-config ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
clinfo libclblast-dev libpng-dev libjpeg-dev libjansson-dev libcmocka-dev curl ca-certificates
python3 mesa-opencl-icd libopenblas-pthread-dev liblapacke-dev
libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libopencv-video-dev ffmpeg"
case "${1:-}" in
    --dev)
        PKGS="$PKGS clang valgrind groff-base"
        # Slurm's daemons and MUNGE: tests/test_slurm.sh runs a job array of
        # nst batch on a one-node cluster it starts itself.
        PKGS="$PKGS slurm-wlm munge"
        # Debian 12 ships libFuzzer and the sanitizer runtimes for clang
        # separately; elsewhere (Ubuntu 22.04) they come with clang.
        if apt-cache show libclang-rt-dev > /dev/null 2>&1; then PKGS="$PKGS libclang-rt-dev"; fi
        ;;
    "") ;;
    *) echo "usage: $0 [--dev]" >&2; exit 2 ;;
esac
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
