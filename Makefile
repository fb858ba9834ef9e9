# impush: the two commands of the quick start are `make demo` and `make test`.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build services demo render-demo test lint fmt unit bench scale-bench clean

all: build

build:
	$(CARGO) build --workspace --bins

## services: RabbitMQ and Redis on loopback (installed from Debian's packages if absent).
services:
	./scripts/ensure-services.sh

## demo: the whole fleet on the local stack, a sample conversation, and what each vendor got.
demo: build services
	./scripts/demo.sh

## render-demo: the template preview over a sample stream, no services needed.
render-demo: build
	./target/debug/impush render --format table --file deploy/local/demo-render.jsonl

## test: formatting, lints, then every test of the workspace (the fleet tests run the
## workers as processes against the real RabbitMQ and Redis).
test: lint services build unit

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

## scale-bench: throughput with 1, 2 and 4 routers + senders on one queue, as ratios to one
## (the fleet on the local RabbitMQ and Redis; IMPUSH_BENCH_REDIS_CLUSTER=1 for the cluster).
scale-bench: build services
	./scripts/scale-bench.sh

clean:
	$(CARGO) clean
