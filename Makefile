# Every target installs what it needs first: a fresh clone with Node 20 runs `make demo`
# or `make test` and nothing else.

SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

PNPM_STAMP := node_modules/.modules.yaml
SOURCES := $(shell find packages apps examples proto -name '*.ts' -o -name '*.proto' 2>/dev/null | grep -v node_modules)
BINS := bin/processor bin/hello-service bin/client bin/inspect bin/ticket-service

.PHONY: install build typecheck proto test bench demo clean \
        docker-up docker-down cluster-up cluster-down nats-server \
        run-service run-ticket-service run-processor run-client inspect

install: $(PNPM_STAMP)

$(PNPM_STAMP): package.json pnpm-lock.yaml $(wildcard packages/*/package.json apps/*/package.json)
	@scripts/ensure-pnpm.sh
	@pnpm install --frozen-lockfile --reporter=silent
	@touch $@

build: $(BINS)

$(BINS) &: $(PNPM_STAMP) $(SOURCES) scripts/build.mjs
	@node scripts/build.mjs

typecheck: install
	@tsc -p tsconfig.json --noEmit

proto: install
	@buf generate

nats-server:
	@scripts/install-nats-server.sh >/dev/null

test: build nats-server typecheck
	@vitest run

bench: build nats-server
	@tsx scripts/bench.ts

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

clean:
	@rm -rf bin
