# impush: the two commands of the quick start are `make demo` and `make test`.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build demo test lint fmt unit bench clean

all: build

build:
	$(CARGO) build --workspace --bins

## demo: render a sample event stream and show what each vendor would receive.
demo: build
	@echo "== impush render over deploy/local/demo-render.jsonl (built-in local-stack credentials)"
	./target/debug/impush render --format table --file deploy/local/demo-render.jsonl

## test: formatting, lints, then every test of the workspace.
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

fmt:
	$(CARGO) fmt --all

## bench: the criterion benchmark of decide + render + build per device.
bench:
	$(CARGO) bench -p impush-benches --bench core

clean:
	$(CARGO) clean
