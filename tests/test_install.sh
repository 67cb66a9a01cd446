#!/bin/sh
# test_install.sh: `make install` into a staging directory (DESTDIR) with
# PREFIX=/usr, then what a library user or a package does with it: the shared
# library under its soname, exporting exactly the functions nst.h declares;
# nst, nst-genweights and the man page; a program compiled and linked through
# pkg-config (PKG_CONFIG_SYSROOT_DIR) against the shared and against the
# static library, and run; then `make uninstall` leaves no file behind.
# Needs make, a C compiler, pkg-config and readelf (binutils).
set -u
cd "$(dirname "$0")/.."
T=$(pwd)/build/tmp/install
rm -rf "$T" && mkdir -p "$T"
S=$T/stage
L=$S/usr/lib
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }
cc=${CC:-cc}
version=$(sed -n 's/.*define NST_VERSION "\(.*\)"/\1/p' include/nst.h)
SOV=$(sed -n "s/^SOVERSION := \(.*\)/\1/p" Makefile)

if ! make -s install DESTDIR="$S" PREFIX=/usr > "$T/install.log" 2>&1; then
    cat "$T/install.log"
    echo "FAIL - make install DESTDIR=$S PREFIX=/usr"
    exit 1
fi
ok "make install DESTDIR=... PREFIX=/usr"

check "nst in bin" "[ -x $S/usr/bin/nst ]"
check "nst-genweights in bin, and it runs" "[ -x $S/usr/bin/nst-genweights ] && $S/usr/bin/nst-genweights --help > /dev/null"
check "nst.1 in share/man/man1" "[ -s $S/usr/share/man/man1/nst.1 ]"
check "nst.h in include" "cmp -s include/nst.h $S/usr/include/nst.h"
check "libnst.a in lib" "[ -f $L/libnst.a ]"
check "nst.pc in lib/pkgconfig" "[ -f $L/pkgconfig/nst.pc ]"
check "the shared library's real name is libnst.so.$version" "[ -f $L/libnst.so.$version ] && [ ! -L $L/libnst.so.$version ]"
check "libnst.so.$SOV links to it" "[ -L $L/libnst.so.$SOV ] && [ \"\$(readlink $L/libnst.so.$SOV)\" = libnst.so.$version ]"
check "libnst.so (for -lnst) links to libnst.so.$SOV" "[ -L $L/libnst.so ] && [ \"\$(readlink $L/libnst.so)\" = libnst.so.$SOV ]"
soname=$(readelf -d "$L/libnst.so.$version" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')
check "its soname is libnst.so.$SOV (readelf: '$soname')" "[ '$soname' = libnst.so.$SOV ]"

# Exported: every function nst.h declares that the library defines, and
# nothing else (internals stay private to the library).
nm -g --defined-only "$L/libnst.a" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u > "$T/defined"
grep -o 'nst_[a-z0-9_]*(' include/nst.h | tr -d '(' | sort -u > "$T/named"
comm -12 "$T/defined" "$T/named" > "$T/public"
nm -D --defined-only "$L/libnst.so.$version" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' |
    sort -u > "$T/exported"
check "the shared library exports the $(wc -l < "$T/public") functions of nst.h, nothing else" \
    "[ -s $T/public ] && cmp -s $T/public $T/exported"
[ $fail -eq 0 ] || diff "$T/public" "$T/exported" | sed 's/^/    /'

# A library user's program, built through pkg-config against the staged
# install: PKG_CONFIG_SYSROOT_DIR puts the staging directory before the
# paths nst.pc names.
cat > "$T/user.c" << 'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nst.h>

int main(void) {
    nst_msg msg = {{0}};
    nst_params p;
    nst_params_default(&p);
    if (nst_params_check(&p, 1, NULL, &msg) != NST_OK) {
        fprintf(stderr, "default parameters refused: %s\n", msg.text);
        return 1;
    }
    nst_device_info *devs = NULL;
    int count = 0;
    nst_status st = nst_devices_list(&devs, &count, &msg);
    if (st != NST_OK) {
        fprintf(stderr, "listing devices: %s: %s\n", nst_strerror(st), msg.text);
        return 1;
    }
    for (int i = 0; i < count; i++) printf("device %d: %s\n", i, devs[i].name);
    free(devs);
    printf("nst %s (header %s)\n", nst_version(), NST_VERSION);
    return strcmp(nst_version(), NST_VERSION) != 0;
}
EOF
export PKG_CONFIG_SYSROOT_DIR="$S"
export PKG_CONFIG_PATH="$L/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags nst)
libs=$(pkg-config --libs nst)
check "pkg-config --cflags nst names the staged include directory ($cflags)" \
    "echo ' $cflags ' | grep -q -- ' -I$S/usr/include '"
check "pkg-config --libs nst is the staged -L and -lnst alone ($libs)" \
    "[ \"\$(echo $libs)\" = '-L$L -lnst' ]"

# A sanitizer build's library (make check-asan) needs the program built with
# the same sanitizers, whose runtimes must come first.
san=
readelf -d "$L/libnst.so.$version" | grep -q 'NEEDED.*libasan' && san="$san -fsanitize=address"
readelf -d "$L/libnst.so.$version" | grep -q 'NEEDED.*libubsan' && san="$san -fsanitize=undefined"
cflags="$cflags$san"
if $cc $cflags -o "$T/user" "$T/user.c" $libs 2> "$T/cc.err"; then
    ok "a program compiles and links against the shared library"
else
    cat "$T/cc.err"
    no "a program compiles and links against the shared library"
fi
check "it needs libnst.so.$SOV at run time" "readelf -d $T/user | grep -q 'NEEDED.*\[libnst.so.$SOV\]'"
LD_LIBRARY_PATH=$L "$T/user" > "$T/user.out" 2> "$T/user.err"
rc=$?
check "it runs against the staged library (devices listed, nst_version $version)" \
    "[ $rc -eq 0 ] && grep -q '^nst $version (header $version)' $T/user.out"
[ $rc -eq 0 ] || cat "$T/user.err"

# Statically: `pkg-config --static` adds the dependencies (Libs.private,
# Requires.private); -l:libnst.a asks for the archive.
slibs=$(pkg-config --static --libs nst | sed 's/-lnst\b/-l:libnst.a/')
if $cc $cflags -o "$T/user_static" "$T/user.c" $slibs 2> "$T/cc.err"; then
    ok "it links statically with pkg-config --static --libs nst"
else
    cat "$T/cc.err"
    no "it links statically with pkg-config --static --libs nst"
fi
check "the static program does not need libnst.so" "! readelf -d $T/user_static | grep -q 'libnst.so'"
"$T/user_static" > "$T/user_static.out" 2>&1
rc=$?
check "the static program runs" "[ $rc -eq 0 ] && grep -q '^nst $version' $T/user_static.out"

if make -s uninstall DESTDIR="$S" PREFIX=/usr > "$T/uninstall.log" 2>&1; then
    ok "make uninstall"
else
    cat "$T/uninstall.log"
    no "make uninstall"
fi
left=$(find "$S" ! -type d | sed "s|^$S||")
check "make uninstall leaves no file or link behind${left:+: $(echo $left)}" "[ -z '$left' ]"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
