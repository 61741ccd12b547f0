# sous: the two set-up commands are `make dev` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: help install system-deps dev dev-down test test-unit test-integration test-e2e test-llm bench-llm lint fmt \
        migrate bench bench-boxes bench-claim soak soak-short chaos up up-worker-box down logs ps rollback \
        roll-forward stage clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml
	@scripts/system-deps.sh
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sous needs Python >= 3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) ## create .venv and install sous with its dev tools

dev: $(STAMP) ## run the whole stack on this host with demo data
	@scripts/dev.sh

dev-down: ## stop what `make dev` started
	@scripts/dev.sh down

# Two pytest workers, a file each at a time (module fixtures stay in one process): most of the
# suite waits on real processes, so two files in flight fit 2 cores (BENCHMARKS.md: test suite).
TEST_WORKERS ?= 2

test: $(STAMP) system-deps ## run every test (starts its own throwaway Postgres and Redis)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-llm: $(STAMP) ## provider chain and a drain against a real llama.cpp server (MODEL=smollm2)
	@MODEL=$(MODEL) scripts/test-llm.sh

bench-llm: $(STAMP) ## accuracy and rows/s of the model path on a real model (MODEL=qwen2.5-1.5b)
	@MODEL=$(MODEL) scripts/bench-llm.sh

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## apply migrations to DATABASE_URL
	$(BIN)/sous migrate

bench-claim: $(STAMP) ## claim+complete throughput against pgqueuer, same server, same run
	$(BIN)/python -m loadtest.bench_claim

bench: $(STAMP) ## pipeline benchmarks on the simulator (and the baseline, in the same run)
	$(BIN)/python -m loadtest.bench

bench-boxes: $(STAMP) ## rows/5 min of one box against two boxes on one Postgres (simulated, same run)
	$(BIN)/python -m loadtest.bench_boxes

# --- service levels (loadtest/soak.py: Locust against the whole stack, then the SLO gate) ---
DURATION ?= 1800
RATE ?= 60
# HOST=http://box:8000: Locust against that running deployment instead of a stack of its own;
# credentials and the gate's DATABASE_URL from the environment, else from .env (docs/runbook.md).
soak: $(STAMP) ## acceptance: DURATION s (30 min) at RATE rows/5 min (>= 50), then the SLO gate; HOST= a running box
	$(BIN)/python -m loadtest.soak --duration $(DURATION) --rows-per-5min $(RATE) \
	  $(if $(HOST),--host $(HOST) --env-file .env) $(SOAK_ARGS)

# 10x the target needs the appliance's fleet (WORKER_COUNT=16, one worker per vLLM stream): with
# the 2 workers of a small host the simulated bf16 model answers ~250 rows / 5 min.
soak-short: $(STAMP) ## 3 minutes at 10x the target rate, gated at 10x
	$(BIN)/python -m loadtest.soak --duration 180 --rows-per-5min 600 --min-rows-per-5min 500 --workers 16 $(SOAK_ARGS)

chaos: $(STAMP) ## 10 min at 10x with worker/dispatcher kills, Redis wipe, Postgres kicks, model faults
	$(BIN)/python -m loadtest.soak --duration 600 --rows-per-5min 600 --chaos --lease-seconds 60 --workers 16 $(SOAK_ARGS)

# --- the appliance (compose; needs a Docker engine) ---
# GPU: the command line, else .env's GPU (written by `make rollback` / `make roll-forward`), else rocm.
ENVFILE := $(PYTHON) scripts/envfile.py --file .env
GPU ?= $(shell test -f .env && $(ENVFILE) get GPU rocm 2>/dev/null || echo rocm)
COMPOSE ?= docker compose
COMPOSE_ALL := $(COMPOSE) --profile rocm --profile cuda --profile sim --profile monitoring

# GPU=none: no model server (after `make rollback`).
PROFILES = $(if $(filter-out none,$(GPU)),--profile $(GPU)) $(if $(MONITORING),--profile monitoring)
up: ## start the appliance (GPU=rocm|cuda|sim|none, MONITORING=1 for Prometheus, Alertmanager, Grafana), wait for health
	@test -f .env || { echo "no .env: copy .env.example to .env and fill in the secrets"; exit 1; }
	$(COMPOSE) $(PROFILES) up -d --build --wait

up-worker-box: ## an extra box on the shared Postgres (compose.worker-box.yaml: DATABASE_URL, BOX_ID in .env)
	@test -f .env || { echo "no .env: copy .env.example, set DATABASE_URL (the shared Postgres) and BOX_ID"; exit 1; }
	$(COMPOSE) -f compose.worker-box.yaml $(PROFILES) up -d --build --wait

down: ## stop the appliance (volumes are kept)
	$(COMPOSE_ALL) down

logs: ## follow every service's logs
	$(COMPOSE_ALL) logs -f --tail=200

ps:
	$(COMPOSE_ALL) ps

# rollback / roll-forward / stage write the choice into .env (scripts/envfile.py), so it survives
# `make up`, restarts and reboots; `make up` then recreates the containers whose settings changed.
rollback: ## local model off, cloud providers / rules answer: LOCAL_LLM_ENABLED=false GPU=none into .env, services recreated
	@test -f .env || { echo "no .env: copy .env.example to .env and fill in the secrets"; exit 1; }
	$(ENVFILE) rollback
	-$(COMPOSE_ALL) stop vllm-rocm vllm-cuda vllm-sim
	$(MAKE) --no-print-directory up GPU=none

roll-forward: ## the local model back: LOCAL_LLM_ENABLED=true and the GPU profile before the rollback into .env
	@test -f .env || { echo "no .env: copy .env.example to .env and fill in the secrets"; exit 1; }
	$(ENVFILE) roll-forward $(if $(filter command line,$(origin GPU)),--gpu $(GPU))
	$(MAKE) --no-print-directory up GPU=$$($(ENVFILE) get GPU rocm)

stage: ## STAGE=shadow|partial|primary into .env (ROLLOUT_STAGE), services recreated (docs/runbook.md)
	@test -f .env || { echo "no .env: copy .env.example to .env and fill in the secrets"; exit 1; }
	@test -n "$(STAGE)" || { echo "usage: make stage STAGE=shadow|partial|primary"; exit 1; }
	$(ENVFILE) stage $(STAGE)
	$(MAKE) --no-print-directory up

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
