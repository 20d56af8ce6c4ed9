# Every target does its own set-up: `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSDEPS := $(VENV)/.system-deps-stamp

.PHONY: install system-deps test test-fast test-slurm demo lint format bench gpu-wheels bench-gpu bench-gpu-smoke bench-hf clean reproduce-table1 reproduce-table2 download-checkpoints

install: $(STAMP)

# Re-installs only when the dependency files change; pip's "location ignored" chatter is filtered out.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,sweeps,slurm]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/python -c "import vmp_lightning, decord, lightning, pytorchvideo.models"
	touch $@

# Debian packages the tests use: FFmpeg's shared libraries (the torchcodec backend) and opencv-doc (real AVI
# files). Installed when this runs as root with apt (as CI does); otherwise it says what to install.
system-deps: $(SYSDEPS)

$(SYSDEPS): $(STAMP)
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq ffmpeg && apt-get install -y -qq --no-install-recommends opencv-doc) >/dev/null; \
	  $(BIN)/python -m pip install -q -c constraints.txt -e '.[torchcodec]' 2>&1 | { grep -v "is ignored: it is neither" || true; }; \
	else \
	  echo "not root with apt: install ffmpeg and opencv-doc (Debian) for the torchcodec and real-AVI tests" >&2; \
	fi
	touch $@

# pytest exits 5 when it collected no tests: a failure for us, said plainly.
test: install system-deps
	$(BIN)/python -m pytest -q; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc

# The same without the slow tests (over 10 s each: training runs, multi-process DDP).
test-fast: install system-deps
	$(BIN)/python -m pytest -q -m "not slow and not slurm"; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc

# The tests on a real one-node SLURM that they start (tests/slurm/cluster.sh: root with apt, Debian's packages).
test-slurm: install system-deps
	$(BIN)/python -m pytest -q -m slurm; rc=$$?; bash tests/slurm/cluster.sh stop; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc

demo: install
	$(BIN)/vmp-lightning demo

# The paper's tables: fit + test every run of the manifest (resumable), then its table in experiments/results/.
#   make reproduce-table2 DATA_ROOT=/data CKPT_ROOT=/ckpt [ONLY=timesformer/hmdb51_s1] [DEVICES=2] [PRECISION=..] [SEEDS=0,1,2]
#   make reproduce-table2 SMOKE=1      (synthetic videos in each dataset's layout, tiny models, CPU, ~2 min)
#   make reproduce-table2 LAUNCHER=slurm PARTITION=gpu GPUS_PER_NODE=4 DATA_ROOT=... CKPT_ROOT=...  (a job per run)
#     [CPUS_PER_TASK=8] [TIME=minutes] [SBATCH="mem=64G account=x exclusive"]   GPUS_PER_NODE=0: CPU jobs
REPRODUCE_FLAGS = $(if $(ONLY),--only $(ONLY)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) \
	$(if $(CKPT_ROOT),--ckpt-root $(CKPT_ROOT)) $(if $(DEVICES),--devices $(DEVICES)) \
	$(if $(PRECISION),--precision $(PRECISION)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(filter 1,$(SMOKE)),--smoke) \
	$(if $(LAUNCHER),--launcher $(LAUNCHER)) $(if $(PARTITION),--partition $(PARTITION)) \
	$(if $(GPUS_PER_NODE),--gpus-per-node $(GPUS_PER_NODE)) $(if $(NODES),--nodes $(NODES)) \
	$(if $(CPUS_PER_TASK),--cpus-per-task $(CPUS_PER_TASK)) $(if $(TIME),--time $(TIME)) \
	$(if $(SBATCH),--sbatch $(SBATCH))

reproduce-table2: install
	$(BIN)/vmp-lightning reproduce experiments/table2.yaml $(REPRODUCE_FLAGS)

reproduce-table1: install
	$(BIN)/vmp-lightning reproduce experiments/table1.yaml $(REPRODUCE_FLAGS)

# The pretrained checkpoints of Tables 1 and 2 into CKPT_ROOT (resumable; SHA-256 recorded, then verified, in
# experiments/checkpoints.sha256):  make download-checkpoints CKPT_ROOT=/ckpt [MIRROR=https://...]
download-checkpoints: install
	$(BIN)/vmp-lightning download experiments/table2.yaml --to $(CKPT_ROOT) $(if $(MIRROR),--mirror $(MIRROR))
	$(BIN)/vmp-lightning download experiments/table1.yaml --to $(CKPT_ROOT) $(if $(MIRROR),--mirror $(MIRROR))

# ruff, then the package's import layers (.importlinter: imports point one way, no cycles)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/prompt_cost.py
	$(BIN)/python benchmarks/loader_throughput.py
	$(BIN)/python benchmarks/backbone_overhead.py
	$(BIN)/python benchmarks/lightning_overhead.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/resume_matrix.py
	$(BIN)/python benchmarks/cut_seek.py
	$(BIN)/python benchmarks/demo_kernels.py

# On a machine with a GPU and its own torch, lightning and timm (no install, no network needed): step time and peak
# memory with and without VMPs, the prompt layer's bandwidth (benchmarks/results/gpu_step.md); without a GPU, one
# line. What else it imports travels as wheels in .gpu-wheels/, made here first by `make gpu-wheels`.
GPU_PYTHON ?= python3
gpu-wheels: install
	$(BIN)/python benchmarks/gpu_step.py --make-wheels

bench-gpu:
	PYTHONPATH=src:benchmarks $(GPU_PYTHON) benchmarks/gpu_step.py

# The smoke Table 2 run on the GPU, through the whole project (make install first).
bench-gpu-smoke: install
	$(BIN)/python benchmarks/gpu_smoke.py

# transformers only for this comparison, beside the benchmark, not in the project's environment
bench-hf: install
	test -d .bench-hf || $(BIN)/python -m pip install -q --no-deps --target .bench-hf transformers==5.24.0 tokenizers regex
	PYTHONPATH=.bench-hf $(BIN)/python benchmarks/timesformer_vs_hf.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .bench-hf
