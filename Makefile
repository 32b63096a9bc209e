# Two commands matter: `make demo` and `make test`. Both build .venv first (`make setup`).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= jobs/configs/tiny.yaml

export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export OMP_NUM_THREADS := 1
export PYTHONPATH := $(CURDIR)
# W&B stays offline unless a key is in the environment (never in a file).
ifeq ($(strip $(WANDB_API_KEY)),)
export WANDB_MODE := offline
endif
# DeepSpeed must not probe for CUDA on a CPU box.
ifeq ($(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu),)
export DS_ACCELERATOR := cpu
endif

.PHONY: setup demo test lint docs bench clean-runs

# Idempotent: (re)installs only when requirements.txt changed since the last install.
setup:
	@test -f ~/ray_bootstrap_config.yaml || echo '{}' > ~/ray_bootstrap_config.yaml
	@want=$$(sha256sum requirements.txt | cut -d' ' -f1); \
	if [ -x $(PY) ] && [ "$$(cat $(VENV)/.requirements.sha256 2>/dev/null)" = "$$want" ]; then \
	  echo "setup: $(VENV) is up to date"; \
	else \
	  echo "setup: installing requirements.txt into $(VENV) (a few minutes the first time)"; \
	  { test -x $(PY) || python3 -m venv $(VENV); } && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
	  echo "$$want" > $(VENV)/.requirements.sha256; \
	fi

demo: setup
	$(PY) -m jobs.pipeline --config $(CONFIG)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

# docs/configuration.md, every config key, generated from the config models (tests fail when it is stale).
docs: setup
	$(PY) -m pipelines.config.reference --write

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-runs:
	rm -rf runs/
