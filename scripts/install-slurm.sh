#!/usr/bin/env bash
# Install and start a one-node Slurm cluster on this host, idempotently (safe on every CI run):
#   munge      the authentication daemon Slurm uses (munged, started as the munge user)
#   slurmctld  the controller; its state (jobs, queue) is saved under /var/lib/slurm/slurmctld, so
#              a killed controller restarts with every job it knew
#   slurmd     the node daemon: this host, with the CPUs and memory `slurmd -C` reports
# Memory and CPU limits are enforced by cgroups v1 (task/cgroup + proctrack/cgroup), time limits
# by slurmctld. There is no systemd here: the daemons are started directly and daemonize.
# Needs root. A daemon that is already up is left alone, unless slurm.conf changed.
#
# Environment: SLURM_PARTITION (default debug).
set -euo pipefail
cd "$(dirname "$0")/.."

CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
PARTITION=${SLURM_PARTITION:-debug}

log() { echo "== install-slurm: $*"; }
fail() { echo "install-slurm.sh: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm.sh must run as root (apt-get, daemons)" >&2
    exit 2
fi

# 1. packages --------------------------------------------------------------------------------
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    log "slurm-wlm and munge already installed"
else
    log "apt-get install slurm-wlm munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# 2. munge -----------------------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
chown munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0755 /run/munge  # clients (sbatch as any user) must reach the socket
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"
else
    log "starting munged"
    # --force: a socket left by a munged that was killed must not stop the new one.
    runuser -u munge -- munged --force
    for _ in $(seq 1 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null || fail "munged does not answer; see /var/log/munge/munged.log"
fi

# 3. slurm.conf and cgroup.conf -----------------------------------------------------------------
# The node line is what slurmd itself detects (CPUs, sockets, cores, threads, RealMemory): a node
# configured with more than it has is drained by slurmctld.
node=$(slurmd -C | head -n 1)
host=$(hostname -s)
mkdir -p "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
chown slurm:slurm "$STATE_DIR" "$LOG_DIR"
new_conf=$(cat <<EOF
# Written by lmcourse scripts/install-slurm.sh: one node, this host.
ClusterName=lmcourse
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/cgroup
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 10 minutes (there is no accounting database).
MinJobAge=600
# A job that does not say how much memory it needs gets 1 GiB per CPU, not the whole node.
DefMemPerCPU=1024
KillWait=10
SlurmdTimeout=120
$node
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
new_cgroup=$(cat <<EOF
# Written by lmcourse scripts/install-slurm.sh: cgroups v1 enforce each job's memory and cores.
CgroupPlugin=cgroup/v1
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
)
changed=0
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" >"$CONF_DIR/slurm.conf"
    changed=1
fi
if [ "$(cat "$CONF_DIR/cgroup.conf" 2>/dev/null)" != "$new_cgroup" ]; then
    printf '%s\n' "$new_cgroup" >"$CONF_DIR/cgroup.conf"
    changed=1
fi

# 4. daemons -------------------------------------------------------------------------------------
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "$changed" -eq 1 ]; then
    log "wrote $CONF_DIR/slurm.conf, cgroup.conf"
    for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
        if running "$pidfile"; then
            log "stopping $(basename "$pidfile" .pid) to apply the new configuration"
            kill "$(cat "$pidfile")"
            for _ in $(seq 1 100); do running "$pidfile" || break; sleep 0.1; done
        fi
    done
fi
if running /run/slurmctld.pid; then
    log "slurmctld already running"
else
    log "starting slurmctld (log: $LOG_DIR/slurmctld.log)"
    slurmctld  # daemonizes; -R is not needed: jobs are recovered from StateSaveLocation by default
fi
if running /run/slurmd.pid; then
    log "slurmd already running"
else
    log "starting slurmd (log: $LOG_DIR/slurmd.log)"
    slurmd
fi

# 5. wait for the node ------------------------------------------------------------------------
# A fresh cluster shows the node idle; one restarted mid-batch may show it busy (mixed, allocated).
state=""
for _ in $(seq 1 150); do
    state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in idle|mixed|allocated|completing) break ;; esac
    if [[ "$state" == down* || "$state" == drain* ]]; then
        scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
    fi
    sleep 0.2
done
case "$state" in
    idle|mixed|allocated|completing) log "node $host is $state; $(sinfo -h -o '%P %c CPUs %m MiB' | head -n 1)" ;;
    *) fail "node $host is '${state:-unknown}' after 30 s; see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" ;;
esac
