#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, from Debian's packages, for the tests marked `slurm`:
#   tests/slurm/cluster.sh start    install (once) slurmctld, slurmd, the client and munge; configure; start; wait idle
#   tests/slurm/cluster.sh stop     cancel the jobs, stop the daemons by their pid files
# Root on Debian without systemd (the CI machine, a container). The node has this machine's CPUs and memory and
# two fake GPUs (GRES backed by /dev/null-like character devices), so GPU jobs schedule on a CPU node.
set -euo pipefail
trap 'echo "slurm: $0 failed at line $LINENO" >&2' ERR
STATE=${SLURM_TEST_STATE:-/var/tmp/vmp-slurm}
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then return; fi
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d  # no daemon starts now
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

configure() {
  mkdir -p "$STATE"/{ctld,d,log} /etc/slurm /run/munge
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key /run/munge && chmod 400 /etc/munge/munge.key
  for n in 0 1; do [ -e "$STATE/gpu$n" ] || mknod "$STATE/gpu$n" c 1 3; done  # character devices, like /dev/null
  local cpus memory
  cpus=$(nproc)
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$CONF" <<CONF
ClusterName=vmptest
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
JobRequeue=1
EnforcePartLimits=ALL
MailProg=/bin/true
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmUser=root
MinJobAge=300
KillWait=30
NodeName=$HOST CPUs=$cpus RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
  echo "Name=gpu File=$STATE/gpu[0-1]" > /etc/slurm/gres.conf
}

start() {
  install
  configure
  pgrep -x munged >/dev/null || su -s /bin/sh munge -c "/usr/sbin/munged"
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case "$state" in idle|mixed|allocated) echo "slurm: node $HOST $state"; return 0;; esac
    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm: the node did not come up (state: ${state:-none}); logs in $STATE/log" >&2
  return 1
}

stop() {
  command -v scancel >/dev/null && scancel --user=root >/dev/null 2>&1 || true
  sleep 1
  for daemon in slurmd slurmctld; do
    [ -f "$STATE/$daemon.pid" ] && kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true
  done
  pkill -x munged 2>/dev/null || true
  for _ in $(seq 20); do  # gone before a start that follows
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null || return 0
    sleep 0.5
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
