# Totem: virtual-synchrony group communication in Go.
GO       ?= go
SEEDS    ?= 300
SIMSEEDS ?= 20000
FUZZTIME ?= 5s

.PHONY: all build test test-short sim fuzz chaos demo bench vet clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o bin/ ./...

## vet: static checks
vet:
	$(GO) vet ./...

## test: unit tests, a few hundred simulator seeds, network tests (as root)
test: vet
	$(GO) test -count=1 ./...
	$(GO) run ./tools/totemsim --seeds $(SEEDS)

## sim: many thousands of simulator seeds
sim:
	$(GO) run ./tools/totemsim --seeds $(SIMSEEDS)

## bench: Go benchmarks of the engine and codec
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./totem/ ./rrp/

clean:
	rm -rf bin/
