# Lifeboat's entry points. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export TF_CLI_CONFIG_FILE := $(CURDIR)/.state/terraformrc

# The Lambda functions (crate and binary names are what cargo lambda builds).
FUNCTIONS := rds-snapshot ebs-snapshot ami-backup pg-dump prune freshness

.PHONY: setup build up down test lint demo

## setup: install everything the project needs (idempotent)
setup:
	@scripts/setup.sh

## build: release Lambda zips in target/lambda/<function>/bootstrap.zip
build: setup
	cargo lambda build --release --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

## up / down: start / stop the local stand-ins (moto server, PostgreSQL) on 127.0.0.1
up: setup
	@scripts/stack.sh up
down:
	@scripts/stack.sh down

## lint: formatting and clippy, warnings are errors
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## test: every check (unit, SDK-level mocks, emulator integration)
test: setup lint
	cargo test --workspace

## demo: a full backup cycle against the local stand-ins, shown step by step
demo: setup
	@scripts/demo.sh
