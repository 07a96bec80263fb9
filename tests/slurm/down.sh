#!/usr/bin/env bash
# Stop exactly the daemons tests/slurm/up.sh started (by their pid files); leaves the packages installed.
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/tmp/aigen-slurm}
for daemon in slurmd slurmctld munged; do
    pid_file="$STATE/$daemon.pid"
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        printf '==> stopping %s (pid %s)\n' "$daemon" "$pid"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pid_file"
done
