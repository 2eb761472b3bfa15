# alumet-agent: power and energy of Grid'5000 nodes from Kwollect.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell v=$$(git describe --tags --always --dirty 2>/dev/null) && echo "$${v#v}" || echo dev)
DATE     := $(shell date -u +%Y-%m-%d)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli.Version=$(VERSION) -X github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli.BuildDate=$(DATE) -X github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
DIST     ?= dist
DIST_PLATFORMS ?= linux/amd64 linux/arm64
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
FUZZTIME ?= 10s

.PHONY: all build dist demo energy-demo compare-demo test test-short lint fuzz bench install clean

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

## compare-demo: one node's energy by every source Kwollect has (wattmetre, BMC, node_exporter's RAPL) side by side
compare-demo: build
	./scripts/compare-demo.sh

# NORACE_TESTS: heavy single-threaded work (a 100 MB element, 720,000 rows,
# the decoder's template table, PNG rendering) that the race detector slows
# about 6 times, while smaller cases cover the same code paths under -race
# (internal/racetest.WithoutRace in each says which). make test skips them in its
# -race pass and runs them without -race, with TestWriteBufferNoAllocs
# (never built with -race: the detector allocates).
NORACE_TESTS := TestSessionHighFrequency|TestDecodeHugeElementMemory|TestTemplatesTable|TestRenderPNG
NORACE_PKGS  := ./kwollect/ ./internal/powerplot/ ./plugins/csv/

# The -race pass lists the longest packages to run first (go test builds and
# runs packages in the order given): test/e2e, kwollect, the emulator,
# kwollect-input. A running test binary holds one of go test's -p slots, and
# test/e2e mostly waits (real-time lags and outages in child processes), so
# -p is two more than the CPUs: the other packages keep building meanwhile.
TEST_FIRST := ./test/e2e/ ./kwollect/ ./kwollect/emulator/ ./plugins/kwollectinput/
TEST_P := $(shell echo $$(( $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2) + 2 )))

## test: the whole suite (unit, golden, end to end through the binaries), with the race detector
## (go vet has run all its checks: go test's own vet subset is off)
test:
	$(GO) vet ./...
	ALUMET_NORACE_TESTS='$(NORACE_TESTS)' $(GO) test -race -vet=off -p $(TEST_P) -count=1 -timeout 15m $(TEST_FIRST) ./...
	$(GO) test -vet=off -count=1 -timeout 5m -run '^($(NORACE_TESTS)|TestWriteBufferNoAllocs)$$' $(NORACE_PKGS)

## test-short: a quick loop: no race detector, -short skips the slowest tests (see README)
test-short:
	$(GO) test -short -p $(TEST_P) -count=1 $(TEST_FIRST) ./...

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
