# Totem: virtual-synchrony group communication in Go.
GO        ?= go
SEEDS     ?= 300
SIMSEEDS  ?= 20000
FUZZTIME  ?= 60s
SHORTFUZZ ?= 2s

CHAOSTIME ?= 30m

.PHONY: all build test sim fuzz fuzz-short chaos chaos-short demo bench memload compare vet clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o bin/ ./...

## vet: static checks
vet:
	$(GO) vet ./...

## test: unit and network tests, a few hundred simulator seeds, a short fuzz
## pass and a short chaos soak
test: vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) run ./tools/totemsim --seeds $(SEEDS)
	$(MAKE) fuzz-short
	$(MAKE) chaos-short

## sim: many thousands of simulator seeds
sim:
	$(GO) run ./tools/totemsim --seeds $(SIMSEEDS)

## fuzz: every go fuzz target for FUZZTIME each
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) sh .ci/fuzz.sh

fuzz-short:
	@FUZZTIME=$(SHORTFUZZ) GO=$(GO) sh .ci/fuzz.sh

## chaos: the chaos soak, seed after seed, for CHAOSTIME (default 30m)
chaos: build
	bin/chaos --repeat-for $(CHAOSTIME) --seed 1

## chaos-short: 30 s of faults on one seed (namespaces as root, else
## --loopback with daemon and client faults only)
chaos-short: build
	@if [ "$$(id -u)" = 0 ] && command -v ip >/dev/null; then \
		bin/chaos --seed 1 --duration 30s --prefix chs; \
	else \
		echo "chaos-short: not root or no iproute2: loopback soak (no network faults)"; \
		bin/chaos --seed 1 --duration 30s --loopback; \
	fi

## demo: a local 3-node cluster doing real work, then removed
demo:
	sh tools/cluster/demo.sh

## bench: Go benchmarks of the engine and the network layer
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./totem/ ./rrp/

## memload: totemd's memory idle, with 1,000 groups, 1 MiB messages and a
## client that never reads (3 daemons on 127.0.0.1; figures in bench/memload/RESULTS.md)
memload:
	$(GO) run ./bench/memload

## compare: Corosync and totemd side by side on 3 namespaces, crypto off
## and on (root; apt-installs corosync; about 20 min; manual, not in CI)
COMPAREOUT ?= /tmp/totem-compare
compare: build
	bench/compare/compare.sh $(COMPAREOUT)

clean:
	rm -rf bin/
