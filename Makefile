# webconf: `make run` starts the server with the sample config; `make test`
# runs the whole suite. `make help` lists every target.
GO        ?= go
GOFLAGS   ?=
BIN       := bin
CONFIG    ?= conf/webconfd.conf
BENCHTIME ?= 1s
FUZZTIME  ?= 20s

.DEFAULT_GOAL := help

.PHONY: help build run test bench vet lint check fuzz clean

help: ## list the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build webconfd (and the other commands) into bin/
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

run: build ## build and start the server with the sample config
	./$(BIN)/webconfd -config $(CONFIG)

test: vet ## the whole test suite, with the race detector
	$(GO) test $(GOFLAGS) -race -count=1 -timeout 25m ./...

bench: ## micro-benchmarks (ns/op, allocs/op)
	$(GO) test $(GOFLAGS) -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./dsp/... ./sipapp/...

vet: ## go vet
	$(GO) vet ./...

lint: vet ## go vet and staticcheck (built from the module proxy)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

check: lint test ## everything CI checks

fuzz: ## run each fuzz target for FUZZTIME
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: ## remove build output
	rm -rf $(BIN)
