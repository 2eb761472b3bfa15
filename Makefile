# alumet-agent: power and energy of Grid'5000 nodes from Kwollect.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell v=$$(git describe --tags --always --dirty 2>/dev/null) && echo "$${v#v}" || echo dev)
DATE     := $(shell date -u +%Y-%m-%d)
LDFLAGS  := -X github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli.Version=$(VERSION) -X github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli.BuildDate=$(DATE)
STATICCHECK_VERSION := v0.8.2
DIST     ?= dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
FUZZTIME ?= 10s

.PHONY: all build dist demo energy-demo test test-short lint fuzz bench install clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

install:
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/...

## dist: static stripped binaries (CGO_ENABLED=0, -trimpath, -s -w) in $(DIST)/alumet-agent_<version>_<os>_<arch>.tar.gz
## for each of DIST_PLATFORMS, with README.md (and LICENSE if any), and $(DIST)/SHA256SUMS (cd dist && sha256sum -c SHA256SUMS)
dist:
	rm -rf $(DIST)
	$(GO) run ./scripts/mkdist -go "$(GO)" -o $(DIST) -version "$(VERSION)" -ldflags "$(LDFLAGS)" -mtime $(SOURCE_DATE_EPOCH) $(DIST_PLATFORMS)
	@cd $(DIST) && ls -l *.tar.gz && cat SHA256SUMS

## demo: build, start the emulator on loopback, measure a command through the seed's command line, summarise the CSV
demo: build
	./scripts/demo.sh

## energy-demo: a command with phases, run 3 times against the emulator: energy table, JSON, plot, CSV
energy-demo: build
	./scripts/energy-demo.sh

## test: the whole suite (unit, golden, end to end through the binaries), with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: every Go benchmark, then bench/compare.sh (BENCH_SIZE=small|reference|1GB, default small; needs jq and GNU time)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./bench/compare.sh $${BENCH_SIZE:-small}

## bench-smoke: run every benchmark once (CI: they still compile and work)
.PHONY: bench-smoke
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime=1x ./...

clean:
	rm -rf $(BIN) demo-out $(DIST)
