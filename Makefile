# One entry point for building, linting and testing berth. CI runs `make test` via .ci/run.
CARGO ?= cargo
SHELL := /bin/bash
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build release lint fmt test test-unit test-e2e seed overlay-demo ci clean

all: build

deps:
	bash scripts/deps.sh

# berth, and the shim podman runs as `netavark` (shim/: its own workspace, no C library).
SHIM = --manifest-path shim/Cargo.toml --target-dir target/shim

build:
	$(CARGO) build --locked --bins
	$(CARGO) build --locked --release $(SHIM)

release:
	bash scripts/release.sh >/dev/null

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path shim/Cargo.toml

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path shim/Cargo.toml -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked $(SHIM) --lib --bins --tests -- -D warnings

# The seed scenario, in a throwaway namespace on the embedded default store.
seed: deps release
	bash scripts/in-sandbox.sh bash scripts/seed.sh

# Two overlay hosts with one etcd on this machine, in a throwaway namespace.
overlay-demo: deps release
	PATH="$(CURDIR)/target/dist:$$PATH" bash scripts/in-sandbox.sh bash scripts/overlay-demo.sh

# Everything CI checks: lint, unit and property tests, black-box tests in namespaces.
test: deps lint build
	set -o pipefail; { $(CARGO) test --locked $(SHIM) && \
	  $(CARGO) test --locked --workspace --no-fail-fast -- --test-threads=2; } 2>&1 \
	  | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' target/test.log

clean:
	$(CARGO) clean
