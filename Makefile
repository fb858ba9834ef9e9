# impush: the two commands of the quick start are `make demo` and `make test`.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build services demo render-demo test lint fmt unit bench soak release-bins scale-bench clean check-deploy faults failover fuzz audit

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
test: lint check-deploy services build unit

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

## check-deploy: the deployment files parse, promtool accepts the rules and the dashboard's
## queries, and the alert unit tests pass (installs promtool and PyYAML if absent).
check-deploy:
	./scripts/check-deploy.sh

## faults: the fault suite in full (10,000 notifications a scenario), one scenario at a
## time; the audit table goes to target/faults-report.md (docs/faults.md).
FAULTS_REPORT ?= target/faults-report.md
faults: services build
	rm -f $(FAULTS_REPORT) $(FAULTS_REPORT).notes
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		run="$(CARGO) nextest run --no-fail-fast"; else run="$(CARGO) test --no-fail-fast"; fi; \
	IMPUSH_FAULTS=full IMPUSH_TEST_LOG=error IMPUSH_FAULTS_REPORT=$(abspath $(FAULTS_REPORT)) \
		$$run -p impush-tests --test faults; status=$$?; \
	cat $(FAULTS_REPORT) $(FAULTS_REPORT).notes 2>/dev/null; exit $$status

## failover: the failover suite in full (10,000 notifications a scenario): a RabbitMQ node
## killed and cut off, a Redis primary killed, both at once, each on private three-node
## clusters; the audit table goes to target/failover-report.md (docs/faults.md). `make test`
## runs only the short form of the Redis scenario.
FAILOVER_REPORT ?= target/failover-report.md
failover: services build
	rm -f $(FAILOVER_REPORT) $(FAILOVER_REPORT).notes
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		run="$(CARGO) nextest run --no-fail-fast --run-ignored all"; \
	else run="$(CARGO) test --no-fail-fast"; extra="--include-ignored"; fi; \
	IMPUSH_FAILOVER=full IMPUSH_TEST_LOG=error IMPUSH_FAULTS_REPORT=$(abspath $(FAILOVER_REPORT)) \
		IMPUSH_FAILOVER_NOTES=$(abspath $(FAILOVER_REPORT)).notes \
		$$run -p impush-tests --test failover -- $$extra; status=$$?; \
	cat $(FAILOVER_REPORT) $(FAILOVER_REPORT).notes 2>/dev/null; exit $$status

## bench: the criterion benchmark of decide + render + build per device, the HTTP client per
## request (reqwest against hyper's HTTP/2 connection, benches/http_client.rs), then the fleet end
## to end against the bare broker relay (scripts/bench.sh; results in benches/results/).
bench: services release-bins
	$(CARGO) bench -p impush-benches --bench core -- --warm-up-time 1 --measurement-time 3
	$(CARGO) bench -p impush-benches --bench http_client
	./scripts/bench.sh

## soak: ten minutes at half the maximum rate, workers' memory and descriptors sampled
## (scripts/soak.sh; docs/soak.csv, docs/soak.png). Not part of CI.
soak: services release-bins
	./scripts/soak.sh

release-bins:
	$(CARGO) build --release -p impush-sim -p impush-ingest -p impush-router -p impush-sender -p impush-loadgen

## scale-bench: throughput with 1, 2, 4 and 8 routers + senders on one queue, as ratios to one,
## against a vendor round trip of 40 ms (release binaries on the local RabbitMQ and Redis;
## scripts/scale-bench.sh lists the settings, IMPUSH_BENCH_REDIS_CLUSTER=1 for the cluster).
scale-bench: services release-bins
	./scripts/scale-bench.sh

## fuzz: every fuzz target for FUZZ_SECONDS each (cargo-fuzz; nightly features through
## RUSTC_BOOTSTRAP on the stable toolchain). Crashes land in fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = event_decode route_message vendor_payloads
fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$target; \
		echo "fuzz: $$target for $(FUZZ_SECONDS) s"; \
		(cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target work/$$target corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1) || exit 1; \
	done

## audit: licenses, duplicate versions and sources with cargo-deny; advisories too when the
## RustSec database can be fetched (it lives on GitHub).
audit:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny
	$(CARGO) deny check licenses bans sources
	@if timeout 120 $(CARGO) deny fetch db >/dev/null 2>&1; then \
		$(CARGO) deny check advisories; \
	else \
		echo "audit: RustSec advisory database unreachable; advisories not checked"; \
	fi

clean:
	$(CARGO) clean
