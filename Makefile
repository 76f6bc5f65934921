# spawn: see README.md.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X spawn/lib/chain.Version=$(VERSION)
STAGES    := spawn spawn-relay spawn-cgroup spawn-ns spawn-rootfs spawn-caps
BINARIES  := $(addprefix bin/,$(STAGES))
TREE      ?= build/tree
# A Debian bookworm tree (debootstrap --variant=minbase), built once by
# make debian / make test-debian; make test uses it when it is there.
DEBIAN    ?= build/debian
export CGO_ENABLED := 0
# urfave/cli without its man-page generator: blackfriday's package init
# alone cost 0.7 ms at every stage's start.
export GOFLAGS := -tags=urfave_cli_no_docs

.PHONY: all build deps rootfs debian demo test test-debian test-unit test-integration bench vet clean $(BINARIES)

all: build

build: $(BINARIES)

$(BINARIES):
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$(notdir $@)

# What the tests use from Debian, installed when missing (as root).
deps:
	@./scripts/deps

rootfs: $(TREE)/bin/busybox

$(TREE)/bin/busybox:
	./scripts/mkrootfs $(TREE)

debian: $(DEBIAN)/usr/bin/apt-get

$(DEBIAN)/usr/bin/apt-get:
	./scripts/mkdebian $(DEBIAN)

# A non-interactive container showing its PID, hostname, mounts and
# capabilities (needs root).
demo: build rootfs
	./bin/spawn -D $(TREE) -- /bin/sh -c 'echo "pid: $$$$"; echo "hostname: $$(hostname)"; echo "user: $$(id)"; grep Cap /proc/self/status; echo mounts:; cat /proc/self/mounts'

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# Unit tests need nothing; integration tests need root and a busybox tree
# (made here, installing busybox-static when missing). The Debian tests run
# when the Debian tree exists (make debian); otherwise they are skipped.
SPAWN_DEBIAN = $(if $(wildcard $(DEBIAN)/usr/bin/apt-get),$(abspath $(DEBIAN)))
# The tests copy a tree made afresh for each run, so that containers run
# by hand on build/tree (which write resolv.conf, homes) cannot change what
# the tests see.
TESTTREE  := build/test-tree
test: deps build vet
	./scripts/mkrootfs $(TESTTREE)
	SPAWN_BIN=$(CURDIR)/bin SPAWN_TREE=$(CURDIR)/$(TESTTREE) SPAWN_DEBIAN=$(SPAWN_DEBIAN) $(GO) test -count=1 -timeout 30m $(TESTFLAGS) ./...

# Builds the Debian tree when missing (root, a Debian mirror reachable) and
# runs the tests that use it.
test-debian: build debian
	./scripts/mkrootfs $(TESTTREE)
	SPAWN_BIN=$(CURDIR)/bin SPAWN_TREE=$(CURDIR)/$(TESTTREE) SPAWN_DEBIAN=$(abspath $(DEBIAN)) $(GO) test -count=1 -timeout 30m $(TESTFLAGS) -run Debian ./tests

test-unit:
	$(GO) test -count=1 -short ./...

bench: build rootfs
	./scripts/bench

clean:
	rm -rf bin build
