#!/bin/sh
# test_man.sh: the manual page docs/nst.1 against the programs' own help:
# every long option that `nst --help`, `nst devices|bench|tune|video|batch --help`, `nst bench --run 1 --help` and
# `nst-genweights --help` print is in nst.1 and every option nst.1 names is
# one of them; its version is NST_VERSION; groff (or man) renders it without
# a warning, when installed.
set -u
cd "$(dirname "$0")/.."
NST=build/nst
GEN=${NST_GENWEIGHTS:-build/tools/nst-genweights}
MAN=docs/nst.1
T=build/tmp/man
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

longopts() { grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u; }

: > "$T/help"
for cmd in "$NST --help" "$NST devices --help" "$NST bench --help" "$NST bench --run 1 --help" "$NST tune --help" \
           "$NST video --help" "$NST batch --help" "$GEN --help"; do
    if $cmd > "$T/one" 2>&1; then
        cat "$T/one" >> "$T/help"
    else
        no "'$cmd' exits 0"
    fi
done
longopts < "$T/help" > "$T/help.opts"
# The page as text: comments dropped, \- as -, font changes and \& removed.
sed -e '/^\.\\"/d' -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$MAN" | longopts > "$T/man.opts"

check "the help texts name options ($(wc -l < "$T/help.opts") found)" "[ \$(wc -l < $T/help.opts) -ge 40 ]"
missing=$(comm -23 "$T/help.opts" "$T/man.opts" | tr '\n' ' ' | sed 's/ $//')
check "every long option of --help is in $MAN${missing:+ (missing from $MAN: $missing)}" "[ -z '$missing' ]"
extra=$(comm -13 "$T/help.opts" "$T/man.opts" | tr '\n' ' ' | sed 's/ $//')
check "every option $MAN names is in a --help${extra:+ (in $MAN, in no --help: $extra)}" "[ -z '$extra' ]"

version=$(sed -n 's/.*define NST_VERSION "\(.*\)"/\1/p' include/nst.h)
check "$MAN is the page of nst $version" "grep -q '^\.TH NST 1 [^ ]* \"nst $version\"' $MAN"

if command -v groff > /dev/null 2>&1; then
    groff -man -Tutf8 -ww -z "$MAN" > "$T/groff.err" 2>&1
    check "groff renders $MAN without a warning$(sed 's/^/; /' "$T/groff.err" | tr -d '\n')" \
        "[ \$? -eq 0 ] && [ ! -s $T/groff.err ]"
else
    echo "skip - groff is not installed: rendering not checked by groff"
fi
if command -v man > /dev/null 2>&1; then
    MANWIDTH=80 man --warnings -l "$MAN" > "$T/man.txt" 2> "$T/man.err"
    rc=$?
    check "man -l renders $MAN without a warning$(sed 's/^/; /' "$T/man.err" | tr -d '\n')" \
        "[ $rc -eq 0 ] && [ ! -s $T/man.err ] && grep -q 'neural style transfer' $T/man.txt"
else
    echo "skip - man is not installed: rendering not checked by man"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
