# voiced — make help lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO         ?= go
ADDR       ?= 127.0.0.1:8080
SIP_ADDR   ?= 127.0.0.1:5060
CACHE      ?= $(or $(VOICED_CACHE),$(HOME)/.cache/voiced)
export VOICED_CACHE := $(CACHE)
BIN        := bin/voiced
# Tools make check installs through the Go module proxy, pinned, into the cache.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(CACHE)/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS    := -X main.version=$(VERSION)

# Debian packages the build and the tests need.
APT_PACKAGES := gcc pkg-config flite flite1-dev libpocketsphinx-dev libsphinxbase-dev \
	pocketsphinx-en-us pocketsphinx-testdata chromium sox curl redis-server libspeexdsp-dev libopus-dev libopusfile-dev libsoxr-dev lame \
	sip-tester baresip-core kamailio ffmpeg

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install missing Debian packages (needs root or sudo)
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

.PHONY: models
models: ## fetch and verify the Silero VAD model and ONNX Runtime into $(CACHE)
	@bash scripts/fetch-models.sh

.PHONY: services
services: deps ## build and cache the LiveKit server and the Temporal CLI, install the MCP server, bundle the Pipecat client and voice-ui-kit test pages (npm ci)
	@bash scripts/livekit-server.sh >/dev/null
	@bash scripts/temporal.sh >/dev/null
	@bash scripts/mcp-everything.sh >/dev/null
	@bash e2e/rtvi/build.sh >/dev/null

.PHONY: setup
setup: deps models

.PHONY: build
build: deps ## build bin/voiced
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/voiced

.PHONY: run
run: setup build ## install what is missing, build, and serve on $(ADDR) (SIP on $(SIP_ADDR))
	./$(BIN) serve --addr $(ADDR) --sip-addr $(SIP_ADDR)

.PHONY: test
# Packages whose tests talk to real peers in real time (a WebSocket client
# playing speech, sipp, baresip, LiveKit, headless Chromium driven from Go):
# they judge timing by the wall clock, so they run one package at a time,
# after the rest, instead of competing for the CPU with the unit tests.
REALTIME_PKGS := ./e2e/... ./internal/browsertest/ ./transport/sip/ ./transport/webrtc/

test: setup services build ## go test -race ./... (end-to-end and headless Chromium tests included)
	VOICED_REQUIRE_MODELS=1 VOICED_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -timeout 20m \
		$$($(GO) list ./... | grep -v -e '/e2e' -e '/internal/browsertest$$' -e '/transport/sip$$' -e '/transport/webrtc$$')
	VOICED_REQUIRE_MODELS=1 VOICED_REQUIRE_SERVICES=1 $(GO) test -race -count=1 -p 1 -timeout 20m $(REALTIME_PKGS)

.PHONY: e2e
e2e: build ## end-to-end tests: WebSocket conversation and headless Chromium
	VOICED_REQUIRE_MODELS=1 $(GO) test -count=1 -timeout 10m -run TestE2E -v ./e2e/
	VOICED_REQUIRE_MODELS=1 $(GO) test -count=1 -p 1 -timeout 10m -v ./e2e/browser/
	bash e2e/rtvi/build.sh >/dev/null
	VOICED_REQUIRE_MODELS=1 $(GO) test -count=1 -timeout 10m -v ./e2e/rtvi/

.PHONY: check
check: lint vulncheck ## what CI runs: make lint and make vulncheck, then make test
	$(MAKE) --no-print-directory test

.PHONY: lint
lint: deps $(STATICCHECK) ## formatting, go vet, module tidiness, staticcheck
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; }
	$(STATICCHECK) ./...

.PHONY: vulncheck
vulncheck: ## govulncheck against the Go vulnerability database, both pinned via the module proxy (scripts/vulncheck.sh)
	GO=$(GO) sh scripts/vulncheck.sh

$(STATICCHECK):
	GOBIN=$(dir $@) GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: bench
bench: setup build ## run the benchmarks (scripts/bench.sh) and write bench/results
	bash scripts/bench.sh

SOAK_SESSIONS ?= 200
SOAK_DURATION ?= 10m

.PHONY: soak
soak: setup build ## SOAK_SESSIONS (200) churning sessions and misbehaving clients for SOAK_DURATION (10m); writes bench/results/soak.md
	$(BIN) bench soak --sessions $(SOAK_SESSIONS) --duration $(SOAK_DURATION) --out bench/results

SIP_LEVELS ?= 25,50,100,150

.PHONY: bench-sip
bench-sip: setup build ## SIP voice-to-voice at the caller next to the WebSocket, then SIP_LEVELS (25,50,100,150) concurrent sipp calls (about 4 min); writes bench/results/sip.md
	$(BIN) bench sip --levels $(SIP_LEVELS) --out bench/results

.PHONY: fuzz
fuzz: deps ## run every fuzz target in the tree for FUZZTIME (default 10s) each
	GO=$(GO) bash scripts/fuzz.sh

.PHONY: clean
clean: ## remove build outputs (not the model cache)
	rm -rf bin e2e/out
