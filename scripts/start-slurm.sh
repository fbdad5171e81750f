#!/usr/bin/env bash
# A throwaway single-node SLURM on this host (controller and daemon on localhost), for the
# workflow's SLURM test (tests/test_slurm.py). Idempotent: installs Debian's slurm-wlm and munge
# when missing, writes /etc/slurm/slurm.conf, starts munged, slurmctld and slurmd unless running,
# and waits until the node is idle. Needs root. Partitions: `cpu` (default) and `gpu`, the same
# node; the node advertises VITALSTUDY_SLURM_GPUS (default 2) stand-in GPUs (plain files) so that
# jobs asking for --gpus schedule and get CUDA_VISIBLE_DEVICES as on a real GPU node (no CUDA
# device is behind it: the workflow's GPU jobs then run on the CPU, as `device: auto` says).
# Accounting is off, so Snakemake's SLURM executor needs --slurm-status-command squeue.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "start-slurm: needs root (it installs packages and starts daemons)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi

host=$(hostname)
cpus=$(nproc)
memory=$(( $(free -m | awk '/^Mem:/ {print $2}') * 8 / 10 ))
gpus=${VITALSTUDY_SLURM_GPUS:-2}
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
conf=$(cat <<EOF
ClusterName=vitalstudy-test
SlurmctldHost=${host}
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=600
NodeName=${host} CPUs=${cpus} RealMemory=${memory} Gres=gpu:${gpus} State=UNKNOWN
PartitionName=cpu Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${host} MaxTime=INFINITE State=UP
EOF
)
if [ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" != "$conf" ]; then
  echo "$conf" > /etc/slurm/slurm.conf
  # Plain files stand in for device files: slurmd counts them and sets CUDA_VISIBLE_DEVICES per job.
  mkdir -p /var/lib/vitalstudy-slurm
  for i in $(seq 0 $((gpus - 1))); do touch "/var/lib/vitalstudy-slurm/gpu${i}"; done
  echo "Name=gpu File=/var/lib/vitalstudy-slurm/gpu[0-$((gpus - 1))]" > /etc/slurm/gres.conf
  changed=1
fi
if [ -n "${changed:-}" ]; then  # a new configuration: restart what runs
  for daemon in slurmd slurmctld; do
    pid=$(pgrep -x "$daemon" || true)
    if [ -n "$pid" ]; then kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
  done
fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mix*|alloc*) echo "start-slurm: ${host} is ${state} (partitions cpu, gpu)"; exit 0 ;;
    down*|drain*) scontrol update NodeName="${host}" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "start-slurm: the node did not become idle; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo -N -l >&2 || true
exit 1
