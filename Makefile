# fdabnn-bench: `make setup`, then `make test`. Every target runs inside .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
FDABNN := $(VENV)/bin/fdabnn

# The developers' shared CIFAR-10 copy is used only when it exists; a user's machine downloads the
# official archive (md5-checked) or reads CIFAR10_ROOT.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/cifar10-jpeg.tar.gz),)
export CIFAR10_ROOT ?= $(SHARED_DATA)
endif

# A CUDA build of torch 2.13.0: make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_INDEX ?=

# Studies are the files under ablations/ (profiles.toml holds the training budgets): adding a study
# file adds its make target. PROFILE= smoke|quick|cpu|gpu|paper (default: paper with a GPU, else quick),
# BACKENDS= e.g. torch, DEVICE= cpu|cuda|auto, SEEDS= e.g. 0,1,2 replace the profile's seeds,
# ARCH= resnet20|vgg_small puts every cell on that network (model.name); only as make's argument,
# since build environments often export an ARCH of their own (x86_64).
STUDIES := $(filter-out profiles,$(basename $(notdir $(wildcard ablations/*.toml))))
ABLATE_FLAGS = $(if $(PROFILE),--profile $(PROFILE)) $(if $(BACKENDS),--backends $(BACKENDS)) \
	$(if $(DEVICE),--device $(DEVICE)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(filter command line,$(origin ARCH)),--arch $(ARCH))

# The benchmarks. bench-gpu also runs where no .venv exists (a GPU machine with its own torch):
# it then uses python3.
BENCH_PY := $(if $(wildcard $(PY)),$(PY),python3)
# the results store, as the fdabnn command resolves it ($FDABNN_RESULTS, else results/)
RESULTS := $(or $(FDABNN_RESULTS),results)
MICRO_TAG ?= $(if $(shell command -v nvidia-smi 2>/dev/null),gpu,cpu)

# The GPU machine (python3 3.12, its own torch; no pydantic, PyYAML, Ray or MindSpore; no network)
# runs `python3 -m bench.gpu_check --out DIR` (README, "On a GPU"). Prepare it here: `make
# gpu-wheels` fetches what it lacks into the git-ignored .whl/, as wheels for Python 3.12 (that
# machine) and 3.11 (the rehearsal); the check unpacks the ones that fit its Python. `make gpu-data`
# copies the developers' CIFAR-10 archive into .data/. Carry both.
GPU_WHEELS := pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 pyyaml==6.0.3
# The rehearsal: that machine's package set in a venv of its own (no pydantic, PyYAML, Ray or
# MindSpore), numpy 2, on this CPU. Python 3.11 and torch 2.13.0: the CPU build of torch on this
# disk is for 3.11, and PyPI's torch 2.11 for 3.12 is the multi-GB CUDA build.
REHEARSAL_VENV := .venv-gpu-rehearsal
REHEARSAL_PACKAGES := torch==2.13.0 "numpy>=2,<3" pandas rich scipy matplotlib tensorboard pytest pytest-benchmark
REHEARSAL_OUT ?= .gpu-rehearsal

.PHONY: help setup test test-slow summary pretrain-fp bench-cpu bench-gpu bench-micro gpu-wheels gpu-data gpu-rehearsal cluster-rehearsal \
	$(addprefix ablation-,$(STUDIES))
help:
	@echo "make setup      create .venv and install everything pinned (torch 2.13.0, mindspore 2.10.0, ...)"
	@echo "make test       the default test suite (CPU, real frameworks, real data; < 15 min)"
	@echo "make test-slow  the tests marked slow"
	@echo "make ablation-<study>  run a study, resumable: $(STUDIES)"
	@echo "                PROFILE=smoke|quick|cpu|gpu|paper BACKENDS=torch,mindspore DEVICE=cpu|cuda|auto SEEDS=0,1,2"
	@echo "                ARCH=resnet20|vgg_small"
	@echo "make pretrain-fp  a full-precision checkpoint for init.from (ARCH=, PROFILE=, BACKENDS=, DEVICE=); the"
	@echo "                protocol study starts from it: make pretrain-fp PROFILE=cpu && make ablation-protocol PROFILE=cpu"
	@echo "make summary    results/summary.md, results/<study>.csv and plots from every recorded run"
	@echo "make bench-cpu  train-step time and eval throughput of every estimator on this CPU (both backends)"
	@echo "make bench-gpu  the same on a CUDA GPU (within 8 minutes on one H100)"
	@echo "make bench-micro  estimator forward+backward micro-benchmarks (pytest-benchmark JSON in results/micro/)"
	@echo "make gpu-rehearsal  the GPU check on this CPU in the GPU machine's package set (README: On a GPU)"
	@echo "make cluster-rehearsal  fourier-terms smoke: local executor vs a local 3-node Ray cluster, and a node's"
	@echo "                death to its cell's restart, into results/cluster/ (idle machine; CELLS=N for a short check)"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install "torch==2.13.0" --index-url $(TORCH_INDEX))
	$(PY) -m pip install -e ".[test]"
	$(PY) -c "import torch, mindspore, numpy, pandas; print('torch', torch.__version__, '| mindspore', mindspore.__version__, '| numpy', numpy.__version__, '| pandas', pandas.__version__)"
	touch $@

test: setup
	$(VENV)/bin/pytest -m "not slow and not micro and not gpu" --durations=15

test-slow: setup
	$(VENV)/bin/pytest -m "slow"

# issue 23's measurement: README, "Running a study anywhere" (bench/executors/rehearsal.py)
cluster-rehearsal: setup
	$(PY) -m bench.executors.rehearsal --out $(RESULTS)/cluster $(if $(CELLS),--cells $(CELLS))

$(addprefix ablation-,$(STUDIES)): ablation-%: setup
	$(FDABNN) ablate $* $(ABLATE_FLAGS)

# The full-precision checkpoint init.from = "pretrain-fp" names (bench/init/pretrain.py): one seed, the
# profile's `pretrain` budget; it prints the path and the init.from to write.
pretrain-fp: setup
	$(FDABNN) pretrain-fp $(if $(PROFILE),--profile $(PROFILE)) $(if $(BACKENDS),--backends $(BACKENDS)) \
		$(if $(DEVICE),--device $(DEVICE)) $(if $(filter command line,$(origin ARCH)),--arch $(ARCH))

summary: setup
	$(FDABNN) summary

bench-cpu: setup
	$(PY) -m bench.cli bench --suite cpu $(if $(BACKENDS),--backends $(BACKENDS))
	$(PY) -m bench.cli summary

bench-gpu:
	$(BENCH_PY) -m bench.cli bench --suite gpu $(if $(BACKENDS),--backends $(BACKENDS))
	$(BENCH_PY) -m bench.cli summary

bench-micro: setup
	mkdir -p $(RESULTS)/micro
	$(VENV)/bin/pytest tests/micro -m micro --benchmark-enable --benchmark-only \
		--benchmark-json=$(RESULTS)/micro/estimators-$(MICRO_TAG).json --benchmark-columns=min,median,iqr,rounds
	$(PY) -m bench.cli summary

gpu-wheels:
	mkdir -p .whl
	for version in 3.12 3.11; do python3 -m pip download -q --no-deps --only-binary=:all: --python-version $$version \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS) || exit 1; done

gpu-data:
	mkdir -p .data
	cp $(SHARED_DATA)/cifar10-jpeg.tar.gz .data/

gpu-rehearsal: gpu-wheels gpu-data
	test -x $(REHEARSAL_VENV)/bin/python || python3 -m venv $(REHEARSAL_VENV)
	$(REHEARSAL_VENV)/bin/python -m pip install -q $(REHEARSAL_PACKAGES)
	rm -rf $(REHEARSAL_OUT)
	CIFAR10_ROOT= $(REHEARSAL_VENV)/bin/python -m bench.gpu_check --rehearse --out $(REHEARSAL_OUT); \
		status=$$?; cat $(REHEARSAL_OUT)/verdict.txt; test $$status -le 1
