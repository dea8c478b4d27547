# pullgate — see README.md. Every target is safe to re-run.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Where e2e tools (crane, cosign v2/v3, crictl) are installed; reused across runs.
export PULLGATE_TOOLS ?= $(HOME)/.cache/pullgate/tools
FUZZTIME  ?= 10s

.PHONY: all build demo test unit e2e tools fuzz bench lint image clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pullgate ./cmd/pullgate

# The main job: an in-process upstream with a signed and an unsigned image,
# the real pullgate binary in front, one pull allowed and one denied.
demo: build
	$(GO) run ./cmd/pullgate-demo --pullgate $(BIN)/pullgate

# Everything: lint, unit tests (race, shuffled), short fuzz runs, and the
# end-to-end suite against real docker-registry, containerd, cosign and crane.
test: lint unit fuzz e2e

# golangci-lint v2 with .golangci.yml (installed by make tools).
lint: tools
	$(PULLGATE_TOOLS)/golangci-lint-v2.15.0/golangci-lint run ./...

unit:
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 ./...

# Short, bounded fuzz runs of every parser (one target per go test run).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || { echo "FAIL: fuzz $$pkg $$f"; \
	      $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

# Installs docker-registry and containerd (apt), crane, cosign v2/v3,
# crictl and golangci-lint (go install) and the OCI conformance suite
# (go build, outside go.mod) if missing.
tools:
	./e2e/install-tools.sh

# The end-to-end suite: real docker-registry, containerd (ctr and crictl),
# cosign v2/v3, crane and the OCI conformance suite against bin/pullgate,
# all on loopback. Needs root (containerd). A few minutes at most once the
# tools are installed; the timeout enforces the 10-minute budget.
e2e: tools build
	PULLGATE_BIN=$(abspath $(BIN)/pullgate) $(GO) test -tags e2e -count=1 -timeout 10m -v ./e2e/

# The performance benchmark, a program (not a test): it starts the real
# docker-registry upstream, distribution's pull-through proxy as the peer
# and bin/pullgate, and prints one table of ratios measured in the same
# run (README "Performance"). About 2 minutes on 2 cores; needs ~3 GB of
# scratch disk, removed afterwards. BENCHFLAGS e.g. -runs 7 -out table.md.
bench: tools build
	$(GO) run ./e2e/bench -pullgate $(abspath $(BIN)/pullgate) $(BENCHFLAGS)

image:
	@echo "no Docker engine here: build the image elsewhere with: docker build -t pullgate:$(VERSION) ."

clean:
	rm -rf $(BIN)
