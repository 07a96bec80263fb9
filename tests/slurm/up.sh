#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine (Debian's slurm 22.05, as root, no systemd needed).
# Idempotent: installs slurmctld, slurmd, slurm-client and munge when missing, writes its own slurm.conf,
# starts munged, slurmctld and slurmd with pid files in $SLURM_LOCAL_DIR, and waits until the node is idle.
# tests/slurm/down.sh stops exactly what this started.
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/tmp/aigen-slurm}
CONF_DIR=/etc/slurm
say() { printf '==> %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
    ! command -v sbatch >/dev/null; then
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }
node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n 1; }

if running munged && running slurmctld && running slurmd && [ "$(node_state)" = idle ]; then
    say "SLURM is already up (node idle)"
    exit 0
fi

mkdir -p "$STATE"/{spool,ctld,log} /run/munge /var/log/munge /var/lib/munge
HOST=$(hostname -s)

say "writing $CONF_DIR/slurm.conf for node $HOST"
NODE_LINE=$(slurmd -C | head -n 1)
mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/slurm.conf" <<CONF
# Written by aigen's tests/slurm/up.sh: a single-node cluster for tests and trials.
ClusterName=aigen-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
$NODE_LINE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

if ! running munged; then
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating a munge key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    say "starting munged"
    pid_file=/run/munge/munged.pid
    if command -v runuser >/dev/null && id munge >/dev/null 2>&1; then
        runuser -u munge -- munged --pid-file="$pid_file" --force
    else
        munged --pid-file="$pid_file" --force
    fi
    for _ in $(seq 50); do [ -s "$pid_file" ] && break; sleep 0.1; done
    cp "$pid_file" "$STATE/munged.pid"
fi

if ! running slurmctld; then
    say "starting slurmctld"
    slurmctld -i
    for _ in $(seq 50); do [ -s "$STATE/slurmctld.pid" ] && break; sleep 0.1; done
fi
if ! running slurmd; then
    say "starting slurmd"
    slurmd
    for _ in $(seq 50); do [ -s "$STATE/slurmd.pid" ] && break; sleep 0.1; done
fi

say "waiting for the node to be idle"
for _ in $(seq 120); do
    state=$(node_state)
    case "$state" in
    idle) say "SLURM is up: $(sinfo -h -o '%P %D %T %C')"; exit 0 ;;
    down* | drain* | unknown*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
die "the node did not become idle (state: $(node_state)); see $STATE/log/"
