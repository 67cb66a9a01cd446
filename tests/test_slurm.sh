#!/bin/sh
# tools/nst-slurm-array.sh under Slurm's own daemons: a one-node cluster on
# this machine (munged, slurmctld, slurmd from a generated configuration, on
# free ports, everything in a temporary directory), a job array of two tasks
# over a small batch on the default OpenCL device, then the same array again,
# which finds everything done. The suite starts and stops the daemons itself
# and leaves nothing behind; it skips when Slurm or MUNGE is not installed
# (tools/install-deps.sh --dev installs them) or when neither root nor
# sudo without a password is at hand (the daemons need root).
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
NST=$REPO/build/nst
MK=build/tools/nst-mkimage
for p in slurmctld slurmd sbatch squeue scontrol sinfo munged mungekey munge unmunge; do
    if ! command -v $p > /dev/null 2>&1 && [ ! -x /usr/sbin/$p ]; then
        echo "SKIP: $p is not installed (Debian: apt-get install slurm-wlm munge, or tools/install-deps.sh --dev)"
        exit 0
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    # the daemons need root: through sudo when it asks no password (CI runners)
    if command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
        exec sudo -n env "PATH=$PATH" "NST_CACHE=${NST_CACHE:-}" "HOME=$(getent passwd root | cut -d: -f6)" sh "$REPO/tests/test_slurm.sh"
    fi
    echo "SKIP: the Slurm daemons of this test need root (or sudo without a password)"
    exit 0
fi
PATH=$PATH:/usr/sbin
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { if eval "$2"; then ok "$1"; else no "$1"; fi; }

# Everything in one directory that the munge user can reach; short, since
# MUNGE's socket path must fit a sockaddr.
D=$(mktemp -d /tmp/nst-slurm.XXXXXX)
chmod 711 "$D"
CONF=$D/slurm.conf
# The daemons this suite starts, and every process they start (the jobs'
# slurmstepd and tasks), carry this variable: that is how strays are found.
TAG="SLURM_CONF=$CONF"
cleanup() {
    SLURM_CONF=$CONF scancel --quiet --user=root 2> /dev/null
    for f in "$D/run/slurmd.pid" "$D/run/slurmctld.pid" "$D/munge/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2> /dev/null
    done
    sleep 0.5
    # strays: any process still carrying this suite's configuration
    for e in /proc/[0-9]*/environ; do
        pid=${e#/proc/}
        pid=${pid%/environ}
        [ "$pid" = $$ ] && continue
        if { tr '\0' '\n' < "$e"; } 2> /dev/null | grep -qxF "$TAG"; then kill -9 "$pid" 2> /dev/null; fi
    done
    for f in "$D/run/slurmd.pid" "$D/run/slurmctld.pid" "$D/munge/munged.pid"; do
        [ -s "$f" ] && kill -9 "$(cat "$f")" 2> /dev/null
    done
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# two free TCP ports for slurmctld and slurmd
PORTS=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
CTLD_PORT=${PORTS% *}
SLURMD_PORT=${PORTS#* }
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(($(free -m | awk '/^Mem:/ {print $2}') * 8 / 10))

# MUNGE: a key and a daemon of our own, on our own socket
mkdir -p "$D/munge" "$D/munge-run" "$D/state" "$D/spool" "$D/run" "$D/log" "$D/work/out"
mungekey --create --keyfile="$D/munge/munge.key" > /dev/null 2>&1 ||
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 2> /dev/null
chown -R munge:munge "$D/munge" "$D/munge-run"
chmod 700 "$D/munge"
chmod 755 "$D/munge-run"
chmod 400 "$D/munge/munge.key"
SOCK=$D/munge-run/munge.socket
su -s /bin/sh munge -c "munged --socket=$SOCK --key-file=$D/munge/munge.key \
    --pid-file=$D/munge/munged.pid --log-file=$D/munge/munged.log --seed-file=$D/munge/munged.seed" ||
    no "munged starts"
check "munge credentials round-trip" "munge --socket=$SOCK -n | unmunge --socket=$SOCK | grep -q 'STATUS: *Success'"
if [ $fail -ne 0 ]; then
    cat "$D/munge/munged.log" 2> /dev/null
    echo "$pass passed, $fail failed"
    exit 1
fi

cat > "$CONF" << EOF
ClusterName=nsttest
SlurmctldHost=$HOST
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
GresTypes=gpu
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
# two "GPUs" by count: the array script asks one per task, as on a cluster
printf 'NodeName=%s Name=gpu File=/dev/null\nNodeName=%s Name=gpu File=/dev/zero\n' "$HOST" "$HOST" > "$D/gres.conf"

export SLURM_CONF="$CONF"
slurmctld -c || no "slurmctld starts"
slurmd || no "slurmd starts"
k=0
while [ $k -lt 100 ] && ! sinfo -h -o %T 2> /dev/null | grep -q idle; do sleep 0.2; k=$((k + 1)); done
check "the node is idle" "sinfo -h -o %T | grep -q idle"
if [ $fail -ne 0 ]; then
    tail -n 20 "$D"/log/*.log
    echo "$pass passed, $fail failed"
    exit 1
fi

# the batch: five small transfers on a narrow generated network
W=$D/work
build/tools/nst-genweights --out "$W/w.safetensors" --width-mult 0.0625 --seed 5 > /dev/null || no "generate weights"
$MK --pattern photo --size 48x36 --out "$W/photo.png"
$MK --pattern stripes --size 40x40 --out "$W/paint.jpg"
for i in 1 2 3 4 5; do
    echo "{\"content\": \"photo.png\", \"style\": \"paint.jpg\", \"output\": \"out/j$i.png\", \"size\": $((28 + 4 * i)), \"iterations\": 3, \"weights\": \"w.safetensors\"}"
done > "$W/jobs.jsonl"

# submit ARRAY NAME: the array script over the batch; waits for the end
submit() {
    jid=$(sbatch --parsable --array="$1" --chdir="$W" --cpus-per-task=1 --mem=500 \
        --output="$W/$2-%a.log" --export=ALL,NST="$NST" "$REPO/tools/nst-slurm-array.sh" jobs.jsonl)
    k=0
    while [ $k -lt 300 ] && [ -n "$(squeue -h -j "$jid" 2> /dev/null)" ]; do sleep 0.2; k=$((k + 1)); done
    echo "$jid"
}
jid=$(submit 0-1 first)
check "sbatch --array=0-1 runs two tasks, both exit 0" \
    "[ \$(scontrol show job $jid | grep -c 'JobState=COMPLETED') -eq 2 ] && [ \$(scontrol show job $jid | grep -c 'ExitCode=0:0') -eq 2 ]"
check "each task ran its own slice (3 + 2 jobs)" \
    "grep -q 'slice 0 of 2' $W/first-0.log && grep -q 'slice 1 of 2' $W/first-1.log && grep -q '3 done' $W/first-0.log && grep -q '2 done' $W/first-1.log"
check "together: every job once" "[ \$(ls $W/out/j*.png | wc -l) -eq 5 ] && [ \$(cat $W/first-*.log | grep -c 'nst: done') -eq 5 ]"
check "each task had one GPU of its own" "grep -q 'GPU [0-9]' $W/first-0.log && grep -q 'GPU [0-9]' $W/first-1.log"
jid=$(submit 0-1 again)
check "the array again: every job already done" \
    "[ \$(scontrol show job $jid | grep -c 'ExitCode=0:0') -eq 2 ] && grep -q '0 done, 3 already done' $W/again-0.log && grep -q '0 done, 2 already done' $W/again-1.log"
if [ $fail -ne 0 ]; then
    for f in "$W"/*.log "$D"/log/*.log; do echo "== $f"; tail -n 20 "$f"; done
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
