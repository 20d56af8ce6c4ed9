#!/bin/bash
# One run on N nodes with torchrun (no SLURM): start this script on every node with the same RDZV_ENDPOINT.
# Lightning detects torchrun's environment (TorchElasticEnvironment); the run id is torchrun's, so every node
# writes into the same run folder. Resume after a failure: add --ckpt_path <run>/checkpoints/last.ckpt.
#   NNODES=2 GPUS=8 RDZV_ENDPOINT=node0:29500 bash experiments/cluster/torchrun.sh --config configs/data/finegym.yaml ...
set -euo pipefail
NNODES=${NNODES:-1}
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
RDZV_ENDPOINT=${RDZV_ENDPOINT:-localhost:29500}
.venv/bin/torchrun --nnodes "${NNODES}" --nproc-per-node "${GPUS}" \
  --rdzv-backend c10d --rdzv-endpoint "${RDZV_ENDPOINT}" --rdzv-id "${RDZV_ID:-vmp-$(date +%Y%m%d)}" \
  -m vmp_lightning fit --config configs/trainer/gpu_ddp.yaml \
  --trainer.num_nodes "${NNODES}" --trainer.devices "${GPUS}" "$@"
