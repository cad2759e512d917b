# Switchboard: the two commands a fresh machine needs are `make local` and `make test`.
# Everything installs into the project: .venv/ (Python), node_modules/ (CDK CLI), .tools/ (checkov).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime's Python (infra/layers.py LAMBDA_PYTHON_VERSION; a test keeps them equal). The
# Lambda code's tests run a second time on it, in .venv-lambda with the same pinned requirements.
LAMBDA_PYTHON_VERSION := 3.13
LAMBDA_VENV := .venv-lambda
LAMBDA_BIN := $(LAMBDA_VENV)/bin
PORT ?= 8080
# `make local` ports: PORT the gateway, AGENT_PORT the AppConfig agent emulator, AWS_PORT the
# embedded AWS endpoint. 0 picks a free port (printed at start-up); a busy one is refused, naming
# the variable to set.
AGENT_PORT ?= 2772
AWS_PORT ?= 0
CDK := node_modules/.bin/cdk

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE :=
# Tests and synth never talk to AWS.
export AWS_DEFAULT_REGION ?= us-east-1
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: help bootstrap setup local test lint typecheck pytest pytest-lambda-runtime synth cfn-lint checkov openapi openapi-check deploy bench clean

help:
	@echo "make local   - set up, then serve the gateway on http://127.0.0.1:$(PORT) (AWS emulated, no account;"
	@echo "               PORT, AGENT_PORT, AWS_PORT move its ports, 0 picks free ones)"
	@echo "make test    - set up, then ruff, mypy, pytest, cdk synth + cdk-nag, cfn-lint, checkov"
	@echo "make synth   - CloudFormation into cdk.out/"
	@echo "make bootstrap - cdk bootstrap, once per account and region (needs AWS credentials)"
	@echo "make deploy  - cdk deploy (needs AWS credentials; bootstrap first)"
	@echo "make openapi - regenerate docs/openapi.json"

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

# checkov pins boto3, packaging and networkx versions the project cannot share: its own virtualenv.
CHECKOV_VENV := .tools/checkov
$(CHECKOV_VENV)/bin/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# python3.13 on PATH, else pyenv's 3.13.x (the machines that run `make test` have it); a clear
# error otherwise: the Lambda code is never shipped untested on its runtime's Python.
$(LAMBDA_BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@py=$$(command -v python$(LAMBDA_PYTHON_VERSION) 2>/dev/null && python$(LAMBDA_PYTHON_VERSION) -c '' 2>/dev/null) || \
	py=$$(ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/$(LAMBDA_PYTHON_VERSION).*/bin/python$(LAMBDA_PYTHON_VERSION) 2>/dev/null | sort -V | tail -1); \
	if [ -z "$$py" ] || ! "$$py" -c '' 2>/dev/null; then \
		echo "make: Python $(LAMBDA_PYTHON_VERSION) (the Lambda runtime) not found; install it (e.g. pyenv install $(LAMBDA_PYTHON_VERSION))"; exit 1; fi; \
	echo "Lambda-runtime tests on $$py"; \
	rm -rf $(LAMBDA_VENV) && "$$py" -m venv $(LAMBDA_VENV)
	$(LAMBDA_BIN)/python -m pip install -q --upgrade pip
	$(LAMBDA_BIN)/python -m pip install -q -r requirements-dev.txt
	$(LAMBDA_BIN)/python -m pip install -q --no-deps -e .
	@touch $@

setup: $(BIN)/.installed node_modules/.installed $(CHECKOV_VENV)/bin/.installed $(LAMBDA_BIN)/.installed

local: $(BIN)/.installed
	@$(BIN)/python -m switchboard_local.stack --port $(PORT) --agent-port $(AGENT_PORT) --aws-port $(AWS_PORT)

test: setup
	$(MAKE) --no-print-directory lint typecheck
	@# Both test runs at once (two cores): the whole suite on 3.11, the Lambda code's on its runtime.
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest pytest-lambda-runtime
	$(MAKE) --no-print-directory synth cfn-lint checkov

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy app.py infra lambdas local bench

# pytest exits 5 when it collects nothing: that is a failure of the suite's wiring, say so.
pytest:
	@$(BIN)/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# The Lambda code's own tests (unit, integration) on the Lambda runtime's Python minor version.
pytest-lambda-runtime:
	@# The IAM check (tests/iam) judges the template, which does not depend on the Python: once is enough.
	@SWITCHBOARD_EXPECT_PYTHON=$(LAMBDA_PYTHON_VERSION) $(LAMBDA_BIN)/pytest -q -p no:cacheprovider -p no:switchboard-iam \
		tests/unit tests/integration tests/infra/test_deployed_as_tested.py::test_this_run_uses_the_python_it_was_asked_for; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# cdk-nag runs as a validation plugin inside synthesis: any unacknowledged finding fails here.
synth: node_modules/.installed $(BIN)/.installed
	rm -rf cdk.out
	$(CDK) synth --no-notices --quiet --output cdk.out

cfn-lint:
	$(BIN)/cfn-lint cdk.out/*.template.json

# Fails on any failed check. A check that does not apply is skipped on its resource, with the reason,
# in the template's metadata (infra/checkov.py); never with --skip-check or --soft-fail here.
checkov: $(CHECKOV_VENV)/bin/.installed
	$(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download \
		-f cdk.out/*.template.json

openapi: $(BIN)/.installed
	$(BIN)/python -m switchboard_local.openapi docs/openapi.json

# Once per account and region: CDK's bootstrap stack (assets bucket, deployment roles).
bootstrap: node_modules/.installed $(BIN)/.installed
	$(CDK) bootstrap --no-notices

deploy: setup
	$(CDK) deploy --no-notices --all

# The cold starts run on the Lambda runtime's Python (.venv-lambda), as Lambda runs the asset's bytecode.
bench: $(BIN)/.installed $(LAMBDA_BIN)/.installed
	@# LiteLLM (the anchor) lives in its own virtualenv, pinned with hashes; never a project dependency.
	@if [ ! -f bench/.venv-litellm/.installed ] || [ bench/requirements-litellm.txt -nt bench/.venv-litellm/.installed ]; then \
		rm -rf bench/.venv-litellm && $(PYTHON) -m venv bench/.venv-litellm && \
		bench/.venv-litellm/bin/python -m pip install -q --require-hashes -r bench/requirements-litellm.txt && \
		touch bench/.venv-litellm/.installed; \
	fi
	@# A fresh synth: the cold starts import the Lambda asset CDK staged, the zips are measured from it.
	$(MAKE) --no-print-directory synth
	LITELLM_LOCAL_MODEL_COST_MAP=True $(BIN)/python bench/run.py

clean:
	rm -rf cdk.out build .mypy_cache .ruff_cache .pytest_cache .switchboard
