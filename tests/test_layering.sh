#!/bin/sh
# The layering rule of docs/ARCHITECTURE.md, checked on every #include "..."
# of src/: a file may include headers of its own folder and of the folders
# below it, runtime < io < net < objective, ref < run < app (objective and
# ref are side by side: neither includes the other).
cd "$(dirname "$0")/.." || exit 1
rank() {
    case $1 in
    runtime) echo 0 ;; io) echo 1 ;; net) echo 2 ;; objective|ref) echo 3 ;;
    run) echo 4 ;; app) echo 5 ;; *) echo "" ;;
    esac
}
bad=0 n=0
for f in src/*/*.c src/*/*.h; do
    layer=$(basename "$(dirname "$f")")
    r=$(rank "$layer")
    if [ -z "$r" ]; then echo "FAIL: $f: folder '$layer' is not a layer of the rule"; bad=1; continue; fi
    for h in $(sed -n 's/^#[ \t]*include "\([^"]*\)".*/\1/p' "$f"); do
        n=$((n + 1))
        hp=$(ls src/*/"$h" 2>/dev/null | head -n 1)
        [ -n "$hp" ] || continue            # generated (programs.h) or include/nst.h
        hl=$(basename "$(dirname "$hp")")
        [ "$hl" = "$layer" ] && continue
        if [ "$(rank "$hl")" -ge "$r" ]; then
            echo "FAIL: $f ($layer) includes $hp ($hl), a header of a layer not below it"; bad=1
        fi
    done
done
[ "$n" -gt 50 ] || { echo "FAIL: only $n includes found: is src/ laid out in layers?"; exit 1; }
[ $bad -eq 0 ] && echo "layering: $n includes in src/, none upward"
exit $bad
