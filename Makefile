# Launch Ready ops stack. `make up` runs the local environment; `make test` runs every check.
SHELL := /bin/bash
PYTHON := .venv/bin/python
STACK ?= staging

.PHONY: help setup setup-dev up demo status test lint typecheck test-python test-rules test-rules-mutants plan clone-env check-env smoke preview deploy secrets secrets-check replay-dlq bench bench-fresh clean

help:
	@echo "make up                      run the whole stack locally on the emulators"
	@echo "make demo                    run the founder's journey against 'make up'"
	@echo "make smoke [STACK=]          the demo's journey as a smoke test, each step timed (make up; deployed: refused in prod)"
	@echo "make status                  check every part of a running 'make up'"
	@echo "make test                    lint, type-check and run every test"
	@echo "make plan STACK=staging      offline plan under Pulumi mocks -> build/plan-<stack>.json"
	@echo "make clone-env FROM= TO=     derive Pulumi.<TO>.yaml from a stack: no secrets, new identities, offline proof"
	@echo "make check-env STACK= AGAINST=  offline proof: valid, no shared identifiers, same graph but the policy"
	@echo "make preview STACK=          pulumi preview --diff of the next deploy phase (needs the Pulumi CLI)"
	@echo "make deploy STACK=           pulumi up in first-deploy phases, idempotent (needs the Pulumi CLI)"
	@echo "make secrets STACK=          add Secret Manager versions (hidden input or environment)"
	@echo "make secrets-check STACK=    list declared secrets without an enabled version"
	@echo "make replay-dlq TOPIC= [PROJECT=]  republish a topic's dead-lettered messages"
	@echo "make bench                   measure local start-up and handler latency (medians)"
	@echo "make bench-fresh             time a fresh clone with empty package caches to a ready 'make up'"

# Fresh-machine set-up, idempotent and quiet when nothing changed (tools/local/bootstrap.sh).
# setup: what `make up` needs, .venv from requirements/local.lock, node_modules from package-lock.json,
# and a check of Java and gcloud's emulators (stops with the exact install command when one is missing).
# setup-dev: the same plus requirements/dev.lock (Pulumi SDKs, pytest, ruff) for the checks.
setup:
	@bash tools/local/bootstrap.sh

setup-dev:
	@bash tools/local/bootstrap.sh --dev

# A tool whose pins conflict with .venv's gets its own virtualenv from its own lock file:
#   target: setup-dev ; @$(call venv,.venv-tool,tool/requirements.lock) && .venv-tool/bin/python ...
venv = bash tools/local/bootstrap.sh --venv $(1) $(2)

up: setup
	@$(PYTHON) -m tools.local up

demo: setup
	@$(PYTHON) -m tools.local demo

# Without STACK: the running `make up`. STACK=<stack> [BASE_URL=] [ALLOW_PRODUCTION=1]: a deployed stack.
smoke: setup-dev
	@$(PYTHON) -m tools.ops.smoke $(if $(filter command line,$(origin STACK)),--stack $(STACK)) \
		$(if $(BASE_URL),--base-url $(BASE_URL)) $(if $(ALLOW_PRODUCTION),--allow-production)

status: setup
	@$(PYTHON) -m tools.local status

lint: setup-dev
	@echo "==> ruff"
	@.venv/bin/ruff check .

typecheck: setup-dev
	@echo "==> pyright"
	@node_modules/.bin/pyright

# Coverage is of the deployed code (functions_src), from the tests that run it in-process.
test-python: setup-dev
	@echo "==> pytest (unit under Pulumi mocks, functions on the emulators, end to end on the local stack)"
	@$(PYTHON) -m pytest --cov=functions_src --cov-report=term-missing:skip-covered --cov-fail-under=85

test-rules: setup-dev
	@echo "==> Firestore rules on the emulator"
	@bash tests/rules/run.sh

test: lint typecheck test-python test-rules

# Proves the rules tests can fail: each of ~25 weakened copies of firestore.rules must fail a test (~12 min).
test-rules-mutants: setup-dev
	@bash tests/rules/with-emulator.sh node tests/rules/mutation_check.mjs

plan: setup-dev
	@$(PYTHON) -m tools.offline.plan --stack $(STACK)

# [PROJECT=<id>] [HOST_PREFIX=<label>] [ENVIRONMENT=staging|preview|production]
# [BILLING_ACCOUNT= FOLDER=|ORG=] [FORCE=1] [ARGS="--set launchready:<key>=<value> ..."]
clone-env: setup-dev
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make clone-env FROM=<stack> TO=<new stack> [PROJECT=<id>] [HOST_PREFIX=<label>] [FORCE=1]"; exit 2; }
	@$(PYTHON) -m tools.offline.clone --from $(FROM) --to $(TO) $(if $(PROJECT),--project $(PROJECT)) \
		$(if $(HOST_PREFIX),--host-prefix $(HOST_PREFIX)) $(if $(ENVIRONMENT),--environment $(ENVIRONMENT)) \
		$(if $(BILLING_ACCOUNT),--billing-account $(BILLING_ACCOUNT)) $(if $(FOLDER),--folder-id $(FOLDER)) \
		$(if $(ORG),--org-id $(ORG)) $(if $(FORCE),--force) $(ARGS)

check-env: setup-dev
	@test -n "$(AGAINST)" || { echo "usage: make check-env STACK=<new stack> AGAINST=<stack it was cloned from>"; exit 2; }
	@$(PYTHON) -m tools.offline.clone_check --stack $(STACK) --against $(AGAINST)

preview deploy: setup-dev
	@command -v pulumi >/dev/null || { echo "The Pulumi CLI is not installed: see https://www.pulumi.com/docs/install/ (then 'pulumi login')."; exit 1; }
	@$(PYTHON) -m tools.ops.deploy --stack $(STACK) $(if $(filter preview,$@),--preview)

secrets: setup-dev
	@$(PYTHON) -m tools.ops.secrets_cli add --stack $(STACK)

secrets-check: setup-dev
	@$(PYTHON) -m tools.ops.secrets_cli check --stack $(STACK)

# In the cloud: PROJECT=<project id> (gcloud application-default credentials); without PROJECT it
# replays on the running `make up` (emulator host and project from .local/endpoints.json).
replay-dlq: setup
	@test -n "$(TOPIC)" || { echo "usage: make replay-dlq TOPIC=<topic> [PROJECT=<project id>] [ARGS=--dry-run]"; exit 2; }
	@$(PYTHON) -m tools.ops.replay_dlq --topic $(TOPIC) $(if $(PROJECT),--project $(PROJECT),--local) $(ARGS)

bench: setup
	@$(PYTHON) -m tools.bench.startup --runs 3
	@$(PYTHON) -m tools.bench.pipeline --start

# A new user's first `make up`: fresh clone of HEAD, empty pip and npm caches, timed to ready (~1 min a run).
bench-fresh: setup
	@$(PYTHON) -m tools.bench.fresh_start --runs 3

clean:
	rm -rf build .local .pytest_cache .ruff_cache .coverage htmlcov
