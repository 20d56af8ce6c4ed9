#!/bin/bash
# One run on N nodes with torchrun (no SLURM): start this script on every node with the same RDZV_ENDPOINT.
# Lightning detects torchrun's environment (TorchElasticEnvironment); every process names the run after the
# rendezvous id (RDZV_ID, the same on every node; required with NNODES > 1, a fresh one by default on one node) and
# the fit's number, so all nodes write into one run folder and two launches never share one. Resume after a
# failure: add --ckpt_path <run>/checkpoints/last.ckpt, or launch again with the same RDZV_ID.
#   NNODES=2 GPUS=8 RDZV_ENDPOINT=node0:29500 bash experiments/cluster/torchrun.sh --config configs/data/finegym.yaml ...
set -euo pipefail
NNODES=${NNODES:-1}
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
RDZV_ENDPOINT=${RDZV_ENDPOINT:-localhost:29500}
if [ "${NNODES}" -gt 1 ] && [ -z "${RDZV_ID:-}" ]; then
  echo "set RDZV_ID to one id for this run on every node (e.g. RDZV_ID=finegym-vmp-1)" >&2; exit 2
fi
RDZV_ID=${RDZV_ID:-vmp-$(date +%Y%m%d-%H%M%S)-$RANDOM}
.venv/bin/torchrun --nnodes "${NNODES}" --nproc-per-node "${GPUS}" \
  --rdzv-backend c10d --rdzv-endpoint "${RDZV_ENDPOINT}" --rdzv-id "${RDZV_ID}" \
  -m vmp_lightning fit --config configs/trainer/gpu_ddp.yaml \
  --trainer.num_nodes "${NNODES}" --trainer.devices "${GPUS}" "$@"
