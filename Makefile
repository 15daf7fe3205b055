# webconf: `make run` starts the server with the sample config; `make test`
# runs the whole suite. `make help` lists every target.
GO        ?= go
GOFLAGS   ?=
BIN       := bin
CONFIG    ?= conf/webconfd.conf
BENCHTIME ?= 1s
FUZZTIME  ?= 20s
# Minimising each new corpus entry defaults to 60 s in go test; the socket
# and state-machine targets find many, and would spend the run minimising.
FUZZMINTIME ?= 5s
# bench-peer and bench-sipp: the peer (e.g. SEMS from ../shared/tools/sems-peer)
# and each load's measurement window; BENCH_PEER_FLAGS adds benchpeer flags
# (e.g. -big 2000, -loads confload,rpc, -json table.json).
PEER_SIP    ?=
PEER_PID    ?=
PEER_XMLRPC ?=
BENCH_PEER_DURATION ?= 30s
BENCH_PEER_FLAGS    ?=
PEER_ARGS = $(if $(PEER_SIP),-peer-sip $(PEER_SIP) -peer-pid $(PEER_PID)) $(if $(PEER_XMLRPC),-peer-xmlrpc $(PEER_XMLRPC))

.DEFAULT_GOAL := help

.PHONY: help build run test bench bench-peer bench-sipp vet lint check fuzz soak clean

help: ## list the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build webconfd (and the other commands) into bin/
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

run: build ## build and start the server with the sample config
	./$(BIN)/webconfd -config $(CONFIG)

test: vet ## the whole test suite, with the race detector
	$(GO) test $(GOFLAGS) -race -count=1 -timeout 25m ./...

bench: build ## micro-benchmarks (ns/op, allocs/op), then a short confload run against a fresh server
	$(GO) test $(GOFLAGS) -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./dsp/... ./sipapp/... ./rpc/... ./test/control/
	@mkdir -p $(BIN)/bench && printf '[server]\nsip_listen=127.0.0.1:0\nrtp_low_port=50000\nrtp_high_port=51998\ndata_dir=$(BIN)/bench/data\n[webconference]\ndirect_room_re=000777.*\ndirect_room_strip=6\n[xmlrpc]\nrun_server=no\n[http]\nlisten=127.0.0.1:0\n[limits]\ninvite_rate=0\n' > $(BIN)/bench/bench.conf
	./$(BIN)/confload -server ./$(BIN)/webconfd -config $(BIN)/bench/bench.conf -calls 200 -rooms 20 -talkers 3 \
		-rate 100 -duration 20s -ruri-pattern '000777%d' -max-loss 0.1 -max-failed-calls=0

bench-peer: build ## the same confload loads (500 callers, both socket modes) and XML-RPC loop against a fresh webconfd, then the peer (PEER_SIP=127.0.0.1:5070 PEER_PID=... PEER_XMLRPC=http://127.0.0.1:8091/); table with peer/webconf
	./$(BIN)/benchpeer -suite confload $(PEER_ARGS) -duration $(BENCH_PEER_DURATION) $(BENCH_PEER_FLAGS)

bench-sipp: build ## SIPp side by side (500 and 1,000 callers in rooms of 10, G.711 pcap): server CPU per participant-second, datagrams sent; same PEER_* as bench-peer
	./$(BIN)/benchpeer -suite sipp $(PEER_ARGS) -duration $(BENCH_PEER_DURATION) $(BENCH_PEER_FLAGS)

vet: ## go vet
	$(GO) vet ./...

lint: vet ## go vet and staticcheck (built from the module proxy)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

check: lint test ## everything CI checks

fuzz: ## run each fuzz target for FUZZTIME, one after the other
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test $(GOFLAGS) -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg || exit 1; \
	  done; \
	done

soak: ## the long soak: 500 participants in 50 rooms, 5 joins and leaves a second, 10 minutes (SOAK_DURATION=3m for a shorter one)
	SOAK_DURATION=$${SOAK_DURATION:-10m} SOAK_PARTICIPANTS=500 SOAK_ROOMS=50 SOAK_CHURN=5 SOAK_HEAP_PER_CALL=0 \
		$(GO) test $(GOFLAGS) -count=1 -timeout 30m -v -run TestSoak ./test/soak/

clean: ## remove build output
	rm -rf $(BIN)
