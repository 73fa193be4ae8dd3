#!/bin/bash
# A one-node SLURM cluster on this machine, from Debian's packages, to run the
# project's own SLURM scripts under a real scheduler (make slurm-test).
#
#   containers/slurm/local-cluster.sh start   # installs slurm-wlm + munge if missing (root), starts
#                                             # munged, slurmctld, slurmd; prints: export SLURM_CONF=...
#   containers/slurm/local-cluster.sh stop    # stops the daemons this script started
#
# As root: slurmctld and slurmd run as root; process tracking by /proc
# (proctrack/linuxproc), no task binding (task/none), no cgroup plugin, so it
# works inside containers. The node has nproc CPUs and the machine's memory.
# Everything (config, state, logs, pid files) lives in $FRKIT_SLURM_DIR
# (default /tmp/frkit-slurm); /etc/slurm is not touched, so commands need
# SLURM_CONF=$FRKIT_SLURM_DIR/slurm.conf.
set -euo pipefail
DIR=${FRKIT_SLURM_DIR:-/tmp/frkit-slurm}
CONF=$DIR/slurm.conf
cmd=${1:?usage: local-cluster.sh start|stop}

stop() {
    for name in slurmd slurmctld munged; do
        pidfile=$DIR/$name.pid
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$pidfile"
    done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: local-cluster.sh start|stop" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "local-cluster.sh: needs root (slurmctld and slurmd run as root)" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
     || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1; }) \
     || { echo "local-cluster.sh: cannot install slurm-wlm and munge" >&2; exit 2; }
fi

stop  # a cluster left by an earlier run
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"

# munge: the key the package made (or a new one); munged runs as its own user
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
MUNGE_USER=$(id -u munge >/dev/null 2>&1 && echo munge || echo root)
runuser -u "$MUNGE_USER" -- /usr/sbin/munged --force --pid-file=/run/munge/frkit-munged.pid
cp /run/munge/frkit-munged.pid "$DIR/munged.pid"

host=$(hostname -s)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
cat >"$CONF" <<EOF
# written by containers/slurm/local-cluster.sh
ClusterName=frkit-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
MinJobAge=600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$CONF
slurmctld -f "$CONF"
slurmd -f "$CONF"
for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        echo "export SLURM_CONF=$CONF"
        exit 0
    fi
    sleep 0.2
done
echo "local-cluster.sh: the node did not come up; see $DIR/log/" >&2
sinfo >&2 || true
exit 1
