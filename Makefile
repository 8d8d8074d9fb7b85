# Two commands do all the set-up on a fresh machine:
#   make demo   venv + install + data + the seeds' ASHA study (300 s, 2 workers)
#   make test   venv + install + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Use the project's shared copy of FashionMNIST when it sits beside the checkout.
ifneq ($(wildcard ../shared/data/FashionMNIST/raw),)
export LIT_HPO_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install data demo demo-random test lint clean bench-overhead bench-startup bench-journal bench-lenet bench-search bench-cluster bench-preemption

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

data: install  ## find FashionMNIST (data.root, $$LIT_HPO_DATA, Debian) or download it
	$(BIN)/python -c "from models.data import prepare_fashion_mnist as p; print('FashionMNIST:', p())"

demo: data  ## the seeds' ASHA study: LeNet, 2 workers, 300 s
	$(BIN)/python train.py -m hpo=asha

demo-random: data  ## the seeds' asynchronous random search
	$(BIN)/python train.py -m hpo=random

# Benchmarks against the peers (docs/benchmarks.md); the bench extra installs Optuna,
# optuna-integration and Syne Tune 0.16.0. Results go to benchmarks/results/.
$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench-overhead: $(VENV)/.bench  ## sleeping trials: ours vs Optuna vs Syne Tune (~25 min)
	$(BIN)/python benchmarks/overhead.py

bench-startup: $(VENV)/.bench  ## command start to first report, step by step: ours vs Optuna vs hydra-optuna-sweeper (~3 min)
	$(BIN)/python benchmarks/startup.py

bench-journal: $(VENV)/.bench  ## report latency and replay at scale vs Optuna (~10 min)
	$(BIN)/python benchmarks/journal.py --optuna-prepop-s 240 --trials 100

bench-lenet: $(VENV)/.bench data  ## the seeds' study: ours vs Syne Tune (~25 min per seed)
	$(BIN)/python benchmarks/lenet.py --seeds 0 1

bench-search: $(VENV)/.bench data  ## searchers vs hydra-optuna-sweeper and Syne Tune BOHB (~11 min per seed)
	$(BIN)/python benchmarks/search.py

bench-cluster: install  ## 8/16/32 workers: file journal, PostgreSQL, Optuna RDB (~5 min; a PostgreSQL server)
	$(BIN)/python benchmarks/cluster.py

bench-preemption: install  ## 50 USR2 preemptions of SLURM workers (~6 min; a SLURM cluster)
	$(BIN)/python benchmarks/preemption.py

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
