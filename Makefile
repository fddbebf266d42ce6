# Every target installs what it needs first: a fresh clone with Node 20 runs `make demo`
# or `make test` and nothing else.

SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

PNPM_STAMP := node_modules/.modules.yaml
SOURCES := $(shell find packages apps examples proto -name '*.ts' -o -name '*.proto' -o -name '*.css' 2>/dev/null | grep -v node_modules)
# examples/<name>/main.ts (rest-invocation: run.sh), each run by `make example-<name>`.
EXAMPLES := simple async typed local multi-service concurrent-workflows retry-failures pause-cancel \
            ticket-cart delayed-execution approval-workflow rest-invocation direct-grpc-call query-api
EXAMPLE_TARGETS := $(addprefix example-,$(EXAMPLES))
BINS := bin/processor bin/hello-service bin/client bin/inspect bin/ticket-service

.PHONY: install build typecheck proto test bench bench-index chaos demo clean \
        docker-up docker-down cluster-up cluster-down nats-server chromium \
        run-service run-ticket-service run-processor run-client inspect \
        examples $(EXAMPLE_TARGETS)

install: $(PNPM_STAMP)

$(PNPM_STAMP): package.json pnpm-lock.yaml $(wildcard packages/*/package.json apps/*/package.json examples/package.json)
	@scripts/ensure-pnpm.sh
	@pnpm install --frozen-lockfile --reporter=silent
	@touch $@

build: $(BINS)

$(BINS) &: $(PNPM_STAMP) $(SOURCES) scripts/build.mjs
	@node scripts/build.mjs

typecheck: install
	@tsc -p tsconfig.json --noEmit
	@tsc -p packages/console/tsconfig.json --noEmit

proto: install
	@buf generate

nats-server:
	@scripts/install-nats-server.sh >/dev/null

# Headless Chromium for the console's browser tests (test/e2e/console.test.ts).
chromium:
	@scripts/install-chromium.sh >/dev/null

test: build nats-server chromium typecheck
	@vitest run

bench: build nats-server
	@tsx scripts/bench.ts

# List pages and stats over an index of BENCH_INDEX_N invocations (default 1,000,000).
bench-index: install nats-server
	@tsx scripts/bench-index.ts

chaos: build nats-server
	@tsx scripts/chaos.ts

demo: build nats-server
	@scripts/demo.sh

docker-up:
	@scripts/docker-up.sh

docker-down:
	@scripts/docker-down.sh

cluster-up: nats-server
	@scripts/cluster.sh up

cluster-down:
	@scripts/cluster.sh down

run-service: build
	@echo "Running HelloService..."
	@./bin/hello-service

run-ticket-service: build
	@echo "Running TicketService..."
	@./bin/ticket-service

run-processor: build
	@echo "Running processor..."
	@./bin/processor $(ARGS)

run-client: build
	@echo "Running client..."
	@./bin/client $(ARGS)

inspect: build
	@./bin/inspect $(ID)

# Each example runs against the dev cluster, the services and a processor started in other
# terminals (examples/README.md); `example-local` needs nothing running.
examples:
	@echo "Examples (see examples/README.md; all but example-local need make cluster-up,"
	@echo "run-service, run-ticket-service and run-processor running):"
	@for e in $(EXAMPLES); do \
	  f=examples/$$e/main.ts; [ -f $$f ] || f=examples/$$e/run.sh; \
	  printf '  make %-30s %s\n' "example-$$e" "$$(sed -n "s/^\(#\| \*\) $$e: //p" $$f | head -1)"; \
	done

example-rest-invocation: install
	@examples/rest-invocation/run.sh

$(filter-out example-rest-invocation,$(EXAMPLE_TARGETS)): example-%: install
	@tsx examples/$*/main.ts $(ARGS)

clean:
	@rm -rf bin
