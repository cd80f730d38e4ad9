# Totem: virtual-synchrony group communication in Go.
GO        ?= go
SEEDS     ?= 300
SIMSEEDS  ?= 20000
FUZZTIME  ?= 60s
SHORTFUZZ ?= 2s

CHAOSTIME ?= 30m

.PHONY: all build test sim fuzz fuzz-short chaos chaos-short demo bench vet clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o bin/ ./...

## vet: static checks
vet:
	$(GO) vet ./...

## test: unit and network tests, a few hundred simulator seeds, a short
## chaos soak (root: namespaces; else loopback), a short fuzz pass
test: vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) run ./tools/totemsim --seeds $(SEEDS)
	$(MAKE) chaos-short
	$(MAKE) fuzz-short

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

# The short soak tolerates (prints and counts, does not fail on) one known
# open issue: CPG-level safe delivery across a partition (see the issues).
chaos-short: build
	bin/chaos --seed 1 --duration 60s --tolerate safe

## demo: a local 3-node cluster doing real work, then removed
demo:
	sh tools/cluster/demo.sh

## bench: Go benchmarks of the engine and the network layer
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./totem/ ./rrp/

clean:
	rm -rf bin/
